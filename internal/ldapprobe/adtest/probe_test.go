package adtest

import (
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/ldapprobe"
	"github.com/cfyauth/cfyauth/internal/ldapprobe/ldaptest"
	"github.com/cfyauth/cfyauth/internal/report"
)

func TestADLoginPasses(t *testing.T) {
	s := needSamba(t)
	res, _ := probe(t, adValues(s, map[string]any{ldapprobe.KeyNestedLevels: 3}),
		ldapprobe.Options{User: "bob", UserPassword: ldaptest.ADUserPassword})
	for _, c := range res.Servers[0].Checks {
		if c.Status != report.Pass {
			t.Errorf("%s: %s: %s (hint %s)", c.ID, c.Status, c.Summary, c.Hint)
		}
	}
	if got := evidence(layer(t, res, ldapprobe.LayerUserBind), "bind name"); got != "bob@example.test" {
		t.Errorf("bind name %q, want {username}@{domain}", got)
	}
	if got := evidence(layer(t, res, ldapprobe.LayerUserSearch), "filter"); got != "(|(sAMAccountName=bob)(uid=bob))" {
		t.Errorf("user filter %q", got)
	}
	if got := res.Servers[0].UserDN; got != "CN=Bob User,CN=Users,DC=example,DC=test" {
		t.Errorf("user DN %q", got)
	}
	if !strings.Contains(layer(t, res, ldapprobe.LayerRootDSE).Summary, "Samba") {
		t.Errorf("RootDSE summary %q", layer(t, res, ldapprobe.LayerRootDSE).Summary)
	}
}

// TestADBindSubCodes checks that each account state the domain controller
// reports only as a sub-code is decoded, says whose bind failed, names the
// fix and keeps the server's own text.
func TestADBindSubCodes(t *testing.T) {
	s := needSamba(t)
	tests := []struct {
		user, password, code, meaning, fix string
	}{
		{"alice", "wrong-password", "52e", "the password is wrong", "check the password of alice"},
		{"disabled", ldaptest.ADUserPassword, "533", "the account is disabled", "must enable the user disabled"},
		{"mustchange", ldaptest.ADUserPassword, "773", "the password must be changed before the next logon", "set a new password for the user mustchange"},
		{"expired", ldaptest.ADUserPassword, "701", "the account has expired", "accountExpires) of the user expired"},
		{"locked", ldaptest.ADUserPassword, "775", "the account is locked out", "lockout of the user locked"},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			res, _ := probe(t, adValues(s, nil), ldapprobe.Options{User: tc.user, UserPassword: ldapprobe.Secret(tc.password)})
			c := layer(t, res, ldapprobe.LayerUserBind)
			if c.Status != report.Fail || res.Servers[0].FailedLayer != ldapprobe.LayerUserBind {
				t.Fatalf("user-bind %s (%s), failed layer %q", c.Status, c.Summary, res.Servers[0].FailedLayer)
			}
			expectContains(t, "summary", c.Summary, "the user", tc.meaning, "(AD sub-code "+tc.code+")")
			expectContains(t, "hint", c.Hint, tc.fix)
			expectContains(t, "diagnostic", evidence(c, "diagnostic message"), "AcceptSecurityContext error, data "+tc.code)
			if got := evidence(c, "AD sub-code"); got != tc.code {
				t.Errorf("sub-code evidence %q", got)
			}
			if got := evidence(c, "result code"); got != "invalid credentials (49)" {
				t.Errorf("result code %q", got)
			}
		})
	}
}

func TestADServiceAccountDisabled(t *testing.T) {
	s := needSamba(t)
	values := adValues(s, map[string]any{ldapprobe.KeyUsername: "disabled", ldapprobe.KeyPassword: ldaptest.ADUserPassword})
	res, _ := probe(t, values, ldapprobe.Options{User: "alice", UserPassword: ldaptest.ADUserPassword})
	c := layer(t, res, ldapprobe.LayerServiceBind)
	if c.Status != report.Fail {
		t.Fatalf("service-bind %s: %s", c.Status, c.Summary)
	}
	expectContains(t, "summary", c.Summary, "the service account's bind as disabled@example.test failed", "the account is disabled (AD sub-code 533)")
	expectContains(t, "hint", c.Hint, "must enable the service account disabled")
	expectStatus(t, res, map[string]report.Status{ldapprobe.LayerUserBind: report.Skip})
}

func TestADUnknownUser(t *testing.T) {
	s := needSamba(t)
	// With a service account the search finds nobody.
	res, _ := probe(t, adValues(s, nil), ldapprobe.Options{User: "nobody", UserPassword: ldaptest.ADUserPassword})
	c := layer(t, res, ldapprobe.LayerUserSearch)
	if c.Status != report.Fail {
		t.Fatalf("user-search %s: %s", c.Status, c.Summary)
	}
	expectContains(t, "summary", c.Summary, "no entry matches (|(sAMAccountName=nobody)(uid=nobody))")

	// Without one the user's own bind fails first, and Samba answers 52e
	// as for a wrong password, so the summary says both are possible.
	values := adValues(s, map[string]any{ldapprobe.KeyUsername: nil, ldapprobe.KeyPassword: nil})
	res, _ = probe(t, values, ldapprobe.Options{User: "nobody", UserPassword: ldaptest.ADUserPassword})
	c = layer(t, res, ldapprobe.LayerUserBind)
	if c.Status != report.Fail {
		t.Fatalf("user-bind %s: %s", c.Status, c.Summary)
	}
	expectContains(t, "summary", c.Summary, "nobody@example.test", "AD sub-code 52e", "either the password is wrong or no entry has this name")
	expectContains(t, "hint", c.Hint, "--ldap-username")
}

func TestADNestedGroupsAgainstInChain(t *testing.T) {
	s := needSamba(t)
	res, _ := probe(t, adValues(s, nil), ldapprobe.Options{User: "bob", UserPassword: ldaptest.ADUserPassword})
	g := res.Servers[0].Groups
	if g == nil || g.Mode != ldapprobe.GroupModeMemberOf {
		t.Fatalf("groups %+v", g)
	}
	if len(g.Groups) != 1 || g.Groups[0] != "CN=developers,CN=Users,DC=example,DC=test" {
		t.Errorf("with ldap_nested_levels 1 the manager sees %q, want developers only", g.Groups)
	}
	c := layer(t, res, ldapprobe.LayerGroupsInChain)
	if c.Status != report.Warn {
		t.Fatalf("in-chain %s: %s", c.Status, c.Summary)
	}
	expectContains(t, "summary", c.Summary, "the in-chain rule also finds engineering, rnd")
	expectContains(t, "hint", c.Hint, "--ldap-nested-levels 3")
	if ic := g.InChain; ic == nil || len(ic.OnlyInChain) != 2 || len(ic.OnlyManager) != 0 {
		t.Errorf("in-chain result %+v", ic)
	}
	expectContains(t, "filter", evidence(c, "filter"), "(member:1.2.840.113556.1.4.1941:=CN=Bob User,CN=Users,DC=example,DC=test)")

	res, _ = probe(t, adValues(s, map[string]any{ldapprobe.KeyNestedLevels: 3}), ldapprobe.Options{User: "bob", UserPassword: ldaptest.ADUserPassword})
	expectStatus(t, res, map[string]report.Status{ldapprobe.LayerGroups: report.Pass, ldapprobe.LayerGroupsInChain: report.Pass})
	if got := len(res.Servers[0].Groups.Groups); got != 3 {
		t.Errorf("with ldap_nested_levels 3 the manager sees %d groups, want 3", got)
	}
}

func TestADGroupCycle(t *testing.T) {
	s := needSamba(t)
	res, _ := probe(t, adValues(s, map[string]any{ldapprobe.KeyNestedLevels: 4}), ldapprobe.Options{User: "dave", UserPassword: ldaptest.ADUserPassword})
	g := res.Servers[0].Groups
	if g == nil || len(g.Cycles) != 1 {
		t.Fatalf("groups %+v, want one cycle", g)
	}
	if got := strings.Join(g.Cycles[0], " → "); got != "CN=cycle-a,CN=Users,DC=example,DC=test → CN=cycle-b,CN=Users,DC=example,DC=test → CN=cycle-a,CN=Users,DC=example,DC=test" {
		t.Errorf("cycle %s", got)
	}
	expectStatus(t, res, map[string]report.Status{ldapprobe.LayerGroups: report.Warn, ldapprobe.LayerGroupsInChain: report.Pass})
}

func TestADCommaAndNonASCIIUsers(t *testing.T) {
	s := needSamba(t)
	tests := []struct{ user, dn string }{
		{"jsmith", `CN=Smith\, John,CN=Users,DC=example,DC=test`},
		{"jmueller", "CN=Jürgen Müller,CN=Users,DC=example,DC=test"},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			res, _ := probe(t, adValues(s, map[string]any{ldapprobe.KeyNestedLevels: 3}), ldapprobe.Options{User: tc.user, UserPassword: ldaptest.ADUserPassword})
			if got := res.Servers[0].UserDN; got != tc.dn {
				t.Errorf("user DN %q, want %q", got, tc.dn)
			}
			expectStatus(t, res, map[string]report.Status{ldapprobe.LayerUserBind: report.Pass, ldapprobe.LayerGroups: report.Pass,
				ldapprobe.LayerGroupsInChain: report.Pass})
			if got := len(res.Servers[0].Groups.Groups); got != 3 {
				t.Errorf("%s is in %d groups, want developers, engineering and rnd", tc.user, got)
			}
		})
	}
}

// TestADReferralsFromDomainRoot searches from the domain root, where the
// domain controller adds referrals to its configuration and DNS
// partitions: they are reported and never followed.
func TestADReferralsFromDomainRoot(t *testing.T) {
	s := needSamba(t)
	res, dialer := probe(t, adValues(s, nil), ldapprobe.Options{User: "alice", UserPassword: ldaptest.ADUserPassword})
	c := layer(t, res, ldapprobe.LayerUserSearch)
	if c.Status != report.Pass {
		t.Fatalf("user-search %s: %s", c.Status, c.Summary)
	}
	refs := evidence(c, "referrals to this server's other naming contexts (not followed)")
	expectContains(t, "referrals", refs, "ldaps://example.test/CN=Configuration,DC=example,DC=test",
		"ldaps://example.test/DC=DomainDnsZones,DC=example,DC=test", "ldaps://example.test/DC=ForestDnsZones,DC=example,DC=test")
	if got := evidence(c, "referrals to other domains (not followed)"); got != "" {
		t.Errorf("partitions of this server reported as other domains: %q", got)
	}
	for _, addr := range dialer.addrs {
		if addr != "127.0.0.1:636" {
			t.Errorf("the probe connected to %s: a referral was followed", addr)
		}
	}
}

// TestADGlobalCatalog checks that the global catalog port the hints
// suggest answers a user search without referrals.
func TestADGlobalCatalog(t *testing.T) {
	s := needSamba(t)
	values := adValues(s, map[string]any{ldapprobe.KeyServer: ldaptest.ADGlobalCatalogURL, ldapprobe.KeyCAPath: nil})
	res, _ := probe(t, values, ldapprobe.Options{User: "alice", UserPassword: ldaptest.ADUserPassword})
	c := layer(t, res, ldapprobe.LayerUserSearch)
	if c.Status != report.Pass {
		t.Fatalf("user-search on the global catalog %s: %s", c.Status, c.Summary)
	}
	if refs := evidence(c, "referrals to this server's other naming contexts (not followed)"); refs != "" {
		t.Errorf("the global catalog returned referrals: %q", refs)
	}
}

// TestADInChainWithoutADMode checks that the in-chain comparison runs when
// the RootDSE shows Active Directory even though ldap_is_active_directory
// is off.
func TestADInChainWithoutADMode(t *testing.T) {
	s := needSamba(t)
	values := adValues(s, map[string]any{ldapprobe.KeyIsActiveDirectory: false,
		ldapprobe.KeyBindFormat: "{username}@{domain}", ldapprobe.KeyUserFilter: "(sAMAccountName={username})"})
	res, _ := probe(t, values, ldapprobe.Options{User: "carol", UserPassword: ldaptest.ADUserPassword})
	c := layer(t, res, ldapprobe.LayerGroupsInChain)
	if c.Status != report.Warn {
		t.Fatalf("in-chain %s: %s", c.Status, c.Summary)
	}
	expectContains(t, "summary", c.Summary, "the in-chain rule also finds rnd")
	ids := []string{}
	for _, c := range res.Servers[0].Checks {
		ids = append(ids, c.ID)
	}
	if got := strings.Join(ids, " "); !strings.HasSuffix(got, "attributes groups groups.in-chain") {
		t.Errorf("layer order %s", got)
	}
}
