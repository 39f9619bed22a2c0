package manager

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDetectReleaseServiceManager(t *testing.T) {
	want := map[string]string{"5.1": "systemd", "6.4": "supervisord", "7.0": "supervisord"}
	for release, manager := range want {
		l := newSandbox(t, release)
		if got := l.DetectRelease().ServiceManager; got != manager {
			t.Errorf("sandbox %s: service manager %q, want %q", release, got, manager)
		}
	}
}

func TestDetectReleaseSeventyWithoutSupervisordFiles(t *testing.T) {
	l := newSandbox(t, "7.0")
	for _, p := range []string{SupervisordConf, SupervisordRest} {
		if err := os.Remove(filepath.Join(l.Root, p)); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.DetectRelease().ServiceManager; got != "supervisord" {
		t.Errorf("7.0 sandbox without supervisord files: service manager %q, want supervisord", got)
	}
	if err := os.Remove(filepath.Join(l.Root, SandboxMarker)); err != nil {
		t.Fatal(err)
	}
	l.Sandbox = nil
	r := l.DetectRelease()
	if r.Era != "7.0" || r.ServiceManager != "supervisord" {
		t.Errorf("7.0 files without marker: %+v, want era 7.0 under supervisord", r)
	}
}
