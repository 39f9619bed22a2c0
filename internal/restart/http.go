package restart

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// HTTPGetter sends one GET request to the REST service. It is an interface
// so the manager REST client can replace this minimal one.
type HTTPGetter interface {
	Get(ctx context.Context, url string, creds *Credentials) (HTTPResponse, error)
}

// HTTPResponse is the part of a response that the health gate reads.
type HTTPResponse struct {
	StatusCode int
	Body       []byte
	// ContentType and Server are the response's headers of those names,
	// which identify the server when it is not the REST service.
	ContentType string
	Server      string
}

// Credentials log in to the REST API for the endpoints that need a user
// (/idp, /status). The password is never printed.
type Credentials struct {
	Username string
	Password string
	Tenant   string
}

// maxBody bounds how much of a response body is read, because health
// responses are a few bytes.
const maxBody = 64 << 10

// HTTPClient is the default HTTPGetter: net/http with TLS verified against
// the system roots, or against CAFile when set.
type HTTPClient struct {
	client *http.Client
}

// NewHTTPClient returns a client that trusts caFile (PEM) when it is not
// empty. Each request is bounded by its context; the caller sets deadlines.
func NewHTTPClient(caFile string) (*HTTPClient, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// The REST service is reached on the manager itself or a named manager
	// URL; an operator's proxy settings must not redirect it.
	transport.Proxy = nil
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, apperr.Usage("invalid_ca_cert", "cannot read --ca-cert %s: %v", caFile, err).
				WithHint("pass the manager's CA certificate, such as --ca-cert /etc/cloudify/ssl/cloudify_internal_ca_cert.pem")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, apperr.Usage("invalid_ca_cert", "--ca-cert %s contains no PEM certificate", caFile).
				WithHint("pass a PEM file that starts with -----BEGIN CERTIFICATE-----")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &HTTPClient{client: &http.Client{
		Transport: transport,
		// A health endpoint that redirects is not the REST service responding.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Get sends GET url with the credentials, when given, as basic auth.
func (c *HTTPClient) Get(ctx context.Context, url string, creds *Credentials) (HTTPResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return HTTPResponse{}, fmt.Errorf("build request: %w", err)
	}
	if creds != nil {
		req.SetBasicAuth(creds.Username, creds.Password)
		if creds.Tenant != "" {
			req.Header.Set("Tenant", creds.Tenant)
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return HTTPResponse{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return HTTPResponse{StatusCode: resp.StatusCode}, fmt.Errorf("read response: %w", err)
	}
	return HTTPResponse{StatusCode: resp.StatusCode, Body: body,
		ContentType: resp.Header.Get("Content-Type"), Server: resp.Header.Get("Server")}, nil
}

// okPath is the unauthenticated health endpoint of Cloudify 6.0 and later.
const okPath = "/api/v3.1/ok"

// statusPath is the health endpoint before 6.0, which needs a login; any
// HTTP response from it proves the REST service is serving.
const statusPath = "/api/v3.1/status"

// idpPath lists the loaded authenticators (Cloudify 6.3 and later).
const idpPath = "/api/v3.1/idp"

// HealthURL returns the /api/v3.1/ok URL under a manager URL such as
// https://manager or http://127.0.0.1:8100.
func HealthURL(managerURL string) string {
	return strings.TrimRight(managerURL, "/") + okPath
}

// baseURL returns the part of a health URL before /api/v3.1/, or "" when the
// URL does not point at the REST API.
func baseURL(healthURL string) string {
	i := strings.Index(healthURL, "/api/v3.1/")
	if i < 0 {
		return ""
	}
	return healthURL[:i]
}

// probeTimeout bounds one health request, so a service that accepts and
// never responds does not use up the whole gate.
const probeTimeout = 5 * time.Second

// readIdP requests from /api/v3.1/idp which authenticators the REST service loaded.
// found is false when the endpoint does not exist (before 6.3).
func readIdP(ctx context.Context, http HTTPGetter, base string, creds *Credentials) (names []string, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	resp, err := http.Get(ctx, base+idpPath, creds)
	if err != nil {
		return nil, false, err
	}
	switch {
	case resp.StatusCode == 404:
		return nil, false, nil
	case resp.StatusCode == 401 || resp.StatusCode == 403:
		return nil, true, errUnauthorized
	case resp.StatusCode != 200:
		return nil, true, fmt.Errorf("%s returned HTTP %d", idpPath, resp.StatusCode)
	}
	var value string
	if err := json.Unmarshal(resp.Body, &value); err != nil {
		value = strings.TrimSpace(string(resp.Body))
	}
	for _, n := range strings.Split(value, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names, true, nil
}

var errUnauthorized = errors.New("the REST API rejected the admin login")

// responseKind is the class of a health endpoint's response.
type responseKind int

const (
	// responseHealthy is the REST service saying it is healthy.
	responseHealthy responseKind = iota
	// responseNotReady is an error status that the REST service, or a
	// proxy in front of it, sends while the service starts.
	responseNotReady
	// responseNotREST is a response that did not come from the REST service.
	responseNotREST
)

// classifyHealthResponse returns the class of a health response and a
// description of it for messages. /api/v3.1/ok returns the JSON string
// "OK" with 200 when the service is healthy (Cloudify 6.0 and later), so a
// 200 with any other body came from something else that listens at the
// URL, such as a web server. With legacy set the response is from
// /api/v3.1/status, the endpoint before 6.0, which returns JSON with any
// status. A non-JSON response below 500 did not come from the REST service.
func classifyHealthResponse(resp HTTPResponse, legacy bool) (kind responseKind, description string) {
	if legacy {
		switch {
		case json.Valid(bytes.TrimSpace(resp.Body)):
			return responseHealthy, fmt.Sprintf("HTTP %d with a JSON body", resp.StatusCode)
		case resp.StatusCode < 500:
			return responseNotREST, fmt.Sprintf("HTTP %d with %s", resp.StatusCode, describeBody(resp))
		}
		return responseNotReady, fmt.Sprintf("HTTP %d %s", resp.StatusCode, snippet(resp.Body))
	}
	var value string
	switch {
	case resp.StatusCode == 200 && json.Unmarshal(resp.Body, &value) == nil && value == "OK":
		return responseHealthy, `"OK" (HTTP 200)`
	case resp.StatusCode == 200:
		return responseNotREST, fmt.Sprintf("HTTP 200 with %s", describeBody(resp))
	}
	return responseNotReady, fmt.Sprintf("HTTP %d %s", resp.StatusCode, snippet(resp.Body))
}

// htmlTitle finds the title of an HTML page.
var htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// describeBody names what a response body is, in a few words: an HTML
// page with its title, or the start of the text, and the Server header.
func describeBody(resp HTTPResponse) string {
	mediaType, _, _ := mime.ParseMediaType(resp.ContentType)
	var s string
	switch m := htmlTitle.FindSubmatch(resp.Body); {
	case m != nil:
		s = fmt.Sprintf("an HTML page titled %q", snippet(m[1]))
	case strings.Contains(mediaType, "html"):
		s = "an HTML page"
	case len(bytes.TrimSpace(resp.Body)) == 0:
		s = "an empty body"
	default:
		s = fmt.Sprintf("the body %q", snippet(resp.Body))
	}
	if mediaType != "" {
		s += " (" + mediaType + ")"
	}
	if resp.Server != "" {
		s += " from server " + strconv.Quote(resp.Server)
	}
	return s
}
