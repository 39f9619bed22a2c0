package oktaprobe

import (
	"context"
	"errors"
	"testing"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/report"
)

type failingGroups struct{ err error }

func (f failingGroups) LookupUserGroups(context.Context, []string) ([]UserGroupMatch, error) {
	return nil, f.err
}

func TestUserGroupsLookupFailureHint(t *testing.T) {
	groups := []string{"Dev Ops Team"}

	plain := userGroupsCheck(context.Background(), failingGroups{errors.New("connection reset")}, groups, &SAMLUser{})
	if plain.Status != report.Fail || plain.Summary != "cannot read the manager's user-groups: connection reset; only this check needs the manager, so the others stand" {
		t.Errorf("plain error: %s %q", plain.Status, plain.Summary)
	}
	if plain.Hint == "" {
		t.Error("plain error: no hint")
	}

	typed := apperr.Failed("forbidden", "the manager refused the request (403)").WithHint("use an admin account")
	c := userGroupsCheck(context.Background(), failingGroups{typed}, groups, &SAMLUser{})
	if c.Status != report.Fail || c.Hint != "use an admin account" {
		t.Errorf("typed error: %s, hint %q, want the error's own hint", c.Status, c.Hint)
	}
}
