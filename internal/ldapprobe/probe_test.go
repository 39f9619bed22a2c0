package ldapprobe

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/cfyauth/cfyauth/internal/ldapprobe/ldaptest"
	"github.com/cfyauth/cfyauth/internal/report"
)

// slapd is the package's OpenLDAP server, started once in TestMain on the
// fixed test ports. slapdErr is the reason when it did not start.
var (
	slapd    *ldaptest.Slapd
	slapdErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cfyauth-ldapprobe-slapd")
	if err == nil {
		slapd, slapdErr = ldaptest.Start(ldaptest.Options{Dir: filepath.Join(dir, "slapd"),
			Port: ldaptest.DefaultPort, TLSPort: ldaptest.DefaultTLSPort})
	} else {
		slapdErr = err
	}
	plainSlapdDir = dir
	code := m.Run()
	for _, srv := range []*ldaptest.Slapd{slapd, plainSlapd} {
		if srv != nil {
			if err := srv.Stop(); err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
			}
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// needSlapd returns the server, or skips (fails under
// CFYAUTH_REQUIRE_SERVERS=1) when it did not start.
func needSlapd(t *testing.T) *ldaptest.Slapd {
	t.Helper()
	if slapd == nil {
		ldaptest.Unavailable(t, slapdErr)
	}
	return slapd
}

// base returns settings for the fixture with a service account over
// ldaps, changed by the extra values.
func base(srv *ldaptest.Slapd, extra map[string]any) map[string]any {
	values := map[string]any{
		KeyServer:   srv.TLSURL(),
		KeyDomain:   ldaptest.Domain,
		KeyCAPath:   srv.CAFile(),
		KeyUsername: ldaptest.ServiceDN,
		KeyPassword: ldaptest.ServicePassword,
	}
	for k, v := range extra {
		if v == nil {
			delete(values, k)
			continue
		}
		values[k] = v
	}
	return values
}

func runProbe(t *testing.T, values map[string]any, opts Options) *Result {
	t.Helper()
	opts.Settings = resolveWith(t, values)
	res, err := Probe(context.Background(), opts)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	return res
}

// layer returns the check with the given ID of the first server.
func layer(t *testing.T, res *Result, id string) report.Check {
	t.Helper()
	for _, c := range res.Servers[0].Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", id, res.Servers[0].Checks)
	return report.Check{}
}

func evidence(c report.Check, key string) string {
	for _, e := range c.Evidence {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

// expectStatus asserts the status of each listed layer of the first server.
func expectStatus(t *testing.T, res *Result, want map[string]report.Status) {
	t.Helper()
	for id, status := range want {
		if c := layer(t, res, id); c.Status != status {
			t.Errorf("%s: status %s (%s), want %s", id, c.Status, c.Summary, status)
		}
	}
}

func expectSummary(t *testing.T, c report.Check, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(c.Summary, p) {
			t.Errorf("%s summary %q does not contain %q", c.ID, c.Summary, p)
		}
	}
}

func TestProbeLDAPSWithServiceAccount(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{User: "alice", UserPassword: ldaptest.UserPassword})
	expectStatus(t, res, map[string]report.Status{
		LayerTCP: report.Pass, LayerTLS: report.Pass, LayerTLSChain: report.Pass, LayerTLSHostname: report.Pass,
		LayerTLSExpiry: report.Pass, LayerRootDSE: report.Pass, LayerBaseDN: report.Pass, LayerServiceBind: report.Pass,
		LayerUserSearch: report.Pass, LayerUserBind: report.Pass, LayerAttributes: report.Pass,
	})
	if res.Servers[0].FailedLayer != "" {
		t.Errorf("failed layer %q, want none", res.Servers[0].FailedLayer)
	}
	if got := res.Servers[0].UserDN; got != "uid=alice,ou=users,dc=example,dc=org" {
		t.Errorf("user DN = %q", got)
	}
	root := layer(t, res, LayerRootDSE)
	if evidence(root, "naming contexts") != ldaptest.BaseDN || !strings.Contains(root.Summary, "OpenLDAP") {
		t.Errorf("RootDSE evidence: %q %+v", root.Summary, root.Evidence)
	}
	if got := evidence(layer(t, res, LayerUserBind), "authorization identity"); got != "dn:uid=alice,ou=users,dc=example,dc=org" {
		t.Errorf("who am I = %q", got)
	}
	order := []string{}
	for _, c := range res.Servers[0].Checks {
		order = append(order, c.ID)
	}
	if got := strings.Join(order, " "); got != "tcp tls tls.chain tls.hostname tls.expiry rootdse base-dn service-bind user-search user-bind attributes groups" {
		t.Errorf("layer order = %s", got)
	}
}

func TestProbeStartTLS(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, map[string]any{KeyServer: srv.URL()}), Options{User: "bob", UserPassword: ldaptest.UserPassword, StartTLS: true})
	expectStatus(t, res, map[string]report.Status{LayerTLS: report.Pass, LayerTLSChain: report.Pass, LayerUserBind: report.Pass})
	if got := evidence(layer(t, res, LayerTLS), "mode"); got != "StartTLS" {
		t.Errorf("TLS mode = %q", got)
	}
}

func TestProbePlainWithoutServiceAccount(t *testing.T) {
	srv := needSlapd(t)
	values := base(srv, map[string]any{KeyServer: srv.URL(), KeyCAPath: nil, KeyUsername: nil, KeyPassword: nil})
	res := runProbe(t, values, Options{User: "alice", UserPassword: ldaptest.UserPassword})
	expectStatus(t, res, map[string]report.Status{
		LayerTLS: report.Warn, LayerServiceBind: report.Skip, LayerUserBind: report.Pass, LayerUserSearch: report.Pass, LayerAttributes: report.Pass,
	})
	if got := evidence(layer(t, res, LayerUserSearch), "searched as"); got != "the user alice" {
		t.Errorf("searched as %q, want the user's own bind", got)
	}
	var ids []string
	for _, c := range res.Servers[0].Checks {
		ids = append(ids, c.ID)
	}
	if strings.Index(strings.Join(ids, " "), "user-bind") > strings.Index(strings.Join(ids, " "), "user-search") {
		t.Errorf("without a service account the user bind must come first: %v", ids)
	}
}

func TestProbeWrongServicePassword(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, map[string]any{KeyPassword: "wrong"}), Options{User: "alice", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerServiceBind)
	if c.Status != report.Fail || res.Servers[0].FailedLayer != LayerServiceBind {
		t.Fatalf("service bind %s, failed layer %q", c.Status, res.Servers[0].FailedLayer)
	}
	expectSummary(t, c, "service account", "invalid credentials (49)")
	if !strings.Contains(c.Hint, "--ldap-password-file") {
		t.Errorf("hint %q does not name the service password's flag", c.Hint)
	}
	expectStatus(t, res, map[string]report.Status{LayerUserSearch: report.Skip, LayerUserBind: report.Skip, LayerAttributes: report.Skip})
	if s := layer(t, res, LayerUserBind).Summary; !strings.Contains(s, "service-bind failed") {
		t.Errorf("skipped layer summary %q does not name the failed layer", s)
	}
}

func TestProbeWrongUserPassword(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{User: "alice", UserPassword: "wrong"})
	c := layer(t, res, LayerUserBind)
	if c.Status != report.Fail {
		t.Fatalf("user bind %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "user's password was rejected", "invalid credentials (49)")
	expectStatus(t, res, map[string]report.Status{LayerServiceBind: report.Pass, LayerUserSearch: report.Pass, LayerAttributes: report.Skip})
}

func TestProbeEmptyUserPassword(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{User: "alice"})
	c := layer(t, res, LayerUserBind)
	if c.Status != report.Fail {
		t.Fatalf("user bind %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "empty password refused before binding")
	if evidence(c, "authorization identity") != "" {
		t.Error("a bind happened although the password was empty")
	}
}

func TestProbeUnknownUser(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{User: "nobody", UserPassword: "x"})
	c := layer(t, res, LayerUserSearch)
	if c.Status != report.Fail {
		t.Fatalf("user search %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "no entry matches (uid=nobody)")
	if !strings.Contains(c.Hint, "(uid=nobody)") {
		t.Errorf("hint %q does not name the reduced filter", c.Hint)
	}
	expectStatus(t, res, map[string]report.Status{LayerUserBind: report.Skip})
}

func TestProbeCommaAndNonASCIINames(t *testing.T) {
	srv := needSlapd(t)
	values := base(srv, map[string]any{KeyBindFormat: "cn={username},ou=users,{base_dn}", KeyUserFilter: "(cn={username})"})
	for _, name := range []string{"Smith, John", "Jürgen Müller"} {
		t.Run(name, func(t *testing.T) {
			res := runProbe(t, values, Options{User: name, UserPassword: ldaptest.UserPassword})
			expectStatus(t, res, map[string]report.Status{LayerUserSearch: report.Pass, LayerUserBind: report.Pass})
			found, err := ldap.ParseDN(res.Servers[0].UserDN)
			if err != nil {
				t.Fatal(err)
			}
			if got := found.RDNs[0].Attributes[0].Value; got != name {
				t.Errorf("found CN %q, want %q", got, name)
			}
		})
	}
}

func TestProbeBindFormatMismatch(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{User: "jsmith", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerUserBind)
	if c.Status != report.Fail {
		t.Fatalf("user bind %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "ldap_bind_format renders uid=jsmith,ou=users,dc=example,dc=org", "cn=Smith")
	if evidence(c, "DN found by the search") == "" || evidence(c, "bind name") == "" {
		t.Errorf("evidence lacks the two DNs: %+v", c.Evidence)
	}
	if !strings.Contains(c.Hint, "--ldap-bind-format") {
		t.Errorf("hint %q does not name --ldap-bind-format", c.Hint)
	}
}

func TestProbeFilterMetacharacters(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{User: "ops*(eu)", UserPassword: ldaptest.UserPassword})
	expectStatus(t, res, map[string]report.Status{LayerUserSearch: report.Pass, LayerUserBind: report.Pass})
	if got := evidence(layer(t, res, LayerUserSearch), "filter"); got != `(uid=ops\2a\28eu\29)` {
		t.Errorf("filter = %q", got)
	}

	// An unescaped '*' would match alice; escaped, it matches nobody.
	res = runProbe(t, base(srv, nil), Options{User: "a*", UserPassword: ldaptest.UserPassword})
	expectStatus(t, res, map[string]report.Status{LayerUserSearch: report.Fail})
}

func TestProbeFilterClauseExcludesUser(t *testing.T) {
	srv := needSlapd(t)
	values := base(srv, map[string]any{KeyUserFilter: "(&(uid={username})(objectClass=posixAccount))"})
	res := runProbe(t, values, Options{User: "jsmith", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerUserSearch)
	if c.Status != report.Fail {
		t.Fatalf("user search %s: %s", c.Status, c.Summary)
	}
	if got := evidence(c, "excluded by"); got != "(objectClass=posixAccount)" {
		t.Errorf("excluded by %q, evidence %+v", got, c.Evidence)
	}
	expectSummary(t, c, "the user exists")
}

func TestProbeUserOutsideBaseDN(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, map[string]any{KeyBaseDN: ldaptest.GroupsDN}), Options{User: "alice", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerUserSearch)
	if c.Status != report.Fail {
		t.Fatalf("user search %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "outside the base DN")
	if !strings.Contains(c.Hint, "--ldap-base-dn") {
		t.Errorf("hint %q", c.Hint)
	}
}

func TestProbeBaseDNOutsideNamingContexts(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, map[string]any{KeyDomain: "other.test"}), Options{User: "alice", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerBaseDN)
	if c.Status != report.Fail {
		t.Fatalf("base-dn %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "dc=other,dc=test is outside the naming contexts", "referral")
	expectStatus(t, res, map[string]report.Status{LayerServiceBind: report.Skip})
}

func TestProbeMappedAttributes(t *testing.T) {
	srv := needSlapd(t)
	res := runProbe(t, base(srv, nil), Options{User: "carol", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerAttributes)
	if c.Status != report.Warn {
		t.Fatalf("attributes %s: %s", c.Status, c.Summary)
	}
	if got := evidence(c, "ldap_attribute_email (email)"); got != "missing" {
		t.Errorf("email evidence %q", got)
	}
	if !strings.Contains(c.Hint, "--ldap-attribute-email mail") {
		t.Errorf("hint %q does not suggest mail", c.Hint)
	}

	res = runProbe(t, base(srv, map[string]any{KeyAttributeUID: "employeeNumber"}), Options{User: "alice", LookupOnly: true})
	c = layer(t, res, LayerAttributes)
	if c.Status != report.Fail || !strings.Contains(c.Summary, "employeeNumber missing") {
		t.Errorf("a missing uid attribute: %s %q", c.Status, c.Summary)
	}
	expectStatus(t, res, map[string]report.Status{LayerUserBind: report.Skip})

	// A missing uid and a missing e-mail: the summary keeps the required
	// attribute apart from the optional one.
	res = runProbe(t, base(srv, map[string]any{KeyAttributeUID: "employeeNumber"}), Options{User: "carol", LookupOnly: true})
	c = layer(t, res, LayerAttributes)
	want := "the user's entry lacks the attribute the manager requires: employeeNumber missing; optional attributes are not set: email missing, givenName missing"
	if c.Status != report.Fail || c.Summary != want {
		t.Errorf("missing uid and e-mail: %s %q, want %q", c.Status, c.Summary, want)
	}
}

func TestProbeSizeLimit(t *testing.T) {
	srv := needSlapd(t)
	values := base(srv, map[string]any{KeyUsername: nil, KeyPassword: nil, KeyUserFilter: "(|(uid={username})(objectClass=inetOrgPerson))"})
	res := runProbe(t, values, Options{User: "carol", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerUserSearch)
	if c.Status != report.Fail {
		t.Fatalf("user search %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "size limit")
}

func TestProbeWrongCA(t *testing.T) {
	srv := needSlapd(t)
	other := ldaptest.NewCA(t, "Some Other CA")
	res := runProbe(t, base(srv, map[string]any{KeyCAPath: other.PEMFile}), Options{User: "alice", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerTLSChain)
	if c.Status != report.Fail {
		t.Fatalf("tls.chain %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "is not signed by the CA in "+other.PEMFile)
	expectStatus(t, res, map[string]report.Status{LayerRootDSE: report.Skip, LayerServiceBind: report.Skip})

	res = runProbe(t, base(srv, map[string]any{KeyCAPath: other.PEMFile}), Options{User: "alice", UserPassword: ldaptest.UserPassword, InsecureSkipVerify: true})
	expectStatus(t, res, map[string]report.Status{LayerTLS: report.Warn, LayerTLSChain: report.Warn, LayerUserBind: report.Pass})
	if !strings.Contains(layer(t, res, LayerTLS).Summary, "NOT verified") {
		t.Error("the tls check does not say that verification is off")
	}
}

func TestProbeCertificateFaults(t *testing.T) {
	srv := needSlapd(t)
	now := time.Now()
	ca := ldaptest.NewCA(t, "Fault CA")
	// A CA made after its server certificate expired, and one that has
	// itself expired: no time exists at which crypto/x509 verifies either
	// chain, yet only the dates are wrong.
	newCA := ldaptest.NewCAValid(t, "New CA", now.Add(-time.Hour), now.Add(365*24*time.Hour))
	expiredCA := ldaptest.NewCAValid(t, "Expired CA", now.Add(-30*24*time.Hour), now.Add(-24*time.Hour))
	tests := []struct {
		name    string
		ca      *ldaptest.CA
		names   []string
		from    time.Time
		until   time.Time
		layer   string
		status  report.Status
		summary string
		hint    string
	}{
		{"another host", ca, []string{"ldap.other.test"}, now.Add(-time.Hour), now.Add(90 * 24 * time.Hour), LayerTLSHostname, report.Fail, "not valid for the IP address 127.0.0.1", "reissue it"},
		{"name but no IP", ca, []string{"localhost"}, now.Add(-time.Hour), now.Add(90 * 24 * time.Hour), LayerTLSHostname, report.Fail, "it lists DNS:localhost", "reissue it"},
		{"expired", ca, []string{"127.0.0.1"}, now.Add(-48 * time.Hour), now.Add(-24 * time.Hour), LayerTLSExpiry, report.Fail, "certificate expired on", "renew the LDAP server's certificate"},
		{"expired before its CA", newCA, []string{"127.0.0.1"}, now.Add(-48 * time.Hour), now.Add(-24 * time.Hour), LayerTLSExpiry, report.Fail, "certificate expired on", "renew the LDAP server's certificate"},
		{"not yet valid", ca, []string{"127.0.0.1"}, now.Add(24 * time.Hour), now.Add(90 * 24 * time.Hour), LayerTLSExpiry, report.Fail, "certificate is not valid before", "check the clocks"},
		{"expired CA", expiredCA, []string{"127.0.0.1"}, now.Add(-7 * 24 * time.Hour), now.Add(90 * 24 * time.Hour), LayerTLSExpiry, report.Fail, `CA certificate "Expired CA" in ` + expiredCA.PEMFile + " expired on", "pass the CA's current certificate with --ldap-ca-path"},
		{"expires soon", ca, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(10 * 24 * time.Hour), LayerTLSExpiry, report.Warn, "expires on", "before it expires"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := ldaptest.TLSProxy(t, srv.Addr(), tc.ca.Issue(t, tc.names, tc.from, tc.until))
			res := runProbe(t, base(srv, map[string]any{KeyServer: "ldaps://" + addr, KeyCAPath: tc.ca.PEMFile}),
				Options{User: "alice", UserPassword: ldaptest.UserPassword})
			c := layer(t, res, tc.layer)
			if c.Status != tc.status {
				t.Fatalf("%s %s: %s", tc.layer, c.Status, c.Summary)
			}
			expectSummary(t, c, tc.summary)
			if !strings.Contains(c.Hint, tc.hint) {
				t.Errorf("%s hint %q does not contain %q", tc.layer, c.Hint, tc.hint)
			}
			chain := layer(t, res, LayerTLSChain)
			if chain.Status != report.Pass {
				t.Errorf("tls.chain %s: %s (%s)", chain.Status, chain.Summary, chain.Hint)
			}
			if tc.status == report.Warn {
				expectStatus(t, res, map[string]report.Status{LayerUserBind: report.Pass})
			} else {
				expectStatus(t, res, map[string]report.Status{LayerServiceBind: report.Skip})
			}
		})
	}
}

func TestProbeProtocolMismatch(t *testing.T) {
	srv := needSlapd(t)
	tests := []struct {
		name     string
		url      string
		startTLS bool
		layer    string
		summary  string
		hint     string
	}{
		{"ldaps to the plain port", "ldaps://" + srv.Addr(), false, LayerTLS, "speaks plain LDAP, not ldaps", "ldap://127.0.0.1"},
		{"plain to the ldaps port", srv.TLSURL()[:4] + srv.TLSURL()[5:], false, LayerRootDSE, "expects TLS from the first byte", "ldaps://127.0.0.1"},
		{"StartTLS to the ldaps port", srv.TLSURL()[:4] + srv.TLSURL()[5:], true, LayerTLS, "StartTLS cannot work there", "without --starttls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values := base(srv, map[string]any{KeyServer: tc.url, KeyTimeout: "2s"})
			res := runProbe(t, values, Options{StartTLS: tc.startTLS})
			c := layer(t, res, tc.layer)
			if c.Status != report.Fail || res.Servers[0].FailedLayer != tc.layer {
				t.Fatalf("%s %s (%s), failed layer %q", tc.layer, c.Status, c.Summary, res.Servers[0].FailedLayer)
			}
			expectSummary(t, c, tc.summary)
			if !strings.Contains(c.Hint, tc.hint) {
				t.Errorf("hint %q does not contain %q", c.Hint, tc.hint)
			}
		})
	}
}

func TestProbeSilentServer(t *testing.T) {
	tests := []struct {
		name     string
		scheme   string
		startTLS bool
		want     string
	}{
		{"ldap", "ldap", false, LayerRootDSE},
		{"ldaps", "ldaps", false, LayerTLS},
		{"StartTLS", "ldap", true, LayerTLS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, accepted := ldaptest.CountingSilentServer(t)
			values := map[string]any{KeyServer: tc.scheme + "://" + addr, KeyDomain: "example.org", KeyTimeout: "300ms"}
			res := runProbe(t, values, Options{InsecureSkipVerify: true, StartTLS: tc.startTLS})
			if res.Servers[0].FailedLayer != tc.want {
				t.Fatalf("failed layer %q, want %s: %+v", res.Servers[0].FailedLayer, tc.want, res.Servers[0].Checks)
			}
			expectSummary(t, layer(t, res, tc.want), "within")
			// The step used up its timeout, so no second connection
			// tests what the port speaks: the layer takes one timeout.
			if n := accepted(); n != 1 {
				t.Errorf("the probe opened %d connections to a server that never answers, want 1", n)
			}
		})
	}
}

func TestProbeConnectionRefused(t *testing.T) {
	port, err := ldaptest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{KeyServer: "ldap://127.0.0.1:" + strconv.Itoa(port), KeyDomain: "example.org"}
	res := runProbe(t, values, Options{})
	c := layer(t, res, LayerTCP)
	if c.Status != report.Fail {
		t.Fatalf("tcp %s", c.Status)
	}
	expectSummary(t, c, "connection refused")
}

func TestProbeResetMidSearch(t *testing.T) {
	srv := needSlapd(t)
	addr := ldaptest.ResetMidSearch(t, srv.Addr())
	values := base(srv, map[string]any{KeyServer: "ldap://" + addr, KeyCAPath: nil})
	res := runProbe(t, values, Options{User: "alice", UserPassword: ldaptest.UserPassword})
	c := layer(t, res, LayerUserSearch)
	if c.Status != report.Fail {
		t.Fatalf("user search %s: %s", c.Status, c.Summary)
	}
	expectSummary(t, c, "the server reset the connection")
	expectStatus(t, res, map[string]report.Status{LayerServiceBind: report.Pass})
}

func TestProbeReplicas(t *testing.T) {
	srv := needSlapd(t)
	ca := ldaptest.NewCA(t, "Replica CA")
	replica := ldaptest.TLSProxy(t, srv.Addr(), ca.Issue(t, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour)))
	slapdCA, err := os.ReadFile(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	replicaCA, _ := os.ReadFile(ca.PEMFile)
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(bundle, append(slapdCA, replicaCA...), 0o644); err != nil {
		t.Fatal(err)
	}
	values := base(srv, map[string]any{KeyServer: []any{srv.TLSURL(), "ldaps://" + replica}, KeyCAPath: bundle})
	res := runProbe(t, values, Options{User: "alice", UserPassword: ldaptest.UserPassword})
	if len(res.Servers) != 2 {
		t.Fatalf("%d server results", len(res.Servers))
	}
	for _, s := range res.Servers {
		if s.FailedLayer != "" {
			t.Errorf("%s failed at %s", s.URL, s.FailedLayer)
		}
	}
	cmp := res.Comparison
	if cmp == nil || cmp.Status != report.Warn || !strings.Contains(cmp.Summary, "certificate issuer") {
		t.Fatalf("comparison = %+v, want a warning about the certificate issuer", cmp)
	}
	if strings.Contains(cmp.Summary, "user DN") {
		t.Errorf("the replicas agree on the user, but the comparison says %q", cmp.Summary)
	}
}

func TestProbeCancelled(t *testing.T) {
	addr := ldaptest.SilentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := resolveWith(t, map[string]any{KeyServer: "ldap://" + addr, KeyDomain: "example.org", KeyTimeout: "1m"})
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = Probe(ctx, Options{Settings: s, Observe: func(c report.Check) {
			if c.ID == LayerTLS {
				cancel()
			}
		}})
	}()
	<-done
	if err != context.Canceled {
		t.Fatalf("Probe error = %v, want context.Canceled", err)
	}
	c := layer(t, res, LayerRootDSE)
	if c.Status != report.Skip || !strings.Contains(c.Summary, "interrupted") {
		t.Errorf("rootdse after Ctrl-C: %s %q", c.Status, c.Summary)
	}
}

// TestProbeMemberOfModes runs a user lookup against slapd in each of its
// memberOf modes: stored (overlay), computed with nesting (dynlist), and
// none, where the manager falls back to a group search by filter.
func TestProbeMemberOfModes(t *testing.T) {
	needSlapd(t)
	for _, mode := range []string{"dynlist", "none"} {
		t.Run(mode, func(t *testing.T) {
			srv, err := ldaptest.Start(ldaptest.Options{Dir: filepath.Join(t.TempDir(), "slapd"), MemberOf: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			res := runProbe(t, base(srv, nil), Options{User: "bob", UserPassword: ldaptest.UserPassword})
			c := layer(t, res, LayerAttributes)
			membership := evidence(c, "ldap_attribute_group_membership (memberOf)")
			switch mode {
			case "dynlist":
				if !strings.Contains(membership, "cn=engineering") {
					t.Errorf("nested memberOf missing: %q", membership)
				}
			case "none":
				if membership != "missing" || !strings.Contains(evidence(c, "group lookup"), "(uniqueMember=uid=bob,ou=users,dc=example,dc=org)") {
					t.Errorf("memberOf %q, group lookup %q", membership, evidence(c, "group lookup"))
				}
			}
		})
	}
	res := runProbe(t, base(slapd, nil), Options{User: "bob", UserPassword: ldaptest.UserPassword})
	if got := evidence(layer(t, res, LayerAttributes), "ldap_attribute_group_membership (memberOf)"); got != "cn=developers,ou=groups,dc=example,dc=org" {
		t.Errorf("overlay memberOf = %q, want the direct group only", got)
	}
}
