package ldapprobe

import (
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Warning is something about the settings or a rendering that may make the
// manager behave differently from what the operator expects.
type Warning struct {
	Key     string  `json:"key"`
	Message string  `json:"message"`
	Escape  *Escape `json:"escape,omitempty"`
}

func (w Warning) String() string { return w.Key + ": " + w.Message }

// Rendering is the bind name, search and group lookup that the settings
// produce for one user.
type Rendering struct {
	// Username is the login name rendered in; when empty, {username} stays
	// in the templates as it is.
	Username string `json:"username,omitempty"`
	// BindName is ldap_bind_format rendered for the user. BindIsDN is false
	// for a user principal name (alice@example.com) or a down-level name
	// (EXAMPLE\alice), because those are not escaped as DNs.
	BindName   string `json:"bind_name"`
	BindIsDN   bool   `json:"bind_is_dn"`
	SearchBase string `json:"search_base"`
	UserFilter string `json:"user_filter"`
	GroupDN    string `json:"group_dn"`
	// ObjectDN is the DN put into {object_dn}; GroupMemberFilter is the
	// filter rendered with it.
	ObjectDN            string    `json:"object_dn"`
	GroupMemberFilter   string    `json:"group_member_filter"`
	MembershipAttribute string    `json:"membership_attribute"`
	NestedLevels        int       `json:"nested_levels"`
	Warnings            []Warning `json:"warnings,omitempty"`
}

// fieldValue is the text of one replacement field and how it must be
// escaped in the template's context; nil escape inserts the text as it is.
type fieldValue struct {
	text   string
	escape func(string) (string, []Escape)
	// label names the value in warnings, such as `username "a*b"`.
	label string
}

// Render renders the templates of s for username. objectDN is the DN put
// into {object_dn}; when empty, the bind name is used if it is a DN.
func Render(s *Settings, username, objectDN string) (*Rendering, error) {
	r := &Rendering{
		Username:            username,
		SearchBase:          s.BaseDN,
		MembershipAttribute: s.AttributeGroupMembership,
		NestedLevels:        s.NestedLevels,
	}
	domainDN := DomainDN(s.Domain)

	groupDN, warns, err := renderTemplate(KeyGroupDN, s.GroupDN, map[string]fieldValue{
		"base_dn":   {text: s.BaseDN},
		"domain_dn": {text: domainDN},
	})
	if err != nil {
		return nil, err
	}
	r.GroupDN = groupDN
	r.Warnings = append(r.Warnings, warns...)

	user := fieldValue{text: username, label: "username " + quoteText(username)}
	if username == "" {
		user = fieldValue{text: "{username}"}
	}

	bindVars := map[string]fieldValue{
		"username":  user,
		"domain":    {text: s.Domain},
		"base_dn":   {text: s.BaseDN},
		"domain_dn": {text: domainDN},
		"group_dn":  {text: groupDN},
	}
	r.BindIsDN = templateIsDN(s.BindFormat)
	if r.BindIsDN && username != "" {
		bindVars["username"] = fieldValue{text: username, escape: EscapeDNValue, label: user.label}
	}
	r.BindName, warns, err = renderTemplate(KeyBindFormat, s.BindFormat, bindVars)
	if err != nil {
		return nil, err
	}
	r.Warnings = append(r.Warnings, warns...)

	filterUser := user
	if username != "" {
		filterUser.escape = EscapeFilterValue
	}
	r.UserFilter, warns, err = renderTemplate(KeyUserFilter, s.UserFilter, map[string]fieldValue{
		"username":  filterUser,
		"base_dn":   {text: s.BaseDN, escape: EscapeFilterValue, label: "base DN"},
		"domain_dn": {text: domainDN, escape: EscapeFilterValue, label: "domain DN"},
		"group_dn":  {text: groupDN, escape: EscapeFilterValue, label: "group DN"},
	})
	if err != nil {
		return nil, err
	}
	r.Warnings = append(r.Warnings, warns...)

	if objectDN == "" && r.BindIsDN && username != "" {
		objectDN = r.BindName
	}
	object := fieldValue{text: objectDN, escape: EscapeFilterValue, label: "object DN " + quoteText(objectDN)}
	if objectDN == "" {
		object = fieldValue{text: "{object_dn}"}
	}
	r.ObjectDN = objectDN
	r.GroupMemberFilter, warns, err = renderTemplate(KeyGroupMemberFilter, s.GroupMemberFilter, map[string]fieldValue{
		"object_dn": object,
	})
	if err != nil {
		return nil, err
	}
	r.Warnings = append(r.Warnings, warns...)

	if username != "" && !isASCII(username) {
		r.Warnings = append(r.Warnings, Warning{Key: "username",
			Message: fmt.Sprintf("%s is not ASCII; it is sent as UTF-8, which LDAP requires, so the directory must hold the same characters in the same normalization", quoteText(username))})
	}
	return r, nil
}

// RenderError is a template that cannot be rendered, as Python's
// str.format would fail on it.
type RenderError struct {
	Key    string
	Reason string
}

func (e *RenderError) Error() string {
	return fmt.Sprintf("cannot render %s: %s", e.Key, e.Reason)
}

// renderTemplate fills the fields of tmpl from vars, escaping each value
// for its context and returning a warning per escaped character.
func renderTemplate(key, tmpl string, vars map[string]fieldValue) (string, []Warning, error) {
	parts, err := parseFormat(tmpl)
	if err != nil {
		return "", nil, &RenderError{Key: key, Reason: err.Error()}
	}
	var b strings.Builder
	var warnings []Warning
	for _, p := range parts {
		b.WriteString(p.Literal)
		if p.Field == nil {
			continue
		}
		v, ok := vars[p.Field.Name]
		if !ok {
			return "", nil, &RenderError{Key: key, Reason: fmt.Sprintf("{%s} is not one of %s", p.Field.Name, strings.Join(AllowedFields[key], ", "))}
		}
		text, err := applyConversion(v.text, p.Field.Conversion)
		if err != nil {
			return "", nil, &RenderError{Key: key, Reason: err.Error()}
		}
		if text, err = applySpec(text, p.Field.Spec); err != nil {
			return "", nil, &RenderError{Key: key, Reason: err.Error()}
		}
		if v.escape != nil {
			escaped, escapes := v.escape(text)
			for i := range escapes {
				e := escapes[i]
				w := Warning{Key: key, Escape: &e,
					Message: fmt.Sprintf("%s: %s at offset %d is %s, so cfyauth sends it as %s; the manager's handling of it is not documented, so a login with this value may fail or match other entries",
						v.label, quoteText(e.Char), e.Offset, e.Reason, e.Escaped)}
				// A template that uses a field twice, such as AD's
				// user filter, escapes the same characters twice.
				if !containsWarning(warnings, w) {
					warnings = append(warnings, w)
				}
			}
			text = escaped
		}
		b.WriteString(text)
	}
	return b.String(), warnings, nil
}

func containsWarning(warnings []Warning, w Warning) bool {
	for _, have := range warnings {
		if have.Key == w.Key && have.Message == w.Message {
			return true
		}
	}
	return false
}

// templateIsDN reports whether a bind format renders a DN rather than a
// user principal name or a down-level logon name: with every DN field
// replaced by a one-part DN and every other field by a plain word, the
// result must parse as a DN.
func templateIsDN(tmpl string) bool {
	parts, err := parseFormat(tmpl)
	if err != nil {
		return false
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Literal)
		switch {
		case p.Field == nil:
		case strings.HasSuffix(p.Field.Name, "_dn"):
			b.WriteString("dc=x")
		default:
			b.WriteString("x")
		}
	}
	text := b.String()
	if !strings.Contains(text, "=") {
		return false
	}
	dn, err := ldap.ParseDN(text)
	return err == nil && len(dn.RDNs) > 0
}
