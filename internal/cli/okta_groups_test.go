package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/oktaprobe/oktatest"
)

// oktaCheckDoc is the part of okta check's JSON that --from-manager fills.
type oktaCheckDoc struct {
	OK   bool `json:"ok"`
	User struct {
		Attributes map[string][]string `json:"attributes"`
		UserGroups []struct {
			Group   string            `json:"group"`
			Role    string            `json:"role"`
			Tenants map[string]string `json:"tenants"`
		} `json:"user_groups"`
	} `json:"user"`
	Checks []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Summary string `json:"summary"`
		Hint    string `json:"hint"`
	} `json:"checks"`
}

func (d oktaCheckDoc) check(t *testing.T, id string) (status, summary, hint string) {
	t.Helper()
	for _, c := range d.Checks {
		if c.ID == id {
			return c.Status, c.Summary, c.Hint
		}
	}
	t.Fatalf("no check %s", id)
	return "", "", ""
}

func TestOktaCheckFromManagerMatchesGroups(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(janeDoe)
	root, p, caFile := oktaManager(t, idp)
	file := writeResponse(t, idp.Login(janeDoe.Name, janeDoe.Password))
	env := map[string]string{"CLOUDIFY_USERNAME": "admin", "CLOUDIFY_PASSWORD": standinAdminPassword}

	code, stdout, stderr := runCLIEnv(t, env, "", "--root", root, "--manager-url", p.URL, "-o", "json", "okta", "check",
		"--manager-host", oktatest.ManagerHost, "--idp-ca-cert", caFile, "--saml-response", file, "--from-manager")
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var doc oktaCheckDoc
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, stdout)
	}
	if got := doc.User.Attributes["username"]; len(got) != 1 || got[0] != "jane.doe@example.test" {
		t.Errorf("username %q", got)
	}
	groups := doc.User.UserGroups
	if len(groups) != 2 {
		t.Fatalf("user groups %+v, want Cloudify Admins and Dev Ops Team (not Dev Ops)", groups)
	}
	if groups[0].Group != "Cloudify Admins" || groups[0].Role != "sys_admin" || groups[0].Tenants["default_tenant"] != "manager" {
		t.Errorf("first match %+v", groups[0])
	}
	if groups[1].Group != "Dev Ops Team" || groups[1].Tenants["ops"] != "operations" || groups[1].Tenants["default_tenant"] != "viewer" {
		t.Errorf("second match %+v", groups[1])
	}
	status, summary, _ := doc.check(t, "user-groups")
	if status != "pass" || summary != `2 of 3 group(s) match a user-group; no user-group for "Contractors"` {
		t.Errorf("user-groups check %s: %s", status, summary)
	}
	if strings.Contains(stdout+stderr, standinAdminPassword) {
		t.Error("the admin password appears in the output")
	}

	// The table, with the password from --admin-password-file.
	pwFile := filepath.Join(t.TempDir(), "admin.pw")
	if err := os.WriteFile(pwFile, []byte(standinAdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "", "--root", root, "--manager-url", p.URL, "-v", "okta", "check",
		"--manager-host", oktatest.ManagerHost, "--idp-ca-cert", caFile, "--saml-response", file,
		"--from-manager", "--admin-password-file", pwFile)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	for _, want := range []string{`"Cloudify Admins"`, "role sys_admin, tenant default_tenant as manager",
		`"Dev Ops Team"`, "role default, tenant default_tenant as viewer, tenant ops as operations"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, standinAdminPassword) {
		t.Error("the admin password appears in the output")
	}
}

func TestOktaCheckFromManagerFailures(t *testing.T) {
	idp := oktatest.StartIdP(t, oktatest.IdPOptions{})
	idp.AddUser(janeDoe)
	root, p, caFile := oktaManager(t, idp)
	file := writeResponse(t, idp.Login(janeDoe.Name, janeDoe.Password))
	args := []string{"--root", root, "--manager-url", p.URL, "-o", "json", "okta", "check",
		"--manager-host", oktatest.ManagerHost, "--idp-ca-cert", caFile, "--saml-response", file, "--from-manager"}

	// A wrong admin password: the user-groups check fails, exit 1.
	code, stdout, stderr := runCLIEnv(t, map[string]string{"CFYAUTH_ADMIN_PASSWORD": "wrong-password"}, "", args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var doc oktaCheckDoc
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, stdout)
	}
	status, summary, hint := doc.check(t, "user-groups")
	if status != "fail" || !strings.HasPrefix(summary, "cannot read the manager's user-groups: the manager rejected the credentials (401)") {
		t.Errorf("user-groups check %s: %s", status, summary)
	}
	if hint != "check the user name and password" {
		t.Errorf("hint %q", hint)
	}
	if strings.Contains(stdout+stderr, "wrong-password") {
		t.Error("the admin password appears in the output")
	}

	// Nothing listens: the check fails and names the fix.
	down := append([]string{}, args...)
	down[3] = "http://127.0.0.1:1"
	code, stdout, _ = runCLIEnv(t, map[string]string{"CFYAUTH_ADMIN_PASSWORD": standinAdminPassword}, "", down...)
	if code != 1 || !strings.Contains(stdout, "connection refused") {
		t.Errorf("manager down: exit %d\n%s", code, stdout)
	}

	// Usage errors, before any request.
	usage := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no password", nil, args, "--from-manager reads the manager's user-groups, which needs the admin's password"},
		{"no response", map[string]string{"CLOUDIFY_PASSWORD": "x"},
			[]string{"--root", root, "--manager-url", p.URL, "okta", "check", "--from-manager"},
			"--from-manager matches the groups of a SAML response, and none was given"},
		{"password file alone", nil,
			[]string{"--root", root, "okta", "check", "--saml-response", file, "--admin-password-file", file},
			"--admin-password-file applies to --from-manager"},
		{"offline", map[string]string{"CLOUDIFY_PASSWORD": "x"}, append(append([]string{}, args...), "--offline"),
			"--offline sends no request, but --from-manager reads the manager's user-groups"},
		{"no manager URL", map[string]string{"CLOUDIFY_PASSWORD": "x"},
			[]string{"--root", root, "okta", "check", "--saml-response", file, "--from-manager"},
			"so cfyauth does not guess the manager's URL"},
		{"unreadable password file", nil, append(append([]string{}, args...), "--admin-password-file", filepath.Join(t.TempDir(), "missing")),
			"missing does not exist"},
	}
	for _, tc := range usage {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLIEnv(t, tc.env, "", tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
		})
	}
}
