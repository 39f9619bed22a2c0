package restapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Certificate files a manager keeps under /etc/cloudify/ssl.
const (
	// InternalCACert signs the certificate of the internal REST port 53333
	// (and of 443 on 7.x managers whose public address is an IP). The
	// manager's own CLI profile on the host trusts it.
	InternalCACert = "/etc/cloudify/ssl/cloudify_internal_ca_cert.pem"
	// ExternalCACert is the optional CA of the external certificate (ports
	// 443 and 80).
	ExternalCACert = "/etc/cloudify/ssl/cloudify_external_ca_cert.pem"
)

// InternalRESTPort is the manager's internal HTTPS REST port.
const InternalRESTPort = "53333"

// TLSOptions choose how an https:// manager URL is verified.
type TLSOptions struct {
	// CAFile is an explicit CA bundle (--ca-cert); when set it is the only
	// trust anchor.
	CAFile string
	// ManagerPath maps a manager path such as InternalCACert to the file
	// to read (under --root). Nil reads the path itself. Hints that name a
	// manager file, such as the REST service's log, name it this way too.
	ManagerPath func(string) string
	// InsecureSkipVerify turns verification off, which every report must
	// then state.
	InsecureSkipVerify bool
}

// Trust records which certificates an https client trusts, for reports
// and error messages.
type Trust struct {
	// Source is "ca-cert" (--ca-cert), "internal-ca" (the manager's
	// internal CA), "system" (system roots, plus the external CA when
	// present) or "insecure".
	Source string `json:"source"`
	// CAFiles are the CA files read, as host paths.
	CAFiles []string `json:"ca_files"`
	// SystemRoots is set when the system's roots are trusted too.
	SystemRoots bool `json:"system_roots"`
	// Insecure is set when verification is off.
	Insecure bool        `json:"insecure"`
	Config   *tls.Config `json:"-"`
}

// Describe names the trust anchors in words, for messages.
func (t *Trust) Describe() string {
	switch {
	case t == nil:
		return "no TLS"
	case t.Insecure:
		return "nothing: verification is off (--insecure-skip-verify)"
	case t.SystemRoots && len(t.CAFiles) > 0:
		return "the system's CA roots and " + strings.Join(t.CAFiles, ", ")
	case t.SystemRoots:
		return "the system's CA roots"
	default:
		return "the CA file " + strings.Join(t.CAFiles, ", ")
	}
}

// ResolveTrust picks the CA for an https manager URL. The --ca-cert file
// wins when given. Otherwise a loopback host or port 53333 gets the
// manager's internal CA, when that file exists. Everything else gets the
// system's roots plus the manager's external CA file, when it exists.
func ResolveTrust(u *url.URL, opts TLSOptions) (*Trust, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
		return &Trust{Source: "insecure", Insecure: true, Config: cfg}, nil
	}
	hostPath := opts.ManagerPath
	if hostPath == nil {
		hostPath = func(p string) string { return p }
	}

	if opts.CAFile != "" {
		pool := x509.NewCertPool()
		if err := addPEMFile(pool, opts.CAFile); err != nil {
			return nil, apperr.Usage("invalid_ca_cert", "cannot use --ca-cert %s: %v", opts.CAFile, err).
				WithHint("pass a PEM file holding the CA certificate that signed the manager's certificate")
		}
		cfg.RootCAs = pool
		return &Trust{Source: "ca-cert", CAFiles: []string{opts.CAFile}, Config: cfg}, nil
	}

	if isInternalEndpoint(u) {
		internal := hostPath(InternalCACert)
		if _, err := os.Stat(internal); err == nil {
			pool := x509.NewCertPool()
			if err := addPEMFile(pool, internal); err != nil {
				return nil, managerCAError(internal, err)
			}
			cfg.RootCAs = pool
			return &Trust{Source: "internal-ca", CAFiles: []string{internal}, Config: cfg}, nil
		}
	}

	t := &Trust{Source: "system", SystemRoots: true, CAFiles: []string{}, Config: cfg}
	external := hostPath(ExternalCACert)
	if _, err := os.Stat(external); err == nil {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if err := addPEMFile(pool, external); err != nil {
			return nil, managerCAError(external, err)
		}
		cfg.RootCAs = pool
		t.CAFiles = append(t.CAFiles, external)
	}
	return t, nil
}

// isInternalEndpoint reports whether a URL is served with the manager's
// internal certificate: a loopback host, or the internal REST port.
func isInternalEndpoint(u *url.URL) bool {
	return u.Port() == InternalRESTPort || IsLoopbackHost(u.Hostname())
}

// IsLoopbackHost reports whether a URL's host names this machine:
// localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func addPEMFile(pool *x509.CertPool, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("file not found")
		}
		if errors.Is(err, os.ErrPermission) {
			return errors.New("permission denied")
		}
		return err
	}
	if !pool.AppendCertsFromPEM(data) {
		return errors.New("no PEM certificate in the file")
	}
	return nil
}

func managerCAError(path string, err error) *apperr.Error {
	e := apperr.Environment("invalid_ca_cert", "cannot use the manager's CA file %s: %v", path, err)
	if strings.Contains(err.Error(), "permission denied") {
		e.WithHint("run cfyauth as root, or pass a readable copy of the CA with --ca-cert FILE")
	} else {
		e.WithHint("pass the CA that signed the manager's certificate with --ca-cert FILE")
	}
	return e
}
