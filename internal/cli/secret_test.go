package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

type secretTestApp struct {
	app    *App
	stderr *bytes.Buffer
}

func newSecretTestApp(stdin string, stdinTTY bool, env map[string]string) *secretTestApp {
	stderr := &bytes.Buffer{}
	streams := &IOStreams{In: strings.NewReader(stdin), Out: &bytes.Buffer{}, ErrOut: stderr, StdinTTY: stdinTTY}
	app := NewApp(streams, func(name string) string { return env[name] })
	app.Global.NonInteractive = !stdinTTY
	return &secretTestApp{app: app, stderr: stderr}
}

func passwordSource() SecretSource {
	return SecretSource{What: "the password of alice", Prompt: "Password for alice: ",
		StdinFlag: "password-stdin", FileFlag: "password-file", EnvVar: "CFYAUTH_PASSWORD"}
}

func TestReadSecretSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("From-File\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CFYAUTH_PASSWORD": "From-Env"}

	stdin := passwordSource()
	stdin.Stdin = true
	got, err := readSecret(newSecretTestApp("From-Stdin\n", false, env).app, stdin)
	if err != nil || got != "From-Stdin" {
		t.Errorf("stdin: got %q, %v", got, err)
	}

	fromFile := passwordSource()
	fromFile.File = file
	got, err = readSecret(newSecretTestApp("", false, env).app, fromFile)
	if err != nil || got != "From-File" {
		t.Errorf("file (flag wins over env): got %q, %v", got, err)
	}

	got, err = readSecret(newSecretTestApp("", false, env).app, passwordSource())
	if err != nil || got != "From-Env" {
		t.Errorf("env: got %q, %v", got, err)
	}

	// Only the last line break is removed; inner spaces stay.
	got, _ = readSecret(newSecretTestApp(" two words \n", false, nil).app, stdin)
	if got != " two words " {
		t.Errorf("trimming: got %q", got)
	}

	// A second line makes the secret ambiguous, so it is rejected.
	_, err = readSecret(newSecretTestApp("first\nsecond\n", false, nil).app, stdin)
	if err == nil || !strings.Contains(err.Error(), "more than one line") {
		t.Errorf("two lines: got %v, want a usage error", err)
	}
}

func TestReadSecretPromptsOnlyOnTerminal(t *testing.T) {
	prompted := ""
	saved := readPasswordFromTerminal
	readPasswordFromTerminal = func(app *App, prompt string) (string, error) {
		prompted = prompt
		return "Typed-Secret", nil
	}
	t.Cleanup(func() { readPasswordFromTerminal = saved })

	got, err := readSecret(newSecretTestApp("", true, nil).app, passwordSource())
	if err != nil || got != "Typed-Secret" || prompted != "Password for alice: " {
		t.Errorf("terminal: got %q, %v, prompt %q", got, err, prompted)
	}

	prompted = ""
	_, err = readSecret(newSecretTestApp("", false, nil).app, passwordSource())
	if prompted != "" {
		t.Errorf("prompted although stdin is not a terminal")
	}
	if apperr.ExitCodeOf(err) != apperr.ExitUsage {
		t.Fatalf("non-interactive without a source: err = %v, want a usage error", err)
	}
	hint := strings.Join(apperr.As(err).Hints, " ")
	for _, want := range []string{"--password-stdin", "--password-file FILE", "CFYAUTH_PASSWORD"} {
		if !strings.Contains(hint, want) {
			t.Errorf("hint %q does not name %s", hint, want)
		}
	}

	readPasswordFromTerminal = func(*App, string) (string, error) { return "", errors.New("no tty") }
	_, err = readSecret(newSecretTestApp("", true, nil).app, passwordSource())
	if apperr.ExitCodeOf(err) != apperr.ExitUsage {
		t.Errorf("failed prompt: err = %v", err)
	}
}

func TestReadSecretRejectsBadSources(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("Big-Secret "), 10000), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		stdin  string
		tty    bool
		modify func(*SecretSource)
		want   string
	}{
		{"stdin and file", "", false, func(s *SecretSource) { s.Stdin, s.File = true, big }, "cannot be used together"},
		{"stdin is a terminal", "", true, func(s *SecretSource) { s.Stdin = true }, "stdin is a terminal"},
		{"missing file", "", false, func(s *SecretSource) { s.File = filepath.Join(dir, "nope") }, "does not exist"},
		{"folder", "", false, func(s *SecretSource) { s.File = dir }, "is a folder"},
		{"file too large", "", false, func(s *SecretSource) { s.File = big }, "larger than 64 KiB"},
		{"stdin too large", strings.Repeat("Big-Secret ", 10000), false, func(s *SecretSource) { s.Stdin = true }, "more than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := passwordSource()
			tt.modify(&src)
			_, err := readSecret(newSecretTestApp(tt.stdin, tt.tty, nil).app, src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if apperr.ExitCodeOf(err) != apperr.ExitUsage {
				t.Errorf("exit code = %d, want 2", apperr.ExitCodeOf(err))
			}
			if strings.Contains(err.Error(), "Big-Secret") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestReadSecretWarnsOnWorldReadableFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("Open-Secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	ta := newSecretTestApp("", false, nil)
	src := passwordSource()
	src.File = file
	if _, err := readSecret(ta.app, src); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ta.stderr.String(), "can be read by other users") || strings.Contains(ta.stderr.String(), "Open-Secret") {
		t.Errorf("stderr = %q, want a warning without the secret", ta.stderr.String())
	}
}
