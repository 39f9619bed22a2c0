package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Python is the interpreter that validate and test run embedded programs with.
type Python struct {
	// Path is the executable as it is run.
	Path string `json:"path"`
	// Version is the full X.Y.Z version.
	Version string `json:"version"`
	// Source says how it was chosen: flag, manager virtualenv or sandbox fallback.
	Source string `json:"source"`
	// Warning is set when cfyauth fell back to a Python that is not the
	// manager's own.
	Warning string `json:"warning,omitempty"`
}

// MinorVersion returns X.Y.
func (p Python) MinorVersion() string {
	parts := strings.SplitN(p.Version, ".", 3)
	if len(parts) < 2 {
		return p.Version
	}
	return parts[0] + "." + parts[1]
}

// FindPython returns the manager's interpreter: explicit (from --python) when
// set, else <root>/opt/manager/env/bin/python. Inside a sandbox only, a plain
// python3 from PATH is used when the root has no runnable interpreter, with a
// warning. Python older than 3.6, including a Python 2.7 manager, is
// rejected with exit 3.
func (l *Layout) FindPython(ctx context.Context, explicit string, lookPath func(string) (string, error)) (Python, error) {
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	var candidate Python
	switch {
	case explicit != "":
		path := explicit
		if !strings.Contains(explicit, "/") {
			found, err := lookPath(explicit)
			if err != nil {
				return Python{}, apperr.Usage("python_not_found", "--python %s: not found on PATH", explicit).
					WithHint("pass the full path of the manager's interpreter, such as --python /opt/manager/env/bin/python")
			}
			path = found
		}
		if err := checkExecutable(path); err != nil {
			return Python{}, apperr.Usage("python_not_found", "--python %s: %v", explicit, err).
				WithHint("pass the full path of the manager's interpreter, such as --python /opt/manager/env/bin/python")
		}
		candidate = Python{Path: path, Source: "flag --python"}
	default:
		venv, err := l.Path(VenvPython)
		if err != nil {
			return Python{}, err
		}
		if l.Root == "/" {
			venv = VenvPython
		}
		if checkExecutable(venv) == nil {
			candidate = Python{Path: venv, Source: "manager virtualenv"}
			break
		}
		if l.Sandbox == nil {
			return Python{}, apperr.Environment("python_not_found", "the manager's Python %s is missing or not executable", l.Display(VenvPython)).
				WithHint("pass the manager's interpreter with --python PATH")
		}
		found, err := lookPath("python3")
		if err != nil {
			return Python{}, apperr.Environment("python_not_found", "the sandbox has no Python at %s and python3 is not on PATH", l.Display(VenvPython)).
				WithHint("install python3, or pass an interpreter with --python PATH")
		}
		candidate = Python{
			Path:    found,
			Source:  "sandbox fallback (python3 on PATH)",
			Warning: fmt.Sprintf("using %s because the sandbox has no manager Python; a real manager checks modules with its own Python", found),
		}
	}

	version, err := probeVersion(ctx, candidate.Path)
	if err != nil {
		return Python{}, err
	}
	candidate.Version = version
	if strings.HasPrefix(version, "2.") || versionLess(version, "3.6") {
		return Python{}, apperr.Environment("python_unsupported",
			"%s is Python %s; cfyauth supports managers with Python 3.6 or later (Cloudify 5.1 and later)", candidate.Path, version).
			WithHint("Cloudify 5.0.5 and older run Python 2.7 and are not supported; upgrade the manager, or pass a Python 3 interpreter with --python")
	}
	return candidate, nil
}

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no such file")
		}
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("is a folder, not an interpreter")
	}
	if st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("is not executable")
	}
	return nil
}

// probeVersion runs the interpreter once to read its version. The program
// is valid Python 2 and 3, so a Python 2 interpreter is recognised and named
// rather than failing with a syntax error.
func probeVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-c", "import sys; sys.stdout.write('%d.%d.%d' % tuple(sys.version_info[:3]))")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return "", apperr.Environment("python_unusable", "%s did not print its version within 15s", path).
				WithHint("pass a working interpreter with --python PATH")
		}
		return "", apperr.Environment("python_unusable", "cannot run %s: %v", path, err).
			WithHint("pass a working interpreter with --python PATH")
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return "", apperr.Environment("python_unusable", "%s printed no version", path).
			WithHint("pass a working interpreter with --python PATH")
	}
	return v, nil
}
