package alexafake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenTimeout is how long Alexa waits for the token endpoint.
const TokenTimeout = 4500 * time.Millisecond

// maxLinkSteps bounds the pages the browser hook may go through.
const maxLinkSteps = 10

// LinkConfig is the skill's account-linking configuration, as entered in
// the Alexa developer console, plus the test's browser.
type LinkConfig struct {
	// AuthorizeURL and TokenURL are our OAuth server's endpoints.
	AuthorizeURL, TokenURL string
	// ClientID and ClientSecret are the credentials Alexa authenticates with.
	ClientID, ClientSecret string
	// RedirectURI is Alexa's redirect URI
	// (https://pitangui.amazon.com/api/skill/link/…); it is never fetched:
	// the flow stops when our server redirects there.
	RedirectURI string
	// Scope is the space-separated scope list ("status").
	Scope string
	// UseBasicAuth sends the client credentials in an Authorization: Basic
	// header (HTTP_BASIC); otherwise in the form (REQUEST_BODY_CREDENTIALS).
	UseBasicAuth bool
	// PKCE adds an S256 code_challenge and the code_verifier, as Alexa does
	// when PKCE is enabled.
	PKCE bool
	// State is the state parameter (random when empty).
	State string
	// HTTPClient carries the browser session: give it a cookie jar holding
	// a signed-in session (nil: http.DefaultClient's transport, no jar).
	HTTPClient *http.Client
	// Browser completes whatever page our server shows instead of
	// redirecting (a sign-in or consent page): given the client and the
	// page's response (body unread), it returns the response to the next
	// request it made, such as the POST of the consent form. Redirects to
	// RedirectURI are not followed, so the response may be that redirect.
	// Nil means a page is an error (ErrNeedsBrowser).
	Browser func(ctx context.Context, client *http.Client, page *http.Response) (*http.Response, error)
	// TokenTimeout bounds each token request (0: TokenTimeout, Alexa's
	// 4.5 s; negative: none).
	TokenTimeout time.Duration
}

// Tokens is what the token endpoint issued.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string
	// ExpiresIn is the token's lifetime as answered (0 when absent); Expiry
	// is the fake clock's now plus ExpiresIn (zero when absent).
	ExpiresIn time.Duration
	Expiry    time.Time
}

// String hides the tokens.
func (t Tokens) String() string {
	return fmt.Sprintf("Tokens{type %s, scope %q, expires %s}", t.TokenType, t.Scope, t.Expiry.Format(time.RFC3339))
}

// Errors of account linking.
var (
	// ErrNeedsBrowser means the authorize endpoint showed a page and
	// LinkConfig.Browser is nil.
	ErrNeedsBrowser = errors.New("alexafake: authorize showed a page; set LinkConfig.Browser to complete it")
	// ErrStateMismatch means the redirect carried another state.
	ErrStateMismatch = errors.New("alexafake: state in the redirect does not match")
	// ErrNoCode means the redirect carried neither a code nor an error.
	ErrNoCode = errors.New("alexafake: redirect without a code")
	// ErrNotLinked means SaySomething has no token: call Link or
	// SetAccessToken first (or send an unlinked request with Send).
	ErrNotLinked = errors.New("alexafake: no linked account")
)

// AuthError is an error our server answered: in the redirect to the
// redirect URI (Status 0) or from the token endpoint.
type AuthError struct {
	Status      int // HTTP status of the token endpoint; 0 for a redirect
	Code        string
	Description string
}

func (e *AuthError) Error() string {
	where := "authorize redirect"
	if e.Status != 0 {
		where = fmt.Sprintf("token endpoint (%d)", e.Status)
	}
	if e.Description != "" {
		return fmt.Sprintf("alexafake: %s: %s: %s", where, e.Code, e.Description)
	}
	return fmt.Sprintf("alexafake: %s: %s", where, e.Code)
}

type linkState struct {
	cfg    LinkConfig
	tokens Tokens
}

// Link performs account linking as Alexa does: it GETs AuthorizeURL with
// response_type=code, client_id, redirect_uri, scope and state (and a PKCE
// challenge when asked), follows our redirects (through the Browser hook
// for sign-in and consent pages) until one goes to RedirectURI, checks the
// state, and exchanges the code at TokenURL. The fake then remembers the
// tokens for SaySomething (and refreshes them there when they expire).
func (f *Fake) Link(ctx context.Context, cfg LinkConfig) (Tokens, error) {
	state := cfg.State
	if state == "" {
		state = randomString(24)
	}
	redirect, err := url.Parse(cfg.RedirectURI)
	if err != nil || redirect.Scheme == "" || redirect.Host == "" {
		return Tokens{}, fmt.Errorf("alexafake: RedirectURI must be an absolute URL")
	}
	authURL, err := url.Parse(cfg.AuthorizeURL)
	if err != nil {
		return Tokens{}, fmt.Errorf("alexafake: AuthorizeURL: %w", err)
	}
	q := authURL.Query()
	q.Set("response_type", "code")
	q.Set("client_id", cfg.ClientID)
	q.Set("redirect_uri", cfg.RedirectURI)
	q.Set("state", state)
	if cfg.Scope != "" {
		q.Set("scope", cfg.Scope)
	}
	var verifier string
	if cfg.PKCE {
		verifier = randomString(48)
		sum := sha256.Sum256([]byte(verifier))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		q.Set("code_challenge_method", "S256")
	}
	authURL.RawQuery = q.Encode()

	client := browserClient(cfg.HTTPClient, redirect)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL.String(), nil)
	if err != nil {
		return Tokens{}, fmt.Errorf("alexafake: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Tokens{}, fmt.Errorf("alexafake: GET authorize: %w", err)
	}
	var final *url.URL
	for step := 0; ; step++ {
		if loc, ok := redirectTo(resp, redirect); ok {
			drain(resp)
			final = loc
			break
		}
		if step >= maxLinkSteps {
			drain(resp)
			return Tokens{}, fmt.Errorf("alexafake: no redirect to the redirect URI after %d pages", maxLinkSteps)
		}
		if resp.StatusCode != http.StatusOK || cfg.Browser == nil {
			status := resp.Status
			drain(resp)
			if resp.StatusCode == http.StatusOK {
				return Tokens{}, fmt.Errorf("%w (page %s)", ErrNeedsBrowser, resp.Request.URL.Path)
			}
			return Tokens{}, fmt.Errorf("alexafake: authorize flow answered %s at %s", status, resp.Request.URL.Path)
		}
		next, err := cfg.Browser(ctx, client, resp)
		drain(resp)
		if err != nil {
			return Tokens{}, fmt.Errorf("alexafake: browser: %w", err)
		}
		if next == nil {
			return Tokens{}, fmt.Errorf("alexafake: browser returned no response")
		}
		resp = next
	}

	fq := final.Query()
	if e := fq.Get("error"); e != "" {
		return Tokens{}, &AuthError{Code: e, Description: fq.Get("error_description")}
	}
	if fq.Get("state") != state {
		return Tokens{}, ErrStateMismatch
	}
	code := fq.Get("code")
	if code == "" {
		return Tokens{}, ErrNoCode
	}
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {cfg.RedirectURI},
	}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	t, err := f.token(ctx, cfg, form)
	if err != nil {
		return Tokens{}, err
	}
	f.mu.Lock()
	f.linked = &linkState{cfg: cfg, tokens: t}
	f.mu.Unlock()
	return t, nil
}

// Refresh exchanges refreshToken for new tokens at cfg.TokenURL, as Alexa
// does when the access token expires. When the answer carries no refresh
// token, the old one is kept (Alexa goes on using it). If refreshToken is
// the linked account's, the fake remembers the new tokens.
func (f *Fake) Refresh(ctx context.Context, cfg LinkConfig, refreshToken string) (Tokens, error) {
	t, err := f.token(ctx, cfg, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
	if err != nil {
		return Tokens{}, err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	f.mu.Lock()
	if f.linked != nil && f.linked.tokens.RefreshToken == refreshToken {
		f.linked.tokens = t
	}
	f.mu.Unlock()
	return t, nil
}

// SetAccessToken makes the fake's user linked with token (no refresh), for
// tests that issue tokens directly; "" unlinks.
func (f *Fake) SetAccessToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token == "" {
		f.linked = nil
		return
	}
	f.linked = &linkState{tokens: Tokens{AccessToken: token, TokenType: "bearer"}}
}

// Linked is the linked account's tokens, if any.
func (f *Fake) Linked() (Tokens, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.linked == nil {
		return Tokens{}, false
	}
	return f.linked.tokens, true
}

// accessToken is the linked access token, refreshed first when it has
// expired by the fake clock and a refresh token is known.
func (f *Fake) accessToken(ctx context.Context) (string, error) {
	f.mu.Lock()
	l := f.linked
	var st linkState
	if l != nil {
		st = *l
	}
	f.mu.Unlock()
	if l == nil {
		return "", ErrNotLinked
	}
	if !st.tokens.Expiry.IsZero() && !f.now().Before(st.tokens.Expiry) && st.tokens.RefreshToken != "" {
		t, err := f.Refresh(ctx, st.cfg, st.tokens.RefreshToken)
		if err != nil {
			return "", err
		}
		return t.AccessToken, nil
	}
	return st.tokens.AccessToken, nil
}

// token POSTs a token request with the client's credentials.
func (f *Fake) token(ctx context.Context, cfg LinkConfig, form url.Values) (Tokens, error) {
	timeout := cfg.TokenTimeout
	if timeout == 0 {
		timeout = TokenTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if !cfg.UseBasicAuth {
		form.Set("client_id", cfg.ClientID)
		form.Set("client_secret", cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Tokens{}, fmt.Errorf("alexafake: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if cfg.UseBasicAuth {
		// RFC 6749 §2.3.1: form-encode, then Basic.
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
	}
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Tokens{}, fmt.Errorf("alexafake: POST token: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Tokens{}, fmt.Errorf("alexafake: reading the token answer: %w", err)
	}
	var body struct {
		AccessToken      string          `json:"access_token"`
		TokenType        string          `json:"token_type"`
		ExpiresIn        json.RawMessage `json:"expires_in"`
		RefreshToken     string          `json:"refresh_token"`
		Scope            string          `json:"scope"`
		Error            string          `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return Tokens{}, fmt.Errorf("alexafake: token endpoint answered %d, not JSON", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || body.Error != "" {
		code := body.Error
		if code == "" {
			code = "http_" + fmt.Sprint(resp.StatusCode)
		}
		return Tokens{}, &AuthError{Status: resp.StatusCode, Code: code, Description: body.ErrorDescription}
	}
	if body.AccessToken == "" {
		return Tokens{}, fmt.Errorf("alexafake: token answer without access_token")
	}
	if !strings.EqualFold(body.TokenType, "bearer") {
		return Tokens{}, fmt.Errorf("alexafake: token_type %q, Alexa needs bearer", body.TokenType)
	}
	t := Tokens{AccessToken: body.AccessToken, RefreshToken: body.RefreshToken, TokenType: body.TokenType, Scope: body.Scope}
	if len(body.ExpiresIn) > 0 && string(body.ExpiresIn) != "null" {
		var secs json.Number
		s := strings.Trim(string(body.ExpiresIn), `"`)
		secs = json.Number(s)
		n, err := secs.Int64()
		if err != nil || n < 0 {
			return Tokens{}, fmt.Errorf("alexafake: expires_in is not a number of seconds")
		}
		t.ExpiresIn = time.Duration(n) * time.Second
		t.Expiry = f.now().Add(t.ExpiresIn)
	}
	return t, nil
}

// browserClient is c with redirects to the redirect URI not followed.
func browserClient(c *http.Client, redirect *url.URL) *http.Client {
	var cl http.Client
	if c != nil {
		cl = *c
	}
	cl.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if sameEndpoint(req.URL, redirect) {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cl
}

// redirectTo reports whether resp redirects to the redirect URI, and where.
func redirectTo(resp *http.Response, redirect *url.URL) (*url.URL, bool) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil, false
	}
	loc, err := resp.Location()
	if err != nil || !sameEndpoint(loc, redirect) {
		return nil, false
	}
	return loc, true
}

func sameEndpoint(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) && a.Path == b.Path
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
