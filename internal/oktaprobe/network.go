package oktaprobe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// maxRedirects bounds how many redirects a metadata download follows.
const maxRedirects = 5

// HTTPOptions configure the HTTPS requests to the IdP.
type HTTPOptions struct {
	// RootCAs verifies the IdP's TLS certificate; nil means the system's
	// trust store.
	RootCAs *x509.CertPool
	// InsecureSkipVerify turns TLS verification off. Every report then
	// shows it.
	InsecureSkipVerify bool
	// Timeout bounds each request, from dialling to the end of the body.
	Timeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// newHTTPClient returns a client that sends no cookies and no credentials,
// verifies TLS unless insecure is set, and follows no redirect unless
// follow is set (and then only to https URLs).
func newHTTPClient(opts HTTPOptions, follow bool) *http.Client {
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: opts.Timeout}).DialContext,
		TLSHandshakeTimeout: opts.Timeout,
		TLSClientConfig: &tls.Config{
			RootCAs:            opts.RootCAs,
			InsecureSkipVerify: opts.InsecureSkipVerify, //nolint:gosec // only with --insecure-skip-verify, reported in every result
			MinVersion:         tls.VersionTLS12,
		},
		ResponseHeaderTimeout: opts.Timeout,
		DisableKeepAlives:     true,
	}
	client := &http.Client{Transport: transport, Timeout: opts.Timeout}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if req.URL.Scheme != "https" {
			return fmt.Errorf("redirected to %s, which is not https", req.URL.Redacted())
		}
		return nil
	}
	return client
}

// dateSample is the IdP's Date header and the local time it was read at,
// the midpoint between sending the request and receiving the headers.
type dateSample struct {
	URL    string
	Server time.Time
	Local  time.Time
}

// offset is how far the local clock is ahead of the IdP's (negative when
// behind). The Date header has one-second resolution.
func (d dateSample) offset() time.Duration { return d.Local.Sub(d.Server) }

// httpGet sends one GET and reads at most limit bytes of the body.
func httpGet(ctx context.Context, client *http.Client, rawURL, userAgent string, limit int64) (*http.Response, []byte, *dateSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "text/html,application/samlmetadata+xml,application/xml;q=0.9,*/*;q=0.8")
	sent := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, nil, err
	}
	received := time.Now()
	defer resp.Body.Close()
	var sample *dateSample
	if d := resp.Header.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			sample = &dateSample{URL: rawURL, Server: t, Local: sent.Add(received.Sub(sent) / 2)}
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp, nil, sample, fmt.Errorf("read the body: %w", err)
	}
	if int64(len(body)) > limit {
		return resp, nil, sample, &fetchError{fmt.Sprintf("the body is larger than %d bytes", limit)}
	}
	return resp, body, sample, nil
}

// fetchError is a download that reached the server but failed, such as an
// HTTP error status; its message needs no network diagnosis.
type fetchError struct{ reason string }

func (e *fetchError) Error() string { return e.reason }

// fetchMetadata downloads metadata over verified https.
func fetchMetadata(ctx context.Context, opts HTTPOptions, rawURL string) ([]byte, *dateSample, error) {
	client := newHTTPClient(opts, true)
	resp, body, sample, err := httpGet(ctx, client, rawURL, opts.UserAgent, MaxDocumentSize)
	if err != nil {
		return nil, sample, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, sample, &fetchError{fmt.Sprintf("the server returned HTTP %s", resp.Status)}
	}
	return body, sample, nil
}

// ssoCheck requests the IdP's sign-in URL without credentials or cookies
// and without following redirects. A page, a redirect (to a login page or
// an identity check) and a sign-in form all count as the IdP responding.
func ssoCheck(ctx context.Context, opts HTTPOptions, rawURL, source string) (report.Check, *dateSample) {
	c := report.Check{ID: "sso-url", Subject: "idp"}
	c.AddEvidence("url", rawURL).AddEvidence("from", source)
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the SSO URL %q is not an absolute URL", rawURL)
		c.Hint = "use the IdP's sign-in URL, such as https://example.okta.com/app/…/sso/saml"
		return c, nil
	}
	if u.Scheme != "https" {
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the SSO URL %s is not https, so sign-ins would cross the network unencrypted", u.Redacted())
		c.Hint = "use the IdP's https sign-in URL"
		return c, nil
	}
	if u.User != nil {
		c.Status = report.Fail
		c.Summary = "the SSO URL contains credentials (user info); cfyauth sends none"
		c.Hint = "remove the user:password@ part from the URL"
		return c, nil
	}
	client := newHTTPClient(opts, false)
	resp, _, sample, err := httpGet(ctx, client, rawURL, opts.UserAgent, 1<<20)
	if err != nil {
		c.Status = report.Fail
		c.Summary, c.Hint = describeNetError(u.Host, err)
		return c, sample
	}
	c.AddEvidence("http_status", resp.Status)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("the IdP answered %s over verified TLS", resp.Status)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		c.Status = report.Pass
		loc := resp.Header.Get("Location")
		if lu, err := u.Parse(loc); err == nil {
			loc = lu.Redacted()
		}
		c.AddEvidence("location", loc)
		c.Summary = fmt.Sprintf("the IdP answered %s, a redirect to %s", resp.Status, hostOf(loc))
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the IdP answered %s: no sign-in page at that URL", resp.Status)
		c.Hint = "copy the sign-in URL from the IdP's SAML app again"
	case resp.StatusCode >= 500:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the IdP answered %s, a server error", resp.Status)
		c.Hint = "check the IdP's status, then run the check again"
	default:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("the IdP answered %s to a request without a SAML message; the server is up, but check that the URL is its sign-in URL", resp.Status)
	}
	if opts.InsecureSkipVerify && c.Status == report.Pass {
		c.Status = report.Warn
		c.Summary = strings.Replace(c.Summary, "over verified TLS", "over TLS", 1) + ", with TLS verification off (--insecure-skip-verify)"
	}
	return c, sample
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// describeNetError turns a request error into a summary and a hint.
func describeNetError(host string, err error) (string, string) {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("%s presented a certificate from an unknown authority (%s)", host, unknownCA.Cert.Issuer),
			"pass the CA that issued the IdP's TLS certificate with --idp-ca-cert FILE"
	case errors.As(err, &hostErr):
		return fmt.Sprintf("%s presented a certificate for other names: %v", host, hostErr),
			"check the host name in the URL"
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return fmt.Sprintf("%s presented an expired or not yet valid TLS certificate: %v", host, invalid), "check the local clock and the IdP's TLS certificate"
		}
		return fmt.Sprintf("%s presented an invalid TLS certificate: %v", host, invalid), "check the IdP's TLS certificate"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("%s did not respond in time", host), "check the network path to the IdP, or raise --timeout"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve %s: %v", dnsErr.Name, dnsErr.Err), "check the host name and the manager's DNS settings"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Sprintf("cannot connect to %s: %v", host, opErr.Err), "check the URL, the port and any firewall or proxy between the manager and the IdP"
	}
	return fmt.Sprintf("the request to %s failed: %v", host, err), "check the URL and the network path to the IdP"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
