package restart

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/report"
)

const fakeUnitName = "cloudify-restservice.service"

// okAlways returns 200 for /ok and 404 for every other path.
func okAlways(path string, _ time.Duration, _ *Credentials) (HTTPResponse, error) {
	if path == okPath {
		return HTTPResponse{StatusCode: 200, Body: []byte(`"OK"`)}, nil
	}
	return HTTPResponse{StatusCode: 404}, nil
}

type fakeEnv struct {
	clock *fakeClock
	bus   *fakeBus
	http  *fakeHTTP
	unit  *fakeUnit
	gate  *Gate
}

// newFakeEnv returns a gate on a fake systemd with one running unit, a
// 3 s settle window and a 90 s timeout.
func newFakeEnv(t *testing.T) *fakeEnv {
	t.Helper()
	clock := newFakeClock()
	bus := newFakeBus(clock)
	unit := bus.addRunning(fakeUnitName)
	http := &fakeHTTP{clock: clock, respond: okAlways, start: clock.Now()}
	gate := &Gate{
		Manager: NewSystemd(bus, nil, ""),
		HTTP:    http,
		Clock:   clock,
		Options: GateOptions{
			Services:  []string{fakeUnitName},
			Settle:    3 * time.Second,
			Timeout:   90 * time.Second,
			HealthURL: "http://127.0.0.1:8100/api/v3.1/ok",
		},
	}
	return &fakeEnv{clock: clock, bus: bus, http: http, unit: unit, gate: gate}
}

func (e *fakeEnv) restart(t *testing.T) *Result {
	t.Helper()
	res, err := e.gate.Restart(context.Background())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	return res
}

func findCheck(t *testing.T, res *Result, id string) report.Check {
	t.Helper()
	for _, c := range res.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no %s check among %+v", id, res.Checks)
	return report.Check{}
}

func evidence(c report.Check, key string) string {
	for _, e := range c.Evidence {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

func TestGateHealthyOnFakeSystemd(t *testing.T) {
	e := newFakeEnv(t)
	res := e.restart(t)
	if !res.Healthy {
		t.Fatalf("failed in %s: %s", res.FailedPhase, res.Failure)
	}
	if got := res.After[0].MainPID; got != 1001 {
		t.Errorf("main PID after = %d, want 1001", got)
	}
	if res.Elapsed < 3*time.Second {
		t.Errorf("elapsed %s on the fake clock, want at least the 3 s settle window", res.Elapsed)
	}
	if c := findCheck(t, res, "idp"); c.Status != report.Skip {
		t.Errorf("idp check without credentials = %s, want skip", c.Status)
	}
}

func TestGateOldSystemdFallback(t *testing.T) {
	e := newFakeEnv(t)
	e.bus.old = true
	res := e.restart(t)
	if !res.Healthy {
		t.Fatalf("failed in %s: %s", res.FailedPhase, res.Failure)
	}
	if res.After[0].HasInvocationID || res.After[0].HasNRestarts {
		t.Errorf("systemd 219 has no InvocationID or NRestarts, got %+v", res.After[0])
	}
	c := findCheck(t, res, "process")
	if !strings.Contains(evidence(c, "invocation_id"), "older than 232") {
		t.Errorf("process evidence does not say InvocationID is missing: %+v", c.Evidence)
	}
	if evidence(c, "main_started_after") == evidence(c, "main_started_before") {
		t.Errorf("main process start time did not change: %+v", c.Evidence)
	}
}

func TestGateSameProcessNotRestarted(t *testing.T) {
	for _, old := range []bool{false, true} {
		t.Run(fmt.Sprintf("old=%v", old), func(t *testing.T) {
			e := newFakeEnv(t)
			e.bus.old = old
			e.bus.sameProcess = true
			res := e.restart(t)
			if res.Healthy || res.FailedPhase != PhaseProcess {
				t.Fatalf("healthy=%v phase=%q, want the process phase to fail", res.Healthy, res.FailedPhase)
			}
			if !strings.Contains(res.Failure, "main process is still 500") {
				t.Errorf("failure %q does not name the unchanged PID", res.Failure)
			}
		})
	}
}

func TestGateJobResults(t *testing.T) {
	cases := map[string]string{
		"failed":     "the job failed",
		"timeout":    "took longer than",
		"canceled":   "was canceled",
		"dependency": "a unit it requires failed",
		"skipped":    "skipped the restart",
		"weird":      `ended with result "weird"`,
	}
	for result, want := range cases {
		t.Run(result, func(t *testing.T) {
			e := newFakeEnv(t)
			e.bus.jobResult = result
			res := e.restart(t)
			if res.Healthy || res.FailedPhase != PhaseJob {
				t.Fatalf("healthy=%v phase=%q, want the job phase to fail", res.Healthy, res.FailedPhase)
			}
			if res.Jobs[0].Result != result {
				t.Errorf("job result = %q, want %q", res.Jobs[0].Result, result)
			}
			if !strings.Contains(res.Failure, want) {
				t.Errorf("failure %q lacks %q", res.Failure, want)
			}
			if c := findCheck(t, res, "settle"); c.Status != report.Skip {
				t.Errorf("settle after a failed job = %s, want skip", c.Status)
			}
		})
	}
}

func TestGateJobNeverFinishes(t *testing.T) {
	e := newFakeEnv(t)
	e.bus.jobResult = ""
	e.gate.Options.Timeout = 50 * time.Millisecond
	res := e.restart(t)
	if res.Healthy || res.FailedPhase != PhaseJob {
		t.Fatalf("healthy=%v phase=%q, want the job phase to fail", res.Healthy, res.FailedPhase)
	}
	if !strings.Contains(res.Failure, "did not finish within 50ms") {
		t.Errorf("failure %q does not give the timeout", res.Failure)
	}
}

func TestGateCrashTwoSecondsAfterStart(t *testing.T) {
	e := newFakeEnv(t)
	e.unit.afterRestart = crashAfter(2 * time.Second)
	res := e.restart(t)
	if res.Healthy || res.FailedPhase != PhaseSettle {
		t.Fatalf("healthy=%v phase=%q (%s), want the settle phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	if res.Jobs[0].Result != "done" {
		t.Errorf("job result = %q, want done: systemd reports success for such a service", res.Jobs[0].Result)
	}
	for _, want := range []string{"failed 2s after it started", "result exit-code", "exit status 1"} {
		if !strings.Contains(res.Failure, want) {
			t.Errorf("failure %q lacks %q", res.Failure, want)
		}
	}
}

func TestGateFlappingRestarts(t *testing.T) {
	e := newFakeEnv(t)
	e.unit.afterRestart = flapEvery(time.Second)
	res := e.restart(t)
	if res.Healthy || res.FailedPhase != PhaseSettle {
		t.Fatalf("healthy=%v phase=%q (%s), want the settle phase to fail", res.Healthy, res.FailedPhase, res.Failure)
	}
	if !strings.Contains(res.Failure, "NRestarts 1, was 0") {
		t.Errorf("failure %q does not give the restart count", res.Failure)
	}
}

func TestGateRESTRecoversAfterFiveSeconds(t *testing.T) {
	e := newFakeEnv(t)
	e.gate.Options.Settle = 0
	e.http.respond = func(path string, since time.Duration, _ *Credentials) (HTTPResponse, error) {
		if since < 5*time.Second {
			return HTTPResponse{StatusCode: 500, Body: []byte(`"FAIL"`)}, nil
		}
		return HTTPResponse{StatusCode: 200, Body: []byte(`"OK"`)}, nil
	}
	res := e.restart(t)
	if !res.Healthy {
		t.Fatalf("failed in %s: %s", res.FailedPhase, res.Failure)
	}
	if res.Elapsed < 5*time.Second {
		t.Errorf("healthy after %s, before /ok returned 200", res.Elapsed)
	}
}

func TestGateRESTTimeout(t *testing.T) {
	e := newFakeEnv(t)
	e.gate.Options.Timeout = 10 * time.Second
	e.http.respond = func(string, time.Duration, *Credentials) (HTTPResponse, error) {
		return HTTPResponse{StatusCode: 500, Body: []byte(`"FAIL"`)}, nil
	}
	res := e.restart(t)
	if res.Healthy || res.FailedPhase != PhaseREST {
		t.Fatalf("healthy=%v phase=%q, want the rest phase to fail", res.Healthy, res.FailedPhase)
	}
	if !strings.Contains(res.Failure, `within 10s (last response: HTTP 500 "FAIL")`) {
		t.Errorf("failure %q does not give the timeout and the last response", res.Failure)
	}
}

func TestGateLegacyStatusEndpoint(t *testing.T) {
	e := newFakeEnv(t)
	e.http.respond = func(path string, _ time.Duration, _ *Credentials) (HTTPResponse, error) {
		if path == statusPath {
			return HTTPResponse{StatusCode: 401, ContentType: "application/json",
				Body: []byte(`{"message": "No authentication info provided", "error_code": "unauthorized_error"}`)}, nil
		}
		return HTTPResponse{StatusCode: 404}, nil
	}
	res := e.restart(t)
	if !res.Healthy {
		t.Fatalf("failed in %s: %s", res.FailedPhase, res.Failure)
	}
	c := findCheck(t, res, "rest")
	if !strings.Contains(c.Summary, "/api/v3.1/status returned HTTP 401 with a JSON body") {
		t.Errorf("rest summary %q does not name the /status answer", c.Summary)
	}
	if !strings.Contains(evidence(c, "note"), "before 6.0") {
		t.Errorf("rest evidence %+v does not explain the /status fallback", c.Evidence)
	}
}

// A web server that returns a page for every path is not the REST
// service, whatever its status code.
func TestGateRESTAnswerFromAnotherServer(t *testing.T) {
	page := []byte("<!DOCTYPE html>\n<html><head><title>Directory listing for /api/v3.1/ok</title></head></html>\n")
	cases := []struct {
		name    string
		respond func(path string, _ time.Duration, _ *Credentials) (HTTPResponse, error)
		want    string
	}{
		{"html page with 200 on /ok", func(string, time.Duration, *Credentials) (HTTPResponse, error) {
			return HTTPResponse{StatusCode: 200, ContentType: "text/html; charset=utf-8", Server: "SimpleHTTP/0.6 Python/3.11.2", Body: page}, nil
		}, `/api/v3.1/ok returned HTTP 200 with an HTML page titled "Directory listing for /api/v3.1/ok" (text/html) from server "SimpleHTTP/0.6 Python/3.11.2"`},
		{"other JSON with 200 on /ok", func(string, time.Duration, *Credentials) (HTTPResponse, error) {
			return HTTPResponse{StatusCode: 200, ContentType: "application/json", Body: []byte(`{"status": "ok"}`)}, nil
		}, `/api/v3.1/ok returned HTTP 200 with the body "{\"status\": \"ok\"}" (application/json)`},
		{"html 404 on both endpoints", func(string, time.Duration, *Credentials) (HTTPResponse, error) {
			return HTTPResponse{StatusCode: 404, ContentType: "text/html", Body: []byte("<html><title>404 Not Found</title></html>")}, nil
		}, `/api/v3.1/status returned HTTP 404 with an HTML page titled "404 Not Found" (text/html)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t)
			e.http.respond = tc.respond
			res := e.restart(t)
			if res.Healthy || res.FailedPhase != PhaseREST {
				t.Fatalf("healthy=%v phase=%q (%s), want the rest phase to fail", res.Healthy, res.FailedPhase, res.Failure)
			}
			if !strings.Contains(res.Failure, tc.want) || !strings.Contains(res.Failure, "which the REST service does not send") {
				t.Errorf("failure %q does not say what answered: %s", res.Failure, tc.want)
			}
			c := findCheck(t, res, "rest")
			if evidence(c, "attempts") != "" || c.Duration > time.Second {
				t.Errorf("rest check waited (%s) for an answer that waiting cannot change", c.Duration)
			}
			if !strings.Contains(c.Hint, "--health-url") {
				t.Errorf("hint %q does not name the flag to check", c.Hint)
			}
		})
	}
}

func TestGateServiceDiesWhileWaitingForREST(t *testing.T) {
	e := newFakeEnv(t)
	e.gate.Options.Settle = time.Second
	e.unit.afterRestart = crashAfter(4 * time.Second)
	e.http.respond = func(string, time.Duration, *Credentials) (HTTPResponse, error) {
		return HTTPResponse{}, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	res := e.restart(t)
	if res.Healthy || res.FailedPhase != PhaseREST {
		t.Fatalf("healthy=%v phase=%q, want the rest phase to fail", res.Healthy, res.FailedPhase)
	}
	if !strings.Contains(res.Failure, "failed while waiting for the REST API: it stopped") {
		t.Errorf("failure %q does not say the service stopped", res.Failure)
	}
}

func TestGateIdPComparison(t *testing.T) {
	creds := &Credentials{Username: "admin", Password: "admin-secret"}
	cases := []struct {
		name          string
		before, after string
		status        report.Status
		want          string
	}{
		{"same", `"ldap,token_auth"`, `"token_auth,ldap"`, report.Pass, "same authenticators"},
		{"added", `"local"`, `"token_auth"`, report.Pass, "added since the restart: token_auth"},
		{"lost", `"ldap,token_auth"`, `"ldap"`, report.Fail, "missing now: token_auth"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t)
			e.gate.Options.Credentials = creds
			e.http.respond = func(path string, since time.Duration, c *Credentials) (HTTPResponse, error) {
				if path != idpPath {
					return okAlways(path, since, c)
				}
				if c == nil || c.Password != "admin-secret" {
					return HTTPResponse{StatusCode: 401}, nil
				}
				if e.bus.restarts == 0 {
					return HTTPResponse{StatusCode: 200, Body: []byte(tc.before)}, nil
				}
				return HTTPResponse{StatusCode: 200, Body: []byte(tc.after)}, nil
			}
			res := e.restart(t)
			c := findCheck(t, res, "idp")
			if c.Status != tc.status || !strings.Contains(c.Summary, tc.want) {
				t.Errorf("idp check = %s %q, want %s with %q", c.Status, c.Summary, tc.status, tc.want)
			}
			if tc.status == report.Fail && res.FailedPhase != PhaseIdP {
				t.Errorf("failed phase = %q, want idp", res.FailedPhase)
			}
		})
	}
}

func TestGateInterruptedDuringSettle(t *testing.T) {
	e := newFakeEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.gate.Progress = func(p Phase) {
		if p == PhaseSettle {
			cancel()
		}
	}
	res, err := e.gate.Restart(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if res == nil || res.Healthy || res.FailedPhase != PhaseSettle {
		t.Fatalf("result %+v, want an unhealthy result stopped in the settle phase", res)
	}
}

func TestGateRestartPermissionDenied(t *testing.T) {
	e := newFakeEnv(t)
	e.bus.restartErr = godbus.Error{Name: dbusInteractiveAuth, Body: []any{"Interactive authentication required."}}
	res, err := e.gate.Restart(context.Background())
	if res != nil {
		t.Errorf("result %+v for a denied restart", res)
	}
	ae := apperr.As(err)
	if ae.Code != "permission_denied" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Fatalf("error %v (code %q), want permission_denied with exit 3", err, ae.Code)
	}
	if !strings.Contains(strings.Join(ae.Hints, " "), "run cfyauth as root") {
		t.Errorf("hints %q do not say to run as root", ae.Hints)
	}
}

func TestGateLogTailSources(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "cloudify-rest-service.log")
	if err := os.WriteFile(logFile, []byte("old line before the restart\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	journalLines := ""
	journal := &Journal{Command: func(ctx context.Context, args ...string) ([]byte, error) {
		return []byte(journalLines), nil
	}}

	run := func(t *testing.T) *Result {
		e := newFakeEnv(t)
		e.gate.Manager = NewSystemd(e.bus, journal, "")
		e.gate.Options.LogFiles = []string{logFile}
		e.unit.afterRestart = func(u *fakeUnit, since time.Duration) {
			crashAfter(time.Second)(u, since)
			if u.pid == 0 {
				appendFile(t, logFile, "fatal: worker crashed\n")
				u.afterRestart = nil
			}
		}
		return e.restart(t)
	}

	t.Run("journal first", func(t *testing.T) {
		journalLines = "2026-12-01T10:00:01+0000 vm gunicorn[1001]: boom\n"
		res := run(t)
		if res.LogTail == nil || res.LogTail.Source != "journalctl -u "+fakeUnitName {
			t.Fatalf("tail %+v, want the journal", res.LogTail)
		}
		if len(res.LogTail.Lines) != 1 || !strings.HasSuffix(res.LogTail.Lines[0], "boom") {
			t.Errorf("tail lines %q", res.LogTail.Lines)
		}
	})
	t.Run("REST log when the journal is empty", func(t *testing.T) {
		journalLines = ""
		res := run(t)
		if res.LogTail == nil || res.LogTail.Source != logFile {
			t.Fatalf("tail %+v, want %s", res.LogTail, logFile)
		}
		got := strings.Join(res.LogTail.Lines, "\n")
		if !strings.Contains(got, "worker crashed") || strings.Contains(got, "before the restart") {
			t.Errorf("tail %q, want only the lines written since the restart", got)
		}
	})
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func TestJournalTailArguments(t *testing.T) {
	var got []string
	j := &Journal{Dir: "/mnt/mgr/var/log/journal", Command: func(ctx context.Context, args ...string) ([]byte, error) {
		got = args
		return []byte("a\n\nb\nc\n"), nil
	}}
	since := time.Unix(1700000000, 0)
	tail, err := j.Tail(context.Background(), "cloudify-restservice.service", since, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--unit=cloudify-restservice.service", "--lines=2", "--since=@1700000000", "--directory=/mnt/mgr/var/log/journal"} {
		if !strings.Contains(strings.Join(got, " "), want) {
			t.Errorf("journalctl arguments %q lack %s", got, want)
		}
	}
	if strings.Join(tail.Lines, ",") != "b,c" {
		t.Errorf("tail lines = %q, want the last two non-empty lines", tail.Lines)
	}
}

func TestJournalMissingBinary(t *testing.T) {
	j := &Journal{Command: func(context.Context, ...string) ([]byte, error) { return nil, exec.ErrNotFound }}
	tail, err := j.Tail(context.Background(), "x.service", time.Time{}, 20)
	if err != nil || len(tail.Lines) != 0 {
		t.Errorf("tail %+v, error %v; want no lines and no error without journalctl", tail, err)
	}
}

func TestSameProcessRules(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	before := ServiceStatus{MainPID: 100, InvocationID: "aa", HasInvocationID: true, MainStartedAt: t0}
	old := ServiceStatus{MainPID: 100, MainStartedAt: t0}
	cases := []struct {
		name        string
		before, now ServiceStatus
		want        string
	}{
		{"new pid and invocation", before, ServiceStatus{MainPID: 101, InvocationID: "bb", HasInvocationID: true}, ""},
		{"no main process", before, ServiceStatus{MainPID: 0, InvocationID: "bb", HasInvocationID: true}, "no main process"},
		{"same pid", before, ServiceStatus{MainPID: 100, InvocationID: "bb", HasInvocationID: true}, "still 100"},
		{"same invocation", before, ServiceStatus{MainPID: 101, InvocationID: "aa", HasInvocationID: true}, "invocation ID is still aa"},
		{"old systemd, later start", old, ServiceStatus{MainPID: 101, MainStartedAt: t0.Add(time.Second)}, ""},
		{"start time in whole seconds", old, ServiceStatus{MainPID: 101, MainStartedAt: t0}, ""},
		{"stale start time", old, ServiceStatus{MainPID: 101, MainStartedAt: t0.Add(-time.Second)}, "older than before the restart"},
	}
	for _, tc := range cases {
		got := sameProcess(tc.before, tc.now)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: sameProcess = %q, want %q", tc.name, got, tc.want)
		}
	}
}
