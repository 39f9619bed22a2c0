package cli

import (
	"encoding/base64"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

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
