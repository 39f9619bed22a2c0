package oktaprobe

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// DefaultMaxClockSkew is the clock offset from the IdP that passes without
// a warning. The IdP's Date header has one-second resolution, so offsets
// of a second or two are measurement noise.
const DefaultMaxClockSkew = 30 * time.Second

// AssumedAssertionMargin is how far the local clock may be from the IdP's
// before a fresh assertion is already expired or not yet valid on arrival,
// when no captured response shows the IdP's real margins. It is an
// assumption: IdPs commonly issue assertions valid for a few minutes.
const AssumedAssertionMargin = 5 * time.Minute

// dateResolution is the precision of the HTTP Date header, allowed on top
// of an assertion's margins before the clock check fails.
const dateResolution = time.Second

// margins are how far the local clock may run behind (before NotBefore)
// and ahead (past NotOnOrAfter) of the IdP's for a fresh assertion.
type margins struct {
	Behind, Ahead time.Duration
	FromResponse  bool
}

// responseWindowFacts reads the margins from the captured response, when
// one is given and verifies; otherwise it returns the assumed margins.
func responseWindowFacts(opts Options, installed *x509.Certificate, now time.Time) margins {
	m := margins{Behind: AssumedAssertionMargin, Ahead: AssumedAssertionMargin}
	if opts.Response == nil || installed == nil {
		return m
	}
	v, err := verifyResponse(opts.Response.XML, []*x509.Certificate{installed}, func(c *x509.Certificate) time.Time { return timeInside(c, now) })
	if err != nil {
		return m
	}
	f, err := readAssertion(v.Assertion)
	if err != nil || f.IssueInstant == nil {
		return m
	}
	w := assertionWindow(f)
	if w.NotBefore != nil {
		m.Behind = f.IssueInstant.Sub(*w.NotBefore)
	}
	if w.End != nil {
		m.Ahead = w.End.Sub(*f.IssueInstant)
	}
	m.FromResponse = true
	return m
}

// clockSources says which inputs could have read the IdP's clock, so that
// a clock that was not read gets the hint that fits what was given.
type clockSources struct {
	Offline bool
	// Requested is set when a request to the IdP was sent: to the sign-in
	// URL or to download the metadata.
	Requested bool
	// MetadataFile is set when --metadata names a file, which sends no
	// request.
	MetadataFile bool
}

// clockCheck compares the local clock with the IdP's Date header.
func clockCheck(samples []*dateSample, maxSkew time.Duration, m margins, src clockSources) report.Check {
	c := report.Check{ID: "clock", Subject: "idp"}
	if src.Offline {
		c.Status = report.Skip
		c.Summary = "not measured (--offline)"
		return c
	}
	if len(samples) == 0 {
		c.Status = report.Skip
		switch {
		case src.Requested:
			c.Summary = "the IdP's clock was not read: no answer from it carried a Date header"
			c.Hint = "fix the failed sso-url or metadata check; the clock is read from the IdP's answers"
		case src.MetadataFile:
			c.Summary = "no request was sent to the IdP, so its clock was not read"
			c.Hint = "pass --sso-url URL, or the metadata as its https:// URL with --metadata, to measure the clock offset"
		default:
			c.Summary = "no request was sent to the IdP, so its clock was not read"
			c.Hint = "pass --sso-url URL or --metadata https://… to measure the clock offset"
		}
		return c
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxClockSkew
	}
	s := samples[0]
	off := s.offset()
	c.AddEvidence("idp_date", s.Server.UTC().Format(time.RFC1123)).
		AddEvidence("from", s.URL).
		AddEvidence("offset_seconds", fmt.Sprintf("%.1f", off.Seconds())).
		AddEvidence("max_skew", maxSkew.String())
	source := "assumed margins"
	if m.FromResponse {
		source = "the response's margins"
	}
	c.AddEvidence("margin_behind", m.Behind.String()+" ("+source+")").
		AddEvidence("margin_ahead", m.Ahead.String()+" ("+source+")")
	abs := off
	if abs < 0 {
		abs = -abs
	}
	switch {
	case off < 0 && -off > m.Behind+dateResolution:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the local clock is %s, so fresh assertions arrive before their NotBefore (margin %s)", describeOffset(off), m.Behind)
	case off > 0 && off > m.Ahead+dateResolution:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the local clock is %s, so fresh assertions arrive after their NotOnOrAfter (margin %s)", describeOffset(off), m.Ahead)
	case abs > maxSkew:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("the local clock is %s, more than the %s cfyauth accepts", describeOffset(off), maxSkew)
	default:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("the local clock is %s (within %s)", describeOffset(off), maxSkew)
		return c
	}
	c.Hint = "synchronise the manager's clock (chrony or ntpd); SAML assertions are valid for minutes only"
	return c
}
