package restart_test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	godbus "github.com/godbus/dbus/v5"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/restart"
	"github.com/cfyauth/cfyauth/internal/restart/restarttest"
)

// refusingManager is the org.freedesktop.systemd1.Manager of a systemd
// whose polkit refuses the caller, as it refuses a user without the right.
type refusingManager struct{}

func (refusingManager) RestartUnit(name, mode string) (godbus.ObjectPath, *godbus.Error) {
	return "", &godbus.Error{Name: "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
		Body: []any{"Interactive authentication required."}}
}

// runningUnit serves the properties of a running service unit.
type runningUnit struct{}

func (runningUnit) GetAll(iface string) (map[string]godbus.Variant, *godbus.Error) {
	switch iface {
	case "org.freedesktop.systemd1.Unit":
		return map[string]godbus.Variant{
			"LoadState":    godbus.MakeVariant("loaded"),
			"ActiveState":  godbus.MakeVariant("active"),
			"SubState":     godbus.MakeVariant("running"),
			"InvocationID": godbus.MakeVariant([]byte{1, 2, 3}),
		}, nil
	case "org.freedesktop.systemd1.Service":
		return map[string]godbus.Variant{"MainPID": godbus.MakeVariant(uint32(4242)), "NRestarts": godbus.MakeVariant(uint32(0))}, nil
	}
	return nil, &godbus.Error{Name: "org.freedesktop.DBus.Error.UnknownInterface", Body: []any{iface}}
}

// startFakeSystemd runs a private dbus-daemon on which a fake
// org.freedesktop.systemd1 refuses every restart, and returns its address.
func startFakeSystemd(t *testing.T) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if restarttest.RequireServers() {
			t.Fatalf("dbus-daemon required (CFYAUTH_REQUIRE_SERVERS=1); %s", restarttest.InstallHint)
		}
		t.Skipf("skipping: dbus-daemon not found; %s", restarttest.InstallHint)
	}
	sock := filepath.Join(t.TempDir(), "bus")
	cmd := exec.Command(daemon, "--session", "--address=unix:path="+sock, "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	addr := strings.TrimSpace(line)

	conn, err := godbus.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Auth(nil); err != nil {
		t.Fatal(err)
	}
	if err := conn.Hello(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Export(refusingManager{}, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	unitPath := godbus.ObjectPath("/org/freedesktop/systemd1/unit/cloudify_2drestservice_2eservice")
	if err := conn.Export(runningUnit{}, unitPath, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.systemd1", godbus.NameFlagDoNotQueue); err != nil || reply != godbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own org.freedesktop.systemd1: reply %v, error %v", reply, err)
	}
	return addr
}

func TestRestartDeniedByPolkit(t *testing.T) {
	t.Parallel()
	addr := startFakeSystemd(t)
	mgr, err := restart.DialSystemd(context.Background(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	g := &restart.Gate{Manager: mgr, Options: restart.GateOptions{Services: []string{restart.DefaultUnit}}}

	res, err := g.Restart(context.Background())
	if res != nil {
		t.Errorf("result %+v for a refused restart", res)
	}
	e := apperr.As(err)
	if e.Code != "permission_denied" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Fatalf("error %v (code %q), want permission_denied with exit 3", err, e.Code)
	}
	if !strings.Contains(e.Message, "Interactive authentication required") {
		t.Errorf("message %q does not carry systemd's reason", e.Message)
	}
	if !strings.Contains(strings.Join(e.Hints, " "), "run cfyauth as root") {
		t.Errorf("hints %q do not say to run as root", e.Hints)
	}
}
