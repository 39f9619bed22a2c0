package oktaprobe

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
)

// FuzzResponse feeds arbitrary input through decoding, parsing and
// verification. None of it may panic, and nothing that did not verify
// against the trusted certificate may yield an assertion.
func FuzzResponse(f *testing.F) {
	idp := oktatest.StartIdP(f, oktatest.IdPOptions{})
	idp.AddUser(jane)
	genuine := idp.LoginXML(jane.Name, jane.Password)
	f.Add(genuine)
	f.Add([]byte(idp.Login(jane.Name, jane.Password)))
	f.Add(oktatest.WithDoctype(genuine))
	f.Add(oktatest.WrapSiblingAssertion(f, genuine, "admin"))
	f.Add(oktatest.WrapInExtensions(f, genuine, "admin"))
	f.Add(oktatest.StripResponseSignature(f, genuine))
	f.Add(oktatest.EncryptAssertion(f, genuine))
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/></samlp:Response>`))
	f.Add([]byte("SAMLResponse=PHg%2BPC94Pg%3D%3D&RelayState="))
	trusted := []*x509.Certificate{idp.Signing.Cert}
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := DecodeResponse(data, "fuzz")
		if err != nil {
			return
		}
		v, err := verifyResponse(in.XML, trusted, func(c *x509.Certificate) time.Time { return timeInside(c, now) })
		if err != nil {
			return
		}
		if v.Assertion == nil {
			t.Fatal("verified without an assertion")
		}
		if _, err := readAssertion(v.Assertion); err != nil {
			return
		}
	})
}

// FuzzMetadata feeds arbitrary input to the metadata parser, with and
// without a trust anchor.
func FuzzMetadata(f *testing.F) {
	idp := oktatest.StartIdP(f, oktatest.IdPOptions{})
	md := idp.Metadata()
	signer := oktatest.NewCert(f, oktatest.CertOptions{CommonName: "metadata signer", KeyIndex: 3})
	f.Add(md)
	f.Add(oktatest.SignMetadata(f, md, signer))
	f.Add([]byte(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><md:EntityDescriptor entityID="a"><md:IDPSSODescriptor/></md:EntityDescriptor></md:EntitiesDescriptor>`))
	f.Add([]byte(`<!DOCTYPE x><x/>`))
	anchors := []*x509.Certificate{signer.Cert}
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := ParseMetadata(data, "fuzz", anchors, now); err == nil && !m.Verified {
			t.Fatal("metadata accepted with an anchor but not verified")
		}
		_, _ = ParseMetadata(data, "fuzz", nil, now)
	})
}
