package moduletest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/cfyauth/cfyauth/internal/report"
)

// Expectation is the outcome a case expects. User implies the outcome
// "user" and Status the outcome "response"; Fields are compared with the
// UserData fields of the same name, as JSON values.
type Expectation struct {
	Outcome Outcome        `json:"outcome,omitempty"`
	User    string         `json:"user,omitempty"`
	Fields  map[string]any `json:"fields,omitempty"`
	Status  int            `json:"status,omitempty"`
}

// wantOutcome returns the outcome the expectation requires.
func (e *Expectation) wantOutcome() Outcome {
	switch {
	case e.Outcome != "":
		return e.Outcome
	case e.User != "" || len(e.Fields) > 0:
		return OutcomeUser
	case e.Status != 0:
		return OutcomeResponse
	}
	return ""
}

// String describes the expectation in words.
func (e *Expectation) String() string {
	switch want := e.wantOutcome(); want {
	case OutcomeUser:
		s := "a user"
		if e.User != "" {
			s = "user " + e.User
		}
		if len(e.Fields) > 0 {
			s += " with " + strings.Join(sortedKeys(e.Fields), ", ")
		}
		return s
	case OutcomeResponse:
		if e.Status != 0 {
			return fmt.Sprintf("a response with status %d", e.Status)
		}
		return "a response"
	default:
		return describeOutcome(want)
	}
}

// mismatch returns why the case does not meet the expectation, or "".
func (e *Expectation) mismatch(c *CaseResult) string {
	want := e.wantOutcome()
	if c.Outcome != want {
		return fmt.Sprintf("expected %s; got %s", e, describeResult(c))
	}
	// Values are compared as the module returned them; the messages show
	// the redacted copy.
	returned := c.userUnredacted
	if returned == nil {
		returned = c.User
	}
	if e.User != "" && (returned == nil || returned.Username != e.User) {
		return fmt.Sprintf("expected user %s; got %s", e.User, describeResult(c))
	}
	if e.Status != 0 && (c.Response == nil || c.Response.Status != e.Status) {
		return fmt.Sprintf("expected status %d; got %s", e.Status, describeResult(c))
	}
	for _, name := range sortedKeys(e.Fields) {
		got, ok := returned.field(name)
		if !ok {
			return fmt.Sprintf("expected field %s; UserData has no such field", name)
		}
		if !sameJSON(got, e.Fields[name]) {
			shown, _ := c.User.field(name)
			return fmt.Sprintf("expected field %s to be %s; got %s", name, jsonText(e.Fields[name]), jsonText(shown))
		}
	}
	return ""
}

func (u *User) field(name string) (any, bool) {
	if u == nil {
		return nil, false
	}
	for _, f := range u.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// sameJSON compares two values as their JSON encodings decode, so 1 and
// 1.0, or a YAML map and a Python dict, compare equal.
func sameJSON(a, b any) bool {
	var x, y any
	if json.Unmarshal([]byte(jsonText(a)), &x) != nil || json.Unmarshal([]byte(jsonText(b)), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func jsonText(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func describeOutcome(o Outcome) string {
	switch o {
	case OutcomeUser:
		return "a user"
	case OutcomeNoUser:
		return "no user"
	case OutcomeResponse:
		return "a response"
	case OutcomeNotHandled:
		return "a request the module does not handle"
	case OutcomeNotConfigured:
		return "a module outside the pool"
	case OutcomeError:
		return "an exception"
	case OutcomeInvalidValue:
		return "a value the REST service cannot use"
	case OutcomeTimeout:
		return "a timeout"
	case OutcomeCrashed:
		return "an ended Python process"
	case OutcomeNotRun:
		return "a request that did not run"
	}
	return string(o)
}

// describeResult describes the result of a case in a few words.
func describeResult(c *CaseResult) string {
	switch c.Outcome {
	case OutcomeUser:
		if c.User != nil {
			return fmt.Sprintf("user %v", c.User.Username)
		}
	case OutcomeResponse:
		if c.Response != nil {
			return fmt.Sprintf("a response with status %d", c.Response.Status)
		}
	case OutcomeError:
		if c.Error != nil {
			return fmt.Sprintf("an exception (%s)", errorText(c.Error))
		}
	case OutcomeTimeout, OutcomeCrashed, OutcomeNotRun:
		if c.stopReason != "" {
			return fmt.Sprintf("%s (%s)", describeOutcome(c.Outcome), c.stopReason)
		}
	}
	return describeOutcome(c.Outcome)
}

// errorText describes an exception; SystemExit is described by its call.
func errorText(e *ModuleError) string {
	s := e.Type
	if e.Type == "SystemExit" {
		s = e.Message
	} else if e.Message != "" {
		s += ": " + e.Message
	}
	if e.File != "" {
		s += fmt.Sprintf(" at %s:%d", e.File, e.Line)
	}
	return s
}

// verdict returns the last check of a case: whether the module
// authenticated the request, or whether the case met its expectation.
func verdict(c *CaseResult, e *Expectation) report.Check {
	if e != nil {
		if why := e.mismatch(c); why != "" {
			return report.Check{ID: "expect", Status: report.Fail, Summary: why,
				Hint: "fix the module, or the case's expect if the module is right"}
		}
		return report.Check{ID: "expect", Status: report.Pass, Summary: "got " + describeResult(c) + " as expected"}
	}
	check := report.Check{ID: "outcome", Status: report.Fail}
	switch c.Outcome {
	case OutcomeUser:
		check.Status = report.Pass
		check.Summary = "authenticated"
		if c.User != nil {
			check.Summary = fmt.Sprintf("authenticated as %v", c.User.Username)
		}
	case OutcomeNoUser:
		check.Summary = "not authenticated: _authenticate_request returned None"
		check.Hint = "check the credentials or headers the module expects"
		if n := len(c.Logs); n > 0 {
			check.Hint += fmt.Sprintf(", and the %d record(s) it logged for this request", n)
		}
	case OutcomeResponse:
		check.Summary = "not authenticated: the module answered with " + describeResult(c)
	case OutcomeNotHandled:
		check.Summary = "not authenticated: the module does not handle this request"
		check.Hint = "send what can_handle_auth_request looks for, such as --user or a --header"
	case OutcomeNotConfigured:
		check.Summary = "not authenticated: the module is not in the pool"
		// Run names the load step that kept the module out.
		check.Hint = "fix the module so that configure(logger) returns the authenticator"
	case OutcomeError:
		check.Summary = "not authenticated: the module raised an exception"
		switch {
		case c.Error != nil && c.Error.Type == "SystemExit":
			check.Summary = "not authenticated: " + errorText(c.Error)
		case c.Error != nil:
			check.Summary = "not authenticated: the module raised " + errorText(c.Error)
		}
	case OutcomeInvalidValue:
		check.Summary = "not authenticated: _authenticate_request returned a value the REST service cannot use"
	default:
		check.Summary = "not authenticated: " + c.stopReason
	}
	return check
}
