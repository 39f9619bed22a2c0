package cli

import (
	"context"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/oktaprobe"
	"github.com/cfyauth/cfyauth/internal/restapi"
)

// userGroupLookup finds Cloudify user-groups by exact name through the
// manager's REST API.
type userGroupLookup struct {
	client *restapi.Client
}

// LookupUserGroups returns the user-groups whose names equal the sent
// group names byte for byte, with the role and tenants each grants.
func (l userGroupLookup) LookupUserGroups(ctx context.Context, names []string) ([]oktaprobe.UserGroupMatch, error) {
	groups, err := l.client.MatchUserGroups(ctx, names)
	if err != nil {
		if apiErr := restapi.AsAPIError(err); apiErr != nil {
			return nil, apiErr.AppError()
		}
		return nil, err
	}
	matches := make([]oktaprobe.UserGroupMatch, 0, len(groups))
	for _, g := range groups {
		matches = append(matches, oktaprobe.UserGroupMatch{Group: g.Name, Role: g.Role, Tenants: g.Tenants})
	}
	return matches, nil
}

// managerGroupLookup returns the user-group lookup of --from-manager, or
// nil without it. It checks the flags and reads the admin's password before
// anything reaches the network.
func managerGroupLookup(app *App, opts *OktaCheckOptions) (oktaprobe.GroupLookup, error) {
	if !opts.FromManager {
		if opts.AdminPasswordFile != "" {
			return nil, apperr.Usage("invalid_flag", "--admin-password-file applies to --from-manager").
				WithHint("add --from-manager to match the response's groups against the manager's user-groups")
		}
		return nil, nil
	}

	if opts.SAMLResponse == "" {
		return nil, apperr.Usage("invalid_flag", "--from-manager matches the groups of a SAML response, and none was given").
			WithHint("pass the captured response with --saml-response FILE")
	}
	if opts.Offline {
		return nil, apperr.Usage("invalid_flag", "--offline sends no request, but --from-manager reads the manager's user-groups").
			WithHint("drop --offline, or drop --from-manager to check the response alone")
	}

	managerURL, err := restManagerURL(app)
	if err != nil {
		return nil, err
	}
	creds, err := adminCredentials(app, opts.AdminPasswordFile)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		return nil, apperr.Usage("missing_secret", "--from-manager reads the manager's user-groups, which needs the admin's password").
			WithHint("pass --admin-password-file FILE, or set CFYAUTH_ADMIN_PASSWORD (or CLOUDIFY_USERNAME and CLOUDIFY_PASSWORD, as for the cfy CLI)")
	}

	app.Debugf("--from-manager: reading user-groups at %s as %s", managerURL, creds.Username)
	client, err := restapi.New(restapi.Options{
		URL:         managerURL,
		Credentials: restapi.Credentials{Username: creds.Username, Password: creds.Password},
		Tenant:      creds.Tenant,
		Timeout:     opts.Timeout,
		TLS: restapi.TLSOptions{
			CAFile:      app.Global.CACert,
			ManagerPath: managerPathFunc(app.Global.Root),
		},
	})
	if err != nil {
		return nil, err
	}
	return userGroupLookup{client: client}, nil
}
