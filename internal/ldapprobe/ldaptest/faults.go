package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// CA is a throwaway certificate authority for fault servers.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEMFile is the CA certificate written to a test folder.
	PEMFile string
}

// NewCA makes a CA valid from a week ago for a year and writes its
// certificate to a file in t's temp folder.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return NewCAValid(t, name, time.Now().Add(-7*24*time.Hour), time.Now().Add(365*24*time.Hour))
}

// NewCAValid makes a CA valid between notBefore and notAfter and writes its
// certificate to a file in t's temp folder.
func NewCAValid(t testing.TB, name string, notBefore, notAfter time.Time) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"cfyauth tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatalf("write CA file: %v", err)
	}
	return &CA{Cert: cert, key: key, PEMFile: file}
}

// Issue makes a server certificate for the given DNS names and IP
// addresses, valid between notBefore and notAfter.
func (ca *CA) Issue(t testing.TB, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate server key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "test server"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("create server certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// listen opens a loopback listener closed when the test ends, and calls
// serve for every connection until then.
func listen(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	addr, stop, err := serveLoopback(serve)
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	t.Cleanup(stop)
	return addr
}

// serveLoopback calls serve for every connection to a new loopback
// listener; stop closes the listener and every connection and waits for
// the serve calls to return.
func serveLoopback(serve func(net.Conn)) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
			}()
		}
	}()
	stop = func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	return l.Addr().String(), stop, nil
}

// SilentServer accepts connections and never sends a byte.
func SilentServer(t testing.TB) string {
	return listen(t, discard)
}

// CountingSilentServer is SilentServer that also returns how many
// connections it has accepted so far.
func CountingSilentServer(t testing.TB) (addr string, accepted func() int) {
	var mu sync.Mutex
	count := 0
	addr = listen(t, func(c net.Conn) {
		mu.Lock()
		count++
		mu.Unlock()
		discard(c)
	})
	return addr, func() int {
		mu.Lock()
		defer mu.Unlock()
		return count
	}
}

// SilentListener is SilentServer for callers without a testing.TB; stop
// closes the listener and every connection.
func SilentListener() (addr string, stop func(), err error) {
	return serveLoopback(discard)
}

func discard(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// TLSProxy terminates TLS with cert and forwards the plain bytes to
// target, so a real slapd can be reached through a certificate that slapd
// itself does not have (expired, or for another host).
func TLSProxy(t testing.TB, target string, cert tls.Certificate) string {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return listen(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			return
		}
		upstream, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer upstream.Close()
		pipe(tc, upstream)
	})
}

// pipe copies both ways until either side closes.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	<-done
}

// ResetMidSearch forwards plain LDAP to target until the client sends a
// search request with a non-empty base DN (the user search, not the
// RootDSE read). It replies to that request with the first bytes of a result
// entry and then resets the connection.
func ResetMidSearch(t testing.TB, target string) string {
	return listen(t, func(c net.Conn) {
		defer c.Close()
		upstream, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer upstream.Close()
		go func() { _, _ = io.Copy(c, upstream) }()
		for {
			packet, err := ber.ReadPacket(c)
			if err != nil {
				return
			}
			if isUserSearch(packet) {
				reset(c)
				return
			}
			if _, err := upstream.Write(packet.Bytes()); err != nil {
				return
			}
		}
	})
}

// isUserSearch reports whether packet is a SearchRequest whose base DN is
// not the empty RootDSE name.
func isUserSearch(packet *ber.Packet) bool {
	if len(packet.Children) < 2 {
		return false
	}
	op := packet.Children[1]
	if op.ClassType != ber.ClassApplication || op.Tag != 3 || len(op.Children) == 0 {
		return false
	}
	base, _ := op.Children[0].Value.(string)
	return base != ""
}

// reset writes a few bytes of a search result and closes the connection
// with SO_LINGER 0, which makes the kernel send a TCP RST.
func reset(c net.Conn) {
	// Half of a SearchResultEntry: a SEQUENCE header promising more bytes
	// than follow.
	_, _ = c.Write([]byte{0x30, 0x40, 0x02, 0x01, 0x02, 0x64, 0x3b})
	time.Sleep(20 * time.Millisecond)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
