package moduletest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Defaults of a synthetic request.
const (
	DefaultMethod     = "GET"
	DefaultPath       = "/api/v3.1/user"
	DefaultRemoteAddr = "127.0.0.1"
	// MaxBodySize bounds a request body.
	MaxBodySize = 1 << 20
)

// Request describes one synthetic request. Password, Bearer and the values
// of secret headers are secrets: they reach the Python child only through
// its private protocol pipe and are replaced by [redacted] in every report.
type Request struct {
	// Method defaults to GET, or POST when Body is set.
	Method string
	// Path defaults to /api/v3.1/user; a query string after '?' becomes
	// request.args.
	Path string
	// RemoteAddr defaults to 127.0.0.1.
	RemoteAddr string
	Headers    []Header
	// User, when set, adds HTTP basic credentials with Password.
	User     string
	Password string
	// Bearer, when set, adds an 'Authorization: Bearer' header.
	Bearer string
	// Body is a JSON document; it sets Content-Type: application/json unless
	// a header sets another type.
	Body json.RawMessage
}

// Header is one request header.
type Header struct {
	Name  string
	Value string
	// Secret masks the value in reports and redacts it from module output.
	Secret bool
}

// RequestSummary is the view of a request that a report shows: never a
// password or token, and the values of Authorization, Cookie and secret
// headers masked.
type RequestSummary struct {
	Method        string          `json:"method"`
	Path          string          `json:"path"`
	RemoteAddr    string          `json:"remote_addr"`
	User          string          `json:"user,omitempty"`
	Authorization string          `json:"authorization"`
	Headers       []HeaderSummary `json:"headers"`
	BodyBytes     int             `json:"body_bytes"`
}

// HeaderSummary is one header as a report shows it.
type HeaderSummary struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// requestSpec is the request as the Python harness receives it.
type requestSpec struct {
	Method     string      `json:"method"`
	Path       string      `json:"path"`
	RemoteAddr string      `json:"remote_addr"`
	Headers    [][2]string `json:"headers"`
	Body       *string     `json:"body"`
}

// Check returns a usage error when the request cannot be built. Messages
// name header names and fields but never a value that may be secret.
func (r *Request) Check() error {
	if r.User != "" && r.Bearer != "" {
		return apperr.Usage("invalid_request", "a request carries either basic credentials (a user) or a bearer token, not both").
			WithHint("drop the user or the bearer token")
	}
	if strings.Contains(r.User, ":") {
		return apperr.Usage("invalid_request", "the user name contains a colon, which HTTP basic credentials cannot carry").
			WithHint("give the user name alone; the password comes from its own source")
	}
	if strings.ContainsAny(r.User, "\r\n") {
		return apperr.Usage("invalid_request", "the user name contains a line break").WithHint("give the user name on one line")
	}
	if r.Method != "" && !isToken(r.Method) {
		return apperr.Usage("invalid_request", "invalid HTTP method %q", r.Method).WithHint("use a method such as GET or POST")
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		return apperr.Usage("invalid_request", "invalid request path %q: it must start with /", r.Path).
			WithHint("use a path such as /api/v3.1/user")
	}
	if strings.ContainsAny(r.Path, " \r\n") {
		return apperr.Usage("invalid_request", "invalid request path %q: it contains white space", r.Path).
			WithHint("percent-encode spaces as %%20")
	}
	if r.RemoteAddr != "" && net.ParseIP(r.RemoteAddr) == nil {
		return apperr.Usage("invalid_request", "invalid remote address %q: not an IP address", r.RemoteAddr).
			WithHint("use an IPv4 or IPv6 address such as 192.0.2.10")
	}
	for _, h := range r.Headers {
		if !isToken(h.Name) {
			return apperr.Usage("invalid_request", "invalid header name %q", h.Name).
				WithHint("a header name has letters, digits and -, as in X-Proxy-User")
		}
		if strings.ContainsAny(h.Value, "\r\n") {
			return apperr.Usage("invalid_request", "the value of header %s contains a line break", h.Name).
				WithHint("give each header value on one line")
		}
		if strings.EqualFold(h.Name, "Authorization") && (r.User != "" || r.Bearer != "") {
			return apperr.Usage("invalid_request", "an Authorization header cannot be combined with a user or a bearer token").
				WithHint("drop the Authorization header, or the user and bearer token")
		}
	}
	if len(r.Body) > MaxBodySize {
		return apperr.Usage("invalid_request", "the request body is %d bytes, larger than the 1 MiB limit", len(r.Body)).
			WithHint("send a smaller JSON body")
	}
	if len(r.Body) > 0 && !json.Valid(r.Body) {
		return apperr.Usage("invalid_request", "the request body is not valid JSON").WithHint("check the JSON body")
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110), as header names and
// methods must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", c):
		default:
			return false
		}
	}
	return true
}

func (r *Request) method() string {
	switch {
	case r.Method != "":
		return strings.ToUpper(r.Method)
	case len(r.Body) > 0:
		return "POST"
	}
	return DefaultMethod
}

func (r *Request) path() string {
	if r.Path == "" {
		return DefaultPath
	}
	return r.Path
}

func (r *Request) remoteAddr() string {
	if r.RemoteAddr == "" {
		return DefaultRemoteAddr
	}
	return r.RemoteAddr
}

func (r *Request) basicCredentials() string {
	return base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
}

// headers returns every header the request carries, in order: the given
// ones, then Authorization and the body's Content-Type and Content-Length.
func (r *Request) headers() []Header {
	all := append([]Header(nil), r.Headers...)
	switch {
	case r.User != "":
		all = append(all, Header{Name: "Authorization", Value: "Basic " + r.basicCredentials(), Secret: true})
	case r.Bearer != "":
		all = append(all, Header{Name: "Authorization", Value: "Bearer " + r.Bearer, Secret: true})
	}
	if len(r.Body) > 0 {
		if !hasHeader(all, "Content-Type") {
			all = append(all, Header{Name: "Content-Type", Value: "application/json"})
		}
		all = append(all, Header{Name: "Content-Length", Value: fmt.Sprint(len(r.Body))})
	}
	return all
}

func hasHeader(headers []Header, name string) bool {
	for _, h := range headers {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// secrets lists every value to redact for this request.
func (r *Request) secrets() []string {
	var s []string
	if r.Password != "" {
		s = append(s, r.Password)
	}
	if r.User != "" {
		s = append(s, r.basicCredentials())
	}
	if r.Bearer != "" {
		s = append(s, r.Bearer)
	}
	for _, h := range r.Headers {
		if h.Value != "" && (h.Secret || CredentialHeader(h.Name)) {
			s = append(s, h.Value)
			s = append(s, credentialParts(h)...)
		}
	}
	return s
}

// credentialParts returns the secrets inside a credential header's value,
// which a module may print on their own: the password of basic
// credentials (decoded), the token of any other scheme, and, for a header
// marked secret (from a header file), each cookie's value. A Cookie header
// given as a plain header is masked whole only, because some of its values
// are usually not secret ("theme=dark") and would blank out every
// occurrence of a common word.
func credentialParts(h Header) []string {
	var parts []string
	switch {
	case strings.EqualFold(h.Name, "Cookie") && h.Secret:
		for _, pair := range strings.Split(h.Value, ";") {
			_, value, ok := strings.Cut(pair, "=")
			if value = strings.Trim(strings.TrimSpace(value), `"`); ok && value != "" {
				parts = append(parts, value)
			}
		}
	case strings.EqualFold(h.Name, "Authorization"), strings.EqualFold(h.Name, "Proxy-Authorization"):
		scheme, credentials, ok := strings.Cut(strings.TrimSpace(h.Value), " ")
		credentials = strings.TrimSpace(credentials)
		if !ok || credentials == "" {
			break
		}
		parts = append(parts, credentials)
		if !strings.EqualFold(scheme, "Basic") {
			break
		}
		decoded, err := base64.StdEncoding.DecodeString(credentials)
		if err != nil {
			break
		}
		if _, password, ok := strings.Cut(string(decoded), ":"); ok && password != "" {
			parts = append(parts, string(decoded), password)
		}
	}
	return parts
}

// CredentialHeader reports whether a header carries credentials: its value
// is masked in reports and redacted from module output, and it must not
// come from a flag value.
func CredentialHeader(name string) bool {
	for _, n := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

func (r *Request) spec() requestSpec {
	spec := requestSpec{Method: r.method(), Path: r.path(), RemoteAddr: r.remoteAddr()}
	for _, h := range r.headers() {
		spec.Headers = append(spec.Headers, [2]string{h.Name, h.Value})
	}
	if len(r.Body) > 0 {
		body := string(r.Body)
		spec.Body = &body
	}
	return spec
}

// Summary returns the request as a report shows it.
func (r *Request) Summary() RequestSummary {
	s := RequestSummary{Method: r.method(), Path: r.path(), RemoteAddr: r.remoteAddr(), User: r.User,
		Authorization: "none", BodyBytes: len(r.Body), Headers: []HeaderSummary{}}
	for _, h := range r.headers() {
		value := h.Value
		if h.Secret || CredentialHeader(h.Name) {
			value = redacted
		}
		s.Headers = append(s.Headers, HeaderSummary{Name: h.Name, Value: value})
	}
	switch {
	case r.User != "":
		s.Authorization = "basic"
	case r.Bearer != "":
		s.Authorization = "bearer"
	case hasHeader(r.Headers, "Authorization"):
		s.Authorization = "header"
	}
	return s
}
