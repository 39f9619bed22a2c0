// Package restart restarts the manager's REST service through its service
// manager and decides with a health gate whether it really came back.
// systemd is driven over D-Bus. supervisord, driven over XML-RPC, is the
// second backend.
//
// The package never prints. The service manager, the HTTP client and the
// clock are small interfaces. So tests run against a real systemd, and use
// narrow fakes only for faults a real server cannot produce on demand.
package restart

import (
	"context"
	"time"
)

// DefaultUnit is the REST service's name under both systemd and supervisord.
const DefaultUnit = "cloudify-restservice"

// ServiceManager is one backend that runs the REST service: systemd or
// supervisord. Implementations return *apperr.Error values for faults the
// operator must act on (permission denied, unknown service, no bus).
type ServiceManager interface {
	// Name is the backend's name as the operator knows it, such as "systemd".
	Name() string
	// Status reads the service's current state.
	Status(ctx context.Context, service string) (ServiceStatus, error)
	// Restart queues a restart of the service. With wait set it returns the
	// job's result when the service manager has finished the job. Otherwise
	// it returns as soon as the job is queued.
	Restart(ctx context.Context, service string, wait bool) (Job, error)
	// LogTail returns up to n lines of the service's own output written
	// since the given time, from the service manager's log (the journal for
	// systemd). No lines and a nil error mean the source had nothing.
	LogTail(ctx context.Context, service string, since time.Time, n int) (LogTail, error)
	// Close releases the connection.
	Close() error
}

// ServiceStatus is a service's state as its service manager reports it.
// Fields a backend or an old version does not provide keep their zero value
// and the matching Has… field stays false.
type ServiceStatus struct {
	// Service is the full name, such as cloudify-restservice.service.
	Service     string `json:"service"`
	Description string `json:"description,omitempty"`
	// LoadState is systemd's: loaded, not-found, masked, error.
	LoadState   string `json:"load_state,omitempty"`
	ActiveState string `json:"active_state"`
	SubState    string `json:"sub_state"`
	MainPID     int    `json:"main_pid"`
	// InvocationID changes with every start (systemd 232 and later).
	InvocationID    string `json:"invocation_id,omitempty"`
	HasInvocationID bool   `json:"-"`
	// NRestarts counts automatic restarts by Restart= (systemd 235 and later).
	NRestarts    int  `json:"n_restarts"`
	HasNRestarts bool `json:"-"`
	// StartedAt is when the service last entered the active state.
	StartedAt time.Time `json:"started_at,omitzero"`
	// MainStartedAt is when the current main process was started; systemd
	// 219 has it where it lacks InvocationID.
	MainStartedAt time.Time `json:"main_started_at,omitzero"`
	// Result is systemd's service result: success, exit-code, signal, …
	Result string `json:"result,omitempty"`
	// ExitStatus is the main process's exit status or signal number.
	ExitStatus int `json:"exit_status,omitempty"`
}

// Running reports whether the service is active with a live main process.
func (s ServiceStatus) Running() bool {
	return s.ActiveState == "active" && s.SubState == "running"
}

// Job is a restart job queued with a service manager.
type Job struct {
	Service string `json:"service"`
	// ID is the backend's job ID; systemd may legitimately return 0.
	ID int `json:"job_id"`
	// Result is set when the caller waited: done, failed, timeout,
	// canceled, dependency or skipped.
	Result string `json:"job_result,omitempty"`
	// Summary is the result as a plain sentence.
	Summary string `json:"summary,omitempty"`
	// QueuedAt is when the restart was requested.
	QueuedAt time.Time `json:"queued_at"`
	// FinishedAt is when the result arrived.
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// JobResultDone is the only job result that means the restart was carried out.
const JobResultDone = "done"

// LogTail is the last lines of a service's output and where they came from.
type LogTail struct {
	// Source names where the lines were read, such as "journalctl -u
	// cloudify-restservice.service" or a log file's path.
	Source string   `json:"source"`
	Lines  []string `json:"lines"`
}
