package oktaprobe

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// ExpiryWarning is how long before its NotAfter a certificate is reported
// as expiring soon.
const ExpiryWarning = 30 * 24 * time.Hour

// CertificateInfo describes one certificate for reports and JSON output.
type CertificateInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	SHA256    string    `json:"sha256"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	PublicKey string    `json:"public_key"`
}

// Fingerprint returns the SHA-256 fingerprint of a certificate's DER bytes
// as colon-separated uppercase hex, the form openssl x509 -fingerprint
// -sha256 and IdP consoles print.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// DescribeCertificate returns the facts a report shows about a certificate.
func DescribeCertificate(cert *x509.Certificate) CertificateInfo {
	return CertificateInfo{
		Subject:   cert.Subject.String(),
		Issuer:    cert.Issuer.String(),
		Serial:    cert.SerialNumber.Text(16),
		SHA256:    Fingerprint(cert),
		NotBefore: cert.NotBefore.UTC(),
		NotAfter:  cert.NotAfter.UTC(),
		PublicKey: describeKey(cert),
	}
}

func describeKey(cert *x509.Certificate) string {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return cert.PublicKeyAlgorithm.String()
	}
}

// CertificateError explains why a certificate file cannot be used; Hint is
// the next step for the operator.
type CertificateError struct {
	Path   string
	Reason string
	Hint   string
}

func (e *CertificateError) Error() string { return e.Path + " " + e.Reason }

// ParseCertificatePEM reads the certificates of a PEM file in file order.
// It rejects what is not a certificate file: private and public keys,
// certificate requests, DER, bare base64 without PEM lines, and a chain
// whose first certificate is the CA of a later one, because the first
// certificate is the one read as the IdP's signing certificate. Keys are
// never quoted in errors.
func ParseCertificatePEM(path string, data []byte) ([]*x509.Certificate, error) {
	fail := func(reason, hint string) error { return &CertificateError{Path: path, Reason: reason, Hint: hint} }
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fail("is empty", "save the IdP's signing certificate in PEM form (-----BEGIN CERTIFICATE-----) there")
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fail(fmt.Sprintf("has a CERTIFICATE block (number %d) that does not parse: %v", len(certs)+1, err),
					"copy the certificate again from the IdP; the PEM text was probably cut or altered")
			}
			certs = append(certs, cert)
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, fail("contains a private key ("+block.Type+"), not only certificates",
				"the manager needs the IdP's public signing certificate only; remove the key from the file and keep it secret")
		case block.Type == "PUBLIC KEY" || block.Type == "RSA PUBLIC KEY":
			return nil, fail("contains a public key, not a certificate",
				"download the signing certificate (X.509, PEM) from the IdP's SAML app settings")
		case strings.Contains(block.Type, "CERTIFICATE REQUEST"):
			return nil, fail("contains a certificate request, not a certificate",
				"download the signing certificate (X.509, PEM) from the IdP's SAML app settings")
		default:
			return nil, fail(fmt.Sprintf("contains a PEM block of type %q, not a certificate", block.Type),
				"download the signing certificate (X.509, PEM) from the IdP's SAML app settings")
		}
	}
	if len(certs) == 0 {
		trimmed := bytes.TrimSpace(data)
		if _, err := x509.ParseCertificate(trimmed); err == nil {
			return nil, fail("is a DER (binary) certificate; the manager reads PEM",
				fmt.Sprintf("convert it: openssl x509 -inform der -in %s -out %s", path, path))
		}
		compact := strings.Join(strings.Fields(string(trimmed)), "")
		if der, err := base64.StdEncoding.DecodeString(compact); err == nil {
			if _, err := x509.ParseCertificate(der); err == nil {
				return nil, fail("contains a base64 certificate without the PEM lines",
					"put -----BEGIN CERTIFICATE----- on the line before it and -----END CERTIFICATE----- on the line after it")
			}
		}
		return nil, fail("contains no PEM certificate",
			"save the IdP's signing certificate in PEM form (-----BEGIN CERTIFICATE-----) there")
	}
	if len(certs) > 1 {
		for i := 1; i < len(certs); i++ {
			if certs[0].IsCA && certs[i].CheckSignatureFrom(certs[0]) == nil {
				return nil, fail(fmt.Sprintf("contains a chain in the wrong order: the first certificate (%s) is the CA that issued certificate %d (%s)",
					certs[0].Subject, i+1, certs[i].Subject),
					"put the IdP's signing certificate first, or keep only it in the file")
			}
		}
	}
	return certs, nil
}

// readCertificateFile reads and parses the IdP certificate file. A missing
// file is reported through os.ErrNotExist, a permission problem through
// os.ErrPermission.
func readCertificateFile(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCertificatePEM(path, data)
}

// certificateFileCheck reports whether the file holds a usable signing
// certificate.
func certificateFileCheck(display string, certs []*x509.Certificate, readErr error) report.Check {
	c := report.Check{ID: "cert-file", Subject: "certificate"}
	c.AddEvidence("path", display)
	var certErr *CertificateError
	switch {
	case errors.Is(readErr, os.ErrNotExist):
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("no certificate at %s, so the manager's OKTA (SAML) authenticator is off", display)
		c.Hint = fmt.Sprintf("save the IdP's signing certificate (PEM) as %s, then restart the REST service", display)
		return c
	case errors.As(readErr, &certErr):
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("%s %s", display, certErr.Reason)
		c.Hint = certErr.Hint
		return c
	case readErr != nil:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("cannot read %s: %v", display, readErr)
		c.Hint = "check the file's type and permissions"
		return c
	}
	leaf := certs[0]
	info := DescribeCertificate(leaf)
	c.AddEvidence("subject", info.Subject).AddEvidence("issuer", info.Issuer).
		AddEvidence("sha256", info.SHA256).AddEvidence("serial", info.Serial).
		AddEvidence("public_key", info.PublicKey)
	c.Status = report.Pass
	c.Summary = fmt.Sprintf("IdP signing certificate %s, SHA-256 %s", info.Subject, info.SHA256)
	if len(certs) > 1 {
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("%s contains %d certificates; the first (%s) is read as the IdP signing certificate", display, len(certs), info.Subject)
		c.Hint = "keep only the IdP's signing certificate in the file"
		for i, extra := range certs[1:] {
			c.AddEvidence(fmt.Sprintf("extra_%d", i+1), extra.Subject.String()+" "+Fingerprint(extra))
		}
	}
	if k, ok := leaf.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("the IdP signing certificate has a %d-bit RSA key, below the 2048 bits current IdPs use", k.N.BitLen())
		c.Hint = "have the IdP issue a new signing certificate with a 2048-bit or larger key"
	}
	return c
}

// certificateValidityCheck reports the certificate's validity window at
// now, warning within ExpiryWarning of its end. installPath is the file
// the REST service reads, which the hints name.
func certificateValidityCheck(cert *x509.Certificate, now time.Time, installPath string) report.Check {
	c := report.Check{ID: "cert-validity", Subject: "certificate"}
	c.AddEvidence("not_before", cert.NotBefore.UTC().Format(time.RFC3339)).
		AddEvidence("not_after", cert.NotAfter.UTC().Format(time.RFC3339))
	left := cert.NotAfter.Sub(now)
	switch {
	case now.Before(cert.NotBefore):
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the certificate is not valid before %s (in %s)", cert.NotBefore.UTC().Format(time.RFC3339), humanDuration(cert.NotBefore.Sub(now)))
		c.Hint = "check the local clock, or install the certificate the IdP signs with today"
	case !now.Before(cert.NotAfter):
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the certificate expired on %s (%s ago)", cert.NotAfter.UTC().Format(time.RFC3339), humanDuration(-left))
		c.Hint = fmt.Sprintf("download the IdP's current signing certificate and save it as %s, then restart the REST service", installPath)
	case left < ExpiryWarning:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("the certificate expires on %s, in %d days", cert.NotAfter.UTC().Format(time.RFC3339), int(left.Hours()/24))
		c.Hint = "plan the rotation: add the IdP's new signing certificate before this one expires"
	default:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("valid until %s (%d days left)", cert.NotAfter.UTC().Format("2006-01-02"), int(left.Hours()/24))
	}
	c.AddEvidence("days_left", int(left.Hours()/24))
	return c
}

// humanDuration formats d for reports: to the second below an hour, to
// the minute below two days, in whole days beyond.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	default:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
}
