package cli

import (
	"bufio"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/ldapprobe"
)

// ldapSecretMaxBytes bounds a password read from a file or stdin.
const ldapSecretMaxBytes = 64 * 1024

// ldapSecretReadFile reads a password file: its first line, without the
// line ending.
func ldapSecretReadFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ldapSecretFirstLine(f)
}

// ldapSecretFirstLine returns the first line of r without its line ending.
func ldapSecretFirstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, ldapSecretMaxBytes)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// ldapSecretOptions name where the end user's password comes from.
type ldapSecretOptions struct {
	stdin bool
	file  string
}

// ldapSecretUserPassword reads the end user's password from, in order,
// --password-stdin, --password-file, CFYAUTH_PASSWORD, or a prompt without
// echo on a terminal. It returns the password and where it came from.
func ldapSecretUserPassword(app *App, user string, opts ldapSecretOptions) (ldapprobe.Secret, string, error) {
	if opts.stdin && opts.file != "" {
		return "", "", apperr.Usage("invalid_flag", "--password-stdin and --password-file cannot be used together").
			WithHint("pick one source for the password of %s", user)
	}
	switch {
	case opts.stdin:
		pw, err := ldapSecretFirstLine(app.IO.In)
		if err != nil {
			return "", "", apperr.Usage("invalid_input", "cannot read the password from stdin: %v", err)
		}
		return ldapprobe.Secret(pw), "stdin", nil
	case opts.file != "":
		pw, err := ldapSecretReadFile(opts.file)
		if err != nil {
			return "", "", apperr.Usage("invalid_flag", "cannot read --password-file %s: %v", opts.file, ldapSecretPathError(err)).
				WithHint("pass a readable file that holds the password of %s", user)
		}
		return ldapprobe.Secret(pw), "--password-file " + opts.file, nil
	case app.Getenv("CFYAUTH_PASSWORD") != "":
		return ldapprobe.Secret(app.Getenv("CFYAUTH_PASSWORD")), "CFYAUTH_PASSWORD", nil
	}
	if app.Global.NonInteractive || !app.IO.StdinTTY {
		return "", "", apperr.Usage("missing_password", "no password for %s, and cfyauth may not prompt", user).
			WithHint("pass --password-stdin, --password-file FILE or set CFYAUTH_PASSWORD; or use --lookup-only to skip the user bind")
	}
	raw, err := ldapSecretPrompt(app, "Password for "+user+": ")
	if err != nil {
		return "", "", err
	}
	return ldapprobe.Secret(raw), "prompt", nil
}

// ldapSecretPrompt prompts on stderr and reads a line from the terminal on
// stdin without echo.
func ldapSecretPrompt(app *App, prompt string) (string, error) {
	f, ok := app.IO.In.(*os.File)
	if !ok {
		return "", apperr.Usage("missing_password", "no terminal to prompt on for: %s", strings.TrimSuffix(prompt, ": ")).
			WithHint("pass the password with a file or an environment variable (see --help)")
	}
	raw, err := readLineWithoutEcho(f, app.IO.ErrOut, prompt)
	if err != nil {
		return "", apperr.Usage("invalid_input", "cannot read the password from the terminal: %v", err)
	}
	return string(raw), nil
}

// ldapSecretPathError drops the path from a file error, because the
// message names the file already.
func ldapSecretPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
