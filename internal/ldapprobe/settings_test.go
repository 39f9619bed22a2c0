package ldapprobe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResolvePrecedence(t *testing.T) {
	flags := Layer{Kind: SourceFlag}
	flags.Set(KeyServer, []string{"ldaps://a.example:636", "ldaps://b.example:636"}, "--ldap-server")
	env := EnvLayer(func(name string) string {
		return map[string]string{
			"CFYAUTH_LDAP_SERVER":   "ldap://env.example",
			"CFYAUTH_LDAP_DOMAIN":   "env.example",
			"CFYAUTH_LDAP_PASSWORD": "from-env",
		}[name]
	})
	file, ignored, err := ParseFile("s.yaml", []byte("ldap_domain: file.example\nldap_username: svc\nldap_nested_levels: 3\nldap_is_active_directory: 'True'\nmanager_url: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ignored) != 1 || ignored[0] != "manager_url" {
		t.Errorf("ignored = %q, want [manager_url]", ignored)
	}
	s, err := Resolve([]Layer{flags, env, file})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Servers) != 2 || s.Servers[1] != "ldaps://b.example:636" {
		t.Errorf("servers = %q, want the two flag values", s.Servers)
	}
	if got := s.Sources[KeyServer].String(); got != "flag --ldap-server" {
		t.Errorf("server source = %q", got)
	}
	if s.Domain != "env.example" || s.Sources[KeyDomain].String() != "environment CFYAUTH_LDAP_DOMAIN" {
		t.Errorf("domain = %q from %s, want env.example from the environment", s.Domain, s.Sources[KeyDomain])
	}
	if s.Username != "svc" || s.Sources[KeyUsername].Kind != SourceFile {
		t.Errorf("username = %q from %s", s.Username, s.Sources[KeyUsername])
	}
	if s.Password.Reveal() != "from-env" {
		t.Error("password not taken from CFYAUTH_LDAP_PASSWORD")
	}
	if s.NestedLevels != 3 || !s.IsActiveDirectory {
		t.Errorf("nested levels %d, AD %v; want 3 and true", s.NestedLevels, s.IsActiveDirectory)
	}
	if s.BaseDN != "dc=env,dc=example" || s.Sources[KeyBaseDN].Kind != SourceDefault {
		t.Errorf("base DN = %q from %s, want the domain's DN by default", s.BaseDN, s.Sources[KeyBaseDN])
	}
	if s.BindFormat != DefaultBindFormatAD || s.UserFilter != DefaultUserFilterAD {
		t.Errorf("AD defaults not applied: %q %q", s.BindFormat, s.UserFilter)
	}
	if s.Timeout != DefaultTimeout {
		t.Errorf("timeout = %v, want %v", s.Timeout, DefaultTimeout)
	}
}

func TestResolveNonADDefaults(t *testing.T) {
	s, err := Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		KeyBindFormat:               DefaultBindFormat,
		KeyUserFilter:               DefaultUserFilter,
		KeyGroupDN:                  "ou=groups,{base_dn}",
		KeyGroupMemberFilter:        "(uniqueMember={object_dn})",
		KeyAttributeEmail:           "email",
		KeyAttributeFirstName:       "givenName",
		KeyAttributeLastName:        "sn",
		KeyAttributeUID:             "uid",
		KeyAttributeGroupMembership: "memberOf",
		KeyNestedLevels:             "1",
		KeyTimeout:                  "5s",
	}
	for key, value := range want {
		if got := s.Value(key); got != value {
			t.Errorf("%s = %q, want %q", key, got, value)
		}
	}
}

func TestResolveRejectsBadValues(t *testing.T) {
	tests := []struct {
		key   string
		value any
	}{
		{KeyIsActiveDirectory, "yes"},
		{KeyNestedLevels, "two"},
		{KeyNestedLevels, 0},
		{KeyTimeout, "soon"},
		{KeyTimeout, "-1"},
		{KeyDomain, []any{"a", "b"}},
		{KeyServer, map[string]any{"url": "x"}},
		{KeyCAPath, "/nonexistent/ca.pem"},
		{KeyCACert, "not PEM"},
	}
	for _, tc := range tests {
		l := Layer{Kind: SourceFlag}
		l.Set(tc.key, tc.value, "--x")
		_, err := Resolve([]Layer{l})
		var se *SettingsError
		if !errors.As(err, &se) || se.Key != tc.key {
			t.Errorf("%s = %v: error %v, want a SettingsError for the key", tc.key, tc.value, err)
			continue
		}
		if se.Hint == "" {
			t.Errorf("%s = %v: error has no hint", tc.key, tc.value)
		}
	}
}

func TestParseFileRejectsUnknownLDAPKey(t *testing.T) {
	_, _, err := ParseFile("s.json", []byte(`{"ldap_sever": "ldap://x"}`))
	var se *SettingsError
	if !errors.As(err, &se) || se.Key != "ldap_sever" || !strings.Contains(se.Hint, "ldap_server") {
		t.Fatalf("error = %v, want one naming ldap_sever and listing ldap_server", err)
	}
	if _, _, err := ParseFile("s.yaml", []byte("ldap_server: [unclosed")); err == nil {
		t.Fatal("a file that does not parse was accepted")
	}
}

func TestCAFromPathAndPEM(t *testing.T) {
	dir := t.TempDir()
	pemText := testCAPEM(t)
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, []byte(pemText), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := Layer{Kind: SourceFlag}
	flags.Set(KeyCAPath, path, "--ldap-ca-path")
	file := Layer{Kind: SourceFile, Detail: "s.yaml"}
	file.Set(KeyCACert, "overridden text", "")
	s, err := Resolve([]Layer{flags, file})
	if err != nil {
		t.Fatal(err)
	}
	if s.CAPEM != pemText {
		t.Error("CA PEM not read from --ldap-ca-path, which has the higher precedence")
	}

	fileOnly := Layer{Kind: SourceFile, Detail: "s.yaml"}
	fileOnly.Set(KeyCACert, "not PEM", "")
	if _, err := Resolve([]Layer{fileOnly}); err == nil {
		t.Error("an invalid ldap_ca_cert was accepted")
	}
}

func TestParseSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "5.0": 5 * time.Second, "250ms": 250 * time.Millisecond, "2s": 2 * time.Second, "": DefaultTimeout} {
		got, err := ParseSeconds(in)
		if err != nil || got != want {
			t.Errorf("ParseSeconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-2s", "x", "NaN"} {
		if _, err := ParseSeconds(in); err == nil {
			t.Errorf("ParseSeconds(%q) accepted", in)
		}
	}
}

func TestSecretIsMasked(t *testing.T) {
	s := &Settings{Password: "hunter2"}
	for _, text := range []string{s.Password.String(), s.Value(KeyPassword)} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("password shown in %q", text)
		}
	}
	raw, _ := s.Password.MarshalJSON()
	if strings.Contains(string(raw), "hunter2") {
		t.Errorf("password shown in JSON %s", raw)
	}
}

func TestCheckManagerRules(t *testing.T) {
	caPEM := testCAPEM(t)
	tests := []struct {
		name     string
		set      map[string]any
		opts     CheckOptions
		errKey   string
		warnKey  string
		noErrors bool
	}{
		{"unknown scheme", map[string]any{KeyServer: "ldapx://h:389", KeyDomain: "d.example"}, CheckOptions{}, KeyServer, "", false},
		{"ldaps without CA", map[string]any{KeyServer: "ldaps://h", KeyDomain: "d.example"}, CheckOptions{}, KeyServer, "", false},
		{"ldaps without CA, insecure", map[string]any{KeyServer: "ldaps://h", KeyDomain: "d.example"}, CheckOptions{InsecureSkipVerify: true}, "", KeyServer, true},
		{"user without password", map[string]any{KeyServer: "ldap://h", KeyDomain: "d.example", KeyUsername: "svc"}, CheckOptions{}, KeyUsername, "", false},
		{"bad placeholder", map[string]any{KeyServer: "ldap://h", KeyDomain: "d.example", KeyUserFilter: "(uid={user})"}, CheckOptions{}, KeyUserFilter, "", false},
		{"no server for a check", map[string]any{KeyDomain: "d.example"}, CheckOptions{NeedServer: true}, KeyServer, "", false},
		{"no server for show", map[string]any{KeyDomain: "d.example"}, CheckOptions{}, "", KeyServer, true},
		{"StartTLS note", map[string]any{KeyServer: "ldap://h", KeyDomain: "d.example"}, CheckOptions{StartTLS: true}, "", KeyServer, true},
		{"CA with ldap://", map[string]any{KeyServer: "ldap://h", KeyDomain: "d.example", KeyCACert: caPEM}, CheckOptions{}, KeyCACert, "", false},
		{"CA with ldap:// and StartTLS", map[string]any{KeyServer: "ldap://h", KeyDomain: "d.example", KeyCACert: caPEM}, CheckOptions{StartTLS: true}, "", KeyCACert, true},
		{"dn_extra deprecated", map[string]any{KeyServer: "ldap://h", KeyDomain: "d.example", KeyDNExtra: "o=x"}, CheckOptions{}, "", KeyDNExtra, true},
		{"empty domain", map[string]any{KeyServer: "ldap://h"}, CheckOptions{}, "", KeyDomain, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := Layer{Kind: SourceFlag}
			for k, v := range tc.set {
				l.Set(k, v, "")
			}
			s, err := Resolve([]Layer{l})
			if err != nil {
				t.Fatal(err)
			}
			errs, warnings := Check(s, tc.opts)
			if tc.noErrors && len(errs) > 0 {
				t.Errorf("unexpected errors: %v", errs)
			}
			if tc.errKey != "" && !hasErrorFor(errs, tc.errKey) {
				t.Errorf("no error for %s in %v", tc.errKey, errs)
			}
			if tc.warnKey != "" && !hasWarningFor(warnings, tc.warnKey) {
				t.Errorf("no warning for %s in %v", tc.warnKey, warnings)
			}
		})
	}
}

func hasErrorFor(errs []*SettingsError, key string) bool {
	for _, e := range errs {
		if e.Key == key {
			return true
		}
	}
	return false
}

func hasWarningFor(warnings []Warning, key string) bool {
	for _, w := range warnings {
		if w.Key == key {
			return true
		}
	}
	return false
}

// FuzzSettingsFile feeds arbitrary bytes through the settings file parser
// and the resolver: neither may panic, and a resolved password never shows
// in the printed values.
func FuzzSettingsFile(f *testing.F) {
	f.Add([]byte("ldap_server: ldap://127.0.0.1:389\nldap_domain: example.org\n"))
	f.Add([]byte(`{"ldap_server": ["ldap://a", "ldap://b"], "ldap_nested_levels": 2.7, "ldap_timeout": 5.0}`))
	f.Add([]byte("ldap_is_active_directory: TRUE\nldap_password: p\nldap_username: u\n"))
	f.Add([]byte("ldap_bind_format: '{username}@{domain}'\nldap_user_filter: '(uid={username'\n"))
	f.Add([]byte("ldap_nested_levels: 99999999999999999999\n"))
	f.Add([]byte("ldap_server: null\nldap_group_dn: ~\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		layer, _, err := ParseFile("fuzz.yaml", data)
		if err != nil {
			return
		}
		delete(layer.Values, KeyCAPath)
		layer.Set(KeyPassword, "s3cret-fuzz", "")
		s, err := Resolve([]Layer{layer})
		if err != nil {
			return
		}
		_, _ = Check(s, CheckOptions{})
		for _, k := range Keys {
			if strings.Contains(s.Value(k.Name), "s3cret-fuzz") {
				t.Fatalf("%s shows the password", k.Name)
			}
		}
		_, _ = Render(s, "user*(x)", "")
	})
}
