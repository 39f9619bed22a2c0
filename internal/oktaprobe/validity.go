package oktaprobe

import (
	"fmt"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// window is an assertion's validity: from NotBefore (inclusive) to the
// earliest NotOnOrAfter (exclusive) of its Conditions and its bearer
// confirmation.
type window struct {
	Issued    *time.Time
	NotBefore *time.Time
	End       *time.Time
}

func assertionWindow(f assertionFacts) window {
	w := window{Issued: f.IssueInstant, NotBefore: f.NotBefore, End: f.NotOnOrAfter}
	for _, b := range f.Bearers {
		if b.NotOnOrAfter != nil && (w.End == nil || b.NotOnOrAfter.Before(*w.End)) {
			w.End = b.NotOnOrAfter
		}
		if b.NotBefore != nil && (w.NotBefore == nil || b.NotBefore.After(*w.NotBefore)) {
			w.NotBefore = b.NotBefore
		}
	}
	return w
}

// neverValid reports whether no instant satisfies the window, or the
// assertion was issued outside it, so no clock could have accepted it.
func (w window) neverValid() (bool, string) {
	if w.NotBefore != nil && w.End != nil && !w.NotBefore.Before(*w.End) {
		return true, fmt.Sprintf("its window is empty: NotBefore %s is not before NotOnOrAfter %s", stamp(*w.NotBefore), stamp(*w.End))
	}
	if w.Issued != nil && w.End != nil && !w.Issued.Before(*w.End) {
		return true, fmt.Sprintf("it was issued at %s, at or after its own end %s", stamp(*w.Issued), stamp(*w.End))
	}
	return false, ""
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// validityCheck judges NotBefore/NotOnOrAfter at --at or now, telling an
// assertion that expired since it was captured from one that was never
// valid, and relating a miss to the measured clock offset.
func validityCheck(f assertionFacts, env responseEnv) report.Check {
	c := report.Check{ID: "response-validity", Subject: "response"}
	w := assertionWindow(f)
	at := env.Now
	atGiven := !env.At.IsZero()
	if atGiven {
		at = env.At
	}
	if w.Issued != nil {
		c.AddEvidence("issue_instant", stamp(*w.Issued))
	}
	if w.NotBefore != nil {
		c.AddEvidence("not_before", stamp(*w.NotBefore))
	}
	if w.End != nil {
		c.AddEvidence("not_on_or_after", stamp(*w.End))
	}
	if f.SessionNotOnOrAfter != nil {
		c.AddEvidence("session_not_on_or_after", stamp(*f.SessionNotOnOrAfter))
	}
	c.AddEvidence("checked_at", stamp(at)+map[bool]string{true: " (--at)", false: " (local clock)"}[atGiven])
	clockNote := ""
	if env.Offset != nil {
		c.AddEvidence("clock_offset", describeOffset(*env.Offset))
		clockNote = "; the local clock is " + describeOffset(*env.Offset)
	}

	if never, why := w.neverValid(); never {
		c.Status = report.Fail
		c.Summary = "the assertion was never valid: " + why
		c.Hint = "check the IdP's clock and its assertion lifetime settings"
		return c
	}
	if w.End == nil {
		c.Status = report.Warn
		c.Summary = "the assertion sets no NotOnOrAfter, so it never expires by its own terms"
		c.Hint = "check the IdP's SAML app settings; browser sign-in requires a bearer NotOnOrAfter"
		return c
	}
	switch {
	case w.NotBefore != nil && at.Before(*w.NotBefore):
		ahead := w.NotBefore.Sub(at)
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("not yet valid at %s: NotBefore is %s later%s", stamp(at), humanDuration(ahead), clockNote)
		if atGiven {
			c.Hint = "pass an --at time inside the assertion's window, such as the time of capture"
		} else {
			c.Hint = "the IdP's clock is ahead of this host's: synchronise the manager's clock (chrony or ntpd)"
		}
	case !at.Before(*w.End):
		ago := at.Sub(*w.End)
		c.Status = report.Fail
		if atGiven {
			c.Summary = fmt.Sprintf("expired at %s, %s before --at %s", stamp(*w.End), humanDuration(ago), stamp(at))
			c.Hint = "pass an --at time inside the assertion's window, such as the time of capture"
		} else {
			c.Summary = fmt.Sprintf("expired at %s, %s ago; it was valid from %s, so it expired after it was captured%s",
				stamp(*w.End), humanDuration(ago), stamp(windowStart(w)), clockNote)
			c.Hint = fmt.Sprintf("capture a fresh response and check it within %s, or pass --at TIME (the time of capture) to check everything else", humanDuration(w.End.Sub(windowStart(w))))
		}
	default:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("valid at %s, until %s (%s left)", stamp(at), stamp(*w.End), humanDuration(w.End.Sub(at)))
		if atGiven && !env.Now.Before(*w.End) {
			c.Summary += "; it has expired since, so the manager would reject it now"
		}
	}
	return c
}

// windowStart is the earliest instant the assertion was meant to be valid.
func windowStart(w window) time.Time {
	if w.NotBefore != nil {
		return *w.NotBefore
	}
	if w.Issued != nil {
		return *w.Issued
	}
	return *w.End
}

// describeOffset describes how far the local clock is from the IdP's.
func describeOffset(d time.Duration) string {
	switch {
	case d > 0:
		return fmt.Sprintf("%s ahead of the IdP's", d.Round(time.Second))
	case d < 0:
		return fmt.Sprintf("%s behind the IdP's", (-d).Round(time.Second))
	}
	return "in step with the IdP's"
}
