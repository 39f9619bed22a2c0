package restart

import (
	"context"
	"fmt"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
)

// Service manager kinds for ConnectOptions.Kind.
const (
	KindAuto        = "auto"
	KindSystemd     = "systemd"
	KindSupervisord = "supervisord"
)

// Kinds lists the values --service-manager accepts.
var Kinds = []string{KindAuto, KindSystemd, KindSupervisord}

// ConnectOptions choose and reach the service manager.
type ConnectOptions struct {
	// Kind is systemd, supervisord, or auto (or empty) to follow the
	// manager's own settings.
	Kind string
	// Release is the layout's detected release; auto reads its
	// ServiceManager.
	Release manager.Release
	// BusAddress is the D-Bus address for systemd; empty is the system bus.
	BusAddress string
	// Root is the manager root, for the journal of a mounted image.
	Root string
}

// ResolveKind returns the service manager to use and why.
func ResolveKind(o ConnectOptions) (kind, reason string, err error) {
	switch o.Kind {
	case KindSystemd, KindSupervisord:
		return o.Kind, "--service-manager " + o.Kind, nil
	case "", KindAuto:
		if o.Release.ServiceManager == KindSupervisord {
			return KindSupervisord, "the manager's files say supervisord runs the REST service", nil
		}
		if o.Release.Era == "7.0" {
			return KindSupervisord, "Cloudify 7.0 runs the REST service under supervisord only", nil
		}
		if o.Release.ServiceManager == KindSystemd {
			return KindSystemd, "the manager's installer settings say service_management: systemd", nil
		}
		return KindSystemd, "systemd is the default when the manager's files do not name a service manager", nil
	}
	return "", "", apperr.Usage("invalid_service_manager", "invalid --service-manager %q", o.Kind).
		WithHint("use one of: auto, systemd, supervisord")
}

// Connect opens the chosen service manager.
func Connect(ctx context.Context, o ConnectOptions) (ServiceManager, error) {
	kind, reason, err := ResolveKind(o)
	if err != nil {
		return nil, err
	}
	switch kind {
	case KindSupervisord:
		// TODO: connect to supervisord over XML-RPC on its unix socket.
		return nil, apperr.Environment("unsupported_service_manager",
			"cfyauth cannot drive supervisord yet (%s)", reason).
			WithHint("if systemd runs the REST service on this manager, pass --service-manager systemd")
	default:
		sd, err := DialSystemd(ctx, o.BusAddress, HostJournal(o.Root))
		if err != nil {
			return nil, err
		}
		return sd, nil
	}
}

// String describes the options for -v output.
func (o ConnectOptions) String() string {
	bus := o.BusAddress
	if bus == "" {
		bus = "system bus"
	}
	return fmt.Sprintf("service manager %s, bus %s", o.Kind, bus)
}
