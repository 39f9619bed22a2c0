package oktaprobe

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/report"
)

// usernameCheck reports the username attribute exactly as sent.
func usernameCheck(f assertionFacts) report.Check {
	c := report.Check{ID: "attr-username", Subject: "response"}
	c.AddEvidence("name_id", fmt.Sprintf("%q", f.NameID))
	vals, ok := f.values(AttrUsername)
	if !ok {
		c.Status = report.Fail
		c.Summary = "the response has no username attribute, which the manager reads the user name from"
		if alt := caseVariant(f, AttrUsername); alt != "" {
			c.Summary = fmt.Sprintf("the response has no username attribute, but one named %q; attribute names are case-sensitive", alt)
		}
		c.Hint = "add the attribute statement username (Okta: user.login) to the IdP's SAML app"
		return c
	}
	c.AddEvidence("username", quoteList(vals))
	switch {
	case len(vals) != 1:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the username attribute has %d values (%s); the manager needs exactly one", len(vals), quoteList(vals))
		c.Hint = "map username to a single-valued user property in the IdP's SAML app"
		return c
	case vals[0] == "":
		c.Status = report.Fail
		c.Summary = "the username attribute is empty"
		c.Hint = "map username to a user property that every user has (Okta: user.login)"
		return c
	case strings.TrimSpace(vals[0]) != vals[0]:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("the user name %q has leading or trailing spaces, and the manager uses it as sent", vals[0])
		c.Hint = "fix the user's login name in the IdP"
		return c
	}
	c.Status = report.Pass
	c.Summary = fmt.Sprintf("logs in as %q", vals[0])
	if strings.Contains(vals[0], "@") {
		c.AddEvidence("note", "managers before 6.4 cannot show or delete users whose names contain @ through their REST API")
	}
	if f.NameID != "" && f.NameID != vals[0] {
		c.AddEvidence("name_id_differs", "the NameID differs from the username attribute")
	}
	return c
}

// profileCheck reports email, firstname and lastname.
func profileCheck(f assertionFacts) report.Check {
	c := report.Check{ID: "attr-profile", Subject: "response"}
	var missing []string
	for _, name := range []string{AttrEmail, AttrFirstName, AttrLastName} {
		vals, ok := f.values(name)
		if !ok {
			missing = append(missing, name)
			if alt := caseVariant(f, name); alt != "" {
				c.AddEvidence(name, fmt.Sprintf("missing (an attribute named %q was sent; names are case-sensitive)", alt))
			} else {
				c.AddEvidence(name, "missing")
			}
			continue
		}
		c.AddEvidence(name, quoteList(vals))
	}
	if len(missing) > 0 {
		c.Status = report.Warn
		c.Summary = "the response lacks " + strings.Join(missing, ", ") + ", so the manager's user record stays without them"
		c.Hint = "add the attribute statements email, firstname and lastname (Okta: user.email, user.firstName, user.lastName)"
		return c
	}
	c.Status = report.Pass
	c.Summary = "email, firstname and lastname are sent"
	return c
}

// groupsCheck reports the group names exactly as sent and returns them.
func groupsCheck(f assertionFacts) (report.Check, []string) {
	c := report.Check{ID: "attr-groups", Subject: "response"}
	vals, ok := f.values(AttrGroups)
	if !ok {
		if legacy, lok := f.values(AttrLegacyGroup); lok {
			c.Status = report.Warn
			c.AddEvidence("group", quoteList(legacy))
			c.Summary = fmt.Sprintf("the groups are sent as %q, the name older Cloudify documentation used; current releases document %q", AttrLegacyGroup, AttrGroups)
			c.Hint = "rename the group attribute statement to groups in the IdP's SAML app"
			return c, legacy
		}
		c.Status = report.Warn
		c.Summary = "the response has no groups attribute, so the user joins no user-group and gets no tenant or role through one"
		if alt := caseVariant(f, AttrGroups); alt != "" {
			c.Summary = fmt.Sprintf("the response has no groups attribute, but one named %q; attribute names are case-sensitive", alt)
		}
		c.Hint = "add a group attribute statement named groups with the filter Matches regex .* in the IdP's SAML app"
		return c, nil
	}
	c.AddEvidence("groups", quoteList(vals)).AddEvidence("count", len(vals))
	if len(vals) == 0 {
		c.Status = report.Warn
		c.Summary = "the groups attribute is empty: the user is in no group the IdP's filter passes"
		c.Hint = "check the group filter of the attribute statement and the user's groups in the IdP"
		return c, vals
	}
	for _, g := range vals {
		if strings.TrimSpace(g) != g || g == "" {
			c.Status = report.Warn
			c.Summary = fmt.Sprintf("the group name %q has leading or trailing spaces (or is empty); Cloudify matches user-group names exactly", g)
			c.Hint = "rename the group in the IdP, or create the Cloudify user-group with exactly that name"
			return c, vals
		}
	}
	c.Status = report.Pass
	c.Summary = fmt.Sprintf("%d group(s): %s", len(vals), quoteList(vals))
	return c, vals
}

// caseVariant returns the name of a sent attribute that equals name except
// for letter case, or "".
func caseVariant(f assertionFacts, name string) string {
	for _, a := range f.Attributes {
		if a.Name != name && strings.EqualFold(a.Name, name) {
			return a.Name
		}
	}
	return ""
}

// UserGroupMatch is one Cloudify user-group whose name equals a group name
// the IdP sent, with what it grants.
type UserGroupMatch struct {
	Group   string            `json:"group"`
	Role    string            `json:"role,omitempty"`
	Tenants map[string]string `json:"tenants,omitempty"`
}

// GroupLookup finds the Cloudify user-groups whose names equal the given
// group names. The manager matches SAML group names to user-group names
// exactly, so an implementation compares names byte for byte. A nil
// GroupLookup leaves the user-groups check skipped.
type GroupLookup interface {
	LookupUserGroups(ctx context.Context, names []string) ([]UserGroupMatch, error)
}

// userGroupsCheck matches the sent group names against the manager's
// user-groups when a lookup is configured.
func userGroupsCheck(ctx context.Context, lookup GroupLookup, groups []string, user *SAMLUser) report.Check {
	c := report.Check{ID: "user-groups", Subject: "response"}
	if lookup == nil {
		c.Status = report.Skip
		c.Summary = "not matched against the manager's user-groups: that needs --from-manager"
		return c
	}
	if len(groups) == 0 {
		c.Status = report.Skip
		c.Summary = "no group names to match"
		return c
	}
	matches, err := lookup.LookupUserGroups(ctx, groups)
	if err != nil {
		c.Status = report.Fail
		c.Summary = "cannot read the manager's user-groups: " + err.Error() + "; only this check needs the manager, so the others stand"
		c.Hint = "check --manager-url and the admin's credentials (CLOUDIFY_USERNAME, and CLOUDIFY_PASSWORD or --admin-password-file)"
		var e *apperr.Error
		if errors.As(err, &e) && len(e.Hints) > 0 {
			c.Hint = e.Hints[0]
		}
		return c
	}
	user.UserGroups = matches
	found := map[string]bool{}
	for _, m := range matches {
		found[m.Group] = true
		c.AddEvidence(fmt.Sprintf("%q", m.Group), describeGrant(m))
	}
	var unmatched []string
	for _, g := range groups {
		if !found[g] {
			unmatched = append(unmatched, g)
		}
	}
	switch {
	case len(matches) == 0:
		c.Status = report.Warn
		c.Summary = "no Cloudify user-group has any of these names, so the user gets no tenant or role from groups"
		c.Hint = "create user-groups named exactly as the IdP's groups: cfy user-groups create NAME -r ROLE"
	case len(unmatched) > 0:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("%d of %d group(s) match a user-group; no user-group for %s", len(matches), len(groups), quoteList(unmatched))
	default:
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("every group matches a user-group (%d)", len(matches))
	}
	return c
}

func describeGrant(m UserGroupMatch) string {
	var parts []string
	if m.Role != "" {
		parts = append(parts, "role "+m.Role)
	}
	tenants := make([]string, 0, len(m.Tenants))
	for tenant := range m.Tenants {
		tenants = append(tenants, tenant)
	}
	sort.Strings(tenants)
	for _, tenant := range tenants {
		parts = append(parts, fmt.Sprintf("tenant %s as %s", tenant, m.Tenants[tenant]))
	}
	if len(parts) == 0 {
		return "no tenant"
	}
	return strings.Join(parts, ", ")
}
