package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfyauth/cfyauth/internal/manager"
)

// These tests run cfyauth as separate processes: killed at random moments,
// many at once, as another user, and against an HTTPS server on loopback.
// testscript.Main puts the command on PATH as "cfyauth".

func cfyauthBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("cfyauth")
	if err != nil {
		t.Fatalf("cfyauth is not on PATH; run these tests with go test: %v", err)
	}
	return bin
}

// storeSandbox lays out a sandbox manager of release 7.0 in a folder that
// every user can traverse.
func storeSandbox(t *testing.T, uid, gid int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cfyauth-store-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: "7.0", UID: uid, GID: gid, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return root
}

type runResult struct {
	code   int
	stdout string
	stderr string
}

func runCfyauth(t *testing.T, bin string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run cfyauth %v: %v", args, err)
	}
	return runResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

func writeModule(t *testing.T, dir, name, marker string) string {
	t.Helper()
	path := filepath.Join(dir, name+".py")
	content := fmt.Sprintf("from cloudify_premium.authentication.auth_base import AuthBase\n\n\nclass A(AuthBase):\n    def _authenticate_request(self, request):\n        return None  # %s\n\n\nconfigure = A().configure\n", marker)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type listedModule struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

type listDoc struct {
	OK       bool           `json:"ok"`
	Modules  []listedModule `json:"modules"`
	Warnings []string       `json:"warnings"`
}

type stateDoc struct {
	Modules map[string]struct {
		SHA256  string `json:"sha256"`
		Enabled bool   `json:"enabled"`
	} `json:"modules"`
}

// checkConsistent asserts what must hold after any interrupted run and one
// more cfyauth run. Every listed module is enabled, disabled or built-in, and
// state.json parses. The loaded folder contains only complete files that
// match an enabled receipt, and no journal entry is pending.
func checkConsistent(t *testing.T, root string, list listDoc) {
	t.Helper()
	for _, m := range list.Modules {
		if m.State != "enabled" && m.State != "disabled" && m.State != "built-in" {
			t.Errorf("module %s is %s", m.Name, m.State)
		}
	}

	data, err := os.ReadFile(filepath.Join(root, "var/lib/cfyauth/state.json"))
	var state stateDoc
	if err == nil {
		err = json.Unmarshal(data, &state)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state.json: %v\n%s", err, data)
	}

	loaded := filepath.Join(root, "opt/manager/resources/authenticators")
	entries, err := os.ReadDir(loaded)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".py") || strings.HasPrefix(name, ".") {
			t.Errorf("unexpected file in the loaded folder: %s", name)
			continue
		}
		content, err := os.ReadFile(filepath.Join(loaded, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		rec, ok := state.Modules[strings.TrimSuffix(name, ".py")]
		if !ok || !rec.Enabled || rec.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s (sha256 %x) matches no enabled receipt (%+v)", name, sum[:6], rec)
		}
	}

	journal, _ := os.ReadDir(filepath.Join(root, "var/lib/cfyauth/journal"))
	for _, e := range journal {
		if strings.HasPrefix(e.Name(), ".") {
			// A temporary file of an entry that was never renamed into
			// place; the next writer deletes it.
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, "var/lib/cfyauth/journal", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var entry struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(data, &entry); err != nil || entry.Status != "done" {
			t.Errorf("journal entry %s: status %q, %v", e.Name(), entry.Status, err)
		}
	}
}

func listJSON(t *testing.T, bin, root string) listDoc {
	t.Helper()
	res := runCfyauth(t, bin, "--root", root, "-o", "json", "list")
	if res.code != 0 {
		t.Fatalf("list exited %d: %s", res.code, res.stderr)
	}
	var doc listDoc
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("list output: %v\n%s", err, res.stdout)
	}
	return doc
}

// randomChange returns the arguments of one changing command on a random
// module; every command is valid or fails cleanly in any state.
func randomChange(rng *rand.Rand, sources map[string][]string) []string {
	names := []string{"crash_a", "crash_b", "crash_c"}
	name := names[rng.Intn(len(names))]
	switch rng.Intn(4) {
	case 0:
		args := []string{"install", sources[name][rng.Intn(2)], "--skip-validation"}
		if rng.Intn(2) == 0 {
			args = append(args, "--enable")
		}
		return args
	case 1:
		return []string{"enable", name, "--skip-validation"}
	case 2:
		return []string{"disable", name}
	default:
		return []string{"remove", name, "--yes"}
	}
}

// TestStoreCrashRecovery kills cfyauth with SIGKILL at random moments of
// install, enable, disable and remove, and checks after each kill and one
// more run that nothing is half-written, unmanaged or modified.
func TestStoreCrashRecovery(t *testing.T) {
	bin := cfyauthBinary(t)
	root := storeSandbox(t, os.Getuid(), os.Getgid())
	src := t.TempDir()
	sources := map[string][]string{}
	for _, n := range []string{"crash_a", "crash_b", "crash_c"} {
		for v := 1; v <= 2; v++ {
			dir := filepath.Join(src, fmt.Sprintf("v%d", v))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			sources[n] = append(sources[n], writeModule(t, dir, n, fmt.Sprintf("version %d", v)))
		}
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))

	// The kill delay spans the median duration of a run, measured here, so
	// that most kills land while a run is working.
	var durations []time.Duration
	for i := 0; i < 9; i++ {
		start := time.Now()
		runCfyauth(t, bin, append([]string{"--root", root}, randomChange(rng, sources)...)...)
		durations = append(durations, time.Since(start))
	}
	slices.Sort(durations)
	median := durations[len(durations)/2]

	const trials = 200
	recovered, killed := 0, 0
	for i := 0; i < trials; i++ {
		args := append([]string{"--root", root}, randomChange(rng, sources)...)
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int63n(int64(median) + 1)))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		var exitErr *exec.ExitError
		if err := cmd.Wait(); errors.As(err, &exitErr) {
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				killed++
			}
		}

		doc := listJSON(t, bin, root)
		for _, w := range doc.Warnings {
			if strings.Contains(w, "completed change") {
				recovered++
			}
		}
		checkConsistent(t, root, doc)
		if t.Failed() {
			t.Fatalf("trial %d (%v) left an inconsistent store", i, args)
		}
	}
	t.Logf("%d trials, %d killed before they finished, %d interrupted changes completed by the next run (median run %s)",
		trials, killed, recovered, median.Round(time.Millisecond))
}

// TestStoreConcurrentRuns starts 20 changing runs and 10 readers on one
// root at once. Every run must succeed, and the store must end consistent
// with one journal entry per run that changed something.
func TestStoreConcurrentRuns(t *testing.T) {
	bin := cfyauthBinary(t)
	root := storeSandbox(t, os.Getuid(), os.Getgid())
	src := t.TempDir()
	names := []string{"conc_a", "conc_b", "conc_c", "conc_d"}
	v2 := map[string]string{}
	for _, n := range names {
		res := runCfyauth(t, bin, "--root", root, "install", writeModule(t, src, n, "version 1"), "--skip-validation")
		if res.code != 0 {
			t.Fatalf("install %s: %s", n, res.stderr)
		}
		dir := filepath.Join(src, "v2")
		os.MkdirAll(dir, 0o755)
		v2[n] = writeModule(t, dir, n, "version 2")
	}

	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	type job struct {
		args   []string
		writer bool
	}
	var jobs []job
	for i := 0; i < 20; i++ {
		n := names[rng.Intn(len(names))]
		var args []string
		switch i % 3 {
		case 0:
			args = []string{"enable", n, "--skip-validation"}
		case 1:
			args = []string{"disable", n}
		default:
			args = []string{"install", v2[n], "--skip-validation", "--enable"}
		}
		jobs = append(jobs, job{args: args, writer: true})
	}
	for i := 0; i < 10; i++ {
		args := []string{"list"}
		if i%2 == 1 {
			args = []string{"show", names[i%len(names)]}
		}
		jobs = append(jobs, job{args: args})
	}
	rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

	results := make([]runResult, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func(i int, j job) {
			defer wg.Done()
			args := append([]string{"--root", root, "-o", "json", "--lock-timeout", "60s"}, j.args...)
			results[i] = runCfyauth(t, bin, args...)
		}(i, j)
	}
	wg.Wait()

	changed := 0
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("%v exited %d: %s", jobs[i].args, r.code, r.stderr)
			continue
		}
		var doc struct {
			Changed bool           `json:"changed"`
			Modules []listedModule `json:"modules"`
			Module  listedModule   `json:"module"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Errorf("%v printed no JSON document: %v\n%s", jobs[i].args, err, r.stdout)
			continue
		}
		if doc.Changed {
			changed++
		}
		if !jobs[i].writer {
			for _, m := range append(doc.Modules, doc.Module) {
				if m.State == "modified" || m.State == "unmanaged" || m.State == "missing" {
					t.Errorf("reader %v saw %s as %s", jobs[i].args, m.Name, m.State)
				}
			}
		}
	}
	checkConsistent(t, root, listJSON(t, bin, root))
	entries, err := os.ReadDir(filepath.Join(root, "var/lib/cfyauth/journal"))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(names) + changed; len(entries) != want {
		t.Errorf("journal holds %d entries, want %d (%d installs and %d runs that changed something)", len(entries), want, len(names), changed)
	}
}

// TestStoreLockHeldNamesPID holds the store's lock in this process and
// checks that cfyauth gives up after --lock-timeout, naming this PID.
func TestStoreLockHeldNamesPID(t *testing.T) {
	bin := cfyauthBinary(t)
	root := storeSandbox(t, os.Getuid(), os.Getgid())
	lock, err := os.OpenFile(filepath.Join(root, "var/lib/cfyauth/lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list"}, {"install", writeModule(t, t.TempDir(), "lock_auth", "x"), "--skip-validation"}} {
		res := runCfyauth(t, bin, append([]string{"--root", root, "--lock-timeout", "300ms"}, args...)...)
		if res.code != 3 {
			t.Errorf("%v with the lock held exited %d, want 3", args, res.code)
		}
		want := fmt.Sprintf("another cfyauth run (PID %d) holds the lock", os.Getpid())
		if !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, "--lock-timeout") {
			t.Errorf("%v stderr = %q, want %q and a hint naming --lock-timeout", args, res.stderr, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/cfyauth/state.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run that did not get the lock wrote state.json")
	}
}

// requireRoot skips a test that needs root, or fails it when every test
// must run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
		t.Fatal("this test needs root: run the suite as root (sudo bash scripts/test.sh)")
	}
	t.Skip("needs root: run the suite as root (sudo bash scripts/test.sh)")
}

// TestStorePermissionDenied runs cfyauth as an unprivileged user on a
// manager tree that belongs to root: exit 3 with a hint to run as root, and
// nothing changed.
func TestStorePermissionDenied(t *testing.T) {
	requireRoot(t)
	bin := cfyauthBinary(t)
	root := storeSandbox(t, 0, 0)
	binDir := filepath.Dir(root)
	copyBin := filepath.Join(binDir, "cfyauth")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyBin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	module := writeModule(t, binDir, "perm_auth", "x")
	if err := os.Chmod(module, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := runCfyauth(t, bin, "--root", root, "install", module, "--enable", "--skip-validation"); res.code != 0 {
		t.Fatalf("install as root: %s", res.stderr)
	}
	statePath := filepath.Join(root, "var/lib/cfyauth/state.json")
	before, _ := os.ReadFile(statePath)

	for _, args := range [][]string{{"list"}, {"disable", "perm_auth"}, {"install", module, "--name", "perm_two", "--skip-validation"}} {
		cmd := exec.Command(copyBin, append([]string{"--root", root}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		err := cmd.Run()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
			t.Errorf("%v as nobody: %v, want exit 3; stderr %s", args, err, errOut.String())
		}
		if !strings.Contains(errOut.String(), "permission denied") || !strings.Contains(errOut.String(), "run cfyauth as root") {
			t.Errorf("%v as nobody: stderr = %q, want permission denied and a hint to run as root", args, errOut.String())
		}
	}
	after, _ := os.ReadFile(statePath)
	if !bytes.Equal(before, after) {
		t.Errorf("state.json changed")
	}
	if _, err := os.Stat(filepath.Join(root, "opt/manager/resources/authenticators/perm_auth.py")); err != nil {
		t.Errorf("the enabled module is gone: %v", err)
	}
}

// TestStoreOwnershipAndModes checks that module files belong to the cfyuser
// of the root's own etc/passwd, with mode 0640 in a 0750 folder, and fall
// back to the current user with a warning when there is no cfyuser.
func TestStoreOwnershipAndModes(t *testing.T) {
	requireRoot(t)
	bin := cfyauthBinary(t)
	root := storeSandbox(t, 990, 990)
	loaded := filepath.Join(root, "opt/manager/resources/authenticators")
	byHand := filepath.Join(loaded, "by_hand.py")
	writeModule(t, loaded, "by_hand", "by hand")
	if err := os.Chmod(byHand, 0o666); err != nil {
		t.Fatal(err)
	}

	owner := func(path string) (int, int, os.FileMode) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		return int(sys.Uid), int(sys.Gid), st.Mode().Perm()
	}
	check := func(path string, uid, gid int, mode os.FileMode) {
		t.Helper()
		if u, g, m := owner(path); u != uid || g != gid || m != mode {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", path, u, g, m, uid, gid, mode)
		}
	}

	res := runCfyauth(t, bin, "--root", root, "install", writeModule(t, t.TempDir(), "owned_auth", "x"), "--enable", "--skip-validation")
	if res.code != 0 || strings.Contains(res.stderr, "warning: no cfyuser") {
		t.Fatalf("install: exit %d, %s", res.code, res.stderr)
	}
	check(filepath.Join(loaded, "owned_auth.py"), 990, 990, 0o640)
	check(loaded, 990, 990, 0o750)

	if res := runCfyauth(t, bin, "--root", root, "adopt", "by_hand", "--skip-validation"); res.code != 0 {
		t.Fatalf("adopt: %s", res.stderr)
	}
	check(byHand, 990, 990, 0o640)
	if res := runCfyauth(t, bin, "--root", root, "rollback", "--yes"); res.code != 0 {
		t.Fatalf("rollback: %s", res.stderr)
	}
	check(byHand, 0, 0, 0o666)

	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = runCfyauth(t, bin, "--root", root, "install", writeModule(t, t.TempDir(), "root_auth", "x"), "--enable", "--skip-validation")
	if res.code != 0 || !strings.Contains(res.stderr, "warning: no cfyuser user and group") {
		t.Errorf("install without cfyuser: exit %d, stderr %q, want a warning", res.code, res.stderr)
	}
	check(filepath.Join(loaded, "root_auth.py"), os.Getuid(), os.Getgid(), 0o640)
}

// TestInstallFromHTTPSURL installs a module from an HTTPS server on
// 127.0.0.1 whose CA is passed with --source-ca-cert.
func TestInstallFromHTTPSURL(t *testing.T) {
	bin := cfyauthBinary(t)
	root := storeSandbox(t, os.Getuid(), os.Getgid())
	content, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/authenticators/meme_auth.py"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/modules/meme_auth.py" {
			http.NotFound(w, r)
			return
		}
		w.Write(content)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	url := srv.URL + "/modules/meme_auth.py"

	res := runCfyauth(t, bin, "--root", root, "install", url, "--sha256", sha)
	if res.code != 1 || !strings.Contains(res.stderr, "TLS verification") || !strings.Contains(res.stderr, "--source-ca-cert") {
		t.Errorf("without the CA: exit %d, stderr %q, want 1 and a hint naming --source-ca-cert", res.code, res.stderr)
	}
	res = runCfyauth(t, bin, "--root", root, "install", url, "--sha256", strings.Repeat("a", 64), "--source-ca-cert", ca)
	if res.code != 1 || !strings.Contains(res.stderr, "want "+strings.Repeat("a", 64)+", got "+sha) {
		t.Errorf("wrong sha256: exit %d, stderr %q", res.code, res.stderr)
	}
	res = runCfyauth(t, bin, "--root", root, "-o", "json", "install", url, "--sha256", sha, "--source-ca-cert", ca, "--enable")
	if res.code != 0 {
		t.Fatalf("install from URL: exit %d: %s", res.code, res.stderr)
	}
	installed, err := os.ReadFile(filepath.Join(root, "opt/manager/resources/authenticators/meme_auth.py"))
	if err != nil || !bytes.Equal(installed, content) {
		t.Errorf("installed file differs: %v", err)
	}
	show := runCfyauth(t, bin, "--root", root, "-o", "json", "show", "meme_auth")
	if !strings.Contains(show.stdout, `"source":"`+url+`"`) {
		t.Errorf("receipt source is not the URL: %s", show.stdout)
	}
}
