package oktaprobe

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
	"github.com/cfyauth/cfyauth/internal/report"
)

var (
	alice = oktatest.User{Name: "alice", Password: "alice-pw", Email: "alice@example.test", GivenName: "Alice", Surname: "Admin", Groups: []string{"admins", "developers"}}
	jane  = oktatest.User{Name: "jane.doe@example.test", Password: "jane-pw", Email: "jane.doe@example.test", GivenName: "Jane", Surname: "Doe", Groups: []string{"Cloudify Admins", "Dev Ops Team"}}
	bob   = oktatest.User{Name: "bob", Password: "bob-pw", Email: "bob@example.test", GivenName: "Bob", Surname: "Builder"}
)

// checkResponse runs the response checks against the IdP's certificate.
func checkResponse(t *testing.T, idp *oktatest.IdP, xml []byte, mutate func(*responseEnv)) ([]report.Check, *SAMLUser) {
	t.Helper()
	exp := ExpectedFor(oktatest.ManagerHost)
	env := responseEnv{
		Trusted:     []*x509.Certificate{idp.Signing.Cert},
		CertDisplay: "/etc/cloudify/ssl/okta_certificate.pem",
		Expected:    &exp,
		Now:         time.Now(),
	}
	if mutate != nil {
		mutate(&env)
	}
	in, err := DecodeResponse(xml, "response.xml")
	if err != nil {
		t.Fatalf("decode response: %v", err)
	}
	return responseChecks(context.Background(), in, env)
}

func findCheck(t *testing.T, checks []report.Check, id string) report.Check {
	t.Helper()
	for _, c := range checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %q in %v", id, checkIDs(checks))
	return report.Check{}
}

func checkIDs(checks []report.Check) []string {
	var ids []string
	for _, c := range checks {
		ids = append(ids, c.ID+"="+string(c.Status))
	}
	return ids
}

func evidence(c report.Check, key string) string {
	for _, e := range c.Evidence {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

func wantStatus(t *testing.T, checks []report.Check, id string, want report.Status, summaryPart string) report.Check {
	t.Helper()
	c := findCheck(t, checks, id)
	if c.Status != want {
		t.Errorf("%s: status %s, want %s (summary: %s)", id, c.Status, want, c.Summary)
	}
	if summaryPart != "" && !strings.Contains(c.Summary, summaryPart) {
		t.Errorf("%s: summary %q does not contain %q", id, c.Summary, summaryPart)
	}
	return c
}

func TestResponseValidFromIdP(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	checks, user := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), nil)
	for _, c := range checks {
		if c.Status == report.Fail || c.Status == report.Warn {
			t.Errorf("%s: %s: %s", c.ID, c.Status, c.Summary)
		}
	}
	sig := wantStatus(t, checks, "response-signature", report.Pass, "Response and Assertion signed")
	if evidence(sig, "certificate_sha256") != Fingerprint(idp.Signing.Cert) {
		t.Errorf("signature evidence names %q", evidence(sig, "certificate_sha256"))
	}
	wantStatus(t, checks, "attr-username", report.Pass, `logs in as "alice"`)
	wantStatus(t, checks, "attr-groups", report.Pass, `"admins", "developers"`)
	wantStatus(t, checks, "user-groups", report.Skip, "")
	if user == nil || user.Attributes["email"][0] != "alice@example.test" || len(user.Attributes["groups"]) != 2 {
		t.Errorf("user = %+v", user)
	}
}

func TestResponseBase64AsPosted(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	posted := idp.Login("alice", "alice-pw")
	for name, form := range map[string]string{
		"base64":        posted,
		"wrapped":       wrap76(posted),
		"form body":     "SAMLResponse=" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(posted) + "&RelayState=",
		"url-escaped":   strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(posted),
		"no padding":    strings.TrimRight(posted, "="),
		"with newlines": "\n" + posted + "\n",
	} {
		in, err := DecodeResponse([]byte(form), name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		raw, _ := base64.StdEncoding.DecodeString(posted)
		if string(in.XML) != strings.TrimSpace(string(raw)) {
			t.Errorf("%s: decoded XML differs from what the IdP sent", name)
		}
	}
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	return b.String() + s
}

func TestResponseDecodeRejectsJunk(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "  \n",
		"not base64":  "this is not a response!",
		"base64 text": base64.StdEncoding.EncodeToString([]byte("hello world")),
	} {
		if _, err := DecodeResponse([]byte(in), name); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestResponseSignedByOtherKey(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	installed := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "old IdP signing", KeyIndex: 3})
	checks, user := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), func(e *responseEnv) {
		e.Trusted = []*x509.Certificate{installed.Cert}
	})
	c := wantStatus(t, checks, "response-signature", report.Fail, "signed with another certificate ("+Fingerprint(idp.Signing.Cert)+")")
	if !strings.Contains(c.Summary, Fingerprint(installed.Cert)) || c.Hint == "" {
		t.Errorf("summary %q or hint %q lacks the installed certificate", c.Summary, c.Hint)
	}
	wantStatus(t, checks, "attr-username", report.Skip, "no field is trusted")
	if user != nil {
		t.Errorf("an unverified response produced a user: %+v", user)
	}
}

func TestResponseRotationNamed(t *testing.T) {
	newPair := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "new IdP signing", KeyIndex: 4})
	oldPair := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "old IdP signing", KeyIndex: 3})
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &newPair, ExtraSigningCerts: []*x509.Certificate{oldPair.Cert}})
	idp.AddUser(alice)
	md, err := ParseMetadata(idp.Metadata(), "metadata", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checks, _ := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), func(e *responseEnv) {
		e.Trusted = []*x509.Certificate{oldPair.Cert}
		e.Metadata = md
	})
	wantStatus(t, checks, "response-signature", report.Fail, "the IdP has rotated its signing certificate")
}

func TestResponseAssertionOnlySigned(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	xml := oktatest.StripResponseSignature(t, idp.LoginXML("alice", "alice-pw"))
	checks, _ := checkResponse(t, idp, xml, nil)
	wantStatus(t, checks, "response-signature", report.Pass, "Assertion signed")
	d := wantStatus(t, checks, "response-destination", report.Skip, "not signed")
	if evidence(d, "destination_unverified") != oktatest.Callback {
		t.Errorf("destination evidence %q", evidence(d, "destination_unverified"))
	}
	wantStatus(t, checks, "attr-username", report.Pass, "alice")
}

func TestResponseUnsigned(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	checks, _ := checkResponse(t, idp, oktatest.StripAllSignatures(t, idp.LoginXML("alice", "alice-pw")), nil)
	wantStatus(t, checks, "response-signature", report.Fail, "neither the Response nor the Assertion is signed")
}

func TestResponseExpiredAndAt(t *testing.T) {
	issued := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{Clock: issued})
	idp.AddUser(alice)
	xml := idp.LoginXML("alice", "alice-pw")

	checks, _ := checkResponse(t, idp, xml, nil)
	c := wantStatus(t, checks, "response-validity", report.Fail, "so it expired after it was captured")
	if !strings.Contains(c.Hint, "--at") {
		t.Errorf("hint %q does not offer --at", c.Hint)
	}
	// Everything else still checks out.
	wantStatus(t, checks, "response-signature", report.Pass, "")
	wantStatus(t, checks, "attr-username", report.Pass, "")

	checks, _ = checkResponse(t, idp, xml, func(e *responseEnv) { e.At = issued.Add(10 * time.Second) })
	wantStatus(t, checks, "response-validity", report.Pass, "it has expired since")

	checks, _ = checkResponse(t, idp, xml, func(e *responseEnv) { e.At = issued.Add(time.Hour) })
	wantStatus(t, checks, "response-validity", report.Fail, "before --at")

	checks, _ = checkResponse(t, idp, xml, func(e *responseEnv) { e.At = issued.Add(-time.Hour) })
	wantStatus(t, checks, "response-validity", report.Fail, "not yet valid")
}

func TestResponseNeverValid(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{Mutate: func(a *saml.Assertion) {
		a.Conditions.NotOnOrAfter = a.Conditions.NotBefore.Add(-time.Minute)
	}})
	idp.AddUser(alice)
	checks, _ := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), nil)
	wantStatus(t, checks, "response-validity", report.Fail, "was never valid")
}

func TestResponseWrongAudience(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{Mutate: func(a *saml.Assertion) {
		a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other.example.test/console/auth/saml/callback"
	}})
	idp.AddUser(alice)
	checks, _ := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), nil)
	c := wantStatus(t, checks, "response-audience", report.Fail, "wrong audience: expected "+oktatest.Callback+", got \"https://other.example.test")
	if c.Hint == "" {
		t.Error("no hint")
	}
}

func TestResponseAudienceCaseNearMiss(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{Mutate: func(a *saml.Assertion) {
		a.Conditions.AudienceRestrictions[0].Audience.Value = oktatest.Callback + "/"
	}})
	idp.AddUser(alice)
	checks, _ := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), nil)
	wantStatus(t, checks, "response-audience", report.Fail, "differ only in letter case or a trailing slash")
}

func TestResponseWrongRecipientAndDestination(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	exp := ExpectedFor("other-manager.example.test")
	checks, _ := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), func(e *responseEnv) { e.Expected = &exp })
	wantStatus(t, checks, "response-recipient", report.Fail, "wrong recipient")
	wantStatus(t, checks, "response-destination", report.Fail, "wrong destination")
	wantStatus(t, checks, "response-audience", report.Fail, "wrong audience")
}

func TestResponseNoManagerHost(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	checks, _ := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), func(e *responseEnv) { e.Expected = nil })
	c := wantStatus(t, checks, "response-audience", report.Skip, "")
	if !strings.Contains(c.Hint, "--manager-host") {
		t.Errorf("hint %q", c.Hint)
	}
}

func TestResponseMissingGroups(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(bob)
	checks, user := checkResponse(t, idp, idp.LoginXML("bob", "bob-pw"), nil)
	wantStatus(t, checks, "attr-groups", report.Warn, "no groups attribute")
	wantStatus(t, checks, "attr-username", report.Pass, "bob")
	if _, ok := user.Attributes["groups"]; ok {
		t.Errorf("user has groups: %+v", user.Attributes)
	}
}

func TestResponseLegacyGroupAttribute(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{Mutate: func(a *saml.Assertion) {
		for i, at := range a.AttributeStatements[0].Attributes {
			if at.Name == "groups" {
				a.AttributeStatements[0].Attributes[i].Name = "group"
			}
		}
	}})
	idp.AddUser(alice)
	checks, _ := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), nil)
	wantStatus(t, checks, "attr-groups", report.Warn, `sent as "group"`)
}

func TestResponseUsernameWithAtAndSpacedGroups(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(jane)
	checks, user := checkResponse(t, idp, idp.LoginXML(jane.Name, jane.Password), nil)
	c := wantStatus(t, checks, "attr-username", report.Pass, `logs in as "jane.doe@example.test"`)
	if !strings.Contains(evidence(c, "note"), "@") {
		t.Errorf("no note about @: %v", c.Evidence)
	}
	wantStatus(t, checks, "attr-groups", report.Pass, `"Cloudify Admins", "Dev Ops Team"`)
	if got := user.Attributes["groups"]; len(got) != 2 || got[0] != "Cloudify Admins" || got[1] != "Dev Ops Team" {
		t.Errorf("groups = %q", got)
	}
	if got := user.Attributes["username"]; len(got) != 1 || got[0] != jane.Name {
		t.Errorf("username = %q", got)
	}
}

func TestResponseGroupWithTrailingSpace(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(oktatest.User{Name: "carl", Password: "pw", Groups: []string{"ops "}})
	checks, _ := checkResponse(t, idp, idp.LoginXML("carl", "pw"), nil)
	wantStatus(t, checks, "attr-groups", report.Warn, `"ops "`)
	wantStatus(t, checks, "attr-profile", report.Warn, "email, firstname, lastname")
}

func TestResponseDoctypeRejected(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	checks, user := checkResponse(t, idp, oktatest.WithDoctype(idp.LoginXML("alice", "alice-pw")), nil)
	wantStatus(t, checks, "response-xml", report.Fail, "DOCTYPE or entity declaration")
	wantStatus(t, checks, "response-signature", report.Skip, "")
	if user != nil {
		t.Error("a DOCTYPE response produced a user")
	}
	// An entity reference without a declaration is rejected too.
	in := []byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&xxe;</samlp:Response>`)
	checks, _ = checkResponse(t, idp, in, nil)
	wantStatus(t, checks, "response-xml", report.Fail, "not well-formed")
}

func TestResponseSignatureWrapping(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	genuine := idp.LoginXML("alice", "alice-pw")
	for name, forged := range map[string][]byte{
		"sibling":    oktatest.WrapSiblingAssertion(t, genuine, "admin"),
		"extensions": oktatest.WrapInExtensions(t, genuine, "admin"),
	} {
		checks, user := checkResponse(t, idp, forged, nil)
		wantStatus(t, checks, "response-assertion", report.Fail, "signature-wrapping")
		if user != nil {
			t.Errorf("%s: a wrapped response produced a user: %+v", name, user.Attributes)
		}
	}
	checks, user := checkResponse(t, idp, oktatest.TamperUsername(t, genuine, "admin"), nil)
	wantStatus(t, checks, "response-signature", report.Fail, "changed after it was signed")
	if user != nil {
		t.Errorf("a tampered response produced a user: %+v", user.Attributes)
	}
}

func TestResponseEncryptedNotSupported(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(alice)
	checks, _ := checkResponse(t, idp, oktatest.EncryptAssertion(t, idp.LoginXML("alice", "alice-pw")), nil)
	wantStatus(t, checks, "response-assertion", report.Fail, "encrypted assertions are not supported")
}

type fakeGroups map[string]UserGroupMatch

func (f fakeGroups) LookupUserGroups(_ context.Context, names []string) ([]UserGroupMatch, error) {
	var out []UserGroupMatch
	for _, n := range names {
		if m, ok := f[n]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

func TestResponseUserGroupsLookup(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(jane)
	lookup := fakeGroups{"Cloudify Admins": {Group: "Cloudify Admins", Role: "sys_admin", Tenants: map[string]string{"default_tenant": "manager"}}}
	checks, user := checkResponse(t, idp, idp.LoginXML(jane.Name, jane.Password), func(e *responseEnv) { e.Groups = lookup })
	wantStatus(t, checks, "user-groups", report.Pass, `no user-group for "Dev Ops Team"`)
	if len(user.UserGroups) != 1 || user.UserGroups[0].Role != "sys_admin" {
		t.Errorf("user groups = %+v", user.UserGroups)
	}
}

func TestResponseCommentInsideValueReadWhole(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(jane)
	xml := string(idp.LoginXML(jane.Name, jane.Password))
	// Exclusive canonicalization drops comments, so the signature still
	// verifies; a reader that stops at the comment would see "jane.doe".
	edited := strings.Replace(xml, ">jane.doe@example.test</saml:AttributeValue>", ">jane.doe<!-- x -->@example.test</saml:AttributeValue>", 1)
	if edited == xml {
		t.Fatal("the username value was not found")
	}
	checks, user := checkResponse(t, idp, []byte(edited), nil)
	wantStatus(t, checks, "response-signature", report.Pass, "")
	wantStatus(t, checks, "attr-username", report.Pass, `logs in as "jane.doe@example.test"`)
	if got := user.Attributes["username"]; len(got) != 1 || got[0] != jane.Name {
		t.Errorf("username = %q", got)
	}
}

func TestResponseSHA1SignatureWarns(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{SignatureMethod: "http://www.w3.org/2000/09/xmldsig#rsa-sha1"})
	idp.AddUser(alice)
	checks, user := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), nil)
	c := wantStatus(t, checks, "response-signature", report.Warn, "but with SHA-1")
	if evidence(c, "assertion_algorithm") != "rsa-sha1, digest sha1" || !strings.Contains(c.Hint, "SHA-256") {
		t.Errorf("evidence %v, hint %q", c.Evidence, c.Hint)
	}
	if user == nil || user.Attributes["username"][0] != "alice" {
		t.Errorf("user = %+v", user)
	}
}
