package restapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/restapi/standin"
)

const testPassword = "pw-Zq81-never-shown"

// fakeManager answers the endpoints test-login uses. Each field overrides
// one endpoint's answer.
type fakeManager struct {
	userStatus int
	userBody   string
	userHeader map[string]string
	okStatus   int
	okBody     string
	idpStatus  int
	idpBody    string

	gotAuthUser, gotAuthPass, gotTenant, gotQuery string
}

func (f *fakeManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/v3.1/user":
		f.gotAuthUser, f.gotAuthPass, _ = r.BasicAuth()
		f.gotTenant = r.Header.Get("Tenant")
		f.gotQuery = r.URL.RawQuery
		for k, v := range f.userHeader {
			w.Header().Set(k, v)
		}
		w.WriteHeader(orStatus(f.userStatus))
		fmt.Fprint(w, f.userBody)
	case "/api/v3.1/ok":
		w.WriteHeader(orStatus(f.okStatus))
		fmt.Fprint(w, orBody(f.okBody, `"OK"`))
	case "/api/v3.1/idp":
		w.WriteHeader(orStatus(f.idpStatus))
		fmt.Fprint(w, orBody(f.idpBody, `"meme_auth,ldap"`))
	case "/api/v3.1/version":
		fmt.Fprint(w, `{"version": "7.0.4", "edition": "premium", "distribution": "rhel", "build": null}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message": "404 Not Found", "error_code": "not_found_error"}`)
	}
}

func orStatus(s int) int {
	if s == 0 {
		return http.StatusOK
	}
	return s
}

func orBody(b, def string) string {
	if b == "" {
		return def
	}
	return b
}

const userDoc = `{"username": "alice", "role": "default", "groups": ["devs"],
 "tenants": {"default_tenant": {"tenant-role": null, "roles": ["user"]}},
 "tenant_roles": {"direct": {}, "groups": {"default_tenant": {"user": ["devs"]}}},
 "group_system_roles": {"default": ["devs"]}, "active": true,
 "first_login_at": "2026-12-01T10:00:00.000Z", "last_login_at": null}`

func newTestClient(t *testing.T, rawURL string, opts Options) *Client {
	t.Helper()
	opts.URL = rawURL
	if opts.Credentials == (Credentials{}) {
		opts.Credentials = Credentials{Username: "alice", Password: testPassword}
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New(%s): %v", rawURL, err)
	}
	return c
}

// assertNoSecret fails when the password appears in the error or its hints.
func assertNoSecret(t *testing.T, e *apperr.Error) {
	t.Helper()
	if e == nil {
		return
	}
	text := e.Message + "\n" + strings.Join(e.Hints, "\n")
	if strings.Contains(text, testPassword) {
		t.Errorf("the password appears in the error: %s", text)
	}
}

func TestLoginAccepted(t *testing.T) {
	fake := &fakeManager{userBody: userDoc, userHeader: map[string]string{
		AuditAuthMethodHeader: "external", AuditUsernameHeader: "alice", AuditTenantHeader: "default_tenant"}}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	c := newTestClient(t, srv.URL, Options{Tenant: "default_tenant"})
	res, err := CheckLogin(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeAccepted || res.Err != nil {
		t.Fatalf("outcome %q, err %v; want accepted", res.Outcome, res.Err)
	}
	if fake.gotAuthUser != "alice" || fake.gotAuthPass != testPassword {
		t.Errorf("basic auth sent as %q/%q", fake.gotAuthUser, fake.gotAuthPass)
	}
	if fake.gotTenant != "default_tenant" {
		t.Errorf("Tenant header %q, want default_tenant", fake.gotTenant)
	}
	if fake.gotQuery != "_get_data=true" {
		t.Errorf("query %q, want _get_data=true", fake.gotQuery)
	}
	if !res.External() {
		t.Errorf("External() false with auth method %q", res.Audit.AuthMethod)
	}
	u := res.User
	if u.Username != "alice" || u.Role != "default" || strings.Join(u.Groups, ",") != "devs" {
		t.Errorf("user %+v", u)
	}
	if got := u.Tenants["default_tenant"]; strings.Join(got.Roles, ",") != "user" || got.TenantRole != "" {
		t.Errorf("tenant roles %+v", got)
	}
	if got := u.GroupTenants["default_tenant"]["user"]; len(got) != 1 || got[0] != "devs" {
		t.Errorf("group tenants %+v", u.GroupTenants)
	}
	if res.IDP == nil || strings.Join(res.IDP.Names, ",") != "meme_auth,ldap" {
		t.Errorf("idp %+v, note %q", res.IDP, res.IDPNote)
	}
	if res.Version == nil || res.Version.Version != "7.0.4" {
		t.Errorf("version %+v, note %q", res.Version, res.VersionNote)
	}
}

func TestLoginFailures(t *testing.T) {
	cases := []struct {
		name        string
		fake        fakeManager
		outcome     string
		code        string
		exit        int
		inMessage   string
		inHints     string
		wantHealthy *bool
	}{
		{
			name:      "wrong credentials",
			fake:      fakeManager{userStatus: 401, userBody: `{"message": "No authentication info provided", "error_code": "unauthorized_error", "server_traceback": null}`},
			outcome:   OutcomeRejected,
			code:      "login_rejected",
			exit:      apperr.ExitFailed,
			inMessage: "No authentication info provided",
			inHints:   "no authenticator module accepted the credentials",
		},
		{
			name:      "unknown tenant",
			fake:      fakeManager{userStatus: 403, userBody: `{"message": "Authorization failed: Tried to authenticate with invalid tenant name: nope", "error_code": "forbidden_error"}`},
			outcome:   OutcomeUnknownTenant,
			code:      "unknown_tenant",
			exit:      apperr.ExitFailed,
			inMessage: `no tenant "nope"`,
			inHints:   "--tenant",
		},
		{
			name:      "deactivated user",
			fake:      fakeManager{userStatus: 403, userBody: `{"message": "Authorization failed: User ` + "`alice`" + ` is deactivated", "error_code": "forbidden_error"}`},
			outcome:   OutcomeForbidden,
			code:      "forbidden",
			exit:      apperr.ExitFailed,
			inMessage: "is deactivated",
		},
		{
			name:      "maintenance mode",
			fake:      fakeManager{userStatus: 503, userBody: `{"message": "Your request was rejected since Cloudify manager is currently in maintenance mode", "error_code": "maintenance_mode_active"}`},
			outcome:   OutcomeMaintenance,
			code:      "maintenance_mode",
			exit:      apperr.ExitEnvironment,
			inMessage: "maintenance mode",
			inHints:   "maintenance-mode status",
		},
		{
			name:      "authenticator raised",
			fake:      fakeManager{userStatus: 500, okStatus: 500, okBody: `"FAIL"`, userBody: `{"message": "Authenticator meme failed: bad password ` + testPassword + `", "error_code": "internal_server_error", "server_traceback": "Traceback: ` + testPassword + `"}`},
			outcome:   OutcomeServerError,
			code:      "server_error",
			exit:      apperr.ExitFailed,
			inMessage: "bad password ********",
			inHints:   "cfyauth test NAME",
		},
		{
			name:    "not a manager",
			fake:    fakeManager{userStatus: 404, userBody: `<html>nope</html>`},
			outcome: OutcomeUnreachable,
			code:    "not_found",
			exit:    apperr.ExitEnvironment,
			inHints: "--manager-url",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&tc.fake)
			defer srv.Close()
			c := newTestClient(t, srv.URL, Options{Tenant: "nope"})
			res, err := CheckLogin(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome {
				t.Errorf("outcome %q, want %q", res.Outcome, tc.outcome)
			}
			if res.Err == nil {
				t.Fatal("no error for a failed login")
			}
			if res.Err.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", res.Err.Code, tc.code, res.Err.Message)
			}
			if got := res.Err.Kind.ExitCode(); got != tc.exit {
				t.Errorf("exit code %d, want %d", got, tc.exit)
			}
			if !strings.Contains(res.Err.Message, tc.inMessage) {
				t.Errorf("message %q does not contain %q", res.Err.Message, tc.inMessage)
			}
			if hints := strings.Join(res.Err.Hints, "\n"); !strings.Contains(hints, tc.inHints) {
				t.Errorf("hints %q do not contain %q", hints, tc.inHints)
			}
			if strings.Contains(res.ServerTraceback, testPassword) {
				t.Errorf("traceback not redacted: %q", res.ServerTraceback)
			}
			assertNoSecret(t, res.Err)
		})
	}
}

func TestLoginRejectedReportsServiceHealth(t *testing.T) {
	fake := &fakeManager{userStatus: 401, userBody: `{"message": "x", "error_code": "unauthorized_error"}`, okStatus: 500, okBody: `"FAIL"`}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	res, err := CheckLogin(context.Background(), newTestClient(t, srv.URL, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.ServiceOK == nil || *res.ServiceOK {
		t.Errorf("ServiceOK %v, want false when /ok says FAIL", res.ServiceOK)
	}

	fake.okStatus, fake.okBody = 0, ""
	res, _ = CheckLogin(context.Background(), newTestClient(t, srv.URL, Options{}))
	if res.ServiceOK == nil || !*res.ServiceOK {
		t.Errorf("ServiceOK %v, want true when /ok says OK", res.ServiceOK)
	}
}

func TestLoginAdminRejectedHints(t *testing.T) {
	fake := &fakeManager{userStatus: 401, userBody: `{"message": "Authentication failed for <User username=` + "`admin`" + `>. Wrong credentials or locked account", "error_code": "unauthorized_error"}`}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c := newTestClient(t, srv.URL, Options{Credentials: Credentials{Username: "admin", Password: testPassword}})
	res, _ := CheckLogin(context.Background(), c)
	hints := strings.Join(res.Err.Hints, "\n")
	if !strings.Contains(hints, "bootstrap admin is checked against the manager's own user database") {
		t.Errorf("hints for admin: %s", hints)
	}
}

func TestLoginOldManagerHasNoIDP(t *testing.T) {
	fake := &fakeManager{userBody: userDoc, idpStatus: 404, idpBody: `{"message": "not found", "error_code": "not_found_error"}`}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	res, err := CheckLogin(context.Background(), newTestClient(t, srv.URL, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeAccepted || res.IDP != nil {
		t.Fatalf("outcome %q idp %+v", res.Outcome, res.IDP)
	}
	if !strings.Contains(res.IDPNote, "Cloudify 6.3") {
		t.Errorf("idp note %q", res.IDPNote)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	res, err := CheckLogin(context.Background(), newTestClient(t, "http://"+addr, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeUnreachable || res.Err.Code != "connection_refused" {
		t.Fatalf("outcome %q code %v", res.Outcome, res.Err)
	}
	if res.Err.Kind.ExitCode() != apperr.ExitEnvironment {
		t.Errorf("exit code %d, want 3", res.Err.Kind.ExitCode())
	}
	hints := strings.Join(res.Err.Hints, "\n")
	if !strings.Contains(hints, "cfyauth restart") || !strings.Contains(hints, "cfyauth status") {
		t.Errorf("hints %q name neither cfyauth restart nor status", hints)
	}
	if !strings.Contains(res.Err.Message, addr) {
		t.Errorf("message %q does not name %s", res.Err.Message, addr)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)

	res, err := CheckLogin(context.Background(), newTestClient(t, srv.URL, Options{Timeout: 100 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Err == nil || res.Err.Code != "timeout" {
		t.Fatalf("err %v, want code timeout", res.Err)
	}
	if res.Err.Kind.ExitCode() != apperr.ExitEnvironment {
		t.Errorf("exit code %d, want 3", res.Err.Kind.ExitCode())
	}
}

func TestCancelledContextIsNotAnOutcome(t *testing.T) {
	srv := httptest.NewServer(&fakeManager{userBody: userDoc})
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := CheckLogin(ctx, newTestClient(t, srv.URL, Options{}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestRedirectIsReported(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://127.0.0.1:1"+r.URL.Path, http.StatusMovedPermanently)
	}))
	defer srv.Close()
	res, _ := CheckLogin(context.Background(), newTestClient(t, srv.URL, Options{}))
	if res.Err == nil || res.Err.Code != "redirected" {
		t.Fatalf("err %v, want redirected", res.Err)
	}
	if hints := strings.Join(res.Err.Hints, "\n"); !strings.Contains(hints, "--manager-url https://127.0.0.1:1") {
		t.Errorf("hints %q", hints)
	}
}

// tlsServer serves fake with the given certificate on 127.0.0.1.
func tlsServer(t *testing.T, fake http.Handler, certFile, keyFile string) *httptest.Server {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(fake)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// Handshakes that the client rejects are expected here.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTLS(t *testing.T) {
	certs, err := standin.WriteCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeManager{userBody: userDoc}
	good := tlsServer(t, fake, certs.ServerCert, certs.ServerKey)
	wrongName := tlsServer(t, fake, certs.WrongNameCert, certs.WrongNameKey)

	t.Run("right CA", func(t *testing.T) {
		c := newTestClient(t, good.URL, Options{TLS: TLSOptions{CAFile: certs.CA}})
		res, _ := CheckLogin(context.Background(), c)
		if res.Outcome != OutcomeAccepted {
			t.Fatalf("outcome %q: %v", res.Outcome, res.Err)
		}
		if tr := c.Trust(); tr.Source != "ca-cert" || tr.CAFiles[0] != certs.CA {
			t.Errorf("trust %+v", tr)
		}
	})

	t.Run("unknown authority", func(t *testing.T) {
		c := newTestClient(t, good.URL, Options{TLS: TLSOptions{CAFile: certs.OtherCA}})
		res, _ := CheckLogin(context.Background(), c)
		if res.Err == nil || res.Err.Code != "tls_unknown_authority" {
			t.Fatalf("err %v, want tls_unknown_authority", res.Err)
		}
		host := strings.TrimPrefix(good.URL, "https://")
		for _, want := range []string{certs.OtherCA, host, "cfyauth test CA"} {
			if !strings.Contains(res.Err.Message, want) {
				t.Errorf("message %q does not name %q", res.Err.Message, want)
			}
		}
		if res.Err.Kind.ExitCode() != apperr.ExitEnvironment {
			t.Errorf("exit code %d, want 3", res.Err.Kind.ExitCode())
		}
		if hints := strings.Join(res.Err.Hints, "\n"); !strings.Contains(hints, "--ca-cert") {
			t.Errorf("hints %q do not name --ca-cert", hints)
		}
	})

	t.Run("name mismatch", func(t *testing.T) {
		c := newTestClient(t, wrongName.URL, Options{TLS: TLSOptions{CAFile: certs.CA}})
		res, _ := CheckLogin(context.Background(), c)
		if res.Err == nil || res.Err.Code != "tls_name_mismatch" {
			t.Fatalf("err %v, want tls_name_mismatch", res.Err)
		}
		for _, want := range []string{"manager.example.test", "127.0.0.1", certs.CA} {
			if !strings.Contains(res.Err.Message, want) {
				t.Errorf("message %q does not name %q", res.Err.Message, want)
			}
		}
	})

	t.Run("insecure skip verify", func(t *testing.T) {
		c := newTestClient(t, wrongName.URL, Options{TLS: TLSOptions{InsecureSkipVerify: true}})
		res, _ := CheckLogin(context.Background(), c)
		if res.Outcome != OutcomeAccepted || !c.Trust().Insecure {
			t.Fatalf("outcome %q trust %+v", res.Outcome, c.Trust())
		}
	})

	t.Run("https to a plain HTTP port", func(t *testing.T) {
		plain := httptest.NewServer(fake)
		defer plain.Close()
		c := newTestClient(t, strings.Replace(plain.URL, "http://", "https://", 1), Options{TLS: TLSOptions{CAFile: certs.CA}})
		res, _ := CheckLogin(context.Background(), c)
		if res.Err == nil || res.Err.Code != "tls_not_tls" {
			t.Fatalf("err %v, want tls_not_tls", res.Err)
		}
	})

	t.Run("http to an HTTPS port", func(t *testing.T) {
		c := newTestClient(t, strings.Replace(good.URL, "https://", "http://", 1), Options{})
		res, _ := CheckLogin(context.Background(), c)
		if res.Err == nil || res.Err.Code != "bad_request" {
			t.Fatalf("err %v, want bad_request", res.Err)
		}
		if hints := strings.Join(res.Err.Hints, "\n"); !strings.Contains(hints, "https://") {
			t.Errorf("hints %q", hints)
		}
	})
}

func TestResolveTrust(t *testing.T) {
	certs, err := standin.WriteCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	under := func(p string) string { return filepath.Join(root, p) }
	if err := os.MkdirAll(under("/etc/cloudify/ssl"), 0o755); err != nil {
		t.Fatal(err)
	}
	parse := func(raw string) *url.URL {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}

	// Without the manager's CA files: system roots.
	tr, err := ResolveTrust(parse("https://127.0.0.1:8443"), TLSOptions{ManagerPath: under})
	if err != nil || tr.Source != "system" || len(tr.CAFiles) != 0 {
		t.Fatalf("no CA files: trust %+v, err %v", tr, err)
	}

	copyFile(t, certs.CA, under(InternalCACert))
	copyFile(t, certs.OtherCA, under(ExternalCACert))
	cases := []struct {
		url, source, file string
	}{
		{"https://127.0.0.1", "internal-ca", under(InternalCACert)},
		{"https://[::1]:443", "internal-ca", under(InternalCACert)},
		{"https://localhost", "internal-ca", under(InternalCACert)},
		{"https://mgr.example.test:53333", "internal-ca", under(InternalCACert)},
		{"https://mgr.example.test", "system", under(ExternalCACert)},
	}
	for _, tc := range cases {
		tr, err := ResolveTrust(parse(tc.url), TLSOptions{ManagerPath: under})
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if tr.Source != tc.source || len(tr.CAFiles) != 1 || tr.CAFiles[0] != tc.file {
			t.Errorf("%s: trust %+v, want source %s file %s", tc.url, tr, tc.source, tc.file)
		}
	}

	// --ca-cert wins over everything.
	tr, err = ResolveTrust(parse("https://127.0.0.1"), TLSOptions{CAFile: certs.OtherCA, ManagerPath: under})
	if err != nil || tr.Source != "ca-cert" {
		t.Errorf("explicit CA: trust %+v, err %v", tr, err)
	}

	// An unusable --ca-cert is a usage error naming the file.
	bad := filepath.Join(t.TempDir(), "not-a-cert.pem")
	if err := os.WriteFile(bad, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(root, "missing.pem")} {
		_, err = ResolveTrust(parse("https://127.0.0.1"), TLSOptions{CAFile: path})
		var e *apperr.Error
		if !errors.As(err, &e) || e.Kind != apperr.KindUsage || !strings.Contains(e.Message, path) {
			t.Errorf("CA file %s: err %v, want a usage error naming it", path, err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseManagerURL(t *testing.T) {
	for _, good := range []string{"http://127.0.0.1:8100", "https://mgr.example.test/", "https://[::1]:53333/prefix"} {
		if _, err := ParseManagerURL(good); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8100", "ftp://mgr", "https://", "https://admin:pw@mgr", "http://mgr/?x=1"} {
		_, err := ParseManagerURL(bad)
		var e *apperr.Error
		if !errors.As(err, &e) || e.Kind != apperr.KindUsage {
			t.Errorf("%q: err %v, want a usage error", bad, err)
			continue
		}
		if hints := strings.Join(e.Hints, " "); !strings.Contains(hints, "--manager-url") {
			t.Errorf("%q: hints %q do not name --manager-url", bad, hints)
		}
	}
}

func TestUserDocumentForms(t *testing.T) {
	cases := []struct {
		name, doc   string
		tenants     string
		groupsCount int
	}{
		{"full", userDoc, "default_tenant", 1},
		{"counts without _get_data", `{"username": "a", "tenants": 2, "groups": 1}`, "", 0},
		{"name to role map", `{"username": "a", "tenants": {"t1": "manager"}, "groups": []}`, "t1", 0},
	}
	for _, tc := range cases {
		var u User
		if err := json.Unmarshal([]byte(tc.doc), &u); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := strings.Join(u.TenantNames(), ","); got != tc.tenants {
			t.Errorf("%s: tenants %q, want %q", tc.name, got, tc.tenants)
		}
		if len(u.Groups) != tc.groupsCount {
			t.Errorf("%s: groups %v", tc.name, u.Groups)
		}
	}
}

func TestParseIDP(t *testing.T) {
	cases := map[string]string{
		`"local"`:            "",
		`"ldap,okta"`:        "ldap,okta",
		`meme_auth, ldap`:    "meme_auth,ldap",
		`"meme_auth"` + "\n": "meme_auth",
		``:                   "",
	}
	for body, want := range cases {
		if got := strings.Join(ParseIDP([]byte(body)).Names, ","); got != want {
			t.Errorf("ParseIDP(%q) = %q, want %q", body, got, want)
		}
	}
}

func TestConfigAndUserGroups(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v3.1/config":
			if r.URL.Query().Get("scope") != "rest" {
				t.Errorf("config scope %q", r.URL.Query().Get("scope"))
			}
			fmt.Fprint(w, `{"metadata": {}, "items": [{"name": "ldap_server", "value": "ldap://127.0.0.1:38900", "scope": "rest", "admin_only": false},
				{"name": "ldap_password", "value": "********", "scope": "rest", "admin_only": true}]}`)
		case "/api/v3.1/user-groups":
			fmt.Fprint(w, `{"items": [{"name": "devs", "ldap_dn": "cn=devs,ou=groups,dc=example,dc=org", "role": "default",
				"tenants": {"default_tenant": "user"}, "users": ["alice"]}]}`)
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, Options{})
	items, err := c.Config(context.Background(), "rest")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Name != "ldap_server" || string(items[0].Value) != `"ldap://127.0.0.1:38900"` || !items[1].AdminOnly {
		t.Errorf("config items %+v", items)
	}
	groups, err := c.UserGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].LDAPDN != "cn=devs,ou=groups,dc=example,dc=org" || groups[0].Tenants["default_tenant"] != "user" {
		t.Errorf("user groups %+v", groups)
	}
}

func TestCheckSAMLLogin(t *testing.T) {
	var deleted, posted string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v3.1/tokens":
			if _, _, ok := r.BasicAuth(); ok {
				t.Error("POST /tokens sent basic credentials")
			}
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			posted = body["saml-response"]
			if posted != "PHNhbWw+" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"message": "No authentication info provided", "error_code": "unauthorized_error"}`)
				return
			}
			w.Header().Set(AuditAuthMethodHeader, "external")
			fmt.Fprint(w, `{"id": "abc", "value": "ctok-abc-secret", "username": "alice"}`)
		case r.URL.Path == "/api/v3.1/user":
			if r.Header.Get(TokenHeader) != "ctok-abc-secret" {
				t.Errorf("GET /user token header %q", r.Header.Get(TokenHeader))
			}
			w.Header().Set(AuditAuthMethodHeader, "token")
			fmt.Fprint(w, userDoc)
		case r.Method == http.MethodDelete:
			deleted = r.URL.Path
			w.WriteHeader(http.StatusNoContent)
		default:
			fmt.Fprint(w, `"local"`)
		}
	}))
	defer srv.Close()
	c, err := New(Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}

	res, err := CheckSAMLLogin(context.Background(), c, "PHNhbWw+")
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeAccepted || res.Username != "alice" || !res.External() {
		t.Errorf("outcome %q user %q audit %+v", res.Outcome, res.Username, res.Audit)
	}
	if deleted != "/api/v3.1/tokens/abc" {
		t.Errorf("deleted %q, want the token cfyauth created", deleted)
	}

	res, err = CheckSAMLLogin(context.Background(), c, "Zm9yZ2Vk")
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeRejected || res.Err.Code != "login_rejected" || !strings.Contains(res.Err.Message, "SAML login rejected") {
		t.Errorf("forged response: outcome %q err %v", res.Outcome, res.Err)
	}
}

func TestCheckSAMLLoginMasksResponseAndTenant(t *testing.T) {
	const response = "PHNhbWxwOlJlc3BvbnNlIGZvcmdlZD0idHJ1ZSIvPg=="
	var postTenant, userTenant string
	accept := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v3.1/tokens":
			postTenant = r.Header.Get(TenantHeader)
			if r.Header.Get("Authorization") != "" || r.Header.Get(TokenHeader) != "" {
				t.Error("POST /tokens sent credentials")
			}
			if !accept {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprintf(w, `{"message": "bad response %s", "error_code": "unauthorized_error", "server_traceback": "saw %s"}`, response, response)
				return
			}
			// A manager before 6.4: a token without an id.
			fmt.Fprint(w, `{"value": "ctok-x-secret", "role": "default"}`)
		case r.URL.Path == "/api/v3.1/user":
			userTenant = r.Header.Get(TenantHeader)
			fmt.Fprint(w, userDoc)
		case r.Method == http.MethodDelete:
			t.Errorf("deleted %s although the token had no id", r.URL.Path)
		default:
			fmt.Fprint(w, `"local"`)
		}
	}))
	defer srv.Close()
	c, err := New(Options{URL: srv.URL, Tenant: "ops"})
	if err != nil {
		t.Fatal(err)
	}

	res, err := CheckSAMLLogin(context.Background(), c, response)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeRejected {
		t.Fatalf("outcome %q", res.Outcome)
	}
	if strings.Contains(res.Err.Message, response) || strings.Contains(res.ServerTraceback, response) {
		t.Errorf("the SAML response appears in the error %q or traceback %q", res.Err.Message, res.ServerTraceback)
	}
	if postTenant != "" {
		t.Errorf("POST /tokens sent Tenant %q; the console sends none", postTenant)
	}

	accept = true
	res, err = CheckSAMLLogin(context.Background(), c, response)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeAccepted || res.Username != "alice" {
		t.Fatalf("outcome %q user %q: %v", res.Outcome, res.Username, res.Err)
	}
	if userTenant != "ops" {
		t.Errorf("GET /user sent Tenant %q, want ops", userTenant)
	}
	if !strings.Contains(res.TokenNote, "without an id") {
		t.Errorf("token note %q", res.TokenNote)
	}
}
