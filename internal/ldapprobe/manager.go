package ldapprobe

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ManagerCANote explains why settings read from a manager lack the CA.
const ManagerCANote = "from Cloudify 5.2 the manager keeps its LDAP CA certificate in its database, and GET /api/v3.1/config does not return it"

// ManagerSettings are the LDAP settings a manager returned from GET
// /api/v3.1/config?scope=rest, as a settings layer.
type ManagerSettings struct {
	Layer Layer
	// PasswordMasked and UsernameMasked are set when the manager sent
	// ldap_password or ldap_username as "********", which it does from
	// Cloudify 6.4 for callers that are not sys_admin. A masked value is
	// left out of the layer, because binding with it could never work.
	PasswordMasked bool
	UsernameMasked bool
	// CAPath is the manager's ldap_ca_path row: a file on the manager host
	// that the manager itself no longer reads from Cloudify 5.2 on. It is
	// not used as a setting.
	CAPath string
	// Ignored lists ldap_* rows that are not settings cfyauth uses, such as
	// ldap_group_members_filter.
	Ignored []string
}

// ManagerLayer turns the manager's config rows (name → JSON value) into a
// settings layer of kind SourceManager; detail names the manager, such as
// its URL. Rows that are not LDAP settings are left out.
func ManagerLayer(detail string, rows map[string]json.RawMessage) (*ManagerSettings, error) {
	ms := &ManagerSettings{Layer: Layer{Kind: SourceManager, Detail: detail}}
	names := make([]string, 0, len(rows))
	for name := range rows {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasPrefix(name, "ldap_") {
			continue
		}
		var value any
		if raw := rows[name]; len(raw) > 0 {
			if err := json.Unmarshal(raw, &value); err != nil {
				return nil, fmt.Errorf("read the manager's %s: %w", name, err)
			}
		}
		switch name {
		case KeyCAPath:
			if text, ok := value.(string); ok {
				ms.CAPath = text
			}
			continue
		case KeyPassword:
			if value == Masked {
				ms.PasswordMasked = true
				continue
			}
		case KeyUsername:
			if value == Masked {
				ms.UsernameMasked = true
				continue
			}
		}
		if _, known := LookupKey(name); !known {
			ms.Ignored = append(ms.Ignored, name)
			continue
		}
		ms.Layer.Set(name, value, "")
	}
	return ms, nil
}

// HasServer reports whether the manager has an LDAP server set; without
// one, LDAP is off on the manager.
func (ms *ManagerSettings) HasServer() bool {
	list, err := toList(ms.Layer.Values[KeyServer])
	return err == nil && len(list) > 0
}
