package googlefake_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"google.golang.org/api/calendar/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
)

// fakeClock is a settable clock; nothing in these tests sleeps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testKey is shared by all fakes in this package's tests to keep them fast.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const redirectURL = "https://app.example.test/signin/google/callback"

type env struct {
	t     *testing.T
	ctx   context.Context
	fake  *googlefake.Server
	srv   *httptest.Server
	clock *fakeClock
}

func newEnv(t *testing.T, opts googlefake.Options) *env {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	opts.Now = clock.Now
	if opts.SigningKey == nil {
		opts.SigningKey = testKey()
	}
	fake := googlefake.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close) // before the server closes: no push delivery outlives the test
	fake.SetBaseURL(srv.URL)
	return &env{t: t, ctx: t.Context(), fake: fake, srv: srv, clock: clock}
}

// oauthCtx makes x/oauth2 use the test server's client.
func (e *env) oauthCtx() context.Context {
	return context.WithValue(e.ctx, oauth2.HTTPClient, e.srv.Client())
}

func (e *env) provider() *oidc.Provider {
	e.t.Helper()
	p, err := oidc.NewProvider(oidc.ClientContext(e.ctx, e.srv.Client()), e.srv.URL)
	if err != nil {
		e.t.Fatalf("oidc.NewProvider: %v", err)
	}
	return p
}

func (e *env) config(p *oidc.Provider, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     e.fake.ClientID(),
		ClientSecret: e.fake.ClientSecret(),
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirectURL,
		Scopes:       scopes,
	}
}

// noRedirects returns a client for the browser side that stops at redirects.
func (e *env) noRedirects() *http.Client {
	c := *e.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

var (
	reFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	reRequest    = regexp.MustCompile(`name="request" value="([^"]+)"`)
	reAccount    = regexp.MustCompile(`name="account" value="([^"]+)"`)
)

// consent plays the browser: it opens authURL, checks the consent page and
// submits it with action for account sub. It returns the redirect's query.
func (e *env) consent(authURL, sub, action string) url.Values {
	e.t.Helper()
	browser := e.noRedirects()
	resp, err := browser.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("consent page: %d %s", resp.StatusCode, page)
	}
	if !strings.Contains(string(page), "Sandbox Google") || strings.Contains(string(page), "<script") {
		e.t.Fatalf("consent page not labelled or has script:\n%s", page)
	}
	accounts := reAccount.FindAllStringSubmatch(string(page), -1)
	if !slices.ContainsFunc(accounts, func(m []string) bool { return m[1] == sub }) {
		e.t.Fatalf("consent page does not offer account %s:\n%s", sub, page)
	}
	action0 := reFormAction.FindStringSubmatch(string(page))
	req := reRequest.FindStringSubmatch(string(page))
	if action0 == nil || req == nil {
		e.t.Fatalf("consent page has no form:\n%s", page)
	}
	resp, err = browser.PostForm(e.srv.URL+action0[1], url.Values{
		"request": {req[1]}, "account": {sub}, "action": {action},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("consent post: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURL {
		e.t.Fatalf("redirected to %s, want %s", got, redirectURL)
	}
	return loc.Query()
}

// signIn runs the whole authorization code flow with PKCE for sub and
// returns the token.
func (e *env) signIn(sub string, scopes ...string) (*oauth2.Token, *oauth2.Config) {
	e.t.Helper()
	conf := e.config(e.provider(), scopes...)
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st", oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-0"))
	q := e.consent(authURL, sub, "allow")
	tok, err := conf.Exchange(e.oauthCtx(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		e.t.Fatalf("Exchange: %v", err)
	}
	return tok, conf
}

func (e *env) calendarService(tok *oauth2.Token, conf *oauth2.Config) *calendar.Service {
	e.t.Helper()
	var hc *http.Client
	if tok == nil {
		hc = e.srv.Client()
	} else {
		hc = conf.Client(e.oauthCtx(), tok)
	}
	svc, err := calendar.NewService(e.ctx, option.WithEndpoint(e.srv.URL+"/calendar/v3/"), option.WithHTTPClient(hc))
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// connect signs sub in with calendar.readonly and returns a Calendar client.
func (e *env) connect(sub string) *calendar.Service {
	e.t.Helper()
	tok, conf := e.signIn(sub, googlefake.ScopeCalendarReadonly)
	return e.calendarService(tok, conf)
}

func apiError(t *testing.T, err error, code int, reason string) *googleapi.Error {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error %v (%T) is not a *googleapi.Error", err, err)
	}
	if gerr.Code != code || len(gerr.Errors) == 0 || gerr.Errors[0].Reason != reason {
		t.Fatalf("got %d %+v, want %d %s", gerr.Code, gerr.Errors, code, reason)
	}
	return gerr
}

func ids(items []*calendar.Event) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Id
	}
	return out
}

func TestSignInWithPKCEVerifiesIDToken(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	e.fake.AddAccount("1001", "grace@sandbox.invalid", "Grace Hopper")
	p := e.provider()
	conf := e.config(p, oidc.ScopeOpenID, "email", "profile")
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-123", oauth2.AccessTypeOffline,
		oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-456"))

	q := e.consent(authURL, "1001", "allow")
	if q.Get("state") != "state-123" || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	tok, err := conf.Exchange(e.oauthCtx(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Errorf("token type %q, refresh token present %v", tok.TokenType, tok.RefreshToken != "")
	}
	if got := tok.Extra("expires_in"); got != float64(3599) {
		t.Errorf("expires_in = %v, want 3599", got)
	}
	wantScope := "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile"
	if got := tok.Extra("scope"); got != wantScope {
		t.Errorf("scope = %v, want %s", got, wantScope)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: e.fake.ClientID(), Now: e.clock.Now}).Verify(e.ctx, raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Nonce != "nonce-456" || idt.Subject != "1001" || idt.Issuer != e.srv.URL {
		t.Errorf("id token nonce %q sub %q iss %q", idt.Nonce, idt.Subject, idt.Issuer)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Name          string `json:"name"`
		Azp           string `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Email != "grace@sandbox.invalid" || !claims.EmailVerified || claims.Name != "Grace Hopper" || claims.Azp != e.fake.ClientID() {
		t.Errorf("claims %+v", claims)
	}

	// Refresh gives a new access token and ID token but no new refresh token.
	e.clock.Advance(5 * time.Minute)
	refresh := func() (*oauth2.Token, error) {
		return conf.TokenSource(e.oauthCtx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	}
	tok2, err := refresh()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.Extra("id_token") == nil || tok2.RefreshToken != tok.RefreshToken {
		t.Errorf("refresh did not mint a new access token and ID token, or rotated the refresh token")
	}
	userinfo, err := p.UserInfo(e.oauthCtx(), oauth2.StaticTokenSource(tok2))
	if err != nil || userinfo.Subject != "1001" || userinfo.Email != "grace@sandbox.invalid" {
		t.Errorf("UserInfo = %+v, %v", userinfo, err)
	}

	// The code is single-use, and replaying it revokes the grant.
	_, err = conf.Exchange(e.oauthCtx(), q.Get("code"), oauth2.VerifierOption(verifier))
	assertOAuthError(t, err, http.StatusBadRequest, "invalid_grant")
	_, err = refresh()
	assertOAuthError(t, err, http.StatusBadRequest, "invalid_grant")
}

func assertOAuthError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var rerr *oauth2.RetrieveError
	if !errors.As(err, &rerr) {
		t.Fatalf("error %v is not a *oauth2.RetrieveError", err)
	}
	if rerr.Response.StatusCode != status || rerr.ErrorCode != code {
		t.Fatalf("got %d %q (%s), want %d %q", rerr.Response.StatusCode, rerr.ErrorCode, rerr.ErrorDescription, status, code)
	}
}

func TestTokenEndpointRejects(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	p := e.provider()

	begin := func() (*oauth2.Config, string, string) {
		conf := e.config(p, oidc.ScopeOpenID)
		verifier := oauth2.GenerateVerifier()
		q := e.consent(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), googlefake.DefaultSub, "allow")
		return conf, q.Get("code"), verifier
	}

	t.Run("wrong verifier", func(t *testing.T) {
		conf, code, _ := begin()
		_, err := conf.Exchange(e.oauthCtx(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		assertOAuthError(t, err, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("missing verifier", func(t *testing.T) {
		conf, code, _ := begin()
		_, err := conf.Exchange(e.oauthCtx(), code)
		assertOAuthError(t, err, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("wrong secret in basic auth", func(t *testing.T) {
		conf, code, verifier := begin()
		conf.ClientSecret = "nope"
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		_, err := conf.Exchange(e.oauthCtx(), code, oauth2.VerifierOption(verifier))
		assertOAuthError(t, err, http.StatusUnauthorized, "invalid_client")
	})
	t.Run("client secret in basic auth works", func(t *testing.T) {
		conf, code, verifier := begin()
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		if _, err := conf.Exchange(e.oauthCtx(), code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("redirect uri mismatch", func(t *testing.T) {
		conf, code, verifier := begin()
		conf.RedirectURL = "https://evil.example.test/cb"
		_, err := conf.Exchange(e.oauthCtx(), code, oauth2.VerifierOption(verifier))
		assertOAuthError(t, err, http.StatusBadRequest, "redirect_uri_mismatch")
	})
	t.Run("expired code", func(t *testing.T) {
		conf, code, verifier := begin()
		e.clock.Advance(11 * time.Minute)
		_, err := conf.Exchange(e.oauthCtx(), code, oauth2.VerifierOption(verifier))
		assertOAuthError(t, err, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("no refresh token without offline access", func(t *testing.T) {
		conf, code, verifier := begin()
		tok, err := conf.Exchange(e.oauthCtx(), code, oauth2.VerifierOption(verifier))
		if err != nil || tok.RefreshToken != "" {
			t.Fatalf("tok refresh %v, err %v", tok != nil && tok.RefreshToken != "", err)
		}
	})
}

func TestConsentCancelAndAuthorizeErrors(t *testing.T) {
	e := newEnv(t, googlefake.Options{RequirePKCE: true})
	conf := e.config(e.provider(), oidc.ScopeOpenID)
	verifier := oauth2.GenerateVerifier()
	q := e.consent(conf.AuthCodeURL("xyz", oauth2.S256ChallengeOption(verifier)), googlefake.DefaultSub, "cancel")
	if q.Get("error") != "access_denied" || q.Get("state") != "xyz" || q.Has("code") {
		t.Fatalf("cancel redirect query %v", q)
	}

	for _, tc := range []struct {
		name   string
		edit   func(url.Values)
		status int
	}{
		{"unknown client", func(v url.Values) { v.Set("client_id", "other") }, http.StatusUnauthorized},
		{"unknown scope", func(v url.Values) { v.Set("scope", "openid https://mail.google.com/") }, http.StatusBadRequest},
		{"no PKCE when required", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, http.StatusBadRequest},
		{"relative redirect", func(v url.Values) { v.Set("redirect_uri", "/cb") }, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
			v := u.Query()
			tc.edit(v)
			u.RawQuery = v.Encode()
			resp, err := e.noRedirects().Get(u.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d location %q, want %d and an error page", resp.StatusCode, resp.Header.Get("Location"), tc.status)
			}
		})
	}
}

func TestEventsListTimeWindow(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	svc := e.connect(googlefake.DefaultSub)
	now := e.clock.Now()
	at := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	add := func(summary string, from, to int) string {
		return e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: summary, Start: at(from), End: at(to)})
	}
	endsAtMin := add("ends at timeMin", -2, 0)
	late := add("late", 5, 6)
	early := add("early", 1, 2)
	add("starts at timeMax", 8, 9)
	overlapping := add("overlaps timeMin", -1, 1)

	res, err := svc.Events.List("primary").SingleEvents(true).OrderBy("startTime").
		TimeMin(at(0).Format(time.RFC3339)).TimeMax(at(8).Format(time.RFC3339)).Context(e.ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{overlapping, early, late}
	if got := ids(res.Items); !slices.Equal(got, want) {
		t.Errorf("items %v, want %v (not %s)", got, want, endsAtMin)
	}
	if res.Kind != "calendar#events" || res.TimeZone != "UTC" || res.AccessRole != "owner" || res.NextSyncToken != "" {
		t.Errorf("envelope kind %q tz %q role %q sync token given with orderBy: %v", res.Kind, res.TimeZone, res.AccessRole, res.NextSyncToken != "")
	}
	ev := res.Items[1]
	if ev.Kind != "calendar#event" || ev.Status != "confirmed" || ev.Start.DateTime != at(1).Format(time.RFC3339) ||
		ev.Start.TimeZone != "UTC" || ev.Start.Date != "" || !ev.Organizer.Self || ev.EventType != "default" || ev.Etag == "" || ev.Updated == "" {
		t.Errorf("event %+v start %+v organizer %+v", ev, ev.Start, ev.Organizer)
	}

	// orderBy=startTime needs singleEvents; an empty range is refused.
	_, err = svc.Events.List("primary").OrderBy("startTime").Do()
	apiError(t, err, http.StatusBadRequest, "badRequest")
	_, err = svc.Events.List("primary").TimeMin(at(3).Format(time.RFC3339)).TimeMax(at(3).Format(time.RFC3339)).Do()
	apiError(t, err, http.StatusBadRequest, "timeRangeEmpty")
	_, err = svc.Events.List("someone-else@sandbox.invalid").Do()
	apiError(t, err, http.StatusNotFound, "notFound")
}

func TestEventsPagingAndSyncTokenOnLastPage(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	svc := e.connect(googlefake.DefaultSub)
	start := e.clock.Now()
	var want []string
	for i := range 7 {
		s := start.Add(time.Duration(i) * time.Hour)
		want = append(want, e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: "m", Start: s, End: s.Add(30 * time.Minute)}))
	}
	var got []string
	var pages []*calendar.Events
	err := svc.Events.List("primary").SingleEvents(true).MaxResults(3).Pages(e.ctx, func(p *calendar.Events) error {
		got = append(got, ids(p.Items)...)
		pages = append(pages, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || len(pages) != 3 {
		t.Fatalf("got %v in %d pages, want %v in 3", got, len(pages), want)
	}
	for i, p := range pages {
		last := i == len(pages)-1
		if (p.NextSyncToken != "") != last || (p.NextPageToken != "") == last {
			t.Errorf("page %d: next page token %v, next sync token %v", i, p.NextPageToken != "", p.NextSyncToken != "")
		}
	}

	// The same with an explicit pageToken loop.
	call := svc.Events.List("primary").SingleEvents(true).MaxResults(5)
	first, err := call.Do()
	if err != nil || len(first.Items) != 5 || first.NextPageToken == "" {
		t.Fatalf("first page: %v", err)
	}
	second, err := call.PageToken(first.NextPageToken).Do()
	if err != nil || len(second.Items) != 2 || second.NextPageToken != "" || second.NextSyncToken == "" {
		t.Fatalf("second page: %d items, %v", len(second.Items), err)
	}
	_, err = svc.Events.List("primary").SingleEvents(false).MaxResults(5).PageToken(first.NextPageToken).Do()
	apiError(t, err, http.StatusBadRequest, "invalid")

	// An incremental sync pages the same way; its token comes on the last page.
	for _, id := range want[:4] {
		if err := e.fake.DeleteEvent(googlefake.DefaultSub, "primary", id); err != nil {
			t.Fatal(err)
		}
	}
	var changed []string
	var syncTokens []string
	err = svc.Events.List("primary").SingleEvents(true).MaxResults(3).SyncToken(second.NextSyncToken).Pages(e.ctx, func(p *calendar.Events) error {
		changed = append(changed, ids(p.Items)...)
		syncTokens = append(syncTokens, p.NextSyncToken)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, want[:4]) || len(syncTokens) != 2 || syncTokens[0] != "" || syncTokens[1] == "" {
		t.Fatalf("paged incremental sync: %v, sync tokens %q", changed, syncTokens)
	}
}

func TestIncrementalSync(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	svc := e.connect(googlefake.DefaultSub)
	sub := googlefake.DefaultSub
	now := e.clock.Now()
	keep := e.fake.AddEvent(sub, "primary", googlefake.Event{Summary: "keep", Start: now, End: now.Add(time.Hour)})
	change := e.fake.AddEvent(sub, "primary", googlefake.Event{Summary: "change", Start: now.Add(2 * time.Hour), End: now.Add(3 * time.Hour)})
	drop := e.fake.AddEvent(sub, "primary", googlefake.Event{Summary: "drop", Start: now.Add(4 * time.Hour), End: now.Add(5 * time.Hour)})

	full, err := svc.Events.List("primary").SingleEvents(true).TimeMin(now.Add(-time.Hour).Format(time.RFC3339)).Do()
	if err != nil || len(full.Items) != 3 || full.NextSyncToken == "" {
		t.Fatalf("full sync: %v", err)
	}

	e.clock.Advance(time.Minute)
	if err := e.fake.UpdateEvent(sub, "primary", change, func(ev *googlefake.Event) {
		ev.Start, ev.End = ev.Start.Add(time.Hour), ev.End.Add(time.Hour)
		ev.Attendees = []googlefake.Attendee{{Email: googlefake.DefaultEmail, Self: true, ResponseStatus: "declined"}}
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.DeleteEvent(sub, "primary", drop); err != nil {
		t.Fatal(err)
	}

	inc, err := svc.Events.List("primary").SingleEvents(true).SyncToken(full.NextSyncToken).Do()
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(inc.Items); !slices.Equal(got, []string{change, drop}) {
		t.Fatalf("incremental items %v, want [%s %s] (not %s)", got, change, drop, keep)
	}
	changed, deleted := inc.Items[0], inc.Items[1]
	if changed.Start.DateTime != now.Add(3*time.Hour).Format(time.RFC3339) || changed.Attendees[0].ResponseStatus != "declined" || changed.Sequence != 1 {
		t.Errorf("changed event %+v", changed)
	}
	if deleted.Status != "cancelled" || deleted.Start != nil {
		t.Errorf("deleted event %+v", deleted)
	}
	if inc.NextSyncToken == "" || inc.NextSyncToken == full.NextSyncToken {
		t.Errorf("incremental sync gave no new sync token")
	}

	// Nothing changed: no items, the same token again.
	again, err := svc.Events.List("primary").SingleEvents(true).SyncToken(inc.NextSyncToken).Do()
	if err != nil || len(again.Items) != 0 || again.NextSyncToken != inc.NextSyncToken {
		t.Fatalf("unchanged sync: %d items, same token %v, %v", len(again.Items), again.NextSyncToken == inc.NextSyncToken, err)
	}

	// Restrictions cannot be combined with a sync token.
	_, err = svc.Events.List("primary").SyncToken(inc.NextSyncToken).TimeMin(now.Format(time.RFC3339)).Do()
	apiError(t, err, http.StatusBadRequest, "syncTokenWithRequestRestrictions")

	// An invalidated token answers 410 fullSyncRequired.
	if err := e.fake.InvalidateSyncTokens(sub); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Events.List("primary").SingleEvents(true).SyncToken(inc.NextSyncToken).Do()
	gerr := apiError(t, err, http.StatusGone, "fullSyncRequired")
	if gerr.Message != "Sync token is no longer valid, a full sync is required." {
		t.Errorf("message %q", gerr.Message)
	}
	_, err = svc.Events.List("primary").SyncToken("made-up").Do()
	apiError(t, err, http.StatusGone, "fullSyncRequired")
}

func TestCalendarAuthErrors(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	sub := googlefake.DefaultSub

	t.Run("missing token", func(t *testing.T) {
		_, err := e.calendarService(nil, nil).Events.List("primary").Do()
		apiError(t, err, http.StatusUnauthorized, "required")
	})
	t.Run("invalid token", func(t *testing.T) {
		hc := oauth2.NewClient(e.oauthCtx(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ya29.bogus"}))
		svc, err := calendar.NewService(e.ctx, option.WithEndpoint(e.srv.URL+"/calendar/v3/"), option.WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Events.List("primary").Do()
		apiError(t, err, http.StatusUnauthorized, "authError")
	})
	t.Run("expired token", func(t *testing.T) {
		tok, conf := e.signIn(sub, googlefake.ScopeCalendarReadonly)
		tok.RefreshToken = "" // keep x/oauth2 from refreshing
		svc := e.calendarService(tok, conf)
		if _, err := svc.Events.List("primary").Do(); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
		_, err := svc.Events.List("primary").Do()
		apiError(t, err, http.StatusUnauthorized, "authError")
	})
	t.Run("revoked grant", func(t *testing.T) {
		tok, conf := e.signIn(sub, googlefake.ScopeCalendarReadonly)
		e.fake.RevokeTokens(sub)
		_, err := e.calendarService(tok, conf).Events.List("primary").Do()
		apiError(t, err, http.StatusUnauthorized, "authError")
		_, err = conf.TokenSource(e.oauthCtx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		assertOAuthError(t, err, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("revoke endpoint", func(t *testing.T) {
		tok, conf := e.signIn(sub, googlefake.ScopeCalendarReadonly)
		resp, err := e.srv.Client().PostForm(e.srv.URL+"/revoke", url.Values{"token": {tok.RefreshToken}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke status %d", resp.StatusCode)
		}
		_, err = e.calendarService(tok, conf).Events.List("primary").Do()
		apiError(t, err, http.StatusUnauthorized, "authError")
	})
	t.Run("sign-in token lacks calendar scope", func(t *testing.T) {
		tok, conf := e.signIn(sub, oidc.ScopeOpenID, "email")
		_, err := e.calendarService(tok, conf).Events.List("primary").Do()
		apiError(t, err, http.StatusForbidden, "insufficientPermissions")
	})
	t.Run("events.readonly reads events but not the calendar list", func(t *testing.T) {
		tok, conf := e.signIn(sub, googlefake.ScopeCalendarEventsReadonly)
		svc := e.calendarService(tok, conf)
		if _, err := svc.Events.List("primary").Do(); err != nil {
			t.Fatal(err)
		}
		_, err := svc.CalendarList.List().Do()
		apiError(t, err, http.StatusForbidden, "insufficientPermissions")
	})
}

func TestRateLimits(t *testing.T) {
	for _, tc := range []struct {
		status int
		reason string
	}{
		{http.StatusForbidden, "userRateLimitExceeded"},
		{http.StatusTooManyRequests, "rateLimitExceeded"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			e := newEnv(t, googlefake.Options{UserRequestsPerMinute: 3, RateLimitStatus: tc.status})
			svc := e.connect(googlefake.DefaultSub)
			for i := range 3 {
				if _, err := svc.Events.List("primary").Do(); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				e.clock.Advance(10 * time.Second)
			}
			_, err := svc.Events.List("primary").Do()
			gerr := apiError(t, err, tc.status, tc.reason)
			if !strings.Contains(gerr.Body, `"domain":"usageLimits"`) {
				t.Errorf("body %s", gerr.Body)
			}
			// The window slides: the first call leaves it after a minute.
			e.clock.Advance(31 * time.Second)
			if _, err := svc.Events.List("primary").Do(); err != nil {
				t.Fatalf("after the window slid: %v", err)
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	svc := e.connect(googlefake.DefaultSub)

	e.fake.FailNext(googlefake.EndpointEventsList, http.StatusServiceUnavailable, "backendError")
	e.fake.FailNext("/calendar/v3/calendars/", http.StatusForbidden, "rateLimitExceeded")
	e.fake.FailNext(googlefake.EndpointEventsList, 0, googlefake.FaultMalformedJSON)
	e.fake.FailNext(googlefake.EndpointToken, http.StatusInternalServerError, "internal_failure")

	_, err := svc.Events.List("primary").Do()
	apiError(t, err, http.StatusServiceUnavailable, "backendError")
	_, err = svc.Events.List("primary").Do()
	apiError(t, err, http.StatusForbidden, "rateLimitExceeded")
	if _, err = svc.Events.List("primary").Do(); err == nil {
		t.Fatal("malformed JSON decoded without error")
	}
	if _, err := svc.Events.List("primary").Do(); err != nil {
		t.Fatalf("faults are one-shot: %v", err)
	}
	// The calendar list never matched; the token fault is still queued.
	if _, err := svc.CalendarList.List().Do(); err != nil {
		t.Fatal(err)
	}
	conf := e.config(e.provider(), oidc.ScopeOpenID)
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams // no second attempt in another style
	_, err = conf.Exchange(e.oauthCtx(), "any")
	assertOAuthError(t, err, http.StatusInternalServerError, "internal_failure")
}

func TestEventKindsSerialisation(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	svc := e.connect(googlefake.DefaultSub)
	sub := googlefake.DefaultSub
	zurich, _ := time.LoadLocation("Europe/Zurich")
	ooo := e.fake.AddEvent(sub, "primary", googlefake.Event{
		Summary: "Holiday", EventType: "outOfOffice", AllDay: true,
		Start: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC),
		DeclineMessage: "Away",
	})
	focus := e.fake.AddEvent(sub, "primary", googlefake.Event{
		Summary: "Deep work", EventType: "focusTime", TimeZone: "Europe/Zurich",
		Start: time.Date(2026, 11, 26, 9, 0, 0, 0, zurich), End: time.Date(2026, 11, 26, 11, 0, 0, 0, zurich),
	})
	free := e.fake.AddEvent(sub, "primary", googlefake.Event{
		Summary: "FYI", Transparency: "transparent", Status: "tentative", OrganizerEmail: "boss@sandbox.invalid",
		Start: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC),
		Attendees: []googlefake.Attendee{
			{Email: "boss@sandbox.invalid", Organizer: true, ResponseStatus: "accepted"},
			{Email: googlefake.DefaultEmail, Self: true, ResponseStatus: "tentative"},
		},
	})

	res, err := svc.Events.List("primary").SingleEvents(true).Do()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*calendar.Event{}
	for _, it := range res.Items {
		byID[it.Id] = it
	}
	o := byID[ooo]
	if o.Start.Date != "2026-12-03" || o.End.Date != "2026-12-05" || o.Start.DateTime != "" ||
		o.EventType != "outOfOffice" || o.OutOfOfficeProperties == nil || o.OutOfOfficeProperties.DeclineMessage != "Away" {
		t.Errorf("out of office %+v start %+v", o, o.Start)
	}
	f := byID[focus]
	if f.Start.DateTime != "2026-11-26T09:00:00+01:00" || f.Start.TimeZone != "Europe/Zurich" ||
		f.EventType != "focusTime" || f.FocusTimeProperties == nil || f.FocusTimeProperties.ChatStatus != "doNotDisturb" {
		t.Errorf("focus time %+v start %+v", f, f.Start)
	}
	fr := byID[free]
	if fr.Transparency != "transparent" || fr.Status != "tentative" || fr.Organizer.Self || fr.Organizer.Email != "boss@sandbox.invalid" ||
		len(fr.Attendees) != 2 || !fr.Attendees[1].Self || fr.Attendees[1].ResponseStatus != "tentative" {
		t.Errorf("free tentative %+v", fr)
	}

	// eventTypes filters; the time window uses the calendar's zone for all-day events.
	res, err = svc.Events.List("primary").EventTypes("focusTime", "outOfOffice").
		TimeMin("2026-12-04T23:00:00Z").Do()
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Items); !slices.Equal(got, []string{ooo}) {
		t.Errorf("filtered items %v, want [%s]", got, ooo)
	}
	_, err = svc.Events.List("primary").EventTypes("meeting").Do()
	apiError(t, err, http.StatusBadRequest, "invalid")
}

func TestCalendarList(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	e.fake.AddAccount("2002", "alan@sandbox.invalid", "Alan Turing")
	if err := e.fake.AddCalendar("2002", "team@group.calendar.sandbox.invalid", "Team"); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.AddCalendar("nobody", "x", "X"); err == nil {
		t.Error("AddCalendar for an unknown account succeeded")
	}
	now := e.clock.Now()
	teamEv := e.fake.AddEvent("2002", "team@group.calendar.sandbox.invalid", googlefake.Event{Start: now, End: now.Add(time.Hour)})
	svc := e.connect("2002")

	var entries []*calendar.CalendarListEntry
	pages := 0
	err := svc.CalendarList.List().MaxResults(1).Pages(e.ctx, func(l *calendar.CalendarList) error {
		entries = append(entries, l.Items...)
		pages++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 2 || len(entries) != 2 {
		t.Fatalf("%d entries in %d pages", len(entries), pages)
	}
	if p := entries[0]; p.Id != "alan@sandbox.invalid" || !p.Primary || p.AccessRole != "owner" || p.Kind != "calendar#calendarListEntry" {
		t.Errorf("primary entry %+v", p)
	}
	if s := entries[1]; s.Id != "team@group.calendar.sandbox.invalid" || s.Primary || s.Summary != "Team" {
		t.Errorf("secondary entry %+v", s)
	}
	res, err := svc.Events.List(entries[1].Id).Do()
	if err != nil || len(res.Items) != 1 || res.Items[0].Id != teamEv || res.Summary != "Team" {
		t.Fatalf("secondary calendar events: %v", err)
	}
	if res, err := svc.Events.List("primary").Do(); err != nil || len(res.Items) != 0 {
		t.Fatalf("primary has events: %v", err)
	}

	// The calendar list syncs incrementally too.
	full, err := svc.CalendarList.List().Do()
	if err != nil || full.NextSyncToken == "" {
		t.Fatalf("calendar list sync token: %v", err)
	}
	if err := e.fake.AddCalendar("2002", "rooms@group.calendar.sandbox.invalid", "Rooms"); err != nil {
		t.Fatal(err)
	}
	inc, err := svc.CalendarList.List().SyncToken(full.NextSyncToken).Do()
	if err != nil || len(inc.Items) != 1 || inc.Items[0].Id != "rooms@group.calendar.sandbox.invalid" {
		t.Fatalf("incremental calendar list: %v", err)
	}
}

func TestWatchAndStop(t *testing.T) {
	rx := newReceiver(t, true)
	e := newEnv(t, googlefake.Options{HTTPClient: rx.srv.Client()})
	svc := e.connect(googlefake.DefaultSub)
	now := e.clock.Now()

	_, err := svc.Events.Watch("primary", &calendar.Channel{Id: "ch-http", Type: "web_hook", Address: "http://app.example.test/webhooks/google"}).Do()
	apiError(t, err, http.StatusBadRequest, "push.webhookUrlNotHttps")

	req := &calendar.Channel{
		Id: "0b7f5a52-1d7c-4c39-9d47-2d3cf4a1b2c3", Type: "web_hook", Address: rx.srv.URL + "/webhooks/google",
		Token: "opaque-token", Params: map[string]string{"ttl": "3600"},
	}
	ch, err := svc.Events.Watch("primary", req).Do()
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kind != "api#channel" || ch.Id != req.Id || ch.ResourceId == "" || ch.Token != "opaque-token" ||
		ch.Expiration != now.Add(time.Hour).UnixMilli() || !strings.HasSuffix(ch.ResourceUri, "/calendar/v3/calendars/primary/events?alt=json") {
		t.Errorf("channel %+v", ch)
	}
	_, err = svc.Events.Watch("primary", req).Do()
	apiError(t, err, http.StatusBadRequest, "channelIdNotUnique")

	got := e.fake.Channels()
	if len(got) != 1 || got[0].ID != req.Id || got[0].CalendarID != googlefake.DefaultEmail || got[0].Account != googlefake.DefaultSub ||
		got[0].Address != req.Address || !got[0].Expiration.Equal(now.Add(time.Hour)) || got[0].Stopped {
		t.Fatalf("Channels() = %+v", got)
	}

	if err := svc.Channels.Stop(&calendar.Channel{Id: ch.Id, ResourceId: ch.ResourceId}).Do(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !e.fake.Channels()[0].Stopped {
		t.Error("channel not marked stopped")
	}
	err = svc.Channels.Stop(&calendar.Channel{Id: ch.Id, ResourceId: ch.ResourceId}).Do()
	apiError(t, err, http.StatusNotFound, "notFound")
}

func TestCallLogAndWaitForCall(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	svc := e.connect(googlefake.DefaultSub)

	done := make(chan error, 1)
	go func() {
		_, err := svc.Events.List("primary").SyncToken("whatever").Do()
		done <- err
	}()
	calls, err := e.fake.WaitForCall(e.ctx, googlefake.EndpointEventsList, 1)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	c := calls[0]
	if c.Account != googlefake.DefaultSub || c.Status != http.StatusGone || c.Query.Get("syncToken") != "REDACTED" ||
		c.Path != "/calendar/v3/calendars/primary/events" || !c.Time.Equal(e.clock.Now()) {
		t.Errorf("call %+v", c)
	}
	for _, c := range e.fake.Calls() {
		for k, vs := range c.Query {
			for _, v := range vs {
				if strings.HasPrefix(v, "4/0") || strings.HasPrefix(v, "ya29.") || strings.HasPrefix(v, "1//") || v == e.fake.ClientSecret() {
					t.Errorf("%s logged a secret in %s", c.Endpoint, k)
				}
			}
		}
	}
	token := e.fake.CallsTo(googlefake.EndpointToken)
	if len(token) != 1 || token[0].Account != googlefake.DefaultSub || token[0].Query.Get("code") != "REDACTED" {
		t.Errorf("token calls %+v", token)
	}

	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := e.fake.WaitForCall(ctx, googlefake.EndpointEventsWatch, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitForCall on a cancelled context: %v", err)
	}
}

func TestSandboxPageAndForm(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	browser := e.noRedirects()
	resp, err := browser.PostForm(e.srv.URL+"/_sandbox/events", url.Values{
		"sub": {googlefake.DefaultSub}, "start_in_minutes": {"5"}, "duration_minutes": {"25"},
		"summary": {`<script>alert(1)</script>`}, "kind": {"focusTime"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != e.srv.URL+"/" {
		t.Fatalf("form post: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	resp, err = browser.Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if !strings.Contains(page, "Sandbox Google") || !strings.Contains(page, googlefake.DefaultEmail) ||
		!strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(page, "<script") {
		t.Fatalf("sandbox page:\n%s", page)
	}

	svc := e.connect(googlefake.DefaultSub)
	res, err := svc.Events.List("primary").Do()
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("events: %v", err)
	}
	ev := res.Items[0]
	start := e.clock.Now().Add(5 * time.Minute)
	if ev.EventType != "focusTime" || ev.Start.DateTime != start.Format(time.RFC3339) ||
		ev.End.DateTime != start.Add(25*time.Minute).Format(time.RFC3339) {
		t.Errorf("sandbox event %+v %+v", ev, ev.Start)
	}

	for _, bad := range []url.Values{
		{"sub": {googlefake.DefaultSub}, "start_in_minutes": {"5"}, "duration_minutes": {"25"}, "kind": {"party"}},
		{"sub": {"nobody"}, "start_in_minutes": {"5"}, "duration_minutes": {"25"}},
		{"sub": {googlefake.DefaultSub}, "start_in_minutes": {"soon"}, "duration_minutes": {"25"}},
	} {
		resp, err := browser.PostForm(e.srv.URL+"/_sandbox/events", bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%v: status %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestDiscoveryDocument(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	resp, err := e.srv.Client().Get(e.srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"issuer":                 e.srv.URL,
		"authorization_endpoint": e.srv.URL + "/o/oauth2/v2/auth",
		"token_endpoint":         e.srv.URL + "/token",
		"jwks_uri":               e.srv.URL + "/oauth2/v3/certs",
		"revocation_endpoint":    e.srv.URL + "/revoke",
		"userinfo_endpoint":      e.srv.URL + "/v1/userinfo",
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %s", k, m[k], want)
		}
	}
	if !slices.Contains(anyStrings(m["code_challenge_methods_supported"]), "S256") {
		t.Errorf("code_challenge_methods_supported = %v", m["code_challenge_methods_supported"])
	}
}

func anyStrings(v any) []string {
	var out []string
	if xs, ok := v.([]any); ok {
		for _, x := range xs {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}
