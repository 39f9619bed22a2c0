package oktaprobe

import (
	"fmt"
	"time"

	"github.com/beevik/etree"
)

// Attribute names the manager's SAML authenticator reads, as Cloudify's
// OKTA documentation names the IdP's attribute statements. Older
// documentation called the group attribute "group".
const (
	AttrUsername    = "username"
	AttrEmail       = "email"
	AttrFirstName   = "firstname"
	AttrLastName    = "lastname"
	AttrGroups      = "groups"
	AttrLegacyGroup = "group"
)

// ReadAttributes lists the attributes the manager reads, in the order
// reports show them.
var ReadAttributes = []string{AttrUsername, AttrEmail, AttrFirstName, AttrLastName, AttrGroups}

const (
	bearerMethod  = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	statusSuccess = "urn:oasis:names:tc:SAML:2.0:status:Success"
)

// subjectConfirmation is one bearer SubjectConfirmationData.
type subjectConfirmation struct {
	Recipient    string
	NotBefore    *time.Time
	NotOnOrAfter *time.Time
	InResponseTo string
}

// attribute is one SAML attribute with its values exactly as sent.
type attribute struct {
	Name   string
	Values []string
}

// assertionFacts are the fields of a verified assertion that the checks
// use. They are read from the element the signature library returned.
type assertionFacts struct {
	ID                  string
	Issuer              string
	IssueInstant        *time.Time
	NameID              string
	NameIDFormat        string
	NotBefore           *time.Time
	NotOnOrAfter        *time.Time
	AudienceRestricted  bool
	AudienceSets        [][]string
	Bearers             []subjectConfirmation
	SessionNotOnOrAfter *time.Time
	Attributes          []attribute
}

// responseFacts are the Response element's own fields, read from the
// verified Response.
type responseFacts struct {
	Destination   string
	Issuer        string
	Status        string
	SubStatus     string
	StatusMessage string
}

// readAssertion reads an assertion's fields. A time that does not parse is
// an error naming the element, since the manager would reject it too.
func readAssertion(a *etree.Element) (assertionFacts, error) {
	f := assertionFacts{ID: a.SelectAttrValue("ID", "")}
	var err error
	if f.IssueInstant, err = readTime(a, "IssueInstant", "Assertion"); err != nil {
		return f, err
	}
	if iss := firstChild(a, nsAssertion, "Issuer"); iss != nil {
		f.Issuer = iss.Text()
	}
	if subj := firstChild(a, nsAssertion, "Subject"); subj != nil {
		if nid := firstChild(subj, nsAssertion, "NameID"); nid != nil {
			f.NameID = nid.Text()
			f.NameIDFormat = nid.SelectAttrValue("Format", "")
		}
		for _, sc := range childElements(subj, nsAssertion, "SubjectConfirmation") {
			if sc.SelectAttrValue("Method", "") != bearerMethod {
				continue
			}
			b := subjectConfirmation{}
			if data := firstChild(sc, nsAssertion, "SubjectConfirmationData"); data != nil {
				b.Recipient = data.SelectAttrValue("Recipient", "")
				b.InResponseTo = data.SelectAttrValue("InResponseTo", "")
				if b.NotBefore, err = readTime(data, "NotBefore", "SubjectConfirmationData"); err != nil {
					return f, err
				}
				if b.NotOnOrAfter, err = readTime(data, "NotOnOrAfter", "SubjectConfirmationData"); err != nil {
					return f, err
				}
			}
			f.Bearers = append(f.Bearers, b)
		}
	}
	if cond := firstChild(a, nsAssertion, "Conditions"); cond != nil {
		if f.NotBefore, err = readTime(cond, "NotBefore", "Conditions"); err != nil {
			return f, err
		}
		if f.NotOnOrAfter, err = readTime(cond, "NotOnOrAfter", "Conditions"); err != nil {
			return f, err
		}
		for _, ar := range childElements(cond, nsAssertion, "AudienceRestriction") {
			f.AudienceRestricted = true
			var set []string
			for _, aud := range childElements(ar, nsAssertion, "Audience") {
				set = append(set, aud.Text())
			}
			f.AudienceSets = append(f.AudienceSets, set)
		}
	}
	for _, as := range childElements(a, nsAssertion, "AuthnStatement") {
		if f.SessionNotOnOrAfter, err = readTime(as, "SessionNotOnOrAfter", "AuthnStatement"); err != nil {
			return f, err
		}
	}
	for _, st := range childElements(a, nsAssertion, "AttributeStatement") {
		for _, at := range childElements(st, nsAssertion, "Attribute") {
			attr := attribute{Name: at.SelectAttrValue("Name", "")}
			for _, v := range childElements(at, nsAssertion, "AttributeValue") {
				attr.Values = append(attr.Values, v.Text())
			}
			f.Attributes = append(f.Attributes, attr)
		}
	}
	return f, nil
}

// readResponseFacts reads the Response element's own fields.
func readResponseFacts(r *etree.Element) responseFacts {
	f := responseFacts{Destination: r.SelectAttrValue("Destination", "")}
	if iss := firstChild(r, nsAssertion, "Issuer"); iss != nil {
		f.Issuer = iss.Text()
	}
	if st := firstChild(r, nsProtocol, "Status"); st != nil {
		if code := firstChild(st, nsProtocol, "StatusCode"); code != nil {
			f.Status = code.SelectAttrValue("Value", "")
			if sub := firstChild(code, nsProtocol, "StatusCode"); sub != nil {
				f.SubStatus = sub.SelectAttrValue("Value", "")
			}
		}
		if msg := firstChild(st, nsProtocol, "StatusMessage"); msg != nil {
			f.StatusMessage = msg.Text()
		}
	}
	return f
}

// readTime parses an xs:dateTime attribute; a missing attribute is nil.
func readTime(el *etree.Element, attr, what string) (*time.Time, error) {
	v := el.SelectAttr(attr)
	if v == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v.Value)
	if err != nil {
		return nil, fmt.Errorf("%s %s %q is not an xs:dateTime in UTC", what, attr, v.Value)
	}
	t = t.UTC()
	return &t, nil
}

// values returns the values of every attribute named name, in order, and
// whether any such attribute was sent.
func (f assertionFacts) values(name string) ([]string, bool) {
	var out []string
	found := false
	for _, a := range f.Attributes {
		if a.Name == name {
			found = true
			out = append(out, a.Values...)
		}
	}
	return out, found
}
