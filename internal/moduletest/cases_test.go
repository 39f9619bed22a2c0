package moduletest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

func TestParseCasesReadsEveryField(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw.txt"), []byte("File-Pass-1\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("Tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := `
env:
  B_VAR: two
  A_VAR: one
cases:
  - name: inline password
    user: alice
    password: Inline-1
    headers: {X-B: b, X-A: a}
    secret_headers: {X-Token: t}
    method: post
    path: /api/v3.1/tokens?x=1
    remote_addr: "::1"
    json_body: {k: [1, "two"]}
    expect: {user: alice, fields: {email: a@example.com}}
  - user: bob
    password_file: pw.txt
    expect: {outcome: no_user}
  - name: token
    bearer_file: token
    expect: {status: 401}
`
	file, err := ParseCases([]byte(data), "cases.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(file.Env, ",") != "A_VAR=one,B_VAR=two" {
		t.Errorf("env = %v", file.Env)
	}
	if len(file.Cases) != 3 {
		t.Fatalf("got %d cases", len(file.Cases))
	}
	first := file.Cases[0]
	if first.Request.Password != "Inline-1" || first.Request.Method != "post" || first.Request.RemoteAddr != "::1" {
		t.Errorf("first request = %+v", first.Request)
	}
	if string(first.Request.Body) != `{"k":[1,"two"]}` {
		t.Errorf("body = %s", first.Request.Body)
	}
	headers := first.Request.Headers
	if len(headers) != 3 || headers[0].Name != "X-A" || headers[2].Name != "X-Token" || !headers[2].Secret || headers[0].Secret {
		t.Errorf("headers = %+v, want X-A, X-B plain, then X-Token secret", headers)
	}
	if first.Expect.wantOutcome() != OutcomeUser || first.Expect.Fields["email"] != "a@example.com" {
		t.Errorf("expect = %+v", first.Expect)
	}
	if second := file.Cases[1]; second.Name != "case 2" || second.Request.Password != "File-Pass-1" {
		t.Errorf("second case = %q with password from file %q", second.Name, second.Request.Password)
	}
	if third := file.Cases[2]; third.Request.Bearer != "Tok-1" || third.Expect.wantOutcome() != OutcomeResponse {
		t.Errorf("third case = %+v", third)
	}
}

func TestParseCasesRejectsBadFiles(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "the file is empty"},
		{"not yaml", "cases: [", "invalid YAML"},
		{"unknown top key", "case:\n  - expect: {user: a}\n", `cases.yaml:1: unknown key "case" in the top level`},
		{"unknown case key", "cases:\n  - name: x\n    usr: a\n    expect: {user: a}\n", `cases.yaml:3: unknown key "usr" in case 1`},
		{"unknown expect key", "cases:\n  - expect: {usr: a}\n", `unknown key "usr" in the expect of case 1`},
		{"no cases", "cases: []\n", "no cases"},
		{"no expect", "cases:\n  - name: x\n", `case "x": no expect`},
		{"empty expect", "cases:\n  - expect: {}\n", "expect is empty"},
		{"bad outcome", "cases:\n  - expect: {outcome: maybe}\n", `unknown outcome "maybe"`},
		{"user with other outcome", "cases:\n  - expect: {outcome: no_user, user: a}\n", "names a user, which needs the outcome user, not no_user"},
		{"status with other outcome", "cases:\n  - expect: {outcome: user, status: 401}\n", "names a status, which needs the outcome response, not user"},
		{"user and status", "cases:\n  - name: meme\n    expect: {user: meme, status: 200}\n", `cases.yaml:2: case "meme": expect names both a user and a status`},
		{"bad status", "cases:\n  - expect: {status: 42}\n", "not an HTTP status"},
		{"status not a number", "cases:\n  - name: s\n    expect:\n      status: abc\n", `cases.yaml:4: case "s": expect: status must be an HTTP status code such as 401, not "abc"`},
		{"headers not a mapping", "cases:\n  - headers: [a, b]\n    expect: {user: a}\n", `cases.yaml:2: case 1: headers must be a mapping of header names to values`},
		{"user is a list", "cases:\n  - name: l\n    user: [a]\n    expect: {user: a}\n", `cases.yaml:3: case "l": user must be a single value, not a list`},
		{"fields not a mapping", "cases:\n  - expect: {fields: x}\n", `case 1: expect: fields must be a mapping`},
		{"env value a list", "env: {A: [1]}\ncases:\n  - expect: {user: a}\n", `cases.yaml:1: env: A must be a single value, not a list`},
		{"cases not a list", "cases: {a: b}\n", "cases must be a list"},
		{"password without user", "cases:\n  - password: x\n    expect: {outcome: no_user}\n", "a password needs a user"},
		{"two passwords", "cases:\n  - user: a\n    password: x\n    password_file: f\n    expect: {user: a}\n", "both set"},
		{"missing password file", "cases:\n  - user: a\n    password_file: nope.txt\n    expect: {user: a}\n", "no such file"},
		{"duplicate names", "cases:\n  - name: a\n    expect: {user: a}\n  - name: a\n    expect: {user: a}\n", `two cases are named "a"`},
		{"bad env name", "env: {1X: y}\ncases:\n  - expect: {user: a}\n", "invalid environment variable name"},
		{"bad header", "cases:\n  - headers: {\"X Y\": z}\n    expect: {user: a}\n", `invalid header name "X Y"`},
		{"user and bearer", "cases:\n  - user: a\n    bearer: t\n    expect: {user: a}\n", "not both"},
		{"not a mapping", "cases:\n  - just a string\n", "must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCases([]byte(tt.data), "cases.yaml", t.TempDir())
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if apperr.ExitCodeOf(err) != apperr.ExitUsage {
				t.Errorf("exit code = %d, want 2", apperr.ExitCodeOf(err))
			}
		})
	}
}

// Errors about a secret file never show its content.
func TestParseCasesNeverEchoesSecrets(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("Secret-Content-", 5000)
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ParseCases([]byte("cases:\n  - user: a\n    password_file: big\n    expect: {user: a}\n"), "c.yaml", dir)
	if err == nil || strings.Contains(err.Error(), "Secret-Content") {
		t.Errorf("err = %v, want a size error without the content", err)
	}
}

func TestReadCasesFileErrors(t *testing.T) {
	_, err := ReadCasesFile(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "no such file") || apperr.ExitCodeOf(err) != apperr.ExitUsage {
		t.Errorf("missing file: err = %v", err)
	}
}
