package cli

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// loginSecretMaxBytes bounds a password read from stdin or a file.
const loginSecretMaxBytes = 4096

// loginSecretSources are the places one secret may come from, in order of
// precedence: --X-stdin, --X-file, the environment variable, then a prompt
// without echo when stdin is a terminal and the run is interactive.
type loginSecretSources struct {
	// What is the secret's name in prompts and messages, such as "password
	// for user meme".
	What      string
	Stdin     bool
	StdinFlag string
	File      string
	FileFlag  string
	EnvVar    string
}

// loginSecretRead returns the secret and a description of where it came
// from (never the secret itself). A missing or unusable source is a usage
// error that names the flags to use.
func loginSecretRead(app *App, src loginSecretSources) (string, string, error) {
	if src.Stdin && src.File != "" {
		return "", "", apperr.Usage("conflicting_flags", "--%s and --%s cannot be used together", src.StdinFlag, src.FileFlag).
			WithHint("pick one source for the %s", src.What)
	}
	switch {
	case src.Stdin:
		if app.IO.StdinTTY {
			return "", "", apperr.Usage("stdin_is_terminal", "--%s reads the %s from a pipe, but stdin is a terminal", src.StdinFlag, src.What).
				WithHint("pipe it in (printf '%%s' \"$PASSWORD\" | cfyauth ...), or leave out --%s to be prompted", src.StdinFlag)
		}
		secret, err := loginSecretFromReader(app.IO.In)
		if err != nil {
			return "", "", apperr.Usage("invalid_secret", "cannot read the %s from stdin: %v", src.What, err).
				WithHint("pipe exactly one line holding the %s into --%s", src.What, src.StdinFlag)
		}
		return secret, "stdin", nil
	case src.File != "":
		secret, err := loginSecretFromFile(app, src.File)
		if err != nil {
			return "", "", apperr.Usage("invalid_secret", "cannot read the %s from --%s %s: %v", src.What, src.FileFlag, src.File, err).
				WithHint("pass a readable file holding one line with the %s", src.What)
		}
		return secret, "file " + src.File, nil
	}
	if src.EnvVar != "" {
		if v := app.Getenv(src.EnvVar); v != "" {
			return v, "environment " + src.EnvVar, nil
		}
	}
	if app.Global.NonInteractive {
		return "", "", apperr.Usage("missing_secret", "no %s given", src.What).
			WithHint("pass --%s (and pipe it in), --%s FILE, or set %s; cfyauth prompts only on a terminal",
				src.StdinFlag, src.FileFlag, src.EnvVar)
	}
	secret, err := loginSecretPrompt(app, src)
	if err != nil {
		return "", "", err
	}
	return secret, "prompt", nil
}

// loginSecretFromReader reads one line: a single trailing newline is
// dropped, and more lines are an error because their meaning would be a
// guess.
func loginSecretFromReader(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, loginSecretMaxBytes+1))
	if err != nil {
		return "", err
	}
	return loginSecretFromBytes(data)
}

func loginSecretFromBytes(data []byte) (string, error) {
	if len(data) > loginSecretMaxBytes {
		return "", fmt.Errorf("longer than %d bytes", loginSecretMaxBytes)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	switch {
	case len(data) == 0:
		return "", errors.New("it is empty")
	case bytes.ContainsAny(data, "\r\n"):
		return "", errors.New("it contains more than one line")
	case bytes.IndexByte(data, 0) >= 0:
		return "", errors.New("it contains a NUL byte")
	}
	return string(data), nil
}

func loginSecretFromFile(app *App, path string) (string, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", errors.New("file not found")
	case errors.Is(err, os.ErrPermission):
		return "", errors.New("permission denied")
	case err != nil:
		return "", err
	case !info.Mode().IsRegular():
		return "", errors.New("not a regular file")
	}
	if info.Mode().Perm()&0o077 != 0 {
		app.Warnf("%s can be read by other users (mode %04o); chmod 600 it", path, info.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return "", errors.New("permission denied")
		}
		return "", err
	}
	defer f.Close()
	return loginSecretFromReader(f)
}

// loginSecretPrompt prompts on stderr and reads from the terminal on stdin
// without echo.
func loginSecretPrompt(app *App, src loginSecretSources) (string, error) {
	what := src.What
	f, ok := app.IO.In.(*os.File)
	if !ok || !app.IO.StdinTTY {
		return "", apperr.Usage("missing_secret", "no %s given and stdin is not a terminal to prompt on", what).
			WithHint("pass --%s (and pipe it in), --%s FILE, or set %s", src.StdinFlag, src.FileFlag, src.EnvVar)
	}
	data, err := readLineWithoutEcho(f, app.IO.ErrOut, upperFirst(what)+": ")
	if err != nil {
		return "", apperr.Environment("prompt_failed", "cannot read the %s from the terminal: %v", what, err).
			WithHint("pass it with --%s or --%s FILE instead", src.StdinFlag, src.FileFlag)
	}
	secret := strings.TrimRight(data, "\r\n")
	if secret == "" {
		return "", apperr.Usage("invalid_secret", "the %s is empty", what).
			WithHint("type the %s at the prompt, or pass --%s FILE", what, src.FileFlag)
	}
	return secret, nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// loginSecretMaxSAMLBytes bounds a saved SAML response; real ones are a few
// KiB to tens of KiB.
const loginSecretMaxSAMLBytes = 1 << 20

// loginSecretSAMLResponse reads a saved SAML response from a file, or from
// stdin for "-", and returns it base64-encoded as the manager expects it.
// The file may hold the XML itself or its base64 form (the SAMLResponse
// form field an identity provider posts).
func loginSecretSAMLResponse(app *App, path string) (string, error) {
	var data []byte
	var err error
	origin := path

	if path == "-" {
		origin = "stdin"
		if app.IO.StdinTTY {
			return "", apperr.Usage("stdin_is_terminal", "--saml-response - reads the SAML response from a pipe, but stdin is a terminal").
				WithHint("pass the file: --saml-response FILE")
		}
		data, err = io.ReadAll(io.LimitReader(app.IO.In, loginSecretMaxSAMLBytes+1))
	} else {
		var f *os.File
		f, err = os.Open(path)
		if err == nil {
			data, err = io.ReadAll(io.LimitReader(f, loginSecretMaxSAMLBytes+1))
			f.Close()
		}
	}

	if err != nil {
		reason := err.Error()
		switch {
		case errors.Is(err, os.ErrNotExist):
			reason = "file not found"
		case errors.Is(err, os.ErrPermission):
			reason = "permission denied"
		}
		return "", apperr.Usage("invalid_saml_response", "cannot read the SAML response from %s: %s", origin, reason).
			WithHint("pass a readable file saved from the identity provider's POST: --saml-response FILE")
	}
	if len(data) > loginSecretMaxSAMLBytes {
		return "", apperr.Usage("invalid_saml_response", "the SAML response in %s is larger than %d bytes", origin, loginSecretMaxSAMLBytes).
			WithHint("pass one SAML response, as XML or base64")
	}

	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, "<") {
		return base64.StdEncoding.EncodeToString([]byte(text)), nil
	}
	compact := strings.Join(strings.Fields(text), "")
	decoded, err := base64.StdEncoding.DecodeString(compact)
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(decoded)), "<") {
		return "", apperr.Usage("invalid_saml_response", "%s contains neither SAML XML nor base64-encoded SAML XML", origin).
			WithHint("save the SAMLResponse form field (base64) or the decoded XML from the identity provider's POST")
	}
	return compact, nil
}
