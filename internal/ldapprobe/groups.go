package ldapprobe

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/cfyauth/cfyauth/internal/report"
)

// maxNestingDepth is the deepest level of parent groups cfyauth reads,
// whatever the value of ldap_nested_levels. Tests lower it.
var maxNestingDepth = 16

// Bounds of the group lookup, whatever the value of ldap_nested_levels.
const (
	// maxGroups bounds the groups one user's lookup collects.
	maxGroups = 2000
	// maxBatch bounds the groups one search requests. A larger level is
	// split into several searches.
	maxBatch = 200
)

// How the first level of groups is found.
const (
	// GroupModeMemberOf reads the membership attribute of the user's entry,
	// and of each group's entry for the levels above.
	GroupModeMemberOf = "memberOf"
	// GroupModeSearch searches under ldap_group_dn with
	// ldap_group_member_filter, for the user and then for each group.
	GroupModeSearch = "search"
	// GroupModeEmpty is a membership attribute that is present but empty:
	// the manager maps the user to no group.
	GroupModeEmpty = "empty"
)

// GroupLevel is the groups first found at one level: level 1 holds the
// user's direct groups, level 2 their parent groups, and so on.
type GroupLevel struct {
	Level  int      `json:"level"`
	Groups []string `json:"groups"`
	// Lookup describes how the level was read.
	Lookup string `json:"lookup"`
	// Searches counts the LDAP searches of the level.
	Searches int `json:"searches"`
}

// GroupResult is the user's groups as the manager resolves them, and what
// lies beyond its ldap_nested_levels.
type GroupResult struct {
	Mode string `json:"mode"`
	// Attribute is ldap_attribute_group_membership.
	Attribute string `json:"attribute"`
	// NestedLevels is ldap_nested_levels as read; 1 means direct groups only.
	NestedLevels int `json:"nested_levels"`
	// SearchedAs names the identity the lookups ran as.
	SearchedAs string       `json:"searched_as"`
	Levels     []GroupLevel `json:"levels"`
	// Groups are the DNs the manager resolves (levels 1 to NestedLevels), as
	// the server sent them.
	Groups []string `json:"groups"`
	// Deeper are groups above ldap_nested_levels, which the manager does
	// not see; DeepestLevel is the level of the highest group found.
	Deeper       []string `json:"deeper,omitempty"`
	DeepestLevel int      `json:"deepest_level"`
	// Cycles lists each loop of groups that contain each other, as a path
	// that ends where it starts.
	Cycles [][]string `json:"cycles,omitempty"`
	// Unreadable are groups whose entries the lookup could not read, so
	// their parent groups are unknown.
	Unreadable []string `json:"unreadable,omitempty"`
	// Truncated is set when a bound stopped the lookup early.
	Truncated bool     `json:"truncated,omitempty"`
	Referrals []string `json:"referrals,omitempty"`
	// InChain is the Active Directory comparison, when it ran.
	InChain *InChainResult `json:"in_chain,omitempty"`

	// levelOf maps a DN key to the level the group was first found at.
	levelOf map[string]int
	// display maps a DN key to the DN as the server sent it.
	display map[string]string
	// parents maps a DN key to the keys of its parent groups.
	parents map[string][]string
}

// Seen reports whether the manager resolves the group dn (compared as a DN).
func (g *GroupResult) Seen(dn string) (string, int, bool) {
	key, _ := DNKey(dn)
	level, ok := g.levelOf[key]
	if !ok {
		return "", 0, false
	}
	return g.display[key], level, true
}

// NestingWords states how the manager reads a value of ldap_nested_levels.
func NestingWords(levels int) string {
	switch levels {
	case 1:
		return "1: direct groups only, no parent groups"
	case 2:
		return "2: direct groups and their parent groups"
	}
	return fmt.Sprintf("%d: direct groups and %d levels of parent groups above them", levels, levels-1)
}

// groupLookup walks the group graph for one user.
type groupLookup struct {
	p   *serverProbe
	res *GroupResult
	// failure is the first lookup error, and the level it happened at.
	failure      *ldapFailure
	failureLevel int
	failureWhat  string
	notes        []string
}

// groups runs the groups layer: the user's groups as the manager resolves
// them, up to ldap_nested_levels, and cfyauth's own look at the levels
// above, bounded by maxNestingDepth.
func (p *serverProbe) groups(ctx context.Context) bool {
	started := time.Now()
	s := p.opts.Settings
	entry := p.result.userEntry
	c := report.Check{ID: LayerGroups}
	if entry == nil {
		p.skip(LayerGroups, "no user entry to read the groups of", "")
		return true
	}
	res := &GroupResult{Attribute: s.AttributeGroupMembership, NestedLevels: s.NestedLevels,
		levelOf: map[string]int{}, display: map[string]string{}, parents: map[string][]string{}}
	p.result.Groups = res
	c.AddEvidence("ldap_nested_levels", fmt.Sprintf("%s (from %s)", NestingWords(s.NestedLevels), s.Sources[KeyNestedLevels]))

	if !p.bindForGroups(ctx, &c) {
		return p.record(c, started)
	}
	res.SearchedAs = p.groupIdentity()
	c.AddEvidence("searched as", res.SearchedAs)

	g := &groupLookup{p: p, res: res}
	g.run(ctx, entry)
	if ctx.Err() != nil {
		return false
	}
	g.finish()
	g.fill(&c)
	return p.record(c, started)
}

// bindForGroups makes sure the group lookups run as the manager's would:
// as the service account when one is set (the user's bind replaced it),
// else as the user.
func (p *serverProbe) bindForGroups(ctx context.Context, c *report.Check) bool {
	s := p.opts.Settings
	if !s.HasServiceAccount() || p.opts.LookupOnly {
		return true
	}
	name, _, err := serviceBindName(s)
	if err == nil {
		err = bounded(ctx, p.timeout(), p.tcp, func() error { return p.conn.Bind(name, s.Password.Reveal()) })
	}
	if err == nil {
		return true
	}
	f := describeLDAPError(err, p.tcp)
	addDiagnostic(c, f)
	c.Status = report.Fail
	c.Summary = fmt.Sprintf("the service account's bind before the group lookup failed: %s", f.reason())
	c.Hint = "the same bind passed a moment ago; check the server's logs"
	return false
}

// groupIdentity names the identity the group lookups run as.
func (p *serverProbe) groupIdentity() string {
	if p.opts.Settings.HasServiceAccount() {
		return "the service account " + p.opts.Settings.Username
	}
	return "the user " + p.opts.User
}

// run reads level 1 from the user's entry or a search, then one level of
// parent groups at a time until no new group appears or a bound is hit.
func (g *groupLookup) run(ctx context.Context, entry *ldap.Entry) {
	s := g.p.opts.Settings
	state, values := attributeState(entry, s.AttributeGroupMembership)
	var first []string
	level := GroupLevel{Level: 1}
	switch state {
	case "present":
		g.res.Mode = GroupModeMemberOf
		level.Lookup = fmt.Sprintf("%s of the user's entry", s.AttributeGroupMembership)
		first = values
	case "empty":
		g.res.Mode = GroupModeEmpty
		level.Lookup = fmt.Sprintf("%s of the user's entry is present but empty: the manager maps the user to no group", s.AttributeGroupMembership)
		g.res.Levels = append(g.res.Levels, level)
		return
	default:
		g.res.Mode = GroupModeSearch
		filter := renderMemberFilter(s, entry.DN)
		level.Lookup = fmt.Sprintf("search under %s with %s", g.p.rendering.GroupDN, filter)
		level.Searches = 1
		res, err := g.p.search(ctx, g.p.rendering.GroupDN, filter, []string{"1.1"})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			g.fail(err, 1, "the search for the user's groups")
			g.res.Levels = append(g.res.Levels, level)
			return
		}
		g.addReferrals(res.Referrals)
		for _, e := range res.Entries {
			first = append(first, e.DN)
		}
	}
	frontier := g.add(first, 1, "")
	level.Groups = g.displayAll(frontier)
	g.res.Levels = append(g.res.Levels, level)

	for depth := 2; len(frontier) > 0; depth++ {
		if depth > maxNestingDepth {
			g.res.Truncated = true
			g.notes = append(g.notes, fmt.Sprintf("cfyauth reads at most %d levels, so the parents of the groups at level %d were not looked up", maxNestingDepth, maxNestingDepth))
			return
		}
		next, lvl := g.parentsOf(ctx, frontier, depth)
		if ctx.Err() != nil {
			return
		}
		lvl.Groups = g.displayAll(next)
		if len(next) > 0 || lvl.Searches > 0 {
			g.res.Levels = append(g.res.Levels, lvl)
		}
		frontier = next
	}
}

// add records the groups found at a level and returns the keys of those
// not seen before. child, when set, is the key of the group whose parents
// they are.
func (g *groupLookup) add(dns []string, level int, child string) []string {
	var fresh []string
	for _, dn := range dns {
		key, ok := DNKey(dn)
		if !ok {
			g.notes = append(g.notes, fmt.Sprintf("%s is not a valid DN and is left out", quoteText(dn)))
			continue
		}
		if child != "" && !containsString(g.res.parents[child], key) {
			g.res.parents[child] = append(g.res.parents[child], key)
		}
		if _, seen := g.res.levelOf[key]; seen {
			continue
		}
		if len(g.res.levelOf) >= maxGroups {
			if !g.res.Truncated {
				g.notes = append(g.notes, fmt.Sprintf("cfyauth collects at most %d groups and stopped there", maxGroups))
			}
			g.res.Truncated = true
			continue
		}
		g.res.levelOf[key] = level
		g.res.display[key] = dn
		fresh = append(fresh, key)
	}
	return fresh
}

func (g *groupLookup) displayAll(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = g.res.display[k]
	}
	return out
}

// parentsOf reads the parent groups of the frontier, in as few searches as
// maxBatch allows, and returns the keys of the new ones.
func (g *groupLookup) parentsOf(ctx context.Context, frontier []string, depth int) ([]string, GroupLevel) {
	lvl := GroupLevel{Level: depth}
	var fresh []string
	for start := 0; start < len(frontier); start += maxBatch {
		end := min(start+maxBatch, len(frontier))
		var found []string
		var lookup string
		var searches int
		if g.res.Mode == GroupModeMemberOf {
			found, lookup, searches = g.parentsByAttribute(ctx, frontier[start:end], depth)
		} else {
			found, lookup, searches = g.parentsBySearch(ctx, frontier[start:end], depth)
		}
		if ctx.Err() != nil {
			return nil, lvl
		}
		lvl.Lookup = lookup
		lvl.Searches += searches
		fresh = append(fresh, found...)
	}
	return fresh, lvl
}

// parentsByAttribute reads the membership attribute of the groups' own
// entries, with one search per naming context (entryDN on most servers,
// distinguishedName on Active Directory).
func (g *groupLookup) parentsByAttribute(ctx context.Context, keys []string, depth int) ([]string, string, int) {
	attr := g.p.opts.Settings.AttributeGroupMembership
	dnAttr := "entryDN"
	if g.p.result.root.IsActiveDirectory() {
		dnAttr = "distinguishedName"
	}
	byBase := map[string][]string{}
	var bases []string
	for _, k := range keys {
		base := g.p.namingContextFor(g.res.display[k])
		if _, ok := byBase[base]; !ok {
			bases = append(bases, base)
		}
		byBase[base] = append(byBase[base], k)
	}
	var fresh []string
	searches := 0
	lookup := fmt.Sprintf("%s of the groups' entries, found by %s", attr, dnAttr)
	for _, base := range bases {
		group := byBase[base]
		var b strings.Builder
		b.WriteString("(|")
		for _, k := range group {
			value, _ := EscapeFilterValue(g.res.display[k])
			fmt.Fprintf(&b, "(%s=%s)", dnAttr, value)
		}
		b.WriteString(")")
		searches++
		res, err := g.p.search(ctx, base, b.String(), []string{attr})
		if ctx.Err() != nil {
			return nil, lookup, searches
		}
		if err != nil {
			g.fail(err, depth, "the search for the parent groups")
			continue
		}
		g.addReferrals(res.Referrals)
		entries := res.Entries
		if len(entries) == 0 {
			// The server may not index or even know the DN attribute:
			// read each group by its DN instead.
			lookup = fmt.Sprintf("%s of each group's entry, read by its DN (a search on %s found none)", attr, dnAttr)
			for _, k := range group {
				searches++
				e, err := g.p.readEntry(ctx, g.res.display[k], []string{attr})
				if ctx.Err() != nil {
					return nil, lookup, searches
				}
				if err == nil && e != nil {
					entries = append(entries, e)
				}
			}
		}
		returned := map[string]bool{}
		for _, e := range entries {
			child, _ := DNKey(e.DN)
			if _, asked := g.res.levelOf[child]; !asked {
				continue
			}
			returned[child] = true
			fresh = append(fresh, g.add(e.GetEqualFoldAttributeValues(attr), depth, child)...)
		}
		for _, k := range group {
			if !returned[k] {
				g.res.Unreadable = append(g.res.Unreadable, g.res.display[k])
			}
		}
	}
	return fresh, lookup, searches
}

// parentsBySearch searches under the group DN for the groups whose member
// filter matches any group of the frontier, in one filter.
func (g *groupLookup) parentsBySearch(ctx context.Context, keys []string, depth int) ([]string, string, int) {
	s := g.p.opts.Settings
	var b strings.Builder
	b.WriteString("(|")
	for _, k := range keys {
		b.WriteString(renderMemberFilter(s, g.res.display[k]))
	}
	b.WriteString(")")

	memberAttrs := filterAttributes(s.GroupMemberFilter, "object_dn")
	attrs := memberAttrs
	if len(attrs) == 0 {
		attrs = []string{"1.1"}
	}

	lookup := fmt.Sprintf("search under %s with %s for each group", g.p.rendering.GroupDN, s.GroupMemberFilter)
	res, err := g.p.search(ctx, g.p.rendering.GroupDN, b.String(), attrs)
	if ctx.Err() != nil {
		return nil, lookup, 1
	}
	if err != nil {
		g.fail(err, depth, "the search for the parent groups")
		return nil, lookup, 1
	}
	g.addReferrals(res.Referrals)

	asked := map[string]bool{}
	for _, k := range keys {
		asked[k] = true
	}
	var fresh []string
	for _, e := range res.Entries {
		// The member attribute tells which group of the frontier made the
		// entry match. Without one the edge is unknown.
		linked := false
		for _, a := range memberAttrs {
			for _, v := range e.GetEqualFoldAttributeValues(a) {
				if child, ok := DNKey(v); ok && asked[child] {
					fresh = append(fresh, g.add([]string{e.DN}, depth, child)...)
					linked = true
				}
			}
		}
		if !linked {
			fresh = append(fresh, g.add([]string{e.DN}, depth, "")...)
		}
	}
	return fresh, lookup, 1
}

func (g *groupLookup) fail(err error, level int, what string) {
	if g.failure != nil {
		return
	}
	f := describeLDAPError(err, g.p.tcp)
	g.failure = &f
	g.failureLevel = level
	g.failureWhat = what
}

func (g *groupLookup) addReferrals(refs []string) {
	for _, r := range refs {
		if !containsString(g.res.Referrals, r) {
			g.res.Referrals = append(g.res.Referrals, r)
		}
	}
}

// finish sorts the manager's groups from the deeper ones and finds cycles.
func (g *groupLookup) finish() {
	res := g.res
	keys := make([]string, 0, len(res.levelOf))
	for k := range res.levelOf {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := res.levelOf[keys[i]], res.levelOf[keys[j]]
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	res.Groups = []string{}
	for _, k := range keys {
		level := res.levelOf[k]
		res.DeepestLevel = max(res.DeepestLevel, level)
		if level <= res.NestedLevels {
			res.Groups = append(res.Groups, res.display[k])
		} else {
			res.Deeper = append(res.Deeper, res.display[k])
		}
	}
	for _, cycle := range findCycles(res.parents) {
		path := make([]string, len(cycle))
		for i, k := range cycle {
			path[i] = res.display[k]
		}
		res.Cycles = append(res.Cycles, path)
	}
}

// findCycles returns each loop of the child → parent graph once, as a path
// that starts and ends at the same group, in a stable order.
func findCycles(parents map[string][]string) [][]string {
	nodes := make([]string, 0, len(parents))
	for k := range parents {
		nodes = append(nodes, k)
	}
	sort.Strings(nodes)
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var cycles [][]string
	seen := map[string]bool{}

	var visit func(string)
	visit = func(n string) {
		state[n] = onStack
		stack = append(stack, n)
		next := append([]string(nil), parents[n]...)
		sort.Strings(next)
		for _, m := range next {
			switch state[m] {
			case unvisited:
				visit(m)
			case onStack:
				i := len(stack) - 1
				for stack[i] != m {
					i--
				}
				loop := append(append([]string(nil), stack[i:]...), m)
				members := append([]string(nil), stack[i:]...)
				sort.Strings(members)
				id := strings.Join(members, "\x00")
				if !seen[id] {
					seen[id] = true
					cycles = append(cycles, loop)
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}

	for _, n := range nodes {
		if state[n] == unvisited {
			visit(n)
		}
	}
	return cycles
}

// fill turns the lookup into the groups check.
func (g *groupLookup) fill(c *report.Check) {
	res := g.res
	s := g.p.opts.Settings
	switch res.Mode {
	case GroupModeMemberOf:
		c.AddEvidence("how groups are found", fmt.Sprintf("%s on the user's entry, and on each group's entry for the levels above", s.AttributeGroupMembership))
	case GroupModeSearch:
		c.AddEvidence("how groups are found", fmt.Sprintf("the user's entry has no %s, so the manager searches under %s with %s", s.AttributeGroupMembership, g.p.rendering.GroupDN, s.GroupMemberFilter))
	case GroupModeEmpty:
		c.AddEvidence("how groups are found", fmt.Sprintf("%s is present but empty: the manager maps the user to no group", s.AttributeGroupMembership))
	}
	for _, lvl := range res.Levels {
		who := "cfyauth only, above ldap_nested_levels"
		if lvl.Level <= res.NestedLevels {
			who = "the manager"
		}
		c.AddEvidence(fmt.Sprintf("level %d (%s; %s)", lvl.Level, who, plural(lvl.Searches, "search")),
			fmt.Sprintf("%s: %s", lvl.Lookup, orNone(lvl.Groups)))
	}
	c.AddEvidence("groups the manager sees", orNone(res.Groups))
	if len(res.Deeper) > 0 {
		c.AddEvidence("groups above ldap_nested_levels", strings.Join(res.Deeper, "; "))
	}
	for _, cycle := range res.Cycles {
		c.AddEvidence("cycle", strings.Join(cycle, " → "))
	}
	if len(res.Unreadable) > 0 {
		c.AddEvidence("groups whose entries could not be read", strings.Join(res.Unreadable, "; "))
	}
	if len(res.Referrals) > 0 {
		c.AddEvidence("referrals (not followed)", strings.Join(res.Referrals, ", "))
	}
	for _, n := range g.notes {
		c.AddEvidence("note", n)
	}

	if g.failure != nil {
		addDiagnostic(c, *g.failure)
		c.AddEvidence("failed", fmt.Sprintf("%s at level %d: %s", g.failureWhat, g.failureLevel, g.failure.summary))
		if g.failureLevel <= res.NestedLevels {
			c.Status = report.Fail
			c.Summary = fmt.Sprintf("%s failed at level %d: %s", g.failureWhat, g.failureLevel, g.failure.summary)
			c.Hint = g.failureHint()
			return
		}
	}

	var problems, hints []string
	if len(res.Deeper) > 0 {
		problems = append(problems, fmt.Sprintf("%d more %s above ldap_nested_levels %d (up to level %d)", len(res.Deeper), pluralNoun(len(res.Deeper), "group"), res.NestedLevels, res.DeepestLevel))
		hints = append(hints, fmt.Sprintf("set --ldap-nested-levels %d if the manager should see them", res.DeepestLevel))
	}
	if len(res.Cycles) > 0 {
		problems = append(problems, fmt.Sprintf("%s of groups that contain each other", plural(len(res.Cycles), "cycle")))
		hints = append(hints, "break the cycle in the directory; the manager's lookups go round it until ldap_nested_levels runs out")
	}
	if len(res.Unreadable) > 0 {
		problems = append(problems, fmt.Sprintf("%s could not be read", plural(len(res.Unreadable), "group entry")))
		hints = append(hints, fmt.Sprintf("give %s read access to the group entries", res.SearchedAs))
	}
	if res.Truncated {
		problems = append(problems, "the lookup stopped at a bound")
	}
	if strings.Contains(s.GroupMemberFilter, oidInChain) && !g.p.result.root.IsActiveDirectory() {
		problems = append(problems, "ldap_group_member_filter uses Active Directory's in-chain matching rule, which this server does not announce")
		hints = append(hints, "use a plain member filter such as (member={object_dn}) on this server")
	}
	if g.failure != nil {
		problems = append(problems, fmt.Sprintf("the lookup above ldap_nested_levels failed at level %d", g.failureLevel))
	}

	c.Status = report.Pass
	c.Summary = fmt.Sprintf("the manager sees %s: %s", plural(len(res.Groups), "group"), groupNames(res.Groups))
	if len(res.Groups) == 0 {
		c.Status = report.Warn
		c.Summary = "the manager sees no group for this user: it logs in without any tenant"
		hints = append(hints, g.noGroupHint())
	}
	if len(problems) > 0 {
		c.Status = report.Warn
		c.Summary += "; " + strings.Join(problems, "; ")
	}
	c.Hint = strings.Join(hints, "; ")
}

// failureHint names the next step after a failed group search.
func (g *groupLookup) failureHint() string {
	f := g.failure
	switch {
	case f.code == ldap.LDAPResultNoSuchObject:
		return fmt.Sprintf("the group DN %s does not exist on this server: set --ldap-group-dn to where the groups are", g.p.rendering.GroupDN)
	case f.code == ldap.LDAPResultFilterError:
		return "fix --ldap-group-member-filter; run 'cfyauth ldap show --user NAME' to see it rendered"
	case f.code == ldap.LDAPResultInsufficientAccessRights:
		return fmt.Sprintf("give %s read access to the groups", g.res.SearchedAs)
	case f.code == ldap.LDAPResultReferral:
		return "the group DN lies in another naming context; set --ldap-group-dn inside this server's naming contexts"
	case f.network:
		return "the connection broke during the group search; check the server's logs"
	}
	return "check --ldap-group-dn and --ldap-group-member-filter"
}

// noGroupHint explains an empty group list.
func (g *groupLookup) noGroupHint() string {
	s := g.p.opts.Settings
	switch g.res.Mode {
	case GroupModeSearch:
		return fmt.Sprintf("no group under %s matches %s; check --ldap-group-dn and --ldap-group-member-filter (the user's DN is %s)",
			g.p.rendering.GroupDN, renderMemberFilter(s, g.p.result.UserDN), g.p.result.UserDN)
	case GroupModeEmpty:
		return fmt.Sprintf("add the user to a group, or point --ldap-attribute-group-membership at the attribute that lists its groups")
	}
	if g.p.result.root.IsActiveDirectory() {
		return "Active Directory leaves the primary group (such as Domain Users) out of memberOf: add the user to a group that a Cloudify user group maps"
	}
	return "add the user to a group that a Cloudify user group maps"
}

// groupNames lists groups by their first RDN value, for summaries.
func groupNames(dns []string) string {
	if len(dns) == 0 {
		return "none"
	}
	names := make([]string, 0, len(dns))
	for i, dn := range dns {
		if i == 6 {
			names = append(names, fmt.Sprintf("and %d more", len(dns)-i))
			break
		}
		names = append(names, rdnValue(dn))
	}
	return strings.Join(names, ", ")
}

// renderMemberFilter renders ldap_group_member_filter for one object DN,
// escaped as a filter value.
func renderMemberFilter(s *Settings, objectDN string) string {
	text, _, err := renderTemplate(KeyGroupMemberFilter, s.GroupMemberFilter, map[string]fieldValue{
		"object_dn": {text: objectDN, escape: EscapeFilterValue},
	})
	if err != nil {
		return s.GroupMemberFilter
	}
	return text
}

// filterAttributes returns the attributes whose equality clauses in the
// filter template hold the field, such as member for (member={object_dn}).
func filterAttributes(template, field string) []string {
	const marker = "cfyauthfieldmarker"
	text, _, err := renderTemplate(KeyGroupMemberFilter, template, map[string]fieldValue{field: {text: marker}})
	if err != nil {
		return nil
	}
	packet, err := ldap.CompileFilter(text)
	if err != nil {
		return nil
	}
	var attrs []string
	var walk func(*ber.Packet)
	walk = func(pk *ber.Packet) {
		switch pk.Tag {
		case ldap.FilterAnd, ldap.FilterOr, ldap.FilterNot:
			for _, child := range pk.Children {
				walk(child)
			}
		case ldap.FilterEqualityMatch:
			if len(pk.Children) == 2 && strings.Contains(fmt.Sprint(pk.Children[1].Value), marker) {
				attr := fmt.Sprint(pk.Children[0].Value)
				if !containsFold(attrs, attr) {
					attrs = append(attrs, attr)
				}
			}
		}
	}
	walk(packet)
	return attrs
}

// readEntry reads one entry by its DN with a base-object search.
func (p *serverProbe) readEntry(ctx context.Context, dn string, attrs []string) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(p.timeout()/time.Second), false,
		"(objectClass=*)", attrs, nil)
	var res *ldap.SearchResult
	err := bounded(ctx, p.timeout(), p.tcp, func() error {
		var err error
		res, err = p.conn.Search(req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(res.Entries) == 0 {
		return nil, errors.New("no entry")
	}
	return res.Entries[0], nil
}

// namingContextFor returns the naming context that holds dn, else the base
// DN.
func (p *serverProbe) namingContextFor(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err == nil && p.result.root != nil {
		if nc := namingContextOf(parsed, p.result.root.NamingContexts); nc != "" {
			return nc
		}
	}
	return p.opts.Settings.BaseDN
}

// plural writes a count with its noun, such as "1 group" or "3 groups".
func plural(n int, noun string) string {
	return fmt.Sprintf("%d %s", n, pluralNoun(n, noun))
}

// pluralNoun returns the noun in the form for n.
func pluralNoun(n int, noun string) string {
	switch {
	case n == 1:
		return noun
	case strings.HasSuffix(noun, "ch"):
		return noun + "es"
	case strings.HasSuffix(noun, "ry"):
		return strings.TrimSuffix(noun, "y") + "ies"
	}
	return noun + "s"
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
