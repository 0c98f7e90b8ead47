package web_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

const startAgain = "start again from the home page"

// TestBadCallbacks: a callback that does not match a flow started in this browser, or that
// the provider did not complete, is a 400 page that says what went wrong and how to start
// again, and stores nothing.
func TestBadCallbacks(t *testing.T) {
	t.Parallel()
	type flowKind struct {
		name     string
		start    string // where the flow starts
		callback string
		signedIn bool // sign in first
	}
	kinds := []flowKind{
		{"signin", "/signin/google", "/signin/google/callback", false},
		{"connect slack", "/connect/slack", "/connect/slack/callback", true},
		{"connect google", "/connect/google", "/connect/google/callback", true},
	}
	cases := []struct {
		name  string
		query func(state string) url.Values
		want  []string
	}{
		{"wrong state", func(string) url.Values {
			return url.Values{"state": {"not-the-state"}, "code": {"some-code"}}
		}, []string{"wrong or expired state", "Nothing was stored", "Please start again from the home page"}},
		{"no state", func(string) url.Values {
			return url.Values{"code": {"some-code"}}
		}, []string{"wrong or expired state", "Please start again from the home page"}},
		{"missing code", func(state string) url.Values {
			return url.Values{"state": {state}}
		}, []string{"Missing authorization code", "without an authorization code", "Nothing was stored", "Please start again from the home page"}},
		{"access denied", func(state string) url.Values {
			return url.Values{"state": {state}, "error": {"access_denied"}}
		}, []string{"Not completed", "You cancelled at", "Nothing was changed", startAgain}},
		{"other provider error", func(state string) url.Values {
			return url.Values{"state": {state}, "error": {"server_error<script>"}}
		}, []string{"Not completed", "(server_errorscript)", startAgain}},
	}
	for _, k := range kinds {
		for _, c := range cases {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, envOptions{})
				if k.signedIn {
					e.signIn()
				}
				before := e.snapshot()
				tokenCalls := len(e.google.CallsTo(googlefake.EndpointToken))
				slackCalls := len(e.slack.CallsTo("oauth.v2.access"))
				state := e.startFlow(k.start)
				code, body := e.get(k.callback + "?" + c.query(state).Encode())
				wantPage(t, c.name, code, body, http.StatusBadRequest, c.want...)
				after := e.snapshot()
				sameRecords(t, before, after)
				if !k.signedIn && (after.Users != 0 || after.Identities != 0) {
					t.Errorf("a failed sign-in stored %+v", after)
				}
				if after.Connections != 0 || after.ConnIndex != 0 || after.Activity != 0 {
					t.Errorf("a failed callback stored %+v", after)
				}
				if n := len(e.google.CallsTo(googlefake.EndpointToken)); n != tokenCalls {
					t.Errorf("the bad callback exchanged a code at Google (%d token calls, was %d)", n, tokenCalls)
				}
				if n := len(e.slack.CallsTo("oauth.v2.access")); n != slackCalls {
					t.Errorf("the bad callback exchanged a code at Slack (%d calls, was %d)", n, slackCalls)
				}
				if strings.Contains(body, state) {
					t.Error("the error page shows the state")
				}
			})
		}
	}
}

// TestStateIsSingleUse: a flow's state works once. After a missing-code callback consumed
// it, the real callback with a code fails too.
func TestStateIsSingleUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	state := e.startFlow("/signin/google")
	code, body := e.get("/signin/google/callback?" + url.Values{"state": {state}}.Encode())
	wantPage(t, "first use", code, body, http.StatusBadRequest, "Missing authorization code")
	code, body = e.get("/signin/google/callback?" + url.Values{"state": {state}, "code": {"abc"}}.Encode())
	wantPage(t, "second use", code, body, http.StatusBadRequest, "wrong or expired state")
	if c := e.snapshot(); c.Users != 0 || c.Identities != 0 {
		t.Errorf("stored %+v", c)
	}
}

// TestFlowLimits: a flow expires after 15 minutes, and a session keeps its five newest flows.
func TestFlowLimits(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2025, 3, 5, 10, 0, 0, 0, time.UTC))
	e := newEnv(t, envOptions{clock: clk})
	missing := func(state string) (int, string) {
		return e.get("/signin/google/callback?" + url.Values{"state": {state}}.Encode())
	}

	old := e.startFlow("/signin/google")
	clk.Advance(15*time.Minute + time.Second)
	code, body := missing(old)
	wantPage(t, "a flow of 15 minutes ago", code, body, http.StatusBadRequest, "wrong or expired state")

	var states []string
	for range 6 {
		clk.Advance(time.Second)
		states = append(states, e.startFlow("/signin/google"))
	}
	code, body = missing(states[0])
	wantPage(t, "the oldest of six flows", code, body, http.StatusBadRequest, "wrong or expired state")
	for i, st := range states[1:] {
		code, body = missing(st)
		wantPage(t, fmt.Sprintf("flow %d of six", i+2), code, body, http.StatusBadRequest, "Missing authorization code")
	}
	if c := e.snapshot(); c.Users != 0 || c.Identities != 0 || c.Sessions != 1 {
		t.Errorf("stored %+v", c)
	}
}

// TestFlowOfAnotherKind: a sign-in state does not finish a connection, nor a Slack state a
// Google connection.
func TestFlowOfAnotherKind(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.signIn()
	before := e.snapshot()
	state := e.startFlow("/connect/slack")
	code, body := e.get("/connect/google/callback?" + url.Values{"state": {state}, "code": {"abc"}}.Encode())
	wantPage(t, "slack state at the google callback", code, body, http.StatusBadRequest, "wrong or expired state")
	state = e.startFlow("/signin/google")
	code, body = e.get("/connect/google/callback?" + url.Values{"state": {state}, "code": {"abc"}}.Encode())
	wantPage(t, "sign-in state at the connect callback", code, body, http.StatusBadRequest, "wrong or expired state")
	sameRecords(t, before, e.snapshot())
}

// TestReplayedCallback: following the same callback URL again (state used twice) is refused
// before any code exchange and stores nothing more.
func TestReplayedCallback(t *testing.T) {
	t.Parallel()
	callbackURL := func(t *testing.T, e *env, path string) string {
		t.Helper()
		for _, u := range slices.Backward(e.visited.all()) {
			if u.Path == path {
				return u.String()
			}
		}
		t.Fatalf("no redirect to %s recorded", path)
		return ""
	}
	t.Run("signin", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.signIn()
		cb := callbackURL(t, e, "/signin/google/callback")
		before := e.snapshot()
		tokenCalls := len(e.google.CallsTo(googlefake.EndpointToken))
		code, body := e.get(cb)
		wantPage(t, "replayed sign-in callback", code, body, http.StatusBadRequest, "wrong or expired state", startAgain)
		sameRecords(t, before, e.snapshot())
		if n := len(e.google.CallsTo(googlefake.EndpointToken)); n != tokenCalls {
			t.Errorf("the replay reached Google's token endpoint")
		}
		// The replay from a fresh browser (no session) is refused as well.
		e.jar.SetCookies(mustURL(e.base), []*http.Cookie{{Name: cookieName, Value: "", MaxAge: -1}})
		code, body = e.get(cb)
		wantPage(t, "replayed sign-in callback, no session", code, body, http.StatusBadRequest, "wrong or expired state")
		sameRecords(t, before, e.snapshot())
	})
	for _, p := range []string{"slack", "google"} {
		t.Run("connect "+p, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			uid := e.signIn()
			c := e.connect(uid, p)
			cb := callbackURL(t, e, "/connect/"+p+"/callback")
			before := e.snapshot()
			wakes := len(e.wakes.all())
			code, body := e.get(cb)
			wantPage(t, "replayed connect callback", code, body, http.StatusBadRequest, "wrong or expired state", startAgain)
			sameRecords(t, before, e.snapshot())
			if got := e.connection(uid, p); !bytes.Equal(got.Credential, c.Credential) {
				t.Error("the replay changed the stored credential")
			}
			if n := len(e.wakes.all()); n != wakes {
				t.Errorf("the replay woke the scheduler")
			}
		})
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestUnknownProviders: a provider outside the route contract, or one not configured, is a
// 404 page that says so, signed in or not, and stores nothing.
func TestUnknownProviders(t *testing.T) {
	t.Parallel()
	for _, signedIn := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed in %v", signedIn), func(t *testing.T) {
			e := newEnv(t, envOptions{})
			if signedIn {
				e.signIn()
			}
			before := e.snapshot()
			for _, tc := range []struct {
				path string
				want []string
			}{
				{"/signin/nope", []string{"Unknown sign-in provider", "&#34;nope&#34;", "Back to the home page"}},
				{"/signin/nope/callback?state=x&code=y", []string{"Unknown sign-in provider", "&#34;nope&#34;"}},
				{"/connect/nope", []string{"Unknown provider", "&#34;nope&#34;", "Back to the home page"}},
				{"/connect/nope/callback?state=x&code=y", []string{"Unknown provider", "&#34;nope&#34;"}},
				{"/signin/microsoft", []string{"Sign-in with Microsoft is not available on this server"}},
				{"/signin/microsoft/callback?state=x&code=y", []string{"Unknown sign-in provider"}},
				{"/signin/slack", []string{"Sign-in with Slack is not available on this server"}},
				{"/connect/zoom/callback?state=x&code=y", []string{"Unknown provider"}},
				{"/connect/outlook/callback?state=x&code=y", []string{"Unknown provider"}},
				{"/signin/%3Cb%3Ex%3C%2Fb%3E", []string{"&lt;b&gt;x&lt;/b&gt;"}},
			} {
				code, body := e.get(tc.path)
				wantPage(t, tc.path, code, body, http.StatusNotFound, tc.want...)
				if strings.Contains(body, "<b>x</b>") {
					t.Errorf("%s: the provider name is not escaped", tc.path)
				}
			}
			// Providers the operator has not configured.
			for _, p := range []string{"outlook", "zoom", "teams"} {
				code, body := e.get("/connect/" + p)
				if signedIn {
					wantPage(t, "/connect/"+p, code, body, http.StatusNotFound, "is not available on this server")
				} else {
					wantPage(t, "/connect/"+p, code, body, http.StatusUnauthorized, "Please sign in first")
				}
			}
			sameRecords(t, before, e.snapshot())
		})
	}
}

// TestConnectNeedsSignIn: connecting without being signed in is a 401 that says to sign in,
// and stores nothing.
func TestConnectNeedsSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, p := range []string{"google", "slack"} {
		code, body := e.get("/connect/" + p)
		wantPage(t, "/connect/"+p, code, body, http.StatusUnauthorized, "Please sign in first", "Sign in, then connect")
		code, body = e.get("/connect/" + p + "/callback?state=x&code=y")
		wantPage(t, "/connect/"+p+"/callback", code, body, http.StatusBadRequest, "wrong or expired state")
	}
	resp, body := e.postForm("/connections/c_whatever/disconnect", nil)
	wantPage(t, "disconnect", resp.StatusCode, body, http.StatusUnauthorized, "Please sign in first")
	if c := e.snapshot(); c != (counts{}) {
		t.Errorf("stored %+v", c)
	}
	if len(e.google.Calls()) != 0 || len(e.slack.Calls()) != 0 {
		t.Error("a signed-out connect reached a provider")
	}
}

// TestDisconnectNotYours: a connection of another person is "not found": nothing revoked,
// nothing deleted.
func TestDisconnectNotYours(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	uid := e.signIn()
	mine := e.connect(uid, "slack")

	// Another person, with a connection holding a live Slack token of U0002.
	now := e.clock.Now()
	other := store.User{ID: "u_other", Created: now, Rules: presence.DefaultRules()}
	if err := e.st.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	tok := e.slack.IssueUserToken("U0002", "users.profile:read")
	cred := provider.Credential{AccessToken: tok}
	pt, _ := cred.Marshal()
	theirs := store.Connection{ID: "c_theirs", UserID: other.ID, Provider: "slack", ExternalID: "U0002", TeamID: slackTeam, Health: store.HealthOK, Created: now, Updated: now}
	var err error
	if theirs.Credential, err = e.vault.Seal(pt, theirs.UserID, theirs.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutConnection(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()
	revokes := len(e.slack.CallsTo("auth.revoke"))

	for _, id := range []string{theirs.ID, "c_nonexistent", mine.ID + "x"} {
		resp, body := e.postForm("/connections/"+id+"/disconnect", nil)
		wantPage(t, "disconnect "+id, resp.StatusCode, body, http.StatusNotFound, "No such connection")
	}
	sameRecords(t, before, e.snapshot())
	if _, err := e.st.GetConnection(ctx, other.ID, theirs.ID); err != nil {
		t.Errorf("their connection: %v", err)
	}
	if n := len(e.slack.CallsTo("auth.revoke")); n != revokes {
		t.Error("a refused disconnect revoked a token")
	}
	if _, err := e.sc.Status(ctx, cred); err != nil {
		t.Errorf("their token stopped working: %v", err)
	}
	if _, err := e.sc.Status(ctx, e.credential(mine)); err != nil {
		t.Errorf("my token stopped working: %v", err)
	}
}

// TestHappyPath: sign in, connect Slack and Google, disconnect both, sign out.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()

	code, body := e.get("/")
	wantPage(t, "landing", code, body, http.StatusOK, `href="/signin/google"`)

	uid := e.signIn()
	if _, err := e.st.GetUser(ctx, uid); err != nil {
		t.Fatalf("user: %v", err)
	}
	ids, err := e.st.ListIdentities(ctx, uid)
	if err != nil || len(ids) != 1 || ids[0].Provider != "google" || ids[0].Subject != googlefake.DefaultSub {
		t.Fatalf("identities = %+v, %v", ids, err)
	}
	if c := e.snapshot(); c.Users != 1 || c.Identities != 1 || c.Connections != 0 || c.Sessions != 1 {
		t.Errorf("after sign-in the store holds %+v, want one user, identity and session", c)
	}

	// Signing in again finds the same person.
	if again := e.signIn(); again != uid {
		t.Errorf("second sign-in: user %s, want %s", again, uid)
	}
	if c := e.snapshot(); c.Users != 1 || c.Identities != 1 {
		t.Errorf("a second sign-in made records: %+v", c)
	}

	// Connect Slack.
	sl := e.connect(uid, "slack")
	if sl.ExternalID != slackUser || sl.TeamID != slackTeam || sl.Health != store.HealthOK || sl.UserID != uid {
		t.Errorf("slack connection = %+v", sl)
	}
	if !slices.Contains(sl.Scopes, "users.profile:write") {
		t.Errorf("slack scopes = %v", sl.Scopes)
	}
	slCred := e.credential(sl)
	if slCred.AccessToken == "" || slCred.RefreshToken == "" {
		t.Fatalf("slack credential without tokens")
	}
	for _, tok := range []string{slCred.AccessToken, slCred.RefreshToken} {
		if bytes.Contains(sl.Credential, []byte(tok)) {
			t.Error("the sealed blob holds the token in clear")
		}
	}
	if _, err := e.vault.Open(sl.Credential, uid, "c_other"); err == nil {
		t.Error("the blob opens under another connection ID")
	}
	if _, err := e.vault.Open(sl.Credential, "u_other", sl.ID); err == nil {
		t.Error("the blob opens under another user ID")
	}
	if _, err := e.sc.Status(ctx, slCred); err != nil {
		t.Errorf("the stored slack token does not work: %v", err)
	}
	if w := e.wakes.all(); len(w) != 1 || w[0] != uid {
		t.Errorf("wakes after connecting slack = %v, want [%s]", w, uid)
	}

	// Connect Google.
	gc := e.connect(uid, "google")
	if gc.ExternalID != googlefake.DefaultSub || gc.Health != store.HealthOK || !slices.Equal(gc.Resources, []string{"primary"}) {
		t.Errorf("google connection = %+v", gc)
	}
	gCred := e.credential(gc)
	if gCred.AccessToken == "" || !e.googleTokenWorks(gCred.AccessToken) {
		t.Fatalf("the stored google token does not work")
	}
	if bytes.Contains(gc.Credential, []byte(gCred.AccessToken)) {
		t.Error("the sealed google blob holds the token in clear")
	}
	if w := e.wakes.all(); len(w) != 2 || w[1] != uid {
		t.Errorf("wakes after connecting google = %v", w)
	}
	code, body = e.get("/")
	wantPage(t, "dashboard", code, body, http.StatusOK, "conn-slack", "conn-google", slackUser, googlefake.DefaultSub,
		"/connections/"+sl.ID+"/disconnect", "/connections/"+gc.ID+"/disconnect")

	// What the scheduler would have stored for the Google connection.
	now := e.clock.Now()
	if err := e.st.PutSyncState(ctx, store.SyncState{ConnectionID: gc.ID, Resource: "primary", Token: "sync-1", Synced: now}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutEvents(ctx, uid, []presence.Event{
		{Source: gc.ID + "/primary", ID: "e1", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)},
		{Source: gc.ID + "/secondary", ID: "e2", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	// A resource whose events were stored but whose sync state was not (yet).
	gc.Resources = []string{"primary", "secondary"}
	if err := e.st.PutConnection(ctx, gc); err != nil {
		t.Fatal(err)
	}

	// Disconnect Google: revoked at Google, deleted with its sync state and events.
	resp, body := e.postForm("/connections/"+gc.ID+"/disconnect", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("disconnect google: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if e.googleTokenWorks(gCred.AccessToken) {
		t.Error("the google token still works after disconnect")
	}
	if _, err := e.st.GetConnection(ctx, uid, gc.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("google connection after disconnect: %v", err)
	}
	if ss, err := e.st.ListSyncStates(ctx, gc.ID); err != nil || len(ss) != 0 {
		t.Errorf("sync states after disconnect = %+v, %v", ss, err)
	}
	if evs, err := e.st.ListEvents(ctx, uid, now.Add(-time.Hour), now.Add(24*time.Hour)); err != nil || len(evs) != 0 {
		t.Errorf("events after disconnect = %+v, %v", evs, err)
	}
	if w := e.wakes.all(); len(w) != 3 {
		t.Errorf("wakes after disconnect = %v", w)
	}

	// Disconnect Slack: revoked at Slack.
	resp, body = e.postForm("/connections/"+sl.ID+"/disconnect", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect slack: %d\n%s", resp.StatusCode, body)
	}
	if _, err := e.sc.Status(ctx, slCred); !errors.Is(err, provider.ErrRevoked) {
		t.Errorf("the slack token after disconnect: %v, want revoked", err)
	}
	if c := e.snapshot(); c.Connections != 0 || c.ConnIndex != 0 || c.SyncStates != 0 || c.Events != 0 {
		t.Errorf("after both disconnects the store holds %+v", c)
	}
	acts, err := e.st.ListActivity(ctx, uid, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acts {
		got = append(got, a.Target+" "+a.Outcome)
	}
	if want := []string{"slack disconnected", "google disconnected", "google connected", "slack connected"}; !slices.Equal(got, want) {
		t.Errorf("activity = %q, want %q", got, want)
	}
	code, body = e.get("/")
	wantPage(t, "dashboard after disconnects", code, body, http.StatusOK, "Nothing connected yet.", "disconnected")

	// Sign out: the session goes server-side and the cookie is cleared.
	cookie := e.cookie()
	if cookie == "" {
		t.Fatal("no session cookie before sign-out")
	}
	resp, body = e.postForm("/signout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign out: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	sc := setCookie(t, resp)
	if sc.Value != "" || sc.MaxAge >= 0 || sc.Path != "/" || !sc.HttpOnly {
		t.Errorf("sign-out cookie = %+v (%q), want an expired, empty cookie", sc, resp.Header.Get("Set-Cookie"))
	}
	if _, err := e.st.GetSession(ctx, sessionKey(cookie)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after sign-out: %v", err)
	}
	if v := e.cookie(); v != "" {
		t.Errorf("the browser still holds a session cookie %q", v)
	}
	code, body = e.get("/")
	wantPage(t, "after sign-out", code, body, http.StatusOK, `href="/signin/google"`)
	if strings.Contains(body, "Your dashboard") {
		t.Error("the dashboard shows after sign-out")
	}
	// The old cookie, replayed, is signed out too.
	hdr := http.Header{"Cookie": {cookieName + "=" + cookie}}
	r2, body := e.do(http.DefaultClient, http.MethodGet, "/", nil, hdr)
	if r2.StatusCode != http.StatusOK || strings.Contains(body, "Your dashboard") {
		t.Errorf("the old cookie still opens the dashboard")
	}

	// Nothing secret in the file or the log.
	raw, logs := e.rawFile(), e.logs.String()
	for what, s := range map[string]string{
		"slack access token":   slCred.AccessToken,
		"slack refresh token":  slCred.RefreshToken,
		"google access token":  gCred.AccessToken,
		"google refresh token": gCred.RefreshToken,
		"session cookie":       cookie,
		"google e-mail":        googlefake.DefaultEmail,
		"google client secret": e.google.ClientSecret(),
		"slack client secret":  e.slack.ClientSecret(),
	} {
		if s == "" {
			continue
		}
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the bolt file holds the %s", what)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the %s", what)
		}
	}
}

// setCookie returns the session cookie a response sets.
func setCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			if found != nil {
				t.Errorf("two %s cookies set", cookieName)
			}
			found = c
		}
	}
	if found == nil {
		t.Fatalf("no %s cookie set; Set-Cookie: %q", cookieName, resp.Header.Values("Set-Cookie"))
	}
	return found
}

// TestSessionCookie: HttpOnly, SameSite=Lax, Path=/, Secure only when Deps.Secure.
func TestSessionCookie(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure %v", secure), func(t *testing.T) {
			e := newEnv(t, envOptions{secure: secure})
			resp, _ := e.do(e.noRedirect(), http.MethodGet, "/signin/google", nil, nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("GET /signin/google: %d", resp.StatusCode)
			}
			c := setCookie(t, resp)
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != secure || c.Domain != "" {
				t.Errorf("cookie %q: HttpOnly %v, SameSite %v, Path %q, Secure %v, Domain %q", resp.Header.Get("Set-Cookie"), c.HttpOnly, c.SameSite, c.Path, c.Secure, c.Domain)
			}
			if c.MaxAge <= 0 || len(c.Value) < 32 {
				t.Errorf("cookie MaxAge %d, value of %d characters", c.MaxAge, len(c.Value))
			}
			if !secure {
				// Follow through to the callback: the signed-in cookie has the same attributes.
				loc := resp.Header.Get("Location")
				resp, _ = e.do(e.noRedirect(), http.MethodGet, loc, nil, nil) // the fake approves
				cb := resp.Header.Get("Location")
				resp, _ = e.do(e.noRedirect(), http.MethodGet, cb, nil, nil)
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("callback: %d", resp.StatusCode)
				}
				c := setCookie(t, resp)
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
					t.Errorf("signed-in cookie %q", resp.Header.Get("Set-Cookie"))
				}
			}
		})
	}
}

// TestSessionStorage: the store keeps the SHA-256 of the cookie, never the cookie; the
// session ID changes at sign-in (no fixation), and a planted cookie is not adopted.
func TestSessionStorage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()

	// An attacker's planted cookie value is not adopted as a session.
	planted := "planted-by-an-attacker-0123456789abcdef"
	e.jar.SetCookies(mustURL(e.base), []*http.Cookie{{Name: cookieName, Value: planted, Path: "/"}})

	resp, _ := e.do(e.noRedirect(), http.MethodGet, "/signin/google", nil, nil)
	pre := e.cookie()
	if pre == "" || pre == planted {
		t.Fatalf("cookie before sign-in = %q", pre)
	}
	sess, err := e.st.GetSession(ctx, sessionKey(pre))
	if err != nil || sess.UserID != "" {
		t.Fatalf("pre-sign-in session = %+v, %v", sess, err)
	}
	if _, err := e.st.GetSession(ctx, pre); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a session is stored under the cookie value itself: %v", err)
	}
	if _, err := e.st.GetSession(ctx, sessionKey(planted)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the planted cookie has a session: %v", err)
	}

	code, body := e.get(resp.Header.Get("Location"))
	wantPage(t, "sign in", code, body, http.StatusOK, "Your dashboard")
	post := e.cookie()
	if post == "" || post == pre {
		t.Fatalf("the session cookie did not change at sign-in (%q → %q)", pre, post)
	}
	sess, err = e.st.GetSession(ctx, sessionKey(post))
	if err != nil || sess.UserID == "" || sess.ID != sessionKey(post) {
		t.Fatalf("signed-in session = %+v, %v", sess, err)
	}
	if _, err := e.st.GetSession(ctx, sessionKey(pre)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the pre-sign-in session survived sign-in: %v", err)
	}
	if !sess.Expires.After(e.clock.Now().Add(24 * time.Hour)) {
		t.Errorf("session expires %v", sess.Expires)
	}

	// The pre-sign-in cookie does not open the dashboard.
	r2, body := e.do(http.DefaultClient, http.MethodGet, "/", nil, http.Header{"Cookie": {cookieName + "=" + pre}})
	if r2.StatusCode != http.StatusOK || strings.Contains(body, "Your dashboard") {
		t.Error("the pre-sign-in cookie opens the dashboard")
	}

	raw := e.rawFile()
	for _, v := range []string{pre, post} {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("the bolt file holds a cookie value")
		}
	}
	if !bytes.Contains(raw, []byte(sessionKey(post))) {
		t.Error("the bolt file does not hold the cookie's SHA-256 (is the session stored at all?)")
	}
}

// TestCrossOriginPostsRefused: state-changing POSTs from another origin are 403 and change
// nothing; the same POSTs from the same origin work.
func TestCrossOriginPostsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	uid := e.signIn()
	c := e.connect(uid, "slack")
	cookie := e.cookie()
	before := e.snapshot()

	for _, hdr := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}},
		{"Origin": {"http://evil.example"}},
		{"Origin": {"https://evil.example"}, "Referer": {e.base + "/"}},
	} {
		for _, path := range []string{"/signout", "/connections/" + c.ID + "/disconnect"} {
			hdr := hdr.Clone()
			hdr.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body := e.do(e.noRedirect(), http.MethodPost, path, strings.NewReader(""), hdr)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with %v: %d, want 403\n%s", path, hdr, resp.StatusCode, body)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("POST %s with %v set a cookie", path, hdr)
			}
		}
	}
	sameRecords(t, before, e.snapshot())
	if _, err := e.st.GetSession(ctx, sessionKey(cookie)); err != nil {
		t.Errorf("the session after refused sign-outs: %v", err)
	}
	if e.cookie() != cookie {
		t.Error("the cookie changed")
	}
	if _, err := e.sc.Status(ctx, e.credential(c)); err != nil {
		t.Errorf("a refused disconnect revoked the token: %v", err)
	}
	code, body := e.get("/")
	wantPage(t, "dashboard after refused posts", code, body, http.StatusOK, "Your dashboard", "conn-slack")

	// Same origin, with the browser's headers: it works.
	resp, body := e.do(e.noRedirect(), http.MethodPost, "/connections/"+c.ID+"/disconnect", nil,
		http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {e.base}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin disconnect: %d\n%s", resp.StatusCode, body)
	}
	resp, body = e.do(e.noRedirect(), http.MethodPost, "/signout", nil, http.Header{"Origin": {e.base}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin sign-out: %d\n%s", resp.StatusCode, body)
	}
	if _, err := e.st.GetSession(ctx, sessionKey(cookie)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session after sign-out: %v", err)
	}
}

// TestSecurityHeaders: every response carries the security headers, HSTS only when Secure.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure %v", secure), func(t *testing.T) {
			e := newEnv(t, envOptions{secure: secure})
			reqs := []struct {
				method, path string
				hdr          http.Header
				body         io.Reader
				status       int
			}{
				{"GET", "/", nil, nil, 200},
				{"GET", "/healthz", nil, nil, 200},
				{"GET", "/readyz", nil, nil, 200},
				{"GET", "/static/style.css", nil, nil, 200},
				{"GET", "/no/such/page", nil, nil, 404},
				{"GET", "/signin/nope", nil, nil, 404},
				{"GET", "/signin/google", nil, nil, 302},
				{"GET", "/signin/google/callback?state=x&code=y", nil, nil, 400},
				{"GET", "/connect/google", nil, nil, 401},
				{"POST", "/signout", nil, nil, 303},
				{"POST", "/signout", http.Header{"Sec-Fetch-Site": {"cross-site"}}, nil, 403},
				{"POST", "/signout", nil, bytes.NewReader(make([]byte, 65<<10)), 413},
				{"DELETE", "/", nil, nil, 405},
			}
			for _, r := range reqs {
				resp, body := e.do(e.noRedirect(), r.method, r.path, r.body, r.hdr)
				what := r.method + " " + r.path
				if resp.StatusCode != r.status {
					t.Errorf("%s: %d, want %d\n%s", what, resp.StatusCode, r.status, body)
				}
				h := resp.Header
				csp := h.Get("Content-Security-Policy")
				for _, d := range []string{"script-src 'none'", "frame-ancestors 'none'", "default-src 'self'", "base-uri 'none'", "form-action 'self'"} {
					if !strings.Contains(csp, d) {
						t.Errorf("%s: CSP %q lacks %s", what, csp, d)
					}
				}
				if h.Get("X-Frame-Options") != "DENY" {
					t.Errorf("%s: X-Frame-Options %q", what, h.Get("X-Frame-Options"))
				}
				if h.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s: X-Content-Type-Options %q", what, h.Get("X-Content-Type-Options"))
				}
				if rp := h.Get("Referrer-Policy"); rp != "same-origin" && rp != "no-referrer" && rp != "strict-origin-when-cross-origin" {
					t.Errorf("%s: Referrer-Policy %q", what, rp)
				}
				hsts := h.Get("Strict-Transport-Security")
				if secure && !strings.Contains(hsts, "max-age=") {
					t.Errorf("%s: no HSTS with Secure: %q", what, hsts)
				}
				if !secure && hsts != "" {
					t.Errorf("%s: HSTS %q without Secure", what, hsts)
				}
			}
		})
	}
}

// TestHealth: /healthz always answers; /readyz follows the store's Ping.
func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{pingStore: true})
	code, body := e.get("/healthz")
	wantPage(t, "/healthz", code, body, http.StatusOK, "ok")
	code, body = e.get("/readyz")
	wantPage(t, "/readyz", code, body, http.StatusOK, "ready")

	e.ping.setFail(true)
	code, body = e.get("/readyz")
	wantPage(t, "/readyz with the store down", code, body, http.StatusServiceUnavailable, "store unreachable")
	if strings.Contains(body, "store is down") {
		t.Error("/readyz shows the store's error")
	}
	code, body = e.get("/healthz")
	wantPage(t, "/healthz with the store down", code, body, http.StatusOK, "ok")

	e.ping.setFail(false)
	code, _ = e.get("/readyz")
	if code != http.StatusOK {
		t.Errorf("/readyz after the store came back: %d", code)
	}
}

// TestBodyLimit: a body over 64 KiB is refused with 413, with or without a Content-Length.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: true})
	uid := e.signIn()
	e.connect(uid, "google")
	cookie := e.cookie()
	big := strings.Repeat("a", 64<<10+1)

	resp, body := e.postForm("/signout", url.Values{"x": {big}})
	wantPage(t, "sign-out with a big body", resp.StatusCode, body, http.StatusRequestEntityTooLarge)
	if _, err := e.st.GetSession(t.Context(), sessionKey(cookie)); err != nil {
		t.Errorf("a refused sign-out ended the session: %v", err)
	}

	form := url.Values{"start_in_minutes": {"1"}, "duration_minutes": {"2"}, "kind": {"default"}, "pad": {big}}
	resp, body = e.postForm("/sandbox/events", form)
	wantPage(t, "sandbox form with a big body", resp.StatusCode, body, http.StatusRequestEntityTooLarge)

	// Without a Content-Length (chunked), the limit holds when the handler reads.
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"same-origin"}}
	chunked := io.MultiReader(strings.NewReader(form.Encode()), strings.NewReader("")) // unknown length
	resp, body = e.do(e.noRedirect(), http.MethodPost, "/sandbox/events", chunked, hdr)
	wantPage(t, "chunked sandbox form with a big body", resp.StatusCode, body, http.StatusRequestEntityTooLarge)
	if n := len(e.sandbox.all()); n != 0 {
		t.Errorf("a refused form added %d events", n)
	}

	// A body within the limit is fine.
	resp, body = e.postForm("/sandbox/events", url.Values{"start_in_minutes": {"1"}, "duration_minutes": {"2"}, "kind": {"default"}, "pad": {strings.Repeat("a", 60<<10)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a 60 KiB form: %d\n%s", resp.StatusCode, body)
	}
}

// TestDashboard: connections with their health, the state now and the next transitions
// computed from stored events, and the activity log; no event content.
func TestDashboard(t *testing.T) {
	t.Parallel()
	// Wednesday 5 March 2025, 10:00 UTC.
	now := time.Date(2025, 3, 5, 10, 0, 0, 0, time.UTC)
	clk := clock.NewFake(now)
	e := newEnv(t, envOptions{clock: clk})
	ctx := t.Context()
	uid := e.signIn()
	sl := e.connect(uid, "slack")
	gc := e.connect(uid, "google")

	sl.Health, sl.HealthReason = store.HealthBroken, "token_revoked"
	if err := e.st.PutConnection(ctx, sl); err != nil {
		t.Fatal(err)
	}
	src := gc.ID + "/primary"
	at := func(h, m int) time.Time { return time.Date(2025, 3, 5, h, m, 0, 0, time.UTC) }
	events := []presence.Event{
		{Source: src, ID: "evt-now-7f3a", Start: at(9, 30), End: at(10, 15), HasOtherAttendees: true},
		{Source: src, ID: "evt-later-9c1b", Start: at(10, 30), End: at(11, 0)},
		{Source: src, ID: "evt-focus-2d4e", Type: presence.EventFocusTime, Start: at(14, 0), End: at(15, 0)},
		{Source: src, ID: "evt-declined-5a6b", Start: at(16, 0), End: at(17, 0), Response: presence.ResponseDeclined},
		{Source: src, ID: "evt-tomorrow-8e9f", Start: at(9, 0).Add(24 * time.Hour), End: at(10, 0).Add(24 * time.Hour)},
	}
	if err := e.st.PutEvents(ctx, uid, events); err != nil {
		t.Fatal(err)
	}
	acts := []store.Activity{
		{At: at(9, 30), Kind: "meeting", Target: "slack:status", Outcome: "set", Reason: "calendar"},
		{At: at(9, 31), Kind: "meeting", Target: "slack:dnd", Outcome: "error", Reason: "rate_limited"},
	}
	for _, a := range acts {
		if err := e.st.AppendActivity(ctx, uid, a); err != nil {
			t.Fatal(err)
		}
	}

	code, body := e.get("/")
	wantPage(t, "dashboard", code, body, http.StatusOK, "Your dashboard")
	section := func(id string) string {
		i := strings.Index(body, `id="`+id+`"`)
		if i < 0 {
			t.Fatalf("no section %s\n%s", id, body)
		}
		rest := body[i:]
		if j := strings.Index(rest, "</section>"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	row := func(s, marker string) string {
		i := strings.Index(s, marker)
		if i < 0 {
			t.Fatalf("no row %s in\n%s", marker, s)
		}
		rest := s[i:]
		if j := strings.Index(rest, "</tr>"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}

	// Connections and their health.
	conns := section("conns")
	slRow, gRow := row(conns, "conn-slack"), row(conns, "conn-google")
	for _, w := range []string{"Broken: reconnect needed", `href="/connect/slack"`, slackUser, "/connections/" + sl.ID + "/disconnect"} {
		if !strings.Contains(slRow, w) {
			t.Errorf("the broken slack row lacks %q:\n%s", w, slRow)
		}
	}
	if strings.Contains(gRow, "Broken") || !strings.Contains(gRow, "Connected") || !strings.Contains(gRow, googlefake.DefaultSub) {
		t.Errorf("the google row:\n%s", gRow)
	}

	// The state now and the next transitions of today.
	nowSec := section("now")
	wantNow := `<p class="state">In a meeting until 10:15, from calendar (Slack: :spiral_calendar_pad: In a meeting)</p>`
	if !strings.Contains(nowSec, wantNow) {
		t.Errorf("right now: want %s in\n%s", wantNow, nowSec)
	}
	var next []string
	for _, li := range strings.Split(nowSec, "<li>")[1:] {
		next = append(next, stripTags(strings.Split(li, "</li>")[0]))
	}
	wantNext := []string{
		"10:15 Nothing set: your own status shows",
		"10:30 In a meeting until 11:00, from calendar (Slack: :spiral_calendar_pad: In a meeting)",
		"11:00 Nothing set: your own status shows",
		"14:00 Focus until 15:00, from calendar (Slack: :headphones: Focusing)",
		"15:00 Nothing set: your own status shows",
	}
	if !slices.Equal(next, wantNext) {
		t.Errorf("next today:\n got %q\nwant %q", next, wantNext)
	}
	if !strings.Contains(nowSec, `datetime="2025-03-05T10:30:00Z"`) {
		t.Errorf("the transitions lack machine-readable times:\n%s", nowSec)
	}

	// No event content or identifiers, no e-mail address or name.
	for _, ev := range events {
		if strings.Contains(body, ev.ID) {
			t.Errorf("the dashboard shows the event ID %s", ev.ID)
		}
	}
	for _, s := range []string{src, googlefake.DefaultEmail, googlefake.DefaultName, "Sandbox event"} {
		if strings.Contains(body, s) {
			t.Errorf("the dashboard shows %q", s)
		}
	}

	// The activity log, newest first.
	act := section("act")
	rows := strings.Split(act, "<tr>")[2:] // after the header row
	var gotRows []string
	for _, r := range rows {
		gotRows = append(gotRows, stripTags(strings.Split(r, "</tr>")[0]))
	}
	wantRows := []string{
		"Mar 5 09:31:00 meeting slack:dnd error rate_limited",
		"Mar 5 09:30:00 meeting slack:status set calendar",
		"Mar 5 10:00:00 connection google connected",
		"Mar 5 10:00:00 connection slack connected",
	}
	if !slices.Equal(gotRows, wantRows) {
		t.Errorf("activity rows:\n got %q\nwant %q", gotRows, wantRows)
	}

	// Reconnecting the broken connection makes it healthy again, in place.
	code, body = e.get("/connect/slack")
	wantPage(t, "reconnect", code, body, http.StatusOK, "conn-slack")
	if strings.Contains(body, "Broken: reconnect needed") {
		t.Error("still broken after reconnecting")
	}
	re := e.connection(uid, "slack")
	if re.ID != sl.ID || re.Health != store.HealthOK || bytes.Equal(re.Credential, sl.Credential) {
		t.Errorf("after reconnecting: ID %s (was %s), health %s, credential replaced %v", re.ID, sl.ID, re.Health, !bytes.Equal(re.Credential, sl.Credential))
	}
	e.credential(re)
}

// stripTags removes HTML tags and collapses white space.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			b.WriteRune(' ')
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// TestSandboxForm: the sandbox form adds an event to the fake calendar of the Google
// connection, resets its sync state and wakes the scheduler; bad values are a 400; outside
// sandbox mode the route does not exist.
func TestSandboxForm(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 5, 10, 0, 0, 500_000_000, time.UTC)
	clk := clock.NewFake(now)
	e := newEnv(t, envOptions{sandbox: true, clock: clk})
	ctx := t.Context()
	uid := e.signIn()

	valid := url.Values{"start_in_minutes": {"5"}, "duration_minutes": {"30"}, "kind": {"focusTime"}}
	resp, body := e.postForm("/sandbox/events", valid)
	wantPage(t, "sandbox form before connecting google", resp.StatusCode, body, http.StatusBadRequest, "Connect Google Calendar first")

	code, body := e.get("/")
	if strings.Contains(body, `action="/sandbox/events"`) {
		t.Error("the sandbox form shows before Google is connected")
	}
	gc := e.connect(uid, "google")
	code, body = e.get("/")
	wantPage(t, "sandbox dashboard", code, body, http.StatusOK, `action="/sandbox/events"`, "Sandbox")

	if err := e.st.PutSyncState(ctx, store.SyncState{ConnectionID: gc.ID, Resource: "primary", Token: "sync-1", Synced: now}); err != nil {
		t.Fatal(err)
	}
	wakes := len(e.wakes.all())
	resp, body = e.postForm("/sandbox/events", valid)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sandbox form: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	calls := e.sandbox.all()
	want := sandboxCall{Sub: googlefake.DefaultSub, Start: time.Date(2025, 3, 5, 10, 5, 0, 0, time.UTC), D: 30 * time.Minute, Kind: "focusTime"}
	if len(calls) != 1 || calls[0].Sub != want.Sub || !calls[0].Start.Equal(want.Start) || calls[0].D != want.D || calls[0].Kind != want.Kind {
		t.Errorf("SandboxEvents calls = %+v, want [%+v]", calls, want)
	}
	// A sync is requested, as the scheduler reads it: the resource's sync state was reset, or
	// the connection asks for a sync at or after the last one.
	ss, err := e.st.GetSyncState(ctx, gc.ID, "primary")
	if err != nil || ss.Token != "sync-1" {
		t.Errorf("sync state after the form = %+v, %v; want the sync token kept", ss, err)
	}
	c := e.connection(uid, "google")
	if requested := ss.Synced.IsZero() || (!c.SyncRequested.IsZero() && !c.SyncRequested.Before(ss.Synced)); !requested {
		t.Errorf("no sync requested: sync state %+v, connection SyncRequested %v", ss, c.SyncRequested)
	}
	if c.Health != store.HealthOK || !bytes.Equal(c.Credential, gc.Credential) || c.ExternalID != gc.ExternalID {
		t.Errorf("the form changed the connection: %+v", c)
	}
	if w := e.wakes.all(); len(w) != wakes+1 || w[len(w)-1] != uid {
		t.Errorf("wakes = %v, want one more for %s", w, uid)
	}

	for _, kind := range []string{"default", "outOfOffice"} {
		resp, _ := e.postForm("/sandbox/events", url.Values{"start_in_minutes": {"0"}, "duration_minutes": {"1440"}, "kind": {kind}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("kind %s: %d", kind, resp.StatusCode)
		}
	}
	if calls := e.sandbox.all(); len(calls) != 3 || calls[2].Kind != "outOfOffice" || calls[2].D != 24*time.Hour || !calls[2].Start.Equal(now.Truncate(time.Second)) {
		t.Errorf("SandboxEvents calls = %+v", calls)
	}

	n := len(e.sandbox.all())
	for _, bad := range []url.Values{
		{"start_in_minutes": {"-1"}, "duration_minutes": {"30"}, "kind": {"default"}},
		{"start_in_minutes": {"1441"}, "duration_minutes": {"30"}, "kind": {"default"}},
		{"start_in_minutes": {"soon"}, "duration_minutes": {"30"}, "kind": {"default"}},
		{"start_in_minutes": {"1.5"}, "duration_minutes": {"30"}, "kind": {"default"}},
		{"start_in_minutes": {"5"}, "duration_minutes": {"0"}, "kind": {"default"}},
		{"start_in_minutes": {"5"}, "duration_minutes": {"1441"}, "kind": {"default"}},
		{"start_in_minutes": {"5"}, "duration_minutes": {"30"}, "kind": {"workingLocation"}},
		{"start_in_minutes": {"5"}, "duration_minutes": {"30"}},
		{"duration_minutes": {"30"}, "kind": {"default"}},
		{},
	} {
		resp, body := e.postForm("/sandbox/events", bad)
		wantPage(t, "sandbox form "+bad.Encode(), resp.StatusCode, body, http.StatusBadRequest, "That event makes no sense", "from 0 to 1440 minutes")
	}
	if got := len(e.sandbox.all()); got != n {
		t.Errorf("bad forms added %d events", got-n)
	}

	// Signed out: 401.
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"same-origin"}}
	r2, body := e.do(http.DefaultClient, http.MethodPost, "/sandbox/events", strings.NewReader(valid.Encode()), hdr)
	wantPage(t, "signed-out sandbox form", r2.StatusCode, body, http.StatusUnauthorized, "Please sign in first")
	if got := len(e.sandbox.all()); got != n {
		t.Error("a signed-out form added an event")
	}
}

// TestSandboxRouteOnlyInSandbox: outside sandbox mode there is no /sandbox/events.
func TestSandboxRouteOnlyInSandbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	uid := e.signIn()
	e.connect(uid, "google")
	resp, body := e.postForm("/sandbox/events", url.Values{"start_in_minutes": {"5"}, "duration_minutes": {"30"}, "kind": {"default"}})
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /sandbox/events outside sandbox mode: %d, want 404 or 405\n%s", resp.StatusCode, body)
	}
	if n := len(e.sandbox.all()); n != 0 {
		t.Errorf("SandboxEvents called %d times", n)
	}
	code, body := e.get("/")
	if code != http.StatusOK || strings.Contains(body, "/sandbox/events") || strings.Contains(body, "Sandbox") {
		t.Errorf("the dashboard outside sandbox mode mentions the sandbox:\n%s", body)
	}
}
