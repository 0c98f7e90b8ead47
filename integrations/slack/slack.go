// Package slack connects a person's Slack account (OAuth v2 with user scopes, token rotation) and
// writes their status, Do Not Disturb snooze and presence through slack-go. It also does "Sign in
// with Slack" (OpenID Connect, see signin.go). slackfake/ is the fake Slack the tests and the
// sandbox use.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/slack-go/slack"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// UserScopes are the user-token scopes we ask for, and why:
//   - users.profile:read, users.profile:write: read the status to avoid replacing one the person
//     set by hand, and set ours;
//   - dnd:read, dnd:write: read and set the Do Not Disturb snooze;
//   - users:write: set presence to away.
var UserScopes = []string{"users.profile:read", "users.profile:write", "dnd:read", "dnd:write", "users:write"}

// BotScopes are the bot-token scopes, for the App Home only:
//   - chat:write: answer in the App Home's messages tab, and tell the person when a connection
//     breaks;
//   - im:history: read what the person writes in the App Home's messages tab (never any other
//     conversation: no channel or DM scopes beyond it).
//
// The App Home itself (views.publish) needs no scope.
var BotScopes = []string{"chat:write", "im:history"}

// Keys of provider.Credential.Extra for the workspace's bot token.
const (
	ExtraBotToken   = "bot_token"
	ExtraBotRefresh = "bot_refresh"
	ExtraBotExpiry  = "bot_expiry" // RFC 3339
	ExtraBotUser    = "bot_user"
)

// Config configures the Slack app.
type Config struct {
	ClientID     string
	ClientSecret string
	// BaseURL is https://slack.com, or a fake's URL.
	BaseURL string
	// RedirectURL is our /connect/slack/callback.
	RedirectURL string
	// SignInRedirectURL is our /signin/slack/callback (Sign in with Slack); SignInURL and
	// FinishSignIn fail without it.
	SignInRedirectURL string
	HTTPClient        *http.Client
	// Now is the clock ID tokens are checked against (nil: time.Now).
	Now func() time.Time
}

// Client talks to Slack for every connected person. It is safe for concurrent use.
type Client struct {
	cfg Config

	mu       sync.Mutex
	provider *oidc.Provider // nil until OIDC discovery succeeded
}

// New returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" || cfg.BaseURL == "" || cfg.RedirectURL == "" {
		return nil, errors.New("slack: client ID, secret, base URL and redirect URL are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Client{cfg: cfg}, nil
}

func (c *Client) apiURL() string { return c.cfg.BaseURL + "/api/" }

// AuthCodeURL is where the person approves the install.
func (c *Client) AuthCodeURL(state string) string {
	q := url.Values{
		"client_id":    {c.cfg.ClientID},
		"scope":        {strings.Join(BotScopes, ",")},
		"user_scope":   {strings.Join(UserScopes, ",")},
		"redirect_uri": {c.cfg.RedirectURL},
		"state":        {state},
	}
	return c.cfg.BaseURL + "/oauth/v2/authorize?" + q.Encode()
}

// Install is the result of a completed install.
type Install struct {
	TeamID     string
	UserID     string
	Scopes     []string
	Credential provider.Credential
}

// Exchange trades the callback's code for the person's user token.
func (c *Client) Exchange(ctx context.Context, code string, now time.Time) (Install, error) {
	resp, err := slack.GetOAuthV2ResponseContext(ctx, c.cfg.HTTPClient, c.cfg.ClientID, c.cfg.ClientSecret, code, c.cfg.RedirectURL, slack.OAuthOptionAPIURL(c.apiURL()))
	if err != nil {
		return Install{}, fmt.Errorf("slack: exchange code: %w", mapErr("oauth.v2.access", err))
	}
	u := resp.AuthedUser
	if u.AccessToken == "" || u.ID == "" {
		return Install{}, errors.New("slack: exchange code: the answer has no user token (were user scopes granted?)")
	}
	cred := provider.Credential{AccessToken: u.AccessToken, RefreshToken: u.RefreshToken}
	if u.ExpiresIn > 0 {
		cred.Expiry = now.Add(time.Duration(u.ExpiresIn) * time.Second)
	}
	var scopes []string
	if u.Scope != "" {
		scopes = strings.Split(u.Scope, ",")
	}
	if resp.AccessToken != "" {
		cred.Extra = map[string]string{ExtraBotToken: resp.AccessToken, ExtraBotUser: resp.BotUserID}
		if resp.RefreshToken != "" {
			cred.Extra[ExtraBotRefresh] = resp.RefreshToken
		}
		if resp.ExpiresIn > 0 {
			cred.Extra[ExtraBotExpiry] = now.Add(time.Duration(resp.ExpiresIn) * time.Second).UTC().Format(time.RFC3339)
		}
	}
	return Install{TeamID: resp.Team.ID, UserID: u.ID, Scopes: scopes, Credential: cred}, nil
}

// Refresh rotates the user token (token rotation): Slack answers a new access token and a new
// refresh token, and the old refresh token stops working, so the caller must persist the result.
func (c *Client) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	resp, err := slack.RefreshOAuthV2TokenContext(ctx, c.cfg.HTTPClient, c.cfg.ClientID, c.cfg.ClientSecret, cred.RefreshToken, slack.OAuthOptionAPIURL(c.apiURL()))
	if err != nil {
		return cred, fmt.Errorf("slack: refresh token: %w", mapErr("oauth.v2.access", err))
	}
	// A user-token refresh answers at the top level; some answers nest it under authed_user.
	access, refresh, expires := resp.AccessToken, resp.RefreshToken, resp.ExpiresIn
	if resp.AuthedUser.AccessToken != "" {
		access, refresh, expires = resp.AuthedUser.AccessToken, resp.AuthedUser.RefreshToken, resp.AuthedUser.ExpiresIn
	}
	if access == "" {
		return cred, errors.New("slack: refresh token: the answer has no access token")
	}
	out := provider.Credential{AccessToken: access, RefreshToken: refresh, Extra: cred.Extra}
	if out.RefreshToken == "" {
		out.RefreshToken = cred.RefreshToken
	}
	if expires > 0 {
		out.Expiry = now.Add(time.Duration(expires) * time.Second)
	}
	return out, nil
}

// Revoke revokes the token at Slack (disconnect).
func (c *Client) Revoke(ctx context.Context, cred provider.Credential) error {
	_, err := c.api(cred).SendAuthRevokeContext(ctx, cred.AccessToken)
	if err != nil {
		err = mapErr("auth.revoke", err)
		if errors.Is(err, provider.ErrRevoked) {
			return nil // already gone
		}
		return fmt.Errorf("slack: revoke: %w", err)
	}
	return nil
}

func (c *Client) api(cred provider.Credential) *slack.Client {
	return slack.New(cred.AccessToken, slack.OptionAPIURL(c.apiURL()), slack.OptionHTTPClient(c.cfg.HTTPClient))
}

// Status reads the person's current custom status.
func (c *Client) Status(ctx context.Context, cred provider.Credential) (presence.SlackStatus, error) {
	p, err := c.api(cred).GetUserProfileContext(ctx, &slack.GetUserProfileParameters{})
	if err != nil {
		return presence.SlackStatus{}, fmt.Errorf("slack: read status: %w", mapErr("users.profile.get", err))
	}
	s := presence.SlackStatus{Text: p.StatusText, Emoji: p.StatusEmoji}
	if p.StatusExpiration > 0 {
		s.Expiration = time.Unix(int64(p.StatusExpiration), 0).UTC()
	}
	return s, nil
}

// SetStatus sets the custom status; a zero Expiration never expires, and a zero status clears it.
func (c *Client) SetStatus(ctx context.Context, cred provider.Credential, s presence.SlackStatus) error {
	var exp int64
	if !s.Expiration.IsZero() {
		exp = s.Expiration.Unix()
	}
	if err := c.api(cred).SetUserCustomStatusContext(ctx, s.Text, s.Emoji, exp); err != nil {
		return fmt.Errorf("slack: set status: %w", mapErr("users.profile.set", err))
	}
	return nil
}

// DND reads the snooze: On with its end when snoozed.
func (c *Client) DND(ctx context.Context, cred provider.Credential) (presence.SlackDND, error) {
	st, err := c.api(cred).GetDNDInfoContext(ctx, nil)
	if err != nil {
		return presence.SlackDND{}, fmt.Errorf("slack: read dnd: %w", mapErr("dnd.info", err))
	}
	if !st.SnoozeEnabled {
		return presence.SlackDND{}, nil
	}
	return presence.SlackDND{On: true, Until: time.Unix(int64(st.SnoozeEndTime), 0).UTC()}, nil
}

// Snooze starts a DND snooze lasting until until (rounded up to whole minutes); it returns the
// snooze's end as Slack reports it.
func (c *Client) Snooze(ctx context.Context, cred provider.Credential, until, now time.Time) (time.Time, error) {
	minutes := int((until.Sub(now) + time.Minute - 1) / time.Minute)
	if minutes < 1 {
		minutes = 1
	}
	st, err := c.api(cred).SetSnoozeContext(ctx, minutes)
	if err != nil {
		return time.Time{}, fmt.Errorf("slack: set snooze: %w", mapErr("dnd.setSnooze", err))
	}
	return time.Unix(int64(st.SnoozeEndTime), 0).UTC(), nil
}

// EndSnooze ends the DND snooze.
func (c *Client) EndSnooze(ctx context.Context, cred provider.Credential) error {
	if _, err := c.api(cred).EndSnoozeContext(ctx); err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "snooze_not_active" {
			return nil
		}
		return fmt.Errorf("slack: end snooze: %w", mapErr("dnd.endSnooze", err))
	}
	return nil
}

// SetAway sets presence to away, or back to auto.
func (c *Client) SetAway(ctx context.Context, cred provider.Credential, away bool) error {
	p := "auto"
	if away {
		p = "away"
	}
	if err := c.api(cred).SetUserPresenceContext(ctx, p); err != nil {
		return fmt.Errorf("slack: set presence: %w", mapErr("users.setPresence", err))
	}
	return nil
}

// revokedCodes are Slack errors that mean the person must reconnect.
var revokedCodes = map[string]bool{
	"token_revoked": true, "invalid_auth": true, "account_inactive": true, "not_authed": true,
	"token_expired": true, "invalid_refresh_token": true, "missing_scope": true,
}

// DefaultRetryAfter is the first wait after a 429 without Retry-After (Slack always sends
// one; slack-go's own retry waits as long when it is missing).
const DefaultRetryAfter = time.Minute

// mapErr turns slack-go errors into the kinds the scheduler acts on.
func mapErr(method string, err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &provider.RateLimitedError{RetryAfter: rl.RetryAfter, Method: method}
	}
	// slack-go reports a 429 without Retry-After as a plain status error.
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests {
		return &provider.RateLimitedError{RetryAfter: DefaultRetryAfter, Method: method, Guessed: true}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && revokedCodes[se.Err] {
		return &provider.RevokedError{Reason: se.Err}
	}
	return err
}

// BotNeedsRefresh reports whether the bot token (token rotation) expires within margin.
func BotNeedsRefresh(cred provider.Credential, now time.Time, margin time.Duration) bool {
	exp, err := time.Parse(time.RFC3339, cred.Extra[ExtraBotExpiry])
	return err == nil && cred.Extra[ExtraBotRefresh] != "" && !now.Add(margin).Before(exp)
}

// RefreshBot rotates the bot token kept in cred.Extra; the caller persists the result.
func (c *Client) RefreshBot(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	resp, err := slack.RefreshOAuthV2TokenContext(ctx, c.cfg.HTTPClient, c.cfg.ClientID, c.cfg.ClientSecret, cred.Extra[ExtraBotRefresh], slack.OAuthOptionAPIURL(c.apiURL()))
	if err != nil {
		return cred, fmt.Errorf("slack: refresh bot token: %w", mapErr("oauth.v2.access", err))
	}
	if resp.AccessToken == "" {
		return cred, errors.New("slack: refresh bot token: the answer has no access token")
	}
	out := cred
	out.Extra = map[string]string{}
	for k, v := range cred.Extra {
		out.Extra[k] = v
	}
	out.Extra[ExtraBotToken] = resp.AccessToken
	if resp.RefreshToken != "" {
		out.Extra[ExtraBotRefresh] = resp.RefreshToken
	}
	if resp.ExpiresIn > 0 {
		out.Extra[ExtraBotExpiry] = now.Add(time.Duration(resp.ExpiresIn) * time.Second).UTC().Format(time.RFC3339)
	}
	return out, nil
}

func (c *Client) bot(cred provider.Credential) (*slack.Client, error) {
	tok := cred.Extra[ExtraBotToken]
	if tok == "" {
		return nil, errors.New("slack: this install has no bot token (reconnect Slack to enable the App Home)")
	}
	return slack.New(tok, slack.OptionAPIURL(c.apiURL()), slack.OptionHTTPClient(c.cfg.HTTPClient)), nil
}

// PublishHome publishes the person's App Home view with the bot token.
func (c *Client) PublishHome(ctx context.Context, cred provider.Credential, userID string, view slack.HomeTabViewRequest) error {
	api, err := c.bot(cred)
	if err != nil {
		return err
	}
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: userID, View: view}); err != nil {
		return fmt.Errorf("slack: publish home: %w", mapErr("views.publish", err))
	}
	return nil
}

// PostMessage writes to the person in the App Home's messages tab (channel: their user ID or
// the DM channel), in a thread when threadTS is set.
func (c *Client) PostMessage(ctx context.Context, cred provider.Credential, channel, text, threadTS string) error {
	api, err := c.bot(cred)
	if err != nil {
		return err
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	if _, _, err := api.PostMessageContext(ctx, channel, opts...); err != nil {
		return fmt.Errorf("slack: post message: %w", mapErr("chat.postMessage", err))
	}
	return nil
}

// SignInConfigured reports whether Sign in with Slack is set up (a sign-in redirect URL).
func (c *Client) SignInConfigured() bool { return c.cfg.SignInRedirectURL != "" }
