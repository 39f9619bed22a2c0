// Package restarttest runs a real systemd user manager for tests, through
// scripts/testenv/systemd-user.sh, and writes units for the REST service
// stand-in (standin.py) into it. It is imported by tests only.
package restarttest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

//go:embed standin.py
var standinSource []byte

// InstallHint names the command that installs what Start needs.
const InstallHint = "run as root after 'bash scripts/testenv/systemd-user.sh install' (packages systemd, dbus-user-session, dbus-daemon)"

// RequireServers reports whether a missing prerequisite must fail a test
// instead of skipping it (CFYAUTH_REQUIRE_SERVERS=1, as in CI).
func RequireServers() bool { return os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" }

// SkipUnavailable skips the test when a server could not start (startErr
// is not nil), or fails it under CFYAUTH_REQUIRE_SERVERS=1.
func SkipUnavailable(t testing.TB, server string, startErr error) {
	t.Helper()
	if startErr == nil {
		return
	}
	if RequireServers() {
		t.Fatalf("real %s required (CFYAUTH_REQUIRE_SERVERS=1): %v", server, startErr)
	}
	t.Skipf("skipping: %v", startErr)
}

// Systemd is a running systemd user manager with its own bus.
type Systemd struct {
	// Dir is the working folder; Stop removes it.
	Dir string
	// UnitDir is where unit files go.
	UnitDir string
	// BusAddress is the D-Bus address on which org.freedesktop.systemd1 is.
	BusAddress string
	// PID is the manager's process ID.
	PID int
	// Standin is the path of the REST service stand-in program.
	Standin string
	// Python runs the stand-in.
	Python string

	script string
	conn   *sd.Conn
}

// ErrUnavailable wraps the reason a real systemd cannot run here.
var ErrUnavailable = errors.New("real systemd unavailable")

// Start launches a manager in dir (created fresh; any manager recorded
// there from an earlier run is stopped first). It stops itself when the
// calling process exits, even without Stop.
func Start(dir string) (*Systemd, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: it needs root; %s", ErrUnavailable, InstallHint)
	}
	script := filepath.Join(RepoRoot(), "scripts", "testenv", "systemd-user.sh")
	python, err := findPython()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	cmd := exec.Command("bash", script, "start")
	cmd.Env = append(os.Environ(), "SD_DIR="+dir, "SD_WATCH_PID="+strconv.Itoa(os.Getpid()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 3 {
			return nil, fmt.Errorf("%w: %s; %s", ErrUnavailable, strings.TrimSpace(stderr.String()), InstallHint)
		}
		return nil, fmt.Errorf("start systemd --user: %v: %s", err, stderr.String())
	}

	env := parseEnv(out)
	s := &Systemd{
		Dir:        dir,
		UnitDir:    env["SD_UNIT_DIR"],
		BusAddress: env["DBUS_SYSTEM_BUS_ADDRESS"],
		Python:     python,
		script:     script,
	}
	s.PID, _ = strconv.Atoi(env["SYSTEMD_PID"])
	if s.BusAddress == "" || s.UnitDir == "" || s.PID == 0 {
		_ = s.Stop()
		return nil, fmt.Errorf("start systemd --user: unexpected output %q", out)
	}

	s.Standin = filepath.Join(s.Dir, "standin.py")
	if err := os.WriteFile(s.Standin, standinSource, 0o644); err != nil {
		_ = s.Stop()
		return nil, err
	}
	// The connection lives until Stop, so it is not bound to a context.
	s.conn, err = sd.NewConnection(func() (*godbus.Conn, error) { return dialTestBus(s.BusAddress) })
	if err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("connect to the test systemd: %w", err)
	}
	return s, nil
}

func dialTestBus(address string) (*godbus.Conn, error) {
	c, err := godbus.Dial(address)
	if err != nil {
		return nil, err
	}
	if err := c.Auth(nil); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Hello(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Stop stops the manager by its recorded PID and removes its folder.
func (s *Systemd) Stop() error {
	if s.conn != nil {
		s.conn.Close()
	}
	cmd := exec.Command("bash", s.script, "stop")
	cmd.Env = append(os.Environ(), "SD_DIR="+s.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stop systemd --user: %v: %s", err, out)
	}
	return nil
}

// AddUnit writes a unit file and reloads the manager so that it loads the unit.
func (s *Systemd) AddUnit(name, content string) error {
	if err := os.WriteFile(filepath.Join(s.UnitDir, name), []byte(content), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.conn.ReloadContext(ctx)
}

// StartUnit starts a unit and waits for the job result.
func (s *Systemd) StartUnit(name string) (string, error) {
	return s.job(name, s.conn.StartUnitContext)
}

// StopUnit stops a unit and waits for the job result.
func (s *Systemd) StopUnit(name string) (string, error) {
	return s.job(name, s.conn.StopUnitContext)
}

func (s *Systemd) job(name string, call func(context.Context, string, string, chan<- string) (int, error)) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := make(chan string, 1)
	if _, err := call(ctx, name, "replace", ch); err != nil {
		return "", err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// UnitLog is the file a unit's standard output and error go to, because
// this manager has no journal.
func (s *Systemd) UnitLog(unit string) string {
	return filepath.Join(s.Dir, "logs", unit+".out")
}

// Standin describes a unit that runs the REST service stand-in.
type Standin struct {
	// Root is the manager root whose authenticators folder it loads and
	// whose REST log it writes.
	Root string
	Port int
	// Args are extra stand-in flags, such as --crash-after 2.
	Args []string
	// Restart is systemd's Restart= setting; empty means no.
	Restart string
	// Script is the program to run in place of standin.py, such as the
	// REST stand-in with logins (reststandin.py); it takes the same
	// --root and --port flags.
	Script string
}

// command returns the stand-in's command line.
func (st Standin) command(python, standin string) []string {
	if st.Script != "" {
		standin = st.Script
	}
	return append([]string{python, standin, "--root", st.Root, "--port", strconv.Itoa(st.Port)}, st.Args...)
}

// StandinUnit returns the unit file for a stand-in.
func (s *Systemd) StandinUnit(name string, st Standin) string {
	restart := st.Restart
	if restart == "" {
		restart = "no"
	}
	args := st.command(s.Python, s.Standin)
	return fmt.Sprintf(`[Unit]
Description=Cloudify REST service stand-in on 127.0.0.1:%d (test)
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart=%s
StandardOutput=append:%s
StandardError=append:%s
Restart=%s
RestartSec=200ms
TimeoutStopSec=10s
`, st.Port, strings.Join(quoteArgs(args), " "), s.UnitLog(name), s.UnitLog(name), restart)
}

// FailingUnit returns a unit whose start job fails: its executable does
// not exist.
func FailingUnit() string {
	return `[Unit]
Description=Cloudify REST service whose executable is missing (test)

[Service]
Type=exec
ExecStart=/nonexistent/opt/manager/env/bin/gunicorn manager_rest.wsgi:app
`
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortFree reports whether nothing listens on 127.0.0.1:port.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// WaitListening waits up to 5 s until something accepts connections on
// 127.0.0.1:port, such as a stand-in that was just started.
func WaitListening(port int) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after 5 s", addr)
}

// RepoRoot returns the repository root, from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// findPython returns a python3 that a unit can run without the caller's
// environment: the system one when present, else the first on PATH.
func findPython() (string, error) {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3", nil
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		return "", errors.New("python3 not found; install it with apt-get install -y python3")
	}
	return filepath.EvalSymlinks(p)
}

func parseEnv(out []byte) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		// The script prints values with bash's %q; the ones read here are
		// paths and addresses that need no quoting, or quote only ':'.
		env[k] = strings.ReplaceAll(v, `\`, "")
	}
	return env
}

// quoteArgs quotes arguments for an ExecStart= line.
func quoteArgs(args []string) []string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\"'\\;$%") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`).Replace(a) + `"`
		}
		quoted[i] = a
	}
	return quoted
}
