package restapi

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
)

// User is the manager's view of the logged-in user (GET /api/v3.1/user
// with _get_data=true).
type User struct {
	Username string `json:"username"`
	// Role is the user's own system role, such as sys_admin or default.
	Role   string   `json:"role,omitempty"`
	Groups []string `json:"groups"`
	// Tenants maps each tenant the user can use to its roles there, direct
	// and through groups.
	Tenants map[string]TenantRoles `json:"tenants"`
	// DirectTenants maps tenants the user was added to directly to that role.
	DirectTenants map[string]string `json:"direct_tenants,omitempty"`
	// GroupTenants maps tenant → role → the groups that grant it.
	GroupTenants map[string]map[string][]string `json:"group_tenants,omitempty"`
	// GroupSystemRoles maps a system role to the groups that grant it.
	GroupSystemRoles map[string][]string `json:"group_system_roles,omitempty"`
	Active           *bool               `json:"active,omitempty"`
	IsLocked         bool                `json:"is_locked,omitempty"`
	CreatedAt        string              `json:"created_at,omitempty"`
	FirstLoginAt     string              `json:"first_login_at,omitempty"`
	LastLoginAt      string              `json:"last_login_at,omitempty"`
}

// TenantRoles are a user's roles in one tenant.
type TenantRoles struct {
	// TenantRole is the role given directly, empty when only groups give one.
	TenantRole string   `json:"tenant_role,omitempty"`
	Roles      []string `json:"roles"`
}

// TenantNames returns the user's tenants, sorted.
func (u *User) TenantNames() []string {
	names := make([]string, 0, len(u.Tenants))
	for name := range u.Tenants {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// UnmarshalJSON reads the manager's user document in all its forms.
// Managers send tenants and groups as counts unless _get_data is set, and
// older ones send tenants as a name → role map.
func (u *User) UnmarshalJSON(data []byte) error {
	var raw struct {
		Username         string              `json:"username"`
		Role             string              `json:"role"`
		Groups           json.RawMessage     `json:"groups"`
		Tenants          json.RawMessage     `json:"tenants"`
		GroupSystemRoles map[string][]string `json:"group_system_roles"`
		TenantRoles      struct {
			Direct map[string]string              `json:"direct"`
			Groups map[string]map[string][]string `json:"groups"`
		} `json:"tenant_roles"`
		Active       *bool   `json:"active"`
		IsLocked     bool    `json:"is_locked"`
		CreatedAt    *string `json:"created_at"`
		FirstLoginAt *string `json:"first_login_at"`
		LastLoginAt  *string `json:"last_login_at"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*u = User{
		Username:         raw.Username,
		Role:             raw.Role,
		Groups:           []string{},
		Tenants:          map[string]TenantRoles{},
		DirectTenants:    raw.TenantRoles.Direct,
		GroupTenants:     raw.TenantRoles.Groups,
		GroupSystemRoles: raw.GroupSystemRoles,
		Active:           raw.Active,
		IsLocked:         raw.IsLocked,
		CreatedAt:        deref(raw.CreatedAt),
		FirstLoginAt:     deref(raw.FirstLoginAt),
		LastLoginAt:      deref(raw.LastLoginAt),
	}
	_ = json.Unmarshal(raw.Groups, &u.Groups)
	if u.Groups == nil {
		u.Groups = []string{}
	}

	var full map[string]struct {
		TenantRole *string  `json:"tenant-role"`
		Roles      []string `json:"roles"`
	}
	var simple map[string]string
	switch {
	case json.Unmarshal(raw.Tenants, &full) == nil && full != nil:
		for name, t := range full {
			roles := t.Roles
			if roles == nil {
				roles = []string{}
			}
			u.Tenants[name] = TenantRoles{TenantRole: deref(t.TenantRole), Roles: roles}
		}
	case json.Unmarshal(raw.Tenants, &simple) == nil && simple != nil:
		for name, role := range simple {
			u.Tenants[name] = TenantRoles{TenantRole: role, Roles: []string{role}}
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// User returns the user the credentials belong to, and the manager's audit
// headers of the request.
func (c *Client) User(ctx context.Context) (*User, Audit, error) {
	var u User
	resp, err := c.Get(ctx, "/user", url.Values{"_get_data": {"true"}}, &u)
	var audit Audit
	if resp != nil {
		audit = resp.Audit
	}
	if err != nil {
		return nil, audit, err
	}
	return &u, audit, nil
}
