package oktaprobe

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
	"github.com/cfyauth/cfyauth/internal/report"
)

func TestMetadataFromIdP(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	md, err := ParseMetadata(idp.Metadata(), "metadata.xml", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if md.EntityID != idp.MetadataURL() || len(md.SigningCerts) != 1 || !md.SigningCerts[0].Equal(idp.Signing.Cert) {
		t.Errorf("entity %q, %d signing certs", md.EntityID, len(md.SigningCerts))
	}
	if md.Signed || md.Verified {
		t.Errorf("signed %v verified %v", md.Signed, md.Verified)
	}
	checks := metadataChecks(md, nil, idp.Signing.Cert, "okta_certificate.pem", "okta_certificate.pem", time.Now())
	wantStatus(t, checks, "metadata", report.Pass, md.EntityID)
	wantStatus(t, checks, "metadata-signature", report.Pass, "not signed")
	wantStatus(t, checks, "metadata-certs", report.Pass, "installed")
}

func TestMetadataTwoSigningCertificates(t *testing.T) {
	current := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "current", KeyIndex: 3})
	next := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "next", KeyIndex: 4})
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{Signing: &current, ExtraSigningCerts: []*x509.Certificate{next.Cert}})
	md, err := ParseMetadata(idp.Metadata(), "metadata.xml", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(md.SigningCerts) != 2 {
		t.Fatalf("%d signing certificates", len(md.SigningCerts))
	}
	checks := metadataChecks(md, nil, current.Cert, "okta_certificate.pem", "okta_certificate.pem", time.Now())
	c := wantStatus(t, checks, "metadata-certs", report.Warn, "rotation")
	for _, fp := range []string{Fingerprint(current.Cert), Fingerprint(next.Cert)} {
		if !strings.Contains(c.Summary, fp) {
			t.Errorf("summary %q lacks %s", c.Summary, fp)
		}
	}
	other := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "other", KeyIndex: 5})
	checks = metadataChecks(md, nil, other.Cert, "okta_certificate.pem", "okta_certificate.pem", time.Now())
	wantStatus(t, checks, "metadata-certs", report.Fail, Fingerprint(other.Cert))
}

func TestMetadataSignedVerifiedOnlyWithAnchor(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	ca := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "federation CA", IsCA: true, KeyIndex: 3})
	signer := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "metadata signer", Parent: &ca, KeyIndex: 4})
	signed := oktatest.SignMetadata(t, idp.Metadata(), signer)
	now := time.Now()

	// No anchor: read, but reported as unverified.
	md, err := ParseMetadata(signed, "m", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	checks := metadataChecks(md, nil, idp.Signing.Cert, "c", "c", now)
	wantStatus(t, checks, "metadata-signature", report.Warn, "not verified")

	// The CA as anchor: verified through the chain.
	md, err = ParseMetadata(signed, "m", []*x509.Certificate{ca.Cert}, now)
	if err != nil {
		t.Fatal(err)
	}
	checks = metadataChecks(md, nil, idp.Signing.Cert, "c", "c", now)
	wantStatus(t, checks, "metadata-signature", report.Pass, "verifies")
	wantStatus(t, checks, "metadata-certs", report.Pass, "")

	// The signer itself as anchor.
	if _, err := ParseMetadata(signed, "m", []*x509.Certificate{signer.Cert}, now); err != nil {
		t.Errorf("signer as anchor: %v", err)
	}

	// A self-signed signer is not trusted merely because its own KeyInfo
	// names it.
	selfSigned := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "attacker", KeyIndex: 5})
	forged := oktatest.SignMetadata(t, idp.Metadata(), selfSigned)
	md, err = ParseMetadata(forged, "m", []*x509.Certificate{ca.Cert}, now)
	checks = metadataChecks(md, err, idp.Signing.Cert, "c", "c", now)
	wantStatus(t, checks, "metadata-signature", report.Fail, "does not chain to it")
	wantStatus(t, checks, "metadata-certs", report.Skip, "")

	// Content changed after signing.
	tampered := []byte(strings.Replace(string(signed), idp.URL+"/sso", "https://127.0.0.1:1/sso", 1))
	md, err = ParseMetadata(tampered, "m", []*x509.Certificate{ca.Cert}, now)
	checks = metadataChecks(md, err, idp.Signing.Cert, "c", "c", now)
	wantStatus(t, checks, "metadata-signature", report.Fail, "does not verify")

	// Unsigned metadata while an anchor is given.
	md, err = ParseMetadata(idp.Metadata(), "m", []*x509.Certificate{ca.Cert}, now)
	checks = metadataChecks(md, err, idp.Signing.Cert, "c", "c", now)
	wantStatus(t, checks, "metadata-signature", report.Fail, "not signed")
}

func TestMetadataValidUntilAndShape(t *testing.T) {
	now := time.Now().UTC()
	doc := func(validUntil string) []byte {
		return []byte(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="http://www.okta.com/exk1" validUntil="` + validUntil + `">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://example.okta.com/app/x/sso/saml"/>
</md:IDPSSODescriptor></md:EntityDescriptor>`)
	}
	md, err := ParseMetadata(doc(now.Add(-time.Hour).Format(time.RFC3339)), "m", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	checks := metadataChecks(md, nil, nil, "c", "c", now)
	wantStatus(t, checks, "metadata", report.Fail, "expired")
	wantStatus(t, checks, "metadata-certs", report.Fail, "no signing certificate")

	md, _ = ParseMetadata(doc(now.Add(48*time.Hour).Format(time.RFC3339)), "m", nil, now)
	wantStatus(t, metadataChecks(md, nil, nil, "c", "c", now), "metadata", report.Pass, "valid until")

	for name, bad := range map[string]string{
		"sp metadata":  `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><SPSSODescriptor/></EntityDescriptor>`,
		"not metadata": `<html/>`,
		"doctype":      `<!DOCTYPE x [<!ENTITY a "b">]><EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"/>`,
		"bad time":     strings.Replace(string(doc("x")), `validUntil="x"`, `validUntil="tomorrow"`, 1),
	} {
		_, err := ParseMetadata([]byte(bad), "m", nil, now)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		checks := metadataChecks(nil, err, nil, "c", "c", now)
		wantStatus(t, checks, "metadata", report.Fail, "cannot be used")
	}
}
