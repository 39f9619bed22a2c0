package ldapprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// startTLSOID is the StartTLS extended operation (RFC 4511 section 4.14).
const startTLSOID = "1.3.6.1.4.1.1466.20037"

// Dialer opens network connections; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// recordingConn keeps the first read or write error of a connection, because
// go-ldap reports a broken connection only as text and the probe needs the
// typed error (io.EOF, ECONNRESET) to say what happened.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.record(err)
	return n, err
}

func (c *recordingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.record(err)
	return n, err
}

func (c *recordingConn) record(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

// lastErr returns the first I/O error seen, or nil.
func (c *recordingConn) lastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// bounded runs op with the step timeout. When the step's context ends
// first, the connection is closed so that a blocked read returns; the
// returned error then says whether the step timed out or was cancelled.
func bounded(ctx context.Context, timeout time.Duration, conn net.Conn, op func() error) error {
	stepCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(stepCtx, func() { _ = conn.Close() })
	err := op()
	if !stop() {
		// The context ended while op ran: report why instead of the
		// error that closing the connection caused.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &timeoutError{timeout: timeout, cause: err}
	}
	return err
}

// timeoutError is a step that did not finish within its timeout.
type timeoutError struct {
	timeout time.Duration
	cause   error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no answer within %s", e.timeout)
}

func (e *timeoutError) Unwrap() error { return e.cause }

// stepError replaces the error of a step whose context ended with the
// reason it ended: cancellation of the run, or the step's timeout.
func stepError(ctx, stepCtx context.Context, timeout time.Duration, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if stepCtx.Err() != nil {
		return &timeoutError{timeout: timeout, cause: err}
	}
	return err
}

// isTimeout reports whether err is a step timeout or a network timeout.
func isTimeout(err error) bool {
	var te *timeoutError
	if errors.As(err, &te) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dialTCP opens the TCP connection to the server.
func dialTCP(ctx context.Context, d Dialer, addr string, timeout time.Duration) (*recordingConn, error) {
	stepCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.DialContext(stepCtx, "tcp", addr)
	if err != nil {
		return nil, stepError(ctx, stepCtx, timeout, err)
	}
	return &recordingConn{Conn: c}, nil
}

// tlsConfig is the client configuration of the probe. Verification is done
// afterwards by the tls.* checks, which report chain, host name and expiry
// separately; no credential is sent before they pass.
func tlsConfig(host string) *tls.Config {
	cfg := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // verified by the tls.chain, tls.hostname and tls.expiry checks
		MinVersion:         tls.VersionTLS10,
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	return cfg
}

// handshake runs a TLS client handshake over conn within the timeout.
func handshake(ctx context.Context, conn net.Conn, host string, timeout time.Duration) (*tls.Conn, error) {
	tc := tls.Client(conn, tlsConfig(host))
	stepCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(stepCtx); err != nil {
		return nil, stepError(ctx, stepCtx, timeout, err)
	}
	return tc, nil
}

// StartTLSError is a StartTLS request that the server answered with a
// result code other than success.
type StartTLSError struct {
	Err *ldap.Error
}

func (e *StartTLSError) Error() string { return "StartTLS rejected: " + e.Err.Error() }

func (e *StartTLSError) Unwrap() error { return e.Err }

// startTLS sends the StartTLS extended request on a fresh connection and
// reads its response directly, before go-ldap reads anything, so that a
// failure keeps its type.
func startTLS(ctx context.Context, conn net.Conn, timeout time.Duration) error {
	packet := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	packet.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(1), "MessageID"))
	request := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "Start TLS")
	request.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, startTLSOID, "StartTLS OID"))
	packet.AppendChild(request)

	return bounded(ctx, timeout, conn, func() error {
		if _, err := conn.Write(packet.Bytes()); err != nil {
			return fmt.Errorf("send StartTLS request: %w", err)
		}
		// ReadPacket reads exactly one message, so the server's first
		// TLS bytes stay unread for the handshake.
		response, err := ber.ReadPacket(conn)
		if err != nil {
			return fmt.Errorf("read StartTLS response: %w", err)
		}
		if err := ldap.GetLDAPError(response); err != nil {
			var le *ldap.Error
			if errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork {
				return &StartTLSError{Err: le}
			}
			return fmt.Errorf("read StartTLS response: %w", err)
		}
		return nil
	})
}

// isReset reports whether err is a connection reset or an abort by the
// peer.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}

// isClosed reports whether err is the peer closing the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// speaksPlainLDAP opens a new connection and sends a RootDSE search in
// plain text; any LDAP response, even an error result, proves the port
// speaks plain LDAP. The whole test takes at most timeout; without time
// left it reports false.
func speaksPlainLDAP(ctx context.Context, d Dialer, addr string, timeout time.Duration) bool {
	if timeout <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := dialTCP(ctx, d, addr, timeout)
	if err != nil {
		return false
	}
	conn := ldap.NewConn(raw, false)
	conn.Start()
	defer conn.Close()
	err = bounded(ctx, timeout, raw, func() error {
		_, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=*)", []string{"1.1"}, nil))
		return err
	})
	if err == nil {
		return true
	}
	var le *ldap.Error
	return errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork
}

// speaksTLS opens a new connection and tries a TLS handshake without
// verification; success proves the port expects ldaps. The whole test
// takes at most timeout; without time left it reports false.
func speaksTLS(ctx context.Context, d Dialer, addr, host string, timeout time.Duration) bool {
	if timeout <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := dialTCP(ctx, d, addr, timeout)
	if err != nil {
		return false
	}
	defer raw.Close()
	tc, err := handshake(ctx, raw, host, timeout)
	if err != nil {
		return false
	}
	_ = tc.Close()
	return true
}
