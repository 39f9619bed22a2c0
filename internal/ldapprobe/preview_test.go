package ldapprobe

import (
	"reflect"
	"testing"
)

// groupResultOf builds a lookup result from DNs per level.
func groupResultOf(nested int, levels ...[]string) *GroupResult {
	g := &GroupResult{NestedLevels: nested, levelOf: map[string]int{}, display: map[string]string{}, parents: map[string][]string{}}
	for i, dns := range levels {
		for _, dn := range dns {
			key, _ := DNKey(dn)
			g.levelOf[key] = i + 1
			g.display[key] = dn
			if i+1 <= nested {
				g.Groups = append(g.Groups, dn)
			} else {
				g.Deeper = append(g.Deeper, dn)
			}
		}
	}
	return g
}

func TestBuildPreviewCombinesGroups(t *testing.T) {
	g := groupResultOf(2,
		[]string{`CN=Smith\, John Team,CN=Users,DC=example,DC=test`, "CN=ops,CN=Users,DC=example,DC=test"},
		[]string{"CN=admins,CN=Users,DC=example,DC=test"},
		[]string{"CN=everyone,CN=Users,DC=example,DC=test"})
	pv := BuildPreview(g, []ManagerGroup{
		{Name: "team", LDAPDN: `cn=Smith\2C John Team,cn=users,dc=EXAMPLE,dc=test`, Tenants: map[string]string{"t1": "user"}},
		{Name: "ops", LDAPDN: "cn=ops,cn=users,dc=example,dc=test", Role: "default", Tenants: map[string]string{"t1": "operations", "t2": "viewer"}},
		{Name: "admins", LDAPDN: "CN=admins,CN=Users,DC=example,DC=test", Role: SysAdminRole},
		{Name: "all", LDAPDN: "CN=everyone,CN=Users,DC=example,DC=test", Tenants: map[string]string{"t3": "viewer"}},
		{Name: "local-only"},
		{Name: "other", LDAPDN: "CN=other,CN=Users,DC=example,DC=test"},
	})
	var names []string
	for _, m := range pv.UserGroups {
		names = append(names, m.Name)
	}
	if !reflect.DeepEqual(names, []string{"admins", "ops", "team"}) {
		t.Errorf("user groups %q", names)
	}
	if pv.SystemRole != SysAdminRole || !reflect.DeepEqual(pv.SystemRoleVia, []string{"admins"}) {
		t.Errorf("system role %q via %q", pv.SystemRole, pv.SystemRoleVia)
	}
	want := []TenantGrant{
		{Tenant: "t1", Roles: []string{"operations", "user"}, Via: []string{"ops", "team"}},
		{Tenant: "t2", Roles: []string{"viewer"}, Via: []string{"ops"}},
	}
	if !reflect.DeepEqual(pv.Tenants, want) {
		t.Errorf("tenants %+v, want %+v", pv.Tenants, want)
	}
	if len(pv.Deeper) != 1 || pv.Deeper[0].Name != "all" || pv.Deeper[0].Level != 3 {
		t.Errorf("deeper %+v", pv.Deeper)
	}
	if len(pv.Unmapped) != 0 {
		t.Errorf("unmapped %q", pv.Unmapped)
	}
	if lines := pv.TenantLines(); lines[0] != "t1 as operations and user (through ops, team)" {
		t.Errorf("tenant line %q", lines[0])
	}
}

func TestBuildPreviewNoMatch(t *testing.T) {
	g := groupResultOf(1, []string{"cn=developers,ou=groups,dc=example,dc=org"})
	pv := BuildPreview(g, []ManagerGroup{{Name: "x", LDAPDN: "cn=developers,ou=teams,dc=example,dc=org"}})
	if len(pv.UserGroups) != 0 || pv.SystemRole != "default" || len(pv.Tenants) != 0 {
		t.Errorf("preview %+v", pv)
	}
	if !reflect.DeepEqual(pv.Unmapped, []string{"cn=developers,ou=groups,dc=example,dc=org"}) {
		t.Errorf("unmapped %q", pv.Unmapped)
	}
}
