package modules

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
)

const goodModule = `from cloudify_premium.authentication.auth_base import AuthBase, UserData


class TestAuth(AuthBase):
    def _authenticate_request(self, request):
        return None


configure = TestAuth().configure
`

const noConfigureModule = `from cloudify_premium.authentication.auth_base import AuthBase


class TestAuth(AuthBase):
    def _authenticate_request(self, request):
        return None
`

// newTestStore lays out a sandbox manager of the release and opens its store.
func newTestStore(t *testing.T, release string) *Store {
	t.Helper()
	root := filepath.Join(t.TempDir(), "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: release, UID: os.Getuid(), GID: os.Getgid(), Now: time.Now()}); err != nil {
		t.Fatalf("init sandbox: %v", err)
	}
	layout, err := manager.Open(root)
	if err != nil {
		t.Fatalf("open layout: %v", err)
	}
	s, err := OpenStore(layout, StoreOptions{LockTimeout: 2 * time.Second, User: "tester"})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// pythonValidator validates with python3 from PATH, the same interpreter a
// sandbox falls back to.
type pythonValidator struct {
	t     *testing.T
	path  string
	calls int
}

func newPythonValidator(t *testing.T) *pythonValidator {
	t.Helper()
	path, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			t.Fatalf("python3 is required: %v", err)
		}
		t.Skip("python3 not found; install it with: apt-get install python3")
	}
	return &pythonValidator{t: t, path: path}
}

func (v *pythonValidator) Interpreter(ctx context.Context) (Interpreter, error) {
	return Interpreter{Path: v.path, Version: "test", ValidatorVersion: ValidatorVersion}, nil
}

func (v *pythonValidator) Validate(ctx context.Context, cands []Candidate) ([]Validation, error) {
	v.calls++
	res, _, err := Validate(ctx, cands, ValidateOptions{Python: v.path})
	return res, err
}

func src(name, content string) Source {
	s := Source{Origin: name + ".py", Name: name, Data: []byte(content)}
	s.SHA256 = sha256Hex(s.Data)
	return s
}

func update(t *testing.T, s *Store, fn func(tx *Tx) (*Change, error)) *Change {
	t.Helper()
	var ch *Change
	err := s.Update(context.Background(), func(tx *Tx) error {
		var err error
		ch, err = fn(tx)
		return err
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	return ch
}

func updateErr(t *testing.T, s *Store, fn func(tx *Tx) (*Change, error)) *apperr.Error {
	t.Helper()
	err := s.Update(context.Background(), func(tx *Tx) error {
		_, err := fn(tx)
		return err
	})
	if err == nil {
		t.Fatalf("update succeeded, want an error")
	}
	return apperr.As(err)
}

func list(t *testing.T, s *Store) map[string]ModuleStatus {
	t.Helper()
	out := map[string]ModuleStatus{}
	err := s.View(context.Background(), func(tx *Tx) error {
		for _, m := range tx.List().Modules {
			out[m.Name] = m
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return out
}

var skip = ChangeOptions{SkipValidation: true}

func TestInstallEnableDisableRemove(t *testing.T) {
	s := newTestStore(t, "7.0")
	a := src("alpha_auth", goodModule)

	ch := update(t, s, func(tx *Tx) (*Change, error) { return tx.Install(a, InstallOptions{ChangeOptions: skip}) })
	if !ch.Changed || ch.LoadedChanged {
		t.Errorf("install without --enable: changed=%v loaded_changed=%v, want true false", ch.Changed, ch.LoadedChanged)
	}
	if _, err := os.Stat(filepath.Join(s.LoadedDir, "alpha_auth.py")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("disabled module is in the loaded folder: %v", err)
	}
	if got := list(t, s)["alpha_auth"].State; got != StateDisabled {
		t.Errorf("state after install = %s, want disabled", got)
	}

	ch = update(t, s, func(tx *Tx) (*Change, error) { return tx.Enable([]string{"alpha_auth"}, skip) })
	if !ch.Changed || !ch.LoadedChanged {
		t.Errorf("enable: changed=%v loaded_changed=%v, want true true", ch.Changed, ch.LoadedChanged)
	}
	data, err := os.ReadFile(filepath.Join(s.LoadedDir, "alpha_auth.py"))
	if err != nil || string(data) != goodModule {
		t.Fatalf("loaded file after enable: %q, %v", data, err)
	}
	st, _ := os.Stat(filepath.Join(s.LoadedDir, "alpha_auth.py"))
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode of the loaded file = %o, want 640", st.Mode().Perm())
	}
	dirSt, _ := os.Stat(s.LoadedDir)
	if dirSt.Mode().Perm() != 0o750 {
		t.Errorf("mode of the loaded folder = %o, want 750", dirSt.Mode().Perm())
	}

	ch = update(t, s, func(tx *Tx) (*Change, error) { return tx.Enable([]string{"alpha_auth"}, skip) })
	if ch.Changed {
		t.Errorf("enabling an enabled module changed something: %+v", ch.Modules)
	}
	ch = update(t, s, func(tx *Tx) (*Change, error) { return tx.Install(a, InstallOptions{ChangeOptions: skip}) })
	if ch.Changed {
		t.Errorf("installing the same bytes again changed something: %+v", ch.Modules)
	}

	cache := filepath.Join(s.LoadedDir, "__pycache__")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"alpha_auth.cpython-311.pyc", "alpha_auth_two.cpython-311.pyc"} {
		if err := os.WriteFile(filepath.Join(cache, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Disable([]string{"alpha_auth"}, skip) })
	if _, err := os.Stat(filepath.Join(cache, "alpha_auth.cpython-311.pyc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("disable left the module's bytecode: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "alpha_auth_two.cpython-311.pyc")); err != nil {
		t.Errorf("disable deleted another module's bytecode: %v", err)
	}
	ch = update(t, s, func(tx *Tx) (*Change, error) { return tx.Disable([]string{"alpha_auth"}, skip) })
	if ch.Changed {
		t.Errorf("disabling a disabled module changed something")
	}

	update(t, s, func(tx *Tx) (*Change, error) { return tx.Remove([]string{"alpha_auth"}, skip) })
	if _, ok := list(t, s)["alpha_auth"]; ok {
		t.Errorf("removed module is still listed")
	}
	if !s.hasBlob("alpha_auth", a.SHA256) {
		t.Errorf("remove deleted the stored copy; rollback needs it")
	}
}

func TestInstallRecordsReceipt(t *testing.T) {
	s := newTestStore(t, "6.4")
	a := src("alpha_auth", goodModule)
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(a, InstallOptions{ChangeOptions: skip, Enable: true})
	})
	doc := readStateFile(t, s)
	rec := doc.Modules["alpha_auth"]
	if rec == nil {
		t.Fatalf("no receipt in state.json")
	}
	if rec.SHA256 != a.SHA256 || rec.Source != "alpha_auth.py" || rec.InstalledBy != "tester" {
		t.Errorf("receipt = %+v", rec)
	}
	if !rec.Enabled || rec.EnabledAt == nil || !rec.SkippedValidation {
		t.Errorf("receipt enabled=%v enabled_at=%v skipped_validation=%v, want true, set, true", rec.Enabled, rec.EnabledAt, rec.SkippedValidation)
	}
	blob, err := os.ReadFile(s.BlobPath("alpha_auth", a.SHA256))
	if err != nil || string(blob) != goodModule {
		t.Errorf("stored copy = %q, %v", blob, err)
	}
}

func readStateFile(t *testing.T, s *Store) *stateDoc {
	t.Helper()
	data, err := os.ReadFile(s.statePath())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseState(s.statePath(), data)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestInstallValidatesAndCaches(t *testing.T) {
	s := newTestStore(t, "7.0")
	v := newPythonValidator(t)
	opts := InstallOptions{ChangeOptions: ChangeOptions{Validator: v}, Enable: true}

	e := updateErr(t, s, func(tx *Tx) (*Change, error) { return tx.Install(src("beta_auth", noConfigureModule), opts) })
	if e.Code != "validation_failed" {
		t.Fatalf("error code = %s, want validation_failed", e.Code)
	}
	var failure *ValidationFailure
	if !errors.As(e, &failure) || len(failure.Results) != 1 {
		t.Fatalf("error carries no validation results: %v", e)
	}
	if _, err := os.Stat(s.statePath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected install wrote state.json: %v", err)
	}

	update(t, s, func(tx *Tx) (*Change, error) { return tx.Install(src("beta_auth", goodModule), opts) })
	if got := list(t, s)["beta_auth"].Validity; got != "pass" {
		t.Errorf("validity after install = %q, want pass", got)
	}
	calls := v.calls
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Disable([]string{"beta_auth"}, ChangeOptions{}) })
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Enable([]string{"beta_auth"}, ChangeOptions{Validator: v}) })
	if v.calls != calls {
		t.Errorf("enable ran Python again for bytes already validated (%d calls, want %d)", v.calls, calls)
	}
}

func TestUnmanagedAndModifiedFilesNeedForce(t *testing.T) {
	s := newTestStore(t, "7.0")
	hand := filepath.Join(s.LoadedDir, "gamma_auth.py")
	if err := os.WriteFile(hand, []byte("# placed by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := list(t, s)["gamma_auth"].State; got != StateUnmanaged {
		t.Fatalf("state of a file placed by hand = %s, want unmanaged", got)
	}
	g := src("gamma_auth", goodModule)
	e := updateErr(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(g, InstallOptions{ChangeOptions: skip, Enable: true})
	})
	if e.Code != "unmanaged_file" || e.Kind.ExitCode() != 1 {
		t.Errorf("install over an unmanaged file: code %s exit %d, want unmanaged_file 1", e.Code, e.Kind.ExitCode())
	}
	if data, _ := os.ReadFile(hand); string(data) != "# placed by hand\n" {
		t.Errorf("the unmanaged file was overwritten: %q", data)
	}
	e = updateErr(t, s, func(tx *Tx) (*Change, error) { return tx.Remove([]string{"gamma_auth"}, skip) })
	if e.Code != "unmanaged_file" {
		t.Errorf("remove of an unmanaged file: code %s, want unmanaged_file", e.Code)
	}

	force := skip
	force.Force = true
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(g, InstallOptions{ChangeOptions: force, Enable: true})
	})
	if data, _ := os.ReadFile(hand); string(data) != goodModule {
		t.Errorf("--force did not replace the file")
	}

	if err := os.WriteFile(hand, []byte("# edited\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := list(t, s)["gamma_auth"].State; got != StateModified {
		t.Fatalf("state of an edited file = %s, want modified", got)
	}
	e = updateErr(t, s, func(tx *Tx) (*Change, error) { return tx.Disable([]string{"gamma_auth"}, skip) })
	if e.Code != "modified_file" {
		t.Errorf("disable of a modified file: code %s, want modified_file", e.Code)
	}
	ch := update(t, s, func(tx *Tx) (*Change, error) { return tx.Adopt([]string{"gamma_auth"}, false, skip) })
	if !ch.Changed || list(t, s)["gamma_auth"].State != StateEnabled {
		t.Errorf("adopt of a modified file: changed=%v state=%s", ch.Changed, list(t, s)["gamma_auth"].State)
	}

	// Rolling back the adopt and then the forced install brings back the
	// file placed by hand, byte for byte.
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(NewestEntry, skip) })
	if data, _ := os.ReadFile(hand); string(data) != "# edited\n" {
		t.Errorf("after rolling back adopt: %q", data)
	}
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(ch.JournalID-1, force) })
	if data, _ := os.ReadFile(hand); string(data) != "# placed by hand\n" {
		t.Errorf("after rolling back the forced install: %q", data)
	}
	if got := list(t, s)["gamma_auth"].State; got != StateUnmanaged {
		t.Errorf("state after the rollbacks = %s, want unmanaged", got)
	}
}

func TestRollbackTwiceUndoesRollback(t *testing.T) {
	s := newTestStore(t, "5.1")
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("delta_auth", goodModule), InstallOptions{ChangeOptions: skip, Enable: true})
	})
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("delta_auth", goodModule+"# v2\n"), InstallOptions{ChangeOptions: skip})
	})
	path := filepath.Join(s.LoadedDir, "delta_auth.py")
	if data, _ := os.ReadFile(path); !strings.HasSuffix(string(data), "# v2\n") {
		t.Fatalf("update of an enabled module did not replace its file")
	}
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(NewestEntry, skip) })
	if data, _ := os.ReadFile(path); string(data) != goodModule {
		t.Errorf("after rollback: %q, want version 1", data)
	}
	ch := update(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(NewestEntry, skip) })
	if data, _ := os.ReadFile(path); !strings.HasSuffix(string(data), "# v2\n") {
		t.Errorf("second rollback did not undo the first: %q", data)
	}
	if ch.RestoredFrom != 3 {
		t.Errorf("second rollback restored from entry %d, want 3", ch.RestoredFrom)
	}
	for _, to := range []int{99, 0} {
		e := updateErr(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(to, skip) })
		if e.Code != "unknown_entry" || e.Kind != apperr.KindUsage {
			t.Errorf("rollback --to %d: %s %v, want unknown_entry usage", to, e.Code, e.Kind)
		}
	}
}

// A rollback that brought back a file placed by hand is undone by the next
// rollback like any other change: the set from before the first rollback
// comes back exactly, and a third rollback brings the hand file back again.
func TestRollbackOfRestoredHandFile(t *testing.T) {
	s := newTestStore(t, "7.0")
	hand := filepath.Join(s.LoadedDir, "x_auth.py")
	if err := os.WriteFile(hand, []byte("# placed by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	force := skip
	force.Force = true
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("x_auth", goodModule), InstallOptions{ChangeOptions: force})
	})
	snapshot := func() Snapshot {
		var snap Snapshot
		if err := s.View(context.Background(), func(tx *Tx) error { snap = tx.Snapshot(); return nil }); err != nil {
			t.Fatal(err)
		}
		return snap
	}
	installed := snapshot()

	update(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(NewestEntry, skip) })
	if got := list(t, s)["x_auth"].State; got != StateUnmanaged {
		t.Fatalf("after the first rollback x_auth is %s, want unmanaged", got)
	}
	restored := snapshot()

	second := update(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(NewestEntry, skip) })
	if got := list(t, s)["x_auth"].State; got != StateDisabled {
		t.Errorf("after the second rollback x_auth is %s, want disabled", got)
	}
	if _, err := os.Stat(hand); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the second rollback left %s in the loaded folder (err %v)", hand, err)
	}
	after := snapshot()
	if !sameReceipts(after.Receipts, installed.Receipts) {
		t.Errorf("receipts after the second rollback:\n got %+v\nwant %+v", after.Receipts, installed.Receipts)
	}
	if len(after.Loaded) != len(installed.Loaded) {
		t.Errorf("loaded files after the second rollback: got %+v, want %+v", after.Loaded, installed.Loaded)
	}
	if second.Before.Loaded["x_auth"] != restored.Loaded["x_auth"] || len(second.After.Loaded) != 0 {
		t.Errorf("journal of the second rollback: before %+v, after %+v", second.Before.Loaded, second.After.Loaded)
	}

	update(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(NewestEntry, skip) })
	if data, _ := os.ReadFile(hand); string(data) != "# placed by hand\n" {
		t.Errorf("the third rollback did not bring back the hand file: %q", data)
	}
	if got := list(t, s)["x_auth"].State; got != StateUnmanaged {
		t.Errorf("after the third rollback x_auth is %s, want unmanaged", got)
	}
}

func TestRestoreSnapshotByteForByte(t *testing.T) {
	s := newTestStore(t, "7.0")
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("eps_auth", goodModule), InstallOptions{ChangeOptions: skip, Enable: true})
	})
	hand := filepath.Join(s.LoadedDir, "hand_auth.py")
	if err := os.WriteFile(hand, []byte("# by hand\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	if err := s.View(context.Background(), func(tx *Tx) error { snap = tx.Snapshot(); return nil }); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Adopt(nil, true, skip) })
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Remove([]string{"eps_auth", "hand_auth"}, skip) })
	if entries, _ := os.ReadDir(s.LoadedDir); len(entries) != 0 {
		t.Fatalf("loaded folder not empty after remove: %v", entries)
	}
	ch := update(t, s, func(tx *Tx) (*Change, error) { return tx.Restore(snap, skip) })
	if !ch.Changed {
		t.Fatalf("restore changed nothing")
	}
	var after Snapshot
	if err := s.View(context.Background(), func(tx *Tx) error { after = tx.Snapshot(); return nil }); err != nil {
		t.Fatal(err)
	}
	if !sameReceipts(snap.Receipts, after.Receipts) {
		t.Errorf("receipts after restore differ:\nwant %+v\ngot  %+v", snap.Receipts, after.Receipts)
	}
	for name, want := range snap.Loaded {
		if got := after.Loaded[name]; got != want {
			t.Errorf("%s after restore = %+v, want %+v", name, got, want)
		}
	}
	if data, _ := os.ReadFile(hand); string(data) != "# by hand\n" {
		t.Errorf("hand_auth.py after restore = %q", data)
	}
}

func TestUnknownNameSuggestsClosest(t *testing.T) {
	s := newTestStore(t, "7.0")
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("zeta_auth", goodModule), InstallOptions{ChangeOptions: skip})
	})
	e := updateErr(t, s, func(tx *Tx) (*Change, error) { return tx.Enable([]string{"zeta_uath"}, skip) })
	if e.Code != "unknown_module" || !strings.Contains(e.Message, "did you mean zeta_auth?") {
		t.Errorf("unknown name: %s %q", e.Code, e.Message)
	}
	e = updateErr(t, s, func(tx *Tx) (*Change, error) { return tx.Enable([]string{"okta_authentication"}, skip) })
	if e.Code != "builtin_module" {
		t.Errorf("enable of a built-in: code %s, want builtin_module", e.Code)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	s := newTestStore(t, "7.0")
	var ch *Change
	err := s.View(context.Background(), func(tx *Tx) error {
		var err error
		ch, err = tx.Install(src("eta_auth", goodModule), InstallOptions{ChangeOptions: ChangeOptions{DryRun: true, SkipValidation: true}, Enable: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Changed || !ch.DryRun || ch.JournalID != 0 {
		t.Errorf("dry run result: changed=%v dry_run=%v journal_id=%d", ch.Changed, ch.DryRun, ch.JournalID)
	}
	for _, p := range []string{s.statePath(), filepath.Join(s.LoadedDir, "eta_auth.py"), s.blobDir("eta_auth"), s.journal().dir} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dry run created %s", p)
		}
	}
}

// TestRecoveryCompletesInterruptedChange writes what a run killed right
// after its intent record leaves behind, and checks that the next reader
// completes the change.
func TestRecoveryCompletesInterruptedChange(t *testing.T) {
	s := newTestStore(t, "7.0")
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("theta_auth", goodModule), InstallOptions{ChangeOptions: skip})
	})
	var before Snapshot
	if err := s.View(context.Background(), func(tx *Tx) error { before = tx.Snapshot(); return nil }); err != nil {
		t.Fatal(err)
	}
	after := before.clone()
	rec := after.Receipts["theta_auth"]
	rec.Enabled = true
	after.Receipts["theta_auth"] = rec
	after.Loaded["theta_auth"] = LoadedFile{SHA256: rec.SHA256, Mode: Mode(0o640), UID: os.Getuid(), GID: os.Getgid()}
	j := s.journal()
	entry := &JournalEntry{EntrySummary: EntrySummary{ID: 2, Op: "enable", Names: []string{"theta_auth"}, Status: EntryPending,
		StartedAt: time.Now().UTC(), User: "tester", PID: 4242}, Before: before, After: after}
	if err := j.write(entry); err != nil {
		t.Fatal(err)
	}
	// A temporary file the killed run was writing.
	leftover := filepath.Join(s.LoadedDir, tempPrefix+"theta_auth.py-123"+tempSuffix)
	if err := os.WriteFile(leftover, []byte("from clou"), 0o640); err != nil {
		t.Fatal(err)
	}

	var warnings []string
	var mods []ModuleStatus
	err := s.View(context.Background(), func(tx *Tx) error {
		warnings = tx.Warnings()
		mods = tx.List().Modules
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) == 0 || !strings.Contains(warnings[0], "completed change 2") {
		t.Errorf("warnings = %q, want one about completing change 2", warnings)
	}
	if mods[0].Name != "theta_auth" || mods[0].State != StateEnabled {
		t.Errorf("after recovery: %+v", mods[0])
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("recovery left the temporary file: %v", err)
	}
	done, err := j.read(2)
	if err != nil || done.Status != EntryDone || !done.Recovered {
		t.Errorf("entry after recovery: %+v, %v", done, err)
	}
}

func TestCorruptStateIsReportedNotReset(t *testing.T) {
	s := newTestStore(t, "7.0")
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("iota_auth", goodModule), InstallOptions{ChangeOptions: skip, Enable: true})
	})
	broken := []byte(`{"format": 1, "modules": {"iota_auth": `)
	if err := os.WriteFile(s.statePath(), broken, 0o640); err != nil {
		t.Fatal(err)
	}
	err := s.View(context.Background(), func(tx *Tx) error { return nil })
	e := apperr.As(err)
	if e.Code != "state_corrupt" || e.Kind.ExitCode() != 3 {
		t.Fatalf("corrupt state: %s exit %d, want state_corrupt 3", e.Code, e.Kind.ExitCode())
	}
	if !strings.Contains(strings.Join(e.Hints, " "), "mv "+s.statePath()) {
		t.Errorf("hints %q do not say how to move the file aside", e.Hints)
	}
	if data, _ := os.ReadFile(s.statePath()); string(data) != string(broken) {
		t.Errorf("state.json was changed")
	}

	if err := os.Rename(s.statePath(), s.statePath()+".broken"); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	err = s.Update(context.Background(), func(tx *Tx) error { warnings = tx.Warnings(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "rebuilt 1 receipt(s) from journal entry 1") {
		t.Errorf("warnings = %q", warnings)
	}
	if got := list(t, s)["iota_auth"].State; got != StateEnabled {
		t.Errorf("state after rebuild = %s, want enabled", got)
	}
}

func TestLockTimeoutNamesHolder(t *testing.T) {
	s := newTestStore(t, "7.0")
	held, err := acquireLock(context.Background(), filepath.Join(s.StateDir, lockFileName), LockExclusive, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.release()
	s.LockTimeout = 50 * time.Millisecond
	err = s.View(context.Background(), func(tx *Tx) error { return nil })
	e := apperr.As(err)
	if e.Code != "lock_held" || e.Kind.ExitCode() != 3 {
		t.Fatalf("lock held: %s exit %d, want lock_held 3", e.Code, e.Kind.ExitCode())
	}
	var lh *LockHeldError
	if !errors.As(err, &lh) || len(lh.Holders) != 1 || lh.Holders[0] != os.Getpid() {
		t.Errorf("holders = %+v, want this process %d", lh, os.Getpid())
	}
	if !strings.Contains(e.Message, "PID") {
		t.Errorf("message %q does not name the PID", e.Message)
	}
}

func TestSharedLocksDoNotBlockEachOther(t *testing.T) {
	s := newTestStore(t, "7.0")
	held, err := acquireLock(context.Background(), filepath.Join(s.StateDir, lockFileName), LockShared, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.release()
	s.LockTimeout = 0
	if err := s.View(context.Background(), func(tx *Tx) error { return nil }); err != nil {
		t.Errorf("a reader was blocked by another reader: %v", err)
	}
	err = s.Update(context.Background(), func(tx *Tx) error { return nil })
	if apperr.As(err).Code != "lock_held" {
		t.Errorf("a writer got in while a reader held the lock: %v", err)
	}
}

func TestRestartPendingComparesChangeTimes(t *testing.T) {
	s := newTestStore(t, "7.0")
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("kappa_auth", goodModule), InstallOptions{ChangeOptions: skip, Enable: true})
	})
	var res ListResult
	view := func() {
		if err := s.View(context.Background(), func(tx *Tx) error { res = tx.List(); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	view()
	if res.RestartPending != PendingUnknown {
		t.Errorf("without a recorded restart: %s, want unknown", res.RestartPending)
	}
	if err := s.Update(context.Background(), func(tx *Tx) error { return tx.RecordRestart(time.Now().Add(time.Second)) }); err != nil {
		t.Fatal(err)
	}
	view()
	if res.RestartPending != PendingNo || res.Modules[0].RestartPending != PendingNo {
		t.Errorf("after a restart: %s / %s, want no", res.RestartPending, res.Modules[0].RestartPending)
	}
	s.Now = func() time.Time { return time.Now().Add(2 * time.Second) }
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Disable([]string{"kappa_auth"}, skip) })
	view()
	if res.RestartPending != PendingYes {
		t.Errorf("after disabling since the restart: %s, want yes", res.RestartPending)
	}

	// A removed module has no row of its own, but its removal still needs
	// a restart after later changes to other modules.
	if err := s.Update(context.Background(), func(tx *Tx) error { return tx.RecordRestart(time.Now().Add(3 * time.Second)) }); err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return time.Now().Add(4 * time.Second) }
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Enable([]string{"kappa_auth"}, skip) })
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Remove([]string{"kappa_auth"}, skip) })
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("other_auth", goodModule), InstallOptions{ChangeOptions: skip})
	})
	view()
	if res.RestartPending != PendingYes {
		t.Errorf("after removing a module since the restart: %s, want yes", res.RestartPending)
	}
}

func TestOktaBuiltinActiveWithCertificate(t *testing.T) {
	s := newTestStore(t, "6.4")
	okta := func() ModuleStatus { return list(t, s)["okta_authentication"] }
	if m := okta(); m.State != StateBuiltin || m.Kind != KindOKTA || m.Active == nil || *m.Active {
		t.Fatalf("okta without certificate: %+v", m)
	}
	cert, _ := s.Layout.Path(manager.OktaCertificate)
	if err := os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := okta(); m.Active == nil || !*m.Active {
		t.Errorf("okta with certificate: %+v, want active", m)
	}
	if m := list(t, s)["ldap_authentication"]; m.Kind != KindLDAP || m.State != StateBuiltin {
		t.Errorf("ldap built-in: %+v", m)
	}
}

func TestPycacheIgnoredByList(t *testing.T) {
	s := newTestStore(t, "7.0")
	cache := filepath.Join(s.LoadedDir, "__pycache__")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "x.cpython-311.pyc"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := list(t, s); len(got) != 2 {
		t.Errorf("list = %v, want only the two built-ins", got)
	}
}

func TestOwnerWithoutCfyuser(t *testing.T) {
	s := newTestStore(t, "7.0")
	passwd, _ := s.Layout.Path(manager.PasswdFile)
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(s.Layout, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Owner.Warning == "" || s2.Owner.UID != os.Getuid() {
		t.Errorf("owner without cfyuser = %+v, want the current user with a warning", s2.Owner)
	}
}

func TestInstalledPathFindsStoredModules(t *testing.T) {
	s := newTestStore(t, "7.0")
	a := src("lambda_auth", goodModule)
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Install(a, InstallOptions{ChangeOptions: skip}) })
	p, err := InstalledPath(s, "lambda_auth")
	if err != nil || p != s.BlobPath("lambda_auth", a.SHA256) {
		t.Errorf("disabled module: %q, %v", p, err)
	}
	update(t, s, func(tx *Tx) (*Change, error) { return tx.Enable([]string{"lambda_auth"}, skip) })
	p, err = InstalledPath(s, "lambda_auth")
	if err != nil || p != filepath.Join(s.LoadedDir, "lambda_auth.py") {
		t.Errorf("enabled module: %q, %v", p, err)
	}
	if _, err := InstalledPath(s, "nope"); err == nil {
		t.Errorf("unknown module found")
	}
}

func TestJournalEntryIsValidJSON(t *testing.T) {
	s := newTestStore(t, "7.0")
	ch := update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("mu_auth", goodModule), InstallOptions{ChangeOptions: skip, Enable: true})
	})
	data, err := os.ReadFile(filepath.Join(s.journal().dir, entryFileName(ch.JournalID)))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["status"] != EntryDone || raw["op"] != "install" {
		t.Errorf("entry = %v", raw)
	}
	loaded := raw["after"].(map[string]any)["loaded"].(map[string]any)["mu_auth"].(map[string]any)
	if loaded["mode"] != "0640" {
		t.Errorf("mode in the journal = %v, want \"0640\"", loaded["mode"])
	}
}
