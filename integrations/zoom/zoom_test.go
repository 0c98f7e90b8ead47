package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

const (
	redirectURL   = "http://app.test/connect/zoom/callback"
	webhookSecret = "whsec-test-1"
	user          = zoomfake.DefaultUserID
)

// testClock is the fake clock shared by the fake Zoom and the client.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	fake  *zoomfake.Server
	srv   *httptest.Server
	c     *Client
	clock *testClock
}

// newEnv serves a fake Zoom on a loopback server and returns a client pointed at it.
func newEnv(t *testing.T, opts zoomfake.Options) *env {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	opts.ClientID, opts.ClientSecret = "zoom-client-1", "zoom-secret-2"
	opts.RedirectURIs = []string{redirectURL}
	opts.RequirePKCE = true
	opts.AutoApprove = true
	opts.Now = clock.Now
	if opts.WebhookSecretToken == "" {
		opts.WebhookSecretToken = webhookSecret
	}
	fake := zoomfake.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := New(Config{
		ClientID:           fake.ClientID(),
		ClientSecret:       fake.ClientSecret(),
		OAuthURL:           srv.URL,
		APIURL:             srv.URL + "/v2",
		RedirectURL:        redirectURL,
		WebhookSecretToken: webhookSecret,
		HTTPClient:         srv.Client(),
		Now:                clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, srv: srv, c: c, clock: clock}
}

// connect runs the OAuth dance (auto-approved by the fake) and returns the connection.
func (e *env) connect(t *testing.T) Connect {
	t.Helper()
	code, verifier := e.authorize(t)
	cn, err := e.c.Exchange(t.Context(), code, verifier, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cn
}

// authorize follows AuthCodeURL to the fake and returns the callback's code and the verifier.
func (e *env) authorize(t *testing.T) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	u, err := e.c.AuthCodeURL("state-1", verifier)
	if err != nil {
		t.Fatal(err)
	}
	hc := *e.srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("state") != "state-1" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code"), verifier
}

func TestAuthCodeURL(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	if _, err := e.c.AuthCodeURL("s", ""); err == nil {
		t.Error("no verifier accepted")
	}
	u, err := e.c.AuthCodeURL("s", "verifier-verifier-verifier-verifier-verifier")
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	q := pu.Query()
	if pu.Path != "/oauth/authorize" || q.Get("response_type") != "code" || q.Get("client_id") != "zoom-client-1" ||
		q.Get("redirect_uri") != redirectURL || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Has("scope") {
		t.Errorf("auth URL %s", u)
	}
}

func TestConnect(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	e.fake.AddUser("acct-7", "user-7")
	cn := e.connect(t)
	if cn.UserID != "user-7" || cn.AccountID != "acct-7" {
		t.Errorf("connect IDs %q %q", cn.UserID, cn.AccountID)
	}
	if !slices.Equal(cn.Scopes, Scopes()) {
		t.Errorf("scopes %v", cn.Scopes)
	}
	cred := cn.Credential
	if cred.AccessToken == "" || cred.RefreshToken == "" || !cred.Expiry.Equal(e.clock.Now().Add(3599*time.Second)) {
		t.Errorf("credential expiry %v", cred.Expiry)
	}
	// The token request carried the client credentials in the Basic header
	// only (the fake refuses anything else) and the PKCE verifier.
	calls := e.fake.CallsTo(zoomfake.EndpointToken)
	if len(calls) != 1 || calls[0].Status != 200 || calls[0].Query.Has("client_secret") || calls[0].Query.Has("client_id") ||
		calls[0].Query.Get("code_verifier") != "REDACTED" {
		t.Errorf("token calls %+v", calls)
	}
	// A code works once.
	code, verifier := e.authorize(t)
	if _, err := e.c.Exchange(t.Context(), code, verifier, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Exchange(t.Context(), code, verifier, e.clock.Now()); err == nil {
		t.Error("a used code was accepted")
	} else if strings.Contains(err.Error(), code) {
		t.Error("the error shows the code")
	}
}

func TestConnectWithoutTheScopesRevokes(t *testing.T) {
	e := newEnv(t, zoomfake.Options{Scopes: []string{zoomfake.ScopeUserRead}})
	code, verifier := e.authorize(t)
	_, err := e.c.Exchange(t.Context(), code, verifier, e.clock.Now())
	if !errors.Is(err, ErrScopesNotGranted) {
		t.Fatalf("err = %v", err)
	}
	if calls := e.fake.CallsTo(zoomfake.EndpointRevoke); len(calls) != 1 || calls[0].Status != 200 {
		t.Errorf("revoke calls %+v", calls)
	}
	// Classic scopes of an older app are as good.
	e = newEnv(t, zoomfake.Options{Scopes: []string{"user:read", "meeting:read"}})
	if cn := e.connect(t); cn.UserID != user {
		t.Errorf("classic scopes: %+v", cn)
	}
}

func TestRefreshRotates(t *testing.T) {
	for _, code := range []string{"invalid_grant", "invalid_request"} {
		t.Run(code, func(t *testing.T) {
			e := newEnv(t, zoomfake.Options{RefreshErrorCode: code})
			cred := e.connect(t).Credential
			e.clock.Advance(30 * time.Minute)
			fresh, err := e.c.Refresh(t.Context(), cred, e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if fresh.RefreshToken == "" || fresh.RefreshToken == cred.RefreshToken || fresh.AccessToken == cred.AccessToken ||
				!fresh.Expiry.Equal(e.clock.Now().Add(3599*time.Second)) {
				t.Fatalf("refresh did not rotate: expiry %v", fresh.Expiry)
			}
			// The old refresh token is dead: a revoked grant for us.
			_, err = e.c.Refresh(t.Context(), cred, e.clock.Now())
			if reason, ok := provider.RevokedReason(err); !ok || reason != "invalid_grant" {
				t.Fatalf("old refresh token: %v", err)
			}
			if strings.Contains(err.Error(), cred.RefreshToken) {
				t.Error("the error shows the token")
			}
			// The persisted new one still works.
			if _, err := e.c.Refresh(t.Context(), fresh, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	cred := e.connect(t).Credential
	if err := e.c.Revoke(t.Context(), cred); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), nil); !errors.Is(err, provider.ErrRevoked) {
		t.Errorf("meetings after revoke: %v", err)
	}
	// Revoking again is fine: the token is already dead.
	if err := e.c.Revoke(t.Context(), cred); err != nil {
		t.Errorf("second revoke: %v", err)
	}
}

func TestMeetingsPagingAndMapping(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	now := e.clock.Now()
	const n = 650 // three pages of 300
	want := map[string]time.Time{}
	for i := range n {
		start := now.Add(time.Duration(i+1) * 15 * time.Minute)
		id := e.fake.AddMeeting(user, zoomfake.Meeting{
			Topic: "Secret project " + strconv.Itoa(i), Start: start, Duration: 45 * time.Minute, TimeZone: "Europe/Zurich"})
		want[strconv.FormatInt(id, 10)] = start
	}
	e.fake.AddMeeting(user, zoomfake.Meeting{Topic: "Secret past", Start: now.Add(-2 * time.Hour), Duration: time.Hour})
	e.fake.AddMeeting(user, zoomfake.Meeting{Topic: "Secret no fixed time", Type: 3})
	cred := e.connect(t).Credential

	events, err := e.c.Meetings(t.Context(), cred, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != n {
		t.Fatalf("%d events, want %d", len(events), n)
	}
	for _, ev := range events {
		start, ok := want[ev.ID]
		if !ok {
			t.Fatalf("unexpected event %q", ev.ID)
		}
		if ev.Type != presence.EventZoomScheduled || !ev.Start.Equal(start) || !ev.End.Equal(start.Add(45*time.Minute)) ||
			ev.Busy != presence.BusyBusy || ev.Source != "" || ev.AllDay || ev.Emoji != "" {
			t.Fatalf("event %+v", ev)
		}
	}
	if calls := e.fake.CallsTo(zoomfake.EndpointMeetingsList); len(calls) != 3 ||
		calls[0].Query.Get("type") != "upcoming" || calls[0].Query.Get("page_size") != "300" || calls[1].Query.Get("next_page_token") != "REDACTED" {
		t.Errorf("list calls %+v", calls)
	}
	// Privacy: no topic survives, in any field.
	b, _ := json.Marshal(events)
	if strings.Contains(string(b), "Secret") {
		t.Error("a meeting topic leaked into the events")
	}
}

func TestMeetingsRecurringOccurrencesGetDistinctIDs(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	now := e.clock.Now()
	e.fake.AddMeeting(user, zoomfake.Meeting{ID: 81234567890, Type: 8, Start: now.Add(time.Hour), Duration: 30 * time.Minute})
	e.fake.AddMeeting(user, zoomfake.Meeting{ID: 81234567890, Type: 8, Start: now.Add(25 * time.Hour), Duration: 30 * time.Minute})
	events, err := e.c.Meetings(t.Context(), e.connect(t).Credential, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].ID != "81234567890" || events[1].ID != "81234567890@2026-12-04T10:00:00Z" {
		t.Fatalf("events %+v", events)
	}
}

func TestMeetingsRateLimited(t *testing.T) {
	t.Run("per second", func(t *testing.T) {
		e := newEnv(t, zoomfake.Options{RateLimits: map[zoomfake.Category]zoomfake.Limit{zoomfake.Medium: {PerSecond: 1}}})
		cred := e.connect(t).Credential
		if _, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), nil); err != nil {
			t.Fatal(err)
		}
		_, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), nil)
		var rl *provider.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != time.Second || rl.Method != "users/me/meetings" {
			t.Fatalf("err = %v", err)
		}
		e.clock.Advance(time.Second)
		if _, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), nil); err != nil {
			t.Fatalf("after Retry-After: %v", err)
		}
	})
	t.Run("daily", func(t *testing.T) {
		e := newEnv(t, zoomfake.Options{Plan: zoomfake.PlanFree, RateLimits: map[zoomfake.Category]zoomfake.Limit{zoomfake.Medium: {PerDay: 1}}})
		cred := e.connect(t).Credential
		e.c.Meetings(t.Context(), cred, e.clock.Now(), nil)
		_, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), nil)
		if d, ok := provider.RetryAfter(err); !ok || d != 15*time.Hour {
			t.Fatalf("daily limit: %v (%s)", err, d)
		}
	})
	t.Run("no headers", func(t *testing.T) {
		e := newEnv(t, zoomfake.Options{OmitRateLimitHeaders: true, RateLimits: map[zoomfake.Category]zoomfake.Limit{zoomfake.Medium: {PerSecond: 1}}})
		cred := e.connect(t).Credential
		e.c.Meetings(t.Context(), cred, e.clock.Now(), nil)
		_, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), nil)
		if d, ok := provider.RetryAfter(err); !ok || d != DefaultRetryAfter || !provider.RetryGuessed(err) {
			t.Fatalf("no headers: %v (guessed %v)", err, provider.RetryGuessed(err))
		}
	})
}

func TestMeetings401RefreshesAndSaves(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	e.fake.AddMeeting(user, zoomfake.Meeting{Start: e.clock.Now().Add(time.Hour), Duration: time.Hour})
	cred := e.connect(t).Credential
	e.fake.ExpireAccessTokens(user) // Zoom refuses the token before its Expiry

	// Without a save function the caller is told to refresh.
	_, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), nil)
	if reason, ok := provider.RevokedReason(err); !ok || reason != "token_expired" {
		t.Fatalf("without save: %v", err)
	}

	var saved []provider.Credential
	save := func(_ context.Context, fresh provider.Credential) error {
		saved = append(saved, fresh)
		return nil
	}
	events, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), save)
	if err != nil || len(events) != 1 {
		t.Fatalf("meetings after refresh: %v %v", events, err)
	}
	if len(saved) != 1 || saved[0].RefreshToken == cred.RefreshToken {
		t.Fatalf("saved %d credentials", len(saved))
	}
	// The rotated credential is the one that works from now on.
	if _, err := e.c.Refresh(t.Context(), cred, e.clock.Now()); !errors.Is(err, provider.ErrRevoked) {
		t.Errorf("the old refresh token still works: %v", err)
	}
	if _, err := e.c.Meetings(t.Context(), saved[0], e.clock.Now(), save); err != nil || len(saved) != 1 {
		t.Errorf("with the saved credential: %v (saves %d)", err, len(saved))
	}

	// A save that fails stops the call.
	e.fake.ExpireAccessTokens(user)
	_, err = e.c.Meetings(t.Context(), saved[0], e.clock.Now(), func(context.Context, provider.Credential) error { return errors.New("disk full") })
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failed save: %v", err)
	}
}

func TestMeetingsRevoked(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	cred := e.connect(t).Credential
	e.fake.RevokeTokens(user) // the person removed the app
	saves := 0
	_, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), func(context.Context, provider.Credential) error { saves++; return nil })
	if reason, ok := provider.RevokedReason(err); !ok || reason != "invalid_grant" || saves != 0 {
		t.Fatalf("revoked: %v (saves %d)", err, saves)
	}
}

func TestMeetingsMissingScopeAndServerErrors(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	access, _ := e.fake.IssueToken(user, zoomfake.ScopeUserRead)
	_, err := e.c.Meetings(t.Context(), provider.Credential{AccessToken: access}, e.clock.Now(), nil)
	if reason, ok := provider.RevokedReason(err); !ok || reason != "missing_scope" {
		t.Fatalf("missing scope: %v", err)
	}
	cred := e.connect(t).Credential
	e.fake.FailNext(zoomfake.EndpointMeetingsList, http.StatusServiceUnavailable)
	_, err = e.c.Meetings(t.Context(), cred, e.clock.Now(), nil)
	if err == nil || errors.Is(err, provider.ErrRevoked) {
		t.Fatalf("503: %v", err)
	}
	if _, ok := provider.RetryAfter(err); ok {
		t.Errorf("503 reported as a rate limit")
	}
	e.fake.FailNextBody(zoomfake.EndpointMeetingsList, http.StatusOK, `{"meetings":[{"id":`)
	if _, err := e.c.Meetings(t.Context(), cred, e.clock.Now(), nil); err == nil {
		t.Error("a malformed page was accepted")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header  http.Header
		message string
		want    time.Duration
	}{
		{http.Header{"Retry-After": {"7"}}, "", 7 * time.Second},
		{http.Header{"Retry-After": {"0"}}, "", time.Second},
		{http.Header{"Retry-After": {"2026-12-03T09:01:00Z"}}, "", time.Minute},
		{http.Header{"Retry-After": {"Thu, 03 Dec 2026 09:00:30 GMT"}}, "", 30 * time.Second},
		{http.Header{"X-Ratelimit-Type": {"Daily-limit"}}, "", 15 * time.Hour},
		{http.Header{}, "You have reached the maximum daily rate limit for this API.", 15 * time.Hour},
		{http.Header{}, "", DefaultRetryAfter},
	} {
		got, named := retryAfter(tc.header, tc.message, now)
		if got != tc.want || named != (tc.want != DefaultRetryAfter) {
			t.Errorf("retryAfter(%v, %q) = %s (named %v), want %s", tc.header, tc.message, got, named, tc.want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	if _, err := New(Config{ClientID: "a", ClientSecret: "b"}); err == nil {
		t.Error("no redirect URL accepted")
	}
	c, err := New(Config{ClientID: "a", ClientSecret: "b", RedirectURL: redirectURL})
	if err != nil || c.cfg.OAuthURL != DefaultOAuthURL || c.cfg.APIURL != DefaultAPIURL {
		t.Errorf("defaults: %+v %v", c, err)
	}
}
