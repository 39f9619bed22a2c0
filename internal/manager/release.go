package manager

import (
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Release describes which Cloudify release era a layout belongs to, as far as
// its files tell.
type Release struct {
	// Era is a range of releases such as "7.0", "5.2-6.4" or "5.1", or
	// "unknown".
	Era string `json:"era"`
	// VenvPython is the X.Y of the virtualenv's lib/pythonX.Y folder.
	VenvPython string `json:"venv_python,omitempty"`
	// ServiceManager is systemd, supervisord or "" when the files name neither.
	ServiceManager string `json:"service_manager,omitempty"`
	// Legacy is set for Python 2.7 managers (Cloudify 5.0.5 and older),
	// which cfyauth does not support.
	Legacy bool `json:"legacy,omitempty"`
	// Source is the file the era was read from.
	Source string `json:"source"`
}

// DetectRelease reads the era from the sandbox marker, or else from the
// virtualenv's Python version and the service-manager files: Cloudify 5.1
// to 6.4 use Python 3.6, 7.0 a bundled 3.11, 5.0.5 and older Python 2.7.
func (l *Layout) DetectRelease() Release {
	r := Release{Era: "unknown", ServiceManager: l.serviceManagerSetting()}
	if libs := l.venvLibVersions(); len(libs) > 0 {
		r.VenvPython = libs[len(libs)-1]
	}
	// The supervisord files count for sandboxes too: a 7.0 sandbox, like a
	// 7.0 manager, has no service_management setting.
	hasSupervisord := l.Exists(SupervisordConf) || l.Exists(SupervisordRest)
	if r.ServiceManager == "" && hasSupervisord {
		r.ServiceManager = "supervisord"
	}
	if l.Sandbox != nil && l.Sandbox.Release != "" {
		r.Era = l.Sandbox.Release
		r.Source = SandboxMarker
		r.setSupervisordOnly()
		return r
	}
	r.Source = VenvDir + "/lib"
	switch {
	case r.VenvPython == "":
		r.Source = ""
	case strings.HasPrefix(r.VenvPython, "2."):
		r.Era = "5.0.5 or older"
		r.Legacy = true
	case r.VenvPython == "3.11":
		r.Era = "7.0"
	case hasSupervisord:
		r.Era = "5.2-6.4"
	default:
		r.Era = "5.1-6.4"
	}
	r.setSupervisordOnly()
	return r
}

// setSupervisordOnly names supervisord for Cloudify 7.0, which runs its
// services under supervisord only and has no service_management setting.
func (r *Release) setSupervisordOnly() {
	if r.ServiceManager == "" && r.Era == "7.0" {
		r.ServiceManager = "supervisord"
	}
}

// serviceManagerSetting returns service_management from the installer's
// config.yaml (5.1 to 6.4), or "".
func (l *Layout) serviceManagerSetting() string {
	data, err := os.ReadFile(l.mustPath(InstallerConfig))
	if err != nil {
		return ""
	}
	var cfg struct {
		ServiceManagement string `yaml:"service_management"`
	}
	if yaml.Unmarshal(data, &cfg) != nil {
		return ""
	}
	return cfg.ServiceManagement
}
