package oktaprobe

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/cfyauth/cfyauth/internal/report"
)

// Endpoint is one SingleSignOnService of the IdP.
type Endpoint struct {
	Binding  string `json:"binding"`
	Location string `json:"location"`
}

// Metadata is the part of an IdP's SAML metadata that the checks use.
type Metadata struct {
	Source     string     `json:"source"`
	EntityID   string     `json:"entity_id"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	SSO        []Endpoint `json:"sso_services"`
	// SigningCerts are the IdP's signing certificates: its KeyDescriptors
	// with use="signing" or without a use.
	SigningCerts []*x509.Certificate `json:"-"`
	// SigningCertInfo describes SigningCerts for JSON output.
	SigningCertInfo []CertificateInfo `json:"signing_certificates"`
	// Signed is set when the document carries an enveloped signature on
	// its root; Verified when that signature verified against the trust
	// anchors the operator gave.
	Signed   bool `json:"signed"`
	Verified bool `json:"verified"`
	// SignerSHA256 is the fingerprint of the certificate that signed a
	// verified document.
	SignerSHA256 string `json:"signer_sha256,omitempty"`
}

// MetadataSignatureError is a signed metadata document that does not
// verify against the operator's trust anchors.
type MetadataSignatureError struct{ Reason string }

func (e *MetadataSignatureError) Error() string { return e.Reason }

// ParseMetadata reads an IdP metadata document. When anchors is not empty,
// the document must carry an enveloped signature that verifies with a
// certificate equal to an anchor or issued by one. The signature's own
// KeyInfo is never trusted by itself, and fields are then read only from
// the element the signature library returned. Without anchors, a signed
// document is read unverified and Verified stays false.
func ParseMetadata(data []byte, source string, anchors []*x509.Certificate, now time.Time) (*Metadata, error) {
	doc, err := parseXML(data)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if !isElement(root, nsMetadata, "EntityDescriptor") && !isElement(root, nsMetadata, "EntitiesDescriptor") {
		return nil, fmt.Errorf("the root element is %s in namespace %q, not a SAML metadata EntityDescriptor", root.Tag, root.NamespaceURI())
	}
	md := &Metadata{Source: source}
	sig := firstChild(root, nsDSig, "Signature")
	md.Signed = sig != nil
	if len(anchors) > 0 {
		if sig == nil {
			return md, &MetadataSignatureError{Reason: "the metadata is not signed, but --metadata-ca was given"}
		}
		signer, err := metadataSigner(readSignatureInfo(sig), anchors, now)
		if err != nil {
			return md, err
		}
		verified, err := verifyEnveloped(root, []*x509.Certificate{signer}, func(*x509.Certificate) time.Time { return now })
		if err != nil {
			return md, &MetadataSignatureError{Reason: fmt.Sprintf("the metadata signature does not verify with %s (SHA-256 %s): %v", signer.Subject, Fingerprint(signer), err)}
		}
		root = verified
		md.Verified = true
		md.SignerSHA256 = Fingerprint(signer)
	}
	entity, err := idpEntity(root)
	if err != nil {
		return md, err
	}
	if err := readEntity(md, root, entity); err != nil {
		return md, err
	}
	return md, nil
}

// metadataSigner picks the certificate to verify signed metadata with: the
// KeyInfo certificate when it is an anchor or chains to one, or the single
// anchor when KeyInfo names no certificate.
func metadataSigner(info signatureInfo, anchors []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if len(info.KeyInfoCerts) == 0 {
		if len(anchors) == 1 {
			return anchors[0], nil
		}
		return nil, &MetadataSignatureError{Reason: "the metadata signature names no certificate and --metadata-ca contains several; keep only the signing certificate in that file"}
	}
	leaf := info.KeyInfoCerts[0]
	for _, a := range anchors {
		if a.Equal(leaf) {
			return leaf, nil
		}
	}
	roots := x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	inter := x509.NewCertPool()
	for _, c := range info.KeyInfoCerts[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, &MetadataSignatureError{Reason: fmt.Sprintf("the metadata is signed by %s (SHA-256 %s), which is not in --metadata-ca and does not chain to it: %v", leaf.Subject, Fingerprint(leaf), err)}
	}
	return leaf, nil
}

// idpEntity returns the one EntityDescriptor with an IDPSSODescriptor.
func idpEntity(root *etree.Element) (*etree.Element, error) {
	if isElement(root, nsMetadata, "EntityDescriptor") {
		if firstChild(root, nsMetadata, "IDPSSODescriptor") == nil {
			return nil, errors.New("the EntityDescriptor has no IDPSSODescriptor, so it does not describe an identity provider")
		}
		return root, nil
	}
	var found []*etree.Element
	for _, e := range descendants(root, nsMetadata, "EntityDescriptor") {
		if firstChild(e, nsMetadata, "IDPSSODescriptor") != nil {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return nil, errors.New("the metadata describes no identity provider (no IDPSSODescriptor)")
	case 1:
		return found[0], nil
	}
	ids := make([]string, 0, len(found))
	for _, e := range found {
		ids = append(ids, e.SelectAttrValue("entityID", "?"))
	}
	return nil, fmt.Errorf("the metadata describes %d identity providers (%s); save the one the manager uses to a file and pass it with --metadata", len(found), strings.Join(ids, ", "))
}

func readEntity(md *Metadata, root, entity *etree.Element) error {
	md.EntityID = entity.SelectAttrValue("entityID", "")
	// validUntil may sit on the entity or on an enclosing EntitiesDescriptor;
	// the earliest one applies.
	for el := entity; el != nil; el = el.Parent() {
		t, err := readTime(el, "validUntil", el.Tag)
		if err != nil {
			return err
		}
		if t != nil && (md.ValidUntil == nil || t.Before(*md.ValidUntil)) {
			md.ValidUntil = t
		}
		if el == root {
			break
		}
	}
	idp := firstChild(entity, nsMetadata, "IDPSSODescriptor")
	for _, kd := range childElements(idp, nsMetadata, "KeyDescriptor") {
		use := kd.SelectAttrValue("use", "")
		if use != "" && use != "signing" {
			continue
		}
		ki := firstChild(kd, nsDSig, "KeyInfo")
		if ki == nil {
			continue
		}
		for _, xd := range childElements(ki, nsDSig, "X509Data") {
			for _, xc := range childElements(xd, nsDSig, "X509Certificate") {
				cert, err := parseBase64Certificate(xc.Text())
				if err != nil {
					return fmt.Errorf("a signing KeyDescriptor contains a certificate that does not parse: %v", err)
				}
				md.SigningCerts = append(md.SigningCerts, cert)
				md.SigningCertInfo = append(md.SigningCertInfo, DescribeCertificate(cert))
			}
		}
	}
	for _, s := range childElements(idp, nsMetadata, "SingleSignOnService") {
		md.SSO = append(md.SSO, Endpoint{Binding: s.SelectAttrValue("Binding", ""), Location: s.SelectAttrValue("Location", "")})
	}
	return nil
}

// metadataChecks reports the metadata document, its signature, and whether
// its signing certificates include the manager's. certDisplay is the
// certificate file read; installPath is the one the REST service reads.
func metadataChecks(md *Metadata, parseErr error, managerCert *x509.Certificate, certDisplay, installPath string, now time.Time) []report.Check {
	doc := report.Check{ID: "metadata", Subject: "metadata"}
	sig := report.Check{ID: "metadata-signature", Subject: "metadata"}
	certs := report.Check{ID: "metadata-certs", Subject: "metadata"}
	var sigErr *MetadataSignatureError
	switch {
	case errors.As(parseErr, &sigErr):
		doc.Status = report.Skip
		doc.Summary = "not read, because its signature did not verify"
		sig.Status = report.Fail
		sig.Summary = sigErr.Reason
		sig.Hint = "pass with --metadata-ca the IdP's (or the federation's) metadata signing certificate, obtained from a source you trust"
		return []report.Check{doc, sig, skipped("metadata-certs", "metadata", "the metadata was not trusted")}
	case parseErr != nil:
		doc.Status = report.Fail
		doc.Summary = "the metadata cannot be used: " + parseErr.Error()
		doc.Hint = "pass the IdP's SAML metadata (Okta: the app's Identity Provider metadata link) with --metadata"
		var srcErr *metadataSourceError
		if errors.As(parseErr, &srcErr) {
			doc.Hint = srcErr.hint
		}
		return []report.Check{doc, skipped("metadata-signature", "metadata", "the metadata could not be read"), skipped("metadata-certs", "metadata", "the metadata could not be read")}
	}

	doc.AddEvidence("source", md.Source).AddEvidence("entity_id", md.EntityID)
	for _, e := range md.SSO {
		doc.AddEvidence("sso_"+algorithmName(e.Binding), e.Location)
	}
	doc.AddEvidence("signing_certificates", len(md.SigningCerts))
	doc.Status = report.Pass
	doc.Summary = fmt.Sprintf("IdP %s with %d signing certificate(s)", md.EntityID, len(md.SigningCerts))
	if md.ValidUntil != nil {
		doc.AddEvidence("valid_until", md.ValidUntil.Format(time.RFC3339))
		left := md.ValidUntil.Sub(now)
		switch {
		case left <= 0:
			doc.Status = report.Fail
			doc.Summary = fmt.Sprintf("the metadata expired at %s (validUntil), %s ago", md.ValidUntil.Format(time.RFC3339), humanDuration(-left))
			doc.Hint = "download the IdP's current metadata; an expired copy may list outdated signing certificates"
		default:
			doc.Summary += ", valid until " + md.ValidUntil.Format(time.RFC3339)
		}
	} else {
		doc.AddEvidence("valid_until", "none")
	}
	if md.EntityID == "" {
		doc.Status = report.Fail
		doc.Summary = "the IdP's EntityDescriptor has no entityID"
	}

	switch {
	case md.Verified:
		sig.Status = report.Pass
		sig.Summary = "signed, and the signature verifies with the trust anchor from --metadata-ca"
		sig.AddEvidence("signer_sha256", md.SignerSHA256)
	case md.Signed:
		sig.Status = report.Warn
		sig.Summary = "signed, but not verified: a signature is only worth the trust anchor it is checked against, and its own KeyInfo is not one"
		sig.Hint = "pass --metadata-ca FILE with the IdP's metadata signing certificate to verify it"
	default:
		sig.Status = report.Pass
		sig.Summary = "not signed (Okta does not sign its app metadata); trust rests on how it was fetched"
	}

	certs = signingCertsCheck(md, managerCert, certDisplay, installPath)
	return []report.Check{doc, sig, certs}
}

// signingCertsCheck compares the metadata's signing certificates with the
// certificate installed on the manager, naming a rotation in progress.
func signingCertsCheck(md *Metadata, managerCert *x509.Certificate, certDisplay, installPath string) report.Check {
	c := report.Check{ID: "metadata-certs", Subject: "metadata"}
	for i, cert := range md.SigningCerts {
		c.AddEvidence(fmt.Sprintf("signing_%d", i+1), fmt.Sprintf("%s SHA-256 %s, not after %s", cert.Subject, Fingerprint(cert), cert.NotAfter.UTC().Format("2006-01-02")))
	}
	if len(md.SigningCerts) == 0 {
		c.Status = report.Fail
		c.Summary = "the metadata lists no signing certificate"
		c.Hint = "check that this is the IdP's metadata, not a service provider's"
		return c
	}
	if managerCert == nil {
		c.Status = report.Skip
		c.Summary = "no installed certificate to compare with"
		return c
	}
	c.AddEvidence("installed_sha256", Fingerprint(managerCert))
	installed := -1
	for i, cert := range md.SigningCerts {
		if cert.Equal(managerCert) {
			installed = i
		}
	}
	var others []string
	for i, cert := range md.SigningCerts {
		if i != installed {
			others = append(others, Fingerprint(cert))
		}
	}
	switch {
	case installed < 0:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the IdP signs with %s, but %s contains %s", strings.Join(others, " and "), certDisplay, Fingerprint(managerCert))
		c.Hint = fmt.Sprintf("save the IdP's current signing certificate as %s and restart the REST service", installPath)
	case len(others) > 0:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("a signing-certificate rotation is under way: the IdP lists the installed %s and the new %s, which is not installed", Fingerprint(managerCert), strings.Join(others, " and "))
		c.Hint = fmt.Sprintf("when the IdP switches to the new certificate, save it as %s and restart the REST service, or logins fail", installPath)
	default:
		c.Status = report.Pass
		c.Summary = "the IdP's signing certificate is the one installed on the manager"
	}
	return c
}

func parseBase64Certificate(text string) (*x509.Certificate, error) {
	der, err := decodeBase64Lenient(text)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
