// Package moduletest runs an authenticator module offline with the
// manager's Python, through the documented handler contract. The module is
// imported and its module-level configure(logger) is called once. Then each
// synthetic request goes to can_handle_auth_request and _authenticate_request
// of the object configure returned. The base class's handle_auth_request,
// which writes the user to the manager's database, is never called.
//
// Without the premium package (cloudify_premium), stand-in AuthBase and
// UserData classes follow the documented contract; without Flask, small
// stand-ins for flask.Response and werkzeug's classes let modules import.
// The package never prints and never prompts; it returns a Report.
package moduletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/pyharness"
	"github.com/cfyauth/cfyauth/internal/report"
)

// DefaultStepTimeout bounds each call into module code.
const DefaultStepTimeout = 10 * time.Second

// AuthBaseMode chooses where AuthBase and UserData come from.
type AuthBaseMode string

const (
	// AuthBaseAuto uses the premium package when it is importable, else the
	// stand-ins.
	AuthBaseAuto AuthBaseMode = "auto"
	// AuthBasePremium requires the premium package.
	AuthBasePremium AuthBaseMode = "premium"
	// AuthBaseStandIn uses the stand-ins even where the premium package is
	// installed.
	AuthBaseStandIn AuthBaseMode = "stand-in"
)

// Options configure Run.
type Options struct {
	// Python is the interpreter to run the module with.
	Python string
	// StepTimeout bounds each call into module code (import, configure,
	// and each can_handle_auth_request and _authenticate_request); zero
	// means DefaultStepTimeout.
	StepTimeout time.Duration
	AuthBase    AuthBaseMode
	// Env contains NAME=VALUE pairs added to the module's minimal environment.
	Env []string
}

// Case is one request with an optional expected outcome.
type Case struct {
	Name    string
	Request Request
	// Expect is nil when the run only reports what happened.
	Expect *Expectation
}

// Outcome is the result class of one request.
type Outcome string

const (
	// OutcomeUser: _authenticate_request returned a UserData.
	OutcomeUser Outcome = "user"
	// OutcomeNoUser: _authenticate_request returned None.
	OutcomeNoUser Outcome = "no_user"
	// OutcomeResponse: _authenticate_request returned a response object.
	OutcomeResponse Outcome = "response"
	// OutcomeNotHandled: can_handle_auth_request returned a false value.
	OutcomeNotHandled Outcome = "not_handled"
	// OutcomeNotConfigured: the module is not in the pool (configure
	// returned None, raised, or the import failed).
	OutcomeNotConfigured Outcome = "not_configured"
	// OutcomeError: the module raised an exception for this request.
	OutcomeError Outcome = "error"
	// OutcomeInvalidValue: _authenticate_request returned something the
	// REST service cannot use.
	OutcomeInvalidValue Outcome = "invalid_value"
	// OutcomeTimeout: a step did not return in time and the process was stopped.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeCrashed: the Python process ended during a step.
	OutcomeCrashed Outcome = "crashed"
	// OutcomeNotRun: an earlier timeout or crash stopped the process first.
	OutcomeNotRun Outcome = "not_run"
)

// Outcomes lists every outcome, for validating expectations.
var Outcomes = []Outcome{OutcomeUser, OutcomeNoUser, OutcomeResponse, OutcomeNotHandled, OutcomeNotConfigured,
	OutcomeError, OutcomeInvalidValue, OutcomeTimeout, OutcomeCrashed, OutcomeNotRun}

// Report is everything one run produced.
type Report struct {
	Module       ModuleInfo  `json:"module"`
	Interpreter  Interpreter `json:"interpreter"`
	AuthBase     string      `json:"auth_base"`
	AuthBaseFile string      `json:"auth_base_file,omitempty"`
	Flask        string      `json:"flask"`
	Werkzeug     string      `json:"werkzeug"`
	// Configured is true when configure returned an authenticator.
	Configured    bool          `json:"configured"`
	Load          Phase         `json:"load"`
	Cases         []CaseResult  `json:"cases"`
	Warnings      []string      `json:"warnings"`
	ProcessOutput ProcessOutput `json:"process_output"`
	DurationMS    float64       `json:"duration_ms"`
}

// ModuleInfo names the module under test.
type ModuleInfo struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	SHA256 string `json:"sha256"`
}

// Interpreter is the Python the module ran with.
type Interpreter struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

// Phase is a group of steps with what the module logged and printed in them.
type Phase struct {
	Steps       []report.Check `json:"steps"`
	Logs        []LogRecord    `json:"logs"`
	LogsDropped int            `json:"logs_dropped,omitempty"`
	Output      []OutputChunk  `json:"output"`
	Error       *ModuleError   `json:"error,omitempty"`
}

// CaseResult is the full result of one request.
type CaseResult struct {
	Name    string         `json:"name"`
	Request RequestSummary `json:"request"`
	Phase
	Outcome  Outcome      `json:"outcome"`
	User     *User        `json:"user,omitempty"`
	Response *Response    `json:"response,omitempty"`
	Expect   *Expectation `json:"expect,omitempty"`
	// Verdict is the "outcome" check of a plain run, or the "expect" check
	// of a case with an expectation.
	Verdict    report.Check `json:"verdict"`
	Warnings   []string     `json:"warnings"`
	DurationMS float64      `json:"duration_ms"`

	// stopReason is the reason the request did not run to its end.
	stopReason string
	// userUnredacted is User before redaction: expectations are compared
	// with it, so a password equal to the user name cannot fail a case.
	userUnredacted *User
}

// Passed reports whether the case met its expectation, or, without one,
// whether the module authenticated the request.
func (c *CaseResult) Passed() bool { return c.Verdict.Status == report.Pass }

// LogRecord is one record the module logged.
type LogRecord struct {
	Step    string `json:"step"`
	Level   string `json:"level"`
	Logger  string `json:"logger"`
	Message string `json:"message"`
	File    string `json:"file"`
	Line    int    `json:"line"`
}

// OutputChunk is the text the module printed to sys.stdout or sys.stderr in one step.
type OutputChunk struct {
	Step      string `json:"step"`
	Stream    string `json:"stream"`
	Text      string `json:"text"`
	Truncated bool   `json:"truncated"`
}

// ModuleError is an exception raised by module code.
type ModuleError struct {
	Step       string `json:"step"`
	Type       string `json:"type"`
	Message    string `json:"message"`
	File       string `json:"file,omitempty"`
	Line       int    `json:"line,omitempty"`
	RaisedIn   string `json:"raised_in,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Traceback  string `json:"traceback"`
}

// User is the UserData a module returned, with every field it carries.
type User struct {
	Username any     `json:"username"`
	Fields   []Field `json:"fields"`
}

// Field is one UserData attribute.
type Field struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Response is a response object a module returned.
type Response struct {
	Status        int             `json:"status"`
	StatusLine    string          `json:"status_line"`
	Class         string          `json:"class"`
	Headers       []HeaderSummary `json:"headers"`
	Body          string          `json:"body"`
	BodyTruncated bool            `json:"body_truncated"`
}

// ProcessOutput is the text that reached the process's own stdout and
// stderr: writes to the file descriptors and output of child processes.
type ProcessOutput struct {
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Truncated bool   `json:"truncated"`
}

// Run runs src through the handler contract once, then sends every case's
// request. It returns an error only when the harness could not run: no
// usable interpreter, a premium package that fails to import, or an
// interrupt. Every failure of the module itself is in the report.
func Run(ctx context.Context, src modules.Source, cases []Case, opts Options) (*Report, error) {
	if len(cases) == 0 {
		return nil, errors.New("run module test: no request to send")
	}
	step := opts.StepTimeout
	if step <= 0 {
		step = DefaultStepTimeout
	}
	mode := opts.AuthBase
	if mode == "" {
		mode = AuthBaseAuto
	}
	standins, err := pyharness.ProgramSource("standins.py")
	if err != nil {
		return nil, fmt.Errorf("read embedded stand-ins: %w", err)
	}

	var secrets []string
	for _, c := range cases {
		secrets = append(secrets, c.Request.secrets()...)
	}
	red := newRedactor(secrets)

	requests := []any{loadRequest{
		ID: "load", Op: "load", Name: src.Name, Filename: moduleFilename(src), Source: string(src.Data),
		Standins: string(standins), AuthBase: string(mode), Secrets: red.secrets,
	}}
	for i, c := range cases {
		requests = append(requests, caseRequest{ID: caseID(i), Op: "request", Request: c.Request.spec()})
	}

	runner := &pyharness.Runner{
		Python:      opts.Python,
		StepTimeout: step,
		// A safety net only: each step has its own bound.
		Timeout: step*time.Duration(2+2*len(cases)) + 10*time.Second,
		Env:     opts.Env,
	}
	out, runErr := runner.Run(ctx, "runmodule.py", requests)
	if runErr != nil {
		if err := harnessFailure(ctx, runErr, out, opts.Python, red); err != nil {
			return nil, err
		}
	}

	rep := &Report{
		Module:   ModuleInfo{Name: src.Name, Source: src.Origin, SHA256: src.SHA256},
		Warnings: []string{},
		Cases:    make([]CaseResult, len(cases)),
	}
	rep.Interpreter = Interpreter{Path: opts.Python, Version: helloVersion(out.Hello)}
	rep.ProcessOutput = ProcessOutput{Stdout: red.String(out.Stdout), Stderr: red.String(out.Stderr), Truncated: out.Truncated}
	if out.Truncated {
		rep.ProcessOutput.Stdout = red.Truncated(out.Stdout)
		rep.ProcessOutput.Stderr = red.Truncated(out.Stderr)
	}
	rep.DurationMS = milliseconds(out.Duration)

	results, err := decodeResults(out.Results)
	if err != nil {
		return nil, err
	}
	if err := rep.applyLoad(results["load"]); err != nil {
		return nil, err
	}
	for i, c := range cases {
		cr := &rep.Cases[i]
		cr.Name = c.Name
		cr.Request = c.Request.Summary()
		cr.Expect = c.Expect
		cr.applyResult(results[caseID(i)])
	}
	if runErr != nil {
		rep.applyInterruption(runErr, out, step, red)
	}
	for i, c := range cases {
		rep.Cases[i].Verdict = verdict(&rep.Cases[i], c.Expect)
		if rep.Cases[i].Outcome == OutcomeNotConfigured && c.Expect == nil {
			rep.Cases[i].Verdict.Hint = rep.notConfiguredHint()
		}
	}
	return rep, nil
}

// notConfiguredHint names the load step that kept the module out of the
// pool, with that step's own hint.
func (rep *Report) notConfiguredHint() string {
	for _, s := range rep.Load.Steps {
		if s.Status == report.Pass || s.Status == report.Skip {
			continue
		}
		hint := fmt.Sprintf("the %s step reported: %s", s.ID, s.Summary)
		if s.Hint != "" {
			hint += "; " + s.Hint
		}
		return hint
	}
	return "fix the module so that configure(logger) returns the authenticator"
}

func caseID(i int) string { return fmt.Sprintf("case-%d", i) }

// moduleFilename is the path Python shows in tracebacks and __file__: the
// source file, or a placeholder for stdin.
func moduleFilename(src modules.Source) string {
	if src.Origin == "" || src.Origin == "-" || src.Origin == "stdin" {
		return "<stdin>"
	}
	if abs, err := filepath.Abs(src.Origin); err == nil {
		return abs
	}
	return src.Origin
}

type loadRequest struct {
	ID       string   `json:"id"`
	Op       string   `json:"op"`
	Name     string   `json:"name"`
	Filename string   `json:"filename"`
	Source   string   `json:"source"`
	Standins string   `json:"standins"`
	AuthBase string   `json:"auth_base"`
	Secrets  []string `json:"secrets"`
}

type caseRequest struct {
	ID      string      `json:"id"`
	Op      string      `json:"op"`
	Request requestSpec `json:"request"`
}

func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func helloVersion(raw json.RawMessage) string {
	var hello struct {
		Python string `json:"python"`
	}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &hello)
	}
	return hello.Python
}

// harnessFailure returns the error to stop with when the harness itself
// could not run, or nil when the run failed because of the module (a step
// that hung or ended the process), which the report then shows.
func harnessFailure(ctx context.Context, err error, out *pyharness.Outcome, python string, red *redactor) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var appErr *apperr.Error
	if errors.As(err, &appErr) {
		return appErr
	}
	if out == nil {
		return err
	}
	if len(out.Hello) == 0 {
		e := apperr.Environment("python_unusable", "%s could not run the test harness: %s", python, red.String(err.Error()))
		if out.Stderr != "" {
			e.WithHint("the interpreter wrote: %s", red.String(lastLine(out.Stderr)))
		}
		return e.WithHint("pass the manager's Python 3 interpreter with --python PATH")
	}
	return nil
}
