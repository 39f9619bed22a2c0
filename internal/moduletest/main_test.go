package moduletest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/pyharness/pythontest"
)

// Interpreters the tests run modules with, made once for the package:
//   - plainPython: a virtualenv without Flask and without the premium
//     package, so every stand-in is used;
//   - premiumPython: a virtualenv with the test-only premium package in
//     testdata/premium;
//   - brokenPremiumPython: one whose premium package fails to import;
//   - flaskPython: the system Python with Debian's python3-flask.
var (
	setupErr            error
	plainPython         string
	premiumPython       string
	brokenPremiumPython string
	flaskPython         string
	flaskErr            error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cfyauth-moduletest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	setupErr = setupPythons(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func setupPythons(dir string) error {
	base, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		if base, err = exec.LookPath("python3"); err != nil {
			return fmt.Errorf("python3 is not on PATH")
		}
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		return err
	}
	if plainPython, err = makeVenv(base, filepath.Join(dir, "plain"), ""); err != nil {
		return err
	}
	if premiumPython, err = makeVenv(base, filepath.Join(dir, "premium"), filepath.Join(testdata, "premium")); err != nil {
		return err
	}
	if brokenPremiumPython, err = makeVenv(base, filepath.Join(dir, "broken"), filepath.Join(testdata, "premium_broken")); err != nil {
		return err
	}
	flaskPython = "/usr/bin/python3"
	if out, err := exec.Command(flaskPython, "-I", "-c", "import flask").CombinedOutput(); err != nil {
		flaskErr = fmt.Errorf("%s cannot import flask: %v: %s", flaskPython, err, out)
	}
	return nil
}

// makeVenv creates a virtualenv without pip and copies the packages under
// packages (if set) into its site-packages.
func makeVenv(base, dir, packages string) (string, error) {
	if out, err := exec.Command(base, "-m", "venv", "--without-pip", dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("create virtualenv %s: %v: %s", dir, err, out)
	}
	python := filepath.Join(dir, "bin", "python")
	if packages == "" {
		return python, nil
	}
	out, err := exec.Command(python, "-I", "-c", "import site; print(site.getsitepackages()[0])").Output()
	if err != nil {
		return "", fmt.Errorf("find site-packages of %s: %v", dir, err)
	}
	site := strings.TrimSpace(string(out))
	if out, err := exec.Command("cp", "-r", filepath.Join(packages, "cloudify_premium"), site).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copy the test premium package: %v: %s", err, out)
	}
	return python, nil
}

// requirePythons skips (or, with CFYAUTH_REQUIRE_SERVERS=1, fails) a test
// when the interpreters could not be set up.
func requirePythons(t *testing.T) {
	t.Helper()
	if setupErr == nil {
		return
	}
	pythontest.SkipOrFail(t, fmt.Sprintf("no Python for the tests (%v); install it with: %s", setupErr, pythontest.InstallHint))
}

func requireFlask(t *testing.T) {
	t.Helper()
	requirePythons(t)
	if flaskErr == nil {
		return
	}
	pythontest.SkipOrFail(t, fmt.Sprintf("%v; install it with: %s", flaskErr, pythontest.InstallHint))
}

// examplePath returns the path of a module under examples/authenticators.
func examplePath(t *testing.T, rel string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "authenticators", rel)
}

func readExample(t *testing.T, rel string) modules.Source {
	t.Helper()
	src, err := modules.ReadSourceFile(examplePath(t, rel))
	if err != nil {
		t.Fatalf("read example %s: %v", rel, err)
	}
	return src
}

// inlineModule writes source to a module file named name.py and reads it.
func inlineModule(t *testing.T, name, source string) modules.Source {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".py")
	if err := os.WriteFile(path, []byte(source), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := modules.ReadSourceFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return src
}

// runOne runs one request through src with the plain interpreter.
func runOne(t *testing.T, src modules.Source, req Request, opts Options) (*Report, *CaseResult) {
	t.Helper()
	requirePythons(t)
	if opts.Python == "" {
		opts.Python = plainPython
	}
	rep, err := Run(context.Background(), src, []Case{{Name: "request", Request: req}}, opts)
	if err != nil {
		t.Fatalf("run %s: %v", src.Name, err)
	}
	if len(rep.Cases) != 1 {
		t.Fatalf("got %d case results, want 1", len(rep.Cases))
	}
	return rep, &rep.Cases[0]
}

func stepByID(t *testing.T, p Phase, id string) (status, summary string) {
	t.Helper()
	for _, s := range p.Steps {
		if s.ID == id {
			return string(s.Status), s.Summary
		}
	}
	t.Fatalf("no step %q in %+v", id, p.Steps)
	return "", ""
}

// shortTimeout bounds each step in tests of hanging modules. It leaves room
// for a slow Python start on a loaded machine, and no assertion depends on
// how long a run took.
const shortTimeout = 2 * time.Second
