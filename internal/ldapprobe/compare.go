package ldapprobe

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// compareServers compares a primary with its replicas: the layer each one
// stopped at, and the facts they should share (naming contexts, vendor
// version, certificate issuer, the user's DN, groups and attributes).
func compareServers(servers []ServerResult) report.Check {
	started := time.Now()
	c := report.Check{ID: LayerReplicas, Subject: "all servers", Status: report.Pass}
	var differences []string

	outcome := func(s ServerResult) string {
		if s.FailedLayer == "" {
			return "passed"
		}
		return "failed at " + s.FailedLayer
	}
	addFact := func(name string, value func(ServerResult) (string, bool)) {
		seen := map[string][]string{}
		var order []string
		for _, s := range servers {
			v, ok := value(s)
			if !ok {
				continue
			}
			if _, dup := seen[v]; !dup {
				order = append(order, v)
			}
			seen[v] = append(seen[v], s.URL)
		}
		if len(order) < 2 {
			return
		}
		var parts []string
		for _, v := range order {
			parts = append(parts, fmt.Sprintf("%s: %s", strings.Join(seen[v], ", "), v))
		}
		c.AddEvidence(name, strings.Join(parts, "; "))
		differences = append(differences, name)
	}

	addFact("outcome", func(s ServerResult) (string, bool) { return outcome(s), true })
	addFact("naming contexts", func(s ServerResult) (string, bool) {
		if s.root == nil {
			return "", false
		}
		return orNone(s.root.NamingContexts), true
	})
	addFact("vendor version", func(s ServerResult) (string, bool) {
		if s.root == nil || s.root.VendorVersion == "" {
			return "", false
		}
		return s.root.VendorVersion, true
	})
	addFact("certificate issuer", func(s ServerResult) (string, bool) { return s.certIssuer, s.certIssuer != "" })
	addFact("user DN", func(s ServerResult) (string, bool) { return s.UserDN, s.UserDN != "" })
	addFact("groups", func(s ServerResult) (string, bool) {
		if s.Groups == nil || s.Groups.Mode == "" {
			return "", false
		}
		keys := make([]string, 0, len(s.Groups.Groups))
		for _, dn := range s.Groups.Groups {
			key, _ := DNKey(dn)
			keys = append(keys, key)
		}
		sort.Strings(keys)
		return strings.Join(keys, "; "), true
	})
	addFact("user attributes", func(s ServerResult) (string, bool) {
		if s.userEntry == nil {
			return "", false
		}
		var parts []string
		for _, a := range s.userEntry.Attributes {
			parts = append(parts, fmt.Sprintf("%s=%s", a.Name, strings.Join(a.Values, "|")))
		}
		return strings.Join(parts, " "), true
	})

	c.AddEvidence("servers", len(servers))
	if len(differences) == 0 {
		c.Summary = fmt.Sprintf("%d servers agree", len(servers))
	} else {
		c.Status = report.Warn
		c.Summary = "the servers disagree on " + strings.Join(differences, ", ")
		c.Hint = "a login's outcome depends on which server the manager reaches; bring the replicas in line"
	}
	c.Duration = time.Since(started)
	return c
}
