package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York wherever the tests run

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
	"github.com/dontinterrupt/dontinterrupt/integrations/alexa/alexafake"
	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
	"github.com/dontinterrupt/dontinterrupt/web"
)

const (
	alexaClientID     = "alexa-skill-test"
	alexaClientSecret = "alexa-client-secret-0123456789"
	alexaRedirect     = "https://pitangui.amazon.com/api/skill/link/TEST"
	alexaSkillID      = alexafake.DefaultSkillID
	// fixtureToken and fixtureTimestamp are what the documented envelopes of
	// integrations/alexa/testdata/requests carry; the tests put a real token and now there.
	fixtureToken     = "Atza|linked-example-token-0001"
	fixtureTimestamp = "2026-05-01T09:00:00Z"
	// alexaHelpText is what the skill says you can say.
	alexaHelpText = "You can say: I'm focusing for 45 minutes, focus until 3 PM, I'm back, pause, resume, or what's my status."
)

// alexaEpoch is Tuesday 5 May 2026, 14:30 in New York (EDT, UTC-4), a working hour.
var alexaEpoch = time.Date(2026, 5, 5, 18, 30, 0, 0, time.UTC)

// alexaEnv is the web server with our OAuth server and the skill endpoint on, and alexafake
// playing Alexa. The server, the verifier and the fake share one fake clock (fosite keeps
// its own, real, clock for token lifetimes; alexaEpoch lies before it, so the bolt store
// never sees a token record as expired).
type alexaEnv struct {
	*env
	fc   *clock.Fake
	fake *alexafake.Fake
}

func newAlexaEnv(t *testing.T) *alexaEnv {
	t.Helper()
	a := &alexaEnv{fc: clock.NewFake(alexaEpoch)}
	a.fake = alexafake.New(alexafake.Options{SkillID: alexaSkillID, Now: a.fc.Now})
	a.env = newEnv(t, envOptions{clock: a.fc, configure: func(e *env, d *web.Deps) {
		d.OAuthClient = &web.OAuthClient{ID: alexaClientID, Secret: alexaClientSecret, RedirectURIs: []string{alexaRedirect}}
		d.Alexa = &alexa.Verifier{SkillID: alexaSkillID, Roots: a.fake.Roots(), Fetch: a.fake.Fetch, Now: a.fc.Now}
	}})
	return a
}

// linkConfig is the skill's account-linking configuration, with the env's browser (its cookie
// jar) answering our pages: signing in with Google if asked, then pressing Allow.
func (a *alexaEnv) linkConfig(basic, pkce bool) alexafake.LinkConfig {
	return alexafake.LinkConfig{
		AuthorizeURL: a.base + "/oauth/authorize", TokenURL: a.base + "/oauth/token",
		ClientID: alexaClientID, ClientSecret: alexaClientSecret, RedirectURI: alexaRedirect,
		Scope: "status", UseBasicAuth: basic, PKCE: pkce,
		HTTPClient: a.client,
		Browser:    a.browser("allow", nil),
	}
}

// browser completes our pages as the person would: on the sign-in page it signs in with
// Google (the sign-in returns to the linking request), on the consent page it presses the
// button decision ("allow" or "deny"), as sandbox.go does. Each page is appended to pages
// ("sign-in <url>", "consent <url>").
func (a *alexaEnv) browser(decision string, pages *[]string) func(context.Context, *http.Client, *http.Response) (*http.Response, error) {
	return func(ctx context.Context, hc *http.Client, page *http.Response) (*http.Response, error) {
		body, err := io.ReadAll(page.Body)
		if err != nil {
			return nil, err
		}
		var req *http.Request
		switch {
		case bytes.Contains(body, []byte(`name="decision"`)):
			if pages != nil {
				*pages = append(*pages, "consent "+page.Request.URL.String())
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, page.Request.URL.String(), strings.NewReader("decision="+decision))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		case bytes.Contains(body, []byte(`href="/signin/google"`)):
			if pages != nil {
				*pages = append(*pages, "sign-in "+page.Request.URL.String())
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/signin/google", nil)
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unexpected page %s (%d):\n%s", page.Request.URL, page.StatusCode, body)
		}
		return hc.Do(req)
	}
}

// link links the fake Alexa to the signed-in person with alexafake.Link.
func (a *alexaEnv) link() alexafake.Tokens {
	a.t.Helper()
	tok, err := a.fake.Link(a.t.Context(), a.linkConfig(true, true))
	if err != nil {
		a.t.Fatalf("link: %v", err)
	}
	return tok
}

// setZone puts the person in America/New_York.
func (a *alexaEnv) setZone(userID, zone string) {
	a.t.Helper()
	u, err := a.st.GetUser(a.t.Context(), userID)
	if err != nil {
		a.t.Fatal(err)
	}
	u.Rules.TimeZone = zone
	if err := a.st.PutUser(a.t.Context(), u); err != nil {
		a.t.Fatal(err)
	}
}

// envelope is a documented request envelope from integrations/alexa/testdata/requests with
// token as the access token, stamped now, and the replacements (old, new pairs) applied.
func (a *alexaEnv) envelope(name, token string, replace ...string) []byte {
	a.t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "integrations", "alexa", "testdata", "requests", name))
	if err != nil {
		a.t.Fatal(err)
	}
	s := strings.ReplaceAll(string(raw), fixtureToken, token)
	s = strings.ReplaceAll(s, fixtureTimestamp, a.fc.Now().UTC().Format(time.RFC3339))
	if len(replace) > 0 {
		s = strings.NewReplacer(replace...).Replace(s)
	}
	return []byte(s)
}

// send signs raw as Alexa does and POSTs it to /alexa. A 200 whose answer Alexa would
// reject fails the test.
func (a *alexaEnv) send(raw []byte) alexafake.Result {
	a.t.Helper()
	req, err := alexa.ParseRequest(raw)
	if err != nil {
		a.t.Fatalf("the envelope does not parse: %v", err)
	}
	return a.sendEnv(req, alexafake.WithBody(raw))
}

// sendEnv signs an envelope built by alexafake (restamped now) and POSTs it to /alexa.
func (a *alexaEnv) sendEnv(req alexa.Request, opts ...alexafake.SendOption) alexafake.Result {
	a.t.Helper()
	res, err := a.fake.Send(a.t.Context(), a.base+"/alexa", req, opts...)
	if err != nil {
		a.t.Fatalf("send %s %s: %v (status %d)\n%s", req.Request.Type, req.IntentName(), err, res.Status, res.Body)
	}
	return res
}

// linked reports whether token is accepted on /alexa: a LaunchRequest carrying it is answered
// with what you can say, not a LinkAccount card.
func (a *alexaEnv) linked(token string) bool {
	a.t.Helper()
	res := a.sendEnv(a.fake.Launch("", token))
	if res.Status != http.StatusOK {
		a.t.Fatalf("launch: status %d\n%s", res.Status, res.Body)
	}
	if c := res.Card(); c != nil && c.Type == alexa.CardLinkAccount {
		return false
	}
	if !strings.HasPrefix(res.Speech(), "Don't Interrupt here.") {
		a.t.Fatalf("launch answered %q without a LinkAccount card", res.Speech())
	}
	return true
}

// wantLinkCard checks an answer is the LinkAccount card, spoken, ending the session.
func wantLinkCard(t *testing.T, what string, res alexafake.Result, speech string) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("%s: status %d\n%s", what, res.Status, res.Body)
	}
	if c := res.Card(); c == nil || c.Type != alexa.CardLinkAccount {
		t.Errorf("%s: card %+v, want LinkAccount\n%s", what, res.Card(), res.Body)
	}
	if !strings.Contains(res.Speech(), speech) || !res.EndsSession() {
		t.Errorf("%s: said %q (ends session %v), want %q and the session ended", what, res.Speech(), res.EndsSession(), speech)
	}
}

// wantSpeech checks an answer says exactly want and leaves the session open or not.
func wantSpeech(t *testing.T, what string, res alexafake.Result, want string, open bool) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("%s: status %d\n%s", what, res.Status, res.Body)
	}
	if got := res.Speech(); got != want {
		t.Errorf("%s: said\n  %q\nwant\n  %q", what, got, want)
	}
	if res.EndsSession() == open {
		t.Errorf("%s: ends the session %v, want %v", what, res.EndsSession(), !open)
	}
	if open && (res.Response.Response.Reprompt == nil || res.Response.Response.Reprompt.OutputSpeech == nil) {
		t.Errorf("%s: an open session without a reprompt", what)
	}
	if res.Card() != nil {
		t.Errorf("%s: unexpected card %+v", what, res.Card())
	}
}

// wantEmpty checks an answer says nothing and shows nothing.
func wantEmpty(t *testing.T, what string, res alexafake.Result) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("%s: status %d\n%s", what, res.Status, res.Body)
	}
	r := res.Response.Response
	if r.OutputSpeech != nil || r.Card != nil || r.Reprompt != nil || r.ShouldEndSession != nil {
		t.Errorf("%s: want an empty response, got %s", what, res.Body)
	}
	if res.Response.Version != "1.0" {
		t.Errorf("%s: version %q", what, res.Response.Version)
	}
}

// activeOverrides are the person's overrides in force now.
func (a *alexaEnv) activeOverrides(userID string) []presence.Override {
	a.t.Helper()
	all, err := a.st.ListOverrides(a.t.Context(), userID)
	if err != nil {
		a.t.Fatal(err)
	}
	now := a.fc.Now()
	var out []presence.Override
	for _, o := range all {
		if !o.Start.After(now) && (o.End.IsZero() || o.End.After(now)) {
			out = append(out, o)
		}
	}
	return out
}

// wantOverride checks the person has exactly one override in force: kind, from now until end,
// from Alexa.
func (a *alexaEnv) wantOverride(what, userID string, kind presence.OverrideKind, end time.Time) {
	a.t.Helper()
	ovs := a.activeOverrides(userID)
	if len(ovs) != 1 {
		a.t.Errorf("%s: overrides in force %+v, want one %s", what, ovs, kind)
		return
	}
	o := ovs[0]
	if o.Kind != kind || !o.End.Equal(end) || !o.Start.Equal(a.fc.Now()) || o.Origin != "alexa" {
		a.t.Errorf("%s: override %+v, want %s from %s until %s, origin alexa", what, o, kind, a.fc.Now(), end)
	}
}

// woken checks the scheduler was woken for the person since n wakes, and returns the count.
func (a *alexaEnv) woken(what, userID string, n int) int {
	a.t.Helper()
	w := a.wakes.all()
	if len(w) <= n || w[len(w)-1] != userID {
		a.t.Errorf("%s: the scheduler was not woken for %s (wakes %v)", what, userID, w)
	}
	return len(w)
}

// tokenAnswer is the token endpoint's JSON.
type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// postToken POSTs a token request with the client credentials in an Authorization: Basic
// header (HTTP_BASIC) or in the form (REQUEST_BODY_CREDENTIALS), as Alexa does.
func postToken(t testing.TB, base string, form url.Values, basic bool, id, secret string) (int, tokenAnswer) {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if !basic {
		f.Set("client_id", id)
		f.Set("client_secret", secret)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/oauth/token", strings.NewReader(f.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var ans tokenAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatalf("token endpoint answered %d, not JSON: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, ans
}

// codeGrant is the form of an authorization_code token request.
func codeGrant(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {alexaRedirect}}
}

// authorizeRedirect goes through the authorize endpoint as Alexa's browser would with the
// signed-in client c: GET (our consent page), then press decision. extra adds to or replaces
// the query Alexa sends. It returns where our server redirected.
func authorizeRedirect(t testing.TB, base string, c *http.Client, extra url.Values, decision string) *url.URL {
	t.Helper()
	q := url.Values{
		"response_type": {"code"}, "client_id": {alexaClientID}, "redirect_uri": {alexaRedirect},
		"scope": {"status"}, "state": {"state-0123456789abcdef"},
	}
	for k, v := range extra {
		q[k] = v
	}
	u := base + "/oauth/authorize?" + q.Encode()
	get, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`name="decision"`)) {
		t.Fatalf("GET authorize: %d, want the consent page\n%s", resp.StatusCode, body)
	}
	post, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(url.Values{"decision": {decision}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", base)
	post.Header.Set("Sec-Fetch-Site", "same-origin")
	nr := &http.Client{Jar: c.Jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = nr.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode < 300 || resp.StatusCode > 399 || err != nil {
		t.Fatalf("POST authorize: %d, want a redirect\n%s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(loc.String(), alexaRedirect+"?") {
		t.Fatalf("POST authorize redirected to %s, want %s", loc, alexaRedirect)
	}
	if got := loc.Query().Get("state"); got != q.Get("state") {
		t.Fatalf("redirect state %q, want %q", got, q.Get("state"))
	}
	return loc
}

// authorizeCode returns the code of an allowed authorize request.
func authorizeCode(t testing.TB, base string, c *http.Client, extra url.Values) string {
	t.Helper()
	loc := authorizeRedirect(t, base, c, extra, "allow")
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("redirect without a code: %s", loc)
	}
	return code
}

// notInStore fails if the bolt file holds any of the secrets in clear, or the secret part of a
// token (fosite's "ory_xx_<key>.<signature>": the store may hold the signature, never the key).
func (a *alexaEnv) notInStore(what string, secrets ...string) {
	a.t.Helper()
	raw := a.rawFile()
	for i, s := range secrets {
		if len(s) < 16 {
			a.t.Fatalf("%s: secret %d is %q, too short to look for", what, i, s)
		}
		parts := []string{s}
		if j := strings.LastIndexByte(s, '.'); j > 0 {
			key := s[:j]
			for _, p := range []string{"ory_at_", "ory_rt_", "ory_ac_"} {
				key = strings.TrimPrefix(key, p)
			}
			parts = append(parts, key)
		}
		for _, p := range parts {
			if bytes.Contains(raw, []byte(p)) {
				a.t.Errorf("%s: the store file holds secret %d (%d characters) in clear", what, i, len(p))
			}
		}
	}
}

func pkcePair() (verifier, challenge string) {
	b := make([]byte, 48)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// ---- account linking ----

// Account linking end to end, as Alexa does it: the signed-in person allows linking on our
// consent page; the tokens work on /alexa; a refresh gives a new pair and the old refresh
// token (and access token) stop working; Alexa refreshing by itself once the access token
// has expired keeps the skill working; the store never holds a token in clear.
func TestAlexaLinkEndToEnd(t *testing.T) {
	a := newAlexaEnv(t)
	userID := a.signIn()
	var pages []string
	cfg := a.linkConfig(true, true)
	cfg.Browser = a.browser("allow", &pages)
	tok, err := a.fake.Link(t.Context(), cfg)
	if err != nil {
		t.Fatalf("link: %v\npages %v", err, pages)
	}
	if len(pages) != 1 || !strings.HasPrefix(pages[0], "consent "+a.base+"/oauth/authorize?") {
		t.Errorf("pages %v, want only our consent page", pages)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
		t.Fatalf("tokens %s: access %v refresh %v", tok, tok.AccessToken != "", tok.RefreshToken != "")
	}
	if tok.ExpiresIn < 59*time.Minute || tok.ExpiresIn > time.Hour {
		t.Errorf("expires_in %s, want about an hour", tok.ExpiresIn)
	}
	if tok.Scope != "status" {
		t.Errorf("scope %q, want status", tok.Scope)
	}
	if !a.linked(tok.AccessToken) {
		t.Fatal("the access token is not accepted on /alexa")
	}
	// Only the access token opens the skill: the refresh token is for our token endpoint.
	if a.linked(tok.RefreshToken) {
		t.Error("the refresh token is accepted as an access token on /alexa")
	}
	// The token is the person's: focus set through it is theirs.
	res := a.sendEnv(a.fake.Intent("StartFocusIntent", map[string]string{"duration": "PT45M"}, tok.AccessToken))
	if !strings.HasPrefix(res.Speech(), "You're in focus until ") {
		t.Errorf("start focus with the linked token: %q", res.Speech())
	}
	a.wantOverride("focus through the linked token", userID, presence.OverrideFocus, alexaEpoch.Add(45*time.Minute))
	acts, _ := a.st.ListActivity(t.Context(), userID, 20)
	linkedLogged := false
	for _, x := range acts {
		linkedLogged = linkedLogged || x.Target == "alexa" && x.Outcome == "linked"
	}
	if !linkedLogged {
		t.Errorf("no activity records the linking: %+v", acts)
	}

	// Alexa refreshes: a new pair; the old refresh token no longer works, nor the old access
	// token; the new access token does.
	fresh, err := a.fake.Refresh(t.Context(), cfg, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == "" || fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not give a new access and refresh token")
	}
	if !strings.EqualFold(fresh.TokenType, "bearer") || fresh.ExpiresIn < 59*time.Minute {
		t.Errorf("refreshed tokens %s", fresh)
	}
	if !a.linked(fresh.AccessToken) {
		t.Error("the refreshed access token is not accepted")
	}
	if a.linked(tok.AccessToken) {
		t.Error("the access token of the old pair still works after the refresh")
	}
	_, err = a.fake.Refresh(t.Context(), cfg, tok.RefreshToken)
	var ae *alexafake.AuthError
	if !errors.As(err, &ae) || ae.Code != "invalid_grant" || ae.Status != http.StatusBadRequest {
		t.Errorf("the old refresh token again: %v, want a 400 invalid_grant", err)
	}
	if !a.linked(fresh.AccessToken) {
		t.Error("trying the old refresh token revoked the current pair")
	}

	// An hour later by Alexa's clock the access token has expired for it: it refreshes by
	// itself (SaySomething), and the skill goes on working.
	a.fc.Advance(61 * time.Minute)
	res, err = a.fake.SaySomething(t.Context(), a.base+"/alexa", "what's my status")
	if err != nil || res.Status != http.StatusOK || res.Card() != nil {
		t.Fatalf("say after the token expired: %v, status %d\n%s", err, res.Status, res.Body)
	}
	now, _ := a.fake.Linked()
	if now.AccessToken == fresh.AccessToken || now.RefreshToken == fresh.RefreshToken {
		t.Error("Alexa did not refresh the expired token")
	}

	a.notInStore("after linking and refreshing", tok.AccessToken, tok.RefreshToken, fresh.AccessToken, fresh.RefreshToken,
		now.AccessToken, now.RefreshToken, alexaClientSecret)
}

// Both ways Alexa can send the client credentials work (HTTP_BASIC and
// REQUEST_BODY_CREDENTIALS), with and without PKCE.
func TestAlexaLinkCredentialSchemes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		basic, pkce bool
	}{
		{"HTTP_BASIC", true, false},
		{"REQUEST_BODY_CREDENTIALS", false, false},
		{"HTTP_BASIC with PKCE", true, true},
		{"REQUEST_BODY_CREDENTIALS with PKCE", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAlexaEnv(t)
			a.signIn()
			tok, err := a.fake.Link(t.Context(), a.linkConfig(tc.basic, tc.pkce))
			if err != nil {
				t.Fatalf("link: %v", err)
			}
			if !a.linked(tok.AccessToken) {
				t.Fatal("the access token is not accepted")
			}
			cfg := a.linkConfig(tc.basic, tc.pkce)
			fresh, err := a.fake.Refresh(t.Context(), cfg, tok.RefreshToken)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if !a.linked(fresh.AccessToken) {
				t.Fatal("the refreshed access token is not accepted")
			}
		})
	}
}

// A code is single use: the second exchange is invalid_grant and revokes what the first one
// issued (RFC 6749 section 4.1.2). Neither the code nor the tokens are stored in clear.
func TestAlexaLinkCodeSingleUse(t *testing.T) {
	a := newAlexaEnv(t)
	a.signIn()
	code := authorizeCode(t, a.base, a.client, nil)
	if a.linked(code) {
		t.Error("the authorization code is accepted as an access token on /alexa")
	}
	status, first := postToken(t, a.base, codeGrant(code), false, alexaClientID, alexaClientSecret)
	if status != http.StatusOK || first.AccessToken == "" || first.RefreshToken == "" || !strings.EqualFold(first.TokenType, "bearer") || first.ExpiresIn <= 0 {
		t.Fatalf("exchange: %d %+v", status, first)
	}
	if !a.linked(first.AccessToken) {
		t.Fatal("the access token is not accepted")
	}
	a.notInStore("after the exchange", code, first.AccessToken, first.RefreshToken)

	status, again := postToken(t, a.base, codeGrant(code), false, alexaClientID, alexaClientSecret)
	if status != http.StatusBadRequest || again.Error != "invalid_grant" || again.AccessToken != "" {
		t.Fatalf("second exchange of the code: %d %+v, want 400 invalid_grant", status, again)
	}
	if a.linked(first.AccessToken) {
		t.Error("the access token of the first exchange still works after the code was replayed")
	}
	status, ref := postToken(t, a.base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, true, alexaClientID, alexaClientSecret)
	if status != http.StatusBadRequest || ref.Error != "invalid_grant" {
		t.Errorf("refresh token of the first exchange after the replay: %d %+v, want 400 invalid_grant", status, ref)
	}
	// And a third time is no better.
	if status, _ := postToken(t, a.base, codeGrant(code), true, alexaClientID, alexaClientSecret); status != http.StatusBadRequest {
		t.Errorf("third exchange of the code: %d, want 400", status)
	}
	// A made-up code, and the code sent with another redirect URI, are refused.
	code2 := authorizeCode(t, a.base, a.client, nil)
	if status, ans := postToken(t, a.base, codeGrant("ory_ac_madeup.madeup"), true, alexaClientID, alexaClientSecret); status != http.StatusBadRequest || ans.Error != "invalid_grant" {
		t.Errorf("made-up code: %d %+v", status, ans)
	}
	other := codeGrant(code2)
	other.Set("redirect_uri", "https://layla.amazon.com/api/skill/link/TEST")
	if status, ans := postToken(t, a.base, other, true, alexaClientID, alexaClientSecret); status == http.StatusOK {
		t.Errorf("code with another redirect URI: %d %+v, want refused", status, ans)
	}
	a.notInStore("after the replay", code, code2, first.AccessToken, first.RefreshToken)
}

// Wrong client credentials are 401 invalid_client, in either scheme, and leave the code
// usable by the real client.
func TestAlexaLinkClientAuth(t *testing.T) {
	a := newAlexaEnv(t)
	a.signIn()
	code := authorizeCode(t, a.base, a.client, nil)
	for _, tc := range []struct {
		name       string
		basic      bool
		id, secret string
	}{
		{"basic, wrong secret", true, alexaClientID, "not-the-secret"},
		{"body, wrong secret", false, alexaClientID, "not-the-secret"},
		{"basic, unknown client", true, "someone-else", alexaClientSecret},
		{"body, unknown client", false, "someone-else", alexaClientSecret},
		{"body, empty secret", false, alexaClientID, ""},
	} {
		status, ans := postToken(t, a.base, codeGrant(code), tc.basic, tc.id, tc.secret)
		if status != http.StatusUnauthorized || ans.Error != "invalid_client" || ans.AccessToken != "" {
			t.Errorf("%s: %d %+v, want 401 invalid_client", tc.name, status, ans)
		}
	}
	// No credentials at all.
	if status, ans := postToken(t, a.base, codeGrant(code), true, "", ""); status != http.StatusUnauthorized && status != http.StatusBadRequest || ans.AccessToken != "" {
		t.Errorf("no credentials: %d %+v, want refused", status, ans)
	}
	status, ans := postToken(t, a.base, codeGrant(code), true, alexaClientID, alexaClientSecret)
	if status != http.StatusOK || ans.AccessToken == "" {
		t.Fatalf("the real client after the refusals: %d %+v", status, ans)
	}
	// A refresh with wrong credentials is refused too, and the refresh token still works.
	rf := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ans.RefreshToken}}
	if status, bad := postToken(t, a.base, rf, false, alexaClientID, "nope"); status != http.StatusUnauthorized || bad.Error != "invalid_client" {
		t.Errorf("refresh with a wrong secret: %d %+v", status, bad)
	}
	if status, good := postToken(t, a.base, rf, false, alexaClientID, alexaClientSecret); status != http.StatusOK || good.AccessToken == "" {
		t.Errorf("refresh after the refusal: %d %+v", status, good)
	}
}

// PKCE S256 works; a wrong verifier is refused, and so is leaving the verifier out after a
// wrong one (no downgrade to a PKCE-less exchange); plain is not accepted; a verifier for a
// code issued without a challenge is refused.
func TestAlexaLinkPKCE(t *testing.T) {
	a := newAlexaEnv(t)
	a.signIn()
	verifier, challenge := pkcePair()
	code := authorizeCode(t, a.base, a.client, url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	wrong, _ := pkcePair()
	form := codeGrant(code)
	form.Set("code_verifier", wrong)
	if status, ans := postToken(t, a.base, form, true, alexaClientID, alexaClientSecret); status != http.StatusBadRequest || ans.Error != "invalid_grant" {
		t.Errorf("wrong verifier: %d %+v, want 400 invalid_grant", status, ans)
	}
	if status, ans := postToken(t, a.base, codeGrant(code), true, alexaClientID, alexaClientSecret); status == http.StatusOK || ans.AccessToken != "" {
		t.Errorf("no verifier after a wrong one: %d, tokens issued without PKCE for a code bound to a challenge", status)
	}
	form.Set("code_verifier", verifier)
	status, ans := postToken(t, a.base, form, true, alexaClientID, alexaClientSecret)
	if status != http.StatusOK || ans.AccessToken == "" {
		t.Fatalf("right verifier: %d %+v", status, ans)
	}
	if !a.linked(ans.AccessToken) {
		t.Error("the PKCE-issued token is not accepted")
	}
	if status, _ := postToken(t, a.base, form, true, alexaClientID, alexaClientSecret); status != http.StatusBadRequest {
		t.Errorf("the PKCE code a second time: %d, want 400", status)
	}

	// A code bound to a challenge, sent without a verifier at once.
	_, challenge2 := pkcePair()
	code2 := authorizeCode(t, a.base, a.client, url.Values{"code_challenge": {challenge2}, "code_challenge_method": {"S256"}})
	if status, ans := postToken(t, a.base, codeGrant(code2), false, alexaClientID, alexaClientSecret); status != http.StatusBadRequest || ans.Error != "invalid_grant" {
		t.Errorf("no verifier: %d %+v, want 400 invalid_grant", status, ans)
	}

	// plain is refused at the authorize step, with an error redirect and no code.
	loc := authorizeRedirect(t, a.base, a.client, url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}}, "allow")
	if loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
		t.Errorf("plain challenge: redirected to %s, want error=invalid_request", loc)
	}

	// A verifier for a code issued without a challenge (a PKCE downgrade) is refused.
	code3 := authorizeCode(t, a.base, a.client, nil)
	form3 := codeGrant(code3)
	form3.Set("code_verifier", verifier)
	if status, ans := postToken(t, a.base, form3, true, alexaClientID, alexaClientSecret); status != http.StatusBadRequest || ans.Error != "invalid_grant" {
		t.Errorf("verifier without a challenge: %d %+v, want 400 invalid_grant", status, ans)
	}
}

// A redirect URI not in the list, or an unknown client, is refused with a page: no redirect,
// nothing stored, signed in or not.
func TestAlexaLinkRedirectURIRefused(t *testing.T) {
	a := newAlexaEnv(t)
	bad := []struct {
		name  string
		query url.Values
	}{
		{"another host", url.Values{"redirect_uri": {"https://evil.example/api/skill/link/TEST"}}},
		{"another path", url.Values{"redirect_uri": {"https://pitangui.amazon.com/api/skill/link/OTHER"}}},
		{"a longer path", url.Values{"redirect_uri": {alexaRedirect + "/x"}}},
		{"http", url.Values{"redirect_uri": {"http://pitangui.amazon.com/api/skill/link/TEST"}}},
		{"a query added", url.Values{"redirect_uri": {alexaRedirect + "?next=https://evil.example"}}},
		{"unknown client", url.Values{"client_id": {"someone-else"}}},
	}
	check := func(signedIn bool) {
		for _, tc := range bad {
			q := url.Values{"response_type": {"code"}, "client_id": {alexaClientID}, "redirect_uri": {alexaRedirect}, "scope": {"status"}, "state": {"state-0123456789abcdef"}}
			for k, v := range tc.query {
				q[k] = v
			}
			before := a.records()
			resp, body := a.do(a.noRedirect(), http.MethodGet, "/oauth/authorize?"+q.Encode(), nil, nil)
			what := fmt.Sprintf("%s (signed in %v)", tc.name, signedIn)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("%s: %d Location %q, want a 400 page without a redirect", what, resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(body, "This linking request is not valid") || strings.Contains(body, `name="decision"`) {
				t.Errorf("%s: the page does not refuse the request\n%s", what, body)
			}
			// Pressing Allow anyway changes nothing either.
			resp, _ = a.do(a.noRedirect(), http.MethodPost, "/oauth/authorize?"+q.Encode(), strings.NewReader("decision=allow"),
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {a.base}, "Sec-Fetch-Site": {"same-origin"}})
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("%s: POST %d Location %q, want a 400 page", what, resp.StatusCode, resp.Header.Get("Location"))
			}
			unchanged(t, what, before, a.records())
		}
	}
	check(false)
	a.signIn()
	check(true)
}

// Not signed in: the sign-in page; signing in comes back to the linking request, which shows
// the consent page; allowing links the person who signed in.
func TestAlexaLinkSignInFirst(t *testing.T) {
	a := newAlexaEnv(t)
	var pages []string
	cfg := a.linkConfig(false, true)
	cfg.Browser = a.browser("allow", &pages)
	tok, err := a.fake.Link(t.Context(), cfg)
	if err != nil {
		t.Fatalf("link: %v\npages %v", err, pages)
	}
	if len(pages) != 2 || !strings.HasPrefix(pages[0], "sign-in "+a.base+"/oauth/authorize?") || !strings.HasPrefix(pages[1], "consent "+a.base+"/oauth/authorize?") {
		t.Fatalf("pages %v, want the sign-in page then, back at the authorize URL, the consent page", pages)
	}
	// The consent page is the same linking request (the sign-in returned to it).
	first, _ := url.Parse(strings.TrimPrefix(pages[0], "sign-in "))
	second, _ := url.Parse(strings.TrimPrefix(pages[1], "consent "))
	if first.RawQuery != second.RawQuery {
		t.Errorf("the sign-in returned to %s, want %s", second, first)
	}
	id, err := a.st.GetIdentity(t.Context(), "google", googlefake.DefaultSub)
	if err != nil {
		t.Fatalf("no identity after signing in: %v", err)
	}
	if !a.linked(tok.AccessToken) {
		t.Fatal("the token is not accepted")
	}
	res := a.sendEnv(a.fake.Intent("PauseIntent", nil, tok.AccessToken))
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Speech(), "Paused until ") {
		t.Fatalf("pause: %d %q", res.Status, res.Speech())
	}
	if ovs := a.activeOverrides(id.UserID); len(ovs) != 1 || ovs[0].Kind != presence.OverridePause {
		t.Errorf("the person who signed in has overrides %+v, want the pause", ovs)
	}
}

// Cancel on the consent page: Alexa gets access_denied and nothing is stored.
func TestAlexaLinkCancel(t *testing.T) {
	a := newAlexaEnv(t)
	a.signIn()
	before := a.records()
	cfg := a.linkConfig(true, true)
	cfg.Browser = a.browser("deny", nil)
	_, err := a.fake.Link(t.Context(), cfg)
	var ae *alexafake.AuthError
	if !errors.As(err, &ae) || ae.Code != "access_denied" || ae.Status != 0 {
		t.Fatalf("cancel: %v, want an access_denied redirect", err)
	}
	unchanged(t, "cancel", before, a.records())
	if _, ok := a.fake.Linked(); ok {
		t.Error("the fake is linked after a cancel")
	}
}

// Another site cannot press Allow for the person: a cross-site POST of the consent form is
// refused and no code is issued.
func TestAlexaLinkConsentCrossSite(t *testing.T) {
	a := newAlexaEnv(t)
	a.signIn()
	q := url.Values{"response_type": {"code"}, "client_id": {alexaClientID}, "redirect_uri": {alexaRedirect}, "scope": {"status"}, "state": {"state-0123456789abcdef"}}
	before := a.records()
	resp, body := a.do(a.noRedirect(), http.MethodPost, "/oauth/authorize?"+q.Encode(), strings.NewReader("decision=allow"),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
		t.Errorf("cross-site consent: %d Location %q, want 403\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	unchanged(t, "cross-site consent", before, a.records())
}

// Without OAuthClient and Alexa, the endpoints say so.
func TestAlexaNotConfigured(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, _ := e.do(http.DefaultClient, http.MethodPost, "/alexa", strings.NewReader("{}"), nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /alexa: %d, want 404", resp.StatusCode)
	}
	code, body := e.get("/oauth/authorize?response_type=code&client_id=x")
	wantPage(t, "authorize", code, body, http.StatusNotFound, "Account linking is off")
	resp, _ = e.do(http.DefaultClient, http.MethodPost, "/oauth/token", strings.NewReader("grant_type=authorization_code"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /oauth/token: %d, want 404", resp.StatusCode)
	}
}

// ---- the skill endpoint ----

// Every intent, with the envelopes Amazon documents: what is said (times in the person's
// zone and locale), the overrides stored through the shared path, and the scheduler woken.
func TestAlexaIntents(t *testing.T) {
	a := newAlexaEnv(t)
	ctx := t.Context()
	userID := a.signIn()
	a.setZone(userID, "America/New_York")
	a.connect(userID, "slack")
	tok := a.link().AccessToken
	now := alexaEpoch
	ny, _ := time.LoadLocation("America/New_York")
	wakes := len(a.wakes.all())

	// nothing checks that a request changed nothing and woke no one.
	nothing := func(what string, f func()) {
		t.Helper()
		before, n := a.records(), len(a.wakes.all())
		f()
		unchanged(t, what, before, a.records())
		if w := a.wakes.all(); len(w) != n {
			t.Errorf("%s: the scheduler was woken", what)
		}
	}

	nothing("launch", func() {
		res := a.send(a.envelope("launch.json", tok))
		wantSpeech(t, "launch", res, "Don't Interrupt here. "+alexaHelpText, true)
	})

	// StartFocus for 45 minutes: until 15:15 in New York.
	res := a.send(a.envelope("start_focus_duration.json", tok))
	wantSpeech(t, "focus PT45M", res, "You're in focus until 3:15 PM on Slack.", false)
	a.wantOverride("focus PT45M", userID, presence.OverrideFocus, now.Add(45*time.Minute))
	wakes = a.woken("focus PT45M", userID, wakes)

	// en-GB says the 24-hour clock.
	res = a.send(a.envelope("start_focus_duration.json", tok, `"locale": "en-US"`, `"locale": "en-GB"`))
	wantSpeech(t, "focus PT45M en-GB", res, "You're in focus until 15:15 on Slack.", false)
	wakes = a.woken("focus PT45M en-GB", userID, wakes)

	// An hour and a half: the new focus replaces the old one.
	res = a.send(a.envelope("start_focus_hours_minutes.json", tok))
	wantSpeech(t, "focus PT1H30M", res, "You're in focus until 4 PM on Slack.", false)
	a.wantOverride("focus PT1H30M", userID, presence.OverrideFocus, now.Add(90*time.Minute))
	wakes = a.woken("focus PT1H30M", userID, wakes)

	// Teams connected too.
	if err := a.st.PutConnection(ctx, store.Connection{ID: "c_teams", UserID: userID, Provider: "teams", Health: store.HealthOK, Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	// Until 15:00 (later today, New York time).
	res = a.send(a.envelope("start_focus_until.json", tok))
	wantSpeech(t, "focus until 15:00", res, "You're in focus until 3 PM on Slack and Teams.", false)
	a.wantOverride("focus until 15:00", userID, presence.OverrideFocus, time.Date(2026, 5, 5, 15, 0, 0, 0, ny))
	wakes = a.woken("focus until 15:00", userID, wakes)

	// An end time already past: the afternoon (14:00), 14:00 and now itself.
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"until the afternoon (AF)", a.envelope("start_focus_until_period.json", tok)},
		{"until 14:00", a.envelope("start_focus_until.json", tok, `"value": "15:00"`, `"value": "14:00"`)},
		{"until 14:30 (now)", a.envelope("start_focus_until.json", tok, `"value": "15:00"`, `"value": "14:30"`)},
	} {
		nothing(tc.name, func() {
			res := a.send(tc.raw)
			if !strings.HasPrefix(res.Speech(), "That time has passed; ") || res.EndsSession() {
				t.Errorf("%s: said %q (ends session %v), want \"That time has passed; …\" with the session open", tc.name, res.Speech(), res.EndsSession())
			}
		})
	}
	// No length and no time: asked for one; a length Alexa could not resolve; beyond 12 hours.
	nothing("focus without slots", func() {
		res := a.send(a.envelope("start_focus_no_slots.json", tok))
		wantSpeech(t, "focus without slots", res, "For how long? Say, for example, for 45 minutes, or until 3 PM.", true)
	})
	nothing("focus PT?M", func() {
		res := a.send(a.envelope("start_focus_duration.json", tok, `"value": "PT45M"`, `"value": "PT?M"`))
		wantSpeech(t, "focus PT?M", res, "I didn't catch how long. Say, for example, focus for 45 minutes.", true)
	})
	nothing("focus PT13H", func() {
		res := a.send(a.envelope("start_focus_duration.json", tok, `"value": "PT45M"`, `"value": "PT13H"`))
		wantSpeech(t, "focus PT13H", res, "That's longer than I can hold focus. Try up to 12 hours.", true)
	})

	// Status: in focus until 3 PM, a meeting at 4 PM.
	meeting := presence.Event{Source: "c1/primary", ID: "m1", Type: presence.EventDefault,
		Start: time.Date(2026, 5, 5, 16, 0, 0, 0, ny), End: time.Date(2026, 5, 5, 17, 0, 0, 0, ny), Response: presence.ResponseAccepted}
	if err := a.st.PutEvents(ctx, userID, []presence.Event{meeting}); err != nil {
		t.Fatal(err)
	}
	nothing("status", func() {
		res := a.send(a.envelope("status.json", tok))
		wantSpeech(t, "status", res, "You're in focus until 3 PM on Slack and Teams; your next meeting starts at 4 PM.", false)
		res = a.send(a.envelope("status.json", tok, `"locale": "en-US"`, `"locale": "en-GB"`))
		wantSpeech(t, "status en-GB", res, "You're in focus until 15:00 on Slack and Teams; your next meeting starts at 16:00.", false)
	})

	// I'm back: the focus ends.
	res = a.send(a.envelope("end_focus.json", tok))
	wantSpeech(t, "end focus", res, "Welcome back. Your own status is showing again on Slack and Teams.", false)
	if ovs := a.activeOverrides(userID); len(ovs) != 0 {
		t.Errorf("after end focus: overrides in force %+v, want none", ovs)
	}
	wakes = a.woken("end focus", userID, wakes)
	nothing("status after end focus", func() {
		res := a.send(a.envelope("status.json", tok))
		wantSpeech(t, "status after end focus", res, "Nothing is set by me right now; your own status shows; your next meeting starts at 4 PM.", false)
	})

	// Pause until the next working day (Wednesday 9:00 in New York), then resume.
	res = a.send(a.envelope("pause.json", tok))
	wantSpeech(t, "pause", res, "Paused until tomorrow, 9 AM. Say resume to start again.", false)
	a.wantOverride("pause", userID, presence.OverridePause, time.Date(2026, 5, 6, 9, 0, 0, 0, ny))
	wakes = a.woken("pause", userID, wakes)
	nothing("status while paused", func() {
		res := a.send(a.envelope("status.json", tok))
		// The meeting falls in the pause, so nothing of ours will show for it.
		wantSpeech(t, "status while paused", res, "Automation is paused.", false)
	})
	res = a.send(a.envelope("resume.json", tok))
	wantSpeech(t, "resume", res, "Resumed. I'm keeping your status in sync again.", false)
	if ovs := a.activeOverrides(userID); len(ovs) != 0 {
		t.Errorf("after resume: overrides in force %+v, want none", ovs)
	}
	wakes = a.woken("resume", userID, wakes)

	// During the meeting (16:10): the status says so; "I'm back" ends the meeting's block too,
	// with a "back" override from Alexa.
	a.fc.Set(time.Date(2026, 5, 5, 16, 10, 0, 0, ny))
	nothing("status in the meeting", func() {
		res := a.send(a.envelope("status.json", tok))
		wantSpeech(t, "status in the meeting", res, "You're in a meeting until 5 PM on Slack and Teams.", false)
	})
	res = a.send(a.envelope("end_focus.json", tok))
	wantSpeech(t, "end focus in the meeting", res, "Welcome back. Your own status is showing again on Slack and Teams.", false)
	a.wantOverride("end focus in the meeting", userID, presence.OverrideBack, time.Time{})
	a.woken("end focus in the meeting", userID, wakes)
	nothing("status after back", func() {
		res := a.send(a.envelope("status.json", tok))
		wantSpeech(t, "status after back", res, "Nothing is set by me right now; your own status shows.", false)
	})

	// The built-in intents and the requests that change nothing.
	for _, tc := range []struct {
		file  string
		check func(alexafake.Result)
	}{
		{"help.json", func(r alexafake.Result) { wantSpeech(t, "help", r, alexaHelpText, true) }},
		{"stop.json", func(r alexafake.Result) { wantSpeech(t, "stop", r, "Okay.", false) }},
		{"cancel.json", func(r alexafake.Result) { wantSpeech(t, "cancel", r, "Okay.", false) }},
		{"fallback.json", func(r alexafake.Result) {
			wantSpeech(t, "fallback", r, "Sorry, I didn't get that. "+alexaHelpText, true)
		}},
		{"navigate_home.json", func(r alexafake.Result) { wantEmpty(t, "navigate home", r) }},
		{"session_ended.json", func(r alexafake.Result) { wantEmpty(t, "session ended", r) }},
		{"session_ended_error.json", func(r alexafake.Result) { wantEmpty(t, "session ended (error)", r) }},
		{"skill_event_account_linked.json", func(r alexafake.Result) { wantEmpty(t, "account linked event", r) }},
	} {
		nothing(tc.file, func() { tc.check(a.send(a.envelope(tc.file, tok))) })
	}

	// An unlinked person (no accessToken), and a token we never issued: the LinkAccount card,
	// nothing done.
	nothing("unlinked", func() {
		wantLinkCard(t, "launch unlinked", a.send(a.envelope("launch_unlinked.json", tok)), "link your account")
		wantLinkCard(t, "start focus unlinked", a.send(a.envelope("start_focus_unlinked.json", tok)), "link your account")
		wantLinkCard(t, "start focus with a made-up token", a.send(a.envelope("start_focus_duration.json", fixtureToken)), "link Don't Interrupt again")
		wantLinkCard(t, "start focus with an empty token", a.send(a.envelope("start_focus_duration.json", "")), "link your account")
	})
	// The certificate chain was fetched once and then cached.
	if n := a.fake.Fetches(); n != 1 {
		t.Errorf("the certificate chain was fetched %d times, want once", n)
	}
}

// A person with no connections hears that nothing is connected.
func TestAlexaNoConnections(t *testing.T) {
	a := newAlexaEnv(t)
	userID := a.signIn()
	a.setZone(userID, "America/New_York")
	tok := a.link().AccessToken
	const nudge = ", but nothing is connected yet: connect Slack or Teams on the Don't Interrupt web page"
	res := a.send(a.envelope("start_focus_duration.json", tok))
	wantSpeech(t, "focus", res, "You're in focus until 3:15 PM"+nudge+".", false)
	a.wantOverride("focus", userID, presence.OverrideFocus, alexaEpoch.Add(45*time.Minute))
	res = a.send(a.envelope("status.json", tok))
	wantSpeech(t, "status", res, "You're in focus until 3:15 PM"+nudge+".", false)
	res = a.send(a.envelope("end_focus.json", tok))
	wantSpeech(t, "end focus", res, "Welcome back. Your own status is showing again"+nudge+".", false)
}

// The token of a deleted user gets the LinkAccount card and changes nothing.
func TestAlexaDeletedUser(t *testing.T) {
	a := newAlexaEnv(t)
	userID := a.signIn()
	tok := a.link().AccessToken
	if !a.linked(tok) {
		t.Fatal("the token is not accepted")
	}
	if err := a.st.DeleteUser(t.Context(), userID); err != nil {
		t.Fatal(err)
	}
	before, wakes := a.records(), len(a.wakes.all())
	wantLinkCard(t, "launch", a.send(a.envelope("launch.json", tok)), "can't find your Don't Interrupt account")
	wantLinkCard(t, "start focus", a.send(a.envelope("start_focus_duration.json", tok)), "can't find your Don't Interrupt account")
	unchanged(t, "deleted user", before, a.records())
	if len(a.wakes.all()) != wakes {
		t.Error("the scheduler was woken for a deleted user")
	}
}

// Each broken request is refused with 400 and changes nothing: the verifier runs before
// anything is done. The request would otherwise start focus for a linked person.
func TestAlexaBrokenRequestsRefused(t *testing.T) {
	a := newAlexaEnv(t)
	userID := a.signIn()
	a.setZone(userID, "America/New_York")
	tok := a.link().AccessToken
	focus := func() alexa.Request {
		return a.fake.Intent("StartFocusIntent", map[string]string{"duration": "PT45M"}, tok)
	}
	other, _ := json.Marshal(a.fake.Intent("StatusIntent", nil, tok))
	good := a.fake.CertChainURL()
	cases := []struct {
		name string
		opts []alexafake.SendOption
		// urlRule: refused by the certificate URL rules, before anything is fetched.
		urlRule bool
	}{
		{"wrong skill ID", []alexafake.SendOption{alexafake.WithSkillID("amzn1.ask.skill.11111111-0000-4000-8000-000000000002")}, false},
		{"timestamp 151 s old", []alexafake.SendOption{alexafake.WithTimestampOffset(-151 * time.Second)}, false},
		{"timestamp 151 s ahead", []alexafake.SendOption{alexafake.WithTimestampOffset(151 * time.Second)}, false},
		{"signature over a different body", []alexafake.SendOption{alexafake.WithSignedBody(other)}, false},
		{"cert URL on another host", []alexafake.SendOption{alexafake.WithCertURL("https://evil.example.com/echo.api/echo-api-cert.pem")}, true},
		{"cert URL on an S3 look-alike host", []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com.evil.example/echo.api/echo-api-cert.pem")}, true},
		{"cert URL over http", []alexafake.SendOption{alexafake.WithCertURL(strings.Replace(good, "https://", "http://", 1))}, true},
		{"cert URL on another port", []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem")}, true},
		{"cert URL escaping /echo.api/", []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com/echo.api/../x")}, true},
		{"cert URL path case", []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com/ECHO.API/echo-api-cert.pem")}, true},
		{"expired certificate", []alexafake.SendOption{alexafake.WithCert(alexafake.CertExpired)}, false},
		{"certificate without the SAN", []alexafake.SendOption{alexafake.WithCert(alexafake.CertNoSAN)}, false},
		{"certificate from an untrusted root", []alexafake.SendOption{alexafake.WithCert(alexafake.CertUntrusted)}, false},
		{"no Signature-256", []alexafake.SendOption{alexafake.WithoutHeader(alexa.HeaderSignature)}, true},
		{"no SignatureCertChainUrl", []alexafake.SendOption{alexafake.WithoutHeader(alexa.HeaderCertChainURL)}, true},
		{"not an envelope", []alexafake.SendOption{alexafake.WithBody([]byte(`{"version":"1.0"}`))}, false},
	}
	for _, tc := range cases {
		before, wakes, fetches := a.records(), len(a.wakes.all()), a.fake.Fetches()
		res := a.sendEnv(focus(), tc.opts...)
		if res.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400\n%s", tc.name, res.Status, res.Body)
		}
		if !strings.HasPrefix(string(res.Body), "refused: ") {
			t.Errorf("%s: body %q does not say it was refused", tc.name, res.Body)
		}
		unchanged(t, tc.name, before, a.records())
		if len(a.wakes.all()) != wakes {
			t.Errorf("%s: the scheduler was woken", tc.name)
		}
		if tc.urlRule && a.fake.Fetches() != fetches {
			t.Errorf("%s: a certificate chain was fetched", tc.name)
		}
	}
	if ovs := a.activeOverrides(userID); len(ovs) != 0 {
		t.Fatalf("overrides after the refused requests: %+v", ovs)
	}

	// The limits themselves are accepted: 150 s old, and a cert URL that normalises to the
	// good one (host case, :443, dot segments).
	res := a.sendEnv(focus(), alexafake.WithTimestampOffset(-150*time.Second))
	wantSpeech(t, "150 s old", res, "You're in focus until 3:15 PM, but nothing is connected yet: connect Slack or Teams on the Don't Interrupt web page.", false)
	res = a.sendEnv(focus(), alexafake.WithCertURL("HTTPS://S3.AmazonAWS.com:443/echo.api/../echo.api/echo-api-cert.pem"))
	if res.Status != http.StatusOK {
		t.Errorf("normalised cert URL: status %d\n%s", res.Status, res.Body)
	}
}

// ---- fuzzing ----

// FuzzAlexaRequest feeds request bodies through what POST /alexa does after verification:
// alexa.ParseRequest, then the skill's answer, for a linked person in New York (the
// documented envelopes' token is swapped for a real one). Properties: no panic, and every
// answer is one Alexa accepts (Check), silent for a SessionEndedRequest. The seeds are the
// documented envelopes (integrations/alexa/testdata/requests), run by plain `go test`.
func FuzzAlexaRequest(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "integrations", "alexa", "testdata", "requests", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed corpus: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"request":{"type":"IntentRequest","timestamp":"2026-05-01T09:00:00Z","locale":"en-GB","intent":{"name":"StartFocusIntent","slots":{"until":{"name":"until","value":"23:59"}}}},"context":{"System":{"application":{"applicationId":"a"},"user":{"accessToken":"Atza|linked-example-token-0001"}}}}`))
	f.Add([]byte(`{"request":{"type":"IntentRequest","timestamp":"2026-05-01T09:00:00Z","intent":{"name":"StartFocusIntent","slots":{"duration":{"name":"duration","value":"P2YT3H10M"}}}},"session":{"application":{"applicationId":"a"},"user":{"accessToken":"Atza|linked-example-token-0001"}}}`))
	for _, slot := range []string{`"duration","value":"PT12H"`, `"duration","value":"PT59S"`, `"duration","value":"PT0,5H"`, `"until","value":"NI"`, `"until","value":"00:00"`, `"until","value":"24:00"`} {
		name, _, _ := strings.Cut(slot, ",")
		f.Add([]byte(`{"request":{"type":"IntentRequest","timestamp":"2026-05-01T09:00:00Z","locale":"en-GB","intent":{"name":"StartFocusIntent","slots":{` + name + `:{"name":` + slot + `}}}},"context":{"System":{"application":{"applicationId":"a"},"user":{"accessToken":"Atza|linked-example-token-0001"}}}}`))
	}

	srv, token := newAlexaFuzzServer(f)
	placeholder := []byte(fixtureToken)
	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.ReplaceAll(body, placeholder, []byte(token))
		req, err := alexa.ParseRequest(body)
		if err != nil {
			return
		}
		resp := srv.AlexaAnswer(t.Context(), req)
		if err := resp.Check(); err != nil {
			t.Fatalf("answer Alexa would reject: %v", err)
		}
		if resp.Version != "1.0" {
			t.Fatalf("answer version %q", resp.Version)
		}
		if req.Request.Type == alexa.TypeSessionEnded && (resp.Response.OutputSpeech != nil || resp.Response.Card != nil) {
			t.Fatal("speech or a card in answer to a SessionEndedRequest")
		}
		if c := resp.Response.Card; c != nil && c.Type != alexa.CardLinkAccount {
			t.Fatalf("card %+v", c)
		}
	})
}

// newAlexaFuzzServer is a server with the OAuth server on and a person in New York linked
// through the real flow (a session made in the store signs them in); it returns the server
// and the access token.
func newAlexaFuzzServer(f *testing.F) (*web.Server, string) {
	f.Helper()
	ctx := f.Context()
	fc := clock.NewFake(alexaEpoch)
	st, err := bolt.Open(filepath.Join(f.TempDir(), "di.db"), bolt.WithClock(fc.Now))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	ks, err := vault.Generate()
	if err != nil {
		f.Fatal(err)
	}
	srv, err := web.NewServer(web.Deps{
		Logger: slog.New(slog.DiscardHandler), Store: st, Vault: vault.New(ks), Clock: fc,
		OAuthClient: &web.OAuthClient{ID: alexaClientID, Secret: alexaClientSecret, RedirectURIs: []string{alexaRedirect}},
		Alexa:       &alexa.Verifier{SkillID: alexaSkillID},
		Wake:        func(context.Context, string) error { return nil },
	})
	if err != nil {
		f.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	f.Cleanup(ts.Close)

	rules := presence.DefaultRules()
	rules.TimeZone = "America/New_York"
	const userID = "u_fuzz"
	if err := st.CreateUser(ctx, store.User{ID: userID, Created: alexaEpoch, Rules: rules}); err != nil {
		f.Fatal(err)
	}
	ev := presence.Event{Source: "c1/primary", ID: "m1", Type: presence.EventDefault, Start: alexaEpoch.Add(90 * time.Minute), End: alexaEpoch.Add(150 * time.Minute), Response: presence.ResponseAccepted}
	if err := st.PutEvents(ctx, userID, []presence.Event{ev}); err != nil {
		f.Fatal(err)
	}
	cookie := "fuzz-session-cookie-0123456789abcdef"
	if err := st.PutSession(ctx, store.Session{ID: sessionKey(cookie), UserID: userID, Created: alexaEpoch, Expires: alexaEpoch.Add(24 * time.Hour)}); err != nil {
		f.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(ts.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: cookie, Path: "/"}})
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	code := authorizeCode(f, ts.URL, client, nil)
	status, ans := postToken(f, ts.URL, codeGrant(code), true, alexaClientID, alexaClientSecret)
	if status != http.StatusOK || ans.AccessToken == "" {
		f.Fatalf("token: %d %+v", status, ans)
	}
	return srv, ans.AccessToken
}
