package restapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Login outcomes.
const (
	OutcomeAccepted      = "accepted"
	OutcomeRejected      = "rejected"
	OutcomeUnknownTenant = "unknown_tenant"
	OutcomeForbidden     = "forbidden"
	OutcomeMaintenance   = "maintenance"
	OutcomeServerError   = "server_error"
	OutcomeUnreachable   = "unreachable"
)

// oktaCertificate is the IdP signing certificate the manager's Okta (SAML)
// authenticator checks responses with.
const oktaCertificate = "/etc/cloudify/ssl/okta_certificate.pem"

// AuthMethodExternal is the audit auth method of a login that an
// authenticator module accepted (Cloudify 6.4 and later).
const AuthMethodExternal = "external"

// LoginResult is the outcome of CheckLogin or CheckSAMLLogin and everything
// it learned.
type LoginResult struct {
	Username string
	Tenant   string
	Outcome  string
	// HTTPStatus is the status of GET /user, or zero without a response.
	HTTPStatus int
	// Audit holds the X-Cloudify-Audit-* headers of GET /user.
	Audit Audit
	// User is the manager's view of the user after a successful login.
	User *User
	// IDP lists the loaded authenticators; nil when unknown, with IDPNote
	// saying why.
	IDP     *IdentityProviders
	IDPNote string
	// Version is the manager's version; nil when unknown, with VersionNote
	// saying why.
	Version     *Version
	VersionNote string
	// ServiceOK is the result of GET /ok after a failed login: whether the
	// REST service reports itself healthy. Nil when not requested or unknown.
	ServiceOK *bool
	// ServerTraceback is the manager's traceback of a 500 response, with the
	// password masked.
	ServerTraceback string
	// SAML is set when the login posted a SAML response instead of basic
	// credentials.
	SAML bool
	// TokenNote reports whether the token of a SAML login was deleted.
	TokenNote string
	// LoginDuration is the time the login took (GET /user, or POST /tokens
	// and GET /user for SAML); Total includes the follow-up requests.
	LoginDuration time.Duration
	Total         time.Duration
	// Err is set for every outcome but accepted.
	Err *apperr.Error
}

// External reports whether the audit header names an authenticator module
// as the one that accepted the login.
func (r *LoginResult) External() bool { return r.Audit.AuthMethod == AuthMethodExternal }

// CheckLogin logs in with the client's credentials through GET
// /api/v3.1/user, then requests the loaded authenticators and the version.
// It returns an error only when the context was cancelled; every other
// failure is an outcome in the result, with Err explaining it.
func CheckLogin(ctx context.Context, c *Client) (*LoginResult, error) {
	start := time.Now()
	res := &LoginResult{Username: c.creds.Username, Tenant: c.tenant}
	user, audit, err := c.User(ctx)
	res.LoginDuration = time.Since(start)
	res.Audit = audit
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		res.explainFailure(ctx, c, err)
		res.Total = time.Since(start)
		return res, nil
	}
	res.HTTPStatus = http.StatusOK
	res.Outcome = OutcomeAccepted
	res.User = user
	if err := res.addServiceFacts(ctx, c); err != nil {
		return nil, err
	}
	res.Total = time.Since(start)
	return res, nil
}

// addServiceFacts requests the loaded authenticators and the version after
// a successful login. Only a cancelled context is returned as an error.
func (r *LoginResult) addServiceFacts(ctx context.Context, c *Client) error {
	idp, err := c.IDP(ctx)
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, ErrNotSupported):
		r.IDPNote = "this manager has no /api/v3.1/idp endpoint (it came in Cloudify 6.3)"
	case err != nil:
		r.IDPNote = "GET /api/v3.1/idp failed: " + apperr.As(err).Message
	default:
		r.IDP = idp
	}

	version, err := c.Version(ctx)
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case err != nil:
		r.VersionNote = "GET /api/v3.1/version failed: " + apperr.As(err).Message
	default:
		r.Version = version
	}
	return nil
}

func (r *LoginResult) explainFailure(ctx context.Context, c *Client, err error) {
	apiErr := AsAPIError(err)
	if apiErr == nil {
		r.Outcome = OutcomeUnreachable
		r.Err = apperr.As(err)
		return
	}
	r.HTTPStatus = apiErr.Status
	r.ServerTraceback = apiErr.ServerTraceback
	switch {
	case apiErr.IsMaintenance():
		r.Outcome = OutcomeMaintenance
		r.Err = apiErr.AppError()
		return
	case apiErr.Status == http.StatusUnauthorized && r.SAML:
		r.Outcome = OutcomeRejected
		r.Err = apperr.Failed("login_rejected", "SAML login rejected (401): %s", apiErr.Message).
			WithHint("no authenticator module accepted the SAML response: check its signature against %s, its validity window and this host's clock", c.displayPath(oktaCertificate)).
			WithHint("an identity provider's response is valid for minutes only; save a fresh one and try again").
			WithHint("run 'cfyauth okta check --saml-response FILE' with the same file to see which check it fails").Wrap(apiErr)
	case apiErr.Status == http.StatusUnauthorized:
		r.Outcome = OutcomeRejected
		r.Err = rejectedError(apiErr, r.Username)
	case apiErr.IsInvalidTenant():
		r.Outcome = OutcomeUnknownTenant
		r.Err = apperr.Failed("unknown_tenant", "login of %s refused: the manager has no tenant %q (403: %s)", r.who(), r.Tenant, apiErr.Message).
			WithHint("pass an existing tenant with --tenant, or leave --tenant and CLOUDIFY_TENANT unset to log in without one").Wrap(apiErr)
	case apiErr.Status == http.StatusForbidden:
		r.Outcome = OutcomeForbidden
		r.Err = apperr.Failed("forbidden", "login of %s refused (403): %s", r.who(), apiErr.Message).
			WithHint("an administrator must activate the user or give it a role in the tenant").Wrap(apiErr)
	case apiErr.Status >= 500 && apiErr.Status != http.StatusBadGateway && apiErr.Status != http.StatusServiceUnavailable && apiErr.Status != http.StatusGatewayTimeout:
		r.Outcome = OutcomeServerError
		r.Err = apperr.Failed("server_error", "login of %s failed with a server error (%d): %s", r.who(), apiErr.Status, apiErr.Message).
			WithHint("an authenticator module probably raised an exception: read the traceback in %s on the manager, or run 'cfyauth test-login -v' to print the one the manager sent", c.displayPath(restLog)).
			WithHint("run the module offline with 'cfyauth test NAME' and the same credentials to see the same failure").Wrap(apiErr)
	default:
		r.Outcome = OutcomeUnreachable
		r.Err = apiErr.AppError()
		return
	}
	// The login failed but the service responded, so record whether it
	// reports itself healthy. /ok needs no credentials.
	if okErr := c.Ok(ctx); okErr == nil {
		healthy := true
		r.ServiceOK = &healthy
	} else if e := AsAPIError(okErr); e != nil && e.Status != http.StatusNotFound {
		healthy := false
		r.ServiceOK = &healthy
	}
}

// who names the user of the login in messages.
func (r *LoginResult) who() string {
	if r.Username == "" && r.SAML {
		return "the SAML response's user"
	}
	return "user " + r.Username
}

// rejectedError explains a 401 on GET /user. The manager returns "No
// authentication info provided" also when credentials were sent but no
// authenticator module accepted them, which reads as if none were sent.
func rejectedError(apiErr *APIError, username string) *apperr.Error {
	e := apperr.Failed("login_rejected", "login rejected for user %s (401): %s", username, apiErr.Message)
	if strings.Contains(strings.ToLower(apiErr.Message), "no authentication info") {
		e.WithHint("the manager says this when no authenticator module accepted the credentials (they were sent)")
	}
	if strings.EqualFold(username, "admin") {
		e.WithHint("the bootstrap admin is checked against the manager's own user database, never by authenticator modules: check the admin password")
		e.WithHint("each rejected password counts towards failed_logins_before_account_lock (default 4) for local users")
	} else {
		e.WithHint("every login but the bootstrap admin's goes to the loaded authenticator modules in order: check the password, then run 'cfyauth test-login --user admin' to see which modules the service loaded")
		e.WithHint("run one module offline with 'cfyauth test NAME --user %s' to see why it does not accept the user", username)
	}
	return e.Wrap(apiErr)
}

// SAMLTokenLifetime is the expiration cfyauth requests when it exchanges a
// SAML response for a token, in the manager's relative form (the console
// sends "+10h"). The token is deleted right after the test anyway.
const SAMLTokenLifetime = "+10h"

// CheckSAMLLogin logs in the way the manager's console does after an
// identity provider's redirect: it posts the base64 SAML response to POST
// /api/v3.1/tokens with neither credentials nor a Tenant header, so the
// authenticators validate it. With the token it gets back it reads the user
// (in the client's tenant), the loaded authenticators and the version, then
// deletes the token where the manager keeps tokens (6.4 and later). The SAML
// response and the token are masked in every message. Like CheckLogin, it
// returns an error only when the context was cancelled.
func CheckSAMLLogin(ctx context.Context, c *Client, samlResponse string) (*LoginResult, error) {
	start := time.Now()
	c = c.withHidden(samlResponse)
	res := &LoginResult{Tenant: c.tenant, SAML: true}
	body := map[string]string{
		"saml-response":   samlResponse,
		"description":     "cfyauth test-login",
		"expiration_date": SAMLTokenLifetime,
	}
	var token Token
	postResp, err := c.withoutTenant().Do(ctx, http.MethodPost, "/tokens", nil, body, &token, false)
	if err == nil && token.Value == "" {
		err = apperr.Environment("unexpected_response", "POST %s returned no token value", c.endpoint("/tokens")).
			WithHint("check that --manager-url points at a Cloudify Manager 6.4 or later")
	}
	if err != nil {
		res.LoginDuration = time.Since(start)
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		res.explainFailure(ctx, c, err)
		res.Total = time.Since(start)
		return res, nil
	}

	tc := c.WithToken(token.Value)
	user, audit, err := tc.User(ctx)
	res.LoginDuration = time.Since(start)
	// The audit headers of POST /tokens tell how the SAML response was
	// accepted; those of GET /user only name the token.
	res.Audit = postResp.Audit
	if res.Audit.AuthMethod == "" {
		res.Audit = audit
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		res.explainFailure(ctx, c, err)
	} else {
		res.HTTPStatus = http.StatusOK
		res.Outcome = OutcomeAccepted
		res.User = user
		res.Username = user.Username
		if cerr := res.addServiceFacts(ctx, tc); cerr != nil {
			return nil, cerr
		}
	}
	switch {
	case token.ID == "":
		// Managers before 6.4 return a token without an id: they do not
		// store tokens, so there is none to delete.
		res.TokenNote = "the manager returned a token without an id (managers before 6.4 do not store tokens), so there was none to delete; it stays valid until it expires"
	default:
		if derr := tc.DeleteToken(ctx, token.ID); derr != nil {
			if errors.Is(derr, context.Canceled) {
				return nil, derr
			}
			res.TokenNote = "the token cfyauth created (id " + token.ID + ") could not be deleted: " + apperr.As(derr).Message
		} else {
			res.TokenNote = "the token the manager issued for the SAML response (id " + token.ID + ") was deleted"
		}
	}
	res.Total = time.Since(start)
	return res, nil
}
