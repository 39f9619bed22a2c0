package ldapprobe

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/ldapprobe/ldaptest"
	"github.com/cfyauth/cfyauth/internal/report"
)

// factsFor returns the TLS facts of a server that presents cert, verified
// against ca.
func factsFor(t *testing.T, cert tls.Certificate, ca *ldaptest.CA, now time.Time) tlsFacts {
	t.Helper()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return tlsFacts{state: tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, roots: roots,
		caCerts: []*x509.Certificate{ca.Cert}, caSource: "the CA in " + ca.PEMFile, host: "127.0.0.1", now: now}
}

func TestVerifyChainExpiredLeafOfOtherCA(t *testing.T) {
	now := time.Now()
	issuer := ldaptest.NewCA(t, "Issuing CA")
	other := ldaptest.NewCA(t, "Other CA")
	cert := issuer.Issue(t, []string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))

	v := verifyChain(factsFor(t, cert, other, now))
	var unknown x509.UnknownAuthorityError
	if !errors.As(v.err, &unknown) {
		t.Fatalf("an expired certificate of another CA: error %v, want an unknown authority", v.err)
	}
	f := factsFor(t, cert, other, now)
	f.verified = v
	if c := checkChain(f); c.Status != report.Fail {
		t.Errorf("tls.chain %s: %s", c.Status, c.Summary)
	}
}

func TestVerifyChainNoCommonValidity(t *testing.T) {
	now := time.Now()
	ca := ldaptest.NewCAValid(t, "Late CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	cert := ca.Issue(t, []string{"127.0.0.1"}, now.Add(-72*time.Hour), now.Add(-48*time.Hour))

	f := factsFor(t, cert, ca, now)
	f.verified = verifyChain(f)
	if f.verified.err != nil || f.verified.atNow || len(f.verified.chain) != 2 {
		t.Fatalf("verification %+v, want the chain to the CA apart from its dates", f.verified)
	}
	if c := checkChain(f); c.Status != report.Pass {
		t.Errorf("tls.chain %s: %s", c.Status, c.Summary)
	}
	c := checkExpiry(f)
	if c.Status != report.Fail || c.Hint == "" {
		t.Errorf("tls.expiry %s: %s (%s)", c.Status, c.Summary, c.Hint)
	}
}
