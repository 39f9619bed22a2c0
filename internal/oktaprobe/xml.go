package oktaprobe

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// XML namespaces of SAML 2.0 and XML Signature.
const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
)

// MaxDocumentSize is the largest SAML response or metadata document cfyauth
// reads. IdP metadata of a single entity is a few KiB and a response rarely
// reaches 100 KiB; federation metadata with thousands of entities is larger
// and is not what the manager uses.
const MaxDocumentSize = 4 << 20

// ErrDTD reports a document with a DOCTYPE or entity declaration. SAML
// forbids them (saml-core 2.0 §1.3.4 and the bindings' security notes),
// and they are the vehicle of entity-expansion and external-entity attacks.
var ErrDTD = errors.New("the document contains a DOCTYPE or entity declaration, which SAML does not allow")

// parseXML parses an untrusted SAML document. It rejects documents that are
// too large, not UTF-8, or carry a DTD, before building the tree.
func parseXML(data []byte) (*etree.Document, error) {
	if len(data) > MaxDocumentSize {
		return nil, fmt.Errorf("the document is %d bytes, larger than the %d MiB limit", len(data), MaxDocumentSize>>20)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("the document is not valid UTF-8")
	}
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("<")) {
		return nil, errors.New("the document is not XML: it does not start with <")
	}
	if err := scanXML(data); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("the document is not well-formed XML: %w", err)
	}
	if doc.Root() == nil {
		return nil, errors.New("the document has no root element")
	}
	return doc, nil
}

// scanXML walks the token stream once with the standard decoder in strict
// mode, so mismatched tags and undefined entity references fail, and
// rejects any directive (<!DOCTYPE …>, <!ENTITY …>) wherever it appears.
func scanXML(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "utf8") {
			return input, nil
		}
		return nil, fmt.Errorf("the document declares encoding %q; SAML documents must be UTF-8", charset)
	}
	roots := 0
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the document is not well-formed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return ErrDTD
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("the document has text outside its root element")
			}
		}
	}
	if roots != 1 {
		return fmt.Errorf("the document has %d root elements, expected one", roots)
	}
	return nil
}

// isElement reports whether el is the element local in namespace ns.
func isElement(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

// childElements returns the direct children of el named local in ns.
func childElements(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if isElement(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// firstChild returns the first direct child of el named local in ns, or nil.
func firstChild(el *etree.Element, ns, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if isElement(c, ns, local) {
			return c
		}
	}
	return nil
}

// descendants returns every element under el (el excluded) named local in
// ns, in document order.
func descendants(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		for _, c := range e.ChildElements() {
			if isElement(c, ns, local) {
				out = append(out, c)
			}
			walk(c)
		}
	}
	walk(el)
	return out
}

// duplicateIDs returns the values of ID attributes that occur on more than
// one element. Signature references point at elements by ID, so a document
// with two elements of one ID is ambiguous on purpose.
func duplicateIDs(root *etree.Element) []string {
	seen := map[string]int{}
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		for _, a := range e.Attr {
			if a.Space == "" && (a.Key == "ID" || a.Key == "Id" || a.Key == "id") {
				seen[a.Value]++
			}
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(root)
	var dups []string
	for id, n := range seen {
		if n > 1 {
			dups = append(dups, id)
		}
	}
	return dups
}
