package restart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/report"
)

// StatusOptions configure Inspect.
type StatusOptions struct {
	Layout *manager.Layout
	// Connect opens the service manager; its error becomes a failed check,
	// or a skipped one for a missing flag. Nil skips the service checks,
	// with SkipServiceReason as the reason.
	Connect           func(ctx context.Context) (ServiceManager, Detection, error)
	SkipServiceReason string
	Services          []string
	// HealthURL is the REST health endpoint; empty skips the REST checks
	// with SkipRESTReason.
	HealthURL      string
	SkipRESTReason string
	HTTP           HTTPGetter
	Credentials    *Credentials
	// Store reads the facts of cfyauth's module store; nil skips the drift
	// check.
	Store func() (StoreFacts, error)
	Clock Clock
}

// StoreFacts are the facts cfyauth's module store records about the
// modules and the restarts cfyauth made.
type StoreFacts struct {
	// Drift lists the modules that differ from the receipts, each as
	// "name (state)": modified, unmanaged or missing.
	Drift []string
	// RestartPending is the store's offline result (yes, no or unknown),
	// from the module times and the last healthy restart it recorded.
	RestartPending string
	// LastRestart is the last restart cfyauth made, or nil.
	LastRestart *RecordedRestart
}

// RecordedRestart is a restart cfyauth made and its health gate's outcome.
type RecordedRestart struct {
	At          time.Time `json:"at"`
	Via         string    `json:"via"`
	Healthy     bool      `json:"healthy"`
	FailedPhase string    `json:"failed_phase,omitempty"`
	Failure     string    `json:"failure,omitempty"`
}

// ModuleFile is one module in the authenticators folder.
type ModuleFile struct {
	Name       string    `json:"name"`
	Path       string    `json:"path"`
	ModifiedAt time.Time `json:"modified_at"`
}

// RESTState is the REST health endpoint's response.
type RESTState struct {
	URL        string `json:"url,omitempty"`
	Responding bool   `json:"responding"`
	StatusCode int    `json:"status_code,omitempty"`
	Error      string `json:"error,omitempty"`
}

// StatusReport is the one-screen health of a manager's authentication side.
type StatusReport struct {
	Root           string          `json:"root"`
	Release        manager.Release `json:"release"`
	ServiceManager string          `json:"service_manager,omitempty"`
	// Detection is the reason ServiceManager was chosen.
	Detection *Detection `json:"detection,omitempty"`
	// LastRecordedRestart is the last restart cfyauth made, from its store.
	LastRecordedRestart *RecordedRestart `json:"last_recorded_restart,omitempty"`
	Modules             []ModuleFile     `json:"modules"`
	Services            []ServiceStatus  `json:"services"`
	// RestartPending is nil when it could not be decided.
	RestartPending *bool     `json:"restart_pending"`
	REST           RESTState `json:"rest"`
	// LoadedAuthenticators are the names /api/v3.1/idp returns, or nil when
	// they are unknown.
	LoadedAuthenticators []string       `json:"loaded_authenticators"`
	Checks               []report.Check `json:"checks"`
	Warnings             []string       `json:"warnings"`
}

// DownloadWarning is shown with every status: module files live under the
// file server's root.
const DownloadWarning = "module sources under /opt/manager/resources may be downloadable by any logged-in user " +
	"through the manager's file server (/resources/authenticators/<file>), so keep passwords and keys out of them"

// Inspect gathers the status report. Every problem it finds is a check,
// never an error, because finding problems is its job.
func Inspect(ctx context.Context, o StatusOptions) *StatusReport {
	clock := o.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	rel := o.Layout.DetectRelease()
	r := &StatusReport{Root: o.Layout.Root, Release: rel, Modules: []ModuleFile{}, Services: []ServiceStatus{},
		Warnings: []string{DownloadWarning}}

	// The layout check names the service manager in use, which is known
	// only once inspectServices has connected; it keeps the first row.
	r.Checks = append(r.Checks, report.Check{})
	folderTime, modCheck := r.readModules(o.Layout)
	r.Checks = append(r.Checks, modCheck)
	var facts *StoreFacts
	var factsErr error
	if o.Store != nil {
		f, err := o.Store()
		facts, factsErr = &f, err
		if err == nil {
			r.LastRecordedRestart = f.LastRestart
		}
	}
	r.Checks = append(r.Checks, driftCheck(o.Store != nil, facts, factsErr))
	started := r.inspectServices(ctx, o, clock)
	r.Checks[0] = layoutCheck(o.Layout, rel, r.ServiceManager, r.Detection)
	r.Checks = append(r.Checks, r.pendingCheck(started, folderTime, facts))
	r.inspectREST(ctx, o, clock)
	return r
}

// layoutCheck describes the manager layout and the service manager: the
// one in use and how it was chosen, or, when none could be reached, the
// one the manager's files name.
func layoutCheck(l *manager.Layout, rel manager.Release, inUse string, detection *Detection) report.Check {
	c := report.Check{ID: "layout", Status: report.Pass}
	c.AddEvidence("root", l.Root).AddEvidence("release_source", orNone(rel.Source)).
		AddEvidence("files_name_service_manager", orNone(rel.ServiceManager))
	c.Summary = "Cloudify Manager"
	if l.Sandbox != nil {
		c.Summary = "cfyauth sandbox"
	}
	c.Summary += ", release " + rel.Era
	if rel.VenvPython != "" {
		c.Summary += ", Python " + rel.VenvPython
	}
	switch {
	case inUse != "" && detection != nil:
		c.Summary += fmt.Sprintf("; %s in use (%s)", inUse, detectionSource(detection))
		c.AddEvidence("service_manager", inUse).AddEvidence("chosen_because", detection.Reason)
		if rel.ServiceManager != "" && rel.ServiceManager != inUse {
			c.Summary += fmt.Sprintf(", though its files name %s", rel.ServiceManager)
		}
	case rel.ServiceManager != "":
		c.Summary += fmt.Sprintf("; its files name %s", rel.ServiceManager)
	}
	if rel.Legacy {
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("Python %s manager (Cloudify 5.0.5 or older) under %s: cfyauth supports Cloudify 5.1 and later", rel.VenvPython, l.Root)
		c.Hint = "upgrade the manager to Cloudify 5.1 or later"
	}
	return c
}

// readModules lists the modules and returns the folder's modification time,
// which changes when a module is added or removed.
func (r *StatusReport) readModules(l *manager.Layout) (time.Time, report.Check) {
	c := report.Check{ID: "modules"}
	dir, err := l.Authenticators()
	if err != nil {
		c.Status, c.Summary = report.Fail, err.Error()
		return time.Time{}, c
	}
	c.AddEvidence("folder", dir)
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		c.Status, c.Summary = report.Pass, "no authenticators folder, so no custom module is loaded"
		return time.Time{}, c
	}
	if err != nil {
		c.Status, c.Summary = report.Fail, fmt.Sprintf("cannot read %s: %v", dir, err)
		c.Hint = "run cfyauth as root"
		return time.Time{}, c
	}
	names, err := EnabledModules(l)
	if err != nil {
		c.Status, c.Summary = report.Fail, err.Error()
		c.Hint = "run cfyauth as root"
		return st.ModTime(), c
	}
	for _, n := range names {
		path := filepath.Join(dir, n+".py")
		m := ModuleFile{Name: n, Path: path}
		if fi, err := os.Stat(path); err == nil {
			m.ModifiedAt = fi.ModTime()
		}
		r.Modules = append(r.Modules, m)
	}
	c.Status = report.Pass
	if len(names) == 0 {
		c.Summary = "no module in the authenticators folder"
	} else {
		c.Summary = fmt.Sprintf("%d module(s) in the authenticators folder: %s", len(names), strings.Join(names, ", "))
	}
	return st.ModTime(), c
}

func driftCheck(asked bool, facts *StoreFacts, err error) report.Check {
	c := report.Check{ID: "drift"}
	switch {
	case !asked:
		c.Status, c.Summary = report.Skip, "no install receipts to compare the module files with"
	case err != nil:
		c.Status, c.Summary = report.Warn, "cannot compare the modules with their receipts: "+err.Error()
		c.Hint = errorHint(err)
	case len(facts.Drift) > 0:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("%d module(s) differ from cfyauth's receipts: %s", len(facts.Drift), strings.Join(facts.Drift, ", "))
		c.Hint = "run 'cfyauth list' to see why; 'cfyauth adopt NAME' takes a modified or unmanaged file under management, 'cfyauth enable NAME' puts a missing one back"
	default:
		c.Status, c.Summary = report.Pass, "every module in the authenticators folder matches cfyauth's receipts"
	}
	return c
}

// inspectServices reads each service's state and returns the start time of
// the REST service (the first one), or zero.
func (r *StatusReport) inspectServices(ctx context.Context, o StatusOptions, clock Clock) time.Time {
	if o.Connect == nil {
		r.Checks = append(r.Checks, report.Check{ID: "service", Status: report.Skip, Summary: o.SkipServiceReason})
		return time.Time{}
	}
	start := clock.Now()
	mgr, detection, err := o.Connect(ctx)
	if err != nil {
		c := report.Check{ID: "service", Status: report.Fail, Duration: clock.Now().Sub(start),
			Summary: "cannot reach the service manager: " + err.Error(), Hint: errorHint(err)}
		switch e := apperr.As(err); e.Code {
		case "missing_flag":
			c.Status, c.Summary = report.Skip, e.Message
		case "no_service_manager":
			// The findings for each candidate are long; they go to the
			// evidence.
			c.Summary = "cannot reach the service manager: neither supervisord nor systemd runs " + ProgramName(o.Services[0])
			for _, p := range detection.Probes {
				c.AddEvidence(p.Via, p.Finding)
			}
		}
		r.Checks = append(r.Checks, c)
		return time.Time{}
	}
	defer mgr.Close()
	r.ServiceManager = mgr.Name()
	r.Detection = &detection
	var started time.Time
	for i, s := range o.Services {
		t0 := clock.Now()
		st, err := mgr.Status(ctx, s)
		c := report.Check{ID: "service", Subject: s, Duration: clock.Now().Sub(t0)}
		switch {
		case err != nil:
			c.Status, c.Summary, c.Hint = report.Fail, err.Error(), errorHint(err)
		case st.Running():
			r.Services = append(r.Services, st)
			c.Subject = st.Service
			c.Status = report.Pass
			c.Summary = fmt.Sprintf("active (running) under %s, main PID %d, started %s", mgr.Name(), st.MainPID, humanTime(startTime(st)))
			addStateEvidence(&c, st)
			c.AddEvidence("service_manager", mgr.Name()).AddEvidence("chosen_because", detection.Reason)
		default:
			r.Services = append(r.Services, st)
			c.Subject = st.Service
			c.Status = report.Fail
			c.Summary = "not running: " + describeState(st)
			c.Hint = "run 'cfyauth restart' and read its output"
			addStateEvidence(&c, st)
		}
		if i == 0 && err == nil && st.Running() {
			started = startTime(st)
		}
		r.Checks = append(r.Checks, c)
	}
	return started
}

// detectionSource describes in a few words how the service manager was chosen.
func detectionSource(d *Detection) string {
	if d.auto {
		return "found by --via auto"
	}
	return "--via " + d.Via
}

func startTime(st ServiceStatus) time.Time {
	if !st.StartedAt.IsZero() {
		return st.StartedAt
	}
	return st.MainStartedAt
}

// pendingCheck compares the module files, and the folder whose time changes
// when one is added or removed, with the REST service's start time. Without
// that time it falls back on the last healthy restart cfyauth recorded.
func (r *StatusReport) pendingCheck(started, folderTime time.Time, facts *StoreFacts) report.Check {
	c := report.Check{ID: "restart-pending"}
	if facts != nil && facts.LastRestart != nil {
		c.AddEvidence("recorded_restart", describeRecordedRestart(facts.LastRestart))
	}
	if started.IsZero() {
		return r.offlinePendingCheck(c, facts)
	}
	c.AddEvidence("service_started", formatTime(started))
	// supervisord reports start times in whole seconds, so a module written
	// just before the restart can look newer than the start. When cfyauth
	// recorded the healthy restart that started the service, its request
	// time is the precise reference.
	loadedAt := started
	if facts != nil && facts.LastRestart != nil && facts.LastRestart.Healthy && startedBy(started, facts.LastRestart) &&
		facts.LastRestart.At.After(loadedAt) {
		loadedAt = facts.LastRestart.At
	}
	var changed []string
	for _, m := range r.Modules {
		if m.ModifiedAt.After(loadedAt) {
			changed = append(changed, m.Name)
		}
	}
	sort.Strings(changed)
	folderChanged := folderTime.After(loadedAt)
	pending := len(changed) > 0 || folderChanged
	r.RestartPending = &pending
	switch {
	case len(changed) > 0:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("restart pending: %s changed after the REST service started at %s", strings.Join(changed, ", "), humanTime(started))
		c.Hint = "run 'cfyauth restart' to load the changes"
	case folderChanged:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("restart pending: a module was added or removed after the REST service started at %s", humanTime(started))
		c.Hint = "run 'cfyauth restart' to load the changes"
	case facts != nil && facts.LastRestart != nil && !facts.LastRestart.Healthy && startedBy(started, facts.LastRestart):
		// The service runs what it loaded at the restart cfyauth made, and
		// that restart failed its health check.
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("no module changed since the REST service started at %s, but that restart failed its health check: %s",
			humanTime(started), describeRecordedRestart(facts.LastRestart))
		c.Hint = "run 'cfyauth restart' to see the failing check, or 'cfyauth rollback' to restore the previous module set"
	default:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("no module changed since the REST service started at %s", humanTime(started))
	}
	return c
}

// recordedRestartWindow bounds how long after a recorded restart request
// the service's start time may be for status to take it as that restart's
// start: longer than any health gate timeout in use, short enough that a
// restart by hand a day later is not mistaken for it.
const recordedRestartWindow = 15 * time.Minute

// startedBy reports whether a service start time belongs to the recorded
// restart: no earlier than its request (start times may be whole seconds)
// and within recordedRestartWindow of it.
func startedBy(started time.Time, rr *RecordedRestart) bool {
	return !started.Before(rr.At.Add(-time.Second)) && started.Sub(rr.At) < recordedRestartWindow
}

// offlinePendingCheck decides from cfyauth's store when the service
// manager gave no start time.
func (r *StatusReport) offlinePendingCheck(c report.Check, facts *StoreFacts) report.Check {
	if facts == nil || facts.RestartPending == "" || facts.RestartPending == "unknown" {
		c.Status, c.Summary = report.Skip, "the REST service's start time is unknown, so a pending restart cannot be told"
		return c
	}
	pending := facts.RestartPending == "yes"
	r.RestartPending = &pending
	since := "cfyauth's last healthy restart"
	if facts.LastRestart != nil && facts.LastRestart.Healthy {
		since += " at " + humanTime(facts.LastRestart.At)
	}
	if pending {
		c.Status = report.Warn
		c.Summary = "restart pending: a module changed after " + since + " (the service manager gave no start time)"
		c.Hint = "run 'cfyauth restart' to load the changes"
		return c
	}
	c.Status = report.Pass
	c.Summary = "no module changed since " + since + " (the service manager gave no start time)"
	return c
}

func describeRecordedRestart(rr *RecordedRestart) string {
	s := fmt.Sprintf("%s via %s, ", humanTime(rr.At), rr.Via)
	if rr.Healthy {
		return s + "healthy"
	}
	return s + fmt.Sprintf("failed in the %s phase: %s", rr.FailedPhase, rr.Failure)
}

// inspectREST requests the health endpoint once and, with credentials, the
// list of loaded authenticators.
func (r *StatusReport) inspectREST(ctx context.Context, o StatusOptions, clock Clock) {
	if o.HealthURL == "" || o.HTTP == nil {
		r.Checks = append(r.Checks,
			report.Check{ID: "rest", Status: report.Skip, Summary: o.SkipRESTReason},
			report.Check{ID: "idp", Status: report.Skip, Summary: o.SkipRESTReason})
		return
	}
	url := o.HealthURL
	r.REST.URL = url
	c := report.Check{ID: "rest"}
	start := clock.Now()
	resp, err := getOnce(ctx, o.HTTP, url, nil)
	legacy := false
	if err == nil && resp.StatusCode == 404 && strings.HasSuffix(url, okPath) {
		legacy = true
		url = strings.TrimSuffix(url, okPath) + statusPath
		r.REST.URL = url
		resp, err = getOnce(ctx, o.HTTP, url, o.Credentials)
	}
	c.Duration = clock.Now().Sub(start)
	c.AddEvidence("url", url)
	var kind responseKind
	var description string
	if err == nil {
		kind, description = classifyHealthResponse(resp, legacy)
		r.REST.StatusCode = resp.StatusCode
	}
	switch {
	case err != nil:
		r.REST.Error = describeHTTPError(err)
		c.Status, c.Summary = report.Fail, fmt.Sprintf("GET %s: %s", url, r.REST.Error)
		c.Hint = "check that the REST service runs ('cfyauth restart'), and the URL (--health-url or --manager-url)"
	case kind == responseHealthy:
		r.REST.Responding = true
		c.Status, c.Summary = report.Pass, fmt.Sprintf("GET %s returned %s", url, description)
		if legacy {
			c.AddEvidence("note", legacyNote)
		}
	case kind == responseNotREST:
		r.REST.Error = description
		c = notRESTCheck(url, resp, description, c.Duration)
	default:
		r.REST.Error = description
		c.Status, c.Summary = report.Fail, fmt.Sprintf("GET %s returned %s", url, description)
		c.Hint = "the REST service runs but reports a problem; read /var/log/cloudify/rest/cloudify-rest-service.log"
	}
	r.Checks = append(r.Checks, c)
	r.Checks = append(r.Checks, r.idpCheck(ctx, o))
}

func (r *StatusReport) idpCheck(ctx context.Context, o StatusOptions) report.Check {
	c := report.Check{ID: "idp"}
	base := baseURL(r.REST.URL)
	if o.Credentials == nil || base == "" {
		c.Status, c.Summary = report.Skip, "loaded authenticators not read: no admin login given"
		c.Hint = "set CLOUDIFY_USERNAME and CLOUDIFY_PASSWORD, or pass --admin-password-file"
		return c
	}
	names, found, err := readIdP(ctx, o.HTTP, base, o.Credentials)
	switch {
	case errors.Is(err, errUnauthorized):
		c.Status, c.Summary = report.Warn, "the REST API rejected the admin login, so the loaded authenticators are unknown"
		c.Hint = "check CLOUDIFY_USERNAME and the admin password"
	case err != nil:
		c.Status, c.Summary = report.Warn, "cannot read /api/v3.1/idp: "+err.Error()
	case !found:
		c.Status, c.Summary = report.Skip, "no /api/v3.1/idp on this manager (Cloudify before 6.3)"
	default:
		r.LoadedAuthenticators = names
		c.Status, c.Summary = report.Pass, "loaded authenticators: "+strings.Join(names, ", ")
		if len(names) == 1 && names[0] == "local" {
			c.Summary = "no external authenticator loaded (/api/v3.1/idp lists local)"
		}
	}
	return c
}

func getOnce(ctx context.Context, http HTTPGetter, url string, creds *Credentials) (HTTPResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return http.Get(ctx, url, creds)
}

// errorHint returns the first hint of a cfyauth error, if it has one.
func errorHint(err error) string {
	var e *apperr.Error
	if errors.As(err, &e) && len(e.Hints) > 0 {
		return e.Hints[0]
	}
	return ""
}
