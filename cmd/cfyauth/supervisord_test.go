package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/restapi/standin"
	"github.com/cfyauth/cfyauth/internal/restart/restarttest"
)

// The real supervisord of the super_* scripts, started by the first of
// them. Like the test systemd, it is stopped by its watcher, by its
// recorded PID, as soon as this process exits.
var scriptSupervisord struct {
	once sync.Once
	sup  *restarttest.Supervisord
	err  error
}

// setupSupervisord starts the shared supervisord for scripts whose name
// starts with super_, and exports its socket as $SUPSOCK. Without a usable
// supervisord such a script is skipped, or fails under
// CFYAUTH_REQUIRE_SERVERS=1.
func setupSupervisord(env *testscript.Env) error {
	name := strings.TrimPrefix(filepath.Base(env.WorkDir), "script-")
	if !strings.HasPrefix(name, "super_") {
		return nil
	}
	scriptSupervisord.once.Do(func() {
		dir, err := os.MkdirTemp("", "cfyauth-cli-sup-")
		if err != nil {
			scriptSupervisord.err = err
			return
		}
		scriptSupervisord.sup, scriptSupervisord.err = restarttest.StartSupervisord(dir, "")
	})
	if err := scriptSupervisord.err; err != nil {
		if restarttest.RequireServers() {
			return fmt.Errorf("real supervisord required (CFYAUTH_REQUIRE_SERVERS=1): %w", err)
		}
		env.T().Skip("skipping: ", err)
	}
	env.Setenv("SUPSOCK", scriptSupervisord.sup.Socket)
	return nil
}

// cmdSupProg manages programs of the shared test supervisord from a script:
//
//	supprog standin NAME [stand-in flags]  the restart stand-in on $WORK/mgr
//	supprog rest NAME                      the REST stand-in (reststandin.py,
//	                                       with logins) on $WORK/mgr; also sets
//	                                       $MANAGER_URL
//	supprog failing NAME                   a program whose command is missing
//	supprog stop                           stop $PROGRAM
//
// A program listens on a free loopback port; the command sets $PROGRAM and
// $HEALTH_URL, and writes $WORK/mgr/etc/supervisord.conf with the test
// socket's credentials. Program names get a suffix unique to the script,
// because scripts run in parallel on one supervisord; programs are removed
// when the script ends.
func cmdSupProg(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: supprog standin|rest|failing NAME [flags] | supprog stop")
	}
	sup := scriptSupervisord.sup
	if sup == nil {
		ts.Fatalf("supprog: no test supervisord; only super_* scripts have one")
	}
	if args[0] == "stop" {
		err := sup.Client().StopProcess(context.Background(), ts.Getenv("PROGRAM"), true)
		ts.Check(err)
		return
	}
	if len(args) < 2 {
		ts.Fatalf("usage: supprog %s NAME", args[0])
	}
	root := ts.MkAbs("mgr")
	conf := filepath.Join(root, manager.SupervisordConf)
	ts.Check(os.WriteFile(conf, []byte(restarttest.ManagerConfig(manager.SupervisordSocket)), 0o600))

	sum := sha256.Sum256([]byte(ts.Getenv("WORK")))
	program := args[1] + "-" + hex.EncodeToString(sum[:4])
	port, err := restarttest.FreePort()
	ts.Check(err)
	var body string
	switch args[0] {
	case "standin":
		body = sup.StandinProgram(program, restarttest.Standin{Root: root, Port: port, Args: args[2:]}, false)
	case "rest":
		script, err := standin.Script()
		ts.Check(err)
		body = sup.ProgramBody(program, strings.Join([]string{sup.Python, script, "--root", root, "--port", strconv.Itoa(port)}, " "), false)
		ts.Setenv("MANAGER_URL", fmt.Sprintf("http://127.0.0.1:%d", port))
	case "failing":
		body = sup.ProgramBody(program, "/nonexistent/opt/manager/env/bin/gunicorn manager_rest.wsgi:app", false)
	default:
		ts.Fatalf("supprog: unknown action %q", args[0])
	}
	info, err := sup.AddProgram(program, body)
	ts.Check(err)
	ts.Defer(func() { _ = sup.RemoveProgram(program) })
	if args[0] != "failing" {
		if info.StateName != "RUNNING" {
			ts.Fatalf("program %s is %s after it was added", program, info.StateName)
		}
		ts.Check(restarttest.WaitListening(port))
	}
	ts.Setenv("PROGRAM", program)
	ts.Setenv("HEALTH_URL", fmt.Sprintf("http://127.0.0.1:%d/api/v3.1/ok", port))
}
