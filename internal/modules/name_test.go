package modules

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

func TestValidateNameAccepts(t *testing.T) {
	for _, name := range []string{"meme_auth", "a", "_private", "auth2", strings.Repeat("a", 64), "ldap_bridge"} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
}

func TestValidateNameRejects(t *testing.T) {
	cases := []struct {
		name   string
		reason string
	}{
		{"", "empty"},
		{"../x", "not a path"},
		{"a/b", "not a path"},
		{"x.py", ".py suffix"},
		{"Upper", "uppercase"},
		{"1abc", "starts with a digit"},
		{"café", "non-ASCII"},
		{"my-auth", `contains '-'`},
		{"a.b", `contains '.'`},
		{strings.Repeat("a", 65), "maximum is 64"},
		{"json", "standard-library"},
		{"os", "standard-library"},
		{"ldap", "premium"},
		{"okta", "premium"},
		{"ldap_authentication", "premium"},
		{"__init__", "two underscores"},
		{"__main__", "two underscores"},
		{"__pycache__", "two underscores"},
		{"__", "two underscores"},
	}
	for _, c := range cases {
		err := ValidateName(c.name)
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("ValidateName(%q) = %v, want a NameError", c.name, err)
			continue
		}
		if !strings.Contains(ne.Error(), c.reason) {
			t.Errorf("ValidateName(%q) = %q, want it to mention %q", c.name, ne.Error(), c.reason)
		}
	}
}

func TestSuggestedNames(t *testing.T) {
	for name, want := range map[string]string{
		"héllo": "hello", "Straße-Auth": "strasse_auth", "__init__": "init_auth", "__main__": "main_auth",
		"__pycache__": "pycache_auth", "My-Auth": "my_auth", "日本": "",
	} {
		var ne *NameError
		if !errors.As(ValidateName(name), &ne) {
			t.Fatalf("ValidateName(%q) accepted", name)
		}
		if ne.Suggestion != want {
			t.Errorf("suggestion for %q = %q, want %q", name, ne.Suggestion, want)
		}
	}
}

func TestSuggestedNamesAreValid(t *testing.T) {
	for _, name := range []string{"My-Auth", "1abc", "x.py", "json", "okta", "Ldap Bridge", "__init__", "___x___", "héllo"} {
		var ne *NameError
		if !errors.As(ValidateName(name), &ne) {
			t.Fatalf("ValidateName(%q) accepted", name)
		}
		if ne.Suggestion == "" {
			continue
		}
		if err := ValidateName(ne.Suggestion); err != nil {
			t.Errorf("suggestion %q for %q is itself invalid: %v", ne.Suggestion, name, err)
		}
	}
}

// FuzzValidateName checks the rules' invariants: an accepted name is a
// lowercase ASCII identifier of at most 64 characters that does not both
// start and end with two underscores, and any suggestion offered for a
// rejected name is accepted.
func FuzzValidateName(f *testing.F) {
	for _, seed := range []string{"meme_auth", "", "../x", "x.py.py", "Upper", "1abc", "café", "json", "ldap",
		strings.Repeat("a", 65), "a\x00b", "_", "__init__", "__main__", "__", "héllo", "ok_2"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if err == nil {
			if name == "" || len(name) > MaxNameLength || unicode.IsDigit(rune(name[0])) {
				t.Fatalf("accepted %q", name)
			}
			if strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__") {
				t.Fatalf("accepted %q, a name Python reserves", name)
			}
			for _, r := range name {
				if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')) {
					t.Fatalf("accepted %q with %q", name, r)
				}
			}
			return
		}
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Fatalf("error of type %T", err)
		}
		if ne.Suggestion != "" {
			if err := ValidateName(ne.Suggestion); err != nil {
				t.Fatalf("suggestion %q for %q is invalid: %v", ne.Suggestion, name, err)
			}
		}
	})
}
