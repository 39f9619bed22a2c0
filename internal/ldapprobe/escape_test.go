package ldapprobe

import (
	"reflect"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestEscapeDNValue(t *testing.T) {
	tests := []struct {
		in, want string
		chars    []string
	}{
		{"alice", "alice", nil},
		{"Smith, John", `Smith\, John`, []string{","}},
		{"Jürgen Müller", "Jürgen Müller", nil},
		{"#root", `\#root`, []string{"#"}},
		{" padded ", `\ padded\ `, []string{" ", " "}},
		{`a+b;c<d>e"f\g`, `a\+b\;c\<d\>e\"f\\g`, []string{"+", ";", "<", ">", `"`, `\`}},
		{"nul\x00", `nul\00`, []string{"\x00"}},
		{"bad\xffbyte", `bad\ffbyte`, []string{`\xff`}},
		{"a=b*c(d)", "a=b*c(d)", nil},
	}
	for _, tc := range tests {
		got, escapes := EscapeDNValue(tc.in)
		if got != tc.want {
			t.Errorf("EscapeDNValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
		var chars []string
		for _, e := range escapes {
			chars = append(chars, e.Char)
		}
		if !reflect.DeepEqual(chars, tc.chars) {
			t.Errorf("EscapeDNValue(%q) escaped %q, want %q", tc.in, chars, tc.chars)
		}
	}
}

func TestEscapedDNParsesBack(t *testing.T) {
	for _, value := range []string{"Smith, John", "#root", " padded ", `a+b;c<d>e"f\g`, "Jürgen Müller"} {
		escaped, _ := EscapeDNValue(value)
		dn, err := ldap.ParseDN("cn=" + escaped + ",dc=example,dc=org")
		if err != nil {
			t.Errorf("escaped %q does not parse as a DN: %v", value, err)
			continue
		}
		if got := dn.RDNs[0].Attributes[0].Value; got != value {
			t.Errorf("escaped %q parses back as %q", value, got)
		}
	}
}

func TestEscapeFilterValue(t *testing.T) {
	tests := []struct {
		in, want string
		chars    []string
	}{
		{"alice", "alice", nil},
		{"ops*(eu)", `ops\2a\28eu\29`, []string{"*", "(", ")"}},
		{`back\slash`, `back\5cslash`, []string{`\`}},
		{`cn=Smith\2C John,ou=users`, `cn=Smith\5c2C John,ou=users`, []string{`\`}},
		{"Jürgen", "Jürgen", nil},
		{"nul\x00", `nul\00`, []string{"\x00"}},
		{"x\xfe", `x\fe`, []string{`\xfe`}},
	}
	for _, tc := range tests {
		got, escapes := EscapeFilterValue(tc.in)
		if got != tc.want {
			t.Errorf("EscapeFilterValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
		var chars []string
		for _, e := range escapes {
			chars = append(chars, e.Char)
		}
		if !reflect.DeepEqual(chars, tc.chars) {
			t.Errorf("EscapeFilterValue(%q) escaped %q, want %q", tc.in, chars, tc.chars)
		}
		if _, err := ldap.CompileFilter("(uid=" + got + ")"); err != nil {
			t.Errorf("escaped %q does not compile in a filter: %v", tc.in, err)
		}
	}
}
