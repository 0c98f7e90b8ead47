package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// ErrScopesNotGranted means the token Zoom issued lacks a scope we need:
// the Zoom app is configured without ScopeUserRead or ScopeMeetingsList.
// The grant is revoked; an operator must fix the app's scopes.
var ErrScopesNotGranted = errors.New("zoom: the app was not granted the scopes it needs (" + ScopeUserRead + ", " + ScopeMeetingsList + ")")

// AuthCodeURL is where the browser goes to connect Zoom. state and verifier
// (a PKCE code verifier, see oauth2.GenerateVerifier) are the caller's, kept
// in the browser's session until the callback; the URL carries the S256
// challenge of verifier.
func (c *Client) AuthCodeURL(state, verifier string) (string, error) {
	if state == "" || verifier == "" {
		return "", errors.New("zoom: connect: state and PKCE verifier are required")
	}
	return c.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

// Connect is a completed Zoom connection.
type Connect struct {
	// UserID is the Zoom user's ID: the connection's external ID, and what
	// webhooks name (Webhook.UserID).
	UserID string
	// AccountID is the Zoom account's ID (webhooks' payload.account_id).
	AccountID string
	// Scopes are the scopes Zoom granted.
	Scopes []string
	// Credential holds the access and refresh tokens; seal it with the vault.
	Credential provider.Credential
}

// Exchange completes a connection: it trades the callback's code (with the
// PKCE verifier) for tokens, checks the granted scopes, and reads the user
// and account IDs from GET /users/me. The caller has already checked the
// callback's state. Missing scopes give ErrScopesNotGranted (after a
// best-effort revocation of the grant).
func (c *Client) Exchange(ctx context.Context, code, verifier string, now time.Time) (Connect, error) {
	if code == "" || verifier == "" {
		return Connect{}, errors.New("zoom: connect: code and PKCE verifier are required")
	}
	now = c.now(now)
	tok, err := c.oauth.Exchange(c.httpContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Connect{}, fmt.Errorf("zoom: connect: exchange code: %w", tokenError(err))
	}
	out := Connect{Credential: credential(tok, now)}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		out.Scopes = strings.Fields(s)
	} else {
		out.Scopes = Scopes() // Zoom always reports the scope; without one, assume ours
	}
	if !hasAny(out.Scopes, userReadScopes) || !hasAny(out.Scopes, meetingsListScopes) {
		_ = c.Revoke(ctx, out.Credential) // best effort: we cannot use the grant
		return Connect{}, ErrScopesNotGranted
	}
	if out.Credential.RefreshToken == "" {
		return Connect{}, errors.New("zoom: connect: no refresh token in the token response")
	}
	me, err := c.me(ctx, out.Credential.AccessToken)
	if err != nil {
		return Connect{}, fmt.Errorf("zoom: connect: %w", apiError(err, now, "users/me"))
	}
	out.UserID, out.AccountID = me.ID, me.AccountID
	return out, nil
}

func hasAny(granted, accepted []string) bool {
	return slices.ContainsFunc(accepted, func(s string) bool { return slices.Contains(granted, s) })
}

// Refresh renews the access token. Zoom rotates refresh tokens: the answer
// carries a new one and the old one stops working at once, so the caller
// must persist the returned credential before anything else uses the
// connection. A refresh token Zoom no longer accepts gives a
// *provider.RevokedError with reason "invalid_grant".
func (c *Client) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	if cred.RefreshToken == "" {
		return cred, errors.New("zoom: refresh: no refresh token")
	}
	now = c.now(now)
	// An expired token makes the token source refresh at once.
	old := &oauth2.Token{RefreshToken: cred.RefreshToken, Expiry: time.Unix(1, 0)}
	tok, err := c.oauth.TokenSource(c.httpContext(ctx), old).Token()
	if err != nil {
		return cred, fmt.Errorf("zoom: refresh: %w", tokenError(err))
	}
	fresh := credential(tok, now)
	if fresh.RefreshToken == "" {
		fresh.RefreshToken = cred.RefreshToken // not expected from Zoom, but harmless
	}
	if len(cred.Extra) > 0 {
		fresh.Extra = cred.Extra
	}
	return fresh, nil
}

// Revoke revokes the grant behind cred at Zoom (POST /oauth/revoke with its
// refresh token, or its access token when it has none), for a disconnect.
// A token Zoom already considers invalid counts as revoked.
func (c *Client) Revoke(ctx context.Context, cred provider.Credential) error {
	tok := cred.RefreshToken
	if tok == "" {
		tok = cred.AccessToken
	}
	if tok == "" {
		return nil
	}
	endpoint := c.cfg.OAuthURL + "/oauth/revoke"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		return fmt.Errorf("zoom: revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("zoom: revoke: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	e := decodeTokenError(io.LimitReader(resp.Body, 4096))
	if e.deadToken() {
		return nil // already revoked or expired
	}
	if e.Error != "" {
		return fmt.Errorf("zoom: revoke: HTTP %d %s", resp.StatusCode, e.Error)
	}
	return fmt.Errorf("zoom: revoke: HTTP %d", resp.StatusCode)
}

// httpContext makes golang.org/x/oauth2 use our HTTP client.
func (c *Client) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
}

// credential converts a token, computing the expiry from expires_in and now
// (the injected clock) rather than from the process clock.
func credential(tok *oauth2.Token, now time.Time) provider.Credential {
	cred := provider.Credential{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if tok.ExpiresIn > 0 {
		cred.Expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return cred
}

// tokenErrorBody is Zoom's token-endpoint error: {"reason":…,"error":…}.
type tokenErrorBody struct {
	Reason string `json:"reason"`
	Error  string `json:"error"`
}

// deadToken reports whether the error says the token is unknown, used,
// expired or revoked. Zoom has been seen answering both invalid_grant and
// invalid_request with reason "Invalid Token!".
func (e tokenErrorBody) deadToken() bool {
	return e.Error == "invalid_grant" || strings.EqualFold(strings.TrimSpace(e.Reason), "Invalid Token!")
}

func decodeTokenError(r io.Reader) tokenErrorBody {
	var e tokenErrorBody
	_ = json.NewDecoder(r).Decode(&e)
	return e
}

// tokenError maps a dead token to a *provider.RevokedError; other errors
// are reported with their status and code only (never the body, which
// could echo what was sent).
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return redactURLError(err)
	}
	e := tokenErrorBody{Error: re.ErrorCode}
	if len(re.Body) > 0 {
		e = decodeTokenError(strings.NewReader(string(re.Body)))
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	switch {
	case e.deadToken():
		return &provider.RevokedError{Reason: "invalid_grant"}
	case status == http.StatusTooManyRequests:
		return &provider.RateLimitedError{RetryAfter: DefaultRetryAfter, Method: "oauth/token", Guessed: true}
	case e.Error != "":
		return fmt.Errorf("token endpoint: HTTP %d %s", status, e.Error)
	}
	return fmt.Errorf("token endpoint: HTTP %d", status)
}

// redactURLError drops the URL from a transport error (the revoke URL has
// no token in it, but keep errors uniform and short).
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
