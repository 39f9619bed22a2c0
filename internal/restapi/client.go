// Package restapi is a client for a Cloudify Manager's REST API: the login
// test, health, version, identity providers, config and user groups. It never
// prints; callers render what it returns. Errors it returns are *apperr.Error
// values whose message names the URL and whose hints name the next step.
package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// APIPrefix is the REST API version path cfyauth speaks, the one the
// manager's own client uses by default.
const APIPrefix = "/api/v3.1"

// DefaultManagerURL is the REST service itself (gunicorn) on a manager host.
// Only there are the X-Cloudify-Audit-* headers visible, because nginx on
// ports 80 and 443 removes them.
const DefaultManagerURL = "http://127.0.0.1:8100"

// DefaultTimeout bounds one request when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxBody bounds how much of a response body is read.
const maxBody = 4 << 20

// Headers the manager reads or sets.
const (
	TenantHeader          = "Tenant"
	TokenHeader           = "Authentication-Token"
	AuditUsernameHeader   = "X-Cloudify-Audit-Username"
	AuditTenantHeader     = "X-Cloudify-Audit-Tenant"
	AuditAuthMethodHeader = "X-Cloudify-Audit-Auth-Method"
)

// Credentials authenticate requests: HTTP basic (Username and Password) or
// an authentication token. The zero value sends no credentials.
type Credentials struct {
	Username string
	// Password is never printed, logged or put in an error.
	Password string
	// Token is sent as Authentication-Token when Username is empty.
	Token string
}

// Options configure a Client.
type Options struct {
	// URL is the manager's base URL, such as https://mgr.example.com or
	// http://127.0.0.1:8100. A path is kept as a prefix.
	URL         string
	Credentials Credentials
	// Tenant is sent in the Tenant header when set.
	Tenant string
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
	// TLS chooses how https:// URLs are verified.
	TLS TLSOptions
	// Transport replaces the HTTP transport, for tests. TLS settings are
	// then the transport's own.
	Transport http.RoundTripper
}

// Client talks to one manager. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	creds   Credentials
	tenant  string
	timeout time.Duration
	http    *http.Client
	trust   *Trust
	// hidden are secrets sent in request bodies, masked like the password
	// in server text.
	hidden []string
	// managerPath maps a manager path to the file under --root; nil
	// leaves it as it is.
	managerPath func(string) string
}

// displayPath returns a manager path as hints name it: under --root when
// one is set.
func (c *Client) displayPath(p string) string {
	if c.managerPath == nil {
		return p
	}
	return c.managerPath(p)
}

// Audit is the manager's record of who made a request, read from the
// X-Cloudify-Audit-* response headers (Cloudify 6.2 and later, visible only
// when talking to the REST service directly).
type Audit struct {
	Username string `json:"username,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	// AuthMethod is http_basic, token, execution_token, api_token or, from
	// Cloudify 6.4, external (an authenticator module accepted the login).
	AuthMethod string `json:"auth_method,omitempty"`
}

// New returns a client for opts.URL. A URL that does not parse, or whose
// scheme is not http or https, is a usage error naming --manager-url.
func New(opts Options) (*Client, error) {
	base, err := ParseManagerURL(opts.URL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, creds: opts.Credentials, tenant: opts.Tenant, timeout: opts.Timeout, managerPath: opts.TLS.ManagerPath}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	transport := opts.Transport
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if base.Scheme == "https" {
			trust, err := ResolveTrust(base, opts.TLS)
			if err != nil {
				return nil, err
			}
			c.trust = trust
			t.TLSClientConfig = trust.Config
		}
		t.ResponseHeaderTimeout = c.timeout
		transport = t
	}
	c.http = &http.Client{
		Transport: transport,
		// A redirect is reported, not followed: following one could send
		// the credentials somewhere the operator did not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// ParseManagerURL checks a manager URL and returns it without a trailing
// slash.
func ParseManagerURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, apperr.Usage("invalid_manager_url", "no manager URL given").
			WithHint("pass --manager-url, such as --manager-url %s", DefaultManagerURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, apperr.Usage("invalid_manager_url", "invalid manager URL %q: expected http://HOST[:PORT] or https://HOST[:PORT]", raw).
			WithHint("pass --manager-url with a scheme and host, such as --manager-url %s", DefaultManagerURL)
	}
	if u.User != nil {
		return nil, apperr.Usage("invalid_manager_url", "the manager URL must not contain credentials").
			WithHint("remove the user part from --manager-url and pass --user and a password source instead")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, apperr.Usage("invalid_manager_url", "invalid manager URL %q: a query or fragment is not allowed", raw).
			WithHint("pass only the scheme, host, port and an optional path prefix with --manager-url")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// URL returns the manager's base URL.
func (c *Client) URL() string { return c.base.String() }

// Trust returns how https certificates are verified, or nil for http.
func (c *Client) Trust() *Trust { return c.trust }

// Response is one HTTP response from the manager.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Audit  Audit
	// Duration is the time from sending the request to reading the body.
	Duration time.Duration
}

// Get sends an authenticated GET for path (below APIPrefix, such as
// "/user") and decodes a 2xx JSON body into out when out is not nil. A
// non-2xx answer is returned as an *APIError, a transport failure as an
// *apperr.Error of KindEnvironment.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) (*Response, error) {
	return c.Do(ctx, http.MethodGet, path, query, nil, out, true)
}

// Do sends one request. With auth false, no credentials are sent.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any, out any, auth bool) (*Response, error) {
	target := *c.base
	target.Path = c.base.Path + APIPrefix + path
	if query != nil {
		target.RawQuery = query.Encode()
	}
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		reader = strings.NewReader(string(data))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target.String(), reader)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "cfyauth")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.tenant != "" {
		req.Header.Set(TenantHeader, c.tenant)
	}
	if auth {
		switch {
		case c.creds.Username != "":
			req.SetBasicAuth(c.creds.Username, c.creds.Password)
		case c.creds.Token != "":
			req.Header.Set(TokenHeader, c.creds.Token)
		}
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, method, target.String(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, c.transportError(ctx, method, target.String(), err)
	}
	r := &Response{
		Status:   resp.StatusCode,
		Header:   resp.Header,
		Body:     data,
		Duration: time.Since(start),
		Audit: Audit{
			Username:   resp.Header.Get(AuditUsernameHeader),
			Tenant:     resp.Header.Get(AuditTenantHeader),
			AuthMethod: resp.Header.Get(AuditAuthMethodHeader),
		},
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return r, c.apiError(method, target.String(), resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return r, apperr.Environment("unexpected_response", "%s %s returned a body that is not the expected JSON: %v",
				method, redactURL(target.String()), err).
				WithHint("check that --manager-url points at a Cloudify Manager's REST API (%s)", c.base.String())
		}
	}
	return r, nil
}

// Ok sends GET /api/v3.1/ok (Cloudify 6.0 and later), which needs no
// credentials. It returns nil when the service returns "OK", an *APIError
// for 500 "FAIL" or any other status, and a KindEnvironment error when the
// service cannot be reached.
func (c *Client) Ok(ctx context.Context) error {
	var s string
	_, err := c.Do(ctx, http.MethodGet, "/ok", nil, nil, &s, false)
	if err != nil {
		return err
	}
	if s != "OK" {
		return apperr.Environment("unexpected_response", "GET %s answered %q instead of \"OK\"", c.endpoint("/ok"), s).
			WithHint("check that --manager-url points at a Cloudify Manager's REST API")
	}
	return nil
}

// Version is the response body of GET /api/v3.1/version.
type Version struct {
	Version       string `json:"version"`
	Edition       string `json:"edition,omitempty"`
	Distribution  string `json:"distribution,omitempty"`
	DistroRelease string `json:"distro_release,omitempty"`
	Build         string `json:"build,omitempty"`
	Date          string `json:"date,omitempty"`
	Commit        string `json:"commit,omitempty"`
}

// Version returns the manager's version and edition.
func (c *Client) Version(ctx context.Context) (*Version, error) {
	var v Version
	if _, err := c.Get(ctx, "/version", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// IdentityProviders is the answer of GET /api/v3.1/idp.
type IdentityProviders struct {
	// Raw is the string the manager returned: "local", or the names of the
	// loaded authenticators joined with commas.
	Raw string `json:"raw"`
	// Names lists the loaded authenticators; empty when Raw is "local".
	Names []string `json:"names"`
}

// ErrNotSupported marks an endpoint that the manager's version lacks: it
// answered 404 for an endpoint that later versions have.
var ErrNotSupported = errors.New("endpoint not supported by this manager version")

// IDP returns the authenticators the running REST service has loaded
// (Cloudify 6.3 and later). An older manager returns 404, which is returned
// wrapped around ErrNotSupported.
func (c *Client) IDP(ctx context.Context) (*IdentityProviders, error) {
	resp, err := c.Get(ctx, "/idp", nil, nil)
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			return nil, fmt.Errorf("GET %s: %w", c.endpoint("/idp"), ErrNotSupported)
		}
		return nil, err
	}
	return ParseIDP(resp.Body), nil
}

// ParseIDP reads an /idp answer, a JSON string or plain text.
func ParseIDP(body []byte) *IdentityProviders {
	raw := strings.TrimSpace(string(body))
	var s string
	if json.Unmarshal(body, &s) == nil {
		raw = strings.TrimSpace(s)
	}
	idp := &IdentityProviders{Raw: raw, Names: []string{}}
	if raw == "" || raw == "local" {
		return idp
	}
	for _, name := range strings.Split(raw, ",") {
		if name = strings.TrimSpace(name); name != "" {
			idp.Names = append(idp.Names, name)
		}
	}
	return idp
}

// ConfigItem is one row of GET /api/v3.1/config.
type ConfigItem struct {
	Name        string          `json:"name"`
	Value       json.RawMessage `json:"value"`
	Scope       string          `json:"scope"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	IsEditable  bool            `json:"is_editable"`
	AdminOnly   bool            `json:"admin_only"`
	UpdatedAt   string          `json:"updated_at,omitempty"`
	UpdaterName string          `json:"updater_name,omitempty"`
}

// Config returns the manager's settings of one scope, such as "rest" (all
// scopes when scope is empty). Values marked admin_only come back as
// "********" unless the credentials are an admin's; callers must still mask
// ldap_password before showing it.
func (c *Client) Config(ctx context.Context, scope string) ([]ConfigItem, error) {
	var q url.Values
	if scope != "" {
		q = url.Values{"scope": {scope}}
	}
	var out struct {
		Items []ConfigItem `json:"items"`
	}
	if _, err := c.Get(ctx, "/config", q, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// endpoint returns the full URL of an API path, for messages.
func (c *Client) endpoint(path string) string {
	u := *c.base
	u.Path = c.base.Path + APIPrefix + path
	return u.String()
}

// Token is an authentication token the manager issued (POST
// /api/v3.1/tokens, Cloudify 6.4 and later).
type Token struct {
	ID             string `json:"id"`
	Value          string `json:"value"`
	Username       string `json:"username"`
	Role           string `json:"role"`
	ExpirationDate string `json:"expiration_date"`
	Description    string `json:"description"`
}

// WithToken returns a copy of the client that authenticates with an
// authentication token instead of its credentials.
func (c *Client) WithToken(value string) *Client {
	copied := *c
	copied.creds = Credentials{Token: value}
	return &copied
}

// withHidden returns a copy of the client that also masks secret in the
// server text it reports.
func (c *Client) withHidden(secret string) *Client {
	copied := *c
	copied.hidden = append(append([]string(nil), c.hidden...), secret)
	return &copied
}

// withoutTenant returns a copy of the client that sends no Tenant header.
func (c *Client) withoutTenant() *Client {
	copied := *c
	copied.tenant = ""
	return &copied
}

// DeleteToken revokes a token by its ID.
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/tokens/"+url.PathEscape(id), nil, nil, nil, true)
	return err
}
