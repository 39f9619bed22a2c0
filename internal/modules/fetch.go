package modules

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// FetchOptions configure FetchSource.
type FetchOptions struct {
	// Name overrides the module name taken from the URL's last path element.
	Name string
	// SHA256 is the expected hash of the bytes; required.
	SHA256 string
	// CACertFile is a PEM bundle to trust instead of the system's roots.
	CACertFile string
	// Timeout bounds the whole download.
	Timeout time.Duration
	// Client replaces the HTTP client; tests set it.
	Client *http.Client
}

// IsURL reports whether a SOURCE argument is a URL rather than a path.
func IsURL(arg string) bool {
	return strings.Contains(arg, "://")
}

// CheckURL rejects every URL but https://, before anything is fetched.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, apperr.Usage("invalid_url", "invalid URL %q", raw).
			WithHint("pass an https:// URL such as https://example.org/auth/my_auth.py")
	}
	if u.Scheme != "https" {
		return nil, apperr.Usage("insecure_url", "%s: only https:// URLs are accepted, not %s://", raw, u.Scheme).
			WithHint("serve the module over https, or download it and install the file")
	}
	if u.User != nil {
		return nil, apperr.Usage("invalid_url", "%s: URLs with a user name or password are not accepted", u.Redacted()).
			WithHint("download the module yourself and install the file")
	}
	return u, nil
}

// FetchSource downloads a module over https and checks its bytes against
// the expected sha256 before returning them.
func FetchSource(ctx context.Context, raw string, opts FetchOptions) (Source, error) {
	u, err := CheckURL(raw)
	if err != nil {
		return Source{}, err
	}
	name := opts.Name
	if name == "" {
		name = NameFromFile(path.Base(u.Path))
	}
	src := Source{Origin: u.Redacted(), Name: name}

	client := opts.Client
	if client == nil {
		client, err = httpClient(opts.CACertFile)
		if err != nil {
			return src, err
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return src, apperr.Usage("invalid_url", "invalid URL %q: %v", raw, err)
	}
	req.Header.Set("User-Agent", "cfyauth")
	resp, err := client.Do(req)
	if err != nil {
		return src, downloadError(u, err, timeout)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return src, apperr.Failed("download_failed", "download of %s failed: HTTP %s", src.Origin, resp.Status).
			WithHint("check the URL in a browser or with curl")
	}

	data, err := readBounded(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return src, downloadError(u, ctx.Err(), timeout)
		}
		return src, apperr.Failed("download_failed", "download of %s failed: %v", src.Origin, err).
			WithHint("an authenticator module is a single .py file of at most 1 MiB")
	}

	src.Data = data
	if err := CheckBytes(&src); err != nil {
		if src.SHA256 != opts.SHA256 {
			return src, ChecksumError(src.Origin, opts.SHA256, src.SHA256)
		}
		return src, sourceUsageError(err)
	}
	if src.SHA256 != opts.SHA256 {
		return src, ChecksumError(src.Origin, opts.SHA256, src.SHA256)
	}
	return src, nil
}

// ChecksumError reports bytes whose sha256 is not the pinned one.
func ChecksumError(origin, want, got string) *apperr.Error {
	return apperr.Failed("checksum_mismatch", "sha256 of %s does not match --sha256: want %s, got %s", origin, want, got).
		WithHint("check that the source is the version you meant; if it is, pass --sha256 %s", got)
}

// NormalizeSHA256 checks a --sha256 value and returns it in lowercase.
func NormalizeSHA256(s string) (string, error) {
	v := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if !isSHA256(v) {
		return "", apperr.Usage("invalid_sha256", "--sha256 %q is not a sha256 digest (64 hex digits)", s).
			WithHint("compute it with: sha256sum my_auth.py")
	}
	return v, nil
}

func httpClient(caFile string) (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, apperr.Usage("invalid_ca_cert", "cannot read the CA file %s: %v", caFile, err).
				WithHint("pass a readable PEM file with --source-ca-cert")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, apperr.Usage("invalid_ca_cert", "%s contains no PEM certificate", caFile).
				WithHint("pass a PEM file with --source-ca-cert")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return &insecureRedirectError{to: req.URL}
			}
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}, nil
}

// insecureRedirectError is a redirect away from https://, which is never
// followed.
type insecureRedirectError struct{ to *url.URL }

func (e *insecureRedirectError) Error() string {
	return fmt.Sprintf("redirect to %s rejected: only https:// is followed", e.to.Redacted())
}

func downloadError(u *url.URL, err error, timeout time.Duration) error {
	var redirect *insecureRedirectError
	if errors.As(err, &redirect) {
		// The same rejection as an http:// SOURCE, found one step later.
		return apperr.Usage("insecure_url", "%s redirects to %s: only https:// URLs are accepted, not %s://",
			u.Redacted(), redirect.to.Redacted(), redirect.to.Scheme).
			WithHint("install from the https:// URL the module is served at without a redirect, or download it and install the file")
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return apperr.Environment("download_timeout", "download of %s did not finish within %s", u.Redacted(), timeout).
			WithHint("check that the server responds, or raise --timeout")
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return apperr.Failed("tls_verify_failed", "TLS verification of %s failed: %v", u.Host, err).
			WithHint("pass the CA that signed the server's certificate with --source-ca-cert FILE")
	}
	return apperr.Environment("download_failed", "cannot download %s: %v", u.Redacted(), err).
		WithHint("check the URL and that this host can reach %s", u.Host)
}
