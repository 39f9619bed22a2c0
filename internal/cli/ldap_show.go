package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/ldapprobe"
)

// LDAPShowOptions are the inputs of 'cfyauth ldap show'.
type LDAPShowOptions struct {
	settings ldapSettingsOptions
	User     string
}

// ldapSetting is one row of the settings listing.
type ldapSetting struct {
	Key    string           `json:"key"`
	Value  string           `json:"value"`
	Source ldapprobe.Source `json:"source"`
}

// ldapShowOutput is the JSON document of 'cfyauth ldap show'.
type ldapShowOutput struct {
	Settings  []ldapSetting        `json:"settings"`
	Rendering *ldapprobe.Rendering `json:"rendering"`
	// Warnings are about the settings; the rendering carries its own.
	Warnings []ldapprobe.Warning `json:"warnings"`
	// Manager is the manager the settings were read from (--from-manager).
	Manager *ldapManager `json:"manager,omitempty"`
}

func newLDAPShowCmd(app *App, runF func(*LDAPShowOptions) error) *cobra.Command {
	opts := &LDAPShowOptions{}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective LDAP settings and what they render to",
		Long: `Print every LDAP setting under the manager's key name with its value and
where it came from (flag, environment, settings file or the manager's
default), the password masked. Then print the bind name, the user search and
the group lookup rendered for --user the way the manager fills in its
templates, with values escaped for DNs (RFC 4514) and filters (RFC 4515) and
a warning for every character that needed it.

Placeholders are checked as the manager checks them: ldap_bind_format may
use {username}, {domain}, {base_dn}, {domain_dn} and {group_dn};
ldap_user_filter {username}, {base_dn}, {domain_dn} and {group_dn};
ldap_group_dn {base_dn} and {domain_dn}; ldap_group_member_filter only
{object_dn}. ldap show contacts no server.

Exit status: 0 when the settings are valid, 2 when the manager would reject
them.`,
		Example: `  cfyauth ldap show --ldap-server ldaps://ldap.example.com:636 --ldap-domain example.com \
      --ldap-ca-path ca.pem --user jbloggs
  cfyauth ldap show --settings ldap.yaml --user 'Smith, John' -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runLDAPShow(cmd, app, opts)
		},
	}
	opts.settings.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.User, "user", "", "login name to render the bind name and filters for")
	return cmd
}

func runLDAPShow(cmd *cobra.Command, app *App, opts *LDAPShowOptions) error {
	s, warnings, err := opts.settings.resolve(cmd, app, ldapprobe.CheckOptions{CAOptional: opts.settings.manager.fromManager})
	if err != nil {
		return err
	}
	r, err := ldapprobe.Render(s, opts.User, "")
	if err != nil {
		return apperr.Usage("invalid_ldap_settings", "%v", err).WithHint("run 'cfyauth ldap show' to see each template")
	}
	for _, w := range r.Warnings {
		app.Warnf("%s", w)
	}
	out := ldapShowOutput{Rendering: r, Warnings: warnings, Manager: opts.settings.connected}
	for _, k := range ldapprobe.Keys {
		out.Settings = append(out.Settings, ldapSetting{Key: k.Name, Value: s.Value(k.Name), Source: s.Sources[k.Name]})
	}
	if out.Warnings == nil {
		out.Warnings = []ldapprobe.Warning{}
	}
	if app.JSON() {
		return app.WriteJSON(out)
	}

	w := tabwriter.NewWriter(app.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tVALUE\tSOURCE")
	for _, row := range out.Settings {
		fmt.Fprintf(w, "%s\t%s\t%s\n", row.Key, row.Value, row.Source)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	printRendering(app, s, r)
	return nil
}

// printRendering prints the bind name, user search and group lookup.
func printRendering(app *App, s *ldapprobe.Settings, r *ldapprobe.Rendering) {
	who := "for any user ({username} not filled in)"
	if r.Username != "" {
		who = fmt.Sprintf("for user %q", r.Username)
	}
	kind := "a DN"
	if !r.BindIsDN {
		kind = "not a DN: a user principal or down-level name, sent as it is"
	}
	searchAs := "as the user, after the user's bind"
	if s.HasServiceAccount() {
		searchAs = "as the service account " + s.Username
	}
	app.Printf("\nrendered %s:\n", who)
	app.Printf("  bind name:      %s (%s)\n", r.BindName, kind)
	app.Printf("  user search:    base %s, scope subtree, filter %s, %s\n", r.SearchBase, r.UserFilter, searchAs)
	app.Printf("  group lookup:   %s on the user's entry; without it, search %s with %s\n", r.MembershipAttribute, r.GroupDN, r.GroupMemberFilter)
	app.Printf("  nested levels:  %s\n", ldapprobe.NestingWords(r.NestedLevels))
}
