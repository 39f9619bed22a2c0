package adtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/ldapprobe/ldaptest"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/restapi/standin"
)

// adFlags are the ldap check flags for the test domain.
func adFlags(t *testing.T, s *ldaptest.Samba) []string {
	return []string{"-s", ldaptest.ADLDAPSURL, "-a", "-d", ldaptest.ADDomain, "-c", s.CAFile(),
		"--ldap-username", ldaptest.ADServiceUser, "--ldap-password-file", writeSecret(t, ldaptest.ADServicePassword),
		"--ldap-attribute-uid", "sAMAccountName", "--ldap-attribute-email", "mail"}
}

func noSecrets(t *testing.T, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, secret := range []string{ldaptest.ADServicePassword, ldaptest.ADUserPassword, adminPassword} {
			if strings.Contains(text, secret) {
				t.Errorf("a password shows in the output:\n%s", text)
			}
		}
	}
}

func TestADCLICheckPasses(t *testing.T) {
	s := needSamba(t)
	args := append([]string{"--strict", "ldap", "check"}, adFlags(t, s)...)
	args = append(args, "--ldap-nested-levels", "3", "--user", "bob", "--password-file", writeSecret(t, ldaptest.ADUserPassword))
	code, stdout, stderr := runCLI(t, nil, "", args...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	expectContains(t, "stderr", stderr, "checked 1 server(s): 13 passed, 0 warnings, 0 failed, 0 skipped")
	expectContains(t, "stdout", stdout, "groups.in-chain", "the in-chain rule finds the same 3 groups the manager sees",
		"groups of bob on ldaps://127.0.0.1:636 (ldap_nested_levels 3):", "level 3  CN=rnd,CN=Users,DC=example,DC=test")
	noSecrets(t, stdout, stderr)
}

func TestADCLIWrongPasswordJSON(t *testing.T) {
	s := needSamba(t)
	args := append([]string{"-o", "json", "ldap", "check"}, adFlags(t, s)...)
	args = append(args, "--user", "alice", "--password-stdin")
	code, stdout, stderr := runCLI(t, nil, "Wrong-Passw0rd!\n", args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstderr:\n%s", code, stderr)
	}
	var doc struct {
		OK      bool `json:"ok"`
		Servers []struct {
			FailedLayer string `json:"failed_layer"`
			Checks      []struct {
				ID       string `json:"id"`
				Summary  string `json:"summary"`
				Hint     string `json:"hint"`
				Evidence []struct{ Key, Value string }
			} `json:"checks"`
		} `json:"servers"`
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if doc.OK || doc.Error.Code != "ldap_check_failed" || doc.Servers[0].FailedLayer != "user-bind" {
		t.Fatalf("ok %v, error %q, failed layer %q", doc.OK, doc.Error.Code, doc.Servers[0].FailedLayer)
	}
	found := false
	for _, c := range doc.Servers[0].Checks {
		if c.ID != "user-bind" {
			continue
		}
		found = true
		expectContains(t, "summary", c.Summary, "the user's password was rejected: the password is wrong", "(AD sub-code 52e)")
		raw := ""
		for _, e := range c.Evidence {
			if e.Key == "diagnostic message" {
				raw = e.Value
			}
		}
		expectContains(t, "diagnostic evidence", raw, "80090308: LdapErr:", "data 52e")
	}
	if !found {
		t.Error("no user-bind check in the JSON document")
	}
	expectContains(t, "stderr", stderr, "LDAP check failed: ldaps://127.0.0.1:636 at user-bind")
	noSecrets(t, stdout, stderr)
	if strings.Contains(stdout+stderr, "Wrong-Passw0rd!") {
		t.Error("the wrong password shows in the output")
	}
}

const adminPassword = "Admin-Pw-for-AD"

// managerWithADSettings starts the REST stand-in holding the test domain's
// settings (without the CA, as a real manager returns them) and user groups
// mapped by ldap_dn, written in other cases and escapes than Samba uses.
func managerWithADSettings(t *testing.T) *standin.Process {
	t.Helper()
	if _, err := standin.Python(); err != nil {
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	root := filepath.Join(t.TempDir(), "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: "7.0", UID: os.Getuid(), GID: os.Getgid()}); err != nil {
		t.Fatal(err)
	}
	opts := standin.Options{Root: root}
	config := map[string]any{
		"ldap_server": ldaptest.ADLDAPSURL, "ldap_domain": ldaptest.ADDomain, "ldap_is_active_directory": true,
		"ldap_username": ldaptest.ADServiceUser, "ldap_password": ldaptest.ADServicePassword,
		"ldap_nested_levels": 2, "ldap_attribute_uid": "sAMAccountName", "ldap_attribute_email": "mail",
		"ldap_group_dn": nil, "ldap_ca_path": "/etc/cloudify/ssl/ldap_ca.crt",
	}
	data, _ := json.Marshal(config)
	groups := `{"tenants": ["ops"], "groups": [
		{"name": "devs", "ldap_dn": "cn=DEVELOPERS,cn=users,dc=example,dc=test", "role": "default", "tenants": {"default_tenant": "user"}},
		{"name": "eng", "ldap_dn": "CN=engineering, CN=Users, DC=example, DC=test", "role": "default", "tenants": {"ops": "viewer", "default_tenant": "manager"}},
		{"name": "rnd", "ldap_dn": "CN=rnd,CN=Users,DC=example,DC=test", "role": "sys_admin"},
		{"name": "local", "role": "default", "tenants": {"ops": "manager"}}]}`
	for name, content := range map[string][]byte{"admin_password": []byte(adminPassword + "\n"), "config.json": data, "groups.json": []byte(groups)} {
		if err := standin.WriteState(opts, name, content); err != nil {
			t.Fatal(err)
		}
	}
	p, err := standin.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

func TestADCLIFromManagerPreview(t *testing.T) {
	s := needSamba(t)
	mgr := managerWithADSettings(t)
	env := map[string]string{"CLOUDIFY_USERNAME": "admin", "CLOUDIFY_PASSWORD": adminPassword}
	userPW := writeSecret(t, ldaptest.ADUserPassword)

	// The manager does not return its LDAP CA, so ldaps needs --ldap-ca-path.
	code, stdout, stderr := runCLI(t, env, "", "--manager-url", mgr.URL, "ldap", "check", "--from-manager", "--user", "jsmith", "--password-file", userPW)
	if code != 2 {
		t.Fatalf("exit %d without a CA, want 2\nstderr:\n%s", code, stderr)
	}
	expectContains(t, "stderr", stderr, "ldaps:// needs a CA certificate, which the manager does not return", "hint: pass the CA the manager uses", "--ldap-ca-path FILE")

	code, stdout, stderr = runCLI(t, env, "", "--manager-url", mgr.URL, "ldap", "check", "--from-manager", "-c", s.CAFile(),
		"--user", "jsmith", "--password-file", userPW)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	expectContains(t, "stderr", stderr, "read the LDAP settings from "+mgr.URL+" as admin",
		"the manager's ldap_ca_path names /etc/cloudify/ssl/ldap_ca.crt", "it must be the CA the manager uses")
	expectContains(t, "stdout", stdout,
		"what jsmith may do on the manager after logging in:",
		"user group:   devs (ldap_dn cn=DEVELOPERS,cn=users,dc=example,dc=test)",
		"user group:   eng (ldap_dn CN=engineering, CN=Users, DC=example, DC=test)",
		"system role:  default",
		"tenant:       default_tenant as manager and user (through devs, eng)",
		"tenant:       ops as viewer (through eng)",
		"not joined:   rnd (its ldap_dn is at level 3, above ldap_nested_levels)")
	noSecrets(t, stdout, stderr)

	code, stdout, stderr = runCLI(t, env, "", "-o", "json", "--manager-url", mgr.URL, "ldap", "check", "--from-manager", "-c", s.CAFile(),
		"--ldap-nested-levels", "3", "--user", "jsmith", "--password-file", userPW)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	var doc struct {
		Manager struct {
			URL        string `json:"url"`
			AdminUser  string `json:"admin_user"`
			UserGroups int    `json:"user_groups"`
		} `json:"manager"`
		Servers []struct {
			UserDN  string `json:"user_dn"`
			Preview struct {
				SystemRole    string   `json:"system_role"`
				SystemRoleVia []string `json:"system_role_via"`
				UserGroups    []struct {
					Name    string `json:"name"`
					GroupDN string `json:"group_dn"`
				} `json:"user_groups"`
				Tenants []struct {
					Tenant string   `json:"tenant"`
					Roles  []string `json:"roles"`
				} `json:"tenants"`
			} `json:"preview"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if doc.Manager.URL != mgr.URL || doc.Manager.AdminUser != "admin" || doc.Manager.UserGroups != 4 {
		t.Errorf("manager %+v", doc.Manager)
	}
	pv := doc.Servers[0].Preview
	if doc.Servers[0].UserDN != `CN=Smith\, John,CN=Users,DC=example,DC=test` {
		t.Errorf("user DN %q", doc.Servers[0].UserDN)
	}
	if pv.SystemRole != "sys_admin" || strings.Join(pv.SystemRoleVia, ",") != "rnd" {
		t.Errorf("with ldap_nested_levels 3 the rnd group makes jsmith sys_admin: %q via %q", pv.SystemRole, pv.SystemRoleVia)
	}
	if len(pv.UserGroups) != 3 || pv.UserGroups[0].Name != "devs" || pv.UserGroups[0].GroupDN != "CN=developers,CN=Users,DC=example,DC=test" {
		t.Errorf("user groups %+v", pv.UserGroups)
	}
	if len(pv.Tenants) != 2 || pv.Tenants[0].Tenant != "default_tenant" || strings.Join(pv.Tenants[0].Roles, ",") != "manager,user" {
		t.Errorf("tenants %+v", pv.Tenants)
	}
	noSecrets(t, stdout, stderr)
}

func TestADCLIFromManagerErrors(t *testing.T) {
	s := needSamba(t)
	mgr := managerWithADSettings(t)

	code, _, stderr := runCLI(t, map[string]string{"CFYAUTH_ADMIN_PASSWORD": "not-the-password"}, "",
		"--manager-url", mgr.URL, "ldap", "check", "--from-manager", "-c", s.CAFile())
	if code != 1 {
		t.Fatalf("wrong admin password: exit %d, want 1\n%s", code, stderr)
	}
	expectContains(t, "stderr", stderr, "the manager rejected the credentials (401)", "--admin-user", "CFYAUTH_ADMIN_PASSWORD")
	if strings.Contains(stderr, "not-the-password") {
		t.Error("the admin password shows in the error")
	}

	code, _, stderr = runCLI(t, nil, "", "--manager-url", mgr.URL, "ldap", "check", "--from-manager", "-c", s.CAFile())
	if code != 2 {
		t.Fatalf("no admin password: exit %d, want 2\n%s", code, stderr)
	}
	expectContains(t, "stderr", stderr, "the password of the manager admin admin is missing", "--admin-password-file FILE", "CLOUDIFY_PASSWORD")

	code, _, stderr = runCLI(t, nil, "", "ldap", "check", "-s", ldaptest.ADLDAPSURL, "-c", s.CAFile(), "--admin-user", "admin")
	if code != 2 {
		t.Fatalf("--admin-user without --from-manager: exit %d, want 2\n%s", code, stderr)
	}
	expectContains(t, "stderr", stderr, "--admin-user is used only with --from-manager")

	// ldap show reads the same settings and names their source.
	pw := writeSecret(t, adminPassword)
	code, stdout, stderr := runCLI(t, nil, "", "-o", "json", "--manager-url", mgr.URL, "ldap", "show", "--from-manager", "--admin-password-file", pw)
	if code != 0 {
		t.Fatalf("ldap show: exit %d\n%s", code, stderr)
	}
	var doc struct {
		Settings []struct {
			Key    string `json:"key"`
			Value  string `json:"value"`
			Source struct {
				Kind   string `json:"kind"`
				Detail string `json:"detail"`
			} `json:"source"`
		} `json:"settings"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	for _, row := range doc.Settings {
		switch row.Key {
		case "ldap_server", "ldap_nested_levels":
			if row.Source.Kind != "manager" || row.Source.Detail != mgr.URL {
				t.Errorf("%s from %+v, want the manager", row.Key, row.Source)
			}
		case "ldap_password":
			if row.Value != "********" {
				t.Errorf("ldap show prints the password as %q", row.Value)
			}
		}
	}
	expectContains(t, "stderr", stderr, "warning: ldap_server: ldaps:// needs a CA certificate")
	noSecrets(t, stdout, stderr)
}
