package moduletest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/report"
)

// A password equal to a word of the harness's messages (a JSON key, an
// outcome, the user name) must leave the report and the verdict intact:
// only what the module produced is redacted.
func TestPasswordEqualToHarnessWord(t *testing.T) {
	src := readExample(t, "meme_auth.py")
	for _, password := range []string{"user", "id", "a", "outcome", "meme"} {
		t.Run(password, func(t *testing.T) {
			rep, c := runOne(t, src, Request{User: "meme", Password: password}, Options{})
			if c.Outcome != OutcomeUser {
				t.Errorf("outcome = %q, want user", c.Outcome)
			}
			if !c.Passed() {
				t.Errorf("verdict = %+v, want pass", c.Verdict)
			}
			if len(rep.Load.Steps) != 2 || len(c.Steps) != 2 {
				t.Errorf("steps: load %d, request %d, want 2 and 2", len(rep.Load.Steps), len(c.Steps))
			}
			if rep.AuthBase != "stand-in" {
				t.Errorf("auth_base = %q, want stand-in", rep.AuthBase)
			}
			doc, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var generic map[string]any
			if err := json.Unmarshal(doc, &generic); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"cases", "load", "interpreter", "configured"} {
				if _, ok := generic[key]; !ok {
					t.Errorf("the report lacks the key %q: %s", key, doc)
				}
			}
			// Only the request's Authorization header is masked, unless the
			// module returned the password itself (as the user name).
			if n := strings.Count(string(doc), redacted); password != "meme" && n != 1 {
				t.Errorf("the report has %d redaction markers, want 1: %s", n, doc)
			}
		})
	}
}

// With the password equal to the user name, the user the module returned
// is redacted in the report, yet the case's expectation is compared with
// the value the module returned and passes.
func TestExpectUserEqualToPassword(t *testing.T) {
	requirePythons(t)
	src := readExample(t, "meme_auth.py")
	cases := []Case{
		{Name: "meme", Request: Request{User: "meme", Password: "meme"}, Expect: &Expectation{User: "meme"}},
		{Name: "fields", Request: Request{User: "meme", Password: "meme"}, Expect: &Expectation{Fields: map[string]any{"username": "meme"}}},
		{Name: "other", Request: Request{User: "meme", Password: "meme"}, Expect: &Expectation{User: "bob"}},
	}
	rep, err := Run(context.Background(), src, cases, Options{Python: plainPython})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []report.Status{report.Pass, report.Pass, report.Fail} {
		if got := rep.Cases[i].Verdict.Status; got != want {
			t.Errorf("case %q: verdict %s (%s), want %s", cases[i].Name, got, rep.Cases[i].Verdict.Summary, want)
		}
	}
	if got := rep.Cases[0].User.Username; got != redacted {
		t.Errorf("reported username = %v, want it redacted", got)
	}
	if got := rep.Cases[2].Verdict.Summary; got != "expected user bob; got user [redacted]" {
		t.Errorf("mismatch summary = %q", got)
	}
	doc, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "user_unredacted") {
		t.Errorf("the report carries the unredacted user: %s", doc)
	}
}

// The module's own text is still redacted when the password is a short
// word that the harness's messages contain.
func TestShortPasswordStillRedactsModuleText(t *testing.T) {
	src := readExample(t, "broken/leaks_secrets.py")
	_, c := runOne(t, src, Request{User: "alice", Password: "id"}, Options{})
	if c.Outcome != OutcomeUser {
		t.Fatalf("outcome = %q, want user", c.Outcome)
	}
	if len(c.Logs) == 0 || !strings.Contains(c.Logs[0].Message, "with password [redacted]") {
		t.Errorf("log lines = %+v, want the password redacted", c.Logs)
	}
	note, _ := c.User.field("note")
	if note != "password was [redacted]" {
		t.Errorf("note field = %v, want the password redacted", note)
	}
}
