package google

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

const (
	signInRedirect  = "http://app.test/signin/google/callback"
	connectRedirect = "http://app.test/connect/google/callback"
	sub             = googlefake.DefaultSub
)

// testClock is the fake clock shared by the fake Google and the client.
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
	fake  *googlefake.Server
	srv   *httptest.Server
	c     *Client
	clock *testClock
}

// newEnv serves a fake Google on a real loopback server and returns a client pointed at it.
func newEnv(t *testing.T, opts googlefake.Options) *env {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	opts.ClientID, opts.ClientSecret = "client-123.apps.googleusercontent.com", "secret-456"
	opts.RedirectURIs = []string{signInRedirect, connectRedirect}
	opts.RequirePKCE = true
	opts.Now = clock.Now
	fake := googlefake.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close) // no push delivery outlives the test
	fake.SetBaseURL(srv.URL)
	fake.AddAccount(sub, googlefake.DefaultEmail, googlefake.DefaultName)
	c, err := New(t.Context(), Config{
		ClientID:           fake.ClientID(),
		ClientSecret:       fake.ClientSecret(),
		IssuerURL:          srv.URL,
		APIURL:             srv.URL + "/",
		SignInRedirectURL:  signInRedirect,
		ConnectRedirectURL: connectRedirect,
		HTTPClient:         srv.Client(),
		Now:                clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, srv: srv, c: c, clock: clock}
}

func (e *env) now() time.Time { return e.clock.Now() }

var (
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	formRequest = regexp.MustCompile(`name="request" value="([^"]+)"`)
	formAccount = regexp.MustCompile(`name="account" value="([^"]+)" checked`)
)

// authorize plays the browser: it opens authURL on the fake, submits the consent form for the
// preselected account and returns the code and state of the redirect to our callback.
func (e *env) authorize(t *testing.T, authURL, wantRedirect string) (code, state string) {
	t.Helper()
	fakeHost := e.srv.Listener.Addr().String()
	browser := &http.Client{
		Transport: e.srv.Client().Transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != fakeHost {
				return http.ErrUseLastResponse // our callback: read it, do not call it
			}
			return nil
		},
	}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent page: HTTP %d: %s", resp.StatusCode, page)
	}
	action, req, account := formAction.FindSubmatch(page), formRequest.FindSubmatch(page), formAccount.FindSubmatch(page)
	if action == nil || req == nil || account == nil {
		t.Fatalf("consent page has no complete form:\n%s", page)
	}
	form := url.Values{"request": {string(req[1])}, "account": {string(account[1])}, "action": {"allow"}}
	post, _ := http.NewRequest(http.MethodPost, e.srv.URL+string(action[1]), strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", e.srv.URL)
	resp, err = browser.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("consent: HTTP %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != wantRedirect {
		t.Fatalf("redirected to %s, want %s", got, wantRedirect)
	}
	q := loc.Query()
	if q.Get("error") != "" {
		t.Fatalf("authorization error %q", q.Get("error"))
	}
	return q.Get("code"), q.Get("state")
}

// connect runs the whole calendar connect flow and returns its result.
func (e *env) connect(t *testing.T) Connect {
	t.Helper()
	ctx := t.Context()
	verifier, nonce := oauth2.GenerateVerifier(), "nonce-connect"
	u, err := e.c.ConnectURL(ctx, "state-connect", nonce, verifier)
	if err != nil {
		t.Fatal(err)
	}
	code, state := e.authorize(t, u, connectRedirect)
	if state != "state-connect" {
		t.Fatalf("state %q", state)
	}
	conn, err := e.c.FinishConnect(ctx, code, verifier, nonce, e.now())
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestSignIn(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	ctx := t.Context()
	verifier := oauth2.GenerateVerifier()
	u, err := e.c.SignInURL(ctx, "state-1", "nonce-1", verifier)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	q := pu.Query()
	for k, want := range map[string]string{
		"scope": "openid", "state": "state-1", "nonce": "nonce-1", "response_type": "code",
		"code_challenge_method": "S256", "code_challenge": s256(verifier),
		"redirect_uri": signInRedirect, "client_id": e.fake.ClientID(), "access_type": "",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("sign-in URL %s = %q, want %q", k, got, want)
		}
	}
	code, state := e.authorize(t, u, signInRedirect)
	if state != "state-1" || code == "" {
		t.Fatalf("callback code %q state %q", code, state)
	}
	got, err := e.c.FinishSignIn(ctx, code, verifier, "nonce-1")
	if err != nil {
		t.Fatal(err)
	}
	if got != sub {
		t.Fatalf("subject %q, want %q", got, sub)
	}
	// The code is single-use.
	if _, err := e.c.FinishSignIn(ctx, code, verifier, "nonce-1"); err == nil {
		t.Fatal("a replayed code was accepted")
	}
}

func TestSignInWrongNonce(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	verifier := oauth2.GenerateVerifier()
	u, err := e.c.SignInURL(t.Context(), "s", "nonce-right", verifier)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := e.authorize(t, u, signInRedirect)
	got, err := e.c.FinishSignIn(t.Context(), code, verifier, "nonce-wrong")
	if err == nil || got != "" {
		t.Fatalf("FinishSignIn with a wrong nonce = %q, %v; want an error", got, err)
	}
	if !strings.Contains(err.Error(), "nonce") || !strings.HasPrefix(err.Error(), "google: ") {
		t.Errorf("error %q", err)
	}
}

func TestSignInWrongVerifier(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	u, err := e.c.SignInURL(t.Context(), "s", "n", oauth2.GenerateVerifier())
	if err != nil {
		t.Fatal(err)
	}
	code, _ := e.authorize(t, u, signInRedirect)
	got, err := e.c.FinishSignIn(t.Context(), code, oauth2.GenerateVerifier(), "n")
	if err == nil || got != "" {
		t.Fatalf("FinishSignIn with a wrong verifier = %q, %v; want an error", got, err)
	}
}

func TestSignInRefusesEmptyParams(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	if _, err := e.c.SignInURL(t.Context(), "", "n", oauth2.GenerateVerifier()); err == nil {
		t.Error("empty state accepted")
	}
	if _, err := e.c.ConnectURL(t.Context(), "s", "", oauth2.GenerateVerifier()); err == nil {
		t.Error("empty nonce accepted")
	}
	if _, err := e.c.FinishSignIn(t.Context(), "code", "", "n"); err == nil {
		t.Error("empty verifier accepted")
	}
}

func TestLazyDiscovery(t *testing.T) {
	// Google unreachable: New still succeeds; use fails.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	c, err := New(t.Context(), Config{ClientID: "id", ClientSecret: "secret", IssuerURL: down.URL,
		SignInRedirectURL: signInRedirect, ConnectRedirectURL: connectRedirect})
	if err != nil {
		t.Fatalf("New with an unreachable issuer: %v", err)
	}
	if _, err := c.SignInURL(t.Context(), "s", "n", oauth2.GenerateVerifier()); err == nil {
		t.Fatal("SignInURL succeeded without discovery")
	}

	// A failed discovery is retried on the next call, and a successful one is kept.
	e := newEnv(t, googlefake.Options{})
	if n := len(e.fake.CallsTo(googlefake.EndpointDiscovery)); n != 0 {
		t.Fatalf("New fetched discovery %d times", n)
	}
	e.fake.FailNext(googlefake.EndpointDiscovery, http.StatusServiceUnavailable, "")
	if _, err := e.c.SignInURL(t.Context(), "s", "n", oauth2.GenerateVerifier()); err == nil {
		t.Fatal("SignInURL succeeded while discovery failed")
	}
	for range 3 {
		if _, err := e.c.SignInURL(t.Context(), "s", "n", oauth2.GenerateVerifier()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.fake.CallsTo(googlefake.EndpointDiscovery)); n != 2 {
		t.Fatalf("discovery fetched %d times, want 2 (one failure, one success)", n)
	}
}

func TestConnect(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	verifier := oauth2.GenerateVerifier()
	u, err := e.c.ConnectURL(t.Context(), "st", "nc", verifier)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(u[strings.IndexByte(u, '?')+1:])
	if got := strings.Fields(q.Get("scope")); !slices.Equal(got, []string{ScopeOpenID, ScopeCalendarReadonly}) {
		t.Errorf("scopes %q", got)
	}
	for k, want := range map[string]string{"access_type": "offline", "prompt": "consent", "code_challenge_method": "S256",
		"code_challenge": s256(verifier), "redirect_uri": connectRedirect, "nonce": "nc", "state": "st"} {
		if got := q.Get(k); got != want {
			t.Errorf("connect URL %s = %q, want %q", k, got, want)
		}
	}
	code, _ := e.authorize(t, u, connectRedirect)

	// A wrong nonce is refused here too.
	if _, err := e.c.FinishConnect(t.Context(), code, verifier, "other", e.now()); err == nil {
		t.Fatal("FinishConnect accepted a wrong nonce")
	}

	conn := e.connect(t)
	if conn.Subject != sub {
		t.Errorf("subject %q, want %q", conn.Subject, sub)
	}
	if !slices.Contains(conn.Scopes, ScopeCalendarReadonly) {
		t.Errorf("scopes %q lack calendar.readonly", conn.Scopes)
	}
	cred := conn.Credential
	if cred.AccessToken == "" || cred.RefreshToken == "" {
		t.Fatal("credential lacks an access or refresh token")
	}
	if want := e.now().Add(3599 * time.Second); !cred.Expiry.Equal(want) {
		t.Errorf("expiry %v, want %v", cred.Expiry, want)
	}
}

func TestRefreshKeepsRefreshToken(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	cred.Extra = map[string]string{"k": "v"}
	e.clock.Advance(time.Hour)
	fresh, err := e.c.Refresh(t.Context(), cred, e.now())
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == "" || fresh.AccessToken == cred.AccessToken {
		t.Error("no new access token")
	}
	if fresh.RefreshToken != cred.RefreshToken {
		t.Error("refresh token not kept")
	}
	if want := e.now().Add(3599 * time.Second); !fresh.Expiry.Equal(want) {
		t.Errorf("expiry %v, want %v", fresh.Expiry, want)
	}
	if fresh.Extra["k"] != "v" {
		t.Error("extra lost")
	}
	// The new access token works.
	if _, err := e.c.Sync(t.Context(), fresh, "primary", "", e.now(), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRevokedRefresh(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	e.fake.RevokeTokens(sub)

	_, err := e.c.Refresh(t.Context(), cred, e.now())
	var re *provider.RevokedError
	if !errors.As(err, &re) || re.Reason != "invalid_grant" {
		t.Fatalf("Refresh after revocation: %v, want RevokedError invalid_grant", err)
	}
	if !errors.Is(err, provider.ErrRevoked) || !strings.HasPrefix(err.Error(), "google: refresh: ") {
		t.Errorf("error %q", err)
	}

	// Sync: the access token answers 401, which asks the caller for a refresh (which then
	// fails with invalid_grant, above).
	_, err = e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{})
	if reason, ok := provider.RevokedReason(err); !ok || reason != "token_expired" {
		t.Fatalf("Sync after revocation: %v, want RevokedError token_expired", err)
	}
}

// A 401 with a refresh token asks the caller to refresh (and store the new token): Sync itself
// does not refresh, so the token it would get is never lost.
func TestSync401AsksForARefresh(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "a1", Start: e.now().Add(time.Hour), End: e.now().Add(2 * time.Hour)})
	e.fake.FailNext(googlefake.EndpointEventsList, http.StatusUnauthorized, "")
	refreshes := len(e.fake.CallsTo(googlefake.EndpointToken))
	_, err := e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{})
	if reason, ok := provider.RevokedReason(err); !ok || reason != "token_expired" {
		t.Fatalf("Sync on a 401: %v, want RevokedError token_expired", err)
	}
	if n := len(e.fake.CallsTo(googlefake.EndpointToken)) - refreshes; n != 0 {
		t.Fatalf("%d token calls, want none (the caller refreshes)", n)
	}
	fresh, err := e.c.Refresh(t.Context(), cred, e.now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.c.Sync(t.Context(), fresh, "primary", "", e.now(), SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || res.Events[0].ID != "a1" {
		t.Fatalf("events %+v", res.Events)
	}

	// Without a refresh token a 401 is a plain error, not a revocation.
	e.fake.FailNext(googlefake.EndpointEventsList, http.StatusUnauthorized, "")
	cred.RefreshToken = ""
	_, err = e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{})
	if err == nil {
		t.Fatal("401 without a refresh token succeeded")
	}
	if _, ok := provider.RevokedReason(err); ok {
		t.Errorf("a 401 alone is reported as revoked: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	if err := e.c.Revoke(t.Context(), cred); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.CallsTo(googlefake.EndpointRevoke)); n != 1 {
		t.Fatalf("%d revoke calls", n)
	}
	if _, err := e.c.Refresh(t.Context(), cred, e.now()); !errors.Is(err, provider.ErrRevoked) {
		t.Fatalf("refresh after revoke: %v", err)
	}
	// Already invalid counts as revoked.
	if err := e.c.Revoke(t.Context(), cred); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	// A server error is an error.
	e.fake.FailNext(googlefake.EndpointRevoke, http.StatusInternalServerError, "")
	if err := e.c.Revoke(t.Context(), cred); err == nil {
		t.Fatal("revoke ignored a 500")
	}
}

func ids(evs []presence.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	slices.Sort(out)
	return out
}

func TestSyncFullThenIncremental(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	now := e.now()
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "soon", Summary: "a", Start: now.Add(time.Hour), End: now.Add(90 * time.Minute)})
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "tomorrow", Summary: "b", Start: now.Add(24 * time.Hour), End: now.Add(25 * time.Hour)})
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "yesterday", Summary: "c", Start: now.Add(-20 * time.Hour), End: now.Add(-19 * time.Hour)})
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "lastweek", Summary: "d", Start: now.Add(-7 * 24 * time.Hour), End: now.Add(-7*24*time.Hour + time.Hour)})

	full, err := e.c.Sync(t.Context(), cred, "primary", "", now, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !full.Full || full.NextToken == "" || len(full.Deleted) != 0 {
		t.Fatalf("full sync: Full %v, token %q, deleted %v", full.Full, full.NextToken, full.Deleted)
	}
	if got, want := ids(full.Events), []string{"soon", "tomorrow", "yesterday"}; !slices.Equal(got, want) {
		t.Fatalf("full sync events %v, want %v", got, want)
	}
	soon := full.Events[slices.IndexFunc(full.Events, func(ev presence.Event) bool { return ev.ID == "soon" })]
	if want := (presence.Event{ID: "soon", Type: presence.EventDefault, Start: now.Add(time.Hour), End: now.Add(90 * time.Minute), Busy: presence.BusyBusy}); soon != want {
		t.Errorf("event %+v, want %+v", soon, want)
	}
	calls := e.fake.CallsTo(googlefake.EndpointEventsList)
	q := calls[len(calls)-1].Query
	if q.Get("singleEvents") != "true" || q.Get("timeMin") != now.Add(-24*time.Hour).Format(time.RFC3339) || q.Has("syncToken") {
		t.Errorf("full sync query %v", q)
	}

	// Change the calendar: add, move, delete.
	e.clock.Advance(5 * time.Minute)
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "added", Start: now.Add(3 * time.Hour), End: now.Add(4 * time.Hour)})
	if err := e.fake.UpdateEvent(sub, "primary", "soon", func(ev *googlefake.Event) {
		ev.Start, ev.End = ev.Start.Add(30*time.Minute), ev.End.Add(30*time.Minute)
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.DeleteEvent(sub, "primary", "tomorrow"); err != nil {
		t.Fatal(err)
	}

	inc, err := e.c.Sync(t.Context(), cred, "primary", full.NextToken, e.now(), SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if inc.Full || inc.NextToken == "" {
		t.Fatalf("incremental: Full %v, token %q", inc.Full, inc.NextToken)
	}
	if got, want := ids(inc.Events), []string{"added", "soon"}; !slices.Equal(got, want) {
		t.Fatalf("incremental events %v, want %v", got, want)
	}
	if !slices.Equal(inc.Deleted, []string{"tomorrow"}) {
		t.Fatalf("incremental deleted %v, want [tomorrow]", inc.Deleted)
	}
	for _, ev := range inc.Events {
		if ev.ID == "soon" && !ev.Start.Equal(now.Add(90*time.Minute)) {
			t.Errorf("moved event starts %v", ev.Start)
		}
	}
	calls = e.fake.CallsTo(googlefake.EndpointEventsList)
	q = calls[len(calls)-1].Query
	if q.Get("singleEvents") != "true" || !q.Has("syncToken") || q.Has("timeMin") {
		t.Errorf("incremental query %v", q)
	}

	// Nothing changed: nothing reported.
	again, err := e.c.Sync(t.Context(), cred, "primary", inc.NextToken, e.now(), SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Full || len(again.Events) != 0 || len(again.Deleted) != 0 || again.NextToken == "" {
		t.Fatalf("unchanged calendar: %+v", again)
	}
}

func TestSyncTokenExpired(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	now := e.now()
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "one", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)})
	full, err := e.c.Sync(t.Context(), cred, "primary", "", now, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "two", Start: now.Add(3 * time.Hour), End: now.Add(4 * time.Hour)})
	if err := e.fake.InvalidateSyncTokens(sub); err != nil {
		t.Fatal(err)
	}
	before := len(e.fake.CallsTo(googlefake.EndpointEventsList))
	res, err := e.c.Sync(t.Context(), cred, "primary", full.NextToken, now, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full || res.NextToken == "" || res.NextToken == full.NextToken {
		t.Fatalf("after 410: Full %v, token changed %v", res.Full, res.NextToken != full.NextToken)
	}
	if got := ids(res.Events); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("events %v", got)
	}
	calls := e.fake.CallsTo(googlefake.EndpointEventsList)[before:]
	if len(calls) != 2 || calls[0].Status != http.StatusGone || calls[1].Query.Has("syncToken") {
		t.Fatalf("calls after invalidation: %+v", calls)
	}

	// The same through an injected 410 updatedMinTooLongAgo.
	e.fake.FailNext(googlefake.EndpointEventsList, http.StatusGone, "updatedMinTooLongAgo")
	res, err = e.c.Sync(t.Context(), cred, "primary", res.NextToken, now, SyncOptions{})
	if err != nil || !res.Full || len(res.Events) != 2 {
		t.Fatalf("after 410 updatedMinTooLongAgo: %+v, %v", res, err)
	}
}

func TestSyncPaging(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	now := e.now()
	const n = 300 // more than one page of 250
	for i := range n {
		start := now.Add(time.Duration(i) * 10 * time.Minute)
		e.fake.AddEvent(sub, "primary", googlefake.Event{ID: fmt.Sprintf("ev%03d", i), Start: start, End: start.Add(5 * time.Minute)})
	}
	before := len(e.fake.CallsTo(googlefake.EndpointEventsList))
	res, err := e.c.Sync(t.Context(), cred, "primary", "", now, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != n || res.NextToken == "" {
		t.Fatalf("%d events, token %q; want %d and a token", len(res.Events), res.NextToken, n)
	}
	if got := slices.Compact(ids(res.Events)); len(got) != n {
		t.Fatal("duplicate events across pages")
	}
	calls := e.fake.CallsTo(googlefake.EndpointEventsList)[before:]
	if len(calls) != 2 || calls[0].Query.Has("pageToken") || !calls[1].Query.Has("pageToken") {
		t.Fatalf("want two pages, got %d calls", len(calls))
	}

	// Incremental over many changes pages too.
	for i := range n {
		if err := e.fake.DeleteEvent(sub, "primary", fmt.Sprintf("ev%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	inc, err := e.c.Sync(t.Context(), cred, "primary", res.NextToken, now, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inc.Deleted) != n || len(inc.Events) != 0 || inc.Full {
		t.Fatalf("incremental: %d deleted, %d events, full %v", len(inc.Deleted), len(inc.Events), inc.Full)
	}
}

func TestEventMapping(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	now := e.now()
	at := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	day := func(d int) time.Time { return time.Date(2026, 12, 3+d, 0, 0, 0, 0, time.UTC) }
	me := googlefake.Attendee{Email: googlefake.DefaultEmail, Self: true, ResponseStatus: "accepted"}
	other := googlefake.Attendee{Email: "bob@example.test", ResponseStatus: "accepted"}
	room := googlefake.Attendee{Email: "room-1@resource.calendar.google.com", Resource: true, ResponseStatus: "accepted"}
	with := func(self string, more ...googlefake.Attendee) []googlefake.Attendee {
		m := me
		m.ResponseStatus = self
		return append([]googlefake.Attendee{m}, more...)
	}
	zurich, _ := time.LoadLocation("Europe/Zurich")

	add := []googlefake.Event{
		{ID: "oof", EventType: "outOfOffice", AllDay: true, Start: day(1), End: day(3), AutoDeclineMode: "declineAllConflictingInvitations"},
		{ID: "focus", EventType: "focusTime", Start: at(1), End: at(3)},
		{ID: "declined", Start: at(4), End: at(5), Attendees: with("declined", other), OrganizerEmail: "bob@example.test"},
		{ID: "tentativeans", Start: at(5), End: at(6), Attendees: with("tentative", other), OrganizerEmail: "bob@example.test"},
		{ID: "pending", Start: at(6), End: at(7), Attendees: with("needsAction", other), OrganizerEmail: "bob@example.test"},
		{ID: "tentativestatus", Status: "tentative", Start: at(7), End: at(8)},
		{ID: "transparent", Transparency: "transparent", Start: at(8), End: at(9)},
		{ID: "workloc", EventType: "workingLocation", AllDay: true, Start: day(0), End: day(1)},
		{ID: "roomonly", Start: at(9), End: at(10), Attendees: with("accepted", room)},
		{ID: "alone", Start: at(10), End: at(11)},
		{ID: "zurich", TimeZone: "Europe/Zurich", Start: time.Date(2026, 12, 3, 15, 0, 0, 0, zurich), End: time.Date(2026, 12, 3, 16, 0, 0, 0, zurich)},
		{ID: "allday", AllDay: true, Start: day(2), End: day(3)},
	}
	for _, ev := range add {
		e.fake.AddEvent(sub, "primary", ev)
	}
	res, err := e.c.Sync(t.Context(), cred, "primary", "", now, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	def, busy := presence.EventDefault, presence.BusyBusy
	want := map[string]presence.Event{
		"oof":             {Type: presence.EventOutOfOffice, Start: day(1), End: day(3), AllDay: true, Busy: presence.BusyOutOfOffice},
		"focus":           {Type: presence.EventFocusTime, Start: at(1), End: at(3), Busy: busy},
		"declined":        {Type: def, Start: at(4), End: at(5), Busy: busy, Response: presence.ResponseDeclined, HasOtherAttendees: true},
		"tentativeans":    {Type: def, Start: at(5), End: at(6), Busy: busy, Response: presence.ResponseTentative, HasOtherAttendees: true},
		"pending":         {Type: def, Start: at(6), End: at(7), Busy: busy, Response: presence.ResponsePending, HasOtherAttendees: true},
		"tentativestatus": {Type: def, Start: at(7), End: at(8), Busy: presence.BusyTentative},
		"transparent":     {Type: def, Start: at(8), End: at(9), Busy: presence.BusyFree},
		"roomonly":        {Type: def, Start: at(9), End: at(10), Busy: busy, Response: presence.ResponseAccepted},
		"alone":           {Type: def, Start: at(10), End: at(11), Busy: busy},
		"zurich":          {Type: def, Start: time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC), Busy: busy},
		"allday":          {Type: def, Start: day(2), End: day(3), AllDay: true, Busy: busy},
	}
	if len(res.Events) != len(want) {
		t.Errorf("got %d events %v, want %d (working location skipped)", len(res.Events), ids(res.Events), len(want))
	}
	for _, ev := range res.Events {
		w, ok := want[ev.ID]
		if !ok {
			t.Errorf("unexpected event %q", ev.ID)
			continue
		}
		w.ID = ev.ID
		if ev != w {
			t.Errorf("event %s:\n got %+v\nwant %+v", ev.ID, ev, w)
		}
		if ev.Start.Location() != time.UTC || ev.End.Location() != time.UTC {
			t.Errorf("event %s not in UTC", ev.ID)
		}
	}
}

func TestTitleEmoji(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	now := e.now()
	titles := map[string]string{
		"party":  "🎉 Launch party",
		"plain":  "Weekly sync",
		"family": "👨‍👩‍👧 Family time",
		"flag":   "🇨🇭 Zurich offsite",
		"text":   "© legal review",
	}
	wantOn := map[string]string{"party": "🎉", "plain": "", "family": "👨‍👩‍👧", "flag": "🇨🇭", "text": ""}
	for id, title := range titles {
		e.fake.AddEvent(sub, "primary", googlefake.Event{ID: id, Summary: title, Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)})
	}
	for _, on := range []bool{false, true} {
		res, err := e.c.Sync(t.Context(), cred, "primary", "", now, SyncOptions{TitleEmoji: on})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) != len(titles) {
			t.Fatalf("%d events", len(res.Events))
		}
		for _, ev := range res.Events {
			want := ""
			if on {
				want = wantOn[ev.ID]
			}
			if ev.Emoji != want {
				t.Errorf("TitleEmoji %v: event %s emoji %q, want %q", on, ev.ID, ev.Emoji, want)
			}
		}
		// Titles are not even requested when the rule is off.
		calls := e.fake.CallsTo(googlefake.EndpointEventsList)
		fields := calls[len(calls)-1].Query.Get("fields")
		if strings.Contains(fields, "summary") != on {
			t.Errorf("TitleEmoji %v: fields %q", on, fields)
		}
		if strings.Contains(fields, "description") || strings.Contains(fields, "location") || strings.Contains(fields, "email") {
			t.Errorf("fields %q ask for content we never use", fields)
		}
	}
}

func TestSyncNeverKeepsContent(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	now := e.now()
	secrets := []string{"Merger talks with Initech", "Confidential agenda", "Boardroom 7", "carol@initech.test", "Carol Initech"}
	e.fake.AddEvent(sub, "primary", googlefake.Event{
		ID: "secret", Summary: "🤝 " + secrets[0], Description: secrets[1], Location: secrets[2],
		Start: now.Add(time.Hour), End: now.Add(2 * time.Hour),
		Attendees:      []googlefake.Attendee{{Email: googlefake.DefaultEmail, Self: true}, {Email: secrets[3], DisplayName: secrets[4], Organizer: true}},
		OrganizerEmail: secrets[3],
	})
	for _, on := range []bool{false, true} {
		res, err := e.c.Sync(t.Context(), cred, "primary", "", now, SyncOptions{TitleEmoji: on})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) != 1 {
			t.Fatalf("%d events", len(res.Events))
		}
		js, _ := json.Marshal(res)
		dump := string(js) + fmt.Sprintf("%+v %#v", res, res)
		for _, s := range append(secrets, "Merger", "Initech") {
			if strings.Contains(dump, s) {
				t.Errorf("TitleEmoji %v: the result holds %q: %s", on, s, js)
			}
		}
		if on && res.Events[0].Emoji != "🤝" {
			t.Errorf("emoji %q", res.Events[0].Emoji)
		}
	}
}

func TestSyncRateLimited(t *testing.T) {
	for _, tc := range []struct {
		status int
		reason string
	}{
		{http.StatusForbidden, "userRateLimitExceeded"},
		{http.StatusForbidden, "rateLimitExceeded"},
		{http.StatusTooManyRequests, "rateLimitExceeded"},
	} {
		t.Run(fmt.Sprint(tc.status, tc.reason), func(t *testing.T) {
			e := newEnv(t, googlefake.Options{})
			cred := e.connect(t).Credential
			e.fake.FailNext(googlefake.EndpointEventsList, tc.status, tc.reason)
			_, err := e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{})
			var rl *provider.RateLimitedError
			if !errors.As(err, &rl) {
				t.Fatalf("error %v, want a RateLimitedError", err)
			}
			if rl.RetryAfter != 30*time.Second || rl.Method != "events.list" || !rl.Guessed {
				t.Errorf("got %+v", rl)
			}
			if !strings.HasPrefix(err.Error(), "google: events.list: ") {
				t.Errorf("error %q", err)
			}
		})
	}

	// The fake's own per-user quota, as at Google (403 userRateLimitExceeded).
	e := newEnv(t, googlefake.Options{UserRequestsPerMinute: 2})
	cred := e.connect(t).Credential
	var err error
	for range 3 {
		if _, err = e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{}); err != nil {
			break
		}
	}
	if d, ok := provider.RetryAfter(err); !ok || d != 30*time.Second {
		t.Fatalf("over quota: %v", err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{}); err != nil {
		t.Fatalf("after a minute: %v", err)
	}

	// A 403 that is not a rate limit is a plain error.
	e.fake.FailNext(googlefake.EndpointEventsList, http.StatusForbidden, "forbidden")
	_, err = e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{})
	if _, ok := provider.RetryAfter(err); err == nil || ok {
		t.Fatalf("403 forbidden: %v", err)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v     string
		want  time.Duration
		named bool
	}{
		{"", DefaultRetryAfter, false},
		{"7", 7 * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"soon", DefaultRetryAfter, false},
	} {
		h := http.Header{}
		if tc.v != "" {
			h.Set("Retry-After", tc.v)
		}
		if got, named := retryAfter(h, now); got != tc.want || named != tc.named {
			t.Errorf("Retry-After %q: %v (named %v), want %v (%v)", tc.v, got, named, tc.want, tc.named)
		}
	}
}

func TestSyncServerError(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable} {
		e.fake.FailNext(googlefake.EndpointEventsList, status, "")
		_, err := e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{})
		if err == nil {
			t.Fatalf("HTTP %d: no error", status)
		}
		if _, ok := provider.RetryAfter(err); ok {
			t.Errorf("HTTP %d reported as a rate limit", status)
		}
		if _, ok := provider.RevokedReason(err); ok {
			t.Errorf("HTTP %d reported as revoked", status)
		}
		if !strings.HasPrefix(err.Error(), "google: events.list: ") {
			t.Errorf("error %q", err)
		}
	}
	// A broken body is an error too.
	e.fake.FailNext(googlefake.EndpointEventsList, 0, googlefake.FaultMalformedJSON)
	if _, err := e.c.Sync(t.Context(), cred, "primary", "", e.now(), SyncOptions{}); err == nil {
		t.Fatal("malformed JSON accepted")
	}
}

func TestSyncSecondaryCalendar(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	if err := e.fake.AddCalendar(sub, "team@group.calendar.google.com", "Team"); err != nil {
		t.Fatal(err)
	}
	now := e.now()
	e.fake.AddEvent(sub, "team@group.calendar.google.com", googlefake.Event{ID: "team1", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)})
	e.fake.AddEvent(sub, "primary", googlefake.Event{ID: "mine", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)})
	res, err := e.c.Sync(t.Context(), cred, "team@group.calendar.google.com", "", now, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Events); !slices.Equal(got, []string{"team1"}) {
		t.Fatalf("events %v", got)
	}
	if _, err := e.c.Sync(context.Background(), cred, "nope@group.calendar.google.com", "", now, SyncOptions{}); err == nil {
		t.Fatal("an unknown calendar synced")
	}
}
