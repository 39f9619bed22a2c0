package moduletest

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/report"
)

func TestRequestCheck(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string // empty: valid
	}{
		{"empty is valid", Request{}, ""},
		{"full is valid", Request{User: "a", Password: "p", Method: "POST", Path: "/x?y=1", RemoteAddr: "::1",
			Headers: []Header{{Name: "X-A", Value: "v"}}, Body: json.RawMessage(`{}`)}, ""},
		{"user and bearer", Request{User: "a", Bearer: "t"}, "not both"},
		{"colon in user", Request{User: "a:b"}, "contains a colon"},
		{"line break in user", Request{User: "a\nb"}, "line break"},
		{"bad method", Request{Method: "GE T"}, "invalid HTTP method"},
		{"relative path", Request{Path: "api"}, "must start with /"},
		{"space in path", Request{Path: "/a b"}, "white space"},
		{"bad address", Request{RemoteAddr: "example.org"}, "not an IP address"},
		{"bad header name", Request{Headers: []Header{{Name: "X:Y", Value: "v"}}}, "invalid header name"},
		{"line break in header", Request{Headers: []Header{{Name: "X-A", Value: "v\r\nX-B: w"}}}, "line break"},
		{"authorization twice", Request{User: "a", Headers: []Header{{Name: "authorization", Value: "Basic x"}}}, "cannot be combined"},
		{"bad JSON", Request{Body: json.RawMessage(`{`)}, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A header value may be secret, so no error repeats it.
func TestRequestCheckNeverEchoesHeaderValues(t *testing.T) {
	err := (&Request{Headers: []Header{{Name: "X-Token", Value: "Hidden-Value\n"}}}).Check()
	if err == nil || strings.Contains(err.Error(), "Hidden-Value") {
		t.Errorf("err = %v", err)
	}
}

func TestRequestSpecAndSummary(t *testing.T) {
	r := Request{User: "alice", Password: "Pw-1", Body: json.RawMessage(`{"a":1}`),
		Headers: []Header{{Name: "X-Token", Value: "T-9", Secret: true}, {Name: "Cookie", Value: "s=1"}, {Name: "X-Plain", Value: "p"}}}
	spec := r.spec()
	if spec.Method != "POST" || spec.Path != DefaultPath || spec.RemoteAddr != DefaultRemoteAddr {
		t.Errorf("defaults: %+v", spec)
	}
	creds := base64.StdEncoding.EncodeToString([]byte("alice:Pw-1"))
	want := map[string]string{"Authorization": "Basic " + creds, "Content-Type": "application/json", "Content-Length": "7"}
	for _, h := range spec.Headers {
		if v, ok := want[h[0]]; ok && v != h[1] {
			t.Errorf("header %s = %q, want %q", h[0], h[1], v)
		}
		delete(want, h[0])
	}
	if len(want) > 0 {
		t.Errorf("headers missing from the spec: %v", want)
	}

	summary := r.Summary()
	if summary.Authorization != "basic" || summary.User != "alice" || summary.BodyBytes != 7 {
		t.Errorf("summary = %+v", summary)
	}
	doc, _ := json.Marshal(summary)
	for _, secret := range []string{"Pw-1", "T-9", "s=1", creds} {
		if strings.Contains(string(doc), secret) {
			t.Errorf("the summary shows %q: %s", secret, doc)
		}
	}
	if !strings.Contains(string(doc), `"X-Plain","value":"p"`) {
		t.Errorf("a plain header is masked: %s", doc)
	}
	secrets := strings.Join(r.secrets(), "|")
	for _, s := range []string{"Pw-1", creds, "T-9", "s=1"} {
		if !strings.Contains(secrets, s) {
			t.Errorf("secrets %q lack %q", secrets, s)
		}
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor([]string{"abc", "", "abcdef", "abc"})
	if got := r.String("x abcdef y abc z"); got != "x [redacted] y [redacted] z" {
		t.Errorf("String = %q", got)
	}
	if got := r.Truncated("tail ab"); got != "tail [redacted]" {
		t.Errorf("Truncated = %q", got)
	}
	// One pass: the marker that replaced a longer secret is not rewritten
	// by a secret it contains.
	short := newRedactor([]string{"a", "Zebra"})
	if got := short.String("a Zebra"); got != "[redacted] [redacted]" {
		t.Errorf("String with a one-letter secret = %q", got)
	}
}

func TestVerdictDescribesOutcome(t *testing.T) {
	user := &User{Username: "alice", Fields: []Field{{Name: "username", Value: "alice"}, {Name: "groups", Value: []any{"a"}}}}
	tests := []struct {
		name   string
		c      CaseResult
		expect *Expectation
		pass   bool
		want   string
	}{
		{"user", CaseResult{Outcome: OutcomeUser, User: user}, nil, true, "authenticated as alice"},
		{"no user", CaseResult{Outcome: OutcomeNoUser}, nil, false, "returned None"},
		{"response", CaseResult{Outcome: OutcomeResponse, Response: &Response{Status: 401}}, nil, false, "status 401"},
		{"sys.exit", CaseResult{Outcome: OutcomeError, Phase: Phase{Error: &ModuleError{Type: "SystemExit", Message: "the module called sys.exit(3)"}}}, nil, false, "not authenticated: the module called sys.exit(3)"},
		{"timeout", CaseResult{Outcome: OutcomeTimeout, stopReason: "x did not return"}, nil, false, "x did not return"},
		{"expect user met", CaseResult{Outcome: OutcomeUser, User: user}, &Expectation{User: "alice", Fields: map[string]any{"groups": []any{"a"}}}, true, "got user alice as expected"},
		{"expect other user", CaseResult{Outcome: OutcomeUser, User: user}, &Expectation{User: "bob"}, false, "expected user bob; got user alice"},
		{"expect field value", CaseResult{Outcome: OutcomeUser, User: user}, &Expectation{Fields: map[string]any{"groups": []any{"b"}}}, false, `expected field groups to be ["b"]; got ["a"]`},
		{"expect missing field", CaseResult{Outcome: OutcomeUser, User: user}, &Expectation{Fields: map[string]any{"email": "x"}}, false, "no such field"},
		{"expect status", CaseResult{Outcome: OutcomeResponse, Response: &Response{Status: 403}}, &Expectation{Status: 401}, false, "expected status 401; got a response with status 403"},
		{"expect no user, got error", CaseResult{Outcome: OutcomeError, Phase: Phase{Error: &ModuleError{Type: "KeyError", Message: "'x'", File: "/m.py", Line: 3}}}, &Expectation{Outcome: OutcomeNoUser}, false, "expected no user; got an exception (KeyError: 'x' at /m.py:3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verdict(&tt.c, tt.expect)
			if (v.Status == report.Pass) != tt.pass {
				t.Errorf("status = %s, want pass=%v", v.Status, tt.pass)
			}
			if !strings.Contains(v.Summary, tt.want) {
				t.Errorf("summary %q does not contain %q", v.Summary, tt.want)
			}
		})
	}
}

func TestCredentialHeaderSecrets(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("meme:Hdr-Pass-7"))
	r := Request{Headers: []Header{
		{Name: "Authorization", Value: "Basic " + basic, Secret: true},
		{Name: "Cookie", Value: `theme=dark; session="Cookie-Secret-5"`, Secret: true},
		{Name: "Proxy-Authorization", Value: "Bearer Proxy-Tok-1", Secret: true},
		{Name: "X-Plain", Value: "visible"},
	}}
	secrets := r.secrets()
	for _, want := range []string{"Hdr-Pass-7", "meme:Hdr-Pass-7", basic, "dark", "Cookie-Secret-5", "Proxy-Tok-1"} {
		if !slices.Contains(secrets, want) {
			t.Errorf("secrets %q lack %q", secrets, want)
		}
	}
	if slices.Contains(secrets, "visible") || slices.Contains(secrets, "meme") {
		t.Errorf("secrets %q contain a value that is not secret", secrets)
	}
}
