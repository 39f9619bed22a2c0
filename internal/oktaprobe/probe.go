// Package oktaprobe checks a Cloudify Manager's OKTA (SAML 2.0) setup: the
// IdP signing certificate the REST service reads, the Console's SAML
// settings, the IdP's metadata, its sign-in URL and clock, and a captured
// SAML response, against what the manager expects. It never prints; it
// returns checks in the shared report schema.
package oktaprobe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/report"
)

// Options are the inputs of one OKTA check.
type Options struct {
	// Layout is the manager's file tree; nil when checking files outside
	// a manager (then CertificatePath is required).
	Layout *manager.Layout
	// CertificatePath is a host path that replaces the manager's
	// okta_certificate.pem.
	CertificatePath string
	// ConsoleConfigPath is a host path that replaces the discovery of the
	// Console's configuration files.
	ConsoleConfigPath string
	// Metadata is an https URL or a file path; empty skips the metadata.
	Metadata string
	// MetadataAnchors verify signed metadata; empty means signed metadata
	// is read unverified and reported so.
	MetadataAnchors []*x509.Certificate
	// ManagerHost is the host name (and port) users reach the manager by.
	ManagerHost string
	// SSOURL replaces the Console's IdP sign-in URL.
	SSOURL string
	HTTP   HTTPOptions
	// Response is a captured SAML response to check, or nil.
	Response *ResponseInput
	// At is the time to judge the response's validity at; zero means now.
	At time.Time
	// MaxClockSkew is the clock offset from the IdP that passes.
	MaxClockSkew time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Groups looks up Cloudify user-groups; nil skips that check.
	Groups GroupLookup
	// Offline skips every network request: the SSO URL, a metadata URL
	// and the clock check.
	Offline bool
}

// Result is the outcome of one OKTA check.
type Result struct {
	Checks             []report.Check   `json:"checks"`
	Certificate        *CertificateInfo `json:"certificate,omitempty"`
	CertificatePath    string           `json:"certificate_path"`
	Console            *ConsoleSettings `json:"console,omitempty"`
	Metadata           *Metadata        `json:"metadata,omitempty"`
	Expected           *Expected        `json:"expected,omitempty"`
	SSOURL             string           `json:"sso_url,omitempty"`
	ClockOffsetSeconds *float64         `json:"clock_offset_seconds,omitempty"`
	User               *SAMLUser        `json:"user,omitempty"`
	InsecureSkipVerify bool             `json:"insecure_skip_verify"`
}

// Run performs every check the options allow. Everything it finds is a
// check in the result. It returns an error only when the check itself
// cannot run, such as when permission to read the certificate is denied.
func Run(ctx context.Context, opts Options) (*Result, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	res := &Result{InsecureSkipVerify: opts.HTTP.InsecureSkipVerify}
	timed := func(f func() []report.Check) {
		start := time.Now()
		checks := f()
		if len(checks) > 0 {
			checks[0].Duration = time.Since(start)
		}
		res.Checks = append(res.Checks, checks...)
	}

	// The IdP certificate the REST service reads.
	certHost, certDisplay, err := certificateLocation(opts)
	if err != nil {
		return nil, err
	}
	res.CertificatePath = certDisplay
	// Hints name the file the REST service reads, also when --certificate
	// names a candidate file.
	installPath := manager.OktaCertificate
	if opts.Layout != nil {
		installPath = opts.Layout.Display(manager.OktaCertificate)
	}
	certs, certErr := readCertificateFile(certHost)
	if errors.Is(certErr, os.ErrPermission) {
		return nil, apperr.Environment("permission_denied", "permission denied reading %s", certDisplay).Wrap(certErr).
			WithHint("run cfyauth as root (sudo cfyauth okta check …), or as a user that can read the manager's SSL folder")
	}
	var installed *x509.Certificate
	timed(func() []report.Check {
		checks := []report.Check{certificateFileCheck(certDisplay, certs, certErr)}
		if certErr == nil {
			installed = certs[0]
			info := DescribeCertificate(installed)
			res.Certificate = &info
			checks = append(checks, certificateValidityCheck(installed, now(), installPath))
		} else {
			checks = append(checks, skipped("cert-validity", "certificate", "no certificate was read"))
		}
		return checks
	})

	// The Console's SAML settings.
	var console *ConsoleSettings
	timed(func() []report.Check {
		var readErr error
		console, readErr = ReadConsoleSettings(opts.Layout, opts.ConsoleConfigPath)
		res.Console = console
		return consoleChecks(opts.Layout, console, readErr, certHost, certs, opts.SSOURL != "")
	})

	// Expected callback, audience and recipient.
	if opts.ManagerHost != "" {
		exp := ExpectedFor(opts.ManagerHost)
		res.Expected = &exp
	}

	// IdP metadata.
	var samples []*dateSample
	var md *Metadata
	switch {
	case opts.Offline && strings.HasPrefix(opts.Metadata, "https://"):
		res.Checks = append(res.Checks, report.Check{ID: "metadata", Subject: "metadata", Status: report.Skip,
			Summary: "not downloaded (--offline): " + opts.Metadata})
	case opts.Metadata != "":
		timed(func() []report.Check {
			data, sample, source, err := loadMetadata(ctx, opts)
			if sample != nil {
				samples = append(samples, sample)
			}
			if err == nil {
				md, err = ParseMetadata(data, source, opts.MetadataAnchors, now())
				err = metadataParseError(source, err)
			}
			if err == nil {
				res.Metadata = md
			} else {
				md = nil
			}
			return metadataChecks(md, err, installed, certDisplay, installPath, now())
		})
	default:
		res.Checks = append(res.Checks,
			report.Check{ID: "metadata", Subject: "metadata", Status: report.Skip, Summary: "no metadata given",
				Hint: "pass --metadata URL|FILE (the IdP's SAML metadata) to compare its signing certificates with the installed one"})
	}

	// The IdP's sign-in URL, over verified TLS.
	ssoURL, ssoSource := pickSSOURL(opts, console, md)
	res.SSOURL = ssoURL
	switch {
	case ssoURL != "" && opts.Offline:
		res.Checks = append(res.Checks, report.Check{ID: "sso-url", Subject: "idp", Status: report.Skip,
			Summary: "not requested (--offline): " + ssoURL})
	case ssoURL != "":
		timed(func() []report.Check {
			c, sample := ssoCheck(ctx, opts.HTTP, ssoURL, ssoSource)
			if sample != nil {
				samples = append([]*dateSample{sample}, samples...)
			}
			return []report.Check{c}
		})
	default:
		res.Checks = append(res.Checks, report.Check{ID: "sso-url", Subject: "idp", Status: report.Skip,
			Summary: "no IdP sign-in URL: no Console configuration names one", Hint: "pass --sso-url URL"})
	}

	// The local clock against the IdP's.
	var offset *time.Duration
	if len(samples) > 0 {
		o := samples[0].offset()
		offset = &o
		secs := o.Seconds()
		res.ClockOffsetSeconds = &secs
	}

	// A captured response.
	var responseChecksList []report.Check
	if opts.Response != nil {
		start := time.Now()
		env := responseEnv{CertDisplay: certDisplay, Metadata: md, Expected: res.Expected, Now: now(), At: opts.At, Offset: offset, Groups: opts.Groups}
		if installed != nil {
			env.Trusted = []*x509.Certificate{installed}
		}
		checks, user := responseChecks(ctx, *opts.Response, env)
		checks[0].Duration = time.Since(start)
		responseChecksList = checks
		res.User = user
	}
	metadataURL := strings.HasPrefix(opts.Metadata, "https://")
	clockSrc := clockSources{
		Offline:      opts.Offline,
		Requested:    ssoURL != "" || metadataURL,
		MetadataFile: opts.Metadata != "" && !metadataURL,
	}
	res.Checks = append(res.Checks, clockCheck(samples, opts.MaxClockSkew, responseWindowFacts(opts, installed, now()), clockSrc))
	res.Checks = append(res.Checks, responseChecksList...)
	if opts.HTTP.InsecureSkipVerify {
		res.Checks = append(res.Checks, report.Check{ID: "tls-verify", Subject: "idp", Status: report.Warn,
			Summary: "TLS verification is off (--insecure-skip-verify): the IdP's identity was not checked",
			Hint:    "pass the IdP's CA with --idp-ca-cert instead"})
	}
	return res, nil
}

// certificateLocation returns the host path to read and the path to show.
func certificateLocation(opts Options) (string, string, error) {
	if opts.CertificatePath != "" {
		return opts.CertificatePath, opts.CertificatePath, nil
	}
	if opts.Layout == nil {
		return "", "", apperr.Usage("missing_flag", "no manager layout and no --certificate").
			WithHint("pass --certificate FILE, or run on a manager (or with --root DIR)")
	}
	host, err := opts.Layout.Path(manager.OktaCertificate)
	if err != nil {
		return "", "", err
	}
	return host, opts.Layout.Display(manager.OktaCertificate), nil
}

// metadataSourceError is metadata that could not be downloaded, read or
// parsed, with the fix for that cause.
type metadataSourceError struct {
	err  error
	hint string
}

func (e *metadataSourceError) Error() string { return e.err.Error() }
func (e *metadataSourceError) Unwrap() error { return e.err }

// loadMetadata reads metadata from an https URL or a file.
func loadMetadata(ctx context.Context, opts Options) ([]byte, *dateSample, string, error) {
	src := opts.Metadata
	if strings.HasPrefix(src, "https://") {
		data, sample, err := fetchMetadata(ctx, opts.HTTP, src)
		var fetchErr *fetchError
		switch {
		case errors.As(err, &fetchErr):
			return nil, sample, src, &metadataSourceError{fmt.Errorf("cannot download %s: %w", src, err),
				"check the metadata URL (Okta: the SAML app's Identity Provider metadata link)"}
		case err != nil:
			summary, hint := describeNetError(hostOf(src), err)
			return nil, sample, src, &metadataSourceError{fmt.Errorf("cannot download %s: %s", src, summary), hint}
		}
		return data, sample, src, nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, nil, src, &metadataSourceError{fmt.Errorf("cannot read %s: %w", src, err),
			"pass the IdP's metadata file, or its https:// URL, with --metadata"}
	}
	return data, nil, src, nil
}

// metadataParseError adds the fix for a document that is not usable IdP
// metadata: for a URL, the URL is the likely mistake. A signature error
// keeps its own hint.
func metadataParseError(src string, err error) error {
	var sigErr *MetadataSignatureError
	if err == nil || errors.As(err, &sigErr) || !strings.HasPrefix(src, "https://") {
		return err
	}
	return &metadataSourceError{err, fmt.Sprintf("%s did not return the IdP's SAML metadata: copy the metadata URL again (Okta: the SAML app's Identity Provider metadata link)", hostOf(src))}
}

// pickSSOURL chooses the sign-in URL to probe: --sso-url, else the
// Console's, else the metadata's HTTP-Redirect SingleSignOnService.
func pickSSOURL(opts Options, console *ConsoleSettings, md *Metadata) (string, string) {
	switch {
	case opts.SSOURL != "":
		return opts.SSOURL, "--sso-url"
	case console != nil && console.SSOURL != "":
		return console.SSOURL, "Console configuration"
	case md != nil:
		for _, e := range md.SSO {
			if strings.HasSuffix(e.Binding, ":HTTP-Redirect") && e.Location != "" {
				return e.Location, "metadata"
			}
		}
	}
	return "", ""
}
