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
	// Connect opens the service manager; its error becomes a failed check.
	// Nil skips the service checks, with SkipServiceReason as the reason.
	Connect           func(ctx context.Context) (ServiceManager, error)
	SkipServiceReason string
	Services          []string
	// HealthURL is the REST health endpoint; empty skips the REST checks
	// with SkipRESTReason.
	HealthURL      string
	SkipRESTReason string
	HTTP           HTTPGetter
	Credentials    *Credentials
	// Drift lists the managed modules whose files no longer match their
	// install receipts; nil skips the drift check.
	Drift func() ([]string, error)
	Clock Clock
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
	Modules        []ModuleFile    `json:"modules"`
	Services       []ServiceStatus `json:"services"`
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

	r.Checks = append(r.Checks, layoutCheck(o.Layout, rel))
	folderTime, modCheck := r.readModules(o.Layout)
	r.Checks = append(r.Checks, modCheck)
	r.Checks = append(r.Checks, driftCheck(o.Drift))
	started := r.inspectServices(ctx, o, clock)
	r.Checks = append(r.Checks, r.pendingCheck(started, folderTime))
	r.inspectREST(ctx, o, clock)
	return r
}

func layoutCheck(l *manager.Layout, rel manager.Release) report.Check {
	c := report.Check{ID: "layout", Status: report.Pass}
	c.AddEvidence("root", l.Root).AddEvidence("release_source", orNone(rel.Source))
	what := "Cloudify Manager layout"
	if l.Sandbox != nil {
		what = "cfyauth sandbox"
	}
	c.Summary = fmt.Sprintf("%s under %s, release %s", what, l.Root, rel.Era)
	if rel.VenvPython != "" {
		c.Summary += ", Python " + rel.VenvPython
	}
	if rel.ServiceManager != "" {
		c.Summary += ", " + rel.ServiceManager
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

func driftCheck(drift func() ([]string, error)) report.Check {
	c := report.Check{ID: "drift"}
	if drift == nil {
		c.Status, c.Summary = report.Skip, "no install receipts to compare the module files with"
		return c
	}
	changed, err := drift()
	switch {
	case err != nil:
		c.Status, c.Summary = report.Warn, "cannot compare the modules with their receipts: "+err.Error()
	case len(changed) > 0:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("%d module(s) changed since cfyauth installed them: %s", len(changed), strings.Join(changed, ", "))
		c.Hint = "run 'cfyauth list' to see them; 'cfyauth adopt NAME' takes a changed file under management"
	default:
		c.Status, c.Summary = report.Pass, "every managed module matches its install receipt"
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
	mgr, err := o.Connect(ctx)
	if err != nil {
		c := report.Check{ID: "service", Status: report.Fail, Duration: clock.Now().Sub(start),
			Summary: "cannot reach the service manager: " + err.Error(), Hint: errorHint(err)}
		r.Checks = append(r.Checks, c)
		return time.Time{}
	}
	defer mgr.Close()
	r.ServiceManager = mgr.Name()
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
			c.Summary = fmt.Sprintf("active (running), main PID %d, started %s", st.MainPID, humanTime(startTime(st)))
			addStateEvidence(&c, st)
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

func startTime(st ServiceStatus) time.Time {
	if !st.StartedAt.IsZero() {
		return st.StartedAt
	}
	return st.MainStartedAt
}

// pendingCheck compares the module files, and the folder whose time changes
// when one is added or removed, with the REST service's start time.
func (r *StatusReport) pendingCheck(started, folderTime time.Time) report.Check {
	c := report.Check{ID: "restart-pending"}
	if started.IsZero() {
		c.Status, c.Summary = report.Skip, "the REST service's start time is unknown, so a pending restart cannot be told"
		return c
	}
	c.AddEvidence("service_started", formatTime(started))
	var changed []string
	for _, m := range r.Modules {
		if m.ModifiedAt.After(started) {
			changed = append(changed, m.Name)
		}
	}
	sort.Strings(changed)
	folderChanged := folderTime.After(started)
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
	default:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("no module changed since the REST service started at %s", humanTime(started))
	}
	return c
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
	switch {
	case err != nil:
		r.REST.Error = describeHTTPError(err)
		c.Status, c.Summary = report.Fail, fmt.Sprintf("GET %s: %s", url, r.REST.Error)
		c.Hint = "check that the REST service runs ('cfyauth restart'), and the URL (--health-url or --manager-url)"
	case legacy || resp.StatusCode == 200:
		r.REST.Responding, r.REST.StatusCode = true, resp.StatusCode
		c.Status, c.Summary = report.Pass, fmt.Sprintf("GET %s returned HTTP %d", url, resp.StatusCode)
	default:
		r.REST.StatusCode = resp.StatusCode
		r.REST.Error = fmt.Sprintf("HTTP %d %s", resp.StatusCode, snippet(resp.Body))
		c.Status, c.Summary = report.Fail, fmt.Sprintf("GET %s returned %s", url, r.REST.Error)
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
