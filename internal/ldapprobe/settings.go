// Package ldapprobe models the LDAP settings of a Cloudify Manager under the
// manager's own key names. It renders the bind DN and search filters the way
// the manager's LDAP authenticator uses them. It probes live LDAP servers
// layer by layer (TCP, TLS, RootDSE, binds, user search, attributes) to
// predict what a login through the manager will do. It never prints and never
// prompts: callers get settings, renderings and report checks back.
package ldapprobe

import (
	"fmt"
	"strings"
	"time"
)

// Manager key names of the LDAP settings, as stored in the manager's config
// table (scope rest) and accepted by POST /api/v3.1/ldap.
const (
	KeyServer                   = "ldap_server"
	KeyUsername                 = "ldap_username"
	KeyPassword                 = "ldap_password"
	KeyDomain                   = "ldap_domain"
	KeyIsActiveDirectory        = "ldap_is_active_directory"
	KeyDNExtra                  = "ldap_dn_extra"
	KeyTimeout                  = "ldap_timeout"
	KeyNestedLevels             = "ldap_nested_levels"
	KeyCAPath                   = "ldap_ca_path"
	KeyCACert                   = "ldap_ca_cert"
	KeyBaseDN                   = "ldap_base_dn"
	KeyGroupDN                  = "ldap_group_dn"
	KeyBindFormat               = "ldap_bind_format"
	KeyUserFilter               = "ldap_user_filter"
	KeyGroupMemberFilter        = "ldap_group_member_filter"
	KeyAttributeEmail           = "ldap_attribute_email"
	KeyAttributeFirstName       = "ldap_attribute_first_name"
	KeyAttributeLastName        = "ldap_attribute_last_name"
	KeyAttributeUID             = "ldap_attribute_uid"
	KeyAttributeGroupMembership = "ldap_attribute_group_membership"
)

// valueKind is how a key's raw value is parsed.
type valueKind int

const (
	kindString valueKind = iota
	kindList             // one or more server URLs
	kindSecret           // a password: never printed
	kindBool
	kindInt
	kindSeconds // a number of seconds, or a Go duration such as 5s
	kindPEM     // PEM text
)

// KeyInfo describes one settings key: its manager name, the cfyauth flag
// that sets it (named like the option of 'cfy ldap set'), and its type.
type KeyInfo struct {
	Name string
	// Flag is the long flag name without dashes; empty when no flag may set
	// the key (the bind password and the CA PEM text).
	Flag string
	kind valueKind
	// Help is the flag's help text.
	Help string
}

// Env returns the environment variable that sets the key, such as
// CFYAUTH_LDAP_SERVER for ldap_server.
func (k KeyInfo) Env() string { return "CFYAUTH_" + strings.ToUpper(k.Name) }

// Keys lists every settings key in the order 'ldap show' prints them.
var Keys = []KeyInfo{
	{KeyServer, "ldap-server", kindList, "LDAP server URL with scheme and port, such as ldaps://ldap.example.com:636; repeat to compare a primary and its replicas"},
	{KeyUsername, "ldap-username", kindString, "service account for user lookups (its password comes from --ldap-password-file, CFYAUTH_LDAP_PASSWORD or --settings)"},
	{KeyPassword, "", kindSecret, ""},
	{KeyDomain, "ldap-domain", kindString, "LDAP domain such as example.com; gives the default base DN dc=example,dc=com and the AD bind suffix"},
	{KeyIsActiveDirectory, "ldap-is-active-directory", kindBool, "the server is Active Directory (changes the default bind format and user filter)"},
	{KeyDNExtra, "ldap-dn-extra", kindString, "deprecated extra DN parts; use --ldap-base-dn"},
	{KeyTimeout, "timeout", kindSeconds, "how long one probe step may take, such as 5s or 500ms (ldap_timeout; default 5s)"},
	{KeyNestedLevels, "ldap-nested-levels", kindInt, "levels of nested groups the manager resolves (default 1)"},
	{KeyCAPath, "ldap-ca-path", kindString, "PEM file with the CA certificate that signed the LDAP server's certificate"},
	{KeyCACert, "", kindPEM, ""},
	{KeyBaseDN, "ldap-base-dn", kindString, "base DN of searches (default: the domain as dc= parts)"},
	{KeyGroupDN, "ldap-group-dn", kindString, "base DN of group searches; may use {base_dn} and {domain_dn} (default ou=groups,{base_dn})"},
	{KeyBindFormat, "ldap-bind-format", kindString, "bind name of a user; may use {username}, {domain}, {base_dn}, {domain_dn} and {group_dn}"},
	{KeyUserFilter, "ldap-user-filter", kindString, "filter that finds a user; may use {username}, {base_dn}, {domain_dn} and {group_dn}"},
	{KeyGroupMemberFilter, "ldap-group-member-filter", kindString, "filter that finds the groups of an object; may use {object_dn} (default (uniqueMember={object_dn}))"},
	{KeyAttributeEmail, "ldap-attribute-email", kindString, "attribute holding the e-mail address (default email)"},
	{KeyAttributeFirstName, "ldap-attribute-first-name", kindString, "attribute holding the first name (default givenName)"},
	{KeyAttributeLastName, "ldap-attribute-last-name", kindString, "attribute holding the last name (default sn)"},
	{KeyAttributeUID, "ldap-attribute-uid", kindString, "attribute holding the user name; must be present (default uid)"},
	{KeyAttributeGroupMembership, "ldap-attribute-group-membership", kindString, "attribute listing the user's groups (default memberOf)"},
}

// LookupKey returns the description of a manager key.
func LookupKey(name string) (KeyInfo, bool) {
	for _, k := range Keys {
		if k.Name == name {
			return k, true
		}
	}
	return KeyInfo{}, false
}

// The manager's defaults for keys left empty, from the documentation of
// 'cfy ldap set' (Cloudify 5.2 and later).
const (
	DefaultTimeout                  = 5 * time.Second
	DefaultNestedLevels             = 1
	DefaultGroupDN                  = "ou=groups,{base_dn}"
	DefaultGroupMemberFilter        = "(uniqueMember={object_dn})"
	DefaultBindFormatAD             = "{username}@{domain}"
	DefaultBindFormat               = "uid={username},ou=users,{base_dn}"
	DefaultUserFilterAD             = "(|(sAMAccountName={username})(uid={username}))"
	DefaultUserFilter               = "(uid={username})"
	DefaultAttributeEmail           = "email"
	DefaultAttributeFirstName       = "givenName"
	DefaultAttributeLastName        = "sn"
	DefaultAttributeUID             = "uid"
	DefaultAttributeGroupMembership = "memberOf"
)

// Secret is a password. Its String and JSON forms are masked, so printing a
// Settings value never shows it; Reveal returns the clear text for a bind.
type Secret string

// Masked is how a set secret is shown.
const Masked = "********"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Masked
}

// GoString masks the secret in %#v output too.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalJSON masks the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf("%q", s.String())), nil }

// Reveal returns the clear-text password.
func (s Secret) Reveal() string { return string(s) }

// Settings are the effective LDAP settings: every key resolved from its
// highest-precedence source, with the manager's defaults filled in.
type Settings struct {
	Servers           []string
	Username          string
	Password          Secret
	Domain            string
	IsActiveDirectory bool
	DNExtra           string
	Timeout           time.Duration
	NestedLevels      int
	CAPath            string
	// CAPEM is the CA certificate text: the contents of CAPath, or
	// ldap_ca_cert when that comes from a higher-precedence source.
	CAPEM                    string
	BaseDN                   string
	GroupDN                  string
	BindFormat               string
	UserFilter               string
	GroupMemberFilter        string
	AttributeEmail           string
	AttributeFirstName       string
	AttributeLastName        string
	AttributeUID             string
	AttributeGroupMembership string

	// Sources records where each key's value came from, keyed by manager
	// key name. Keys left at the manager's default have a default source.
	Sources map[string]Source
	// Raw holds the values exactly as given, before defaults, keyed by
	// manager key name; unset keys are absent. The password is never here.
	Raw map[string]string
}

// Value returns the effective value of a key as text, with the password
// masked and a list of servers joined by spaces.
func (s *Settings) Value(key string) string {
	switch key {
	case KeyServer:
		return strings.Join(s.Servers, " ")
	case KeyUsername:
		return s.Username
	case KeyPassword:
		return s.Password.String()
	case KeyDomain:
		return s.Domain
	case KeyIsActiveDirectory:
		return fmt.Sprint(s.IsActiveDirectory)
	case KeyDNExtra:
		return s.DNExtra
	case KeyTimeout:
		return s.Timeout.String()
	case KeyNestedLevels:
		return fmt.Sprint(s.NestedLevels)
	case KeyCAPath:
		return s.CAPath
	case KeyCACert:
		if s.CAPEM == "" {
			return ""
		}
		return fmt.Sprintf("(%d bytes of PEM)", len(s.CAPEM))
	case KeyBaseDN:
		return s.BaseDN
	case KeyGroupDN:
		return s.GroupDN
	case KeyBindFormat:
		return s.BindFormat
	case KeyUserFilter:
		return s.UserFilter
	case KeyGroupMemberFilter:
		return s.GroupMemberFilter
	case KeyAttributeEmail:
		return s.AttributeEmail
	case KeyAttributeFirstName:
		return s.AttributeFirstName
	case KeyAttributeLastName:
		return s.AttributeLastName
	case KeyAttributeUID:
		return s.AttributeUID
	case KeyAttributeGroupMembership:
		return s.AttributeGroupMembership
	}
	return ""
}

// DomainDN returns the domain as a DN of dc= parts: example.com becomes
// dc=example,dc=com. Each label is escaped as an RFC 4514 attribute value.
func DomainDN(domain string) string {
	domain = strings.Trim(domain, ".")
	if domain == "" {
		return ""
	}
	labels := strings.Split(domain, ".")
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		escaped, _ := EscapeDNValue(l)
		parts = append(parts, "dc="+escaped)
	}
	return strings.Join(parts, ",")
}

// EffectiveBaseDN returns ldap_base_dn, or the domain DN when it is empty,
// which is the manager's default.
func (s *Settings) EffectiveBaseDN() string {
	if s.BaseDN != "" {
		return s.BaseDN
	}
	return DomainDN(s.Domain)
}

// HasServiceAccount reports whether lookups bind as a service account.
func (s *Settings) HasServiceAccount() bool { return s.Username != "" }
