package oktaprobe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// SAMLUser is who a verified response logs in, with the attributes the
// manager reads exactly as the IdP sent them.
type SAMLUser struct {
	NameID       string `json:"name_id"`
	NameIDFormat string `json:"name_id_format,omitempty"`
	// Attributes maps each attribute the manager reads that the response
	// carries to its values, byte for byte.
	Attributes map[string][]string `json:"attributes"`
	// UserGroups are the Cloudify user-groups whose names equal the sent
	// group names, when they were looked up.
	UserGroups []UserGroupMatch `json:"user_groups,omitempty"`
}

// Expected are the values the manager expects in a response.
type Expected struct {
	ManagerHost string   `json:"manager_host"`
	Callback    string   `json:"callback"`
	Audiences   []string `json:"audiences"`
}

// ExpectedFor returns what a manager reached as host expects: the
// Console's callback as recipient and destination, and as audience either
// the callback (Cloudify's OKTA setup) or https://host/console (its Azure
// AD setup).
func ExpectedFor(host string) Expected {
	callback := "https://" + host + "/console/auth/saml/callback"
	return Expected{ManagerHost: host, Callback: callback, Audiences: []string{callback, "https://" + host + "/console"}}
}

// responseEnv holds the values the response checks compare against.
type responseEnv struct {
	Trusted     []*x509.Certificate
	CertDisplay string
	Metadata    *Metadata
	Expected    *Expected
	Now         time.Time
	At          time.Time // zero when --at was not given
	Offset      *time.Duration
	Groups      GroupLookup
}

// responseChecks verifies a captured response and checks every field the
// manager relies on.
func responseChecks(ctx context.Context, in ResponseInput, env responseEnv) ([]report.Check, *SAMLUser) {
	const subject = "response"
	fieldIDs := []string{"response-status", "response-issuer", "response-audience", "response-recipient",
		"response-destination", "response-validity", "attr-username", "attr-profile", "attr-groups", "user-groups"}
	skipRest := func(checks []report.Check, why string) []report.Check {
		for _, id := range fieldIDs {
			checks = append(checks, skipped(id, subject, why))
		}
		return checks
	}

	parse := report.Check{ID: "response-xml", Subject: subject}
	parse.AddEvidence("origin", in.Origin).AddEvidence("bytes", len(in.XML))
	if _, err := parseXML(in.XML); err != nil {
		parse.Status = report.Fail
		parse.Summary = err.Error()
		parse.Hint = "pass the SAMLResponse value exactly as the browser posted it (base64) or the XML it decodes to"
		if errors.Is(err, ErrDTD) {
			parse.Hint = "a genuine IdP response never has a DOCTYPE; capture the response again from the browser"
		}
		checks := []report.Check{parse, skipped("response-assertion", subject, "the response could not be parsed"), skipped("response-signature", subject, "the response could not be parsed")}
		return skipRest(checks, "the response could not be parsed"), nil
	}
	parse.Status = report.Pass
	parse.Summary = "well-formed XML without DOCTYPE or entity declarations"

	structure := report.Check{ID: "response-assertion", Subject: subject, Status: report.Pass, Summary: "one assertion, directly in the Response"}
	signature := report.Check{ID: "response-signature", Subject: subject}
	rejected := func(err error) []report.Check {
		fillStructureFailure(&structure, err)
		const why = "the response's structure was rejected"
		return skipRest([]report.Check{parse, structure, skipped("response-signature", subject, why)}, why)
	}
	if len(env.Trusted) == 0 {
		if _, _, err := inspectResponse(in.XML); err != nil {
			return rejected(err), nil
		}
		signature.Status = report.Skip
		signature.Summary = "no installed IdP certificate to verify the signature with"
		signature.Hint = "pass the IdP's signing certificate with --certificate FILE"
		return skipRest([]report.Check{parse, structure, signature}, "the signature was not verified, so no field is trusted"), nil
	}

	signer := env.Trusted[0]
	at := env.Now
	if !env.At.IsZero() {
		at = env.At
	}
	v, err := verifyResponse(in.XML, env.Trusted, func(c *x509.Certificate) time.Time { return timeInside(c, at) })
	var sigErr *SignatureError
	switch {
	case errors.As(err, &sigErr) || errors.Is(err, ErrUnsigned):
		fillSignatureFailure(&signature, err, signer, env)
		return skipRest([]report.Check{parse, structure, signature}, "the signature did not verify, so no field is trusted"), nil
	case err != nil:
		return rejected(err), nil
	}
	signature = verifiedSignatureCheck(v, signer)

	facts, err := readAssertion(v.Assertion)
	if err != nil {
		bad := report.Check{ID: "response-status", Subject: subject, Status: report.Fail, Summary: err.Error()}
		checks := []report.Check{parse, structure, signature, bad}
		for _, id := range fieldIDs[1:] {
			checks = append(checks, skipped(id, subject, "the assertion could not be read"))
		}
		return checks, nil
	}
	var resp *responseFacts
	if v.Response != nil {
		f := readResponseFacts(v.Response)
		resp = &f
	}

	checks := []report.Check{parse, structure, signature,
		statusCheck(resp),
		issuerCheck(facts, resp, env.Metadata),
		audienceCheck(facts, env.Expected),
		recipientCheck(facts, env.Expected),
		destinationCheck(v, resp, env.Expected),
		validityCheck(facts, env),
	}
	user := &SAMLUser{NameID: facts.NameID, NameIDFormat: facts.NameIDFormat, Attributes: map[string][]string{}}
	names := append([]string{AttrLegacyGroup}, ReadAttributes...)
	for _, name := range names {
		if vals, ok := facts.values(name); ok {
			if vals == nil {
				vals = []string{}
			}
			user.Attributes[name] = vals
		}
	}
	checks = append(checks, usernameCheck(facts), profileCheck(facts))
	groupsChk, groups := groupsCheck(facts)
	checks = append(checks, groupsChk, userGroupsCheck(ctx, env.Groups, groups, user))
	return checks, user
}

// verifiedSignatureCheck reports which elements are signed, and with
// which algorithms, once the signatures verified.
func verifiedSignatureCheck(v *verifiedResponse, signer *x509.Certificate) report.Check {
	c := report.Check{ID: "response-signature", Subject: "response", Status: report.Pass}
	var signed []string
	for _, s := range []struct {
		name string
		info *signatureInfo
	}{{"Response", v.ResponseSig}, {"Assertion", v.AssertionSig}} {
		if s.info == nil {
			continue
		}
		signed = append(signed, s.name)
		c.AddEvidence(strings.ToLower(s.name)+"_algorithm", algorithmName(s.info.Algorithm)+", digest "+algorithmName(s.info.Digest))
		if weakAlgorithm(s.info.Algorithm) || weakAlgorithm(s.info.Digest) {
			c.Status = report.Warn
			c.Hint = "switch the IdP's SAML app to SHA-256 signatures"
		}
	}
	c.AddEvidence("signed", strings.Join(signed, ", ")).AddEvidence("certificate_sha256", Fingerprint(signer))
	c.Summary = fmt.Sprintf("%s signed with the installed certificate %s", strings.Join(signed, " and "), Fingerprint(signer))
	if c.Status == report.Warn {
		c.Summary += ", but with SHA-1"
	}
	return c
}

func fillStructureFailure(c *report.Check, err error) {
	c.Status = report.Fail
	var wrap *WrappingError
	switch {
	case errors.Is(err, ErrEncryptedAssertion):
		c.Summary = "the assertion is encrypted (EncryptedAssertion); encrypted assertions are not supported: cfyauth cannot read them, and the manager's documented SAML setup has no key to decrypt them"
		c.Hint = "turn off assertion encryption in the IdP's SAML app"
	case errors.As(err, &wrap):
		c.Summary = wrap.Reason
		c.Hint = "capture the response again directly from the IdP; do not use a response that passed through another tool"
	case errors.Is(err, ErrNoAssertion):
		c.Summary = "the response carries no assertion, so it logs nobody in"
		c.Hint = "the IdP answered with an error: check the response's status message and the IdP's sign-in log"
	case errors.Is(err, ErrNotResponse):
		c.Summary = err.Error()
		c.Hint = "pass a SAML Response (the SAMLResponse form field), not a request or metadata"
	default:
		c.Summary = err.Error()
	}
}

// fillSignatureFailure explains a signature that did not verify, naming the
// certificate the response claims when it is not the installed one.
func fillSignatureFailure(c *report.Check, err error, installed *x509.Certificate, env responseEnv) {
	c.Status = report.Fail
	c.AddEvidence("installed_sha256", Fingerprint(installed))
	if errors.Is(err, ErrUnsigned) {
		c.Summary = "neither the Response nor the Assertion is signed; the manager rejects unsigned responses"
		c.Hint = "have the IdP sign the response or the assertion (Okta: Response and Assertion Signature: Signed)"
		return
	}
	var sigErr *SignatureError
	errors.As(err, &sigErr)
	var claimed *x509.Certificate
	if len(sigErr.Info.KeyInfoCerts) > 0 {
		claimed = sigErr.Info.KeyInfoCerts[0]
		c.AddEvidence("keyinfo_sha256", Fingerprint(claimed)+" (as the response claims, unverified)")
	}
	c.AddEvidence("library_error", sigErr.Err.Error())
	switch reason := classifySignatureError(sigErr.Err); {
	case claimed != nil && !claimed.Equal(installed):
		c.Summary = fmt.Sprintf("the %s is signed with another certificate (%s), not the installed %s", sigErr.Element, Fingerprint(claimed), Fingerprint(installed))
		c.Hint = fmt.Sprintf("save the IdP's current signing certificate as %s and restart the REST service", env.CertDisplay)
		if env.Metadata != nil {
			for _, m := range env.Metadata.SigningCerts {
				if m.Equal(claimed) {
					c.Summary += "; the IdP's metadata lists it, so the IdP has rotated its signing certificate"
				}
			}
		}
	case reason == sigDigestMismatch:
		c.Summary = fmt.Sprintf("the %s was changed after it was signed (its digest does not match)", sigErr.Element)
		c.Hint = "capture the response again, unmodified, from the browser's network log"
	case reason == sigValueMismatch:
		c.Summary = fmt.Sprintf("the %s signature does not match the installed certificate's key: it was signed with another key or altered", sigErr.Element)
		c.Hint = fmt.Sprintf("compare the IdP's signing certificate with %s (SHA-256 %s)", env.CertDisplay, Fingerprint(installed))
	default:
		c.Summary = sigErr.Error()
		c.Hint = "capture the response again; if it still fails, check the IdP's signing settings"
	}
}

type sigReason int

const (
	sigOther sigReason = iota
	sigDigestMismatch
	sigValueMismatch
	sigUntrustedCert
)

// classifySignatureError maps the XML signature library's errors to
// reasons. The library (goxmldsig 1.6) has no typed errors for these, so
// its messages are the only signal.
func classifySignatureError(err error) sigReason {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Could not verify certificate against trusted certs"):
		return sigUntrustedCert
	case strings.Contains(msg, "Signature could not be verified"):
		return sigDigestMismatch
	case strings.Contains(msg, "verification error"):
		return sigValueMismatch
	}
	return sigOther
}

func statusCheck(resp *responseFacts) report.Check {
	c := report.Check{ID: "response-status", Subject: "response"}
	if resp == nil {
		c.Status = report.Pass
		c.Summary = "the assertion is signed and the Response is not, so the Response's status is not covered by the signature; a response with an assertion is a success"
		return c
	}
	c.AddEvidence("status", resp.Status)
	if resp.Status != statusSuccess {
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the IdP answered with status %s", algorithmNameColon(resp.Status))
		if resp.SubStatus != "" {
			c.Summary += " / " + algorithmNameColon(resp.SubStatus)
		}
		if resp.StatusMessage != "" {
			c.Summary += ": " + resp.StatusMessage
		}
		c.Hint = "check the IdP's sign-in log for this user"
		return c
	}
	c.Status = report.Pass
	c.Summary = "Success"
	return c
}

func algorithmNameColon(uri string) string {
	if i := strings.LastIndex(uri, ":"); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

func issuerCheck(f assertionFacts, resp *responseFacts, md *Metadata) report.Check {
	c := report.Check{ID: "response-issuer", Subject: "response"}
	c.AddEvidence("assertion_issuer", f.Issuer)
	if resp != nil && resp.Issuer != "" {
		c.AddEvidence("response_issuer", resp.Issuer)
	}
	switch {
	case f.Issuer == "":
		c.Status = report.Fail
		c.Summary = "the assertion names no Issuer"
		c.Hint = "check the IdP's SAML app settings"
	case md != nil && md.EntityID != "" && md.EntityID != f.Issuer:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the assertion's issuer is %s, but the metadata's entity ID is %s", f.Issuer, md.EntityID)
		c.Hint = "check that the response and the metadata come from the same IdP app"
	case resp != nil && resp.Issuer != "" && resp.Issuer != f.Issuer:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("the Response's issuer %s differs from the assertion's %s", resp.Issuer, f.Issuer)
	default:
		c.Status = report.Pass
		c.Summary = f.Issuer
		if md != nil && md.EntityID != "" {
			c.Summary += " (matches the metadata's entity ID)"
		}
	}
	return c
}

func audienceCheck(f assertionFacts, exp *Expected) report.Check {
	c := report.Check{ID: "response-audience", Subject: "response"}
	var all []string
	for _, set := range f.AudienceSets {
		all = append(all, set...)
	}
	c.AddEvidence("audiences", quoteList(all))
	if exp == nil {
		return skipWithoutHost(c, "audience")
	}
	c.AddEvidence("expected", strings.Join(exp.Audiences, " or "))
	if !f.AudienceRestricted {
		c.Status = report.Warn
		c.Summary = "the assertion has no AudienceRestriction, so any service provider would accept it"
		c.Hint = "set the Audience URI (SP Entity ID) in the IdP's SAML app to " + exp.Callback
		return c
	}
	for _, set := range f.AudienceSets {
		if !containsAny(set, exp.Audiences) {
			c.Status = report.Fail
			c.Summary = fmt.Sprintf("wrong audience: expected %s, got %s%s", exp.Callback, quoteList(set), nearMiss(set, exp.Audiences))
			c.Hint = "set the Audience URI (SP Entity ID) in the IdP's SAML app to " + exp.Callback
			return c
		}
	}
	c.Status = report.Pass
	c.Summary = "the audience is this manager: " + quoteList(all)
	return c
}

func recipientCheck(f assertionFacts, exp *Expected) report.Check {
	c := report.Check{ID: "response-recipient", Subject: "response"}
	var got []string
	for _, b := range f.Bearers {
		got = append(got, b.Recipient)
	}
	c.AddEvidence("recipients", quoteList(got))
	if exp == nil {
		return skipWithoutHost(c, "recipient")
	}
	c.AddEvidence("expected", exp.Callback)
	switch {
	case len(f.Bearers) == 0:
		c.Status = report.Fail
		c.Summary = "the assertion has no bearer SubjectConfirmation, which browser sign-in requires"
		c.Hint = "check the IdP's SAML app settings"
	case containsAny(got, []string{exp.Callback}):
		c.Status = report.Pass
		c.Summary = "the recipient is this manager's callback " + exp.Callback
	case len(got) == 1 && got[0] == "":
		c.Status = report.Fail
		c.Summary = "the bearer SubjectConfirmationData has no Recipient"
		c.Hint = "set the Single sign-on URL (Recipient) in the IdP's SAML app to " + exp.Callback
	default:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("wrong recipient: expected %s, got %s%s", exp.Callback, quoteList(got), nearMiss(got, []string{exp.Callback}))
		c.Hint = "set the Single sign-on URL (Recipient) in the IdP's SAML app to " + exp.Callback
	}
	return c
}

func destinationCheck(v *verifiedResponse, resp *responseFacts, exp *Expected) report.Check {
	c := report.Check{ID: "response-destination", Subject: "response"}
	if resp == nil {
		c.Status = report.Skip
		c.Summary = "the Response element is not signed, so its Destination is outside what the signature covers; the signed Recipient is checked instead"
		if d := v.Root.SelectAttrValue("Destination", ""); d != "" {
			c.AddEvidence("destination_unverified", d)
		}
		return c
	}
	c.AddEvidence("destination", resp.Destination)
	if exp == nil {
		return skipWithoutHost(c, "destination")
	}
	c.AddEvidence("expected", exp.Callback)
	switch resp.Destination {
	case exp.Callback:
		c.Status = report.Pass
		c.Summary = "the destination is this manager's callback"
	case "":
		c.Status = report.Warn
		c.Summary = "the signed Response has no Destination, which the SAML POST binding requires of signed responses"
		c.Hint = "set the Destination in the IdP's SAML app to " + exp.Callback
	default:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("wrong destination: expected %s, got %q%s", exp.Callback, resp.Destination, nearMiss([]string{resp.Destination}, []string{exp.Callback}))
		c.Hint = "set the Destination (Single sign-on URL) in the IdP's SAML app to " + exp.Callback
	}
	return c
}

func containsAny(got, want []string) bool {
	for _, g := range got {
		for _, w := range want {
			if g == w {
				return true
			}
		}
	}
	return false
}

// nearMiss explains a value that differs from the expected one only in
// letter case or a trailing slash, which exact comparison does not forgive.
func nearMiss(got, want []string) string {
	norm := func(s string) string { return strings.TrimSuffix(strings.ToLower(s), "/") }
	for _, g := range got {
		for _, w := range want {
			if g != w && norm(g) == norm(w) {
				return " (they differ only in letter case or a trailing slash, and the comparison is exact)"
			}
		}
	}
	return ""
}

// quoteList shows values exactly, quoted, so spaces and empty strings are
// visible.
func quoteList(vals []string) string {
	if len(vals) == 0 {
		return "none"
	}
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// skipWithoutHost skips a check that compares with the manager's callback
// when the manager's host name is not known.
func skipWithoutHost(c report.Check, what string) report.Check {
	c.Status = report.Skip
	c.Summary = "no expected " + what + ": the manager's host name is not known"
	c.Hint = "pass --manager-host HOST (the name users reach the manager by)"
	return c
}
