package cli

import (
	"strings"

	"github.com/cfyauth/cfyauth/internal/ldapprobe"
)

// printGroupsAndPreview prints, after the table, the groups the manager
// would see for the user on each server and, with --from-manager, what the
// user may do on the manager.
func printGroupsAndPreview(app *App, user string, res *ldapprobe.Result) {
	for _, s := range res.Servers {
		g := s.Groups
		if g == nil || g.Mode == "" {
			continue
		}
		app.Printf("\ngroups of %s on %s (ldap_nested_levels %d):\n", user, s.URL, g.NestedLevels)
		printedDeeper := false
		for _, lvl := range g.Levels {
			if len(lvl.Groups) == 0 {
				continue
			}
			if lvl.Level > g.NestedLevels && !printedDeeper {
				app.Printf("  above ldap_nested_levels (the manager does not see these):\n")
				printedDeeper = true
			}
			for _, dn := range lvl.Groups {
				app.Printf("  level %-2d %s\n", lvl.Level, dn)
			}
		}
		if len(g.Groups) == 0 {
			app.Printf("  none\n")
		}
		for _, cycle := range g.Cycles {
			app.Printf("  cycle: %s\n", strings.Join(cycle, " → "))
		}
		if s.Preview != nil {
			printPreview(app, user, s.Preview)
		}
	}
}

func printPreview(app *App, user string, pv *ldapprobe.Preview) {
	app.Printf("\nwhat %s may do on the manager after logging in:\n", user)
	if len(pv.UserGroups) == 0 {
		app.Printf("  user groups:  none (no ldap_dn matches the user's groups)\n")
	}
	for _, m := range pv.UserGroups {
		app.Printf("  user group:   %s (ldap_dn %s)\n", m.Name, m.LDAPDN)
	}
	role := pv.SystemRole
	if len(pv.SystemRoleVia) > 0 {
		role += " (through " + strings.Join(pv.SystemRoleVia, ", ") + ")"
	}
	app.Printf("  system role:  %s\n", role)
	if len(pv.Tenants) == 0 {
		app.Printf("  tenants:      none\n")
	}
	for _, line := range pv.TenantLines() {
		app.Printf("  tenant:       %s\n", line)
	}
	for _, m := range pv.Deeper {
		app.Printf("  not joined:   %s (its ldap_dn is at level %d, above ldap_nested_levels)\n", m.Name, m.Level)
	}
	for _, dn := range pv.Unmapped {
		app.Printf("  unmapped:     %s (no user group has this ldap_dn)\n", dn)
	}
}
