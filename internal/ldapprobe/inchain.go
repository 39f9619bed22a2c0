package ldapprobe

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// oidInChain is Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: a filter
// (member:1.2.840.113556.1.4.1941:=DN) matches every group that holds DN
// directly or through nested groups, to any depth.
const oidInChain = "1.2.840.113556.1.4.1941"

// InChainResult compares the manager's groups with the ones Active
// Directory's in-chain matching rule finds.
type InChainResult struct {
	Filter string   `json:"filter"`
	Base   string   `json:"base"`
	Groups []string `json:"groups"`
	// OnlyInChain are groups the rule finds and the manager does not see.
	// OnlyManager are the groups the manager sees and the rule does not find.
	OnlyInChain []string `json:"only_in_chain,omitempty"`
	OnlyManager []string `json:"only_manager,omitempty"`
}

// IsActiveDirectory reports whether the RootDSE announces Active
// Directory's capability (Samba's domain controller announces it too).
func (r *RootDSE) IsActiveDirectory() bool {
	return r != nil && contains(r.SupportedCapabilities, oidADCapability)
}

// inChain runs the groups.in-chain layer: on Active Directory, one search
// with the in-chain matching rule, compared with the groups the manager
// sees. It never runs against other servers, which do not have the rule.
func (p *serverProbe) inChain(ctx context.Context) bool {
	started := time.Now()
	groups := p.result.Groups
	if groups == nil || p.result.UserDN == "" {
		p.skip(LayerGroupsInChain, "no groups to compare", "")
		return true
	}
	if !p.result.root.IsActiveDirectory() {
		p.skip(LayerGroupsInChain, "the server does not announce Active Directory's capabilities in its RootDSE, so there is nothing to compare with", "")
		return true
	}
	c := report.Check{ID: LayerGroupsInChain}
	value, _ := EscapeFilterValue(p.result.UserDN)
	ic := &InChainResult{Filter: fmt.Sprintf("(member:%s:=%s)", oidInChain, value), Base: p.namingContextFor(p.result.UserDN)}
	c.AddEvidence("filter", ic.Filter)
	c.AddEvidence("base", ic.Base)
	c.AddEvidence("searched as", groups.SearchedAs)
	res, err := p.search(ctx, ic.Base, ic.Filter, []string{"1.1"})
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		f := describeLDAPError(err, p.tcp)
		addDiagnostic(&c, f)
		c.Status = report.Warn
		c.Summary = "the in-chain search failed, so the comparison is missing: " + f.summary
		c.Hint = "the groups layer above still shows what the manager sees"
		return p.record(c, started)
	}
	if len(res.Referrals) > 0 {
		c.AddEvidence("referrals (not followed)", strings.Join(res.Referrals, ", "))
	}
	chain := map[string]string{}
	for _, e := range res.Entries {
		ic.Groups = append(ic.Groups, e.DN)
		if key, ok := DNKey(e.DN); ok {
			chain[key] = e.DN
		}
	}
	sort.Strings(ic.Groups)
	manager := map[string]bool{}
	for _, dn := range groups.Groups {
		key, _ := DNKey(dn)
		manager[key] = true
		if _, ok := chain[key]; !ok {
			ic.OnlyManager = append(ic.OnlyManager, dn)
		}
	}
	deepest := 0
	unexplained := 0
	for key, dn := range chain {
		if manager[key] {
			continue
		}
		ic.OnlyInChain = append(ic.OnlyInChain, dn)
		if level, ok := groups.levelOf[key]; ok {
			deepest = max(deepest, level)
		} else {
			unexplained++
		}
	}
	sort.Strings(ic.OnlyInChain)
	groups.InChain = ic
	c.AddEvidence("groups by the in-chain rule", orNone(ic.Groups))

	if len(ic.OnlyInChain) == 0 && len(ic.OnlyManager) == 0 {
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("the in-chain rule finds the same %s the manager sees", plural(len(ic.Groups), "group"))
		return p.record(c, started)
	}
	c.Status = report.Warn
	var parts, hints []string
	if len(ic.OnlyInChain) > 0 {
		c.AddEvidence("only by the in-chain rule", strings.Join(ic.OnlyInChain, "; "))
		parts = append(parts, fmt.Sprintf("the in-chain rule also finds %s, which the manager does not see", groupNames(ic.OnlyInChain)))
		if deepest > 0 && unexplained == 0 {
			hints = append(hints, fmt.Sprintf("set --ldap-nested-levels %d for the manager to see them (the deepest is at level %d)", deepest, deepest))
		} else {
			hints = append(hints, "some of these groups are not reached through the membership attribute; check that the group entries carry it and that the service account may read them")
		}
	}
	if len(ic.OnlyManager) > 0 {
		c.AddEvidence("only by the manager's lookup", strings.Join(ic.OnlyManager, "; "))
		parts = append(parts, fmt.Sprintf("the manager sees %s, which the in-chain rule does not find (the membership attribute or filter lists more than the member attribute)", groupNames(ic.OnlyManager)))
	}
	c.Summary = strings.Join(parts, "; ")
	c.Hint = strings.Join(hints, "; ")
	return p.record(c, started)
}
