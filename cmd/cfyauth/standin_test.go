package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cfyauth/cfyauth/internal/restapi/standin"
)

// standinKey stores the running stand-ins of one script by name.
type standinKey struct{}

// cmdStandin drives the REST stand-in from scripts:
//
//	standin start NAME ROOT [--tls DIR [--cert wrongname]] [--version X.Y.Z]
//	    start it on a free loopback port against the sandbox ROOT, wait
//	    until it listens, and set $NAME_URL and $NAME_PORT (NAME in upper
//	    case). With
//	    --tls it serves HTTPS with DIR/server.pem (or DIR/CERT.pem) made
//	    by 'standin certs'.
//	standin restart NAME   stop it and start it again on the same port
//	standin stop NAME      stop it (SIGTERM to its PID); $NAME_URL stays set
//	standin certs DIR      write ca.pem, server.pem/.key (127.0.0.1, ::1,
//	                       localhost), wrongname.pem/.key and other-ca.pem
//
// '! standin start' passes when the stand-in exits before listening, as it
// does with ROOT/var/lib/reststandin/crash-at-start. Every stand-in a
// script started is stopped when the script ends.
func cmdStandin(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: standin start|restart|stop NAME ... | standin certs DIR")
	}
	running := standinMap(ts)
	switch args[0] {
	case "certs":
		if neg {
			ts.Fatalf("unsupported: ! standin certs")
		}
		_, err := standin.WriteCerts(ts.MkAbs(args[1]))
		ts.Check(err)
	case "start":
		if len(args) < 3 {
			ts.Fatalf("usage: standin start NAME ROOT [--tls DIR [--cert NAME]] [--version X.Y.Z]")
		}
		name := args[1]
		if p := running[name]; p != nil && !p.Exited() {
			ts.Fatalf("stand-in %s is already running", name)
		}
		opts := standin.Options{Root: ts.MkAbs(args[2])}
		tlsDir, certName := "", "server"
		for rest := args[3:]; len(rest) > 0; rest = rest[2:] {
			if len(rest) < 2 {
				ts.Fatalf("standin start: %s needs a value", rest[0])
			}
			switch rest[0] {
			case "--tls":
				tlsDir = ts.MkAbs(rest[1])
			case "--cert":
				certName = rest[1]
			case "--version":
				opts.ManagerVersion = rest[1]
			default:
				ts.Fatalf("standin start: unknown option %s", rest[0])
			}
		}
		if tlsDir != "" {
			opts.TLSCert, opts.TLSKey = tlsDir+"/"+certName+".pem", tlsDir+"/"+certName+".key"
		}
		p, err := standin.Start(context.Background(), opts)
		if neg {
			if err == nil {
				ts.Fatalf("stand-in %s started, but it was expected to fail", name)
			}
			ts.Logf("stand-in %s failed to start, as expected: %v", name, err)
			return
		}
		ts.Check(err)
		running[name] = p
		ts.Setenv(strings.ToUpper(name)+"_URL", p.URL)
		ts.Setenv(strings.ToUpper(name)+"_PORT", strconv.Itoa(p.Port))
		ts.Logf("stand-in %s listens on %s (pid %d)", name, p.URL, p.PID)
	case "restart":
		p := running[args[1]]
		if p == nil {
			ts.Fatalf("no stand-in %s was started", args[1])
		}
		err := p.Restart(context.Background())
		if neg {
			if err == nil {
				ts.Fatalf("stand-in %s restarted, but it was expected to fail", args[1])
			}
			return
		}
		ts.Check(err)
	case "stop":
		p := running[args[1]]
		if p == nil {
			ts.Fatalf("no stand-in %s was started", args[1])
		}
		ts.Check(p.Stop())
	default:
		ts.Fatalf("unknown standin subcommand %q", args[0])
	}
}

func standinMap(ts *testscript.TestScript) map[string]*standin.Process {
	if m, ok := ts.Value(standinKey{}).(map[string]*standin.Process); ok {
		return m
	}
	ts.Fatalf("the stand-in registry is missing; is Setup calling setupStandins?")
	return nil
}

// setupStandins prepares a script's stand-in registry and stops every
// stand-in when the script ends.
func setupStandins(env *testscript.Env) {
	m := map[string]*standin.Process{}
	env.Values[standinKey{}] = m
	env.Defer(func() {
		for _, p := range m {
			_ = p.Stop()
		}
	})
}
