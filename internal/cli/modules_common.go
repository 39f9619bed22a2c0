package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/report"
)

// changeFlags are the flags shared by the commands that change modules.
type changeFlags struct {
	DryRun         bool
	Force          bool
	SkipValidation bool
	restartFlags
}

func (f *changeFlags) addDryRun(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.DryRun, "dry-run", false, "show what would change and change nothing; exit 4 when there are changes to make")
}

func (f *changeFlags) addForce(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&f.Force, "force", false, what+"; the file's bytes are kept in the store, so 'cfyauth rollback' brings them back")
}

func (f *changeFlags) addSkipValidation(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.SkipValidation, "skip-validation", false, "do not validate the module first (the receipt records this)")
}

// cfyauthCommand renders a cfyauth command for a hint or a next step, with
// --root when the run uses another root than /.
func (a *App) cfyauthCommand(format string, args ...any) string {
	return modules.CommandLine(a.Global.Root, fmt.Sprintf(format, args...))
}

// openStore opens the manager layout under --root and its module store.
func openStore(app *App) (*modules.Store, error) {
	layout, err := manager.Open(app.Global.Root)
	if err != nil {
		return nil, err
	}
	return modules.OpenStore(layout, modules.StoreOptions{LockTimeout: app.Global.LockTimeout})
}

// pythonValidator validates modules with the manager's Python, found on
// first use so that commands needing no validation never start Python.
type pythonValidator struct {
	cmd    *cobra.Command
	app    *App
	layout *manager.Layout
	python *manager.Python
	// syntax is the manager's X.Y when python is a sandbox's fallback.
	syntax string
}

func (v *pythonValidator) Interpreter(ctx context.Context) (modules.Interpreter, error) {
	if v.python == nil {
		py, err := findPython(v.cmd, v.app, v.layout)
		if err != nil {
			return modules.Interpreter{}, err
		}
		v.python = &py
		v.syntax = syntaxVersion(v.layout, py)
	}
	return modules.Interpreter{Path: v.python.Path, Version: v.python.Version, ValidatorVersion: modules.ValidatorVersion,
		SyntaxVersion: v.syntax}, nil
}

func (v *pythonValidator) Validate(ctx context.Context, candidates []modules.Candidate) ([]modules.Validation, error) {
	if _, err := v.Interpreter(ctx); err != nil {
		return nil, err
	}
	results, _, err := modules.Validate(ctx, candidates, modules.ValidateOptions{Python: v.python.Path, SyntaxVersion: v.syntax})
	return results, err
}

// changeOutput is the JSON document of every command that changes modules.
type changeOutput struct {
	*modules.Change
	// RestartNeeded is set when the loaded folder changed, so the REST
	// service must be restarted to see the change.
	RestartNeeded bool     `json:"restart_needed"`
	Next          []string `json:"next,omitempty"`
	Warnings      []string `json:"warnings,omitempty"`
	// Restart is the restart and health gate of --restart.
	Restart *changeRestart `json:"restart,omitempty"`
}

// namesChangeRunE returns the RunE of a command that changes modules given
// by name. seam, when set, replaces the run for tests.
func namesChangeRunE(app *App, names *[]string, flags *changeFlags, seam func() error,
	op func(tx *modules.Tx, names []string, co modules.ChangeOptions) (*modules.Change, error),
	confirm func(ch *modules.Change) string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		*names = args
		if seam != nil {
			return seam()
		}
		run := &changeRun{cmd: cmd, app: app, flags: *flags, confirm: confirm,
			op: func(tx *modules.Tx, co modules.ChangeOptions) (*modules.Change, error) {
				return op(tx, *names, co)
			}}
		return run.run()
	}
}

// changeRun runs one changing operation on the store and reports it.
type changeRun struct {
	cmd   *cobra.Command
	app   *App
	flags changeFlags
	// op performs the change inside the locked session.
	op func(tx *modules.Tx, opts modules.ChangeOptions) (*modules.Change, error)
	// next returns the commands to suggest after a successful change.
	next func(ch *modules.Change) []string
	// confirm, when set, names the change for a confirmation prompt that
	// follows a dry-run preview; --yes skips it.
	confirm func(ch *modules.Change) string
}

// run takes the exclusive lock (the shared one for --dry-run), applies the
// operation, with --restart restarts the REST service and checks it, and
// renders the result.
func (r *changeRun) run() error {
	store, err := openStore(r.app)
	if err != nil {
		return err
	}
	opts := modules.ChangeOptions{
		DryRun:         r.flags.DryRun,
		Force:          r.flags.Force,
		SkipValidation: r.flags.SkipValidation,
		Strict:         r.app.Global.Strict,
		Validator:      &pythonValidator{cmd: r.cmd, app: r.app, layout: store.Layout},
	}
	restarter, err := prepareRestart(r.cmd.Context(), r.cmd, r.app, r.flags.restartFlags, opts.DryRun)
	if err != nil {
		return err
	}
	if restarter != nil && restarter.mgr != nil {
		defer restarter.mgr.Close()
	}
	if r.confirm != nil && !opts.DryRun && !r.app.Global.Yes {
		if err := r.preview(store, opts); err != nil {
			return err
		}
	}
	res, err := r.execute(store, opts, restarter)
	for _, w := range res.warnings {
		r.app.Warnf("%s", w)
	}
	if err != nil {
		return r.app.renderChangeError(err, res.warnings)
	}
	ch := res.change
	warnings := res.warnings
	if ch.LoadedChanged && !ch.DryRun && store.Owner.Warning != "" {
		r.app.Warnf("%s", store.Owner.Warning)
		warnings = append(warnings, store.Owner.Warning)
	}
	var next []string
	if r.next != nil && !ch.DryRun {
		next = r.next(ch)
	}
	return r.app.renderChange(ch, next, warnings, res)
}

// preview prints the planned change and requests confirmation. Bad
// names and conflicts are reported here, before any question.
func (r *changeRun) preview(store *modules.Store, opts modules.ChangeOptions) error {
	if err := r.app.requireConfirmable(r.cmd.CommandPath()); err != nil {
		return err
	}
	opts.DryRun = true
	res, err := r.execute(store, opts, nil)
	for _, w := range res.warnings {
		r.app.Warnf("%s", w)
	}
	if err != nil {
		return r.app.renderChangeError(err, res.warnings)
	}
	ch := res.change
	if !ch.Changed {
		return nil
	}
	for _, m := range ch.Modules {
		fmt.Fprintf(r.app.IO.ErrOut, "  %s\n", describeModuleChange(ch, m))
	}
	return r.app.confirm(r.confirm(ch))
}

// changeResult is the outcome of one run of the operation.
type changeResult struct {
	change   *modules.Change
	warnings []string
	// restart and failure are set with --restart: the restart report, and
	// the error when the change does not count as done.
	restart *changeRestart
	failure *apperr.Error
	// printed is set when the change's lines were shown already.
	printed bool
}

// execute runs the operation in a locked session and, with a restarter,
// restarts the REST service in the same session, so no other change can
// come between the change, the health gate and a rollback.
func (r *changeRun) execute(store *modules.Store, opts modules.ChangeOptions, restarter *changeRestarter) (changeResult, error) {
	var res changeResult
	session := store.Update
	if opts.DryRun {
		session = store.View
	}
	ctx := r.cmd.Context()
	err := session(ctx, func(tx *modules.Tx) error {
		res.warnings = tx.Warnings()
		var err error
		if res.change, err = r.op(tx, opts); err != nil {
			return err
		}
		switch {
		case restarter == nil:
		case opts.DryRun:
			res.restart = &changeRestart{Reason: "dry run: nothing was changed or restarted"}
		default:
			// On a terminal the change is shown before the restart, which
			// takes a while; JSON comes in one document at the end.
			if !r.app.JSON() {
				r.app.printChangeLines(res.change)
				res.printed = true
			}
			res.restart, res.failure = restarter.afterChange(ctx, tx, res.change)
		}
		return nil
	})
	return res, err
}

// renderChangeError shows the checks of a failed validation before the
// error itself, which App.Run prints.
func (a *App) renderChangeError(err error, warnings []string) error {
	var failure *modules.ValidationFailure
	if !errors.As(err, &failure) {
		return err
	}
	e := apperr.As(err)
	if a.JSON() {
		payload := map[string]any{"changed": false, "validations": failure.Results}
		if len(warnings) > 0 {
			payload["warnings"] = warnings
		}
		if werr := a.WriteJSONFailed(payload, e); werr != nil {
			return werr
		}
		a.printError(e)
		return &apperr.Silent{Code: e.Kind.ExitCode()}
	}
	var checks []report.Check
	for _, r := range failure.Results {
		checks = append(checks, r.Checks...)
	}
	if rerr := report.RenderTable(a.IO.Out, checks, a.Global.Verbose > 0); rerr != nil {
		return rerr
	}
	return err
}

// renderChange prints what a changing command did: a line per module on
// stdout, and on stderr the journal entry, a pending restart and the next
// command. With --restart it adds the health gate and any rollback, and
// returns the failure when the change does not count as done. A dry run
// that found changes exits 4.
func (a *App) renderChange(ch *modules.Change, next []string, warnings []string, res changeResult) error {
	rs, failure := res.restart, res.failure
	restartNeeded := ch.LoadedChanged && !ch.DryRun && (rs == nil || !rs.Performed)
	if rs != nil && rs.RolledBack && rs.Rollback.Restart == nil {
		// The files were restored without a restart: nothing is pending.
		restartNeeded = false
	}
	restartCommand := a.cfyauthCommand("restart")
	if restartNeeded {
		next = append(next, restartCommand)
	}
	if a.JSON() {
		doc := changeOutput{Change: ch, RestartNeeded: restartNeeded, Next: next, Warnings: warnings, Restart: rs}
		if failure != nil {
			return writeJSONOutcome(a, doc, failure)
		}
		if err := a.WriteJSON(doc); err != nil {
			return err
		}
		if ch.DryRun && ch.Changed {
			return &apperr.Silent{Code: apperr.ExitPending}
		}
		return nil
	}
	if !res.printed {
		a.printChangeLines(ch)
	}
	if ch.DryRun && ch.Changed {
		return &apperr.Silent{Code: apperr.ExitPending}
	}
	if rs != nil {
		if err := a.renderRestart(rs); err != nil {
			return err
		}
	}
	if failure != nil {
		return failure
	}
	if restartNeeded {
		a.Infof("restart pending: the REST service loads modules only at start; run '%s', or pass --restart", restartCommand)
	}
	for _, n := range next {
		if n != restartCommand {
			a.Infof("next: %s", n)
		}
	}
	return nil
}

// printChangeLines prints a line per module on stdout and what happened on
// stderr: a dry run, nothing changed, or the journal entry.
func (a *App) printChangeLines(ch *modules.Change) {
	for _, m := range ch.Modules {
		a.Printf("%s\n", describeModuleChange(ch, m))
	}
	switch {
	case ch.DryRun && ch.Changed:
		a.Infof("dry run: nothing was changed; run the command without --dry-run to make these changes")
	case ch.DryRun:
		a.Infof("dry run: nothing to change")
	case !ch.Changed:
		a.Infof("nothing changed")
	default:
		a.Infof("recorded as journal entry %d; undo it with '%s'", ch.JournalID, a.cfyauthCommand("rollback"))
	}
}

// describeModuleChange renders one module's change as a line such as
// "my_auth: installed, now enabled (sha256 1a2b3c4d5e6f)".
func describeModuleChange(ch *modules.Change, m modules.ModuleChange) string {
	var b strings.Builder
	b.WriteString(m.Name)
	b.WriteString(": ")
	if ch.DryRun && m.Action != modules.ActionUnchanged {
		b.WriteString("would be ")
	}
	b.WriteString(m.Action)
	switch {
	case m.State != "" && m.Action == modules.ActionUnchanged:
		fmt.Fprintf(&b, ", %s", m.State)
	case m.State == modules.StateDisabled && (m.Action == modules.ActionInstalled || m.Action == modules.ActionUpdated):
		// "now disabled" would read as if the install had disabled it.
		b.WriteString(", not enabled")
	case m.State != "" && string(m.State) != m.Action:
		fmt.Fprintf(&b, ", %s %s", map[bool]string{true: "then", false: "now"}[ch.DryRun], m.State)
	case m.State == "" && m.Action == modules.ActionRemoved && ch.DryRun:
		b.WriteString(", then no longer managed")
	case m.State == "" && m.Action == modules.ActionRemoved:
		b.WriteString(", no longer managed")
	}
	if m.SHA256 != "" {
		fmt.Fprintf(&b, " (sha256 %s)", shortHash(m.SHA256))
	}
	if m.Detail != "" {
		fmt.Fprintf(&b, "; %s", m.Detail)
	}
	return b.String()
}

// newTable returns a table writer that prints headers as given.
func newTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
}

func shortHash(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// changedNames lists the modules a change touches.
func changedNames(ch *modules.Change) []string {
	var names []string
	for _, m := range ch.Modules {
		if m.Action != modules.ActionUnchanged {
			names = append(names, m.Name)
		}
	}
	return names
}

// moduleNameFilter picks the module names a command's completion offers.
type moduleNameFilter func(modules.NameInfo) bool

var (
	// moduleNamesAll: every name, built-ins included (show).
	moduleNamesAll moduleNameFilter = func(modules.NameInfo) bool { return true }
	// moduleNamesManaged: modules with a receipt (remove).
	moduleNamesManaged moduleNameFilter = func(n modules.NameInfo) bool { return n.Managed }
	// moduleNamesDisabled: managed modules to put into the loaded folder (enable).
	moduleNamesDisabled moduleNameFilter = func(n modules.NameInfo) bool { return n.Managed && (!n.Enabled || !n.Loaded) }
	// moduleNamesEnabled: managed modules in the loaded folder (disable).
	moduleNamesEnabled moduleNameFilter = func(n modules.NameInfo) bool { return n.Managed && (n.Enabled || n.Loaded) }
	// moduleNamesInstalled: names validate and test can look up.
	moduleNamesInstalled moduleNameFilter = func(n modules.NameInfo) bool { return n.Managed || n.Loaded }
)

// Completion settings of completeModuleNames.
const (
	oneName   = true // the command takes a single NAME
	manyNames = false
	withFiles = true // SOURCE files are valid arguments too
	noFiles   = false
)

// completeModuleNames returns a shell completion function that offers the
// module names under --root (or CFYAUTH_ROOT) that filter keeps, leaving
// out names already on the command line. It reads files only, without the
// lock, and offers nothing when the layout cannot be read. With single,
// nothing is offered once a name is given; with files, file names are
// completed too.
func completeModuleNames(app *App, filter moduleNameFilter, single, files bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		directive := cobra.ShellCompDirectiveNoFileComp
		if single && len(args) > 0 {
			return nil, directive
		}
		if files {
			directive = cobra.ShellCompDirectiveDefault
		}
		root := app.Global.Root
		if !cmd.Flags().Changed("root") && app.Getenv("CFYAUTH_ROOT") != "" {
			root = app.Getenv("CFYAUTH_ROOT")
		}
		layout, err := manager.Open(root)
		if err != nil {
			return nil, directive
		}
		store, err := modules.OpenStore(layout, modules.StoreOptions{})
		if err != nil {
			return nil, directive
		}
		given := map[string]bool{}
		for _, a := range args {
			given[a] = true
		}
		var names []cobra.Completion
		for _, n := range modules.ReadNames(store) {
			if filter(n) && !given[n.Name] && strings.HasPrefix(n.Name, toComplete) {
				names = append(names, n.Name)
			}
		}
		return names, directive
	}
}
