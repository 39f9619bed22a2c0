package ldapprobe

import (
	"fmt"
	"strings"
)

// ADDiagnostic is what Active Directory (and Samba) put into the diagnostic
// message of a failed bind, such as
//
//	80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1
//
// The result code is always 49 (invalid credentials), so only the sub-code
// after "data" gives the reason.
type ADDiagnostic struct {
	// Error is the leading hexadecimal error number, such as 80090308.
	Error string `json:"error,omitempty"`
	// Comment is the text after "comment:", such as "AcceptSecurityContext
	// error".
	Comment string `json:"comment,omitempty"`
	// SubCode is the hexadecimal number after "data", in lower case, such
	// as 52e.
	SubCode string `json:"sub_code"`
}

// adSubCode is the meaning of one AD bind sub-code and its fix. The fix is
// phrased for the account that bound, such as "the user alice".
type adSubCode struct {
	meaning string
	fix     func(who string) string
}

// adSubCodes are the bind sub-codes Active Directory documents for
// AcceptSecurityContext failures (Win32 error numbers in hexadecimal).
var adSubCodes = map[string]adSubCode{
	"525": {"the account does not exist", func(who string) string {
		return fmt.Sprintf("check the name of %s: the domain has no such account", who)
	}},
	"52e": {"the password is wrong (Samba also answers this for an account that does not exist)", func(who string) string {
		return fmt.Sprintf("check the password and the name of %s", who)
	}},
	"530": {"the account may not log on at this time of day (logon hours)", func(who string) string {
		return fmt.Sprintf("an AD administrator must widen the logon hours of %s", who)
	}},
	"531": {"the account may not log on from this computer (workstation restriction)", func(who string) string {
		return fmt.Sprintf("an AD administrator must allow %s to log on from every computer, or add the manager's host to its \"Log On To\" list (userWorkstations)", who)
	}},
	"532": {"the password has expired", func(who string) string {
		return fmt.Sprintf("set a new password for %s (and for a service account, store it in ldap_password and consider \"password never expires\")", who)
	}},
	"533": {"the account is disabled", func(who string) string {
		return fmt.Sprintf("an AD administrator must enable %s", who)
	}},
	"568": {"the account belongs to too many groups: its logon token holds too many security IDs", func(who string) string {
		return fmt.Sprintf("remove %s from groups it does not need, or raise MaxTokenSize on the domain controllers", who)
	}},
	"701": {"the account has expired", func(who string) string {
		return fmt.Sprintf("an AD administrator must extend or clear the expiry date (accountExpires) of %s", who)
	}},
	"773": {"the password must be changed before the next logon", func(who string) string {
		return fmt.Sprintf("set a new password for %s first (the manager cannot change passwords), or have an AD administrator clear \"User must change password at next logon\"", who)
	}},
	"775": {"the account is locked out", func(who string) string {
		return fmt.Sprintf("wait until the lockout of %s ends or have an AD administrator unlock it, then find what keeps sending a wrong password", who)
	}},
}

// ParseADDiagnostic reads the sub-code and its context out of the
// diagnostic message of a failed bind. It reports false when the text holds
// no "data <hex>" sub-code. It is the only place that parses this text.
func ParseADDiagnostic(text string) (ADDiagnostic, bool) {
	// Windows ends the message with a NUL byte.
	text = strings.TrimRight(text, "\x00 \t\r\n")
	lower := strings.ToLower(text)
	var d ADDiagnostic
	found := false
	for from := 0; from < len(lower); {
		i := strings.Index(lower[from:], "data ")
		if i < 0 {
			break
		}
		start := from + i + len("data ")
		if from+i > 0 && isWordByte(lower[from+i-1]) {
			from = start
			continue
		}
		end := start
		for end < len(lower) && end-start < 8 && isHexByte(lower[end]) {
			end++
		}
		if end > start && (end == len(lower) || !isWordByte(lower[end])) {
			d.SubCode = strings.TrimLeft(lower[start:end], "0")
			if d.SubCode == "" {
				d.SubCode = "0"
			}
			found = true
			break
		}
		from = start
	}
	if !found {
		return ADDiagnostic{}, false
	}
	if i := strings.IndexByte(text, ':'); i > 0 && i <= 8 && isHex(text[:i]) {
		d.Error = strings.ToUpper(text[:i])
	}
	if i := strings.Index(lower, "comment:"); i >= 0 {
		rest := text[i+len("comment:"):]
		if j := strings.IndexByte(rest, ','); j >= 0 {
			rest = rest[:j]
		}
		d.Comment = strings.TrimSpace(rest)
	}
	return d, true
}

// Known reports whether the sub-code is one cfyauth can explain.
func (d ADDiagnostic) Known() bool {
	_, ok := adSubCodes[d.SubCode]
	return ok
}

// Meaning is the sub-code in plain words, such as "the account is
// disabled (AD sub-code 533)".
func (d ADDiagnostic) Meaning() string {
	if sc, ok := adSubCodes[d.SubCode]; ok {
		return fmt.Sprintf("%s (AD sub-code %s)", sc.meaning, d.SubCode)
	}
	return fmt.Sprintf("AD sub-code %s, which cfyauth does not know", d.SubCode)
}

// Fix names the next step for the account that bound, such as "the service
// account svc-bind" or "the user alice".
func (d ADDiagnostic) Fix(who string) string {
	if sc, ok := adSubCodes[d.SubCode]; ok {
		return sc.fix(who)
	}
	return fmt.Sprintf("look up Win32 error 0x%s for %s in the domain controller's documentation", d.SubCode, who)
}

// passwordOrName reports whether the sub-code means only that the name or
// the password is wrong, rather than something about the account's state.
func (d ADDiagnostic) passwordOrName() bool { return d.SubCode == "52e" || d.SubCode == "525" }

func isHexByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isWordByte(c byte) bool {
	return isHexByte(c) || c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' || c == '_'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return s != ""
}
