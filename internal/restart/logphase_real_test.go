package restart_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restapi/standin"
	"github.com/cfyauth/cfyauth/internal/restart"
	"github.com/cfyauth/cfyauth/internal/restart/restarttest"
)

// bobPassword is the password of the user whose logins flakyModule
// repeats in its exception text.
const bobPassword = "bob-Secret-42"

// flakyModule loads fine and raises while handling a login of bob, with
// the password in the exception text.
const flakyModule = `from cloudify_premium.authentication.auth_base import AuthBase


class FlakyAuth(AuthBase):
    def _authenticate_request(self, request):
        auth = request.authorization
        if auth and auth.username == "bob":
            raise RuntimeError("backend refused bob with password %s" % auth.password)
        return None


configure = FlakyAuth().configure
`

// restStandin returns the stand-in with logins (reststandin.py), acting as
// Cloudify 7.0, for a unit or program.
func restStandin(t *testing.T) restarttest.Standin {
	t.Helper()
	script, err := standin.Script()
	if err != nil {
		t.Fatal(err)
	}
	return restarttest.Standin{Script: script, Args: []string{"--manager-version", "7.0.0"}}
}

// setAdminPassword lets the admin log in to the REST stand-in of a root; it
// reads the file on every login.
func setAdminPassword(t *testing.T, layout *manager.Layout) {
	t.Helper()
	dir := filepath.Join(layout.Root, standin.StateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin_password"), []byte(adminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// loginAsBob logs in as bob once the REST API listens, as an operator's
// test-login during the settle window does, and returns the HTTP status.
func loginAsBob(t *testing.T, healthURL string) int {
	t.Helper()
	base := strings.TrimSuffix(healthURL, "/api/v3.1/ok")
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, base+"/api/v3.1/user", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("bob", bobPassword)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		if time.Now().After(deadline) {
			t.Fatalf("the REST stand-in did not answer a login: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkLoginTracebackIsWarning runs the gate with a login of bob in the
// settle window, which makes the loaded module raise, and requires a
// healthy restart whose log check warns, names the module, and masks bob's
// password.
func checkLoginTracebackIsWarning(t *testing.T, g *restart.Gate) {
	t.Helper()
	g.Options.Secrets = []string{adminPassword, bobPassword}
	status := 0
	g.Progress = func(p restart.Phase) {
		if p == restart.PhaseSettle {
			status = loginAsBob(t, g.Options.HealthURL)
		}
	}

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusInternalServerError {
		t.Fatalf("bob's login during the settle window returned HTTP %d, want 500 from the raising module", status)
	}
	if !res.Healthy {
		t.Fatalf("a login-time traceback failed the restart in the %s phase: %s", res.FailedPhase, res.Failure)
	}
	c := checkByID(t, res, "log")
	if c.Status != report.Warn {
		t.Fatalf("log check %s: %s, want a warning", c.Status, c.Summary)
	}
	if !strings.Contains(c.Summary, "module flaky_auth loaded, but raised while handling a request: RuntimeError: backend refused bob") {
		t.Errorf("log summary %q does not name the module and the exception", c.Summary)
	}
	if strings.Contains(c.Summary, bobPassword) || !strings.Contains(c.Summary, restart.Masked) {
		t.Errorf("log summary %q does not mask bob's password", c.Summary)
	}
	if !strings.Contains(c.Hint, "cfyauth test flaky_auth") {
		t.Errorf("log hint %q does not say how to reproduce the failure", c.Hint)
	}
	if len(res.Tracebacks) != 1 || res.Tracebacks[0].Origin != restart.OriginRequest {
		t.Fatalf("tracebacks %+v, want one raised while handling a request", res.Tracebacks)
	}
	if strings.Contains(res.Tracebacks[0].Exception, bobPassword) {
		t.Errorf("traceback exception %q repeats bob's password", res.Tracebacks[0].Exception)
	}
	if c := checkByID(t, res, "idp"); c.Status != report.Pass {
		t.Errorf("idp check %s: %s; the module stayed loaded", c.Status, c.Summary)
	}
}

func TestRestartLoginTracebackIsWarning(t *testing.T) {
	t.Parallel()
	st := restStandin(t)
	f := newStandin(t, "cfy-login-traceback.service", 0, st, map[string]string{"flaky_auth": flakyModule})
	setAdminPassword(t, f.layout)
	g := f.gate(t, 2*time.Second, 30*time.Second, &restart.Credentials{Username: "admin", Password: adminPassword})
	checkLoginTracebackIsWarning(t, g)
}

func TestSupervisordLoginTracebackIsWarning(t *testing.T) {
	t.Parallel()
	f := newSupStandin(t, "cfy-sup-login-traceback", restStandin(t), map[string]string{"flaky_auth": flakyModule}, false)
	setAdminPassword(t, f.layout)
	g := f.gate(t, 2*time.Second, 30*time.Second, &restart.Credentials{Username: "admin", Password: adminPassword})
	checkLoginTracebackIsWarning(t, g)
}

// leakingModule fails to import with the admin password in its exception
// text, as a module that prints its configuration might.
func leakingModule(layout *manager.Layout) string {
	return fmt.Sprintf(`from cloudify_premium.authentication.auth_base import AuthBase

with open(%q) as f:
    password = f.read().strip()
raise RuntimeError("cannot bind as admin with password " + password)
`, filepath.Join(layout.Root, standin.StateDir, "admin_password"))
}

// A module that fails at import fails the gate. The failure shows the
// traceback from the REST log with every known password masked, and the
// hint names the commands that work for a module placed by hand.
func TestRestartLoadFailureMasksSecrets(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-leaking.service", 0, restStandin(t), nil)
	setAdminPassword(t, f.layout)
	writeModule(t, f.layout, "leaky_auth", leakingModule(f.layout))
	g := f.gate(t, 0, 30*time.Second, &restart.Credentials{Username: "admin", Password: adminPassword})
	g.Options.Secrets = []string{adminPassword}
	g.Options.ModuleState = func(name string) string {
		if name == "leaky_auth" {
			return restart.ModuleUnmanaged
		}
		return ""
	}

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseLog {
		t.Fatalf("healthy=%v phase=%q (%s), want the log phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	if !strings.Contains(res.Failure, "module leaky_auth failed to load: RuntimeError: cannot bind as admin with password "+restart.Masked) {
		t.Errorf("failure %q does not name the module with the password masked", res.Failure)
	}
	tail := tailText(res)
	if !strings.Contains(tail, "Traceback (most recent call last):") {
		t.Errorf("log tail is not the traceback:\n%s", tail)
	}
	for _, text := range []string{tail, res.Failure, res.Tracebacks[0].Exception, fmt.Sprint(res.Checks)} {
		if strings.Contains(text, adminPassword) {
			t.Errorf("the admin password is not masked in:\n%s", text)
		}
	}
	if !strings.Contains(res.Hint, "cfyauth adopt leaky_auth --skip-validation', then 'cfyauth disable leaky_auth --restart'") {
		t.Errorf("hint %q does not take an unmanaged module under management first", res.Hint)
	}
}

// A service that exits a second after it started, without a line of
// output, gets a hint that names where the service manager's reason is,
// not one that points at output that is not there.
func TestRestartSilentCrashHint(t *testing.T) {
	t.Parallel()
	sd := needSystemd(t)
	unit := "cfy-silent-crash.service"
	if err := sd.AddUnit(unit, "[Service]\nType=simple\nExecStart=/bin/sh -c 'sleep 1; exit 3'\n"); err != nil {
		t.Fatal(err)
	}
	if res, err := sd.StartUnit(unit); err != nil || res != "done" {
		t.Fatalf("start %s: result %q, error %v", unit, res, err)
	}
	t.Cleanup(func() { _, _ = sd.StopUnit(unit) })
	mgr, err := restart.DialSystemd(context.Background(), sd.BusAddress, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	g := &restart.Gate{Manager: mgr, Options: restart.GateOptions{Services: []string{unit}, Settle: 3 * time.Second, Timeout: 20 * time.Second}}

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseSettle {
		t.Fatalf("healthy=%v phase=%q (%s), want the settle phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	if res.LogTail != nil {
		t.Fatalf("log tail %+v, want none: the unit writes nothing", res.LogTail)
	}
	if strings.Contains(res.Hint, "shown with this failure") {
		t.Errorf("hint %q points at output that is not there", res.Hint)
	}
	if !strings.Contains(res.Hint, "systemctl status "+unit) {
		t.Errorf("hint %q does not name where systemd's reason is", res.Hint)
	}
	if c := checkByID(t, res, "settle"); c.Hint != res.Hint {
		t.Errorf("settle check hint %q differs from the result's %q", c.Hint, res.Hint)
	}
}
