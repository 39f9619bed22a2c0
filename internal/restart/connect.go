package restart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
)

// Service manager kinds, the values of --via.
const (
	KindAuto        = "auto"
	KindSystemd     = "systemd"
	KindSupervisord = "supervisord"
)

// Kinds lists the values --via accepts.
var Kinds = []string{KindAuto, KindSystemd, KindSupervisord}

// ConnectOptions choose and reach the service manager.
type ConnectOptions struct {
	// Via is systemd, supervisord, or auto (or empty) to ask both.
	Via    string
	Layout *manager.Layout
	// BusAddress is the D-Bus address for systemd; empty is the system bus.
	BusAddress string
	// NoBusReason, when set, is why no bus may be used, such as a --root
	// other than / with no bus address named. systemd is then not asked.
	NoBusReason string
	// SupervisorSocket is the host path of supervisord's socket; empty
	// reads it from the manager's /etc/supervisord.conf.
	SupervisorSocket string
	// Service is the REST service whose manager auto-detection looks for,
	// such as cloudify-restservice.service.
	Service string
}

// Detection is the service manager that was chosen and the reason.
type Detection struct {
	Via    string `json:"via"`
	Reason string `json:"reason"`
	// Probes are the findings of auto-detection for each candidate that
	// was not chosen, in the order they were asked.
	Probes []Probe `json:"probes,omitempty"`
	// auto is set when auto-detection chose Via, not a --via value.
	auto bool
}

// Probe is the finding of auto-detection for one candidate.
type Probe struct {
	Via     string `json:"via"`
	Finding string `json:"finding"`
}

// CheckVia rejects a --via value other than auto, systemd and supervisord.
func CheckVia(via string) error {
	switch via {
	case "", KindAuto, KindSystemd, KindSupervisord:
		return nil
	}
	return apperr.Usage("invalid_via", "invalid --via %q", via).
		WithHint("use one of: %s", strings.Join(Kinds, ", "))
}

// Connect opens the service manager that --via names, or for auto the one
// that runs the service: supervisord when its socket responds and it
// manages the program; else systemd when the unit is active or activating
// (or deactivating, as it is during a restart). A unit file on disk proves nothing, because the RPMs ship one
// on managers that run supervisord. A supervisord socket that exists but
// refuses the connection or the credentials is an error, never a reason to
// use systemd instead.
func Connect(ctx context.Context, o ConnectOptions) (ServiceManager, Detection, error) {
	if err := CheckVia(o.Via); err != nil {
		return nil, Detection{}, err
	}
	switch o.Via {
	case KindSystemd:
		sd, err := o.dialSystemd(ctx)
		if err != nil {
			return nil, Detection{}, err
		}
		return sd, Detection{Via: KindSystemd, Reason: "--via systemd"}, nil
	case KindSupervisord:
		target, err := ResolveSupervisord(o.Layout, o.SupervisorSocket)
		if err != nil {
			return nil, Detection{}, err
		}
		sup, err := DialSupervisord(ctx, target)
		if err != nil {
			return nil, Detection{}, err
		}
		return sup, Detection{Via: KindSupervisord, Reason: "--via supervisord"}, nil
	}
	return detect(ctx, o)
}

func (o ConnectOptions) dialSystemd(ctx context.Context) (*Systemd, error) {
	if o.NoBusReason != "" {
		return nil, apperr.Usage("missing_flag", "%s", o.NoBusReason).
			WithHint("pass --bus-address ADDRESS, such as --bus-address unix:path=/run/dbus/system_bus_socket")
	}
	return DialSystemd(ctx, o.BusAddress, HostJournal(o.Layout.Root))
}

func detect(ctx context.Context, o ConnectOptions) (ServiceManager, Detection, error) {
	d := Detection{Via: KindAuto, auto: true}
	service := o.Service
	if service == "" {
		service = DefaultUnit
	}

	sup, finding, err := probeSupervisord(ctx, o, service)
	if err != nil {
		return nil, d, err
	}
	if sup != nil {
		d.Via, d.Reason = KindSupervisord, finding
		return sup, d, nil
	}
	d.Probes = append(d.Probes, Probe{Via: KindSupervisord, Finding: finding})

	sd, finding, err := probeSystemd(ctx, o, service)
	if err != nil {
		return nil, d, err
	}
	if sd != nil {
		d.Via, d.Reason = KindSystemd, finding
		return sd, d, nil
	}
	d.Probes = append(d.Probes, Probe{Via: KindSystemd, Finding: finding})

	var found []string
	for _, p := range d.Probes {
		found = append(found, p.Via+": "+p.Finding)
	}
	if o.NoBusReason != "" {
		return nil, d, apperr.Usage("missing_flag", "cannot tell which service manager runs %s under --root %s; %s",
			ProgramName(service), o.Layout.Root, strings.Join(found, "; ")).
			WithHint("pass --bus-address ADDRESS to ask systemd, or --supervisor-socket PATH to ask supervisord").
			WithHint("or name the service manager with --via systemd or --via supervisord")
	}
	rel := o.Layout.DetectRelease()
	e := apperr.Environment("no_service_manager", "neither supervisord nor systemd runs %s; %s",
		ProgramName(service), strings.Join(found, "; "))
	if rel.ServiceManager != "" {
		e.WithHint("the manager's files name %s (release %s); check that it runs and manages %s",
			rel.ServiceManager, rel.Era, ProgramName(service))
	}
	return nil, d, e.WithHint("start the REST service's manager, or name it with --via systemd or --via supervisord (with --supervisor-socket PATH or --bus-address ADDRESS for one elsewhere)")
}

// probeSupervisord returns the supervisord backend when its socket
// responds and it manages the program. A missing socket, or a supervisord without
// that program, is a finding; every other failure is an error.
func probeSupervisord(ctx context.Context, o ConnectOptions, service string) (*Supervisord, string, error) {
	target, err := ResolveSupervisord(o.Layout, o.SupervisorSocket)
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(target.Socket); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Sprintf("no socket at %s (from %s)", target.Socket, target.SocketSource), nil
	}
	sup, err := DialSupervisord(ctx, target)
	if err != nil {
		return nil, "", err
	}
	st, err := sup.Status(ctx, service)
	switch {
	case errCode(err) == "program_not_found":
		return nil, fmt.Sprintf("supervisord at %s manages no program %s", target.Socket, ProgramName(service)), nil
	case err != nil:
		return nil, "", err
	}
	return sup, fmt.Sprintf("supervisord at %s manages program %s (state %s)", target.Socket, st.Service, strings.ToUpper(st.SubState)), nil
}

// probeSystemd returns the systemd backend when the unit is active or
// activating. No bus, or a unit in another state, is a finding; a bus
// that denies access is an error.
func probeSystemd(ctx context.Context, o ConnectOptions, service string) (*Systemd, string, error) {
	unit, err := UnitName(service)
	if err != nil {
		return nil, "", err
	}
	if o.NoBusReason != "" {
		return nil, "not asked, because " + o.NoBusReason, nil
	}
	sd, err := o.dialSystemd(ctx)
	if err != nil {
		if errCode(err) == "permission_denied" {
			return nil, "", err
		}
		return nil, apperr.As(err).Message, nil
	}
	st, err := sd.Status(ctx, unit)
	switch code := errCode(err); {
	case err == nil:
	case code == "unit_not_found" || code == "no_systemd":
		sd.Close()
		return nil, apperr.As(err).Message, nil
	default:
		sd.Close()
		return nil, "", err
	}
	// A unit in the middle of a restart job is deactivating before it is
	// activating again, so that state counts too.
	switch st.ActiveState {
	case "active", "activating", "reloading", "deactivating":
		return sd, fmt.Sprintf("systemd unit %s is %s (%s)", unit, st.ActiveState, st.SubState), nil
	}
	sd.Close()
	return nil, fmt.Sprintf("systemd unit %s is %s (%s), and a unit that is not running does not show that systemd runs the REST service",
		unit, st.ActiveState, st.SubState), nil
}

// errCode returns the code of a cfyauth error, or "" for nil.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	return apperr.As(err).Code
}

// String describes the options for -v output.
func (o ConnectOptions) String() string {
	bus := o.BusAddress
	switch {
	case o.NoBusReason != "":
		bus = "none"
	case bus == "":
		bus = "system bus"
	}
	sock := o.SupervisorSocket
	if sock == "" {
		sock = "from " + manager.SupervisordConf
	}
	via := o.Via
	if via == "" {
		via = KindAuto
	}
	return fmt.Sprintf("--via %s, bus %s, supervisord socket %s", via, bus, sock)
}
