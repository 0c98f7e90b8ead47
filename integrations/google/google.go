// Package google is dontinterrupt's Google integration: "Sign in with Google" (OpenID Connect
// through github.com/coreos/go-oidc/v3, with state, nonce and PKCE S256), the OAuth connection
// of a person's Google Calendar (calendar.readonly, offline access, PKCE), token refresh and
// revocation, Google Calendar as a source of presence events (events.list through
// google.golang.org/api/calendar/v3, full and incremental sync), and push notification
// channels on calendars (events.watch, channels.stop).
//
// Privacy: sign-in asks for the openid scope only and returns nothing of the ID token but its
// subject. Event titles, descriptions, locations and attendee lists never leave this package:
// events come out as presence.Event values, which have no field for them; a title is read only
// to extract its leading emoji when the person enabled that rule (see SyncOptions).
//
// googlefake/ is the fake Google the tests and the sandbox use.
package google

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Scopes we ask for, and why.
const (
	// ScopeOpenID is the only sign-in scope: it gives the account's stable subject ID, and no
	// e-mail address or name (we never store them).
	ScopeOpenID = oidc.ScopeOpenID
	// ScopeCalendarReadonly lets the Calendar source list the person's events (and calendars).
	ScopeCalendarReadonly = "https://www.googleapis.com/auth/calendar.readonly"
)

// Defaults for Config's URLs.
const (
	DefaultIssuerURL = "https://accounts.google.com"
	DefaultAPIURL    = "https://www.googleapis.com/"
)

// Config configures the Google OAuth client.
type Config struct {
	ClientID     string
	ClientSecret string
	// IssuerURL is the OIDC issuer (DefaultIssuerURL when empty); its discovery document gives
	// the authorization, token, revocation and JWKS endpoints.
	IssuerURL string
	// APIURL is the base of Google's JSON APIs, with a trailing slash (DefaultAPIURL when
	// empty); the Calendar API is at APIURL + "calendar/v3/".
	APIURL string
	// SignInRedirectURL is our /signin/google/callback.
	SignInRedirectURL string
	// ConnectRedirectURL is our /connect/google/callback.
	ConnectRedirectURL string
	// HTTPClient makes every request (nil: a client with a 15-second timeout).
	HTTPClient *http.Client
	// Now is the clock ID tokens are checked against (nil: time.Now).
	Now func() time.Time
	// ChannelTTL is the lifetime asked for push channels (DefaultChannelTTL when zero).
	ChannelTTL time.Duration
}

// Client talks to Google for sign-in and for every connected calendar. It is safe for
// concurrent use.
type Client struct {
	cfg Config

	mu        sync.Mutex
	provider  *oidc.Provider // nil until discovery succeeded
	revokeURL string
}

// New checks cfg and returns a client. It does not contact Google: the OIDC discovery document
// is fetched on first use (and again on later calls while that fails), so the service starts
// even when Google is unreachable.
func New(ctx context.Context, cfg Config) (*Client, error) {
	_ = ctx // nothing to do yet: discovery is lazy
	switch {
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, errors.New("google: client ID and secret are required")
	case cfg.SignInRedirectURL == "" || cfg.ConnectRedirectURL == "":
		return nil, errors.New("google: sign-in and connect redirect URLs are required")
	}
	if cfg.IssuerURL == "" {
		cfg.IssuerURL = DefaultIssuerURL
	}
	cfg.IssuerURL = strings.TrimRight(cfg.IssuerURL, "/")
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

// discover returns the OIDC provider, fetching the discovery document if it has not been
// fetched successfully yet.
func (c *Client) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.cfg.HTTPClient), c.cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("google: discovery: %w", err)
	}
	var extra struct {
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
	if err := p.Claims(&extra); err != nil {
		return nil, fmt.Errorf("google: discovery: %w", err)
	}
	c.provider, c.revokeURL = p, extra.RevocationEndpoint
	return p, nil
}

// oauthConfig returns the OAuth configuration for a redirect URL and scopes.
func (c *Client) oauthConfig(p *oidc.Provider, redirectURL string, scopes ...string) *oauth2.Config {
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams // client_secret_post, as Google documents
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     ep,
		RedirectURL:  redirectURL,
		Scopes:       scopes,
	}
}

// httpContext makes golang.org/x/oauth2 and go-oidc use our HTTP client.
func (c *Client) httpContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.cfg.HTTPClient)
}
