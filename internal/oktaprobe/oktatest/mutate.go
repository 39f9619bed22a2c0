package oktatest

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
)

func readDoc(t testing.TB, xml []byte) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xml); err != nil {
		t.Fatalf("parse response: %v", err)
	}
	return doc
}

func writeDoc(t testing.TB, doc *etree.Document) []byte {
	t.Helper()
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatalf("write response: %v", err)
	}
	return out
}

func child(el *etree.Element, ns, tag string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// assertionOf returns the response's assertion element.
func assertionOf(t testing.TB, doc *etree.Document) *etree.Element {
	t.Helper()
	a := child(doc.Root(), nsAssertion, "Assertion")
	if a == nil {
		t.Fatal("the response has no assertion")
	}
	return a
}

// WithDoctype puts a DOCTYPE with an internal entity before the response.
func WithDoctype(xml []byte) []byte {
	decl := `<!DOCTYPE Response [<!ENTITY who "admin">]>` + "\n"
	s := string(xml)
	if strings.HasPrefix(s, "<?xml") {
		end := strings.Index(s, "?>") + 2
		return []byte(s[:end] + "\n" + decl + s[end:])
	}
	return []byte(decl + s)
}

// StripResponseSignature removes the Response's own signature, leaving the
// signed assertion as the only signed element.
func StripResponseSignature(t testing.TB, xml []byte) []byte {
	t.Helper()
	doc := readDoc(t, xml)
	sig := child(doc.Root(), nsDSig, "Signature")
	if sig == nil {
		t.Fatal("the response has no signature of its own")
	}
	doc.Root().RemoveChild(sig)
	return writeDoc(t, doc)
}

// StripAllSignatures removes every signature.
func StripAllSignatures(t testing.TB, xml []byte) []byte {
	t.Helper()
	doc := readDoc(t, xml)
	if sig := child(doc.Root(), nsDSig, "Signature"); sig != nil {
		doc.Root().RemoveChild(sig)
	}
	a := assertionOf(t, doc)
	if sig := child(a, nsDSig, "Signature"); sig != nil {
		a.RemoveChild(sig)
	}
	return writeDoc(t, doc)
}

// setUsername sets the username attribute's value in an assertion.
func setUsername(a *etree.Element, name string) {
	for _, st := range a.ChildElements() {
		if st.Tag != "AttributeStatement" {
			continue
		}
		for _, at := range st.ChildElements() {
			if at.SelectAttrValue("Name", "") == "username" {
				for _, v := range at.ChildElements() {
					v.SetText(name)
				}
			}
		}
	}
}

// TamperUsername changes the username inside the signed assertion, as an
// attacker editing a captured response would.
func TamperUsername(t testing.TB, xml []byte, name string) []byte {
	t.Helper()
	doc := readDoc(t, xml)
	setUsername(assertionOf(t, doc), name)
	return writeDoc(t, doc)
}

// WrapSiblingAssertion adds a forged, unsigned assertion for another user
// before the genuine signed one: the classic signature-wrapping attempt,
// which fools readers that verify one element and read another.
func WrapSiblingAssertion(t testing.TB, xml []byte, name string) []byte {
	t.Helper()
	doc := readDoc(t, xml)
	genuine := assertionOf(t, doc)
	forged := genuine.Copy()
	if sig := child(forged, nsDSig, "Signature"); sig != nil {
		forged.RemoveChild(sig)
	}
	forged.CreateAttr("ID", "forged-assertion")
	setUsername(forged, name)
	doc.Root().InsertChildAt(genuine.Index(), forged)
	return writeDoc(t, doc)
}

// WrapInExtensions moves the genuine signed assertion into the Response's
// Extensions and puts a forged one with the same ID in its place.
func WrapInExtensions(t testing.TB, xml []byte, name string) []byte {
	t.Helper()
	doc := readDoc(t, xml)
	root := doc.Root()
	genuine := assertionOf(t, doc)
	forged := genuine.Copy()
	if sig := child(forged, nsDSig, "Signature"); sig != nil {
		forged.RemoveChild(sig)
	}
	setUsername(forged, name)
	idx := genuine.Index()
	root.RemoveChild(genuine)
	ext := etree.NewElement("samlp:Extensions")
	ext.AddChild(genuine)
	root.InsertChildAt(1, ext)
	root.InsertChildAt(idx+1, forged)
	return writeDoc(t, doc)
}

// EncryptAssertion replaces the assertion with an EncryptedAssertion whose
// content is opaque, as an IdP set to encrypt assertions sends.
func EncryptAssertion(t testing.TB, xml []byte) []byte {
	t.Helper()
	doc := readDoc(t, xml)
	root := doc.Root()
	a := assertionOf(t, doc)
	idx := a.Index()
	root.RemoveChild(a)
	enc := etree.NewElement("saml:EncryptedAssertion")
	enc.CreateAttr("xmlns:saml", nsAssertion)
	data := enc.CreateElement("xenc:EncryptedData")
	data.CreateAttr("xmlns:xenc", "http://www.w3.org/2001/04/xmlenc#")
	data.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText("b3BhcXVl")
	root.InsertChildAt(idx, enc)
	return writeDoc(t, doc)
}

// SignMetadata signs a metadata document with an enveloped signature whose
// KeyInfo carries the signer's certificate followed by chain.
func SignMetadata(t testing.TB, xml []byte, signer KeyPair, chain ...*x509.Certificate) []byte {
	t.Helper()
	doc := readDoc(t, xml)
	root := doc.Root()
	if root.SelectAttrValue("ID", "") == "" {
		root.CreateAttr("ID", "metadata-1")
	}
	certs := [][]byte{signer.Cert.Raw}
	for _, c := range chain {
		certs = append(certs, c.Raw)
	}
	ctx, err := dsig.NewSigningContext(signer.Key, certs)
	if err != nil {
		t.Fatalf("signing context: %v", err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signed, err := ctx.SignEnveloped(root)
	if err != nil {
		t.Fatalf("sign metadata: %v", err)
	}
	out := etree.NewDocument()
	out.SetRoot(signed)
	return writeDoc(t, out)
}
