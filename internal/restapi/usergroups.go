package restapi

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
)

// UserGroup is one row of GET /api/v3.1/user-groups.
type UserGroup struct {
	Name   string `json:"name"`
	LDAPDN string `json:"ldap_dn,omitempty"`
	Role   string `json:"role,omitempty"`
	// Tenants maps tenant names to the group's role in each.
	Tenants map[string]string `json:"tenants,omitempty"`
	Users   []string          `json:"users,omitempty"`
}

// userGroupsPage is the number of user-groups requested per page; a
// manager with more returns them over several requests.
const userGroupsPage = 1000

// userGroupsMaxPages bounds the pages read, so a manager that keeps
// reporting more rows cannot keep the client looping.
const userGroupsMaxPages = 100

// UserGroups returns the manager's user groups with their tenants, every
// page of them. Listing user groups needs an admin's credentials.
func (c *Client) UserGroups(ctx context.Context) ([]UserGroup, error) {
	var groups []UserGroup
	for page := 0; page < userGroupsMaxPages; page++ {
		var out struct {
			Items []struct {
				Name    string          `json:"name"`
				LDAPDN  string          `json:"ldap_dn"`
				Role    string          `json:"role"`
				Tenants json.RawMessage `json:"tenants"`
				Users   json.RawMessage `json:"users"`
			} `json:"items"`
			Metadata struct {
				Pagination struct {
					Total int `json:"total"`
				} `json:"pagination"`
			} `json:"metadata"`
		}
		q := url.Values{
			"_get_data": {"true"},
			"_size":     {strconv.Itoa(userGroupsPage)},
			"_offset":   {strconv.Itoa(len(groups))},
		}
		if _, err := c.Get(ctx, "/user-groups", q, &out); err != nil {
			return nil, err
		}
		for _, it := range out.Items {
			g := UserGroup{Name: it.Name, LDAPDN: it.LDAPDN, Role: it.Role}
			// Without _get_data the manager sends counts instead of these.
			_ = json.Unmarshal(it.Tenants, &g.Tenants)
			_ = json.Unmarshal(it.Users, &g.Users)
			groups = append(groups, g)
		}
		if len(out.Items) == 0 || len(groups) >= out.Metadata.Pagination.Total {
			break
		}
	}
	if groups == nil {
		groups = []UserGroup{}
	}
	return groups, nil
}

// MatchUserGroups returns the user groups whose names equal one of names
// byte for byte, in the order of names. A name without a user group is
// left out. The manager joins a SAML user to the user groups named exactly
// as the groups the identity provider sent, so a name that differs in
// spaces or punctuation does not match.
func (c *Client) MatchUserGroups(ctx context.Context, names []string) ([]UserGroup, error) {
	all, err := c.UserGroups(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]UserGroup, len(all))
	for _, g := range all {
		byName[g.Name] = g
	}
	matches := []UserGroup{}
	seen := map[string]bool{}
	for _, name := range names {
		if g, ok := byName[name]; ok && !seen[name] {
			matches = append(matches, g)
			seen[name] = true
		}
	}
	return matches, nil
}
