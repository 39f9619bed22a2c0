package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restart"
)

// StatusOptions are the inputs of 'cfyauth status'.
type StatusOptions struct {
	serviceFlags
}

func newStatusCmd(app *App, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the health of the manager's authentication side on one screen",
		Long: `Show, on one screen: the manager layout and its release era, the modules in
the authenticators folder and whether they drifted from cfyauth's receipts
(modified, unmanaged or missing modules), whether a restart is pending (a
module changed after the REST service's start time, read from the service
manager, or after the last healthy restart cfyauth recorded), the state of
each service under supervisord or systemd (--via, as for restart), whether
the REST API responds, and which authenticators it has loaded (Cloudify 6.3
and later, with an admin login).

status only reads. Problems it finds are failed checks, also when the bus,
the supervisord socket or the REST API cannot be reached.

Exit status: 0 when nothing failed (warnings allowed unless --strict), 1 when
a check failed, 2 usage error, 3 no manager layout under --root.`,
		Example: `  sudo cfyauth status
  CLOUDIFY_USERNAME=admin CLOUDIFY_PASSWORD=... sudo -E cfyauth status -o json
  cfyauth --root /mnt/mgr --bus-address unix:path=/mnt/mgr/run/dbus/system_bus_socket status`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runStatus(cmd.Context(), app, opts)
		},
	}
	opts.addServiceFlags(cmd)
	return cmd
}

func runStatus(ctx context.Context, app *App, opts *StatusOptions) error {
	target, err := openServiceTarget(app, opts.serviceFlags, false)
	if err != nil {
		return err
	}
	client, err := restart.NewHTTPClient(app.Global.CACert)
	if err != nil {
		return err
	}
	so := restart.StatusOptions{Layout: target.layout, Services: target.units, HTTP: client, Credentials: target.creds,
		Store: func() (restart.StoreFacts, error) { return storeFacts(ctx, app, target.layout) }}
	// Problems reaching the service manager or the REST API are checks of
	// their own; only a bad flag value stops the command.
	so.Connect = func(ctx context.Context) (restart.ServiceManager, restart.Detection, error) {
		return target.connect(ctx, app)
	}
	so.HealthURL, err = resolveHealthURL(app, opts.HealthURL)
	switch {
	case err == nil:
	case apperr.As(err).Code == "missing_flag":
		so.SkipRESTReason = apperr.As(err).Message + "; pass --health-url or --manager-url"
	default:
		return err
	}

	st := restart.Inspect(ctx, so)
	if err := ctx.Err(); err != nil {
		return err
	}
	var failure *apperr.Error
	if report.Failed(st.Checks, app.Global.Strict) {
		counts := report.Counts(st.Checks)
		failure = apperr.Failed("status_failed", "status found %d failed check(s) and %d warning(s)", counts[report.Fail], counts[report.Warn])
		if app.Global.Strict && counts[report.Fail] == 0 {
			failure.WithHint("warnings count as failures because --strict is set")
		}
	}
	if app.JSON() {
		return writeJSONOutcome(app, st, failure)
	}
	if err := report.RenderTableWidth(app.IO.Out, st.Checks, app.Global.Verbose > 0, tableWidth(app)); err != nil {
		return err
	}
	for _, w := range st.Warnings {
		app.Warnf("%s", w)
	}
	if failure != nil {
		return failure
	}
	return nil
}

// storeFacts reads the facts of cfyauth's store that status shows: the
// modules that differ from their receipts, the offline restart-pending
// result, and the last restart cfyauth made. It takes the shared lock, so it waits for a
// change that is in progress.
func storeFacts(ctx context.Context, app *App, layout *manager.Layout) (restart.StoreFacts, error) {
	var facts restart.StoreFacts
	store, err := modules.OpenStore(layout, modules.StoreOptions{LockTimeout: app.Global.LockTimeout})
	if err != nil {
		return facts, err
	}
	err = store.View(ctx, func(tx *modules.Tx) error {
		res := tx.List()
		for _, m := range res.Modules {
			switch m.State {
			case modules.StateModified, modules.StateUnmanaged, modules.StateMissing:
				facts.Drift = append(facts.Drift, fmt.Sprintf("%s (%s)", m.Name, m.State))
			}
		}
		facts.RestartPending = res.RestartPending
		if o := res.LastRestartOutcome; o != nil {
			facts.LastRestart = &restart.RecordedRestart{At: o.At, Via: o.Via, Healthy: o.Healthy,
				FailedPhase: o.FailedPhase, Failure: o.Failure}
		}
		return nil
	})
	return facts, err
}
