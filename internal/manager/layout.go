// Package manager describes a Cloudify Manager's file layout under a root
// folder (/ on a manager host, or a sandbox or mounted image): its paths, its
// Python interpreter, its release era and the cfyuser account.
package manager

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Paths of a manager, relative to the root. They hold for Cloudify 5.1 to 7.0.
const (
	ManagerDir        = "/opt/manager"
	AuthenticatorsDir = "/opt/manager/resources/authenticators"
	VenvDir           = "/opt/manager/env"
	VenvPython        = "/opt/manager/env/bin/python"
	// PremiumAuthGlob matches the premium package's own authenticator folder in
	// the manager's virtualenv, whatever its Python version.
	PremiumAuthGlob   = "/opt/manager/env/lib/python*/site-packages/cloudify_premium/authentication"
	StateDir          = "/var/lib/cfyauth"
	SandboxMarker     = "/var/lib/cfyauth/sandbox.json"
	OktaCertificate   = "/etc/cloudify/ssl/okta_certificate.pem"
	InstallerConfig   = "/etc/cloudify/config.yaml"
	SupervisordConf   = "/etc/supervisord.conf"
	SupervisordSocket = "/var/run/supervisord.sock"
	SupervisordRest   = "/etc/supervisord.d/cloudify-restservice.cloudify.conf"
	SystemdRestUnit   = "/usr/lib/systemd/system/cloudify-restservice.service"
	RestLogDir        = "/var/log/cloudify/rest"
	PasswdFile        = "/etc/passwd"
	GroupFile         = "/etc/group"
)

// Layout is a manager's file tree under Root.
type Layout struct {
	// Root is the absolute, cleaned root folder.
	Root string
	// Sandbox is set when the root was made by 'cfyauth sandbox init'.
	Sandbox *SandboxInfo
}

// SandboxInfo is the marker file that 'cfyauth sandbox init' writes.
type SandboxInfo struct {
	Release string `json:"release"`
	Created string `json:"created"`
}

// Open checks that root exists and holds a manager layout. A missing root is
// a usage error; a root without /opt/manager is an environment error whose
// hint points at --root and 'cfyauth sandbox init'.
func Open(root string) (*Layout, error) {
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, apperr.Usage("invalid_root", "invalid --root %q: %v", root, err)
	}
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, apperr.Usage("invalid_root", "--root %s does not exist", abs).
			WithHint("pass an existing folder, or create a sandbox with 'cfyauth sandbox init %s'", abs)
	case errors.Is(err, os.ErrPermission):
		return nil, permissionError(abs, err)
	case err != nil:
		return nil, apperr.Usage("invalid_root", "cannot use --root %s: %v", abs, err)
	case !info.IsDir():
		return nil, apperr.Usage("invalid_root", "--root %s is not a folder", abs).
			WithHint("pass the folder that holds the manager's opt/, etc/ and var/")
	}
	l := &Layout{Root: abs}
	mgr, err := l.Path(ManagerDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(mgr); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, permissionError(mgr, err)
		}
		e := apperr.Environment("manager_not_found", "no Cloudify Manager found under %s: %s does not exist", abs, mgr)
		if abs == "/" {
			e.WithHint("run cfyauth on a manager host, or pass --root DIR for a sandbox or a mounted manager image")
		} else {
			e.WithHint("pass the root of a manager file tree with --root")
		}
		return nil, e.WithHint("create a sandbox to try cfyauth: cfyauth sandbox init /tmp/cfyauth-sandbox")
	}
	if data, err := os.ReadFile(l.mustPath(SandboxMarker)); err == nil {
		var s SandboxInfo
		if json.Unmarshal(data, &s) == nil {
			l.Sandbox = &s
		}
	}
	if r := l.DetectRelease(); r.Legacy {
		return nil, apperr.Environment("manager_unsupported",
			"the manager under %s runs Python %s (Cloudify %s), which cfyauth does not support", abs, r.VenvPython, r.Era).
			WithHint("cfyauth supports Cloudify 5.1 and later; upgrade the manager first")
	}
	return l, nil
}

// Path returns the host path of a manager path. Symlinks met on the way are
// resolved inside the root, as if the root were /, so nothing under a
// sandbox or image can point cfyauth at the host's own files.
func (l *Layout) Path(p string) (string, error) {
	if l.Root == "/" {
		return filepath.Clean(p), nil
	}
	resolved, err := securejoin.SecureJoin(l.Root, p)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return "", permissionError(filepath.Join(l.Root, p), err)
		}
		return "", apperr.Environment("path_unresolvable", "cannot resolve %s under %s: %v", p, l.Root, err).
			WithHint("check the symlinks on that path under the root")
	}
	return resolved, nil
}

func (l *Layout) mustPath(p string) string {
	resolved, err := l.Path(p)
	if err != nil {
		return filepath.Join(l.Root, p)
	}
	return resolved
}

// Display returns a path as the operator should read it: the manager path
// itself on a real host, the host path under a sandbox or image.
func (l *Layout) Display(p string) string {
	return l.mustPath(p)
}

// Authenticators returns the folder the REST service loads modules from.
func (l *Layout) Authenticators() (string, error) { return l.Path(AuthenticatorsDir) }

// State returns cfyauth's own state folder.
func (l *Layout) State() (string, error) { return l.Path(StateDir) }

// PremiumAuthDirs returns the premium package's authenticator folders that
// exist, newest Python first. There is normally one.
func (l *Layout) PremiumAuthDirs() []string {
	libs := l.venvLibVersions()
	var dirs []string
	for i := len(libs) - 1; i >= 0; i-- {
		p := l.mustPath(filepath.Join(VenvDir, "lib", "python"+libs[i], "site-packages/cloudify_premium/authentication"))
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			dirs = append(dirs, p)
		}
	}
	return dirs
}

// venvLibVersions lists the pythonX.Y folders in the manager's virtualenv,
// sorted by version, such as ["3.6"].
func (l *Layout) venvLibVersions() []string {
	lib := l.mustPath(filepath.Join(VenvDir, "lib"))
	entries, err := os.ReadDir(lib)
	if err != nil {
		return nil
	}
	var versions []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "python") && len(name) > len("python") {
			versions = append(versions, strings.TrimPrefix(name, "python"))
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
	return versions
}

// Exists reports whether the manager path exists under the root.
func (l *Layout) Exists(p string) bool {
	resolved, err := l.Path(p)
	if err != nil {
		return false
	}
	_, err = os.Stat(resolved)
	return err == nil
}

func permissionError(path string, err error) *apperr.Error {
	return apperr.Environment("permission_denied", "permission denied on %s", path).
		Wrap(err).WithHint("run cfyauth as root (sudo cfyauth …), or as a user that can read the manager's files")
}

// versionLess compares dotted version strings numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		var x, y int
		fmt.Sscan(as[i], &x)
		fmt.Sscan(bs[i], &y)
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
