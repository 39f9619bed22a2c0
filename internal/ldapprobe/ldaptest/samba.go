package ldaptest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The Samba test domain's fixed names and passwords, as
// scripts/testenv/samba-ad.sh provisions them.
const (
	ADDomain          = "example.test"
	ADBaseDN          = "DC=example,DC=test"
	ADUsersDN         = "CN=Users," + ADBaseDN
	ADServiceUser     = "svc-bind"
	ADServicePassword = "Svc-Passw0rd!"
	ADUserPassword    = "User-Passw0rd!"
	// ADLDAPSURL, ADLDAPURL and ADGlobalCatalogURL are fixed: Samba cannot
	// listen on other ports.
	ADLDAPSURL         = "ldaps://127.0.0.1:636"
	ADLDAPURL          = "ldap://127.0.0.1:389"
	ADGlobalCatalogURL = "ldap://127.0.0.1:3268"
)

// SambaInstallCommand installs Samba; messages about a missing server name
// it.
const SambaInstallCommand = "bash scripts/testenv/samba-ad.sh install"

// Samba is a running Active Directory domain controller.
type Samba struct {
	Dir string
	PID int
}

// CAFile returns the PEM file of the CA that signed Samba's certificate.
func (s *Samba) CAFile() string { return filepath.Join(s.Dir, "tls", "ca.pem") }

// SambaScript returns the path of scripts/testenv/samba-ad.sh.
func SambaScript() string { return filepath.Join(RepoRoot(), "scripts", "testenv", "samba-ad.sh") }

// SambaInstalled reports whether samba, samba-tool and the OpenLDAP client
// tools exist.
func SambaInstalled() error {
	return toolsInstalled(SambaInstallCommand, "samba", "samba-tool", "ldapmodify")
}

// StartSamba provisions a fresh domain in dir and starts Samba on its fixed
// ports on 127.0.0.1. Only one test package may call it, because those
// ports cannot change.
func StartSamba(dir string) (*Samba, error) {
	if err := SambaInstalled(); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("start samba: no working folder")
	}
	s := &Samba{Dir: dir}
	if out, err := s.script("start"); err != nil {
		return nil, fmt.Errorf("start samba: %w\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "samba.pid"))
	if err != nil {
		return nil, fmt.Errorf("start samba: read its PID: %w", err)
	}
	if s.PID, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
		return nil, fmt.Errorf("start samba: bad PID file: %w", err)
	}
	return s, nil
}

// Stop stops Samba by the PID the script recorded and removes its folder.
func (s *Samba) Stop() error {
	if out, err := s.script("stop"); err != nil {
		return fmt.Errorf("stop samba %d: %w\n%s", s.PID, err, out)
	}
	return nil
}

func (s *Samba) script(command string) ([]byte, error) {
	cmd := exec.Command("bash", SambaScript(), command)
	cmd.Env = append(os.Environ(), "SAMBA_DIR="+s.Dir, "SAMBA_MAX_RUNTIME=1800",
		"PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	return cmd.CombinedOutput()
}

// SambaUnavailable skips a test whose Samba could not start, or fails it
// when CFYAUTH_REQUIRE_SERVERS=1 requires every server.
func SambaUnavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
		t.Fatalf("Samba AD is required (CFYAUTH_REQUIRE_SERVERS=1) but not available: %v", err)
	}
	t.Skipf("Samba AD not available, skipping: %v (install it with: %s)", err, SambaInstallCommand)
}
