package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/ldapprobe"
	"github.com/cfyauth/cfyauth/internal/restapi"
)

// ldapManagerOptions are the flags that read the settings from a running
// manager.
type ldapManagerOptions struct {
	fromManager       bool
	adminUser         string
	adminPasswordFile string
}

func (o *ldapManagerOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.fromManager, "from-manager", false, "read the LDAP settings from the manager (GET /api/v3.1/config at --manager-url) as its admin; flags, CFYAUTH_LDAP_* and --settings still override them")
	fs.StringVar(&o.adminUser, "admin-user", "", "manager admin for --from-manager (env CLOUDIFY_USERNAME; default admin)")
	fs.StringVar(&o.adminPasswordFile, "admin-password-file", "", "file holding the manager admin's password for --from-manager (env CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD)")
}

// ldapManager is the manager the settings were read from.
type ldapManager struct {
	URL       string `json:"url"`
	AdminUser string `json:"admin_user"`
	// Tenant is the Tenant header sent (CLOUDIFY_TENANT), if any.
	Tenant string   `json:"tenant,omitempty"`
	Notes  []string `json:"notes"`
	// UserGroups counts the manager's user groups read for the preview.
	UserGroups *int `json:"user_groups,omitempty"`

	client   *restapi.Client
	settings *ldapprobe.ManagerSettings
}

// validate rejects admin flags without --from-manager.
func (o *ldapManagerOptions) validate(fs *pflag.FlagSet) error {
	if o.fromManager {
		return nil
	}
	for _, name := range []string{"admin-user", "admin-password-file"} {
		if fs.Changed(name) {
			return apperr.Usage("invalid_flag", "--%s is used only with --from-manager", name).
				WithHint("add --from-manager to read the settings from the manager, or drop --%s", name)
		}
	}
	return nil
}

// connect logs in to the manager as its admin and reads the LDAP rows of
// the rest scope.
func (o *ldapManagerOptions) connect(ctx context.Context, app *App) (*ldapManager, error) {
	client, creds, err := o.client(app)
	if err != nil {
		return nil, err
	}

	items, err := client.Config(ctx, "rest")
	if err != nil {
		return nil, settingsUnreadable(ldapManagerError(err, client, "read the LDAP settings"))
	}
	rows := map[string]json.RawMessage{}
	for _, it := range items {
		rows[it.Name] = it.Value
	}
	ms, err := ldapprobe.ManagerLayer(client.URL(), rows)
	if err != nil {
		return nil, apperr.Environment("unexpected_response", "%v", err).
			WithHint("check that --manager-url points at a Cloudify Manager's REST API")
	}

	m := &ldapManager{URL: client.URL(), AdminUser: creds.Username, Tenant: app.Getenv("CLOUDIFY_TENANT"),
		Notes: []string{}, client: client, settings: ms}
	for _, name := range ms.Ignored {
		app.Debugf("the manager's %s is not a setting cfyauth uses", name)
	}
	if ms.CAPath != "" {
		m.Notes = append(m.Notes, fmt.Sprintf("the manager's ldap_ca_path names %s, a file on the manager host that the manager no longer reads from Cloudify 5.2 on; cfyauth does not use it", ms.CAPath))
	}
	return m, nil
}

// client returns a REST client for --manager-url that logs in as the
// manager's admin.
func (o *ldapManagerOptions) client(app *App) (*restapi.Client, restapi.Credentials, error) {
	g := app.Global
	managerURL := g.ManagerURL
	if managerURL == "" {
		if g.Root != "/" {
			return nil, restapi.Credentials{}, apperr.Usage("missing_flag", "--root is %s, so cfyauth does not guess the manager's URL for --from-manager", g.Root).
				WithHint("pass --manager-url URL (on a manager host the REST service is %s)", restapi.DefaultManagerURL)
		}
		managerURL = restapi.DefaultManagerURL
		app.Debugf("manager-url = %q (default: the REST service on this host)", managerURL)
	}
	if _, err := restapi.ParseManagerURL(managerURL); err != nil {
		return nil, restapi.Credentials{}, err
	}

	creds, source, err := ldapAdminCredentials(app, o)
	if err != nil {
		return nil, creds, err
	}
	app.Debugf("manager admin %s, password from %s", creds.Username, source)
	client, err := restapi.New(restapi.Options{
		URL:         managerURL,
		Credentials: creds,
		Tenant:      app.Getenv("CLOUDIFY_TENANT"),
		TLS:         restapi.TLSOptions{CAFile: g.CACert, ManagerPath: managerPathFunc(g.Root)},
	})
	return client, creds, err
}

// finish adds the notes that depend on the resolved settings. It rejects
// settings that would use a value the manager masked and, when the command
// needs a server, a manager without LDAP that no other source fills in.
func (m *ldapManager) finish(s *ldapprobe.Settings, needServer bool) error {
	if !m.settings.HasServer() && len(s.Servers) == 0 {
		if needServer {
			return apperr.Failed("ldap_not_configured", "the manager at %s has no ldap_server: LDAP is not configured there", m.URL).
				WithHint("configure it with 'cfy ldap set', or pass --ldap-server to check settings that are not on the manager yet")
		}
		m.Notes = append(m.Notes, "the manager has no ldap_server: LDAP is not configured there")
	}
	if err := m.checkMasked(s); err != nil {
		return err
	}
	anyLDAPS := false
	for _, raw := range s.Servers {
		if strings.HasPrefix(raw, "ldaps://") {
			anyLDAPS = true
		}
	}
	// Without a CA the settings check fails with the same fact, so the
	// note is only needed when a CA came from elsewhere.
	if anyLDAPS && s.CAPEM != "" {
		m.Notes = append(m.Notes, fmt.Sprintf("the CA comes from %s, because the manager does not return its own; it must be the CA the manager uses",
			s.Sources[ldapprobe.KeyCAPath]))
	}
	return nil
}

// checkMasked rejects settings that would bind with a value the manager
// masked for an admin who is not sys_admin. Such a value is never used:
// the service account must then come from a flag, a CFYAUTH_LDAP_*
// variable or --settings, or the admin must be a sys_admin.
func (m *ldapManager) checkMasked(s *ldapprobe.Settings) error {
	sysAdminHint := fmt.Sprintf("log in as a sys_admin with --admin-user (or CLOUDIFY_USERNAME): %s is not one, and the manager shows the service account only to a sys_admin", m.AdminUser)
	source := s.Sources[ldapprobe.KeyUsername].Kind
	fromManager := source == ldapprobe.SourceUnset || source == ldapprobe.SourceDefault
	if m.settings.UsernameMasked && fromManager {
		return apperr.Usage("masked_ldap_username", "the manager sent ldap_username masked to %s, so cfyauth does not know whether the manager binds as a service account, or as which", m.AdminUser).
			WithHint("%s", sysAdminHint).
			WithHint("or pass the service account with --ldap-username NAME and its password with --ldap-password-file FILE (--ldap-username '' when the manager uses none)")
	}
	if m.settings.PasswordMasked && s.Username != "" && s.Password == "" {
		return apperr.Usage("masked_ldap_password", "the manager sent ldap_password masked to %s, so the service account %s cannot bind", m.AdminUser, s.Username).
			WithHint("%s", sysAdminHint).
			WithHint("or pass the service account's password with --ldap-password-file FILE (or CFYAUTH_LDAP_PASSWORD)")
	}
	return nil
}

// previewInput reads the manager's user groups for the preview layer. A
// failure does not stop the check: the preview is then skipped with the
// reason.
func (m *ldapManager) previewInput(ctx context.Context) *ldapprobe.PreviewInput {
	in := &ldapprobe.PreviewInput{Source: m.URL + restapi.APIPrefix + "/user-groups"}
	groups, err := m.client.UserGroups(ctx)
	if err != nil {
		in.Unavailable = apperr.As(ldapManagerError(err, m.client, "read the user groups")).Message
		return in
	}
	n := len(groups)
	m.UserGroups = &n
	for _, g := range groups {
		in.Groups = append(in.Groups, ldapprobe.ManagerGroup{Name: g.Name, LDAPDN: g.LDAPDN, Role: g.Role, Tenants: g.Tenants})
	}
	return in
}

// settingsUnreadable adds to an environment error why it stops the
// command: ldap show and ldap check need the manager's settings before
// anything else, so they cannot act at all (exit 3). A check that only
// looks something up on the manager, such as the preview, reports a
// failure in its own result instead.
func settingsUnreadable(err error) error {
	e := apperr.As(err)
	if e.Kind != apperr.KindEnvironment {
		return err
	}
	e.Message = "--from-manager cannot read the LDAP settings this command needs: " + e.Message
	e.WithHint("to work without the manager, pass the settings with flags or --settings instead of --from-manager")
	return e
}

// ldapManagerError explains a failed request to the manager.
func ldapManagerError(err error, client *restapi.Client, what string) error {
	var apiErr *restapi.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	e := apiErr.AppError()
	switch {
	case apiErr.Status == 401:
		e.Hints = nil
		e.WithHint("check the manager admin's name (--admin-user or CLOUDIFY_USERNAME) and password (--admin-password-file, CFYAUTH_ADMIN_PASSWORD or CLOUDIFY_PASSWORD)")
	case apiErr.IsInvalidTenant():
		e.Hints = nil
		e.WithHint("CLOUDIFY_TENANT names a tenant the manager does not have: unset it or set an existing tenant")
	case apiErr.Status == 403:
		e.Hints = nil
		e.WithHint("--from-manager needs a sys_admin to %s: pass one with --admin-user", what)
	case apiErr.Status == 404:
		e.Hints = nil
		e.WithHint("the manager at %s has no such endpoint: GET /config exists from Cloudify 5.0 on; for an older manager pass the settings with flags or --settings", client.URL())
	}
	return e
}

// ldapAdminCredentials returns the manager admin's name and password and
// where the password came from: --admin-password-file,
// CFYAUTH_ADMIN_PASSWORD, CLOUDIFY_PASSWORD, or a prompt on a terminal.
func ldapAdminCredentials(app *App, o *ldapManagerOptions) (restapi.Credentials, string, error) {
	user := o.adminUser
	if user == "" {
		user = app.Getenv("CLOUDIFY_USERNAME")
	}
	if user == "" {
		user = "admin"
	}
	creds := restapi.Credentials{Username: user}
	pw, origin, err := requireSecret(app, SecretSource{
		What:        "the password of the manager admin " + user,
		Prompt:      "Password for the manager admin " + user + ": ",
		File:        o.adminPasswordFile,
		FileFlag:    "admin-password-file",
		EnvVar:      "CFYAUTH_ADMIN_PASSWORD",
		MoreEnvVars: []string{"CLOUDIFY_PASSWORD"},
	})
	if err != nil {
		return creds, "", err
	}
	creds.Password = pw
	return creds, origin, nil
}
