package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/restart"
)

func testApp(env map[string]string, root string) (*App, *bytes.Buffer) {
	var errOut bytes.Buffer
	app := NewApp(&IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &errOut},
		func(k string) string { return env[k] })
	app.Global.Root = root
	return app, &errOut
}

func TestResolveHealthURL(t *testing.T) {
	app, _ := testApp(nil, "/")
	if got, err := resolveHealthURL(app, ""); err != nil || got != defaultHealthURL {
		t.Errorf("default on / = %q, %v; want %s", got, err, defaultHealthURL)
	}
	app.Global.ManagerURL = "https://manager.example.com/"
	if got, _ := resolveHealthURL(app, ""); got != "https://manager.example.com/api/v3.1/ok" {
		t.Errorf("from --manager-url = %q", got)
	}
	if got, _ := resolveHealthURL(app, "http://127.0.0.1:8100/api/v3.1/ok"); got != "http://127.0.0.1:8100/api/v3.1/ok" {
		t.Errorf("--health-url not taken as given: %q", got)
	}

	sandbox, _ := testApp(nil, "/tmp/mgr")
	_, err := resolveHealthURL(sandbox, "")
	if apperr.ExitCodeOf(err) != apperr.ExitUsage || !strings.Contains(err.Error(), "does not guess") {
		t.Errorf("sandbox without a URL: %v, want a usage error", err)
	}
	for _, bad := range []string{"ftp://x/y", "127.0.0.1:8100", "http://"} {
		if _, err := resolveHealthURL(app, bad); apperr.ExitCodeOf(err) != apperr.ExitUsage {
			t.Errorf("--health-url %q: %v, want a usage error", bad, err)
		}
	}
}

func TestConnectOptionsBus(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: "5.1", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	layout, err := manager.Open(root)
	if err != nil {
		t.Fatal(err)
	}

	auto := serviceFlags{Via: "auto"}
	units := []string{"cloudify-restservice.service"}
	app, _ := testApp(nil, root)
	if o := connectOptions(app, layout, auto, units); o.NoBusReason == "" {
		t.Errorf("sandbox without a bus address: %+v, want a reason not to use the system bus", o)
	}
	app, _ = testApp(map[string]string{"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/x"}, root)
	if o := connectOptions(app, layout, auto, units); o.NoBusReason != "" || o.BusAddress != "" {
		t.Errorf("with DBUS_SYSTEM_BUS_ADDRESS: %+v; want the system bus", o)
	}
	app, _ = testApp(nil, root)
	app.Global.BusAddress = "unix:path=/run/bus"
	if o := connectOptions(app, layout, serviceFlags{Via: "systemd"}, units); o.NoBusReason != "" || o.BusAddress != "unix:path=/run/bus" || o.Service != units[0] {
		t.Errorf("with --bus-address: %+v", o)
	}
}

func TestConnectOptionsSupervisorSocket(t *testing.T) {
	app, _ := testApp(map[string]string{"CFYAUTH_SUPERVISOR_SOCKET": "/env/sup.sock"}, "/")
	if o := connectOptions(app, nil, serviceFlags{}, nil); o.SupervisorSocket != "/env/sup.sock" {
		t.Errorf("from CFYAUTH_SUPERVISOR_SOCKET: %q", o.SupervisorSocket)
	}
	if o := connectOptions(app, nil, serviceFlags{SupervisorSocket: "/flag/sup.sock"}, nil); o.SupervisorSocket != "/flag/sup.sock" {
		t.Errorf("--supervisor-socket before the environment: %q", o.SupervisorSocket)
	}
}

func TestCheckGateDurations(t *testing.T) {
	if err := checkGateDurations(3*time.Second, 90*time.Second, "--restart-timeout"); err != nil {
		t.Errorf("3s within 90s: %v", err)
	}
	for _, tc := range []struct {
		settle, timeout time.Duration
		want            string
	}{
		{-time.Second, time.Minute, "invalid --settle -1s"},
		{0, 0, "invalid --restart-timeout 0s"},
		{5 * time.Second, 5 * time.Second, "--settle 5s must be shorter than --restart-timeout 5s"},
	} {
		err := checkGateDurations(tc.settle, tc.timeout, "--restart-timeout")
		if apperr.ExitCodeOf(err) != apperr.ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("settle %s, timeout %s: %v, want a usage error saying %q", tc.settle, tc.timeout, err, tc.want)
		}
	}
}

func TestAdminCredentialsSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CFYAUTH_ADMIN_PASSWORD": "from-cfyauth", "CLOUDIFY_PASSWORD": "from-cloudify",
		"CLOUDIFY_USERNAME": "ops", "CLOUDIFY_TENANT": "t1"}

	app, _ := testApp(env, "/")
	c, err := adminCredentials(app, file)
	if err != nil || c.Password != "from-file" || c.Username != "ops" || c.Tenant != "t1" {
		t.Errorf("file first: %+v, %v", c, err)
	}
	if c, _ := adminCredentials(app, ""); c.Password != "from-cfyauth" {
		t.Errorf("CFYAUTH_ADMIN_PASSWORD before CLOUDIFY_PASSWORD: got %q", c.Password)
	}
	delete(env, "CFYAUTH_ADMIN_PASSWORD")
	if c, _ := adminCredentials(app, ""); c.Password != "from-cloudify" {
		t.Errorf("CLOUDIFY_PASSWORD: got %q", c.Password)
	}
	delete(env, "CLOUDIFY_PASSWORD")
	if c, err := adminCredentials(app, ""); c != nil || err != nil {
		t.Errorf("no password: %+v, %v; want none", c, err)
	}
	delete(env, "CLOUDIFY_USERNAME")
	env["CLOUDIFY_PASSWORD"] = "x"
	if c, _ := adminCredentials(app, ""); c.Username != "admin" {
		t.Errorf("default user = %q, want admin", c.Username)
	}

	_, err = adminCredentials(app, filepath.Join(t.TempDir(), "missing"))
	if apperr.ExitCodeOf(err) != apperr.ExitUsage {
		t.Errorf("missing password file: %v, want a usage error", err)
	}
}

func TestUnitNamesDeduplicated(t *testing.T) {
	got, err := unitNames([]string{"cloudify-restservice", "cloudify-restservice.service", "cloudify-api"})
	if err != nil || strings.Join(got, ",") != "cloudify-restservice.service,cloudify-api.service" {
		t.Errorf("unitNames = %q, %v", got, err)
	}
}

func TestProgressLineOnTerminalOnly(t *testing.T) {
	piped, errOut := testApp(nil, "/")
	p := newProgressLine(piped)
	p.Phase(restart.PhaseSettle)
	p.Stop()
	if errOut.Len() != 0 {
		t.Errorf("progress written to a pipe: %q", errOut.String())
	}

	tty, _ := testApp(nil, "/")
	ttyOut := &lockedBuffer{}
	tty.IO.ErrOut = ttyOut
	tty.IO.StderrTTY = true
	p = newProgressLine(tty)
	p.Phase(restart.PhaseSettle)
	// The line is drawn on the next tick; wait for it without timing it.
	for i := 0; i < 500 && !strings.Contains(ttyOut.String(), "watching the service"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	out := ttyOut.String()
	if !strings.Contains(out, "cfyauth: watching the service through the settle window (") {
		t.Errorf("no phase line on a terminal: %q", out)
	}
	if !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("the line is not cleared at the end: %q", out)
	}
}

// lockedBuffer is a bytes.Buffer that the progress goroutine and the test
// may use at the same time.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
