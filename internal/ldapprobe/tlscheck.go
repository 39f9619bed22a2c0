package ldapprobe

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// ExpiryWarning is the time before a certificate's end of validity from
// which the tls.expiry check warns.
const ExpiryWarning = 30 * 24 * time.Hour

// tlsFacts are the results of a finished handshake that the tls checks read.
type tlsFacts struct {
	state tls.ConnectionState
	roots *x509.CertPool // nil: the system's roots
	// caCerts are the certificates in roots; nil for the system's roots.
	caCerts  []*x509.Certificate
	verified chainVerification
	caSource string
	host     string
	now      time.Time
	insecure bool
}

// checkTLSVersion describes the negotiated protocol; versions below 1.2
// warn because current clients, the manager's Python among them, may refuse
// them.
func checkTLSVersion(f tlsFacts, mode string) report.Check {
	c := report.Check{ID: LayerTLS, Status: report.Pass}
	version := tls.VersionName(f.state.Version)
	c.AddEvidence("mode", mode)
	c.AddEvidence("version", version)
	c.AddEvidence("cipher suite", tls.CipherSuiteName(f.state.CipherSuite))
	c.Summary = fmt.Sprintf("%s handshake completed (%s)", mode, version)
	if f.state.Version < tls.VersionTLS12 {
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("%s handshake completed with %s, which is older than TLS 1.2", mode, version)
		c.Hint = "enable TLS 1.2 or 1.3 on the LDAP server; current clients refuse older versions"
	}
	if f.insecure {
		c.Status = report.Warn
		c.Summary += "; the certificate is NOT verified (--insecure-skip-verify)"
		c.Hint = "drop --insecure-skip-verify and pass the CA with --ldap-ca-path; the manager always verifies"
	}
	return c
}

// describeCert adds the facts about a certificate that an operator compares
// with what they expect.
func describeCert(c *report.Check, prefix string, cert *x509.Certificate) {
	c.AddEvidence(prefix+"subject", cert.Subject.String())
	c.AddEvidence(prefix+"issuer", cert.Issuer.String())
	if names := certNames(cert); names != "" {
		c.AddEvidence(prefix+"subject alternative names", names)
	}
	c.AddEvidence(prefix+"not after", cert.NotAfter.UTC().Format(time.RFC3339))
	sum := sha256.Sum256(cert.Raw)
	c.AddEvidence(prefix+"sha256 fingerprint", strings.ToUpper(hex.EncodeToString(sum[:])))
}

// certNames lists the DNS and IP subject alternative names of a
// certificate.
func certNames(cert *x509.Certificate) string {
	var names []string
	for _, d := range cert.DNSNames {
		names = append(names, "DNS:"+d)
	}
	for _, ip := range cert.IPAddresses {
		names = append(names, "IP:"+ip.String())
	}
	return strings.Join(names, ", ")
}

// failOrWarn fails a verification check, or only warns when verification
// is switched off.
func failOrWarn(c *report.Check, insecure bool) {
	if insecure {
		c.Status = report.Warn
		c.Summary += " (ignored: --insecure-skip-verify)"
		return
	}
	c.Status = report.Fail
}

// checkChain reports whether the server's chain leads to the CA. A
// certificate outside its validity period is left to tls.expiry.
func checkChain(f tlsFacts) report.Check {
	c := report.Check{ID: LayerTLSChain, Status: report.Pass}
	certs := f.state.PeerCertificates
	if len(certs) == 0 {
		c.Status = report.Fail
		c.Summary = "the server sent no certificate"
		return c
	}
	leaf := certs[0]
	describeCert(&c, "", leaf)
	c.AddEvidence("CA", f.caSource)

	v := f.verified
	switch {
	case v.err == nil && v.atNow:
		c.Summary = fmt.Sprintf("certificate chain verifies against %s", f.caSource)
		return c
	case v.err == nil:
		c.Summary = fmt.Sprintf("certificate chain leads to %s; tls.expiry checks its validity dates", f.caSource)
		return c
	}
	err := v.err
	c.AddEvidence("error", err.Error())
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		c.Summary = fmt.Sprintf("certificate issued by %s is not signed by %s", quoteText(leaf.Issuer.String()), f.caSource)
		c.Hint = fmt.Sprintf("pass the CA certificate of %q with --ldap-ca-path; the manager rejects this server the same way", leaf.Issuer.CommonName)
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		c.Summary = "certificate is not valid for TLS server authentication (extended key usage)"
		c.Hint = "reissue the server certificate with extendedKeyUsage serverAuth"
	default:
		c.Summary = "certificate chain does not verify: " + err.Error()
		c.Hint = "check the certificate chain the server sends and the CA in --ldap-ca-path"
	}
	failOrWarn(&c, f.insecure)
	return c
}

// checkHostname verifies that the certificate names the host of the URL;
// an IP literal must appear as an IP subject alternative name.
func checkHostname(f tlsFacts) report.Check {
	c := report.Check{ID: LayerTLSHostname, Status: report.Pass}
	leaf := f.state.PeerCertificates[0]
	c.AddEvidence("host", f.host)
	c.AddEvidence("certificate names", certNames(leaf))
	err := leaf.VerifyHostname(f.host)
	if err == nil {
		c.Summary = fmt.Sprintf("certificate is valid for %s", f.host)
		return c
	}
	kind := "host name"
	if net.ParseIP(f.host) != nil {
		kind = "IP address"
	}
	names := certNames(leaf)
	if names == "" {
		names = "no subject alternative names"
	}
	c.Summary = fmt.Sprintf("certificate is not valid for the %s %s (it lists %s)", kind, f.host, names)
	c.Hint = "connect with a name or address the certificate lists, or reissue it with a subject alternative name for " + f.host
	failOrWarn(&c, f.insecure)
	return c
}

// checkExpiry reports the validity period of every certificate of the
// chain: those the server sent and the CA the chain leads to. It fails for
// one that is expired or not yet valid and warns inside ExpiryWarning.
func checkExpiry(f tlsFacts) report.Check {
	c := report.Check{ID: LayerTLSExpiry, Status: report.Pass}
	leaf := f.state.PeerCertificates[0]
	c.AddEvidence("not before", leaf.NotBefore.UTC().Format(time.RFC3339))
	c.AddEvidence("not after", leaf.NotAfter.UTC().Format(time.RFC3339))

	certs := chainCertificates(f)
	earliest := leaf
	var notYet *x509.Certificate
	for _, cert := range certs {
		if cert.NotAfter.Before(earliest.NotAfter) {
			earliest = cert
		}
		if notYet == nil && f.now.Before(cert.NotBefore) {
			notYet = cert
		}
	}
	if earliest != leaf {
		c.AddEvidence("earliest expiry in the chain", fmt.Sprintf("%s (%s)", earliest.NotAfter.UTC().Format(time.RFC3339), earliest.Subject.String()))
	}
	left := earliest.NotAfter.Sub(f.now)
	switch {
	case left <= 0:
		c.Summary = fmt.Sprintf("%s expired on %s (%s ago)", f.certRole(earliest), earliest.NotAfter.UTC().Format(time.RFC3339), days(-left))
		c.Hint = f.renewHint(earliest) + "; the manager rejects an expired certificate"
		failOrWarn(&c, f.insecure)
	case notYet != nil:
		c.Summary = fmt.Sprintf("%s is not valid before %s", f.certRole(notYet), notYet.NotBefore.UTC().Format(time.RFC3339))
		c.Hint = "check the clocks of this host and the LDAP server; if they are right, " + f.renewHint(notYet)
		failOrWarn(&c, f.insecure)
	case left < ExpiryWarning:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("%s expires on %s, in %s", f.certRole(earliest), earliest.NotAfter.UTC().Format(time.RFC3339), days(left))
		c.Hint = f.renewHint(earliest) + " before it expires"
	default:
		c.Summary = fmt.Sprintf("certificate valid until %s (%s)", earliest.NotAfter.UTC().Format("2006-01-02"), days(left))
	}
	return c
}

// chainCertificates lists the certificates the server sent, then those of
// the verified chain that it did not send, such as the CA.
func chainCertificates(f tlsFacts) []*x509.Certificate {
	certs := append([]*x509.Certificate(nil), f.state.PeerCertificates...)
	for _, cert := range f.verified.chain {
		if !inPath(certs, cert) {
			certs = append(certs, cert)
		}
	}
	return certs
}

// certRole names a certificate of the chain by its place in it.
func (f tlsFacts) certRole(cert *x509.Certificate) string {
	switch {
	case cert.Equal(f.state.PeerCertificates[0]):
		return "certificate"
	case inPath(f.caCerts, cert):
		return fmt.Sprintf("CA certificate %q in %s", cert.Subject.CommonName, strings.TrimPrefix(f.caSource, "the CA in "))
	case inPath(f.state.PeerCertificates, cert):
		return fmt.Sprintf("intermediate CA certificate %q", cert.Subject.CommonName)
	}
	return fmt.Sprintf("CA certificate %q", cert.Subject.CommonName)
}

// renewHint returns the fix for a certificate of the chain that is out of
// its validity period.
func (f tlsFacts) renewHint(cert *x509.Certificate) string {
	switch {
	case cert.Equal(f.state.PeerCertificates[0]):
		return "renew the LDAP server's certificate"
	case inPath(f.caCerts, cert):
		return "pass the CA's current certificate with --ldap-ca-path (and the manager's ldap_ca_cert)"
	case inPath(f.state.PeerCertificates, cert):
		return "install the intermediate CA's current certificate on the LDAP server"
	}
	return "renew the CA certificate in the system's trust store"
}

// days formats a duration as whole days, or hours below one day.
func days(d time.Duration) string {
	if d < 24*time.Hour {
		h := int(d.Hours())
		if h == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", h)
	}
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
