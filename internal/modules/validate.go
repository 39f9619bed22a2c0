package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/pyharness"
	"github.com/cfyauth/cfyauth/internal/report"
)

// ValidatorVersion changes whenever the checks change, so cached results
// from an older validator are not trusted.
const ValidatorVersion = 2

// Candidate is one module to validate: its bytes, or the error met while
// reading them.
type Candidate struct {
	Source  Source
	ReadErr error
}

// Validation is the outcome of validating one module.
type Validation struct {
	Name   string         `json:"name"`
	Origin string         `json:"source"`
	SHA256 string         `json:"sha256,omitempty"`
	Status report.Status  `json:"status"`
	Checks []report.Check `json:"checks"`
}

// Interpreter describes the Python that ran the validation.
type Interpreter struct {
	Path             string `json:"path"`
	Version          string `json:"version"`
	ValidatorVersion int    `json:"validator_version"`
	// SyntaxVersion is the X.Y whose grammar the syntax check applied, when
	// the interpreter is used instead of the manager's Python.
	SyntaxVersion string `json:"syntax_version,omitempty"`
}

// cacheKey names the interpreter in cached results: its version, and the
// grammar it checked when that was another version's.
func (i Interpreter) cacheKey() string {
	if i.SyntaxVersion == "" {
		return i.Version
	}
	return fmt.Sprintf("%s (Python %s syntax)", i.Version, i.SyntaxVersion)
}

// ValidateOptions configure Validate.
type ValidateOptions struct {
	Python  string
	Timeout time.Duration
	// SyntaxVersion, X.Y, makes the syntax check apply that version's
	// grammar. Set it when Python is used instead of the manager's
	// interpreter. Interpreters before 3.8 cannot apply another grammar,
	// and their syntax check's summary states that.
	SyntaxVersion string
}

type validateRequest struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Filename  string `json:"filename"`
	Source    string `json:"source"`
	CheckName bool   `json:"check_name"`
	// SyntaxVersion is [X, Y] of the grammar to parse with, when the
	// interpreter is used instead of the manager's.
	SyntaxVersion []int `json:"syntax_version,omitempty"`
}

type validateResult struct {
	ID      string         `json:"id"`
	Checks  []report.Check `json:"checks"`
	Seconds float64        `json:"seconds"`
}

type helloMessage struct {
	Python     string `json:"python"`
	Validator  int    `json:"validator"`
	Executable string `json:"executable"`
}

// Validate checks every candidate statically, without executing module code.
// Byte-level and name checks run here; syntax, configure, AuthBase and
// shadowing checks run in one child process of the manager's Python for the
// whole batch.
func Validate(ctx context.Context, candidates []Candidate, opts ValidateOptions) ([]Validation, Interpreter, error) {
	results := make([]Validation, len(candidates))
	syntax, err := parseSyntaxVersion(opts.SyntaxVersion)
	if err != nil {
		return nil, Interpreter{}, err
	}
	var requests []any
	index := map[string]int{}
	for i, c := range candidates {
		v := Validation{Name: c.Source.Name, Origin: c.Source.Origin, SHA256: c.Source.SHA256}
		if c.ReadErr != nil {
			v.Checks = append(v.Checks, sourceFailure(c.ReadErr))
			for _, id := range []string{"name", "syntax", "configure", "authbase"} {
				v.Checks = append(v.Checks, report.Check{ID: id, Status: report.Skip, Summary: "not checked because the source cannot be used"})
			}
			results[i] = v
			continue
		}
		v.Checks = append(v.Checks, report.Check{ID: "source", Status: report.Pass,
			Summary: fmt.Sprintf("%d bytes of UTF-8 text", len(c.Source.Data))})
		v.Checks[0].AddEvidence("sha256", c.Source.SHA256)
		nameErr := ValidateName(c.Source.Name)
		v.Checks = append(v.Checks, nameCheck(c.Source.Name, nameErr))
		id := strconv.Itoa(i)
		index[id] = i
		requests = append(requests, validateRequest{
			ID: id, Name: c.Source.Name, Filename: c.Source.Name + ".py",
			Source: string(c.Source.Data), CheckName: nameErr == nil, SyntaxVersion: syntax,
		})
		results[i] = v
	}

	interp := Interpreter{Path: opts.Python, ValidatorVersion: ValidatorVersion, SyntaxVersion: opts.SyntaxVersion}
	if len(requests) > 0 {
		timeout := opts.Timeout
		if timeout <= 0 {
			// One child for the batch: allow more time for large batches.
			timeout = 30*time.Second + time.Duration(len(requests))*100*time.Millisecond
		}
		runner := &pyharness.Runner{Python: opts.Python, Timeout: timeout}
		out, err := runner.Run(ctx, "validate.py", requests)
		if err != nil {
			return nil, interp, harnessError(err, out, opts.Python)
		}
		var hello helloMessage
		if err := json.Unmarshal(out.Hello, &hello); err == nil {
			interp.Version = hello.Python
		}
		for _, msg := range out.Results {
			var r validateResult
			if err := json.Unmarshal(msg.Raw, &r); err != nil {
				return nil, interp, fmt.Errorf("decode validator result: %w", err)
			}
			i, ok := index[r.ID]
			if !ok {
				return nil, interp, fmt.Errorf("validator returned unknown id %q", r.ID)
			}
			for j := range r.Checks {
				r.Checks[j].Duration = time.Duration(r.Seconds * float64(time.Second))
			}
			results[i].Checks = append(results[i].Checks, r.Checks...)
		}
	}
	for i := range results {
		for j := range results[i].Checks {
			results[i].Checks[j].Subject = results[i].subject()
		}
		results[i].Status = report.Worst(results[i].Checks)
	}
	return results, interp, nil
}

// parseSyntaxVersion turns "X.Y" into [X, Y], or "" into nil.
func parseSyntaxVersion(v string) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	major, minor, ok := strings.Cut(v, ".")
	x, err1 := strconv.Atoi(major)
	y, err2 := strconv.Atoi(minor)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("validate modules: invalid syntax version %q, want X.Y", v)
	}
	return []int{x, y}, nil
}

func (v Validation) subject() string {
	if v.Name != "" && ValidateName(v.Name) == nil {
		return v.Name
	}
	return v.Origin
}

func sourceFailure(err error) report.Check {
	c := report.Check{ID: "source", Status: report.Fail, Summary: err.Error()}
	var se *SourceError
	if errors.As(err, &se) {
		c.Summary = se.Error()
		c.Hint = se.Hint
	}
	return c
}

func nameCheck(name string, err error) report.Check {
	if err == nil {
		return report.Check{ID: "name", Status: report.Pass, Summary: fmt.Sprintf("%q is a valid module name", name)}
	}
	c := report.Check{ID: "name", Status: report.Fail, Summary: err.Error(),
		Hint: "rename the file, or give a valid name with --name"}
	var ne *NameError
	if errors.As(err, &ne) && ne.Suggestion != "" {
		c.Hint = fmt.Sprintf("use a valid name, such as --name %s", ne.Suggestion)
	}
	return c
}

func harnessError(err error, out *pyharness.Outcome, python string) error {
	var timeout *pyharness.TimeoutError
	var proto *pyharness.ProtocolError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &timeout):
		return apperr.Failed("validator_timeout", "validation with %s %s", python, timeout.Error()).
			WithHint("validate fewer modules at once, or raise --timeout")
	case errors.As(err, &proto):
		e := apperr.Environment("python_unusable", "%s could not run the validator: %s", python, proto.Reason)
		if out != nil && out.Stderr != "" {
			e.WithHint("the interpreter wrote: %s", lastLines(out.Stderr, 5))
		}
		return e.WithHint("pass the manager's Python 3 interpreter with --python PATH")
	}
	return err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
