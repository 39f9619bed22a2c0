package restapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"syscall"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Error codes the manager puts in error_code.
const (
	CodeUnauthorized          = "unauthorized_error"
	CodeForbidden             = "forbidden_error"
	CodeMaintenanceActive     = "maintenance_mode_active"
	CodeMaintenanceActivating = "entering_maintenance_mode"
)

// restLog is the REST service's log file, which holds its tracebacks.
const restLog = "/var/log/cloudify/rest/cloudify-rest-service.log"

// APIError is a non-2xx response. Message and ServerTraceback come from the
// manager's JSON error body ({message, error_code, server_traceback}), with
// the request's password replaced by "********".
type APIError struct {
	Method          string `json:"method"`
	URL             string `json:"url"`
	Status          int    `json:"status"`
	Code            string `json:"error_code,omitempty"`
	Message         string `json:"message,omitempty"`
	ServerTraceback string `json:"-"`
	// Location is the target of a redirect.
	Location string `json:"location,omitempty"`
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s returned %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// IsMaintenance reports whether the manager refused the request because it
// is in (or entering) maintenance mode.
func (e *APIError) IsMaintenance() bool {
	return e.Code == CodeMaintenanceActive || e.Code == CodeMaintenanceActivating
}

// IsInvalidTenant reports whether the manager refused the Tenant header
// because no tenant of that name exists. The manager sends the generic
// forbidden_error code for every 403, so the message text is the only
// signal: "Authorization failed: Tried to authenticate with invalid tenant
// name: NAME" (Cloudify 4.x to 7.x).
func (e *APIError) IsInvalidTenant() bool {
	return e.Status == http.StatusForbidden && strings.Contains(strings.ToLower(e.Message), "invalid tenant name")
}

// AsAPIError returns the *APIError in err's chain, or nil.
func AsAPIError(err error) *APIError {
	var e *APIError
	if errors.As(err, &e) {
		return e
	}
	return nil
}

func (c *Client) apiError(method, target string, resp *http.Response, body []byte) *APIError {
	e := &APIError{Method: method, URL: redactURL(target), Status: resp.StatusCode}
	var doc struct {
		Message         string `json:"message"`
		ErrorCode       string `json:"error_code"`
		ServerTraceback string `json:"server_traceback"`
	}
	if json.Unmarshal(body, &doc) == nil {
		e.Code = doc.ErrorCode
		e.Message = c.redact(strings.TrimSpace(doc.Message))
		e.ServerTraceback = c.redact(doc.ServerTraceback)
	} else if text := strings.TrimSpace(string(body)); text != "" && !strings.HasPrefix(text, "<") {
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		e.Message = c.redact(text)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Location = resp.Header.Get("Location")
	}
	return e
}

// redact replaces the password, the token and every other secret the
// client sends (such as a SAML response) wherever server text repeats them.
func (c *Client) redact(s string) string {
	for _, secret := range append([]string{c.creds.Password, c.creds.Token}, c.hidden...) {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "********")
		}
	}
	return s
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// AppError turns an API error into the error a command reports: the
// manager's own message, and a hint for the status it returned.
func (e *APIError) AppError() *apperr.Error {
	switch {
	case e.IsMaintenance():
		return apperr.Environment("maintenance_mode", "the manager is in maintenance mode and refused %s %s: %s", e.Method, e.URL, e.Message).
			WithHint("wait until an administrator deactivates it ('cfy maintenance-mode status' on the manager shows it), then try again").
			Wrap(e)
	case e.Status == http.StatusUnauthorized:
		return apperr.Failed("unauthorized", "the manager rejected the credentials (401): %s", e.Message).
			WithHint("check the user name and password").Wrap(e)
	case e.IsInvalidTenant():
		return apperr.Failed("unknown_tenant", "the manager has no such tenant (403): %s", e.Message).
			WithHint("pass an existing tenant with --tenant, or leave it out to use the user's default").Wrap(e)
	case e.Status == http.StatusForbidden:
		return apperr.Failed("forbidden", "the manager refused the request (403): %s", e.Message).
			WithHint("use an account whose role allows this action").Wrap(e)
	case e.Status >= 300 && e.Status < 400:
		err := apperr.Environment("redirected", "%s %s redirected (%d) to %s", e.Method, e.URL, e.Status, e.Location)
		if loc, perr := url.Parse(e.Location); perr == nil && loc.Host != "" {
			err.WithHint("pass the manager URL it redirects to: --manager-url %s://%s", loc.Scheme, loc.Host)
		} else {
			err.WithHint("check --manager-url")
		}
		return err.Wrap(e)
	case e.Status == http.StatusBadRequest && strings.HasPrefix(e.URL, "http://"):
		return apperr.Environment("bad_request", "%s", e.Error()).
			WithHint("a manager with SSL enabled (the default from Cloudify 6.0) answers 400 on http://; use https:// in --manager-url").Wrap(e)
	case e.Status == http.StatusNotFound:
		return apperr.Environment("not_found", "%s", e.Error()).
			WithHint("check that --manager-url points at a Cloudify Manager (REST service on 127.0.0.1:8100, or nginx on 443 or 80)").Wrap(e)
	case e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout:
		return apperr.Environment("rest_unavailable", "%s", e.Error()).
			WithHint("the REST service behind nginx is not answering: check it with 'cfyauth status', restart it with 'cfyauth restart'").Wrap(e)
	case e.Status >= 500:
		return apperr.Failed("server_error", "%s", e.Error()).
			WithHint("an authenticator module or the REST service raised an exception; read the traceback in %s on the manager (or run with -v)", restLog).Wrap(e)
	default:
		return apperr.Failed("request_failed", "%s", e.Error()).Wrap(e)
	}
}

// transportError explains why a request got no HTTP response. It returns the
// context's error unchanged when the caller cancelled, so an interrupt is
// reported as one.
func (c *Client) transportError(ctx context.Context, method, target string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s %s: %w", method, target, context.Canceled)
	}
	target = redactURL(target)
	host := c.base.Host
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostnameErr      x509.HostnameError
		invalidCert      x509.CertificateInvalidError
		recordErr        tls.RecordHeaderError
		dnsErr           *net.DNSError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return apperr.Environment("connection_refused", "cannot reach the manager: nothing is listening on %s (connection refused to %s)", host, target).
			WithHint("the REST service is not running or listens elsewhere: check it with 'cfyauth status', start it with 'cfyauth restart'").
			WithHint("on a manager host the REST service itself listens on %s", DefaultManagerURL).Wrap(err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err) || ctx.Err() != nil:
		return apperr.Environment("timeout", "cannot reach the manager: %s %s got no answer within %s", method, target, c.timeout).
			WithHint("check that the REST service is healthy with 'cfyauth status', or allow longer with --timeout").Wrap(err)
	case errors.As(err, &unknownAuthority):
		return apperr.Environment("tls_unknown_authority", "cannot verify the manager's certificate: the certificate of %s is signed by an unknown authority %s (trusted: %s)",
			host, certIssuer(unknownAuthority.Cert), c.trust.Describe()).
			WithHint("pass the CA that signed the manager's certificate with --ca-cert FILE (on the manager host the internal CA is %s)", InternalCACert).Wrap(err)
	case errors.As(err, &hostnameErr):
		return apperr.Environment("tls_name_mismatch", "cannot verify the manager's certificate: it is valid for %s, not for %s (CA: %s)",
			certNames(hostnameErr.Certificate), c.base.Hostname(), c.trust.Describe()).
			WithHint("use a --manager-url whose host is one of the names in the certificate, or reissue the certificate with %s in its subject alternative names", c.base.Hostname()).Wrap(err)
	case errors.As(err, &invalidCert):
		return apperr.Environment("tls_certificate_invalid", "cannot verify the manager's certificate for %s: %v (CA: %s)", host, invalidCert, c.trust.Describe()).
			WithHint("renew the manager's certificate, or check this machine's clock").Wrap(err)
	case errors.As(err, &recordErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http replaces the tls.RecordHeaderError of a plain HTTP
		// response with an unexported error whose text is the only signal.
		return apperr.Environment("tls_not_tls", "cannot reach the manager over HTTPS: %s does not speak TLS", host).
			WithHint("use http:// in --manager-url for this port (the REST service on 127.0.0.1:8100 speaks plain HTTP)").Wrap(err)
	case errors.As(err, &dnsErr):
		return apperr.Environment("dns_failed", "cannot reach the manager: cannot resolve %s: %v", c.base.Hostname(), dnsErr.Err).
			WithHint("check the host name in --manager-url, or use the manager's IP address").Wrap(err)
	case c.base.Scheme == "http" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return apperr.Environment("connection_closed", "cannot reach the manager: %s closed the connection without an HTTP answer", host).
			WithHint("if this port serves HTTPS, use https:// in --manager-url").Wrap(err)
	default:
		return apperr.Environment("request_failed", "cannot reach the manager: %s %s: %v", method, target, unwrapURLError(err)).
			WithHint("check --manager-url and that the REST service runs: 'cfyauth status'").Wrap(err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func certIssuer(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	return fmt.Sprintf("(issuer %q)", cert.Issuer.String())
}

// certNames lists the names a certificate is valid for.
func certNames(cert *x509.Certificate) string {
	if cert == nil {
		return "other names"
	}
	var names []string
	names = append(names, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && cert.Subject.CommonName != "" {
		names = append(names, "CN "+cert.Subject.CommonName+" (no subject alternative names)")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
