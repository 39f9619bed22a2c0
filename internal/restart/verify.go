package restart

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// gateRun is the state of one pass through the health gate.
type gateRun struct {
	gate     *Gate
	opts     GateOptions
	base     *Baseline
	deadline time.Time
	result   *Result
	// running holds each service's state once it ran, in base order; the
	// settle window and the REST wait compare against it.
	running []ServiceStatus
	// latest holds the last state read of each service, for the result.
	latest map[string]ServiceStatus
	// phase is the phase in progress.
	phase Phase
}

func (r *gateRun) enter(p Phase) {
	r.phase = p
	r.gate.progress(p)
}

func (r *gateRun) now() time.Time { return r.gate.clock().Now() }

func (r *gateRun) status(ctx context.Context, service string) (ServiceStatus, error) {
	st, err := r.gate.Manager.Status(ctx, service)
	if err == nil {
		if r.latest == nil {
			r.latest = map[string]ServiceStatus{}
		}
		r.latest[service] = st
	}
	return st, err
}

// pause sleeps one poll interval, or less when until comes first.
func (r *gateRun) pause(ctx context.Context, until time.Time) error {
	d := r.opts.PollInterval
	if left := until.Sub(r.now()); left < d {
		d = left
	}
	if d <= 0 {
		return ctx.Err()
	}
	return r.gate.clock().Sleep(ctx, d)
}

// addCheck appends a check and, when it failed, records the failure with
// the service's last output.
func (r *gateRun) addCheck(ctx context.Context, phase Phase, c report.Check) bool {
	r.result.Checks = append(r.result.Checks, c)
	if c.Status != report.Fail {
		return true
	}
	r.fail(ctx, phase, c.Subject, c.Summary, c.Hint)
	return false
}

func (r *gateRun) fail(ctx context.Context, phase Phase, service, summary, hint string) {
	r.result.FailedPhase = phase
	r.result.Failure = summary
	r.result.Hint = hint
	if r.result.LogTail == nil {
		r.result.LogTail = r.collectTail(ctx, service)
	}
}

// collectTail returns the last lines of the service's output written since
// the restart, from the first source that has any: the service manager's
// log (the journal), then each REST log file.
func (r *gateRun) collectTail(ctx context.Context, service string) *LogTail {
	if service == "" && len(r.base.Services) > 0 {
		service = r.base.Services[0].Service
	}
	// The gate's own context may have run out; the tail still matters.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if service != "" {
		tail, err := r.gate.Manager.LogTail(tctx, service, r.base.TakenAt, r.opts.TailLines)
		if err == nil && len(tail.Lines) > 0 {
			return &tail
		}
	}
	for _, f := range r.opts.LogFiles {
		data, _, err := readSince(f, r.base.offsets[f])
		if err != nil {
			continue
		}
		if lines := lastLines(data, r.opts.TailLines); len(lines) > 0 {
			return &LogTail{Source: f, Lines: lines}
		}
	}
	return nil
}

// finish marks the phases that did not run and fills in the totals.
func (r *gateRun) finish() *Result {
	res := r.result
	res.Healthy = res.FailedPhase == ""
	seen := map[string]bool{}
	for _, c := range res.Checks {
		seen[c.ID] = true
	}
	for _, p := range Phases {
		if seen[string(p)] || res.Healthy {
			continue
		}
		res.Checks = append(res.Checks, report.Check{ID: string(p), Status: report.Skip,
			Summary: fmt.Sprintf("not checked because the %s check failed", res.FailedPhase)})
	}
	for _, b := range r.base.Services {
		if st, ok := r.latest[b.Service]; ok {
			res.After = append(res.After, st)
		}
	}
	res.Elapsed = r.now().Sub(r.base.TakenAt)
	return res
}

// waitRunning waits until every service is active and running with a new
// main process.
func (r *gateRun) waitRunning(ctx context.Context) bool {
	r.enter(PhaseRunning)
	for _, before := range r.base.Services {
		st, ok := r.waitOneRunning(ctx, before)
		if !ok {
			return false
		}
		r.running = append(r.running, st)
	}
	return true
}

func (r *gateRun) waitOneRunning(ctx context.Context, before ServiceStatus) (ServiceStatus, bool) {
	name := before.Service
	start := r.now()
	for {
		st, err := r.status(ctx, name)
		if err != nil {
			c := report.Check{ID: string(PhaseRunning), Subject: name, Status: report.Fail,
				Summary: fmt.Sprintf("cannot read the state of %s after the restart: %v", name, err)}
			return st, r.addCheck(ctx, PhaseRunning, c)
		}
		waiting := st.ActiveState == "activating" && st.SubState != "auto-restart" || st.ActiveState == "reloading"
		switch {
		case st.Running():
			return st, r.checkNewProcess(ctx, before, st, r.now().Sub(start))
		case waiting && r.now().Before(r.deadline):
			if err := r.pause(ctx, r.deadline); err != nil {
				return st, false
			}
		case waiting:
			c := report.Check{ID: string(PhaseRunning), Subject: name, Status: report.Fail, Duration: r.now().Sub(start),
				Summary: fmt.Sprintf("%s is still %s (%s) when %s %s ran out", name, st.ActiveState, st.SubState, r.opts.TimeoutFlag, r.opts.Timeout),
				Hint:    "raise " + r.opts.TimeoutFlag + " if the service is slow to start, or read its last output, shown with this failure"}
			return st, r.addCheck(ctx, PhaseRunning, c)
		default:
			c := report.Check{ID: string(PhaseRunning), Subject: name, Status: report.Fail, Duration: r.now().Sub(start),
				Summary: fmt.Sprintf("%s is not running after the restart: %s", name, describeState(st)),
				Hint:    "the service exited right after it started; read its last output, shown with this failure"}
			addStateEvidence(&c, st)
			return st, r.addCheck(ctx, PhaseRunning, c)
		}
	}
}

// noInvocationIDReason names the service manager that gives no invocation ID.
func (r *gateRun) noInvocationIDReason() string {
	if r.gate.Manager != nil && r.gate.Manager.Name() == KindSupervisord {
		return "supervisord"
	}
	return "this systemd (older than 232)"
}

// checkNewProcess adds the process and running checks of a running service.
func (r *gateRun) checkNewProcess(ctx context.Context, before, after ServiceStatus, waited time.Duration) bool {
	c := report.Check{ID: string(PhaseProcess), Subject: after.Service, Duration: waited}
	c.AddEvidence("main_pid_before", before.MainPID).AddEvidence("main_pid_after", after.MainPID)
	if after.HasInvocationID {
		c.AddEvidence("invocation_id_before", before.InvocationID).AddEvidence("invocation_id_after", after.InvocationID)
	} else {
		c.AddEvidence("invocation_id", "not provided by "+r.noInvocationIDReason()+"; compared main process start times")
		c.AddEvidence("main_started_before", formatTime(before.MainStartedAt)).AddEvidence("main_started_after", formatTime(after.MainStartedAt))
	}
	if reason := sameProcess(before, after); reason != "" {
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("%s was not restarted: %s", after.Service, reason)
		c.Hint = "another job may have replaced the restart; run the command again and read the service's last output, shown with this failure"
		return r.addCheck(ctx, PhaseProcess, c)
	}
	c.Status = report.Pass
	c.Summary = fmt.Sprintf("new main process %d (was %d)", after.MainPID, before.MainPID)
	if after.HasInvocationID {
		c.Summary += ", new invocation " + shortID(after.InvocationID)
	}
	r.addCheck(ctx, PhaseProcess, c)

	run := report.Check{ID: string(PhaseRunning), Subject: after.Service, Status: report.Pass,
		Summary: fmt.Sprintf("%s (%s)", after.ActiveState, after.SubState)}
	addStateEvidence(&run, after)
	return r.addCheck(ctx, PhaseRunning, run)
}

// sameProcess returns why after is not a new start of the service, or "".
// Without an invocation ID the main process start time must not go back;
// an equal time passes, because a backend may count it in whole seconds.
func sameProcess(before, after ServiceStatus) string {
	switch {
	case after.MainPID == 0:
		return "it has no main process"
	case after.MainPID == before.MainPID:
		return fmt.Sprintf("its main process is still %d", after.MainPID)
	case after.HasInvocationID && before.InvocationID != "" && after.InvocationID == before.InvocationID:
		return fmt.Sprintf("its invocation ID is still %s", shortID(after.InvocationID))
	case !after.HasInvocationID && after.MainStartedAt.Before(before.MainStartedAt):
		return fmt.Sprintf("its main process start time %s is older than before the restart (%s)",
			formatTime(after.MainStartedAt), formatTime(before.MainStartedAt))
	}
	return ""
}

// changeSince returns how a service changed since it was seen running, or
// "" when it still runs the same main process with no more restarts.
func changeSince(ref, now ServiceStatus) string {
	switch {
	case ref.HasNRestarts && now.NRestarts > ref.NRestarts:
		return fmt.Sprintf("systemd restarted it %d more time(s) (NRestarts %d, was %d), so it keeps crashing", now.NRestarts-ref.NRestarts, now.NRestarts, ref.NRestarts)
	case !now.Running():
		return "it stopped: " + describeState(now)
	case now.MainPID != ref.MainPID:
		return fmt.Sprintf("its main process changed from %d to %d, so it crashed and was started again", ref.MainPID, now.MainPID)
	case ref.HasInvocationID && now.InvocationID != ref.InvocationID:
		return fmt.Sprintf("its invocation changed from %s to %s, so it was started again", shortID(ref.InvocationID), shortID(now.InvocationID))
	}
	return ""
}

// settle watches the services through the settle window.
func (r *gateRun) settle(ctx context.Context) bool {
	r.enter(PhaseSettle)
	if r.opts.Settle == 0 {
		r.result.Checks = append(r.result.Checks, report.Check{ID: string(PhaseSettle), Status: report.Skip,
			Summary: "no settle window (--settle 0)"})
		return true
	}
	start := r.now()
	end := start.Add(r.opts.Settle)
	for r.now().Before(end) {
		if !r.now().Before(r.deadline) {
			c := report.Check{ID: string(PhaseSettle), Status: report.Fail, Duration: r.now().Sub(start),
				Summary: fmt.Sprintf("the settle window of %s did not end within %s %s", r.opts.Settle, r.opts.TimeoutFlag, r.opts.Timeout),
				Hint:    "make " + r.opts.TimeoutFlag + " longer than --settle plus the service's start time"}
			return r.addCheck(ctx, PhaseSettle, c)
		}
		if err := r.pause(ctx, end); err != nil {
			return false
		}
		for i, ref := range r.running {
			st, err := r.status(ctx, ref.Service)
			if err != nil {
				c := report.Check{ID: string(PhaseSettle), Subject: ref.Service, Status: report.Fail,
					Summary: fmt.Sprintf("cannot read the state of %s: %v", ref.Service, err)}
				return r.addCheck(ctx, PhaseSettle, c)
			}
			if change := changeSince(ref, st); change != "" {
				c := report.Check{ID: string(PhaseSettle), Subject: ref.Service, Status: report.Fail, Duration: r.now().Sub(start),
					Summary: fmt.Sprintf("%s failed %s after it started: %s", ref.Service, roundDuration(r.now().Sub(start)), change),
					Hint:    "the service crashes after start; read its last output, shown with this failure"}
				addStateEvidence(&c, st)
				return r.addCheck(ctx, PhaseSettle, c)
			}
			r.running[i].ActiveState, r.running[i].SubState = st.ActiveState, st.SubState
		}
	}
	for _, ref := range r.running {
		c := report.Check{ID: string(PhaseSettle), Subject: ref.Service, Status: report.Pass, Duration: r.now().Sub(start),
			Summary: fmt.Sprintf("main process %d kept running for %s with no further restarts", ref.MainPID, r.opts.Settle)}
		if ref.HasNRestarts {
			c.AddEvidence("n_restarts", ref.NRestarts)
		}
		r.addCheck(ctx, PhaseSettle, c)
	}
	return true
}

// waitREST waits until the REST API returns 200 on its health endpoint.
func (r *gateRun) waitREST(ctx context.Context) bool {
	r.enter(PhaseREST)
	url := r.opts.HealthURL
	if url == "" || r.gate.HTTP == nil {
		r.result.Checks = append(r.result.Checks, report.Check{ID: string(PhaseREST), Status: report.Skip,
			Summary: "no health URL to ask"})
		return true
	}
	start := r.now()
	legacy := false
	last := "no response yet"
	for attempt := 1; ; attempt++ {
		resp, err := r.probe(ctx, url, legacy)
		if ctx.Err() != nil {
			return false
		}
		switch {
		case err != nil:
			last = describeHTTPError(err)
		case !legacy && resp.StatusCode == 404 && strings.HasSuffix(url, okPath):
			// Cloudify before 6.0 has no /ok; any response from /status
			// shows the REST service is serving.
			url = strings.TrimSuffix(url, okPath) + statusPath
			legacy = true
			continue
		case legacy, resp.StatusCode == 200:
			c := report.Check{ID: string(PhaseREST), Status: report.Pass, Duration: r.now().Sub(start),
				Summary: fmt.Sprintf("GET %s returned HTTP %d after %s", url, resp.StatusCode, roundDuration(r.now().Sub(r.base.TakenAt)))}
			if legacy {
				c.Summary += " (no /api/v3.1/ok before Cloudify 6.0, so any response from /status counts)"
			}
			c.AddEvidence("url", url).AddEvidence("attempts", attempt)
			return r.addCheck(ctx, PhaseREST, c)
		default:
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, snippet(resp.Body))
		}
		for _, ref := range r.running {
			st, err := r.status(ctx, ref.Service)
			if err == nil {
				if change := changeSince(ref, st); change != "" {
					c := report.Check{ID: string(PhaseREST), Subject: ref.Service, Status: report.Fail, Duration: r.now().Sub(start),
						Summary: fmt.Sprintf("%s failed while waiting for the REST API: %s", ref.Service, change),
						Hint:    "the service crashes after start; read its last output, shown with this failure"}
					addStateEvidence(&c, st)
					return r.addCheck(ctx, PhaseREST, c)
				}
			}
		}
		if !r.now().Before(r.deadline) {
			c := report.Check{ID: string(PhaseREST), Status: report.Fail, Duration: r.now().Sub(start),
				Summary: fmt.Sprintf("GET %s did not return HTTP 200 within %s (last response: %s)", url, r.opts.Timeout, last),
				Hint:    "the service runs but is not ready; read its last output, shown with this failure, or raise " + r.opts.TimeoutFlag + " if it is slow to start"}
			c.AddEvidence("url", url).AddEvidence("attempts", attempt).AddEvidence("last_response", last)
			return r.addCheck(ctx, PhaseREST, c)
		}
		if err := r.pause(ctx, r.deadline); err != nil {
			return false
		}
	}
}

func (r *gateRun) probe(ctx context.Context, url string, legacy bool) (HTTPResponse, error) {
	timeout := probeTimeout
	if left := r.deadline.Sub(r.now()); left < timeout && left > 0 {
		timeout = left
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var creds *Credentials
	if legacy {
		creds = r.opts.Credentials
	}
	return r.gate.HTTP.Get(pctx, url, creds)
}

// scanLog looks for tracebacks in what the REST log files gained since the
// restart. A module that fails to import leaves the service healthy and its
// users locked out, so a traceback naming an enabled module fails the gate.
func (r *gateRun) scanLog(ctx context.Context) bool {
	r.enter(PhaseLog)
	start := r.now()
	c := report.Check{ID: string(PhaseLog)}
	var modules []string
	if r.opts.Modules != nil {
		var err error
		if modules, err = r.opts.Modules(); err != nil {
			c.AddEvidence("modules_error", err.Error())
		}
	}
	c.AddEvidence("enabled_modules", strings.Join(modules, ",")).AddEvidence("files", strings.Join(r.opts.LogFiles, ","))

	var all, named []Traceback
	var unreadable []string
	read := 0
	for _, f := range r.opts.LogFiles {
		data, truncated, err := readSince(f, r.base.offsets[f])
		if err != nil {
			unreadable = append(unreadable, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		if data != nil {
			read++
		}
		if truncated {
			c.AddEvidence("truncated", f)
		}
		for _, tb := range findTracebacks(f, data) {
			tb.Modules = namedModules(tb, modules)
			all = append(all, tb)
			if len(tb.Modules) > 0 {
				named = append(named, tb)
			}
		}
	}
	r.result.Tracebacks = all
	c.Duration = r.now().Sub(start)
	switch {
	case len(named) > 0:
		tb := named[0]
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("module %s failed to load, so its users cannot log in: traceback in %s line %d since the restart: %s",
			strings.Join(tb.Modules, ", "), filepath.Base(tb.File), tb.Line, tb.Exception)
		c.AddEvidence("file", tb.File)
		c.Hint = "fix the module or disable it with 'cfyauth disable " + tb.Modules[0] + "', then restart"
		c.AddEvidence("tracebacks", len(all))
		r.result.LogTail = &LogTail{Source: tb.File, Lines: lastLines([]byte(tb.Text), r.opts.TailLines)}
		return r.addCheck(ctx, PhaseLog, c)
	case len(unreadable) > 0:
		c.Status = report.Warn
		c.Summary = "cannot read the REST log, so tracebacks were not checked: " + strings.Join(unreadable, "; ")
		c.Hint = "run cfyauth as root, which can read /var/log/cloudify/rest"
	case read == 0:
		c.Status = report.Warn
		c.Summary = "no REST log file found, so tracebacks were not checked"
		c.Hint = "check --root; the REST service logs to /var/log/cloudify/rest"
	case len(all) > 0:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("%d traceback(s) in the REST log since the restart, none naming an enabled module (first: %s line %d: %s)",
			len(all), all[0].File, all[0].Line, all[0].Exception)
		c.Hint = "read the REST log to see whether the service works as it should"
	default:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("no traceback in the REST log since the restart (%d enabled module(s))", len(modules))
	}
	return r.addCheck(ctx, PhaseLog, c)
}

// compareIdP checks that /api/v3.1/idp lists every authenticator it listed
// before the restart.
func (r *gateRun) compareIdP(ctx context.Context) bool {
	r.enter(PhaseIdP)
	c := report.Check{ID: string(PhaseIdP)}
	base := baseURL(r.opts.HealthURL)
	if r.opts.Credentials == nil || base == "" || r.gate.HTTP == nil {
		c.Status, c.Summary = report.Skip, "loaded authenticators not compared: no admin login given"
		c.Hint = "set CLOUDIFY_USERNAME and CLOUDIFY_PASSWORD (or pass --admin-password-file) to compare /api/v3.1/idp before and after"
		return r.addCheck(ctx, PhaseIdP, c)
	}
	start := r.now()
	names, found, err := readIdP(ctx, r.gate.HTTP, base, r.opts.Credentials)
	c.Duration = r.now().Sub(start)
	switch {
	case errors.Is(err, errUnauthorized):
		c.Status, c.Summary = report.Warn, "the REST API rejected the admin login, so the loaded authenticators were not compared"
		c.Hint = "check CLOUDIFY_USERNAME and the admin password"
		return r.addCheck(ctx, PhaseIdP, c)
	case err != nil:
		c.Status, c.Summary = report.Warn, "cannot read /api/v3.1/idp: "+err.Error()
		return r.addCheck(ctx, PhaseIdP, c)
	case !found:
		c.Status, c.Summary = report.Skip, "no /api/v3.1/idp on this manager (Cloudify before 6.3)"
		return r.addCheck(ctx, PhaseIdP, c)
	}
	c.AddEvidence("before", strings.Join(r.base.IdP, ",")).AddEvidence("after", strings.Join(names, ","))
	if !r.base.IdPFound {
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("loads %s (not readable before the restart: %s)", strings.Join(names, ", "), orNone(r.base.IdPError))
		return r.addCheck(ctx, PhaseIdP, c)
	}
	lost, added := diffNames(r.base.IdP, names)
	switch {
	case len(lost) > 0:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("authenticators loaded before the restart are missing now: %s (before: %s; now: %s)",
			strings.Join(lost, ", "), strings.Join(r.base.IdP, ", "), strings.Join(names, ", "))
		c.Hint = "look for the module's error in the REST log; 'cfyauth rollback' restores the previous module set"
	case len(added) > 0:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("loads %s (added since the restart: %s)", strings.Join(names, ", "), strings.Join(added, ", "))
	default:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("loads the same authenticators as before: %s", strings.Join(names, ", "))
	}
	return r.addCheck(ctx, PhaseIdP, c)
}

// diffNames returns the authenticators only in before and only in after,
// sorted. "local" is what /idp lists when no external authenticator is
// loaded, so it is not an authenticator to lose or gain.
func diffNames(before, after []string) (lost, added []string) {
	inAfter := map[string]bool{}
	for _, n := range after {
		inAfter[n] = true
	}
	inBefore := map[string]bool{}
	for _, n := range before {
		inBefore[n] = true
		if !inAfter[n] && n != "local" {
			lost = append(lost, n)
		}
	}
	for _, n := range after {
		if !inBefore[n] && n != "local" {
			added = append(added, n)
		}
	}
	sort.Strings(lost)
	sort.Strings(added)
	return lost, added
}

func describeState(st ServiceStatus) string {
	s := st.ActiveState
	if st.SubState != st.ActiveState {
		s += " (" + st.SubState + ")"
	}
	if st.Result != "" && st.Result != "success" {
		s += ", result " + st.Result
	}
	if st.ExitStatus != 0 {
		s += fmt.Sprintf(", exit status %d", st.ExitStatus)
	}
	return s
}

func addStateEvidence(c *report.Check, st ServiceStatus) {
	c.AddEvidence("active_state", st.ActiveState).AddEvidence("sub_state", st.SubState).AddEvidence("main_pid", st.MainPID)
	if st.Result != "" {
		c.AddEvidence("result", st.Result)
	}
	if st.HasNRestarts {
		c.AddEvidence("n_restarts", st.NRestarts)
	}
}

// describeHTTPError names the usual network failures in plain words.
func describeHTTPError(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no response within %s", probeTimeout)
	}
	return err.Error()
}

// snippet returns the start of a response body on one line.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339Nano)
}

// roundDuration rounds to tenths of a second for messages.
func roundDuration(d time.Duration) time.Duration {
	return d.Round(100 * time.Millisecond)
}

// humanTime formats a time for a summary line, to the second.
func humanTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
