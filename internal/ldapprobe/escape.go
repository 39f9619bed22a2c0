package ldapprobe

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape is one character of a value that had to be escaped to be placed in
// a DN or a search filter.
type Escape struct {
	// Char is the character as it appears in the value; an invalid UTF-8
	// byte is shown as \xNN.
	Char string `json:"char"`
	// Offset is the byte offset of the character in the value.
	Offset int `json:"offset"`
	// Escaped is the text sent in its place.
	Escaped string `json:"escaped"`
	// Reason names the rule that required it.
	Reason string `json:"reason"`
}

// EscapeDNValue escapes a value for an RFC 4514 attribute value: the
// characters " + , ; < > \ anywhere, '#' or a space at the start, a space
// at the end, and NUL. It returns the escaped text and one Escape per
// character that needed it.
func EscapeDNValue(value string) (string, []Escape) {
	return escapeWith(value, func(i int, r rune) (string, string) {
		switch {
		case r == 0:
			return `\00`, "NUL is not allowed in a DN"
		case strings.ContainsRune(`"+,;<>\`, r):
			return `\` + string(r), "special in a DN (RFC 4514)"
		case i == 0 && (r == '#' || r == ' '):
			return `\` + string(r), "special at the start of a DN value (RFC 4514)"
		case i == len(value)-1 && r == ' ':
			return `\ `, "special at the end of a DN value (RFC 4514)"
		}
		return "", ""
	})
}

// EscapeFilterValue escapes a value for an RFC 4515 assertion value: the
// characters * ( ) \ and NUL become \XX. Valid non-ASCII UTF-8 is left as
// it is, which RFC 4515 allows.
func EscapeFilterValue(value string) (string, []Escape) {
	return escapeWith(value, func(_ int, r rune) (string, string) {
		switch r {
		case '*':
			return `\2a`, "a wildcard in a filter (RFC 4515)"
		case '(', ')':
			return fmt.Sprintf(`\%02x`, r), "a filter delimiter (RFC 4515)"
		case '\\':
			return `\5c`, "the escape character of a filter (RFC 4515)"
		case 0:
			return `\00`, "NUL is not allowed in a filter (RFC 4515)"
		}
		return "", ""
	})
}

// escapeWith escapes every character for which rule returns a
// replacement, and every invalid UTF-8 byte as \XX.
func escapeWith(value string, rule func(offset int, r rune) (escaped, reason string)) (string, []Escape) {
	var b strings.Builder
	var escapes []Escape
	for i, r := range value {
		var esc, reason string
		if r == utf8.RuneError && !validAt(value, i) {
			esc, reason = fmt.Sprintf(`\%02x`, value[i]), "invalid UTF-8 byte"
		} else {
			esc, reason = rule(i, r)
		}
		if esc == "" {
			b.WriteRune(r)
			continue
		}
		b.WriteString(esc)
		escapes = append(escapes, Escape{Char: charAt(value, i, r), Offset: i, Escaped: esc, Reason: reason})
	}
	return b.String(), escapes
}

// validAt reports whether the rune at byte offset i decodes cleanly, which
// tells a real U+FFFD apart from an invalid byte.
func validAt(s string, i int) bool {
	r, size := utf8.DecodeRuneInString(s[i:])
	return !(r == utf8.RuneError && size <= 1)
}

func charAt(s string, i int, r rune) string {
	if r == utf8.RuneError && !validAt(s, i) {
		return fmt.Sprintf(`\x%02x`, s[i])
	}
	return string(r)
}

// isASCII reports whether every byte of s is below 0x80.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// quoteText puts a value in double quotes as it is, so that a DN shows
// each of its backslashes once. A value with control characters or invalid
// UTF-8 is quoted with Go's escapes instead, so that every byte shows.
func quoteText(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return `"` + s + `"`
	}
	return strconv.Quote(s)
}
