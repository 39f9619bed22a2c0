package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/moduletest"
	"github.com/cfyauth/cfyauth/internal/report"
)

// TestOptions are the inputs of 'cfyauth test'.
type TestOptions struct {
	Arg           string
	Name          string
	User          string
	PasswordStdin bool
	PasswordFile  string
	Bearer        presenceFlag
	BearerStdin   bool
	BearerFile    string
	Headers       []string
	HeaderFiles   []string
	Method        string
	Path          string
	RemoteAddr    string
	JSONBody      string
	Env           []string
	Cases         string
	Timeout       time.Duration
	AuthBase      string

	// password absorbs a mistaken --password VALUE so the value is never
	// echoed; the run then stops with a usage error.
	password refusedFlag
}

// testOutput is the JSON document of 'cfyauth test'.
type testOutput struct {
	*moduletest.Report
	// Mode is "request" for one request from flags, "cases" for --cases.
	Mode string `json:"mode"`
	// Outcome is the outcome of the one request, in request mode.
	Outcome moduletest.Outcome `json:"outcome,omitempty"`
	// Summary counts passed and failed cases, in cases mode.
	Summary *casesSummary `json:"summary,omitempty"`
}

type casesSummary struct {
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// requestFlags are the flags that describe the one request; --cases
// describes requests in its file instead.
var requestFlags = []string{"user", "password-stdin", "password-file", "bearer", "bearer-stdin", "bearer-file",
	"header", "header-file", "method", "path", "remote-addr", "json-body"}

func newTestCmd(app *App, runF func(*TestOptions) error) *cobra.Command {
	opts := &TestOptions{}
	cmd := &cobra.Command{
		Use:   "test SOURCE|NAME",
		Short: "Run an authenticator module offline through the handler contract",
		Long: `Run an authenticator module offline, with the manager's Python, the way the
REST service drives it: import the module, call its module-level
configure(logger) once (None leaves the module out of the pool), then send a
synthetic request to can_handle_auth_request and _authenticate_request. The
report walks the steps and shows the outcome: a user with every field, a
response with its status and body, no user, or an exception with the
module's file and line. It also shows what the module logged and printed.

The real handle_auth_request is never called, because it writes the user to
the manager's database. Where the premium package (cloudify_premium) is not
importable, stand-in AuthBase and UserData classes follow the documented
contract; where Flask is not importable, small stand-ins for flask.Response
and werkzeug's classes let the module import. The report says which were
used.

The request is built from --user (the password comes from a prompt without
echo, --password-stdin, --password-file or CFYAUTH_PASSWORD), --bearer (the
token comes from a prompt, --bearer-stdin, --bearer-file or
CFYAUTH_BEARER_TOKEN), --header, --header-file, --method, --path (a query
string becomes request.args; a Cookie header becomes request.cookies),
--remote-addr and --json-body. Authorization, Proxy-Authorization and
Cookie headers carry credentials, so they come only from --header-file,
never from --header. Secrets never appear in the report: every occurrence
in what the module printed, logged, raised or returned is replaced by
[redacted], and so is the decoded password of a basic Authorization header
and each cookie value from a header file.

--cases FILE runs a YAML list of requests with expected outcomes in one
Python process and prints a pass/fail table:

  env:                          # optional, for the module's process
    CFY_PROXY_TOKEN_FILE: /etc/cloudify/proxy-token
  cases:
    - name: meme logs in
      user: meme
      password: anything        # or password_file: (relative to this file)
      expect: {user: meme}      # also fields: {email: ...}
    - name: other users do not
      user: bob
      password: anything
      expect: {outcome: no_user}
    - name: a request without credentials is not for this module
      headers: {X-Forwarded-For: 192.0.2.7}
      expect: {outcome: not_handled}

A case may also set bearer, bearer_file, secret_headers (masked like
secrets), method, path, remote_addr and json_body (any YAML value). Outcomes:
user, no_user, response (expect: {status: 401}), not_handled,
not_configured, error, invalid_value, timeout, crashed, not_run.

Each call into the module is bounded by --timeout. The module runs in a
temporary working folder with a minimal environment; --env passes variables
to it. A process that the module starts in a new session (setsid) is beyond
the harness's reach.

Exit status: 0 when the module authenticated the request (with --cases:
when every case passed), 1 when it did not (or a case failed), 2 for usage
errors, 3 when the harness could not run: no usable Python, or a premium
package that fails to import.`,
		Example: `  cfyauth test ./meme_auth.py --user meme --password-file pw.txt
  echo "$PW" | cfyauth test my_auth --user alice --password-stdin -o json
  cfyauth test ./header_token_auth.py --env CFY_PROXY_TOKEN_FILE=/tmp/token \
      --header-file proxy-headers.txt --header 'X-Proxy-User: alice'
  cfyauth test ./my_auth.py --cases my_auth_cases.yaml`,
		Args:              exactArgs(1, "one module file or installed module name"),
		ValidArgsFunction: completeModuleNames(app, moduleNamesInstalled, oneName, withFiles),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Arg = args[0]
			if err := checkTestFlags(cmd, app, opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runTest(cmd, app, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "", "module name for SOURCE (required when SOURCE is -; default: the file name)")
	f.StringVar(&opts.User, "user", "", "send HTTP basic credentials for this user; the password comes from a prompt, --password-stdin, --password-file or CFYAUTH_PASSWORD")
	f.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password from stdin")
	f.StringVar(&opts.PasswordFile, "password-file", "", "read the password from this file (one trailing line break is removed)")
	bearer := f.VarPF(&opts.Bearer, "bearer", "", "send a bearer token; it comes from a prompt, --bearer-stdin, --bearer-file or CFYAUTH_BEARER_TOKEN")
	bearer.NoOptDefVal = "true"
	f.BoolVar(&opts.BearerStdin, "bearer-stdin", false, "read the bearer token from stdin (implies --bearer)")
	f.StringVar(&opts.BearerFile, "bearer-file", "", "read the bearer token from this file (implies --bearer)")
	f.StringArrayVar(&opts.Headers, "header", nil, "add a request header 'Name: value' (not Authorization, Proxy-Authorization or Cookie: use --user, --bearer or --header-file); repeat for more")
	f.StringArrayVar(&opts.HeaderFiles, "header-file", nil, "add the headers in this file, one 'Name: value' per line, as secrets masked in the report; repeat for more")
	f.StringVar(&opts.Method, "method", "", "HTTP method of the request (default GET, or POST with --json-body)")
	f.StringVar(&opts.Path, "path", moduletest.DefaultPath, "request path; a query string after ? becomes request.args")
	f.StringVar(&opts.RemoteAddr, "remote-addr", moduletest.DefaultRemoteAddr, "client address the request comes from (request.remote_addr)")
	f.StringVar(&opts.JSONBody, "json-body", "", "JSON file sent as the request body, '-' for stdin")
	f.StringArrayVar(&opts.Env, "env", nil, "set NAME=VALUE in the module's environment, or pass NAME on from cfyauth's; repeat for more")
	f.StringVar(&opts.Cases, "cases", "", "YAML file of requests with expected outcomes, run in one Python process")
	f.DurationVar(&opts.Timeout, "timeout", moduletest.DefaultStepTimeout, "how long each call into the module may take")
	f.StringVar(&opts.AuthBase, "auth-base", string(moduletest.AuthBaseAuto), "where AuthBase and UserData come from: auto (premium package when importable), premium, or stand-in")
	password := f.VarPF(&opts.password, "password", "", "")
	password.Hidden = true
	return cmd
}

// checkTestFlags checks flag combinations before anything is read.
func checkTestFlags(cmd *cobra.Command, app *App, opts *TestOptions) error {
	flags := cmd.Flags()
	if opts.password.set {
		return apperr.Usage("invalid_flag", "--password is not accepted: a password in a flag value shows in the process list and shell history").
			WithHint("use --password-stdin, --password-file FILE or the CFYAUTH_PASSWORD variable")
	}
	if opts.Bearer.misused {
		return apperr.Usage("invalid_flag", "--bearer takes no value: a token in a flag value shows in the process list and shell history").
			WithHint("use --bearer with --bearer-stdin, --bearer-file FILE or the CFYAUTH_BEARER_TOKEN variable")
	}

	for _, raw := range opts.Headers {
		name, _, _ := strings.Cut(raw, ":")
		if name = strings.TrimSpace(name); moduletest.CredentialHeader(name) {
			return apperr.Usage("invalid_flag", "--header %s is not accepted: a credential in a flag value shows in the process list and shell history", name).
				WithHint("send basic credentials with --user NAME and --password-file FILE, a token with --bearer --bearer-file FILE, or put the header in a file for --header-file FILE")
		}
	}

	if opts.Cases != "" {
		for _, name := range requestFlags {
			if flags.Changed(name) {
				return apperr.Usage("invalid_flag", "--%s cannot be combined with --cases", name).
					WithHint("describe each request in the cases file instead")
			}
		}
	}

	if (opts.PasswordStdin || opts.PasswordFile != "") && opts.User == "" {
		return apperr.Usage("invalid_flag", "a password needs --user").WithHint("add --user NAME")
	}
	if strings.Contains(opts.User, ":") {
		return apperr.Usage("invalid_flag", "--user contains a colon: give the user name alone").
			WithHint("the password never goes in a flag value; use --password-stdin, --password-file FILE or CFYAUTH_PASSWORD")
	}
	if opts.BearerStdin || opts.BearerFile != "" {
		opts.Bearer.set = true
	}
	if opts.Bearer.set && opts.User != "" {
		return apperr.Usage("invalid_flag", "--user and --bearer cannot be used together").
			WithHint("a request carries basic credentials or a bearer token, not both")
	}

	stdinUsers := []string{}
	if opts.Arg == "-" {
		stdinUsers = append(stdinUsers, "SOURCE -")
	}
	if opts.PasswordStdin {
		stdinUsers = append(stdinUsers, "--password-stdin")
	}
	if opts.BearerStdin {
		stdinUsers = append(stdinUsers, "--bearer-stdin")
	}
	if opts.JSONBody == "-" {
		stdinUsers = append(stdinUsers, "--json-body -")
	}
	if len(stdinUsers) > 1 {
		return apperr.Usage("invalid_flag", "%s all read stdin, which can be read only once", strings.Join(stdinUsers, " and ")).
			WithHint("read all but one of them from a file")
	}
	if opts.Arg == "-" && opts.Name == "" {
		return apperr.Usage("missing_flag", "reading a module from stdin needs --name").
			WithHint("run: %s < my_auth.py", app.cfyauthCommand("test - --name my_auth"))
	}

	if opts.Timeout <= 0 {
		return apperr.Usage("invalid_flag", "--timeout %s is not a positive duration", opts.Timeout).
			WithHint("use a duration such as 10s or 1m")
	}
	switch moduletest.AuthBaseMode(opts.AuthBase) {
	case moduletest.AuthBaseAuto, moduletest.AuthBasePremium, moduletest.AuthBaseStandIn:
	default:
		return apperr.Usage("invalid_flag", "invalid --auth-base %q", opts.AuthBase).
			WithHint("use --auth-base auto, premium or stand-in")
	}
	return nil
}

func runTest(cmd *cobra.Command, app *App, opts *TestOptions) error {
	var layout *manager.Layout
	if !isSourceArg(opts.Arg) || app.Global.Python == "" || app.Global.Root != "/" {
		var err error
		if layout, err = manager.Open(app.Global.Root); err != nil {
			return err
		}
	}
	src, err := readModuleUnderTest(app, layout, opts)
	if err != nil {
		return err
	}
	if err := modules.ValidateName(src.Name); err != nil {
		e := apperr.Usage("invalid_name", "%v", err)
		if ne, ok := err.(*modules.NameError); ok && ne.Suggestion != "" {
			return e.WithHint("give a valid name with --name %s", ne.Suggestion)
		}
		return e.WithHint("give a valid module name with --name")
	}

	py, err := findPython(cmd, app, layout)
	if err != nil {
		return err
	}

	var cases []moduletest.Case
	var env []string
	if opts.Cases != "" {
		file, err := moduletest.ReadCasesFile(opts.Cases)
		if err != nil {
			return err
		}
		cases, env = file.Cases, file.Env
	} else {
		req, err := requestFromFlags(app, opts)
		if err != nil {
			return err
		}
		cases = []moduletest.Case{{Name: "request", Request: req}}
	}
	flagEnv, err := parseEnvFlags(app, opts.Env)
	if err != nil {
		return err
	}
	env = mergeEnv(env, flagEnv)
	if len(env) > 0 {
		app.Debugf("module environment adds %s", strings.Join(sortedEnvNames(env), ", "))
	}

	rep, err := moduletest.Run(cmd.Context(), src, cases, moduletest.Options{
		Python: py.Path, StepTimeout: opts.Timeout, AuthBase: moduletest.AuthBaseMode(opts.AuthBase), Env: env,
	})
	if err != nil {
		return err
	}
	if rep.Interpreter.Version == "" {
		rep.Interpreter.Version = py.Version
	}
	if opts.Cases != "" {
		return renderCases(app, rep)
	}
	return renderRequest(app, rep)
}

// readModuleUnderTest reads SOURCE: a file, stdin, or an installed module
// looked up by name (readCandidate does the lookup).
func readModuleUnderTest(app *App, layout *manager.Layout, opts *TestOptions) (modules.Source, error) {
	c := readCandidate(app, layout, opts.Arg, opts.Name)
	if c.ReadErr != nil {
		if se, ok := c.ReadErr.(*modules.SourceError); ok {
			e := apperr.Usage("invalid_source", "%s", se.Error())
			if se.Hint != "" {
				e.WithHint("%s", se.Hint)
			}
			return c.Source, e
		}
		return c.Source, c.ReadErr
	}
	return c.Source, nil
}

// requestFromFlags builds the one request of a plain run, reading secrets
// from their sources.
func requestFromFlags(app *App, opts *TestOptions) (moduletest.Request, error) {
	req := moduletest.Request{User: opts.User, Method: opts.Method, Path: opts.Path, RemoteAddr: opts.RemoteAddr}
	for i, raw := range opts.Headers {
		h, err := parseHeader(raw)
		if err != nil {
			return req, apperr.Usage("invalid_flag", "--header number %d %s", i+1, err).
				WithHint("write each header as --header 'Name: value'")
		}
		req.Headers = append(req.Headers, h)
	}
	for _, path := range opts.HeaderFiles {
		headers, err := readHeaderFile(app, path)
		if err != nil {
			return req, err
		}
		req.Headers = append(req.Headers, headers...)
	}
	if opts.JSONBody != "" {
		body, err := readJSONBody(app, opts.JSONBody)
		if err != nil {
			return req, err
		}
		req.Body = body
	}
	if err := req.Check(); err != nil {
		return req, err
	}
	if opts.User != "" {
		password, err := readSecret(app, SecretSource{
			What: "the password of " + opts.User, Prompt: "Password for " + opts.User + ": ",
			Stdin: opts.PasswordStdin, StdinFlag: "password-stdin",
			File: opts.PasswordFile, FileFlag: "password-file", EnvVar: "CFYAUTH_PASSWORD",
		})
		if err != nil {
			return req, err
		}
		req.Password = password
	}
	if opts.Bearer.set {
		token, err := readSecret(app, SecretSource{
			What: "the bearer token", Prompt: "Bearer token: ",
			Stdin: opts.BearerStdin, StdinFlag: "bearer-stdin",
			File: opts.BearerFile, FileFlag: "bearer-file", EnvVar: "CFYAUTH_BEARER_TOKEN",
		})
		if err != nil {
			return req, err
		}
		if token == "" {
			return req, apperr.Usage("missing_secret", "the bearer token is empty").
				WithHint("give a token with --bearer-stdin, --bearer-file FILE or CFYAUTH_BEARER_TOKEN")
		}
		req.Bearer = token
	}
	return req, nil
}

// parseHeader splits 'Name: value'. Its errors never repeat the value.
func parseHeader(raw string) (moduletest.Header, error) {
	name, value, ok := strings.Cut(raw, ":")
	if !ok {
		return moduletest.Header{}, fmt.Errorf("has no colon")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return moduletest.Header{}, fmt.Errorf("has no name before the colon")
	}
	return moduletest.Header{Name: name, Value: strings.TrimSpace(value)}, nil
}

// readHeaderFile reads 'Name: value' lines whose values are secrets. Blank
// lines and lines starting with # are skipped.
func readHeaderFile(app *App, path string) ([]moduletest.Header, error) {
	content, err := readSecret(app, SecretSource{What: "request headers", File: path, FileFlag: "header-file", MultiLine: true})
	if err != nil {
		return nil, err
	}
	var headers []moduletest.Header
	for n, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		h, err := parseHeader(line)
		if err != nil {
			return nil, apperr.Usage("invalid_flag", "--header-file %s line %d %s", path, n+1, err).
				WithHint("write one 'Name: value' per line")
		}
		h.Secret = true
		headers = append(headers, h)
	}
	return headers, nil
}

func readJSONBody(app *App, path string) ([]byte, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = app.IO.In, "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, apperr.Usage("invalid_flag", "--json-body %s cannot be read: %v", path, pathCause(err)).
				WithHint("pass a JSON file, or - for stdin")
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, moduletest.MaxBodySize+1))
	if err != nil {
		return nil, apperr.Usage("invalid_flag", "--json-body: cannot read %s: %v", name, pathCause(err)).
			WithHint("pass a JSON file, or - for stdin")
	}
	if len(data) > moduletest.MaxBodySize {
		return nil, apperr.Usage("invalid_flag", "--json-body %s is larger than the 1 MiB limit", name).
			WithHint("send a smaller JSON body")
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, apperr.Usage("invalid_flag", "--json-body %s is not valid JSON: %v", name, err).
			WithHint("check the file with a JSON tool such as 'python3 -m json.tool %s'", name)
	}
	return data, nil
}

// parseEnvFlags turns --env NAME=VALUE and --env NAME (passed on from
// cfyauth's own environment) into NAME=VALUE pairs.
func parseEnvFlags(app *App, values []string) ([]string, error) {
	var env []string
	for _, raw := range values {
		name, value, hasValue := strings.Cut(raw, "=")
		if !validEnvName(name) {
			return nil, apperr.Usage("invalid_flag", "--env %q: invalid variable name %q", raw, name).
				WithHint("write --env NAME=VALUE, with a name of letters, digits and underscores")
		}
		if !hasValue {
			value = app.Getenv(name)
			if value == "" {
				return nil, apperr.Usage("invalid_flag", "--env %s: %s is not set in cfyauth's environment", name, name).
					WithHint("set it, or give its value with --env %s=VALUE", name)
			}
		}
		env = append(env, name+"="+value)
	}
	return env, nil
}

func validEnvName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// mergeEnv adds over to base; a name in over replaces the same name in base.
func mergeEnv(base, over []string) []string {
	index := map[string]int{}
	out := append([]string(nil), base...)
	for i, kv := range out {
		name, _, _ := strings.Cut(kv, "=")
		index[name] = i
	}
	for _, kv := range over {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := index[name]; ok {
			out[i] = kv
			continue
		}
		index[name] = len(out)
		out = append(out, kv)
	}
	return out
}

// presenceFlag is a boolean flag that never echoes a value given to it: a
// token pasted as --bearer=TOKEN must not end up in an error message, so
// a value other than true or false is recorded as a misuse.
type presenceFlag struct {
	set     bool
	misused bool
}

func (f *presenceFlag) String() string { return strconv.FormatBool(f.set) }
func (f *presenceFlag) Type() string   { return "bool" }
func (f *presenceFlag) Set(v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		f.set, f.misused = true, true
		return nil
	}
	f.set = b
	return nil
}

// refusedFlag accepts any value without echoing it, so a flag that must not
// be used can be rejected with a clear message.
type refusedFlag struct{ set bool }

func (f *refusedFlag) String() string     { return "" }
func (f *refusedFlag) Type() string       { return "string" }
func (f *refusedFlag) Set(_ string) error { f.set = true; return nil }

// --- rendering -----------------------------------------------------------------

func renderRequest(app *App, rep *moduletest.Report) error {
	c := &rep.Cases[0]
	out := testOutput{Report: rep, Mode: "request", Outcome: c.Outcome}
	failure := requestFailure(app, rep)
	if app.JSON() {
		if failure != nil {
			if err := app.WriteJSONFailed(out, failure); err != nil {
				return err
			}
			return &apperr.Silent{Code: apperr.ExitFailed}
		}
		return app.WriteJSON(out)
	}

	checks := append(append([]report.Check{}, rep.Load.Steps...), c.Steps...)
	checks = append(checks, c.Verdict)
	if err := report.RenderTable(app.IO.Out, checks, app.Global.Verbose > 0); err != nil {
		return err
	}
	w := &detailWriter{w: app.IO.Out}
	w.user(c.User)
	w.response(c.Response)
	w.moduleError(rep.Load.Error)
	w.moduleError(c.Error)
	w.logs(append(append([]moduletest.LogRecord{}, rep.Load.Logs...), c.Logs...), rep.Load.LogsDropped+c.LogsDropped)
	w.output(append(append([]moduletest.OutputChunk{}, rep.Load.Output...), c.Output...))
	w.processOutput(rep.ProcessOutput)
	if w.err != nil {
		return w.err
	}
	for _, warning := range append(append([]string{}, rep.Warnings...), c.Warnings...) {
		app.Warnf("%s", warning)
	}
	app.Infof("%s", runSummary(rep))
	if failure != nil {
		return failure
	}
	return nil
}

// requestFailure returns the error of a plain run that did not
// authenticate, or that had warnings under --strict.
func requestFailure(app *App, rep *moduletest.Report) *apperr.Error {
	c := &rep.Cases[0]
	if !c.Passed() {
		e := apperr.Failed("not_authenticated", "%s: %s", rep.Module.Name, c.Verdict.Summary)
		if c.Verdict.Hint != "" {
			e.WithHint("%s", c.Verdict.Hint)
		}
		return e
	}
	if app.Global.Strict && hasWarnings(rep) {
		return apperr.Failed("warnings", "%s authenticated the request with warnings", rep.Module.Name).
			WithHint("warnings count as failures because --strict is set")
	}
	return nil
}

func hasWarnings(rep *moduletest.Report) bool {
	if len(rep.Warnings) > 0 || report.Worst(rep.Load.Steps) == report.Warn {
		return true
	}
	for _, c := range rep.Cases {
		if len(c.Warnings) > 0 || report.Worst(c.Steps) == report.Warn {
			return true
		}
	}
	return false
}

func renderCases(app *App, rep *moduletest.Report) error {
	summary := &casesSummary{}
	for i := range rep.Cases {
		if rep.Cases[i].Passed() {
			summary.Passed++
		} else {
			summary.Failed++
		}
	}
	var failure *apperr.Error
	if summary.Failed > 0 {
		failure = apperr.Failed("cases_failed", "%d of %d cases failed", summary.Failed, len(rep.Cases))
		if app.JSON() {
			failure.WithHint("each case's verdict, steps, logs and output are in cases[]")
		} else {
			failure.WithHint("the details of each failed case are printed after the table; add -v to print every case")
		}
	} else if app.Global.Strict && hasWarnings(rep) {
		failure = apperr.Failed("warnings", "every case passed, with warnings").
			WithHint("warnings count as failures because --strict is set")
	}
	if app.JSON() {
		out := testOutput{Report: rep, Mode: "cases", Summary: summary}
		if failure != nil {
			if err := app.WriteJSONFailed(out, failure); err != nil {
				return err
			}
			return &apperr.Silent{Code: apperr.ExitFailed}
		}
		return app.WriteJSON(out)
	}

	var checks []report.Check
	for _, s := range rep.Load.Steps {
		s.Subject = rep.Module.Name
		checks = append(checks, s)
	}
	for _, c := range rep.Cases {
		v := c.Verdict
		v.Subject = c.Name
		checks = append(checks, v)
	}
	if err := report.RenderTable(app.IO.Out, checks, false); err != nil {
		return err
	}
	w := &detailWriter{w: app.IO.Out}
	w.moduleError(rep.Load.Error)
	w.logs(rep.Load.Logs, rep.Load.LogsDropped)
	w.output(rep.Load.Output)
	for i := range rep.Cases {
		c := &rep.Cases[i]
		if c.Passed() && app.Global.Verbose == 0 {
			continue
		}
		w.caseDetails(c)
	}
	w.processOutput(rep.ProcessOutput)
	if w.err != nil {
		return w.err
	}
	for _, warning := range rep.Warnings {
		app.Warnf("%s", warning)
	}
	for _, c := range rep.Cases {
		for _, warning := range c.Warnings {
			app.Warnf("case %q: %s", c.Name, warning)
		}
	}
	app.Infof("%d of %d cases passed; %s", summary.Passed, len(rep.Cases), runSummary(rep))
	if failure != nil {
		return failure
	}
	return nil
}

func runSummary(rep *moduletest.Report) string {
	authBase := rep.AuthBase
	if rep.AuthBaseFile != "" {
		authBase += " (" + rep.AuthBaseFile + ")"
	}
	return fmt.Sprintf("ran %s with Python %s (%s), AuthBase: %s, flask: %s, in %.0f ms",
		rep.Module.Name, rep.Interpreter.Version, rep.Interpreter.Path, authBase, rep.Flask, rep.DurationMS)
}

// detailWriter prints the sections under the step table; it keeps the first
// write error.
type detailWriter struct {
	w   io.Writer
	err error
}

func (d *detailWriter) printf(format string, args ...any) {
	if d.err == nil {
		_, d.err = fmt.Fprintf(d.w, format, args...)
	}
}

// block prints multi-line text indented under a heading.
func (d *detailWriter) block(prefix, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		d.printf("%s%s\n", prefix, line)
	}
}

func (d *detailWriter) user(u *moduletest.User) {
	if u == nil {
		return
	}
	d.printf("\nuser %v:\n", u.Username)
	for _, f := range u.Fields {
		value, _ := json.Marshal(f.Value)
		d.printf("  %s: %s\n", f.Name, value)
	}
}

func (d *detailWriter) response(r *moduletest.Response) {
	if r == nil {
		return
	}
	d.printf("\nresponse %s (%s):\n", r.StatusLine, r.Class)
	for _, h := range r.Headers {
		d.printf("  %s: %s\n", h.Name, h.Value)
	}
	if r.Body != "" {
		d.printf("  body:\n")
		d.block("    ", r.Body)
	}
	if r.BodyTruncated {
		d.printf("  (body truncated)\n")
	}
}

func (d *detailWriter) moduleError(e *moduletest.ModuleError) {
	if e == nil {
		return
	}
	d.printf("\nexception in step %s: %s", e.Step, e.Type)
	if e.Message != "" {
		d.printf(": %s", e.Message)
	}
	if e.File != "" {
		d.printf(" (%s:%d)", e.File, e.Line)
	}
	d.printf("\n")
	if e.Traceback != "" {
		d.block("  ", e.Traceback)
	}
}

func (d *detailWriter) logs(records []moduletest.LogRecord, dropped int) {
	if len(records) == 0 && dropped == 0 {
		return
	}
	d.printf("\nlogged:\n")
	for _, r := range records {
		d.printf("  %-12s %-8s %s: ", r.Step, r.Level, r.Logger)
		lines := strings.Split(strings.TrimRight(r.Message, "\n"), "\n")
		d.printf("%s", lines[0])
		if r.File != "" {
			d.printf(" (%s:%d)", r.File, r.Line)
		}
		d.printf("\n")
		for _, line := range lines[1:] {
			d.printf("    %s\n", line)
		}
	}
	if dropped > 0 {
		d.printf("  (%d more records not kept)\n", dropped)
	}
}

func (d *detailWriter) output(chunks []moduletest.OutputChunk) {
	if len(chunks) == 0 {
		return
	}
	d.printf("\nprinted:\n")
	for _, c := range chunks {
		d.printf("  %s, %s:\n", c.Step, c.Stream)
		d.block("    | ", c.Text)
		if c.Truncated {
			d.printf("    (truncated)\n")
		}
	}
}

func (d *detailWriter) processOutput(p moduletest.ProcessOutput) {
	if p.Stdout == "" && p.Stderr == "" {
		return
	}
	d.printf("\nwritten to the process's own stdout and stderr (file descriptors 1 and 2, child processes):\n")
	for _, s := range []struct{ name, text string }{{"stdout", p.Stdout}, {"stderr", p.Stderr}} {
		if s.text != "" {
			d.printf("  %s:\n", s.name)
			d.block("    | ", s.text)
		}
	}
	if p.Truncated {
		d.printf("  (truncated)\n")
	}
}

func (d *detailWriter) caseDetails(c *moduletest.CaseResult) {
	d.printf("\ncase %q: %s\n", c.Name, c.Verdict.Summary)
	for _, s := range c.Steps {
		d.printf("  %-12s %-5s %s\n", s.ID, strings.ToUpper(string(s.Status)), s.Summary)
	}
	d.user(c.User)
	d.response(c.Response)
	d.moduleError(c.Error)
	d.logs(c.Logs, c.LogsDropped)
	d.output(c.Output)
}

// sortedEnvNames is used by -v output to list the variables passed on.
func sortedEnvNames(env []string) []string {
	names := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
