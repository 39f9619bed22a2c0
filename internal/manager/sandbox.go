package manager

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Releases that 'sandbox init' can lay out, with the virtualenv Python each
// shipped with and whether supervisord runs the REST service.
var sandboxReleases = map[string]struct {
	python      string
	supervisord bool
}{
	"5.1": {python: "3.6", supervisord: false},
	"6.4": {python: "3.6", supervisord: true},
	"7.0": {python: "3.11", supervisord: true},
}

// SandboxReleases lists the releases 'sandbox init' accepts.
func SandboxReleases() []string {
	var names []string
	for k := range sandboxReleases {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// SandboxOptions configure InitSandbox.
type SandboxOptions struct {
	Release string
	// UID and GID of cfyuser in the sandbox's etc/passwd; the caller's own
	// by default, so that an unprivileged user can install into the sandbox.
	UID, GID int
	Now      time.Time
}

// SandboxResult reports what InitSandbox did.
type SandboxResult struct {
	Root    string `json:"root"`
	Release string `json:"release"`
	Changed bool   `json:"changed"`
}

// InitSandbox lays out an empty manager file tree in dir that tells its
// release apart the way real managers do. It is built in a temporary folder
// beside dir and renamed into place, so a failure leaves nothing behind.
// Running it again on a sandbox of the same release changes nothing.
func InitSandbox(dir string, opts SandboxOptions) (SandboxResult, error) {
	rel, ok := sandboxReleases[opts.Release]
	if !ok {
		return SandboxResult{}, apperr.Usage("invalid_release", "unknown release %q", opts.Release).
			WithHint("use --release with one of: %s", strings.Join(SandboxReleases(), ", "))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return SandboxResult{}, apperr.Usage("invalid_path", "invalid folder %q: %v", dir, err)
	}
	result := SandboxResult{Root: abs, Release: opts.Release}

	entries, err := os.ReadDir(abs)
	switch {
	case err == nil && len(entries) > 0:
		data, readErr := os.ReadFile(filepath.Join(abs, SandboxMarker))
		var info SandboxInfo
		if readErr == nil && json.Unmarshal(data, &info) == nil {
			if info.Release == opts.Release {
				return result, nil
			}
			return result, apperr.Usage("sandbox_exists", "%s is already a sandbox of release %s", abs, info.Release).
				WithHint("remove it first (rm -r %s), or pick another folder for release %s", abs, opts.Release)
		}
		return result, apperr.Usage("folder_not_empty", "%s exists and is not empty", abs).
			WithHint("pick a new or empty folder for the sandbox")
	case err != nil && errors.Is(err, os.ErrPermission):
		return result, permissionError(abs, err)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return result, apperr.Usage("invalid_path", "cannot use %s: %v", abs, err).
			WithHint("pick a new or empty folder for the sandbox")
	}

	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return result, writeError(parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".tmp-")
	if err != nil {
		return result, writeError(parent, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return result, writeError(tmp, err)
	}
	if err := writeSandboxTree(tmp, opts, rel.python, rel.supervisord); err != nil {
		return result, writeError(tmp, err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		return result, writeError(abs, err)
	}
	result.Changed = true
	return result, nil
}

func writeError(path string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return permissionError(path, err)
	}
	return apperr.Environment("write_failed", "cannot write %s: %v", path, err).Wrap(err)
}

func writeSandboxTree(root string, opts SandboxOptions, python string, supervisord bool) error {
	premium := filepath.Join(VenvDir, "lib", "python"+python, "site-packages", "cloudify_premium")
	dirs := map[string]os.FileMode{
		AuthenticatorsDir:           0o750,
		"/opt/manager/resources":    0o755,
		"/opt/manager/env/bin":      0o755,
		premium + "/authentication": 0o755,
		"/etc/cloudify/ssl":         0o755,
		RestLogDir:                  0o750,
		StateDir:                    0o755,
		"/etc/cfyauth":              0o755,
		"/usr/lib/systemd/system":   0o755,
		"/var/run":                  0o755,
	}
	if supervisord {
		dirs["/etc/supervisord.d"] = 0o755
	}
	for d, mode := range dirs {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}

	serviceManager := "systemd"
	if supervisord {
		serviceManager = "supervisord"
	}
	installerConfig := "# Cloudify Manager installer settings (cfyauth sandbox)\nmanager:\n  hostname: localhost\n"
	if opts.Release != "7.0" {
		installerConfig += "service_management: " + serviceManager + "\n"
	}
	marker, err := json.MarshalIndent(SandboxInfo{Release: opts.Release, Created: opts.Now.UTC().Format(time.RFC3339)}, "", "  ")
	if err != nil {
		return err
	}
	files := map[string]string{
		PasswdFile:                              fmt.Sprintf("root:x:0:0:root:/root:/bin/bash\n%s:x:%d:%d::/etc/cloudify:/sbin/nologin\n", ServiceUser, opts.UID, opts.GID),
		GroupFile:                               fmt.Sprintf("root:x:0:\n%s:x:%d:\n", ServiceUser, opts.GID),
		InstallerConfig:                         installerConfig,
		SandboxMarker:                           string(marker) + "\n",
		premium + "/__init__.py":                "",
		premium + "/authentication/__init__.py": "",
		premium + "/authentication/ldap_authentication.py": builtinStub("LDAP"),
		premium + "/authentication/okta_authentication.py": builtinStub("OKTA (SAML 2.0)"),
		SystemdRestUnit: "[Unit]\nDescription=Cloudify REST service (cfyauth sandbox)\n\n[Service]\nUser=cfyuser\nGroup=cfyuser\nExecStart=/opt/manager/env/bin/gunicorn manager_rest.wsgi:app\n\n[Install]\nWantedBy=multi-user.target\n",
		RestLogDir + "/cloudify-rest-service.log": "",
	}
	if supervisord {
		files[SupervisordConf] = "[unix_http_server]\nfile=/var/run/supervisord.sock\nchmod=0770\nchown=cfyuser:cfyuser\n\n" +
			"[supervisord]\nnodaemon=false\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n" +
			"[supervisorctl]\nserverurl=unix:///var/run/supervisord.sock\n\n[include]\nfiles=/etc/supervisord.d/*.conf\n"
		files[SupervisordRest] = "[program:cloudify-restservice]\ncommand=/etc/cloudify/restservice-wrapper-script.sh\nuser=cfyuser\nautostart=true\n"
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func builtinStub(kind string) string {
	return "# Sandbox stand-in for the premium " + kind + " authenticator.\n" +
		"# A real manager ships the module in the cloudify_premium package; cfyauth\n" +
		"# lists it as built-in and never writes it.\n"
}
