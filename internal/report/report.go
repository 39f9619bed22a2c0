// Package report defines the check-result schema shared by validate, ldap
// check, okta check, status and the restart health gate, and renders it as a
// table or JSON.
package report

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Status is the outcome of one check.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// rank orders statuses from best to worst, so a list of checks has a worst one.
func (s Status) rank() int {
	switch s {
	case Fail:
		return 3
	case Warn:
		return 2
	case Pass:
		return 1
	default:
		return 0
	}
}

// Evidence is one named fact a check observed, in the order it was added.
type Evidence struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Check is the result of one check.
type Check struct {
	ID       string        `json:"id"`
	Subject  string        `json:"subject,omitempty"`
	Status   Status        `json:"status"`
	Summary  string        `json:"summary"`
	Evidence []Evidence    `json:"evidence,omitempty"`
	Hint     string        `json:"hint,omitempty"`
	Duration time.Duration `json:"-"`
}

// MarshalJSON adds duration_ms, because Go durations in nanoseconds are not
// what a JSON consumer expects.
func (c Check) MarshalJSON() ([]byte, error) {
	type plain Check
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(c), float64(c.Duration.Microseconds()) / 1000})
}

// AddEvidence appends one key/value fact and returns the check for chaining.
func (c *Check) AddEvidence(key string, value any) *Check {
	c.Evidence = append(c.Evidence, Evidence{Key: key, Value: fmt.Sprint(value)})
	return c
}

// Worst returns the worst status among checks, or Skip when there are none
// or all were skipped.
func Worst(checks []Check) Status {
	worst := Skip
	for _, c := range checks {
		if c.Status.rank() > worst.rank() {
			worst = c.Status
		}
	}
	return worst
}

// Failed reports whether the checks should make a command exit 1: any
// failure, or any warning when strict is set.
func Failed(checks []Check, strict bool) bool {
	w := Worst(checks)
	return w == Fail || (strict && w == Warn)
}

// Counts returns how many checks have each status.
func Counts(checks []Check) map[Status]int {
	counts := map[Status]int{Pass: 0, Warn: 0, Fail: 0, Skip: 0}
	for _, c := range checks {
		counts[c.Status]++
	}
	return counts
}

// SortedStatuses lists the statuses in display order.
func SortedStatuses() []Status {
	s := []Status{Pass, Warn, Fail, Skip}
	sort.SliceStable(s, func(i, j int) bool { return s[i].rank() > s[j].rank() })
	return s
}
