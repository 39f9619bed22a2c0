package ldapprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// OIDs the probe looks for in the RootDSE.
const (
	oidPagedResults = "1.2.840.113556.1.4.319"
	oidWhoAmI       = "1.3.6.1.4.1.4203.1.11.3"
	oidADCapability = "1.2.840.113556.1.4.800"
)

// describeDialError explains a failed TCP connect and names the next step.
func describeDialError(err error, addr string) (summary, hint string) {
	var dnsErr *net.DNSError
	switch {
	case isTimeout(err):
		return fmt.Sprintf("no answer from %s within the timeout: the host is down or a firewall drops the traffic", addr),
			"check the host and port, and that a firewall lets this host reach it"
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection refused: nothing listens on %s", addr),
			"check the port in --ldap-server (389 for ldap://, 636 for ldaps:// by default) and that the LDAP server runs"
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("no route to %s", addr), "check the host in --ldap-server and this host's network"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve %s: %v", dnsErr.Name, dnsErr.Err), "check the host name in --ldap-server, or use its IP address"
	}
	return fmt.Sprintf("cannot connect to %s: %v", addr, err), "check the host and port in --ldap-server"
}

// ldapFailure is an LDAP operation's error in plain words.
type ldapFailure struct {
	// summary describes what happened, such as "invalid credentials (49)".
	summary string
	// code is the LDAP result code, or 0 when the server sent none.
	code uint16
	// diagnostic is the server's diagnostic message, if any.
	diagnostic string
	// explanation is the decoded diagnostic message, when a decoder recognises it.
	explanation string
	// ad is the Active Directory sub-code of a failed bind, if the
	// diagnostic message holds one.
	ad *ADDiagnostic
	// network is set when the connection broke or timed out rather than
	// the server answering.
	network bool
}

// describeLDAPError classifies the error of an operation on conn.
func describeLDAPError(err error, conn *recordingConn) ldapFailure {
	if errors.Is(err, context.Canceled) {
		return ldapFailure{summary: "interrupted", network: true}
	}
	var te *timeoutError
	if errors.As(err, &te) {
		return ldapFailure{summary: fmt.Sprintf("no answer within %s", te.timeout), network: true}
	}
	var le *ldap.Error
	if errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork {
		f := ldapFailure{code: le.ResultCode, summary: resultName(le.ResultCode)}
		if le.Err != nil {
			f.diagnostic = strings.TrimSpace(le.Err.Error())
		}
		f.explanation, f.ad = explainDiagnostic(le.ResultCode, f.diagnostic)
		return f
	}
	if errors.Is(err, ldap.ErrSizeLimitExceeded) {
		return ldapFailure{code: ldap.LDAPResultSizeLimitExceeded, summary: resultName(ldap.LDAPResultSizeLimitExceeded)}
	}
	var cause error
	if conn != nil {
		cause = conn.lastErr()
	}
	switch {
	case cause != nil && isReset(cause):
		return ldapFailure{summary: "the server reset the connection", network: true}
	case cause != nil && isClosed(cause):
		return ldapFailure{summary: "the server closed the connection", network: true}
	}
	return ldapFailure{summary: "the connection failed: " + err.Error(), network: true}
}

// resultName is a result code in words, such as "invalid credentials (49)".
func resultName(code uint16) string {
	name, ok := ldap.LDAPResultCodeMap[code]
	if !ok {
		name = "result code"
	}
	return fmt.Sprintf("%s (%d)", strings.ToLower(name), code)
}

// explainDiagnostic decodes a server's diagnostic message where its meaning
// is known. Active Directory puts the reason of a failed bind into it as a
// sub-code ("data 52e" wrong password, "data 775" locked out, …), and that
// text is the only signal of why the bind failed.
func explainDiagnostic(code uint16, diagnostic string) (string, *ADDiagnostic) {
	if code != ldap.LDAPResultInvalidCredentials || diagnostic == "" {
		return "", nil
	}
	d, ok := ParseADDiagnostic(diagnostic)
	if !ok {
		return "", nil
	}
	return d.Meaning(), &d
}

// describeHandshakeError explains a failed TLS handshake.
func describeHandshakeError(err error, conn *recordingConn) string {
	var alert tls.AlertError
	var header tls.RecordHeaderError
	var cause error
	if conn != nil {
		cause = conn.lastErr()
	}
	switch {
	case isTimeout(err):
		return "the server accepted the connection but did not complete the TLS handshake within the timeout"
	case errors.As(err, &header):
		return "the server's answer is not TLS"
	case errors.As(err, &alert):
		return fmt.Sprintf("the server rejected the TLS handshake: %v", err)
	case cause != nil && isReset(cause):
		return "the server reset the connection during the TLS handshake"
	case cause != nil && isClosed(cause), isClosed(err):
		return "the server closed the connection during the TLS handshake"
	}
	return "TLS handshake failed: " + err.Error()
}

// referralsOf returns the referral URLs of an LDAP result with result code
// referral (10); RFC 4511 puts them in the optional [3] field.
func referralsOf(err error) []string {
	var le *ldap.Error
	if !errors.As(err, &le) || le.Packet == nil || len(le.Packet.Children) < 2 {
		return nil
	}
	var urls []string
	for _, child := range le.Packet.Children[1].Children {
		if child.ClassType == ber.ClassContext && child.Tag == 3 {
			for _, u := range child.Children {
				urls = append(urls, fmt.Sprint(u.Value))
			}
		}
	}
	return urls
}
