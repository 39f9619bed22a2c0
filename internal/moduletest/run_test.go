package moduletest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

func TestMemeAcceptsOnlyMeme(t *testing.T) {
	src := readExample(t, "meme_auth.py")
	rep, c := runOne(t, src, Request{User: "meme", Password: "any-password"}, Options{})
	if c.Outcome != OutcomeUser {
		t.Fatalf("outcome = %s, want user; steps %+v", c.Outcome, c.Steps)
	}
	if c.User.Username != "meme" {
		t.Errorf("username = %v, want meme", c.User.Username)
	}
	if !c.Passed() {
		t.Errorf("verdict %+v should pass", c.Verdict)
	}
	if rep.AuthBase != "stand-in" || rep.Flask != "stand-in" || rep.Werkzeug != "stand-in" {
		t.Errorf("auth_base/flask/werkzeug = %s/%s/%s, want stand-ins everywhere", rep.AuthBase, rep.Flask, rep.Werkzeug)
	}
	if !rep.Configured {
		t.Errorf("configured = false, want true")
	}
	if rep.Interpreter.Version == "" {
		t.Errorf("interpreter version missing")
	}

	_, c = runOne(t, src, Request{User: "bob", Password: "any-password"}, Options{})
	if c.Outcome != OutcomeNoUser {
		t.Errorf("bob: outcome = %s, want no_user", c.Outcome)
	}
	if c.Passed() {
		t.Errorf("bob: verdict %+v should fail", c.Verdict)
	}

	_, c = runOne(t, src, Request{}, Options{})
	if c.Outcome != OutcomeNotHandled {
		t.Errorf("no credentials: outcome = %s, want not_handled", c.Outcome)
	}
	if status, _ := stepByID(t, c.Phase, "authenticate"); status != "skip" {
		t.Errorf("authenticate step = %s, want skip when the request is not handled", status)
	}
}

func TestHeaderTokenConfigureReturnsNone(t *testing.T) {
	src := readExample(t, "header_token_auth.py")
	missing := filepath.Join(t.TempDir(), "no-token")
	rep, c := runOne(t, src, Request{Headers: []Header{{Name: "X-Proxy-User", Value: "alice"}}},
		Options{Env: []string{"CFY_PROXY_TOKEN_FILE=" + missing}})
	if rep.Configured {
		t.Errorf("configured = true, want false")
	}
	if status, summary := stepByID(t, rep.Load, "configure"); status != "warn" || !strings.Contains(summary, "returned None") {
		t.Errorf("configure step = %s %q, want warn about None", status, summary)
	}
	if c.Outcome != OutcomeNotConfigured {
		t.Errorf("outcome = %s, want not_configured", c.Outcome)
	}
	if len(rep.Load.Logs) != 1 || rep.Load.Logs[0].Level != "WARNING" || !strings.Contains(rep.Load.Logs[0].Message, missing) {
		t.Errorf("logs = %+v, want the module's warning naming %s", rep.Load.Logs, missing)
	}
}

func TestHeaderTokenAcceptsToken(t *testing.T) {
	src := readExample(t, "header_token_auth.py")
	tokenFile := filepath.Join(t.TempDir(), "token")
	const token = "tok-5f1d-Secret"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{Env: []string{"CFY_PROXY_TOKEN_FILE=" + tokenFile}}
	req := Request{Headers: []Header{{Name: "x-proxy-token", Value: token, Secret: true}, {Name: "X-Proxy-User", Value: "alice"}}}
	_, c := runOne(t, src, req, opts)
	if c.Outcome != OutcomeUser || c.User.Username != "alice" {
		t.Fatalf("outcome = %s (%+v), want user alice", c.Outcome, c.User)
	}
	for _, h := range c.Request.Headers {
		if h.Value == token {
			t.Errorf("the token appears in the request summary: %+v", c.Request.Headers)
		}
	}

	req.Headers[0].Value = "wrong-token"
	_, c = runOne(t, src, req, opts)
	if c.Outcome != OutcomeNoUser {
		t.Errorf("wrong token: outcome = %s, want no_user", c.Outcome)
	}
	if len(c.Logs) == 0 || !strings.Contains(c.Logs[0].Message, "wrong proxy token") {
		t.Errorf("wrong token: logs = %+v, want the module's rejection line", c.Logs)
	}
}

func TestResponseFromStandInFlask(t *testing.T) {
	_, c := runOne(t, readExample(t, "challenge_auth.py"), Request{}, Options{})
	if c.Outcome != OutcomeResponse {
		t.Fatalf("outcome = %s, want response; steps %+v", c.Outcome, c.Steps)
	}
	checkChallenge(t, c)
	if !strings.Contains(c.Response.Class, "cfyauth_standins") {
		t.Errorf("response class = %s, want the stand-in", c.Response.Class)
	}
}

func TestResponseFromRealFlask(t *testing.T) {
	requireFlask(t)
	rep, c := runOne(t, readExample(t, "challenge_auth.py"), Request{}, Options{Python: flaskPython})
	if rep.Flask != "installed" || rep.Werkzeug != "installed" {
		t.Errorf("flask/werkzeug = %s/%s, want installed", rep.Flask, rep.Werkzeug)
	}
	if c.Outcome != OutcomeResponse {
		t.Fatalf("outcome = %s, want response; steps %+v", c.Outcome, c.Steps)
	}
	checkChallenge(t, c)
	if !strings.HasPrefix(c.Response.Class, "flask.") {
		t.Errorf("response class = %s, want flask's", c.Response.Class)
	}
}

func checkChallenge(t *testing.T, c *CaseResult) {
	t.Helper()
	if c.Response.Status != 401 {
		t.Errorf("status = %d, want 401", c.Response.Status)
	}
	found := false
	for _, h := range c.Response.Headers {
		if h.Name == "WWW-Authenticate" && strings.Contains(h.Value, "Basic realm=") {
			found = true
		}
	}
	if !found {
		t.Errorf("headers = %+v, want WWW-Authenticate", c.Response.Headers)
	}
	if !strings.Contains(c.Response.Body, "unauthorized_error") {
		t.Errorf("body = %q, want the JSON error", c.Response.Body)
	}
	if c.Passed() {
		t.Errorf("a response must not count as authenticated")
	}
}

func TestExceptionNamesModuleFileAndLine(t *testing.T) {
	src := readExample(t, "broken/raises_on_request.py")
	_, c := runOne(t, src, Request{Headers: []Header{{Name: "X-Tenant", Value: "acme-x"}}}, Options{})
	if c.Outcome != OutcomeError || c.Error == nil {
		t.Fatalf("outcome = %s, error %+v; want an exception", c.Outcome, c.Error)
	}
	abs, _ := filepath.Abs(src.Origin)
	if c.Error.File != abs || c.Error.Line != 9 {
		t.Errorf("location = %s:%d, want %s:9", c.Error.File, c.Error.Line, abs)
	}
	if c.Error.Type != "ValueError" || c.Error.Step != "authenticate" {
		t.Errorf("type/step = %s/%s, want ValueError/authenticate", c.Error.Type, c.Error.Step)
	}
	if strings.Contains(c.Error.Traceback, "<string>") {
		t.Errorf("the traceback shows the harness's own frames:\n%s", c.Error.Traceback)
	}
	if !strings.Contains(c.Error.Traceback, "in tenant_of") {
		t.Errorf("the traceback lacks the module's helper frame:\n%s", c.Error.Traceback)
	}
}

func TestImportAndConfigureFailures(t *testing.T) {
	tests := []struct {
		module   string
		step     string
		errType  string
		wantLine int
	}{
		{"broken/fails_import.py", "import", "ModuleNotFoundError", 2},
		{"broken/raises_in_configure.py", "configure", "FileNotFoundError", 12},
		{"broken/syntax_error.py", "import", "SyntaxError", 7},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			rep, c := runOne(t, readExample(t, tt.module), Request{User: "alice", Password: "pw-1"}, Options{})
			if status, _ := stepByID(t, rep.Load, tt.step); status != "fail" {
				t.Errorf("%s step = %s, want fail", tt.step, status)
			}
			if rep.Load.Error == nil || rep.Load.Error.Type != tt.errType || rep.Load.Error.Line != tt.wantLine {
				t.Errorf("error = %+v, want %s on line %d", rep.Load.Error, tt.errType, tt.wantLine)
			}
			if c.Outcome != OutcomeNotConfigured {
				t.Errorf("outcome = %s, want not_configured", c.Outcome)
			}
		})
	}
}

func TestSysExitIsReportedNotFatal(t *testing.T) {
	_, c := runOne(t, readExample(t, "broken/exits.py"), Request{}, Options{})
	if c.Outcome != OutcomeError || c.Error == nil || c.Error.Type != "SystemExit" {
		t.Fatalf("outcome = %s, error %+v; want SystemExit", c.Outcome, c.Error)
	}
	if !strings.Contains(c.Verdict.Summary, "sys.exit(3)") {
		t.Errorf("verdict %q does not name sys.exit(3)", c.Verdict.Summary)
	}
}

func TestOsExitEndsRunWithCrash(t *testing.T) {
	rep, c := runOne(t, readExample(t, "broken/kills_process.py"), Request{}, Options{})
	status, summary := stepByID(t, rep.Load, "configure")
	if status != "fail" || !strings.Contains(summary, "exit code 7") {
		t.Errorf("configure step = %s %q, want a failure naming exit code 7", status, summary)
	}
	status, summary = stepByID(t, rep.Load, "import")
	if status != "pass" || summary != "completed; the Python process ended before the harness could report its details" {
		t.Errorf("import step = %s %q, want a pass that says its details were not reported", status, summary)
	}
	if c.Outcome != OutcomeNotRun {
		t.Errorf("outcome = %s, want not_run", c.Outcome)
	}
	if !strings.Contains(c.Verdict.Summary, "exit code 7") {
		t.Errorf("verdict %q does not give the reason", c.Verdict.Summary)
	}
}

func TestHangingStepTimesOut(t *testing.T) {
	rep, c := runOne(t, readExample(t, "broken/hangs.py"), Request{}, Options{StepTimeout: shortTimeout})
	if c.Outcome != OutcomeTimeout {
		t.Fatalf("outcome = %s, want timeout", c.Outcome)
	}
	status, summary := stepByID(t, c.Phase, "authenticate")
	if status != "fail" || !strings.Contains(summary, "did not return within 2s") {
		t.Errorf("authenticate step = %s %q, want a timeout failure", status, summary)
	}
	if status, _ := stepByID(t, rep.Load, "configure"); status != "pass" {
		t.Errorf("configure step = %s, want its pass kept", status)
	}
}

// A case that hangs stops the process: the cases before it keep their
// results and the ones after it did not run.
func TestCasesAfterTimeoutDidNotRun(t *testing.T) {
	requirePythons(t)
	src := inlineModule(t, "slow_auth", `import time
from cloudify_premium.authentication.auth_base import AuthBase, UserData


class SlowAuthentication(AuthBase):

    def _authenticate_request(self, request):
        if request.authorization.username == "slow":
            time.sleep(3600)
        return UserData(request.authorization.username)


configure = SlowAuthentication().configure
`)
	cases := []Case{
		{Name: "fast", Request: Request{User: "alice", Password: "pw-a"}, Expect: &Expectation{User: "alice"}},
		{Name: "slow", Request: Request{User: "slow", Password: "pw-s"}, Expect: &Expectation{User: "slow"}},
		{Name: "after", Request: Request{User: "bob", Password: "pw-b"}, Expect: &Expectation{User: "bob"}},
	}
	rep, err := Run(context.Background(), src, cases, Options{Python: plainPython, StepTimeout: shortTimeout})
	if err != nil {
		t.Fatal(err)
	}
	want := []Outcome{OutcomeUser, OutcomeTimeout, OutcomeNotRun}
	for i, c := range rep.Cases {
		if c.Outcome != want[i] {
			t.Errorf("case %s: outcome = %s, want %s", c.Name, c.Outcome, want[i])
		}
	}
	if !rep.Cases[0].Passed() || rep.Cases[1].Passed() || rep.Cases[2].Passed() {
		t.Errorf("verdicts: %+v / %+v / %+v", rep.Cases[0].Verdict, rep.Cases[1].Verdict, rep.Cases[2].Verdict)
	}
}

func TestNoisyModuleIsContained(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	rep, c := runOne(t, readExample(t, "broken/noisy.py"), Request{}, Options{Env: []string{"NOISY_PID_FILE=" + pidFile}})
	if c.Outcome != OutcomeUser || c.User.Username != "noisy" {
		t.Fatalf("outcome = %s, want user noisy despite the noise", c.Outcome)
	}
	if len(c.Logs) != 200 || c.LogsDropped != 800 {
		t.Errorf("kept %d log records and dropped %d, want 200 and 800", len(c.Logs), c.LogsDropped)
	}
	var big *OutputChunk
	for i := range c.Output {
		if c.Output[i].Step == "authenticate" && c.Output[i].Stream == "stdout" {
			big = &c.Output[i]
		}
	}
	if big == nil || !big.Truncated || len(big.Text) > 16384 {
		t.Errorf("the 4 MiB print was not cut to 16 KiB: %+v", big)
	}
	if !strings.Contains(rep.ProcessOutput.Stdout, "written to descriptor 1") ||
		!strings.Contains(rep.ProcessOutput.Stderr, "written to descriptor 2") {
		t.Errorf("process output = %+v, want the descriptor writes", rep.ProcessOutput)
	}
	if len(rep.Load.Output) != 2 {
		t.Errorf("load output = %+v, want the import print and the configure stderr line", rep.Load.Output)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "started 1 process") {
		t.Errorf("warnings = %v, want the forked child named", c.Warnings)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the module did not record its child: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if fields[0] != "Z" {
			t.Errorf("the forked child %d still runs (state %s)", pid, fields[0])
		}
	}
}

func TestSecretsNeverReachTheReport(t *testing.T) {
	const password = "Zebra-Secret-42"
	src := readExample(t, "broken/leaks_secrets.py")
	for _, user := range []string{"alice", "raise"} {
		req := Request{User: user, Password: password}
		rep, c := runOne(t, src, req, Options{})
		doc, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range req.secrets() {
			if strings.Contains(string(doc), secret) {
				t.Errorf("user %s: the report contains the secret %q", user, secret)
			}
		}
		if !strings.Contains(rep.ProcessOutput.Stderr, "fd2 password [redacted]") {
			t.Errorf("user %s: descriptor output not redacted as expected: %q", user, rep.ProcessOutput.Stderr)
		}
		if len(c.Logs) == 0 || !strings.Contains(c.Logs[0].Message, "with password [redacted]") {
			t.Errorf("user %s: log lines = %+v", user, c.Logs)
		}
		if user == "raise" && (c.Error == nil || c.Error.Message != "wrong password [redacted]") {
			t.Errorf("exception = %+v, want the message redacted", c.Error)
		}
	}
}

// A secret cut in two by a size limit must not leave its first part behind.
func TestSecretCutAtLimitIsRedacted(t *testing.T) {
	const password = "Cut-Here-Secret-77"
	src := inlineModule(t, "cut_auth", `import os
from cloudify_premium.authentication.auth_base import AuthBase


class CutAuthentication(AuthBase):

    def _authenticate_request(self, request):
        password = request.authorization.password
        print("p" * (16384 - 5) + password, end="")
        os.write(1, ("q" * (65536 - 5) + password).encode())
        return None


configure = CutAuthentication().configure
`)
	rep, c := runOne(t, src, Request{User: "alice", Password: password}, Options{})
	if len(c.Output) != 1 {
		t.Fatalf("output = %+v", c.Output)
	}
	for name, text := range map[string]string{"printed": c.Output[0].Text, "descriptor": rep.ProcessOutput.Stdout} {
		for k := 3; k <= len(password); k++ {
			if strings.HasSuffix(text, password[:k]) {
				t.Errorf("%s output ends with %d characters of the password", name, k)
			}
		}
	}
}

func TestRequestShape(t *testing.T) {
	src := inlineModule(t, "shape_auth", `from cloudify_premium.authentication.auth_base import AuthBase, UserData


class ShapeAuthentication(AuthBase):

    def _authenticate_request(self, request):
        auth = request.authorization
        return UserData(
            auth.username,
            auth_type=auth.type,
            password_ok=auth.password == "Shape-Pass-1" and auth["password"] == "Shape-Pass-1",
            method=request.method,
            path=request.path,
            full_path=request.full_path,
            tenant=request.args.get("tenant"),
            tags=request.args.getlist("tag"),
            session=request.cookies.get("session"),
            json=request.get_json(),
            same_json=request.json == request.get_json(),
            remote_addr=request.remote_addr,
            header_any_case=request.headers.get("x-custom") == request.headers["X-CUSTOM"],
            header_in="X-Custom" in request.headers,
            missing_header=request.headers.get("X-Missing", "default"),
            environ_method=request.environ["REQUEST_METHOD"],
            environ_header=request.environ.get("HTTP_X_CUSTOM"),
        )


configure = ShapeAuthentication().configure
`)
	req := Request{
		User: "alice", Password: "Shape-Pass-1", Method: "put", Path: "/api/v3.1/x?tenant=t1&tag=a&tag=b",
		RemoteAddr: "192.0.2.10", Body: json.RawMessage(`{"k": [1, 2]}`),
		Headers: []Header{{Name: "X-Custom", Value: "v1"}, {Name: "Cookie", Value: "session=s-1; other=2"}},
	}
	_, c := runOne(t, src, req, Options{})
	if c.Outcome != OutcomeUser {
		t.Fatalf("outcome = %s; error %+v", c.Outcome, c.Error)
	}
	want := map[string]any{
		"auth_type": "basic", "password_ok": true, "method": "PUT", "path": "/api/v3.1/x",
		"full_path": "/api/v3.1/x?tenant=t1&tag=a&tag=b", "tenant": "t1", "tags": []any{"a", "b"},
		"session": "s-1", "json": map[string]any{"k": []any{1.0, 2.0}}, "same_json": true,
		"remote_addr": "192.0.2.10", "header_any_case": true, "header_in": true, "missing_header": "default",
		"environ_method": "PUT", "environ_header": "v1",
	}
	for name, value := range want {
		got, ok := c.User.field(name)
		if !ok || !sameJSON(got, value) {
			t.Errorf("field %s = %s, want %s", name, jsonText(got), jsonText(value))
		}
	}
}

func TestBearerToken(t *testing.T) {
	src := inlineModule(t, "bearer_auth", `from cloudify_premium.authentication.auth_base import AuthBase, UserData


class BearerAuthentication(AuthBase):

    def can_handle_auth_request(self, request):
        return request.authorization is not None and request.authorization.type == "bearer"

    def _authenticate_request(self, request):
        if request.authorization.token == "Tok-Bearer-9":
            return UserData("token-user", header=request.headers["Authorization"])
        return None


configure = BearerAuthentication().configure
`)
	_, c := runOne(t, src, Request{Bearer: "Tok-Bearer-9"}, Options{})
	if c.Outcome != OutcomeUser {
		t.Fatalf("outcome = %s", c.Outcome)
	}
	if got, _ := c.User.field("header"); got != "Bearer [redacted]" {
		t.Errorf("Authorization header seen by the module, as reported = %v, want it redacted", got)
	}
	if c.Request.Authorization != "bearer" {
		t.Errorf("request summary authorization = %s", c.Request.Authorization)
	}
	_, c = runOne(t, src, Request{User: "alice", Password: "x-pass"}, Options{})
	if c.Outcome != OutcomeNotHandled {
		t.Errorf("basic credentials: outcome = %s, want not_handled", c.Outcome)
	}
}

func TestUndocumentedFieldsWarn(t *testing.T) {
	_, c := runOne(t, readExample(t, "broken/extra_fields.py"), Request{User: "alice", Password: "pw-x"}, Options{})
	if c.Outcome != OutcomeUser {
		t.Fatalf("outcome = %s", c.Outcome)
	}
	if status, _ := stepByID(t, c.Phase, "authenticate"); status != "warn" {
		t.Errorf("authenticate step = %s, want warn", status)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "email, groups") {
		t.Errorf("warnings = %v, want email and groups named", c.Warnings)
	}
	if got, _ := c.User.field("groups"); !sameJSON(got, []any{"developers", "operators"}) {
		t.Errorf("groups = %v", got)
	}
}

func TestWrongReturnValue(t *testing.T) {
	_, c := runOne(t, readExample(t, "broken/wrong_return.py"), Request{}, Options{})
	if c.Outcome != OutcomeInvalidValue {
		t.Errorf("outcome = %s, want invalid_value", c.Outcome)
	}
	if status, summary := stepByID(t, c.Phase, "authenticate"); status != "fail" || !strings.Contains(summary, "tuple") {
		t.Errorf("authenticate step = %s %q", status, summary)
	}
}

func TestPremiumPackageIsUsedAndNeverWrites(t *testing.T) {
	requirePythons(t)
	marker := filepath.Join(t.TempDir(), "handle-called")
	opts := Options{Python: premiumPython, Env: []string{"PREMIUM_MARKER_FILE=" + marker}}
	src := inlineModule(t, "premium_user_auth", `from cloudify_premium.authentication.auth_base import AuthBase, UserData


class PremiumUserAuthentication(AuthBase):

    def _authenticate_request(self, request):
        if request.headers.get("X-Call-Handle"):
            return self.handle_auth_request(request)
        return UserData(request.authorization.username, email="a@example.com")


configure = PremiumUserAuthentication().configure
`)
	rep, c := runOne(t, src, Request{User: "alice", Password: "pw-p"}, opts)
	if rep.AuthBase != "premium" || !strings.Contains(rep.AuthBaseFile, "site-packages") {
		t.Errorf("auth_base = %s (%s), want the premium package", rep.AuthBase, rep.AuthBaseFile)
	}
	if c.Outcome != OutcomeUser {
		t.Fatalf("outcome = %s; error %+v", c.Outcome, c.Error)
	}
	if status, _ := stepByID(t, c.Phase, "authenticate"); status != "pass" {
		t.Errorf("authenticate step = %s: the real UserData's fields must not warn", status)
	}
	names := []string{}
	for _, f := range c.User.Fields {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "username,email,first_name,last_name,groups" {
		t.Errorf("fields = %v, want every attribute of the real UserData", names)
	}

	// A module that calls handle_auth_request itself is stopped too.
	req := Request{User: "alice", Password: "pw-p", Headers: []Header{{Name: "X-Call-Handle", Value: "1"}}}
	_, c = runOne(t, src, req, opts)
	if c.Outcome != OutcomeError || !strings.Contains(c.Error.Message, "blocks AuthBase.handle_auth_request") {
		t.Errorf("outcome = %s, error %+v; want the write blocked", c.Outcome, c.Error)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the premium handle_auth_request ran: %s exists", marker)
	}
}

func TestAuthBaseModes(t *testing.T) {
	requirePythons(t)
	src := readExample(t, "meme_auth.py")
	rep, _ := runOne(t, src, Request{User: "meme", Password: "pw"}, Options{Python: premiumPython, AuthBase: AuthBaseStandIn})
	if rep.AuthBase != "stand-in" {
		t.Errorf("--auth-base stand-in on a premium Python: got %s", rep.AuthBase)
	}

	_, err := Run(context.Background(), src, []Case{{Name: "r", Request: Request{}}}, Options{Python: plainPython, AuthBase: AuthBasePremium})
	if apperr.ExitCodeOf(err) != apperr.ExitEnvironment || !strings.Contains(err.Error(), "No module named 'cloudify_premium'") {
		t.Errorf("--auth-base premium without the package: err = %v, want exit 3 naming the missing package", err)
	}

	_, err = Run(context.Background(), src, []Case{{Name: "r", Request: Request{}}}, Options{Python: brokenPremiumPython})
	if apperr.ExitCodeOf(err) != apperr.ExitEnvironment || !strings.Contains(err.Error(), "needs the manager's configuration") {
		t.Fatalf("a premium package that fails to import: err = %v, want exit 3 with its reason", err)
	}
	if hints := apperr.As(err).Hints; len(hints) == 0 || !strings.Contains(hints[0], "--auth-base stand-in") {
		t.Errorf("hints = %v, want --auth-base stand-in", hints)
	}
}

func TestUnusablePythonIsEnvironmentError(t *testing.T) {
	requirePythons(t)
	src := readExample(t, "meme_auth.py")
	_, err := Run(context.Background(), src, []Case{{Name: "r", Request: Request{}}}, Options{Python: "/bin/false"})
	if apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Errorf("err = %v, want exit 3", err)
	}
}

// A process started in a new session leaves the harness's process group, so
// the report says the harness cannot stop it. The test stops it by its PID.
func TestEscapedChildIsNamed(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	src := inlineModule(t, "escape_auth", `import os
import subprocess
from cloudify_premium.authentication.auth_base import AuthBase, UserData


class EscapeAuthentication(AuthBase):

    def _authenticate_request(self, request):
        child = subprocess.Popen(["sleep", "60"], start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.environ["ESCAPE_PID_FILE"], "w") as out:
            out.write(str(child.pid))
        return UserData("escaper")


configure = EscapeAuthentication().configure
`)
	_, c := runOne(t, src, Request{}, Options{Env: []string{"ESCAPE_PID_FILE=" + pidFile}})
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the module did not record its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if c.Outcome != OutcomeUser {
		t.Errorf("outcome = %s, want user", c.Outcome)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "which the harness cannot stop") ||
		!strings.Contains(c.Warnings[0], strconv.Itoa(pid)) {
		t.Errorf("warnings = %v, want the escaped PID %d named", c.Warnings, pid)
	}
}

// get_json follows werkzeug 2.1 and 2.2: a request that is not JSON is a
// 400 error unless silent=True.
func TestGetJSONOnRequestWithoutJSON(t *testing.T) {
	src := inlineModule(t, "json_auth", `from cloudify_premium.authentication.auth_base import AuthBase, UserData


class JSONAuthentication(AuthBase):

    def _authenticate_request(self, request):
        if request.headers.get("X-Silent"):
            return UserData("quiet", body=request.get_json(silent=True))
        return UserData("loud", body=request.get_json())


configure = JSONAuthentication().configure
`)
	_, c := runOne(t, src, Request{Headers: []Header{{Name: "X-Silent", Value: "1"}}}, Options{})
	if got, ok := c.User.field("body"); c.Outcome != OutcomeUser || !ok || got != nil {
		t.Errorf("silent: outcome = %s, body = %v; want a user with a null body", c.Outcome, got)
	}
	_, c = runOne(t, src, Request{}, Options{})
	if c.Outcome != OutcomeError || c.Error == nil || c.Error.HTTPStatus != 400 {
		t.Errorf("not silent: outcome = %s, error %+v; want a 400 BadRequest", c.Outcome, c.Error)
	}
}
