// Package pyharness runs the Python programs embedded in cfyauth with the
// manager's interpreter.
//
// The protocol runs on two extra file descriptors, so nothing a module
// prints can corrupt it. The child reads newline-delimited JSON requests
// from fd 3 until EOF. It writes newline-delimited JSON messages to fd 4:
// first a "hello", then one "result" per request, then "done". It may send
// "event" messages in between to report progress. Its stdout and
// stderr are captured separately and bounded in size. The child runs in its
// own process group; a timeout kills the whole group, and the wait does not
// hang on a pipe that a grandchild still holds open.
package pyharness

import (
	"bufio"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

//go:embed programs/*.py
var programs embed.FS

// ProgramNames lists the embedded programs, for tests.
func ProgramNames() []string {
	entries, _ := programs.ReadDir("programs")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// ProgramSource returns an embedded program's source.
func ProgramSource(name string) ([]byte, error) {
	return programs.ReadFile("programs/" + name)
}

// DefaultOutputLimit bounds the captured stdout and stderr of a child, each.
const DefaultOutputLimit = 64 << 10

// Runner runs one embedded program with one interpreter.
type Runner struct {
	Python string
	// Timeout bounds the whole child run; zero means 10 s.
	Timeout time.Duration
	// StepTimeout, when set, bounds the time between two protocol messages
	// (and from the start to the first one), so a program that reports each
	// step with an event gets each step bounded on its own.
	StepTimeout time.Duration
	// OutputLimit bounds captured stdout and stderr each; zero means
	// DefaultOutputLimit.
	OutputLimit int
	// Dir is the child's working folder; empty means a new temporary folder
	// that is removed afterwards.
	Dir string
	// Env is added to a minimal environment.
	Env []string
}

// Message is one protocol message from the child.
type Message struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Raw  json.RawMessage `json:"-"`
}

// Outcome is everything a run produced.
type Outcome struct {
	Hello     json.RawMessage
	Results   []Message
	Events    []Message
	Stdout    string
	Stderr    string
	Truncated bool
	ExitCode  int
	// Signal is the signal that ended the child, or 0 when it exited.
	Signal   syscall.Signal
	Duration time.Duration
}

// Run starts program (a file name under programs/) with the interpreter,
// sends the requests and collects one result per request.
func (r *Runner) Run(ctx context.Context, program string, requests []any) (*Outcome, error) {
	body, err := programs.ReadFile("programs/" + program)
	if err != nil {
		return nil, fmt.Errorf("read embedded program %s: %w", program, err)
	}
	return r.run(ctx, string(body), requests)
}

// run executes body after the protocol prelude.
func (r *Runner) run(ctx context.Context, body string, requests []any) (*Outcome, error) {
	prelude, err := programs.ReadFile("programs/protocol.py")
	if err != nil {
		return nil, fmt.Errorf("read embedded protocol: %w", err)
	}
	source := string(prelude) + "\n" + body

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	limit := r.OutputLimit
	if limit <= 0 {
		limit = DefaultOutputLimit
	}
	dir := r.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "cfyauth-harness-")
		if err != nil {
			return nil, fmt.Errorf("create harness folder: %w", err)
		}
		defer os.RemoveAll(dir)
	}

	reqRead, reqWrite, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create request pipe: %w", err)
	}
	respRead, respWrite, err := os.Pipe()
	if err != nil {
		reqRead.Close()
		reqWrite.Close()
		return nil, fmt.Errorf("create response pipe: %w", err)
	}

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// stepCtx is cancelled by the step watchdog; runCtx keeps telling the
	// overall timeout apart.
	stepCtx, stepCancel := context.WithCancel(runCtx)
	defer stepCancel()
	// -I: ignore PYTHON* variables and the user site; -B: write no .pyc
	// files next to the modules; -u: unbuffered, so output before a crash
	// is kept.
	cmd := exec.CommandContext(stepCtx, r.Python, "-I", "-B", "-u", "-c", source)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
		"PYTHONIOENCODING=utf-8", "HOME=" + dir}, r.Env...)
	cmd.Stdin = nil
	stdout := &boundedBuffer{limit: limit}
	stderr := &boundedBuffer{limit: limit}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{reqRead, respWrite}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return killGroup(cmd)
	}
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		reqRead.Close()
		reqWrite.Close()
		respRead.Close()
		respWrite.Close()
		return nil, apperr.Environment("python_unusable", "cannot start %s: %v", r.Python, err).
			WithHint("pass a working interpreter with --python PATH")
	}
	// The child holds its own copies now.
	reqRead.Close()
	respWrite.Close()

	writeErr := make(chan error, 1)
	go func() {
		writeErr <- writeRequests(reqWrite, requests)
	}()

	type readResult struct {
		out *Outcome
		err error
	}
	readDone := make(chan readResult, 1)
	progress := make(chan struct{}, 1)
	go func() {
		out, err := readMessages(respRead, progress)
		readDone <- readResult{out, err}
	}()
	watchdogDone := make(chan struct{})
	stepExpired := make(chan struct{})
	if r.StepTimeout > 0 {
		go watchStep(r.StepTimeout, progress, watchdogDone, stepExpired, stepCancel)
	}

	waitErr := cmd.Wait()
	close(watchdogDone)
	_ = killGroup(cmd)
	// A grandchild may still hold fd 4 open; closing our end unblocks the
	// reader in that case.
	var rr readResult
	select {
	case rr = <-readDone:
	case <-time.After(500 * time.Millisecond):
		respRead.Close()
		rr = <-readDone
	}
	respRead.Close()
	reqWrite.Close()
	<-writeErr

	out := rr.out
	if out == nil {
		out = &Outcome{}
	}
	out.Stdout = stdout.String()
	out.Stderr = stderr.String()
	out.Truncated = stdout.truncated || stderr.truncated
	out.Duration = time.Since(start)
	if cmd.ProcessState != nil {
		out.ExitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.Signal = ws.Signal()
		}
	}

	if errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return out, &TimeoutError{Timeout: timeout}
	}
	select {
	case <-stepExpired:
		if ctx.Err() == nil {
			return out, &TimeoutError{Timeout: r.StepTimeout, Step: true}
		}
	default:
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	if rr.err != nil {
		return out, rr.err
	}
	if len(out.Results) != len(requests) {
		return out, &ProtocolError{Reason: fmt.Sprintf("the child returned %d of %d results (exit code %d: %v)",
			len(out.Results), len(requests), out.ExitCode, waitErr), Stderr: out.Stderr}
	}
	return out, nil
}

// TimeoutError means the child did not finish in time and was killed.
type TimeoutError struct {
	Timeout time.Duration
	// Step is set when StepTimeout expired: the child sent no message for
	// that long.
	Step bool
}

func (e *TimeoutError) Error() string {
	if e.Step {
		return fmt.Sprintf("the Python child did not finish a step within %s and was stopped", e.Timeout)
	}
	return fmt.Sprintf("the Python child did not finish within %s and was stopped", e.Timeout)
}

// watchStep cancels the run when no protocol message arrives on progress for
// step, and then closes expired. It returns when done is closed.
func watchStep(step time.Duration, progress <-chan struct{}, done <-chan struct{}, expired chan<- struct{}, cancel context.CancelFunc) {
	timer := time.NewTimer(step)
	defer timer.Stop()
	for {
		select {
		case <-done:
			return
		case <-progress:
			// Since Go 1.23 Reset discards a pending expiry, so no drain.
			timer.Reset(step)
		case <-timer.C:
			close(expired)
			cancel()
			return
		}
	}
}

// ProtocolError means the child broke the protocol or died before finishing.
type ProtocolError struct {
	Reason string
	Stderr string
}

func (e *ProtocolError) Error() string { return "python harness: " + e.Reason }

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

func writeRequests(w io.WriteCloser, requests []any) error {
	defer w.Close()
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, req := range requests {
		if err := enc.Encode(req); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// maxMessage bounds one protocol line; results carry no module source.
const maxMessage = 8 << 20

// readMessages collects the child's messages and signals progress, without
// blocking, after each one.
func readMessages(r io.Reader, progress chan<- struct{}) (*Outcome, error) {
	out := &Outcome{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxMessage)
	done := false
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			return out, &ProtocolError{Reason: fmt.Sprintf("invalid message: %v", err)}
		}
		m.Raw = append(json.RawMessage(nil), line...)
		select {
		case progress <- struct{}{}:
		default:
		}
		switch m.Type {
		case "hello":
			out.Hello = m.Raw
		case "event":
			out.Events = append(out.Events, m)
		case "result":
			out.Results = append(out.Results, m)
		case "done":
			done = true
		default:
			return out, &ProtocolError{Reason: fmt.Sprintf("unknown message type %q", m.Type)}
		}
		if done {
			break
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		return out, &ProtocolError{Reason: fmt.Sprintf("read messages: %v", err)}
	}
	return out, nil
}

// boundedBuffer keeps the first limit bytes written to it.
type boundedBuffer struct {
	mu        sync.Mutex
	buf       []byte
	limit     int
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.limit - len(b.buf)
	if room > 0 {
		n := len(p)
		if n > room {
			n = room
		}
		b.buf = append(b.buf, p[:n]...)
	}
	if len(p) > room {
		b.truncated = true
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
