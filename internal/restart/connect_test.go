package restart_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/restart"
	"github.com/cfyauth/cfyauth/internal/restart/restarttest"
)

func newLayout(t *testing.T, release string) *manager.Layout {
	t.Helper()
	root := filepath.Join(t.TempDir(), "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: release, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	layout, err := manager.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return layout
}

func writeSupervisordConf(t *testing.T, layout *manager.Layout, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(layout.Root, manager.SupervisordConf), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestResolveSupervisordSocket(t *testing.T) {
	seventy := newLayout(t, "7.0")
	target, err := restart.ResolveSupervisord(seventy, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(seventy.Root, "var/run/supervisord.sock"); target.Socket != want {
		t.Errorf("7.0 sandbox socket = %q, want %q", target.Socket, want)
	}
	if !strings.Contains(target.SocketSource, "[unix_http_server] file") || target.Username != "" {
		t.Errorf("7.0 sandbox: source %q, username %q; want the config's file and no credentials", target.SocketSource, target.Username)
	}

	fiftyOne := newLayout(t, "5.1")
	target, err = restart.ResolveSupervisord(fiftyOne, "")
	if err != nil {
		t.Fatal(err)
	}
	if target.Socket != filepath.Join(fiftyOne.Root, "var/run/supervisord.sock") || !strings.HasPrefix(target.SocketSource, "the default") {
		t.Errorf("5.1 sandbox without supervisord.conf: %+v, want the default socket under the root", target)
	}

	writeSupervisordConf(t, seventy, "[unix_http_server]\nfile=%(here)s/../run/sup.sock\nusername = ops\npassword = plain\n")
	target, err = restart.ResolveSupervisord(seventy, "")
	if err != nil {
		t.Fatal(err)
	}
	if target.Socket != filepath.Join(seventy.Root, "run/sup.sock") || target.Username != "ops" || target.Password != "plain" {
		t.Errorf("%%(here)s and [unix_http_server] credentials: %+v", target)
	}

	target, err = restart.ResolveSupervisord(seventy, "/tmp/elsewhere.sock")
	if err != nil || target.Socket != "/tmp/elsewhere.sock" || target.SocketSource != "--supervisor-socket" || target.Username != "ops" {
		t.Errorf("--supervisor-socket: %+v, %v; want the flag's path with the config's credentials", target, err)
	}
}

func TestResolveSupervisordCredentials(t *testing.T) {
	layout := newLayout(t, "6.4")
	writeSupervisordConf(t, layout, "[unix_http_server]\nfile=/var/run/supervisord.sock\nusername=ops\npassword={SHA}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d\n")
	_, err := restart.ResolveSupervisord(layout, "")
	if e := apperr.As(err); e.Code != "supervisord_password_hashed" || !strings.Contains(strings.Join(e.Hints, " "), "[supervisorctl]") {
		t.Errorf("hashed password without [supervisorctl]: %v, hints %q", err, e.Hints)
	}

	writeSupervisordConf(t, layout, "[unix_http_server]\nfile=/var/run/supervisord.sock\nusername=ops\npassword={SHA}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d\n"+
		"[supervisorctl]\nusername=ctl\npassword=ctl-plain\n")
	target, err := restart.ResolveSupervisord(layout, "")
	if err != nil || target.Username != "ctl" || target.Password != "ctl-plain" {
		t.Errorf("[supervisorctl] credentials: %+v, %v", target, err)
	}

	writeSupervisordConf(t, layout, "[unix_http_server\nfile=/x\n")
	if _, err := restart.ResolveSupervisord(layout, ""); apperr.As(err).Code != "supervisord_config_invalid" {
		t.Errorf("broken supervisord.conf: %v, want supervisord_config_invalid", err)
	}
}

func TestCheckVia(t *testing.T) {
	for _, ok := range []string{"", "auto", "systemd", "supervisord"} {
		if err := restart.CheckVia(ok); err != nil {
			t.Errorf("CheckVia(%q) = %v", ok, err)
		}
	}
	err := restart.CheckVia("upstart")
	if apperr.ExitCodeOf(err) != apperr.ExitUsage || !strings.Contains(strings.Join(apperr.As(err).Hints, " "), "auto, systemd, supervisord") {
		t.Errorf("CheckVia(upstart) = %v, want a usage error listing the values", err)
	}
}

func TestCheckBusAddress(t *testing.T) {
	valid := []string{
		"",
		"unix:path=/run/dbus/system_bus_socket",
		"unix:abstract=/tmp/dbus-test,guid=0123456789abcdef",
		"unix:path=/tmp/a%20b",
		"tcp:host=127.0.0.1,port=12345,family=ipv4",
		"nonce-tcp:host=127.0.0.1,port=1,noncefile=/tmp/nonce",
		"unix:path=/run/a;unix:path=/run/b",
	}
	for _, address := range valid {
		if err := restart.CheckBusAddress(address, "--bus-address"); err != nil {
			t.Errorf("CheckBusAddress(%q) = %v, want nil", address, err)
		}
	}
	invalid := map[string]string{
		"garbage":                       "no transport such as unix: before the parameters",
		"unix:":                         "exactly one of path= and abstract=",
		"unix:path=/a,abstract=b":       "exactly one of path= and abstract=",
		"unix:/run/dbus/socket":         `parameter "/run/dbus/socket" is not KEY=VALUE`,
		"tcp:host=127.0.0.1":            "needs host= and port=",
		"nonce-tcp:host=h,port=1":       "needs host=, port= and noncefile=",
		"launchd:env=DBUS_LAUNCHD":      `transport "launchd" is not supported`,
		"unix:path=/run/%zz":            "invalid %-escape",
		"unix:path=/run/a;garbage":      "no transport",
		":path=/run/dbus/system_socket": "no transport",
	}
	for address, reason := range invalid {
		err := restart.CheckBusAddress(address, "--bus-address")
		if apperr.ExitCodeOf(err) != apperr.ExitUsage {
			t.Errorf("CheckBusAddress(%q) = %v, want a usage error", address, err)
			continue
		}
		e := apperr.As(err)
		if !strings.Contains(e.Message, "invalid --bus-address") || !strings.Contains(e.Message, reason) {
			t.Errorf("CheckBusAddress(%q) message %q, want the flag and %q", address, e.Message, reason)
		}
		if !strings.Contains(strings.Join(e.Hints, " "), "unix:path=/run/dbus/system_bus_socket") {
			t.Errorf("CheckBusAddress(%q) hints %q do not show the expected form", address, e.Hints)
		}
	}
}

// supervisordProgram adds a stand-in program to the shared supervisord.
func supervisordProgram(t *testing.T, name string) {
	t.Helper()
	sup := needSupervisord(t)
	port, err := restarttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	root := newLayout(t, "7.0").Root
	if _, err := sup.AddProgram(name, sup.StandinProgram(name, restarttest.Standin{Root: root, Port: port}, false)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.RemoveProgram(name) })
}

func connectAuto(t *testing.T, o restart.ConnectOptions) (restart.ServiceManager, restart.Detection, error) {
	t.Helper()
	o.Via = restart.KindAuto
	mgr, d, err := restart.Connect(context.Background(), o)
	if mgr != nil {
		t.Cleanup(func() { mgr.Close() })
	}
	return mgr, d, err
}

func TestDetectSeventySandboxFindsSupervisord(t *testing.T) {
	t.Parallel()
	needSupervisord(t)
	supervisordProgram(t, "cfy-detect-sup")
	layout, err := manager.Open(supRoot)
	if err != nil {
		t.Fatal(err)
	}
	// No bus is named: supervisord responds first, so systemd is not needed.
	mgr, d, err := connectAuto(t, restart.ConnectOptions{Layout: layout, NoBusReason: "no bus in this test", Service: "cfy-detect-sup.service"})
	if err != nil {
		t.Fatal(err)
	}
	if mgr.Name() != "supervisord" || d.Via != "supervisord" {
		t.Fatalf("detected %s (%+v), want supervisord", mgr.Name(), d)
	}
	if !strings.Contains(d.Reason, "manages program cfy-detect-sup (state RUNNING)") {
		t.Errorf("reason %q does not name the program and its state", d.Reason)
	}
}

func TestDetectFiftyOneSandboxFindsSystemd(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-detect-sd.service", 0, restarttest.Standin{}, nil)
	mgr, d, err := connectAuto(t, restart.ConnectOptions{Layout: f.layout, BusAddress: f.sd.BusAddress, Service: f.unit})
	if err != nil {
		t.Fatal(err)
	}
	if mgr.Name() != "systemd" || !strings.Contains(d.Reason, "cfy-detect-sd.service is active (running)") {
		t.Fatalf("detected %s because %q, want systemd with the unit active", mgr.Name(), d.Reason)
	}
	if len(d.Probes) != 1 || !strings.Contains(d.Probes[0].Finding, "no socket at "+filepath.Join(f.layout.Root, "var/run/supervisord.sock")) {
		t.Errorf("probes %+v, want the missing supervisord socket", d.Probes)
	}
}

func TestDetectBothManagersPrefersSupervisord(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-detect-both.service", 0, restarttest.Standin{}, nil)
	supervisordProgram(t, "cfy-detect-both")
	layout, err := manager.Open(supRoot)
	if err != nil {
		t.Fatal(err)
	}
	mgr, _, err := connectAuto(t, restart.ConnectOptions{Layout: layout, BusAddress: f.sd.BusAddress, Service: f.unit})
	if err != nil {
		t.Fatal(err)
	}
	if mgr.Name() != "supervisord" {
		t.Errorf("with both managers running the service, detected %s; want supervisord", mgr.Name())
	}
}

func TestDetectSupervisordWithoutProgram(t *testing.T) {
	t.Parallel()
	needSupervisord(t)
	f := newStandin(t, "cfy-detect-sdonly.service", 0, restarttest.Standin{}, nil)
	layout, err := manager.Open(supRoot)
	if err != nil {
		t.Fatal(err)
	}
	mgr, d, err := connectAuto(t, restart.ConnectOptions{Layout: layout, BusAddress: f.sd.BusAddress, Service: f.unit})
	if err != nil {
		t.Fatal(err)
	}
	if mgr.Name() != "systemd" {
		t.Fatalf("detected %s, want systemd", mgr.Name())
	}
	if len(d.Probes) != 1 || !strings.Contains(d.Probes[0].Finding, "manages no program cfy-detect-sdonly") {
		t.Errorf("probes %+v, want supervisord without the program", d.Probes)
	}
}

func TestDetectLoadedInactiveUnitProvesNothing(t *testing.T) {
	t.Parallel()
	sd := needSystemd(t)
	unit := "cfy-detect-idle.service"
	// The unit file is loaded, as the RPMs install one on supervisord
	// managers, but the unit does not run.
	if err := sd.AddUnit(unit, restarttest.FailingUnit()); err != nil {
		t.Fatal(err)
	}
	layout := newLayout(t, "6.4")
	_, d, err := connectAuto(t, restart.ConnectOptions{Layout: layout, BusAddress: sd.BusAddress, Service: unit})
	e := apperr.As(err)
	if e.Code != "no_service_manager" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Fatalf("error %v (code %q), want no_service_manager with exit 3", err, e.Code)
	}
	for _, want := range []string{"supervisord: no socket at", "systemd: systemd unit cfy-detect-idle.service is inactive (dead)"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}
	hints := strings.Join(e.Hints, " ")
	if !strings.Contains(hints, "--via systemd or --via supervisord") || !strings.Contains(hints, "the manager's files name supervisord") {
		t.Errorf("hints %q do not name --via and the manager's own setting", hints)
	}
	if len(d.Probes) != 2 {
		t.Errorf("probes %+v, want both candidates", d.Probes)
	}
}

func TestDetectRefusedSocketIsAnError(t *testing.T) {
	t.Parallel()
	f := newStandin(t, "cfy-detect-refused.service", 0, restarttest.Standin{}, nil)
	layout := newLayout(t, "7.0")
	sock := filepath.Join(layout.Root, manager.SupervisordSocket)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	mgr, _, err := connectAuto(t, restart.ConnectOptions{Layout: layout, BusAddress: f.sd.BusAddress, Service: f.unit})
	if mgr != nil {
		t.Fatalf("connected to %s although the supervisord socket refuses", mgr.Name())
	}
	if e := apperr.As(err); e.Code != "supervisord_refused" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Errorf("error %v (code %q), want supervisord_refused with exit 3", err, e.Code)
	}
}

func TestDetectRejectedCredentialsAreAnError(t *testing.T) {
	t.Parallel()
	sup := needSupervisord(t)
	f := newStandin(t, "cfy-detect-401.service", 0, restarttest.Standin{}, nil)
	writeSupervisordConf(t, f.layout, "[unix_http_server]\nfile=/var/run/supervisord.sock\nusername=cfyauth-test\npassword=not-the-password\n")

	mgr, _, err := connectAuto(t, restart.ConnectOptions{Layout: f.layout, BusAddress: f.sd.BusAddress,
		SupervisorSocket: sup.Socket, Service: f.unit})
	if mgr != nil {
		t.Fatalf("connected to %s although supervisord rejected the credentials", mgr.Name())
	}
	if e := apperr.As(err); e.Code != "supervisord_unauthorized" || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
		t.Errorf("error %v (code %q), want supervisord_unauthorized with exit 3", err, e.Code)
	}
}

func TestDetectWithoutBusForRoot(t *testing.T) {
	layout := newLayout(t, "5.1")
	_, _, err := restart.Connect(context.Background(), restart.ConnectOptions{Layout: layout,
		NoBusReason: "--root " + layout.Root + " is not /, so cfyauth does not guess which bus reaches its systemd"})
	e := apperr.As(err)
	if e.Code != "missing_flag" || apperr.ExitCodeOf(err) != apperr.ExitUsage {
		t.Fatalf("error %v (code %q), want missing_flag with exit 2", err, e.Code)
	}
	if !strings.Contains(strings.Join(e.Hints, " "), "--bus-address ADDRESS") {
		t.Errorf("hints %q do not name --bus-address", e.Hints)
	}
}

func TestViaSupervisordReadsManagerConfig(t *testing.T) {
	t.Parallel()
	needSupervisord(t)
	layout, err := manager.Open(supRoot)
	if err != nil {
		t.Fatal(err)
	}
	mgr, d, err := restart.Connect(context.Background(), restart.ConnectOptions{Via: "supervisord", Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	if mgr.Name() != "supervisord" || d.Reason != "--via supervisord" {
		t.Errorf("connected to %s (%+v)", mgr.Name(), d)
	}
}
