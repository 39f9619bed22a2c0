package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restapi"
	"github.com/cfyauth/cfyauth/internal/restart"
)

// restartHelp is the --restart paragraph of the changing commands' help.
const restartHelp = `With --restart the REST service is restarted after the change, through
supervisord or systemd (--via, as for 'cfyauth restart'), and must pass the
same health gate as 'cfyauth restart' within --restart-timeout (default
90s). --verify-login USER and --verify-admin also require a successful login
as that user and as the bootstrap admin. When the gate or a login fails, the
previous module set is restored byte for byte and the service is restarted
again; both outcomes are reported, with exit 1. --no-rollback keeps the
change instead.`

// restartFlags are the --restart flags of the commands that change modules.
type restartFlags struct {
	serviceFlags
	Restart        bool
	RestartTimeout time.Duration
	Settle         time.Duration
	NoRollback     bool
	VerifyLogin    string
	PasswordStdin  bool
	PasswordFile   string
	VerifyAdmin    bool
}

// flagsNeedingRestart are the flags that only mean something with --restart.
var flagsNeedingRestart = []string{"restart-timeout", "settle", "no-rollback", "verify-login", "password-stdin",
	"password-file", "verify-admin", "unit", "health-url", "via", "supervisor-socket", "admin-password-file"}

func (f *restartFlags) addRestartFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&f.Restart, "restart", false, "restart the REST service after the change and run its health gate; restore the previous module set when the gate fails")
	fs.DurationVar(&f.RestartTimeout, "restart-timeout", restart.DefaultTimeout, "longest wait from the restart request until the REST API returns \"OK\", settle window included")
	fs.DurationVar(&f.Settle, "settle", restart.DefaultSettle, "how long the service must keep running with no further restarts")
	fs.BoolVar(&f.NoRollback, "no-rollback", false, "keep the change when the health gate or a login check fails")
	fs.StringVar(&f.VerifyLogin, "verify-login", "", "after the restart, also require a successful login as this user (password from a prompt, --password-stdin, --password-file or CFYAUTH_PASSWORD)")
	fs.BoolVar(&f.PasswordStdin, "password-stdin", false, "read the --verify-login user's password from stdin (one line)")
	fs.StringVar(&f.PasswordFile, "password-file", "", "read the --verify-login user's password from this file (one line)")
	fs.BoolVar(&f.VerifyAdmin, "verify-admin", false, "after the restart, also require a successful local login of the bootstrap admin (password from --admin-password-file, CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD)")
	f.addServiceFlags(cmd)
}

// loginCheck is one login that must succeed after the restart.
type loginCheck struct {
	id     string
	client *restapi.Client
	user   string
	// local requires the manager's own user database to accept the login,
	// as it does for the bootstrap admin.
	local bool
}

// changeRestarter restarts the REST service after a change, runs the health
// gate and the login checks, and restores the previous module set when one
// of them fails. Everything it needs is checked by prepareRestart, before
// the change is made.
type changeRestarter struct {
	app       *App
	flags     restartFlags
	target    *serviceTarget
	mgr       restart.ServiceManager
	detection restart.Detection
	logins    []loginCheck
}

// prepareRestart checks the --restart flags, reads the passwords and
// connects to the service manager, so that bad input or an unreachable
// service manager stops the command before anything changes. It returns
// nil when --restart is not given, or for a dry run.
func prepareRestart(ctx context.Context, cmd *cobra.Command, app *App, f restartFlags, dryRun bool) (*changeRestarter, error) {
	if !f.Restart {
		for _, name := range flagsNeedingRestart {
			if cmd.Flags().Changed(name) {
				return nil, apperr.Usage("invalid_flag", "--%s applies only with --restart", name).
					WithHint("add --restart, or drop --%s", name)
			}
		}
		return nil, nil
	}
	if err := checkGateDurations(f.Settle, f.RestartTimeout, "--restart-timeout"); err != nil {
		return nil, err
	}
	if f.VerifyLogin == "" && (f.PasswordStdin || f.PasswordFile != "") {
		return nil, apperr.Usage("invalid_flag", "--password-stdin and --password-file are the --verify-login user's password").
			WithHint("add --verify-login USER, or drop the password flag")
	}
	target, err := openServiceTarget(app, f.serviceFlags, true)
	if err != nil {
		return nil, err
	}
	r := &changeRestarter{app: app, flags: f, target: target}
	if err := r.prepareLogins(); err != nil {
		return nil, err
	}
	if dryRun {
		return r, nil
	}
	if r.mgr, r.detection, err = target.connect(ctx, app); err != nil {
		return nil, err
	}
	return r, nil
}

// prepareLogins builds the clients of --verify-login and --verify-admin.
func (r *changeRestarter) prepareLogins() error {
	f, app := r.flags, r.app
	if f.VerifyLogin == "" && !f.VerifyAdmin {
		return nil
	}
	managerURL, err := loginURL(app, r.target.healthURL)
	if err != nil {
		return err
	}
	newClient := func(creds restapi.Credentials, tenant string) (*restapi.Client, error) {
		return restapi.New(restapi.Options{URL: managerURL, Credentials: creds, Tenant: tenant,
			TLS: restapi.TLSOptions{CAFile: app.Global.CACert, ManagerPath: managerPathFunc(app.Global.Root)}})
	}
	if f.VerifyLogin != "" {
		password, source, err := requireSecret(app, SecretSource{
			What: "the password for user " + f.VerifyLogin, Prompt: "Password for user " + f.VerifyLogin + ": ",
			Stdin: f.PasswordStdin, StdinFlag: "password-stdin",
			File: f.PasswordFile, FileFlag: "password-file", EnvVar: "CFYAUTH_PASSWORD",
		})
		if err != nil {
			return err
		}
		app.Debugf("password of %s from %s", f.VerifyLogin, source)
		r.target.secrets = append(r.target.secrets, password, basicAuthToken(f.VerifyLogin, password))
		client, err := newClient(restapi.Credentials{Username: f.VerifyLogin, Password: password}, "")
		if err != nil {
			return err
		}
		r.logins = append(r.logins, loginCheck{id: "login", client: client, user: f.VerifyLogin})
	}
	if f.VerifyAdmin {
		creds := r.target.creds
		if creds == nil {
			return apperr.Usage("missing_secret", "--verify-admin needs the bootstrap admin's password").
				WithHint("pass --admin-password-file FILE, or set CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD (and CLOUDIFY_USERNAME when the admin is not named admin)")
		}
		client, err := newClient(restapi.Credentials{Username: creds.Username, Password: creds.Password}, creds.Tenant)
		if err != nil {
			return err
		}
		r.logins = append(r.logins, loginCheck{id: "admin-login", client: client, user: creds.Username, local: true})
	}
	return nil
}

// loginURL returns the manager URL the login checks use: --manager-url, or
// the REST API the health URL points at.
func loginURL(app *App, healthURL string) (string, error) {
	if app.Global.ManagerURL != "" {
		return app.Global.ManagerURL, nil
	}
	if i := strings.Index(healthURL, restapi.APIPrefix+"/"); i > 0 {
		return healthURL[:i], nil
	}
	return "", apperr.Usage("missing_flag", "cannot tell the manager's URL for the login checks from --health-url %s", healthURL).
		WithHint("pass --manager-url URL")
}

// gateReport is one restart and its health gate, as the JSON document of a
// change shows it.
type gateReport struct {
	Healthy     bool                `json:"healthy"`
	FailedPhase string              `json:"failed_phase,omitempty"`
	Failure     string              `json:"failure,omitempty"`
	Jobs        []restart.Job       `json:"jobs"`
	Checks      []report.Check      `json:"checks"`
	Tracebacks  []restart.Traceback `json:"tracebacks,omitempty"`
	LogTail     *restart.LogTail    `json:"log_tail,omitempty"`
	ElapsedMS   int64               `json:"elapsed_ms"`
}

func newGateReport(res *restart.Result) *gateReport {
	return &gateReport{Healthy: res.Healthy, FailedPhase: string(res.FailedPhase), Failure: res.Failure, Jobs: res.Jobs,
		Checks: res.Checks, Tracebacks: res.Tracebacks, LogTail: res.LogTail, ElapsedMS: res.Elapsed.Milliseconds()}
}

// changeRestart is the "restart" object of a change's JSON document.
type changeRestart struct {
	// Performed is false when nothing changed and no restart was pending,
	// or for a dry run; Reason then gives the cause.
	Performed      bool              `json:"performed"`
	Reason         string            `json:"reason,omitempty"`
	ServiceManager string            `json:"service_manager,omitempty"`
	Detection      restart.Detection `json:"detection"`
	*gateReport
	// Logins are the --verify-login and --verify-admin checks.
	Logins     []report.Check  `json:"logins,omitempty"`
	RolledBack bool            `json:"rolled_back"`
	Rollback   *changeRollback `json:"rollback,omitempty"`
	// Failure explains why the change does not count as done.
	Error string `json:"error,omitempty"`
}

// changeRollback is the restore of the previous module set and its restart.
type changeRollback struct {
	JournalID int                    `json:"journal_id,omitempty"`
	Modules   []modules.ModuleChange `json:"modules"`
	Restart   *gateReport            `json:"restart,omitempty"`
}

// afterChange restarts the REST service inside the change's locked
// session, and restores the previous module set when the health gate or a
// login check fails. It returns the restart report and, when the change
// does not count as done, the error to exit with.
func (r *changeRestarter) afterChange(ctx context.Context, tx *modules.Tx, ch *modules.Change) (*changeRestart, *apperr.Error) {
	out := &changeRestart{ServiceManager: r.mgr.Name(), Detection: r.detection}
	if !ch.LoadedChanged {
		// Only the loaded folder matters to the service. A restart that
		// older changes still need is made here too, so that running the
		// command again converges.
		switch tx.List().RestartPending {
		case modules.PendingNo:
			out.Reason = "the loaded modules did not change, and no restart is pending since the last restart cfyauth recorded"
			return out, r.verifyOnly(ctx, out)
		case modules.PendingUnknown:
			out.Reason = "the loaded modules did not change, and cfyauth has recorded no restart to tell whether one is pending; run 'cfyauth restart' to be sure the service runs them"
			return out, r.verifyOnly(ctx, out)
		}
	}

	out.Performed = true
	res, err := r.restart(ctx, tx, "the change")
	if err != nil {
		return out, r.restartNotDone(tx, ch, out, err)
	}
	out.gateReport = newGateReport(res)
	r.record(tx, res, ch.JournalID)

	var failure string
	if res.Healthy {
		out.Logins = r.runLogins(ctx)
		failure = failedLogin(out.Logins)
	} else {
		failure = fmt.Sprintf("the REST service failed its health check in the %s phase: %s", res.FailedPhase, res.Failure)
	}
	if failure == "" {
		return out, nil
	}
	out.Error = failure
	what := fmt.Sprintf("after %s, %s", ch.Op, failure)
	if ch.Changed {
		what = fmt.Sprintf("after %s (journal entry %d), %s", ch.Op, ch.JournalID, failure)
	}
	switch {
	case r.flags.NoRollback:
		return out, apperr.Failed("change_unhealthy", "%s; the change stays, because --no-rollback is set", what).
			WithHint("fix the problem and run 'cfyauth restart', or undo the change with 'cfyauth rollback' and restart")
	case !ch.LoadedChanged:
		return out, apperr.Failed("restart_unhealthy", "%s; this run did not change the loaded modules, so there is nothing to roll back", what).
			WithHint("run 'cfyauth rollback --list' to find the change that broke it")
	}
	return out, r.rollBack(ctx, tx, ch, out, what)
}

// restart runs the health gate once, with a progress line on a terminal.
// The module states for its hints come from tx, whose lock this run holds.
func (r *changeRestarter) restart(ctx context.Context, tx *modules.Tx, after string) (*restart.Result, error) {
	gate, err := r.target.gate(r.app, r.mgr, r.flags.Settle, r.flags.RestartTimeout, "--restart-timeout", moduleStates(tx.List()))
	if err != nil {
		return nil, err
	}
	r.app.Infof("restarting %s through %s after %s", strings.Join(r.target.units, ", "), r.mgr.Name(), after)
	progress := newProgressLine(r.app)
	gate.Progress = progress.Phase
	res, err := gate.Restart(ctx)
	progress.Stop()
	return res, err
}

func (r *changeRestarter) record(tx *modules.Tx, res *restart.Result, journalID int) {
	if err := tx.RecordRestartOutcome(restartOutcome(r.mgr.Name(), res), journalID); err != nil {
		r.app.Warnf("the restart was not recorded in cfyauth's store: %v", err)
	}
}

// rollBack restores the module set from before the change, byte for byte,
// as a journaled restore, and restarts the REST service again.
func (r *changeRestarter) rollBack(ctx context.Context, tx *modules.Tx, ch *modules.Change, out *changeRestart, what string) *apperr.Error {
	restored, err := tx.Restore(ch.Before, modules.ChangeOptions{})
	if err != nil {
		return apperr.Failed("rollback_failed", "%s, and restoring the previous module set failed: %v", what, err).
			WithHint("run 'cfyauth rollback --to %d' to restore it, then 'cfyauth restart'", ch.JournalID)
	}
	out.RolledBack = true
	out.Rollback = &changeRollback{JournalID: restored.JournalID, Modules: restored.Modules}
	res, err := r.restart(ctx, tx, "the rollback")
	if err != nil {
		return apperr.As(err).WithHint("%s; cfyauth restored the previous module set (journal entry %d), but could not restart the REST service: run 'cfyauth restart'", what, restored.JournalID)
	}
	out.Rollback.Restart = newGateReport(res)
	r.record(tx, res, restored.JournalID)
	if !res.Healthy {
		return apperr.Failed("rollback_unhealthy", "%s; cfyauth restored the previous module set (journal entry %d) and restarted it, but it is not healthy either: %s phase: %s",
			what, restored.JournalID, res.FailedPhase, res.Failure).
			WithHint("the problem is not only the change; read the checks and the service's output above, and 'cfyauth status'")
	}
	return apperr.Failed("change_rolled_back", "%s; cfyauth restored the previous module set (journal entry %d) and restarted it, and it is healthy again",
		what, restored.JournalID).
		WithHint("fix the module and run the command again; --no-rollback keeps a failing change for debugging")
}

// restartNotDone handles a restart that could not be requested (no such
// unit, permission denied): the service still runs what it loaded before,
// so the files are restored without a restart unless --no-rollback is set.
func (r *changeRestarter) restartNotDone(tx *modules.Tx, ch *modules.Change, out *changeRestart, err error) *apperr.Error {
	e := apperr.As(err)
	out.Performed = false
	out.Error = e.Message
	if errors.Is(err, context.Canceled) || r.flags.NoRollback || !ch.LoadedChanged {
		if ch.Changed {
			e.WithHint("the change is in place as journal entry %d; 'cfyauth restart' loads it, 'cfyauth rollback' undoes it", ch.JournalID)
		}
		return e
	}
	restored, rerr := tx.Restore(ch.Before, modules.ChangeOptions{})
	if rerr != nil {
		return e.WithHint("restoring the previous module set failed too (%v); run 'cfyauth rollback --to %d'", rerr, ch.JournalID)
	}
	out.RolledBack = true
	out.Rollback = &changeRollback{JournalID: restored.JournalID, Modules: restored.Modules}
	return e.WithHint("the REST service was not restarted, so cfyauth restored the previous module set (journal entry %d); fix the problem and run the command again",
		restored.JournalID)
}

// verifyOnly runs the login checks when no restart was needed. A failure
// then exits 1 without a rollback: this run changed nothing.
func (r *changeRestarter) verifyOnly(ctx context.Context, out *changeRestart) *apperr.Error {
	out.Logins = r.runLogins(ctx)
	if failure := failedLogin(out.Logins); failure != "" {
		out.Error = failure
		return apperr.Failed("login_failed", "%s; this run changed nothing, so there is nothing to roll back", failure).
			WithHint("run 'cfyauth test-login --user USER' to see the whole answer, and 'cfyauth rollback --list' to find the change that broke it")
	}
	return nil
}

func (r *changeRestarter) runLogins(ctx context.Context) []report.Check {
	var checks []report.Check
	for _, l := range r.logins {
		checks = append(checks, runLoginCheck(ctx, l))
	}
	return checks
}

// runLoginCheck logs in once and turns the outcome into a check.
func runLoginCheck(ctx context.Context, l loginCheck) report.Check {
	c := report.Check{ID: l.id, Subject: l.user}
	start := time.Now()
	res, err := restapi.CheckLogin(ctx, l.client)
	c.Duration = time.Since(start)
	c.AddEvidence("manager_url", l.client.URL())
	switch {
	case err != nil:
		c.Status, c.Summary = report.Fail, fmt.Sprintf("login as %s interrupted: %v", l.user, err)
	case res.Outcome == restapi.OutcomeAccepted && l.local && res.External():
		// From Cloudify 6.4 a basic-auth login that the user database
		// rejects goes on to the authenticator modules.
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("user %s logged in, but through an authenticator module (auth method external), not the manager's own user database", l.user)
		c.Hint = "check the bootstrap admin's password, and why a module accepts that user"
		c.AddEvidence("auth_method", res.Audit.AuthMethod)
	case res.Outcome == restapi.OutcomeAccepted:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("user %s logged in", l.user)
		if res.Audit.AuthMethod != "" {
			c.Summary += " (auth method " + res.Audit.AuthMethod + ")"
			c.AddEvidence("auth_method", res.Audit.AuthMethod)
		}
	default:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("login as %s failed (%s)", l.user, res.Outcome)
		if res.Err != nil {
			c.Summary += ": " + res.Err.Message
			if len(res.Err.Hints) > 0 {
				c.Hint = res.Err.Hints[0]
			}
		}
		c.AddEvidence("outcome", res.Outcome).AddEvidence("http_status", res.HTTPStatus)
	}
	return c
}

// failedLogin returns the first failed login check as a sentence, or "".
func failedLogin(checks []report.Check) string {
	for _, c := range checks {
		if c.Status == report.Fail {
			return "the " + c.ID + " check failed: " + c.Summary
		}
	}
	return ""
}

// renderRestart prints a change's restart on a terminal: the gate's checks
// and the logins in one table, the service's output on failure, and the
// same for the restart after a rollback.
func (a *App) renderRestart(out *changeRestart) error {
	if !out.Performed {
		if out.Reason != "" {
			a.Infof("no restart: %s", out.Reason)
		}
		if len(out.Logins) > 0 {
			return report.RenderTableWidth(a.IO.Out, out.Logins, a.Global.Verbose > 0, tableWidth(a))
		}
		return nil
	}
	if out.gateReport == nil {
		return nil
	}
	checks := append(append([]report.Check{}, out.Checks...), out.Logins...)
	if err := report.RenderTableWidth(a.IO.Out, checks, a.Global.Verbose > 0, tableWidth(a)); err != nil {
		return err
	}
	if !out.Healthy {
		printLogTail(a, out.ServiceManager, out.LogTail)
	}
	if out.Rollback == nil {
		if out.Healthy && out.Error == "" {
			a.Infof("healthy after %.1fs: the REST service loaded the change", float64(out.ElapsedMS)/1000)
		}
		return nil
	}
	for _, m := range out.Rollback.Modules {
		a.Printf("rollback: %s\n", describeModuleChange(&modules.Change{}, m))
	}
	if rr := out.Rollback.Restart; rr != nil {
		if err := report.RenderTableWidth(a.IO.Out, rr.Checks, a.Global.Verbose > 0, tableWidth(a)); err != nil {
			return err
		}
		if !rr.Healthy {
			printLogTail(a, out.ServiceManager, rr.LogTail)
		}
	}
	return nil
}
