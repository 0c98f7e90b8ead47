package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is one fake Slack behind an httptest server, on a fake clock.
type fixture struct {
	srv *Server
	hs  *httptest.Server
	clk *clock
}

const redirectURI = "https://app.example/connect/slack/callback"

func newFixture(tb testing.TB, opts Options) *fixture {
	tb.Helper()
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	srv := New(opts)
	hs := httptest.NewServer(srv)
	tb.Cleanup(hs.Close)
	srv.SetBaseURL(hs.URL)
	return &fixture{srv: srv, hs: hs, clk: clk}
}

// client is the real slack-go client pointed at the fake.
func (f *fixture) client(tok string) *slack.Client {
	return slack.New(tok, slack.OptionAPIURL(f.hs.URL+"/api/"), slack.OptionHTTPClient(f.hs.Client()))
}

func (f *fixture) oauthURL() slack.OAuthOption { return slack.OAuthOptionAPIURL(f.hs.URL + "/api/") }

// noRedirects is an HTTP client that returns redirects instead of following them.
func (f *fixture) noRedirects() *http.Client {
	c := *f.hs.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (f *fixture) authorizeURL(extra url.Values) string {
	q := url.Values{
		"client_id":    {f.srv.ClientID()},
		"scope":        {"chat:write"},
		"user_scope":   {"users.profile:read,users.profile:write,dnd:read,dnd:write,users:read,users:write"},
		"redirect_uri": {redirectURI},
		"state":        {"st-123"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return f.hs.URL + "/oauth/v2/authorize?" + q.Encode()
}

var requestIDPattern = regexp.MustCompile(`name="request" value="([0-9a-f]+)"`)

// consent loads the consent page and returns its body and request ID.
func (f *fixture) consent(tb testing.TB, extra url.Values) (string, string) {
	tb.Helper()
	resp, err := f.noRedirects().Get(f.authorizeURL(extra))
	if err != nil {
		tb.Fatal(err)
	}
	body := readBody(tb, resp)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("authorize page: status %d: %s", resp.StatusCode, body)
	}
	m := requestIDPattern.FindStringSubmatch(body)
	if m == nil {
		tb.Fatalf("no request ID in the consent page:\n%s", body)
	}
	return body, m[1]
}

// decide posts the consent form and returns the redirect Location.
func (f *fixture) decide(tb testing.TB, requestID, decision, userID string) (int, *url.URL) {
	tb.Helper()
	resp, err := f.noRedirects().PostForm(f.hs.URL+"/oauth/v2/authorize", url.Values{
		"request": {requestID}, "decision": {decision}, "user": {userID},
	})
	if err != nil {
		tb.Fatal(err)
	}
	readBody(tb, resp)
	loc, _ := resp.Location()
	return resp.StatusCode, loc
}

// code runs the authorize step for userID (consent page, Allow) and returns the code.
func (f *fixture) code(tb testing.TB, userID string, extra url.Values) string {
	tb.Helper()
	_, id := f.consent(tb, extra)
	status, loc := f.decide(tb, id, "approve", userID)
	if status != http.StatusFound || loc == nil {
		tb.Fatalf("approve: status %d, want 302", status)
	}
	return loc.Query().Get("code")
}

// install runs the whole OAuth dance for userID with the real slack-go exchange.
func (f *fixture) install(tb testing.TB, userID string) *slack.OAuthV2Response {
	tb.Helper()
	code := f.code(tb, userID, nil)
	resp, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(),
		f.srv.ClientID(), f.srv.ClientSecret(), code, redirectURI, f.oauthURL())
	if err != nil {
		tb.Fatalf("exchange: %v", err)
	}
	return resp
}

// post sends a raw form request to the API and decodes the JSON answer.
func (f *fixture) post(tb testing.TB, method string, form url.Values) (*http.Response, map[string]any) {
	tb.Helper()
	resp, err := f.hs.Client().PostForm(f.hs.URL+"/api/"+method, form)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, decode(tb, resp)
}

func decode(tb testing.TB, resp *http.Response) map[string]any {
	tb.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(readBody(tb, resp)), &body); err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return body
}

func readBody(tb testing.TB, resp *http.Response) string {
	tb.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// slackErr returns the Slack error code of err, or fails.
func slackErr(tb testing.TB, err error) slack.SlackErrorResponse {
	tb.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		tb.Fatalf("error %v (%T) is not a slack.SlackErrorResponse", err, err)
	}
	return se
}

func wantSlackErr(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := slackErr(tb, err).Err; got != code {
		tb.Fatalf("error = %q, want %q", got, code)
	}
}

func TestOAuthDance(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})

	body, id := f.consent(t, nil)
	for _, want := range []string{"Sandbox Slack", "Ada", "Grace", "users.profile:write", "chat:write"} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	status, loc := f.decide(t, id, "approve", "U0002")
	if status != http.StatusFound {
		t.Fatalf("approve: status %d, want 302", status)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Errorf("redirected to %s, want %s", got, redirectURI)
	}
	if loc.Query().Get("state") != "st-123" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect query %q lacks state or code", loc.RawQuery)
	}
	code := loc.Query().Get("code")

	resp, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(),
		f.srv.ClientID(), f.srv.ClientSecret(), code, redirectURI, f.oauthURL())
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	u := resp.AuthedUser
	if u.ID != "U0002" || !strings.HasPrefix(u.AccessToken, "xoxp-") || u.TokenType != "user" {
		t.Errorf("authed_user = %+v, want U0002 with an xoxp- user token", u)
	}
	if !strings.Contains(u.Scope, "users.profile:write") || u.RefreshToken != "" || u.ExpiresIn != 0 {
		t.Errorf("authed_user scope/refresh = %q/%q/%d", u.Scope, u.RefreshToken, u.ExpiresIn)
	}
	if !strings.HasPrefix(resp.AccessToken, "xoxb-") || resp.TokenType != "bot" || resp.Scope != "chat:write" || resp.BotUserID == "" {
		t.Errorf("bot part = %q %q %q %q", resp.AccessToken[:5], resp.TokenType, resp.Scope, resp.BotUserID)
	}
	if resp.Team.ID != DefaultTeamID || resp.Team.Name != DefaultTeamName || resp.AppID != AppID {
		t.Errorf("team/app = %+v %q", resp.Team, resp.AppID)
	}

	at, err := f.client(u.AccessToken).AuthTestContext(context.Background())
	if err != nil {
		t.Fatalf("auth.test with the new token: %v", err)
	}
	if at.UserID != "U0002" || at.User != "Grace" || at.TeamID != DefaultTeamID {
		t.Errorf("auth.test = %+v", at)
	}

	// A code works once.
	_, err = slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(),
		f.srv.ClientID(), f.srv.ClientSecret(), code, redirectURI, f.oauthURL())
	wantSlackErr(t, err, "invalid_code")

	calls := f.srv.CallsTo("oauth.v2.access")
	if len(calls) != 2 || calls[0].Team != DefaultTeamID || calls[0].User != "U0002" || calls[1].Error != "invalid_code" {
		t.Fatalf("oauth.v2.access calls = %+v", calls)
	}
	for _, k := range []string{"code", "client_secret", "token"} {
		if calls[0].Params.Has(k) {
			t.Errorf("call log keeps secret parameter %q", k)
		}
	}
	if calls[0].Params.Get("client_id") != f.srv.ClientID() {
		t.Errorf("call log lost client_id")
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra url.Values
	}{
		{"unknown client", url.Values{"client_id": {"nope"}}},
		{"no scopes", url.Values{"scope": {""}, "user_scope": {""}}},
		{"bad redirect", url.Values{"redirect_uri": {"ftp://app.example/cb"}}},
		{"no redirect", url.Values{"redirect_uri": {""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			resp, err := f.noRedirects().Get(f.authorizeURL(tt.extra))
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Sandbox Slack") {
				t.Errorf("status %d, want a 400 page; body:\n%s", resp.StatusCode, body)
			}
		})
	}
}

func TestAuthorizeCancelAndExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})

	_, id := f.consent(t, nil)
	status, loc := f.decide(t, id, "cancel", "")
	if status != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st-123" || loc.Query().Has("code") {
		t.Fatalf("cancel: %d %v, want a redirect with error=access_denied and the state", status, loc)
	}
	// The request is used up.
	if status, _ := f.decide(t, id, "approve", "U0001"); status != http.StatusBadRequest {
		t.Errorf("second decision: status %d, want 400", status)
	}
	// A consent page left open too long no longer works.
	_, id = f.consent(t, nil)
	f.clk.Advance(CodeLifetime + time.Second)
	if status, _ := f.decide(t, id, "approve", "U0001"); status != http.StatusBadRequest {
		t.Errorf("stale decision: status %d, want 400", status)
	}
	// Approving without a person is refused.
	_, id = f.consent(t, nil)
	if status, _ := f.decide(t, id, "approve", "U404"); status != http.StatusBadRequest {
		t.Errorf("unknown person: status %d, want 400", status)
	}
}

func TestAutoApprove(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.srv.AutoApprove("U0001")
	resp, err := f.noRedirects().Get(f.authorizeURL(nil))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("auto-approve: status %d, location %v", resp.StatusCode, loc)
	}
	r, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(),
		f.srv.ClientID(), f.srv.ClientSecret(), loc.Query().Get("code"), redirectURI, f.oauthURL())
	if err != nil || r.AuthedUser.ID != "U0001" {
		t.Fatalf("exchange: %v %+v", err, r)
	}
}

func TestExchangeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// exchange gets a fresh code for U0001 and returns the exchange error
		exchange func(f *fixture, code string) error
		want     string
	}{
		{"bad secret", func(f *fixture, code string) error {
			_, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(), f.srv.ClientID(), "wrong", code, redirectURI, f.oauthURL())
			return err
		}, "bad_client_secret"},
		{"unknown client", func(f *fixture, code string) error {
			_, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(), "123.456", f.srv.ClientSecret(), code, redirectURI, f.oauthURL())
			return err
		}, "invalid_client_id"},
		{"other redirect", func(f *fixture, code string) error {
			_, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), code, "https://evil.example/cb", f.oauthURL())
			return err
		}, "bad_redirect_uri"},
		{"expired code", func(f *fixture, code string) error {
			f.clk.Advance(CodeLifetime)
			_, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), code, redirectURI, f.oauthURL())
			return err
		}, "invalid_code"},
		{"unknown code", func(f *fixture, code string) error {
			_, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), "1.2.3", redirectURI, f.oauthURL())
			return err
		}, "invalid_code"},
		{"no secret without PKCE", func(f *fixture, code string) error {
			_, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(), f.srv.ClientID(), "", code, redirectURI, f.oauthURL())
			return err
		}, "bad_client_secret"},
		{"refresh without rotation", func(f *fixture, code string) error {
			_, err := slack.RefreshOAuthV2TokenContext(context.Background(), f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), "xoxe-1-nope", f.oauthURL())
			return err
		}, "invalid_refresh_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			wantSlackErr(t, tt.exchange(f, f.code(t, "U0001", nil)), tt.want)
		})
	}

	t.Run("bad grant type", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{})
		resp, body := f.post(t, "oauth.v2.access", url.Values{
			"client_id": {f.srv.ClientID()}, "client_secret": {f.srv.ClientSecret()}, "grant_type": {"password"},
		})
		if resp.StatusCode != http.StatusOK || body["ok"] != false || body["error"] != "invalid_grant_type" {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
	})

	t.Run("client credentials in HTTP Basic", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{})
		code := f.code(t, "U0001", nil)
		req, _ := http.NewRequest(http.MethodPost, f.hs.URL+"/api/oauth.v2.access",
			strings.NewReader(url.Values{"code": {code}, "redirect_uri": {redirectURI}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(f.srv.ClientID(), f.srv.ClientSecret())
		resp, err := f.hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := decode(t, resp); body["ok"] != true {
			t.Fatalf("body %v", body)
		}
	})

	t.Run("PKCE without secret", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{})
		verifier, err := slack.GenerateCodeVerifier()
		if err != nil {
			t.Fatal(err)
		}
		pkce := url.Values{"code_challenge": {slack.GenerateCodeChallenge(verifier)}, "code_challenge_method": {"S256"}}
		code := f.code(t, "U0001", pkce)
		_, err = slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(), f.srv.ClientID(), "", code, redirectURI,
			f.oauthURL(), slack.OAuthOptionCodeVerifier("not-the-verifier"))
		wantSlackErr(t, err, "invalid_code_verifier")
		resp, err := slack.GetOAuthV2ResponseContext(context.Background(), f.hs.Client(), f.srv.ClientID(), "", code, redirectURI,
			f.oauthURL(), slack.OAuthOptionCodeVerifier(verifier))
		if err != nil || resp.AuthedUser.AccessToken == "" {
			t.Fatalf("PKCE exchange: %v", err)
		}
	})
}

func TestCustomStatusExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	tok := f.install(t, "U0001").AuthedUser.AccessToken
	c := f.client(tok)
	ctx := context.Background()

	exp := f.clk.Now().Add(30 * time.Minute)
	if err := c.SetUserCustomStatusContextWithUser(ctx, "U0001", "In a meeting", ":calendar:", exp.Unix()); err != nil {
		t.Fatalf("set status: %v", err)
	}
	if got, want := f.srv.Status("U0001"), (Status{Text: "In a meeting", Emoji: ":calendar:", Expiration: exp}); !got.Expiration.Equal(want.Expiration) || got.Text != want.Text || got.Emoji != want.Emoji {
		t.Fatalf("Status = %+v, want %+v", got, want)
	}
	p, err := c.GetUserProfileContext(ctx, &slack.GetUserProfileParameters{})
	if err != nil {
		t.Fatal(err)
	}
	if p.StatusText != "In a meeting" || p.StatusEmoji != ":calendar:" || int64(p.StatusExpiration) != exp.Unix() || p.RealName != "Ada" {
		t.Fatalf("profile = %+v", p)
	}

	f.clk.Advance(30*time.Minute - time.Second)
	if f.srv.Status("U0001").Text == "" {
		t.Fatal("status cleared a second early")
	}
	f.clk.Advance(time.Second)
	if got := f.srv.Status("U0001"); got != (Status{}) {
		t.Fatalf("Status after expiration = %+v, want cleared", got)
	}
	p, err = c.GetUserProfileContext(ctx, &slack.GetUserProfileParameters{UserID: "U0001"})
	if err != nil || p.StatusText != "" || p.StatusEmoji != "" || p.StatusExpiration != 0 {
		t.Fatalf("profile after expiration = %+v, %v", p, err)
	}

	// Text alone gets Slack's default emoji; empty text and emoji clear.
	if err := c.SetUserCustomStatusContext(ctx, "Focusing", "", 0); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.Status("U0001"); got.Emoji != ":speech_balloon:" || !got.Expiration.IsZero() {
		t.Fatalf("Status = %+v, want :speech_balloon: without expiry", got)
	}
	if err := c.UnsetUserCustomStatusContext(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.Status("U0001"); got != (Status{}) {
		t.Fatalf("Status after unset = %+v", got)
	}
}

func TestProfileSetValidation(t *testing.T) {
	t.Parallel()
	scopes := []string{"users.profile:write", "users.profile:read"}
	tests := []struct {
		name   string
		form   url.Values // sent with the token as a form
		json   string     // sent as a JSON body with Bearer, when set
		want   string     // Slack error, "" for ok
		status Status     // status after the call, when want == ""
	}{
		{name: "100 characters", form: url.Values{"profile": {`{"status_text":"` + strings.Repeat("é", 100) + `","status_emoji":":x:"}`}},
			status: Status{Text: strings.Repeat("é", 100), Emoji: ":x:"}},
		{name: "101 characters", form: url.Values{"profile": {`{"status_text":"` + strings.Repeat("a", 101) + `"}`}}, want: "invalid_profile"},
		{name: "emoji without colons", form: url.Values{"profile": {`{"status_text":"x","status_emoji":"calendar"}`}}, want: "invalid_emoji_not_allowed"},
		{name: "skin tone emoji", form: url.Values{"profile": {`{"status_text":"x","status_emoji":":wave::skin-tone-3:"}`}},
			status: Status{Text: "x", Emoji: ":wave::skin-tone-3:"}},
		{name: "profile not JSON", form: url.Values{"profile": {`{status_text:`}}, want: "invalid_profile"},
		{name: "no profile", form: url.Values{}, want: "invalid_profile"},
		{name: "bad expiration", form: url.Values{"profile": {`{"status_text":"x","status_expiration":"soon"}`}}, want: "invalid_profile"},
		{name: "another person", form: url.Values{"user": {"U0002"}, "profile": {`{"status_text":"x"}`}}, want: "not_admin"},
		{name: "unknown person", form: url.Values{"user": {"U404"}, "profile": {`{"status_text":"x"}`}}, want: "user_not_found"},
		{name: "self via user", form: url.Values{"user": {"U0001"}, "profile": {`{"status_text":"x","status_emoji":":x:"}`}},
			status: Status{Text: "x", Emoji: ":x:"}},
		{name: "name and value", form: url.Values{"name": {"status_text"}, "value": {"Lunch"}},
			status: Status{Text: "Lunch", Emoji: ":speech_balloon:"}},
		{name: "JSON body with string expiration", json: `{"profile":{"status_text":"Busy","status_emoji":":no_entry:","status_expiration":"1772445600"}}`,
			status: Status{Text: "Busy", Emoji: ":no_entry:", Expiration: time.Unix(1772445600, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			tok := f.srv.IssueUserToken("U0001", scopes...)
			var body map[string]any
			if tt.json != "" {
				req, _ := http.NewRequest(http.MethodPost, f.hs.URL+"/api/users.profile.set", strings.NewReader(tt.json))
				req.Header.Set("Content-Type", "application/json; charset=utf-8")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := f.hs.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body = decode(t, resp)
			} else {
				form := url.Values{"token": {tok}}
				for k, v := range tt.form {
					form[k] = v
				}
				_, body = f.post(t, "users.profile.set", form)
			}
			if tt.want != "" {
				if body["ok"] != false || body["error"] != tt.want {
					t.Fatalf("body %v, want error %q", body, tt.want)
				}
				return
			}
			if body["ok"] != true {
				t.Fatalf("body %v, want ok", body)
			}
			got := f.srv.Status("U0001")
			if got.Text != tt.status.Text || got.Emoji != tt.status.Emoji || !got.Expiration.Equal(tt.status.Expiration) {
				t.Fatalf("Status = %+v, want %+v", got, tt.status)
			}
			if p, _ := body["profile"].(map[string]any); p["status_text"] != tt.status.Text {
				t.Errorf("returned profile %v", body["profile"])
			}
		})
	}
}

func TestDND(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{MaxSnoozeMinutes: 24 * 60})
	tok := f.srv.IssueUserToken("U0001", "dnd:read", "dnd:write")
	c := f.client(tok)
	ctx := context.Background()
	start := f.clk.Now()

	st, err := c.SetSnoozeContext(ctx, 45)
	if err != nil {
		t.Fatalf("setSnooze: %v", err)
	}
	end := start.Add(45 * time.Minute)
	if !st.SnoozeEnabled || int64(st.SnoozeEndTime) != end.Unix() || st.SnoozeRemaining != 45*60 {
		t.Fatalf("setSnooze = %+v", st)
	}
	if got := f.srv.DND("U0001"); !got.Snoozed || !got.SnoozeEnd.Equal(end) {
		t.Fatalf("DND = %+v", got)
	}
	f.clk.Advance(15 * time.Minute)
	info, err := c.GetDNDInfoContext(ctx, nil)
	if err != nil || !info.SnoozeEnabled || info.SnoozeRemaining != 30*60 || int64(info.SnoozeEndTime) != end.Unix() {
		t.Fatalf("dnd.info = %+v, %v", info, err)
	}
	if _, err := c.EndSnoozeContext(ctx); err != nil {
		t.Fatalf("endSnooze: %v", err)
	}
	if got := f.srv.DND("U0001"); got.Snoozed {
		t.Fatalf("DND after endSnooze = %+v", got)
	}
	_, err = c.EndSnoozeContext(ctx)
	wantSlackErr(t, err, "snooze_not_active")

	// A snooze ends by itself.
	if _, err := c.SetSnoozeContext(ctx, 10); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(10 * time.Minute)
	info, err = c.GetDNDInfoContext(ctx, nil)
	if err != nil || info.SnoozeEnabled {
		t.Fatalf("dnd.info after the snooze = %+v, %v", info, err)
	}

	// dnd.endDnd ends a snooze too.
	if _, err := c.SetSnoozeContext(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := c.EndDNDContext(ctx); err != nil || f.srv.DND("U0001").Snoozed {
		t.Fatalf("endDnd: %v, %+v", err, f.srv.DND("U0001"))
	}

	for _, tt := range []struct{ minutes, want string }{
		{"", "missing_duration"},
		{"soon", "invalid_arguments"},
		{"0", "invalid_arguments"},
		{"1441", "too_long"},
	} {
		form := url.Values{"token": {tok}}
		if tt.minutes != "" {
			form.Set("num_minutes", tt.minutes)
		}
		if _, body := f.post(t, "dnd.setSnooze", form); body["error"] != tt.want {
			t.Errorf("num_minutes=%q: body %v, want %q", tt.minutes, body, tt.want)
		}
	}
}

func TestPresence(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	c := f.client(f.srv.IssueUserToken("U0001", "users:read", "users:write"))
	ctx := context.Background()

	if err := c.SetUserPresenceContext(ctx, "away"); err != nil {
		t.Fatalf("setPresence: %v", err)
	}
	if got := f.srv.Presence("U0001"); got != "away" {
		t.Fatalf("Presence = %q, want away", got)
	}
	p, err := c.GetUserPresenceContext(ctx, "")
	if err != nil || p.Presence != "away" || !p.ManualAway {
		t.Fatalf("getPresence = %+v, %v", p, err)
	}
	if p, err := c.GetUserPresenceContext(ctx, "U0002"); err != nil || p.Presence != "active" || p.ManualAway {
		t.Fatalf("getPresence of another person = %+v, %v", p, err)
	}
	if err := c.SetUserPresenceContext(ctx, "auto"); err != nil || f.srv.Presence("U0001") != "auto" {
		t.Fatalf("setPresence auto: %v", err)
	}
	wantSlackErr(t, c.SetUserPresenceContext(ctx, "active"), "invalid_presence")
}

func TestTokenChecks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	bot := f.client(f.srv.IssueBotToken(DefaultTeamID, "chat:write", "users.profile:read", "dnd:read", "users:read"))
	narrow := f.client(f.srv.IssueUserToken("U0001", "users.profile:write"))
	ctx := context.Background()

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"bot sets a status", func() error { return bot.SetUserCustomStatusContext(ctx, "x", ":x:", 0) }, "not_allowed_token_type"},
		{"bot snoozes", func() error { _, err := bot.SetSnoozeContext(ctx, 5); return err }, "not_allowed_token_type"},
		{"bot sets presence", func() error { return bot.SetUserPresenceContext(ctx, "away") }, "not_allowed_token_type"},
		{"bot ends a snooze", func() error { _, err := bot.EndSnoozeContext(ctx); return err }, "not_allowed_token_type"},
		{"user publishes a view", func() error {
			_, err := narrow.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U0001", View: slack.HomeTabViewRequest{Type: slack.VTHomeTab}})
			return err
		}, "not_allowed_token_type"},
		{"missing scope", func() error { _, err := narrow.SetSnoozeContext(ctx, 5); return err }, "missing_scope"},
		{"no token", func() error { _, err := f.client("").AuthTestContext(ctx); return err }, "not_authed"},
		{"unknown token", func() error { _, err := f.client("xoxp-1-2-3").AuthTestContext(ctx); return err }, "invalid_auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantSlackErr(t, tt.call(), tt.want)
		})
	}

	_, err := narrow.GetDNDInfoContext(ctx, nil)
	se := slackErr(t, err)
	if se.Err != "missing_scope" || se.Needed != "dnd:read" || se.Provided != "users.profile:write" {
		t.Fatalf("missing scope error = %+v", se)
	}
	// A bot may read.
	if _, err := bot.GetUserProfileContext(ctx, &slack.GetUserProfileParameters{UserID: "U0002"}); err != nil {
		t.Fatalf("bot reads a profile: %v", err)
	}
	if _, err := bot.GetUserProfileContext(ctx, &slack.GetUserProfileParameters{UserID: "U404"}); slackErr(t, err).Err != "user_not_found" {
		t.Fatalf("unknown person: %v", err)
	}
}

func TestRevokedTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := context.Background()
	tok := f.install(t, "U0001").AuthedUser.AccessToken
	c := f.client(tok)

	r, err := c.SendAuthRevokeContext(ctx, "")
	if err != nil || !r.Revoked {
		t.Fatalf("auth.revoke = %+v, %v", r, err)
	}
	_, err = c.AuthTestContext(ctx)
	wantSlackErr(t, err, "token_revoked")

	// The person removes the app: all of their user tokens stop working, bots do not.
	other := f.client(f.srv.IssueUserToken("U0001", "users.profile:write"))
	grace := f.client(f.srv.IssueUserToken("U0002", "users.profile:write"))
	bot := f.client(f.srv.IssueBotToken(DefaultTeamID))
	f.srv.RevokeUserTokens("U0001")
	wantSlackErr(t, other.SetUserCustomStatusContext(ctx, "x", ":x:", 0), "token_revoked")
	if err := grace.SetUserCustomStatusContext(ctx, "x", ":x:", 0); err != nil {
		t.Errorf("another person's token: %v", err)
	}
	if _, err := bot.AuthTestContext(ctx); err != nil {
		t.Errorf("bot token: %v", err)
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("per method per workspace", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{RateLimits: map[string]int{"users.profile.get": 3}})
		f.srv.AddUser("T1", "U1", "Ada")
		f.srv.AddUser("T2", "U2", "Lin")
		c := f.client(f.srv.IssueUserToken("U1", "users.profile:read"))
		other := f.client(f.srv.IssueUserToken("U2", "users.profile:read"))
		get := func(c *slack.Client) error {
			_, err := c.GetUserProfileContext(ctx, &slack.GetUserProfileParameters{})
			return err
		}
		for i := range 3 {
			if err := get(c); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			f.clk.Advance(10 * time.Second)
		}
		wantRetry := func(want time.Duration) {
			t.Helper()
			var rl *slack.RateLimitedError
			if err := get(c); !errors.As(err, &rl) || rl.RetryAfter != want {
				t.Fatalf("error %v, want RateLimitedError with RetryAfter %v", err, want)
			}
		}
		// The first call (at 0s) leaves the window at 60s; it is now 30s.
		wantRetry(30 * time.Second)
		if err := get(other); err != nil {
			t.Fatalf("another workspace is limited too: %v", err)
		}
		f.clk.Advance(29 * time.Second)
		wantRetry(time.Second)
		f.clk.Advance(time.Second)
		if err := get(c); err != nil {
			t.Fatalf("after the window: %v", err)
		}
		wantRetry(10 * time.Second)

		last := f.srv.CallsTo("users.profile.get")
		if n := len(last); last[n-1].Status != http.StatusTooManyRequests || last[n-1].Error != "ratelimited" || last[n-1].Team != "T1" {
			t.Fatalf("last call = %+v", last[n-1])
		}
	})

	t.Run("raw 429", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{RateLimits: map[string]int{"auth.test": 1}})
		tok := f.srv.IssueUserToken("U0001")
		f.post(t, "auth.test", url.Values{"token": {tok}})
		resp, body := f.post(t, "auth.test", url.Values{"token": {tok}})
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" || body["error"] != "ratelimited" || body["ok"] != false {
			t.Fatalf("status %d Retry-After %q body %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})

	t.Run("profile updates per person", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{})
		ada := f.client(f.srv.IssueUserToken("U0001", "users.profile:write"))
		grace := f.client(f.srv.IssueUserToken("U0002", "users.profile:write"))
		for i := range DefaultProfileSetPerUserLimit {
			if err := ada.SetUserCustomStatusContext(ctx, "n", ":x:", 0); err != nil {
				t.Fatalf("update %d: %v", i+1, err)
			}
		}
		var rl *slack.RateLimitedError
		if err := ada.SetUserCustomStatusContext(ctx, "n", ":x:", 0); !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
			t.Fatalf("11th update: %v, want RateLimitedError after 1m", err)
		}
		if err := grace.SetUserCustomStatusContext(ctx, "n", ":x:", 0); err != nil {
			t.Fatalf("another person: %v", err)
		}
		f.clk.Advance(time.Minute)
		if err := ada.SetUserCustomStatusContext(ctx, "n", ":x:", 0); err != nil {
			t.Fatalf("after a minute: %v", err)
		}
	})

	t.Run("default tiers", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{ProfileSetPerUserLimit: -1})
		c := f.client(f.srv.IssueUserToken("U0001", "dnd:write"))
		for i := range 20 {
			if _, err := c.SetSnoozeContext(ctx, 5); err != nil {
				t.Fatalf("snooze %d: %v", i+1, err)
			}
		}
		var rl *slack.RateLimitedError
		if _, err := c.SetSnoozeContext(ctx, 5); !errors.As(err, &rl) {
			t.Fatalf("21st dnd.setSnooze: %v, want the Tier 2 limit", err)
		}
		if got := DefaultRateLimits()["users.profile.set"]; got != 50 {
			t.Errorf("users.profile.set default = %d, want 50", got)
		}
	})
}

func TestTokenRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{TokenRotation: true})
	resp := f.install(t, "U0001")
	u := resp.AuthedUser
	if !strings.HasPrefix(u.AccessToken, "xoxe.xoxp-1-") || !strings.HasPrefix(u.RefreshToken, "xoxe-1-") || u.ExpiresIn != 43200 {
		t.Fatalf("authed_user = %q… %q… %d", u.AccessToken[:12], u.RefreshToken[:7], u.ExpiresIn)
	}
	if !strings.HasPrefix(resp.AccessToken, "xoxe.xoxb-1-") || !strings.HasPrefix(resp.RefreshToken, "xoxe-1-") || resp.ExpiresIn != 43200 {
		t.Fatalf("bot token not rotating: %d", resp.ExpiresIn)
	}

	f.clk.Advance(12*time.Hour - time.Second)
	if _, err := f.client(u.AccessToken).AuthTestContext(ctx); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	f.clk.Advance(time.Second)
	_, err := f.client(u.AccessToken).AuthTestContext(ctx)
	wantSlackErr(t, err, "token_expired")

	r, err := slack.RefreshOAuthV2TokenContext(ctx, f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), u.RefreshToken, f.oauthURL())
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if !strings.HasPrefix(r.AccessToken, "xoxe.xoxp-1-") || r.TokenType != "user" || r.RefreshToken == u.RefreshToken ||
		r.ExpiresIn != 43200 || r.Scope != u.Scope || r.Team.ID != DefaultTeamID {
		t.Fatalf("refresh response = %+v", r)
	}
	at, err := f.client(r.AccessToken).AuthTestContext(ctx)
	if err != nil || at.UserID != "U0001" {
		t.Fatalf("auth.test with the refreshed token: %+v, %v", at, err)
	}
	_, err = slack.RefreshOAuthV2TokenContext(ctx, f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), u.RefreshToken, f.oauthURL())
	wantSlackErr(t, err, "invalid_refresh_token")
	_, err = slack.RefreshOAuthV2TokenContext(ctx, f.hs.Client(), f.srv.ClientID(), "wrong", r.RefreshToken, f.oauthURL())
	wantSlackErr(t, err, "bad_client_secret")

	b, err := slack.RefreshOAuthV2TokenContext(ctx, f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), resp.RefreshToken, f.oauthURL())
	if err != nil || b.TokenType != "bot" || !strings.HasPrefix(b.AccessToken, "xoxe.xoxb-1-") || b.BotUserID == "" {
		t.Fatalf("bot refresh = %+v, %v", b, err)
	}

	t.Run("user token under authed_user", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Options{TokenRotation: true, RefreshUserTokenInAuthedUser: true})
		u := f.install(t, "U0002").AuthedUser
		r, err := slack.RefreshOAuthV2TokenContext(ctx, f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), u.RefreshToken, f.oauthURL())
		if err != nil || r.AccessToken != "" || !strings.HasPrefix(r.AuthedUser.AccessToken, "xoxe.xoxp-1-") || r.AuthedUser.RefreshToken == "" {
			t.Fatalf("refresh = %+v, %v", r, err)
		}
	})
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := context.Background()
	c := f.client(f.srv.IssueUserToken("U0001", "users.profile:write", "dnd:write"))

	f.srv.FailNext("users.profile.set", http.StatusServiceUnavailable, "")
	var sce slack.StatusCodeError
	if err := c.SetUserCustomStatusContext(ctx, "x", ":x:", 0); !errors.As(err, &sce) || sce.Code != http.StatusServiceUnavailable {
		t.Fatalf("error %v, want StatusCodeError 503", err)
	}
	if err := c.SetUserCustomStatusContext(ctx, "x", ":x:", 0); err != nil {
		t.Fatalf("the fault is one-shot: %v", err)
	}

	f.srv.FailNext("dnd.setSnooze", 0, "snooze_failed")
	f.srv.FailNext("dnd.setSnooze", http.StatusTooManyRequests, "")
	_, err := c.SetSnoozeContext(ctx, 5)
	wantSlackErr(t, err, "snooze_failed")
	var rl *slack.RateLimitedError
	if _, err := c.SetSnoozeContext(ctx, 5); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("queued 429: %v", err)
	}

	f.srv.FailNext("oauth.v2.access", http.StatusInternalServerError, "")
	_, err = slack.GetOAuthV2ResponseContext(ctx, f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), "x", redirectURI, f.oauthURL())
	if !errors.As(err, &sce) || sce.Code != http.StatusInternalServerError {
		t.Fatalf("oauth fault: %v", err)
	}
	calls := f.srv.CallsTo("users.profile.set")
	if len(calls) != 2 || calls[0].Status != http.StatusServiceUnavailable || calls[0].User != "U0001" || calls[1].Status != http.StatusOK {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestAuthTest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := context.Background()
	tests := []struct {
		name  string
		token string
		want  slack.AuthTestResponse
	}{
		{"user", f.srv.IssueUserToken("U0001", "users:read"),
			slack.AuthTestResponse{URL: f.hs.URL + "/", Team: DefaultTeamName, User: "Ada", TeamID: DefaultTeamID, UserID: "U0001"}},
		{"bot", f.srv.IssueBotToken(DefaultTeamID, "chat:write"),
			slack.AuthTestResponse{URL: f.hs.URL + "/", Team: DefaultTeamName, User: "sandbox-bot", TeamID: DefaultTeamID, UserID: "UB0001", BotID: "B0001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.client(tt.token).AuthTestContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			scopes := got.Header.Get("X-OAuth-Scopes")
			got.Header = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("auth.test = %+v, want %+v", *got, tt.want)
			}
			if scopes == "" {
				t.Errorf("no X-OAuth-Scopes header")
			}
		})
	}
}

func TestUnknownMethod(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	resp, body := f.post(t, "users.nope", url.Values{"token": {f.srv.IssueUserToken("U0001")}})
	if resp.StatusCode != http.StatusNotFound || body["ok"] != false || body["error"] != "unknown_method" {
		t.Fatalf("status %d body %v", resp.StatusCode, body)
	}
	if resp, _ := f.post(t, "auth.test", url.Values{"token": {"xoxp-1"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("API errors are HTTP 200, got %d", resp.StatusCode)
	}
}

func TestCallLogAndWaitForCall(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := context.Background()
	c := f.client(f.srv.IssueUserToken("U0001", "dnd:read"))

	done := make(chan error, 1)
	go func() { done <- f.srv.WaitForCall(ctx, "dnd.info", 2) }()
	for range 2 {
		if _, err := c.GetDNDInfoContext(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitForCall: %v", err)
	}
	calls := f.srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	got := calls[0]
	if got.Method != "dnd.info" || got.Team != DefaultTeamID || got.User != "U0001" || !got.Time.Equal(f.clk.Now()) || got.Status != http.StatusOK || got.Params.Has("token") {
		t.Fatalf("call = %+v", got)
	}

	f.srv.Reset()
	if n := len(f.srv.Calls()); n != 0 {
		t.Fatalf("%d calls after Reset", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.srv.WaitForCall(cctx, "dnd.info", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitForCall on a cancelled context = %v", err)
	}
}

func TestPeoplePage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.srv.SetStatus("U0001", `<script>alert("x")</script>`, ":tada:", f.clk.Now().Add(time.Hour))
	c := f.client(f.srv.IssueUserToken("U0002", "dnd:write", "users:write"))
	if _, err := c.SetSnoozeContext(context.Background(), 30); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUserPresenceContext(context.Background(), "away"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/people"} {
		resp, err := f.hs.Client().Get(f.hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		for _, want := range []string{"Sandbox Slack", `http-equiv="refresh"`, "Ada", "Grace", "&lt;script&gt;", ":tada:", "in 1h0m0s", "snoozed until", "away"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
		if strings.Contains(body, "<script") {
			t.Errorf("%s carries a script", path)
		}
	}
}

func TestTeamsAndPeople(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.srv.AddTeam("T9", "Acme")
	f.srv.AddUser("T9", "U9", "Lin")
	body, _ := f.consent(t, nil)
	if !strings.Contains(body, "Lin") || strings.Contains(body, "Ada") {
		t.Fatalf("consent page after AddTeam lists the wrong people:\n%s", body)
	}
	resp := f.install(t, "U9")
	if resp.Team.ID != "T9" || resp.Team.Name != "Acme" || resp.AuthedUser.ID != "U9" {
		t.Fatalf("install = %+v", resp)
	}
	// People of another workspace are not visible.
	c := f.client(resp.AuthedUser.AccessToken)
	f.srv.AddUser("T8", "U8", "Kim")
	_, err := c.GetUserProfileContext(context.Background(), &slack.GetUserProfileParameters{UserID: "U8"})
	wantSlackErr(t, err, "user_not_found")
}

func TestAppHomeAndMessages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := context.Background()
	bot := f.client(f.srv.IssueBotToken(DefaultTeamID, "chat:write"))

	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*Hello*", false, false), nil, nil),
	}}}
	v, err := bot.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U0001", View: view})
	if err != nil || v.View.Hash == "" || v.View.Type != slack.VTHomeTab {
		t.Fatalf("views.publish = %+v, %v", v, err)
	}
	if raw := f.srv.HomeView("U0001"); !strings.Contains(string(raw), "*Hello*") {
		t.Fatalf("HomeView = %s", raw)
	}
	stale := "1.old"
	_, err = bot.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U0001", View: view, Hash: &stale})
	wantSlackErr(t, err, "hash_conflict")

	ch, ts, err := bot.PostMessageContext(ctx, "U0002", slack.MsgOptionText("Back at 11:00", false))
	if err != nil || ch != "D0002" || ts == "" {
		t.Fatalf("chat.postMessage = %q %q %v", ch, ts, err)
	}
	if msgs := f.srv.Messages("U0002"); len(msgs) != 1 || msgs[0].Text != "Back at 11:00" || msgs[0].TS != ts {
		t.Fatalf("Messages = %+v", msgs)
	}
	_, _, err = bot.PostMessageContext(ctx, "C404", slack.MsgOptionText("x", false))
	wantSlackErr(t, err, "channel_not_found")
}
