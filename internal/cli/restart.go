package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restart"
)

// RestartOptions are the inputs of 'cfyauth restart'.
type RestartOptions struct {
	Units             []string
	Settle            time.Duration
	Timeout           time.Duration
	HealthURL         string
	NoWait            bool
	ServiceManager    string
	AdminPasswordFile string
}

// restartOutput is the JSON document of 'cfyauth restart'.
type restartOutput struct {
	ServiceManager string                  `json:"service_manager"`
	Waited         bool                    `json:"waited"`
	Healthy        bool                    `json:"healthy"`
	Changed        bool                    `json:"changed"`
	FailedPhase    restart.Phase           `json:"failed_phase,omitempty"`
	Failure        string                  `json:"failure,omitempty"`
	Jobs           []restart.Job           `json:"jobs"`
	Before         []restart.ServiceStatus `json:"before,omitempty"`
	After          []restart.ServiceStatus `json:"after,omitempty"`
	Checks         []report.Check          `json:"checks,omitempty"`
	Tracebacks     []restart.Traceback     `json:"tracebacks,omitempty"`
	LogTail        *restart.LogTail        `json:"log_tail,omitempty"`
	ElapsedMS      int64                   `json:"elapsed_ms"`
}

// addServiceFlags adds the flags that restart and status share.
func addServiceFlags(cmd *cobra.Command, units *[]string, healthURL, serviceManager, passwordFile *string) {
	f := cmd.Flags()
	f.StringArrayVar(units, "unit", []string{restart.DefaultUnit}, "service to act on; repeat for cloudify-api on Cloudify 6.4 and later")
	f.StringVar(healthURL, "health-url", "", "REST health endpoint (default <--manager-url>/api/v3.1/ok, or http://127.0.0.1:8100/api/v3.1/ok on the manager itself)")
	f.StringVar(serviceManager, "service-manager", restart.KindAuto, "service manager that runs the REST service: "+strings.Join(restart.Kinds, ", "))
	f.StringVar(passwordFile, "admin-password-file", "", "file holding the manager admin's password, to read /api/v3.1/idp (else CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD)")
}

func newRestartCmd(app *App, runF func(*RestartOptions) error) *cobra.Command {
	opts := &RestartOptions{}
	cmd := &cobra.Command{
		Use:   "restart",
		Short: "Restart the REST service and wait until it is really healthy",
		Long: `Restart cloudify-restservice through systemd over D-Bus and wait until it is
healthy. A restart job that systemd reports as done proves little: a service
can exit two seconds later, or run while an authenticator module failed to
load. So after the job restart checks, in order:

  job       the restart job finished with result done
  process   a new main process (and, on systemd 232 and later, a new
            invocation ID) replaced the old one
  running   the service is active and running
  settle    it keeps the same main process, with no restarts by systemd,
            for --settle
  rest      GET /api/v3.1/ok returns 200 (before Cloudify 6.0, any
            response from /api/v3.1/status counts)
  log       the REST log written since the restart has no traceback that
            names an enabled module
  idp       /api/v3.1/idp lists every authenticator it listed before
            (needs an admin login; Cloudify 6.3 and later)

--timeout bounds everything from the restart request to the REST response.
On failure restart names the failed phase and shows the last 20 lines of the
service's output: from the journal, else from the REST log files.

Exit status: 0 healthy (or queued, with --no-wait), 1 the restart or a check
failed, 2 usage error, 3 no bus, no such unit, or permission denied.`,
		Example: `  sudo cfyauth restart
  sudo cfyauth restart --unit cloudify-restservice --unit cloudify-api
  sudo cfyauth restart --settle 5s --timeout 3m -o json
  sudo cfyauth restart --no-wait`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runRestart(cmd.Context(), app, opts)
		},
	}
	addServiceFlags(cmd, &opts.Units, &opts.HealthURL, &opts.ServiceManager, &opts.AdminPasswordFile)
	cmd.Flags().DurationVar(&opts.Settle, "settle", restart.DefaultSettle, "how long the service must keep running with no further restarts")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", restart.DefaultTimeout, "longest wait from the restart request until the REST API returns 200, settle window included")
	cmd.Flags().BoolVar(&opts.NoWait, "no-wait", false, "return as soon as the restart job is queued, without the health checks")
	return cmd
}

func runRestart(ctx context.Context, app *App, opts *RestartOptions) error {
	if opts.Settle < 0 {
		return apperr.Usage("invalid_flag", "invalid --settle %s: it cannot be negative", opts.Settle).
			WithHint("pass a duration such as --settle 3s, or --settle 0 to skip the settle window")
	}
	if opts.Timeout <= 0 {
		return apperr.Usage("invalid_flag", "invalid --timeout %s: it must be positive", opts.Timeout).
			WithHint("pass a duration such as --timeout 90s")
	}
	if opts.Settle >= opts.Timeout {
		return apperr.Usage("invalid_flag", "--settle %s must be shorter than --timeout %s", opts.Settle, opts.Timeout).
			WithHint("--timeout bounds the whole wait, settle window included; raise it or shorten --settle")
	}
	units, layout, err := openServiceTarget(app, opts.Units, opts.ServiceManager)
	if err != nil {
		return err
	}
	healthURL := ""
	if !opts.NoWait {
		if healthURL, err = resolveHealthURL(app, opts.HealthURL); err != nil {
			return err
		}
	}
	creds, err := adminCredentials(app, opts.AdminPasswordFile)
	if err != nil {
		return err
	}
	connect, err := connectOptions(app, layout, opts.ServiceManager)
	if err != nil {
		return err
	}
	app.Debugf("%s; health URL %s", connect, orDefault(healthURL, "none"))
	mgr, err := restart.Connect(ctx, connect)
	if err != nil {
		return err
	}
	defer mgr.Close()

	if opts.NoWait {
		return queueRestarts(ctx, app, mgr, units)
	}

	client, err := restart.NewHTTPClient(app.Global.CACert)
	if err != nil {
		return err
	}
	withAPI := false
	for _, u := range units {
		withAPI = withAPI || strings.HasPrefix(u, "cloudify-api.")
	}
	gate := &restart.Gate{
		Manager: mgr,
		HTTP:    client,
		Options: restart.GateOptions{
			Services:    units,
			Settle:      opts.Settle,
			Timeout:     opts.Timeout,
			HealthURL:   healthURL,
			Credentials: creds,
			LogFiles:    restart.RESTLogFiles(layout, withAPI),
			Modules:     func() ([]string, error) { return restart.EnabledModules(layout) },
		},
	}
	progress := newProgressLine(app)
	gate.Progress = progress.Phase
	res, err := gate.Restart(ctx)
	progress.Stop()
	if err != nil {
		return err
	}
	return reportRestart(app, mgr.Name(), res)
}

// queueRestarts implements --no-wait.
func queueRestarts(ctx context.Context, app *App, mgr restart.ServiceManager, units []string) error {
	out := restartOutput{ServiceManager: mgr.Name(), Changed: true, Jobs: []restart.Job{}}
	for _, u := range units {
		job, err := mgr.Restart(ctx, u, false)
		if err != nil {
			return err
		}
		out.Jobs = append(out.Jobs, job)
		if !app.JSON() {
			app.Printf("%s\n", job.Summary)
		}
	}
	if app.JSON() {
		return app.WriteJSON(out)
	}
	app.Infof("not waiting for the restart; run 'cfyauth status' to see the service's state")
	return nil
}

func reportRestart(app *App, managerName string, res *restart.Result) error {
	out := restartOutput{
		ServiceManager: managerName,
		Waited:         true,
		Healthy:        res.Healthy,
		Changed:        len(res.Jobs) > 0,
		FailedPhase:    res.FailedPhase,
		Failure:        res.Failure,
		Jobs:           res.Jobs,
		Before:         res.Before,
		After:          res.After,
		Checks:         res.Checks,
		Tracebacks:     res.Tracebacks,
		LogTail:        res.LogTail,
		ElapsedMS:      res.Elapsed.Milliseconds(),
	}
	var failure *apperr.Error
	if !res.Healthy {
		failure = apperr.Failed("restart_unhealthy", "restart failed in the %s phase: %s", res.FailedPhase, res.Failure)
		if res.Hint != "" {
			failure.WithHint("%s", res.Hint)
		}
	}
	if app.JSON() {
		return writeJSONOutcome(app, out, failure)
	}
	if err := report.RenderTable(app.IO.Out, res.Checks, app.Global.Verbose > 0); err != nil {
		return err
	}
	if failure != nil {
		printLogTail(app, res.LogTail)
		return failure
	}
	for i, job := range res.Jobs {
		if i < len(res.Before) && i < len(res.After) {
			app.Infof("restarted %s: main PID %d -> %d", job.Service, res.Before[i].MainPID, res.After[i].MainPID)
		}
	}
	app.Infof("healthy after %.1fs", res.Elapsed.Seconds())
	return nil
}

// writeJSONOutcome prints the command's JSON document, marked failed when
// failure is set, and then returns failure so that its message and hints
// reach stderr as well.
func writeJSONOutcome(app *App, payload any, failure *apperr.Error) error {
	if failure == nil {
		return app.WriteJSON(payload)
	}
	if err := app.WriteJSONFailed(payload, failure); err != nil {
		return err
	}
	return failure
}

// printLogTail shows the service's last output on stderr, even with -q:
// it is what explains the failure.
func printLogTail(app *App, tail *restart.LogTail) {
	if tail == nil || len(tail.Lines) == 0 {
		fmt.Fprintln(app.IO.ErrOut, "cfyauth: no output from the service since the restart, in the journal or the REST log files")
		return
	}
	fmt.Fprintf(app.IO.ErrOut, "cfyauth: last %d line(s) of %s:\n", len(tail.Lines), tail.Source)
	for _, l := range tail.Lines {
		fmt.Fprintf(app.IO.ErrOut, "  | %s\n", l)
	}
}

// openServiceTarget checks the --unit and --service-manager values, then
// opens the manager layout under --root.
func openServiceTarget(app *App, units []string, kind string) ([]string, *manager.Layout, error) {
	names, err := unitNames(units)
	if err != nil {
		return nil, nil, err
	}
	if _, _, err := restart.ResolveKind(restart.ConnectOptions{Kind: kind}); err != nil {
		return nil, nil, err
	}
	layout, err := manager.Open(app.Global.Root)
	if err != nil {
		return nil, nil, err
	}
	return names, layout, nil
}

// unitNames checks and normalizes --unit values, dropping repeats.
func unitNames(units []string) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	for _, u := range units {
		name, err := restart.UnitName(u)
		if err != nil {
			return nil, err
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, apperr.Usage("missing_flag", "no --unit given").WithHint("pass --unit cloudify-restservice")
	}
	return names, nil
}

// defaultHealthURL is gunicorn's own address on the manager host, which
// responds without nginx, TLS or rate limits.
const defaultHealthURL = "http://127.0.0.1:8100/api/v3.1/ok"

// resolveHealthURL returns the REST health URL: --health-url, else
// /api/v3.1/ok under --manager-url, else gunicorn on the local manager. For
// a --root other than / nothing is guessed.
func resolveHealthURL(app *App, flag string) (string, error) {
	raw, source := flag, "--health-url"
	switch {
	case raw != "":
	case app.Global.ManagerURL != "":
		raw, source = restart.HealthURL(app.Global.ManagerURL), "--manager-url"
	case app.Global.Root == "/":
		return defaultHealthURL, nil
	default:
		return "", apperr.Usage("missing_flag", "--root %s is not /, so cfyauth does not guess where its REST API listens", app.Global.Root).
			WithHint("pass --health-url URL or --manager-url URL")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", apperr.Usage("invalid_url", "invalid %s %q: want an http:// or https:// URL", source, raw).
			WithHint("pass a URL such as https://manager.example.com or http://127.0.0.1:8100/api/v3.1/ok")
	}
	return raw, nil
}

// connectOptions chooses the bus: --bus-address (or its environment
// variable and settings key), else the system bus. For a --root other than
// / the system bus is used only when DBUS_SYSTEM_BUS_ADDRESS names it.
func connectOptions(app *App, layout *manager.Layout, kind string) (restart.ConnectOptions, error) {
	o := restart.ConnectOptions{Kind: kind, Release: layout.DetectRelease(), BusAddress: app.Global.BusAddress, Root: layout.Root}
	if _, _, err := restart.ResolveKind(o); err != nil {
		return o, err
	}
	if o.BusAddress == "" && app.Global.Root != "/" && app.Getenv("DBUS_SYSTEM_BUS_ADDRESS") == "" {
		resolved, _, _ := restart.ResolveKind(o)
		if resolved == restart.KindSystemd {
			return o, apperr.Usage("missing_flag", "--root %s is not /, so cfyauth does not guess which bus reaches its systemd", app.Global.Root).
				WithHint("pass --bus-address ADDRESS, such as --bus-address unix:path=/run/dbus/system_bus_socket")
		}
	}
	return o, nil
}

// adminCredentials returns the manager admin's login for /api/v3.1/idp, or
// nil when no password is given. The password comes from
// --admin-password-file, CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD, never
// from a flag value.
func adminCredentials(app *App, passwordFile string) (*restart.Credentials, error) {
	password := ""
	switch {
	case passwordFile != "":
		data, err := os.ReadFile(passwordFile)
		if err != nil {
			return nil, apperr.Usage("invalid_password_file", "cannot read --admin-password-file %s: %v", passwordFile, err).
				WithHint("pass a readable file that holds the admin password on its first line")
		}
		password = strings.SplitN(string(data), "\n", 2)[0]
		password = strings.TrimRight(password, "\r")
	case app.Getenv("CFYAUTH_ADMIN_PASSWORD") != "":
		password = app.Getenv("CFYAUTH_ADMIN_PASSWORD")
	case app.Getenv("CLOUDIFY_PASSWORD") != "":
		password = app.Getenv("CLOUDIFY_PASSWORD")
	default:
		return nil, nil
	}
	user := app.Getenv("CLOUDIFY_USERNAME")
	if user == "" {
		user = "admin"
	}
	return &restart.Credentials{Username: user, Password: password, Tenant: app.Getenv("CLOUDIFY_TENANT")}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// progressLine shows the gate's phase and the elapsed time on one stderr
// line, only when stderr is a terminal and -q is not set.
type progressLine struct {
	app   *App
	mu    sync.Mutex
	phase restart.Phase
	start time.Time
	stop  chan struct{}
	done  chan struct{}
}

func newProgressLine(app *App) *progressLine {
	p := &progressLine{app: app, start: time.Now()}
	if !app.IO.StderrTTY || app.Global.Quiet {
		return p
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.loop()
	return p
}

// Phase records the phase now running.
func (p *progressLine) Phase(ph restart.Phase) {
	p.mu.Lock()
	p.phase = ph
	p.mu.Unlock()
}

func (p *progressLine) loop() {
	defer close(p.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			fmt.Fprint(p.app.IO.ErrOut, "\r\033[K")
			return
		case <-tick.C:
			p.mu.Lock()
			ph := p.phase
			p.mu.Unlock()
			if ph != "" {
				fmt.Fprintf(p.app.IO.ErrOut, "\r\033[Kcfyauth: %s (%.1fs)", ph.Describe(), time.Since(p.start).Seconds())
			}
		}
	}
}

// Stop clears the line; it is safe to call when no line was shown.
func (p *progressLine) Stop() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
}
