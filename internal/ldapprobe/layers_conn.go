package ldapprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/cfyauth/cfyauth/internal/report"
)

// connect runs the tcp and tls layers and leaves an LDAP session in
// p.conn. It reports whether the next layers may run.
func (p *serverProbe) connect(ctx context.Context) bool {
	addr := p.url.Address()
	started := time.Now()
	raw, err := dialTCP(ctx, p.opts.Dialer, addr, p.timeout())
	if ctx.Err() != nil {
		return false
	}
	c := report.Check{ID: LayerTCP}
	c.AddEvidence("address", addr)
	if p.url.DefaultPort {
		c.AddEvidence("port", fmt.Sprintf("%s (the default of %s://)", p.url.Port, p.url.Scheme))
	}
	if err != nil {
		c.Status = report.Fail
		c.Summary, c.Hint = describeDialError(err, addr)
		return p.record(c, started)
	}
	p.tcp = raw
	c.Status = report.Pass
	c.Summary = "connected to " + raw.RemoteAddr().String()
	if !p.record(c, started) {
		return false
	}

	switch {
	case p.url.TLS():
		return p.connectTLS(ctx, "ldaps", started)
	case p.opts.StartTLS:
		return p.connectStartTLS(ctx)
	}
	plain := report.Check{ID: LayerTLS, Status: report.Warn, Summary: "plain text (ldap:// without TLS): passwords cross the network unencrypted",
		Hint: "use ldaps:// with --ldap-ca-path; the manager supports ldaps://, not StartTLS"}
	plain.AddEvidence("mode", "plain")
	p.record(plain, time.Now())
	p.startSession(raw, false)
	return true
}

// startSession hands the connection to go-ldap.
func (p *serverProbe) startSession(conn net.Conn, isTLS bool) {
	p.conn = ldap.NewConn(conn, isTLS)
	p.conn.Start()
}

// connectStartTLS upgrades the plain connection with StartTLS.
func (p *serverProbe) connectStartTLS(ctx context.Context) bool {
	started := time.Now()
	err := startTLS(ctx, p.tcp, p.timeout())
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		c := report.Check{ID: LayerTLS, Status: report.Fail}
		c.AddEvidence("mode", "StartTLS")
		var se *StartTLSError
		if errors.As(err, &se) {
			c.Summary = "the server rejected StartTLS: " + resultName(se.Err.ResultCode)
			if diag := strings.TrimSpace(se.Err.Err.Error()); diag != "" {
				c.AddEvidence("diagnostic message", diag)
			}
			c.Hint = "enable TLS on the LDAP server, or use ldaps:// if it has an ldaps port"
			return p.record(c, started)
		}
		c.Summary = "no LDAP answer to the StartTLS request: " + describeLDAPError(err, p.tcp).summary
		c.Hint = "check that the port serves plain LDAP"
		if speaksTLS(ctx, p.opts.Dialer, p.url.Address(), p.url.Host, p.remaining(started)) {
			c.Summary = fmt.Sprintf("port %s expects TLS from the first byte (ldaps), so StartTLS cannot work there", p.url.Port)
			c.Hint = fmt.Sprintf("use ldaps://%s without --starttls", hostPort(p.url))
		}
		return p.record(c, started)
	}
	return p.connectTLS(ctx, "StartTLS", started)
}

// connectTLS runs the handshake over p.tcp and the certificate checks.
func (p *serverProbe) connectTLS(ctx context.Context, mode string, started time.Time) bool {
	if mode == "ldaps" {
		started = time.Now()
	}
	handshakeStarted := time.Now()
	tc, err := handshake(ctx, p.tcp, p.url.Host, p.timeout())
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		c := report.Check{ID: LayerTLS, Status: report.Fail}
		c.AddEvidence("mode", mode)
		c.AddEvidence("error", err.Error())
		c.Summary = describeHandshakeError(err, p.tcp)
		c.Hint = "check that the port serves TLS and the server has a certificate configured"
		if mode == "ldaps" && !isTimeout(err) && speaksPlainLDAP(ctx, p.opts.Dialer, p.url.Address(), p.remaining(handshakeStarted)) {
			c.Summary = fmt.Sprintf("port %s speaks plain LDAP, not ldaps: the TLS handshake got an LDAP answer", p.url.Port)
			c.Hint = fmt.Sprintf("point ldaps:// at the server's ldaps port (usually 636), or use ldap://%s (add --starttls to test StartTLS)", hostPort(p.url))
		}
		return p.record(c, started)
	}

	facts := tlsFacts{state: tc.ConnectionState(), roots: p.roots, caCerts: p.caCerts, host: p.url.Host, now: p.opts.Now(), insecure: p.opts.InsecureSkipVerify}
	facts.caSource = p.caSource()
	if len(facts.state.PeerCertificates) > 0 {
		facts.verified = verifyChain(facts)
	}
	if !p.record(checkTLSVersion(facts, mode), started) {
		return false
	}
	p.result.certIssuer = facts.state.PeerCertificates[0].Issuer.String()
	for _, check := range []func(tlsFacts) report.Check{checkChain, checkHostname, checkExpiry} {
		t0 := time.Now()
		if !p.record(check(facts), t0) {
			// No credential goes over a connection whose certificate
			// failed verification.
			_ = tc.Close()
			return false
		}
	}
	p.startSession(tc, true)
	return true
}

// caSource names the CA the chain is verified against.
func (p *serverProbe) caSource() string {
	s := p.opts.Settings
	switch {
	case s.CAPEM == "":
		return "the system's trusted CAs"
	case s.CAPath != "" && s.Sources[KeyCAPath].rank <= s.Sources[KeyCACert].rank:
		return "the CA in " + s.CAPath
	}
	return "the CA in ldap_ca_cert"
}

func hostPort(u ServerURL) string {
	if u.DefaultPort {
		if strings.Contains(u.Host, ":") {
			return "[" + u.Host + "]"
		}
		return u.Host
	}
	return u.Address()
}
