package moduletest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/pyharness"
	"github.com/cfyauth/cfyauth/internal/report"
)

// pyStep is a step as the harness reports it.
type pyStep struct {
	ID       string            `json:"id"`
	Status   report.Status     `json:"status"`
	Summary  string            `json:"summary"`
	Hint     string            `json:"hint"`
	Evidence []report.Evidence `json:"evidence"`
	Seconds  float64           `json:"seconds"`
}

// pyResult is one result message of the harness, for a load or a request.
type pyResult struct {
	ID           string        `json:"id"`
	AuthBase     string        `json:"auth_base"`
	AuthBaseFile string        `json:"auth_base_file"`
	Flask        string        `json:"flask"`
	Werkzeug     string        `json:"werkzeug"`
	Configured   bool          `json:"configured"`
	Fatal        *pyFatal      `json:"fatal"`
	Steps        []pyStep      `json:"steps"`
	Warnings     []string      `json:"warnings"`
	Logs         []LogRecord   `json:"logs"`
	LogsDropped  int           `json:"logs_dropped"`
	Output       []OutputChunk `json:"output"`
	Error        *ModuleError  `json:"error"`
	Outcome      Outcome       `json:"outcome"`
	User         *User         `json:"user"`
	// UserUnredacted is User as the module returned it, for comparing with
	// an expectation; it is never shown.
	UserUnredacted *User     `json:"user_unredacted"`
	Response       *Response `json:"response"`
}

// pyFatal is the reason, outside the module, that the harness stopped.
type pyFatal struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// pyEvent marks the start of a step.
type pyEvent struct {
	ID           string `json:"id"`
	Step         string `json:"step"`
	AuthBase     string `json:"auth_base"`
	AuthBaseFile string `json:"auth_base_file"`
	Flask        string `json:"flask"`
	Werkzeug     string `json:"werkzeug"`
}

// decodeResults decodes the harness's result messages. They are taken as
// they come: the harness has redacted the module's text in them already.
func decodeResults(messages []pyharness.Message) (map[string]*pyResult, error) {
	results := map[string]*pyResult{}
	for _, m := range messages {
		var r pyResult
		if err := json.Unmarshal(m.Raw, &r); err != nil {
			return nil, fmt.Errorf("decode harness result: %w", err)
		}
		results[r.ID] = &r
	}
	return results, nil
}

func (p *Phase) apply(r *pyResult) {
	for _, s := range r.Steps {
		p.Steps = append(p.Steps, report.Check{
			ID: s.ID, Status: s.Status, Summary: s.Summary, Hint: s.Hint, Evidence: s.Evidence,
			Duration: time.Duration(s.Seconds * float64(time.Second)),
		})
	}
	p.Logs = append(p.Logs, r.Logs...)
	p.LogsDropped += r.LogsDropped
	p.Output = append(p.Output, r.Output...)
	if r.Error != nil {
		p.Error = r.Error
	}
}

func (p *Phase) ensureLists() {
	if p.Steps == nil {
		p.Steps = []report.Check{}
	}
	if p.Logs == nil {
		p.Logs = []LogRecord{}
	}
	if p.Output == nil {
		p.Output = []OutputChunk{}
	}
}

func (rep *Report) applyLoad(r *pyResult) error {
	defer rep.Load.ensureLists()
	if r == nil {
		return nil
	}
	if r.Fatal != nil {
		switch r.Fatal.Kind {
		case "premium":
			return apperr.Environment("premium_unusable", "the manager's premium package cannot be used: %s", r.Fatal.Reason).
				WithHint("test with the stand-in AuthBase and UserData: add --auth-base stand-in")
		case "name":
			return apperr.Usage("invalid_name", "%s", r.Fatal.Reason).
				WithHint("give the module another name with --name")
		}
		return apperr.Environment("harness_failed", "the test harness failed: %s", r.Fatal.Reason).
			WithHint("run again with -v and report the output to the cfyauth maintainers")
	}
	rep.setEnvironment(r.AuthBase, r.AuthBaseFile, r.Flask, r.Werkzeug)
	rep.Configured = r.Configured
	rep.Load.apply(r)
	rep.Warnings = append(rep.Warnings, r.Warnings...)
	return nil
}

func (rep *Report) setEnvironment(authBase, authBaseFile, flask, werkzeug string) {
	rep.AuthBase, rep.AuthBaseFile, rep.Flask, rep.Werkzeug = authBase, authBaseFile, flask, werkzeug
}

func (c *CaseResult) applyResult(r *pyResult) {
	defer c.ensureLists()
	if r == nil {
		return
	}
	c.Phase.apply(r)
	c.Outcome = r.Outcome
	c.User = r.User
	c.userUnredacted = r.UserUnredacted
	c.Response = r.Response
	c.Warnings = append(c.Warnings, r.Warnings...)
	var total time.Duration
	for _, s := range c.Steps {
		total += s.Duration
	}
	c.DurationMS = milliseconds(total)
}

func (c *CaseResult) ensureLists() {
	c.Phase.ensureLists()
	if c.Warnings == nil {
		c.Warnings = []string{}
	}
}

// Steps in the order the harness runs them.
var (
	loadSteps    = []string{"import", "configure"}
	requestSteps = []string{"can_handle", "authenticate"}
)

// applyInterruption fills in what a timeout or a crash left unreported: the
// step that was running fails, the steps before it passed (their details
// died with the process), and everything after it did not run.
func (rep *Report) applyInterruption(runErr error, out *pyharness.Outcome, stepTimeout time.Duration, red *redactor) {
	events := decodeEvents(out.Events)
	for _, e := range events {
		if e.Step == "setup" && rep.AuthBase == "" {
			rep.setEnvironment(e.AuthBase, e.AuthBaseFile, e.Flask, e.Werkzeug)
		}
	}
	var last pyEvent
	if len(events) > 0 {
		last = events[len(events)-1]
	}

	outcome := OutcomeCrashed
	var what string
	var timeout *pyharness.TimeoutError
	switch {
	case errors.As(runErr, &timeout):
		outcome = OutcomeTimeout
		what = fmt.Sprintf("did not return within %s, so the harness stopped the Python process", timeout.Timeout)
	case out.Signal != 0:
		what = fmt.Sprintf("ended the Python process: it was killed by signal %d (%s)", int(out.Signal), out.Signal)
	default:
		what = fmt.Sprintf("ended the Python process with exit code %d", out.ExitCode)
		var proto *pyharness.ProtocolError
		if errors.As(runErr, &proto) && strings.HasPrefix(proto.Reason, "invalid message") {
			what = "broke the harness protocol: " + red.String(proto.Reason)
		}
	}
	hint := "look for a call that exits or kills the process (sys.exit in a thread, os._exit, os.kill)"
	if outcome == OutcomeTimeout {
		hint = fmt.Sprintf("look for a call that blocks (network, locks, input), or raise --timeout above %s", stepTimeout)
	}

	reason := ""
	if len(rep.Load.Steps) == 0 {
		stepName := ""
		if last.ID == "load" {
			stepName = last.Step
		}
		reason = interruptSteps(&rep.Load, loadSteps, stepName, what, hint)
	}
	for i := range rep.Cases {
		c := &rep.Cases[i]
		if c.Outcome != "" {
			continue
		}
		switch {
		case reason != "":
			c.Outcome = OutcomeNotRun
			c.stopReason = reason
			notRun(&c.Phase, requestSteps, reason)
		case last.ID == caseID(i):
			c.Outcome = outcome
			reason = interruptSteps(&c.Phase, requestSteps, last.Step, what, hint)
			c.stopReason = reason
		default:
			// The process ended between steps, outside module calls.
			c.Outcome = outcome
			reason = fmt.Sprintf("the module %s between two steps", what)
			c.stopReason = reason
			notRun(&c.Phase, requestSteps, reason)
		}
	}
}

// interruptSteps marks the step that was running as failed and returns the
// reason later steps did not run.
func interruptSteps(p *Phase, order []string, running, what, hint string) string {
	if running == "" || running == "setup" {
		running = order[0]
	}
	reason := fmt.Sprintf("%s %s", stepLabel(running), what)
	p.Steps = p.Steps[:0]
	seen := false
	for _, id := range order {
		switch {
		case id == running:
			seen = true
			p.Steps = append(p.Steps, report.Check{ID: id, Status: report.Fail, Summary: reason, Hint: hint})
		case !seen:
			p.Steps = append(p.Steps, report.Check{ID: id, Status: report.Pass,
				Summary: "completed; the Python process ended before the harness could report its details"})
		default:
			p.Steps = append(p.Steps, report.Check{ID: id, Status: report.Skip, Summary: "not run: " + reason})
		}
	}
	p.ensureLists()
	return reason
}

func notRun(p *Phase, order []string, reason string) {
	p.Steps = p.Steps[:0]
	for _, id := range order {
		p.Steps = append(p.Steps, report.Check{ID: id, Status: report.Skip, Summary: "not run: " + reason})
	}
	p.ensureLists()
}

// stepLabel names a step by the module code it runs.
func stepLabel(step string) string {
	switch step {
	case "import":
		return "importing the module"
	case "configure":
		return "configure(logger)"
	case "can_handle":
		return "can_handle_auth_request"
	case "authenticate":
		return "_authenticate_request"
	}
	return step
}

func decodeEvents(messages []pyharness.Message) []pyEvent {
	var events []pyEvent
	for _, m := range messages {
		var e pyEvent
		if json.Unmarshal(m.Raw, &e) == nil {
			events = append(events, e)
		}
	}
	return events
}

// lastLine returns the last line of s that is not blank.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n\t ")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
