package cli

import "testing"

func TestBuildVersionPrefersStamp(t *testing.T) {
	saved := [3]string{version, commit, date}
	defer func() { version, commit, date = saved[0], saved[1], saved[2] }()

	version, commit, date = "1.2.3", "abc123", "2026-12-01T00:00:00Z"
	info := buildVersion()
	if info.Version != "1.2.3" || info.Commit != "abc123" || info.Date != "2026-12-01T00:00:00Z" {
		t.Errorf("buildVersion() = %+v, want the ldflags stamp", info)
	}
}

func TestBuildVersionFallsBack(t *testing.T) {
	saved := [3]string{version, commit, date}
	defer func() { version, commit, date = saved[0], saved[1], saved[2] }()

	version, commit, date = "", "", ""
	info := buildVersion()
	if info.Version == "" {
		t.Error("buildVersion() without a stamp returned an empty version")
	}
	if info.GoVersion == "" || info.Platform == "" {
		t.Errorf("buildVersion() lacks Go version or platform: %+v", info)
	}
}
