package oktaprobe

import (
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
)

// FixtureCaptureTime is when the script fixtures' responses were issued;
// the scripts pass times around it with --at.
var FixtureCaptureTime = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

// TestWriteScriptFixtures regenerates the certificates, metadata and
// captured responses embedded in cmd/cfyauth/testdata/script/okta_*.txtar.
// It runs only with CFYAUTH_WRITE_OKTA_FIXTURES=1, and replaces the files
// of each archive whose names it generates, leaving the scripts alone.
func TestWriteScriptFixtures(t *testing.T) {
	if os.Getenv("CFYAUTH_WRITE_OKTA_FIXTURES") != "1" {
		t.Skip("set CFYAUTH_WRITE_OKTA_FIXTURES=1 to regenerate the okta script fixtures")
	}
	files := scriptFixtures(t)
	scripts, err := filepath.Glob("../../cmd/cfyauth/testdata/script/okta_*.txtar")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no okta scripts found: %v", err)
	}
	for _, path := range scripts {
		ar, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for i, f := range ar.Files {
			if data, ok := files[f.Name]; ok {
				ar.Files[i].Data = data
				changed++
			}
		}
		if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d fixture files replaced", path, changed)
	}
}

// withoutValidUntil drops the metadata's validUntil, which the IdP sets two
// days after its clock, so the fixture does not expire.
func withoutValidUntil(md []byte) []byte {
	return validUntilAttr.ReplaceAll(md, nil)
}

var validUntilAttr = regexp.MustCompile(` validUntil="[^"]*"`)

// scriptFixtures makes every fixture file by name. Certificates are valid
// from 2025 to 2125, so the scripts do not age.
func scriptFixtures(t *testing.T) map[string][]byte {
	longFrom := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	longTo := time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC)
	signing := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "Okta test IdP signing", NotBefore: longFrom, NotAfter: longTo, KeyIndex: 2})
	next := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "Okta test IdP signing (next)", NotBefore: longFrom, NotAfter: longTo, KeyIndex: 3})
	expired := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "Okta test IdP signing (expired)", NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), KeyIndex: 2})
	ca := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "Okta test CA", IsCA: true, NotBefore: longFrom, NotAfter: longTo, KeyIndex: 4})
	issued := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "Okta test IdP signing (CA-issued)", Parent: &ca, NotBefore: longFrom, NotAfter: longTo, KeyIndex: 5})

	files := map[string][]byte{
		"idp-cert.pem":     signing.CertPEM(),
		"next-cert.pem":    next.CertPEM(),
		"expired-cert.pem": expired.CertPEM(),
		"chain-wrong.pem":  append(ca.CertPEM(), issued.CertPEM()...),
		"chain-right.pem":  append(issued.CertPEM(), ca.CertPEM()...),
	}

	users := []oktatest.User{
		{Name: "jane.doe@example.test", Password: "pw", Email: "jane.doe@example.test", GivenName: "Jane", Surname: "Doe", Groups: []string{"Cloudify Admins", "Dev Ops Team"}},
		{Name: "bob", Password: "pw", Email: "bob@example.test", GivenName: "Bob", Surname: "Builder"},
	}
	start := func(o oktatest.IdPOptions) *oktatest.IdP {
		o.Clock = FixtureCaptureTime
		idp := oktatest.StartIdP(t, o)
		for _, u := range users {
			idp.AddUser(u)
		}
		return idp
	}
	b64 := func(xml []byte) []byte { return []byte(wrap76(base64.StdEncoding.EncodeToString(xml)) + "\n") }

	idp := start(oktatest.IdPOptions{Signing: &signing})
	genuine := idp.LoginXML("jane.doe@example.test", "pw")
	files["metadata.xml"] = withoutValidUntil(idp.Metadata())
	files["response.b64"] = b64(genuine)
	files["response.xml"] = append(genuine, '\n')
	files["response-no-groups.b64"] = b64(idp.LoginXML("bob", "pw"))
	files["response-doctype.xml"] = append(oktatest.WithDoctype(genuine), '\n')
	files["response-wrapped.xml"] = append(oktatest.WrapSiblingAssertion(t, genuine, "admin"), '\n')
	files["response-tampered.xml"] = append(oktatest.TamperUsername(t, genuine, "admin"), '\n')
	files["response-encrypted.xml"] = append(oktatest.EncryptAssertion(t, genuine), '\n')

	rotating := start(oktatest.IdPOptions{Signing: &signing, ExtraSigningCerts: []*x509.Certificate{next.Cert}})
	files["metadata-rotation.xml"] = withoutValidUntil(rotating.Metadata())

	other := start(oktatest.IdPOptions{Signing: &next})
	files["response-other-key.b64"] = b64(other.LoginXML("jane.doe@example.test", "pw"))

	wrongAudience := start(oktatest.IdPOptions{Signing: &signing, Mutate: func(a *saml.Assertion) {
		a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other.example.test/console/auth/saml/callback"
	}})
	files["response-wrong-audience.b64"] = b64(wrongAudience.LoginXML("jane.doe@example.test", "pw"))
	for name, data := range files {
		if !strings.HasSuffix(string(data), "\n") {
			files[name] = append(data, '\n')
		}
	}
	return files
}
