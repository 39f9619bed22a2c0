package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// maxSecretSize bounds a secret read from stdin or a file.
const maxSecretSize = 64 << 10

// SecretSource describes where one secret may come from. readSecret tries, in
// order: stdin (when Stdin is set), the file File, the environment variable
// EnvVar, and a prompt without echo when stdin is a terminal and the run is
// interactive. Secrets never come from a flag value.
type SecretSource struct {
	// What is the name of the secret in prompts and messages, such as
	// "the password of alice".
	What string
	// Prompt is the text shown before reading from the terminal, such as
	// "Password for alice: ".
	Prompt string
	// Stdin and StdinFlag: read the secret from stdin, set by StdinFlag
	// (such as "password-stdin").
	Stdin     bool
	StdinFlag string
	// File and FileFlag: read the secret from this file, set by FileFlag
	// (such as "password-file").
	File     string
	FileFlag string
	// EnvVar is the environment variable that may contain the secret, and
	// MoreEnvVars are tried after it, such as the cfy CLI's own variables.
	EnvVar      string
	MoreEnvVars []string
	// NoPrompt turns the terminal prompt off, for secrets that are optional.
	NoPrompt bool
	// MultiLine accepts several lines, for files of secret headers.
	MultiLine bool
}

// readPasswordFromTerminal reads one line without echo; tests replace it.
var readPasswordFromTerminal = func(app *App, prompt string) (string, error) {
	f, ok := app.IO.In.(*os.File)
	if !ok {
		return "", errors.New("stdin is not a terminal")
	}
	return readLineWithoutEcho(f, app.IO.ErrOut, prompt)
}

// readLineWithoutEcho switches the terminal's echo off, then shows the
// prompt and reads one line. Switching echo off first means that characters
// typed before the read starts are not echoed either.
func readLineWithoutEcho(f *os.File, errOut io.Writer, prompt string) (string, error) {
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("read the terminal settings: %w", err)
	}
	quiet := *saved
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("switch the terminal's echo off: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, saved)

	fmt.Fprint(errOut, prompt)
	// The Enter key is not echoed either, so end the prompt line here.
	defer fmt.Fprintln(errOut)
	var line []byte
	one := make([]byte, 1)
	for len(line) <= maxSecretSize {
		n, err := f.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimSuffix(string(line), "\r"), nil
			}
			line = append(line, one[0])
		}
		if errors.Is(err, io.EOF) {
			return strings.TrimSuffix(string(line), "\r"), nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("the line is longer than 64 KiB")
}

// readSecret reads one secret from the first source that is set. Errors
// name the flag, file or variable to fix, never the secret. An empty secret
// from stdin, a file or a prompt is returned as it is; the caller decides
// whether it may be empty.
func readSecret(app *App, src SecretSource) (string, error) {
	secret, _, err := readSecretFrom(app, src)
	return secret, err
}

// readSecretFrom is readSecret that also returns where the secret came from
// ("stdin", "file PATH", "environment NAME" or "prompt"), for -v output. It
// returns an empty origin, and no error, when NoPrompt is set and no source
// holds the secret.
func readSecretFrom(app *App, src SecretSource) (string, string, error) {
	if src.Stdin && src.File != "" {
		return "", "", apperr.Usage("invalid_flag", "--%s and --%s cannot be used together", src.StdinFlag, src.FileFlag).
			WithHint("read %s from stdin or from a file, not both", src.What)
	}
	switch {
	case src.Stdin:
		if app.IO.StdinTTY {
			return "", "", apperr.Usage("invalid_flag", "--%s reads %s from a pipe, but stdin is a terminal", src.StdinFlag, src.What).
				WithHint("pipe it in, as in 'cat secret.txt | cfyauth …', or leave out --%s to be prompted", src.StdinFlag)
		}
		data, err := io.ReadAll(io.LimitReader(app.IO.In, maxSecretSize+1))
		if err != nil {
			return "", "", apperr.Usage("invalid_input", "cannot read %s from stdin: %v", src.What, err).
				WithHint("pipe %s into --%s", src.What, src.StdinFlag)
		}
		if len(data) > maxSecretSize {
			return "", "", apperr.Usage("invalid_input", "stdin contains more than 64 KiB, so it is not %s", src.What).
				WithHint("pipe only %s into --%s", src.What, src.StdinFlag)
		}
		secret, err := checkSecretText(trimLineBreak(string(data)), src, "stdin")
		return secret, "stdin", err
	case src.File != "":
		secret, err := readSecretFile(app, src)
		if err == nil {
			secret, err = checkSecretText(secret, src, "--"+src.FileFlag+" "+src.File)
		}
		return secret, "file " + src.File, err
	}
	for _, name := range append([]string{src.EnvVar}, src.MoreEnvVars...) {
		if name == "" {
			continue
		}
		if v := app.Getenv(name); v != "" {
			app.Debugf("%s comes from the environment variable %s", src.What, name)
			return v, "environment " + name, nil
		}
	}
	if src.NoPrompt {
		return "", "", nil
	}
	if app.Global.NonInteractive || !app.IO.StdinTTY {
		e := apperr.Usage("missing_secret", "%s is missing, and cfyauth does not prompt in non-interactive mode", src.What)
		return "", "", e.WithHint("%s", secretSourcesHint(src))
	}
	secret, err := readPasswordFromTerminal(app, src.Prompt)
	if err != nil {
		return "", "", apperr.Usage("missing_secret", "cannot read %s from the terminal: %v", src.What, err).
			WithHint("%s", secretSourcesHint(src))
	}
	return secret, "prompt", nil
}

// checkSecretText rejects text that cannot be one secret: several lines or
// a NUL byte, whose meaning would be a guess.
func checkSecretText(secret string, src SecretSource, origin string) (string, error) {
	if !src.MultiLine && strings.ContainsAny(secret, "\r\n") {
		return "", apperr.Usage("invalid_input", "%s contains more than one line, so it is not %s", origin, src.What).
			WithHint("put %s alone on one line", src.What)
	}
	if strings.IndexByte(secret, 0) >= 0 {
		return "", apperr.Usage("invalid_input", "%s contains a NUL byte, so it is not %s", origin, src.What).
			WithHint("put %s alone on one line", src.What)
	}
	return secret, nil
}

func secretSourcesHint(src SecretSource) string {
	var ways []string
	if src.StdinFlag != "" {
		ways = append(ways, "--"+src.StdinFlag)
	}
	if src.FileFlag != "" {
		ways = append(ways, "--"+src.FileFlag+" FILE")
	}
	hint := "pass " + strings.Join(ways, " or ")
	var vars []string
	for _, name := range append([]string{src.EnvVar}, src.MoreEnvVars...) {
		if name != "" {
			vars = append(vars, name)
		}
	}
	if len(vars) > 0 {
		hint += ", or set " + strings.Join(vars, " or ")
	}
	return hint
}

func readSecretFile(app *App, src SecretSource) (string, error) {
	path := src.File
	st, err := os.Stat(path)
	if err != nil {
		reason := "cannot be read"
		switch {
		case errors.Is(err, os.ErrNotExist):
			reason = "does not exist"
		case errors.Is(err, os.ErrPermission):
			reason = "cannot be read: permission denied"
		}
		return "", apperr.Usage("invalid_flag", "--%s %s %s", src.FileFlag, path, reason).
			WithHint("pass the file that contains %s", src.What)
	}
	if st.IsDir() {
		return "", apperr.Usage("invalid_flag", "--%s %s is a folder", src.FileFlag, path).
			WithHint("pass the file that contains %s", src.What)
	}

	if st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
		app.Warnf("%s can be read by other users (mode %04o); chmod 600 it", path, st.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return "", apperr.Usage("invalid_flag", "--%s %s cannot be opened: %v", src.FileFlag, path, pathCause(err)).
			WithHint("pass a file that you can read")
	}
	defer f.Close()

	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", apperr.Usage("invalid_flag", "--%s %s cannot be read: %v", src.FileFlag, path, pathCause(err)).
			WithHint("pass a file that you can read")
	}
	if len(data) > maxSecretSize {
		return "", apperr.Usage("invalid_flag", "--%s %s is larger than 64 KiB, so it does not contain %s", src.FileFlag, path, src.What).
			WithHint("pass the file that contains %s", src.What)
	}
	return trimLineBreak(string(data)), nil
}

// trimLineBreak removes one trailing line break, which editors and echo add.
func trimLineBreak(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

// pathCause returns the system error inside a *os.PathError, whose own text
// repeats the path.
func pathCause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// requireSecret is readSecretFrom for a secret that may not be empty.
func requireSecret(app *App, src SecretSource) (string, string, error) {
	secret, origin, err := readSecretFrom(app, src)
	if err != nil {
		return "", "", err
	}
	if secret == "" && origin != "" {
		return "", "", apperr.Usage("invalid_input", "%s from %s is empty", src.What, origin).
			WithHint("%s", secretSourcesHint(src))
	}
	return secret, origin, nil
}
