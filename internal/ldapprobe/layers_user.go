package ldapprobe

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/cfyauth/cfyauth/internal/report"
)

// maxBisectClauses bounds the extra searches that explain an empty result.
const maxBisectClauses = 8

// userLayers runs user-search, user-bind and attributes in the order the
// manager does. With a service account it searches first and then binds as
// the user. Without one it binds as the user and then searches with the
// user's own rights.
func (p *serverProbe) userLayers(ctx context.Context) {
	if p.opts.User == "" {
		// One hint is enough: the report lists hints after the table.
		hint := "pass --user NAME to test a login"
		for _, id := range p.plan[len(p.plan)-p.userLayerCount():] {
			p.skip(id, "no user given", hint)
			hint = ""
		}
		return
	}
	r, err := Render(p.opts.Settings, p.opts.User, "")
	if err != nil {
		p.record(report.Check{ID: p.plan[len(p.plan)-p.userLayerCount()], Status: report.Fail, Summary: err.Error(),
			Hint: "fix the template; run 'cfyauth ldap show --user NAME' to see the rendering"}, time.Now())
		return
	}
	p.rendering = r

	if p.opts.Settings.HasServiceAccount() {
		if !p.userSearch(ctx) {
			return
		}
		if p.opts.LookupOnly {
			p.skip(LayerUserBind, "no user bind (--lookup-only)", "")
		} else if !p.userBind(ctx) {
			return
		}
	} else {
		if p.opts.LookupOnly {
			p.skip(LayerUserBind, "no user bind (--lookup-only)", "")
			p.skip(LayerUserSearch, "without a service account the search runs with the user's own bind, which --lookup-only leaves out",
				"set --ldap-username to look the user up without their password")
			return
		}
		if !p.userBind(ctx) {
			return
		}
		if !p.userSearch(ctx) {
			return
		}
	}
	if !p.attributes() {
		return
	}
	p.groupLayers(ctx)
}

// userLayerCount is the number of layers at the end of the plan that need
// a user: the search, bind and attributes and the group layers after them.
func (p *serverProbe) userLayerCount() int {
	for i, id := range p.plan {
		if id == LayerUserSearch || id == LayerUserBind {
			return len(p.plan) - i
		}
	}
	return 0
}

// groupLayers runs groups, then the in-chain comparison and the preview
// when they are planned.
func (p *serverProbe) groupLayers(ctx context.Context) {
	if !p.groups(ctx) {
		return
	}
	if containsString(p.plan, LayerGroupsInChain) && !p.inChain(ctx) {
		return
	}
	if p.opts.Preview != nil {
		p.preview()
	}
}

// userAttributes are requested in the user search: every user attribute
// plus the mapped ones by name, since memberOf is operational on OpenLDAP.
func (p *serverProbe) userAttributes() []string {
	s := p.opts.Settings
	attrs := []string{"*"}
	for _, a := range []string{s.AttributeUID, s.AttributeEmail, s.AttributeFirstName, s.AttributeLastName, s.AttributeGroupMembership} {
		if a != "" && !containsFold(attrs, a) {
			attrs = append(attrs, a)
		}
	}
	return attrs
}

// search runs one subtree search within the step timeout, with the paged
// results control when the server supports it.
func (p *serverProbe) search(ctx context.Context, base, filter string, attrs []string) (*ldap.SearchResult, error) {
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, int(p.timeout()/time.Second), false,
		filter, attrs, nil)
	var res *ldap.SearchResult
	err := bounded(ctx, p.timeout(), p.tcp, func() error {
		var err error
		if p.result.root.Supports(oidPagedResults) {
			res, err = p.conn.SearchWithPaging(req, 500)
		} else {
			res, err = p.conn.Search(req)
		}
		return err
	})
	return res, err
}

// userSearch runs the rendered user filter under the base DN.
func (p *serverProbe) userSearch(ctx context.Context) bool {
	started := time.Now()
	s := p.opts.Settings
	r := p.rendering
	c := report.Check{ID: LayerUserSearch}
	c.AddEvidence("base DN", s.BaseDN)
	c.AddEvidence("filter", r.UserFilter)
	c.AddEvidence("searched as", p.boundAs())
	c.AddEvidence("paged results", yesNo(p.result.root.Supports(oidPagedResults)))

	res, err := p.search(ctx, s.BaseDN, r.UserFilter, p.userAttributes())
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		return p.record(p.searchFailure(c, err, res), started)
	}
	local, foreign := classifyReferrals(res.Referrals, p.result.root)
	if len(local) > 0 {
		c.AddEvidence("referrals to this server's other naming contexts (not followed)", strings.Join(local, ", "))
	}
	if len(foreign) > 0 {
		c.AddEvidence("referrals to other domains (not followed)", strings.Join(foreign, ", "))
	}
	switch len(res.Entries) {
	case 0:
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("no entry matches %s under %s", r.UserFilter, s.BaseDN)
		c.Hint = p.bisect(ctx, &c)
		if ctx.Err() != nil {
			return false
		}
	case 1:
		entry := res.Entries[0]
		p.result.userEntry = entry
		p.result.UserDN = entry.DN
		c.AddEvidence("found DN", entry.DN)
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("found %s", entry.DN)
	default:
		entry := res.Entries[0]
		p.result.userEntry = entry
		p.result.UserDN = entry.DN
		dns := make([]string, 0, len(res.Entries))
		for _, e := range res.Entries {
			dns = append(dns, e.DN)
		}
		c.AddEvidence("found DNs", strings.Join(dns, "; "))
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("%d entries match the filter; which one the manager takes is not documented", len(res.Entries))
		c.Hint = "make --ldap-user-filter match one entry per user name"
	}
	switch {
	case len(foreign) > 0 && c.Status == report.Fail:
		c.Hint = gcHint(s.BaseDN) + "; " + c.Hint
	case len(foreign) > 0:
		c.Status = report.Warn
		c.Hint = strings.TrimPrefix(c.Hint+"; "+gcHint(s.BaseDN), "; ")
	case len(local) > 0:
		c.AddEvidence("note", "the referrals point at partitions of this server (configuration, schema, DNS zones) that hold no users; neither cfyauth nor the manager follows them")
	}
	return p.record(c, started)
}

// gcHint suggests the global catalog for a base DN whose subtree other
// domains hold parts of.
func gcHint(base string) string {
	return fmt.Sprintf("the base DN %s spans domains this server only refers to, and the manager does not follow referrals: "+
		"search the global catalog instead (ldap://HOST:3268 or ldaps://HOST:3269 on a domain controller), which holds the users of every domain, "+
		"or set --ldap-base-dn to the user's own domain", base)
}

// classifyReferrals sorts referral URLs into those that name one of this
// server's own naming contexts (on Active Directory: the configuration,
// schema and DNS partitions below the domain root) and those that name a
// DN the server does not hold, such as a child domain.
func classifyReferrals(refs []string, root *RootDSE) (local, foreign []string) {
	for _, ref := range refs {
		if root != nil && referralIsLocal(ref, root.NamingContexts) {
			local = append(local, ref)
		} else {
			foreign = append(foreign, ref)
		}
	}
	return local, foreign
}

func referralIsLocal(ref string, contexts []string) bool {
	u, err := url.Parse(ref)
	if err != nil {
		return false
	}
	dn, err := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/"))
	if err != nil || dn == "" {
		return false
	}
	for _, nc := range contexts {
		if SameDN(dn, nc) {
			return true
		}
	}
	return false
}

// boundAs names the identity the connection is bound as.
func (p *serverProbe) boundAs() string {
	if p.opts.Settings.HasServiceAccount() {
		return "the service account " + p.opts.Settings.Username
	}
	return "the user " + p.opts.User
}

// searchFailure explains a user search that ended with an error.
func (p *serverProbe) searchFailure(c report.Check, err error, res *ldap.SearchResult) report.Check {
	f := describeLDAPError(err, p.tcp)
	addDiagnostic(&c, f)
	c.Status = report.Fail
	c.Summary = "the user search failed: " + f.summary
	switch {
	case f.code == ldap.LDAPResultReferral:
		urls := referralsOf(err)
		c.AddEvidence("referral (not followed)", orNone(urls))
		c.Summary = "the server answered the user search with a referral, which the manager does not follow"
		c.Hint = "set --ldap-base-dn to a naming context this server holds (for Active Directory forests, the global catalog port 3268/3269)"
	case f.code == ldap.LDAPResultNoSuchObject:
		var le *ldap.Error
		if errors.As(err, &le) && le.MatchedDN != "" {
			c.AddEvidence("matched DN", le.MatchedDN)
		}
		c.Summary = fmt.Sprintf("the base DN %s does not exist, or %s may not see it: %s", p.opts.Settings.BaseDN, p.boundAs(), f.summary)
		c.Hint = "check --ldap-base-dn and the read rights of the account that searches"
	case f.code == ldap.LDAPResultInsufficientAccessRights:
		c.Hint = "give the account that searches read access to the users"
	case f.code == ldap.LDAPResultSizeLimitExceeded:
		if res != nil {
			c.AddEvidence("entries before the limit", len(res.Entries))
		}
		c.Summary = "the user search hit the server's size limit: the filter matches many entries"
		c.Hint = "make --ldap-user-filter match one entry per user name"
	case f.code == ldap.LDAPResultFilterError:
		c.Hint = "fix --ldap-user-filter; run 'cfyauth ldap show --user NAME' to see the rendered filter"
	case f.network:
		c.Hint = "the connection broke during the search; check the server's logs and any load balancer between"
	}
	return c
}

// bisect explains an empty user search: it re-runs the search with only
// the clauses that hold the user name, then tests each other clause, and
// finally searches from every naming context. It records what it learnt as
// evidence and returns the hint.
func (p *serverProbe) bisect(ctx context.Context, c *report.Check) string {
	s := p.opts.Settings
	userClauses, extraClauses, err := splitFilter(s.UserFilter, p.opts.User)
	if err != nil || len(userClauses) == 0 {
		return "check --ldap-user-filter and --ldap-base-dn, and that the account that searches may read the users"
	}
	core := userClauses[0]
	if len(userClauses) > 1 {
		core = "(|" + strings.Join(userClauses, "") + ")"
	}
	attrs := []string{"1.1"}

	if len(extraClauses) > 0 {
		res, err := p.search(ctx, s.BaseDN, core, attrs)
		if err == nil && len(res.Entries) > 0 {
			c.AddEvidence("found without the extra clauses", res.Entries[0].DN)
			var excluding []string
			for i, clause := range extraClauses {
				if i == maxBisectClauses {
					break
				}
				res, err := p.search(ctx, s.BaseDN, "(&"+core+clause+")", attrs)
				if err == nil && len(res.Entries) == 0 {
					excluding = append(excluding, clause)
				}
			}
			if len(excluding) > 0 {
				c.AddEvidence("excluded by", strings.Join(excluding, " "))
				c.Summary = fmt.Sprintf("the user exists (%s) but the filter clause %s excludes it", res.Entries[0].DN, strings.Join(excluding, " and "))
				return "change --ldap-user-filter so that its extra clauses match the user's entry"
			}
			return "the user matches each clause alone but not the whole filter; check how --ldap-user-filter combines them"
		}
	}

	root := p.result.root
	if root != nil {
		baseDN, _ := ldap.ParseDN(s.BaseDN)
		for _, nc := range root.NamingContexts {
			ncDN, err := ldap.ParseDN(nc)
			if err != nil || (baseDN != nil && ncDN.EqualFold(baseDN)) {
				continue
			}
			res, err := p.search(ctx, nc, core, attrs)
			if err == nil && len(res.Entries) > 0 {
				c.AddEvidence("found under the naming context", fmt.Sprintf("%s (at %s)", nc, res.Entries[0].DN))
				c.Summary = fmt.Sprintf("the user is at %s, outside the base DN %s", res.Entries[0].DN, s.BaseDN)
				return fmt.Sprintf("set --ldap-base-dn to a DN that contains %s", res.Entries[0].DN)
			}
		}
	}
	c.AddEvidence("searched without the extra clauses", core)
	return fmt.Sprintf("no entry matches %s anywhere %s may read: check the user name and --ldap-attribute-uid / --ldap-user-filter", core, p.boundAs())
}

// splitFilter compiles the user filter with a marker in place of the user
// name and sorts its leaf clauses into those that test the user name and
// the others. Clauses come back as filter text with the real, escaped name.
func splitFilter(template, username string) (user, extra []string, err error) {
	const marker = "cfyauthusernamemarker"
	text, _, err := renderTemplate(KeyUserFilter, template, map[string]fieldValue{
		"username":  {text: marker},
		"base_dn":   {text: ""},
		"domain_dn": {text: ""},
		"group_dn":  {text: ""},
	})
	if err != nil {
		return nil, nil, err
	}
	packet, err := ldap.CompileFilter(text)
	if err != nil {
		return nil, nil, err
	}
	escaped, _ := EscapeFilterValue(username)
	var walk func(*ber.Packet)
	walk = func(pk *ber.Packet) {
		switch pk.Tag {
		case ldap.FilterAnd, ldap.FilterOr, ldap.FilterNot:
			if pk.Tag != ldap.FilterNot {
				for _, child := range pk.Children {
					walk(child)
				}
				return
			}
		}
		clause, err := ldap.DecompileFilter(pk)
		if err != nil {
			return
		}
		if strings.Contains(clause, marker) {
			user = append(user, strings.ReplaceAll(clause, marker, escaped))
		} else {
			extra = append(extra, clause)
		}
	}
	walk(packet)
	return user, extra, nil
}

// userBind binds as the user with the rendered bind name.
func (p *serverProbe) userBind(ctx context.Context) bool {
	started := time.Now()
	r := p.rendering
	c := report.Check{ID: LayerUserBind}
	c.AddEvidence("bind name", r.BindName)
	c.AddEvidence("bind name from", "ldap_bind_format")
	if p.result.UserDN != "" {
		c.AddEvidence("DN found by the search", p.result.UserDN)
	}
	if p.opts.UserPassword == "" {
		c.Status = report.Fail
		c.Summary = "empty password refused before binding: LDAP servers treat a simple bind with an empty password as unauthenticated and report success"
		c.Hint = "give the user's real password"
		return p.record(c, started)
	}
	mismatch := p.dnMismatch()
	failure := p.bindAs(ctx, &c, "the user", "the user "+p.opts.User, r.BindName, p.opts.UserPassword, fmt.Sprintf("check the password of %s", p.opts.User))
	if ctx.Err() != nil {
		return false
	}
	if failure != nil {
		f := *failure
		if f.code == ldap.LDAPResultInvalidCredentials && (f.ad == nil || f.ad.passwordOrName()) {
			switch {
			case mismatch:
				c.Summary = fmt.Sprintf("ldap_bind_format renders %s, but the user's entry is %s: the server rejects a bind name that does not exist with %s",
					r.BindName, p.result.UserDN, f.reason())
				c.Hint = "set --ldap-bind-format so that it renders the entry's DN (or its user principal name on Active Directory)"
			case p.opts.Settings.HasServiceAccount() && p.result.UserDN != "":
				c.Summary = fmt.Sprintf("the user's password was rejected: %s (the bind name matches the entry the search found)", f.reason())
				c.Hint = fmt.Sprintf("check the password of %s, and whether the account is locked or expired", p.opts.User)
			case !p.opts.Settings.HasServiceAccount():
				c.Summary = fmt.Sprintf("the user's bind as %s failed: %s: either the password is wrong or no entry has this name", r.BindName, f.reason())
				c.Hint = "set a service account (--ldap-username) so cfyauth can search for the user and tell these apart"
			}
		}
		return p.record(c, started)
	}
	p.whoAmI(ctx, &c)
	c.Status = report.Pass
	c.Summary = fmt.Sprintf("user %s bound as %s", p.opts.User, r.BindName)
	if mismatch {
		c.Status = report.Warn
		c.Summary = fmt.Sprintf("user %s bound as %s, but the search found %s", p.opts.User, r.BindName, p.result.UserDN)
		c.Hint = "the manager binds with the rendered name but reads the attributes of the entry it found; make both the same entry"
	}
	return p.record(c, started)
}

// dnMismatch reports whether the rendered bind DN and the DN the search
// found are different entries. It is false when either is unknown or the
// bind name is not a DN.
func (p *serverProbe) dnMismatch() bool {
	if p.result.UserDN == "" || !p.rendering.BindIsDN {
		return false
	}
	found, err1 := ldap.ParseDN(p.result.UserDN)
	bind, err2 := ldap.ParseDN(p.rendering.BindName)
	if err1 != nil || err2 != nil {
		return false
	}
	return !found.EqualFold(bind)
}

// attributes reports the mapped attributes of the user's entry: the uid is
// required, the others may be missing or empty.
func (p *serverProbe) attributes() bool {
	started := time.Now()
	s := p.opts.Settings
	entry := p.result.userEntry
	c := report.Check{ID: LayerAttributes, Status: report.Pass}
	if entry == nil {
		p.skip(LayerAttributes, "no user entry to read", "")
		return true
	}
	var required, optional []string
	var hints []string
	type mapped struct {
		key, flag, attr string
		alternatives    []string
	}
	for _, m := range []mapped{
		{KeyAttributeUID, "ldap-attribute-uid", s.AttributeUID, []string{"uid", "sAMAccountName", "cn"}},
		{KeyAttributeEmail, "ldap-attribute-email", s.AttributeEmail, []string{"mail", "email", "userPrincipalName"}},
		{KeyAttributeFirstName, "ldap-attribute-first-name", s.AttributeFirstName, []string{"givenName"}},
		{KeyAttributeLastName, "ldap-attribute-last-name", s.AttributeLastName, []string{"sn", "surname"}},
	} {
		state, values := attributeState(entry, m.attr)
		c.AddEvidence(fmt.Sprintf("%s (%s)", m.key, m.attr), describeState(state, values))
		if state == "present" {
			continue
		}
		problem := fmt.Sprintf("%s %s", m.attr, state)
		for _, alt := range m.alternatives {
			if !strings.EqualFold(alt, m.attr) {
				if st, _ := attributeState(entry, alt); st == "present" {
					hints = append(hints, fmt.Sprintf("the entry has %s: set --%s %s", alt, m.flag, alt))
					break
				}
			}
		}
		if m.key == KeyAttributeUID {
			required = append(required, problem)
			c.Status = report.Fail
		} else {
			optional = append(optional, problem)
			if c.Status == report.Pass {
				c.Status = report.Warn
			}
		}
	}
	if uid := entry.GetEqualFoldAttributeValue(s.AttributeUID); uid != "" && uid != p.opts.User {
		c.AddEvidence("note", fmt.Sprintf("the manager names the user after %s: %q, not the login name %q", s.AttributeUID, uid, p.opts.User))
	}
	state, values := attributeState(entry, s.AttributeGroupMembership)
	c.AddEvidence(fmt.Sprintf("%s (%s)", KeyAttributeGroupMembership, s.AttributeGroupMembership), describeState(state, values))
	switch state {
	case "missing":
		c.AddEvidence("group lookup", fmt.Sprintf("the manager searches %s with %s", p.rendering.GroupDN, p.groupFilterFor(entry.DN)))
	case "empty":
		c.AddEvidence("group lookup", "present but empty: the manager maps the user to no group")
	}

	switch c.Status {
	case report.Pass:
		c.Summary = "the uid, e-mail, first and last name attributes are present"
	case report.Warn:
		c.Summary = "optional attributes are not set: " + strings.Join(optional, ", ")
		c.Hint = "the manager leaves those fields empty"
	default:
		c.Summary = "the user's entry lacks the attribute the manager requires: " + strings.Join(required, ", ")
		if len(optional) > 0 {
			c.Summary += "; optional attributes are not set: " + strings.Join(optional, ", ")
		}
		c.Hint = "set --ldap-attribute-uid to the attribute that holds the user name"
	}
	if len(hints) > 0 {
		c.Hint = strings.Join(hints, "; ")
	}
	return p.record(c, started)
}

// groupFilterFor renders the group member filter for the user's DN.
func (p *serverProbe) groupFilterFor(dn string) string {
	r, err := Render(p.opts.Settings, p.opts.User, dn)
	if err != nil {
		return p.opts.Settings.GroupMemberFilter
	}
	return r.GroupMemberFilter
}

// attributeState tells whether an attribute is present with a value,
// present but empty, or missing.
func attributeState(e *ldap.Entry, name string) (string, []string) {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			for _, v := range a.Values {
				if strings.TrimSpace(v) != "" {
					return "present", a.Values
				}
			}
			return "empty", nil
		}
	}
	return "missing", nil
}

func describeState(state string, values []string) string {
	if state != "present" {
		return state
	}
	if len(values) > 3 {
		return fmt.Sprintf("%s (and %d more)", strings.Join(values[:3], "; "), len(values)-3)
	}
	return strings.Join(values, "; ")
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}
