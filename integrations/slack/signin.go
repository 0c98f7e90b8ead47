package slack

// Sign in with Slack: OpenID Connect with github.com/coreos/go-oidc/v3 and golang.org/x/oauth2.
//
// The code is exchanged with golang.org/x/oauth2 rather than slack-go's
// GetOpenIDConnectTokenContext: slack-go (v0.35) never sends a PKCE code_verifier to
// openid.connect.token (its OAuthOptionCodeVerifier only reaches oauth.v2.access), while
// x/oauth2 does, and x/oauth2 (v0.38) reads Slack's HTTP 200 {"ok":false,"error":…} answers as a
// *oauth2.RetrieveError carrying the error code. Slack's discovery document does not list
// code_challenge_methods_supported; we send the PKCE challenge and verifier anyway (a server
// that ignores them loses nothing, state and nonce still protect the flow).

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// SignInScope is the only scope Sign in with Slack asks for: it gives the person's Slack user and
// workspace IDs, and no e-mail address or name.
const SignInScope = oidc.ScopeOpenID

// discover returns the OIDC provider (issuer: Config.BaseURL), fetching the discovery document
// if it has not been fetched successfully yet: a failure is retried on the next call.
func (c *Client) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	p, err := oidc.NewProvider(c.httpContext(ctx), c.cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("slack: sign in: discovery: %w", err)
	}
	c.provider = p
	return p, nil
}

// httpContext makes golang.org/x/oauth2 and go-oidc use our HTTP client.
func (c *Client) httpContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.cfg.HTTPClient)
}

func (c *Client) signInConfig(p *oidc.Provider) *oauth2.Config {
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams // client_secret_post
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     ep,
		RedirectURL:  c.cfg.SignInRedirectURL,
		Scopes:       []string{SignInScope},
	}
}

// SignInURL is where the browser goes to sign in with Slack. state, nonce and verifier (a PKCE
// code verifier, see oauth2.GenerateVerifier) are the caller's, kept in the browser's session
// until the callback. Only the openid scope is asked for. The discovery document is fetched on
// first use (and again on later calls while that fails).
func (c *Client) SignInURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	if state == "" || nonce == "" || verifier == "" {
		return "", errors.New("slack: sign in: state, nonce and PKCE verifier are required")
	}
	if c.cfg.SignInRedirectURL == "" {
		return "", errors.New("slack: sign in: no sign-in redirect URL is configured")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	return c.signInConfig(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// FinishSignIn completes a sign-in: it exchanges the callback's code (with the PKCE verifier) at
// openid.connect.token, verifies the ID token (signature through Slack's JWKS, issuer, audience,
// expiry) and its nonce, and returns the subject "<team_id>/<user_id>" from Slack's namespaced
// claims (the plain sub when they are missing). Nothing else of the tokens is kept. The caller
// has already checked the callback's state (and its error parameter, e.g. access_denied).
func (c *Client) FinishSignIn(ctx context.Context, code, verifier, nonce string) (subject string, err error) {
	if code == "" || verifier == "" || nonce == "" {
		return "", errors.New("slack: sign in: code, PKCE verifier and nonce are required")
	}
	if c.cfg.SignInRedirectURL == "" {
		return "", errors.New("slack: sign in: no sign-in redirect URL is configured")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	tok, err := c.signInConfig(p).Exchange(c.httpContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", fmt.Errorf("slack: sign in: exchange code: %w", tokenError(err))
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return "", errors.New("slack: sign in: no ID token in the token response")
	}
	v := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Now})
	idt, err := v.Verify(c.httpContext(ctx), raw)
	if err != nil {
		return "", fmt.Errorf("slack: sign in: verify ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return "", errors.New("slack: sign in: verify ID token: nonce mismatch")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return "", fmt.Errorf("slack: sign in: verify ID token: %w", err)
		}
	}
	var claims struct {
		UserID string `json:"https://slack.com/user_id"`
		TeamID string `json:"https://slack.com/team_id"`
	}
	if err := idt.Claims(&claims); err != nil {
		return "", fmt.Errorf("slack: sign in: ID token claims: %w", err)
	}
	if claims.TeamID != "" && claims.UserID != "" {
		return claims.TeamID + "/" + claims.UserID, nil
	}
	if idt.Subject == "" {
		return "", errors.New("slack: sign in: verify ID token: no subject")
	}
	return idt.Subject, nil
}

// tokenError keeps a token endpoint error's code (Slack's "error", e.g. invalid_code) and HTTP
// status, never the response body.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	if re.ErrorCode != "" {
		return &SignInError{Code: re.ErrorCode, Status: status}
	}
	return &SignInError{Status: status}
}

// SignInError is a refusal from openid.connect.token: Slack's error code (invalid_code,
// bad_client_secret, invalid_client_id, bad_redirect_uri, …) and the HTTP status (200 for
// Slack's ok:false answers).
type SignInError struct {
	Code   string
	Status int
}

func (e *SignInError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("token endpoint: HTTP %d", e.Status)
	}
	return fmt.Sprintf("token endpoint: %s (HTTP %d)", e.Code, e.Status)
}
