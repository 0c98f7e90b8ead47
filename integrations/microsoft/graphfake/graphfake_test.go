package graphfake_test

import (
	"bytes"
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

	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
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

// testKey is shared by all fakes in these tests to keep them fast.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const (
	redirectURL = "https://app.example.test/signin/microsoft/callback"
	tenantA     = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"
	tenantB     = "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"
	oidGrace    = "11111111-0000-4000-8000-000000000001"
	oidLinus    = "22222222-0000-4000-8000-000000000002"
	oidOther    = "33333333-0000-4000-8000-000000000003"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	ctx   context.Context
	fake  *graphfake.Server
	srv   *httptest.Server
	clock *fakeClock
}

func newEnv(t *testing.T, opts graphfake.Options) *env {
	t.Helper()
	clock := &fakeClock{now: t0}
	opts.Now = clock.Now
	if opts.SigningKey == nil {
		opts.SigningKey = testKey()
	}
	fake := graphfake.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(func() {
		fake.Close()
		srv.Close()
	})
	fake.SetBaseURL(srv.URL)
	fake.AddUser(tenantA, oidGrace, "Grace Hopper", "grace@contoso.example")
	fake.AddUser(tenantA, oidLinus, "Linus Pauling", "linus@contoso.example")
	fake.AddUser(tenantB, oidOther, "Olga Other", "olga@fabrikam.example")
	return &env{t: t, ctx: t.Context(), fake: fake, srv: srv, clock: clock}
}

func (e *env) oauthCtx() context.Context {
	return context.WithValue(e.ctx, oauth2.HTTPClient, e.srv.Client())
}

func (e *env) noRedirects() *http.Client {
	c := *e.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// commonProvider discovers the multi-tenant endpoint, whose issuer is the
// {tenantid} template.
func (e *env) commonProvider() *oidc.Provider {
	e.t.Helper()
	ctx := oidc.ClientContext(e.ctx, e.srv.Client())
	ctx = oidc.InsecureIssuerURLContext(ctx, e.srv.URL+"/{tenantid}/v2.0")
	p, err := oidc.NewProvider(ctx, e.srv.URL+"/common/v2.0")
	if err != nil {
		e.t.Fatalf("oidc.NewProvider(common): %v", err)
	}
	return p
}

func (e *env) config(p *oidc.Provider, scopes ...string) *oauth2.Config {
	// x/oauth2 would otherwise retry a failed exchange with the other
	// client authentication style, and the retry meets a burnt code.
	endpoint := p.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{
		ClientID:     e.fake.ClientID(),
		ClientSecret: e.fake.ClientSecret(),
		Endpoint:     endpoint,
		RedirectURL:  redirectURL,
		Scopes:       scopes,
	}
}

var (
	reFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	reRequest    = regexp.MustCompile(`name="request" value="([^"]+)"`)
	reAccount    = regexp.MustCompile(`name="account" value="([^"]+)"`)
)

// consent plays the browser: it opens authURL, checks the consent page and
// submits it with action for account oid. It returns the redirect's query.
func (e *env) consent(authURL, oid, action string) url.Values {
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
	if !strings.Contains(string(page), "Sandbox Microsoft") || strings.Contains(string(page), "<script") {
		e.t.Fatalf("consent page not labelled or has script:\n%s", page)
	}
	var offered []string
	for _, m := range reAccount.FindAllStringSubmatch(string(page), -1) {
		offered = append(offered, m[1])
	}
	if !slices.Contains(offered, oid) {
		e.t.Fatalf("consent page offers %v, not %s", offered, oid)
	}
	action0 := reFormAction.FindStringSubmatch(string(page))
	req := reRequest.FindStringSubmatch(string(page))
	if action0 == nil || req == nil {
		e.t.Fatalf("consent page has no form:\n%s", page)
	}
	resp, err = browser.PostForm(e.srv.URL+action0[1], url.Values{"request": {req[1]}, "account": {oid}, "action": {action}})
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

// signIn runs the authorization code flow with PKCE through the common
// endpoint for oid and returns the token.
func (e *env) signIn(oid string, scopes ...string) (*oauth2.Token, *oauth2.Config) {
	e.t.Helper()
	conf := e.config(e.commonProvider(), scopes...)
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-0"))
	q := e.consent(authURL, oid, "allow")
	tok, err := conf.Exchange(e.oauthCtx(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		e.t.Fatalf("Exchange: %v", err)
	}
	return tok, conf
}

// response is a decoded Graph answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// errorCode returns error.code of a Graph error body.
func (r response) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// call sends a Graph request with an optional bearer token and JSON body.
func (e *env) call(method, path, token string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	u := path
	if strings.HasPrefix(path, "/") {
		u = e.srv.URL + path
	}
	req, err := http.NewRequestWithContext(e.ctx, method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return out
}

func (e *env) want(r response, status int, code string) {
	e.t.Helper()
	if r.status != status || r.errorCode() != code {
		e.t.Fatalf("got %d %q (%s), want %d %q", r.status, r.errorCode(), r.raw, status, code)
	}
}

func TestSignInThroughCommonWithIssuerTemplate(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	// Discovery for common carries the literal template.
	d := e.call(http.MethodGet, "/common/v2.0/.well-known/openid-configuration", "", nil)
	if d.body["issuer"] != e.srv.URL+"/{tenantid}/v2.0" {
		t.Fatalf("issuer %v", d.body["issuer"])
	}
	if d.body["authorization_endpoint"] != e.srv.URL+"/common/oauth2/v2.0/authorize" {
		t.Errorf("authorization_endpoint %v", d.body["authorization_endpoint"])
	}
	p := e.commonProvider()
	conf := e.config(p, oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess)
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-123", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-456"),
		oauth2.SetAuthURLParam("login_hint", "linus@contoso.example"))
	q := e.consent(authURL, oidLinus, "allow")
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
	raw, _ := tok.Extra("id_token").(string)
	// The provider's issuer is the template, so the issuer check is ours.
	idt, err := p.Verifier(&oidc.Config{ClientID: e.fake.ClientID(), SkipIssuerCheck: true, Now: e.clock.Now}).Verify(e.ctx, raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var claims struct {
		TID, OID, Email, Name string
		PreferredUsername     string `json:"preferred_username"`
		Ver                   string
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if want := e.srv.URL + "/" + claims.TID + "/v2.0"; idt.Issuer != want || claims.TID != tenantA {
		t.Errorf("iss %q tid %q, want %q", idt.Issuer, claims.TID, want)
	}
	if idt.Nonce != "nonce-456" || claims.OID != oidLinus || idt.Subject != e.fake.Subject(oidLinus) || idt.Subject == oidLinus {
		t.Errorf("nonce %q oid %q sub %q", idt.Nonce, claims.OID, idt.Subject)
	}
	if claims.Email != "" {
		t.Errorf("email %q present without the email scope", claims.Email)
	}
	if claims.Name != "Linus Pauling" || claims.PreferredUsername != "linus@contoso.example" || claims.Ver != "2.0" {
		t.Errorf("claims %+v", claims)
	}
	if !idt.IssuedAt.Equal(t0) || !idt.Expiry.Equal(t0.Add(time.Hour)) {
		t.Errorf("iat %v exp %v", idt.IssuedAt, idt.Expiry)
	}
	// The call log never shows the code, verifier or secret.
	for _, c := range e.fake.CallsTo(graphfake.EndpointToken) {
		if c.Query.Get("code") != "REDACTED" || c.Query.Get("code_verifier") != "REDACTED" || c.User != oidLinus {
			t.Errorf("token call logged %+v", c)
		}
	}
}

func TestEmailClaimOnlyWithEmailScopeAndTenantIssuer(t *testing.T) {
	e := newEnv(t, graphfake.Options{AutoApprove: true})
	// A concrete tenant's discovery has a concrete issuer, so go-oidc's
	// own check works.
	p, err := oidc.NewProvider(oidc.ClientContext(e.ctx, e.srv.Client()), e.srv.URL+"/"+tenantB+"/v2.0")
	if err != nil {
		t.Fatalf("NewProvider(tenant): %v", err)
	}
	conf := e.config(p, oidc.ScopeOpenID, "email")
	verifier := oauth2.GenerateVerifier()
	resp, err := e.noRedirects().Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := conf.Exchange(e.oauthCtx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token without offline_access")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: e.fake.ClientID(), Now: e.clock.Now}).Verify(e.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var claims struct{ Email, OID string }
	_ = idt.Claims(&claims)
	if claims.Email != "olga@fabrikam.example" || claims.OID != oidOther {
		t.Errorf("claims %+v: tenant B's only account should have signed in with its email", claims)
	}
}

func TestPKCEIsRequiredAndChecked(t *testing.T) {
	e := newEnv(t, graphfake.Options{AutoApprove: true})
	conf := e.config(e.commonProvider(), oidc.ScopeOpenID, graphfake.ScopeCalendarsRead)
	browser := e.noRedirects()
	redirect := func(u string) url.Values {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query()
	}
	// No challenge at all.
	if q := redirect(conf.AuthCodeURL("s")); q.Get("error") != "invalid_request" || q.Get("state") != "s" {
		t.Errorf("no PKCE: %v", q)
	}
	// Wrong verifier: invalid_grant, and the code is burnt.
	verifier := oauth2.GenerateVerifier()
	q := redirect(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	_, err := conf.Exchange(e.oauthCtx(), q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || !strings.Contains(re.ErrorDescription, "AADSTS501481") {
		t.Fatalf("wrong verifier: %v", err)
	}
	if _, err := conf.Exchange(e.oauthCtx(), q.Get("code"), oauth2.VerifierOption(verifier)); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("burnt code: %v", err)
	}
	// Scope errors come back to the redirect URI.
	bad := e.config(e.commonProvider(), "Mail.Send")
	if q := redirect(bad.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))); q.Get("error") != "invalid_scope" {
		t.Errorf("unknown scope: %v", q)
	}
	// Client errors are shown on a page, not redirected.
	wrong := e.config(e.commonProvider(), oidc.ScopeOpenID)
	wrong.ClientID = "00000000-0000-0000-0000-000000000000"
	resp, err := browser.Get(wrong.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(page), "AADSTS700016") {
		t.Errorf("unknown client: %d %s", resp.StatusCode, page)
	}
	// A wrong secret at the token endpoint.
	q = redirect(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	conf.ClientSecret = "nope"
	if _, err := conf.Exchange(e.oauthCtx(), q.Get("code"), oauth2.VerifierOption(verifier)); !errors.As(err, &re) ||
		re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestConsentCancelRedirectsAccessDenied(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	conf := e.config(e.commonProvider(), oidc.ScopeOpenID)
	q := e.consent(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), oidGrace, "cancel")
	if q.Get("error") != "access_denied" || q.Get("state") != "st" || q.Get("code") != "" {
		t.Fatalf("cancel: %v", q)
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok, conf := e.signIn(oidGrace, graphfake.ScopeCalendarsRead, graphfake.ScopeOfflineAccess)
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	if tok.Extra("id_token") != nil {
		t.Error("id_token without openid")
	}
	refresh := func(rt string) (*oauth2.Token, error) {
		return conf.TokenSource(e.oauthCtx(), &oauth2.Token{RefreshToken: rt}).Token()
	}
	tok2, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the refresh token")
	}
	// The old refresh token is now refused, AADSTS-style.
	_, err = refresh(tok.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || !strings.HasPrefix(re.ErrorDescription, "AADSTS70008:") {
		t.Fatalf("old refresh token: %v", err)
	}
	// The new one works, with Basic client authentication too.
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	tok3, err := refresh(tok2.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with Basic auth: %v", err)
	}
	if r := e.call(http.MethodGet, "/v1.0/me/calendarView/delta?startDateTime=2026-11-25T00:00:00Z&endDateTime=2026-11-26T00:00:00Z", tok3.AccessToken, nil); r.status != http.StatusOK {
		t.Fatalf("delta with refreshed token: %d %s", r.status, r.raw)
	}
	// Revocation: the latest refresh token and access token stop working.
	e.fake.RevokeTokens(oidGrace)
	if _, err := refresh(tok3.RefreshToken); !errors.As(err, &re) || !strings.HasPrefix(re.ErrorDescription, "AADSTS50173:") {
		t.Fatalf("revoked refresh token: %v", err)
	}
	e.want(e.call(http.MethodGet, "/v1.0/me/calendarView/delta?startDateTime=2026-11-25T00:00:00Z&endDateTime=2026-11-26T00:00:00Z", tok3.AccessToken, nil),
		http.StatusUnauthorized, graphfake.CodeInvalidAuthenticationToken)
}

func TestKeepOldRefreshTokens(t *testing.T) {
	e := newEnv(t, graphfake.Options{KeepOldRefreshTokens: true})
	tok, conf := e.signIn(oidGrace, graphfake.ScopePresenceReadWrite, graphfake.ScopeOfflineAccess)
	for range 2 {
		if _, err := conf.TokenSource(e.oauthCtx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Fatalf("refresh: %v", err)
		}
	}
}

// deltaPage is one decoded delta page.
type deltaPage struct {
	Next   string           `json:"@odata.nextLink"`
	Delta  string           `json:"@odata.deltaLink"`
	Values []map[string]any `json:"value"`
}

func (e *env) delta(u, token string, headers ...string) (deltaPage, response) {
	e.t.Helper()
	r := e.call(http.MethodGet, u, token, nil, headers...)
	var p deltaPage
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.raw, &p); err != nil {
			e.t.Fatal(err)
		}
	}
	return p, r
}

// syncAll follows nextLinks from u and returns every item and the deltaLink.
func (e *env) syncAll(u, token string, headers ...string) ([]map[string]any, string, int) {
	e.t.Helper()
	var items []map[string]any
	pages := 0
	for {
		p, r := e.delta(u, token, headers...)
		if r.status != http.StatusOK {
			e.t.Fatalf("GET %s: %d %s", u, r.status, r.raw)
		}
		pages++
		items = append(items, p.Values...)
		switch {
		case p.Next != "" && p.Delta != "":
			e.t.Fatal("a page with both nextLink and deltaLink")
		case p.Next != "":
			if !strings.Contains(p.Next, "$skiptoken=") {
				e.t.Fatalf("nextLink %s", p.Next)
			}
			u = p.Next
		case p.Delta != "":
			if !strings.Contains(p.Delta, "$deltatoken=") {
				e.t.Fatalf("deltaLink %s", p.Delta)
			}
			return items, p.Delta, pages
		default:
			e.t.Fatal("a page with neither nextLink nor deltaLink")
		}
	}
}

func idsOf(items []map[string]any) []string {
	var out []string
	for _, it := range items {
		id, _ := it["id"].(string)
		if _, removed := it["@removed"]; removed {
			id = "-" + id
		}
		out = append(out, id)
	}
	return out
}

func TestDeltaPagingAndIncrementalChanges(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 5 {
		start := day.Add(time.Duration(9+i) * time.Hour)
		ids = append(ids, e.fake.AddEvent(oidGrace, graphfake.Event{
			ID: "ev" + string(rune('A'+i)), Subject: "Meeting", Start: start, End: start.Add(30 * time.Minute),
		}))
	}
	outside := e.fake.AddEvent(oidGrace, graphfake.Event{Subject: "Later", Start: day.AddDate(0, 1, 0), End: day.AddDate(0, 1, 0).Add(time.Hour)})
	e.fake.AddEvent(oidLinus, graphfake.Event{Subject: "Not Grace's", Start: day.Add(9 * time.Hour), End: day.Add(10 * time.Hour)})

	// The SDK's spelling, /users/{id}/calendarView/delta(), with paging.
	first := "/v1.0/users/" + oidGrace + "/calendarView/delta()?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-08T00:00:00Z"
	items, deltaLink, pages := e.syncAll(first, tok, "Prefer", "odata.maxpagesize=2")
	if pages != 3 || !slices.Equal(idsOf(items), ids) {
		t.Fatalf("initial sync: %d pages, ids %v, want 3 pages of %v", pages, idsOf(items), ids)
	}
	ev := items[0]
	start, _ := ev["start"].(map[string]any)
	if start["dateTime"] != "2026-12-01T09:00:00.0000000" || start["timeZone"] != "UTC" {
		t.Errorf("start %v", start)
	}
	rs, _ := ev["responseStatus"].(map[string]any)
	org, _ := ev["organizer"].(map[string]any)
	if ev["showAs"] != "busy" || ev["type"] != "singleInstance" || ev["isCancelled"] != false || ev["isAllDay"] != false ||
		rs["response"] != "organizer" || org["emailAddress"] == nil || ev["@odata.type"] != "#microsoft.graph.event" {
		t.Errorf("event JSON %v", ev)
	}
	if !strings.HasPrefix(deltaLink, e.srv.URL+"/v1.0/users/"+oidGrace+"/calendarView/delta?") {
		t.Errorf("deltaLink %s", deltaLink)
	}

	// Nothing changed: an empty round with a fresh deltaLink.
	items, deltaLink, _ = e.syncAll(deltaLink, tok)
	if len(items) != 0 {
		t.Fatalf("no changes, got %v", idsOf(items))
	}

	// Changes: one moved within the window, one deleted, one added, one
	// moved out of the window, one declined; a change outside the window
	// shows up as removed too.
	if err := e.fake.UpdateEvent(oidGrace, ids[0], func(ev *graphfake.Event) { ev.Start, ev.End = ev.Start.Add(time.Hour), ev.End.Add(time.Hour) }); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.DeleteEvent(oidGrace, ids[1]); err != nil {
		t.Fatal(err)
	}
	added := e.fake.AddEvent(oidGrace, graphfake.Event{Subject: "New", Start: day.Add(15 * time.Hour), End: day.Add(16 * time.Hour),
		ShowAs: "tentative", Response: "tentativelyAccepted", OrganizerEmail: "boss@contoso.example",
		Attendees: []graphfake.Attendee{{Name: "Grace", Address: "grace@contoso.example", Response: "tentativelyAccepted"}}})
	if err := e.fake.UpdateEvent(oidGrace, ids[2], func(ev *graphfake.Event) { ev.Start, ev.End = ev.Start.AddDate(0, 0, 30), ev.End.AddDate(0, 0, 30) }); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.UpdateEvent(oidGrace, outside, func(ev *graphfake.Event) { ev.Subject = "Still later" }); err != nil {
		t.Fatal(err)
	}
	items, _, _ = e.syncAll(deltaLink, tok, "Prefer", "odata.maxpagesize=2")
	want := []string{ids[0], "-" + ids[1], added, "-" + ids[2], "-" + outside}
	if !slices.Equal(idsOf(items), want) {
		t.Fatalf("incremental: %v, want %v", idsOf(items), want)
	}
	if s, _ := items[0]["start"].(map[string]any); s["dateTime"] != "2026-12-01T10:00:00.0000000" {
		t.Errorf("moved event start %v", s)
	}
	if r, _ := items[1]["@removed"].(map[string]any); r["reason"] != "deleted" {
		t.Errorf("removed item %v", items[1])
	}
	rs, _ = items[2]["responseStatus"].(map[string]any)
	if rs["response"] != "tentativelyAccepted" || items[2]["showAs"] != "tentative" || items[2]["isOrganizer"] != false {
		t.Errorf("added event %v", items[2])
	}
}

func TestDeltaRequiresWindowAndCancelledEvents(t *testing.T) {
	e := newEnv(t, graphfake.Options{CancelledAsRemoved: true})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsReadBasic)
	e.want(e.call(http.MethodGet, "/v1.0/me/calendarView/delta", tok, nil), http.StatusBadRequest, graphfake.CodeErrorInvalidParameter)
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	id := e.fake.AddEvent(oidGrace, graphfake.Event{Subject: "x", Start: start, End: start.Add(time.Hour)})
	items, link, _ := e.syncAll("/v1.0/me/calendarview/delta?startdatetime=2026-12-01T00:00:00&enddatetime=2026-12-02T00:00:00", tok)
	if len(items) != 1 {
		t.Fatalf("items %v", idsOf(items))
	}
	_ = e.fake.UpdateEvent(oidGrace, id, func(ev *graphfake.Event) { ev.IsCancelled = true })
	items, _, _ = e.syncAll(link, tok)
	if !slices.Equal(idsOf(items), []string{"-" + id}) {
		t.Fatalf("cancelled with CancelledAsRemoved: %v", idsOf(items))
	}
}

func TestInvalidDeltaTokenIs410(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	day := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		e.fake.AddEvent(oidGrace, graphfake.Event{Subject: "m", Start: day.Add(time.Duration(i) * time.Hour), End: day.Add(time.Duration(i)*time.Hour + 30*time.Minute)})
	}
	first := "/v1.0/me/calendarView/delta?startDateTime=2026-12-01T00:00:00Z&endDateTime=2026-12-02T00:00:00Z"
	p, _ := e.delta(first, tok, "Prefer", "odata.maxpagesize=1")
	_, deltaLink, _ := e.syncAll(first, tok)
	e.fake.InvalidateDeltaTokens(oidGrace)
	_, r := e.delta(deltaLink, tok)
	e.want(r, http.StatusGone, graphfake.CodeSyncStateNotFound)
	_, r = e.delta(p.Next, tok)
	e.want(r, http.StatusGone, graphfake.CodeSyncStateNotFound)
	_, r = e.delta("/v1.0/me/calendarView/delta?$deltatoken=made-up", tok)
	e.want(r, http.StatusGone, graphfake.CodeSyncStateNotFound)
	// Another user's token is no good either.
	other := e.fake.IssueToken(oidLinus, graphfake.ScopeCalendarsRead)
	_, fresh, _ := e.syncAll(first, tok)
	_, r = e.delta(fresh, other)
	e.want(r, http.StatusGone, graphfake.CodeSyncStateNotFound)
	// A full sync starts over.
	if items, _, _ := e.syncAll(first, tok); len(items) != 3 {
		t.Fatalf("resync: %v", idsOf(items))
	}

	e2 := newEnv(t, graphfake.Options{SyncStateStatus: http.StatusBadRequest, SyncStateCode: "resyncRequired"})
	tok2 := e2.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	_, r = e2.delta("/v1.0/me/calendarView/delta?$deltatoken=x", tok2)
	e2.want(r, http.StatusBadRequest, "resyncRequired")
}

func TestOutlookTimezonePreference(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	if err := e.fake.SetMailboxTimeZone(oidGrace, "W. Europe Standard Time"); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	e.fake.AddEvent(oidGrace, graphfake.Event{Subject: "Late", Start: start, End: start.Add(90 * time.Minute)})
	e.fake.AddEvent(oidGrace, graphfake.Event{Subject: "Holiday", IsAllDay: true, ShowAs: "oof",
		Start: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)})
	u := "/v1.0/me/calendarView/delta?startDateTime=2026-12-01T00:00:00-08:00&endDateTime=2026-12-03T00:00:00-08:00"
	p, r := e.delta(u, tok, "Prefer", `outlook.timezone="Pacific Standard Time"`, "Prefer", "odata.maxpagesize=10")
	if r.status != http.StatusOK || len(p.Values) != 2 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if got := r.header.Get("Preference-Applied"); !strings.Contains(got, `outlook.timezone="Pacific Standard Time"`) || !strings.Contains(got, "odata.maxpagesize=10") {
		t.Errorf("Preference-Applied %q", got)
	}
	s0, _ := p.Values[0]["start"].(map[string]any)
	e0, _ := p.Values[0]["end"].(map[string]any)
	if s0["dateTime"] != "2026-12-01T09:00:00.0000000" || e0["dateTime"] != "2026-12-01T10:30:00.0000000" || s0["timeZone"] != "Pacific Standard Time" {
		t.Errorf("timed event in Pacific time: %v – %v", s0, e0)
	}
	s1, _ := p.Values[1]["start"].(map[string]any)
	if s1["dateTime"] != "2026-12-02T00:00:00.0000000" || p.Values[1]["isAllDay"] != true || p.Values[1]["showAs"] != "oof" ||
		p.Values[1]["originalStartTimeZone"] != "W. Europe Standard Time" {
		t.Errorf("all-day event: %v", p.Values[1])
	}
	// Without the preference times are UTC.
	p, _ = e.delta(u, tok)
	if s, _ := p.Values[0]["start"].(map[string]any); s["dateTime"] != "2026-12-01T17:00:00.0000000" || s["timeZone"] != "UTC" {
		t.Errorf("default zone: %v", s)
	}
	_, r = e.delta(u, tok, "Prefer", `outlook.timezone="Mars Standard Time"`)
	e.want(r, http.StatusBadRequest, "TimeZoneNotSupportedException")
}

func TestMe(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeUserRead)
	r := e.call(http.MethodGet, "/v1.0/me", tok, nil)
	if r.status != http.StatusOK || r.body["id"] != oidGrace || r.body["displayName"] != "Grace Hopper" ||
		r.body["userPrincipalName"] != "grace@contoso.example" || r.body["mail"] != "grace@contoso.example" {
		t.Fatalf("/me: %d %s", r.status, r.raw)
	}
	// Another user needs User.ReadBasic.All.
	e.want(e.call(http.MethodGet, "/v1.0/users/"+oidLinus, tok, nil), http.StatusForbidden, graphfake.CodeAuthorizationRequestDenied)
	// Another tenant's user does not exist from here.
	e.want(e.call(http.MethodGet, "/v1.0/users/"+oidOther, tok, nil), http.StatusNotFound, graphfake.CodeRequestResourceNotFound)
}

func TestTokenAndScopeErrors(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	cal := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	presence := "/v1.0/me/presence"
	e.want(e.call(http.MethodGet, presence, "", nil), http.StatusUnauthorized, graphfake.CodeInvalidAuthenticationToken)
	if r := e.call(http.MethodGet, presence, "", nil); !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Error("401 without WWW-Authenticate")
	}
	e.want(e.call(http.MethodGet, presence, "garbage", nil), http.StatusUnauthorized, graphfake.CodeInvalidAuthenticationToken)
	e.want(e.call(http.MethodGet, presence, cal, nil), http.StatusForbidden, graphfake.CodeForbidden)
	e.want(e.call(http.MethodGet, "/v1.0/me", cal, nil), http.StatusForbidden, graphfake.CodeAuthorizationRequestDenied)
	pres := e.fake.IssueToken(oidGrace, graphfake.ScopePresenceRead)
	e.want(e.call(http.MethodGet, "/v1.0/me/calendarView/delta?startDateTime=2026-12-01&endDateTime=2026-12-02", pres, nil),
		http.StatusForbidden, graphfake.CodeErrorAccessDenied)
	e.want(e.call(http.MethodPost, "/v1.0/me/presence/setPresence", pres, map[string]string{"sessionId": e.fake.ClientID()}),
		http.StatusForbidden, graphfake.CodeForbidden)
	// Another user's calendar is not readable with delegated Calendars.Read.
	e.want(e.call(http.MethodGet, "/v1.0/users/"+oidLinus+"/calendarView/delta?startDateTime=2026-12-01&endDateTime=2026-12-02", cal, nil),
		http.StatusForbidden, graphfake.CodeErrorAccessDenied)
	// The SDK without its URL replacement middleware.
	e.want(e.call(http.MethodGet, "/v1.0/users/me-token-to-replace/presence", pres, nil), http.StatusNotFound, graphfake.CodeRequestResourceNotFound)
	// Unknown segments and methods.
	e.want(e.call(http.MethodGet, "/v1.0/me/nothing", pres, nil), http.StatusBadRequest, graphfake.CodeBadRequest)
	e.want(e.call(http.MethodDelete, presence, pres, nil), http.StatusMethodNotAllowed, graphfake.CodeMethodNotAllowed)
	// Expiry on the fake clock.
	e.clock.Advance(time.Hour)
	r := e.call(http.MethodGet, presence, pres, nil)
	e.want(r, http.StatusUnauthorized, graphfake.CodeInvalidAuthenticationToken)
	if e, _ := r.body["error"].(map[string]any); !strings.Contains(e["message"].(string), "expired") {
		t.Errorf("expired token message %v", e)
	}
}

func (e *env) setPresence(token string, body map[string]string) response {
	e.t.Helper()
	return e.call(http.MethodPost, "/v1.0/me/presence/setPresence", token, body)
}

func TestPresenceSessionPrecedenceAndExpiry(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopePresenceReadWrite)
	app := e.fake.ClientID()
	if p := e.fake.Presence(oidGrace); p.Availability != "Offline" || p.Activity != "Offline" {
		t.Fatalf("no session: %+v", p)
	}
	// The person is in Teams, Available.
	_ = e.fake.SetClientSession(oidGrace, "Available", "Available", time.Time{})
	r := e.setPresence(tok, map[string]string{"sessionId": app, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"})
	if r.status != http.StatusOK || len(r.raw) != 0 {
		t.Fatalf("setPresence: %d %s", r.status, r.raw)
	}
	g := e.call(http.MethodGet, "/v1.0/me/presence", tok, nil)
	if g.body["availability"] != "Busy" || g.body["activity"] != "InACall" || g.body["id"] != oidGrace {
		t.Fatalf("presence %s", g.raw)
	}
	p := e.fake.Presence(oidGrace)
	if len(p.Sessions) != 2 || p.Sessions[0].ID != app || !p.Sessions[0].Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("sessions %+v", p.Sessions)
	}
	// DoNotDisturb outranks Busy, whoever set it.
	_ = e.fake.SetClientSession(oidGrace, "DoNotDisturb", "Presenting", time.Time{})
	if p := e.fake.Presence(oidGrace); p.Availability != "DoNotDisturb" {
		t.Fatalf("DND vs Busy: %+v", p)
	}
	// The user's preferred presence outranks every session.
	_ = e.fake.SetUserPreferredPresence(oidGrace, "Away", "Away", time.Time{})
	if p := e.fake.Presence(oidGrace); p.Availability != "Away" || p.Preferred == nil || !p.Preferred.Expires.Equal(t0.Add(7*24*time.Hour)) {
		t.Fatalf("preferred: %+v", p)
	}
	_ = e.fake.ClearUserPreferredPresence(oidGrace)
	_ = e.fake.SetClientSession(oidGrace, "Away", "Away", time.Time{})
	if p := e.fake.Presence(oidGrace); p.Availability != "Busy" {
		t.Fatalf("Busy vs Away: %+v", p)
	}
	// The app session expires after an hour.
	e.clock.Advance(time.Hour)
	if p := e.fake.Presence(oidGrace); p.Availability != "Away" || len(p.Sessions) != 1 {
		t.Fatalf("after expiry: %+v", p)
	}
	_ = e.fake.SetClientSession(oidGrace, "", "", time.Time{})
	tok = e.fake.IssueToken(oidGrace, graphfake.ScopePresenceReadWrite) // the first expired with the session
	// Default duration is five minutes.
	_ = e.setPresence(tok, map[string]string{"sessionId": app, "availability": "DoNotDisturb", "activity": "Presenting"})
	if p := e.fake.Presence(oidGrace); p.Availability != "DoNotDisturb" || !p.Sessions[0].Expires.Equal(e.clock.Now().Add(5*time.Minute)) {
		t.Fatalf("default duration: %+v", p)
	}
	// clearPresence removes the session; a second clear is 404.
	if r := e.call(http.MethodPost, "/v1.0/me/presence/clearPresence", tok, map[string]string{"sessionId": app}); r.status != http.StatusOK {
		t.Fatalf("clearPresence: %d %s", r.status, r.raw)
	}
	if p := e.fake.Presence(oidGrace); p.Availability != "Offline" {
		t.Fatalf("after clear: %+v", p)
	}
	e.want(e.call(http.MethodPost, "/v1.0/me/presence/clearPresence", tok, map[string]string{"sessionId": app}), http.StatusNotFound, graphfake.CodeNotFound)
	// Preferred presence over the API is only shown while a session exists.
	if r := e.call(http.MethodPost, "/v1.0/users/"+oidGrace+"/presence/setUserPreferredPresence", tok,
		map[string]string{"availability": "DoNotDisturb", "activity": "DoNotDisturb"}); r.status != http.StatusOK {
		t.Fatalf("setUserPreferredPresence: %d %s", r.status, r.raw)
	}
	if p := e.fake.Presence(oidGrace); p.Availability != "Offline" || p.Preferred == nil || !p.Preferred.Expires.Equal(e.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("preferred without session: %+v", p)
	}
	_ = e.setPresence(tok, map[string]string{"sessionId": app, "availability": "Available", "activity": "Available", "expirationDuration": "PT4H"})
	if p := e.fake.Presence(oidGrace); p.Availability != "DoNotDisturb" {
		t.Fatalf("preferred with session: %+v", p)
	}
	if r := e.call(http.MethodPost, "/v1.0/me/presence/clearUserPreferredPresence", tok, nil); r.status != http.StatusOK {
		t.Fatalf("clearUserPreferredPresence: %d", r.status)
	}
	if p := e.fake.Presence(oidGrace); p.Availability != "Available" {
		t.Fatalf("after clearing preferred: %+v", p)
	}
}

func TestSetPresenceValidation(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopePresenceReadWrite)
	app := e.fake.ClientID()
	for _, tc := range []struct {
		name string
		body map[string]string
	}{
		{"invalid pair", map[string]string{"sessionId": app, "availability": "Busy", "activity": "Busy"}},
		{"unknown availability", map[string]string{"sessionId": app, "availability": "Offline", "activity": "OffWork"}},
		{"too short", map[string]string{"sessionId": app, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT4M"}},
		{"too long", map[string]string{"sessionId": app, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT4H1M"}},
		{"not a duration", map[string]string{"sessionId": app, "availability": "Busy", "activity": "InACall", "expirationDuration": "1h"}},
		{"other session", map[string]string{"sessionId": "11111111-2222-3333-4444-555555555555", "availability": "Busy", "activity": "InACall"}},
		{"no session", map[string]string{"availability": "Busy", "activity": "InACall"}},
	} {
		e.want(e.setPresence(tok, tc.body), http.StatusBadRequest, graphfake.CodeBadRequest)
	}
	if p := e.fake.Presence(oidGrace); len(p.Sessions) != 0 {
		t.Fatalf("a refused request left a session: %+v", p.Sessions)
	}
	e.want(e.call(http.MethodPost, "/v1.0/me/presence/setPresence", tok, nil), http.StatusBadRequest, graphfake.CodeBadRequest)
	for _, d := range []string{"PT5M", "PT4H", "PT1H30M", "PT300S"} {
		if r := e.setPresence(tok, map[string]string{"sessionId": app, "availability": "Busy", "activity": "InAConferenceCall", "expirationDuration": d}); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", d, r.status, r.raw)
		}
	}
	e.want(e.call(http.MethodPost, "/v1.0/me/presence/setUserPreferredPresence", tok, map[string]string{"availability": "Busy", "activity": "InACall"}),
		http.StatusBadRequest, graphfake.CodeBadRequest)
	// Writing another user's presence needs Presence.ReadWrite.All.
	e.want(e.call(http.MethodPost, "/v1.0/users/"+oidLinus+"/presence/setPresence", tok,
		map[string]string{"sessionId": app, "availability": "Busy", "activity": "InACall"}), http.StatusForbidden, graphfake.CodeForbidden)
}

func TestSetStatusMessageWithExpiry(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopePresenceReadWrite)
	body := map[string]any{"statusMessage": map[string]any{
		"message":        map[string]string{"content": "Out of office until Monday <3", "contentType": "text"},
		"expiryDateTime": map[string]string{"dateTime": "2026-11-25T03:30:00.0000000", "timeZone": "Pacific Standard Time"},
	}}
	if r := e.call(http.MethodPost, "/v1.0/me/presence/setStatusMessage", tok, body); r.status != http.StatusOK {
		t.Fatalf("setStatusMessage: %d %s", r.status, r.raw)
	}
	p := e.fake.Presence(oidGrace)
	want := time.Date(2026, 11, 25, 11, 30, 0, 0, time.UTC)
	if sm := p.StatusMessage; sm == nil || sm.Content != "Out of office until Monday <3" || !sm.Expiry.Equal(want) || !sm.SetByApp {
		t.Fatalf("status message %+v", p.StatusMessage)
	}
	g := e.call(http.MethodGet, "/v1.0/me/presence", tok, nil)
	sm, _ := g.body["statusMessage"].(map[string]any)
	exp, _ := sm["expiryDateTime"].(map[string]any)
	if exp["dateTime"] != "2026-11-25T03:30:00.0000000" || exp["timeZone"] != "Pacific Standard Time" {
		t.Errorf("GET statusMessage %v", sm)
	}
	// Another user sees the message without its expiry.
	other := e.fake.IssueToken(oidLinus, graphfake.ScopePresenceReadAll)
	g = e.call(http.MethodGet, "/v1.0/users/grace@contoso.example/presence", other, nil)
	if sm, _ := g.body["statusMessage"].(map[string]any); sm["message"] == nil || sm["expiryDateTime"] != nil {
		t.Errorf("others see %v", sm)
	}
	e.clock.Advance(2*time.Hour + 30*time.Minute)
	if p := e.fake.Presence(oidGrace); p.StatusMessage != nil {
		t.Fatalf("expired message still there: %+v", p.StatusMessage)
	}
	tok = e.fake.IssueToken(oidGrace, graphfake.ScopePresenceReadWrite)
	g = e.call(http.MethodGet, "/v1.0/me/presence", tok, nil)
	if _, ok := g.body["statusMessage"]; g.status != http.StatusOK || !ok || g.body["statusMessage"] != nil {
		t.Errorf("GET after expiry %d %s", g.status, g.raw)
	}
	// The person's own message, no expiry.
	_ = e.fake.SetUserStatusMessage(oidGrace, "Writing", time.Time{})
	if sm := e.fake.Presence(oidGrace).StatusMessage; sm == nil || sm.SetByApp || !sm.Expiry.IsZero() {
		t.Fatalf("own message %+v", sm)
	}
	e.want(e.call(http.MethodPost, "/v1.0/me/presence/setStatusMessage", tok, map[string]any{"statusMessage": map[string]any{
		"message":        map[string]string{"content": "x"},
		"expiryDateTime": map[string]string{"dateTime": "2026-11-25T03:30:00", "timeZone": "Nowhere Standard Time"},
	}}), http.StatusBadRequest, "TimeZoneNotSupportedException")
}

// receiver is a webhook endpoint that answers validation requests in one of
// several ways and queues notification bodies.
type receiver struct {
	srv   *httptest.Server
	mode  string // ok, encoded, status500, json
	mu    sync.Mutex
	tokns []string
	got   chan []byte
}

func newReceiver(t *testing.T, mode string) *receiver {
	rc := &receiver{mode: mode, got: make(chan []byte, 16)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			rc.mu.Lock()
			rc.tokns = append(rc.tokns, tok)
			rc.mu.Unlock()
			switch rc.mode {
			case "encoded":
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, url.QueryEscape(tok))
			case "status500":
				http.Error(w, "boom", http.StatusInternalServerError)
			case "json":
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tok)
			default:
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				_, _ = io.WriteString(w, tok)
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		rc.got <- b
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func subBody(notificationURL, changeType string, exp time.Time) map[string]any {
	return map[string]any{
		"changeType":         changeType,
		"notificationUrl":    notificationURL,
		"resource":           "me/events",
		"expirationDateTime": exp.Format(time.RFC3339),
		"clientState":        "s3cret-state",
	}
}

func TestSubscriptionValidationHandshake(t *testing.T) {
	e := newEnv(t, graphfake.Options{AllowHTTPWebhooks: true})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	good := newReceiver(t, "ok")
	exp := t0.Add(48 * time.Hour)
	r := e.call(http.MethodPost, "/v1.0/subscriptions", tok, subBody(good.srv.URL+"/webhooks/microsoft", "created,updated,deleted", exp))
	if r.status != http.StatusCreated || r.body["id"] == "" || r.body["expirationDateTime"] != "2026-11-27T09:00:00.0000000Z" ||
		r.body["clientState"] != "s3cret-state" || r.body["applicationId"] != e.fake.ClientID() {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	good.mu.Lock()
	tokens := slices.Clone(good.tokns)
	good.mu.Unlock()
	if len(tokens) != 1 || !strings.Contains(tokens[0], " ") {
		t.Fatalf("validation tokens %q (want one with spaces, to catch echoing it still encoded)", tokens)
	}
	id := r.body["id"].(string)
	subs := e.fake.Subscriptions()
	if len(subs) != 1 || subs[0].UserID != oidGrace || subs[0].ChangeType != "created,updated,deleted" {
		t.Fatalf("subscriptions %+v", subs)
	}
	for _, mode := range []string{"encoded", "status500", "json"} {
		bad := newReceiver(t, mode)
		e.want(e.call(http.MethodPost, "/v1.0/subscriptions", tok, subBody(bad.srv.URL, "updated", exp)), http.StatusBadRequest, graphfake.CodeValidationError)
	}
	if n := len(e.fake.Subscriptions()); n != 1 {
		t.Fatalf("failed validations created subscriptions: %d", n)
	}
	ds := e.fake.Deliveries()
	if len(ds) != 4 || ds[0].Status != 200 || ds[0].Err != "" || ds[1].Err != "token mismatch" || ds[2].Status != 500 {
		t.Errorf("validation deliveries %+v", ds)
	}
	// Lifetime over the maximum (4,230 minutes by default).
	e.want(e.call(http.MethodPost, "/v1.0/subscriptions", tok, subBody(good.srv.URL, "updated", t0.Add(4231*time.Minute))), http.StatusBadRequest, graphfake.CodeInvalidRequest)
	// Renew, then delete.
	r = e.call(http.MethodPatch, "/v1.0/subscriptions/"+id, tok, map[string]string{"expirationDateTime": t0.Add(70 * time.Hour).Format(time.RFC3339)})
	if r.status != http.StatusOK || r.body["expirationDateTime"] != "2026-11-28T07:00:00.0000000Z" {
		t.Fatalf("renew: %d %s", r.status, r.raw)
	}
	e.want(e.call(http.MethodPatch, "/v1.0/subscriptions/"+id, tok, map[string]string{"expirationDateTime": t0.Add(80 * time.Hour).Format(time.RFC3339)}),
		http.StatusBadRequest, graphfake.CodeInvalidRequest)
	if r := e.call(http.MethodDelete, "/v1.0/subscriptions/"+id, tok, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.status)
	}
	e.want(e.call(http.MethodDelete, "/v1.0/subscriptions/"+id, tok, nil), http.StatusNotFound, graphfake.CodeResourceNotFound)
}

func TestSubscriptionRequiresHTTPSAndScope(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	good := newReceiver(t, "ok")
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	e.want(e.call(http.MethodPost, "/v1.0/subscriptions", tok, subBody(good.srv.URL, "updated", t0.Add(time.Hour))), http.StatusBadRequest, graphfake.CodeValidationError)
	if len(e.fake.Deliveries()) != 0 {
		t.Error("an http URL was called without AllowHTTPWebhooks")
	}
	pres := e.fake.IssueToken(oidGrace, graphfake.ScopePresenceRead)
	e.want(e.call(http.MethodPost, "/v1.0/subscriptions", pres, subBody("https://app.example.test/webhooks/microsoft", "updated", t0.Add(time.Hour))),
		http.StatusForbidden, graphfake.CodeForbidden)
}

func TestChangeNotificationDelivery(t *testing.T) {
	e := newEnv(t, graphfake.Options{AllowHTTPWebhooks: true})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	rc := newReceiver(t, "ok")
	r := e.call(http.MethodPost, "/v1.0/subscriptions", tok, subBody(rc.srv.URL, "created,updated,deleted", t0.Add(24*time.Hour)))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	subID := r.body["id"].(string)
	// Updates only, on another subscription.
	onlyUpdates := newReceiver(t, "ok")
	body := subBody(onlyUpdates.srv.URL, "updated", t0.Add(24*time.Hour))
	body["resource"] = "/users/" + oidGrace + "/events"
	if r := e.call(http.MethodPost, "/v1.0/subscriptions", tok, body); r.status != http.StatusCreated {
		t.Fatalf("create 2: %d %s", r.status, r.raw)
	}

	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	id := e.fake.AddEvent(oidGrace, graphfake.Event{Subject: "Planning", Start: start, End: start.Add(time.Hour)})
	e.fake.AddEvent(oidLinus, graphfake.Event{Subject: "Not watched", Start: start, End: start.Add(time.Hour)})
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	var got []byte
	select {
	case got = <-rc.got:
	case <-ctx.Done():
		t.Fatal("no notification")
	}
	var n struct {
		Value []struct {
			SubscriptionID                 string
			SubscriptionExpirationDateTime string
			ChangeType                     string
			Resource                       string
			ClientState                    string
			TenantID                       string
			ResourceData                   map[string]any
		}
	}
	if err := json.Unmarshal(got, &n); err != nil || len(n.Value) != 1 {
		t.Fatalf("notification %s: %v", got, err)
	}
	v := n.Value[0]
	if v.SubscriptionID != subID || v.ChangeType != "created" || v.ClientState != "s3cret-state" || v.TenantID != tenantA ||
		v.Resource != "Users/"+oidGrace+"/Events/"+id || v.ResourceData["id"] != id || v.ResourceData["@odata.type"] != "#Microsoft.Graph.Event" ||
		v.SubscriptionExpirationDateTime == "" {
		t.Errorf("notification %s", got)
	}
	if err := e.fake.UpdateEvent(oidGrace, id, func(ev *graphfake.Event) { ev.Start = ev.Start.Add(time.Hour); ev.End = ev.End.Add(time.Hour) }); err != nil {
		t.Fatal(err)
	}
	ds, err := e.fake.WaitForNotification(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Status != http.StatusAccepted || d.Err != "" {
			t.Errorf("delivery %+v", d)
		}
	}
	select {
	case b := <-onlyUpdates.got:
		if !bytes.Contains(b, []byte(`"changeType":"updated"`)) {
			t.Errorf("updates-only subscription got %s", b)
		}
	case <-ctx.Done():
		t.Fatal("no update notification")
	}
	<-rc.got // the update on the first subscription
	if len(onlyUpdates.got) != 0 {
		t.Error("updates-only subscription got the creation")
	}
	// After expiry, no more notifications.
	e.clock.Advance(25 * time.Hour)
	_ = e.fake.DeleteEvent(oidGrace, id)
	if n, _ := e.fake.Notify(oidGrace, id); n != 0 || len(e.fake.Subscriptions()) != 0 {
		t.Errorf("expired subscriptions notified %d", n)
	}
}

func TestManualNotificationsAndLifecycle(t *testing.T) {
	e := newEnv(t, graphfake.Options{AllowHTTPWebhooks: true, ManualNotifications: true})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopeCalendarsRead)
	rc := newReceiver(t, "ok")
	body := subBody(rc.srv.URL, "updated", t0.Add(time.Hour))
	body["lifecycleNotificationUrl"] = rc.srv.URL + "/lifecycle"
	r := e.call(http.MethodPost, "/v1.0/subscriptions", tok, body)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if n := len(e.fake.Deliveries()); n != 2 {
		t.Errorf("want both URLs validated, got %d validations", n)
	}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	id := e.fake.AddEvent(oidGrace, graphfake.Event{Subject: "x", Start: start, End: start.Add(time.Hour)})
	_ = e.fake.UpdateEvent(oidGrace, id, func(ev *graphfake.Event) { ev.Subject = "y" })
	if n, err := e.fake.Notify(oidGrace, id); n != 1 || err != nil {
		t.Fatalf("Notify: %d %v", n, err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if _, err := e.fake.WaitForNotification(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.SendLifecycleNotification(r.body["id"].(string), "subscriptionRemoved"); err != nil {
		t.Fatal(err)
	}
	ds, err := e.fake.WaitForDelivery(ctx, graphfake.DeliveryLifecycle, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ds[0].Payload, []byte(`"lifecycleEvent":"subscriptionRemoved"`)) || len(e.fake.Subscriptions()) != 0 {
		t.Errorf("lifecycle %s", ds[0].Payload)
	}
	if got := len(e.fake.Deliveries()); got != 4 {
		t.Errorf("deliveries %d: manual mode sent automatic notifications", got)
	}
}

func TestThrottlingRetryAfter(t *testing.T) {
	e := newEnv(t, graphfake.Options{
		PresenceLimit: graphfake.RateLimit{Requests: 2, Window: 30 * time.Second},
		OutlookLimit:  graphfake.RateLimit{Requests: 1, Window: 10 * time.Minute},
	})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopePresenceReadWrite, graphfake.ScopeCalendarsRead)
	linus := e.fake.IssueToken(oidLinus, graphfake.ScopePresenceRead, graphfake.ScopeCalendarsRead)
	for range 2 {
		if r := e.call(http.MethodGet, "/v1.0/me/presence", tok, nil); r.status != http.StatusOK {
			t.Fatalf("%d", r.status)
		}
	}
	e.clock.Advance(10 * time.Second)
	r := e.call(http.MethodGet, "/v1.0/me/presence", tok, nil)
	e.want(r, http.StatusTooManyRequests, graphfake.CodeTooManyRequests)
	if r.header.Get("Retry-After") != "20" {
		t.Errorf("Retry-After %q, want 20", r.header.Get("Retry-After"))
	}
	// The presence budget is per tenant: Linus shares it.
	e.want(e.call(http.MethodGet, "/v1.0/me/presence", linus, nil), http.StatusTooManyRequests, graphfake.CodeTooManyRequests)
	e.clock.Advance(20 * time.Second)
	if r := e.call(http.MethodGet, "/v1.0/me/presence", tok, nil); r.status != http.StatusOK {
		t.Fatalf("after the window: %d", r.status)
	}
	// The Outlook budget is per mailbox.
	u := "/v1.0/me/calendarView/delta?startDateTime=2026-12-01&endDateTime=2026-12-02"
	if r := e.call(http.MethodGet, u, tok, nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	r = e.call(http.MethodGet, u, tok, nil)
	e.want(r, http.StatusTooManyRequests, graphfake.CodeTooManyRequests)
	if r.header.Get("Retry-After") != "600" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if r := e.call(http.MethodGet, u, linus, nil); r.status != http.StatusOK {
		t.Fatalf("another mailbox: %d", r.status)
	}
}

func TestFailNext(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	tok := e.fake.IssueToken(oidGrace, graphfake.ScopePresenceReadWrite)
	e.fake.FailNext("/v1.0/me/presence", http.StatusServiceUnavailable, "")
	e.fake.FailNext(graphfake.EndpointPresenceGet, http.StatusTooManyRequests, "")
	r := e.call(http.MethodPost, "/v1.0/me/presence/setPresence", tok, map[string]string{"sessionId": e.fake.ClientID(), "availability": "Busy", "activity": "InACall"})
	e.want(r, http.StatusServiceUnavailable, graphfake.CodeServiceUnavailable)
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if p := e.fake.Presence(oidGrace); len(p.Sessions) != 0 {
		t.Error("a failed request took effect")
	}
	e.want(e.call(http.MethodGet, "/v1.0/me/presence", tok, nil), http.StatusTooManyRequests, graphfake.CodeTooManyRequests)
	if r := e.call(http.MethodGet, "/v1.0/me/presence", tok, nil); r.status != http.StatusOK {
		t.Fatalf("fault not one-shot: %d", r.status)
	}
	// Identity endpoints fail with OAuth error bodies.
	e.fake.FailNext(graphfake.EndpointToken, http.StatusBadRequest, "invalid_grant")
	conf := &oauth2.Config{ClientID: e.fake.ClientID(), ClientSecret: e.fake.ClientSecret(),
		Endpoint: oauth2.Endpoint{TokenURL: e.srv.URL + "/common/oauth2/v2.0/token"}}
	_, err := conf.TokenSource(e.oauthCtx(), &oauth2.Token{RefreshToken: "x"}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("token fault: %v", err)
	}
	calls := e.fake.CallsTo(graphfake.EndpointSetPresence)
	if len(calls) != 1 || calls[0].Status != http.StatusServiceUnavailable || calls[0].User != oidGrace {
		t.Errorf("calls %+v", calls)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	if _, err := e.fake.WaitForCall(ctx, graphfake.EndpointPresenceGet, 2); err != nil {
		t.Fatal(err)
	}
}

func TestSandboxPageEscapesAndAddsEvents(t *testing.T) {
	e := newEnv(t, graphfake.Options{})
	start := t0.Add(time.Hour)
	e.fake.AddEvent(oidGrace, graphfake.Event{Subject: `<script>alert("x")</script>`, Start: start, End: start.Add(time.Hour)})
	_ = e.fake.SetUserStatusMessage(oidGrace, "<b>busy</b>", time.Time{})
	r := e.call(http.MethodGet, "/", "", nil)
	page := string(r.raw)
	if r.status != http.StatusOK || !strings.Contains(page, "Sandbox Microsoft") || strings.Contains(page, "<script>") || strings.Contains(page, "<b>busy") ||
		!strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "Grace Hopper") {
		t.Fatalf("page %d:\n%s", r.status, page)
	}
	resp, err := e.noRedirects().PostForm(e.srv.URL+"/_sandbox/events", url.Values{
		"oid": {oidLinus}, "start_in_minutes": {"5"}, "duration_minutes": {"30"}, "show_as": {"oof"}, "subject": {"Away & out"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add event: %d", resp.StatusCode)
	}
	evs := e.fake.Events(oidLinus)
	if len(evs) != 1 || evs[0].ShowAs != "oof" || evs[0].Subject != "Away & out" || !evs[0].Start.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("events %+v", evs)
	}
	resp, err = e.noRedirects().PostForm(e.srv.URL+"/_sandbox/events", url.Values{"oid": {oidLinus}, "start_in_minutes": {"x"}, "duration_minutes": {"30"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad form: %d", resp.StatusCode)
	}
}

func TestDefaultAccount(t *testing.T) {
	fake := graphfake.New(graphfake.Options{SigningKey: testKey()})
	defer fake.Close()
	users := fake.Users()
	if len(users) != 1 || users[0].ObjectID != graphfake.DefaultOID || users[0].TenantID != graphfake.DefaultTenantID || users[0].TimeZone != "UTC" {
		t.Fatalf("users %+v", users)
	}
	if len(fake.ClientID()) != 36 || fake.ClientSecret() == "" {
		t.Errorf("client id %q", fake.ClientID())
	}
}
