package cli

import (
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/restapi"
)

// TestLoginOptions are the inputs of 'cfyauth test-login'.
type TestLoginOptions struct {
	User               string
	Tenant             string
	PasswordStdin      bool
	PasswordFile       string
	SAMLResponse       string
	Timeout            time.Duration
	InsecureSkipVerify bool
}

// outcomeUserMismatch is the outcome, and the error code, of a SAML login
// that logged in another user than --user.
const outcomeUserMismatch = "user_mismatch"

// testLoginOutput is the JSON document of 'cfyauth test-login'.
type testLoginOutput struct {
	ManagerURL string `json:"manager_url"`
	Username   string `json:"username"`
	Tenant     string `json:"tenant,omitempty"`
	// Method is "basic" (user and password) or "saml" (--saml-response).
	Method string `json:"method"`
	// Outcome is accepted, rejected, unknown_tenant, forbidden,
	// maintenance, server_error, unreachable or, for a SAML login of
	// another user than --user, user_mismatch.
	Outcome string `json:"outcome"`
	// RequestedUser is --user when the SAML response logged in another
	// user (outcome user_mismatch).
	RequestedUser string `json:"requested_user,omitempty"`
	HTTPStatus    int    `json:"http_status,omitempty"`
	// AuthMethod is the X-Cloudify-Audit-Auth-Method header; empty when
	// the manager did not send it.
	AuthMethod string `json:"auth_method,omitempty"`
	// External is set when an authenticator module accepted the login; the
	// manager then created or updated the user.
	External bool          `json:"external"`
	User     *restapi.User `json:"user,omitempty"`
	// Authenticators lists what GET /idp returned; null when unknown.
	Authenticators []string         `json:"authenticators"`
	IDP            string           `json:"idp,omitempty"`
	Version        *restapi.Version `json:"manager_version,omitempty"`
	ServiceOK      *bool            `json:"service_ok,omitempty"`
	TLS            *restapi.Trust   `json:"tls,omitempty"`
	PasswordSource string           `json:"password_source,omitempty"`
	DurationMS     float64          `json:"duration_ms"`
	TotalMS        float64          `json:"total_ms"`
	Notes          []string         `json:"notes"`
}

func newTestLoginCmd(app *App, runF func(*TestLoginOptions) error) *cobra.Command {
	opts := &TestLoginOptions{}
	cmd := &cobra.Command{
		Use:   "test-login --user NAME | --saml-response FILE",
		Short: "Prove that one user can log in to the manager's REST API",
		Long: `Log in to the manager's REST API as one user, the way every client does:
GET /api/v3.1/user with HTTP basic credentials (and the Tenant header when a
tenant is given). On success it shows the user as the manager sees it (role,
groups, tenants and tenant roles), how the login was authenticated (the
X-Cloudify-Audit-Auth-Method header; "external" means an authenticator
module accepted it), which authenticators the running REST service loaded
(GET /api/v3.1/idp, Cloudify 6.3 and later), the manager version and the
time taken. A successful external login creates or updates that user on
the manager, as any real login does.

The password comes from a prompt without echo on a terminal, from stdin
(--password-stdin), from a file (--password-file), or from CFYAUTH_PASSWORD;
never from a flag value. The tenant comes from --tenant or CLOUDIFY_TENANT.

With --saml-response FILE it logs in the way the console does after an
identity provider's redirect instead: it posts the saved SAML response (XML
or base64) to POST /api/v3.1/tokens with neither credentials nor a Tenant
header, reads the user with the token it gets (in the tenant, when one is
given), and deletes the token (Cloudify 6.4 and later; older managers do
not store tokens). --user is then optional; when given, the response must
log in that user. The response is a credential: it never appears in the
output.

On the manager host the default URL is the REST service itself,
` + restapi.DefaultManagerURL + `, where the audit headers are visible (nginx on
ports 80 and 443 removes them). With --root other than /, pass --manager-url.
For https:// URLs the CA is --ca-cert; else the manager's internal CA
(` + restapi.InternalCACert + `) for a loopback host or port
53333; else the system's roots plus ` + restapi.ExternalCACert + `
when it exists.

Exit status: 0 the login was accepted; 1 it was rejected (wrong credentials,
unknown tenant, a server error in an authenticator); 2 usage error; 3 the
manager could not be reached (connection refused, timeout, TLS failure) or
is in maintenance mode.`,
		Example: `  # On the manager host, prompted for the password
  cfyauth test-login --user alice

  # From a script, with the password in a file and JSON output
  cfyauth test-login --user alice --password-file /root/alice.pw -o json

  # A SAML response saved from the identity provider's POST
  cfyauth test-login --saml-response response.xml --user alice@example.com

  # Through nginx with the manager's CA, in one tenant
  printf '%s\n' "$PW" | cfyauth test-login --user alice --password-stdin \
      --manager-url https://mgr.example.com --ca-cert ca.pem --tenant ops`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runTestLogin(cmd, app, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.User, "user", "", "user name to log in as; required for a password login, optional with --saml-response (then the user the response must log in)")
	f.StringVar(&opts.Tenant, "tenant", "", "tenant to send in the Tenant header (env CLOUDIFY_TENANT)")
	f.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password from stdin (one line)")
	f.StringVar(&opts.PasswordFile, "password-file", "", "read the password from this file (one line)")
	f.StringVar(&opts.SAMLResponse, "saml-response", "", "log in with this saved SAML response (XML or base64; - for stdin) instead of a password")
	f.DurationVar(&opts.Timeout, "timeout", restapi.DefaultTimeout, "how long each request to the manager may take")
	f.BoolVar(&opts.InsecureSkipVerify, "insecure-skip-verify", false, "do not verify the manager's TLS certificate (reported in the output)")
	return cmd
}

func runTestLogin(cmd *cobra.Command, app *App, opts *TestLoginOptions) error {
	ctx := cmd.Context()
	g := app.Global
	saml := opts.SAMLResponse != ""
	if saml && (opts.PasswordStdin || opts.PasswordFile != "") {
		return apperr.Usage("conflicting_flags", "--saml-response replaces the password, so --password-stdin and --password-file do not apply").
			WithHint("drop the password flags, or drop --saml-response to log in with a password")
	}
	if !saml && strings.TrimSpace(opts.User) == "" {
		return apperr.Usage("missing_flag", "test-login needs the user to log in as").
			WithHint("pass --user NAME, or --saml-response FILE to log in with a SAML response")
	}
	if opts.Timeout <= 0 {
		return apperr.Usage("invalid_flag", "invalid --timeout %s: it must be positive", opts.Timeout).
			WithHint("pass a duration such as --timeout 10s")
	}
	tenant := opts.Tenant
	tenantSource := "flag --tenant"
	if tenant == "" {
		tenant = app.Getenv("CLOUDIFY_TENANT")
		tenantSource = "environment CLOUDIFY_TENANT"
	}
	if tenant != "" {
		app.Debugf("tenant = %q (from %s)", tenant, tenantSource)
	}

	managerURL, err := restManagerURL(app)
	if err != nil {
		return err
	}

	var creds restapi.Credentials
	var samlResponse, passwordSource string
	if saml {
		if samlResponse, err = loginSecretSAMLResponse(app, opts.SAMLResponse); err != nil {
			return err
		}
	} else {
		password, source, err := requireSecret(app, SecretSource{
			What:      "the password for user " + opts.User,
			Prompt:    "Password for user " + opts.User + ": ",
			Stdin:     opts.PasswordStdin,
			StdinFlag: "password-stdin",
			File:      opts.PasswordFile,
			FileFlag:  "password-file",
			EnvVar:    "CFYAUTH_PASSWORD",
		})
		if err != nil {
			return err
		}
		app.Debugf("password from %s", source)
		creds = restapi.Credentials{Username: opts.User, Password: password}
		passwordSource = source
	}

	client, err := restapi.New(restapi.Options{
		URL:         managerURL,
		Credentials: creds,
		Tenant:      tenant,
		Timeout:     opts.Timeout,
		TLS: restapi.TLSOptions{
			CAFile:             g.CACert,
			ManagerPath:        managerPathFunc(g.Root),
			InsecureSkipVerify: opts.InsecureSkipVerify,
		},
	})
	if err != nil {
		return err
	}
	if t := client.Trust(); t != nil {
		app.Debugf("TLS: trusting %s", t.Describe())
	}

	var res *restapi.LoginResult
	if saml {
		res, err = restapi.CheckSAMLLogin(ctx, client, samlResponse)
	} else {
		res, err = restapi.CheckLogin(ctx, client)
	}
	if err != nil {
		return err
	}
	if saml && opts.User != "" && res.Outcome == restapi.OutcomeAccepted && !strings.EqualFold(res.Username, opts.User) {
		res.Err = apperr.Failed(outcomeUserMismatch, "the SAML response logged in user %s, not %s", res.Username, opts.User).
			WithHint("save a response for %s from the identity provider, or leave out --user", opts.User)
	}
	out := testLoginDocument(client, res, passwordSource)
	if res.Err != nil && res.Err.Code == outcomeUserMismatch {
		out.Outcome = outcomeUserMismatch
		out.RequestedUser = opts.User
	}
	if res.ServerTraceback != "" {
		app.Debugf("traceback the manager sent:\n%s", strings.TrimRight(res.ServerTraceback, "\n"))
	}

	if app.JSON() {
		if res.Err != nil {
			if err := app.WriteJSONFailed(out, res.Err); err != nil {
				return err
			}
			return &apperr.Silent{Code: res.Err.Kind.ExitCode()}
		}
		return app.WriteJSON(out)
	}
	renderTestLogin(app, out, res, opts.User)
	if res.Err != nil {
		return res.Err
	}
	return nil
}

// restManagerURL returns --manager-url, or on the manager host itself (root
// /) the REST service's own address. For another root nothing is guessed.
func restManagerURL(app *App) (string, error) {
	g := app.Global
	managerURL := g.ManagerURL
	if managerURL == "" {
		if g.Root != "/" {
			return "", apperr.Usage("missing_flag", "--root is %s, so cfyauth does not guess the manager's URL", g.Root).
				WithHint("pass --manager-url URL (on a manager host the REST service is %s)", restapi.DefaultManagerURL)
		}
		managerURL = restapi.DefaultManagerURL
		app.Debugf("manager-url = %q (default: the REST service on this host)", managerURL)
	}
	if _, err := restapi.ParseManagerURL(managerURL); err != nil {
		return "", err
	}
	return managerURL, nil
}

// managerPathFunc maps manager paths (such as the CA files) to host paths
// under the root, resolving symlinks inside it.
func managerPathFunc(root string) func(string) string {
	if root == "" || root == "/" {
		return nil
	}
	layout, err := manager.Open(root)
	if err != nil {
		return func(p string) string { return filepath.Join(root, p) }
	}
	return func(p string) string {
		if resolved, err := layout.Path(p); err == nil {
			return resolved
		}
		return filepath.Join(root, p)
	}
}

func testLoginDocument(client *restapi.Client, res *restapi.LoginResult, passwordSource string) testLoginOutput {
	out := testLoginOutput{
		ManagerURL:     client.URL(),
		Username:       res.Username,
		Tenant:         res.Tenant,
		Method:         "basic",
		Outcome:        res.Outcome,
		HTTPStatus:     res.HTTPStatus,
		AuthMethod:     res.Audit.AuthMethod,
		External:       res.External(),
		User:           res.User,
		Version:        res.Version,
		ServiceOK:      res.ServiceOK,
		TLS:            client.Trust(),
		PasswordSource: passwordSource,
		DurationMS:     milliseconds(res.LoginDuration),
		TotalMS:        milliseconds(res.Total),
		Notes:          []string{},
	}
	if res.SAML {
		out.Method = "saml"
	}
	if res.TokenNote != "" {
		out.Notes = append(out.Notes, res.TokenNote)
	}
	if res.IDP != nil {
		out.Authenticators = res.IDP.Names
		out.IDP = res.IDP.Raw
	}
	if res.IDPNote != "" {
		out.Notes = append(out.Notes, res.IDPNote)
	}
	if res.VersionNote != "" {
		out.Notes = append(out.Notes, res.VersionNote)
	}
	if out.TLS != nil && out.TLS.Insecure {
		out.Notes = append(out.Notes, "TLS verification was off (--insecure-skip-verify): the manager's identity was not checked")
	}
	if res.Outcome != restapi.OutcomeAccepted {
		return out
	}
	switch {
	case out.External:
		out.Notes = append(out.Notes, fmt.Sprintf("an authenticator module accepted the login, so the manager created or updated user %s (its groups, tenants and last login)", res.Username))
	case out.AuthMethod == "":
		out.Notes = append(out.Notes, noAuthMethodNote(out.ManagerURL, res.Version))
		admin := strings.EqualFold(res.Username, "admin")
		switch {
		case admin:
		case res.IDP != nil && len(res.IDP.Names) > 0:
			out.Notes = append(out.Notes, fmt.Sprintf("authenticator modules are loaded, so this login most likely went through them, and the manager created or updated user %s", res.Username))
		case res.IDP == nil:
			out.Notes = append(out.Notes, fmt.Sprintf("which authenticators are loaded is unknown too; if an authenticator module accepted this login, the manager created or updated user %s (its groups, tenants and last login)", res.Username))
		}
	}
	return out
}

// noAuthMethodNote explains a login without the X-Cloudify-Audit-Auth-Method
// header. Managers before 6.2 never send it, and nginx removes it, so only
// a URL other than the REST service itself gets the advice to call that.
func noAuthMethodNote(managerURL string, version *restapi.Version) string {
	switch {
	case version != nil && versionBefore(version.Version, 6, 2):
		return fmt.Sprintf("the manager sent no X-Cloudify-Audit-Auth-Method header (Cloudify %s does not send it; it came in 6.2), so how the login was authenticated is unknown", version.Version)
	case isRESTService(managerURL):
		return "the manager sent no X-Cloudify-Audit-Auth-Method header (managers before 6.2 do not send it), so how the login was authenticated is unknown"
	}
	return "the manager sent no X-Cloudify-Audit-Auth-Method header (nginx removes it, and managers before 6.2 do not send it): call the REST service on the manager host, --manager-url " + restapi.DefaultManagerURL + ", to see how the login was authenticated"
}

// versionBefore reports whether a manager version such as 5.1.2 is older
// than major.minor. A version that does not parse is not.
func versionBefore(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	gotMajor, err1 := strconv.Atoi(parts[0])
	gotMinor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return gotMajor < major || (gotMajor == major && gotMinor < minor)
}

// isRESTService reports whether a manager URL is the REST service on the
// manager host itself: plain http on a loopback address, port 8100.
func isRESTService(managerURL string) bool {
	u, err := url.Parse(managerURL)
	return err == nil && u.Scheme == "http" && u.Port() == "8100" && restapi.IsLoopbackHost(u.Hostname())
}

func milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// renderTestLogin prints the human report to stdout; the error and its
// hints, if any, are printed by App.Run on stderr.
func renderTestLogin(app *App, out testLoginOutput, res *restapi.LoginResult, requested string) {
	where := out.ManagerURL
	if out.Tenant != "" {
		where += " (tenant " + out.Tenant + ")"
	}
	if res.Outcome != restapi.OutcomeAccepted {
		if res.HTTPStatus == 0 {
			return
		}
		who := "user " + out.Username
		if out.Username == "" {
			who = "the SAML response"
		}
		app.Printf("login %s for %s at %s after %s\n", outcomeWords(res.Outcome), who, where, formatMS(out.DurationMS))
		rows := [][2]string{{"HTTP status", fmt.Sprint(res.HTTPStatus)}}
		if res.ServiceOK != nil {
			health := "answering, GET /api/v3.1/ok says OK"
			if !*res.ServiceOK {
				health = "answering, but GET /api/v3.1/ok says FAIL"
			}
			rows = append(rows, [2]string{"REST service", health})
		}
		printRows(app, rows)
		return
	}

	if out.Outcome == outcomeUserMismatch {
		app.Printf("logged in as %s, not %s, at %s in %s\n", out.Username, requested, where, formatMS(out.DurationMS))
	} else {
		app.Printf("login accepted for user %s at %s in %s\n", out.Username, where, formatMS(out.DurationMS))
	}
	rows := [][2]string{{"authenticated by", authMethodWords(out.AuthMethod)}}
	u := out.User
	if u != nil {
		rows = append(rows,
			[2]string{"user", u.Username},
			[2]string{"system role", orNone(u.Role)},
			[2]string{"groups", orNone(strings.Join(u.Groups, ", "))},
			[2]string{"tenants", orNone(formatTenants(u))},
		)
		if len(u.GroupSystemRoles) > 0 {
			rows = append(rows, [2]string{"roles via groups", formatGroupRoles(u.GroupSystemRoles)})
		}
	}
	switch {
	case res.IDP != nil && len(res.IDP.Names) > 0:
		rows = append(rows, [2]string{"loaded authenticators", strings.Join(res.IDP.Names, ", ")})
	case res.IDP != nil:
		rows = append(rows, [2]string{"loaded authenticators", "none (the manager uses local authentication)"})
	default:
		rows = append(rows, [2]string{"loaded authenticators", "unknown"})
	}
	if v := out.Version; v != nil {
		text := v.Version
		if v.Edition != "" {
			text += " (" + v.Edition + ")"
		}
		rows = append(rows, [2]string{"manager version", text})
	} else {
		rows = append(rows, [2]string{"manager version", "unknown"})
	}
	if out.TLS != nil {
		rows = append(rows, [2]string{"TLS trusted", out.TLS.Describe()})
	}
	rows = append(rows, [2]string{"time", fmt.Sprintf("%s login, %s in total", formatMS(out.DurationMS), formatMS(out.TotalMS))})
	printRows(app, rows)
	for _, n := range out.Notes {
		app.Printf("note: %s\n", n)
	}
}

func printRows(app *App, rows [][2]string) {
	width := 0
	for _, r := range rows {
		if len(r[0]) > width {
			width = len(r[0])
		}
	}
	for _, r := range rows {
		app.Printf("  %-*s  %s\n", width+1, r[0]+":", r[1])
	}
}

func outcomeWords(outcome string) string {
	switch outcome {
	case restapi.OutcomeRejected:
		return "rejected"
	case restapi.OutcomeUnknownTenant:
		return "refused (unknown tenant)"
	case restapi.OutcomeForbidden:
		return "refused"
	case restapi.OutcomeMaintenance:
		return "not possible (maintenance mode)"
	case restapi.OutcomeServerError:
		return "failed (server error)"
	default:
		return "failed"
	}
}

func authMethodWords(method string) string {
	switch method {
	case restapi.AuthMethodExternal:
		return "an authenticator module (auth method external)"
	case "http_basic":
		return "the manager's own user database (auth method http_basic)"
	case "":
		return "unknown (no X-Cloudify-Audit-Auth-Method header)"
	default:
		return "auth method " + method
	}
}

func formatTenants(u *restapi.User) string {
	var parts []string
	for _, name := range u.TenantNames() {
		t := u.Tenants[name]
		roles := strings.Join(t.Roles, ", ")
		var via []string
		if t.TenantRole != "" {
			via = append(via, "directly")
		}
		if byRole, ok := u.GroupTenants[name]; ok {
			var groups []string
			for _, gs := range byRole {
				groups = append(groups, gs...)
			}
			sort.Strings(groups)
			via = append(via, "via "+strings.Join(groups, ", "))
		}
		if len(via) > 0 {
			roles += "; " + strings.Join(via, ", ")
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", name, roles))
	}
	return strings.Join(parts, "; ")
}

func formatGroupRoles(m map[string][]string) string {
	roles := make([]string, 0, len(m))
	for role := range m {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	var parts []string
	for _, role := range roles {
		parts = append(parts, fmt.Sprintf("%s (via %s)", role, strings.Join(m[role], ", ")))
	}
	return strings.Join(parts, "; ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func formatMS(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}
