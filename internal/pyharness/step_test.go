package pyharness

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Python 3.6 check of the embedded programs really rejects syntax
// newer than 3.6.
func TestPython36CheckRejectsNewerSyntax(t *testing.T) {
	py := python(t)
	const checker = "import ast, sys\nast.parse(sys.stdin.read(), 'x.py', feature_version=(3, 6))\n"
	cmd := exec.Command(py, "-I", "-c", checker)
	cmd.Stdin = strings.NewReader("if (n := 3):\n    pass\n")
	if err := cmd.Run(); err == nil {
		t.Fatal("the walrus operator parsed as Python 3.6; the check would miss newer syntax")
	}
}

func moduleLoad(t *testing.T, source string) map[string]any {
	t.Helper()
	standins, err := ProgramSource("standins.py")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"id": "load", "op": "load", "name": "probe_auth", "filename": "/probe/probe_auth.py",
		"source": source, "standins": string(standins), "auth_base": "stand-in", "secrets": []string{}}
}

func TestStepTimeoutStopsHungStep(t *testing.T) {
	py := python(t)
	r := &Runner{Python: py, StepTimeout: 2 * time.Second, Timeout: time.Minute}
	out, err := r.Run(context.Background(), "runmodule.py", []any{moduleLoad(t, "import time\nwhile True:\n    time.sleep(1)\n")})
	var timeout *TimeoutError
	if !errors.As(err, &timeout) {
		t.Fatalf("want a TimeoutError, got %v", err)
	}
	if !timeout.Step {
		t.Errorf("want the step timeout to expire, got the overall one")
	}
	if timeout.Timeout != 2*time.Second {
		t.Errorf("timeout = %s, want 2s", timeout.Timeout)
	}
	if len(out.Hello) == 0 {
		t.Errorf("the hello message was lost")
	}
	if !eventSteps(t, out)["import"] {
		t.Errorf("no event for the import step in %v", out.Events)
	}
	if !strings.Contains(err.Error(), "did not finish a step within 2s") {
		t.Errorf("message %q does not say a step timed out", err)
	}
}

func eventSteps(t *testing.T, out *Outcome) map[string]bool {
	t.Helper()
	steps := map[string]bool{}
	for _, e := range out.Events {
		var ev struct {
			Step string `json:"step"`
		}
		if err := json.Unmarshal(e.Raw, &ev); err != nil {
			t.Fatalf("event %s: %v", e.Raw, err)
		}
		steps[ev.Step] = true
	}
	return steps
}

// Steps that each finish in time never trip the step timeout, however many
// there are.
func TestStepTimeoutResetsOnEveryMessage(t *testing.T) {
	py := python(t)
	r := &Runner{Python: py, StepTimeout: 5 * time.Second}
	source := "from cloudify_premium.authentication.auth_base import AuthBase\n" +
		"class A(AuthBase):\n    def _authenticate_request(self, request):\n        return None\n" +
		"configure = A().configure\n"
	requests := []any{moduleLoad(t, source)}
	for i := 0; i < 5; i++ {
		requests = append(requests, map[string]any{"id": "r" + string(rune('0'+i)), "op": "request",
			"request": map[string]any{"method": "GET", "path": "/", "remote_addr": "127.0.0.1", "headers": [][2]string{}}})
	}
	out, err := r.Run(context.Background(), "runmodule.py", requests)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(out.Results) != len(requests) {
		t.Fatalf("got %d results, want %d", len(out.Results), len(requests))
	}
	steps := eventSteps(t, out)
	for _, want := range []string{"setup", "import", "configure", "can_handle", "authenticate"} {
		if !steps[want] {
			t.Errorf("no %s event", want)
		}
	}
}

func TestSignalOfKilledChildIsReported(t *testing.T) {
	py := python(t)
	r := &Runner{Python: py, StepTimeout: 10 * time.Second}
	out, err := r.Run(context.Background(), "runmodule.py",
		[]any{moduleLoad(t, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")})
	var proto *ProtocolError
	if !errors.As(err, &proto) {
		t.Fatalf("want a ProtocolError for a child that died, got %v", err)
	}
	if out.Signal != syscall.SIGKILL {
		t.Errorf("signal = %v, want SIGKILL", out.Signal)
	}
}
