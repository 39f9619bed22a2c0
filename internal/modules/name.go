// Package modules manages the authenticator modules of a manager: their
// names, sources, validation, and (in store.go) the store of installed
// versions with receipts, journal and lock.
package modules

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxNameLength is the longest module name cfyauth accepts.
const MaxNameLength = 64

// premiumNames are the modules of the premium package's authentication folder
// and the names the REST service uses for the built-ins. A custom module of
// the same name would shadow or be shadowed by them.
var premiumNames = map[string]bool{
	"ldap": true, "okta": true, "saml": true, "auth_base": true, "authentication": true,
	"ldap_authentication": true, "okta_authentication": true, "saml_authentication": true,
	"ldappy": true, "cloudify_premium": true, "manager_rest": true, "cloudify": true,
	"flask": true, "werkzeug": true,
}

// NameError explains why a module name was rejected.
type NameError struct {
	Name   string
	Reason string
	// Suggestion is a valid name close to Name, when one is obvious.
	Suggestion string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid module name %q: %s", e.Name, e.Reason)
}

// ValidateName checks the rules every module name follows: a Python module
// identifier of lowercase ASCII letters, digits and underscores, not starting
// with a digit, not starting and ending with two underscores (Python's own
// names such as __init__ and __main__), at most 64 characters, and not the
// name of a standard-library or premium module. The manager's own
// interpreter checks its installed packages separately.
func ValidateName(name string) error {
	fail := func(reason string) error {
		return &NameError{Name: name, Reason: reason, Suggestion: suggestName(name)}
	}
	switch {
	case name == "":
		return fail("the name is empty")
	case len(name) > MaxNameLength:
		return fail(fmt.Sprintf("it is %d characters long, the maximum is %d", len(name), MaxNameLength))
	case strings.ContainsAny(name, `/\`) || name == "." || name == "..":
		return fail("a module name is not a path")
	case strings.HasSuffix(name, ".py"):
		return fail("leave out the .py suffix")
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9':
			if i == 0 {
				return fail("it starts with a digit")
			}
		case r >= 'A' && r <= 'Z':
			return fail("it contains an uppercase letter; module names are lowercase")
		case r > 127:
			return fail(fmt.Sprintf("it contains the non-ASCII character %q", r))
		default:
			return fail(fmt.Sprintf("it contains %q; use only lowercase letters, digits and underscores", r))
		}
	}
	if strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__") {
		reserved := &NameError{Name: name, Reason: "names that start and end with two underscores are Python's own (__init__, __main__, __pycache__)"}
		if core := strings.Trim(name, "_"); core != "" {
			if suggestion := core + "_auth"; ValidateName(suggestion) == nil {
				reserved.Suggestion = suggestion
			}
		}
		return reserved
	}
	if premiumNames[name] {
		return &NameError{Name: name, Reason: "it is the name of a premium authentication module or a package the REST service imports", Suggestion: name + "_custom"}
	}
	if stdlibNames[name] {
		return &NameError{Name: name, Reason: "it is a Python standard-library module", Suggestion: name + "_auth"}
	}
	return nil
}

// NameFromFile derives a module name from a file name: the base name
// without its final .py.
func NameFromFile(path string) string {
	base := path
	if i := strings.LastIndexAny(base, `/`); i >= 0 {
		base = base[i+1:]
	}
	return strings.TrimSuffix(base, ".py")
}

// latinLetters spells the Latin letters that have no decomposition into a
// base letter and accents.
var latinLetters = map[rune]string{'ß': "ss", 'æ': "ae", 'ø': "o", 'œ': "oe", 'ł': "l", 'đ': "d", 'þ': "th", 'ð': "d"}

// suggestName turns a rejected name into a valid one where that is simple:
// lowercase, accents dropped ("héllo" becomes "hello"), and separators
// turned into underscores.
func suggestName(name string) string {
	var b strings.Builder
	base := NameFromFile(name)
	for _, r := range norm.NFD.String(strings.ToLower(base)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case r == '-' || r == ' ' || r == '.':
			b.WriteRune('_')
		case latinLetters[r] != "":
			b.WriteString(latinLetters[r])
		case unicode.Is(unicode.Mn, r):
			// An accent of the letter before it.
		case r > unicode.MaxASCII:
			// A letter without an ASCII spelling: any name would be a guess.
			return ""
		}
	}
	s := strings.Trim(b.String(), "_")
	if s == "" {
		return ""
	}
	if s[0] >= '0' && s[0] <= '9' {
		s = "m_" + s
	}
	if len(s) > MaxNameLength {
		s = s[:MaxNameLength]
	}
	if s == name || premiumNames[s] || stdlibNames[s] || (strings.HasPrefix(s, "__") && strings.HasSuffix(s, "__")) {
		return ""
	}
	return s
}
