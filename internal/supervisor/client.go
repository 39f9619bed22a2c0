// Package supervisor is a client for supervisord's XML-RPC interface over its
// unix socket, the way supervisorctl reaches it. Cloudify 5.2 and later run
// cloudify-restservice under supervisord by default, and 7.0 only under it.
package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/kolo/xmlrpc"
)

// Fault codes from supervisor/xmlrpc.py (supervisor 4.2).
const (
	FaultUnknownMethod       = 1
	FaultIncorrectParameters = 2
	FaultBadArguments        = 3
	FaultShutdownState       = 6
	FaultBadName             = 10
	FaultNoFile              = 20
	FaultNotExecutable       = 21
	FaultFailed              = 30
	FaultAbnormalTermination = 40
	FaultSpawnError          = 50
	FaultAlreadyStarted      = 60
	FaultNotRunning          = 70
)

// Fault is an XML-RPC fault returned by supervisord, with its meaning in
// plain words.
type Fault struct {
	Code    int
	Message string
}

func (f *Fault) Error() string {
	return fmt.Sprintf("supervisord fault %d (%s): %s", f.Code, faultName(f.Code), f.Explain())
}

// Name returns the fault's name in supervisord, such as SPAWN_ERROR.
func (f *Fault) Name() string { return faultName(f.Code) }

// Explain returns what the fault means for the program, in plain words.
func (f *Fault) Explain() string {
	switch f.Code {
	case FaultBadName:
		return "supervisord manages no program of that name"
	case FaultSpawnError:
		return "supervisord could not start the program (its command failed to run)"
	case FaultAbnormalTermination:
		return "the program exited while it was being started or stopped"
	case FaultNotExecutable:
		return "the program's command is not executable"
	case FaultNoFile:
		return "the program's log file does not exist (the program may log to syslog)"
	case FaultAlreadyStarted:
		return "the program is already running"
	case FaultNotRunning:
		return "the program is not running"
	case FaultShutdownState:
		return "supervisord is shutting down"
	case FaultFailed:
		return "the operation failed"
	}
	return f.Message
}

func faultName(code int) string {
	names := map[int]string{
		FaultUnknownMethod: "UNKNOWN_METHOD", FaultIncorrectParameters: "INCORRECT_PARAMETERS",
		FaultBadArguments: "BAD_ARGUMENTS", FaultShutdownState: "SHUTDOWN_STATE", FaultBadName: "BAD_NAME",
		FaultNoFile: "NO_FILE", FaultNotExecutable: "NOT_EXECUTABLE", FaultFailed: "FAILED",
		FaultAbnormalTermination: "ABNORMAL_TERMINATION", FaultSpawnError: "SPAWN_ERROR",
		FaultAlreadyStarted: "ALREADY_STARTED", FaultNotRunning: "NOT_RUNNING",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return "UNKNOWN"
}

// IsFault reports whether err is a supervisord fault with the given code.
func IsFault(err error, code int) bool {
	var f *Fault
	return errors.As(err, &f) && f.Code == code
}

// Client talks to one supervisord over its unix socket.
type Client struct {
	Socket string
	// Username and Password are the [unix_http_server] credentials, when
	// the configuration sets them; they are sent as HTTP basic auth.
	Username string
	Password string
	// Timeout bounds one call; zero means 30 s. Calls that wait for a
	// program to start or stop may take up to the program's startsecs or
	// stopwaitsecs.
	Timeout time.Duration
}

// ProcessInfo is supervisord's view of one program.
type ProcessInfo struct {
	Name          string `xmlrpc:"name"`
	Group         string `xmlrpc:"group"`
	Description   string `xmlrpc:"description"`
	Start         int64  `xmlrpc:"start"`
	Stop          int64  `xmlrpc:"stop"`
	Now           int64  `xmlrpc:"now"`
	State         int    `xmlrpc:"state"`
	StateName     string `xmlrpc:"statename"`
	SpawnErr      string `xmlrpc:"spawnerr"`
	ExitStatus    int    `xmlrpc:"exitstatus"`
	StdoutLogfile string `xmlrpc:"stdout_logfile"`
	StderrLogfile string `xmlrpc:"stderr_logfile"`
	PID           int    `xmlrpc:"pid"`
}

// StartTime returns when the program last started, or zero.
func (p ProcessInfo) StartTime() time.Time {
	if p.Start == 0 {
		return time.Time{}
	}
	return time.Unix(p.Start, 0)
}

// Program states from supervisor/states.py.
const (
	StateStopped  = 0
	StateStarting = 10
	StateRunning  = 20
	StateBackoff  = 30
	StateStopping = 40
	StateExited   = 100
	StateFatal    = 200
	StateUnknown  = 1000
)

// call sends one XML-RPC request over the unix socket. The XML-RPC library
// only encodes and decodes, so faults and HTTP statuses stay typed.
func (c *Client) call(ctx context.Context, method string, reply any, args ...any) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	body, err := xmlrpc.EncodeMethodCall(method, args...)
	if err != nil {
		return fmt.Errorf("encode %s: %w", method, err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", c.Socket)
		},
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	// The host name is never resolved: every connection goes to the socket.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/RPC2", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build %s request: %w", method, err)
	}
	req.Header.Set("Content-Type", "text/xml")
	if c.Username != "" {
		req.SetBasicAuth(c.Username, c.Password)
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return fmt.Errorf("call %s on %s: %w", method, c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("call %s on %s: HTTP status %s", method, c.Socket, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read %s reply: %w", method, err)
	}
	response := xmlrpc.Response(data)
	if err := response.Err(); err != nil {
		var fault xmlrpc.FaultError
		if errors.As(err, &fault) {
			return &Fault{Code: fault.Code, Message: fault.String}
		}
		return fmt.Errorf("decode %s reply: %w", method, err)
	}
	if reply == nil {
		return nil
	}
	if err := response.Unmarshal(reply); err != nil {
		return fmt.Errorf("decode %s reply: %w", method, err)
	}
	return nil
}

// ErrUnauthorized means the socket requires credentials that were missing
// or wrong.
var ErrUnauthorized = errors.New("supervisord rejected the credentials (HTTP 401)")

// State returns supervisord's own state name, such as RUNNING.
func (c *Client) State(ctx context.Context) (string, error) {
	var reply struct {
		Code int    `xmlrpc:"statecode"`
		Name string `xmlrpc:"statename"`
	}
	if err := c.call(ctx, "supervisor.getState", &reply); err != nil {
		return "", err
	}
	return reply.Name, nil
}

// ProcessInfo returns one program's state.
func (c *Client) ProcessInfo(ctx context.Context, name string) (ProcessInfo, error) {
	var info ProcessInfo
	err := c.call(ctx, "supervisor.getProcessInfo", &info, name)
	return info, err
}

// StopProcess stops a program; with wait set, it returns once it stopped.
func (c *Client) StopProcess(ctx context.Context, name string, wait bool) error {
	var ok bool
	return c.call(ctx, "supervisor.stopProcess", &ok, name, wait)
}

// StartProcess starts a program; with wait set, it returns once the program
// has stayed up for its startsecs, or with a fault.
func (c *Client) StartProcess(ctx context.Context, name string, wait bool) error {
	var ok bool
	return c.call(ctx, "supervisor.startProcess", &ok, name, wait)
}

// TailStderr returns up to length bytes from the end of the program's
// stderr log.
func (c *Client) TailStderr(ctx context.Context, name string, length int) (string, error) {
	var reply []any
	if err := c.call(ctx, "supervisor.tailProcessStderrLog", &reply, name, 0, length); err != nil {
		return "", err
	}
	if len(reply) == 0 {
		return "", nil
	}
	text, _ := reply[0].(string)
	return text, nil
}

// StderrTail is the end of a program's stderr log.
type StderrTail struct {
	Text string
	// Size is the log's size in bytes when it was read; the last byte of
	// Text is the byte before Size.
	Size int64
	// Overflow is set when the log holds more than Text.
	Overflow bool
}

// TailStderrLog returns up to length bytes from the end of the program's
// stderr log, and the log's size. A length of 0 returns only the size.
func (c *Client) TailStderrLog(ctx context.Context, name string, length int) (StderrTail, error) {
	var reply []any
	if err := c.call(ctx, "supervisor.tailProcessStderrLog", &reply, name, 0, length); err != nil {
		return StderrTail{}, err
	}
	var tail StderrTail
	if len(reply) > 0 {
		tail.Text, _ = reply[0].(string)
	}
	if len(reply) > 1 {
		switch v := reply[1].(type) {
		case int64:
			tail.Size = v
		case int:
			tail.Size = int64(v)
		}
	}
	if len(reply) > 2 {
		tail.Overflow, _ = reply[2].(bool)
	}
	return tail, nil
}

// ReloadConfig makes supervisord read its configuration files again, as
// 'supervisorctl reread' does, and returns the program groups that were
// added, changed and removed. Nothing is started or stopped.
func (c *Client) ReloadConfig(ctx context.Context) (added, changed, removed []string, err error) {
	var reply [][][]string
	if err := c.call(ctx, "supervisor.reloadConfig", &reply); err != nil {
		return nil, nil, nil, err
	}
	if len(reply) == 1 && len(reply[0]) == 3 {
		return reply[0][0], reply[0][1], reply[0][2], nil
	}
	return nil, nil, nil, fmt.Errorf("decode supervisor.reloadConfig reply: unexpected shape %v", reply)
}

// AddProcessGroup starts managing a program group that ReloadConfig
// reported as added; programs with autostart then start.
func (c *Client) AddProcessGroup(ctx context.Context, name string) error {
	var ok bool
	return c.call(ctx, "supervisor.addProcessGroup", &ok, name)
}

// RemoveProcessGroup stops managing a program group whose programs are all
// stopped.
func (c *Client) RemoveProcessGroup(ctx context.Context, name string) error {
	var ok bool
	return c.call(ctx, "supervisor.removeProcessGroup", &ok, name)
}
