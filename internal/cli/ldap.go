package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/ldapprobe"
)

func newLDAPCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ldap",
		Short: "Show and check the LDAP settings the manager uses",
		Long: `Show the effective LDAP settings under the manager's key names, rendered for
a user, and probe live LDAP servers layer by layer with them.

Settings come from flags named like the options of 'cfy ldap set', then
CFYAUTH_LDAP_* environment variables (CFYAUTH_LDAP_SERVER for ldap_server,
and so on), then a --settings file in YAML or JSON with the manager's keys,
then, with --from-manager, the running manager's own settings, then the
manager's defaults. The bind password never comes from a flag: it comes
from --ldap-password-file, CFYAUTH_LDAP_PASSWORD, the settings file or the
manager.`,
		Example: `  # The settings and their sources, rendered for jbloggs
  cfyauth ldap show -s ldaps://ldap.example.com:636 -d example.com -c ca.pem --user jbloggs

  # Does jbloggs get in? (prompts for the password on a terminal)
  cfyauth ldap check -s ldaps://ldap.example.com:636 -d example.com -c ca.pem --user jbloggs

  # The running manager's own settings, and what jbloggs may do there
  CLOUDIFY_PASSWORD=... cfyauth ldap check --from-manager -c ca.pem --user jbloggs`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return apperr.Usage("missing_command", "ldap needs a subcommand").
				WithHint("run 'cfyauth ldap show' or 'cfyauth ldap check'")
		},
	}
	cmd.AddCommand(newLDAPShowCmd(app, nil), newLDAPCheckCmd(app, nil))
	return cmd
}

// ldapSettingsOptions are the settings flags shared by ldap show and ldap
// check.
type ldapSettingsOptions struct {
	strings      map[string]*string // manager key -> flag value
	servers      []string
	isAD         bool
	nestedLevels string
	timeout      string
	passwordFile string
	settingsFile string
	manager      ldapManagerOptions
	// connected is the manager the settings were read from, once resolve
	// has run with --from-manager.
	connected *ldapManager
}

// ldapShortFlags are the one-letter forms 'cfy ldap set' has; -p (its
// password flag) is left out on purpose.
var ldapShortFlags = map[string]string{
	ldapprobe.KeyServer:            "s",
	ldapprobe.KeyUsername:          "u",
	ldapprobe.KeyDomain:            "d",
	ldapprobe.KeyIsActiveDirectory: "a",
	ldapprobe.KeyDNExtra:           "e",
	ldapprobe.KeyCAPath:            "c",
}

func (o *ldapSettingsOptions) addFlags(fs *pflag.FlagSet) {
	o.strings = map[string]*string{}
	for _, k := range ldapprobe.Keys {
		if k.Flag == "" {
			continue
		}
		help := fmt.Sprintf("%s (env %s)", k.Help, k.Env())
		short := ldapShortFlags[k.Name]
		switch k.Name {
		case ldapprobe.KeyServer:
			fs.StringArrayVarP(&o.servers, k.Flag, short, nil, help)
		case ldapprobe.KeyIsActiveDirectory:
			fs.BoolVarP(&o.isAD, k.Flag, short, false, help)
		case ldapprobe.KeyNestedLevels:
			fs.StringVar(&o.nestedLevels, k.Flag, "", help)
		case ldapprobe.KeyTimeout:
			fs.StringVar(&o.timeout, k.Flag, "", help)
		default:
			v := new(string)
			o.strings[k.Name] = v
			fs.StringVarP(v, k.Flag, short, "", help)
		}
	}
	fs.StringVar(&o.passwordFile, "ldap-password-file", "", "file holding the service account's password (env CFYAUTH_LDAP_PASSWORD)")
	fs.StringVar(&o.settingsFile, "settings", "", "YAML or JSON file of LDAP settings with the manager's key names (ldap_server, ldap_domain, …)")
	o.manager.addFlags(fs)
}

// flagLayer collects the settings given as flags.
func (o *ldapSettingsOptions) flagLayer(app *App, fs *pflag.FlagSet) (ldapprobe.Layer, error) {
	l := ldapprobe.Layer{Kind: ldapprobe.SourceFlag}
	for _, k := range ldapprobe.Keys {
		if k.Flag == "" || !fs.Changed(k.Flag) {
			continue
		}
		origin := "--" + k.Flag
		switch k.Name {
		case ldapprobe.KeyServer:
			l.Set(k.Name, o.servers, origin)
		case ldapprobe.KeyIsActiveDirectory:
			l.Set(k.Name, o.isAD, origin)
		case ldapprobe.KeyNestedLevels:
			l.Set(k.Name, o.nestedLevels, origin)
		case ldapprobe.KeyTimeout:
			l.Set(k.Name, o.timeout, origin)
		default:
			l.Set(k.Name, *o.strings[k.Name], origin)
		}
	}
	if fs.Changed("ldap-password-file") {
		password, err := ldapSecretBindPassword(app, o.passwordFile)
		if err != nil {
			return l, err
		}
		l.Set(ldapprobe.KeyPassword, password, "--ldap-password-file "+o.passwordFile)
	}
	return l, nil
}

// resolve merges the sources into effective settings and applies the
// manager's rules. Errors are usage errors; warnings are printed and
// returned for the JSON document.
func (o *ldapSettingsOptions) resolve(cmd *cobra.Command, app *App, check ldapprobe.CheckOptions) (*ldapprobe.Settings, []ldapprobe.Warning, error) {
	flags, err := o.flagLayer(app, cmd.Flags())
	if err != nil {
		return nil, nil, err
	}
	layers := []ldapprobe.Layer{flags, ldapprobe.EnvLayer(app.Getenv)}
	if o.settingsFile != "" {
		file, ignored, err := ldapprobe.LoadFile(o.settingsFile)
		if err != nil {
			return nil, nil, ldapSettingsError(err, o.settingsFile)
		}
		for _, key := range ignored {
			app.Warnf("key %q in %s is not an LDAP setting and is ignored", key, o.settingsFile)
		}
		layers = append(layers, file)
	}
	if err := o.manager.validate(cmd.Flags()); err != nil {
		return nil, nil, err
	}
	if o.manager.fromManager {
		// The manager's settings rank between the settings file and the
		// defaults, so flags can override what the manager holds.
		m, err := o.manager.connect(cmd.Context(), app)
		if err != nil {
			return nil, nil, err
		}
		o.connected = m
		layers = append(layers, m.settings.Layer)
		app.Infof("read the LDAP settings from %s as %s", m.URL, m.AdminUser)
	}

	s, err := ldapprobe.Resolve(layers)
	if err != nil {
		return nil, nil, ldapSettingsError(err, o.settingsFile)
	}
	for _, k := range ldapprobe.Keys {
		app.Debugf("%s = %q (from %s)", k.Name, s.Value(k.Name), s.Sources[k.Name])
	}
	if o.connected != nil {
		if err := o.connected.finish(s, check.NeedServer); err != nil {
			return nil, nil, err
		}
		for _, note := range o.connected.Notes {
			app.Infof("note: %s", note)
		}
		check.FromManager = true
	}
	errs, warnings := ldapprobe.Check(s, check)
	if len(errs) > 0 {
		return nil, nil, settingsErrors(errs)
	}
	for _, w := range warnings {
		app.Warnf("%s", w)
	}
	return s, warnings, nil
}

// ldapSettingsError turns a settings problem into a usage error.
func ldapSettingsError(err error, file string) error {
	var se *ldapprobe.SettingsError
	if errors.As(err, &se) {
		return apperr.Usage("invalid_ldap_settings", "%s", se.Error()).WithHint("%s", se.Hint)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return apperr.Usage("invalid_flag", "cannot read --settings %s: %v", file, pe.Err).
			WithHint("pass a readable YAML or JSON file with --settings")
	}
	return apperr.Usage("invalid_ldap_settings", "%s", err.Error())
}

// settingsErrors reports every rule the settings break in one usage error.
func settingsErrors(errs []*ldapprobe.SettingsError) error {
	messages := make([]string, 0, len(errs))
	e := apperr.Usage("invalid_ldap_settings", "")
	for _, se := range errs {
		messages = append(messages, se.Error())
		e.WithHint("%s", se.Hint)
	}
	e.Message = strings.Join(messages, "; ")
	return e
}
