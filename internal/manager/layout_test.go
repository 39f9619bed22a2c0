package manager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

func newSandbox(t *testing.T, release string) *Layout {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mgr")
	if _, err := InitSandbox(dir, SandboxOptions{Release: release, UID: 990, GID: 991, Now: time.Now()}); err != nil {
		t.Fatalf("InitSandbox: %v", err)
	}
	l, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func kindOf(err error) apperr.Kind {
	var e *apperr.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func TestSymlinksResolveInsideRoot(t *testing.T) {
	l := newSandbox(t, "7.0")
	auth := filepath.Join(l.Root, "opt/manager/resources/authenticators")
	if err := os.Remove(auth); err != nil {
		t.Fatal(err)
	}
	// An absolute symlink means the root's /srv/auth, never the host's.
	if err := os.Symlink("/srv/auth", auth); err != nil {
		t.Fatal(err)
	}
	got, err := l.Authenticators()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(l.Root, "srv/auth"); got != want {
		t.Errorf("Authenticators() = %s, want %s", got, want)
	}
	// A relative symlink that climbs out is clamped to the root.
	if err := os.Remove(auth); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../etc", auth); err != nil {
		t.Fatal(err)
	}
	got, err = l.Authenticators()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(l.Root, "etc"); got != want {
		t.Errorf("Authenticators() = %s, want %s", got, want)
	}
}

func TestServiceAccountFromRootPasswd(t *testing.T) {
	l := newSandbox(t, "6.4")
	acct := l.ServiceAccount()
	if !acct.Found || acct.UID != 990 || acct.GID != 991 {
		t.Errorf("ServiceAccount() = %+v, want cfyuser 990:991", acct)
	}
	if err := os.WriteFile(filepath.Join(l.Root, "etc/group"), []byte("root:x:0:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if acct := l.ServiceAccount(); acct.Found {
		t.Errorf("ServiceAccount() found cfyuser without its group: %+v", acct)
	}
}

func TestDetectReleaseByFiles(t *testing.T) {
	cases := map[string]string{"5.1": "3.6", "6.4": "3.6", "7.0": "3.11"}
	for release, py := range cases {
		l := newSandbox(t, release)
		r := l.DetectRelease()
		if r.Era != release || r.VenvPython != py {
			t.Errorf("sandbox %s: DetectRelease() = %+v", release, r)
		}
		// Without the marker the files alone tell the era.
		if err := os.Remove(filepath.Join(l.Root, SandboxMarker)); err != nil {
			t.Fatal(err)
		}
		l.Sandbox = nil
		r = l.DetectRelease()
		want := map[string]string{"5.1": "5.1-6.4", "6.4": "5.2-6.4", "7.0": "7.0"}[release]
		if r.Era != want {
			t.Errorf("release %s without marker: era %q, want %q", release, r.Era, want)
		}
	}
}

func TestOpenRejectsPython27Manager(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "opt/manager/env/lib/python2.7/site-packages"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Open(root)
	if kindOf(err) != apperr.KindEnvironment {
		t.Fatalf("Open(python2.7 manager) = %v, want an environment error", err)
	}
}

func TestOpenWithoutManager(t *testing.T) {
	_, err := Open(t.TempDir())
	if kindOf(err) != apperr.KindEnvironment {
		t.Errorf("Open(empty) = %v, want an environment error", err)
	}
	_, err = Open(filepath.Join(t.TempDir(), "missing"))
	if kindOf(err) != apperr.KindUsage {
		t.Errorf("Open(missing) = %v, want a usage error", err)
	}
}

func TestFindPythonOutsideSandboxNeedsFlag(t *testing.T) {
	l := newSandbox(t, "7.0")
	l.Sandbox = nil
	_, err := l.FindPython(context.Background(), "", nil)
	if kindOf(err) != apperr.KindEnvironment {
		t.Errorf("FindPython without interpreter = %v, want an environment error", err)
	}
}

func TestInitSandboxLeavesNothingOnFailure(t *testing.T) {
	parent := t.TempDir()
	_, err := InitSandbox(filepath.Join(parent, "mgr"), SandboxOptions{Release: "9.9"})
	if kindOf(err) != apperr.KindUsage {
		t.Fatalf("InitSandbox(9.9) = %v, want a usage error", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 0 {
		t.Errorf("InitSandbox left %d entries behind", len(entries))
	}
}
