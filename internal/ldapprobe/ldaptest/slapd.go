// Package ldaptest runs the LDAP servers the cfyauth tests talk to: a real
// OpenLDAP slapd started by scripts/testenv/slapd.sh, and small loopback
// fault servers for what slapd cannot do on demand. Everything listens on
// 127.0.0.1 only.
package ldaptest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The fixture's fixed names and passwords, as scripts/testenv/slapd.sh
// loads them.
const (
	BaseDN          = "dc=example,dc=org"
	Domain          = "example.org"
	UsersDN         = "ou=users," + BaseDN
	GroupsDN        = "ou=groups," + BaseDN
	ServiceDN       = "cn=svc-bind,ou=services," + BaseDN
	ServicePassword = "svc-secret"
	UserPassword    = "user-secret"
)

// The fixed ports of the main test slapd.
const (
	DefaultPort    = 38900
	DefaultTLSPort = 38901
)

// InstallCommand installs slapd; messages about a missing server name it.
const InstallCommand = "bash scripts/testenv/slapd.sh install"

// Options select how a slapd starts.
type Options struct {
	// Dir is the working folder; it is wiped on start and stop.
	Dir string
	// Port and TLSPort are the plain and ldaps ports; 0 picks free ones.
	Port, TLSPort int
	// MemberOf is overlay (default), dynlist or none.
	MemberOf string
}

// Slapd is a running test server.
type Slapd struct {
	Dir      string
	Port     int
	TLSPort  int
	PID      int
	MemberOf string
}

// URL returns the plain ldap:// URL.
func (s *Slapd) URL() string { return fmt.Sprintf("ldap://127.0.0.1:%d", s.Port) }

// TLSURL returns the ldaps:// URL.
func (s *Slapd) TLSURL() string { return fmt.Sprintf("ldaps://127.0.0.1:%d", s.TLSPort) }

// Addr returns the plain port's address.
func (s *Slapd) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// CAFile returns the PEM file of the CA that signed the server certificate.
func (s *Slapd) CAFile() string { return filepath.Join(s.Dir, "tls", "ca.pem") }

// RepoRoot returns the repository root, found from this file's path.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Script returns the path of scripts/testenv/slapd.sh.
func Script() string { return filepath.Join(RepoRoot(), "scripts", "testenv", "slapd.sh") }

// Installed reports whether slapd and the OpenLDAP client tools exist.
func Installed() error {
	return toolsInstalled(InstallCommand, "slapd", "ldapwhoami", "ldapadd")
}

// toolsInstalled reports the first tool found neither on PATH nor in
// /usr/sbin, naming the command that installs it.
func toolsInstalled(install string, tools ...string) error {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/sbin", tool)); err != nil {
				return fmt.Errorf("%s is not installed (run: %s)", tool, install)
			}
		}
	}
	return nil
}

// Start starts a fresh slapd with the test data.
func Start(opts Options) (*Slapd, error) {
	if err := Installed(); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("start slapd: no working folder")
	}
	if opts.MemberOf == "" {
		opts.MemberOf = "overlay"
	}
	var err error
	if opts.Port == 0 {
		if opts.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if opts.TLSPort == 0 {
		if opts.TLSPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	s := &Slapd{Dir: opts.Dir, Port: opts.Port, TLSPort: opts.TLSPort, MemberOf: opts.MemberOf}
	if out, err := s.script("start"); err != nil {
		return nil, fmt.Errorf("start slapd: %w\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir, "slapd.pid.launch"))
	if err != nil {
		return nil, fmt.Errorf("start slapd: read its PID: %w", err)
	}
	if s.PID, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
		return nil, fmt.Errorf("start slapd: bad PID file: %w", err)
	}
	return s, nil
}

// Stop stops the server by the PID the script recorded and removes its
// folder.
func (s *Slapd) Stop() error {
	if out, err := s.script("stop"); err != nil {
		return fmt.Errorf("stop slapd %d: %w\n%s", s.PID, err, out)
	}
	return nil
}

func (s *Slapd) script(command string) ([]byte, error) {
	cmd := exec.Command("bash", Script(), command)
	cmd.Env = append(os.Environ(),
		"SLAPD_DIR="+s.Dir,
		"LDAP_PORT="+strconv.Itoa(s.Port),
		"LDAPS_PORT="+strconv.Itoa(s.TLSPort),
		"SLAPD_MEMBEROF="+s.MemberOf,
		"PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Unavailable skips a test whose server could not start, or fails it when
// CFYAUTH_REQUIRE_SERVERS=1 says every server must be there.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
		t.Fatalf("slapd is required (CFYAUTH_REQUIRE_SERVERS=1) but not available: %v", err)
	}
	t.Skipf("slapd not available, skipping: %v (install it with: %s)", err, InstallCommand)
}
