// Package zoom is dontinterrupt's Zoom integration: the user-level OAuth
// connection (client credentials in the Basic header, PKCE S256, rotating
// refresh tokens), Zoom as a source of scheduled meetings
// (GET /users/me/meetings, paged) and the verification of Zoom's webhooks
// (x-zm-signature over "v0:{timestamp}:{body}", a 5-minute window, the
// endpoint.url_validation challenge), which drive live "on a Zoom call" blocks.
//
// Zoom has no official Go SDK: this package uses golang.org/x/oauth2 and
// net/http with configurable bases (Config.OAuthURL, Config.APIURL), so
// tests and the sandbox point it at zoomfake/.
//
// Privacy: meeting topics, agendas, join URLs, user names and e-mail
// addresses never leave this package. Meetings come out as presence.Event
// values, which have no field for them; /users/me is decoded into the user
// and account IDs only; a Webhook carries IDs, times and the presence status.
// Tokens are never logged and never appear in errors.
package zoom

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The scopes we ask for are the least that read the user and their meetings
// (Zoom's granular scopes; the app in the Zoom Marketplace must be
// configured with exactly these, since Zoom grants the app's scopes rather
// than ones named in the authorize URL).
const (
	// ScopeUserRead ("View a user") lets Exchange call GET /users/me once,
	// for the user ID (which webhooks name as host_id, participant id and
	// presence user) and the account ID (webhooks' account_id). Zoom sends
	// the whole profile with it; we decode the two IDs and nothing else.
	ScopeUserRead = "user:read:user"
	// ScopeMeetingsList ("View a user's meetings") lets Meetings call
	// GET /users/me/meetings?type=upcoming for the scheduled meetings'
	// times. Topics come with it and are dropped at once.
	ScopeMeetingsList = "meeting:read:list_meetings"
)

// Scopes returns the scopes to configure on the Zoom app, in order.
func Scopes() []string { return []string{ScopeUserRead, ScopeMeetingsList} }

// Equivalent scopes Zoom may grant instead (classic scopes of older apps,
// account-wide admin scopes); each is enough for the same call.
var (
	userReadScopes     = []string{ScopeUserRead, "user:read:user:admin", "user:read", "user:read:admin"}
	meetingsListScopes = []string{ScopeMeetingsList, "meeting:read:list_meetings:admin", "meeting:read", "meeting:read:admin"}
)

// Defaults for Config's URLs.
const (
	DefaultOAuthURL = "https://zoom.us"
	DefaultAPIURL   = "https://api.zoom.us/v2"
)

// DefaultRetryAfter is the wait reported for a 429 that says neither
// Retry-After nor that a daily limit was hit (Zoom does not always send the
// rate-limit headers).
const DefaultRetryAfter = 5 * time.Second

// Config configures the Zoom client.
type Config struct {
	ClientID     string
	ClientSecret string
	// OAuthURL is the base of /oauth/authorize, /oauth/token and
	// /oauth/revoke (DefaultOAuthURL when empty).
	OAuthURL string
	// APIURL is the REST base, ending in /v2 (DefaultAPIURL when empty).
	APIURL string
	// RedirectURL is our /connect/zoom/callback; it must be on the app's
	// OAuth allow list.
	RedirectURL string
	// WebhookSecretToken is the app's webhook Secret Token, the HMAC key of
	// x-zm-signature. Without it VerifyWebhook refuses everything.
	WebhookSecretToken string
	// HTTPClient makes every request (nil: a client with a 15-second timeout).
	HTTPClient *http.Client
	// Now is the clock used when a method is given a zero time (nil: time.Now).
	Now func() time.Time
}

// Client talks to Zoom for every connected person. It holds no per-person
// state and is safe for concurrent use.
type Client struct {
	cfg   Config
	oauth *oauth2.Config
}

// New checks cfg and returns a client. It contacts nobody: Zoom has no
// discovery document, so nothing needs fetching before the first call.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, errors.New("zoom: client ID and secret are required")
	case cfg.RedirectURL == "":
		return nil, errors.New("zoom: redirect URL is required")
	}
	if cfg.OAuthURL == "" {
		cfg.OAuthURL = DefaultOAuthURL
	}
	cfg.OAuthURL = strings.TrimRight(cfg.OAuthURL, "/")
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	cfg.APIURL = strings.TrimRight(cfg.APIURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, oauth: &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURL:  cfg.RedirectURL,
		Endpoint: oauth2.Endpoint{
			AuthURL:  cfg.OAuthURL + "/oauth/authorize",
			TokenURL: cfg.OAuthURL + "/oauth/token",
			// Zoom reads client credentials only from the Basic header.
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		// No Scopes: Zoom grants the app's configured scopes.
	}}, nil
}

// now returns t, or the configured clock's time when t is zero.
func (c *Client) now(t time.Time) time.Time {
	if t.IsZero() {
		return c.cfg.Now()
	}
	return t
}
