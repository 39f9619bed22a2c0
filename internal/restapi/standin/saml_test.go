package standin_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
	"github.com/cfyauth/cfyauth/internal/restapi"
	"github.com/cfyauth/cfyauth/internal/restapi/standin"
)

// requireXmlsec skips without xmlsec1, which the stand-in checks SAML
// signatures with, unless CFYAUTH_REQUIRE_SERVERS=1 makes that a failure.
func requireXmlsec(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("xmlsec1"); err != nil {
		msg := "xmlsec1 is missing (install it with 'apt-get install xmlsec1' or scripts/testenv/install.sh)"
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// oktaStandin starts a stand-in for a manager whose Okta authenticator
// trusts the IdP's signing certificate, with user groups whose names have
// spaces.
func oktaStandin(t *testing.T, idp *oktatest.IdP, version string) (*standin.Process, standin.Options) {
	t.Helper()
	requireXmlsec(t)
	opts := sandbox(t, nil)
	opts.ManagerVersion = version
	cert := filepath.Join(opts.Root, manager.OktaCertificate)
	must(t, os.MkdirAll(filepath.Dir(cert), 0o755))
	must(t, os.WriteFile(cert, idp.Signing.CertPEM(), 0o644))
	must(t, standin.WriteState(opts, "saml.json", []byte(`{"manager_host": "`+oktatest.ManagerHost+`"}`)))
	must(t, standin.WriteState(opts, "groups.json", []byte(`{"tenants": ["ops"], "groups": [
		{"name": "Cloudify Admins", "role": "sys_admin", "tenants": {"default_tenant": "manager"}},
		{"name": "Dev Ops Team", "role": "default", "tenants": {"ops": "operations"}}]}`)))
	return start(t, opts), opts
}

func samlUsers(idp *oktatest.IdP) {
	idp.AddUser(oktatest.User{Name: "jane.doe@example.test", Password: "pw", Email: "jane.doe@example.test",
		GivenName: "Jane", Surname: "Doe", Groups: []string{"Cloudify Admins", "Dev Ops Team", "No Such Group"}})
}

func b64(xml []byte) string { return base64.StdEncoding.EncodeToString(xml) }

func TestStandinAcceptsSignedSAMLResponse(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	samlUsers(idp)
	p, opts := oktaStandin(t, idp, "")
	c := client(t, p, "", "")
	ctx := context.Background()

	response := idp.Login("jane.doe@example.test", "pw")
	res, err := restapi.CheckSAMLLogin(ctx, c, response)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != restapi.OutcomeAccepted {
		t.Fatalf("outcome %q: %v", res.Outcome, res.Err)
	}
	if res.Username != "jane.doe@example.test" || !res.External() {
		t.Errorf("user %q, audit %+v", res.Username, res.Audit)
	}
	if got := strings.Join(res.User.Groups, ","); got != "Cloudify Admins,Dev Ops Team" {
		t.Errorf("groups %q, want the two user groups named exactly as sent", got)
	}
	if res.User.Tenants["ops"].Roles[0] != "operations" {
		t.Errorf("tenants %+v", res.User.Tenants)
	}
	if res.IDP == nil || strings.Join(res.IDP.Names, ",") != "okta" {
		t.Errorf("idp %+v, want okta once the certificate is installed", res.IDP)
	}
	if !strings.Contains(res.TokenNote, "was deleted") {
		t.Errorf("token note %q", res.TokenNote)
	}

	// A response whose Assertion alone is signed is accepted as well.
	onlyAssertion := oktatest.StripResponseSignature(t, idp.LoginXML("jane.doe@example.test", "pw"))
	if res, _ := restapi.CheckSAMLLogin(ctx, c, b64(onlyAssertion)); res.Outcome != restapi.OutcomeAccepted {
		t.Errorf("assertion-only signature: %q %v", res.Outcome, res.Err)
	}

	log := readLog(t, opts)
	if !strings.Contains(log, "accepted a SAML response for jane.doe@example.test") {
		t.Errorf("log lacks the accepted login:\n%s", log)
	}
	if strings.Contains(log, response[:60]) {
		t.Error("the stand-in logged the SAML response")
	}
}

func TestStandinRejectsBadSAMLResponses(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	samlUsers(idp)
	p, opts := oktaStandin(t, idp, "")
	c := client(t, p, "", "")
	genuine := idp.LoginXML("jane.doe@example.test", "pw")

	otherKey := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "another IdP", KeyIndex: 3})
	other := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &otherKey})
	samlUsers(other)
	expired := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &idp.Signing, Clock: time.Now().Add(-time.Hour)})
	samlUsers(expired)
	wrongAudience := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &idp.Signing, Mutate: func(a *saml.Assertion) {
		a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other.example.test/console/auth/saml/callback"
	}})
	samlUsers(wrongAudience)

	cases := []struct {
		name, xml, reason string
	}{
		{"signed by another key", string(other.LoginXML("jane.doe@example.test", "pw")), "another key made it"},
		{"expired", string(expired.LoginXML("jane.doe@example.test", "pw")), "the assertion expired at"},
		{"wrong audience", string(wrongAudience.LoginXML("jane.doe@example.test", "pw")), "wrong audience"},
		{"unsigned", string(oktatest.StripAllSignatures(t, genuine)), "neither the Response nor the Assertion is signed"},
		{"tampered", string(oktatest.TamperUsername(t, genuine, "admin")), "digest mismatch"},
		{"wrapped", string(oktatest.WrapSiblingAssertion(t, genuine, "admin")), "exactly one Assertion"},
		{"wrapped in extensions", string(oktatest.WrapInExtensions(t, genuine, "admin")), "occurs twice"},
		{"key in KeyValue", string(signWithKeyValue(t, oktatest.StripAllSignatures(t, genuine), otherKey)), "another key made it"},
		{"doctype", string(oktatest.WithDoctype(genuine)), "DOCTYPE"},
		{"encrypted", string(oktatest.EncryptAssertion(t, genuine)), "encrypted assertions are not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			encoded := b64([]byte(tc.xml))
			res, err := restapi.CheckSAMLLogin(context.Background(), c, encoded)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != restapi.OutcomeRejected || res.HTTPStatus != http.StatusUnauthorized {
				t.Fatalf("outcome %q status %d: %v", res.Outcome, res.HTTPStatus, res.Err)
			}
			apiErr := restapi.AsAPIError(res.Err)
			if apiErr == nil || apiErr.Code != restapi.CodeUnauthorized || apiErr.ServerTraceback != "" {
				t.Fatalf("error body %+v, want unauthorized_error without a traceback", apiErr)
			}
			if !strings.Contains(apiErr.Message, tc.reason) {
				t.Errorf("message %q, want the reason %q", apiErr.Message, tc.reason)
			}
		})
	}

	if users, err := os.ReadFile(opts.StatePath("users.json")); err == nil {
		t.Errorf("a rejected response created a user: %s", users)
	}
}

func TestStandinSAMLSettingsMissing(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	samlUsers(idp)
	p, opts := oktaStandin(t, idp, "")
	must(t, os.Remove(opts.StatePath("saml.json")))

	res, err := restapi.CheckSAMLLogin(context.Background(), client(t, p, "", ""), idp.Login("jane.doe@example.test", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != restapi.OutcomeServerError || !strings.Contains(res.Err.Message, "saml.json") {
		t.Errorf("outcome %q: %v, want a server error naming saml.json", res.Outcome, res.Err)
	}
}

// Managers before 6.4 do not keep tokens: the token has no id and
// nothing is deleted.
func TestStandinSAMLTokenBefore64(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	samlUsers(idp)
	p, _ := oktaStandin(t, idp, "6.3.0")

	res, err := restapi.CheckSAMLLogin(context.Background(), client(t, p, "", ""), idp.Login("jane.doe@example.test", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != restapi.OutcomeAccepted || res.Username != "jane.doe@example.test" {
		t.Fatalf("outcome %q user %q: %v", res.Outcome, res.Username, res.Err)
	}
	if !strings.Contains(res.TokenNote, "without an id") {
		t.Errorf("token note %q", res.TokenNote)
	}
}

// signWithKeyValue signs the Response with key through xmlsec1 and puts the
// public key in the signature's KeyValue. A careless verifier would use
// that key, so a forger would do this.
func signWithKeyValue(t *testing.T, xml []byte, key oktatest.KeyPair) []byte {
	t.Helper()
	doc := string(xml)
	id := regexp.MustCompile(`<samlp:Response [^>]*ID="([^"]+)"`).FindStringSubmatch(doc)
	at := strings.Index(doc, "</saml:Issuer>")
	if id == nil || at < 0 {
		t.Fatalf("unexpected response layout: %.200s", doc)
	}
	at += len("</saml:Issuer>")

	template := `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>` +
		`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>` +
		`<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>` +
		`<ds:Reference URI="#` + id[1] + `"><ds:Transforms>` +
		`<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>` +
		`<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>` +
		`<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>` +
		`</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:KeyValue/></ds:KeyInfo></ds:Signature>`

	dir := t.TempDir()
	in, out, keyFile := filepath.Join(dir, "in.xml"), filepath.Join(dir, "out.xml"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(in, []byte(doc[:at]+template+doc[at:]), 0o600))
	must(t, os.WriteFile(keyFile, key.KeyPEM(), 0o600))
	cmd := exec.Command("xmlsec1", "--sign", "--pkcs8-pem", keyFile,
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response", "--output", out, in)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xmlsec1 --sign: %v\n%s", err, msg)
	}

	signed, err := os.ReadFile(out)
	must(t, err)
	if !strings.Contains(string(signed), "<ds:KeyValue>") {
		t.Fatalf("the forged signature carries no KeyValue: %.300s", signed)
	}
	return signed
}
