package ldapprobe

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestSameDNAndKey(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		// slapd hex-escapes the comma, Active Directory backslash-escapes it.
		{`cn=Smith\2C John,ou=users,dc=example,dc=org`, `CN=Smith\, John,OU=Users,DC=Example,DC=Org`, true},
		{`CN=Jürgen Müller,CN=Users,DC=example,DC=test`, `cn=JÜRGEN MÜLLER,cn=users,dc=example,dc=test`, true},
		{`cn=J\C3\BCrgen M\C3\BCller,ou=users,dc=example,dc=org`, `cn=Jürgen Müller,ou=users,dc=example,dc=org`, true},
		{`cn=a+sn=b,dc=x`, `sn=B+cn=A,dc=x`, true},
		{`cn=developers, ou=groups, dc=example, dc=org`, `cn=developers,ou=groups,dc=example,dc=org`, true},
		{`cn=developers,ou=groups,dc=example,dc=org`, `cn=developers,ou=groups,dc=example`, false},
		{`cn=Smith\, John,dc=x`, `cn=Smith,cn=John,dc=x`, false},
		{`cn=a\,b,dc=x`, `cn=a\2Cb,dc=x`, true},
		{`cn=a\+b,dc=x`, `cn=a+b=c,dc=x`, false},
		{`not a dn`, `not a dn`, false},
	}
	for _, tc := range tests {
		if got := SameDN(tc.a, tc.b); got != tc.same {
			t.Errorf("SameDN(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
		ka, okA := DNKey(tc.a)
		kb, okB := DNKey(tc.b)
		if got := okA && okB && ka == kb; got != tc.same {
			t.Errorf("DNKey(%q) = %q, DNKey(%q) = %q: equal %v, want %v", tc.a, ka, tc.b, kb, got, tc.same)
		}
	}
}

func TestFindCycles(t *testing.T) {
	parents := map[string][]string{
		"user-group": {"a"},
		"a":          {"b"},
		"b":          {"c", "a"},
		"c":          {"a"},
		"self":       {"self"},
		"diamond1":   {"top"},
		"diamond2":   {"top"},
	}
	got := findCycles(parents)
	want := [][]string{{"a", "b", "a"}, {"a", "b", "c", "a"}, {"self", "self"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cycles = %q, want %q", got, want)
	}
	if cycles := findCycles(map[string][]string{"x": {"top"}, "y": {"top"}}); len(cycles) != 0 {
		t.Errorf("a diamond is not a cycle: %q", cycles)
	}
}

func TestFilterAttributes(t *testing.T) {
	tests := map[string][]string{
		"(uniqueMember={object_dn})":                        {"uniqueMember"},
		"(&(objectClass=groupOfNames)(member={object_dn}))": {"member"},
		"(|(member={object_dn})(uniqueMember={object_dn}))": {"member", "uniqueMember"},
		"(memberUid={object_dn})":                           {"memberUid"},
		"(member:1.2.840.113556.1.4.1941:={object_dn})":     nil,
		"(&(objectClass=group)(!(member={object_dn})))":     {"member"},
		"(cn=*)": nil,
	}
	for template, want := range tests {
		if got := filterAttributes(template, "object_dn"); !reflect.DeepEqual(got, want) {
			t.Errorf("filterAttributes(%q) = %q, want %q", template, got, want)
		}
	}
}

func TestClassifyReferrals(t *testing.T) {
	root := &RootDSE{NamingContexts: []string{"DC=example,DC=test", "CN=Configuration,DC=example,DC=test",
		"DC=DomainDnsZones,DC=example,DC=test", "DC=ForestDnsZones,DC=example,DC=test"}}
	refs := []string{
		"ldaps://example.test/CN=Configuration,DC=example,DC=test",
		"ldaps://example.test/DC=DomainDnsZones,DC=example,DC=test",
		"ldap://child.example.test/DC=child,DC=example,DC=test",
		"ldap://example.test/cn=configuration,dc=EXAMPLE,dc=test",
		"ldap://other.test/DC=other%2Ctest",
	}
	local, foreign := classifyReferrals(refs, root)
	wantLocal := []string{refs[0], refs[1], refs[3]}
	wantForeign := []string{refs[2], refs[4]}
	if !reflect.DeepEqual(local, wantLocal) || !reflect.DeepEqual(foreign, wantForeign) {
		t.Errorf("local %q, foreign %q", local, foreign)
	}
	if !strings.Contains(gcHint("DC=test"), "3268") || !strings.Contains(gcHint("DC=test"), "3269") {
		t.Errorf("the hint does not name the global catalog ports: %q", gcHint("DC=test"))
	}
}

func TestManagerLayer(t *testing.T) {
	rows := map[string]json.RawMessage{
		"ldap_server":                       json.RawMessage(`"ldaps://ldap.example.com:636"`),
		"ldap_username":                     json.RawMessage(`"svc"`),
		"ldap_password":                     json.RawMessage(`"********"`),
		"ldap_domain":                       json.RawMessage(`"example.com"`),
		"ldap_is_active_directory":          json.RawMessage(`true`),
		"ldap_nested_levels":                json.RawMessage(`3`),
		"ldap_timeout":                      json.RawMessage(`5.0`),
		"ldap_ca_path":                      json.RawMessage(`"/etc/cloudify/ssl/ldap_ca.crt"`),
		"ldap_group_dn":                     json.RawMessage(`null`),
		"ldap_group_members_filter":         json.RawMessage(`null`),
		"rest_service_log_level":            json.RawMessage(`"INFO"`),
		"failed_logins_before_account_lock": json.RawMessage(`4`),
	}
	ms, err := ManagerLayer("https://mgr", rows)
	if err != nil {
		t.Fatal(err)
	}
	if !ms.PasswordMasked || ms.CAPath != "/etc/cloudify/ssl/ldap_ca.crt" || !ms.HasServer() {
		t.Errorf("masked %v, CA path %q, has server %v", ms.PasswordMasked, ms.CAPath, ms.HasServer())
	}
	if !reflect.DeepEqual(ms.Ignored, []string{"ldap_group_members_filter"}) {
		t.Errorf("ignored %q", ms.Ignored)
	}
	for _, key := range []string{KeyPassword, KeyCAPath, "rest_service_log_level"} {
		if _, ok := ms.Layer.Values[key]; ok {
			t.Errorf("%s taken as a setting", key)
		}
	}
	s, err := Resolve([]Layer{ms.Layer})
	if err != nil {
		t.Fatal(err)
	}
	if s.NestedLevels != 3 || !s.IsActiveDirectory || s.GroupDN != DefaultGroupDN || s.BindFormat != DefaultBindFormatAD {
		t.Errorf("resolved %+v", s)
	}
	if src := s.Sources[KeyNestedLevels]; src.Kind != SourceManager || src.Detail != "https://mgr" {
		t.Errorf("source of ldap_nested_levels = %v", src)
	}
	if src := s.Sources[KeyGroupDN]; src.Kind != SourceDefault {
		t.Errorf("a null ldap_group_dn must fall back to the default, source %v", src)
	}

	masked, err := ManagerLayer("https://mgr", map[string]json.RawMessage{
		"ldap_username": json.RawMessage(`"********"`), "ldap_password": json.RawMessage(`"********"`)})
	if err != nil {
		t.Fatal(err)
	}
	if !masked.UsernameMasked || !masked.PasswordMasked {
		t.Errorf("masked user name %v, masked password %v", masked.UsernameMasked, masked.PasswordMasked)
	}
	if v, ok := masked.Layer.Values[KeyUsername]; ok {
		t.Errorf("a masked ldap_username is taken as the setting %q", v)
	}

	empty, err := ManagerLayer("https://mgr", map[string]json.RawMessage{"ldap_server": json.RawMessage(`""`)})
	if err != nil || empty.HasServer() {
		t.Errorf("an empty ldap_server: %v, has server %v", err, empty.HasServer())
	}
	if _, err := ManagerLayer("https://mgr", map[string]json.RawMessage{"ldap_server": json.RawMessage(`{`)}); err == nil {
		t.Error("a value that is not JSON was accepted")
	}
}

func TestCheckFromManagerNamesTheCA(t *testing.T) {
	s := resolveWith(t, map[string]any{KeyServer: "ldaps://ldap.example.com:636", KeyDomain: "example.com"})
	errs, _ := Check(s, CheckOptions{NeedServer: true, FromManager: true})
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, "database") || !strings.Contains(errs[0].Hint, "--ldap-ca-path") {
		t.Fatalf("errors %v", errs)
	}
	errs, warnings := Check(s, CheckOptions{FromManager: true, CAOptional: true})
	if len(errs) != 0 || !hasWarningFor(warnings, KeyServer) {
		t.Errorf("ldap show of a manager's ldaps settings: errors %v, warnings %v", errs, warnings)
	}
}
