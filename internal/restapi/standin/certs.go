package standin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certs are PEM files for HTTPS tests, all under one folder.
type Certs struct {
	// CA signed ServerCert and WrongNameCert.
	CA string
	// ServerCert is valid for 127.0.0.1, ::1 and localhost.
	ServerCert, ServerKey string
	// WrongNameCert is valid only for manager.example.test.
	WrongNameCert, WrongNameKey string
	// OtherCA signed nothing here: trusting it alone fails verification.
	OtherCA string
}

// WriteCerts makes a CA, a server certificate for the loopback addresses, a
// certificate for another name, and an unrelated CA, in dir.
func WriteCerts(dir string) (*Certs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create certificate folder: %w", err)
	}
	c := &Certs{
		CA:            filepath.Join(dir, "ca.pem"),
		ServerCert:    filepath.Join(dir, "server.pem"),
		ServerKey:     filepath.Join(dir, "server.key"),
		WrongNameCert: filepath.Join(dir, "wrongname.pem"),
		WrongNameKey:  filepath.Join(dir, "wrongname.key"),
		OtherCA:       filepath.Join(dir, "other-ca.pem"),
	}
	caCert, caKey, err := newCA("cfyauth test CA")
	if err != nil {
		return nil, err
	}
	otherCA, _, err := newCA("cfyauth unrelated test CA")
	if err != nil {
		return nil, err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	wrong := &x509.Certificate{
		Subject:  pkix.Name{CommonName: "manager.example.test"},
		DNSNames: []string{"manager.example.test"},
	}
	if err := writeLeaf(server, caCert, caKey, c.ServerCert, c.ServerKey); err != nil {
		return nil, err
	}
	if err := writeLeaf(wrong, caCert, caKey, c.WrongNameCert, c.WrongNameKey); err != nil {
		return nil, err
	}
	if err := writePEM(c.CA, "CERTIFICATE", caCert.Raw, 0o644); err != nil {
		return nil, err
	}
	if err := writePEM(c.OtherCA, "CERTIFICATE", otherCA.Raw, 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
}

func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return cert, key, nil
}

func writeLeaf(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	tmpl.SerialNumber = sn
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode server key: %w", err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writePEM(keyPath, "PRIVATE KEY", keyDER, 0o600)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
