package restarttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/supervisor"
)

// SupervisordInstallHint names the command that installs what
// StartSupervisord needs.
const SupervisordInstallHint = "install it with 'bash scripts/testenv/supervisord.sh install' (package supervisor)"

// Test credentials of the [unix_http_server] section. They protect nothing
// but a throwaway socket; tests use them to exercise basic auth.
const (
	SupervisorUser     = "cfyauth-test"
	SupervisorPassword = "socket-test-password"
)

// Supervisord is a running supervisord for tests, with an include folder
// for programs added while it runs.
type Supervisord struct {
	// Dir is the working folder; Stop removes it.
	Dir string
	// Socket is the XML-RPC socket; it needs SupervisorUser and
	// SupervisorPassword.
	Socket string
	// Programs is the include folder of program configurations.
	Programs string
	// Logs holds supervisord's log and the programs' stdout and stderr logs.
	Logs string
	PID  int
	// Standin is the path of the REST service stand-in program (standin.py).
	Standin string
	// Python runs the stand-in.
	Python string

	script string
	client *supervisor.Client
}

// StartSupervisord launches supervisord in dir (created fresh) through
// scripts/testenv/supervisord.sh, with its socket at socket (empty means
// dir/supervisor.sock). It stops itself when the calling process exits,
// even without Stop.
func StartSupervisord(dir, socket string) (*Supervisord, error) {
	if _, err := exec.LookPath("supervisord"); err != nil {
		return nil, fmt.Errorf("%w: supervisord not found; %s", ErrUnavailable, SupervisordInstallHint)
	}
	python, err := findPython()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	script := filepath.Join(RepoRoot(), "scripts", "testenv", "supervisord.sh")
	cmd := exec.Command("bash", script, "start")
	cmd.Env = append(os.Environ(), "SUP_DIR="+dir, "SUP_WATCH_PID="+strconv.Itoa(os.Getpid()),
		"SUP_SOCKET="+socket, "SUP_USER="+SupervisorUser, "SUP_PASSWORD="+SupervisorPassword)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("start supervisord: %v: %s", err, stderr.String())
	}
	env := parseEnv(out)
	s := &Supervisord{
		Dir:      dir,
		Socket:   env["SUPERVISOR_SOCKET"],
		Programs: env["SUPERVISOR_PROGRAMS"],
		Logs:     env["SUPERVISOR_LOGS"],
		Python:   python,
		script:   script,
	}
	s.PID, _ = strconv.Atoi(env["SUPERVISOR_PID"])
	if s.Socket == "" || s.Programs == "" || s.PID == 0 {
		_ = s.Stop()
		return nil, fmt.Errorf("start supervisord: unexpected output %q", out)
	}
	s.client = &supervisor.Client{Socket: s.Socket, Username: SupervisorUser, Password: SupervisorPassword}
	s.Standin = filepath.Join(dir, "standin.py")
	if err := os.WriteFile(s.Standin, standinSource, 0o644); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop stops supervisord, and with it its programs, by its recorded PID,
// and removes its folder.
func (s *Supervisord) Stop() error {
	cmd := exec.Command("bash", s.script, "stop")
	cmd.Env = append(os.Environ(), "SUP_DIR="+s.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stop supervisord: %v: %s", err, out)
	}
	return nil
}

// Client returns an XML-RPC client with the test credentials.
func (s *Supervisord) Client() *supervisor.Client { return s.client }

// ManagerConfig returns an /etc/supervisord.conf for a manager root whose
// socket is at the manager path socketPath, with the test credentials.
func ManagerConfig(socketPath string) string {
	return fmt.Sprintf(`[unix_http_server]
file=%s
chmod=0770
username=%s
password=%s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[include]
files=/etc/supervisord.d/*.conf
`, socketPath, SupervisorUser, SupervisorPassword)
}

// AddProgram writes a [program:NAME] section with the given body into the
// include folder and makes supervisord manage it, as 'supervisorctl update'
// does. A program of that name is replaced. With autostart in the body it
// waits up to 15 s until the program leaves STARTING.
func (s *Supervisord) AddProgram(name, body string) (supervisor.ProcessInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conf := filepath.Join(s.Programs, name+".conf")
	if err := os.WriteFile(conf, []byte("[program:"+name+"]\n"+body), 0o644); err != nil {
		return supervisor.ProcessInfo{}, err
	}
	added, changed, _, err := s.client.ReloadConfig(ctx)
	if err != nil {
		return supervisor.ProcessInfo{}, err
	}
	if slices.Contains(changed, name) {
		if err := s.removeGroup(ctx, name); err != nil {
			return supervisor.ProcessInfo{}, err
		}
		added = append(added, name)
	}
	if !slices.Contains(added, name) {
		return supervisor.ProcessInfo{}, fmt.Errorf("supervisord did not pick up %s (added %v, changed %v)", conf, added, changed)
	}
	if err := s.client.AddProcessGroup(ctx, name); err != nil {
		return supervisor.ProcessInfo{}, fmt.Errorf("add program %s: %w", name, err)
	}
	for {
		info, err := s.client.ProcessInfo(ctx, name)
		if err != nil || info.State != supervisor.StateStarting {
			return info, err
		}
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("program %s still STARTING: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RemoveProgram stops a program and makes supervisord forget it.
func (s *Supervisord) RemoveProgram(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.removeGroup(ctx, name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.Programs, name+".conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_, _, _, err := s.client.ReloadConfig(ctx)
	return err
}

func (s *Supervisord) removeGroup(ctx context.Context, name string) error {
	err := s.client.StopProcess(ctx, name, true)
	if err != nil && !supervisor.IsFault(err, supervisor.FaultNotRunning) {
		return fmt.Errorf("stop program %s: %w", name, err)
	}
	if err := s.client.RemoveProcessGroup(ctx, name); err != nil {
		return fmt.Errorf("remove program %s: %w", name, err)
	}
	return nil
}

// StandinProgram returns the body of a program section that runs the
// stand-in of this package, with no automatic restarts and startsecs 1. Its
// stderr goes to a log file that tailProcessStderrLog reads. With
// redirectStderr the program has no stderr log, as when output goes to
// syslog.
func (s *Supervisord) StandinProgram(name string, st Standin, redirectStderr bool) string {
	return s.ProgramBody(name, strings.Join(st.command(s.Python, s.Standin), " "), redirectStderr)
}

// ProgramBody returns the body of a program section that runs command
// once (no automatic restarts), counting it started after one second.
func (s *Supervisord) ProgramBody(name, command string, redirectStderr bool) string {
	body := fmt.Sprintf(`command=%s
autostart=true
autorestart=false
startsecs=1
startretries=0
stopwaitsecs=10
stdout_logfile=%s
`, command, filepath.Join(s.Logs, name+".out"))
	if redirectStderr {
		return body + "redirect_stderr=true\n"
	}
	return body + "stderr_logfile=" + filepath.Join(s.Logs, name+".err") + "\n"
}
