package ldapprobe

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/cfyauth/cfyauth/internal/report"
)

// RootDSE is the content of the server's root entry.
type RootDSE struct {
	NamingContexts        []string `json:"naming_contexts"`
	DefaultNamingContext  string   `json:"default_naming_context,omitempty"`
	Vendor                string   `json:"vendor,omitempty"`
	VendorVersion         string   `json:"vendor_version,omitempty"`
	SupportedLDAPVersions []string `json:"supported_ldap_versions,omitempty"`
	SupportedControls     []string `json:"supported_controls,omitempty"`
	SupportedExtensions   []string `json:"supported_extensions,omitempty"`
	SupportedCapabilities []string `json:"supported_capabilities,omitempty"`
}

// rootDSEAttributes are requested explicitly because most are operational.
var rootDSEAttributes = []string{"namingContexts", "defaultNamingContext", "vendorName", "vendorVersion",
	"supportedLDAPVersion", "supportedControl", "supportedExtension", "supportedCapabilities", "objectClass"}

func parseRootDSE(e *ldap.Entry) *RootDSE {
	r := &RootDSE{
		NamingContexts:        e.GetAttributeValues("namingContexts"),
		DefaultNamingContext:  e.GetAttributeValue("defaultNamingContext"),
		Vendor:                e.GetAttributeValue("vendorName"),
		VendorVersion:         e.GetAttributeValue("vendorVersion"),
		SupportedLDAPVersions: e.GetAttributeValues("supportedLDAPVersion"),
		SupportedControls:     e.GetAttributeValues("supportedControl"),
		SupportedExtensions:   e.GetAttributeValues("supportedExtension"),
		SupportedCapabilities: e.GetAttributeValues("supportedCapabilities"),
	}
	if r.Vendor == "" {
		switch {
		case contains(r.SupportedCapabilities, oidADCapability):
			r.Vendor = "Active Directory (or a compatible server)"
		case contains(e.GetAttributeValues("objectClass"), "OpenLDAProotDSE"):
			r.Vendor = "OpenLDAP"
		}
	}
	return r
}

// Supports reports whether the server lists oid as a control or extension.
func (r *RootDSE) Supports(oid string) bool {
	return r != nil && (contains(r.SupportedControls, oid) || contains(r.SupportedExtensions, oid))
}

// checkRootDSE reads the root entry anonymously. A server that hides it is
// a warning; a server that does not respond to LDAP at all fails here.
func (p *serverProbe) checkRootDSE(ctx context.Context) bool {
	started := time.Now()
	var res *ldap.SearchResult
	err := bounded(ctx, p.timeout(), p.tcp, func() error {
		var err error
		res, err = p.conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", rootDSEAttributes, nil))
		return err
	})
	if ctx.Err() != nil {
		return false
	}
	c := report.Check{ID: LayerRootDSE}
	if err != nil {
		f := describeLDAPError(err, p.tcp)
		if !f.network {
			c.Status = report.Warn
			c.Summary = "the server does not show its RootDSE anonymously: " + f.summary
			c.Hint = "naming contexts and capabilities are unknown, so the base-dn check is skipped"
			addDiagnostic(&c, f)
			return p.record(c, started)
		}
		c.Status = report.Fail
		c.Summary = "no LDAP answer to a RootDSE search: " + f.summary
		c.Hint = "check that the port serves LDAP"
		if !p.url.TLS() && !p.opts.StartTLS && speaksTLS(ctx, p.opts.Dialer, p.url.Address(), p.url.Host, p.remaining(started)) {
			c.Summary = fmt.Sprintf("port %s expects TLS from the first byte (ldaps), but the URL says ldap://", p.url.Port)
			c.Hint = fmt.Sprintf("use ldaps://%s with --ldap-ca-path", hostPort(p.url))
		}
		return p.record(c, started)
	}
	if len(res.Entries) == 0 {
		c.Status = report.Warn
		c.Summary = "the RootDSE search returned no entry"
		c.Hint = "naming contexts and capabilities are unknown, so the base-dn check is skipped"
		return p.record(c, started)
	}
	root := parseRootDSE(res.Entries[0])
	p.result.root = root
	c.Status = report.Pass
	vendor := root.Vendor
	if vendor == "" {
		vendor = "vendor not shown"
	}
	c.Summary = fmt.Sprintf("%s; naming contexts: %s", vendor, orNone(root.NamingContexts))
	c.AddEvidence("naming contexts", orNone(root.NamingContexts))
	if root.DefaultNamingContext != "" {
		c.AddEvidence("default naming context", root.DefaultNamingContext)
	}
	if root.VendorVersion != "" {
		c.AddEvidence("vendor version", root.VendorVersion)
	}
	c.AddEvidence("LDAP versions", orNone(root.SupportedLDAPVersions))
	c.AddEvidence("StartTLS offered", yesNo(contains(root.SupportedExtensions, startTLSOID)))
	c.AddEvidence("paged results supported", yesNo(root.Supports(oidPagedResults)))
	c.AddEvidence("Who am I? supported", yesNo(root.Supports(oidWhoAmI)))
	c.AddEvidence("supported controls", orNone(root.SupportedControls))
	c.AddEvidence("supported extensions", orNone(root.SupportedExtensions))
	return p.record(c, started)
}

// checkBaseDN predicts whether a search under the base DN stays on this
// server: the base must lie inside one of its naming contexts, or the
// server answers with a referral (which the manager does not follow) or
// noSuchObject.
func (p *serverProbe) checkBaseDN() bool {
	started := time.Now()
	base := p.opts.Settings.BaseDN
	c := report.Check{ID: LayerBaseDN}
	c.AddEvidence("base DN", base)
	root := p.result.root
	if base == "" {
		c.Status = report.Fail
		c.Summary = "the base DN is empty"
		c.Hint = "set --ldap-domain (the base DN defaults to its dc= parts) or --ldap-base-dn"
		return p.record(c, started)
	}
	baseDN, err := ldap.ParseDN(base)
	if err != nil {
		c.Status = report.Fail
		c.Summary = fmt.Sprintf("the base DN %s is not a valid DN: %v", quoteText(base), err)
		c.Hint = "fix --ldap-base-dn (or --ldap-domain)"
		return p.record(c, started)
	}
	if root == nil || len(root.NamingContexts) == 0 {
		c.Status = report.Skip
		c.Summary = "the server lists no naming contexts to compare the base DN with"
		return p.record(c, started)
	}
	c.AddEvidence("naming contexts", orNone(root.NamingContexts))
	if nc := namingContextOf(baseDN, root.NamingContexts); nc != "" {
		c.Status = report.Pass
		c.Summary = fmt.Sprintf("base DN %s is inside the naming context %s", base, nc)
		return p.record(c, started)
	}
	c.Status = report.Fail
	c.Summary = fmt.Sprintf("base DN %s is outside the naming contexts of this server (%s): a search there gets a referral or noSuchObject", base, orNone(root.NamingContexts))
	c.Hint = fmt.Sprintf("set --ldap-base-dn to %s or a DN under it (or --ldap-domain to its domain)", root.NamingContexts[0])
	return p.record(c, started)
}

// namingContextOf returns the naming context that holds dn, or "".
func namingContextOf(dn *ldap.DN, contexts []string) string {
	for _, nc := range contexts {
		parsed, err := ldap.ParseDN(nc)
		if err != nil || len(parsed.RDNs) == 0 {
			continue
		}
		if parsed.EqualFold(dn) || parsed.AncestorOfFold(dn) {
			return nc
		}
	}
	return ""
}

// serviceBindName returns the name the service account binds with and how
// it was made. A DN, a user principal name (name@domain) or a down-level
// name (DOMAIN\name) is used as it is; a bare name goes through
// ldap_bind_format like a user's.
//
// NOTE: the manager's own rule for the service account's bind name is not
// public; it validates the account by logging it in like a user, which is
// what rendering a bare name through ldap_bind_format imitates.
func serviceBindName(s *Settings) (string, string, error) {
	name := s.Username
	if strings.ContainsAny(name, "@\\") {
		return name, "as given", nil
	}
	if strings.Contains(name, "=") {
		if _, err := ldap.ParseDN(name); err == nil {
			return name, "as given (a DN)", nil
		}
	}
	r, err := Render(s, name, "")
	if err != nil {
		return "", "", err
	}
	return r.BindName, "rendered with ldap_bind_format", nil
}

// checkServiceBind binds as the service account when one is set.
func (p *serverProbe) checkServiceBind(ctx context.Context) bool {
	s := p.opts.Settings
	if !s.HasServiceAccount() {
		p.skip(LayerServiceBind, "no service account (ldap_username): the manager searches with the logging-in user's own bind", "")
		return true
	}
	started := time.Now()
	c := report.Check{ID: LayerServiceBind}
	name, how, err := serviceBindName(s)
	if err != nil {
		c.Status = report.Fail
		c.Summary = err.Error()
		c.Hint = "fix --ldap-bind-format"
		return p.record(c, started)
	}
	c.AddEvidence("bind name", name)
	c.AddEvidence("bind name from", how)
	failure := p.bindAs(ctx, &c, "the service account", "the service account "+s.Username, name, s.Password,
		"check --ldap-username and its password (--ldap-password-file or CFYAUTH_LDAP_PASSWORD)")
	if ctx.Err() != nil {
		return false
	}
	if failure != nil {
		return p.record(c, started)
	}
	p.whoAmI(ctx, &c)
	c.Status = report.Pass
	c.Summary = fmt.Sprintf("service account bound as %s", name)
	return p.record(c, started)
}

// bindAs binds the session as name. On failure it fills c as a failed
// check that names who failed (who, such as "the user"; whoNamed, such as
// "the user alice"), and returns the failure.
func (p *serverProbe) bindAs(ctx context.Context, c *report.Check, who, whoNamed, name string, password Secret, credentials string) *ldapFailure {
	err := bounded(ctx, p.timeout(), p.tcp, func() error { return p.conn.Bind(name, password.Reveal()) })
	if err == nil || ctx.Err() != nil {
		return nil
	}
	f := describeLDAPError(err, p.tcp)
	addDiagnostic(c, f)
	c.Status = report.Fail
	c.Summary = fmt.Sprintf("%s's bind as %s failed: %s", who, name, f.reason())
	c.Hint = bindHint(f, who, credentials)
	if f.ad != nil {
		c.Hint = f.ad.Fix(whoNamed)
	}
	return &f
}

// reason is the failure in words: the AD sub-code's meaning when the
// server sent one, else the result.
func (f ldapFailure) reason() string {
	if f.ad != nil {
		return f.ad.Meaning()
	}
	return f.summary
}

// bindHint names the next step after a failed bind.
func bindHint(f ldapFailure, who, credentials string) string {
	switch f.code {
	case ldap.LDAPResultInvalidCredentials:
		return fmt.Sprintf("%s: %s", credentials, "the server rejects the bind name or the password (an unknown name gives the same code)")
	case ldap.LDAPResultConfidentialityRequired, ldap.LDAPResultStrongAuthRequired:
		return "the server requires an encrypted connection: use ldaps:// with --ldap-ca-path"
	case ldap.LDAPResultUnwillingToPerform:
		return fmt.Sprintf("the server refuses to bind %s; check that the account is enabled and may bind", who)
	case ldap.LDAPResultInvalidDNSyntax:
		return "the bind name is not a valid DN: fix --ldap-bind-format or --ldap-username"
	}
	if f.network {
		return "the connection broke during the bind; check the server's logs"
	}
	return credentials
}

// addDiagnostic adds the server's own words to a check.
func addDiagnostic(c *report.Check, f ldapFailure) {
	if f.code != 0 {
		c.AddEvidence("result code", resultName(f.code))
	}
	if f.diagnostic != "" {
		c.AddEvidence("diagnostic message", f.diagnostic)
	}
	if f.explanation != "" {
		c.AddEvidence("meaning", f.explanation)
	}
	if f.ad != nil {
		c.AddEvidence("AD sub-code", f.ad.SubCode)
	}
}

// whoAmI adds the server's view of the bound identity when it supports
// RFC 4532, which proves the bind was not anonymous.
func (p *serverProbe) whoAmI(ctx context.Context, c *report.Check) {
	if !p.result.root.Supports(oidWhoAmI) {
		return
	}
	var res *ldap.WhoAmIResult
	err := bounded(ctx, p.timeout(), p.tcp, func() error {
		var err error
		res, err = p.conn.WhoAmI(nil)
		return err
	})
	if err == nil && res != nil {
		c.AddEvidence("authorization identity", res.AuthzID)
	}
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
