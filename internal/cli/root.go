package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// GlobalOptions are the flags every command accepts.
type GlobalOptions struct {
	Root           string
	Python         string
	ManagerURL     string
	CACert         string
	BusAddress     string
	Output         string
	Quiet          bool
	Verbose        int
	NoColor        bool
	NonInteractive bool
	Yes            bool
	Strict         bool
	LockTimeout    time.Duration

	// Sources records where each setting's value came from, for -v.
	Sources map[string]string
}

// ConfigPath is the path of the optional settings file, under --root.
const ConfigPath = "/etc/cfyauth/config.yaml"

func newRootCmd(app *App) *cobra.Command {
	g := app.Global
	root := &cobra.Command{
		Use:   "cfyauth",
		Short: "Manage the external-authentication modules of a Cloudify Manager",
		Long: `cfyauth installs, lists, enables, disables and tests the Python authenticator
modules that a Cloudify Manager's REST service (cloudify-restservice) loads at
start, checks LDAP and OKTA settings against live servers, and restarts the
REST service until it is healthy again.

Every command works non-interactively, is idempotent, prints JSON with
-o json, and exits with a documented code: 0 success, 1 failed, 2 usage
error, 3 environment not usable, 4 changes pending, 130 interrupted.`,
		Example: `  # Try cfyauth on a sandbox instead of a real manager
  cfyauth sandbox init /tmp/mgr --release 7.0
  cfyauth --root /tmp/mgr validate examples/authenticators/meme_auth.py`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			app.command = commandName(cmd)
			app.runStarted = true
			return app.resolveGlobals(cmd)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return apperr.Usage("invalid_flag", "%s", err.Error()).
			WithHint("run '%s --help' to see the flags", cmd.CommandPath())
	})

	pf := root.PersistentFlags()
	pf.StringVar(&g.Root, "root", "/", "prefix for every manager path, like rpm --root: a sandbox or a mounted image (env CFYAUTH_ROOT)")
	pf.StringVar(&g.Python, "python", "", "the manager's Python interpreter used by validate and test (default <root>/opt/manager/env/bin/python; env CFYAUTH_PYTHON)")
	pf.StringVar(&g.ManagerURL, "manager-url", "", "URL of the manager's REST API (env CFYAUTH_MANAGER_URL)")
	pf.StringVar(&g.CACert, "ca-cert", "", "CA certificate file for the manager's REST API (env CFYAUTH_CA_CERT)")
	pf.StringVar(&g.BusAddress, "bus-address", "", "D-Bus address of the system bus (env CFYAUTH_BUS_ADDRESS, else DBUS_SYSTEM_BUS_ADDRESS)")
	pf.StringVarP(&g.Output, "output", "o", "table", "output format: table or json (env CFYAUTH_OUTPUT)")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "print only results and errors")
	pf.CountVarP(&g.Verbose, "verbose", "v", "print where settings came from and what cfyauth does; repeat for more")
	pf.BoolVar(&g.NoColor, "no-color", false, "disable colour (also set by NO_COLOR)")
	pf.BoolVar(&g.NonInteractive, "non-interactive", false, "never prompt; a missing answer is a usage error (automatic when stdin is not a terminal)")
	pf.BoolVarP(&g.Yes, "yes", "y", false, "answer yes to confirmations")
	pf.BoolVar(&g.Strict, "strict", false, "treat warnings as failures (exit 1)")
	pf.DurationVar(&g.LockTimeout, "lock-timeout", 10*time.Second, "how long to wait for another cfyauth run's lock (env CFYAUTH_LOCK_TIMEOUT)")

	root.AddCommand(
		newVersionCmd(app),
		newCompletionCmd(app),
		newSandboxCmd(app),
		newValidateCmd(app, nil),
		newTestLoginCmd(app, nil),
		newLDAPCmd(app),
		newInstallCmd(app, nil), newListCmd(app, nil), newShowCmd(app, nil), newEnableCmd(app, nil), newDisableCmd(app, nil), newRemoveCmd(app, nil), newAdoptCmd(app, nil), newRollbackCmd(app, nil),
		newRestartCmd(app, nil),
		newStatusCmd(app, nil),
		newOktaCmd(app),
		newTestCmd(app, nil),
	)
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(root.FlagErrorFunc())
	}
	return root
}

// setting is one global option that may come from a flag, an environment
// variable or the settings file, in that order of precedence.
type setting struct {
	name      string // flag name
	env       string // environment variable
	configKey string // key in config.yaml; empty when the file may not set it
	apply     func(string) error
}

func (a *App) resolveGlobals(cmd *cobra.Command) error {
	g := a.Global
	g.Sources = map[string]string{}
	flags := cmd.Flags()

	strSetter := func(dst *string) func(string) error {
		return func(v string) error { *dst = v; return nil }
	}
	boolSetter := func(dst *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			*dst = b
			return nil
		}
	}
	settings := []setting{
		{"root", "CFYAUTH_ROOT", "", strSetter(&g.Root)},
		{"python", "CFYAUTH_PYTHON", "python", strSetter(&g.Python)},
		{"manager-url", "CFYAUTH_MANAGER_URL", "manager_url", strSetter(&g.ManagerURL)},
		{"ca-cert", "CFYAUTH_CA_CERT", "ca_cert", strSetter(&g.CACert)},
		{"bus-address", "CFYAUTH_BUS_ADDRESS", "bus_address", strSetter(&g.BusAddress)},
		{"output", "CFYAUTH_OUTPUT", "output", strSetter(&g.Output)},
		{"non-interactive", "CFYAUTH_NON_INTERACTIVE", "non_interactive", boolSetter(&g.NonInteractive)},
		{"strict", "CFYAUTH_STRICT", "strict", boolSetter(&g.Strict)},
		{"lock-timeout", "CFYAUTH_LOCK_TIMEOUT", "lock_timeout", func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("%q is not a duration such as 10s or 2m", v)
			}
			g.LockTimeout = d
			return nil
		}},
	}

	// The root comes first because the settings file lives under it.
	var config map[string]any
	var configFile string
	for i, s := range settings {
		if flags.Changed(s.name) {
			g.Sources[s.name] = "flag --" + s.name
		} else if v := a.Getenv(s.env); v != "" {
			if err := s.apply(v); err != nil {
				return apperr.Usage("invalid_environment", "invalid value of %s: %v", s.env, err).
					WithHint("fix or unset %s", s.env)
			}
			g.Sources[s.name] = "environment " + s.env
		} else if s.configKey != "" && config != nil {
			if raw, ok := config[s.configKey]; ok {
				if err := s.apply(fmt.Sprint(raw)); err != nil {
					return apperr.Usage("invalid_config", "invalid value of %s in %s: %v", s.configKey, configFile, err).
						WithHint("fix %s in %s", s.configKey, configFile)
				}
				g.Sources[s.name] = "settings file " + configFile
			}
		}
		if g.Sources[s.name] == "" {
			g.Sources[s.name] = "default"
		}
		if i == 0 {
			var err error
			configFile, config, err = a.loadConfig()
			if err != nil {
				return err
			}
		}
	}

	if g.Output != "table" && g.Output != "json" {
		bad := g.Output
		g.Output = "table"
		return apperr.Usage("invalid_output", "invalid output format %q", bad).
			WithHint("use -o table or -o json")
	}
	if a.Getenv("NO_COLOR") != "" {
		g.NoColor = true
	}
	if !a.IO.StdinTTY && !g.NonInteractive {
		g.NonInteractive = true
		g.Sources["non-interactive"] = "stdin is not a terminal"
	}
	if g.Quiet && g.Verbose > 0 {
		return apperr.Usage("invalid_flag", "-q and -v cannot be used together").
			WithHint("pick one of -q (quiet) or -v (verbose)")
	}
	for _, s := range settings {
		a.Debugf("%s = %q (from %s)", s.name, a.settingValue(s.name), g.Sources[s.name])
	}
	return nil
}

func (a *App) settingValue(name string) string {
	g := a.Global
	switch name {
	case "root":
		return g.Root
	case "python":
		return g.Python
	case "manager-url":
		return g.ManagerURL
	case "ca-cert":
		return g.CACert
	case "bus-address":
		return g.BusAddress
	case "output":
		return g.Output
	case "non-interactive":
		return strconv.FormatBool(g.NonInteractive)
	case "strict":
		return strconv.FormatBool(g.Strict)
	case "lock-timeout":
		return g.LockTimeout.String()
	}
	return ""
}

// loadConfig reads <root>/etc/cfyauth/config.yaml when it exists. A file that
// does not parse is a usage error naming the file, never silently ignored.
func (a *App) loadConfig() (string, map[string]any, error) {
	path := filepath.Join(a.Global.Root, ConfigPath)
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) || strings.Contains(err.Error(), "not a directory") {
			return path, nil, nil
		}
		if os.IsPermission(err) {
			return path, nil, apperr.Environment("permission_denied", "cannot read %s: permission denied", path).
				WithHint("run cfyauth as root, or fix the file's permissions")
		}
		return path, nil, nil
	}
	config := map[string]any{}
	if err := yaml.Unmarshal(data, &config); err != nil {
		return path, nil, apperr.Usage("invalid_config", "cannot parse %s: %v", path, err).
			WithHint("fix the YAML in %s, or move it away", path)
	}
	known := map[string]bool{"python": true, "manager_url": true, "ca_cert": true, "bus_address": true,
		"output": true, "non_interactive": true, "strict": true, "lock_timeout": true}
	for k := range config {
		if !known[k] {
			a.Warnf("unknown key %q in %s is ignored", k, path)
		}
	}
	return path, config, nil
}

// noArgs rejects positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return apperr.Usage("invalid_arguments", "%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " ")).
			WithHint("run '%s --help'", cmd.CommandPath())
	}
	return nil
}

// minArgs requires at least n positional arguments, naming what is missing.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return apperr.Usage("missing_argument", "%s needs %s", cmd.CommandPath(), what).
				WithHint("run '%s --help' for examples", cmd.CommandPath())
		}
		return nil
	}
}

// exactArgs requires exactly n positional arguments.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return apperr.Usage("invalid_arguments", "%s needs %s, got %d arguments", cmd.CommandPath(), what, len(args)).
				WithHint("run '%s --help' for examples", cmd.CommandPath())
		}
		return nil
	}
}
