package cli

import (
	"github.com/cfyauth/cfyauth/internal/ldapprobe"
)

// ldapSecretOptions name where the end user's password comes from.
type ldapSecretOptions struct {
	stdin bool
	file  string
}

// ldapSecretUserPassword reads the end user's password from, in order,
// --password-stdin, --password-file, CFYAUTH_PASSWORD, or a prompt without
// echo on a terminal. It returns the password and where it came from; an
// empty password is returned as it is, for the caller to reject with its
// own reason.
func ldapSecretUserPassword(app *App, user string, opts ldapSecretOptions) (ldapprobe.Secret, string, error) {
	pw, origin, err := readSecretFrom(app, SecretSource{
		What:      "the password of " + user,
		Prompt:    "Password for " + user + ": ",
		Stdin:     opts.stdin,
		StdinFlag: "password-stdin",
		File:      opts.file,
		FileFlag:  "password-file",
		EnvVar:    "CFYAUTH_PASSWORD",
	})
	return ldapprobe.Secret(pw), origin, err
}

// ldapSecretBindPassword reads the LDAP service account's password from
// --ldap-password-file.
func ldapSecretBindPassword(app *App, path string) (string, error) {
	return readSecret(app, SecretSource{
		What:     "the LDAP service account's password",
		File:     path,
		FileFlag: "ldap-password-file",
		NoPrompt: true,
	})
}
