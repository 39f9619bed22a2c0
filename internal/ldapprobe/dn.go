package ldapprobe

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// DNKey returns a key under which equal DNs collide, for maps and sets: it
// parses dn (RFC 4514) and joins the RDNs with attribute types and values
// case-folded and multi-valued RDNs sorted, so that slapd's
// cn=Smith\2C John and Active Directory's CN=Smith\, John give the same
// key. Two DNs have the same key exactly when go-ldap's DN.EqualFold holds.
// A DN that does not parse gets a key that equals no parsed DN's.
func DNKey(dn string) (string, bool) {
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return "\x00" + dn, false
	}
	return dnKey(parsed), true
}

func dnKey(dn *ldap.DN) string {
	rdns := make([]string, len(dn.RDNs))
	for i, rdn := range dn.RDNs {
		attrs := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			attrs[j] = foldKey(a.Type) + "=" + escapeKeyPart(foldKey(a.Value))
		}
		sort.Strings(attrs)
		rdns[i] = strings.Join(attrs, "+")
	}
	return strings.Join(rdns, ",")
}

// SameDN reports whether a and b name the same entry: both parse as DNs
// and match under distinguishedNameMatch with case ignored.
func SameDN(a, b string) bool {
	da, err := ldap.ParseDN(a)
	if err != nil {
		return false
	}
	db, err := ldap.ParseDN(b)
	if err != nil {
		return false
	}
	return da.EqualFold(db)
}

// foldKey maps every rune to the smallest rune of its case-folding orbit,
// which is what strings.EqualFold compares.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		smallest := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < smallest {
				smallest = f
			}
		}
		b.WriteRune(smallest)
	}
	return b.String()
}

// escapeKeyPart escapes the characters that separate a key's parts.
func escapeKeyPart(s string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `+`, `\+`, `=`, `\=`).Replace(s)
}

// rdnValue returns the value of a DN's first RDN, such as developers for
// cn=developers,ou=groups,dc=example,dc=org, or the DN itself when it does
// not parse.
func rdnValue(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) == 0 {
		return dn
	}
	return parsed.RDNs[0].Attributes[0].Value
}
