package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/report"
	"github.com/cfyauth/cfyauth/internal/restapi"
)

// loginServer responds to GET /api/v3.1/user with status and the audit auth
// method, and 404 to everything else.
func loginServer(t *testing.T, status int, authMethod string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/v3.1/user" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message": "not found", "error_code": "not_found_error"}`)
			return
		}
		if authMethod != "" {
			w.Header().Set(restapi.AuditAuthMethodHeader, authMethod)
		}
		w.WriteHeader(status)
		if status == http.StatusOK {
			fmt.Fprint(w, `{"username": "admin", "role": "sys_admin"}`)
			return
		}
		fmt.Fprint(w, `{"message": "Authentication failed for <User username=`+"`admin`"+`>", "error_code": "unauthorized_error"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func adminLogin(t *testing.T, url string, local bool) loginCheck {
	t.Helper()
	client, err := restapi.New(restapi.Options{URL: url, Credentials: restapi.Credentials{Username: "admin", Password: "pw-never-shown"}})
	if err != nil {
		t.Fatal(err)
	}
	return loginCheck{id: "admin-login", client: client, user: "admin", local: local}
}

func TestLoginCheckOutcomes(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		status     int
		authMethod string
		local      bool
		want       report.Status
		summary    string
	}{
		{"local admin", http.StatusOK, "http_basic", true, report.Pass, "user admin logged in (auth method http_basic)"},
		{"admin through a module", http.StatusOK, "external", true, report.Fail, "through an authenticator module"},
		{"user through a module", http.StatusOK, "external", false, report.Pass, "user admin logged in (auth method external)"},
		{"rejected", http.StatusUnauthorized, "", true, report.Fail, "login as admin failed (rejected)"},
	}
	for _, tc := range cases {
		srv := loginServer(t, tc.status, tc.authMethod)
		c := runLoginCheck(ctx, adminLogin(t, srv.URL, tc.local))
		if c.Status != tc.want || !strings.Contains(c.Summary, tc.summary) {
			t.Errorf("%s: %s %q, want %s with %q", tc.name, c.Status, c.Summary, tc.want, tc.summary)
		}
		if strings.Contains(fmt.Sprint(c), "pw-never-shown") {
			t.Errorf("%s: the password reached the check: %+v", tc.name, c)
		}
	}
}

func TestFailedLogin(t *testing.T) {
	checks := []report.Check{{ID: "login", Status: report.Pass}, {ID: "admin-login", Status: report.Fail, Summary: "login as admin failed (rejected)"}}
	if got := failedLogin(checks); got != "the admin-login check failed: login as admin failed (rejected)" {
		t.Errorf("failedLogin = %q", got)
	}
	if got := failedLogin(checks[:1]); got != "" {
		t.Errorf("failedLogin of passing checks = %q", got)
	}
}

func TestLoginURL(t *testing.T) {
	app, _ := testApp(nil, "/")
	if got, err := loginURL(app, "http://127.0.0.1:8100/api/v3.1/ok"); err != nil || got != "http://127.0.0.1:8100" {
		t.Errorf("from the health URL: %q, %v", got, err)
	}
	app.Global.ManagerURL = "https://manager.example.com"
	if got, _ := loginURL(app, "http://127.0.0.1:8100/api/v3.1/ok"); got != "https://manager.example.com" {
		t.Errorf("--manager-url first: %q", got)
	}
	app.Global.ManagerURL = ""
	_, err := loginURL(app, "http://127.0.0.1:8100/health")
	if apperr.ExitCodeOf(err) != apperr.ExitUsage || !strings.Contains(strings.Join(apperr.As(err).Hints, " "), "--manager-url") {
		t.Errorf("health URL outside the REST API: %v, want a usage error naming --manager-url", err)
	}
}
