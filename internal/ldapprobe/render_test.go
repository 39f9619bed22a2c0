package ldapprobe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func resolveWith(t *testing.T, values map[string]any) *Settings {
	t.Helper()
	l := Layer{Kind: SourceFlag}
	for k, v := range values {
		l.Set(k, v, "")
	}
	s, err := Resolve([]Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRenderDefaults(t *testing.T) {
	tests := []struct {
		name       string
		settings   map[string]any
		user       string
		bindName   string
		bindIsDN   bool
		userFilter string
		groupDN    string
		member     string
	}{
		{"non-AD", map[string]any{KeyDomain: "example.org"}, "alice",
			"uid=alice,ou=users,dc=example,dc=org", true, "(uid=alice)", "ou=groups,dc=example,dc=org",
			"(uniqueMember=uid=alice,ou=users,dc=example,dc=org)"},
		{"AD", map[string]any{KeyDomain: "ad.example", KeyIsActiveDirectory: true}, "bob",
			"bob@ad.example", false, "(|(sAMAccountName=bob)(uid=bob))", "ou=groups,dc=ad,dc=example",
			"(uniqueMember={object_dn})"},
		{"comma in the name", map[string]any{KeyDomain: "example.org", KeyBindFormat: "cn={username},ou=users,{base_dn}", KeyUserFilter: "(cn={username})"},
			"Smith, John", `cn=Smith\, John,ou=users,dc=example,dc=org`, true, "(cn=Smith, John)", "ou=groups,dc=example,dc=org",
			`(uniqueMember=cn=Smith\5c, John,ou=users,dc=example,dc=org)`},
		{"filter metacharacters", map[string]any{KeyDomain: "example.org"}, "ops*(eu)",
			"uid=ops*(eu),ou=users,dc=example,dc=org", true, `(uid=ops\2a\28eu\29)`, "ou=groups,dc=example,dc=org",
			`(uniqueMember=uid=ops\2a\28eu\29,ou=users,dc=example,dc=org)`},
		{"no user", map[string]any{KeyDomain: "example.org"}, "",
			"uid={username},ou=users,dc=example,dc=org", true, "(uid={username})", "ou=groups,dc=example,dc=org",
			"(uniqueMember={object_dn})"},
		{"explicit base and group DN", map[string]any{KeyDomain: "example.org", KeyBaseDN: "o=corp", KeyGroupDN: "ou=teams,{domain_dn}"}, "carol",
			"uid=carol,ou=users,o=corp", true, "(uid=carol)", "ou=teams,dc=example,dc=org",
			"(uniqueMember=uid=carol,ou=users,o=corp)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Render(resolveWith(t, tc.settings), tc.user, "")
			if err != nil {
				t.Fatal(err)
			}
			if r.BindName != tc.bindName {
				t.Errorf("bind name = %q, want %q", r.BindName, tc.bindName)
			}
			if r.BindIsDN != tc.bindIsDN {
				t.Errorf("bind is DN = %v, want %v", r.BindIsDN, tc.bindIsDN)
			}
			if r.UserFilter != tc.userFilter {
				t.Errorf("user filter = %q, want %q", r.UserFilter, tc.userFilter)
			}
			if r.GroupDN != tc.groupDN {
				t.Errorf("group DN = %q, want %q", r.GroupDN, tc.groupDN)
			}
			if r.GroupMemberFilter != tc.member {
				t.Errorf("group member filter = %q, want %q", r.GroupMemberFilter, tc.member)
			}
		})
	}
}

func TestRenderWarnsPerEscapedCharacter(t *testing.T) {
	s := resolveWith(t, map[string]any{KeyDomain: "example.org"})
	r, err := Render(s, "ops*(eu)", "")
	if err != nil {
		t.Fatal(err)
	}
	var filterChars []string
	for _, w := range r.Warnings {
		if w.Key == KeyUserFilter && w.Escape != nil {
			filterChars = append(filterChars, w.Escape.Char)
		}
	}
	if strings.Join(filterChars, "") != "*()" {
		t.Errorf("user filter warnings for %q, want one each for * ( )", filterChars)
	}
	for _, w := range r.Warnings {
		if w.Key == KeyUserFilter && !strings.Contains(w.Message, w.Escape.Escaped) {
			t.Errorf("warning %q does not show the escaped form %s", w.Message, w.Escape.Escaped)
		}
	}

	r, _ = Render(s, "Jürgen Müller", "")
	found := false
	for _, w := range r.Warnings {
		found = found || (w.Key == "username" && strings.Contains(w.Message, "not ASCII"))
	}
	if !found {
		t.Error("no note about a non-ASCII user name")
	}
}

func TestRenderObjectDNFromSearch(t *testing.T) {
	s := resolveWith(t, map[string]any{KeyDomain: "example.org", KeyGroupMemberFilter: "(member={object_dn})"})
	r, err := Render(s, "jsmith", `cn=Smith\2C John,ou=users,dc=example,dc=org`)
	if err != nil {
		t.Fatal(err)
	}
	if want := `(member=cn=Smith\5c2C John,ou=users,dc=example,dc=org)`; r.GroupMemberFilter != want {
		t.Errorf("member filter = %q, want %q", r.GroupMemberFilter, want)
	}
}

// testCAPEM returns a self-signed CA certificate in PEM.
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unit CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestRenderWarningsShowDNText(t *testing.T) {
	s := resolveWith(t, map[string]any{KeyDomain: "example.org"})
	r, err := Render(s, "Smith, John", "")
	if err != nil {
		t.Fatal(err)
	}
	var member string
	for _, w := range r.Warnings {
		if w.Key == KeyGroupMemberFilter {
			member = w.Message
		}
	}
	want := `object DN "uid=Smith\, John,ou=users,dc=example,dc=org": "\" at offset 9 is the escape character of a filter`
	if !strings.HasPrefix(member, want) {
		t.Errorf("group member filter warning %q, want it to start with %q", member, want)
	}
	if strings.Contains(member, `\\`) {
		t.Errorf("the warning doubles the DN's backslashes: %q", member)
	}
	if got := quoteText("a\x00b"); got != `"a\x00b"` {
		t.Errorf("a control character is quoted as %s, want Go's escape", got)
	}
}

func TestRenderWarnsOncePerCharacter(t *testing.T) {
	// AD's default user filter uses {username} twice.
	s := resolveWith(t, map[string]any{KeyDomain: "ad.example", KeyIsActiveDirectory: true})
	r, err := Render(s, "ops*", "")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, w := range r.Warnings {
		if w.Key == KeyUserFilter {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d user filter warnings for one '*', want 1: %v", count, r.Warnings)
	}
}
