package restart_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restart"
	"github.com/cfyauth/cfyauth/internal/restart/restarttest"
	"github.com/cfyauth/cfyauth/internal/supervisor"
)

// The real supervisord shared by every test in this package. Its socket is
// inside supRoot, a 7.0 sandbox whose /etc/supervisord.conf names it, so
// that a manager root finds it the way a real manager does.
var (
	realSupervisord *restarttest.Supervisord
	supervisordErr  error
	supRoot         string
	supDir          string
)

func startTestSupervisord() {
	dir, err := os.MkdirTemp("", "cfyauth-restart-sup-")
	if err != nil {
		supervisordErr = err
		return
	}
	supDir = dir
	supRoot = filepath.Join(dir, "mgr70")
	if _, err := manager.InitSandbox(supRoot, manager.SandboxOptions{Release: "7.0", Now: time.Now()}); err != nil {
		supervisordErr = err
		return
	}
	conf := restarttest.ManagerConfig(manager.SupervisordSocket)
	if err := os.WriteFile(filepath.Join(supRoot, manager.SupervisordConf), []byte(conf), 0o600); err != nil {
		supervisordErr = err
		return
	}
	realSupervisord, supervisordErr = restarttest.StartSupervisord(filepath.Join(dir, "daemon"),
		filepath.Join(supRoot, manager.SupervisordSocket))
}

func stopTestSupervisord() {
	if realSupervisord != nil {
		if err := realSupervisord.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if supDir != "" {
		os.RemoveAll(supDir)
	}
}

// needSupervisord returns the shared supervisord, or skips (fails with
// CFYAUTH_REQUIRE_SERVERS=1) when it could not start.
func needSupervisord(t *testing.T) *restarttest.Supervisord {
	t.Helper()
	restarttest.SkipUnavailable(t, "supervisord", supervisordErr)
	return realSupervisord
}

// supTarget reaches the shared supervisord with the test credentials.
func supTarget(sup *restarttest.Supervisord) restart.SupervisordTarget {
	return restart.SupervisordTarget{Socket: sup.Socket, SocketSource: "the test", Username: restarttest.SupervisorUser,
		Password: restarttest.SupervisorPassword}
}

// supFixture is one supervisord program running the stand-in on its own
// sandbox root.
type supFixture struct {
	sup     *restarttest.Supervisord
	program string
	layout  *manager.Layout
	url     string
}

// newSupStandin creates a 7.0 sandbox holding the given modules and adds a
// program running the stand-in on it. With redirectStderr the program has
// no stderr log, as when its output goes to syslog.
func newSupStandin(t *testing.T, program string, st restarttest.Standin, modules map[string]string, redirectStderr bool) *supFixture {
	t.Helper()
	sup := needSupervisord(t)
	layout := newLayout(t, "7.0")
	for name, src := range modules {
		writeModule(t, layout, name, src)
	}
	port, err := restarttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	st.Root, st.Port = layout.Root, port
	info, err := sup.AddProgram(program, sup.StandinProgram(program, st, redirectStderr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.RemoveProgram(program) })
	if info.State != supervisor.StateRunning {
		t.Fatalf("program %s is %s after it was added", program, info.StateName)
	}
	if err := restarttest.WaitListening(port); err != nil {
		t.Fatal(err)
	}
	return &supFixture{sup: sup, program: program, layout: layout, url: fmt.Sprintf("http://127.0.0.1:%d/api/v3.1/ok", port)}
}

func dialTestSupervisord(t *testing.T, sup *restarttest.Supervisord) *restart.Supervisord {
	t.Helper()
	mgr, err := restart.DialSupervisord(context.Background(), supTarget(sup))
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

func (f *supFixture) gate(t *testing.T, settle, timeout time.Duration, creds *restart.Credentials) *restart.Gate {
	t.Helper()
	client, err := restart.NewHTTPClient("")
	if err != nil {
		t.Fatal(err)
	}
	return &restart.Gate{
		Manager: dialTestSupervisord(t, f.sup),
		HTTP:    client,
		Options: restart.GateOptions{
			Services:    []string{f.program},
			Settle:      settle,
			Timeout:     timeout,
			HealthURL:   f.url,
			Credentials: creds,
			LogFiles:    restart.RESTLogFiles(f.layout, false),
			Modules:     func() ([]string, error) { return restart.EnabledModules(f.layout) },
		},
	}
}

func TestSupervisordRestartHealthy(t *testing.T) {
	t.Parallel()
	f := newSupStandin(t, "cfy-sup-healthy", restarttest.Standin{}, map[string]string{"header_auth": goodModule}, false)
	g := f.gate(t, time.Second, 30*time.Second, &restart.Credentials{Username: "admin", Password: adminPassword})

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Healthy {
		t.Fatalf("not healthy: %s phase: %s; checks %+v", res.FailedPhase, res.Failure, res.Checks)
	}
	if res.Jobs[0].Result != "done" || !strings.Contains(res.Jobs[0].Summary, "supervisord stopped cfy-sup-healthy and started it again") {
		t.Errorf("job = %+v, want done with a supervisord summary", res.Jobs[0])
	}
	before, after := res.Before[0], res.After[0]
	if before.MainPID == after.MainPID || after.MainPID == 0 {
		t.Errorf("main PID %d -> %d, want a new one", before.MainPID, after.MainPID)
	}
	if after.ActiveState != "active" || after.SubState != "running" {
		t.Errorf("state after = %s (%s), want active (running)", after.ActiveState, after.SubState)
	}
	for _, id := range []string{"job", "process", "running", "settle", "rest", "log", "idp"} {
		if c := checkByID(t, res, id); c.Status != report.Pass {
			t.Errorf("%s check: %s %s", id, c.Status, c.Summary)
		}
	}
	process := checkByID(t, res, "process")
	if !strings.Contains(fmt.Sprint(process.Evidence), "not provided by supervisord") {
		t.Errorf("process evidence %v does not say supervisord has no invocation ID", process.Evidence)
	}
}

func TestSupervisordStartFails(t *testing.T) {
	t.Parallel()
	sup := needSupervisord(t)
	cases := []struct {
		program, command, want string
	}{
		{"cfy-sup-nofile", "/nonexistent/opt/manager/env/bin/gunicorn manager_rest.wsgi:app", "its command does not exist (NO_FILE)"},
		{"cfy-sup-false", "/bin/false", "(SPAWN_ERROR); state FATAL, Exited too quickly"},
	}
	for _, tc := range cases {
		t.Run(tc.program, func(t *testing.T) {
			if _, err := sup.AddProgram(tc.program, sup.ProgramBody(tc.program, tc.command, false)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sup.RemoveProgram(tc.program) })
			g := &restart.Gate{Manager: dialTestSupervisord(t, sup),
				Options: restart.GateOptions{Services: []string{tc.program}, Timeout: 20 * time.Second}}

			res, err := g.Restart(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Healthy || res.FailedPhase != restart.PhaseJob {
				t.Fatalf("healthy=%v phase=%q (%s), want the job phase to fail", res.Healthy, res.FailedPhase, res.Failure)
			}
			if res.Jobs[0].Result != "failed" {
				t.Errorf("job result = %q, want failed", res.Jobs[0].Result)
			}
			if !strings.Contains(res.Failure, tc.want) {
				t.Errorf("failure %q does not say %q", res.Failure, tc.want)
			}
			// Neither program writes a line, so the hint names supervisord's
			// own view instead of output that is not there.
			if res.LogTail != nil && len(res.LogTail.Lines) > 0 {
				t.Fatalf("log tail %+v, want none", res.LogTail)
			}
			if !strings.Contains(res.Hint, "supervisorctl -c /etc/supervisord.conf status "+tc.program) || strings.Contains(res.Hint, "shown with this failure") {
				t.Errorf("hint %q, want one naming 'supervisorctl status' when there is no output", res.Hint)
			}
		})
	}
}

func TestSupervisordCrashAfterStart(t *testing.T) {
	t.Parallel()
	f := newSupStandin(t, "cfy-sup-crash", restarttest.Standin{Args: []string{"--crash-after", "2"}}, nil, false)
	g := f.gate(t, 3*time.Second, 30*time.Second, nil)

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseSettle {
		t.Fatalf("healthy=%v phase=%q (%s), want the settle phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	if res.Jobs[0].Result != "done" {
		t.Errorf("job result = %q; supervisord counts the start done after startsecs", res.Jobs[0].Result)
	}
	if !strings.Contains(res.Failure, "it stopped: failed (exited), result exit-code, exit status 1") {
		t.Errorf("failure %q does not say the program exited", res.Failure)
	}
	// The tail comes from the program's stderr log through
	// tailProcessStderrLog, and holds only what the restart added.
	if res.LogTail == nil || !strings.HasSuffix(res.LogTail.Source, "cfy-sup-crash.err") {
		t.Fatalf("log tail %+v, want the program's stderr log", res.LogTail)
	}
	text := tailText(res)
	if !strings.Contains(text, "worker crashed") {
		t.Errorf("log tail lacks the crash line:\n%s", text)
	}
	if strings.Count(text, "starting REST service stand-in") != 1 {
		t.Errorf("log tail holds output from before the restart:\n%s", text)
	}
}

func TestSupervisordLateREST(t *testing.T) {
	t.Parallel()
	f := newSupStandin(t, "cfy-sup-slow", restarttest.Standin{Args: []string{"--fail-ok-for", "4"}}, nil, false)
	g := f.gate(t, time.Second, 30*time.Second, nil)

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Healthy {
		t.Fatalf("failed in %s: %s", res.FailedPhase, res.Failure)
	}
	attempts := 0
	for _, e := range checkByID(t, res, "rest").Evidence {
		if e.Key == "attempts" {
			attempts, _ = strconv.Atoi(e.Value)
		}
	}
	if attempts < 2 {
		t.Errorf("REST returned 200 after %d attempt(s); the stand-in returns 500 for 4 s first", attempts)
	}
}

func TestSupervisordNeverReadyFallsBackToRESTLog(t *testing.T) {
	t.Parallel()
	f := newSupStandin(t, "cfy-sup-never", restarttest.Standin{Args: []string{"--never-ready"}}, nil, true)
	g := f.gate(t, 0, 4*time.Second, nil)

	res, err := g.Restart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.FailedPhase != restart.PhaseREST {
		t.Fatalf("healthy=%v phase=%q (%s), want the rest phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	// With redirect_stderr the program has no stderr log (NO_FILE), so the
	// tail comes from the REST log file.
	if res.LogTail == nil || !strings.HasSuffix(res.LogTail.Source, "cloudify-rest-service.log") {
		t.Fatalf("log tail %+v, want the REST log file", res.LogTail)
	}
	if !strings.Contains(tailText(res), "database not reachable") {
		t.Errorf("log tail lacks the service's own lines:\n%s", tailText(res))
	}
}

func TestSupervisordModuleTraceback(t *testing.T) {
	t.Parallel()
	f := newSupStandin(t, "cfy-sup-traceback", restarttest.Standin{}, map[string]string{"token_auth": raisingModule}, false)
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
}

func TestSupervisordUnknownProgram(t *testing.T) {
	t.Parallel()
	sup := needSupervisord(t)
	g := &restart.Gate{Manager: dialTestSupervisord(t, sup), Options: restart.GateOptions{Services: []string{"cfy-no-such-program.service"}}}

	res, err := g.Restart(context.Background())
	if res != nil {
		t.Errorf("result for an unknown program: %+v", res)
	}
	e := apperr.As(err)
	if e.Code != "program_not_found" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Fatalf("error %v (code %q), want program_not_found with exit 3", err, e.Code)
	}
	if !strings.Contains(e.Message, "no program cfy-no-such-program") {
		t.Errorf("message %q does not name the program", e.Message)
	}
}

func TestSupervisordNoWait(t *testing.T) {
	t.Parallel()
	f := newSupStandin(t, "cfy-sup-nowait", restarttest.Standin{}, nil, false)
	mgr := dialTestSupervisord(t, f.sup)
	before, err := mgr.Status(context.Background(), f.program)
	if err != nil {
		t.Fatal(err)
	}
	job, err := mgr.Restart(context.Background(), f.program, false)
	if err != nil {
		t.Fatal(err)
	}
	if job.Result != "done" || !strings.Contains(job.Summary, "without waiting") {
		t.Errorf("job = %+v, want done without waiting", job)
	}
	after, err := mgr.Status(context.Background(), f.program)
	if err != nil {
		t.Fatal(err)
	}
	if after.MainPID == before.MainPID || after.MainPID == 0 {
		t.Errorf("main PID %d -> %d right after the start, want the new process", before.MainPID, after.MainPID)
	}
	if after.ActiveState != "activating" && after.ActiveState != "active" {
		t.Errorf("state right after a start without waiting: %s (%s)", after.ActiveState, after.SubState)
	}
}

func TestSupervisordSocketProblems(t *testing.T) {
	t.Parallel()
	sup := needSupervisord(t)
	dir := t.TempDir()

	refused := filepath.Join(dir, "refused.sock")
	l, err := net.Listen("unix", refused)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	cases := []struct {
		name   string
		target restart.SupervisordTarget
		code   string
		hint   string
	}{
		{"missing", restart.SupervisordTarget{Socket: filepath.Join(dir, "none.sock")}, "no_supervisord_socket", "systemctl status supervisord"},
		{"refused", restart.SupervisordTarget{Socket: refused}, "supervisord_refused", "does not fall back to systemd"},
		{"no credentials", restart.SupervisordTarget{Socket: sup.Socket}, "supervisord_unauthorized", "[supervisorctl] section"},
		{"wrong password", restart.SupervisordTarget{Socket: sup.Socket, Username: restarttest.SupervisorUser, Password: "wrong-test-password-42"},
			"supervisord_unauthorized", "check the username and password"},
	}
	for _, tc := range cases {
		_, err := restart.DialSupervisord(context.Background(), tc.target)
		e := apperr.As(err)
		if e.Code != tc.code || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
			t.Errorf("%s: error %v (code %q), want %s with exit 3", tc.name, err, e.Code, tc.code)
			continue
		}
		if !strings.Contains(e.Message, tc.target.Socket) {
			t.Errorf("%s: message %q does not name the socket", tc.name, e.Message)
		}
		if !strings.Contains(strings.Join(e.Hints, " "), tc.hint) {
			t.Errorf("%s: hints %q lack %q", tc.name, e.Hints, tc.hint)
		}
		if strings.Contains(e.Message+strings.Join(e.Hints, " "), "wrong-test-password-42") {
			t.Errorf("%s: the password reached the message: %q %q", tc.name, e.Message, e.Hints)
		}
	}
}
