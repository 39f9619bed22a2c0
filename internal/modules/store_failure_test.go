package modules

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// makeImmutable sets the immutable attribute on path, which stops even
// root from writing into it, and clears it when the test ends.
func makeImmutable(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		msg := "chattr +i " + path + " failed (needs root, e2fsprogs and a file system with the immutable attribute): " + string(out)
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
}

func journalIDs(t *testing.T, s *Store) []int {
	t.Helper()
	ids, err := s.journal().ids()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// An install --enable that cannot write into the loaded folder changes
// nothing on disk: no stored version, no journal entry, no receipt.
func TestFailedInstallLeavesNoStoredVersion(t *testing.T) {
	s := newTestStore(t, "7.0")
	if err := os.MkdirAll(s.LoadedDir, moduleDirMode); err != nil {
		t.Fatal(err)
	}
	makeImmutable(t, s.LoadedDir)

	e := updateErr(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("theta_auth", goodModule), InstallOptions{ChangeOptions: skip, Enable: true})
	})
	if e.Kind.ExitCode() != 3 {
		t.Errorf("install into a folder that cannot be written: %s exit %d, want exit 3", e.Code, e.Kind.ExitCode())
	}
	if _, err := os.Stat(s.blobDir("theta_auth")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed install left %s behind (err %v)", s.blobDir("theta_auth"), err)
	}
	if _, err := os.Stat(filepath.Join(s.StateDir, blobsDirName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed install left the store folder behind (err %v)", err)
	}
	if ids := journalIDs(t, s); len(ids) != 0 {
		t.Errorf("journal entries after the failed install: %v, want none", ids)
	}
	if st, ok := list(t, s)["theta_auth"]; ok {
		t.Errorf("theta_auth is listed as %s after the failed install", st.State)
	}
}

// A change that fails part way through the loaded folder is undone: the
// files it already changed are put back and its journal entry is deleted,
// so no later run completes a change that was reported as failed.
func TestChangeFailingPartWayIsUndone(t *testing.T) {
	s := newTestStore(t, "7.0")
	beta := src("b_auth", goodModule)
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(beta, InstallOptions{ChangeOptions: skip, Enable: true})
	})
	alpha := update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("a_auth", goodModule), InstallOptions{ChangeOptions: skip, Enable: true})
	})
	update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("b_auth", goodModule+"# v2\n"), InstallOptions{ChangeOptions: skip})
	})
	before := journalIDs(t, s)
	aPath := filepath.Join(s.LoadedDir, "a_auth.py")
	bPath := filepath.Join(s.LoadedDir, "b_auth.py")
	makeImmutable(t, bPath)

	// Rolling back to before a_auth's install deletes a_auth.py first, then
	// fails to put version 1 of b_auth.py back.
	e := updateErr(t, s, func(tx *Tx) (*Change, error) { return tx.Rollback(alpha.JournalID, skip) })
	if e.Kind.ExitCode() != 3 {
		t.Errorf("rollback onto a file that cannot be replaced: %s exit %d, want exit 3", e.Code, e.Kind.ExitCode())
	}
	if data, err := os.ReadFile(aPath); err != nil || string(data) != goodModule {
		t.Errorf("a_auth.py was not put back: %q, %v", data, err)
	}
	if after := journalIDs(t, s); len(after) != len(before) {
		t.Errorf("journal entries %v after the failed rollback, want %v", after, before)
	}
	if pending, err := s.pendingEntry(); err != nil || pending != nil {
		t.Errorf("pending entry after the failed rollback: %+v, %v", pending, err)
	}
	statuses := list(t, s)
	for _, name := range []string{"a_auth", "b_auth"} {
		if got := statuses[name].State; got != StateEnabled {
			t.Errorf("%s is %s after the failed rollback, want enabled", name, got)
		}
	}
}
