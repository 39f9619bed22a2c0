package oktaprobe

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// ResponseInput is a SAML response as an operator captured it.
type ResponseInput struct {
	// Origin names where the response came from, such as a file name.
	Origin string
	// XML is the decoded response document.
	XML []byte
	// Base64 is the standard base64 form the Console posts to the REST
	// service as "saml-response".
	Base64 string
}

// DecodeResponse accepts a SAML response in the forms a browser shows it:
// the XML itself, the base64 value of the SAMLResponse form field (with or
// without line breaks and padding), a URL-encoded copy of that value, or
// the whole form body (SAMLResponse=…&RelayState=…).
func DecodeResponse(data []byte, origin string) (ResponseInput, error) {
	in := ResponseInput{Origin: origin}
	if len(data) > 2*MaxDocumentSize {
		return in, fmt.Errorf("%s is larger than the %d MiB limit", origin, 2*MaxDocumentSize>>20)
	}
	text := strings.TrimSpace(strings.TrimPrefix(string(data), "\ufeff"))
	if text == "" {
		return in, fmt.Errorf("%s is empty", origin)
	}
	if strings.HasPrefix(text, "<") {
		in.XML = []byte(text)
		in.Base64 = base64.StdEncoding.EncodeToString(in.XML)
		return in, nil
	}
	if strings.Contains(text, "SAMLResponse=") {
		form, err := url.ParseQuery(text)
		if err != nil || form.Get("SAMLResponse") == "" {
			return in, fmt.Errorf("%s looks like a form body but has no readable SAMLResponse field", origin)
		}
		text = form.Get("SAMLResponse")
	} else if strings.Contains(text, "%") {
		unescaped, err := url.QueryUnescape(text)
		if err != nil {
			return in, fmt.Errorf("%s is neither XML nor base64, and its %%-escapes are invalid: %v", origin, err)
		}
		text = unescaped
	}
	compact := strings.Join(strings.Fields(text), "")
	raw, err := base64.StdEncoding.DecodeString(compact)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(compact, "="))
	}
	if err != nil {
		return in, fmt.Errorf("%s is neither XML nor base64: %v", origin, err)
	}
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")))
	if !bytes.HasPrefix(trimmed, []byte("<")) {
		return in, fmt.Errorf("%s decodes from base64 to something that is not XML", origin)
	}
	in.XML = trimmed
	in.Base64 = base64.StdEncoding.EncodeToString(trimmed)
	return in, nil
}

// ReadResponse reads a response with DecodeResponse from r.
func ReadResponse(r io.Reader, origin string) (ResponseInput, error) {
	data, err := io.ReadAll(io.LimitReader(r, 2*MaxDocumentSize+1))
	if err != nil {
		return ResponseInput{Origin: origin}, fmt.Errorf("read %s: %w", origin, err)
	}
	return DecodeResponse(data, origin)
}

// Reasons a response is rejected before any field is read.
var (
	ErrNotResponse        = errors.New("the root element is not a SAML 2.0 protocol Response")
	ErrEncryptedAssertion = errors.New("the response carries an EncryptedAssertion")
	ErrNoAssertion        = errors.New("the response carries no Assertion")
	ErrUnsigned           = errors.New("neither the Response nor its Assertion is signed")
)

// WrappingError is a response whose structure lets the signed element and
// the element a reader would read differ: more than one assertion, an
// assertion that is not a direct child of the Response, or repeated IDs.
type WrappingError struct{ Reason string }

func (e *WrappingError) Error() string { return e.Reason }

// SignatureError is a signature the XML signature library rejected.
type SignatureError struct {
	// Element is "Response" or "Assertion".
	Element string
	Err     error
	Info    signatureInfo
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("the %s signature does not verify: %v", e.Element, e.Err)
}

func (e *SignatureError) Unwrap() error { return e.Err }

// verifiedResponse holds what the signatures cover. Assertion is never
// nil; Response is nil when only the assertion is signed.
type verifiedResponse struct {
	Response     *etree.Element
	Assertion    *etree.Element
	ResponseSig  *signatureInfo
	AssertionSig *signatureInfo
	// Root is the unverified Response element, for facts that only
	// describe the document (never for a field that is checked).
	Root *etree.Element
}

// inspectResponse parses a response and rejects what cannot be read
// safely: a DTD, another root element, an encrypted assertion, and the
// shapes signature wrapping needs (several assertions, an assertion that
// is not a direct child of the Response, repeated IDs). It returns the
// Response element and its one assertion, neither of them verified.
func inspectResponse(data []byte) (*etree.Element, *etree.Element, error) {
	doc, err := parseXML(data)
	if err != nil {
		return nil, nil, err
	}
	root := doc.Root()
	if !isElement(root, nsProtocol, "Response") {
		return nil, nil, fmt.Errorf("%w: found %s in namespace %q", ErrNotResponse, root.Tag, root.NamespaceURI())
	}
	if enc := descendants(root, nsAssertion, "EncryptedAssertion"); len(enc) > 0 {
		return nil, nil, ErrEncryptedAssertion
	}
	assertions := descendants(root, nsAssertion, "Assertion")
	switch {
	case len(assertions) == 0:
		return nil, nil, ErrNoAssertion
	case len(assertions) > 1:
		return nil, nil, &WrappingError{Reason: fmt.Sprintf("the response contains %d Assertion elements; a genuine response contains one, so this looks like a signature-wrapping attempt", len(assertions))}
	case assertions[0].Parent() != root:
		return nil, nil, &WrappingError{Reason: fmt.Sprintf("the Assertion sits inside %s instead of directly in the Response, as in a signature-wrapping attempt", assertions[0].Parent().Tag)}
	}
	if dups := duplicateIDs(root); len(dups) > 0 {
		return nil, nil, &WrappingError{Reason: fmt.Sprintf("the ID %q appears on more than one element, so a signature reference to it is ambiguous", dups[0])}
	}
	return root, assertions[0], nil
}

// verifyResponse inspects a response and verifies its signatures with the
// XML signature library, trusting only the given certificates. On success
// every field is to be read from the returned Response and Assertion
// elements only.
func verifyResponse(data []byte, trusted []*x509.Certificate, at func(*x509.Certificate) time.Time) (*verifiedResponse, error) {
	root, assertion, err := inspectResponse(data)
	if err != nil {
		return nil, err
	}
	v := &verifiedResponse{Root: root}
	responseSig := firstChild(root, nsDSig, "Signature")
	assertionSig := firstChild(assertion, nsDSig, "Signature")
	if responseSig == nil && assertionSig == nil {
		return nil, ErrUnsigned
	}
	if responseSig != nil {
		info := readSignatureInfo(responseSig)
		v.ResponseSig = &info
		verified, err := verifyEnveloped(root, trusted, at)
		if err != nil {
			return nil, &SignatureError{Element: "Response", Err: err, Info: info}
		}
		v.Response = verified
		inner := childElements(verified, nsAssertion, "Assertion")
		if len(inner) != 1 {
			return nil, &WrappingError{Reason: "the signed Response does not hold exactly one Assertion"}
		}
		v.Assertion = inner[0]
	}
	if assertionSig != nil {
		info := readSignatureInfo(assertionSig)
		v.AssertionSig = &info
		// With a signed Response, the assertion is verified in the form the
		// Response's signature covered; otherwise in the received form.
		target := assertion
		if v.Assertion != nil {
			target = v.Assertion
		}
		verified, err := verifyEnveloped(target, trusted, at)
		if err != nil {
			return nil, &SignatureError{Element: "Assertion", Err: err, Info: info}
		}
		v.Assertion = verified
	}
	return v, nil
}
