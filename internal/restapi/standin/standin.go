// Package standin starts and stops the REST stand-in (a Python imitation of
// the manager's REST service, kept in internal/restapi/testdata/reststandin)
// for tests, and makes the certificates its HTTPS tests need. Tests only: it
// locates the program through its own source path.
package standin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StateDir is the stand-in's default state folder, relative to the root.
const StateDir = "var/lib/reststandin"

// LogFile is the stand-in's log, relative to the root: the REST service log
// path of a real manager.
const LogFile = "var/log/cloudify/rest/cloudify-rest-service.log"

// Script returns the path of reststandin.py.
func Script() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("locate the stand-in: no caller information")
	}
	path := filepath.Join(filepath.Dir(file), "..", "testdata", "reststandin", "reststandin.py")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("locate the stand-in: %w", err)
	}
	return path, nil
}

// Python returns the interpreter to run the stand-in with: $CFYAUTH_TEST_PYTHON
// or python3 from PATH.
func Python() (string, error) {
	if p := os.Getenv("CFYAUTH_TEST_PYTHON"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		return "", fmt.Errorf("find python3 for the REST stand-in (install it with 'apt-get install python3'): %w", err)
	}
	return p, nil
}

// Options configure one stand-in process.
type Options struct {
	// Root is the manager root (a sandbox) whose authenticators it loads.
	Root string
	// State is the state folder; empty means Root/StateDir.
	State string
	// Port to listen on; zero picks a free one once, kept across restarts.
	Port int
	// TLSCert and TLSKey make it serve HTTPS.
	TLSCert, TLSKey string
	// ManagerVersion is the version it imitates; empty means the sandbox's.
	ManagerVersion string
	// StartTimeout bounds the wait until it listens; zero means 15 s.
	StartTimeout time.Duration
}

// Process is a running stand-in.
type Process struct {
	URL  string
	Port int
	PID  int

	opts  Options
	cmd   *exec.Cmd
	done  chan struct{}
	ready string
}

// StatePath returns a file in the stand-in's state folder.
func (o Options) StatePath(name string) string {
	state := o.State
	if state == "" {
		state = filepath.Join(o.Root, StateDir)
	}
	return filepath.Join(state, name)
}

// Start runs the stand-in and waits until it listens. When it exits first
// (a crash at start), the error quotes the end of its log.
func Start(ctx context.Context, opts Options) (*Process, error) {
	if opts.Port == 0 {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		opts.Port = port
	}
	p := &Process{opts: opts, Port: opts.Port}
	return p, p.start(ctx)
}

func (p *Process) start(ctx context.Context) error {
	script, err := Script()
	if err != nil {
		return err
	}
	python, err := Python()
	if err != nil {
		return err
	}
	readyDir, err := os.MkdirTemp("", "reststandin-")
	if err != nil {
		return fmt.Errorf("create ready folder: %w", err)
	}
	p.ready = filepath.Join(readyDir, "ready.json")
	args := []string{script, "--root", p.opts.Root, "--port", strconv.Itoa(p.opts.Port), "--ready-file", p.ready}
	if p.opts.State != "" {
		args = append(args, "--state", p.opts.State)
	}
	if p.opts.TLSCert != "" {
		args = append(args, "--tls-cert", p.opts.TLSCert, "--tls-key", p.opts.TLSKey)
	}
	if p.opts.ManagerVersion != "" {
		args = append(args, "--manager-version", p.opts.ManagerVersion)
	}
	cmd := exec.Command(python, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(readyDir)
		return fmt.Errorf("start the REST stand-in: %w", err)
	}
	p.cmd = cmd
	p.PID = cmd.Process.Pid
	p.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	timeout := p.opts.StartTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			os.RemoveAll(readyDir)
			return fmt.Errorf("the REST stand-in exited before listening (exit code %d): %s%s",
				cmd.ProcessState.ExitCode(), strings.TrimSpace(stderr.String()), p.logTail())
		case <-ctx.Done():
			p.Stop()
			return ctx.Err()
		case <-deadline.C:
			p.Stop()
			return fmt.Errorf("the REST stand-in did not listen within %s%s", timeout, p.logTail())
		case <-tick.C:
			data, err := os.ReadFile(p.ready)
			if err != nil {
				continue
			}
			var info struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(data, &info) != nil || info.URL == "" {
				continue
			}
			os.RemoveAll(readyDir)
			p.URL = info.URL
			return nil
		}
	}
}

func (p *Process) logTail() string {
	data, err := os.ReadFile(filepath.Join(p.opts.Root, LogFile))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\nlog:\n" + strings.Join(lines, "\n")
}

// Stop sends SIGTERM to the stand-in (by its PID) and waits for it to exit,
// killing it after 5 s. Stopping a stopped process does nothing.
func (p *Process) Stop() error {
	if p.cmd == nil || p.done == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.PID, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("the REST stand-in (pid %d) ignored SIGTERM and was killed", p.PID)
	}
}

// Restart stops the stand-in and starts it again on the same port, so it
// loads the authenticators folder afresh.
func (p *Process) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	p.URL = ""
	return p.start(ctx)
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WriteState writes a file into the stand-in's state folder (admin_password,
// groups.json, config.json, or a fault file such as maintenance).
func WriteState(opts Options, name string, data []byte) error {
	path := opts.StatePath(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
