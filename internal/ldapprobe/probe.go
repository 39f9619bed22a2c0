package ldapprobe

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/cfyauth/cfyauth/internal/report"
)

// Check IDs of the probe's layers, in the order they run for one server.
const (
	LayerTCP         = "tcp"
	LayerTLS         = "tls"
	LayerTLSChain    = "tls.chain"
	LayerTLSHostname = "tls.hostname"
	LayerTLSExpiry   = "tls.expiry"
	LayerRootDSE     = "rootdse"
	LayerBaseDN      = "base-dn"
	LayerServiceBind = "service-bind"
	LayerUserSearch  = "user-search"
	LayerUserBind    = "user-bind"
	LayerAttributes  = "attributes"
	// LayerGroups resolves the user's groups as the manager does.
	LayerGroups = "groups"
	// LayerGroupsInChain compares them with Active Directory's in-chain
	// matching rule; it runs only on Active Directory.
	LayerGroupsInChain = "groups.in-chain"
	// LayerPreview maps the groups to the manager's user groups, tenants
	// and roles; it runs when Options.Preview is set.
	LayerPreview = "preview"
	// LayerReplicas compares the servers when more than one is probed.
	LayerReplicas = "replicas"
)

// Options of one probe run.
type Options struct {
	Settings *Settings
	// User is the login name to test; empty skips the user layers.
	User string
	// UserPassword is the user's password. It must not be empty unless
	// LookupOnly is set: an empty simple-bind password is an
	// unauthenticated bind, which servers report as a success.
	UserPassword Secret
	// LookupOnly searches for the user and reads the attributes without
	// binding as the user.
	LookupOnly bool
	// StartTLS upgrades ldap:// URLs with the StartTLS operation.
	StartTLS bool
	// InsecureSkipVerify turns certificate failures into warnings.
	InsecureSkipVerify bool
	// Dialer opens connections; nil uses a net.Dialer.
	Dialer Dialer
	// Now is the clock for certificate validity; nil uses time.Now.
	Now func() time.Time
	// Observe, when set, receives every check as it completes. Calls are
	// serialized, but checks of different servers interleave.
	Observe func(report.Check)
	// Preview, when set, adds the preview layer: the manager's user groups
	// matched against the user's groups.
	Preview *PreviewInput
}

// ServerResult is the outcome of the layers for one server URL.
type ServerResult struct {
	URL    string         `json:"url"`
	Checks []report.Check `json:"checks"`
	// FailedLayer is the ID of the first layer that failed, or empty.
	FailedLayer string `json:"failed_layer,omitempty"`
	// UserDN is the DN the user search found, or empty.
	UserDN string `json:"user_dn,omitempty"`
	// Groups is the user's groups as the manager resolves them.
	Groups *GroupResult `json:"groups,omitempty"`
	// Preview is what the user may do on the manager, from its groups.
	Preview *Preview `json:"preview,omitempty"`

	root       *RootDSE
	userEntry  *ldap.Entry
	certIssuer string
}

// Result is the outcome of a probe run.
type Result struct {
	Servers []ServerResult `json:"servers"`
	// Comparison holds the replicas check when more than one server was
	// probed.
	Comparison *report.Check `json:"comparison,omitempty"`
}

// Checks returns every check of every server, then the comparison.
func (r *Result) Checks() []report.Check {
	var all []report.Check
	for _, s := range r.Servers {
		all = append(all, s.Checks...)
	}
	if r.Comparison != nil {
		all = append(all, *r.Comparison)
	}
	return all
}

// Probe runs the layers against every server of the settings at the same
// time. It returns the result even when ctx is cancelled, together with
// ctx's error.
func Probe(ctx context.Context, opts Options) (*Result, error) {
	if opts.Settings == nil || len(opts.Settings.Servers) == 0 {
		return nil, fmt.Errorf("probe LDAP: no server in the settings")
	}
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var roots *x509.CertPool
	var caCerts []*x509.Certificate
	if opts.Settings.CAPEM != "" {
		certs, err := ParseCACertificates(opts.Settings.CAPEM)
		if err != nil {
			return nil, fmt.Errorf("probe LDAP: CA certificate: %w", err)
		}
		roots = x509.NewCertPool()
		for _, cert := range certs {
			roots.AddCert(cert)
		}
		caCerts = certs
	}
	var mu sync.Mutex
	observe := func(c report.Check) {
		if opts.Observe == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		opts.Observe(c)
	}

	result := &Result{Servers: make([]ServerResult, len(opts.Settings.Servers))}
	var wg sync.WaitGroup
	for i, raw := range opts.Settings.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &serverProbe{opts: &opts, raw: raw, roots: roots, caCerts: caCerts, observe: observe}
			p.run(ctx)
			result.Servers[i] = p.result
		}()
	}
	wg.Wait()
	if len(result.Servers) > 1 {
		c := compareServers(result.Servers)
		result.Comparison = &c
		observe(c)
	}
	return result, ctx.Err()
}

// serverProbe runs the layers against one server URL.
type serverProbe struct {
	opts  *Options
	raw   string
	url   ServerURL
	roots *x509.CertPool
	// caCerts are the certificates of roots; nil for the system's CAs.
	caCerts []*x509.Certificate
	observe func(report.Check)

	plan   []string
	done   map[string]bool
	result ServerResult

	tcp  *recordingConn
	conn *ldap.Conn
	// rendering is the settings rendered for the user.
	rendering *Rendering
}

// layerPlan lists the layers that run for this server, in order.
func (p *serverProbe) layerPlan() []string {
	plan := []string{LayerTCP, LayerTLS}
	if p.url.TLS() || p.opts.StartTLS {
		plan = append(plan, LayerTLSChain, LayerTLSHostname, LayerTLSExpiry)
	}
	plan = append(plan, LayerRootDSE, LayerBaseDN, LayerServiceBind)
	if p.opts.Settings.HasServiceAccount() {
		plan = append(plan, LayerUserSearch, LayerUserBind, LayerAttributes)
	} else {
		// Without a service account the manager binds as the user first
		// and searches with the user's own rights.
		plan = append(plan, LayerUserBind, LayerUserSearch, LayerAttributes)
	}
	plan = append(plan, LayerGroups)
	if p.opts.Settings.IsActiveDirectory {
		plan = append(plan, LayerGroupsInChain)
	}
	if p.opts.Preview != nil {
		plan = append(plan, LayerPreview)
	}
	return plan
}

// planInChain adds the in-chain comparison to the plan once the RootDSE
// shows Active Directory, even when ldap_is_active_directory is off.
func (p *serverProbe) planInChain() {
	if !p.result.root.IsActiveDirectory() || containsString(p.plan, LayerGroupsInChain) {
		return
	}
	i := len(p.plan)
	if p.plan[i-1] == LayerPreview {
		i--
	}
	p.plan = append(p.plan[:i], append([]string{LayerGroupsInChain}, p.plan[i:]...)...)
}

// record adds a finished check and reports whether the next layers may run.
func (p *serverProbe) record(c report.Check, started time.Time) bool {
	c.Subject = p.raw
	c.Duration = time.Since(started)
	p.done[c.ID] = true
	p.result.Checks = append(p.result.Checks, c)
	p.observe(c)
	if c.Status == report.Fail && p.result.FailedLayer == "" {
		p.result.FailedLayer = c.ID
		return false
	}
	return c.Status != report.Fail
}

// skip records a layer that does not apply.
func (p *serverProbe) skip(id, summary, hint string) {
	p.record(report.Check{ID: id, Status: report.Skip, Summary: summary, Hint: hint}, time.Now())
}

// skipRest records every layer of the plan that did not run.
func (p *serverProbe) skipRest(ctx context.Context) {
	reason := "not run"
	switch {
	case ctx.Err() != nil:
		reason = "not run: interrupted"
	case p.result.FailedLayer != "":
		reason = fmt.Sprintf("not run: layer %s failed", p.result.FailedLayer)
	}
	for _, id := range p.plan {
		if !p.done[id] {
			p.skip(id, reason, "")
		}
	}
}

func (p *serverProbe) run(ctx context.Context) {
	p.done = map[string]bool{}
	p.result.URL = p.raw
	u, err := ParseServerURL(p.raw)
	if err != nil {
		p.plan = []string{LayerTCP}
		p.record(report.Check{ID: LayerTCP, Status: report.Fail, Summary: err.Error(),
			Hint: "use ldap://HOST:389 or ldaps://HOST:636"}, time.Now())
		return
	}
	p.url = u
	p.plan = p.layerPlan()
	defer p.close()
	defer p.skipRest(ctx)

	if !p.connect(ctx) {
		return
	}
	if !p.checkRootDSE(ctx) {
		return
	}
	p.planInChain()
	if !p.checkBaseDN() {
		return
	}
	if !p.checkServiceBind(ctx) {
		return
	}
	p.userLayers(ctx)
}

// close ends the LDAP session; the TCP connection goes with it.
func (p *serverProbe) close() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
	if p.tcp != nil {
		_ = p.tcp.Close()
	}
}

// timeout returns the bound of one step.
func (p *serverProbe) timeout() time.Duration { return p.opts.Settings.Timeout }

// remaining returns what is left of the timeout of a step that started at
// started. The probes that explain a failed step share its deadline, so a
// server that accepts and never answers fails a layer after one timeout.
func (p *serverProbe) remaining(started time.Time) time.Duration {
	return p.timeout() - time.Since(started)
}
