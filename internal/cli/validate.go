package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/report"
)

// ValidateOptions are the inputs of 'cfyauth validate'.
type ValidateOptions struct {
	Args    []string
	Name    string
	Timeout time.Duration
}

// validateOutput is the JSON document of 'cfyauth validate'.
type validateOutput struct {
	Interpreter modules.Interpreter  `json:"interpreter"`
	Modules     []modules.Validation `json:"modules"`
	Summary     map[string]int       `json:"summary"`
}

func newValidateCmd(app *App, runF func(*ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate SOURCE|NAME...",
		Short: "Check authenticator modules statically with the manager's Python",
		Long: `Check authenticator modules without running their code. For each module
validate checks that the file is UTF-8 Python source of at most 1 MiB, that
its name is a valid module name that shadows nothing, that it compiles with
the manager's Python version, that it binds a module-level 'configure', and
that a class derives from AuthBase and defines _authenticate_request.

An argument that contains a slash or ends in .py is a file; '-' reads the
source from stdin (then --name is required); anything else is the name of an
installed module. All modules are checked by one Python process.

Exit status: 0 when every module passes (warnings allowed unless --strict),
1 when any check fails, 2 for usage errors, 3 when no usable interpreter or
manager layout is found.`,
		Example: `  cfyauth validate ./my_auth.py
  cfyauth validate my_auth ldap_bridge -o json
  cat my_auth.py | cfyauth validate - --name my_auth
  cfyauth --root /tmp/mgr validate examples/authenticators/*.py`,
		Args:              minArgs(1, "at least one module file or name"),
		ValidArgsFunction: completeModuleNames(app, moduleNamesInstalled, manyNames, withFiles),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Args = args
			if runF != nil {
				return runF(opts)
			}
			return runValidate(cmd, app, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "module name for a single SOURCE (required when SOURCE is -)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 0, "how long the Python validator may run for the whole batch (default 30s plus 100ms per module)")
	return cmd
}

// isSourceArg reports whether an argument names a file (or stdin) rather
// than an installed module.
func isSourceArg(arg string) bool {
	return arg == "-" || strings.Contains(arg, "/") || strings.HasSuffix(arg, ".py")
}

func runValidate(cmd *cobra.Command, app *App, opts *ValidateOptions) error {
	ctx := cmd.Context()
	if opts.Name != "" && len(opts.Args) != 1 {
		return apperr.Usage("invalid_flag", "--name applies to a single SOURCE, got %d arguments", len(opts.Args)).
			WithHint("validate one file at a time when you set --name")
	}
	stdinUsed := false
	allSources := true
	for _, a := range opts.Args {
		if a == "-" {
			if stdinUsed {
				return apperr.Usage("invalid_arguments", "'-' (stdin) may appear only once")
			}
			stdinUsed = true
			if opts.Name == "" {
				return apperr.Usage("missing_flag", "reading a module from stdin needs --name").
					WithHint("run: %s < my_auth.py", app.cfyauthCommand("validate - --name my_auth"))
			}
		}
		if !isSourceArg(a) {
			allSources = false
		}
	}

	var layout *manager.Layout
	if !(allSources && app.Global.Python != "") || app.Global.Root != "/" {
		var err error
		layout, err = manager.Open(app.Global.Root)
		if err != nil {
			return err
		}
	}

	candidates := make([]modules.Candidate, 0, len(opts.Args))
	for _, a := range opts.Args {
		candidates = append(candidates, readCandidate(app, layout, a, opts.Name))
	}

	py, err := findPython(cmd, app, layout)
	if err != nil {
		return err
	}
	syntax := syntaxVersion(layout, py)
	results, interp, err := modules.Validate(ctx, candidates, modules.ValidateOptions{Python: py.Path, Timeout: opts.Timeout, SyntaxVersion: syntax})
	if err != nil {
		return err
	}
	if interp.Version == "" {
		interp.Version = py.Version
	}

	var all []report.Check
	summary := map[string]int{"pass": 0, "warn": 0, "fail": 0}
	failed := 0
	for _, r := range results {
		all = append(all, r.Checks...)
		summary[string(r.Status)]++
		if report.Failed(r.Checks, app.Global.Strict) {
			failed++
		}
	}
	out := validateOutput{Interpreter: interp, Modules: results, Summary: summary}
	var failure *apperr.Error
	if failed > 0 {
		failure = apperr.Failed("validation_failed", "%d of %d modules failed validation", failed, len(results))
		if app.Global.Strict && summary["fail"] == 0 {
			failure.WithHint("warnings count as failures because --strict is set")
		}
		if app.JSON() {
			failure.WithHint("each failing check and its hint are in modules[].checks")
		} else {
			failure.WithHint("fix what the failing checks in the table name; add -v to see their evidence")
		}
	}

	if app.JSON() {
		if failure != nil {
			if err := app.WriteJSONFailed(out, failure); err != nil {
				return err
			}
			return &apperr.Silent{Code: apperr.ExitFailed}
		}
		return app.WriteJSON(out)
	}
	if err := report.RenderTable(app.IO.Out, all, app.Global.Verbose > 0); err != nil {
		return err
	}
	how := fmt.Sprintf("with Python %s (%s)", interp.Version, interp.Path)
	if syntax != "" {
		how = fmt.Sprintf("as Python %s syntax with Python %s (%s), which stands in for the manager's", syntax, interp.Version, interp.Path)
	}
	app.Infof("checked %d module(s) %s: %d passed, %d with warnings, %d failed",
		len(results), how, summary["pass"], summary["warn"], summary["fail"])
	if failure != nil {
		return failure
	}
	return nil
}

// findPython locates the interpreter and prints its fallback note: a
// warning, or nothing under -q, because on a sandbox the fallback is the
// expected case and -q prints only results and errors.
func findPython(cmd *cobra.Command, app *App, layout *manager.Layout) (manager.Python, error) {
	if layout == nil {
		layout = &manager.Layout{Root: "/"}
	}
	py, err := layout.FindPython(cmd.Context(), app.Global.Python, nil)
	if err != nil {
		return py, err
	}
	if py.Warning != "" && !app.Global.Quiet {
		app.Warnf("%s", py.Warning)
	}
	app.Debugf("python = %s (Python %s, %s)", py.Path, py.Version, py.Source)
	return py, nil
}

// syntaxVersion returns the X.Y of the manager's Python when py is the
// sandbox's fallback for it, else "". Validation then checks the manager's
// grammar, and the report does not claim to have used the manager's Python.
func syntaxVersion(layout *manager.Layout, py manager.Python) string {
	if layout == nil || layout.Sandbox == nil || py.Warning == "" {
		return ""
	}
	return layout.DetectRelease().VenvPython
}

// readCandidate reads one validate argument: a file, stdin, or the name of
// an installed module.
func readCandidate(app *App, layout *manager.Layout, arg, name string) modules.Candidate {
	var c modules.Candidate
	switch {
	case arg == "-":
		c.Source, c.ReadErr = modules.ReadSourceStream("stdin", name, app.IO.In)
	case isSourceArg(arg):
		c.Source, c.ReadErr = modules.ReadSourceFile(arg)
	default:
		path, err := installedModulePath(layout, arg)
		if err != nil {
			c.Source = modules.Source{Origin: arg, Name: arg}
			c.ReadErr = err
			return c
		}
		c.Source, c.ReadErr = modules.ReadSourceFile(path)
		c.Source.Name = arg
	}
	if name != "" {
		c.Source.Name = name
	}
	return c
}

// installedModulePath finds the file of an installed module by name.
func installedModulePath(layout *manager.Layout, name string) (string, error) {
	if err := modules.ValidateName(name); err != nil {
		return "", &modules.SourceError{Origin: name, Reason: "is neither a file nor a valid module name: " + err.Error(),
			Hint: "pass a path such as ./" + name + ".py, or the name of an installed module"}
	}
	if layout == nil {
		return "", &modules.SourceError{Origin: name, Reason: "no manager layout to look the module up in", Hint: "pass --root, or a file path"}
	}
	store, err := modules.OpenStore(layout, modules.StoreOptions{})
	if err != nil {
		return "", err
	}
	return modules.InstalledPath(store, name)
}
