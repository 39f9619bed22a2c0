package ldapprobe

import (
	"strings"
	"testing"
)

// TestParseADDiagnostic reads the diagnostic messages real servers send
// with result 49. The Samba 4.17 strings were captured from the test
// domain controller; the Windows ones follow the layout Windows Server
// domain controllers send, including the trailing NUL byte.
func TestParseADDiagnostic(t *testing.T) {
	tests := []struct {
		name, text        string
		ok                bool
		subCode, errorHex string
		comment           string
		meaning           string
	}{
		{"samba wrong password", "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1",
			true, "52e", "80090308", "AcceptSecurityContext error", "the password is wrong"},
		{"samba disabled", "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 533, v1db1",
			true, "533", "80090308", "AcceptSecurityContext error", "the account is disabled (AD sub-code 533)"},
		{"samba must change", "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 773, v1db1",
			true, "773", "80090308", "AcceptSecurityContext error", "must be changed"},
		{"samba expired", "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 701, v1db1",
			true, "701", "80090308", "AcceptSecurityContext error", "the account has expired"},
		{"samba locked", "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 775, v1db1",
			true, "775", "80090308", "AcceptSecurityContext error", "locked out"},
		{"windows unknown user", "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 525, v4563\x00",
			true, "525", "80090308", "AcceptSecurityContext error", "does not exist"},
		{"windows logon hours", "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 530, v3839\x00",
			true, "530", "80090308", "AcceptSecurityContext error", "time of day"},
		{"windows workstation", "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 531, v3839\x00",
			true, "531", "80090308", "AcceptSecurityContext error", "from this computer"},
		{"windows password expired", "80090308: LdapErr: DSID-0C0903C5, comment: AcceptSecurityContext error, data 532, v2580\x00",
			true, "532", "80090308", "AcceptSecurityContext error", "password has expired"},
		{"windows too many groups", "80090308: LdapErr: DSID-0C0903C5, comment: AcceptSecurityContext error, data 568, v2580\x00",
			true, "568", "80090308", "AcceptSecurityContext error", "too many groups"},
		{"upper case sub-code", "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52E, v1db1",
			true, "52e", "80090308", "AcceptSecurityContext error", "the password is wrong"},
		{"unknown sub-code", "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 1329, v1db1",
			true, "1329", "80090308", "AcceptSecurityContext error", "AD sub-code 1329, which cfyauth does not know"},
		{"openldap sends nothing", "", false, "", "", "", ""},
		{"no sub-code", "simple bind failed: invalid password", false, "", "", "", ""},
		{"the word metadata", "metadata 52e mismatch", false, "", "", "", ""},
		{"data without hex", "data 52x, v1db1", false, "", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := ParseADDiagnostic(tc.text)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, d)
			}
			if !ok {
				return
			}
			if d.SubCode != tc.subCode {
				t.Errorf("sub-code %q, want %q", d.SubCode, tc.subCode)
			}
			if d.Error != tc.errorHex {
				t.Errorf("error %q, want %q", d.Error, tc.errorHex)
			}
			if d.Comment != tc.comment {
				t.Errorf("comment %q, want %q", d.Comment, tc.comment)
			}
			if !strings.Contains(d.Meaning(), tc.meaning) {
				t.Errorf("meaning %q does not contain %q", d.Meaning(), tc.meaning)
			}
		})
	}
}

// TestADSubCodesHaveFixes checks that every documented sub-code is known
// and that its fix names who failed to bind.
func TestADSubCodesHaveFixes(t *testing.T) {
	for _, code := range []string{"525", "52e", "530", "531", "532", "533", "568", "701", "773", "775"} {
		d := ADDiagnostic{SubCode: code}
		if !d.Known() {
			t.Errorf("sub-code %s is not known", code)
		}
		for _, who := range []string{"the service account svc-bind", "the user alice"} {
			if fix := d.Fix(who); !strings.Contains(fix, who) {
				t.Errorf("fix of %s %q does not name %q", code, fix, who)
			}
		}
		if !strings.Contains(d.Meaning(), "AD sub-code "+code) {
			t.Errorf("meaning of %s %q does not name the sub-code", code, d.Meaning())
		}
	}
}

func TestExplainDiagnosticOnlyForInvalidCredentials(t *testing.T) {
	text := "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 533, v1db1"
	if meaning, d := explainDiagnostic(49, text); d == nil || !strings.Contains(meaning, "disabled") {
		t.Errorf("result 49: %q %+v", meaning, d)
	}
	if meaning, d := explainDiagnostic(50, text); d != nil || meaning != "" {
		t.Errorf("result 50 decoded as an AD bind failure: %q", meaning)
	}
}

// FuzzParseADDiagnostic feeds arbitrary server text to the parser: it must
// never panic, and a sub-code it returns must be hexadecimal text that the
// message holds after "data ".
func FuzzParseADDiagnostic(f *testing.F) {
	f.Add("80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1")
	f.Add("80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 775, v3839\x00")
	f.Add("data ")
	f.Add("xdata 1, data 0")
	f.Add("comment:, data 00000000000")
	f.Fuzz(func(t *testing.T, text string) {
		d, ok := ParseADDiagnostic(text)
		if !ok {
			if d != (ADDiagnostic{}) {
				t.Fatalf("not ok but %+v", d)
			}
			return
		}
		if d.SubCode == "" || len(d.SubCode) > 8 || !isHex(d.SubCode) || strings.ToLower(d.SubCode) != d.SubCode {
			t.Fatalf("sub-code %q is not lower-case hexadecimal of 1 to 8 digits", d.SubCode)
		}
		if !strings.Contains(strings.ToLower(text), "data ") {
			t.Fatalf("sub-code %q from text without \"data \": %q", d.SubCode, text)
		}
		_ = d.Meaning()
		_ = d.Fix("the user x")
	})
}
