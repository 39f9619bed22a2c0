package oktaprobe

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
	"github.com/cfyauth/cfyauth/internal/report"
)

func TestParseCertificatePEMRejectsNonCertificates(t *testing.T) {
	ca := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "issuing CA", IsCA: true})
	leaf := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "signing", Parent: &ca, KeyIndex: 1})
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", []byte("\n"), "is empty"},
		{"private key", leaf.KeyPEM(), "contains a private key"},
		{"certificate and key", append(leaf.CertPEM(), leaf.KeyPEM()...), "contains a private key"},
		{"DER", leaf.Cert.Raw, "DER (binary)"},
		{"bare base64", []byte(base64.StdEncoding.EncodeToString(leaf.Cert.Raw)), "without the PEM lines"},
		{"chain in wrong order", append(ca.CertPEM(), leaf.CertPEM()...), "chain in the wrong order"},
		{"garbage", []byte("hello"), "contains no PEM certificate"},
		{"public key", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), "public key"},
		{"broken block", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "does not parse"},
	}
	for _, tc := range cases {
		_, err := ParseCertificatePEM("okta_certificate.pem", tc.data)
		var ce *CertificateError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err = %v, want a CertificateError", tc.name, err)
			continue
		}
		if !strings.Contains(ce.Reason, tc.want) || ce.Hint == "" {
			t.Errorf("%s: reason %q (hint %q), want %q", tc.name, ce.Reason, ce.Hint, tc.want)
		}
		if bytes.Contains([]byte(ce.Error()), []byte("PRIVATE KEY-----")) {
			t.Errorf("%s: the error quotes key material", tc.name)
		}
	}
}

func TestParseCertificatePEMChainInOrder(t *testing.T) {
	ca := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "issuing CA", IsCA: true})
	leaf := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "signing", Parent: &ca, KeyIndex: 1})
	certs, err := ParseCertificatePEM("f", append([]byte("subject=CN = signing\n"), append(leaf.CertPEM(), ca.CertPEM()...)...))
	if err != nil || len(certs) != 2 || !certs[0].Equal(leaf.Cert) {
		t.Fatalf("certs %d, err %v", len(certs), err)
	}
	c := certificateFileCheck("f", certs, nil)
	if c.Status != report.Warn || !strings.Contains(c.Summary, "contains 2 certificates") {
		t.Errorf("check %s: %s", c.Status, c.Summary)
	}
}

func TestCertificateFileCheckMissing(t *testing.T) {
	_, err := readCertificateFile(t.TempDir() + "/okta_certificate.pem")
	c := certificateFileCheck("/etc/cloudify/ssl/okta_certificate.pem", nil, err)
	if c.Status != report.Fail || !strings.Contains(c.Summary, "authenticator is off") || !strings.Contains(c.Hint, "restart") {
		t.Errorf("%s: %s (%s)", c.Status, c.Summary, c.Hint)
	}
}

func TestCertificateFileCheckShowsFingerprint(t *testing.T) {
	pair := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "okta signing"})
	certs, err := ParseCertificatePEM("f", pair.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	c := certificateFileCheck("f", certs, nil)
	fp := Fingerprint(pair.Cert)
	if c.Status != report.Pass || evidence(c, "sha256") != fp || !strings.Contains(c.Summary, fp) {
		t.Errorf("%s: %s %v", c.Status, c.Summary, c.Evidence)
	}
	if !strings.Contains(evidence(c, "subject"), "CN=okta signing") {
		t.Errorf("subject evidence %q", evidence(c, "subject"))
	}
	if len(fp) != 95 || strings.ToUpper(fp) != fp {
		t.Errorf("fingerprint %q is not colon-separated uppercase SHA-256", fp)
	}
}

func TestCertificateValidityWindow(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name     string
		from, to time.Time
		want     report.Status
		summary  string
	}{
		{"valid", now.Add(-time.Hour), now.Add(400 * 24 * time.Hour), report.Pass, "days left"},
		{"expiring", now.Add(-time.Hour), now.Add(10 * 24 * time.Hour), report.Warn, "expires on"},
		{"expired", now.Add(-400 * 24 * time.Hour), now.Add(-24 * time.Hour), report.Fail, "expired on"},
		{"not yet valid", now.Add(24 * time.Hour), now.Add(400 * 24 * time.Hour), report.Fail, "not valid before"},
	}
	for _, tc := range cases {
		pair := oktatest.NewCert(t, oktatest.CertOptions{CommonName: tc.name, NotBefore: tc.from, NotAfter: tc.to})
		c := certificateValidityCheck(pair.Cert, now, "/etc/cloudify/ssl/okta_certificate.pem")
		if c.Status != tc.want || !strings.Contains(c.Summary, tc.summary) {
			t.Errorf("%s: %s %q", tc.name, c.Status, c.Summary)
		}
	}
}
