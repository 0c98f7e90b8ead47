package web_test

// Fuzz targets for the inbound parsers served by the web package: Graph change notifications,
// Google push notification headers, OAuth callbacks, the dashboard's and settings' form posts,
// the data-delete form and the OAuth token endpoint. Each drives the real handler (through
// web.Server.ServeHTTP and its middleware) on a light server built once per target, and
// checks: no panic, no 5xx, and a status from the handler's documented set.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	slackint "github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
	"github.com/dontinterrupt/dontinterrupt/web"
)

var fzEpoch = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

const (
	fzUser   = "u_fuzz"
	fzCookie = "fuzz-session-cookie-0123456789abcdef"
	fzOrigin = "http://di.test"
)

// fzServer is a web.Server on a bolt store in a temporary directory, with a real vault and a
// fake clock, and a person (fzUser) signed in with the session cookie fzCookie.
type fzServer struct {
	srv *web.Server
	st  *bolt.Store
	clk *clock.Fake
}

func newFuzzServer(f *testing.F, configure func(*web.Deps)) *fzServer {
	f.Helper()
	fc := clock.NewFake(fzEpoch)
	st, err := bolt.Open(filepath.Join(f.TempDir(), "di.db"), bolt.WithClock(fc.Now))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	ks, err := vault.Generate()
	if err != nil {
		f.Fatal(err)
	}
	d := web.Deps{
		Logger: slog.New(slog.DiscardHandler), Store: st, Vault: vault.New(ks), Clock: fc,
		Wake: func(context.Context, string) error { return nil },
	}
	if configure != nil {
		configure(&d)
	}
	srv, err := web.NewServer(d)
	if err != nil {
		f.Fatal(err)
	}
	s := &fzServer{srv: srv, st: st, clk: fc}
	s.resetUser(f)
	return s
}

// resetUser (re)creates fzUser with default rules in New York and signs them in.
func (s *fzServer) resetUser(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	rules := presence.DefaultRules()
	rules.TimeZone = "America/New_York"
	u := store.User{ID: fzUser, Created: fzEpoch, Rules: rules}
	if err := s.st.CreateUser(ctx, u); err != nil {
		if err := s.st.PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	s.putSession(t, nil)
}

// putSession stores fzCookie's session for fzUser with data.
func (s *fzServer) putSession(t testing.TB, data map[string]string) {
	t.Helper()
	if data == nil {
		data = map[string]string{}
	}
	now := s.clk.Now()
	if err := s.st.PutSession(context.Background(), store.Session{ID: sessionKey(fzCookie), UserID: fzUser, Created: now, Expires: now.Add(24 * time.Hour), Data: data}); err != nil {
		t.Fatal(err)
	}
}

// addConnection stores a connection of fzUser.
func (s *fzServer) addConnection(t testing.TB, id, p, external string) {
	t.Helper()
	now := s.clk.Now()
	c := store.Connection{ID: id, UserID: fzUser, Provider: p, ExternalID: external, Health: store.HealthOK, Resources: []string{"primary"}, Created: now, Updated: now}
	if err := s.st.PutConnection(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// serve sends req through the whole handler (middleware included) and returns the recorder.
func (s *fzServer) serve(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req.WithContext(t.Context()))
	return rec
}

// postForm is a same-origin form post of a raw (fuzzed) body with the session cookie.
func (s *fzServer) postForm(t *testing.T, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, fzOrigin+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", fzOrigin)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: fzCookie})
	return s.serve(t, req)
}

// wantStatus fails on a 5xx or a status outside want.
func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, input string, want ...int) {
	t.Helper()
	if rec.Code >= 500 || !slices.Contains(want, rec.Code) {
		t.Fatalf("input %q: status %d, want one of %v\n%.2000s", input, rec.Code, want, rec.Body.String())
	}
}

// addForms adds each form, encoded, as a seed.
func addForms(f *testing.F, forms ...url.Values) {
	for _, v := range forms {
		f.Add(v.Encode())
	}
}

// FuzzGraphNotification fuzzes POST /webhooks/microsoft: the JSON body and the raw query
// string (the validationToken handshake). A matching subscription (sub-1, clientState
// "secret", user oid-a) is stored, so the accept path runs too.
func FuzzGraphNotification(f *testing.F) {
	note := func(sub, state, resource string) string {
		b, _ := json.Marshal(map[string]any{"value": []map[string]any{{
			"subscriptionId": sub, "clientState": state, "changeType": "updated", "resource": resource,
			"tenantId": "tenant-1", "resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.Event", "id": "AAMk="},
		}}})
		return string(b)
	}
	f.Add(note("sub-1", "secret", "Users/oid-a/Events/AAMkAGI2TAAA="), "")
	f.Add(note("sub-1", "wrong", "Users/oid-a/Events/AAMkAGI2TAAA="), "")
	f.Add(note("sub-2", "secret", "/users/oid-a/events/x"), "")
	f.Add(note("sub-1", "secret", "Users"), "")
	f.Add(note("", "", ""), "")
	f.Add(`{"value":[]}`, "")
	f.Add(`{"value":null}`, "")
	f.Add(`{"value":[{"subscriptionId":1}]}`, "")
	f.Add(`not json`, "")
	f.Add(``, "validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+25e0b6e1")
	f.Add(``, "validationToken=")
	f.Add(``, "validationToken")
	f.Add(``, "validationToken=%zz&validationToken=b")
	f.Add(``, "validationToken="+strings.Repeat("a", 1025))
	f.Add(note("sub-1", "secret", "Users/oid-a/Events/x"), "foo=bar;baz")

	s := newFuzzServer(f, nil)
	ctx := context.Background()
	s.addConnection(f, "c_outlook", "outlook", "oid-a")
	if err := s.st.PutSyncState(ctx, store.SyncState{ConnectionID: "c_outlook", Resource: "calendar", ChannelID: "sub-1", ChannelToken: "secret", ChannelExpiry: fzEpoch.Add(48 * time.Hour)}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, rawQuery string) {
		req := httptest.NewRequest(http.MethodPost, fzOrigin+"/webhooks/microsoft", strings.NewReader(body))
		req.URL.RawQuery = rawQuery
		req.Header.Set("Content-Type", "application/json")
		rec := s.serve(t, req)
		if vals, ok := req.URL.Query()["validationToken"]; ok {
			wantStatus(t, rec, rawQuery, http.StatusOK, http.StatusBadRequest)
			if rec.Code == http.StatusOK {
				if rec.Body.String() != vals[0] || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
					t.Fatalf("handshake %q answered %q as %q", rawQuery, rec.Body, rec.Header().Get("Content-Type"))
				}
			}
			return
		}
		wantStatus(t, rec, body, http.StatusAccepted, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge)
	})
}

// FuzzGooglePush fuzzes POST /webhooks/google: the headers Google's notification carries
// (channel ID, channel token, message number, resource state) and the body it should not
// have. A channel (chan-1, token "secret") of a Google connection of fzUser is stored, so the
// accept path runs too; besides the status set, nothing but that channel with that token is
// ever accepted. Seeds are in testdata/fuzz/FuzzGooglePush.
func FuzzGooglePush(f *testing.F) {
	s := newFuzzServer(f, func(d *web.Deps) { d.Google = fzGoogle{} })
	ctx := context.Background()
	s.addConnection(f, "c_google", "google", "g-1")
	if err := s.st.PutSyncState(ctx, store.SyncState{ConnectionID: "c_google", Resource: "primary", UserID: fzUser,
		ChannelID: "chan-1", ChannelResource: "res-1", ChannelToken: "secret", ChannelExpiry: fzEpoch.Add(7 * 24 * time.Hour)}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, channelID, token, number, state, body string) {
		req := httptest.NewRequest(http.MethodPost, fzOrigin+"/webhooks/google", strings.NewReader(body))
		for k, v := range map[string]string{
			"X-Goog-Channel-ID": channelID, "X-Goog-Channel-Token": token,
			"X-Goog-Message-Number": number, "X-Goog-Resource-State": state,
		} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		req.Header.Set("X-Goog-Resource-ID", "res-1")
		rec := s.serve(t, req)
		input := fmt.Sprintf("channel %q token %q number %q state %q body %.40q", channelID, token, number, state, body)
		wantStatus(t, rec, input, http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusRequestEntityTooLarge)
		if rec.Code == http.StatusOK && (channelID != "chan-1" || token != "secret") {
			t.Fatalf("%s: accepted", input)
		}
	})
}

// fzGoogle, fzSlack and fzMicrosoft finish a flow when the code starts with "ok" (the code is
// the subject and the account) and refuse any other code, as a provider would.
type fzGoogle struct{}

func fzOK(code string) error {
	if !strings.HasPrefix(code, "ok") {
		return errors.New("invalid_grant")
	}
	return nil
}

func (fzGoogle) SignInURL(context.Context, string, string, string) (string, error) {
	return "https://accounts.example/auth", nil
}
func (fzGoogle) FinishSignIn(_ context.Context, code, _, _ string) (string, error) {
	return code, fzOK(code)
}
func (fzGoogle) ConnectURL(context.Context, string, string, string) (string, error) {
	return "https://accounts.example/auth", nil
}
func (fzGoogle) FinishConnect(_ context.Context, code, _, _ string, _ time.Time) (google.Connect, error) {
	if err := fzOK(code); err != nil {
		return google.Connect{}, err
	}
	return google.Connect{Subject: code, Scopes: []string{"calendar"}, Credential: provider.Credential{AccessToken: "at-" + code, RefreshToken: "rt"}}, nil
}
func (fzGoogle) Revoke(context.Context, provider.Credential) error { return nil }
func (fzGoogle) StopWatch(context.Context, provider.Credential, string, string) error {
	return nil
}

type fzSlack struct{}

func (fzSlack) AuthCodeURL(string) string { return "https://slack.example/oauth" }
func (fzSlack) Exchange(_ context.Context, code string, _ time.Time) (slackint.Install, error) {
	if err := fzOK(code); err != nil {
		return slackint.Install{}, err
	}
	return slackint.Install{UserID: code, TeamID: "T1", Credential: provider.Credential{AccessToken: "xoxp-" + code}}, nil
}
func (fzSlack) Revoke(context.Context, provider.Credential) error { return nil }

type fzMicrosoft struct{}

func (fzMicrosoft) AuthURL(context.Context, string, string, string, string) (string, error) {
	return "https://login.example/authorize", nil
}
func (fzMicrosoft) Finish(_ context.Context, kind, code, _, _ string, _ time.Time) (web.Grant, error) {
	if err := fzOK(code); err != nil {
		return web.Grant{}, err
	}
	if kind == "signin" {
		return web.Grant{Subject: code}, nil
	}
	return web.Grant{ExternalID: code, TeamID: "tenant-1", Credential: provider.Credential{AccessToken: "ms-" + code}}, nil
}
func (fzMicrosoft) Revoke(context.Context, provider.Credential, []store.SyncState) error {
	return nil
}

// fzCallbacks are the callback routes FuzzOAuthCallback picks from: kind and provider.
var fzCallbacks = [][2]string{
	{"signin", "google"}, {"signin", "microsoft"},
	{"connect", "google"}, {"connect", "slack"}, {"connect", "outlook"}, {"connect", "teams"},
	{"signin", "slack"}, {"connect", "zoom"}, {"signin", "nowhere"},
}

const fzState = "fuzz-state-0123456789"

// FuzzOAuthCallback fuzzes the query string of GET /signin/{p}/callback and
// /connect/{p}/callback (state, code, error). Before each request the signed-in session holds
// a fresh flow under fzState for the route's kind and provider, so a matching state reaches
// the provider's finish (codes "ok…" succeed).
func FuzzOAuthCallback(f *testing.F) {
	for i := range fzCallbacks {
		r := uint8(i)
		f.Add(r, "state="+fzState+"&code=ok-4%2F0AX4XfWh")
		f.Add(r, "state="+fzState+"&code=bad-code")
		f.Add(r, "state="+fzState)
		f.Add(r, "state=other&code=ok-1")
		f.Add(r, "error=access_denied&state="+fzState)
		f.Add(r, "error=server_error&error_description=%E2%80%AE&state="+fzState)
	}
	f.Add(uint8(0), "code=ok-1")
	f.Add(uint8(2), "state="+fzState+"&state=x&code=ok-%00%ff")
	f.Add(uint8(3), "error="+strings.Repeat("x", 500))
	f.Add(uint8(4), "state=%zz&code=;")

	s := newFuzzServer(f, func(d *web.Deps) {
		d.Google, d.Slack, d.Microsoft = fzGoogle{}, fzSlack{}, fzMicrosoft{}
	})
	f.Fuzz(func(t *testing.T, route uint8, rawQuery string) {
		cb := fzCallbacks[int(route)%len(fzCallbacks)]
		fl, _ := json.Marshal(map[string]any{"kind": cb[0], "provider": cb[1], "nonce": "n", "verifier": "v", "started": s.clk.Now()})
		s.putSession(t, map[string]string{"flow:" + fzState: string(fl)})
		req := httptest.NewRequest(http.MethodGet, fzOrigin+"/"+cb[0]+"/"+cb[1]+"/callback", nil)
		req.URL.RawQuery = rawQuery
		req.AddCookie(&http.Cookie{Name: cookieName, Value: fzCookie})
		rec := s.serve(t, req)
		wantStatus(t, rec, cb[0]+"/"+cb[1]+"?"+rawQuery, http.StatusSeeOther, http.StatusBadRequest, http.StatusNotFound, http.StatusUnauthorized)
		if rec.Code == http.StatusSeeOther {
			if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
				t.Fatalf("redirect to %q", loc)
			}
		}
	})
}

// FuzzSettingsForm fuzzes the body of POST /settings (rules and working hours). The person
// has a Google connection, so changing title_emoji runs the resync path too. Their rules are
// reset before each request.
func FuzzSettingsForm(f *testing.F) {
	base := url.Values{
		"time_zone": {"Europe/Berlin"}, "only_with_others": {"on"}, "title_emoji": {"on"},
		"rule.meeting.enabled": {"on"}, "rule.meeting.slack_text": {"In a meeting"}, "rule.meeting.slack_emoji": {":calendar:"},
		"rule.meeting.slack_dnd": {"on"}, "rule.meeting.teams": {"Busy/InAMeeting"}, "rule.meeting.teams_message": {"Back soon"},
		"hours.1": {"09:00-17:00"}, "hours.2": {"09:00-12:00, 13:00-17:30"}, "hours.0": {""},
	}
	addForms(f, base,
		url.Values{"time_zone": {"Mars/Olympus"}},
		url.Values{"time_zone": {"UTC"}, "hours.3": {"17:00-09:00"}},
		url.Values{"time_zone": {"UTC"}, "hours.4": {"9-5"}, "hours.5": {"25:00-26:00"}, "hours.6": {"09:00-10:00,09:30-11:00"}},
		url.Values{"time_zone": {"UTC"}, "hours.1": {"00:00-24:00"}, "hours.7": {"09:00-10:00"}, "hours.-1": {"x"}},
		url.Values{"time_zone": {"UTC"}, "rule.focus.slack_text": {strings.Repeat("é", 200)}, "rule.focus.teams": {"/"}},
		url.Values{"time_zone": {"Local"}, "rule.ooo.slack_text": {""}, "rule.ooo.slack_emoji": {"not an emoji"}},
		url.Values{},
	)
	f.Add("time_zone=UTC&hours.1=%zz")
	f.Add("time_zone=UTC;hours.1=09:00-17:00")
	f.Add("hours.1=09%3A00-17%3A00&hours.1=10%3A00-11%3A00")

	s := newFuzzServer(f, nil)
	s.addConnection(f, "c_google", "google", "sub-1")
	f.Fuzz(func(t *testing.T, body string) {
		s.resetUser(t)
		rec := s.postForm(t, "/settings", body)
		wantStatus(t, rec, body, http.StatusSeeOther, http.StatusBadRequest)
	})
}

// FuzzActionForm fuzzes the body of POST /actions (the dashboard's manual controls).
func FuzzActionForm(f *testing.F) {
	addForms(f,
		url.Values{"action": {"focus"}, "minutes": {"25"}},
		url.Values{"action": {"focus"}, "minutes": {"720"}},
		url.Values{"action": {"focus"}, "minutes": {"721"}},
		url.Values{"action": {"focus"}, "minutes": {"0"}},
		url.Values{"action": {"focus"}, "minutes": {"-5"}},
		url.Values{"action": {"focus"}, "minutes": {"9223372036854775807"}},
		url.Values{"action": {"focus"}, "minutes": {"1e3"}},
		url.Values{"action": {"pause"}},
		url.Values{"action": {"resume"}},
		url.Values{"action": {"back"}},
		url.Values{"action": {"extend"}},
		url.Values{"action": {"ignore"}},
		url.Values{"action": {"delete-everything"}},
		url.Values{},
	)
	f.Add("action=focus&action=pause&minutes=10")
	f.Add("action=%zz")

	s := newFuzzServer(f, nil)
	f.Fuzz(func(t *testing.T, body string) {
		rec := s.postForm(t, "/actions", body)
		wantStatus(t, rec, body, http.StatusSeeOther, http.StatusBadRequest)
	})
}

// FuzzSandboxEventForm fuzzes the body of POST /sandbox/events (sandbox mode, with Google and
// Outlook connected and both fake-calendar hooks set). An accepted event must be within
// the bounds the handler promises.
func FuzzSandboxEventForm(f *testing.F) {
	addForms(f,
		url.Values{"start_in_minutes": {"0"}, "duration_minutes": {"30"}, "kind": {"default"}},
		url.Values{"start_in_minutes": {"1440"}, "duration_minutes": {"1440"}, "kind": {"focusTime"}, "calendar": {"google"}},
		url.Values{"start_in_minutes": {"5"}, "duration_minutes": {"60"}, "kind": {"outOfOffice"}, "calendar": {"outlook"}},
		url.Values{"start_in_minutes": {"5"}, "duration_minutes": {"60"}, "kind": {"default"}, "calendar": {"slack"}},
		url.Values{"start_in_minutes": {"-1"}, "duration_minutes": {"30"}, "kind": {"default"}},
		url.Values{"start_in_minutes": {"0"}, "duration_minutes": {"0"}, "kind": {"default"}},
		url.Values{"start_in_minutes": {"0"}, "duration_minutes": {"1441"}, "kind": {"default"}},
		url.Values{"start_in_minutes": {"0"}, "duration_minutes": {"30"}, "kind": {"workingLocation"}},
		url.Values{"start_in_minutes": {"99999999999999999999"}, "duration_minutes": {"30"}, "kind": {"default"}},
		url.Values{},
	)
	f.Add("start_in_minutes=0&duration_minutes=30&kind=default&calendar=")

	bad := errors.New("")
	hook := func(_ context.Context, sub string, start time.Time, d time.Duration, kind string) error {
		if d < time.Minute || d > 24*time.Hour || start.Before(fzEpoch) || start.After(fzEpoch.Add(24*time.Hour)) || sub == "" {
			bad = errors.New(sub + " " + start.String() + " " + d.String() + " " + kind)
		}
		return nil
	}
	s := newFuzzServer(f, func(d *web.Deps) {
		d.Sandbox, d.SandboxEvents, d.SandboxOutlook = true, hook, hook
	})
	s.addConnection(f, "c_google", "google", "sub-1")
	s.addConnection(f, "c_outlook", "outlook", "oid-a")
	f.Fuzz(func(t *testing.T, body string) {
		bad = nil
		rec := s.postForm(t, "/sandbox/events", body)
		wantStatus(t, rec, body, http.StatusSeeOther, http.StatusBadRequest)
		if bad != nil {
			t.Fatalf("input %q reached the calendar hook as %v", body, bad)
		}
	})
}

// FuzzDataDeleteForm fuzzes the body of POST /data/delete; the person and their session are
// put back before each request (a "delete" confirmation deletes them).
func FuzzDataDeleteForm(f *testing.F) {
	addForms(f,
		url.Values{"confirm": {"delete"}},
		url.Values{"confirm": {"  DELETE "}},
		url.Values{"confirm": {"delet"}},
		url.Values{"confirm": {""}},
		url.Values{},
	)
	f.Add("confirm=delete&confirm=no")
	f.Add("confirm=%zz")

	s := newFuzzServer(f, nil)
	f.Fuzz(func(t *testing.T, body string) {
		s.resetUser(t)
		rec := s.postForm(t, "/data/delete", body)
		wantStatus(t, rec, body, http.StatusOK, http.StatusBadRequest)
	})
}

// FuzzOAuthTokenForm fuzzes the token endpoint (POST /oauth/token): the form body, and
// whether the client authenticates with Basic. FZCODE and FZREFRESH in the body become a real
// authorization code and refresh token issued at setup (each works once).
func FuzzOAuthTokenForm(f *testing.F) {
	for _, v := range []url.Values{
		url.Values{"grant_type": {"authorization_code"}, "code": {"FZCODE"}, "redirect_uri": {alexaRedirect}},
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"FZREFRESH"}},
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"FZREFRESH"}, "scope": {"status admin"}},
		url.Values{"grant_type": {"authorization_code"}, "code": {"FZCODE"}, "redirect_uri": {"https://evil.example/"}},
		url.Values{"grant_type": {"authorization_code"}, "code": {"not-a-code"}, "redirect_uri": {alexaRedirect}},
		url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}},
		url.Values{"grant_type": {"client_credentials"}, "scope": {"status"}},
		url.Values{"grant_type": {"authorization_code"}, "code": {"FZCODE"}, "client_id": {alexaClientID}, "client_secret": {alexaClientSecret}},
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"FZREFRESH"}, "client_id": {alexaClientID}, "client_secret": {"wrong"}},
		{},
	} {
		f.Add(v.Encode(), true)
		f.Add(v.Encode(), false)
	}
	f.Add("grant_type=authorization_code&code=FZCODE&code=x", true)
	f.Add("grant_type=refresh_token&refresh_token=%zz", false)

	s := newFuzzServer(f, func(d *web.Deps) {
		d.OAuthClient = &web.OAuthClient{ID: alexaClientID, Secret: alexaClientSecret, RedirectURIs: []string{alexaRedirect}}
	})
	ts := httptest.NewServer(s.srv)
	f.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(ts.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: fzCookie, Path: "/"}})
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	code := authorizeCode(f, ts.URL, client, nil)
	refreshCode := authorizeCode(f, ts.URL, client, nil)
	status, ans := postToken(f, ts.URL, codeGrant(refreshCode), true, alexaClientID, alexaClientSecret)
	if status != http.StatusOK || ans.RefreshToken == "" {
		f.Fatalf("token: %d %+v", status, ans)
	}
	repl := strings.NewReplacer("FZCODE", url.QueryEscape(code), "FZREFRESH", url.QueryEscape(ans.RefreshToken))

	f.Fuzz(func(t *testing.T, body string, basic bool) {
		body = repl.Replace(body)
		req := httptest.NewRequest(http.MethodPost, fzOrigin+"/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if basic {
			req.SetBasicAuth(url.QueryEscape(alexaClientID), url.QueryEscape(alexaClientSecret))
		}
		rec := s.serve(t, req)
		wantStatus(t, rec, body, http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden)
		var a tokenAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("input %q: %d, not JSON: %.500s", body, rec.Code, rec.Body)
		}
		if (rec.Code == http.StatusOK) != (a.AccessToken != "") {
			t.Fatalf("input %q: %d with %+v", body, rec.Code, a)
		}
	})
}
