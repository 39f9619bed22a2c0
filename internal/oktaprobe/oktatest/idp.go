package oktatest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"
)

// ManagerHost is the host name the test manager is reached by. Nothing
// connects to it: it only appears in callback URLs and audiences.
const ManagerHost = "manager.example.test"

// Callback is the Console's SAML callback on the test manager.
const Callback = "https://" + ManagerHost + "/console/auth/saml/callback"

// IdPOptions configure a test identity provider.
type IdPOptions struct {
	// Signing signs responses and metadata; a fresh self-signed pair by
	// default.
	Signing *KeyPair
	// ExtraSigningCerts are published in the metadata beside the signing
	// certificate, as during a key rotation.
	ExtraSigningCerts []*x509.Certificate
	// Clock is the IdP's own time, which goes into assertions; the real
	// time when zero.
	Clock time.Time
	// DateOffset shifts the HTTP Date header the IdP sends from the real
	// time, to imitate an IdP whose clock differs from the local one.
	DateOffset time.Duration
	// Mutate edits each assertion before it is signed.
	Mutate func(*saml.Assertion)
	// SignatureMethod is the XML signature algorithm URI; RSA-SHA256 when
	// empty.
	SignatureMethod string
}

// IdP is a crewjam/saml identity provider served over TLS on 127.0.0.1
// with a certificate from its own test CA.
type IdP struct {
	URL     string
	CA      KeyPair
	Signing KeyPair
	Server  *httptest.Server
	idp     *samlidp.Server
	client  *http.Client
	t       testing.TB
}

// StartIdP starts an identity provider with the test manager registered as a
// service provider; it stops when the test ends.
func StartIdP(t testing.TB, o IdPOptions) *IdP {
	t.Helper()
	ca := NewCert(t, CertOptions{CommonName: "cfyauth test IdP CA", IsCA: true, KeyIndex: 0})
	tlsPair := NewCert(t, CertOptions{CommonName: "127.0.0.1", Parent: &ca, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"}, KeyIndex: 1})
	signing := NewCert(t, CertOptions{CommonName: "cfyauth test IdP signing", KeyIndex: 2})
	if o.Signing != nil {
		signing = *o.Signing
	}

	i := &IdP{CA: ca, Signing: signing, t: t}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(o.DateOffset).UTC().Format(http.TimeFormat))
		i.idp.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(handler)
	srv.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{tlsPair.TLSCertificate()}}
	// Tests make handshakes fail on purpose; keep them out of the test log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	i.Server = srv
	i.URL = srv.URL

	base, _ := url.Parse(srv.URL)
	opts := samlidp.Options{
		URL:               *base,
		Key:               signing.Key,
		Certificate:       signing.Cert,
		Store:             &samlidp.MemoryStore{},
		Logger:            quietLogger{},
		ExtraCertificates: o.ExtraSigningCerts,
	}
	if !o.Clock.IsZero() {
		opts.Clock = dsig.NewFakeClockAt(o.Clock)
	}
	i.idp, err = samlidp.New(opts)
	if err != nil {
		t.Fatalf("start the SAML IdP: %v", err)
	}
	i.idp.IDP.AssertionMaker = cloudifyAssertionMaker{mutate: o.Mutate}
	i.idp.IDP.SignatureMethod = o.SignatureMethod

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	i.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	i.put("/services/cloudify", "application/samlmetadata+xml", []byte(managerSPMetadata))
	i.put("/shortcuts/cloudify", "application/json", []byte(`{"name":"cloudify","service_provider":"`+Callback+`"}`))
	return i
}

// CAPEM returns the IdP's TLS CA in PEM form, for --idp-ca-cert.
func (i *IdP) CAPEM() []byte { return i.CA.CertPEM() }

// MetadataURL is where the IdP serves its metadata.
func (i *IdP) MetadataURL() string { return i.URL + "/metadata" }

// SSOURL is the IdP's sign-in URL for the test manager.
func (i *IdP) SSOURL() string { return i.URL + "/login/cloudify" }

// Metadata downloads the IdP's metadata.
func (i *IdP) Metadata() []byte {
	i.t.Helper()
	resp, err := i.client.Get(i.MetadataURL())
	if err != nil {
		i.t.Fatalf("get metadata: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return body
}

// User is an account on the test IdP.
type User struct {
	Name      string   `json:"name"`
	Password  string   `json:"password"`
	Email     string   `json:"email,omitempty"`
	GivenName string   `json:"given_name,omitempty"`
	Surname   string   `json:"surname,omitempty"`
	Groups    []string `json:"groups,omitempty"`
}

// AddUser creates a user on the IdP.
func (i *IdP) AddUser(u User) {
	i.t.Helper()
	body, _ := json.Marshal(u)
	i.put("/users/"+url.PathEscape(u.Name), "application/json", body)
}

// Login signs in to the IdP as the user, as a browser posting the IdP's
// login form would, and returns the SAMLResponse form value the IdP sends
// the browser to post to the manager.
func (i *IdP) Login(name, password string) string {
	i.t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: i.client.Transport, Jar: jar}
	resp, err := browser.PostForm(i.URL+"/login", url.Values{"user": {name}, "password": {password}})
	if err != nil {
		i.t.Fatalf("log in to the IdP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		i.t.Fatalf("log in to the IdP as %s: %s", name, resp.Status)
	}
	resp, err = browser.Get(i.SSOURL())
	if err != nil {
		i.t.Fatalf("open the IdP's sign-in URL: %v", err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	m := samlResponseField.FindSubmatch(page)
	if m == nil {
		i.t.Fatalf("the IdP response (%s) has no SAMLResponse field: %.300s", resp.Status, page)
	}
	return html.UnescapeString(string(m[1]))
}

// LoginXML is Login, decoded to the response's XML.
func (i *IdP) LoginXML(name, password string) []byte {
	i.t.Helper()
	raw, err := base64.StdEncoding.DecodeString(i.Login(name, password))
	if err != nil {
		i.t.Fatalf("decode SAMLResponse: %v", err)
	}
	return raw
}

var samlResponseField = regexp.MustCompile(`name="SAMLResponse" value="([^"]*)"`)

func (i *IdP) put(path, contentType string, body []byte) {
	i.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, i.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := i.client.Do(req)
	if err != nil {
		i.t.Fatalf("PUT %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		i.t.Fatalf("PUT %s: %s %s", path, resp.Status, msg)
	}
}

// managerSPMetadata describes the Console as a SAML service provider with
// its callback as entity ID and assertion consumer service, as Cloudify's
// OKTA setup has it.
const managerSPMetadata = `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + Callback + `">
  <SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + Callback + `" index="0" isDefault="true"/>
  </SPSSODescriptor>
</EntityDescriptor>`

// cloudifyAssertionMaker makes crewjam's default assertion and replaces its
// attributes with the ones Cloudify's OKTA setup maps: username, email,
// firstname, lastname and groups.
type cloudifyAssertionMaker struct {
	mutate func(*saml.Assertion)
}

func (m cloudifyAssertionMaker) MakeAssertion(req *saml.IdpAuthnRequest, session *saml.Session) error {
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
		return err
	}
	attr := func(name string, values ...string) saml.Attribute {
		a := saml.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"}
		for _, v := range values {
			a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
		}
		return a
	}
	attrs := []saml.Attribute{attr("username", session.UserName)}
	if session.UserEmail != "" {
		attrs = append(attrs, attr("email", session.UserEmail))
	}
	if session.UserGivenName != "" {
		attrs = append(attrs, attr("firstname", session.UserGivenName))
	}
	if session.UserSurname != "" {
		attrs = append(attrs, attr("lastname", session.UserSurname))
	}
	if session.Groups != nil {
		attrs = append(attrs, attr("groups", session.Groups...))
	}
	req.Assertion.AttributeStatements = []saml.AttributeStatement{{Attributes: attrs}}
	if m.mutate != nil {
		m.mutate(req.Assertion)
	}
	return nil
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...interface{}) {}
func (quietLogger) Print(...interface{})          {}
func (quietLogger) Println(...interface{})        {}
func (quietLogger) Fatal(v ...interface{})        { panic(fmt.Sprint(v...)) }
func (quietLogger) Fatalf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}
func (quietLogger) Fatalln(v ...interface{})          { panic(fmt.Sprint(v...)) }
func (quietLogger) Panic(v ...interface{})            { panic(fmt.Sprint(v...)) }
func (quietLogger) Panicf(f string, v ...interface{}) { panic(fmt.Sprintf(f, v...)) }
func (quietLogger) Panicln(v ...interface{})          { panic(fmt.Sprint(v...)) }
