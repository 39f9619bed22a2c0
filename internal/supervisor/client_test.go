package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is one supervisord started for the tests of this package.
type daemon struct {
	dir    string
	socket string
	port   int
	cmd    *exec.Cmd
}

var testDaemon *daemon
var daemonSkip string

func TestMain(m *testing.M) {
	d, err := startDaemon()
	if err != nil {
		daemonSkip = err.Error()
	} else {
		testDaemon = d
	}
	code := m.Run()
	if testDaemon != nil {
		testDaemon.stop()
	}
	os.Exit(code)
}

func requireDaemon(t *testing.T) *daemon {
	t.Helper()
	if testDaemon == nil {
		msg := "supervisord is not usable (" + daemonSkip + "); install it with: apt-get install supervisor"
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return testDaemon
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startDaemon() (*daemon, error) {
	bin, err := exec.LookPath("supervisord")
	if err != nil {
		return nil, fmt.Errorf("supervisord not found on PATH")
	}
	dir, err := os.MkdirTemp("", "cfyauth-supervisor-test-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	d := &daemon{dir: dir, socket: filepath.Join(dir, "supervisor.sock"), port: port}
	conf := fmt.Sprintf(`[unix_http_server]
file=%[1]s/supervisor.sock
chmod=0700
username = operator ; credentials apply as HTTP basic auth
password = s3cret

[supervisord]
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:cloudify-restservice]
command=/usr/bin/python3 -m http.server %[2]d --bind 127.0.0.1
autostart=true
startsecs=1
stderr_logfile=%[1]s/rest.err

[program:cloudify-broken]
command=/bin/false
autostart=false
startsecs=1
startretries=0

[include]
files=%[1]s/conf.d/*.conf
`, dir, port)
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "supervisord.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d.cmd = cmd
	c := d.client()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		info, err := c.ProcessInfo(context.Background(), "cloudify-restservice")
		if err == nil && info.StateName == "RUNNING" {
			return d, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.stop()
	return nil, fmt.Errorf("supervisord did not start cloudify-restservice within 15s")
}

func (d *daemon) client() *Client {
	return &Client{Socket: d.socket, Username: "operator", Password: "s3cret"}
}

func (d *daemon) stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
		}
	}
	os.RemoveAll(d.dir)
}

func TestRestartChangesPID(t *testing.T) {
	d := requireDaemon(t)
	c := d.client()
	ctx := context.Background()
	before, err := c.ProcessInfo(ctx, "cloudify-restservice")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StopProcess(ctx, "cloudify-restservice", true); err != nil {
		t.Fatalf("StopProcess: %v", err)
	}
	if err := c.StartProcess(ctx, "cloudify-restservice", true); err != nil {
		t.Fatalf("StartProcess: %v", err)
	}
	after, err := c.ProcessInfo(ctx, "cloudify-restservice")
	if err != nil {
		t.Fatal(err)
	}
	if after.PID == before.PID || after.PID == 0 {
		t.Errorf("PID %d -> %d, want a new PID", before.PID, after.PID)
	}
	if after.State != StateRunning {
		t.Errorf("state %s after start, want RUNNING", after.StateName)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", d.port))
	if err != nil {
		t.Fatalf("program does not answer HTTP after restart: %v", err)
	}
	resp.Body.Close()
}

func TestStartFailureIsAFault(t *testing.T) {
	c := requireDaemon(t).client()
	err := c.StartProcess(context.Background(), "cloudify-broken", true)
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("StartProcess(broken) = %v, want a Fault", err)
	}
	if f.Code != FaultSpawnError && f.Code != FaultAbnormalTermination {
		t.Errorf("fault code %d, want SPAWN_ERROR or ABNORMAL_TERMINATION", f.Code)
	}
	if !strings.Contains(f.Error(), "could not start") && !strings.Contains(f.Error(), "exited while") {
		t.Errorf("fault not explained: %q", f.Error())
	}
}

func TestUnknownProgramIsBadName(t *testing.T) {
	c := requireDaemon(t).client()
	_, err := c.ProcessInfo(context.Background(), "no-such-program")
	if !IsFault(err, FaultBadName) {
		t.Errorf("ProcessInfo(unknown) = %v, want BAD_NAME", err)
	}
}

func TestWrongCredentialsAreUnauthorized(t *testing.T) {
	d := requireDaemon(t)
	c := &Client{Socket: d.socket, Username: "operator", Password: "wrong"}
	_, err := c.State(context.Background())
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("State with a wrong password = %v, want ErrUnauthorized", err)
	}
	c.Username, c.Password = "", ""
	_, err = c.State(context.Background())
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("State without credentials = %v, want ErrUnauthorized", err)
	}
}

func TestTailStderr(t *testing.T) {
	d := requireDaemon(t)
	c := d.client()
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/missing-page", d.port)); err != nil {
		t.Fatal(err)
	}
	var text string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		text, err = c.TailStderr(context.Background(), "cloudify-restservice", 4096)
		if err != nil {
			t.Fatalf("TailStderr: %v", err)
		}
		if strings.Contains(text, "missing-page") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("stderr tail lacks the request line: %q", text)
}

func TestMissingSocket(t *testing.T) {
	c := &Client{Socket: filepath.Join(t.TempDir(), "none.sock"), Timeout: 2 * time.Second}
	_, err := c.State(context.Background())
	if err == nil || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("State on a missing socket = %v, want ENOENT", err)
	}
}

func TestParseConfig(t *testing.T) {
	text := `; Cloudify's supervisord.conf
[unix_http_server]
file=/var/run/supervisord.sock   ; the socket
chmod=0770
username: admin
password = pa;ss

[include]
files = /etc/supervisord.d/*.conf /etc/extra/*.ini
[program:cloudify-restservice]
command=/bin/true
`
	cfg, err := ParseConfig(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Socket != "/var/run/supervisord.sock" {
		t.Errorf("Socket = %q", cfg.Socket)
	}
	if cfg.Username != "admin" {
		t.Errorf("Username = %q", cfg.Username)
	}
	if cfg.HashedPassword() {
		t.Errorf("HashedPassword() = true for a plain password")
	}
	if cfg.Password != "pa;ss" {
		t.Errorf("Password = %q, want the value with its inline semicolon", cfg.Password)
	}
	if len(cfg.Includes) != 2 || cfg.Includes[0] != "/etc/supervisord.d/*.conf" {
		t.Errorf("Includes = %q", cfg.Includes)
	}
	if names := ProgramNames(strings.NewReader(text)); len(names) != 1 || names[0] != "cloudify-restservice" {
		t.Errorf("ProgramNames = %q", names)
	}
}
