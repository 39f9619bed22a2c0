package ldapprobe

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The manager renders ldap_bind_format, ldap_group_dn, ldap_user_filter and
// ldap_group_member_filter with Python's str.format, and POST /ldap checks
// their replacement fields with string.Formatter().parse. The parser here
// follows CPython's (Objects/stringlib/unicode_format.h, Python 3.8 to
// 3.11) so that cfyauth accepts and rejects the same templates.

// AllowedFields lists, per key, the replacement field names the manager
// accepts, in the order its error message lists them.
var AllowedFields = map[string][]string{
	KeyBindFormat:        {"username", "domain", "base_dn", "domain_dn", "group_dn"},
	KeyGroupDN:           {"base_dn", "domain_dn"},
	KeyGroupMemberFilter: {"object_dn"},
	KeyUserFilter:        {"username", "base_dn", "domain_dn", "group_dn"},
}

// formatField is one replacement field of a template.
type formatField struct {
	// Name is the field name as string.Formatter().parse returns it, such
	// as "username", "" for {} or "a.b" for {a.b}.
	Name string
	// Conversion is the character after '!', or 0.
	Conversion rune
	// Spec is the format spec after ':'.
	Spec string
}

// formatPart is literal text followed by an optional field.
type formatPart struct {
	Literal string
	Field   *formatField
}

// FormatError is a template that Python's str.format cannot parse.
type FormatError struct {
	// Message is CPython's ValueError text.
	Message string
}

func (e *FormatError) Error() string { return e.Message }

// parseFormat splits a template into literal text and replacement fields.
// Doubled braces are literal braces.
func parseFormat(s string) ([]formatPart, error) {
	var parts []formatPart
	i := 0
	for i < len(s) {
		start := i
		var c byte
		markup := false
		for i < len(s) {
			c = s[i]
			i++
			if c == '{' || c == '}' {
				markup = true
				break
			}
		}
		atEnd := i >= len(s)
		end := i
		if markup && c == '}' && (atEnd || s[i] != '}') {
			return nil, &FormatError{"Single '}' encountered in format string"}
		}
		if markup && atEnd && c == '{' {
			return nil, &FormatError{"Single '{' encountered in format string"}
		}
		if markup && !atEnd {
			if s[i] == c {
				// A doubled brace: keep one in the literal text.
				i++
				markup = false
			} else {
				end--
			}
		}
		part := formatPart{Literal: s[start:end]}
		if markup {
			field, next, err := parseField(s, i)
			if err != nil {
				return nil, err
			}
			part.Field = field
			i = next
		}
		parts = append(parts, part)
	}
	return parts, nil
}

// parseField reads one field that starts at s[i], just after its '{', and
// returns the index after its closing '}'.
func parseField(s string, i int) (*formatField, int, error) {
	nameStart := i
	var c byte
	for i < len(s) {
		c = s[i]
		i++
		if c == '{' {
			return nil, 0, &FormatError{"unexpected '{' in field name"}
		}
		if c == '[' {
			for i < len(s) && s[i] != ']' {
				i++
			}
			c = 0
			continue
		}
		if c == '}' || c == ':' || c == '!' {
			break
		}
		c = 0
	}
	if c != '}' && c != ':' && c != '!' {
		return nil, 0, &FormatError{"expected '}' before end of string"}
	}
	field := &formatField{Name: s[nameStart : i-1]}
	if c == '}' {
		return field, i, nil
	}
	if c == '!' {
		if i >= len(s) {
			return nil, 0, &FormatError{"end of string while looking for conversion specifier"}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		field.Conversion = r
		i += size
		if i < len(s) {
			c = s[i]
			i++
			if c == '}' {
				return field, i, nil
			}
			if c != ':' {
				return nil, 0, &FormatError{"expected ':' after conversion specifier"}
			}
		}
	}
	specStart := i
	depth := 1
	for i < len(s) {
		c = s[i]
		i++
		switch c {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				field.Spec = s[specStart : i-1]
				return field, i, nil
			}
		}
	}
	return nil, 0, &FormatError{"unmatched '{' in format spec"}
}

// PlaceholderError is a template whose fields the manager rejects.
type PlaceholderError struct {
	Key     string
	Invalid []string
	Allowed []string
	// Parse is set when the template does not parse at all.
	Parse *FormatError
}

func (e *PlaceholderError) Error() string {
	if e.Parse != nil {
		return fmt.Sprintf("%s is not a valid template: %s", e.Key, e.Parse.Message)
	}
	quoted := make([]string, len(e.Invalid))
	for i, name := range e.Invalid {
		quoted[i] = "{" + name + "}"
	}
	return fmt.Sprintf("%s has invalid placeholders %s; allowed: %s", e.Key, strings.Join(quoted, ", "), strings.Join(e.Allowed, ", "))
}

// ValidatePlaceholders checks a template the way POST /api/v3.1/ldap does:
// every field name must be one of the key's allowed names. Keys without a
// list (ldap_base_dn and the rest) are not checked by the manager and pass.
func ValidatePlaceholders(key, value string) error {
	allowed, ok := AllowedFields[key]
	if !ok {
		return nil
	}
	parts, err := parseFormat(value)
	if err != nil {
		var fe *FormatError
		errors.As(err, &fe)
		return &PlaceholderError{Key: key, Allowed: allowed, Parse: fe}
	}
	var invalid []string
	for _, p := range parts {
		if p.Field == nil {
			continue
		}
		if !contains(allowed, p.Field.Name) {
			invalid = append(invalid, p.Field.Name)
		}
	}
	if len(invalid) > 0 {
		return &PlaceholderError{Key: key, Invalid: invalid, Allowed: allowed}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// applyConversion applies a field's !r, !s or !a the way Python does to a
// str value.
func applyConversion(value string, conv rune) (string, error) {
	switch conv {
	case 0, 's':
		return value, nil
	case 'r':
		return pythonRepr(value, false), nil
	case 'a':
		return pythonRepr(value, true), nil
	}
	return "", fmt.Errorf("unknown conversion specifier %c", conv)
}

// pythonRepr returns repr() of a Python str; with ascii set, non-ASCII
// characters are escaped as ascii() does.
func pythonRepr(s string, ascii bool) string {
	quote := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r > 0x7f && ascii:
			switch {
			case r <= 0xff:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// applySpec applies a format spec to a str the way Python's format() does
// for the subset strings support: [[fill]align][width][.precision][s].
func applySpec(value, spec string) (string, error) {
	if spec == "" {
		return value, nil
	}
	if strings.ContainsAny(spec, "{}") {
		return "", fmt.Errorf("nested fields in the format spec %q are not supported", spec)
	}
	runes := []rune(spec)
	fill, align := ' ', rune(0)
	pos := 0
	isAlign := func(r rune) bool { return r == '<' || r == '>' || r == '^' || r == '=' }
	if len(runes) >= 2 && isAlign(runes[1]) {
		fill, align, pos = runes[0], runes[1], 2
	} else if len(runes) >= 1 && isAlign(runes[0]) {
		align, pos = runes[0], 1
	}
	if align == '=' {
		return "", errors.New("'=' alignment not allowed in string format specifier")
	}
	rest := string(runes[pos:])
	if rest != "" && strings.ContainsRune("+- #0,_", rune(rest[0])) {
		return "", fmt.Errorf("the format spec %q uses a sign, '#', '0' or a grouping option, which Python rejects for strings", spec)
	}
	width, precision := 0, -1
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		width = width*10 + int(rest[n]-'0')
		n++
		if width > 1<<16 {
			return "", fmt.Errorf("the width in the format spec %q is too large", spec)
		}
	}
	rest = rest[n:]
	if strings.HasPrefix(rest, ".") {
		rest = rest[1:]
		n = 0
		precision = 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			precision = precision*10 + int(rest[n]-'0')
			n++
			if precision > 1<<16 {
				return "", fmt.Errorf("the precision in the format spec %q is too large", spec)
			}
		}
		if n == 0 {
			return "", errors.New("format specifier missing precision")
		}
		rest = rest[n:]
	}
	if rest != "" && rest != "s" {
		return "", fmt.Errorf("unknown format code %q for object of type 'str'", rest)
	}
	out := []rune(value)
	if precision >= 0 && len(out) > precision {
		out = out[:precision]
	}
	pad := width - len(out)
	if pad <= 0 {
		return string(out), nil
	}
	padding := strings.Repeat(string(fill), pad)
	switch align {
	case '>':
		return padding + string(out), nil
	case '^':
		left := pad / 2
		return strings.Repeat(string(fill), left) + string(out) + strings.Repeat(string(fill), pad-left), nil
	default:
		return string(out) + padding, nil
	}
}
