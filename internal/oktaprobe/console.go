package oktaprobe

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/report"
)

// Console (cloudify-stage) configuration files that can hold SAML
// settings, lowest precedence first. The Console starts from conf/app.json
// and overlays the user configuration; 6.x and 7.x keep the user
// configuration in dist/userData/config.json (a copy of
// conf/userConfig.json), 5.1 and 5.2 in conf/config.json, and 5.0.5 to 6.0
// documented the SAML settings in conf/app.json.
var ConsoleConfigPaths = []string{
	"/opt/cloudify-stage/conf/app.json",
	"/opt/cloudify-stage/conf/config.json",
	"/opt/cloudify-stage/conf/userConfig.json",
	"/opt/cloudify-stage/dist/userData/config.json",
}

// ConsoleSettings are the Console's effective SAML settings.
type ConsoleSettings struct {
	// Files are the configuration files read, lowest precedence first.
	Files []string `json:"files"`
	// Section is "auth" (current releases) or "saml" (the legacy section).
	Section string `json:"section,omitempty"`
	// SAML is set when the Console's login goes through the IdP.
	SAML     bool   `json:"saml"`
	AuthType string `json:"auth_type,omitempty"`
	CertPath string `json:"cert_path,omitempty"`
	SSOURL   string `json:"sso_url,omitempty"`
	// Sources names the file each setting came from.
	Sources map[string]string `json:"sources,omitempty"`
}

// consoleAuth is the "auth" section of current Console releases.
type consoleAuth struct {
	Type         *string `json:"type"`
	CertPath     *string `json:"certPath"`
	LoginPageURL *string `json:"loginPageUrl"`
}

// consoleSAML is the legacy "saml" section of releases up to 6.0.
type consoleSAML struct {
	Enabled  *bool   `json:"enabled"`
	CertPath *string `json:"certPath"`
	SSOURL   *string `json:"ssoUrl"`
}

// ConsoleConfigError is a Console configuration file that cannot be read.
type ConsoleConfigError struct {
	Path string
	Err  error
}

func (e *ConsoleConfigError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *ConsoleConfigError) Unwrap() error { return e.Err }

// ReadConsoleSettings reads the Console's SAML settings. With explicit set,
// only that host path is read; otherwise every file of ConsoleConfigPaths
// that exists under the layout is read and overlaid. It returns nil
// settings when no file exists.
func ReadConsoleSettings(layout *manager.Layout, explicit string) (*ConsoleSettings, error) {
	var files []string
	if explicit != "" {
		files = []string{explicit}
	} else if layout != nil {
		for _, p := range ConsoleConfigPaths {
			host, err := layout.Path(p)
			if err != nil {
				continue
			}
			if _, err := os.Stat(host); err == nil {
				files = append(files, host)
			}
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	s := &ConsoleSettings{Sources: map[string]string{}}
	var auth consoleAuth
	var legacy consoleSAML
	authSeen, legacySeen := false, false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, &ConsoleConfigError{Path: f, Err: err}
		}
		var doc map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&doc); err != nil {
			return nil, &ConsoleConfigError{Path: f, Err: fmt.Errorf("not valid JSON: %w", err)}
		}
		s.Files = append(s.Files, f)
		if raw, ok := doc["auth"]; ok {
			var a consoleAuth
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, &ConsoleConfigError{Path: f, Err: fmt.Errorf("invalid auth section: %w", err)}
			}
			authSeen = true
			overlay(&auth.Type, a.Type, s.Sources, "auth.type", f)
			overlay(&auth.CertPath, a.CertPath, s.Sources, "auth.certPath", f)
			overlay(&auth.LoginPageURL, a.LoginPageURL, s.Sources, "auth.loginPageUrl", f)
		}
		if raw, ok := doc["saml"]; ok {
			var l consoleSAML
			if err := json.Unmarshal(raw, &l); err != nil {
				return nil, &ConsoleConfigError{Path: f, Err: fmt.Errorf("invalid saml section: %w", err)}
			}
			legacySeen = true
			overlay(&legacy.Enabled, l.Enabled, s.Sources, "saml.enabled", f)
			overlay(&legacy.CertPath, l.CertPath, s.Sources, "saml.certPath", f)
			overlay(&legacy.SSOURL, l.SSOURL, s.Sources, "saml.ssoUrl", f)
		}
	}
	switch {
	case authSeen && auth.Type != nil && *auth.Type == "saml":
		s.Section = "auth"
		s.SAML = true
		s.AuthType = "saml"
		s.CertPath = deref(auth.CertPath)
		s.SSOURL = deref(auth.LoginPageURL)
	case legacySeen && legacy.Enabled != nil && *legacy.Enabled:
		// The Console converts an enabled legacy section into the auth
		// section, with a deprecation warning in its log.
		s.Section = "saml"
		s.SAML = true
		s.AuthType = "saml"
		s.CertPath = deref(legacy.CertPath)
		s.SSOURL = deref(legacy.SSOURL)
	case authSeen:
		s.Section = "auth"
		s.AuthType = deref(auth.Type)
		if s.AuthType == "" {
			s.AuthType = "local"
		}
	case legacySeen:
		s.Section = "saml"
		s.AuthType = "local"
	default:
		s.AuthType = "local"
	}
	return s, nil
}

func overlay[T any](dst **T, src *T, sources map[string]string, key, file string) {
	if src != nil {
		*dst = src
		sources[key] = file
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// consoleChecks reports the Console's SAML mode and whether it validates
// responses with the same certificate file as the REST service.
func consoleChecks(layout *manager.Layout, settings *ConsoleSettings, readErr error, restCertHost string, restCerts []*x509.Certificate, ssoURLGiven bool) []report.Check {
	mode := report.Check{ID: "console-config", Subject: "console"}
	var cfgErr *ConsoleConfigError
	switch {
	case errors.As(readErr, &cfgErr):
		mode.Status = report.Fail
		mode.Summary = fmt.Sprintf("cannot read the Console configuration %s: %v", cfgErr.Path, cfgErr.Err)
		mode.Hint = "fix the file; the Console does not start with an unreadable configuration"
		return []report.Check{mode, skipped("console-cert-path", "console", "the Console configuration could not be read")}
	case readErr != nil:
		mode.Status = report.Fail
		mode.Summary = fmt.Sprintf("cannot read the Console configuration: %v", readErr)
		return []report.Check{mode, skipped("console-cert-path", "console", "the Console configuration could not be read")}
	case settings == nil:
		mode.Status = report.Skip
		mode.Summary = "no Console configuration found under the root"
		if layout != nil {
			mode.AddEvidence("looked_at", strings.Join(displayPaths(layout, ConsoleConfigPaths), ", "))
		}
		mode.Hint = "pass --console-config FILE, or --sso-url URL to check the IdP's sign-in page without it"
		if ssoURLGiven {
			mode.Hint = "pass --console-config FILE to check the Console's SAML settings as well"
		}
		return []report.Check{mode, skipped("console-cert-path", "console", "no Console configuration found")}
	}
	mode.AddEvidence("files", strings.Join(settings.Files, ", ")).
		AddEvidence("section", settings.Section).
		AddEvidence("auth_type", settings.AuthType)
	if settings.SSOURL != "" {
		mode.AddEvidence("sso_url", settings.SSOURL)
	}
	if !settings.SAML {
		mode.Status = report.Warn
		mode.Summary = fmt.Sprintf("the Console logs users in locally (auth type %q), not through the IdP", settings.AuthType)
		mode.Hint = `set "auth": {"type": "saml", "certPath": "` + manager.OktaCertificate + `", "loginPageUrl": "<IdP sign-in URL>"} in the Console's user configuration and restart cloudify-stage`
		return []report.Check{mode, skipped("console-cert-path", "console", "the Console does not use SAML")}
	}
	mode.Status = report.Pass
	mode.Summary = fmt.Sprintf("the Console logs users in through the IdP (%s section)", settings.Section)
	if settings.Section == "saml" {
		mode.Status = report.Warn
		mode.Summary = "the Console uses the legacy saml section, which newer Console releases convert with a deprecation warning"
		mode.Hint = `move the settings to "auth": {"type": "saml", "certPath": …, "loginPageUrl": …}`
	}
	if settings.SSOURL == "" {
		mode.Status = report.Fail
		mode.Summary = "the Console is in SAML mode but names no IdP sign-in URL"
		if settings.Section == "saml" {
			mode.Hint = "set saml.ssoUrl in " + lastFile(settings)
		} else {
			mode.Hint = "set auth.loginPageUrl in " + lastFile(settings)
		}
	}
	return []report.Check{mode, consoleCertPathCheck(layout, settings, restCertHost, restCerts)}
}

func lastFile(s *ConsoleSettings) string {
	if len(s.Files) == 0 {
		return "the Console configuration"
	}
	return s.Files[len(s.Files)-1]
}

func consoleCertPathCheck(layout *manager.Layout, settings *ConsoleSettings, restHost string, restCerts []*x509.Certificate) report.Check {
	c := report.Check{ID: "console-cert-path", Subject: "console"}
	key := "auth.certPath"
	if settings.Section == "saml" {
		key = "saml.certPath"
	}
	c.AddEvidence("console_cert_path", settings.CertPath).AddEvidence("rest_cert_path", manager.OktaCertificate)
	if settings.CertPath == "" {
		c.Status = report.Fail
		c.Summary = "the Console names no certificate file (" + key + "), so it cannot check the IdP's signature"
		c.Hint = fmt.Sprintf("set %s to %s in %s", key, manager.OktaCertificate, lastFile(settings))
		return c
	}
	consoleHost := settings.CertPath
	if layout != nil {
		if p, err := layout.Path(settings.CertPath); err == nil {
			consoleHost = p
		}
	}
	if sameFile(consoleHost, restHost) {
		c.Status = report.Pass
		c.Summary = "the Console and the REST service read the same certificate file"
		return c
	}
	c.Status = report.Fail
	c.Summary = fmt.Sprintf("the Console reads %s, the REST service %s", settings.CertPath, manager.OktaCertificate)
	c.Hint = fmt.Sprintf("set %s to %s in %s and restart cloudify-stage, so both check responses with one certificate", key, manager.OktaCertificate, lastFile(settings))
	consoleCerts, err := readCertificateFile(consoleHost)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.AddEvidence("console_cert", "missing")
		c.Summary = fmt.Sprintf("the Console's %s names %s, which does not exist, so the Console cannot check the IdP's signature", key, settings.CertPath)
		c.Hint = fmt.Sprintf("set %s to %s in %s and restart cloudify-stage", key, manager.OktaCertificate, lastFile(settings))
	case err != nil:
		c.AddEvidence("console_cert", "unreadable: "+err.Error())
	case len(restCerts) > 0 && consoleCerts[0].Equal(restCerts[0]):
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("the Console reads %s, the REST service %s; both hold the same certificate today, but a rotation must update both", settings.CertPath, manager.OktaCertificate)
		c.AddEvidence("console_cert_sha256", Fingerprint(consoleCerts[0]))
	default:
		c.AddEvidence("console_cert_sha256", Fingerprint(consoleCerts[0]))
		if len(restCerts) > 0 {
			c.AddEvidence("rest_cert_sha256", Fingerprint(restCerts[0]))
			c.Summary += ", and they hold different certificates"
		}
	}
	return c
}

// sameFile reports whether two host paths name one file, following
// symlinks. Two missing files are the same when their paths are.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return os.SameFile(sa, sb)
}

func displayPaths(layout *manager.Layout, paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, layout.Display(p))
	}
	return out
}

func skipped(id, subject, why string) report.Check {
	return report.Check{ID: id, Subject: subject, Status: report.Skip, Summary: why}
}
