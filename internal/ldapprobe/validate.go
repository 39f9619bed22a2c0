package ldapprobe

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// ServerURL is one parsed ldap_server URL.
type ServerURL struct {
	Raw    string `json:"url"`
	Scheme string `json:"scheme"`
	// Host is the host name or IP literal without brackets; Port is the
	// explicit port or the scheme's default (389 or 636).
	Host string `json:"host"`
	Port string `json:"port"`
	// DefaultPort is set when the URL names no port.
	DefaultPort bool `json:"default_port,omitempty"`
}

// TLS reports whether the scheme is ldaps.
func (u ServerURL) TLS() bool { return u.Scheme == "ldaps" }

// Address returns host:port for dialling.
func (u ServerURL) Address() string { return net.JoinHostPort(u.Host, u.Port) }

// managerSchemeMessage is the manager's own wording for a bad scheme.
const managerSchemeMessage = "ldap_server must specify protocol and should specify port, e.g. ldap://192.0.2.1:389 or ldaps://192.0.2.45:636"

// ParseServerURL parses one server URL under the manager's rule: it must
// start with ldap:// or ldaps://.
func ParseServerURL(raw string) (ServerURL, error) {
	if !strings.HasPrefix(raw, "ldap://") && !strings.HasPrefix(raw, "ldaps://") {
		return ServerURL{}, fmt.Errorf("%q does not start with ldap:// or ldaps:// (the manager rejects it with: %s)", raw, managerSchemeMessage)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ServerURL{}, fmt.Errorf("%q is not a URL: %w", raw, errors.Unwrap(err))
	}
	out := ServerURL{Raw: raw, Scheme: u.Scheme, Host: u.Hostname(), Port: u.Port()}
	if out.Host == "" {
		return ServerURL{}, fmt.Errorf("%q names no host", raw)
	}
	if out.Port == "" {
		out.DefaultPort = true
		out.Port = "389"
		if out.TLS() {
			out.Port = "636"
		}
	} else if n, err := strconv.Atoi(out.Port); err != nil || n < 1 || n > 65535 {
		return ServerURL{}, fmt.Errorf("%q has an invalid port %q", raw, out.Port)
	}
	return out, nil
}

// CheckOptions describes how the settings will be used.
type CheckOptions struct {
	// NeedServer makes an empty ldap_server an error (ldap check).
	NeedServer bool
	// StartTLS is set when the probe upgrades ldap:// with StartTLS.
	StartTLS bool
	// InsecureSkipVerify turns a missing CA for ldaps:// from an error
	// into a warning, so the probe can show which CA the server uses.
	InsecureSkipVerify bool
	// FromManager is set when the settings were read from a manager, which
	// never returns its LDAP CA certificate.
	FromManager bool
	// CAOptional turns a missing CA for ldaps:// into a warning, for
	// commands that contact no LDAP server (ldap show).
	CAOptional bool
}

// Check applies the manager's own rules for POST /api/v3.1/ldap to the
// settings, so a value the manager would reject is caught before any
// traffic. It returns the errors (the manager would reject the settings)
// and warnings (it would accept them, but they are likely wrong).
func Check(s *Settings, opts CheckOptions) ([]*SettingsError, []Warning) {
	var errs []*SettingsError
	var warnings []Warning
	fail := func(key, reason, hint string) {
		errs = append(errs, &SettingsError{Key: key, Source: s.Sources[key], Reason: reason, Hint: hint})
	}
	warn := func(key, format string, args ...any) {
		warnings = append(warnings, Warning{Key: key, Message: fmt.Sprintf(format, args...)})
	}

	if len(s.Servers) == 0 {
		if opts.NeedServer {
			fail(KeyServer, "no LDAP server is set", "pass --ldap-server ldaps://HOST:636 (or set CFYAUTH_LDAP_SERVER, or ldap_server in --settings)")
		} else {
			warn(KeyServer, "no LDAP server is set, so the manager would report LDAP as disabled")
		}
	}
	anyLDAPS, anyPlain := false, false
	for _, raw := range s.Servers {
		u, err := ParseServerURL(raw)
		if err != nil {
			fail(KeyServer, err.Error(), "use ldap://HOST:389 or ldaps://HOST:636")
			continue
		}
		if u.TLS() {
			anyLDAPS = true
		} else {
			anyPlain = true
		}
	}
	missingCA := "ldaps:// needs a CA certificate; the manager rejects it without one ('A CA certificate must be provided to use ldaps.')"
	caHint := "pass the CA that signed the server's certificate with --ldap-ca-path FILE"
	if opts.FromManager {
		missingCA = "ldaps:// needs a CA certificate, which the manager does not return (" + ManagerCANote + ")"
		caHint = "pass the CA the manager uses (the file once given to 'cfy ldap set --ldap-ca-path') with --ldap-ca-path FILE"
	}
	if anyLDAPS && s.CAPEM == "" && (opts.InsecureSkipVerify || opts.CAOptional) {
		// A warning has no hint line, so it carries the fix itself.
		warn(KeyServer, "%s; %s", missingCA, caHint)
	} else if anyLDAPS && s.CAPEM == "" {
		fail(KeyServer, missingCA, caHint)
	}
	// The manager rejects ldap:// with ldap_ca_cert (400). A StartTLS
	// probe needs the CA to verify the server, so there it only warns.
	if anyPlain && s.CAPEM != "" {
		caKey := KeyCAPath
		if s.CAPath == "" {
			caKey = KeyCACert
		}
		if opts.StartTLS {
			warn(caKey, "the manager rejects a CA certificate with ldap:// ('CA certificate cannot be provided when not using ldaps.'); cfyauth uses it only to verify StartTLS")
		} else {
			fail(caKey, "the manager rejects a CA certificate with ldap:// ('CA certificate cannot be provided when not using ldaps.')",
				"use ldaps://HOST:636 with the CA, or drop --ldap-ca-path for plain ldap:// (with --starttls the CA verifies a StartTLS probe)")
		}
	}
	if opts.StartTLS {
		warn(KeyServer, "the manager never uses StartTLS: it connects with ldap:// in plain text or with ldaps://, so this check proves the server's StartTLS, not the manager's connection")
	}

	if (s.Username == "") != (s.Password == "") {
		fail(KeyUsername, "the service account needs both a user name and a password, or neither (the manager rejects it with: Must supply either both username and password or neither)",
			"set the password with --ldap-password-file FILE or CFYAUTH_LDAP_PASSWORD, or remove --ldap-username")
	}

	for _, key := range []string{KeyBindFormat, KeyGroupDN, KeyUserFilter, KeyGroupMemberFilter} {
		raw, given := s.Raw[key]
		if !given || raw == "" {
			continue
		}
		if err := ValidatePlaceholders(key, raw); err != nil {
			k, _ := LookupKey(key)
			fail(key, err.Error(), fmt.Sprintf("fix --%s; write a literal brace as {{ or }}", k.Flag))
		}
	}

	if s.DNExtra != "" {
		warn(KeyDNExtra, "ldap_dn_extra is deprecated and how the manager combines it with the base DN is not documented; cfyauth does not use it, so set --ldap-base-dn instead")
	}
	if strings.TrimSpace(s.Domain) == "" {
		warn(KeyDomain, "ldap_domain is empty: the manager requires it, and the default base DN and {domain} are empty without it")
	}
	if s.BaseDN != "" {
		if _, err := ldap.ParseDN(s.BaseDN); err != nil {
			warn(KeyBaseDN, "the base DN %s is not a valid DN: %v", quoteText(s.BaseDN), err)
		}
	}
	if strings.ContainsAny(s.Raw[KeyBaseDN], "{}") {
		warn(KeyBaseDN, "the manager does not check placeholders in ldap_base_dn and cfyauth does not fill them in: %s is used as it is", quoteText(s.Raw[KeyBaseDN]))
	}
	return errs, warnings
}
