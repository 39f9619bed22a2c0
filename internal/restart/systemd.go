package restart

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Bus is the part of a go-systemd connection the systemd backend uses;
// *dbus.Conn from github.com/coreos/go-systemd/v22/dbus implements it.
type Bus interface {
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	GetUnitPropertiesContext(ctx context.Context, unit string) (map[string]any, error)
	GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (map[string]any, error)
	Close()
}

// Systemd is the ServiceManager for systemd, over D-Bus.
type Systemd struct {
	bus     Bus
	journal *Journal
	// address is the bus address for messages; "" is the system bus.
	address string
}

// NewSystemd returns the backend on an open bus connection. journal may be
// nil, and then LogTail returns no lines.
func NewSystemd(bus Bus, journal *Journal, address string) *Systemd {
	return &Systemd{bus: bus, journal: journal, address: address}
}

// DialSystemd connects to systemd on the D-Bus bus at address, or on the
// system bus when address is empty (godbus then honours
// DBUS_SYSTEM_BUS_ADDRESS and otherwise uses the standard socket). The
// connection closes when ctx is done.
func DialSystemd(ctx context.Context, address string, journal *Journal) (*Systemd, error) {
	var conn *sd.Conn
	var err error
	if address == "" {
		conn, err = sd.NewSystemConnectionContext(ctx)
	} else {
		conn, err = sd.NewConnection(func() (*godbus.Conn, error) { return dialBus(ctx, address) })
	}
	if err != nil {
		return nil, connectError(address, err)
	}
	return NewSystemd(conn, journal, address), nil
}

// dialBus opens an authenticated connection to the bus at address, as
// go-systemd does for the system bus: EXTERNAL authentication with the
// numeric user ID, then Hello.
func dialBus(ctx context.Context, address string) (*godbus.Conn, error) {
	conn, err := godbus.Dial(address, godbus.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if err := conn.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Name returns "systemd".
func (s *Systemd) Name() string { return "systemd" }

// Close closes the bus connection.
func (s *Systemd) Close() error {
	s.bus.Close()
	return nil
}

// UnitName returns the systemd unit name for a service name: a name
// without a suffix gets ".service". Other unit types are rejected, because
// only a service has a main process to check.
func UnitName(service string) (string, error) {
	if service == "" || strings.ContainsAny(service, "/ \t\n") {
		return "", apperr.Usage("invalid_unit", "invalid unit name %q", service).
			WithHint("pass a service name such as --unit cloudify-restservice")
	}
	if !strings.Contains(service, ".") {
		return service + ".service", nil
	}
	if strings.HasSuffix(service, ".service") {
		return service, nil
	}
	return "", apperr.Usage("invalid_unit", "unit %q is not a service unit", service).
		WithHint("pass a .service unit, such as --unit cloudify-restservice")
}

// Status reads the unit's properties. A unit that systemd cannot find is an
// environment error naming the unit.
func (s *Systemd) Status(ctx context.Context, service string) (ServiceStatus, error) {
	unit, err := UnitName(service)
	if err != nil {
		return ServiceStatus{}, err
	}
	unitProps, err := s.bus.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return ServiceStatus{}, s.callError(unit, "read the state of", err)
	}
	st := ServiceStatus{
		Service:     unit,
		Description: propString(unitProps, "Description"),
		LoadState:   propString(unitProps, "LoadState"),
		ActiveState: propString(unitProps, "ActiveState"),
		SubState:    propString(unitProps, "SubState"),
		StartedAt:   propTime(unitProps, "ActiveEnterTimestamp"),
	}
	if id, ok := unitProps["InvocationID"]; ok {
		st.HasInvocationID = true
		if b, ok := id.([]byte); ok {
			st.InvocationID = hex.EncodeToString(b)
		}
	}
	switch st.LoadState {
	case "not-found":
		return st, unitNotFound(unit)
	case "error", "bad-setting":
		return st, unitLoadFailed(unit, nil)
	}
	serviceProps, err := s.bus.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return st, s.callError(unit, "read the service state of", err)
	}
	st.MainPID = int(propUint(serviceProps, "MainPID"))
	st.MainStartedAt = propTime(serviceProps, "ExecMainStartTimestamp")
	st.Result = propString(serviceProps, "Result")
	st.ExitStatus = int(propInt(serviceProps, "ExecMainStatus"))
	if _, ok := serviceProps["NRestarts"]; ok {
		st.HasNRestarts = true
		st.NRestarts = int(propUint(serviceProps, "NRestarts"))
	}
	return st, nil
}

// Restart queues a RestartUnit job in mode "replace", which replaces a
// conflicting queued job (such as a pending stop) instead of failing. With
// wait set it returns when systemd removes the job, with its result.
func (s *Systemd) Restart(ctx context.Context, service string, wait bool) (Job, error) {
	unit, err := UnitName(service)
	if err != nil {
		return Job{}, err
	}
	job := Job{Service: unit}
	if !wait {
		job.ID, err = s.bus.RestartUnitContext(ctx, unit, "replace", nil)
		if err != nil {
			return job, s.callError(unit, "restart", err)
		}
		job.Summary = fmt.Sprintf("systemd queued a restart of %s (job %d)", unit, job.ID)
		return job, nil
	}
	// go-systemd sends the result from its signal loop while it holds a
	// lock. The channel has room for that one result, so the send never
	// blocks, even when this function stops waiting first.
	results := make(chan string, 1)
	job.ID, err = s.bus.RestartUnitContext(ctx, unit, "replace", results)
	if err != nil {
		return job, s.callError(unit, "restart", err)
	}
	select {
	case job.Result = <-results:
		job.Summary = JobResultSentence(unit, job.Result)
		return job, nil
	case <-ctx.Done():
		return job, ctx.Err()
	}
}

// LogTail reads the unit's journal.
func (s *Systemd) LogTail(ctx context.Context, service string, since time.Time, n int) (LogTail, error) {
	if s.journal == nil {
		return LogTail{}, nil
	}
	unit, err := UnitName(service)
	if err != nil {
		return LogTail{}, err
	}
	return s.journal.Tail(ctx, unit, since, n)
}

// JobResultSentence describes a systemd job result in plain words.
func JobResultSentence(unit, result string) string {
	switch result {
	case "done":
		return fmt.Sprintf("systemd restarted %s (job result done)", unit)
	case "failed":
		return fmt.Sprintf("systemd could not restart %s: the job failed, so a start command exited with an error or the executable is missing (job result failed)", unit)
	case "timeout":
		return fmt.Sprintf("systemd gave up restarting %s: stopping or starting took longer than the unit's TimeoutStopSec or TimeoutStartSec (job result timeout)", unit)
	case "canceled":
		return fmt.Sprintf("the restart of %s was canceled before it finished, because another job for the unit replaced it (job result canceled)", unit)
	case "dependency":
		return fmt.Sprintf("systemd did not restart %s because a unit it requires failed to start (job result dependency)", unit)
	case "skipped":
		return fmt.Sprintf("systemd skipped the restart of %s because it did not apply to the unit's state (job result skipped)", unit)
	default:
		return fmt.Sprintf("the restart job of %s ended with result %q", unit, result)
	}
}

// D-Bus error names that need the operator's action.
const (
	dbusAccessDenied      = "org.freedesktop.DBus.Error.AccessDenied"
	dbusInteractiveAuth   = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
	dbusServiceUnknown    = "org.freedesktop.DBus.Error.ServiceUnknown"
	dbusNameHasNoOwner    = "org.freedesktop.DBus.Error.NameHasNoOwner"
	dbusUnknownObject     = "org.freedesktop.DBus.Error.UnknownObject"
	systemdNoSuchUnit     = "org.freedesktop.systemd1.NoSuchUnit"
	systemdUnitMasked     = "org.freedesktop.systemd1.UnitMasked"
	systemdLoadFailed     = "org.freedesktop.systemd1.LoadFailed"
	systemdJobTypeInvalid = "org.freedesktop.systemd1.JobTypeNotApplicable"
)

// callError turns a failed systemd method call into an error that names
// what to do.
func (s *Systemd) callError(unit, action string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var dbusErr godbus.Error
	if !errors.As(err, &dbusErr) {
		var dbusErrPtr *godbus.Error
		if errors.As(err, &dbusErrPtr) {
			dbusErr = *dbusErrPtr
		}
	}
	detail := err.Error()
	switch dbusErr.Name {
	case dbusAccessDenied, dbusInteractiveAuth:
		return apperr.Environment("permission_denied", "permission denied: systemd refused to %s %s (%s)", action, unit, detail).
			Wrap(err).WithHint("run cfyauth as root: sudo cfyauth restart")
	case systemdNoSuchUnit:
		return unitNotFound(unit).Wrap(err)
	case systemdLoadFailed:
		return unitLoadFailed(unit, err)
	case systemdUnitMasked:
		return apperr.Environment("unit_masked", "cannot %s %s: the unit is masked", action, unit).
			Wrap(err).WithHint("unmask it with 'systemctl unmask %s' if it should run", unit)
	case dbusServiceUnknown, dbusNameHasNoOwner, dbusUnknownObject:
		return apperr.Environment("no_systemd", "no systemd on %s: %s", s.busName(), detail).
			Wrap(err).WithHint("on managers where supervisord runs the REST service, pass --via supervisord")
	case systemdJobTypeInvalid:
		return apperr.Failed("restart_failed", "cannot %s %s: %s", action, unit, detail).Wrap(err)
	}
	if errors.Is(err, godbus.ErrClosed) {
		return apperr.Environment("bus_closed", "the D-Bus connection to %s closed while trying to %s %s", s.busName(), action, unit).
			Wrap(err).WithHint("check that systemd and dbus are running, then run the command again")
	}
	return apperr.Failed("systemd_call_failed", "cannot %s %s: %s", action, unit, detail).Wrap(err)
}

func (s *Systemd) busName() string {
	if s.address == "" {
		return "the system bus"
	}
	return "the bus at " + s.address
}

func unitNotFound(unit string) *apperr.Error {
	return apperr.Environment("unit_not_found", "systemd has no unit %s", unit).
		WithHint("check the name with 'systemctl list-units --all \"cloudify-*\"' and pass it with --unit").
		WithHint("on managers where supervisord runs the REST service, pass --via supervisord")
}

func unitLoadFailed(unit string, err error) *apperr.Error {
	return apperr.Environment("unit_load_failed", "systemd cannot load unit %s: its unit file has errors", unit).
		Wrap(err).WithHint("run 'systemctl status %s' to see the error, fix the unit file, then 'systemctl daemon-reload'", unit)
}

// connectError explains why the bus could not be reached.
func connectError(address string, err error) error {
	where := "the system bus"
	if address != "" {
		where = "the D-Bus bus at " + address
	}
	if errors.Is(err, os.ErrPermission) || isAuthRejected(err) {
		return apperr.Environment("permission_denied", "permission denied connecting to %s: %v", where, err).
			Wrap(err).WithHint("run cfyauth as root: sudo cfyauth restart")
	}
	return apperr.Environment("no_bus", "cannot connect to %s: %v", where, err).
		Wrap(err).
		WithHint("check that dbus and systemd are running; pass --bus-address ADDRESS (or set DBUS_SYSTEM_BUS_ADDRESS) for a bus elsewhere").
		WithHint("on managers where supervisord runs the REST service, pass --via supervisord")
}

// isAuthRejected reports whether the bus rejected the connection during
// authentication. godbus (v5.2) signals that only with this error text.
func isAuthRejected(err error) bool {
	return strings.Contains(err.Error(), "dbus: authentication failed")
}

func propString(props map[string]any, key string) string {
	s, _ := props[key].(string)
	return s
}

func propUint(props map[string]any, key string) uint64 {
	switch v := props[key].(type) {
	case uint32:
		return uint64(v)
	case uint64:
		return v
	case int32:
		return uint64(v)
	}
	return 0
}

func propInt(props map[string]any, key string) int64 {
	switch v := props[key].(type) {
	case int32:
		return int64(v)
	case int64:
		return v
	case uint32:
		return int64(v)
	}
	return 0
}

// propTime reads a systemd timestamp in microseconds since the epoch; 0
// means never.
func propTime(props map[string]any, key string) time.Time {
	us := propUint(props, key)
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(us))
}

// busAddressExample is the system bus's usual address, named in hints.
const busAddressExample = "unix:path=/run/dbus/system_bus_socket"

// CheckBusAddress rejects a D-Bus address that cannot be dialled, before
// anything is asked of systemd. source names where the value came from,
// such as "--bus-address" or "CFYAUTH_BUS_ADDRESS". An address is one or
// more TRANSPORT:KEY=VALUE,… entries separated by ";" (the D-Bus
// specification's form). The transports are those godbus v5 dials: unix
// with path= or abstract=, tcp with host= and port=, and nonce-tcp with
// noncefile= as well.
func CheckBusAddress(address, source string) error {
	if address == "" {
		return nil
	}
	for _, entry := range strings.Split(address, ";") {
		if reason := busEntryProblem(entry); reason != "" {
			return apperr.Usage("invalid_bus_address", "invalid %s %q: %s", source, address, reason).
				WithHint("give %s a D-Bus address of the form TRANSPORT:KEY=VALUE[,KEY=VALUE…], such as %s", source, busAddressExample)
		}
	}
	return nil
}

// busEntryProblem returns why one entry of a bus address cannot be
// dialled, or "".
func busEntryProblem(entry string) string {
	transport, params, found := strings.Cut(entry, ":")
	if !found || transport == "" {
		return "no transport such as unix: before the parameters"
	}
	keys := map[string]string{}
	if params != "" {
		for _, kv := range strings.Split(params, ",") {
			key, value, ok := strings.Cut(kv, "=")
			if !ok || key == "" {
				return fmt.Sprintf("parameter %q is not KEY=VALUE", kv)
			}
			if _, err := godbus.UnescapeBusAddressValue(value); err != nil {
				return fmt.Sprintf("the value of %s has an invalid %%-escape", key)
			}
			keys[key] = value
		}
	}
	switch transport {
	case "unix":
		path, abstract := keys["path"] != "", keys["abstract"] != ""
		if path == abstract {
			return "a unix address needs exactly one of path= and abstract="
		}
	case "tcp":
		if keys["host"] == "" || keys["port"] == "" {
			return "a tcp address needs host= and port="
		}
	case "nonce-tcp":
		if keys["host"] == "" || keys["port"] == "" || keys["noncefile"] == "" {
			return "a nonce-tcp address needs host=, port= and noncefile="
		}
	default:
		return fmt.Sprintf("transport %q is not supported; use unix, tcp or nonce-tcp", transport)
	}
	return ""
}
