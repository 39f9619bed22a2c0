package ldapprobe

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// formatCorpus holds templates whose parse results were checked against
// Python 3.11's string.Formatter().parse; fields lists the field names in
// order, err the ValueError message.
var formatCorpus = []struct {
	template string
	fields   []string
	err      string
}{
	{"uid={username},ou=users,{base_dn}", []string{"username", "base_dn"}, ""},
	{"{username}@{domain}", []string{"username", "domain"}, ""},
	{"(|(sAMAccountName={username})(uid={username}))", []string{"username", "username"}, ""},
	{"{{literal}}", nil, ""},
	{"a}}b", nil, ""},
	{"{}", []string{""}, ""},
	{"{0}", []string{"0"}, ""},
	{"{username!r}", []string{"username"}, ""},
	{"{username:>10}", []string{"username"}, ""},
	{"{username!r:^9}", []string{"username"}, ""},
	{"{a.b}", []string{"a.b"}, ""},
	{"{a[x]}", []string{"a[x]"}, ""},
	{"{a[}]}", []string{"a[}]"}, ""},
	{"{", nil, "Single '{' encountered in format string"},
	{"}", nil, "Single '}' encountered in format string"},
	{"a{", nil, "Single '{' encountered in format string"},
	{"a}b", nil, "Single '}' encountered in format string"},
	{"{username", nil, "expected '}' before end of string"},
	{"{username!", nil, "end of string while looking for conversion specifier"},
	{"{username!r", nil, "unmatched '{' in format spec"},
	{"{username!rx}", nil, "expected ':' after conversion specifier"},
	{"{a{b}}", nil, "unexpected '{' in field name"},
	{"{a:{b}}", []string{"a"}, ""},
	{"{a:{b}", nil, "unmatched '{' in format spec"},
	{"{{{username}}}", []string{"username"}, ""},
	{"x{!r}", []string{""}, ""},
	{"{ {", nil, "unexpected '{' in field name"},
	{"{:}", []string{""}, ""},
	{"{!}", nil, "unmatched '{' in format spec"},
	{"cn={username},ou=Jürgen,{base_dn}", []string{"username", "base_dn"}, ""},
}

func fieldNames(parts []formatPart) []string {
	var names []string
	for _, p := range parts {
		if p.Field != nil {
			names = append(names, p.Field.Name)
		}
	}
	return names
}

func TestParseFormatCorpus(t *testing.T) {
	for _, tc := range formatCorpus {
		parts, err := parseFormat(tc.template)
		if tc.err != "" {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Message != tc.err {
				t.Errorf("parseFormat(%q) error = %v, want %q", tc.template, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseFormat(%q) failed: %v", tc.template, err)
			continue
		}
		if got := fieldNames(parts); !reflect.DeepEqual(got, tc.fields) {
			t.Errorf("parseFormat(%q) fields = %q, want %q", tc.template, got, tc.fields)
		}
	}
}

// TestParseFormatMatchesPython runs the corpus through the machine's
// python3 and compares, so the Go parser cannot drift from CPython's.
func TestParseFormatMatchesPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			t.Fatal("python3 is required but not found")
		}
		t.Skip("python3 not found; install it with apt-get install python3")
	}
	var templates []string
	for _, tc := range formatCorpus {
		templates = append(templates, tc.template)
	}
	input, _ := json.Marshal(templates)
	const program = `
import json, string, sys
out = []
for t in json.load(sys.stdin):
    try:
        out.append({"fields": [f for _, f, _, _ in string.Formatter().parse(t) if f is not None]})
    except ValueError as e:
        out.append({"error": str(e)})
json.dump(out, sys.stdout)
`
	cmd := exec.Command(python, "-c", program)
	cmd.Stdin = strings.NewReader(string(input))
	output, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var results []struct {
		Fields []string `json:"fields"`
		Error  string   `json:"error"`
	}
	if err := json.Unmarshal(output, &results); err != nil {
		t.Fatalf("python3 output: %v", err)
	}
	for i, tc := range formatCorpus {
		parts, err := parseFormat(tc.template)
		want := results[i]
		if want.Error != "" {
			if err == nil || err.Error() != want.Error {
				t.Errorf("%q: Go error %v, Python error %q", tc.template, err, want.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: Go error %v, Python parses it", tc.template, err)
			continue
		}
		if got := fieldNames(parts); len(got)+len(want.Fields) > 0 && !reflect.DeepEqual(got, want.Fields) {
			t.Errorf("%q: Go fields %q, Python fields %q", tc.template, got, want.Fields)
		}
	}
}

func TestValidatePlaceholders(t *testing.T) {
	tests := []struct {
		key, value string
		invalid    []string
		parseError bool
	}{
		{KeyBindFormat, "uid={username},ou=people,{base_dn}", nil, false},
		{KeyBindFormat, "{username}@{domain}", nil, false},
		{KeyBindFormat, "uid={user},{base_dn}", []string{"user"}, false},
		{KeyBindFormat, "{object_dn}", []string{"object_dn"}, false},
		{KeyGroupDN, "ou=groups,{base_dn}", nil, false},
		{KeyGroupDN, "ou=groups,{username}", []string{"username"}, false},
		{KeyGroupMemberFilter, "(member={object_dn})", nil, false},
		// The manager's code allows only object_dn here, whatever its
		// documentation says.
		{KeyGroupMemberFilter, "(member={object_dn})(uid={username})", []string{"username"}, false},
		{KeyUserFilter, "(&(uid={username})(memberOf=cn=x,{group_dn}))", nil, false},
		{KeyUserFilter, "(uid={username})(o={domain})", []string{"domain"}, false},
		{KeyUserFilter, "(uid={})", []string{""}, false},
		{KeyUserFilter, "(uid={username.upper})", []string{"username.upper"}, false},
		{KeyUserFilter, "(uid={username!r})", nil, false},
		{KeyUserFilter, "(uid={username)", nil, true},
		{KeyBaseDN, "{anything}", nil, false},
	}
	for _, tc := range tests {
		err := ValidatePlaceholders(tc.key, tc.value)
		if tc.invalid == nil && !tc.parseError {
			if err != nil {
				t.Errorf("ValidatePlaceholders(%s, %q) = %v, want nil", tc.key, tc.value, err)
			}
			continue
		}
		var pe *PlaceholderError
		if !errors.As(err, &pe) {
			t.Errorf("ValidatePlaceholders(%s, %q) = %v, want a PlaceholderError", tc.key, tc.value, err)
			continue
		}
		if tc.parseError != (pe.Parse != nil) {
			t.Errorf("ValidatePlaceholders(%s, %q): parse error %v, want parse error %v", tc.key, tc.value, pe.Parse, tc.parseError)
		}
		if !reflect.DeepEqual(pe.Invalid, tc.invalid) {
			t.Errorf("ValidatePlaceholders(%s, %q) invalid = %q, want %q", tc.key, tc.value, pe.Invalid, tc.invalid)
		}
		if !reflect.DeepEqual(pe.Allowed, AllowedFields[tc.key]) {
			t.Errorf("ValidatePlaceholders(%s, %q) allowed = %q, want %q", tc.key, tc.value, pe.Allowed, AllowedFields[tc.key])
		}
		if !strings.Contains(err.Error(), strings.Join(AllowedFields[tc.key], ", ")) && pe.Parse == nil {
			t.Errorf("message %q does not list the allowed names", err.Error())
		}
	}
}

func TestConversionsAndSpecsLikePython(t *testing.T) {
	tests := []struct {
		value string
		conv  rune
		spec  string
		want  string
	}{
		{"xy", 's', "<6", "xy    "},
		{"hello", 0, "*^7.3", "**hel**"},
		{"it's", 'r', "", `"it's"`},
		{"Jürgen", 'a', "", `'J\xfcrgen'`},
		{"alice", 'r', "", "'alice'"},
		{"ab", 0, ">4", "  ab"},
	}
	for _, tc := range tests {
		got, err := applyConversion(tc.value, tc.conv)
		if err == nil {
			got, err = applySpec(got, tc.spec)
		}
		if err != nil || got != tc.want {
			t.Errorf("format %q !%c :%s = %q, %v; want %q", tc.value, tc.conv, tc.spec, got, err, tc.want)
		}
	}
	for _, spec := range []string{"d", "=5", "+5", ".x", "{x}"} {
		if _, err := applySpec("v", spec); err == nil {
			t.Errorf("applySpec(%q) accepted a spec Python rejects for strings", spec)
		}
	}
	if _, err := applyConversion("v", 'x'); err == nil {
		t.Error("applyConversion accepted !x")
	}
}

// FuzzTemplate checks that parsing never panics, and that every template
// the manager's validation accepts renders with the allowed values.
func FuzzTemplate(f *testing.F) {
	for _, tc := range formatCorpus {
		f.Add(tc.template)
	}
	f.Add("(&(objectClass=person)(|(uid={username})(mail={username}*)))")
	f.Fuzz(func(t *testing.T, template string) {
		_, _ = parseFormat(template)
		for key, allowed := range AllowedFields {
			if ValidatePlaceholders(key, template) != nil {
				continue
			}
			vars := map[string]fieldValue{}
			for _, name := range allowed {
				vars[name] = fieldValue{text: "v(*)", escape: EscapeFilterValue}
			}
			parts, _ := parseFormat(template)
			plain := true
			for _, p := range parts {
				if p.Field != nil && (p.Field.Spec != "" || p.Field.Conversion != 0) {
					plain = false
				}
			}
			if _, _, err := renderTemplate(key, template, vars); err != nil && plain {
				t.Errorf("%s %q passes validation but does not render: %v", key, template, err)
			}
		}
	})
}
