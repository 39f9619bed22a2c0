package cli

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/oktaprobe"
	"github.com/cfyauth/cfyauth/internal/report"
)

// OktaCheckOptions are the inputs of 'cfyauth okta check'.
type OktaCheckOptions struct {
	Certificate        string
	ConsoleConfig      string
	Metadata           string
	MetadataCA         string
	ManagerHost        string
	SSOURL             string
	IdPCACert          string
	InsecureSkipVerify bool
	SAMLResponse       string
	At                 string
	Timeout            time.Duration
	MaxClockSkew       time.Duration
	Offline            bool
	// FromManager reads the manager's user-groups with the admin's
	// credentials, to match the response's group names against them.
	FromManager       bool
	AdminPasswordFile string

	// Groups matches the response's group names against the manager's
	// user-groups; nil leaves that check skipped.
	Groups oktaprobe.GroupLookup
}

// oktaCheckOutput is the JSON document of 'cfyauth okta check'.
type oktaCheckOutput struct {
	*oktaprobe.Result
	Summary map[report.Status]int `json:"summary"`
}

func newOktaCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "okta",
		Short: "Check the manager's OKTA (SAML 2.0) sign-in",
		Example: `  # The installed IdP certificate, the Console, the IdP and the clock
  cfyauth okta check --manager-host manager.example.com

  # Also compare with the IdP's metadata and check a captured response
  cfyauth okta check --manager-host manager.example.com \
      --metadata https://example.okta.com/app/abc123/sso/saml/metadata \
      --saml-response captured.txt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newOktaCheckCmd(app, nil))
	return cmd
}

func newOktaCheckCmd(app *App, runF func(*OktaCheckOptions) error) *cobra.Command {
	opts := &OktaCheckOptions{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the IdP certificate, metadata, sign-in URL, clock and a captured SAML response",
		Long: `Check the manager's OKTA (SAML 2.0) setup against what the manager expects.

The REST service turns OKTA on when the IdP signing certificate exists at
/etc/cloudify/ssl/okta_certificate.pem (under --root). okta check reads that
certificate (subject, SHA-256 fingerprint, validity; a warning inside 30
days of expiry), the Console's SAML settings (the auth section, or the
legacy saml section of older releases) and whether the Console reads the
same certificate file. With --metadata it compares the IdP's signing
certificates with the installed one, naming a rotation in progress, and
reports validUntil; signed metadata is verified only against --metadata-ca,
never against the certificate inside the signature. It requests the IdP's
sign-in URL over verified TLS without credentials, and compares the local
clock with the IdP's Date header.

With --saml-response FILE (the SAMLResponse form value as the browser posted
it, base64, or its XML; - reads stdin) it verifies the signature with the
installed certificate, reads every field only from what the signature
covers, and checks the issuer, the audience, recipient and destination
against https://HOST/console/auth/saml/callback (--manager-host), the
validity window (--at TIME checks a response captured earlier) and the
attributes the manager reads: username, email, firstname, lastname, groups,
shown exactly as sent. Encrypted assertions are reported as not supported;
a DOCTYPE or entity declaration is rejected.

With --from-manager it also lists the Cloudify user-groups whose names equal
the sent group names exactly (the manager matches SAML groups by name) and
the role and tenants each grants, read from GET /api/v3.1/user-groups at
--manager-url (on the manager host by default http://127.0.0.1:8100). That
needs an admin's login: the user from CLOUDIFY_USERNAME (default admin),
the password from --admin-password-file, CFYAUTH_ADMIN_PASSWORD or
CLOUDIFY_PASSWORD, the tenant from CLOUDIFY_TENANT. The password is never
printed.

Exit status: 0 when every check passes (warnings allowed unless --strict),
1 when a check fails (an unreachable IdP included, and a manager of
--from-manager that cannot be reached, which fails only the user-groups
check), 2 for usage errors, 3 when the manager's files cannot be read.`,
		Example: `  cfyauth okta check --manager-host manager.example.com
  cfyauth okta check --manager-host manager.example.com \
      --metadata https://example.okta.com/app/abc123/sso/saml/metadata
  cfyauth okta check --manager-host manager.example.com --saml-response captured.txt
  cfyauth okta check --saml-response captured.txt --at 2026-03-01T10:15:00Z -o json
  CLOUDIFY_USERNAME=admin CLOUDIFY_PASSWORD=... cfyauth okta check \
      --manager-host manager.example.com --saml-response captured.txt --from-manager
  cfyauth okta check --certificate ./new_okta_cert.pem --metadata ./idp-metadata.xml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runOktaCheck(cmd, app, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Certificate, "certificate", "", "IdP signing certificate to check instead of <root>"+manager.OktaCertificate)
	f.StringVar(&opts.ConsoleConfig, "console-config", "", "Console configuration file to read instead of the ones found under --root")
	f.StringVar(&opts.Metadata, "metadata", "", "the IdP's SAML metadata: an https:// URL or a file")
	f.StringVar(&opts.MetadataCA, "metadata-ca", "", "PEM file of the certificate(s) that signed metadata must verify against")
	f.StringVar(&opts.ManagerHost, "manager-host", "", "host name (and port) users reach the manager by, for the expected callback, audience and recipient (default: the host of --manager-url)")
	f.StringVar(&opts.SSOURL, "sso-url", "", "the IdP's sign-in URL, when the Console configuration is absent or to override it")
	f.StringVar(&opts.IdPCACert, "idp-ca-cert", "", "PEM CA bundle to verify the IdP's TLS certificate with (default: the system's trust store)")
	f.BoolVar(&opts.InsecureSkipVerify, "insecure-skip-verify", false, "do not verify the IdP's TLS certificate (reported in every result)")
	f.StringVar(&opts.SAMLResponse, "saml-response", "", "captured SAML response to check: a file with the base64 SAMLResponse value or its XML, or - for stdin")
	f.StringVar(&opts.At, "at", "", "judge the response's validity at this RFC 3339 time (such as 2026-03-01T10:15:00Z) instead of now")
	f.DurationVar(&opts.Timeout, "timeout", 10*time.Second, "time limit of each request to the IdP or the manager")
	f.BoolVar(&opts.Offline, "offline", false, "send no request: skip the sign-in URL, a metadata URL and the clock check")
	f.DurationVar(&opts.MaxClockSkew, "max-clock-skew", oktaprobe.DefaultMaxClockSkew, "clock offset from the IdP above which the clock check warns")
	f.BoolVar(&opts.FromManager, "from-manager", false, "match the response's groups against the manager's user-groups (GET /api/v3.1/user-groups at --manager-url, as the admin)")
	f.StringVar(&opts.AdminPasswordFile, "admin-password-file", "", "file holding the manager admin's password, for --from-manager (else CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD)")
	return cmd
}

func runOktaCheck(cmd *cobra.Command, app *App, opts *OktaCheckOptions) error {
	probe, err := oktaProbeOptions(app, opts)
	if err != nil {
		return err
	}
	layout, err := manager.Open(app.Global.Root)
	if err != nil {
		var e *apperr.Error
		// Off a manager host, a candidate certificate can still be checked
		// on its own; an explicit --root must hold a manager.
		if opts.Certificate == "" || app.Global.Root != "/" || !errors.As(err, &e) || e.Code != "manager_not_found" {
			return err
		}
		app.Debugf("no manager layout under %s; checking --certificate %s on its own", app.Global.Root, opts.Certificate)
		layout = nil
	}
	probe.Layout = layout

	result, err := oktaprobe.Run(cmd.Context(), probe)
	if err != nil {
		return err
	}
	if cmd.Context().Err() != nil {
		return cmd.Context().Err()
	}
	counts := report.Counts(result.Checks)
	out := oktaCheckOutput{Result: result, Summary: counts}
	var failure *apperr.Error
	if report.Failed(result.Checks, app.Global.Strict) {
		failure = apperr.Failed("okta_check_failed", "%d of %d OKTA checks failed", counts[report.Fail], len(result.Checks))
		if app.Global.Strict && counts[report.Fail] == 0 {
			failure = apperr.Failed("okta_check_failed", "%d OKTA checks warned, and --strict makes warnings fail", counts[report.Warn]).
				WithHint("warnings count as failures because --strict is set")
		}
	}

	if app.JSON() {
		if failure != nil {
			if err := app.WriteJSONFailed(out, failure); err != nil {
				return err
			}
			return &apperr.Silent{Code: apperr.ExitFailed}
		}
		return app.WriteJSON(out)
	}
	if err := report.RenderTable(app.IO.Out, result.Checks, app.Global.Verbose > 0); err != nil {
		return err
	}
	if result.InsecureSkipVerify {
		app.Warnf("TLS verification of the IdP was off (--insecure-skip-verify)")
	}
	app.Infof("%d checks: %d passed, %d warned, %d failed, %d skipped",
		len(result.Checks), counts[report.Pass], counts[report.Warn], counts[report.Fail], counts[report.Skip])
	if failure != nil {
		return failure
	}
	return nil
}

// oktaProbeOptions validates the flags and reads the files they name,
// before anything reaches the network.
func oktaProbeOptions(app *App, opts *OktaCheckOptions) (oktaprobe.Options, error) {
	p := oktaprobe.Options{
		CertificatePath:   opts.Certificate,
		ConsoleConfigPath: opts.ConsoleConfig,
		Metadata:          opts.Metadata,
		SSOURL:            opts.SSOURL,
		MaxClockSkew:      opts.MaxClockSkew,
		Groups:            opts.Groups,
		Offline:           opts.Offline,
		HTTP: oktaprobe.HTTPOptions{
			InsecureSkipVerify: opts.InsecureSkipVerify,
			Timeout:            opts.Timeout,
			UserAgent:          "cfyauth/" + buildVersion().Version,
		},
	}
	if opts.Timeout <= 0 {
		return p, apperr.Usage("invalid_flag", "--timeout %s is not positive", opts.Timeout).WithHint("pass a duration such as --timeout 10s")
	}
	if opts.MaxClockSkew <= 0 {
		return p, apperr.Usage("invalid_flag", "--max-clock-skew %s is not positive", opts.MaxClockSkew).WithHint("pass a duration such as --max-clock-skew 30s")
	}

	for _, file := range []struct{ flag, path, hint string }{
		{"--certificate", opts.Certificate, "pass the IdP signing certificate file to check"},
		{"--console-config", opts.ConsoleConfig, "pass the Console's configuration file, such as /opt/cloudify-stage/dist/userData/config.json"},
	} {
		if file.path == "" {
			continue
		}
		if _, err := os.Stat(file.path); err != nil {
			return p, apperr.Usage("invalid_flag", "%s %s: %v", file.flag, file.path, plainPathError(err)).WithHint("%s", file.hint)
		}
	}

	host, err := managerHost(app, opts.ManagerHost)
	if err != nil {
		return p, err
	}
	p.ManagerHost = host

	if opts.Metadata != "" {
		lower := strings.ToLower(opts.Metadata)
		switch {
		case strings.HasPrefix(lower, "http://"):
			return p, apperr.Usage("invalid_flag", "--metadata %s is plain http; metadata carries the certificates sign-ins are trusted with", opts.Metadata).
				WithHint("use the IdP's https:// metadata URL, or download it and pass the file")
		case strings.Contains(lower, "://") && !strings.HasPrefix(lower, "https://"):
			return p, apperr.Usage("invalid_flag", "--metadata %s is neither an https:// URL nor a file", opts.Metadata).
				WithHint("pass --metadata https://… or --metadata FILE")
		case !strings.HasPrefix(lower, "https://"):
			if _, err := os.Stat(opts.Metadata); err != nil {
				return p, apperr.Usage("invalid_flag", "--metadata %s: %v", opts.Metadata, plainPathError(err)).
					WithHint("pass the IdP's metadata file or its https:// URL")
			}
		}
	}
	if opts.MetadataCA != "" {
		if opts.Metadata == "" {
			return p, apperr.Usage("invalid_flag", "--metadata-ca needs --metadata").WithHint("pass the metadata to verify with --metadata URL|FILE")
		}
		p.MetadataAnchors, err = readPEMCertificates("--metadata-ca", opts.MetadataCA)
		if err != nil {
			return p, err
		}
	}
	if opts.IdPCACert != "" {
		certs, err := readPEMCertificates("--idp-ca-cert", opts.IdPCACert)
		if err != nil {
			return p, err
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		p.HTTP.RootCAs = pool
	}
	if opts.InsecureSkipVerify && opts.IdPCACert != "" {
		return p, apperr.Usage("invalid_flag", "--insecure-skip-verify and --idp-ca-cert cannot be used together").
			WithHint("drop --insecure-skip-verify: with --idp-ca-cert the IdP's certificate can be verified")
	}

	if opts.At != "" {
		if opts.SAMLResponse == "" {
			return p, apperr.Usage("invalid_flag", "--at applies to --saml-response").WithHint("pass the captured response with --saml-response FILE")
		}
		at, err := time.Parse(time.RFC3339, opts.At)
		if err != nil {
			return p, apperr.Usage("invalid_flag", "--at %q is not an RFC 3339 time", opts.At).
				WithHint("pass the time of capture with its zone, such as --at 2026-03-01T10:15:00Z")
		}
		p.At = at
	}
	if opts.SAMLResponse != "" {
		in, err := readSAMLResponse(app, opts.SAMLResponse)
		if err != nil {
			return p, err
		}
		p.Response = &in
	}
	if p.Groups == nil {
		if p.Groups, err = managerGroupLookup(app, opts); err != nil {
			return p, err
		}
	}
	return p, nil
}

// managerHost returns --manager-host, or the host of --manager-url.
func managerHost(app *App, flag string) (string, error) {
	if flag != "" {
		if strings.Contains(flag, "/") || strings.ContainsAny(flag, " \t@") {
			return "", apperr.Usage("invalid_flag", "--manager-host %q is not a host name", flag).
				WithHint("pass the host only (with :port if not 443), such as --manager-host manager.example.com")
		}
		return flag, nil
	}
	if u := app.Global.ManagerURL; u != "" {
		if i := strings.Index(u, "://"); i >= 0 {
			u = u[i+3:]
		}
		if i := strings.IndexAny(u, "/?#"); i >= 0 {
			u = u[:i]
		}
		if j := strings.LastIndex(u, "@"); j >= 0 {
			u = u[j+1:]
		}
		return strings.TrimSuffix(u, ":443"), nil
	}
	return "", nil
}

// readSAMLResponse reads and decodes --saml-response. A file that cannot
// be read is a usage error; content that does not decode is reported by the
// response checks.
func readSAMLResponse(app *App, path string) (oktaprobe.ResponseInput, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(app.IO.In, 2*oktaprobe.MaxDocumentSize+1))
		path = "stdin"
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return oktaprobe.ResponseInput{}, apperr.Usage("invalid_flag", "--saml-response %s: %v", path, plainPathError(err)).
			WithHint("pass the file you saved the SAMLResponse value in, or - to read it from stdin")
	}
	in, err := oktaprobe.DecodeResponse(data, path)
	if err != nil {
		return oktaprobe.ResponseInput{}, apperr.Usage("invalid_response", "%v", err).
			WithHint("save the SAMLResponse form field exactly as the browser posted it (base64), or the XML it decodes to")
	}
	return in, nil
}

// readPEMCertificates reads a PEM file of one or more certificates.
func readPEMCertificates(flag, path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, apperr.Usage("invalid_flag", "%s %s: %v", flag, path, plainPathError(err)).
			WithHint("pass a PEM file of CA certificates")
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, apperr.Usage("invalid_flag", "%s %s: a certificate does not parse: %v", flag, path, err).
				WithHint("pass a PEM file of CA certificates")
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, apperr.Usage("invalid_flag", "%s %s contains no PEM certificate", flag, path).
			WithHint("pass a PEM file with -----BEGIN CERTIFICATE----- blocks")
	}
	return certs, nil
}

// plainPathError drops the path and operation from a file error, because
// the message already names them.
func plainPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
