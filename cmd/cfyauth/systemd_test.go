package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cfyauth/cfyauth/internal/restart/restarttest"
)

// The real systemd user manager of the restart_* and status_* scripts,
// started by the first of them. It is not stopped by the test binary:
// systemd-user.sh's watcher stops it, by its recorded PID, as soon as this
// process exits, because testscript.Main leaves no hook after the tests.
var scriptSystemd struct {
	once sync.Once
	sd   *restarttest.Systemd
	err  error
}

// setupSystemd starts the shared manager for scripts whose name starts with
// restart_ or status_, and exports its bus address as $BUS. Without a
// usable systemd such a script is skipped, or fails under
// CFYAUTH_REQUIRE_SERVERS=1.
func setupSystemd(env *testscript.Env) error {
	name := strings.TrimPrefix(filepath.Base(env.WorkDir), "script-")
	if !strings.HasPrefix(name, "restart_") && !strings.HasPrefix(name, "status_") {
		return nil
	}
	scriptSystemd.once.Do(func() {
		dir, err := os.MkdirTemp("", "cfyauth-cli-systemd-")
		if err != nil {
			scriptSystemd.err = err
			return
		}
		scriptSystemd.sd, scriptSystemd.err = restarttest.Start(dir)
	})
	if err := scriptSystemd.err; err != nil {
		if restarttest.RequireServers() {
			return fmt.Errorf("real systemd required (CFYAUTH_REQUIRE_SERVERS=1): %w", err)
		}
		env.T().Skip("skipping: ", err)
	}
	env.Setenv("BUS", scriptSystemd.sd.BusAddress)
	return nil
}

// cmdSDUnit manages units of the shared test systemd from a script:
//
//	sdunit standin NAME [stand-in flags]  a REST service stand-in on $WORK/mgr,
//	                                      on a free port; sets $UNIT and $HEALTH_URL
//	sdunit failing NAME                   a unit whose executable is missing; sets $UNIT
//	sdunit stop                           stop $UNIT
//
// Unit names get a suffix unique to the script, because scripts run in
// parallel on one manager. Units are stopped when the script ends.
func cmdSDUnit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: sdunit standin|failing NAME [flags] | sdunit stop")
	}
	sd := scriptSystemd.sd
	if sd == nil {
		ts.Fatalf("sdunit: no test systemd; only restart_* and status_* scripts have one")
	}
	if args[0] == "stop" {
		if res, err := sd.StopUnit(ts.Getenv("UNIT")); err != nil || res != "done" {
			ts.Fatalf("stop %s: result %q, error %v", ts.Getenv("UNIT"), res, err)
		}
		return
	}
	if len(args) < 2 {
		ts.Fatalf("usage: sdunit %s NAME", args[0])
	}
	sum := sha256.Sum256([]byte(ts.Getenv("WORK")))
	unit := args[1] + "-" + hex.EncodeToString(sum[:4]) + ".service"
	switch args[0] {
	case "standin":
		port, err := restarttest.FreePort()
		ts.Check(err)
		st := restarttest.Standin{Root: ts.MkAbs("mgr"), Port: port, Args: args[2:]}
		ts.Check(sd.AddUnit(unit, sd.StandinUnit(unit, st)))
		startUnit(ts, sd, unit)
		ts.Check(restarttest.WaitListening(port))
		ts.Setenv("HEALTH_URL", fmt.Sprintf("http://127.0.0.1:%d/api/v3.1/ok", port))
	case "failing":
		ts.Check(sd.AddUnit(unit, restarttest.FailingUnit()))
	default:
		ts.Fatalf("sdunit: unknown action %q", args[0])
	}
	ts.Setenv("UNIT", unit)
}

func startUnit(ts *testscript.TestScript, sd *restarttest.Systemd, unit string) {
	if res, err := sd.StartUnit(unit); err != nil || res != "done" {
		ts.Fatalf("start %s: result %q, error %v", unit, res, err)
	}
	ts.Defer(func() { _, _ = sd.StopUnit(unit) })
}
