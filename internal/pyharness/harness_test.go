package pyharness

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func python(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			t.Fatal("python3 is required: apt-get install python3")
		}
		t.Skip("python3 not found; install it with apt-get install python3")
	}
	return path
}

// echoBody returns a program that replies to each request with its id, after the given Python lines.
func echoBody(before string) string {
	return before + `
send({"type": "hello", "python": python_version()})
for request in read_requests():
    send({"type": "result", "id": request["id"]})
send({"type": "done"})
`
}

type req struct {
	ID string `json:"id"`
}

func requests(n int) []any {
	var out []any
	for i := 0; i < n; i++ {
		out = append(out, req{ID: strconv.Itoa(i)})
	}
	return out
}

func TestEmbeddedProgramsParseAsPython36(t *testing.T) {
	py := python(t)
	for _, name := range ProgramNames() {
		src, err := ProgramSource(name)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(py, "-c", "import ast, sys; ast.parse(sys.stdin.read(), feature_version=(3, 6))")
		cmd.Stdin = strings.NewReader(string(src))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s is not valid Python 3.6: %v\n%s", name, err, out)
		}
	}
}

func TestPrintsDoNotCorruptProtocol(t *testing.T) {
	r := &Runner{Python: python(t)}
	body := echoBody(`
print("{\"type\": \"result\", \"id\": \"forged\"}")
sys.stderr.write("noise on stderr\n")
try:
    os.write(4, b'{"type": "result", "id": "forged"}\n')
except OSError:
    pass
`)
	out, err := r.run(context.Background(), body, requests(3))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(out.Results) != 3 {
		t.Fatalf("got %d results, want 3", len(out.Results))
	}
	for i, m := range out.Results {
		if m.ID != strconv.Itoa(i) {
			t.Errorf("result %d has id %q", i, m.ID)
		}
	}
	if !strings.Contains(out.Stdout, `"forged"`) {
		t.Errorf("stdout was not captured: %q", out.Stdout)
	}
	if !strings.Contains(out.Stderr, "noise on stderr") {
		t.Errorf("stderr was not captured: %q", out.Stderr)
	}
}

func TestOutputIsBounded(t *testing.T) {
	r := &Runner{Python: python(t), OutputLimit: 1000}
	out, err := r.run(context.Background(), echoBody(`sys.stdout.write("x" * 200000)`), requests(1))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(out.Stdout) != 1000 {
		t.Errorf("captured %d bytes of stdout, want 1000", len(out.Stdout))
	}
	if !out.Truncated {
		t.Error("Truncated is false after 200000 bytes")
	}
}

func TestTimeoutKillsChild(t *testing.T) {
	r := &Runner{Python: python(t), Timeout: 300 * time.Millisecond}
	_, err := r.run(context.Background(), echoBody("import time\ntime.sleep(60)"), requests(1))
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a TimeoutError", err)
	}
}

func TestGrandchildCannotHoldTheWait(t *testing.T) {
	pidFile := t.TempDir() + "/grandchild.pid"
	r := &Runner{Python: python(t), Timeout: 30 * time.Second}
	// The grandchild inherits stdout and stderr and outlives the child.
	body := echoBody(`
import subprocess
p = subprocess.Popen(["sleep", "60"])
open(` + strconv.Quote(pidFile) + `, "w").write(str(p.pid))
`)
	out, err := r.run(context.Background(), body, requests(2))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(out.Results) != 2 {
		t.Fatalf("got %d results, want 2", len(out.Results))
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(data))
	// The process group was killed; the grandchild may linger only as a
	// zombie of init, never as a running sleep.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("grandchild %d still runs after the harness returned", pid)
}

func TestChildDyingEarlyIsAProtocolError(t *testing.T) {
	r := &Runner{Python: python(t)}
	body := `
send({"type": "hello", "python": python_version()})
sys.stderr.write("about to fail\n")
sys.exit(3)
`
	out, err := r.run(context.Background(), body, requests(2))
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a ProtocolError", err)
	}
	if out.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", out.ExitCode)
	}
	if !strings.Contains(pe.Stderr, "about to fail") {
		t.Errorf("stderr not kept in the error: %q", pe.Stderr)
	}
}

func TestBatchRunsInOneProcess(t *testing.T) {
	r := &Runner{Python: python(t)}
	body := `
send({"type": "hello", "python": python_version()})
for request in read_requests():
    send({"type": "result", "id": request["id"], "pid": os.getpid()})
send({"type": "done"})
`
	out, err := r.run(context.Background(), body, requests(50))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(out.Results) != 50 {
		t.Fatalf("got %d results, want 50", len(out.Results))
	}
	first := string(out.Results[0].Raw)
	pid := first[strings.Index(first, `"pid"`):]
	for _, m := range out.Results[1:] {
		if !strings.Contains(string(m.Raw), pid[:strings.IndexAny(pid, ",}")]) {
			t.Fatalf("results came from different processes: %s vs %s", first, m.Raw)
		}
	}
}

func TestCancelStopsChild(t *testing.T) {
	r := &Runner{Python: python(t), Timeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	_, err := r.run(ctx, echoBody("import time\ntime.sleep(60)"), requests(1))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
