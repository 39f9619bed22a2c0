package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAddAndRemoveProgram(t *testing.T) {
	d := requireDaemon(t)
	c := d.client()
	ctx := context.Background()
	conf := filepath.Join(d.dir, "conf.d", "cfy-added.conf")
	body := "[program:cfy-added]\ncommand=/bin/sleep 300\nautostart=true\nstartsecs=0\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	added, _, _, err := c.ReloadConfig(ctx)
	if err != nil {
		t.Fatalf("ReloadConfig: %v", err)
	}
	if !slices.Contains(added, "cfy-added") {
		t.Fatalf("ReloadConfig added %v, want cfy-added", added)
	}
	if err := c.AddProcessGroup(ctx, "cfy-added"); err != nil {
		t.Fatalf("AddProcessGroup: %v", err)
	}
	var info ProcessInfo
	for i := 0; i < 100; i++ {
		if info, err = c.ProcessInfo(ctx, "cfy-added"); err == nil && info.State == StateRunning {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if info.State != StateRunning || info.PID == 0 {
		t.Fatalf("added program is %s (pid %d), want RUNNING", info.StateName, info.PID)
	}

	if err := c.StopProcess(ctx, "cfy-added", true); err != nil {
		t.Fatalf("StopProcess: %v", err)
	}
	if err := c.RemoveProcessGroup(ctx, "cfy-added"); err != nil {
		t.Fatalf("RemoveProcessGroup: %v", err)
	}
	if _, err := c.ProcessInfo(ctx, "cfy-added"); !IsFault(err, FaultBadName) {
		t.Errorf("ProcessInfo after removal = %v, want BAD_NAME", err)
	}
	if err := os.Remove(conf); err != nil {
		t.Fatal(err)
	}
	if _, _, removed, err := c.ReloadConfig(ctx); err != nil || len(removed) != 0 {
		t.Errorf("ReloadConfig after deleting the file: removed %v, %v; the group was already removed", removed, err)
	}
}

func TestTailStderrLogSize(t *testing.T) {
	d := requireDaemon(t)
	c := d.client()
	ctx := context.Background()
	sizeOnly, err := c.TailStderrLog(ctx, "cloudify-restservice", 0)
	if err != nil {
		t.Fatalf("TailStderrLog(0): %v", err)
	}
	if sizeOnly.Text != "" {
		t.Errorf("length 0 returned text %q", sizeOnly.Text)
	}
	st, err := os.Stat(filepath.Join(d.dir, "rest.err"))
	if err != nil {
		t.Fatal(err)
	}
	if sizeOnly.Size != st.Size() {
		t.Errorf("size %d, want the log file's %d", sizeOnly.Size, st.Size())
	}
	tail, err := c.TailStderrLog(ctx, "cloudify-restservice", 8)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 8 && (len(tail.Text) != 8 || !tail.Overflow) {
		t.Errorf("tail of 8 bytes of a %d-byte log: %q, overflow %v", st.Size(), tail.Text, tail.Overflow)
	}
	if _, err := c.TailStderrLog(ctx, "cloudify-broken", 100); !IsFault(err, FaultNoFile) && err != nil {
		t.Errorf("tail of a program without a stderr log file: %v", err)
	}
}

func TestParseConfigSupervisorctlCredentials(t *testing.T) {
	cfg, err := ParseConfig(strings.NewReader("[unix_http_server]\nusername=u\npassword={SHA}0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33\n[supervisorctl]\nusername = ctl\npassword = plain\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HashedPassword() || cfg.CtlUsername != "ctl" || cfg.CtlPassword != "plain" {
		t.Errorf("config = %+v", cfg)
	}
}
