package standin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/restapi"
	"github.com/cfyauth/cfyauth/internal/restapi/standin"
)

const adminPassword = "Admin-Pw-42"

// requirePython skips without python3, unless CFYAUTH_REQUIRE_SERVERS=1
// makes a missing interpreter a failure.
func requirePython(t *testing.T) {
	t.Helper()
	if _, err := standin.Python(); err != nil {
		if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
			t.Fatalf("%v", err)
		}
		t.Skipf("%v", err)
	}
}

// sandbox lays out a manager tree with the given modules enabled and the
// stand-in's admin password and group mapping in place.
func sandbox(t *testing.T, modules map[string]string) standin.Options {
	t.Helper()
	requirePython(t)
	root := filepath.Join(t.TempDir(), "mgr")
	if _, err := manager.InitSandbox(root, manager.SandboxOptions{Release: "7.0", UID: os.Getuid(), GID: os.Getgid()}); err != nil {
		t.Fatal(err)
	}
	for name, source := range modules {
		path := filepath.Join(root, manager.AuthenticatorsDir, name+".py")
		if err := os.WriteFile(path, []byte(source), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	opts := standin.Options{Root: root}
	must(t, standin.WriteState(opts, "admin_password", []byte(adminPassword+"\n")))
	must(t, standin.WriteState(opts, "groups.json", []byte(`{"tenants": ["ops"], "groups": [
		{"name": "devs", "ldap_dn": "cn=devs,ou=groups,dc=example,dc=org", "role": "default", "tenants": {"ops": "manager"}},
		{"name": "admins", "role": "sys_admin", "tenants": {"default_tenant": "manager"}}]}`)))
	return opts
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, opts standin.Options) *standin.Process {
	t.Helper()
	p, err := standin.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

func client(t *testing.T, p *standin.Process, user, password string) *restapi.Client {
	t.Helper()
	c, err := restapi.New(restapi.Options{URL: p.URL, Credentials: restapi.Credentials{Username: user, Password: password}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readLog(t *testing.T, opts standin.Options) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(opts.Root, standin.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// countingModule appends a line to a file each time configure runs, accepts
// its own user, and reports the groups it is given.
const countingModule = `
import os
from cloudify_premium.authentication.auth_base import AuthBase, UserData

class Counting(AuthBase):
    def configure(self, logger):
        with open(os.path.join(os.path.dirname(__file__), "..", "configure-calls"), "a") as f:
            f.write("counting\n")
        logger.info("counting configured")
        return self

    def can_handle_auth_request(self, request):
        return request.authorization is not None and request.authorization.username in ("carol", "root2")

    def _authenticate_request(self, request):
        a = request.authorization
        if a.password != "carol-pw":
            return None
        if a.username == "root2":
            return UserData("root2", groups=["admins"])
        return UserData("carol", email="carol@example.test", groups=["CN=DEVS,ou=groups,dc=example,dc=org", "unknown"])

counting = Counting()
configure = counting.configure
`

const raisingConfigure = `
from cloudify_premium.authentication.auth_base import AuthBase

class Raising(AuthBase):
    def configure(self, logger):
        raise ValueError("ldap_server is not set")

configure = Raising().configure
`

func TestStandinLoadsModulesOnce(t *testing.T) {
	opts := sandbox(t, map[string]string{
		"counting":    countingModule,
		"raising_cfg": raisingConfigure,
		"no_cfg":      "x = 1\n",
	})
	p := start(t, opts)
	c := client(t, p, "carol", "carol-pw")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, _, err := c.User(ctx); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	calls, err := os.ReadFile(filepath.Join(opts.Root, "opt/manager/resources/configure-calls"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(calls), "counting\n"); got != 1 {
		t.Errorf("configure ran %d times for three logins, want once", got)
	}

	idp, err := c.IDP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(idp.Names, ",") != "counting" {
		t.Errorf("idp %+v, want only the module whose configure returned itself", idp)
	}
	log := readLog(t, opts)
	for _, want := range []string{
		"configure() of authenticator module raising_cfg",
		"ValueError: ldap_server is not set",
		"authenticator module no_cfg",
		"has no callable configure; not loaded",
		"counting configured",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestStandinUserGroupsAndTenants(t *testing.T) {
	opts := sandbox(t, map[string]string{"counting": countingModule})
	p := start(t, opts)
	ctx := context.Background()

	user, audit, err := client(t, p, "carol", "carol-pw").User(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if audit.AuthMethod != restapi.AuthMethodExternal || audit.Username != "carol" {
		t.Errorf("audit %+v", audit)
	}
	if strings.Join(user.Groups, ",") != "devs" {
		t.Errorf("groups %v, want devs matched by DN in any case and the unknown group ignored", user.Groups)
	}
	if roles := user.Tenants["ops"].Roles; len(roles) != 1 || roles[0] != "manager" {
		t.Errorf("tenants %+v", user.Tenants)
	}

	// A wrong password: the module returns None, so no module accepts it.
	_, _, err = client(t, p, "carol", "wrong").User(ctx)
	apiErr := restapi.AsAPIError(err)
	if apiErr == nil || apiErr.Status != http.StatusUnauthorized || apiErr.Message != "No authentication info provided" {
		t.Errorf("wrong password: %v", err)
	}

	// User groups are for sys_admins: the admin and a user whose group
	// grants sys_admin.
	_, err = client(t, p, "carol", "carol-pw").UserGroups(ctx)
	if e := restapi.AsAPIError(err); e == nil || e.Status != http.StatusForbidden {
		t.Errorf("user-groups as carol: %v, want 403", err)
	}
	groups, err := client(t, p, "root2", "carol-pw").UserGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].Name != "devs" || groups[0].LDAPDN != "cn=devs,ou=groups,dc=example,dc=org" ||
		groups[0].Tenants["ops"] != "manager" || strings.Join(groups[0].Users, ",") != "carol" {
		t.Errorf("user groups %+v", groups)
	}
}

func TestStandinConfigMasksLDAPPassword(t *testing.T) {
	opts := sandbox(t, map[string]string{"counting": countingModule})
	must(t, standin.WriteState(opts, "config.json", []byte(`{"ldap_server": "ldap://127.0.0.1:38900",
		"ldap_username": "cn=svc-bind,ou=services,dc=example,dc=org", "ldap_password": "svc-secret"}`)))
	p := start(t, opts)
	ctx := context.Background()

	value := func(items []restapi.ConfigItem, name string) string {
		for _, it := range items {
			if it.Name == name {
				var s string
				_ = json.Unmarshal(it.Value, &s)
				return s
			}
		}
		return "<missing>"
	}
	asAdmin, err := client(t, p, "admin", adminPassword).Config(ctx, "rest")
	if err != nil {
		t.Fatal(err)
	}
	if got := value(asAdmin, "ldap_password"); got != "svc-secret" {
		t.Errorf("admin sees ldap_password %q", got)
	}
	asUser, err := client(t, p, "carol", "carol-pw").Config(ctx, "rest")
	if err != nil {
		t.Fatal(err)
	}
	if got := value(asUser, "ldap_password"); got != "********" {
		t.Errorf("a user sees ldap_password %q, want it masked", got)
	}
	if got := value(asUser, "ldap_server"); got != "ldap://127.0.0.1:38900" {
		t.Errorf("ldap_server %q", got)
	}
	other, err := client(t, p, "admin", adminPassword).Config(ctx, "mgmtworker")
	if err != nil || len(other) != 0 {
		t.Errorf("scope mgmtworker: %v, %+v", err, other)
	}
}

func TestStandinTokens(t *testing.T) {
	opts := sandbox(t, map[string]string{"counting": countingModule})
	p := start(t, opts)
	ctx := context.Background()
	c := client(t, p, "carol", "carol-pw")

	var token struct {
		ID    string `json:"id"`
		Value string `json:"value"`
	}
	if _, err := c.Do(ctx, http.MethodPost, "/tokens", nil, map[string]string{"description": "test"}, &token, true); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token.Value, "ctok-"+token.ID+"-") {
		t.Fatalf("token %+v", token)
	}
	byToken, err := restapi.New(restapi.Options{URL: p.URL, Credentials: restapi.Credentials{Token: token.Value}})
	if err != nil {
		t.Fatal(err)
	}
	user, audit, err := byToken.User(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if user.Username != "carol" || audit.AuthMethod != "token" {
		t.Errorf("token login: user %q method %q", user.Username, audit.AuthMethod)
	}
	var list struct {
		Items []struct {
			Value string `json:"value"`
		} `json:"items"`
	}
	if _, err := c.Get(ctx, "/tokens", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || strings.Contains(list.Items[0].Value, strings.TrimPrefix(token.Value, "ctok-"+token.ID+"-")) {
		t.Errorf("token list %+v must hold one token without its secret", list.Items)
	}
	bad, _ := restapi.New(restapi.Options{URL: p.URL, Credentials: restapi.Credentials{Token: "ctok-nope-nope"}})
	if _, _, err := bad.User(ctx); restapi.AsAPIError(err) == nil || restapi.AsAPIError(err).Status != http.StatusUnauthorized {
		t.Errorf("unknown token: %v, want 401", err)
	}
}

func TestStandinHealthAndMaintenance(t *testing.T) {
	opts := sandbox(t, nil)
	p := start(t, opts)
	ctx := context.Background()
	admin := client(t, p, "admin", adminPassword)

	if err := admin.Ok(ctx); err != nil {
		t.Fatalf("ok: %v", err)
	}
	must(t, standin.WriteState(opts, "unhealthy", nil))
	if e := restapi.AsAPIError(admin.Ok(ctx)); e == nil || e.Status != http.StatusInternalServerError {
		t.Errorf("ok while unhealthy: %v, want 500", e)
	}
	must(t, os.Remove(opts.StatePath("unhealthy")))

	// ok-delay: /ok answers late, so a client with a shorter timeout gives up.
	must(t, standin.WriteState(opts, "ok-delay", []byte("3")))
	impatient, err := restapi.New(restapi.Options{URL: p.URL, Timeout: 200 * time.Millisecond})
	must(t, err)
	var slowErr *apperr.Error
	if err := impatient.Ok(ctx); !errors.As(err, &slowErr) || slowErr.Code != "timeout" {
		t.Errorf("ok with ok-delay 3 and a 200ms timeout: %v, want a timeout", err)
	}
	must(t, os.Remove(opts.StatePath("ok-delay")))

	if _, err := admin.Do(ctx, http.MethodPost, "/maintenance/activate", nil, nil, nil, true); err != nil {
		t.Fatal(err)
	}
	_, _, err = admin.User(ctx)
	if e := restapi.AsAPIError(err); e == nil || !e.IsMaintenance() || e.Status != http.StatusServiceUnavailable {
		t.Errorf("user in maintenance mode: %v", err)
	}
	if _, err := admin.Version(ctx); err != nil {
		t.Errorf("version must answer in maintenance mode: %v", err)
	}
	if err := admin.Ok(ctx); err != nil {
		t.Errorf("ok must answer in maintenance mode: %v", err)
	}
	if _, err := admin.Do(ctx, http.MethodPost, "/maintenance/deactivate", nil, nil, nil, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.User(ctx); err != nil {
		t.Errorf("user after maintenance mode: %v", err)
	}
}

func TestStandinFaultsAtStart(t *testing.T) {
	opts := sandbox(t, nil)
	must(t, standin.WriteState(opts, "crash-at-start", nil))
	_, err := standin.Start(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "exit code 3") || !strings.Contains(err.Error(), "crash requested") {
		t.Fatalf("crash at start: %v", err)
	}
	must(t, os.Remove(opts.StatePath("crash-at-start")))

	// start-delay: it listens late but it does listen.
	must(t, standin.WriteState(opts, "start-delay", []byte("0.3")))
	p := start(t, opts)
	if err := client(t, p, "admin", adminPassword).Ok(context.Background()); err != nil {
		t.Fatalf("ok after a delayed start: %v", err)
	}
	if !strings.Contains(readLog(t, opts), "waiting 0.3s before listening") {
		t.Error("the log does not mention the start delay")
	}

	// A stopped stand-in exits by itself on SIGTERM and logs it.
	must(t, p.Stop())
	if !p.Exited() || !strings.Contains(readLog(t, opts), "REST stand-in stopped") {
		t.Error("the stand-in did not stop cleanly on SIGTERM")
	}
}

func TestStandinRejectsNonLoopbackHost(t *testing.T) {
	requirePython(t)
	script, err := standin.Script()
	if err != nil {
		t.Fatal(err)
	}
	python, _ := standin.Python()
	out, err := exec.Command(python, script, "--root", t.TempDir(), "--port", "38123", "--host", "0.0.0.0").CombinedOutput()
	var exitErr interface{ ExitCode() int }
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 || !strings.Contains(string(out), "--host must be a loopback address") {
		t.Errorf("--host 0.0.0.0: err %v, output %s", err, out)
	}
}

// The stand-in AuthBase is imported by modules written for the manager's
// Python, the oldest being 3.6, so it and the stand-in must parse as 3.6.
func TestStandinParsesAsPython36(t *testing.T) {
	requirePython(t)
	script, err := standin.Script()
	if err != nil {
		t.Fatal(err)
	}
	samlModule := filepath.Join(filepath.Dir(script), "reststandin_saml.py")
	python, _ := standin.Python()
	check := `import ast, sys
for path in sys.argv[1:]:
    ast.parse(open(path).read(), path, feature_version=(3, 6))
`
	out, err := exec.Command(python, "-c", check, script, samlModule).CombinedOutput()
	if err != nil {
		t.Fatalf("not Python 3.6 syntax: %v\n%s", err, out)
	}
}
