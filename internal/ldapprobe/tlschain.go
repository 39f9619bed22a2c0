package ldapprobe

import (
	"bytes"
	"crypto/x509"
	"errors"
	"time"
)

// maxChainDepth bounds the length and the number of the certificate
// paths that buildPaths follows.
const maxChainDepth = 8

// chainVerification is the outcome of verifying the server's certificate
// chain apart from the validity dates, which tls.expiry reports. An
// expired certificate is not a broken chain: the manager rejects both, but
// the fixes differ.
type chainVerification struct {
	// chain runs from the leaf to the CA; nil when no chain was found.
	chain []*x509.Certificate
	// err is the verification error that is not about validity dates;
	// nil when the chain verifies, at the current time or inside the
	// period its certificates share, or when only the dates are wrong.
	err error
	// atNow is set when the chain verifies at the probe's current time.
	atNow bool
}

// isValidityError reports whether err is a certificate outside its
// validity period: crypto/x509 uses the Expired reason both for an
// expired certificate and for one that is not yet valid.
func isValidityError(err error) bool {
	var invalid x509.CertificateInvalidError
	return errors.As(err, &invalid) && invalid.Reason == x509.Expired
}

// verifyChain verifies the chain first at the current time. When that
// fails, it looks for a time at which every certificate of a chain to the
// CA is valid and verifies there, so that a certificate outside its
// validity period is distinguished from a chain that does not lead to the
// CA.
func verifyChain(f tlsFacts) chainVerification {
	certs := f.state.PeerCertificates
	leaf := certs[0]
	intermediates := x509.NewCertPool()
	for _, ic := range certs[1:] {
		intermediates.AddCert(ic)
	}
	verifyAt := func(at time.Time) ([][]*x509.Certificate, error) {
		return leaf.Verify(x509.VerifyOptions{
			Roots:         f.roots,
			Intermediates: intermediates,
			CurrentTime:   at,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
	}
	chains, nowErr := verifyAt(f.now)
	if nowErr == nil {
		return chainVerification{chain: chains[0], atNow: true}
	}

	// crypto/x509 reports a CA outside its validity period only as an
	// unknown authority, so the paths to the CA are built here without
	// looking at dates, and each is verified inside its common period.
	if len(f.caCerts) > 0 {
		var firstErr error
		for _, path := range buildPaths(leaf, certs[1:], f.caCerts) {
			at, ok := commonValidity(path)
			if !ok {
				// The signatures lead to the CA, but the certificates
				// are never valid at the same time: only the dates are
				// wrong.
				return chainVerification{chain: path}
			}
			chains, err := verifyAt(at)
			if err == nil {
				return chainVerification{chain: chains[0]}
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		if firstErr != nil {
			return chainVerification{err: firstErr}
		}
		return chainVerification{err: chainError(nowErr, verifyAt, leaf)}
	}

	// The system's CAs cannot be listed, so times inside the leaf's
	// validity are tried instead.
	for _, at := range []time.Time{leaf.NotBefore.Add(time.Minute), leaf.NotAfter.Add(-time.Minute)} {
		if chains, err := verifyAt(at); err == nil {
			return chainVerification{chain: chains[0]}
		}
	}
	return chainVerification{err: chainError(nowErr, verifyAt, leaf)}
}

// chainError returns the reason a chain does not verify that is not about
// dates: the error at the current time, unless that is a validity error,
// then the error at a time inside the leaf's validity.
func chainError(nowErr error, verifyAt func(time.Time) ([][]*x509.Certificate, error), leaf *x509.Certificate) error {
	if !isValidityError(nowErr) {
		return nowErr
	}
	middle := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if _, err := verifyAt(middle); err != nil && !isValidityError(err) {
		return err
	}
	return nowErr
}

// buildPaths returns the certificate paths from leaf through the
// intermediates to one of the CAs in which each certificate's signature
// verifies with the next one's key, ignoring validity dates.
func buildPaths(leaf *x509.Certificate, intermediates, cas []*x509.Certificate) [][]*x509.Certificate {
	var paths [][]*x509.Certificate
	var walk func(path []*x509.Certificate)
	walk = func(path []*x509.Certificate) {
		cur := path[len(path)-1]
		if len(path) > maxChainDepth || len(paths) >= maxChainDepth {
			return
		}
		for _, ca := range cas {
			if issuedBy(cur, ca) {
				paths = append(paths, append(append([]*x509.Certificate(nil), path...), ca))
			}
		}
		for _, ic := range intermediates {
			if !inPath(path, ic) && issuedBy(cur, ic) {
				walk(append(append([]*x509.Certificate(nil), path...), ic))
			}
		}
	}
	walk([]*x509.Certificate{leaf})
	return paths
}

// issuedBy reports whether parent's subject is child's issuer and its key
// made child's signature.
func issuedBy(child, parent *x509.Certificate) bool {
	return bytes.Equal(child.RawIssuer, parent.RawSubject) && child.CheckSignatureFrom(parent) == nil
}

func inPath(path []*x509.Certificate, cert *x509.Certificate) bool {
	for _, c := range path {
		if c.Equal(cert) {
			return true
		}
	}
	return false
}

// commonValidity returns a time at which every certificate of the path is
// valid: the middle of the period they share. It reports false when they
// share none.
func commonValidity(path []*x509.Certificate) (time.Time, bool) {
	from, until := path[0].NotBefore, path[0].NotAfter
	for _, c := range path[1:] {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	if !from.Before(until) {
		return time.Time{}, false
	}
	return from.Add(until.Sub(from) / 2), true
}
