package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/ldapprobe"
	"github.com/cfyauth/cfyauth/internal/report"
)

// LDAPCheckOptions are the inputs of 'cfyauth ldap check'.
type LDAPCheckOptions struct {
	settings           ldapSettingsOptions
	User               string
	PasswordStdin      bool
	PasswordFile       string
	LookupOnly         bool
	StartTLS           bool
	InsecureSkipVerify bool
}

// ldapCheckOutput is the JSON document of 'cfyauth ldap check'.
type ldapCheckOutput struct {
	Servers            []ldapprobe.ServerResult `json:"servers"`
	Comparison         *report.Check            `json:"comparison,omitempty"`
	User               string                   `json:"user,omitempty"`
	StartTLS           bool                     `json:"starttls"`
	InsecureSkipVerify bool                     `json:"insecure_skip_verify"`
	Warnings           []ldapprobe.Warning      `json:"warnings"`
	Summary            map[report.Status]int    `json:"summary"`
	// Manager is the manager the settings were read from (--from-manager).
	Manager *ldapManager `json:"manager,omitempty"`
}

func newLDAPCheckCmd(app *App, runF func(*LDAPCheckOptions) error) *cobra.Command {
	opts := &LDAPCheckOptions{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Probe the LDAP servers layer by layer with the manager's settings",
		Long: `Probe every --ldap-server at the same time, layer by layer, and stop at the
first layer that fails for a server:

  tcp           connect to host and port
  tls           the TLS handshake (ldaps://, or StartTLS with --starttls)
  tls.chain     the certificate chain leads to the CA of --ldap-ca-path
  tls.hostname  the certificate names the host of the URL
  tls.expiry    validity of the certificates and the CA, with a warning
                inside 30 days
  rootdse       naming contexts, vendor, controls and extensions
  base-dn       the base DN lies inside a naming context (else a referral)
  service-bind  the service account's bind, when ldap_username is set
  user-search   the rendered user filter under the base DN
  user-bind     the user's bind with the rendered bind name
  attributes    the uid, e-mail, first and last name of the user's entry
  groups        the user's groups as the manager resolves them: memberOf,
                else a search under ldap_group_dn, nested to
                ldap_nested_levels (1 = direct groups only), with cycles
                and the groups above that setting reported
  groups.in-chain  on Active Directory only: the same groups found with
                its in-chain matching rule, and where the two disagree
  preview       with --from-manager: the Cloudify user groups whose ldap_dn
                matches those groups, and the tenants and roles they grant

Without a service account the user binds first and the search runs with the
user's rights, as the manager does. Every step (connection, handshake,
bind, search) is bounded by --timeout (ldap_timeout, default 5s), and the
test that explains a failed step shares its deadline; referrals are
reported and never followed. With
several --ldap-server flags the servers are also compared. The user's
password comes from --password-stdin, --password-file, CFYAUTH_PASSWORD or a
prompt on a terminal; an empty password is refused before any bind. Active
Directory's bind sub-codes (data 52e, 533, 775, ...) are decoded.

--from-manager reads the settings from the manager at --manager-url (GET
/api/v3.1/config) as its admin: --admin-user or CLOUDIFY_USERNAME (default
admin), password from --admin-password-file, CFYAUTH_ADMIN_PASSWORD,
CLOUDIFY_PASSWORD or a prompt; CLOUDIFY_TENANT is sent as the tenant. The
manager does not return its LDAP CA (it keeps it in its database from
Cloudify 5.2), so ldaps:// needs --ldap-ca-path.

Exit status: 0 when every check passes (warnings allowed unless --strict),
1 when a check fails (an unreachable LDAP server included) or the manager
rejects the admin's credentials, 2 for invalid settings or flags, 3 when
the manager of --from-manager cannot be reached (without its settings
nothing can be checked), 130 when interrupted.`,
		Example: `  cfyauth ldap check -s ldaps://ldap.example.com:636 -d example.com -c ca.pem \
      --ldap-username 'cn=svc,ou=services,dc=example,dc=com' --ldap-password-file svc.pw \
      --user jbloggs --password-file user.pw
  cfyauth ldap check --settings ldap.yaml -s ldaps://ldap1:636 -s ldaps://ldap2:636 -o json

  # The manager's own settings, and what jbloggs would be allowed to do
  CLOUDIFY_PASSWORD=... cfyauth ldap check --from-manager -c ca.pem --user jbloggs`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runLDAPCheck(cmd, app, opts)
		},
	}
	opts.settings.addFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&opts.User, "user", "", "login name of a test user; adds the user search, bind and attribute checks")
	f.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the user's password from the first line of stdin")
	f.StringVar(&opts.PasswordFile, "password-file", "", "read the user's password from the first line of this file (env CFYAUTH_PASSWORD)")
	f.BoolVar(&opts.LookupOnly, "lookup-only", false, "search for --user and read its attributes without binding as the user (needs a service account)")
	f.BoolVar(&opts.StartTLS, "starttls", false, "upgrade ldap:// URLs with StartTLS (the manager itself never uses StartTLS)")
	f.BoolVar(&opts.InsecureSkipVerify, "insecure-skip-verify", false, "report certificate problems as warnings instead of failures (never what the manager does)")
	return cmd
}

func runLDAPCheck(cmd *cobra.Command, app *App, opts *LDAPCheckOptions) error {
	if opts.User == "" && (opts.PasswordStdin || opts.PasswordFile != "" || opts.LookupOnly) {
		return apperr.Usage("invalid_flag", "--password-stdin, --password-file and --lookup-only need --user").
			WithHint("add --user NAME")
	}
	s, warnings, err := opts.settings.resolve(cmd, app, ldapprobe.CheckOptions{
		NeedServer: true, StartTLS: opts.StartTLS, InsecureSkipVerify: opts.InsecureSkipVerify,
	})
	if err != nil {
		return err
	}
	probeOpts := ldapprobe.Options{
		Settings: s, User: opts.User, LookupOnly: opts.LookupOnly,
		StartTLS: opts.StartTLS, InsecureSkipVerify: opts.InsecureSkipVerify,
	}
	if opts.User != "" {
		if r, err := ldapprobe.Render(s, opts.User, ""); err == nil {
			for _, w := range r.Warnings {
				app.Warnf("%s", w)
			}
			warnings = append(warnings, r.Warnings...)
		}
	}
	if opts.User != "" && !opts.LookupOnly {
		pw, source, err := ldapSecretUserPassword(app, opts.User, ldapSecretOptions{stdin: opts.PasswordStdin, file: opts.PasswordFile})
		if err != nil {
			var e *apperr.Error
			if errors.As(err, &e) && e.Code == "missing_secret" {
				e.WithHint("or use --lookup-only to skip the user bind")
			}
			return err
		}
		if pw == "" {
			return apperr.Usage("empty_password", "the password of %s from %s is empty, and cfyauth refuses it before any bind: LDAP servers treat a simple bind with an empty password as unauthenticated and report success", opts.User, source).
				WithHint("give the real password, or use --lookup-only to skip the user bind")
		}
		app.Debugf("password of %s from %s", opts.User, source)
		probeOpts.UserPassword = pw
	}
	if opts.InsecureSkipVerify {
		app.Warnf("TLS certificates are NOT verified (--insecure-skip-verify); the manager always verifies them")
	}
	if m := opts.settings.connected; m != nil && opts.User != "" {
		probeOpts.Preview = m.previewInput(cmd.Context())
	}

	streaming := !app.JSON() && app.IO.StdoutTTY
	if streaming {
		probeOpts.Observe = func(c report.Check) { printCheckLine(app, c) }
	}
	res, probeErr := ldapprobe.Probe(cmd.Context(), probeOpts)
	if res == nil {
		return probeErr
	}

	checks := res.Checks()
	out := ldapCheckOutput{Servers: res.Servers, Comparison: res.Comparison, User: opts.User, StartTLS: opts.StartTLS,
		InsecureSkipVerify: opts.InsecureSkipVerify, Warnings: warnings, Summary: report.Counts(checks),
		Manager: opts.settings.connected}
	if out.Warnings == nil {
		out.Warnings = []ldapprobe.Warning{}
	}
	var failure *apperr.Error
	switch {
	case errors.Is(probeErr, context.Canceled):
		failure = apperr.As(context.Canceled)
	case report.Failed(checks, app.Global.Strict):
		failure = ldapCheckFailure(res, app.Global.Strict)
	}

	if app.JSON() {
		if failure != nil {
			if err := app.WriteJSONFailed(out, failure); err != nil {
				return err
			}
			// The document is written; Run adds the human lines on stderr.
			return failure
		}
		return app.WriteJSON(out)
	}
	if !streaming {
		if err := report.RenderTable(app.IO.Out, checks, app.Global.Verbose > 0); err != nil {
			return err
		}
	}
	printGroupsAndPreview(app, opts.User, res)
	counts := out.Summary
	app.Infof("checked %d server(s): %d passed, %d warnings, %d failed, %d skipped",
		len(res.Servers), counts[report.Pass], counts[report.Warn], counts[report.Fail], counts[report.Skip])
	if failure != nil {
		return failure
	}
	return nil
}

// ldapCheckFailure names the first failed layer of each server.
func ldapCheckFailure(res *ldapprobe.Result, strict bool) *apperr.Error {
	var parts []string
	for _, s := range res.Servers {
		if s.FailedLayer != "" {
			parts = append(parts, fmt.Sprintf("%s at %s", s.URL, s.FailedLayer))
		}
	}
	if len(parts) == 0 {
		e := apperr.Failed("ldap_check_failed", "LDAP check passed with warnings, which fail under --strict")
		if strict {
			e.WithHint("warnings count as failures because --strict is set")
		}
		return e
	}
	return apperr.Failed("ldap_check_failed", "LDAP check failed: %s", strings.Join(parts, ", ")).
		WithHint("the failed layer's hint says what to do; docs/ldap.md lists the fixes by layer")
}

// printCheckLine prints one check as soon as it completes, for a terminal.
func printCheckLine(app *App, c report.Check) {
	app.Printf("%-32s %-13s %-4s  %s\n", c.Subject, c.ID, strings.ToUpper(string(c.Status)), c.Summary)
	if c.Hint != "" && c.Status != report.Pass {
		app.Printf("%-32s %-13s hint: %s\n", "", "", c.Hint)
	}
	if app.Global.Verbose > 0 {
		for _, e := range c.Evidence {
			app.Printf("%-32s %-13s   %s: %s\n", "", "", e.Key, e.Value)
		}
	}
}
