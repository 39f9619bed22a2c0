package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
	"github.com/cfyauth/cfyauth/internal/restapi/standin"
)

const standinAdminPassword = "Adm1n-Okta-pw-never-shown"

// runCLIEnv is runCLI with environment variables.
func runCLIEnv(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	app := NewApp(io, func(k string) string { return env[k] })
	code := app.Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

// requireStandinTools skips without python3 or xmlsec1, which the REST
// stand-in checks SAML signatures with, unless CFYAUTH_REQUIRE_SERVERS=1
// makes that a failure.
func requireStandinTools(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := standin.Python(); err != nil {
		missing = append(missing, "python3")
	}
	if _, err := exec.LookPath("xmlsec1"); err != nil {
		missing = append(missing, "xmlsec1")
	}
	if len(missing) == 0 {
		return
	}
	msg := "the REST stand-in needs " + strings.Join(missing, " and ") + " (run scripts/testenv/install.sh)"
	if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// oktaManager lays out a manager that trusts the IdP (oktaSandbox), with
// user groups whose names have spaces and a REST stand-in serving it. It
// returns the root, the stand-in and the IdP's TLS CA file.
func oktaManager(t *testing.T, idp *oktatest.IdP) (root string, p *standin.Process, caFile string) {
	t.Helper()
	requireStandinTools(t)
	root, caFile = oktaSandbox(t, idp)
	opts := standin.Options{Root: root}
	for name, data := range map[string]string{
		"admin_password": standinAdminPassword + "\n",
		"saml.json":      `{"manager_host": "` + oktatest.ManagerHost + `"}`,
		"groups.json": `{"tenants": ["ops"], "groups": [
			{"name": "Cloudify Admins", "role": "sys_admin", "tenants": {"default_tenant": "manager"}},
			{"name": "Dev Ops Team", "role": "default", "tenants": {"ops": "operations", "default_tenant": "viewer"}},
			{"name": "Dev Ops", "role": "default", "tenants": {"ops": "manager"}}]}`,
	} {
		if err := standin.WriteState(opts, name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := standin.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return root, p, caFile
}

// janeDoe has an e-mail address as user name and groups with spaces, one
// of which has no user group on the manager.
var janeDoe = oktatest.User{Name: "jane.doe@example.test", Password: "pw", Email: "jane.doe@example.test",
	GivenName: "Jane", Surname: "Doe", Groups: []string{"Cloudify Admins", "Dev Ops Team", "Contractors"}}

// writeResponse saves a response the way an operator would, as the base64
// SAMLResponse value.
func writeResponse(t *testing.T, encoded string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "response.b64")
	if err := os.WriteFile(path, []byte(encoded+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
