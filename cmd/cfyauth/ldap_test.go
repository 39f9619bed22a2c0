package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cfyauth/cfyauth/internal/ldapprobe/ldaptest"
)

// The slapd the ldap_* scripts use. It runs on free ports, because the
// ldapprobe package's tests hold the fixed ones while packages run in
// parallel.
var (
	ldapServer    *ldaptest.Slapd
	ldapServerErr error
)

// withLDAPServer wraps the test run so that slapd starts once before the
// scripts and stops after them. testscript calls Run only in the test
// process, never in the cfyauth command processes it starts.
type withLDAPServer struct {
	m interface{ Run() int }
}

func (w withLDAPServer) Run() int {
	dir, err := os.MkdirTemp("", "cfyauth-cli-slapd")
	if err != nil {
		ldapServerErr = err
		return w.m.Run()
	}
	defer os.RemoveAll(dir)
	ldapServer, ldapServerErr = ldaptest.Start(ldaptest.Options{Dir: filepath.Join(dir, "slapd")})
	code := w.m.Run()
	if ldapServer != nil {
		if err := ldapServer.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}

// setupLDAPScript exports the server's addresses to every script.
func setupLDAPScript(env *testscript.Env) {
	if ldapServer == nil {
		return
	}
	env.Setenv("LDAP_URL", ldapServer.URL())
	env.Setenv("LDAPS_URL", ldapServer.TLSURL())
	env.Setenv("LDAP_HOSTPORT", ldapServer.Addr())
	env.Setenv("LDAP_CA", ldapServer.CAFile())
	env.Setenv("LDAP_SVC_DN", ldaptest.ServiceDN)
}

// ldapScriptCommands are the script commands of the ldap_* scripts:
//
//	ldapserver          fail when slapd should run but does not: it is
//	                    installed, or CFYAUTH_REQUIRE_SERVERS=1; a script
//	                    follows it with [!exec:slapd] skip
//	silentserver NAME   start a server that accepts connections and never
//	                    answers; its address goes into $NAME
func ldapScriptCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"ldapserver": func(ts *testscript.TestScript, neg bool, args []string) {
			if ldapServer != nil {
				return
			}
			if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
				ts.Fatalf("slapd is required (CFYAUTH_REQUIRE_SERVERS=1): %v", ldapServerErr)
			}
			if ldaptest.Installed() == nil {
				ts.Fatalf("slapd is installed but did not start: %v", ldapServerErr)
			}
		},
		"silentserver": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 1 || neg {
				ts.Fatalf("usage: silentserver NAME")
			}
			addr, stop, err := ldaptest.SilentListener()
			ts.Check(err)
			ts.Defer(stop)
			ts.Setenv(args[0], addr)
		},
	}
}

// withLDAPCommands adds the ldap script commands to cmds.
func withLDAPCommands(cmds map[string]func(ts *testscript.TestScript, neg bool, args []string)) map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	for name, f := range ldapScriptCommands() {
		cmds[name] = f
	}
	return cmds
}
