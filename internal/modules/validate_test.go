package modules

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/report"
)

func python(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			tb.Fatal("python3 is required: apt-get install python3")
		}
		tb.Skip("python3 not found; install it with apt-get install python3")
	}
	return path
}

func examplesDir(tb testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "authenticators")
}

func candidateFromText(name, text string) Candidate {
	src := Source{Origin: name + ".py", Name: name, Data: []byte(text)}
	err := CheckBytes(&src)
	return Candidate{Source: src, ReadErr: err}
}

func statusOf(v Validation, id string) report.Status {
	for _, c := range v.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return ""
}

func TestValidateAuthBaseResolution(t *testing.T) {
	py := python(t)
	cases := []struct {
		name, text string
		want       report.Status
	}{
		{"direct_import", `
from cloudify_premium.authentication.auth_base import AuthBase
class A(AuthBase):
    def _authenticate_request(self, request): return None
configure = A().configure
`, report.Pass},
		{"module_attribute", `
from cloudify_premium.authentication import auth_base
class A(auth_base.AuthBase):
    def _authenticate_request(self, request): return None
configure = A().configure
`, report.Pass},
		{"aliased_import", `
from cloudify_premium.authentication.auth_base import AuthBase as Base
class A(Base):
    def _authenticate_request(self, request): return None
configure = A().configure
`, report.Pass},
		{"local_intermediate", `
import cloudify_premium.authentication.auth_base
class Mid(cloudify_premium.authentication.auth_base.AuthBase):
    def _authenticate_request(self, request): return None
class Leaf(Mid):
    pass
def configure(logger): return Leaf()
`, report.Pass},
		{"cyclic_local_bases", `
class A(B): pass
class B(A): pass
configure = 1
`, report.Fail},
		{"foreign_base", `
from elsewhere import Base
class A(Base):
    def _authenticate_request(self, request): return None
configure = A().configure
`, report.Warn},
		{"no_handler", `
from cloudify_premium.authentication.auth_base import AuthBase
class A(AuthBase): pass
configure = A().configure
`, report.Fail},
	}
	var candidates []Candidate
	for _, c := range cases {
		candidates = append(candidates, candidateFromText(c.name, c.text))
	}
	results, interp, err := Validate(context.Background(), candidates, ValidateOptions{Python: py})
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if interp.Version == "" {
		t.Error("interpreter version not reported")
	}
	for i, c := range cases {
		if got := statusOf(results[i], "authbase"); got != c.want {
			t.Errorf("%s: authbase %s, want %s (%+v)", c.name, got, c.want, results[i].Checks)
		}
	}
}

func TestValidateConfigureForms(t *testing.T) {
	py := python(t)
	base := "from cloudify_premium.authentication.auth_base import AuthBase\nclass A(AuthBase):\n    def _authenticate_request(self, r): return None\n"
	cases := map[string]report.Status{
		"configure = A().configure\n":                                        report.Pass,
		"def configure(logger):\n    return A()\n":                           report.Pass,
		"try:\n    configure = A().configure\nexcept Exception:\n    pass\n": report.Pass,
		"from helpers import configure\n":                                    report.Pass,
		"configured = A().configure\n":                                       report.Fail,
		"def setup():\n    configure = A().configure\n":                      report.Fail,
	}
	var names []string
	var candidates []Candidate
	for tail := range cases {
		names = append(names, tail)
		candidates = append(candidates, candidateFromText(fmt.Sprintf("m%d", len(names)), base+tail))
	}
	results, _, err := Validate(context.Background(), candidates, ValidateOptions{Python: py})
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for i, tail := range names {
		if got := statusOf(results[i], "configure"); got != cases[tail] {
			t.Errorf("%q: configure %s, want %s", tail, got, cases[tail])
		}
	}
}

func TestValidateShadowingInstalledModule(t *testing.T) {
	py := python(t)
	// "email" is in the standard library of every supported Python.
	src := Source{Origin: "x.py", Name: "email", Data: []byte("configure = 1\n")}
	_ = CheckBytes(&src)
	results, _, err := Validate(context.Background(), []Candidate{{Source: src}}, ValidateOptions{Python: py})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Status != report.Fail || statusOf(results[0], "name") != report.Fail {
		t.Errorf("email was not rejected: %+v", results[0].Checks)
	}
}

// pythonAtLeast38 reports whether py can apply another version's grammar.
func pythonAtLeast38(t *testing.T, py string) bool {
	t.Helper()
	err := exec.Command(py, "-c", "import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)").Run()
	return err == nil
}

// An interpreter used instead of an older manager's checks the manager's
// grammar, and its summary names the version it checked and the
// interpreter it checked with.
func TestValidateSyntaxOfManagerVersion(t *testing.T) {
	py := python(t)
	if !pythonAtLeast38(t, py) {
		t.Skip("python3 is older than 3.8 and cannot check another version's grammar")
	}
	const walrus = `from cloudify_premium.authentication.auth_base import AuthBase, UserData
class A(AuthBase):
    def _authenticate_request(self, request):
        if (credentials := request.authorization):
            return UserData(credentials.username)
configure = A().configure
`
	cands := []Candidate{candidateFromText("walrus_auth", walrus)}
	results, interp, err := Validate(context.Background(), cands, ValidateOptions{Python: py, SyntaxVersion: "3.6"})
	if err != nil {
		t.Fatal(err)
	}
	syntax := results[0].Checks[3]
	if syntax.ID != "syntax" || syntax.Status != report.Fail {
		t.Fatalf("walrus as Python 3.6: %+v, want a failed syntax check", results[0].Checks)
	}
	if !strings.Contains(syntax.Summary, "syntax error for Python 3.6 (checked with ") {
		t.Errorf("summary = %q, want it to name Python 3.6 and the interpreter", syntax.Summary)
	}
	if strings.Contains(syntax.Hint, "manager's Python 3.1") {
		t.Errorf("hint = %q claims the manager's Python", syntax.Hint)
	}
	if interp.SyntaxVersion != "3.6" || interp.cacheKey() == interp.Version {
		t.Errorf("interpreter = %+v, want syntax version 3.6 in its cache key", interp)
	}

	good := []Candidate{candidateFromText("plain_auth", strings.Replace(walrus,
		"if (credentials := request.authorization):", "credentials = request.authorization\n        if credentials:", 1))}
	results, _, err = Validate(context.Background(), good, ValidateOptions{Python: py, SyntaxVersion: "3.6"})
	if err != nil {
		t.Fatal(err)
	}
	if got := results[0].Checks[3]; got.Status != report.Pass || !strings.HasPrefix(got.Summary, "checked as Python 3.6 syntax with ") {
		t.Errorf("plain module as Python 3.6: %+v", got)
	}

	results, _, err = Validate(context.Background(), cands, ValidateOptions{Python: py})
	if err != nil {
		t.Fatal(err)
	}
	if got := statusOf(results[0], "syntax"); got != report.Pass {
		t.Errorf("walrus with the interpreter's own grammar: syntax %s, want pass", got)
	}
}

// BenchmarkValidate100 validates 100 modules in one batch, the way
// 'cfyauth validate' does; one op is the whole batch, including the Python
// start.
func BenchmarkValidate100(b *testing.B) {
	py := python(b)
	data, err := os.ReadFile(filepath.Join(examplesDir(b), "header_token_auth.py"))
	if err != nil {
		b.Fatal(err)
	}
	var candidates []Candidate
	for i := 0; i < 100; i++ {
		src := Source{Origin: "bench", Name: fmt.Sprintf("bench_%03d", i), Data: data}
		_ = CheckBytes(&src)
		candidates = append(candidates, Candidate{Source: src})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		results, _, err := Validate(context.Background(), candidates, ValidateOptions{Python: py})
		if err != nil {
			b.Fatal(err)
		}
		if results[99].Status != report.Pass {
			b.Fatalf("module 99: %+v", results[99].Checks)
		}
	}
}
