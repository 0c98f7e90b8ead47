package google

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// ErrCalendarNotGranted means the person completed the connect flow but unchecked calendar
// access on Google's consent page (granular consent); the grant we got is revoked.
var ErrCalendarNotGranted = errors.New("google: calendar access was not granted")

// checkAuthParams refuses empty state, nonce or PKCE verifier: each protects the flow.
func checkAuthParams(state, nonce, verifier string) error {
	if state == "" || nonce == "" || verifier == "" {
		return errors.New("state, nonce and PKCE verifier are required")
	}
	return nil
}

// SignInURL is where the browser goes to sign in with Google. state, nonce and verifier (a PKCE
// code verifier, see oauth2.GenerateVerifier) are the caller's, kept in the browser's session
// until the callback. Only the openid scope is asked for.
func (c *Client) SignInURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	if err := checkAuthParams(state, nonce, verifier); err != nil {
		return "", fmt.Errorf("google: sign in: %w", err)
	}
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	conf := c.oauthConfig(p, c.cfg.SignInRedirectURL, ScopeOpenID)
	return conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// FinishSignIn completes a sign-in: it exchanges the callback's code (with the PKCE verifier),
// verifies the ID token (signature through the provider's JWKS, issuer, audience, expiry) and
// its nonce, and returns the Google account's subject ID. Nothing else of the token is
// returned. The caller has already checked the callback's state.
func (c *Client) FinishSignIn(ctx context.Context, code, verifier, nonce string) (subject string, err error) {
	sub, _, err := c.exchange(ctx, c.cfg.SignInRedirectURL, code, verifier, nonce, []string{ScopeOpenID})
	if err != nil {
		return "", fmt.Errorf("google: sign in: %w", err)
	}
	return sub, nil
}

// ConnectURL is where the browser goes to connect a Google Calendar: calendar.readonly and
// openid, offline access (a refresh token) with the consent prompt, and PKCE S256.
func (c *Client) ConnectURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	if err := checkAuthParams(state, nonce, verifier); err != nil {
		return "", fmt.Errorf("google: connect: %w", err)
	}
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	conf := c.oauthConfig(p, c.cfg.ConnectRedirectURL, ScopeOpenID, ScopeCalendarReadonly)
	return conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier),
		oauth2.AccessTypeOffline, oauth2.ApprovalForce), nil
}

// Connect is a completed calendar connection.
type Connect struct {
	// Subject is the Google account's ID (the ID token's sub): the connection's external ID.
	Subject string
	// Scopes are the scopes Google granted.
	Scopes []string
	// Credential holds the access and refresh tokens; seal it with the vault.
	Credential provider.Credential
}

// FinishConnect completes a calendar connection: it exchanges the callback's code (with the
// PKCE verifier), verifies the ID token and its nonce, and returns the account's subject, the
// granted scopes and the tokens. It fails with ErrCalendarNotGranted (after revoking the grant)
// when the person did not grant calendar access.
func (c *Client) FinishConnect(ctx context.Context, code, verifier, nonce string, now time.Time) (Connect, error) {
	sub, tok, err := c.exchange(ctx, c.cfg.ConnectRedirectURL, code, verifier, nonce, []string{ScopeOpenID, ScopeCalendarReadonly})
	if err != nil {
		return Connect{}, fmt.Errorf("google: connect: %w", err)
	}
	out := Connect{Subject: sub, Credential: credential(tok, now)}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		out.Scopes = strings.Fields(s)
	} else {
		// Google always reports the scope; without one, assume what we asked for.
		out.Scopes = []string{ScopeOpenID, ScopeCalendarReadonly}
	}
	if !slices.Contains(out.Scopes, ScopeCalendarReadonly) {
		_ = c.Revoke(ctx, out.Credential) // best effort: we cannot use the grant
		return Connect{}, ErrCalendarNotGranted
	}
	if out.Credential.RefreshToken == "" {
		return Connect{}, errors.New("google: connect: no refresh token in the token response")
	}
	return out, nil
}

// exchange trades a code for tokens and verifies the ID token; it returns the subject.
func (c *Client) exchange(ctx context.Context, redirectURL, code, verifier, nonce string, scopes []string) (string, *oauth2.Token, error) {
	if code == "" || verifier == "" || nonce == "" {
		return "", nil, errors.New("code, PKCE verifier and nonce are required")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return "", nil, err
	}
	conf := c.oauthConfig(p, redirectURL, scopes...)
	tok, err := conf.Exchange(c.httpContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", nil, fmt.Errorf("exchange code: %w", tokenError(err))
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return "", nil, errors.New("no ID token in the token response")
	}
	v := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Now})
	idt, err := v.Verify(c.httpContext(ctx), raw)
	if err != nil {
		return "", nil, fmt.Errorf("verify ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return "", nil, errors.New("verify ID token: nonce mismatch")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return "", nil, fmt.Errorf("verify ID token: %w", err)
		}
	}
	if idt.Subject == "" {
		return "", nil, errors.New("verify ID token: no subject")
	}
	return idt.Subject, tok, nil
}

// credential converts a token, computing the expiry from expires_in and now (the injected
// clock) rather than from the process clock.
func credential(tok *oauth2.Token, now time.Time) provider.Credential {
	cred := provider.Credential{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if tok.ExpiresIn > 0 {
		cred.Expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return cred
}

// tokenError maps a token endpoint's invalid_grant to a provider.RevokedError; other errors
// are returned as they are (without the response body).
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode == "invalid_grant" {
			return &provider.RevokedError{Reason: "invalid_grant"}
		}
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return fmt.Errorf("token endpoint: HTTP %d %s", status, re.ErrorCode)
		}
		return fmt.Errorf("token endpoint: HTTP %d", status)
	}
	return err
}

// Refresh renews the access token with the refresh token. Google does not rotate refresh
// tokens, so when the answer carries none the old one is kept. A refresh token Google no longer
// accepts (invalid_grant: revoked, expired, account changes) gives a *provider.RevokedError.
func (c *Client) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	if cred.RefreshToken == "" {
		return cred, errors.New("google: refresh: no refresh token")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return cred, err
	}
	conf := c.oauthConfig(p, c.cfg.ConnectRedirectURL)
	// An expired token makes the token source refresh at once.
	old := &oauth2.Token{RefreshToken: cred.RefreshToken, Expiry: time.Unix(1, 0)}
	tok, err := conf.TokenSource(c.httpContext(ctx), old).Token()
	if err != nil {
		return cred, fmt.Errorf("google: refresh: %w", tokenError(err))
	}
	fresh := credential(tok, now)
	if fresh.RefreshToken == "" {
		fresh.RefreshToken = cred.RefreshToken
	}
	if len(cred.Extra) > 0 {
		fresh.Extra = cred.Extra
	}
	return fresh, nil
}

// Revoke revokes the grant behind cred at Google (its refresh token, or its access token when
// it has none), for a disconnect. A token Google already considers invalid counts as revoked.
func (c *Client) Revoke(ctx context.Context, cred provider.Credential) error {
	tok := cred.RefreshToken
	if tok == "" {
		tok = cred.AccessToken
	}
	if tok == "" {
		return nil
	}
	if _, err := c.discover(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	endpoint := c.revokeURL
	c.mu.Unlock()
	if endpoint == "" {
		return errors.New("google: revoke: the discovery document has no revocation_endpoint")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		return fmt.Errorf("google: revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("google: revoke: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
	if resp.StatusCode == http.StatusBadRequest && e.Error == "invalid_token" {
		return nil // already revoked or expired
	}
	if e.Error != "" {
		return fmt.Errorf("google: revoke: HTTP %d %s", resp.StatusCode, e.Error)
	}
	return fmt.Errorf("google: revoke: HTTP %d", resp.StatusCode)
}
