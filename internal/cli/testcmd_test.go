package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/pyharness/pythontest"
)

func examplesDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "authenticators")
}

// runTestCommandLine runs one cfyauth command line with stdin and the environment
// given, and returns the exit code, stdout and stderr.
func runTestCommandLine(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	stdout, stderr := &bytes.Buffer{}, &bytes.Buffer{}
	streams := &IOStreams{In: strings.NewReader(stdin), Out: stdout, ErrOut: stderr}
	app := NewApp(streams, func(name string) string { return env[name] })
	code := app.Run(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

func TestTestCommandExitCodes(t *testing.T) {
	python := pythontest.Require(t)
	examples := examplesDir(t)
	meme := filepath.Join(examples, "meme_auth.py")
	dir := t.TempDir()
	fake := filepath.Join(dir, "fakepython")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nif [ \"$1\" = -c ]; then printf 3.6.15; exit 0; fi\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CFYAUTH_PASSWORD": "Exit-Pass-1"}

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"authenticated", []string{"test", meme, "--user", "meme"}, 0},
		{"not authenticated", []string{"test", meme, "--user", "bob"}, 1},
		{"not handled", []string{"test", meme}, 1},
		{"module raises", []string{"test", filepath.Join(examples, "broken", "exits.py")}, 1},
		{"module hangs", []string{"test", filepath.Join(examples, "broken", "hangs.py"), "--timeout", "2s"}, 1},
		{"warnings with --strict", []string{"--strict", "test", filepath.Join(examples, "broken", "extra_fields.py"), "--user", "a"}, 1},
		{"warnings without --strict", []string{"test", filepath.Join(examples, "broken", "extra_fields.py"), "--user", "a"}, 0},
		{"missing file", []string{"test", filepath.Join(dir, "missing.py")}, 2},
		{"no argument", []string{"test"}, 2},
		{"bad flag", []string{"test", meme, "--timeout", "-1s"}, 2},
		{"password flag", []string{"test", meme, "--password", "x"}, 2},
		{"cases and user", []string{"test", meme, "--cases", "c.yaml", "--user", "a"}, 2},
		{"python cannot run the harness", []string{"test", meme}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--python", python}, tt.args...)
			if tt.want == 3 {
				args[1] = fake
			}
			code, stdout, stderr := runTestCommandLine(t, "", env, args...)
			if code != tt.want {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.want, stdout, stderr)
			}
			if strings.Contains(stdout+stderr, "Exit-Pass-1") {
				t.Errorf("the password appears in the output")
			}
		})
	}
}
