package oktaprobe

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
	"github.com/cfyauth/cfyauth/internal/report"
)

// sandbox lays out a manager file tree and returns its layout.
func sandbox(t *testing.T) *manager.Layout {
	t.Helper()
	root := filepath.Join(t.TempDir(), "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: "7.0", UID: os.Getuid(), GID: os.Getgid(), Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	layout, err := manager.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return layout
}

func writeUnder(t *testing.T, layout *manager.Layout, path string, data []byte) string {
	t.Helper()
	host := filepath.Join(layout.Root, path)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(host, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return host
}

const userDataConfig = "/opt/cloudify-stage/dist/userData/config.json"

func consoleJSON(certPath, sso string) []byte {
	return []byte(`{"auth": {"type": "saml", "certPath": "` + certPath + `", "loginPageUrl": "` + sso + `", "afterLogoutUrl": "https://portal.example.test"}}`)
}

func idpHTTP(idp *oktatest.IdP) HTTPOptions {
	pool := x509.NewCertPool()
	pool.AddCert(idp.CA.Cert)
	return HTTPOptions{RootCAs: pool, Timeout: 5 * time.Second, UserAgent: "cfyauth-test"}
}

func runProbe(t *testing.T, opts Options) *Result {
	t.Helper()
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRunWholeSetupPasses(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(jane)
	layout := sandbox(t)
	writeUnder(t, layout, manager.OktaCertificate, idp.Signing.CertPEM())
	writeUnder(t, layout, userDataConfig, consoleJSON(manager.OktaCertificate, idp.SSOURL()))
	in, err := DecodeResponse([]byte(idp.Login(jane.Name, jane.Password)), "captured.txt")
	if err != nil {
		t.Fatal(err)
	}
	res := runProbe(t, Options{
		Layout:      layout,
		Metadata:    idp.MetadataURL(),
		ManagerHost: oktatest.ManagerHost,
		HTTP:        idpHTTP(idp),
		Response:    &in,
	})
	for _, c := range res.Checks {
		if c.Status != report.Pass && c.ID != "user-groups" {
			t.Errorf("%s: %s: %s (hint %s)", c.ID, c.Status, c.Summary, c.Hint)
		}
	}
	if res.Certificate == nil || res.Certificate.SHA256 != Fingerprint(idp.Signing.Cert) {
		t.Errorf("certificate = %+v", res.Certificate)
	}
	if res.SSOURL != idp.SSOURL() || res.ClockOffsetSeconds == nil || res.User == nil {
		t.Errorf("sso %q, offset %v, user %v", res.SSOURL, res.ClockOffsetSeconds, res.User)
	}
	if res.Expected.Callback != oktatest.Callback {
		t.Errorf("callback %q", res.Expected.Callback)
	}
}

func TestRunConsolePointsAtAnotherFile(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	layout := sandbox(t)
	writeUnder(t, layout, manager.OktaCertificate, idp.Signing.CertPEM())
	other := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "stale copy", KeyIndex: 3})
	writeUnder(t, layout, "/etc/cloudify/ssl/okta_console.pem", other.CertPEM())
	writeUnder(t, layout, userDataConfig, consoleJSON("/etc/cloudify/ssl/okta_console.pem", idp.SSOURL()))
	res := runProbe(t, Options{Layout: layout, HTTP: idpHTTP(idp)})
	c := wantStatus(t, res.Checks, "console-cert-path", report.Fail, "the Console reads /etc/cloudify/ssl/okta_console.pem")
	if !strings.Contains(c.Summary, "different certificates") || !strings.Contains(c.Hint, "auth.certPath") {
		t.Errorf("summary %q hint %q", c.Summary, c.Hint)
	}

	// The same certificate in a second file is a warning, not a failure.
	writeUnder(t, layout, "/etc/cloudify/ssl/okta_console.pem", idp.Signing.CertPEM())
	res = runProbe(t, Options{Layout: layout, HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "console-cert-path", report.Warn, "same certificate today")

	// A symlink to the REST service's file is the same file.
	host := filepath.Join(layout.Root, "/etc/cloudify/ssl/okta_console.pem")
	os.Remove(host)
	if err := os.Symlink("okta_certificate.pem", host); err != nil {
		t.Fatal(err)
	}
	res = runProbe(t, Options{Layout: layout, HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "console-cert-path", report.Pass, "same certificate file")
}

func TestRunConsoleLegacyAndLocal(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	layout := sandbox(t)
	writeUnder(t, layout, manager.OktaCertificate, idp.Signing.CertPEM())
	writeUnder(t, layout, "/opt/cloudify-stage/conf/app.json",
		[]byte(`{"saml": {"enabled": true, "certPath": "/etc/cloudify/ssl/okta_certificate.pem", "ssoUrl": "`+idp.SSOURL()+`", "portalUrl": "https://portal.example.test"}}`))
	res := runProbe(t, Options{Layout: layout, HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "console-config", report.Warn, "legacy saml section")
	wantStatus(t, res.Checks, "console-cert-path", report.Pass, "")
	wantStatus(t, res.Checks, "sso-url", report.Pass, "verified TLS")
	if res.Console.Sources["saml.ssoUrl"] == "" {
		t.Errorf("sources %v", res.Console.Sources)
	}

	// A current auth section in SAML mode takes precedence over the legacy one.
	writeUnder(t, layout, userDataConfig, consoleJSON(manager.OktaCertificate, idp.SSOURL()))
	res = runProbe(t, Options{Layout: layout, HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "console-config", report.Pass, "(auth section)")
	writeUnder(t, layout, userDataConfig, []byte(`{"auth": {"type": "local"}}`))

	writeUnder(t, layout, "/opt/cloudify-stage/conf/app.json", []byte(`{}`))
	res = runProbe(t, Options{Layout: layout, HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "console-config", report.Warn, "locally")

	writeUnder(t, layout, userDataConfig, []byte(`{"auth": `))
	res = runProbe(t, Options{Layout: layout, HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "console-config", report.Fail, "not valid JSON")
}

func TestRunExpiredCertificateFile(t *testing.T) {
	layout := sandbox(t)
	expired := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "old okta", NotBefore: time.Now().Add(-800 * 24 * time.Hour), NotAfter: time.Now().Add(-35 * 24 * time.Hour)})
	writeUnder(t, layout, manager.OktaCertificate, expired.CertPEM())
	res := runProbe(t, Options{Layout: layout})
	wantStatus(t, res.Checks, "cert-file", report.Pass, "old okta")
	wantStatus(t, res.Checks, "cert-validity", report.Fail, "expired on")
}

func TestRunExpiredCertificateStillVerifiesSignature(t *testing.T) {
	signing := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "expired signing", NotBefore: time.Now().Add(-400 * 24 * time.Hour), NotAfter: time.Now().Add(-time.Hour), KeyIndex: 3})
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &signing})
	idp.AddUser(alice)
	checks, _ := checkResponse(t, idp, idp.LoginXML("alice", "alice-pw"), nil)
	wantStatus(t, checks, "response-signature", report.Pass, "")
}

func TestRunSSOURLFailures(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	layout := sandbox(t)

	// The system trust store does not know the test CA.
	res := runProbe(t, Options{Layout: layout, SSOURL: idp.SSOURL(), HTTP: HTTPOptions{Timeout: 5 * time.Second}})
	c := wantStatus(t, res.Checks, "sso-url", report.Fail, "unknown authority")
	if !strings.Contains(c.Hint, "--idp-ca-cert") {
		t.Errorf("hint %q", c.Hint)
	}
	// TLS verification off: reported in the check and in its own check.
	res = runProbe(t, Options{Layout: layout, SSOURL: idp.SSOURL(), HTTP: HTTPOptions{Timeout: 5 * time.Second, InsecureSkipVerify: true}})
	wantStatus(t, res.Checks, "sso-url", report.Warn, "TLS verification off")
	wantStatus(t, res.Checks, "tls-verify", report.Warn, "")

	res = runProbe(t, Options{Layout: layout, SSOURL: idp.URL + "/no-such-page", HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "sso-url", report.Fail, "404")

	res = runProbe(t, Options{Layout: layout, SSOURL: "http://127.0.0.1:1/sso", HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "sso-url", report.Fail, "not https")

	// A closed port on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res = runProbe(t, Options{Layout: layout, SSOURL: "https://" + addr + "/sso", HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "sso-url", report.Fail, "cannot connect")
	wantStatus(t, res.Checks, "clock", report.Skip, "")
}

func TestRunSSOURLRedirectCounts(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	redirector := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "" {
			http.Error(w, "credentials sent", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, idp.URL+"/login", http.StatusFound)
	}))
	redirector.StartTLS()
	defer redirector.Close()
	pool := x509.NewCertPool()
	pool.AddCert(redirector.Certificate())
	res := runProbe(t, Options{Layout: sandbox(t), SSOURL: redirector.URL + "/app/sso/saml", HTTP: HTTPOptions{RootCAs: pool, Timeout: 5 * time.Second}})
	c := wantStatus(t, res.Checks, "sso-url", report.Pass, "a redirect to "+idp.URL)
	if evidence(c, "http_status") != "302 Found" {
		t.Errorf("status evidence %q", evidence(c, "http_status"))
	}
}

func TestRunClockOffset(t *testing.T) {
	for _, tc := range []struct {
		offset time.Duration
		want   report.Status
		part   string
	}{
		{0, report.Pass, "within"},
		{-2 * time.Minute, report.Warn, "behind"},
		{-10 * time.Minute, report.Fail, "before their NotBefore"},
		{10 * time.Minute, report.Fail, "after their NotOnOrAfter"},
	} {
		// A positive DateOffset puts the IdP's clock ahead, so the local
		// clock is behind.
		idp := oktatest.StartIdP(t, oktatest.IdPOptions{DateOffset: -tc.offset})
		res := runProbe(t, Options{Layout: sandbox(t), SSOURL: idp.SSOURL(), HTTP: idpHTTP(idp)})
		c := wantStatus(t, res.Checks, "clock", tc.want, tc.part)
		if *res.ClockOffsetSeconds < tc.offset.Seconds()-2 || *res.ClockOffsetSeconds > tc.offset.Seconds()+2 {
			t.Errorf("offset %v: measured %.1fs (%v)", tc.offset, *res.ClockOffsetSeconds, c.Evidence)
		}
	}
}

func TestRunClockUsesResponseMargins(t *testing.T) {
	// crewjam's IdP issues assertions valid for 90 s after issue, so a
	// local clock 2 minutes ahead already fails with that response.
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{DateOffset: -2 * time.Minute})
	idp.AddUser(alice)
	layout := sandbox(t)
	writeUnder(t, layout, manager.OktaCertificate, idp.Signing.CertPEM())
	in, _ := DecodeResponse(idp.LoginXML("alice", "alice-pw"), "r")
	res := runProbe(t, Options{Layout: layout, SSOURL: idp.SSOURL(), HTTP: idpHTTP(idp), Response: &in})
	c := wantStatus(t, res.Checks, "clock", report.Fail, "after their NotOnOrAfter")
	if !strings.Contains(evidence(c, "margin_ahead"), "response") {
		t.Errorf("margin evidence %q", evidence(c, "margin_ahead"))
	}
}

func TestRunWithoutLayoutNeedsCertificate(t *testing.T) {
	if _, err := Run(context.Background(), Options{}); err == nil {
		t.Fatal("no layout and no certificate accepted")
	}
	pair := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "candidate"})
	path := filepath.Join(t.TempDir(), "candidate.pem")
	os.WriteFile(path, pair.CertPEM(), 0o644)
	res := runProbe(t, Options{CertificatePath: path})
	wantStatus(t, res.Checks, "cert-file", report.Pass, "candidate")
	wantStatus(t, res.Checks, "console-config", report.Skip, "")
}

func TestRunUnreadableCertificateIsEnvironmentError(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode; the permission path needs a non-root user")
	}
	layout := sandbox(t)
	host := writeUnder(t, layout, manager.OktaCertificate, []byte("x"))
	os.Chmod(host, 0)
	if _, err := Run(context.Background(), Options{Layout: layout}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("err = %v", err)
	}
}

func TestRunMetadataDownloadFailures(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	layout := sandbox(t)
	writeUnder(t, layout, manager.OktaCertificate, idp.Signing.CertPEM())

	res := runProbe(t, Options{Layout: layout, Metadata: idp.URL + "/no-metadata-here", HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "metadata", report.Fail, "the server returned HTTP 404")

	res = runProbe(t, Options{Layout: layout, Metadata: idp.MetadataURL(), HTTP: HTTPOptions{Timeout: 5 * time.Second}})
	wantStatus(t, res.Checks, "metadata", report.Fail, "unknown authority")

	res = runProbe(t, Options{Layout: layout, Metadata: idp.MetadataURL(), HTTP: idpHTTP(idp)})
	wantStatus(t, res.Checks, "metadata", report.Pass, "")
	wantStatus(t, res.Checks, "metadata-certs", report.Pass, "")
	// The metadata's own sign-in URL is requested when nothing else names one.
	if res.SSOURL != idp.URL+"/sso" {
		t.Errorf("sign-in URL %q", res.SSOURL)
	}
}
