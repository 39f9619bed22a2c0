package cli

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
)

// signatureValue returns the first SignatureValue of a response, the part
// of it that must never be printed.
func signatureValue(t *testing.T, encoded string) string {
	t.Helper()
	xml, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatal(err)
	}
	s := string(xml)
	start := strings.Index(s, "SignatureValue>") + len("SignatureValue>")
	return s[start : start+40]
}

func TestTestLoginSAMLAcceptedByStandin(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(janeDoe)
	root, p, _ := oktaManager(t, idp)
	response := idp.Login(janeDoe.Name, janeDoe.Password)
	file := writeResponse(t, response)

	code, stdout, stderr := runCLI(t, "", "--root", root, "--manager-url", p.URL, "-v", "test-login", "--saml-response", file)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	for _, want := range []string{
		"login accepted for user jane.doe@example.test at " + p.URL,
		"authenticated by:       an authenticator module (auth method external)",
		"groups:                 Cloudify Admins, Dev Ops Team",
		"loaded authenticators:  okta",
		"note: the token the manager issued for the SAML response (id ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	for _, secret := range []string{response[:40], signatureValue(t, response)} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("the output repeats the SAML response (%q)", secret)
		}
	}

	// JSON, from stdin, with the matching --user.
	code, stdout, stderr = runCLI(t, response, "--root", root, "--manager-url", p.URL, "-o", "json",
		"test-login", "--saml-response", "-", "--user", "jane.doe@example.test")
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var doc struct {
		Method   string   `json:"method"`
		Outcome  string   `json:"outcome"`
		Username string   `json:"username"`
		External bool     `json:"external"`
		Notes    []string `json:"notes"`
		User     struct {
			Groups []string `json:"groups"`
		} `json:"user"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, stdout)
	}
	if doc.Method != "saml" || doc.Outcome != "accepted" || doc.Username != "jane.doe@example.test" || !doc.External {
		t.Errorf("document %+v", doc)
	}
	if len(doc.Notes) == 0 || !strings.Contains(doc.Notes[0], "was deleted") {
		t.Errorf("notes %q, want the token deleted", doc.Notes)
	}
	if strings.Contains(stdout, response[:40]) || strings.Contains(stdout, "ctok-") {
		t.Error("the JSON output repeats the SAML response or the token")
	}
}

func TestTestLoginSAMLRejectedByStandin(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(janeDoe)
	root, p, _ := oktaManager(t, idp)

	otherKey := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "another IdP", KeyIndex: 3})
	other := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &otherKey})
	expired := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &idp.Signing, Clock: time.Now().Add(-time.Hour)})
	wrongAudience := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &idp.Signing, Mutate: func(a *saml.Assertion) {
		a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other.example.test/console/auth/saml/callback"
	}})
	for _, i := range []*oktatest.IdP{other, expired, wrongAudience} {
		i.AddUser(janeDoe)
	}
	unsigned := oktatest.StripAllSignatures(t, idp.LoginXML(janeDoe.Name, janeDoe.Password))

	cases := []struct {
		name, response, reason string
	}{
		{"signed by another key", other.Login(janeDoe.Name, janeDoe.Password), "another key made it"},
		{"expired", expired.Login(janeDoe.Name, janeDoe.Password), "the assertion expired at "},
		{"wrong audience", wrongAudience.Login(janeDoe.Name, janeDoe.Password), "wrong audience ['https://other.example.test/console/auth/saml/callback']"},
		{"unsigned", base64.StdEncoding.EncodeToString(unsigned), "neither the Response nor the Assertion is signed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeResponse(t, tc.response)
			code, stdout, stderr := runCLI(t, "", "--root", root, "--manager-url", p.URL, "test-login", "--saml-response", file)
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout %s\nstderr %s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "login rejected for the SAML response at "+p.URL) {
				t.Errorf("stdout %s", stdout)
			}
			if !strings.Contains(stderr, "error: SAML login rejected (401): SAML response rejected: ") {
				t.Errorf("stderr lacks the manager's message:\n%s", stderr)
			}
			if !strings.Contains(stderr, tc.reason) {
				t.Errorf("stderr lacks the reason %q:\n%s", tc.reason, stderr)
			}
			if !strings.Contains(stderr, "hint: run 'cfyauth okta check --saml-response FILE'") {
				t.Errorf("stderr lacks the okta check hint:\n%s", stderr)
			}
			if strings.Contains(stdout+stderr, tc.response[:40]) {
				t.Error("the output repeats the SAML response")
			}
		})
	}
}
