package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/manager"
)

// terminalApp returns an App whose stdin and stderr count as terminals, so
// confirmations are asked through confirmFunc.
func terminalApp() (*App, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, StdinTTY: true, StderrTTY: true}
	return NewApp(io, func(string) string { return "" }), &out, &errOut
}

func TestRemoveAsksOnTerminal(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: "7.0", UID: os.Getuid(), GID: os.Getgid(), Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(t.TempDir(), "ask_auth.py")
	if err := os.WriteFile(module, []byte("configure = None\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	app, _, errOut := terminalApp()
	if code := app.Run(context.Background(), []string{"--root", root, "install", module, "--enable", "--skip-validation"}); code != 0 {
		t.Fatalf("install exited %d: %s", code, errOut)
	}
	loaded := filepath.Join(root, manager.AuthenticatorsDir, "ask_auth.py")

	var questions []string
	answer := false
	confirmFunc = func(a *App, q string) (bool, error) {
		questions = append(questions, q)
		return answer, nil
	}
	defer func() { confirmFunc = surveyConfirm }()

	app, _, errOut = terminalApp()
	code := app.Run(context.Background(), []string{"--root", root, "remove", "ask_auth"})
	if code != 1 || !strings.Contains(errOut.String(), "not confirmed, so nothing was changed") {
		t.Errorf("answer no: exit %d, stderr %q", code, errOut)
	}
	if len(questions) != 1 || questions[0] != "Remove ask_auth?" {
		t.Errorf("questions = %q", questions)
	}
	if !strings.Contains(errOut.String(), "ask_auth: would be removed") {
		t.Errorf("no preview before the question: %q", errOut)
	}
	if _, err := os.Stat(loaded); err != nil {
		t.Errorf("the module is gone after answering no: %v", err)
	}

	answer = true
	app, _, errOut = terminalApp()
	if code := app.Run(context.Background(), []string{"--root", root, "remove", "ask_auth"}); code != 0 {
		t.Errorf("answer yes: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(loaded); !os.IsNotExist(err) {
		t.Errorf("the module is still there after answering yes: %v", err)
	}

	questions = nil
	app, _, errOut = terminalApp()
	if code := app.Run(context.Background(), []string{"--root", root, "--yes", "rollback"}); code != 0 {
		t.Errorf("rollback --yes: exit %d, stderr %q", code, errOut)
	}
	if len(questions) != 0 {
		t.Errorf("--yes still asked %q", questions)
	}
}
