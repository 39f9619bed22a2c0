package ldapprobe

import (
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cfyauth/cfyauth/internal/ldapprobe/ldaptest"
	"github.com/cfyauth/cfyauth/internal/report"
)

// The fixture's group DNs.
const (
	dnDevelopers  = "cn=developers,ou=groups,dc=example,dc=org"
	dnEngineering = "cn=engineering,ou=groups,dc=example,dc=org"
	dnRnD         = "cn=rnd,ou=groups,dc=example,dc=org"
	dnCycleA      = "cn=cycle-a,ou=groups,dc=example,dc=org"
	dnCycleB      = "cn=cycle-b,ou=groups,dc=example,dc=org"
	dnAdmins      = "cn=admins,ou=groups,dc=example,dc=org"
	dnOperators   = "cn=operators,ou=groups,dc=example,dc=org"
)

// plainSlapd is a second slapd without any memberOf, for the group search
// by filter; started on first use and stopped by TestMain.
var (
	plainSlapdOnce sync.Once
	plainSlapd     *ldaptest.Slapd
	plainSlapdErr  error
	plainSlapdDir  string
)

func needPlainSlapd(t *testing.T) *ldaptest.Slapd {
	t.Helper()
	needSlapd(t)
	plainSlapdOnce.Do(func() {
		plainSlapd, plainSlapdErr = ldaptest.Start(ldaptest.Options{Dir: filepath.Join(plainSlapdDir, "plain"), MemberOf: "none"})
	})
	if plainSlapd == nil {
		ldaptest.Unavailable(t, plainSlapdErr)
	}
	return plainSlapd
}

func groupsOf(t *testing.T, res *Result) *GroupResult {
	t.Helper()
	g := res.Servers[0].Groups
	if g == nil {
		t.Fatalf("no group result; checks: %+v", res.Servers[0].Checks)
	}
	return g
}

func sameDNs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	for i := range got {
		if !SameDN(got[i], want[i]) {
			t.Errorf("%s = %q, want %q", what, got, want)
			return
		}
	}
}

func TestGroupsNestedThreeDeepByMemberOf(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, map[string]any{KeyNestedLevels: 3}), Options{User: "bob", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerGroups)
	if c.Status != report.Pass {
		t.Fatalf("groups %s: %s (hint %s)", c.Status, c.Summary, c.Hint)
	}
	g := groupsOf(t, res)
	if g.Mode != GroupModeMemberOf {
		t.Errorf("mode %q, want memberOf", g.Mode)
	}
	sameDNs(t, "groups", g.Groups, []string{dnDevelopers, dnEngineering, dnRnD})
	if len(g.Deeper) != 0 || g.DeepestLevel != 3 {
		t.Errorf("deeper %q, deepest level %d", g.Deeper, g.DeepestLevel)
	}
	for _, lvl := range g.Levels {
		if lvl.Level >= 2 && lvl.Searches != 1 {
			t.Errorf("level %d took %d searches, want one batched search", lvl.Level, lvl.Searches)
		}
	}
	if got := evidence(c, "ldap_nested_levels"); !strings.HasPrefix(got, "3: direct groups and 2 levels of parent groups") {
		t.Errorf("nested levels read as %q", got)
	}
	if got := evidence(c, "searched as"); got != "the service account "+ldaptest.ServiceDN {
		t.Errorf("searched as %q: the manager looks groups up as the service account", got)
	}
	if _, ok := layerIf(res, LayerGroupsInChain); ok {
		t.Error("the in-chain comparison ran against OpenLDAP, which does not have the rule")
	}
}

func TestGroupsDirectOnlyByDefault(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{User: "bob", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerGroups)
	if c.Status != report.Warn {
		t.Fatalf("groups %s: %s", c.Status, c.Summary)
	}
	g := groupsOf(t, res)
	sameDNs(t, "groups", g.Groups, []string{dnDevelopers})
	sameDNs(t, "deeper", g.Deeper, []string{dnEngineering, dnRnD})
	if got := evidence(c, "ldap_nested_levels"); !strings.HasPrefix(got, "1: direct groups only") || !strings.Contains(got, "default") {
		t.Errorf("nested levels read as %q", got)
	}
	expectSummary(t, c, "the manager sees 1 group: developers", "2 more groups above ldap_nested_levels 1 (up to level 3)")
	if !strings.Contains(c.Hint, "--ldap-nested-levels 3") {
		t.Errorf("hint %q does not name the level that reaches every group", c.Hint)
	}
	if strings.Contains(c.Hint+c.Summary, oidInChain) {
		t.Error("the in-chain rule is suggested for OpenLDAP")
	}
}

func TestGroupsCycle(t *testing.T) {
	srv := needSlapd(t)
	for _, levels := range []int{1, 5} {
		res := runProbe(t, base(srv, map[string]any{KeyNestedLevels: levels}), Options{User: "dave", UserPassword: ldaptest.UserPassword})
		c := layer(t, res, LayerGroups)
		if c.Status != report.Warn {
			t.Fatalf("levels %d: groups %s: %s", levels, c.Status, c.Summary)
		}
		g := groupsOf(t, res)
		if len(g.Cycles) != 1 {
			t.Fatalf("levels %d: cycles %q, want one", levels, g.Cycles)
		}
		sameDNs(t, "cycle", g.Cycles[0], []string{dnCycleA, dnCycleB, dnCycleA})
		expectSummary(t, c, "1 cycle of groups")
		if got := evidence(c, "cycle"); !strings.Contains(got, "cn=cycle-a,ou=groups,dc=example,dc=org → cn=cycle-b") {
			t.Errorf("cycle evidence %q", got)
		}
		want := []string{dnCycleA, dnCycleB}
		if levels == 1 {
			want = want[:1]
		}
		sameDNs(t, "groups", g.Groups, want)
		if len(g.Levels) > 4 {
			t.Errorf("the lookup went round the cycle: %d levels", len(g.Levels))
		}
	}
}

func TestGroupsBySearch(t *testing.T) {
	srv := needPlainSlapd(t)
	extra := map[string]any{KeyGroupMemberFilter: "(member={object_dn})", KeyNestedLevels: 3}
	res := runProbe(t, base(srv, extra), Options{User: "bob", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerGroups)
	if c.Status != report.Pass {
		t.Fatalf("groups %s: %s (hint %s)", c.Status, c.Summary, c.Hint)
	}
	g := groupsOf(t, res)
	if g.Mode != GroupModeSearch {
		t.Errorf("mode %q, want search", g.Mode)
	}
	sameDNs(t, "groups", g.Groups, []string{dnDevelopers, dnEngineering, dnRnD})
	if got := g.Levels[0].Lookup; !strings.Contains(got, "(member=uid=bob,ou=users,dc=example,dc=org)") || !strings.Contains(got, "ou=groups,dc=example,dc=org") {
		t.Errorf("level 1 lookup %q", got)
	}

	// A cycle is found by search too, through the member attribute.
	res = runProbe(t, base(srv, extra), Options{User: "dave", UserPassword: ldaptest.UserPassword})
	if g := groupsOf(t, res); len(g.Cycles) != 1 {
		t.Errorf("search mode cycles %q, want one", g.Cycles)
	}
}

func TestGroupsBySearchBatchesALevel(t *testing.T) {
	srv := needPlainSlapd(t)
	extra := map[string]any{KeyGroupMemberFilter: "(|(member={object_dn})(uniqueMember={object_dn}))", KeyNestedLevels: 2}
	res := runProbe(t, base(srv, extra), Options{User: "alice", UserPassword: ldaptest.UserPassword})
	g := groupsOf(t, res)
	sameDNs(t, "groups", g.Groups, []string{dnAdmins, dnOperators})
	if len(g.Levels) < 2 || g.Levels[1].Searches != 1 {
		t.Fatalf("levels %+v: the two groups of level 1 must be looked up in one search", g.Levels)
	}
}

func TestGroupsCommaUserBySearch(t *testing.T) {
	srv := needPlainSlapd(t)
	extra := map[string]any{KeyGroupMemberFilter: "(member={object_dn})"}
	res := runProbe(t, base(srv, extra), Options{User: "jsmith", LookupOnly: true})
	g := groupsOf(t, res)
	sameDNs(t, "groups", g.Groups, []string{dnDevelopers})
	if !strings.Contains(g.Levels[0].Lookup, `cn=Smith\5c2C John`) {
		t.Errorf("the user's DN is not escaped in the filter: %q", g.Levels[0].Lookup)
	}
}

func TestGroupsMissingGroupDN(t *testing.T) {
	srv := needPlainSlapd(t)
	extra := map[string]any{KeyGroupDN: "ou=teams,{base_dn}", KeyGroupMemberFilter: "(member={object_dn})"}
	res := runProbe(t, base(srv, extra), Options{User: "bob", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerGroups)
	if c.Status != report.Fail || res.Servers[0].FailedLayer != LayerGroups {
		t.Fatalf("groups %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "failed at level 1", "no such object (32)")
	if !strings.Contains(c.Hint, "--ldap-group-dn") {
		t.Errorf("hint %q", c.Hint)
	}
}

func TestGroupsWithoutServiceAccount(t *testing.T) {
	srv := needSlapd(t)
	values := base(srv, map[string]any{KeyUsername: nil, KeyPassword: nil, KeyNestedLevels: 2})
	res := runProbe(t, values, Options{User: "bob", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerGroups)
	if got := evidence(c, "searched as"); got != "the user bob" {
		t.Errorf("searched as %q", got)
	}
	sameDNs(t, "groups", groupsOf(t, res).Groups, []string{dnDevelopers, dnEngineering})
}

func TestGroupsSkippedWithoutUser(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{})
	expectStatus(t, res, map[string]report.Status{LayerGroups: report.Skip})
}

func TestPreviewAgainstSlapd(t *testing.T) {
	srv := needSlapd(t)
	managerGroups := []ManagerGroup{
		// slapd names the comma user cn=Smith\2C John; the ldap_dn case
		// and escaping differ on purpose.
		{Name: "devs", LDAPDN: "CN=Developers,OU=Groups,DC=Example,DC=Org", Role: "default", Tenants: map[string]string{"default_tenant": "user"}},
		{Name: "eng", LDAPDN: dnEngineering, Role: "default", Tenants: map[string]string{"rnd_tenant": "viewer"}},
		{Name: "admins", LDAPDN: dnAdmins, Role: SysAdminRole},
		{Name: "broken", LDAPDN: "not a dn"},
	}
	res := runProbe(t, base(srv, nil), Options{User: "jsmith", LookupOnly: true,
		Preview: &PreviewInput{Groups: managerGroups, Source: "test"}})
	c := layer(t, res, LayerPreview)
	pv := res.Servers[0].Preview
	if pv == nil {
		t.Fatalf("no preview: %s %s", c.Status, c.Summary)
	}
	if len(pv.UserGroups) != 1 || pv.UserGroups[0].Name != "devs" {
		t.Fatalf("user groups %+v, want devs", pv.UserGroups)
	}
	if len(pv.Tenants) != 1 || pv.Tenants[0].Tenant != "default_tenant" || !reflect.DeepEqual(pv.Tenants[0].Roles, []string{"user"}) {
		t.Errorf("tenants %+v", pv.Tenants)
	}
	if pv.SystemRole != "default" {
		t.Errorf("system role %q", pv.SystemRole)
	}
	if len(pv.Deeper) != 1 || pv.Deeper[0].Name != "eng" || pv.Deeper[0].Level != 2 {
		t.Errorf("deeper %+v, want eng at level 2", pv.Deeper)
	}
	if c.Status != report.Warn || !strings.Contains(c.Hint, "--ldap-nested-levels 2 the user would also join eng") {
		t.Errorf("preview %s, hint %q", c.Status, c.Hint)
	}
	if !strings.Contains(c.Hint, "broken") {
		t.Errorf("the ldap_dn that is not a DN is not reported: %q", c.Hint)
	}
	expectSummary(t, c, "default_tenant as user (through devs)")
}

// layerIf returns the check with the given ID of the first server, if any.
func layerIf(res *Result, id string) (report.Check, bool) {
	for _, c := range res.Servers[0].Checks {
		if c.ID == id {
			return c, true
		}
	}
	return report.Check{}, false
}

func TestGroupsInChainFilterOnOpenLDAP(t *testing.T) {
	srv := needPlainSlapd(t)
	extra := map[string]any{KeyGroupMemberFilter: "(member:" + oidInChain + ":={object_dn})"}
	res := runProbe(t, base(srv, extra), Options{User: "bob", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerGroups)
	if c.Status == report.Pass {
		t.Fatalf("groups passed with AD's in-chain rule on OpenLDAP: %s", c.Summary)
	}
	if !strings.Contains(c.Summary+c.Hint, "in-chain matching rule, which this server does not announce") {
		t.Errorf("summary %q, hint %q", c.Summary, c.Hint)
	}
}

func TestGroupsDepthCap(t *testing.T) {
	srv := needSlapd(t)
	saved := maxNestingDepth
	maxNestingDepth = 2
	defer func() { maxNestingDepth = saved }()
	res := runProbe(t, base(srv, map[string]any{KeyNestedLevels: 10}), Options{User: "bob", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerGroups)
	g := groupsOf(t, res)
	if !g.Truncated || c.Status != report.Warn {
		t.Fatalf("truncated %v, status %s: %s", g.Truncated, c.Status, c.Summary)
	}
	sameDNs(t, "groups", g.Groups, []string{dnDevelopers, dnEngineering})
	expectSummary(t, c, "the lookup stopped at a bound")
	if got := evidence(c, "note"); !strings.Contains(got, "cfyauth reads at most 2 levels") {
		t.Errorf("note %q", got)
	}
	if got := evidence(c, "ldap_nested_levels"); !strings.HasPrefix(got, "10: direct groups and 9 levels of parent groups") {
		t.Errorf("nested levels read as %q", got)
	}
}
