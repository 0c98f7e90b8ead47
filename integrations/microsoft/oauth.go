package microsoft

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// Kind is what a Microsoft OAuth flow is for.
type Kind string

const (
	KindSignIn  Kind = "signin"
	KindOutlook Kind = "outlook"
	KindTeams   Kind = "teams"
)

func (c *Client) flow(k Kind) (redirect string, scopes []string) {
	switch k {
	case KindOutlook:
		return c.cfg.OutlookRedirectURL, OutlookScopes
	case KindTeams:
		return c.cfg.TeamsRedirectURL, TeamsScopes
	}
	return c.cfg.SignInRedirectURL, SignInScopes
}

func (c *Client) oauthConfig(p *oidc.Provider, k Kind) *oauth2.Config {
	redirect, scopes := c.flow(k)
	// The client secret goes in the form body (client_secret_post, as the identity platform
	// documents it). Left to auto-detect, x/oauth2 first tries HTTP Basic and, on any error,
	// sends the same request again with the secret in the body; a fresh Config per call never
	// remembers the outcome, so every refused or failed token request went out twice (a 503
	// silently retried at once, an invalid_grant asked twice).
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     ep,
		RedirectURL:  redirect,
		Scopes:       scopes,
	}
}

// AuthURL is where the person signs in or consents, with state, nonce and PKCE (S256).
func (c *Client) AuthURL(ctx context.Context, k Kind, state, nonce, verifier string) (string, error) {
	if state == "" || nonce == "" || verifier == "" {
		return "", errors.New("microsoft: state, nonce and verifier are required")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if k != KindSignIn {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account"))
	}
	return c.oauthConfig(p, k).AuthCodeURL(state, opts...), nil
}

// Account is who signed in or connected: tenant ID and object ID, nothing else.
type Account struct {
	TenantID string
	ObjectID string
	// Subject is the sign-in identity: "tid/oid".
	Subject string
}

// Grant is the result of a connect flow.
type Grant struct {
	Account
	Scopes     []string
	Credential provider.Credential
}

// Finish exchanges the callback's code (with the PKCE verifier), verifies the ID token (its
// signature, audience, expiry, nonce, and the issuer of the token's own tenant) and returns the
// account and, for connect flows, the tokens.
func (c *Client) Finish(ctx context.Context, k Kind, code, verifier, nonce string, now time.Time) (Grant, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return Grant{}, err
	}
	tok, err := c.oauthConfig(p, k).Exchange(c.httpContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Grant{}, fmt.Errorf("microsoft: exchange code: %w", tokenError(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Grant{}, errors.New("microsoft: the token answer has no ID token")
	}
	acct, err := c.verify(ctx, p, raw, nonce)
	if err != nil {
		return Grant{}, err
	}
	g := Grant{Account: acct}
	if k == KindSignIn {
		return g, nil
	}
	if s, _ := tok.Extra("scope").(string); s != "" {
		g.Scopes = strings.Fields(s)
	}
	g.Credential = credential(tok, now)
	return g, nil
}

// verify checks an ID token. With a multi-tenant authority the issuer must be the token's own
// tenant's ("…/{tid}/v2.0"); with a pinned tenant, the discovery document's issuer.
func (c *Client) verify(ctx context.Context, p *oidc.Provider, raw, nonce string) (Account, error) {
	v := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, SkipIssuerCheck: true, Now: c.cfg.Now})
	idt, err := v.Verify(oidc.ClientContext(ctx, c.cfg.HTTPClient), raw)
	if err != nil {
		return Account{}, fmt.Errorf("microsoft: ID token: %w", err)
	}
	if idt.Nonce != nonce {
		return Account{}, errors.New("microsoft: ID token: nonce does not match")
	}
	var claims struct {
		TID string `json:"tid"`
		OID string `json:"oid"`
	}
	if err := idt.Claims(&claims); err != nil {
		return Account{}, fmt.Errorf("microsoft: ID token claims: %w", err)
	}
	if claims.TID == "" {
		return Account{}, errors.New("microsoft: ID token has no tenant (tid)")
	}
	want := c.cfg.AuthorityURL + "/" + claims.TID + "/v2.0"
	if !c.multiTenant() {
		var doc struct {
			Issuer string `json:"issuer"`
		}
		p.Claims(&doc)
		want = doc.Issuer
	}
	if idt.Issuer != want {
		return Account{}, fmt.Errorf("microsoft: ID token issuer %q is not %q", idt.Issuer, want)
	}
	oid := claims.OID
	if oid == "" {
		oid = idt.Subject
	}
	return Account{TenantID: claims.TID, ObjectID: oid, Subject: claims.TID + "/" + oid}, nil
}

func credential(tok *oauth2.Token, now time.Time) provider.Credential {
	cred := provider.Credential{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	if tok.ExpiresIn > 0 {
		cred.Expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	} else if !tok.Expiry.IsZero() {
		cred.Expiry = tok.Expiry
	}
	return cred
}

// tokenError maps a token endpoint refusal: invalid_grant means the grant is gone.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "interaction_required") {
		return &provider.RevokedError{Reason: re.ErrorCode}
	}
	return err
}

// Refresh renews the access token. Microsoft answers a new refresh token each time; the caller
// persists it.
func (c *Client) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	if cred.RefreshToken == "" {
		return cred, &provider.RevokedError{Reason: "no_refresh_token"}
	}
	p, err := c.discover(ctx)
	if err != nil {
		return cred, err
	}
	cfg := c.oauthConfig(p, KindOutlook)
	cfg.Scopes = nil // a refresh keeps the granted scopes
	tok, err := cfg.TokenSource(c.httpContext(ctx), &oauth2.Token{RefreshToken: cred.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return cred, fmt.Errorf("microsoft: refresh token: %w", tokenError(err))
	}
	out := credential(tok, now)
	if out.RefreshToken == "" {
		out.RefreshToken = cred.RefreshToken
	}
	out.Extra = cred.Extra
	return out, nil
}
