package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restart"
)

// RestartOptions are the inputs of 'cfyauth restart'.
type RestartOptions struct {
	serviceFlags
	Settle  time.Duration
	Timeout time.Duration
	NoWait  bool
}

// restartOutput is the JSON document of 'cfyauth restart'.
type restartOutput struct {
	ServiceManager string                  `json:"service_manager"`
	Detection      restart.Detection       `json:"detection"`
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

// serviceFlags are the flags that name the REST service, its service
// manager and its health URL. restart, status and the commands that change
// modules with --restart share them.
type serviceFlags struct {
	Units             []string
	HealthURL         string
	Via               string
	SupervisorSocket  string
	AdminPasswordFile string
}

// addServiceFlags adds the flags that restart, status and the changing
// commands share.
func (f *serviceFlags) addServiceFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&f.Units, "unit", []string{restart.DefaultUnit}, "service (systemd unit or supervisord program) to act on; repeat for cloudify-api on Cloudify 6.4 and later")
	fs.StringVar(&f.HealthURL, "health-url", "", "REST health endpoint (default <--manager-url>/api/v3.1/ok, or http://127.0.0.1:8100/api/v3.1/ok on the manager itself)")
	fs.StringVar(&f.Via, "via", restart.KindAuto, "service manager that runs the REST service: "+strings.Join(restart.Kinds, ", ")+"; auto asks supervisord, then systemd")
	fs.StringVar(&f.SupervisorSocket, "supervisor-socket", "", "supervisord's XML-RPC socket (env CFYAUTH_SUPERVISOR_SOCKET; default: the [unix_http_server] file of <root>/etc/supervisord.conf, else <root>/var/run/supervisord.sock)")
	fs.StringVar(&f.AdminPasswordFile, "admin-password-file", "", "file holding the bootstrap admin's password, to read /api/v3.1/idp and for --verify-admin (else CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD)")
}

func newRestartCmd(app *App, runF func(*RestartOptions) error) *cobra.Command {
	opts := &RestartOptions{}
	cmd := &cobra.Command{
		Use:   "restart",
		Short: "Restart the REST service and wait until it is really healthy",
		Long: `Restart cloudify-restservice through its service manager, supervisord
(over XML-RPC on its unix socket) or systemd (over D-Bus), and wait until it
is healthy. A restart that the service manager reports as done proves
little: a service can exit two seconds later, or run while an
authenticator module failed to load. So after the restart, restart checks,
in order:

  job       systemd's restart job finished with result done, or supervisord
            stopped the program and started it again without a fault
  process   a new main process (and, on systemd 232 and later, a new
            invocation ID) replaced the old one
  running   the service is active and running
  settle    it keeps the same main process, with no restarts by systemd,
            for --settle
  rest      GET /api/v3.1/ok returns 200 with the JSON body "OK" (before
            Cloudify 6.0, any JSON response from /api/v3.1/status counts);
            a response from another server fails at once
  log       the REST log written since the restart has no traceback of an
            enabled module failing to load (at import or in configure); a
            traceback that a loaded module raised while handling a request,
            such as a login, is a warning
  idp       /api/v3.1/idp lists every authenticator it listed before
            (needs an admin login; Cloudify 6.3 and later)

--timeout bounds everything from the restart request to the REST response.
On failure restart names the failed phase and shows the last 20 lines of the
service's output: from the journal or supervisord's stderr log of the
program, else from the REST log files. These lines are the service's raw
output: cfyauth masks only the passwords it was given, such as the admin's.

--via auto (the default) uses supervisord when its socket answers and it
manages the program, else systemd when the unit is active or activating. A
supervisord socket that refuses the connection or the credentials is an
error, never a reason to use systemd. A healthy restart is recorded in
cfyauth's store, so 'cfyauth list' knows no restart is pending.

Exit status: 0 healthy (or restarted without waiting, with --no-wait), 1
the restart or a check failed, 2 usage error, 3 no bus or supervisord
socket, no such unit or program, neither service manager runs the service,
or permission denied.`,
		Example: `  sudo cfyauth restart
  sudo cfyauth restart --via supervisord
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
	opts.addServiceFlags(cmd)
	cmd.Flags().DurationVar(&opts.Settle, "settle", restart.DefaultSettle, "how long the service must keep running with no further restarts")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", restart.DefaultTimeout, "longest wait from the restart request until the REST API returns \"OK\", settle window included")
	cmd.Flags().BoolVar(&opts.NoWait, "no-wait", false, "return as soon as the restart is requested (systemd) or the program was started again (supervisord), without the health checks")
	return cmd
}

func runRestart(ctx context.Context, app *App, opts *RestartOptions) error {
	if err := checkGateDurations(opts.Settle, opts.Timeout, "--timeout"); err != nil {
		return err
	}
	target, err := openServiceTarget(app, opts.serviceFlags, !opts.NoWait)
	if err != nil {
		return err
	}
	mgr, detection, err := target.connect(ctx, app)
	if err != nil {
		return err
	}
	defer mgr.Close()

	if opts.NoWait {
		return queueRestarts(ctx, app, mgr, detection, target.units)
	}

	gate, err := target.gate(app, mgr, opts.Settle, opts.Timeout, "--timeout", storedModuleStates(ctx, app, target.layout))
	if err != nil {
		return err
	}
	progress := newProgressLine(app)
	gate.Progress = progress.Phase
	res, err := gate.Restart(ctx)
	progress.Stop()
	if err != nil {
		return err
	}
	recordRestart(ctx, app, target.layout, mgr.Name(), res)
	return reportRestart(app, mgr.Name(), detection, res)
}

// checkGateDurations checks --settle and the flag that sets the gate's
// timeout.
func checkGateDurations(settle, timeout time.Duration, timeoutFlag string) error {
	if settle < 0 {
		return apperr.Usage("invalid_flag", "invalid --settle %s: it cannot be negative", settle).
			WithHint("pass a duration such as --settle 3s, or --settle 0 to skip the settle window")
	}
	if timeout <= 0 {
		return apperr.Usage("invalid_flag", "invalid %s %s: it must be positive", timeoutFlag, timeout).
			WithHint("pass a duration such as %s 90s", timeoutFlag)
	}
	if settle >= timeout {
		return apperr.Usage("invalid_flag", "--settle %s must be shorter than %s %s", settle, timeoutFlag, timeout).
			WithHint("%s bounds the whole wait, settle window included; raise it or shorten --settle", timeoutFlag)
	}
	return nil
}

// serviceTarget is the REST service a command restarts or inspects, with
// everything needed to reach it, checked before anything changes.
type serviceTarget struct {
	units     []string
	layout    *manager.Layout
	healthURL string
	creds     *restart.Credentials
	via       restart.ConnectOptions
	// secrets are the passwords of this run, masked in the service output
	// that a failure shows.
	secrets []string
}

// openServiceTarget checks the service flags, opens the manager layout
// under --root, and resolves the health URL (when needHealth is set) and
// the admin login.
func openServiceTarget(app *App, f serviceFlags, needHealth bool) (*serviceTarget, error) {
	units, err := unitNames(f.Units)
	if err != nil {
		return nil, err
	}
	if err := restart.CheckVia(f.Via); err != nil {
		return nil, err
	}
	if err := restart.CheckBusAddress(app.Global.BusAddress, busAddressSource(app)); err != nil {
		return nil, err
	}
	layout, err := manager.Open(app.Global.Root)
	if err != nil {
		return nil, err
	}
	t := &serviceTarget{units: units, layout: layout, via: connectOptions(app, layout, f, units)}
	if needHealth {
		if t.healthURL, err = resolveHealthURL(app, f.HealthURL); err != nil {
			return nil, err
		}
	}
	if t.creds, err = adminCredentials(app, f.AdminPasswordFile); err != nil {
		return nil, err
	}
	if t.creds != nil {
		t.secrets = append(t.secrets, t.creds.Password, basicAuthToken(t.creds.Username, t.creds.Password))
	}
	return t, nil
}

// busAddressSource names where the bus address came from, for messages:
// the flag, its environment variable or the settings file.
func busAddressSource(app *App) string {
	source := app.Global.Sources["bus-address"]
	if env, ok := strings.CutPrefix(source, "environment "); ok {
		return env
	}
	if file, ok := strings.CutPrefix(source, "settings file "); ok {
		return "bus_address in " + file
	}
	return "--bus-address"
}

// basicAuthToken is the Authorization header value of a basic-auth login,
// which a service that logs request headers repeats.
func basicAuthToken(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// connect opens the service manager and prints in -v output which one was
// chosen and why.
func (t *serviceTarget) connect(ctx context.Context, app *App) (restart.ServiceManager, restart.Detection, error) {
	app.Debugf("%s; health URL %s", t.via, orDefault(t.healthURL, "none"))
	mgr, detection, err := restart.Connect(ctx, t.via)
	if err != nil {
		return nil, detection, err
	}
	app.Debugf("service manager %s: %s", mgr.Name(), detection.Reason)
	for _, p := range detection.Probes {
		app.Debugf("not %s: %s", p.Via, p.Finding)
	}
	return mgr, detection, nil
}

// gate returns the health gate for the target's services on mgr.
// moduleState returns a module's state as 'cfyauth list' shows it, for the
// hint on a module that fails to load.
func (t *serviceTarget) gate(app *App, mgr restart.ServiceManager, settle, timeout time.Duration, timeoutFlag string,
	moduleState func(string) string) (*restart.Gate, error) {
	client, err := restart.NewHTTPClient(app.Global.CACert)
	if err != nil {
		return nil, err
	}
	withAPI := false
	for _, u := range t.units {
		withAPI = withAPI || strings.HasPrefix(u, "cloudify-api.")
	}
	layout := t.layout
	return &restart.Gate{
		Manager: mgr,
		HTTP:    client,
		Options: restart.GateOptions{
			Services:    t.units,
			Settle:      settle,
			Timeout:     timeout,
			TimeoutFlag: timeoutFlag,
			HealthURL:   t.healthURL,
			Credentials: t.creds,
			LogFiles:    restart.RESTLogFiles(layout, withAPI),
			Modules:     func() ([]string, error) { return restart.EnabledModules(layout) },
			ModuleState: moduleState,
			Secrets:     t.secrets,
		},
	}, nil
}

// moduleStates returns a function that gives each module's state from a
// listing of the store, or "" for a module the listing lacks.
func moduleStates(list modules.ListResult) func(string) string {
	states := map[string]string{}
	for _, m := range list.Modules {
		states[m.Name] = string(m.State)
	}
	return func(name string) string { return states[name] }
}

// storedModuleStates reads the module states from the store when a hint
// needs them. A store that cannot be read gives no state, and the hint
// stays general.
func storedModuleStates(ctx context.Context, app *App, layout *manager.Layout) func(string) string {
	return func(name string) string {
		state := ""
		store, err := modules.OpenStore(layout, modules.StoreOptions{LockTimeout: app.Global.LockTimeout})
		if err == nil {
			err = store.View(ctx, func(tx *modules.Tx) error {
				state = moduleStates(tx.List())(name)
				return nil
			})
		}
		if err != nil {
			app.Debugf("cannot read the state of module %s for the hint: %v", name, err)
		}
		return state
	}
}

// restartOutcome turns a gate result into the store's record of it.
func restartOutcome(via string, res *restart.Result) modules.RestartOutcome {
	o := modules.RestartOutcome{At: time.Now().Add(-res.Elapsed), Via: via, Healthy: res.Healthy,
		FailedPhase: string(res.FailedPhase), Failure: res.Failure}
	if len(res.Jobs) > 0 && !res.Jobs[0].QueuedAt.IsZero() {
		o.At = res.Jobs[0].QueuedAt
	}
	return o
}

// recordRestart stores the restart and its outcome in the module store, so
// that list can tell whether the running service loaded the current modules.
// A store that cannot be written is a warning: the restart itself is done.
func recordRestart(ctx context.Context, app *App, layout *manager.Layout, via string, res *restart.Result) {
	store, err := modules.OpenStore(layout, modules.StoreOptions{LockTimeout: app.Global.LockTimeout})
	if err == nil {
		err = store.Update(ctx, func(tx *modules.Tx) error {
			return tx.RecordRestartOutcome(restartOutcome(via, res), 0)
		})
	}
	if err != nil {
		app.Warnf("the restart was not recorded in cfyauth's store, so 'cfyauth list' may still show a restart pending: %v", err)
	}
}

// queueRestarts implements --no-wait.
func queueRestarts(ctx context.Context, app *App, mgr restart.ServiceManager, detection restart.Detection, units []string) error {
	out := restartOutput{ServiceManager: mgr.Name(), Detection: detection, Changed: true, Jobs: []restart.Job{}}
	for _, u := range units {
		job, err := mgr.Restart(ctx, u, false)
		if err != nil {
			return err
		}
		out.Jobs = append(out.Jobs, job)
		if job.Result != "" && job.Result != restart.JobResultDone {
			failure := apperr.Failed("restart_failed", "%s", job.Summary).
				WithHint("run 'cfyauth restart' without --no-wait to see the health checks and the service's last output")
			if app.JSON() {
				return writeJSONOutcome(app, out, failure)
			}
			return failure
		}
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

func reportRestart(app *App, managerName string, detection restart.Detection, res *restart.Result) error {
	out := restartOutput{
		ServiceManager: managerName,
		Detection:      detection,
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
	if err := report.RenderTableWidth(app.IO.Out, res.Checks, app.Global.Verbose > 0, tableWidth(app)); err != nil {
		return err
	}
	if failure != nil {
		printLogTail(app, managerName, res.LogTail)
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
// it is what explains the failure. The lines are the service's own, with
// only the passwords of this run masked, so the header says so.
func printLogTail(app *App, managerName string, tail *restart.LogTail) {
	if tail == nil || len(tail.Lines) == 0 {
		where := "the journal"
		if managerName == restart.KindSupervisord {
			where = "supervisord's stderr log of the program"
		}
		fmt.Fprintf(app.IO.ErrOut, "cfyauth: no output from the service since the restart, in %s or the REST log files\n", where)
		return
	}
	fmt.Fprintf(app.IO.ErrOut, "cfyauth: last %d line(s) of %s (the service's raw output; cfyauth masks only the passwords it was given):\n",
		len(tail.Lines), tail.Source)
	for _, l := range tail.Lines {
		fmt.Fprintf(app.IO.ErrOut, "  | %s\n", l)
	}
}

// maxTableWidth is the widest a check table gets: summaries wrap inside
// it, and evidence (-v) holds the details.
const maxTableWidth = 120

// tableWidth is the width check tables wrap to: maxTableWidth, or the
// terminal's width when stdout is a narrower terminal.
func tableWidth(app *App) int {
	if !app.IO.StdoutTTY {
		return maxTableWidth
	}
	if f, ok := app.IO.Out.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 && w < maxTableWidth {
			return w
		}
	}
	return maxTableWidth
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

// connectOptions chooses how to reach the service managers. The bus is
// --bus-address (or its environment variable and settings key), else the
// system bus, which for a --root other than / is used only when
// DBUS_SYSTEM_BUS_ADDRESS names it. The supervisord socket comes from
// --supervisor-socket or CFYAUTH_SUPERVISOR_SOCKET, else from the manager's
// supervisord.conf.
func connectOptions(app *App, layout *manager.Layout, f serviceFlags, units []string) restart.ConnectOptions {
	o := restart.ConnectOptions{Via: f.Via, Layout: layout, BusAddress: app.Global.BusAddress, SupervisorSocket: f.SupervisorSocket}
	if o.SupervisorSocket == "" {
		o.SupervisorSocket = app.Getenv("CFYAUTH_SUPERVISOR_SOCKET")
	}
	if len(units) > 0 {
		o.Service = units[0]
	}
	if o.BusAddress == "" && app.Global.Root != "/" && app.Getenv("DBUS_SYSTEM_BUS_ADDRESS") == "" {
		o.NoBusReason = fmt.Sprintf("--root %s is not /, so cfyauth does not guess which bus reaches its systemd", app.Global.Root)
	}
	return o
}

// adminCredentials returns the manager admin's login for /api/v3.1/idp, or
// nil when no password is given. The password comes from
// --admin-password-file, CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD, never
// from a flag value.
func adminCredentials(app *App, passwordFile string) (*restart.Credentials, error) {
	user := app.Getenv("CLOUDIFY_USERNAME")
	if user == "" {
		user = "admin"
	}
	// The admin password is optional here: without it the checks that need
	// it are skipped, so cfyauth never prompts for it.
	password, origin, err := requireSecret(app, SecretSource{
		What:        "the password of the manager admin " + user,
		File:        passwordFile,
		FileFlag:    "admin-password-file",
		EnvVar:      "CFYAUTH_ADMIN_PASSWORD",
		MoreEnvVars: []string{"CLOUDIFY_PASSWORD"},
		NoPrompt:    true,
	})
	if err != nil || origin == "" {
		return nil, err
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
