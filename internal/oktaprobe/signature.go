package oktaprobe

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// signatureInfo describes an enveloped XML signature as written in the
// document. Its fields describe the signature, not the signed content, and
// the KeyInfo certificates are only what the signer claims.
type signatureInfo struct {
	Algorithm    string
	Digest       string
	KeyInfoCerts []*x509.Certificate
}

// readSignatureInfo reads the algorithms and the KeyInfo certificates of a
// ds:Signature element. Certificates that do not parse are left out.
func readSignatureInfo(sig *etree.Element) signatureInfo {
	var info signatureInfo
	if si := firstChild(sig, nsDSig, "SignedInfo"); si != nil {
		if m := firstChild(si, nsDSig, "SignatureMethod"); m != nil {
			info.Algorithm = m.SelectAttrValue("Algorithm", "")
		}
		if ref := firstChild(si, nsDSig, "Reference"); ref != nil {
			if d := firstChild(ref, nsDSig, "DigestMethod"); d != nil {
				info.Digest = d.SelectAttrValue("Algorithm", "")
			}
		}
	}
	if ki := firstChild(sig, nsDSig, "KeyInfo"); ki != nil {
		for _, xd := range childElements(ki, nsDSig, "X509Data") {
			for _, xc := range childElements(xd, nsDSig, "X509Certificate") {
				if cert, err := parseBase64Certificate(xc.Text()); err == nil {
					info.KeyInfoCerts = append(info.KeyInfoCerts, cert)
				}
			}
		}
	}
	return info
}

// algorithmName shortens an XML Signature algorithm URI for reports.
func algorithmName(uri string) string {
	if i := strings.LastIndex(uri, "#"); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// weakAlgorithm reports whether a signature or digest algorithm uses SHA-1.
func weakAlgorithm(uri string) bool {
	name := algorithmName(uri)
	return name == "rsa-sha1" || name == "sha1" || name == "dsa-sha1" || name == "ecdsa-sha1"
}

// verifyEnveloped verifies the enveloped signature of el with the XML
// signature library, trusting only the given certificates, and returns the
// element the library rebuilt from the bytes the signature covers. Callers
// read every field from that element, never from el, so content added
// around or beside the signed element cannot be mistaken for signed
// content.
//
// at returns the time at which the library checks a trusted certificate's
// validity. Callers that report certificate expiry themselves return a
// time inside the certificate's validity, so an expired certificate does
// not hide whether the signature itself is good.
func verifyEnveloped(el *etree.Element, trusted []*x509.Certificate, at func(*x509.Certificate) time.Time) (*etree.Element, error) {
	if len(trusted) == 0 {
		return nil, errors.New("no trusted certificate to verify with")
	}
	target := el
	if el.Parent() != nil {
		// A signed child element inherits namespace declarations from its
		// ancestors; detach it with them, as canonicalization needs them.
		ctx, err := etreeutils.NSBuildParentContext(el)
		if err != nil {
			return nil, err
		}
		target, err = etreeutils.NSDetatch(ctx, el)
		if err != nil {
			return nil, err
		}
	}
	var lastErr error
	// Without a certificate in KeyInfo the library accepts only a single
	// trusted certificate, so each one is tried alone.
	for _, cert := range trusted {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		vc.Clock = dsig.NewFakeClockAt(at(cert))
		verified, err := vc.Validate(target)
		if err == nil {
			return verified, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// timeInside returns t moved into the certificate's validity window.
func timeInside(cert *x509.Certificate, t time.Time) time.Time {
	if t.Before(cert.NotBefore) {
		return cert.NotBefore.Add(time.Second)
	}
	if !t.Before(cert.NotAfter) {
		return cert.NotAfter.Add(-time.Second)
	}
	return t
}

// decodeBase64Lenient decodes standard base64 with any white space in it,
// as XML documents wrap long values.
func decodeBase64Lenient(text string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
}
