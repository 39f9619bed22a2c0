package restart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/supervisor"
)

// SupervisordTarget is the location of supervisord's XML-RPC socket and the
// credentials to log in to it.
type SupervisordTarget struct {
	// Socket is the socket's host path.
	Socket string
	// SocketSource names the origin of the path, for messages.
	SocketSource string
	// Config is the host path of the configuration file that was read, or
	// "" when there is none.
	Config   string
	Username string
	// Password is never printed.
	Password string
}

// ResolveSupervisord finds supervisord's socket and credentials for a
// manager layout. The socket is socketFlag when given (a host path), else
// the [unix_http_server] file of /etc/supervisord.conf, else
// /var/run/supervisord.sock; manager paths are resolved under the root.
// The credentials come from the same configuration file: [supervisorctl]
// username and password when set, as supervisorctl sends them, else those
// of [unix_http_server].
func ResolveSupervisord(layout *manager.Layout, socketFlag string) (SupervisordTarget, error) {
	t := SupervisordTarget{Socket: socketFlag, SocketSource: "--supervisor-socket"}
	confPath, err := layout.Path(manager.SupervisordConf)
	if err != nil {
		return t, err
	}
	f, err := os.Open(confPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		confPath = ""
	case errors.Is(err, os.ErrPermission):
		return t, apperr.Environment("permission_denied", "permission denied reading %s", confPath).Wrap(err).
			WithHint("run cfyauth as root: sudo cfyauth …")
	case err != nil:
		return t, apperr.Environment("supervisord_config_unreadable", "cannot read %s: %v", confPath, err).Wrap(err)
	}
	var cfg supervisor.SocketConfig
	if f != nil {
		cfg, err = supervisor.ParseConfig(f)
		f.Close()
		if err != nil {
			return t, apperr.Environment("supervisord_config_invalid", "cannot use %s: %v", confPath, err).Wrap(err).
				WithHint("fix the file, or pass the socket with --supervisor-socket PATH")
		}
		t.Config = confPath
	}

	if t.Socket == "" {
		managerPath, source := manager.SupervisordSocket, "the default "+manager.SupervisordSocket
		if cfg.Socket != "" {
			// supervisord expands %(here)s to the folder of its configuration file.
			managerPath = strings.ReplaceAll(cfg.Socket, "%(here)s", path.Dir(manager.SupervisordConf))
			source = "[unix_http_server] file in " + layout.Display(manager.SupervisordConf)
		}
		if t.Socket, err = layout.Path(managerPath); err != nil {
			return t, err
		}
		t.SocketSource = source
	}

	switch {
	case cfg.CtlUsername != "":
		t.Username, t.Password = cfg.CtlUsername, cfg.CtlPassword
	case cfg.Username != "" && cfg.HashedPassword():
		return t, apperr.Environment("supervisord_password_hashed",
			"%s stores the supervisord password as a SHA-1 hash, which cfyauth cannot send", confPath).
			WithHint("add the plain username and password to the [supervisorctl] section of %s, as supervisorctl needs them too", confPath)
	case cfg.Username != "":
		t.Username, t.Password = cfg.Username, cfg.Password
	}
	return t, nil
}

// Supervisord is the ServiceManager for supervisord, over its XML-RPC
// interface on the unix socket.
type Supervisord struct {
	client *supervisor.Client
	target SupervisordTarget
	// logStart holds each program's stderr log size before the last
	// restart, so LogTail shows only what the restart added.
	logStart map[string]int64
}

// supervisordCallTimeout bounds one call that does not wait for a program.
// Calls that wait (stop, start) are bounded by the caller's context only.
const supervisordCallTimeout = 10 * time.Second

// DialSupervisord connects to supervisord and checks that it responds. A
// missing socket, a refused connection, a permission problem and rejected
// credentials are environment errors that name the socket.
func DialSupervisord(ctx context.Context, t SupervisordTarget) (*Supervisord, error) {
	s := &Supervisord{
		// The client's own bound is long: stop and start calls wait for the
		// program, and the health gate's context bounds them.
		client:   &supervisor.Client{Socket: t.Socket, Username: t.Username, Password: t.Password, Timeout: time.Hour},
		target:   t,
		logStart: map[string]int64{},
	}
	if _, err := os.Stat(t.Socket); err != nil {
		return nil, s.callError("", "connect to", err)
	}
	cctx, cancel := context.WithTimeout(ctx, supervisordCallTimeout)
	defer cancel()
	state, err := s.client.State(cctx)
	if err != nil {
		return nil, s.callError("", "connect to", err)
	}
	if state != "RUNNING" {
		return nil, apperr.Environment("supervisord_not_running", "supervisord at %s is in state %s, not RUNNING", t.Socket, state).
			WithHint("wait until supervisord has started (or finished shutting down and started again), then run the command again")
	}
	return s, nil
}

// Name returns "supervisord".
func (s *Supervisord) Name() string { return KindSupervisord }

// Close releases nothing: every call uses its own connection.
func (s *Supervisord) Close() error { return nil }

// Target returns where the backend connects.
func (s *Supervisord) Target() SupervisordTarget { return s.target }

// ProgramName returns the supervisord program name for a service name:
// the name without a ".service" suffix, so that --unit cloudify-restservice
// means the same program under both service managers.
func ProgramName(service string) string {
	return strings.TrimSuffix(service, ".service")
}

// Status reads the program's state with getProcessInfo and maps it onto
// the systemd-like fields the health gate reads.
func (s *Supervisord) Status(ctx context.Context, service string) (ServiceStatus, error) {
	name := ProgramName(service)
	cctx, cancel := context.WithTimeout(ctx, supervisordCallTimeout)
	defer cancel()
	info, err := s.client.ProcessInfo(cctx, name)
	if err != nil {
		return ServiceStatus{Service: name}, s.callError(name, "read the state of", err)
	}
	return statusFromProcessInfo(name, info), nil
}

// statusFromProcessInfo maps supervisord's program states onto systemd's
// active and sub states. RUNNING is active (running). STARTING, and BACKOFF
// (a failed start that supervisord retries), are activating. STOPPING is
// deactivating and STOPPED inactive. EXITED is failed after a non-zero
// exit status and inactive otherwise. FATAL (supervisord gave up starting
// it) is failed.
func statusFromProcessInfo(name string, info supervisor.ProcessInfo) ServiceStatus {
	st := ServiceStatus{
		Service:       name,
		Description:   info.Description,
		LoadState:     "loaded",
		SubState:      strings.ToLower(info.StateName),
		MainPID:       info.PID,
		MainStartedAt: info.StartTime(),
		StartedAt:     info.StartTime(),
		ExitStatus:    info.ExitStatus,
	}
	switch info.State {
	case supervisor.StateRunning:
		st.ActiveState = "active"
	case supervisor.StateStarting:
		st.ActiveState = "activating"
	case supervisor.StateBackoff:
		st.ActiveState, st.SubState = "activating", "auto-restart"
	case supervisor.StateStopping:
		st.ActiveState = "deactivating"
	case supervisor.StateStopped:
		st.ActiveState = "inactive"
	case supervisor.StateExited:
		st.ActiveState = "inactive"
		if info.ExitStatus != 0 {
			st.ActiveState, st.Result = "failed", "exit-code"
		}
	case supervisor.StateFatal:
		st.ActiveState, st.Result = "failed", "fatal"
		if info.SpawnErr != "" {
			st.Result = "fatal: " + info.SpawnErr
		}
	default:
		st.ActiveState = "unknown"
	}
	return st
}

// Restart stops the program, waiting until it stopped, and starts it
// again; supervisord has no restart call. With wait set, the start returns
// once the program has stayed up for its startsecs, or with a fault that
// becomes a failed job; without it, once the program was spawned.
func (s *Supervisord) Restart(ctx context.Context, service string, wait bool) (Job, error) {
	name := ProgramName(service)
	job := Job{Service: name}
	s.rememberLogSize(ctx, name)

	err := s.client.StopProcess(ctx, name, true)
	switch {
	case err == nil, supervisor.IsFault(err, supervisor.FaultNotRunning):
	case isFaultErr(err) && !supervisor.IsFault(err, supervisor.FaultBadName):
		job.Result = "failed"
		job.Summary = fmt.Sprintf("supervisord could not stop %s: %s", name, faultWords(err))
		return job, nil
	default:
		return job, s.callError(name, "stop", err)
	}

	err = s.client.StartProcess(ctx, name, wait)
	switch {
	case err == nil && wait:
		job.Result = JobResultDone
		job.Summary = fmt.Sprintf("supervisord stopped %s and started it again; it stayed up for its startsecs", name)
	case err == nil:
		job.Result = JobResultDone
		job.Summary = fmt.Sprintf("supervisord stopped %s and started it again, without waiting for it to stay up", name)
	case isFaultErr(err) && !supervisor.IsFault(err, supervisor.FaultBadName):
		job.Result = "failed"
		job.Summary = s.startFailure(ctx, name, err)
	default:
		return job, s.callError(name, "start", err)
	}
	return job, nil
}

// startFailure describes a start fault in plain words, with the program's
// state and spawn error when supervisord still reports them.
func (s *Supervisord) startFailure(ctx context.Context, name string, err error) string {
	var f *supervisor.Fault
	errors.As(err, &f)
	var summary string
	switch f.Code {
	case supervisor.FaultSpawnError:
		summary = fmt.Sprintf("supervisord could not start %s: the program could not be run, or it exited before its startsecs (SPAWN_ERROR)", name)
	case supervisor.FaultAbnormalTermination:
		summary = fmt.Sprintf("%s exited before it had run for its startsecs, so supervisord reports the start as failed (ABNORMAL_TERMINATION)", name)
	case supervisor.FaultNoFile:
		summary = fmt.Sprintf("supervisord could not start %s: its command does not exist (NO_FILE)", name)
	case supervisor.FaultNotExecutable:
		summary = fmt.Sprintf("supervisord could not start %s: its command is not executable (NOT_EXECUTABLE)", name)
	case supervisor.FaultAlreadyStarted:
		summary = fmt.Sprintf("%s was started by something else between the stop and the start (ALREADY_STARTED)", name)
	default:
		summary = fmt.Sprintf("supervisord could not start %s: %s", name, faultWords(err))
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), supervisordCallTimeout)
	defer cancel()
	if info, ierr := s.client.ProcessInfo(cctx, name); ierr == nil {
		summary += fmt.Sprintf("; state %s", info.StateName)
		if info.SpawnErr != "" {
			summary += ", " + info.SpawnErr
		}
		if info.ExitStatus != 0 {
			summary += fmt.Sprintf(", exit status %d", info.ExitStatus)
		}
	}
	return summary
}

// rememberLogSize records the size of the program's stderr log.
func (s *Supervisord) rememberLogSize(ctx context.Context, name string) {
	cctx, cancel := context.WithTimeout(ctx, supervisordCallTimeout)
	defer cancel()
	if tail, err := s.client.TailStderrLog(cctx, name, 0); err == nil {
		s.logStart[name] = tail.Size
	} else {
		delete(s.logStart, name)
	}
}

// maxStderrTail bounds how much of the stderr log LogTail reads.
const maxStderrTail = 64 << 10

// LogTail returns the last lines of the program's stderr log, through
// tailProcessStderrLog, written since the last Restart of this backend
// (since is not used: the log has no timestamps of its own). A program
// without a stderr log file (Cloudify sends its programs' output to
// syslog) gives no lines and no error.
func (s *Supervisord) LogTail(ctx context.Context, service string, since time.Time, n int) (LogTail, error) {
	name := ProgramName(service)
	tail, err := s.client.TailStderrLog(ctx, name, maxStderrTail)
	if supervisor.IsFault(err, supervisor.FaultNoFile) {
		return LogTail{}, nil
	}
	if err != nil {
		return LogTail{}, fmt.Errorf("read the stderr log of %s: %w", name, err)
	}
	text := tail.Text
	if start, ok := s.logStart[name]; ok && start <= tail.Size {
		// Text holds the bytes before Size; keep those at or after start.
		first := tail.Size - int64(len(text))
		if skip := start - first; skip > 0 {
			text = text[min(skip, int64(len(text))):]
		}
	}
	source := "the stderr log of supervisord program " + name
	cctx, cancel := context.WithTimeout(ctx, supervisordCallTimeout)
	defer cancel()
	if info, err := s.client.ProcessInfo(cctx, name); err == nil && info.StderrLogfile != "" {
		source = info.StderrLogfile
	}
	return LogTail{Source: source, Lines: lastLines([]byte(text), n)}, nil
}

func isFaultErr(err error) bool {
	var f *supervisor.Fault
	return errors.As(err, &f)
}

// faultWords describes a fault in plain words with its name, such as "the
// operation failed (FAILED)".
func faultWords(err error) string {
	var f *supervisor.Fault
	if errors.As(err, &f) {
		return fmt.Sprintf("%s (%s)", f.Explain(), f.Name())
	}
	return err.Error()
}

// callError turns a failed call into an error that names the socket and
// what to do.
func (s *Supervisord) callError(program, action string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	sock := s.target.Socket
	where := fmt.Sprintf("%s (from %s)", sock, s.target.SocketSource)
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT):
		return apperr.Environment("no_supervisord_socket", "no supervisord socket at %s", where).Wrap(err).
			WithHint("check that supervisord runs: systemctl status supervisord").
			WithHint("pass --supervisor-socket PATH for a socket elsewhere, or --via systemd where systemd runs the REST service")
	case errors.Is(err, syscall.ECONNREFUSED):
		return apperr.Environment("supervisord_refused", "supervisord refused the connection on %s: the socket exists, but nothing accepts connections on it", where).Wrap(err).
			WithHint("start supervisord (systemctl start supervisord), then run the command again").
			WithHint("cfyauth does not fall back to systemd when a supervisord socket exists; pass --via systemd if systemd runs the REST service")
	case errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES):
		return apperr.Environment("permission_denied", "permission denied on the supervisord socket %s", where).Wrap(err).
			WithHint("run cfyauth as root: sudo cfyauth …")
	case errors.Is(err, supervisor.ErrUnauthorized):
		e := apperr.Environment("supervisord_unauthorized", "supervisord at %s rejected the credentials (HTTP 401)", sock).Wrap(err)
		if s.target.Username == "" {
			return e.WithHint("the socket needs a username and password: set them in the [supervisorctl] section of %s",
				orDefault(s.target.Config, manager.SupervisordConf))
		}
		return e.WithHint("check the username and password in the [supervisorctl] (or [unix_http_server]) section of %s",
			orDefault(s.target.Config, manager.SupervisordConf))
	case supervisor.IsFault(err, supervisor.FaultBadName):
		return apperr.Environment("program_not_found", "supervisord at %s manages no program %s", sock, program).Wrap(err).
			WithHint("list its programs with 'supervisorctl -c /etc/supervisord.conf status' and pass the name with --unit").
			WithHint("where systemd runs the REST service, pass --via systemd")
	case supervisor.IsFault(err, supervisor.FaultShutdownState):
		return apperr.Environment("supervisord_shutting_down", "supervisord at %s is shutting down", sock).Wrap(err).
			WithHint("wait until supervisord runs again, then run the command again")
	}
	target := program
	if target == "" {
		target = "supervisord"
	}
	return apperr.Environment("supervisord_call_failed", "cannot %s %s at %s: %v", action, target, sock, err).Wrap(err).
		WithHint("check that supervisord runs: systemctl status supervisord")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
