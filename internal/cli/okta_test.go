package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
)

// runCLI runs one cfyauth command line in-process and returns its exit
// code, stdout and stderr.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	app := NewApp(io, func(string) string { return "" })
	code := app.Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

// oktaSandbox lays out a manager with the IdP's certificate installed and
// the Console pointed at the IdP, and writes the IdP's TLS CA to a file.
func oktaSandbox(t *testing.T, idp *oktatest.IdP) (root, caFile string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: "7.0", UID: os.Getuid(), GID: os.Getgid(), Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	write := func(path string, data []byte) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(manager.OktaCertificate, idp.Signing.CertPEM())
	write("/opt/cloudify-stage/dist/userData/config.json",
		[]byte(`{"auth": {"type": "saml", "certPath": "/etc/cloudify/ssl/okta_certificate.pem", "loginPageUrl": "`+idp.SSOURL()+`"}}`))
	caFile = filepath.Join(t.TempDir(), "idp-ca.pem")
	if err := os.WriteFile(caFile, idp.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, caFile
}

func TestOktaCheckLiveIdPJSON(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(oktatest.User{Name: "jane.doe@example.test", Password: "pw", Email: "jane.doe@example.test", GivenName: "Jane", Surname: "Doe", Groups: []string{"Cloudify Admins"}})
	root, caFile := oktaSandbox(t, idp)
	captured := idp.Login("jane.doe@example.test", "pw")

	code, stdout, stderr := runCLI(t, captured, "--root", root, "-o", "json", "okta", "check",
		"--manager-host", oktatest.ManagerHost, "--metadata", idp.MetadataURL(), "--idp-ca-cert", caFile, "--saml-response", "-")
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var doc struct {
		OK      bool           `json:"ok"`
		Command string         `json:"command"`
		Summary map[string]int `json:"summary"`
		User    struct {
			Attributes map[string][]string `json:"attributes"`
		} `json:"user"`
		Checks []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"checks"`
		Certificate struct {
			SHA256 string `json:"sha256"`
		} `json:"certificate"`
		InsecureSkipVerify bool `json:"insecure_skip_verify"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, stdout)
	}
	if !doc.OK || doc.Command != "okta check" || doc.Summary["fail"] != 0 || doc.InsecureSkipVerify {
		t.Errorf("ok %v command %q summary %v", doc.OK, doc.Command, doc.Summary)
	}
	if got := doc.User.Attributes["groups"]; len(got) != 1 || got[0] != "Cloudify Admins" {
		t.Errorf("groups %q", got)
	}
	if doc.Certificate.SHA256 == "" || len(doc.Checks) < 15 {
		t.Errorf("certificate %q, %d checks", doc.Certificate.SHA256, len(doc.Checks))
	}
	if strings.Contains(stdout, captured[:40]) {
		t.Error("the JSON output repeats the captured response")
	}
}

func TestOktaCheckTableAndExitCodes(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(oktatest.User{Name: "bob", Password: "pw"})
	root, caFile := oktaSandbox(t, idp)

	code, stdout, stderr := runCLI(t, "", "--root", root, "okta", "check", "--idp-ca-cert", caFile)
	if code != 0 || !strings.Contains(stdout, "sso-url") || !strings.Contains(stderr, "passed") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}

	// A wrong manager host makes the response checks fail: exit 1.
	respFile := filepath.Join(t.TempDir(), "resp.txt")
	os.WriteFile(respFile, []byte(idp.Login("bob", "pw")), 0o644)
	code, stdout, stderr = runCLI(t, "", "--root", root, "okta", "check", "--idp-ca-cert", caFile,
		"--manager-host", "other.example.test", "--saml-response", respFile)
	if code != 1 || !strings.Contains(stdout, "wrong audience") || !strings.Contains(stderr, "OKTA checks failed") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}

	// Warnings (no groups attribute) fail only with --strict.
	code, _, _ = runCLI(t, "", "--root", root, "okta", "check", "--idp-ca-cert", caFile,
		"--manager-host", oktatest.ManagerHost, "--saml-response", respFile)
	if code != 0 {
		t.Errorf("without --strict: exit %d", code)
	}
	code, _, stderr = runCLI(t, "", "--root", root, "--strict", "okta", "check", "--idp-ca-cert", caFile,
		"--manager-host", oktatest.ManagerHost, "--saml-response", respFile)
	if code != 1 || !strings.Contains(stderr, "--strict") {
		t.Errorf("with --strict: exit %d\n%s", code, stderr)
	}
}

func TestOktaCheckUsageErrors(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	root, caFile := oktaSandbox(t, idp)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--at", "2026-01-01T00:00:00Z"}, "--at applies to --saml-response"},
		{[]string{"--saml-response", "missing.txt"}, "--saml-response missing.txt: no such file"},
		{[]string{"--saml-response", caFile, "--at", "yesterday"}, "not an RFC 3339 time"},
		{[]string{"--metadata", "http://idp.example.test/metadata"}, "plain http"},
		{[]string{"--metadata", "ftp://idp.example.test/metadata"}, "neither an https:// URL nor a file"},
		{[]string{"--metadata", "missing.xml"}, "--metadata missing.xml: no such file"},
		{[]string{"--metadata-ca", caFile}, "--metadata-ca needs --metadata"},
		{[]string{"--idp-ca-cert", root + "/etc/passwd"}, "contains no PEM certificate"},
		{[]string{"--idp-ca-cert", caFile, "--insecure-skip-verify"}, "cannot be used together"},
		{[]string{"--manager-host", "https://mgr.example.test/"}, "is not a host name"},
		{[]string{"--timeout", "0s"}, "--timeout 0s is not positive"},
		{[]string{"--certificate", "missing.pem"}, "--certificate missing.pem: no such file"},
		{[]string{"--console-config", "missing.json"}, "--console-config missing.json: no such file"},
		{[]string{"extra"}, "takes no arguments"},
	}
	for _, tc := range cases {
		args := append([]string{"--root", root, "okta", "check"}, tc.args...)
		code, stdout, stderr := runCLI(t, "", args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "cfyauth: hint:") {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
		if stdout != "" {
			t.Errorf("%v: stdout %q", tc.args, stdout)
		}
	}
	// A response file that is neither XML nor base64 is a usage error too.
	junk := filepath.Join(t.TempDir(), "junk.txt")
	os.WriteFile(junk, []byte("not a response!"), 0o644)
	code, _, stderr := runCLI(t, "", "--root", root, "okta", "check", "--saml-response", junk)
	if code != 2 || !strings.Contains(stderr, "neither XML nor base64") {
		t.Errorf("junk response: exit %d %q", code, stderr)
	}
}

func TestOktaCheckCertificateWithoutManager(t *testing.T) {
	pair := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "candidate"})
	dir := t.TempDir()
	path := filepath.Join(dir, "cert.pem")
	os.WriteFile(path, pair.CertPEM(), 0o644)
	code, stdout, stderr := runCLI(t, "", "--root", dir, "okta", "check", "--certificate", path)
	if code != 3 || !strings.Contains(stderr, "no Cloudify Manager found") {
		t.Errorf("--root without a manager: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestOktaCheckCertificateOffManagerHost(t *testing.T) {
	if _, err := os.Stat(manager.ManagerDir); err == nil {
		t.Skip("this host has " + manager.ManagerDir + ", so / is a manager")
	}
	pair := oktatest.NewCert(t, oktatest.CertOptions{CommonName: "candidate"})
	path := filepath.Join(t.TempDir(), "cert.pem")
	os.WriteFile(path, pair.CertPEM(), 0o644)
	code, stdout, stderr := runCLI(t, "", "okta", "check", "--certificate", path)
	if code != 0 || !strings.Contains(stdout, "CN=candidate") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "", "okta", "check")
	if code != 3 || !strings.Contains(stderr, "no Cloudify Manager found") {
		t.Errorf("without --certificate: exit %d %q", code, stderr)
	}
}

// oktaChecks runs okta check with -o json and returns its checks by id.
func oktaChecks(t *testing.T, args ...string) map[string]oktaCheckRow {
	t.Helper()
	_, stdout, stderr := runCLI(t, "", append([]string{"-o", "json"}, args...)...)
	var doc struct {
		Checks []oktaCheckRow `json:"checks"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	byID := map[string]oktaCheckRow{}
	for _, c := range doc.Checks {
		byID[c.ID] = c
	}
	return byID
}

type oktaCheckRow struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Summary string `json:"summary"`
	Hint    string `json:"hint"`
}

func TestOktaCheckHintsFollowTheFlags(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	root, caFile := oktaSandbox(t, idp)

	// A metadata URL whose TLS certificate is not trusted: the fix is the
	// IdP's CA, and the clock was not read because the requests failed.
	checks := oktaChecks(t, "--root", root, "okta", "check", "--metadata", idp.MetadataURL())
	md := checks["metadata"]
	if md.Status != "fail" || !strings.Contains(md.Hint, "--idp-ca-cert") || strings.Contains(md.Hint, "with --metadata") {
		t.Errorf("metadata %s: %s (hint %q), want the hint to name --idp-ca-cert", md.Status, md.Summary, md.Hint)
	}
	clock := checks["clock"]
	if clock.Status != "skip" || strings.Contains(clock.Hint, "--metadata https://") || !strings.Contains(clock.Hint, "fix the failed") {
		t.Errorf("clock %s: %s (hint %q), want a hint about the failed requests", clock.Status, clock.Summary, clock.Hint)
	}

	// With the CA, a URL that serves something else than metadata: the
	// URL is the mistake.
	checks = oktaChecks(t, "--root", root, "okta", "check", "--idp-ca-cert", caFile, "--metadata", idp.URL+"/login/cloudify")
	if md := checks["metadata"]; md.Status != "fail" || !strings.Contains(md.Hint, "copy the metadata URL again") {
		t.Errorf("metadata from a sign-in page %s: %s (hint %q)", md.Status, md.Summary, md.Hint)
	}

	// Without a Console configuration, --sso-url given: the hint does not
	// suggest it again.
	if err := os.Remove(filepath.Join(root, "/opt/cloudify-stage/dist/userData/config.json")); err != nil {
		t.Fatal(err)
	}
	checks = oktaChecks(t, "--root", root, "okta", "check", "--idp-ca-cert", caFile, "--sso-url", idp.SSOURL())
	console := checks["console-config"]
	if console.Status != "skip" || strings.Contains(console.Hint, "--sso-url") || !strings.Contains(console.Hint, "--console-config FILE") {
		t.Errorf("console-config %s: %s (hint %q)", console.Status, console.Summary, console.Hint)
	}
	checks = oktaChecks(t, "--root", root, "okta", "check")
	if console := checks["console-config"]; !strings.Contains(console.Hint, "--sso-url URL") {
		t.Errorf("console-config without --sso-url: hint %q, want it to offer --sso-url", console.Hint)
	}
}

// TestOktaCheckUserJSONShape pins the user object that docs/okta.md
// describes: name_id, name_id_format and the attributes as sent.
func TestOktaCheckUserJSONShape(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(oktatest.User{Name: "jane.doe@example.test", Password: "pw", Email: "jane.doe@example.test", GivenName: "Jane", Surname: "Doe", Groups: []string{"Cloudify Admins"}})
	root, caFile := oktaSandbox(t, idp)
	captured := idp.Login("jane.doe@example.test", "pw")

	_, stdout, stderr := runCLI(t, captured, "--root", root, "-o", "json", "okta", "check", "--offline",
		"--manager-host", oktatest.ManagerHost, "--idp-ca-cert", caFile, "--saml-response", "-")
	var doc struct {
		User map[string]json.RawMessage `json:"user"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.User == nil {
		t.Fatalf("no user object: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	var keys []string
	for k := range doc.User {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "attributes,name_id,name_id_format" {
		t.Errorf("user has the fields %s, want attributes,name_id,name_id_format (user_groups only with --from-manager)", got)
	}
	var attributes map[string][]string
	if err := json.Unmarshal(doc.User["attributes"], &attributes); err != nil {
		t.Fatalf("attributes is not a map of value lists: %v", err)
	}
	want := map[string]string{"username": "jane.doe@example.test", "email": "jane.doe@example.test", "firstname": "Jane", "lastname": "Doe", "groups": "Cloudify Admins"}
	for name, value := range want {
		if got := attributes[name]; len(got) != 1 || got[0] != value {
			t.Errorf("attributes.%s = %q, want [%q]", name, got, value)
		}
	}
}
