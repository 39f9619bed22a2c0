package restapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// pagedGroups serves user-groups two rows per page, as a manager with a
// small page size would.
func pagedGroups(t *testing.T, names []string, offsets *[]string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3.1/user-groups" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if q.Get("_get_data") != "true" {
			t.Errorf("user-groups without _get_data: %s", r.URL.RawQuery)
		}
		*offsets = append(*offsets, q.Get("_offset"))
		var offset int
		fmt.Sscan(q.Get("_offset"), &offset)
		end := offset + 2
		if end > len(names) {
			end = len(names)
		}
		var items []map[string]any
		for _, name := range names[offset:end] {
			items = append(items, map[string]any{"name": name, "role": "default",
				"tenants": map[string]string{"ops": "viewer"}, "users": []string{}})
		}
		doc := map[string]any{"items": items, "metadata": map[string]any{
			"pagination": map[string]int{"total": len(names), "size": 2, "offset": offset}}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
}

func TestUserGroupsReadsEveryPage(t *testing.T) {
	var offsets []string
	srv := pagedGroups(t, []string{"a", "b", "c", "d", "e"}, &offsets)
	defer srv.Close()

	groups, err := newTestClient(t, srv.URL, Options{}).UserGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 5 || groups[4].Name != "e" || groups[4].Tenants["ops"] != "viewer" {
		t.Errorf("groups %+v, want all five", groups)
	}
	if got := strings.Join(offsets, ","); got != "0,2,4" {
		t.Errorf("offsets requested %s, want 0,2,4", got)
	}
}

func TestMatchUserGroupsExactNames(t *testing.T) {
	var offsets []string
	srv := pagedGroups(t, []string{"Cloudify Admins", "ops", "Dev Ops Team"}, &offsets)
	defer srv.Close()

	sent := []string{"Dev Ops Team", "cloudify admins", "Cloudify Admins ", "Dev  Ops Team", "Cloudify Admins", "Nobody", "Dev Ops Team"}
	matches, err := newTestClient(t, srv.URL, Options{}).MatchUserGroups(context.Background(), sent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range matches {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, "|"); got != "Dev Ops Team|Cloudify Admins" {
		t.Errorf("matches %q, want the byte-for-byte equal names once each, in the order sent", got)
	}
}

func TestMatchUserGroupsForbidden(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message": "User `+"`bob`"+` is not permitted to perform the action user_group_list", "error_code": "forbidden_error"}`)
	}))
	defer srv.Close()

	_, err := newTestClient(t, srv.URL, Options{}).MatchUserGroups(context.Background(), []string{"x"})
	apiErr := AsAPIError(err)
	if apiErr == nil || apiErr.Status != http.StatusForbidden {
		t.Fatalf("err %v, want the 403", err)
	}
	if e := apiErr.AppError(); e.Code != "forbidden" {
		t.Errorf("code %q", e.Code)
	}
}
