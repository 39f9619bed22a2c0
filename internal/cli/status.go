package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restart"
)

// StatusOptions are the inputs of 'cfyauth status'.
type StatusOptions struct {
	Units             []string
	HealthURL         string
	ServiceManager    string
	AdminPasswordFile string
}

func newStatusCmd(app *App, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the health of the manager's authentication side on one screen",
		Long: `Show, on one screen: the manager layout and its release era, the modules in
the authenticators folder and whether they drifted from what cfyauth
installed, whether a restart is pending (a module changed after the REST
service's start time, read from the service manager), the state of each
service, whether the REST API responds, and which authenticators it has
loaded (Cloudify 6.3 and later, with an admin login).

status only reads. Problems it finds are failed checks, also when the bus or
the REST API cannot be reached.

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
	addServiceFlags(cmd, &opts.Units, &opts.HealthURL, &opts.ServiceManager, &opts.AdminPasswordFile)
	return cmd
}

func runStatus(ctx context.Context, app *App, opts *StatusOptions) error {
	units, layout, err := openServiceTarget(app, opts.Units, opts.ServiceManager)
	if err != nil {
		return err
	}
	creds, err := adminCredentials(app, opts.AdminPasswordFile)
	if err != nil {
		return err
	}
	client, err := restart.NewHTTPClient(app.Global.CACert)
	if err != nil {
		return err
	}
	so := restart.StatusOptions{Layout: layout, Services: units, HTTP: client, Credentials: creds}

	// Problems reaching the bus or the REST API are checks of their own;
	// only a bad flag value stops the command.
	connect, err := connectOptions(app, layout, opts.ServiceManager)
	switch {
	case err == nil:
		so.Connect = func(ctx context.Context) (restart.ServiceManager, error) { return restart.Connect(ctx, connect) }
	case apperr.As(err).Code == "missing_flag":
		so.SkipServiceReason = apperr.As(err).Message + "; pass --bus-address"
	default:
		return err
	}
	so.HealthURL, err = resolveHealthURL(app, opts.HealthURL)
	switch {
	case err == nil:
	case apperr.As(err).Code == "missing_flag":
		so.SkipRESTReason = apperr.As(err).Message + "; pass --health-url or --manager-url"
	default:
		return err
	}
	app.Debugf("%s; health URL %s", connect, orDefault(so.HealthURL, "none"))

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
	if err := report.RenderTable(app.IO.Out, st.Checks, app.Global.Verbose > 0); err != nil {
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
