// Package oktatest runs a SAML identity provider inside a Go test process,
// over TLS on loopback, and makes the certificates, metadata and captured
// responses that the OKTA checks are tested with. It is for tests only.
package oktatest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// KeyPair is a certificate and its private key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// CertPEM returns the certificate in PEM form.
func (k KeyPair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Cert.Raw})
}

// KeyPEM returns the private key in PKCS#8 PEM form.
func (k KeyPair) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TLSCertificate returns the pair for a tls.Config.
func (k KeyPair) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{k.Cert.Raw}, PrivateKey: k.Key, Leaf: k.Cert}
}

var (
	keyMu    sync.Mutex
	keyCache []*rsa.PrivateKey
)

// rsaKey returns the i-th of a few 2048-bit keys generated once per test
// binary, because key generation dominates the tests' run time otherwise.
func rsaKey(i int) *rsa.PrivateKey {
	keyMu.Lock()
	defer keyMu.Unlock()
	for len(keyCache) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keyCache = append(keyCache, k)
	}
	return keyCache[i]
}

// CertOptions describe a generated certificate.
type CertOptions struct {
	CommonName string
	NotBefore  time.Time
	NotAfter   time.Time
	IsCA       bool
	// Parent signs the certificate; nil makes it self-signed.
	Parent *KeyPair
	// IPs and DNSNames become subject alternative names.
	IPs      []net.IP
	DNSNames []string
	// KeyIndex picks one of the cached keys; pairs with equal indexes
	// share a key.
	KeyIndex int
}

var serial int64 = 1000

// NewCert generates a certificate with crypto/x509.
func NewCert(t testing.TB, o CertOptions) KeyPair {
	t.Helper()
	key := rsaKey(o.KeyIndex)
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	keyMu.Lock()
	serial++
	sn := serial
	keyMu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(sn),
		Subject:               pkix.Name{CommonName: o.CommonName, Organization: []string{"cfyauth tests"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		BasicConstraintsValid: true,
		IsCA:                  o.IsCA,
		IPAddresses:           o.IPs,
		DNSNames:              o.DNSNames,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if o.IsCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else if len(o.IPs) > 0 || len(o.DNSNames) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	parentCert, parentKey := tmpl, key
	if o.Parent != nil {
		parentCert, parentKey = o.Parent.Cert, o.Parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("create certificate %s: %v", o.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate %s: %v", o.CommonName, err)
	}
	return KeyPair{Cert: cert, Key: key}
}
