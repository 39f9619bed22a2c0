package restart

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// Phase is one step of a restart and its health gate, in the order they run.
type Phase string

const (
	PhaseJob     Phase = "job"     // the service manager carries out the restart job
	PhaseProcess Phase = "process" // a new main process replaced the old one
	PhaseRunning Phase = "running" // the service is active and running
	PhaseSettle  Phase = "settle"  // it stays so through the settle window
	PhaseREST    Phase = "rest"    // the REST API responds on its health endpoint
	PhaseLog     Phase = "log"     // the REST log holds no traceback naming an enabled module
	PhaseIdP     Phase = "idp"     // /api/v3.1/idp lists what it listed before
)

// Phases lists every phase in order.
var Phases = []Phase{PhaseJob, PhaseProcess, PhaseRunning, PhaseSettle, PhaseREST, PhaseLog, PhaseIdP}

// Describe returns what the gate is doing in a phase, for progress lines.
func (p Phase) Describe() string {
	switch p {
	case PhaseJob:
		return "waiting for the restart job"
	case PhaseProcess, PhaseRunning:
		return "waiting for the new main process to run"
	case PhaseSettle:
		return "watching the service through the settle window"
	case PhaseREST:
		return "waiting for the REST API to respond"
	case PhaseLog:
		return "reading the REST log"
	case PhaseIdP:
		return "comparing the loaded authenticators"
	}
	return string(p)
}

// Defaults of the gate's options.
const (
	DefaultSettle       = 3 * time.Second
	DefaultTimeout      = 90 * time.Second
	DefaultPollInterval = 250 * time.Millisecond
	DefaultTailLines    = 20
)

// GateOptions configure the health gate.
type GateOptions struct {
	// Services are the services to restart and watch, such as
	// cloudify-restservice.service.
	Services []string
	// Settle is how long the services must keep the same main process and
	// restart count once they run.
	Settle time.Duration
	// Timeout bounds everything from the restart request until the REST API
	// responds, the settle window included.
	Timeout time.Duration
	// HealthURL is the REST health endpoint, normally .../api/v3.1/ok. When
	// it returns 404, /api/v3.1/status next to it is used, where any response
	// counts (Cloudify before 6.0).
	HealthURL string
	// Credentials log in for /api/v3.1/idp; nil skips that comparison.
	Credentials *Credentials
	// LogFiles are the REST log files to scan and to show on failure.
	LogFiles []string
	// Modules returns the enabled authenticator modules, whose names a
	// traceback in the REST log must not contain.
	Modules func() ([]string, error)
	// PollInterval is the pause between two state reads or health requests.
	PollInterval time.Duration
	// TailLines is how many lines of the service's output a failure shows.
	TailLines int
	// TimeoutFlag is the flag that sets Timeout, named in hints; empty
	// means --timeout.
	TimeoutFlag string
	// ModuleState returns the state 'cfyauth list' gives a module
	// (ModuleEnabled, ModuleModified, ModuleUnmanaged, or "" when unknown),
	// so the hint for a module that fails to load names commands that work
	// for it. Nil means unknown.
	ModuleState func(name string) string
	// Secrets are the passwords given to this run, such as the admin's. Every
	// one is replaced by "********" wherever the result repeats service
	// output: the log tail, tracebacks, summaries, evidence and hints.
	Secrets []string
}

// Module states as 'cfyauth list' shows them, for GateOptions.ModuleState.
const (
	ModuleEnabled   = "enabled"
	ModuleModified  = "modified"
	ModuleUnmanaged = "unmanaged"
)

// Gate restarts services and decides whether they came back healthy. It is
// used by 'cfyauth restart' and by every command that restarts the REST
// service after changing modules.
type Gate struct {
	Manager ServiceManager
	HTTP    HTTPGetter
	Clock   Clock
	Options GateOptions
	// Progress, when set, is called as each phase starts.
	Progress func(Phase)
}

// Baseline is the state recorded just before a restart, which the gate
// compares the state after it with.
type Baseline struct {
	TakenAt  time.Time
	Services []ServiceStatus
	// IdP lists the authenticators /api/v3.1/idp returned. IdPFound is false
	// when the endpoint was not requested, does not exist, or did not respond.
	IdP      []string
	IdPFound bool
	// IdPError is the reason /api/v3.1/idp could not be read, if it was requested.
	IdPError string

	offsets map[string]int64
}

// Result is the outcome of a restart and its health gate.
type Result struct {
	Healthy bool
	// FailedPhase is the first phase that failed; empty when healthy.
	FailedPhase Phase
	// Failure describes in one sentence what went wrong.
	Failure string
	// Hint is the next thing for the operator to do.
	Hint   string
	Jobs   []Job
	Before []ServiceStatus
	After  []ServiceStatus
	Checks []report.Check
	// Tracebacks are those found in the REST log since the restart.
	Tracebacks []Traceback
	// LogTail is the service's last output, collected on failure.
	LogTail *LogTail
	Elapsed time.Duration
}

func (g *Gate) options() GateOptions {
	o := g.Options
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.TailLines <= 0 {
		o.TailLines = DefaultTailLines
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Settle < 0 {
		o.Settle = 0
	}
	if o.TimeoutFlag == "" {
		o.TimeoutFlag = "--timeout"
	}
	return o
}

func (g *Gate) clock() Clock {
	if g.Clock == nil {
		return SystemClock{}
	}
	return g.Clock
}

func (g *Gate) progress(p Phase) {
	if g.Progress != nil {
		g.Progress(p)
	}
}

// Before records the services' state, the REST log sizes and, with
// credentials, what /api/v3.1/idp lists. An error here (no such unit,
// permission denied) means nothing was restarted.
func (g *Gate) Before(ctx context.Context) (*Baseline, error) {
	o := g.options()
	b := &Baseline{offsets: logOffsets(o.LogFiles)}
	for _, s := range o.Services {
		st, err := g.Manager.Status(ctx, s)
		if err != nil {
			return nil, err
		}
		b.Services = append(b.Services, st)
	}
	if o.Credentials != nil && g.HTTP != nil {
		if base := baseURL(o.HealthURL); base != "" {
			names, found, err := readIdP(ctx, g.HTTP, base, o.Credentials)
			b.IdP, b.IdPFound = names, found && err == nil
			if err != nil {
				b.IdPError = err.Error()
			}
		}
	}
	b.TakenAt = g.clock().Now()
	return b, nil
}

// Restart records the baseline, restarts each service in order, waits for
// each job, and runs the health gate. When the services cannot be read or
// the restart cannot be requested (no such unit, permission denied, no bus),
// it returns an error and nothing was restarted. Every later problem is a
// failed Result.
func (g *Gate) Restart(ctx context.Context) (*Result, error) {
	o := g.options()
	b, err := g.Before(ctx)
	if err != nil {
		return nil, err
	}
	clock := g.clock()
	deadline := b.TakenAt.Add(o.Timeout)
	jobCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	run := &gateRun{gate: g, opts: o, base: b, deadline: deadline, result: &Result{Before: b.Services}}
	for _, s := range o.Services {
		run.enter(PhaseJob)
		started := clock.Now()
		job, err := g.Manager.Restart(jobCtx, s, true)
		job.QueuedAt = started
		job.FinishedAt = clock.Now()
		c := report.Check{ID: string(PhaseJob), Subject: job.Service, Duration: job.FinishedAt.Sub(started)}
		switch {
		case err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			c.Status = report.Fail
			c.Summary = fmt.Sprintf("the restart job of %s did not finish within %s", job.Service, o.Timeout)
			c.Hint = "raise " + o.TimeoutFlag + " if the service is slow to stop or start, or " + seeOutput
		case err != nil:
			// Before read every service, so an error here is about the
			// request itself (permission denied, bus gone), normally on
			// the first service.
			return nil, err
		case job.Result != JobResultDone:
			c.Status, c.Summary = report.Fail, job.Summary
			c.Hint = seeOutput
		default:
			c.Status, c.Summary = report.Pass, job.Summary
		}
		c.AddEvidence("job_id", job.ID).AddEvidence("job_result", job.Result)
		run.result.Jobs = append(run.result.Jobs, job)
		if !run.addCheck(ctx, PhaseJob, c) {
			return run.finish(), nil
		}
	}
	res := g.verify(ctx, run)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// Verify runs the health gate after restarts that the caller queued and
// waited for itself, against the baseline from Before.
func (g *Gate) Verify(ctx context.Context, b *Baseline, jobs []Job) *Result {
	o := g.options()
	run := &gateRun{gate: g, opts: o, base: b, deadline: b.TakenAt.Add(o.Timeout),
		result: &Result{Before: b.Services, Jobs: jobs}}
	return g.verify(ctx, run)
}

func (g *Gate) verify(ctx context.Context, run *gateRun) *Result {
	steps := []func(context.Context) bool{run.waitRunning, run.settle, run.waitREST, run.scanLog, run.compareIdP}
	for _, step := range steps {
		if !step(ctx) {
			break
		}
	}
	if ctx.Err() != nil && run.result.FailedPhase == "" {
		run.result.FailedPhase = run.phase
		run.result.Failure = "interrupted while " + run.phase.Describe()
	}
	return run.finish()
}
