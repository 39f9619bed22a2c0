// Package adtest holds every test that needs a real Active Directory: a
// Samba domain controller started once for the package. Samba's LDAP ports
// are fixed (389, 636, 3268, 3269), and go test runs packages in parallel,
// so no other package may start it; CLI tests against AD run the command
// in-process from here.
package adtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cfyauth/cfyauth/internal/cli"
	"github.com/cfyauth/cfyauth/internal/ldapprobe"
	"github.com/cfyauth/cfyauth/internal/ldapprobe/ldaptest"
	"github.com/cfyauth/cfyauth/internal/report"
)

var (
	samba    *ldaptest.Samba
	sambaErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cfyauth-adtest")
	if err == nil {
		samba, sambaErr = ldaptest.StartSamba(filepath.Join(dir, "samba"))
	} else {
		sambaErr = err
	}
	code := m.Run()
	if samba != nil {
		if err := samba.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// needSamba returns the domain controller, or skips (fails under
// CFYAUTH_REQUIRE_SERVERS=1) when it did not start.
func needSamba(t *testing.T) *ldaptest.Samba {
	t.Helper()
	if samba == nil {
		ldaptest.SambaUnavailable(t, sambaErr)
	}
	return samba
}

// adValues are settings for the test domain as the manager's AD mode uses
// it: ldaps, bind as {username}@{domain}, a service account, and the
// attributes AD entries have; extra changes them (nil removes a key).
func adValues(s *ldaptest.Samba, extra map[string]any) map[string]any {
	values := map[string]any{
		ldapprobe.KeyServer:            ldaptest.ADLDAPSURL,
		ldapprobe.KeyDomain:            ldaptest.ADDomain,
		ldapprobe.KeyIsActiveDirectory: true,
		ldapprobe.KeyCAPath:            s.CAFile(),
		ldapprobe.KeyUsername:          ldaptest.ADServiceUser,
		ldapprobe.KeyPassword:          ldaptest.ADServicePassword,
		ldapprobe.KeyAttributeUID:      "sAMAccountName",
		ldapprobe.KeyAttributeEmail:    "mail",
	}
	for k, v := range extra {
		if v == nil {
			delete(values, k)
			continue
		}
		values[k] = v
	}
	return values
}

func resolve(t *testing.T, values map[string]any) *ldapprobe.Settings {
	t.Helper()
	l := ldapprobe.Layer{Kind: ldapprobe.SourceFile, Detail: "test"}
	for k, v := range values {
		l.Set(k, v, "")
	}
	s, err := ldapprobe.Resolve([]ldapprobe.Layer{l})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if errs, _ := ldapprobe.Check(s, ldapprobe.CheckOptions{NeedServer: true}); len(errs) > 0 {
		t.Fatalf("settings: %v", errs)
	}
	return s
}

// recordingDialer dials like net.Dialer and remembers every address, to
// prove that referrals are never followed.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, address)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

func probe(t *testing.T, values map[string]any, opts ldapprobe.Options) (*ldapprobe.Result, *recordingDialer) {
	t.Helper()
	d := &recordingDialer{}
	opts.Settings = resolve(t, values)
	opts.Dialer = d
	res, err := ldapprobe.Probe(context.Background(), opts)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return res, d
}

func layer(t *testing.T, res *ldapprobe.Result, id string) report.Check {
	t.Helper()
	for _, c := range res.Servers[0].Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", id, res.Servers[0].Checks)
	return report.Check{}
}

func evidence(c report.Check, key string) string {
	for _, e := range c.Evidence {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

func expectStatus(t *testing.T, res *ldapprobe.Result, want map[string]report.Status) {
	t.Helper()
	for id, status := range want {
		if c := layer(t, res, id); c.Status != status {
			t.Errorf("%s: status %s (%s; hint %s), want %s", id, c.Status, c.Summary, c.Hint, status)
		}
	}
}

func expectContains(t *testing.T, what, text string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(text, p) {
			t.Errorf("%s %q does not contain %q", what, text, p)
		}
	}
}

// runCLI runs cfyauth in-process with buffers for its streams and returns
// the exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := cli.NewApp(&cli.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut},
		func(name string) string { return env[name] })
	code := app.Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

// writeSecret writes a password file only its owner may read.
func writeSecret(t *testing.T, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
