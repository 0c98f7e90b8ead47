package zoomfake_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
)

const redirect = "http://app.test/connect/zoom/callback"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	fake  *zoomfake.Server
	srv   *httptest.Server
	clock *fakeClock
}

func newEnv(t *testing.T, opts zoomfake.Options) *env {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	opts.Now = clock.Now
	opts.RedirectURIs = []string{redirect}
	fake := zoomfake.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &env{fake: fake, srv: srv, clock: clock}
}

func (e *env) config(style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     e.fake.ClientID(),
		ClientSecret: e.fake.ClientSecret(),
		RedirectURL:  redirect,
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.srv.URL + "/oauth/authorize",
			TokenURL:  e.srv.URL + "/oauth/token",
			AuthStyle: style,
		},
	}
}

func (e *env) ctx(t *testing.T) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, e.srv.Client())
}

// noRedirects is a client that stops at the first redirect.
func (e *env) noRedirects() *http.Client {
	c := *e.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

var requestIDRE = regexp.MustCompile(`name="request" value="([0-9a-f]+)"`)

// consent opens the consent page for authURL and submits decision as userID;
// it returns the query of the redirect.
func (e *env) consent(t *testing.T, authURL, userID, decision string) url.Values {
	t.Helper()
	c := e.noRedirects()
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Sandbox Zoom") {
		t.Fatalf("consent page: %d %s", resp.StatusCode, body)
	}
	m := requestIDRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no request ID in the consent page")
	}
	resp, err = c.PostForm(e.srv.URL+"/oauth/authorize", url.Values{"request": {string(m[1])}, "user": {userID}, "decision": {decision}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("consent decision: %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirect) {
		t.Fatalf("redirect to %q", resp.Header.Get("Location"))
	}
	return loc.Query()
}

func TestOAuthWithX2OAuthBasicAuth(t *testing.T) {
	e := newEnv(t, zoomfake.Options{RequirePKCE: true})
	conf := e.config(oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()
	q := e.consent(t, conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)), zoomfake.DefaultUserID, "allow")
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	tok, err := conf.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 3599 || !strings.EqualFold(tok.TokenType, "bearer") {
		t.Fatalf("token %+v", tok)
	}
	if got := tok.Extra("scope"); got != "user:read:user meeting:read:list_meetings" {
		t.Errorf("scope = %v", got)
	}
	// The code works once.
	if _, err := conf.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_request") {
		t.Errorf("second exchange: %v", err)
	}

	// Rotation: a refresh gives a new refresh token and the old one dies.
	old := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}
	fresh, err := conf.TokenSource(e.ctx(t), old).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate")
	}
	_, err = conf.TokenSource(e.ctx(t), old).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || !strings.Contains(string(re.Body), `"reason":"Invalid Token!"`) {
		t.Fatalf("old refresh token: %v", err)
	}
	// The new one works.
	if _, err := conf.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Unix(1, 0)}).Token(); err != nil {
		t.Fatal(err)
	}
	// The call log keeps no secrets.
	for _, c := range e.fake.CallsTo(zoomfake.EndpointToken) {
		for k, vs := range c.Query {
			if (k == "code" || k == "refresh_token" || k == "code_verifier") && vs[0] != "REDACTED" {
				t.Errorf("call log keeps %s", k)
			}
		}
	}
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func TestCredentialsInTheFormAreRefused(t *testing.T) {
	e := newEnv(t, zoomfake.Options{AutoApprove: true})
	conf := e.config(oauth2.AuthStyleInParams)
	resp, err := e.noRedirects().Get(conf.AuthCodeURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	_, err = conf.Exchange(e.ctx(t), loc.Query().Get("code"))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
		t.Fatalf("credentials in the form: %v", err)
	}
}

func TestConsentCancelAndBadRequests(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	conf := e.config(oauth2.AuthStyleInHeader)
	q := e.consent(t, conf.AuthCodeURL("s2"), zoomfake.DefaultUserID, "cancel")
	if q.Get("error") != "access_denied" || q.Get("state") != "s2" || q.Get("code") != "" {
		t.Fatalf("cancel: %v", q)
	}
	for name, u := range map[string]string{
		"unknown client": strings.Replace(conf.AuthCodeURL("s"), "client_id=", "client_id=x", 1),
		"bad redirect":   strings.Replace(conf.AuthCodeURL("s"), "app.test", "evil.test", 1),
	} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	// A wrong PKCE verifier is refused.
	e.fake.SetAutoApprove(true, "")
	resp, err := e.noRedirects().Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if _, err := conf.Exchange(e.ctx(t), loc.Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_request") {
		t.Fatalf("wrong verifier: %v", err)
	}
	// An expired code is refused.
	resp, err = e.noRedirects().Get(conf.AuthCodeURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	e.clock.Advance(zoomfake.CodeLifetime)
	if _, err := conf.Exchange(e.ctx(t), loc.Query().Get("code")); !isOAuthError(err, "invalid_request") {
		t.Fatalf("expired code: %v", err)
	}
}

// get calls the REST API with a bearer token and decodes the JSON answer.
func (e *env) get(t *testing.T, token, path string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, resp.Header, body
}

func TestUsersMeAndAuthErrors(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	e.fake.AddUser("acct-1", "user-1")
	access, _ := e.fake.IssueToken("user-1")
	status, _, body := e.get(t, access, "/v2/users/me")
	if status != 200 || body["id"] != "user-1" || body["account_id"] != "acct-1" {
		t.Fatalf("users/me: %d %v", status, body)
	}
	status, _, body = e.get(t, "", "/v2/users/me")
	if status != 401 || body["code"] != json.Number("124") || body["message"] != "Invalid access token." {
		t.Fatalf("no token: %d %v", status, body)
	}
	status, _, _ = e.get(t, access, "/v2/users/someone-else")
	if status != 404 {
		t.Errorf("another user: %d", status)
	}
	// Scopes are checked: a token without the meetings scope gets code 4711.
	onlyUser, _ := e.fake.IssueToken("user-1", zoomfake.ScopeUserRead)
	status, _, body = e.get(t, onlyUser, "/v2/users/me/meetings?type=upcoming")
	if status != 400 || body["code"] != json.Number("4711") || !strings.Contains(body["message"].(string), "does not contain scopes") {
		t.Fatalf("missing scope: %d %v", status, body)
	}
	// Expired and revoked tokens.
	e.fake.ExpireAccessTokens("user-1")
	if status, _, _ = e.get(t, access, "/v2/users/me"); status != 401 {
		t.Errorf("expired token: %d", status)
	}
	a2, _ := e.fake.IssueToken("user-1")
	e.fake.RevokeTokens("user-1")
	if status, _, _ = e.get(t, a2, "/v2/users/me"); status != 401 {
		t.Errorf("revoked token: %d", status)
	}
	// FailNext.
	a3, _ := e.fake.IssueToken("user-1")
	e.fake.FailNext(zoomfake.EndpointUsersMe, 503)
	if status, _, _ = e.get(t, a3, "/v2/users/me"); status != 503 {
		t.Errorf("FailNext: %d", status)
	}
	if status, _, _ = e.get(t, a3, "/v2/users/me"); status != 200 {
		t.Errorf("after FailNext: %d", status)
	}
}

func TestMeetingsPaging(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	now := e.clock.Now()
	var ids []int64
	for i := range 5 {
		ids = append(ids, e.fake.AddMeeting(zoomfake.DefaultUserID, zoomfake.Meeting{
			Topic: "Topic " + strconv.Itoa(i), Start: now.Add(time.Duration(i+1) * time.Hour), Duration: 30 * time.Minute}))
	}
	e.fake.AddMeeting(zoomfake.DefaultUserID, zoomfake.Meeting{Topic: "past", Start: now.Add(-2 * time.Hour), Duration: time.Hour})
	access, _ := e.fake.IssueToken(zoomfake.DefaultUserID)

	var got []int64
	path := "/v2/users/me/meetings?type=upcoming&page_size=2"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		status, _, body := e.get(t, access, path)
		if status != 200 || body["total_records"] != json.Number("5") {
			t.Fatalf("list: %d %v", status, body)
		}
		for _, m := range body["meetings"].([]any) {
			m := m.(map[string]any)
			id, err := m["id"].(json.Number).Int64()
			if err != nil || id <= 1<<32 {
				t.Fatalf("id %v is not an integer above 2^32", m["id"])
			}
			if st := m["start_time"].(string); !strings.HasSuffix(st, "Z") {
				t.Errorf("start_time %q", st)
			}
			if m["duration"] != json.Number("30") || m["type"] != json.Number("2") || m["uuid"] == "" {
				t.Errorf("meeting %v", m)
			}
			got = append(got, id)
		}
		next := body["next_page_token"].(string)
		if next == "" {
			break
		}
		path = "/v2/users/me/meetings?page_size=2&next_page_token=" + url.QueryEscape(next)
	}
	if len(got) != 5 {
		t.Fatalf("got %v, want %v", got, ids)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("got %v, want %v (by start time)", got, ids)
		}
	}
	// A page token expires.
	_, _, body := e.get(t, access, "/v2/users/me/meetings?type=upcoming&page_size=2")
	e.clock.Advance(zoomfake.PageTokenLifetime)
	if status, _, _ := e.get(t, access, "/v2/users/me/meetings?next_page_token="+url.QueryEscape(body["next_page_token"].(string))); status != 400 {
		t.Errorf("expired page token: %d", status)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, zoomfake.Options{RateLimits: map[zoomfake.Category]zoomfake.Limit{zoomfake.Medium: {PerSecond: 2}}})
	access, _ := e.fake.IssueToken(zoomfake.DefaultUserID)
	for range 2 {
		if status, _, _ := e.get(t, access, "/v2/users/me/meetings"); status != 200 {
			t.Fatalf("within the limit: %d", status)
		}
	}
	status, h, body := e.get(t, access, "/v2/users/me/meetings")
	if status != 429 || body["code"] != json.Number("429") || h.Get("X-RateLimit-Category") != "Medium" ||
		h.Get("X-RateLimit-Type") != "QPS" || h.Get("Retry-After") != "1" || h.Get("X-RateLimit-Limit") != "2" {
		t.Fatalf("over the limit: %d %v %v", status, h, body)
	}
	// Light is another category.
	if status, _, _ := e.get(t, access, "/v2/users/me"); status != 200 {
		t.Errorf("light: %d", status)
	}
	e.clock.Advance(time.Second)
	if status, _, _ := e.get(t, access, "/v2/users/me/meetings"); status != 200 {
		t.Errorf("a second later: %d", status)
	}

	// The Free plan's daily limit answers with an ISO Retry-After.
	e = newEnv(t, zoomfake.Options{Plan: zoomfake.PlanFree, RateLimits: map[zoomfake.Category]zoomfake.Limit{zoomfake.Medium: {PerDay: 1}}})
	access, _ = e.fake.IssueToken(zoomfake.DefaultUserID)
	e.get(t, access, "/v2/users/me/meetings")
	status, h, _ = e.get(t, access, "/v2/users/me/meetings")
	if status != 429 || h.Get("X-RateLimit-Type") != "Daily-limit" || h.Get("Retry-After") != "2026-12-04T00:00:00Z" {
		t.Fatalf("daily: %d %v", status, h)
	}
}

// receiver is our side of the webhooks, verifying as a real endpoint must.
type receiver struct {
	secret string
	mu     sync.Mutex
	got    []map[string]any
	heads  []http.Header
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("x-zm-request-timestamp")
	mac := hmac.New(sha256.New, []byte(rc.secret))
	io.WriteString(mac, "v0:"+ts+":"+string(body))
	if r.Header.Get("x-zm-signature") != "v0="+hex.EncodeToString(mac.Sum(nil)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, m)
	rc.heads = append(rc.heads, r.Header.Clone())
	rc.mu.Unlock()
	if m["event"] == "endpoint.url_validation" {
		plain := m["payload"].(map[string]any)["plainToken"].(string)
		mac := hmac.New(sha256.New, []byte(rc.secret))
		io.WriteString(mac, plain)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"plainToken": plain, "encryptedToken": hex.EncodeToString(mac.Sum(nil))})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) last() (map[string]any, http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[len(rc.got)-1], rc.heads[len(rc.heads)-1]
}

func TestWebhooks(t *testing.T) {
	e := newEnv(t, zoomfake.Options{WebhookSecretToken: "s3cret"})
	rc := &receiver{secret: "s3cret"}
	app := httptest.NewServer(rc)
	t.Cleanup(app.Close)
	ctx := t.Context()

	if _, err := e.fake.StartMeeting(ctx, zoomfake.DefaultUserID, ""); !errors.Is(err, zoomfake.ErrNoWebhookURL) {
		t.Fatalf("no URL: %v", err)
	}
	e.fake.SetWebhookURL(app.URL)
	if _, err := e.fake.ValidateEndpoint(ctx); err != nil {
		t.Fatalf("validation: %v", err)
	}

	d, err := e.fake.StartMeeting(ctx, zoomfake.DefaultUserID, "")
	if err != nil || d.Status != http.StatusNoContent || d.MeetingID == "" {
		t.Fatalf("start: %+v %v", d, err)
	}
	m, h := rc.last()
	if m["event"] != "meeting.started" || h.Get("x-zm-request-timestamp") != strconv.FormatInt(e.clock.Now().Unix(), 10) {
		t.Fatalf("started: %v %v", m, h)
	}
	obj := m["payload"].(map[string]any)["object"].(map[string]any)
	if obj["id"] != d.MeetingID || obj["host_id"] != zoomfake.DefaultUserID || obj["type"] != 1.0 || obj["start_time"] != "2026-12-03T09:00:00Z" {
		t.Errorf("started object %v", obj)
	}
	if m["payload"].(map[string]any)["account_id"] != zoomfake.DefaultAccountID {
		t.Errorf("account_id %v", m["payload"])
	}
	if got := e.fake.LiveMeetings(zoomfake.DefaultUserID); len(got) != 1 || got[0] != d.MeetingID {
		t.Errorf("live %v", got)
	}

	if _, err := e.fake.ParticipantJoined(ctx, "guest-user", d.MeetingID); err != nil {
		t.Fatal(err)
	}
	m, _ = rc.last()
	p := m["payload"].(map[string]any)["object"].(map[string]any)["participant"].(map[string]any)
	if m["event"] != "meeting.participant_joined" || p["id"] != "guest-user" || p["join_time"] == nil || p["user_id"] == "" {
		t.Errorf("joined: %v", m)
	}
	if _, err := e.fake.ParticipantLeft(ctx, "guest-user", d.MeetingID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	end, err := e.fake.EndMeeting(ctx, zoomfake.DefaultUserID, "")
	if err != nil || end.MeetingID != d.MeetingID {
		t.Fatalf("end: %+v %v", end, err)
	}
	m, _ = rc.last()
	if m["event"] != "meeting.ended" || m["payload"].(map[string]any)["object"].(map[string]any)["end_time"] != "2026-12-03T09:10:00Z" {
		t.Errorf("ended: %v", m)
	}
	if _, err := e.fake.PresenceChanged(ctx, zoomfake.DefaultUserID, "Do_Not_Disturb"); err != nil {
		t.Fatal(err)
	}
	m, _ = rc.last()
	if m["event"] != "user.presence_status_updated" || m["payload"].(map[string]any)["object"].(map[string]any)["presence_status"] != "Do_Not_Disturb" {
		t.Errorf("presence: %v", m)
	}

	// A redelivery is the same body with a new timestamp and signature.
	e.clock.Advance(5 * time.Minute)
	again, err := e.fake.Redeliver(ctx, end)
	if err != nil || again.Status != http.StatusNoContent || string(again.Body) != string(end.Body) || again.Timestamp == end.Timestamp || again.EventTS != end.EventTS {
		t.Fatalf("redeliver: %+v %v", again, err)
	}

	// A receiver with another secret refuses; ValidateEndpoint reports it.
	rc.secret = "other"
	if d, err := e.fake.ValidateEndpoint(ctx); err == nil || d.Status != http.StatusUnauthorized {
		t.Errorf("validation against a wrong secret: %+v %v", d, err)
	}
	if got := len(e.fake.Deliveries()); got != 8 {
		t.Errorf("%d deliveries recorded", got)
	}
}

func TestSandboxPage(t *testing.T) {
	e := newEnv(t, zoomfake.Options{WebhookSecretToken: "s"})
	rc := &receiver{secret: "s"}
	app := httptest.NewServer(rc)
	t.Cleanup(app.Close)
	e.fake.SetWebhookURL(app.URL)
	e.fake.AddMeeting(zoomfake.DefaultUserID, zoomfake.Meeting{Topic: "Planning", Start: e.clock.Now().Add(time.Hour), Duration: time.Hour})

	c := e.noRedirects()
	resp, err := c.Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"Sandbox Zoom", "Start a call now", "Planning", zoomfake.DefaultUserID} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	resp, err = c.PostForm(e.srv.URL+"/sandbox/start", url.Values{"user": {zoomfake.DefaultUserID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	live := e.fake.LiveMeetings(zoomfake.DefaultUserID)
	if len(live) != 1 {
		t.Fatalf("live %v", live)
	}
	resp, _ = c.Get(e.srv.URL + "/")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "End it") || !strings.Contains(string(body), "meeting.started") {
		t.Errorf("page after start lacks the End it button or the delivery")
	}
	resp, err = c.PostForm(e.srv.URL+"/sandbox/end", url.Values{"user": {zoomfake.DefaultUserID}, "meeting": {live[0]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := e.fake.WaitForCall(t.Context(), zoomfake.EndpointSandbox, 4); err != nil {
		t.Fatal(err)
	}
	if m, _ := rc.last(); m["event"] != "meeting.ended" || len(e.fake.LiveMeetings(zoomfake.DefaultUserID)) != 0 {
		t.Errorf("end: %v", m)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	access, refresh := e.fake.IssueToken(zoomfake.DefaultUserID)
	post := func(basic bool, token string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth/revoke?token="+url.QueryEscape(token), nil)
		if basic {
			req.SetBasicAuth(e.fake.ClientID(), e.fake.ClientSecret())
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if status, _ := post(false, refresh); status != 401 {
		t.Errorf("revoke without Basic: %d", status)
	}
	if status, m := post(true, refresh); status != 200 || m["status"] != "success" {
		t.Fatalf("revoke: %d %v", status, m)
	}
	if status, _, _ := e.get(t, access, "/v2/users/me"); status != 401 {
		t.Errorf("access token after revoke: %d", status)
	}
	if status, m := post(true, refresh); status != 400 || m["reason"] != "Invalid Token!" {
		t.Errorf("second revoke: %d %v", status, m)
	}
}
