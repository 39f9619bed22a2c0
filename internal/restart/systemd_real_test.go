package restart_test

import (
	"context"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restart"
	"github.com/cfyauth/cfyauth/internal/restart/restarttest"
)

// The real systemd user manager shared by every test in this package.
var (
	realSystemd *restarttest.Systemd
	systemdErr  error
)

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	dir, err := os.MkdirTemp("", "cfyauth-restart-systemd-")
	if err == nil {
		realSystemd, systemdErr = restarttest.Start(dir)
	} else {
		systemdErr = err
	}
	startTestSupervisord()
	code := m.Run()
	if realSystemd != nil {
		if err := realSystemd.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	stopTestSupervisord()
	os.Exit(code)
}

// needSystemd returns the shared manager, or skips (fails with
// CFYAUTH_REQUIRE_SERVERS=1) when it could not start.
func needSystemd(t *testing.T) *restarttest.Systemd {
	t.Helper()
	restarttest.SkipUnavailable(t, "systemd", systemdErr)
	return realSystemd
}

const adminPassword = "admin-secret"

// standinFixture is one stand-in unit with its own sandbox manager root.
type standinFixture struct {
	sd     *restarttest.Systemd
	unit   string
	layout *manager.Layout
	url    string
}

// newStandin creates a sandbox root holding the given modules, writes a unit
// running the stand-in on it, and starts the unit.
func newStandin(t *testing.T, unit string, port int, st restarttest.Standin, modules map[string]string) *standinFixture {
	t.Helper()
	sd := needSystemd(t)
	layout := newLayout(t, "5.1")
	root := layout.Root
	for name, src := range modules {
		writeModule(t, layout, name, src)
	}
	var err error
	if port == 0 {
		if port, err = restarttest.FreePort(); err != nil {
			t.Fatal(err)
		}
	} else if !restarttest.PortFree(port) {
		t.Fatalf("port 127.0.0.1:%d is in use; the test unit needs it", port)
	}
	st.Root, st.Port = root, port
	if err := sd.AddUnit(unit, sd.StandinUnit(unit, st)); err != nil {
		t.Fatal(err)
	}
	if res, err := sd.StartUnit(unit); err != nil || res != "done" {
		t.Fatalf("start %s: result %q, error %v", unit, res, err)
	}
	t.Cleanup(func() { _, _ = sd.StopUnit(unit) })
	f := &standinFixture{sd: sd, unit: unit, layout: layout, url: fmt.Sprintf("http://127.0.0.1:%d/api/v3.1/ok", port)}
	if err := restarttest.WaitListening(port); err != nil {
		t.Fatal(err)
	}
	return f
}

func writeModule(t *testing.T, layout *manager.Layout, name, src string) {
	t.Helper()
	dir, err := layout.Authenticators()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".py"), []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
}

// gate returns a health gate for the fixture's unit on the real systemd.
func (f *standinFixture) gate(t *testing.T, settle, timeout time.Duration, creds *restart.Credentials) *restart.Gate {
	t.Helper()
	mgr, err := restart.DialSystemd(context.Background(), f.sd.BusAddress, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	client, err := restart.NewHTTPClient("")
	if err != nil {
		t.Fatal(err)
	}
	return &restart.Gate{
		Manager: mgr,
		HTTP:    client,
		Options: restart.GateOptions{
			Services:    []string{f.unit},
			Settle:      settle,
			Timeout:     timeout,
			HealthURL:   f.url,
			Credentials: creds,
			LogFiles:    restart.RESTLogFiles(f.layout, false),
			Modules:     func() ([]string, error) { return restart.EnabledModules(f.layout) },
		},
	}
}

const goodModule = `from cloudify_premium.authentication.auth_base import AuthBase


class HeaderAuth(AuthBase):
    def _authenticate_request(self, request):
        return None


configure = HeaderAuth().configure
`

const raisingModule = `from cloudify_premium.authentication.auth_base import AuthBase

raise RuntimeError("cannot reach the token service")
`

// checkByID returns the first check with the ID, or fails the test.
func checkByID(t *testing.T, res *restart.Result, id string) report.Check {
	t.Helper()
	for _, c := range res.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", id, res.Checks)
	return report.Check{}
}

func tailText(res *restart.Result) string {
	if res.LogTail == nil {
		return ""
	}
	return strings.Join(res.LogTail.Lines, "\n")
}

func TestRestartHealthyService(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cloudify-restservice.service", 38080, restarttest.Standin{}, map[string]string{"header_auth": goodModule})
	g := f.gate(t, time.Second, 30*time.Second, &restart.Credentials{Username: "admin", Password: adminPassword})
	var phases []restart.Phase
	g.Progress = func(p restart.Phase) { phases = append(phases, p) }

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Healthy {
		t.Fatalf("not healthy: %s phase: %s; checks %+v", res.FailedPhase, res.Failure, res.Checks)
	}
	if res.Jobs[0].Result != "done" {
		t.Errorf("job result = %q, want done", res.Jobs[0].Result)
	}
	before, after := res.Before[0], res.After[0]
	if before.MainPID == after.MainPID || after.MainPID == 0 {
		t.Errorf("main PID %d -> %d, want a new one", before.MainPID, after.MainPID)
	}
	if !after.HasInvocationID || after.InvocationID == before.InvocationID {
		t.Errorf("invocation ID %q -> %q, want a new one", before.InvocationID, after.InvocationID)
	}
	for _, id := range []string{"job", "process", "running", "settle", "rest", "log", "idp"} {
		if c := checkByID(t, res, id); c.Status != report.Pass {
			t.Errorf("%s check: %s %s", id, c.Status, c.Summary)
		}
	}
	if s := checkByID(t, res, "idp").Summary; !strings.Contains(s, "header_auth") {
		t.Errorf("idp summary %q does not name header_auth", s)
	}
	if phases[0] != restart.PhaseJob || phases[len(phases)-1] != restart.PhaseIdP {
		t.Errorf("progress phases = %v, want job first and idp last", phases)
	}
	if res.LogTail != nil {
		t.Errorf("a healthy restart collected a log tail: %+v", res.LogTail)
	}
}

func TestRestartJobFails(t *testing.T) {
	t.Parallel()
	sd := needSystemd(t)
	unit := "cfy-missing-exec.service"
	if err := sd.AddUnit(unit, restarttest.FailingUnit()); err != nil {
		t.Fatal(err)
	}
	mgr, err := restart.DialSystemd(context.Background(), sd.BusAddress, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	g := &restart.Gate{Manager: mgr, Options: restart.GateOptions{Services: []string{unit}, Timeout: 20 * time.Second}}

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseJob {
		t.Fatalf("healthy=%v phase=%q, want the job phase to fail", res.Healthy, res.FailedPhase)
	}
	if res.Jobs[0].Result != "failed" {
		t.Errorf("job result = %q, want failed", res.Jobs[0].Result)
	}
	if !strings.Contains(res.Failure, "the job failed") {
		t.Errorf("failure %q does not explain the job result", res.Failure)
	}
	if c := checkByID(t, res, "rest"); c.Status != report.Skip {
		t.Errorf("rest check after a failed job: %s, want skip", c.Status)
	}
	// No journal and no REST log: the hint names systemd's own view.
	if res.LogTail != nil || !strings.Contains(res.Hint, "systemctl status "+unit) || strings.Contains(res.Hint, "shown with this failure") {
		t.Errorf("hint %q with log tail %+v, want one naming 'systemctl status' when there is no output", res.Hint, res.LogTail)
	}
}

func TestRestartCrashAfterStart(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-crash.service", 0, restarttest.Standin{Args: []string{"--crash-after", "2"}}, nil)
	g := f.gate(t, 3*time.Second, 30*time.Second, nil)

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy {
		t.Fatal("a service that exits 2 s after start was reported healthy")
	}
	if res.FailedPhase != restart.PhaseSettle {
		t.Errorf("failed phase = %q (%s), want settle", res.FailedPhase, res.Failure)
	}
	if res.Jobs[0].Result != "done" {
		t.Errorf("job result = %q; systemd itself reports done for such a service", res.Jobs[0].Result)
	}
	if !strings.Contains(res.Failure, "stopped") {
		t.Errorf("failure %q does not say the service stopped", res.Failure)
	}
	if !strings.Contains(tailText(res), "worker crashed") {
		t.Errorf("log tail lacks the crash line:\n%s", tailText(res))
	}
}

func TestRestartFlappingService(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-flap.service", 0, restarttest.Standin{Args: []string{"--crash-after", "1"}, Restart: "always"}, nil)
	g := f.gate(t, 3*time.Second, 30*time.Second, nil)

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseSettle {
		t.Fatalf("healthy=%v phase=%q (%s), want the settle phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
}

func TestRestartWaitsForSlowREST(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-slow.service", 0, restarttest.Standin{Args: []string{"--fail-ok-for", "5"}}, nil)
	g := f.gate(t, time.Second, 30*time.Second, nil)

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Healthy {
		t.Fatalf("failed in %s: %s", res.FailedPhase, res.Failure)
	}
	rest := checkByID(t, res, "rest")
	attempts := 0
	for _, e := range rest.Evidence {
		if e.Key == "attempts" {
			attempts, _ = strconv.Atoi(e.Value)
		}
	}
	if attempts < 2 {
		t.Errorf("REST returned 200 after %d attempt(s); the stand-in returns 500 for 5 s first", attempts)
	}
}

func TestRestartRESTNeverReady(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-never.service", 0, restarttest.Standin{Args: []string{"--never-ready"}}, nil)
	g := f.gate(t, time.Second, 4*time.Second, nil)

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseREST {
		t.Fatalf("healthy=%v phase=%q (%s), want the rest phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	if !strings.Contains(res.Failure, "HTTP 500") {
		t.Errorf("failure %q does not give the last response", res.Failure)
	}
	if res.LogTail == nil || !strings.Contains(tailText(res), "database not reachable") {
		t.Errorf("log tail lacks the service's own lines: %+v", res.LogTail)
	}
}

func TestRestartModuleTraceback(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-traceback.service", 0, restarttest.Standin{}, map[string]string{"token_auth": raisingModule})
	g := f.gate(t, time.Second, 30*time.Second, nil)

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseLog {
		t.Fatalf("healthy=%v phase=%q (%s), want the log phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	if !strings.Contains(res.Failure, "token_auth") || !strings.Contains(res.Failure, "RuntimeError") {
		t.Errorf("failure %q does not name the module and the exception", res.Failure)
	}
	if c := checkByID(t, res, "rest"); c.Status != report.Pass {
		t.Errorf("rest check = %s; the service itself is up", c.Status)
	}
	if !strings.Contains(tailText(res), "Traceback (most recent call last):") {
		t.Errorf("log tail is not the traceback:\n%s", tailText(res))
	}
}

func TestRestartAuthenticatorLost(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-idp.service", 0, restarttest.Standin{}, map[string]string{"header_auth": goodModule})
	creds := &restart.Credentials{Username: "admin", Password: adminPassword}
	g := f.gate(t, 0, 30*time.Second, creds)
	// configure returning None takes the module out of the pool without a
	// traceback, so only /api/v3.1/idp shows it is gone.
	writeModule(t, f.layout, "header_auth", strings.Replace(goodModule,
		"configure = HeaderAuth().configure", "def configure(logger):\n    return None", 1))

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseIdP {
		t.Fatalf("healthy=%v phase=%q (%s), want the idp phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	if !strings.Contains(res.Failure, "missing now: header_auth") {
		t.Errorf("failure %q does not name the lost authenticator", res.Failure)
	}
}

func TestRestartUnknownUnit(t *testing.T) {
	t.Parallel()
	sd := needSystemd(t)
	mgr, err := restart.DialSystemd(context.Background(), sd.BusAddress, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	g := &restart.Gate{Manager: mgr, Options: restart.GateOptions{Services: []string{"cfy-does-not-exist.service"}}}

	res, err := g.Restart(context.Background())
	if res != nil {
		t.Errorf("result for an unknown unit: %+v", res)
	}
	e := apperr.As(err)
	if e.Code != "unit_not_found" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Fatalf("error %v (code %q, exit %d), want unit_not_found with exit 3", err, e.Code, apperr.ExitCodeOf(err))
	}
	if !strings.Contains(e.Message, "cfy-does-not-exist.service") {
		t.Errorf("message %q does not name the unit", e.Message)
	}
}

func TestDialNoBus(t *testing.T) {
	t.Parallel()
	addr := "unix:path=" + filepath.Join(t.TempDir(), "no-bus-here")
	_, err := restart.DialSystemd(context.Background(), addr, nil)
	e := apperr.As(err)
	if e.Code != "no_bus" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Fatalf("error %v (code %q), want no_bus with exit 3", err, e.Code)
	}
	if !strings.Contains(e.Message, addr) {
		t.Errorf("message %q does not name the address", e.Message)
	}
}

// TestDialAsNonRootDenied runs the dial as user nobody in a child process:
// the bus socket's folder is root's with mode 0700, as a system bus socket
// guarded by its mode would be.
func TestDialAsNonRootDenied(t *testing.T) {
	t.Parallel()
	sd := needSystemd(t)
	bin := copyTestBinary(t)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{helperEnv + "=dial", "HELPER_BUS=" + sd.BusAddress}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	got := strings.TrimSpace(string(out))
	if !strings.HasPrefix(got, "permission_denied 3 ") {
		t.Fatalf("dial as nobody: %q, want permission_denied with exit 3", got)
	}
	if !strings.Contains(got, "run cfyauth as root") {
		t.Errorf("no hint to run as root in %q", got)
	}
}

const helperEnv = "CFYAUTH_RESTART_TEST_HELPER"

// helperMain runs the child-process part of a test and reports whether it did.
func helperMain() bool {
	switch os.Getenv(helperEnv) {
	case "dial":
		_, err := restart.DialSystemd(context.Background(), os.Getenv("HELPER_BUS"), nil)
		e := apperr.As(err)
		if err == nil {
			fmt.Println("connected")
		} else {
			fmt.Println(e.Code, apperr.ExitCodeOf(err), e.Message, strings.Join(e.Hints, " "))
		}
		return true
	}
	return false
}

// copyTestBinary copies the test binary where user nobody can run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "cfyauth-helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestRestartBrokenUnitFile(t *testing.T) {
	t.Parallel()
	sd := needSystemd(t)
	unit := "cfy-no-execstart.service"
	if err := sd.AddUnit(unit, "[Service]\nType=simple\n"); err != nil {
		t.Fatal(err)
	}
	mgr, err := restart.DialSystemd(context.Background(), sd.BusAddress, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	g := &restart.Gate{Manager: mgr, Options: restart.GateOptions{Services: []string{unit}}}

	_, err = g.Restart(context.Background())
	e := apperr.As(err)
	if e.Code != "unit_load_failed" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Fatalf("error %v (code %q), want unit_load_failed with exit 3", err, e.Code)
	}
	if !strings.Contains(strings.Join(e.Hints, " "), "systemctl status "+unit) {
		t.Errorf("hints %q do not point at systemctl status", e.Hints)
	}
}
