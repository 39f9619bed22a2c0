package ldapprobe

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// SysAdminRole is the manager's system role of administrators; every other
// user has the role "default".
const SysAdminRole = "sys_admin"

// ManagerGroup is one Cloudify user group as the manager lists it (GET
// /api/v3.1/user-groups): the LDAP group it maps, its system role, and its
// role in each tenant.
type ManagerGroup struct {
	Name    string            `json:"name"`
	LDAPDN  string            `json:"ldap_dn,omitempty"`
	Role    string            `json:"role,omitempty"`
	Tenants map[string]string `json:"tenants,omitempty"`
}

// PreviewInput is the manager's user groups, for the preview layer.
type PreviewInput struct {
	Groups []ManagerGroup
	// Source names where the groups came from, such as the URL.
	Source string
	// Unavailable is the reason the groups could not be read. The preview
	// is then skipped with it.
	Unavailable string
}

// PreviewMatch is one Cloudify user group whose ldap_dn matches an LDAP
// group of the user.
type PreviewMatch struct {
	Name    string            `json:"name"`
	LDAPDN  string            `json:"ldap_dn"`
	GroupDN string            `json:"group_dn"`
	Level   int               `json:"level"`
	Role    string            `json:"role"`
	Tenants map[string]string `json:"tenants"`
}

// TenantGrant is the user's access to one tenant: its roles there and the
// user groups that give them.
type TenantGrant struct {
	Tenant string   `json:"tenant"`
	Roles  []string `json:"roles"`
	Via    []string `json:"via"`
}

// Preview is the access the user would get on the manager after logging
// in: the user groups it joins, its system role and its tenants.
type Preview struct {
	UserGroups []PreviewMatch `json:"user_groups"`
	SystemRole string         `json:"system_role"`
	// SystemRoleVia names the user groups that make the user sys_admin.
	SystemRoleVia []string      `json:"system_role_via,omitempty"`
	Tenants       []TenantGrant `json:"tenants"`
	// Unmapped are the user's LDAP groups that no user group maps.
	Unmapped []string `json:"unmapped_ldap_groups"`
	// Deeper are user groups that map a group above ldap_nested_levels:
	// the user would join them with a higher setting.
	Deeper []PreviewMatch `json:"deeper,omitempty"`
	// InvalidLDAPDNs are user groups whose ldap_dn is not a DN.
	InvalidLDAPDNs []string `json:"invalid_ldap_dns,omitempty"`
}

// BuildPreview matches the manager's user groups against the groups the
// manager would see for the user. ldap_dn and the LDAP group DNs are
// compared as DNs, case-insensitively, as the manager's column is.
func BuildPreview(groups *GroupResult, managerGroups []ManagerGroup) *Preview {
	pv := &Preview{UserGroups: []PreviewMatch{}, Tenants: []TenantGrant{}, Unmapped: []string{}, SystemRole: "default"}
	mapped := map[string]bool{}
	tenants := map[string]*TenantGrant{}
	for _, mg := range managerGroups {
		if strings.TrimSpace(mg.LDAPDN) == "" {
			continue
		}
		key, ok := DNKey(mg.LDAPDN)
		if !ok {
			pv.InvalidLDAPDNs = append(pv.InvalidLDAPDNs, fmt.Sprintf("%s (%s)", mg.Name, mg.LDAPDN))
			continue
		}
		level, found := groups.levelOf[key]
		if !found {
			continue
		}
		m := PreviewMatch{Name: mg.Name, LDAPDN: mg.LDAPDN, GroupDN: groups.display[key], Level: level,
			Role: mg.Role, Tenants: mg.Tenants}
		if m.Role == "" {
			m.Role = "default"
		}
		if m.Tenants == nil {
			m.Tenants = map[string]string{}
		}
		if level > groups.NestedLevels {
			pv.Deeper = append(pv.Deeper, m)
			continue
		}
		mapped[key] = true
		pv.UserGroups = append(pv.UserGroups, m)
		if m.Role == SysAdminRole {
			pv.SystemRole = SysAdminRole
			pv.SystemRoleVia = append(pv.SystemRoleVia, m.Name)
		}
		for tenant, role := range m.Tenants {
			t := tenants[tenant]
			if t == nil {
				t = &TenantGrant{Tenant: tenant}
				tenants[tenant] = t
			}
			if !containsString(t.Roles, role) {
				t.Roles = append(t.Roles, role)
			}
			t.Via = append(t.Via, m.Name)
		}
	}
	for _, dn := range groups.Groups {
		if key, _ := DNKey(dn); !mapped[key] {
			pv.Unmapped = append(pv.Unmapped, dn)
		}
	}
	for _, t := range tenants {
		sort.Strings(t.Roles)
		sort.Strings(t.Via)
		pv.Tenants = append(pv.Tenants, *t)
	}
	sort.Slice(pv.Tenants, func(i, j int) bool { return pv.Tenants[i].Tenant < pv.Tenants[j].Tenant })
	sort.Slice(pv.UserGroups, func(i, j int) bool { return pv.UserGroups[i].Name < pv.UserGroups[j].Name })
	sort.Slice(pv.Deeper, func(i, j int) bool { return pv.Deeper[i].Name < pv.Deeper[j].Name })
	sort.Strings(pv.SystemRoleVia)
	return pv
}

// TenantLines describes the user's roles per tenant, such as
// "default_tenant as manager and user (through admins, devs)".
func (pv *Preview) TenantLines() []string {
	lines := make([]string, 0, len(pv.Tenants))
	for _, t := range pv.Tenants {
		lines = append(lines, fmt.Sprintf("%s as %s (through %s)", t.Tenant, strings.Join(t.Roles, " and "), strings.Join(t.Via, ", ")))
	}
	return lines
}

// preview runs the preview layer: the Cloudify user groups, tenants and
// roles the user's LDAP groups map to.
func (p *serverProbe) preview() {
	started := time.Now()
	in := p.opts.Preview
	groups := p.result.Groups
	switch {
	case in.Unavailable != "":
		p.skip(LayerPreview, "the manager's user groups are unknown: "+in.Unavailable, "")
		return
	case groups == nil || groups.levelOf == nil:
		p.skip(LayerPreview, "the user's groups are unknown", "")
		return
	}
	pv := BuildPreview(groups, in.Groups)
	p.result.Preview = pv
	c := report.Check{ID: LayerPreview}
	if in.Source != "" {
		c.AddEvidence("user groups from", in.Source)
	}
	c.AddEvidence("user groups on the manager", len(in.Groups))
	for _, m := range pv.UserGroups {
		c.AddEvidence("joins "+m.Name, fmt.Sprintf("ldap_dn %s matches %s (level %d); system role %s; tenants %s",
			m.LDAPDN, m.GroupDN, m.Level, m.Role, tenantRoles(m.Tenants)))
	}
	c.AddEvidence("system role", systemRoleWords(pv))
	for _, line := range pv.TenantLines() {
		c.AddEvidence("tenant", line)
	}
	if len(pv.Unmapped) > 0 {
		c.AddEvidence("LDAP groups no user group maps", strings.Join(pv.Unmapped, "; "))
	}
	for _, m := range pv.Deeper {
		c.AddEvidence("would join with more nesting", fmt.Sprintf("%s (ldap_dn %s is at level %d)", m.Name, m.LDAPDN, m.Level))
	}
	for _, bad := range pv.InvalidLDAPDNs {
		c.AddEvidence("ldap_dn that is not a DN", bad)
	}

	who := p.opts.User
	var hints []string
	switch {
	case len(pv.Tenants) == 0 && pv.SystemRole != SysAdminRole:
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("%s can log in but joins no user group with a tenant: every request inside a tenant will be refused", who)
		if len(pv.UserGroups) > 0 {
			hints = append(hints, "add the user groups it joins to a tenant: cfy tenants add-user-group GROUP -t TENANT -r ROLE")
		} else {
			hints = append(hints, "map one of its LDAP groups to a user group: cfy user-groups create NAME -r default -l 'GROUP DN', then add that group to a tenant")
		}
	default:
		c.Status = report.Pass
		parts := []string{"system role " + systemRoleWords(pv)}
		if len(pv.Tenants) > 0 {
			parts = append(parts, "tenants: "+strings.Join(pv.TenantLines(), "; "))
		}
		c.Summary = fmt.Sprintf("%s would get %s", who, strings.Join(parts, "; "))
	}
	if len(pv.Deeper) > 0 {
		c.Status = report.Warn
		deepest := 0
		for _, m := range pv.Deeper {
			deepest = max(deepest, m.Level)
		}
		hints = append(hints, fmt.Sprintf("with --ldap-nested-levels %d the user would also join %s", deepest, previewNames(pv.Deeper)))
	}
	if len(pv.InvalidLDAPDNs) > 0 {
		c.Status = report.Warn
		hints = append(hints, "fix the ldap_dn of "+strings.Join(pv.InvalidLDAPDNs, ", ")+": it must be the group's full DN")
	}
	c.Hint = strings.Join(hints, "; ")
	p.record(c, started)
}

func systemRoleWords(pv *Preview) string {
	if pv.SystemRole == SysAdminRole {
		return fmt.Sprintf("%s (through %s)", SysAdminRole, strings.Join(pv.SystemRoleVia, ", "))
	}
	return "default (no user group gives sys_admin)"
}

func tenantRoles(tenants map[string]string) string {
	if len(tenants) == 0 {
		return "none"
	}
	names := make([]string, 0, len(tenants))
	for t := range tenants {
		names = append(names, t)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, t := range names {
		parts[i] = t + " as " + tenants[t]
	}
	return strings.Join(parts, ", ")
}

func previewNames(ms []PreviewMatch) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}
