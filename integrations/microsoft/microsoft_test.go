package microsoft_test

// These tests drive the real client (golang.org/x/oauth2, go-oidc and msgraph-sdk-go, as
// wired in this package) against graphfake served by httptest. The fake and the client share
// one fake clock: nothing sleeps.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

const (
	testTenant = "7b2c4f10-1111-4222-8333-0000000000aa"
	testOID    = "a0d3c5e7-2222-4333-8444-0000000000bb"
	testEmail  = "grace@contoso.test"

	appHost        = "dontinterrupt.test"
	signInRedirect = "https://" + appHost + "/signin/microsoft/callback"
	outlookRedir   = "https://" + appHost + "/connect/outlook/callback"
	teamsRedir     = "https://" + appHost + "/connect/teams/callback"
)

// t0 is the fake clock's start: a Monday morning.
var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// fakeClock is the one clock graphfake and the client read.
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
	t      *testing.T
	clock  *fakeClock
	fake   *graphfake.Server
	srv    *httptest.Server
	client *microsoft.Client
}

type envOptions struct {
	fake graphfake.Options
	// tenant is the client's Config.Tenant (default "common").
	tenant string
	// wrap, when set, wraps the fake's handler (to tamper with its answers).
	wrap func(http.Handler) http.Handler
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	clock := &fakeClock{t: t0}
	o.fake.Now = clock.Now
	o.fake.AutoApprove = true
	o.fake.AllowHTTPWebhooks = true
	fake := graphfake.New(o.fake)
	fake.AddUser(testTenant, testOID, "Grace Tester", testEmail)
	var h http.Handler = fake
	if o.wrap != nil {
		h = o.wrap(fake)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close) // runs first: stops webhook deliveries before the server closes
	fake.SetBaseURL(srv.URL)
	tenant := o.tenant
	if tenant == "" {
		tenant = "common"
	}
	c, err := microsoft.New(microsoft.Config{
		ClientID:           fake.ClientID(),
		ClientSecret:       fake.ClientSecret(),
		Tenant:             tenant,
		AuthorityURL:       srv.URL,
		GraphURL:           srv.URL + "/v1.0",
		SignInRedirectURL:  signInRedirect,
		OutlookRedirectURL: outlookRedir,
		TeamsRedirectURL:   teamsRedir,
		HTTPClient:         &http.Client{Timeout: 20 * time.Second},
		Now:                clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, clock: clock, fake: fake, srv: srv, client: c}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// flow is one authorization request as the web layer would start it.
type flow struct {
	kind                   microsoft.Kind
	state, nonce, verifier string
	authURL                *url.URL
}

// authorize opens client.AuthURL like a browser (graphfake approves at once) and stops at
// the redirect to the app, returning the callback's query.
func (e *env) authorize(ctx context.Context, k microsoft.Kind) (flow, url.Values) {
	e.t.Helper()
	f := flow{kind: k, state: "state-" + oauth2.GenerateVerifier()[:16], nonce: "nonce-" + oauth2.GenerateVerifier()[:16], verifier: oauth2.GenerateVerifier()}
	raw, err := e.client.AuthURL(ctx, k, f.state, f.nonce, f.verifier)
	if err != nil {
		e.t.Fatalf("AuthURL(%s): %v", k, err)
	}
	if f.authURL, err = url.Parse(raw); err != nil {
		e.t.Fatal(err)
	}
	browser := &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == appHost {
			return http.ErrUseLastResponse // the app's callback is not reachable from here
		}
		return nil
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := browser.Do(req)
	if err != nil {
		e.t.Fatalf("GET authorize: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize answered %d, want a redirect to the app: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host != appHost {
		e.t.Fatalf("authorize redirected to %q, want the app", resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("error") != "" {
		e.t.Fatalf("authorize refused: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != f.state {
		e.t.Fatalf("callback state = %q, want %q", q.Get("state"), f.state)
	}
	if q.Get("code") == "" {
		e.t.Fatal("callback has no code")
	}
	return f, q
}

// connect runs a whole flow and returns its grant.
func (e *env) connect(ctx context.Context, k microsoft.Kind) microsoft.Grant {
	e.t.Helper()
	f, q := e.authorize(ctx, k)
	g, err := e.client.Finish(ctx, k, q.Get("code"), f.verifier, f.nonce, e.clock.Now())
	if err != nil {
		e.t.Fatalf("Finish(%s): %v", k, err)
	}
	return g
}

func (e *env) callCount(endpoint string) int { return len(e.fake.CallsTo(endpoint)) }

// refresh renews *cred at the fake clock's time, as the scheduler does before a call once the
// clock has moved past the access token's hour.
func (e *env) refresh(ctx context.Context, cred *provider.Credential) {
	e.t.Helper()
	c, err := e.client.Refresh(ctx, *cred, e.clock.Now())
	if err != nil {
		e.t.Fatalf("Refresh: %v", err)
	}
	*cred = c
}

// ---------------------------------------------------------------------------------------
// 1. Sign-in

func TestSignInCommonTenant(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{})

	// The multi-tenant discovery document carries the issuer template, which a plain
	// oidc.NewProvider would refuse; the client accepts it.
	resp, err := http.Get(e.srv.URL + "/common/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Issuer string }
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.Issuer != e.srv.URL+"/{tenantid}/v2.0" {
		t.Fatalf("discovery issuer = %q (%v), want the {tenantid} template", doc.Issuer, err)
	}

	f, q := e.authorize(ctx, microsoft.KindSignIn)
	aq := f.authURL.Query()
	if f.authURL.Path != "/common/oauth2/v2.0/authorize" {
		t.Errorf("authorize path = %q, want the common tenant's", f.authURL.Path)
	}
	for k, want := range map[string]string{
		"client_id": e.fake.ClientID(), "redirect_uri": signInRedirect, "response_type": "code",
		"scope": "openid profile", "nonce": f.nonce, "code_challenge_method": "S256",
	} {
		if got := aq.Get(k); got != want {
			t.Errorf("auth URL %s = %q, want %q", k, got, want)
		}
	}
	if aq.Get("code_challenge") == "" || aq.Get("code_challenge") == f.verifier {
		t.Errorf("auth URL code_challenge = %q, want the S256 hash of the verifier", aq.Get("code_challenge"))
	}
	if aq.Has("prompt") {
		t.Errorf("sign-in sends prompt=%q, want none", aq.Get("prompt"))
	}

	g, err := e.client.Finish(ctx, microsoft.KindSignIn, q.Get("code"), f.verifier, f.nonce, e.clock.Now())
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	want := microsoft.Account{TenantID: testTenant, ObjectID: testOID, Subject: testTenant + "/" + testOID}
	if g.Account != want {
		t.Errorf("account = %+v, want %+v", g.Account, want)
	}
	if g.Credential.AccessToken != "" || g.Credential.RefreshToken != "" || g.Scopes != nil {
		t.Errorf("sign-in kept tokens or scopes: scopes %v, credential set %v", g.Scopes, g.Credential.AccessToken != "")
	}
	if calls := e.fake.CallsTo(graphfake.EndpointDiscovery); len(calls) != 2 || calls[1].Path != "/common/v2.0/.well-known/openid-configuration" {
		t.Errorf("discovery calls = %+v, want our manual GET and one by the client for common", calls)
	}

	t.Run("wrong nonce", func(t *testing.T) {
		f, q := e.authorize(ctx, microsoft.KindSignIn)
		_, err := e.client.Finish(ctx, microsoft.KindSignIn, q.Get("code"), f.verifier, "nonce-of-another-flow", e.clock.Now())
		if err == nil || !strings.Contains(err.Error(), "nonce") {
			t.Fatalf("Finish with a wrong nonce: %v, want a nonce error", err)
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		f, q := e.authorize(ctx, microsoft.KindSignIn)
		_, err := e.client.Finish(ctx, microsoft.KindSignIn, q.Get("code"), oauth2.GenerateVerifier(), f.nonce, e.clock.Now())
		if err == nil {
			t.Fatal("Finish with another flow's verifier succeeded")
		}
	})
	t.Run("code replayed", func(t *testing.T) {
		f, q := e.authorize(ctx, microsoft.KindSignIn)
		if _, err := e.client.Finish(ctx, microsoft.KindSignIn, q.Get("code"), f.verifier, f.nonce, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Finish(ctx, microsoft.KindSignIn, q.Get("code"), f.verifier, f.nonce, e.clock.Now()); err == nil {
			t.Fatal("a redeemed code was accepted again")
		}
	})
	t.Run("code expired", func(t *testing.T) {
		// The fake and the client share the clock: past the code's 10 minutes it is refused.
		f, q := e.authorize(ctx, microsoft.KindSignIn)
		e.clock.Advance(11 * time.Minute)
		if _, err := e.client.Finish(ctx, microsoft.KindSignIn, q.Get("code"), f.verifier, f.nonce, e.clock.Now()); err == nil {
			t.Fatal("an authorization code was redeemed after its 10 minutes")
		}
	})
}

func TestSignInPinnedTenant(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{tenant: testTenant})
	f, q := e.authorize(ctx, microsoft.KindSignIn)
	if f.authURL.Path != "/"+testTenant+"/oauth2/v2.0/authorize" {
		t.Errorf("authorize path = %q, want the pinned tenant's", f.authURL.Path)
	}
	g, err := e.client.Finish(ctx, microsoft.KindSignIn, q.Get("code"), f.verifier, f.nonce, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if g.Subject != testTenant+"/"+testOID {
		t.Errorf("subject = %q", g.Subject)
	}
}

// graphfake always writes iss from the token's own tid, so to get a token whose issuer names
// another tenant the test signs graphfake's ID token again, with graphfake's own key
// (Options.SigningKey), after changing "iss" on its way out of the token endpoint.
func TestSignInRefusesIssuerOfAnotherTenant(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const otherTenant = "0c0ffee0-3333-4444-8555-0000000000cc"
	var mu sync.Mutex
	var issuer string // "" leaves the token alone (re-signed only)
	var base string
	tamper := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var body map[string]any
			if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &body) == nil {
				if idt, ok := body["id_token"].(string); ok {
					mu.Lock()
					iss := issuer
					mu.Unlock()
					body["id_token"] = resign(t, key, idt, func(c map[string]any) {
						if iss != "" {
							c["iss"] = iss
						}
					})
				}
				b, _ := json.Marshal(body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				w.Write(b)
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	}
	ctx := testContext(t)
	e := newEnv(t, envOptions{fake: graphfake.Options{SigningKey: key}, wrap: tamper})
	base = e.srv.URL

	// Control: re-signing alone keeps the token valid.
	if g := e.connect(ctx, microsoft.KindSignIn); g.Subject != testTenant+"/"+testOID {
		t.Fatalf("re-signed token: subject %q", g.Subject)
	}

	mu.Lock()
	issuer = base + "/" + otherTenant + "/v2.0"
	mu.Unlock()
	f, q := e.authorize(ctx, microsoft.KindSignIn)
	_, err = e.client.Finish(ctx, microsoft.KindSignIn, q.Get("code"), f.verifier, f.nonce, e.clock.Now())
	if err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("Finish with iss of tenant %s and tid %s: %v, want an issuer error", otherTenant, testTenant, err)
	}
}

// resign changes an RS256 JWT's claims and signs it again with key.
func resign(t *testing.T, key *rsa.PrivateKey, jwt string, mutate func(map[string]any)) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Errorf("not a JWT: %d parts", len(parts))
		return jwt
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Error(err)
		return jwt
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		t.Error(err)
		return jwt
	}
	mutate(claims)
	p, _ := json.Marshal(claims)
	input := parts[0] + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Error(err)
		return jwt
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// ---------------------------------------------------------------------------------------
// 2. Connect

func TestConnectOutlookAndTeams(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		kind     microsoft.Kind
		redirect string
		scope    string // must be granted
		notScope string // must not be
	}{
		{microsoft.KindOutlook, outlookRedir, "Calendars.Read", "Presence.ReadWrite"},
		{microsoft.KindTeams, teamsRedir, "Presence.ReadWrite", "Calendars.Read"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			f, q := e.authorize(ctx, tc.kind)
			aq := f.authURL.Query()
			if aq.Get("redirect_uri") != tc.redirect || aq.Get("prompt") != "select_account" {
				t.Errorf("auth URL redirect_uri %q prompt %q", aq.Get("redirect_uri"), aq.Get("prompt"))
			}
			if sc := strings.Fields(aq.Get("scope")); !slices.Contains(sc, "offline_access") || !slices.Contains(sc, tc.scope) {
				t.Errorf("requested scopes %v", sc)
			}
			now := e.clock.Now()
			g, err := e.client.Finish(ctx, tc.kind, q.Get("code"), f.verifier, f.nonce, now)
			if err != nil {
				t.Fatal(err)
			}
			if g.ObjectID != testOID || g.TenantID != testTenant || g.Subject != testTenant+"/"+testOID {
				t.Errorf("account %+v", g.Account)
			}
			if !slices.Contains(g.Scopes, tc.scope) || !slices.Contains(g.Scopes, "offline_access") || slices.Contains(g.Scopes, tc.notScope) {
				t.Errorf("granted scopes %v, want %s and offline_access, not %s", g.Scopes, tc.scope, tc.notScope)
			}
			c := g.Credential
			if c.AccessToken == "" || c.RefreshToken == "" {
				t.Fatalf("credential lacks tokens: access %t refresh %t", c.AccessToken != "", c.RefreshToken != "")
			}
			if !c.Expiry.Equal(now.Add(time.Hour)) {
				t.Errorf("expiry %v, want %v (expires_in from the fake clock)", c.Expiry, now.Add(time.Hour))
			}
			if c.NeedsRefresh(now, 5*time.Minute) || !c.NeedsRefresh(now.Add(56*time.Minute), 5*time.Minute) {
				t.Errorf("NeedsRefresh disagrees with expiry %v", c.Expiry)
			}
			// The grant works for what it is for.
			if tc.kind == microsoft.KindOutlook {
				if _, err := e.client.Sync(ctx, c, "", now, 24*time.Hour, false); err != nil {
					t.Errorf("Sync with the Outlook grant: %v", err)
				}
				if _, err := e.client.SetPresence(ctx, c, "Busy", "InACall", time.Hour); err == nil {
					t.Error("SetPresence with the Outlook grant (no Presence.ReadWrite) succeeded")
				}
			} else {
				if _, err := e.client.SetPresence(ctx, c, "Busy", "InACall", time.Hour); err != nil {
					t.Errorf("SetPresence with the Teams grant: %v", err)
				}
				if _, err := e.client.Sync(ctx, c, "", now, 24*time.Hour, false); err == nil {
					t.Error("Sync with the Teams grant (no Calendars.Read) succeeded")
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------------------
// 3. Refresh

func TestRefresh(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{}) // KeepOldRefreshTokens false: a redeemed refresh token dies
	g := e.connect(ctx, microsoft.KindOutlook)
	old := g.Credential
	old.Extra = map[string]string{"kept": "yes"}

	e.clock.Advance(50 * time.Minute)
	now := e.clock.Now()
	fresh, err := e.client.Refresh(ctx, old, now)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if fresh.AccessToken == "" || fresh.AccessToken == old.AccessToken {
		t.Error("Refresh kept the old access token")
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == old.RefreshToken {
		t.Error("Refresh did not return the rotated refresh token")
	}
	if !fresh.Expiry.Equal(now.Add(time.Hour)) {
		t.Errorf("expiry %v, want %v", fresh.Expiry, now.Add(time.Hour))
	}
	if fresh.Extra["kept"] != "yes" {
		t.Errorf("Extra lost: %v", fresh.Extra)
	}
	calls := e.fake.CallsTo(graphfake.EndpointToken)
	if last := calls[len(calls)-1]; last.Query.Get("grant_type") != "refresh_token" || last.Query.Has("scope") {
		t.Errorf("refresh request: %v, want grant_type=refresh_token without scope", last.Query)
	}
	if _, err := e.client.Sync(ctx, fresh, "", now, 24*time.Hour, false); err != nil {
		t.Errorf("the refreshed access token does not work: %v", err)
	}

	// The redeemed refresh token is refused, in one request: the grant is gone as far as it
	// is concerned.
	before := e.callCount(graphfake.EndpointToken)
	_, err = e.client.Refresh(ctx, old, now)
	if n := e.callCount(graphfake.EndpointToken) - before; n != 1 {
		t.Errorf("a refused refresh sent %d token requests, want 1", n)
	}
	var re *provider.RevokedError
	if !errors.As(err, &re) || re.Reason != "invalid_grant" || !errors.Is(err, provider.ErrRevoked) {
		t.Fatalf("Refresh with the old refresh token: %v, want *provider.RevokedError invalid_grant", err)
	}
	// The rotated one works, once more.
	fresh2, err := e.client.Refresh(ctx, fresh, now)
	if err != nil {
		t.Fatalf("Refresh with the rotated refresh token: %v", err)
	}

	// No refresh token at all.
	if _, err := e.client.Refresh(ctx, provider.Credential{AccessToken: "x"}, now); !errors.As(err, &re) {
		t.Errorf("Refresh without a refresh token: %v, want RevokedError", err)
	}

	// The token endpoint failing is not a revocation.
	e.fake.FailNext(graphfake.EndpointToken, http.StatusServiceUnavailable, "")
	before = e.callCount(graphfake.EndpointToken)
	if _, err := e.client.Refresh(ctx, fresh2, now); err == nil || errors.Is(err, provider.ErrRevoked) {
		t.Errorf("Refresh during a 503: %v, want a plain error", err)
	}
	if n := e.callCount(graphfake.EndpointToken) - before; n != 1 {
		t.Errorf("a refresh during a 503 sent %d token requests, want 1 (no hidden retry)", n)
	}
	if c := e.fake.CallsTo(graphfake.EndpointToken); c[len(c)-1].Query.Get("client_secret") != "REDACTED" {
		t.Errorf("the client secret is not in the form body (client_secret_post): %v", c[len(c)-1].Query)
	}

	// An admin revokes the person's sessions: invalid_grant.
	e.fake.RevokeTokens(testOID)
	_, err = e.client.Refresh(ctx, fresh2, now)
	if !errors.As(err, &re) || re.Reason != "invalid_grant" {
		t.Fatalf("Refresh after RevokeTokens: %v, want *provider.RevokedError invalid_grant", err)
	}
	if reason, ok := provider.RevokedReason(err); !ok || reason != "invalid_grant" {
		t.Errorf("RevokedReason = %q, %v", reason, ok)
	}
}

func TestRefreshKeepOldRefreshTokens(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{fake: graphfake.Options{KeepOldRefreshTokens: true}})
	old := e.connect(ctx, microsoft.KindTeams).Credential
	if _, err := e.client.Refresh(ctx, old, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Refresh(ctx, old, e.clock.Now()); err != nil {
		t.Fatalf("with KeepOldRefreshTokens the old refresh token should still work: %v", err)
	}
}

// ---------------------------------------------------------------------------------------
// 4. Outlook sync

const horizon = 72 * time.Hour

func eventIDs(evs []presence.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func TestOutlookSync(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{}) // DefaultPageSize 10: the client must ask for bigger pages
	cred := e.connect(ctx, microsoft.KindOutlook).Credential

	// 105 events in the window, one before it, one after it (that a later window takes in).
	var inWindow []string
	for i := range 105 {
		start := t0.Add(time.Duration(i) * 30 * time.Minute)
		inWindow = append(inWindow, e.fake.AddEvent(testOID, graphfake.Event{Subject: fmt.Sprintf("secret-%d", i), Start: start, End: start.Add(25 * time.Minute)}))
	}
	e.fake.AddEvent(testOID, graphfake.Event{Subject: "secret-past", Start: t0.Add(-30 * time.Hour), End: t0.Add(-29 * time.Hour)})
	late := e.fake.AddEvent(testOID, graphfake.Event{Subject: "secret-late", Start: t0.Add(80 * time.Hour), End: t0.Add(81 * time.Hour)})

	before := e.callCount(graphfake.EndpointCalendarViewDelta)
	now := e.clock.Now()
	res, err := e.client.Sync(ctx, cred, "", now, horizon, false)
	if err != nil {
		t.Fatal(err)
	}
	calls := e.fake.CallsTo(graphfake.EndpointCalendarViewDelta)[before:]
	if len(calls) != 2 {
		t.Errorf("full sync of 105 events took %d requests, want 2 (odata.maxpagesize=100, graphfake's default page is 10)", len(calls))
	}
	if q := calls[0].Query; q.Get("startDateTime") != "2026-03-01T08:00:00Z" || q.Get("endDateTime") != "2026-03-05T08:00:00Z" {
		t.Errorf("full sync window %s..%s, want [now-24h, now+horizon]", q.Get("startDateTime"), q.Get("endDateTime"))
	}
	if len(calls) > 1 && (calls[1].Query.Get("$skiptoken") == "" || calls[1].Query.Has("startDateTime")) {
		t.Errorf("second page request %v, want the nextLink (a $skiptoken, no window)", calls[1].Query)
	}
	if !res.Full || res.NextToken == "" || len(res.Deleted) != 0 {
		t.Errorf("full sync: Full %v, NextToken set %v, Deleted %v", res.Full, res.NextToken != "", res.Deleted)
	}
	if got := eventIDs(res.Events); !slices.Equal(got, sorted(inWindow...)) {
		t.Errorf("full sync returned %d events, want the 105 in the window", len(got))
	}
	for _, ev := range res.Events {
		if ev.Start.Location() != time.UTC || ev.End.Location() != time.UTC {
			t.Fatalf("event %s not in UTC: %v", ev.ID, ev.Start)
		}
	}
	if ev := res.Events[slices.IndexFunc(res.Events, func(ev presence.Event) bool { return ev.ID == inWindow[3] })]; !ev.Start.Equal(t0.Add(90*time.Minute)) || !ev.End.Equal(t0.Add(115*time.Minute)) {
		t.Errorf("event 3 at %v..%v", ev.Start, ev.End)
	}
	token := res.NextToken

	// Changes: exactly what changed comes back.
	e.clock.Advance(10 * time.Minute)
	added := e.fake.AddEvent(testOID, graphfake.Event{Subject: "secret-new", Start: t0.Add(5 * time.Hour), End: t0.Add(6 * time.Hour)})
	if err := e.fake.UpdateEvent(testOID, inWindow[10], func(ev *graphfake.Event) {
		ev.Start, ev.End = t0.Add(20*time.Hour), t0.Add(21*time.Hour)
		ev.ShowAs = "tentative"
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.DeleteEvent(testOID, inWindow[20]); err != nil {
		t.Fatal(err)
	}
	before = e.callCount(graphfake.EndpointCalendarViewDelta)
	res, err = e.client.Sync(ctx, cred, token, e.clock.Now(), horizon, false)
	if err != nil {
		t.Fatal(err)
	}
	calls = e.fake.CallsTo(graphfake.EndpointCalendarViewDelta)[before:]
	if len(calls) != 1 || calls[0].Query.Get("$deltatoken") == "" {
		t.Errorf("incremental sync requests: %+v, want one with the $deltatoken", calls)
	}
	if res.Full {
		t.Error("incremental sync reported Full")
	}
	if got := eventIDs(res.Events); !slices.Equal(got, sorted(added, inWindow[10])) {
		t.Errorf("incremental events %v, want the added and the updated", got)
	}
	if !slices.Equal(res.Deleted, []string{inWindow[20]}) {
		t.Errorf("incremental deleted %v, want [%s]", res.Deleted, inWindow[20])
	}
	for _, ev := range res.Events {
		if ev.ID == inWindow[10] && (!ev.Start.Equal(t0.Add(20*time.Hour)) || ev.Busy != presence.BusyTentative) {
			t.Errorf("updated event %+v", ev)
		}
	}
	if res.NextToken == "" || res.NextToken == token {
		t.Error("incremental sync did not hand out a new token")
	}
	token = res.NextToken

	// Nothing changed: nothing comes back.
	res, err = e.client.Sync(ctx, cred, token, e.clock.Now(), horizon, false)
	if err != nil || res.Full || len(res.Events) != 0 || len(res.Deleted) != 0 || res.NextToken == "" {
		t.Fatalf("quiet incremental sync: %+v, %v", res, err)
	}
	token = res.NextToken

	// Graph forgot the sync state (410): start over with a full sync.
	if err := e.fake.InvalidateDeltaTokens(testOID); err != nil {
		t.Fatal(err)
	}
	before = e.callCount(graphfake.EndpointCalendarViewDelta)
	res, err = e.client.Sync(ctx, cred, token, e.clock.Now(), horizon, false)
	if err != nil {
		t.Fatalf("Sync after InvalidateDeltaTokens: %v", err)
	}
	calls = e.fake.CallsTo(graphfake.EndpointCalendarViewDelta)[before:]
	if len(calls) < 2 || calls[0].Status != http.StatusGone || calls[1].Query.Get("startDateTime") == "" {
		t.Errorf("requests after invalidation: %+v, want a 410 then a new full sync", calls)
	}
	if !res.Full || len(res.Events) != 105 || res.NextToken == "" {
		t.Errorf("resync: Full %v, %d events, token %v; want Full with 105 events", res.Full, len(res.Events), res.NextToken != "")
	}
	token = res.NextToken
	windowStart := e.clock.Now() // the token's window ends at windowStart+horizon

	// Within half a horizon of the window's end the token still serves.
	e.clock.Advance(horizon/2 - time.Hour)
	e.refresh(ctx, &cred)
	res, err = e.client.Sync(ctx, cred, token, e.clock.Now(), horizon, false)
	if err != nil || res.Full {
		t.Fatalf("sync %v into the window: Full %v, %v; want incremental", e.clock.Now().Sub(windowStart), res.Full, err)
	}
	token = res.NextToken

	// Past that, the window is too short: a full sync over a new window, which now takes in
	// the late event.
	e.clock.Advance(time.Hour + time.Minute)
	e.refresh(ctx, &cred)
	now = e.clock.Now()
	before = e.callCount(graphfake.EndpointCalendarViewDelta)
	res, err = e.client.Sync(ctx, cred, token, now, horizon, false)
	if err != nil {
		t.Fatal(err)
	}
	calls = e.fake.CallsTo(graphfake.EndpointCalendarViewDelta)[before:]
	if len(calls) == 0 || calls[0].Query.Get("startDateTime") != now.Add(-24*time.Hour).Format(time.RFC3339) ||
		calls[0].Query.Get("endDateTime") != now.Add(horizon).Format(time.RFC3339) || calls[0].Query.Has("$deltatoken") {
		t.Errorf("window renewal requests %+v, want a full sync over [now-24h, now+horizon] without the delta token", calls)
	}
	if !res.Full || !slices.Contains(eventIDs(res.Events), late) {
		t.Errorf("window renewal: Full %v, late event included %v", res.Full, slices.Contains(eventIDs(res.Events), late))
	}
	for _, ev := range res.Events {
		if !ev.End.After(now.Add(-24*time.Hour)) || !ev.Start.Before(now.Add(horizon)) {
			t.Errorf("event %s (%v..%v) outside the new window", ev.ID, ev.Start, ev.End)
		}
	}

	// A token that is not ours at all: a full sync, not an error.
	res, err = e.client.Sync(ctx, cred, "not a token", e.clock.Now(), horizon, false)
	if err != nil || !res.Full {
		t.Errorf("garbage token: Full %v, %v", res.Full, err)
	}
}

// With a page size cap below the client's preference, the client follows every nextLink.
func TestOutlookSyncManyPages(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{fake: graphfake.Options{DefaultPageSize: 3, MaxPageSize: 4}})
	cred := e.connect(ctx, microsoft.KindOutlook).Credential
	var ids []string
	for i := range 17 {
		start := t0.Add(time.Duration(i) * time.Hour)
		ids = append(ids, e.fake.AddEvent(testOID, graphfake.Event{Subject: "secret", Start: start, End: start.Add(30 * time.Minute)}))
	}
	before := e.callCount(graphfake.EndpointCalendarViewDelta)
	res, err := e.client.Sync(ctx, cred, "", e.clock.Now(), horizon, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.callCount(graphfake.EndpointCalendarViewDelta) - before; n != 5 {
		t.Errorf("%d requests for 17 events in pages of 4, want 5", n)
	}
	if !slices.Equal(eventIDs(res.Events), sorted(ids...)) || res.NextToken == "" {
		t.Errorf("got %d events, token %v", len(res.Events), res.NextToken != "")
	}
}

func TestOutlookEventMapping(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{})
	if err := e.fake.SetMailboxTimeZone(testOID, "W. Europe Standard Time"); err != nil {
		t.Fatal(err)
	}
	cred := e.connect(ctx, microsoft.KindOutlook).Credential

	at := func(h int) (time.Time, time.Time) {
		return t0.Add(time.Duration(h) * time.Hour), t0.Add(time.Duration(h)*time.Hour + 45*time.Minute)
	}
	colleague := graphfake.Attendee{Name: "Secret Colleague", Address: "colleague@contoso.test"}
	me := graphfake.Attendee{Name: "Grace Tester", Address: testEmail}
	room := graphfake.Attendee{Name: "Secret Room 4", Address: "room4@contoso.test", Type: "resource"}
	invited := func(id, response string, h int) graphfake.Event {
		s, en := at(h)
		return graphfake.Event{ID: id, Subject: "secret invitation " + id, Start: s, End: en, Response: response,
			OrganizerName: "Secret Boss", OrganizerEmail: "boss@contoso.test", Attendees: []graphfake.Attendee{me, colleague}}
	}
	own := func(id, showAs string, h int, attendees ...graphfake.Attendee) graphfake.Event {
		s, en := at(h)
		return graphfake.Event{ID: id, Subject: "secret own " + id, Start: s, End: en, ShowAs: showAs, Attendees: attendees,
			Location: "Secret Location"}
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	events := []graphfake.Event{
		own("free", "free", 1),
		own("tentative", "tentative", 2),
		own("oof", "oof", 3),
		own("elsewhere", "workingElsewhere", 4),
		own("busy", "busy", 5),
		own("unknown", "unknown", 6),
		own("solo", "", 7),
		own("with-other", "", 8, colleague),
		own("room-only", "", 9, room),
		invited("declined", "declined", 10),
		invited("tentativelyAccepted", "tentativelyAccepted", 11),
		invited("accepted", "accepted", 12),
		invited("notResponded", "notResponded", 13),
		func() graphfake.Event { ev := invited("cancelled", "accepted", 14); ev.IsCancelled = true; return ev }(),
		{ID: "allday", Subject: "secret holiday", IsAllDay: true,
			Start: time.Date(2026, 3, 3, 0, 0, 0, 0, berlin), End: time.Date(2026, 3, 5, 0, 0, 0, 0, berlin), ShowAs: "free"},
		{ID: "berlin", Subject: "secret berlin", Start: time.Date(2026, 3, 2, 15, 0, 0, 0, berlin), End: time.Date(2026, 3, 2, 16, 30, 0, 0, berlin)},
		{ID: "emoji", Subject: "🎉 secret launch party", Start: t0.Add(20 * time.Hour), End: t0.Add(21 * time.Hour)},
		{ID: "emoji-vs16", Subject: "✈️ secret flight", Start: t0.Add(22 * time.Hour), End: t0.Add(23 * time.Hour)},
	}
	for _, ev := range events {
		e.fake.AddEvent(testOID, ev)
	}

	for _, titleEmoji := range []bool{false, true} {
		t.Run(fmt.Sprintf("titleEmoji=%v", titleEmoji), func(t *testing.T) {
			res, err := e.client.Sync(ctx, cred, "", e.clock.Now(), horizon, titleEmoji)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]presence.Event{}
			for _, ev := range res.Events {
				got[ev.ID] = ev
			}
			if !slices.Equal(res.Deleted, []string{"cancelled"}) {
				t.Errorf("Deleted = %v, want the cancelled meeting", res.Deleted)
			}
			if _, ok := got["cancelled"]; ok || len(got) != len(events)-1 {
				t.Errorf("got %d events (cancelled among them: %v)", len(got), ok)
			}
			type want struct {
				busy   presence.BusyClass
				typ    presence.EventType
				resp   presence.Response
				others bool
			}
			for id, w := range map[string]want{
				"free":                {presence.BusyFree, presence.EventDefault, presence.ResponseAccepted, false},
				"tentative":           {presence.BusyTentative, presence.EventDefault, presence.ResponseAccepted, false},
				"oof":                 {presence.BusyOutOfOffice, presence.EventOutOfOffice, presence.ResponseAccepted, false},
				"elsewhere":           {presence.BusyWorkingElsewhere, presence.EventDefault, presence.ResponseAccepted, false},
				"busy":                {presence.BusyBusy, presence.EventDefault, presence.ResponseAccepted, false},
				"unknown":             {presence.BusyBusy, presence.EventDefault, presence.ResponseAccepted, false},
				"solo":                {presence.BusyBusy, presence.EventDefault, presence.ResponseAccepted, false},
				"with-other":          {presence.BusyBusy, presence.EventDefault, presence.ResponseAccepted, true},
				"room-only":           {presence.BusyBusy, presence.EventDefault, presence.ResponseAccepted, false},
				"declined":            {presence.BusyBusy, presence.EventDefault, presence.ResponseDeclined, true},
				"tentativelyAccepted": {presence.BusyBusy, presence.EventDefault, presence.ResponseTentative, true},
				"accepted":            {presence.BusyBusy, presence.EventDefault, presence.ResponseAccepted, true},
				"notResponded":        {presence.BusyBusy, presence.EventDefault, presence.ResponsePending, true},
			} {
				ev, ok := got[id]
				if !ok {
					t.Errorf("%s missing", id)
					continue
				}
				if ev.Busy != w.busy || ev.Type != w.typ || ev.Response != w.resp || ev.HasOtherAttendees != w.others || ev.AllDay || ev.Cancelled {
					t.Errorf("%s = busy %q type %q response %q others %v allDay %v; want %+v", id, ev.Busy, ev.Type, ev.Response, ev.HasOtherAttendees, ev.AllDay, w)
				}
			}
			if ev := got["allday"]; !ev.AllDay || !ev.Start.Equal(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)) ||
				!ev.End.Equal(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) || ev.Busy != presence.BusyFree {
				t.Errorf("all-day event = %+v, want 3–5 March at midnight UTC, free", ev)
			}
			if ev := got["berlin"]; !ev.Start.Equal(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)) || !ev.End.Equal(time.Date(2026, 3, 2, 15, 30, 0, 0, time.UTC)) {
				t.Errorf("Berlin event = %v..%v, want 14:00..15:30 UTC", ev.Start, ev.End)
			}
			for _, ev := range res.Events {
				if ev.Start.Location() != time.UTC || ev.End.Location() != time.UTC {
					t.Errorf("%s: times not in UTC (%v)", ev.ID, ev.Start)
				}
				wantEmoji := ""
				if titleEmoji {
					wantEmoji = map[string]string{"emoji": "🎉", "emoji-vs16": "✈️"}[ev.ID]
				}
				if ev.Emoji != wantEmoji {
					t.Errorf("%s: emoji %q, want %q", ev.ID, ev.Emoji, wantEmoji)
				}
			}

			// Privacy: nothing of a title, attendee, organizer or location is in the result.
			dump, _ := json.Marshal(res)
			text := string(dump) + fmt.Sprintf("%+v", res)
			for _, word := range []string{"secret", "Secret", "launch", "flight", "holiday", "boss@", "colleague", "room4", "Location"} {
				if strings.Contains(text, word) {
					t.Errorf("the sync result contains %q", word)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------------------
// 5. Teams

func TestTeamsPresenceAndStatusMessage(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{})
	cred := e.connect(ctx, microsoft.KindTeams).Credential
	if err := e.fake.SetClientSession(testOID, "Available", "Available", time.Time{}); err != nil {
		t.Fatal(err)
	}
	ourSession := func() *graphfake.Session {
		for _, s := range e.fake.Presence(testOID).Sessions {
			if s.ID == e.fake.ClientID() {
				return &s
			}
		}
		return nil
	}
	if e.client.ClientID() != e.fake.ClientID() {
		t.Fatal("client ID differs from the fake's")
	}

	for _, tc := range []struct {
		availability, activity string
		asked, want            time.Duration
	}{
		{"Busy", "InACall", 90 * time.Minute, 90 * time.Minute},
		{"Busy", "InAConferenceCall", 90*time.Minute + 30*time.Second, 90*time.Minute + 30*time.Second},
		{"Available", "Available", time.Minute, microsoft.MinSession},
		{"Away", "Away", 0, microsoft.MinSession},
		{"DoNotDisturb", "Presenting", 10 * time.Hour, microsoft.MaxSession},
		{"Busy", "InACall", 4*time.Hour + 400*time.Millisecond, microsoft.MaxSession},
		{"Busy", "InACall", 5*time.Minute + 400*time.Millisecond, 5 * time.Minute},
	} {
		name := fmt.Sprintf("%s/%s %v", tc.availability, tc.activity, tc.asked)
		got, err := e.client.SetPresence(ctx, cred, tc.availability, tc.activity, tc.asked)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != tc.want {
			t.Errorf("%s: SetPresence returned %v, want %v", name, got, tc.want)
		}
		s := ourSession()
		if s == nil {
			t.Fatalf("%s: no session with our client ID in %+v", name, e.fake.Presence(testOID).Sessions)
		}
		if s.Availability != tc.availability || s.Activity != tc.activity || !s.Expires.Equal(e.clock.Now().Add(tc.want)) {
			t.Errorf("%s: session %+v, want expiry %v", name, *s, e.clock.Now().Add(tc.want))
		}
	}
	calls := e.fake.CallsTo(graphfake.EndpointSetPresence)
	for _, c := range calls {
		if c.Path != "/v1.0/me/presence/setPresence" || c.Status != http.StatusOK {
			t.Errorf("setPresence call %s answered %d", c.Path, c.Status)
		}
	}

	// Teams() reads the aggregate: our Busy/InACall beats the client's Available.
	if _, err := e.client.SetPresence(ctx, cred, "Busy", "InACall", time.Hour); err != nil {
		t.Fatal(err)
	}
	st, err := e.client.Teams(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	if st.Availability != "Busy" || st.Activity != "InACall" {
		t.Errorf("Teams() = %+v, want Busy/InACall", st)
	}

	// A pair Graph does not take is an error, and changes nothing.
	if _, err := e.client.SetPresence(ctx, cred, "Busy", "Busy", time.Hour); err == nil {
		t.Error("SetPresence Busy/Busy succeeded")
	} else if _, ok := provider.RetryAfter(err); ok || errors.Is(err, provider.ErrRevoked) {
		t.Errorf("invalid pair reported as %v", err)
	}
	if s := ourSession(); s == nil || s.Activity != "InACall" {
		t.Errorf("session after the refused pair: %+v", s)
	}

	// ClearPresence ends our session only.
	if err := e.client.ClearPresence(ctx, cred); err != nil {
		t.Fatal(err)
	}
	if s := ourSession(); s != nil {
		t.Errorf("our session survived ClearPresence: %+v", *s)
	}
	if p := e.fake.Presence(testOID); p.Availability != "Available" || len(p.Sessions) != 1 || p.Sessions[0].ID != graphfake.ClientSessionID {
		t.Errorf("after ClearPresence: %+v, want the Teams client's session alone", p)
	}
	// None left: still fine (Graph answers 404).
	if err := e.client.ClearPresence(ctx, cred); err != nil {
		t.Errorf("ClearPresence without a session: %v", err)
	}
	if c := e.fake.CallsTo(graphfake.EndpointClearPresence); c[len(c)-1].Status != http.StatusNotFound {
		t.Errorf("second clearPresence answered %d, want 404 (taken as done)", c[len(c)-1].Status)
	}

	// Our status message, with an expiry.
	exp := e.clock.Now().Add(2 * time.Hour).Add(123 * time.Millisecond)
	if err := e.client.SetStatusMessage(ctx, cred, "In a meeting 📅", exp); err != nil {
		t.Fatal(err)
	}
	sm := e.fake.Presence(testOID).StatusMessage
	if sm == nil || sm.Content != "In a meeting 📅" || sm.ContentType != "text" || !sm.SetByApp || !sm.Expiry.Equal(exp.Truncate(100*time.Nanosecond)) {
		t.Fatalf("fake status message %+v, want ours until %v", sm, exp)
	}
	st, err = e.client.Teams(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	if st.Message != "In a meeting 📅" || !st.MessageExpiry.Equal(exp) || st.MessageExpiry.Location() != time.UTC {
		t.Errorf("Teams() = %+v, want our message until %v UTC", st, exp)
	}
	// Without expiry.
	if err := e.client.SetStatusMessage(ctx, cred, "Focusing", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if sm := e.fake.Presence(testOID).StatusMessage; sm == nil || sm.Content != "Focusing" || !sm.Expiry.IsZero() {
		t.Errorf("status message without expiry: %+v", sm)
	}
	if st, err := e.client.Teams(ctx, cred); err != nil || st.Message != "Focusing" || !st.MessageExpiry.IsZero() {
		t.Errorf("Teams() = %+v, %v; want Focusing without expiry", st, err)
	}
	// Empty text clears.
	if err := e.client.SetStatusMessage(ctx, cred, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if sm := e.fake.Presence(testOID).StatusMessage; sm != nil {
		t.Errorf("status message after clearing: %+v", sm)
	}
	if st, err := e.client.Teams(ctx, cred); err != nil || st.Message != "" || !st.MessageExpiry.IsZero() {
		t.Errorf("Teams() after clearing = %+v, %v", st, err)
	}

	// A message the person set in Teams reads back.
	personal := e.clock.Now().Add(26 * time.Hour)
	if err := e.fake.SetUserStatusMessage(testOID, "Out sick 🤒", personal); err != nil {
		t.Fatal(err)
	}
	st, err = e.client.Teams(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	if st.Message != "Out sick 🤒" || !st.MessageExpiry.Equal(personal) {
		t.Errorf("Teams() = %+v, want the person's message until %v", st, personal)
	}

	// The expiry comes back in the time zone it was set in, which Graph names the Windows
	// way ("Pacific Standard Time", as in the setStatusMessage documentation).
	body := `{"statusMessage":{"message":{"content":"Back Monday","contentType":"text"},` +
		`"expiryDateTime":{"dateTime":"2026-03-02T17:00:00.0000000","timeZone":"Pacific Standard Time"}}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1.0/me/presence/setStatusMessage", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+cred.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("setStatusMessage in Pacific time answered %d", resp.StatusCode)
	}
	st, err = e.client.Teams(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 3, 1, 0, 0, 0, time.UTC); st.Message != "Back Monday" || !st.MessageExpiry.Equal(want) {
		t.Errorf("Teams() = %+v, want expiry %v (17:00 Pacific)", st, want)
	}
}

// ---------------------------------------------------------------------------------------
// 6. Subscriptions

// receiver is the app's /webhooks/microsoft as Graph sees it.
type receiver struct {
	srv           *httptest.Server
	notifications chan []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{notifications: make(chan []byte, 16)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if tok := req.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, tok) // decoded, as Graph requires
			return
		}
		b, _ := io.ReadAll(req.Body)
		select {
		case r.notifications <- b:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func TestSubscriptions(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{})
	cred := e.connect(ctx, microsoft.KindOutlook).Credential
	rcv := newReceiver(t)
	notifyURL := rcv.srv.URL + "/webhooks/microsoft"
	const clientState = "cs-7f3a9b2e4d1c"

	now := e.clock.Now()
	id, exp, err := e.client.Subscribe(ctx, cred, notifyURL, clientState, now)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if id == "" || !exp.Equal(now.Add(microsoft.SubscriptionLifetime)) {
		t.Errorf("Subscribe = %q until %v, want an ID until %v", id, exp, now.Add(microsoft.SubscriptionLifetime))
	}
	v := e.fake.Deliveries()
	if len(v) != 1 || v[0].Kind != graphfake.DeliveryValidation || v[0].Status != http.StatusOK || v[0].Err != "" || v[0].URL != notifyURL {
		t.Errorf("validation handshake: %+v", v)
	}
	subs := e.fake.Subscriptions()
	if len(subs) != 1 || subs[0].ID != id || subs[0].Resource != "me/events" || subs[0].ChangeType != "created,updated,deleted" ||
		subs[0].NotificationURL != notifyURL || subs[0].ClientState != clientState || subs[0].UserID != testOID ||
		subs[0].ApplicationID != e.fake.ClientID() || !subs[0].Expires.Equal(exp) {
		t.Errorf("fake's subscriptions: %+v", subs)
	}

	// A change to an event is notified with our clientState.
	evID := e.fake.AddEvent(testOID, graphfake.Event{Subject: "secret", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)})
	var body []byte
	select {
	case body = <-rcv.notifications:
	case <-ctx.Done():
		t.Fatal("no notification reached the receiver")
	}
	var n struct {
		Value []struct {
			SubscriptionID string `json:"subscriptionId"`
			ChangeType     string `json:"changeType"`
			ClientState    string `json:"clientState"`
			TenantID       string `json:"tenantId"`
			ResourceData   struct {
				ID string `json:"id"`
			} `json:"resourceData"`
		} `json:"value"`
	}
	if err := json.Unmarshal(body, &n); err != nil || len(n.Value) != 1 {
		t.Fatalf("notification %s: %v", body, err)
	}
	if got := n.Value[0]; got.SubscriptionID != id || got.ChangeType != "created" || got.ClientState != clientState ||
		got.TenantID != testTenant || got.ResourceData.ID != evID {
		t.Errorf("notification %+v", got)
	}
	if d, err := e.fake.WaitForNotification(ctx, 1); err != nil || d[0].Status != http.StatusAccepted {
		t.Errorf("delivery record %+v, %v", d, err)
	}

	// Renew extends.
	e.clock.Advance(24 * time.Hour)
	e.refresh(ctx, &cred)
	now = e.clock.Now()
	exp2, err := e.client.Renew(ctx, cred, id, now)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if !exp2.Equal(now.Add(microsoft.SubscriptionLifetime)) || !exp2.After(exp) {
		t.Errorf("Renew = %v, want %v", exp2, now.Add(microsoft.SubscriptionLifetime))
	}
	if subs := e.fake.Subscriptions(); len(subs) != 1 || !subs[0].Expires.Equal(exp2) {
		t.Errorf("fake's subscription after renewal: %+v", subs)
	}

	// Unsubscribe; a second time is fine; renewing it now says it is gone.
	if err := e.client.Unsubscribe(ctx, cred, id); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if subs := e.fake.Subscriptions(); len(subs) != 0 {
		t.Errorf("subscriptions after Unsubscribe: %+v", subs)
	}
	if err := e.client.Unsubscribe(ctx, cred, id); err != nil {
		t.Errorf("Unsubscribe of a deleted subscription: %v", err)
	}
	if _, err := e.client.Renew(ctx, cred, id, now); !errors.Is(err, microsoft.ErrSubscriptionGone) {
		t.Errorf("Renew of a deleted subscription: %v, want ErrSubscriptionGone", err)
	}

	// An expired one is gone too.
	id2, _, err := e.client.Subscribe(ctx, cred, notifyURL, clientState, now)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(microsoft.SubscriptionLifetime + time.Minute)
	e.refresh(ctx, &cred)
	if _, err := e.client.Renew(ctx, cred, id2, e.clock.Now()); !errors.Is(err, microsoft.ErrSubscriptionGone) {
		t.Errorf("Renew of an expired subscription: %v, want ErrSubscriptionGone", err)
	}
}

func TestSubscribeValidationFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"token still encoded", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, url.QueryEscape(r.URL.Query().Get("validationToken")))
		}},
		{"JSON content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, r.URL.Query().Get("validationToken"))
		}},
		{"status 500", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, r.URL.Query().Get("validationToken"))
		}},
		{"nothing echoed", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			e := newEnv(t, envOptions{})
			cred := e.connect(ctx, microsoft.KindOutlook).Credential
			bad := httptest.NewServer(tc.handler)
			t.Cleanup(bad.Close)
			id, _, err := e.client.Subscribe(ctx, cred, bad.URL+"/webhooks/microsoft", "cs", e.clock.Now())
			if err == nil {
				t.Fatalf("Subscribe succeeded with id %q", id)
			}
			if subs := e.fake.Subscriptions(); len(subs) != 0 {
				t.Errorf("a subscription was created: %+v", subs)
			}
			if d := e.fake.Deliveries(); len(d) != 1 || d[0].Kind != graphfake.DeliveryValidation || d[0].Err == "" {
				t.Errorf("validation record %+v", d)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------
// 7. Errors

func TestGraphErrors(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{})
	teams := e.connect(ctx, microsoft.KindTeams).Credential
	outlook := e.connect(ctx, microsoft.KindOutlook).Credential

	// once runs op with a fault on endpoint and checks it was sent exactly once.
	once := func(t *testing.T, endpoint string, status int, op func() error) error {
		t.Helper()
		e.fake.FailNext(endpoint, status, "")
		before := e.callCount(endpoint)
		err := op()
		if n := e.callCount(endpoint) - before; n != 1 {
			t.Errorf("%d requests to %s, want exactly 1 (the SDK's retry handler must be out of the pipeline)", n, endpoint)
		}
		if err == nil {
			t.Fatalf("%s answering %d: no error", endpoint, status)
		}
		return err
	}
	rateLimited := func(t *testing.T, err error) {
		t.Helper()
		var rl *provider.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
			t.Errorf("error %v, want *provider.RateLimitedError with RetryAfter 1s", err)
		}
		if d, ok := provider.RetryAfter(err); !ok || d != time.Second {
			t.Errorf("provider.RetryAfter = %v, %v", d, ok)
		}
	}
	plain := func(t *testing.T, err error) {
		t.Helper()
		if _, ok := provider.RetryAfter(err); ok || errors.Is(err, provider.ErrRevoked) {
			t.Errorf("error %v is classed as a rate limit or revocation", err)
		}
	}

	t.Run("429 presence", func(t *testing.T) {
		rateLimited(t, once(t, graphfake.EndpointPresenceGet, http.StatusTooManyRequests, func() error {
			_, err := e.client.Teams(ctx, teams)
			return err
		}))
	})
	t.Run("429 setPresence", func(t *testing.T) {
		rateLimited(t, once(t, graphfake.EndpointSetPresence, http.StatusTooManyRequests, func() error {
			_, err := e.client.SetPresence(ctx, teams, "Busy", "InACall", time.Hour)
			return err
		}))
	})
	t.Run("429 calendar delta", func(t *testing.T) {
		rateLimited(t, once(t, graphfake.EndpointCalendarViewDelta, http.StatusTooManyRequests, func() error {
			_, err := e.client.Sync(ctx, outlook, "", e.clock.Now(), horizon, false)
			return err
		}))
	})
	t.Run("503 with Retry-After", func(t *testing.T) {
		rateLimited(t, once(t, graphfake.EndpointSetStatusMessage, http.StatusServiceUnavailable, func() error {
			return e.client.SetStatusMessage(ctx, teams, "x", time.Time{})
		}))
	})
	t.Run("500", func(t *testing.T) {
		plain(t, once(t, graphfake.EndpointPresenceGet, http.StatusInternalServerError, func() error {
			_, err := e.client.Teams(ctx, teams)
			return err
		}))
	})
	t.Run("504", func(t *testing.T) {
		plain(t, once(t, graphfake.EndpointCalendarViewDelta, http.StatusGatewayTimeout, func() error {
			_, err := e.client.Sync(ctx, outlook, "", e.clock.Now(), horizon, false)
			return err
		}))
	})
	t.Run("500 on subscription create", func(t *testing.T) {
		rcv := newReceiver(t)
		plain(t, once(t, graphfake.EndpointSubscriptionCreate, http.StatusInternalServerError, func() error {
			_, _, err := e.client.Subscribe(ctx, outlook, rcv.srv.URL, "cs", e.clock.Now())
			return err
		}))
	})
	t.Run("works again after the faults", func(t *testing.T) {
		if _, err := e.client.Teams(ctx, teams); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("401 after RevokeTokens", func(t *testing.T) {
		e.fake.RevokeTokens(testOID)
		ops := map[string]func() error{
			"Teams":            func() error { _, err := e.client.Teams(ctx, teams); return err },
			"SetPresence":      func() error { _, err := e.client.SetPresence(ctx, teams, "Busy", "InACall", time.Hour); return err },
			"ClearPresence":    func() error { return e.client.ClearPresence(ctx, teams) },
			"SetStatusMessage": func() error { return e.client.SetStatusMessage(ctx, teams, "x", time.Time{}) },
			"Sync":             func() error { _, err := e.client.Sync(ctx, outlook, "", e.clock.Now(), horizon, false); return err },
			"Subscribe": func() error {
				_, _, err := e.client.Subscribe(ctx, outlook, "http://127.0.0.1:1/", "cs", e.clock.Now())
				return err
			},
			"Renew":       func() error { _, err := e.client.Renew(ctx, outlook, "some-id", e.clock.Now()); return err },
			"Unsubscribe": func() error { return e.client.Unsubscribe(ctx, outlook, "some-id") },
		}
		for name, op := range ops {
			err := op()
			if err == nil {
				t.Errorf("%s with a revoked token: no error", name)
				continue
			}
			if _, ok := provider.RetryAfter(err); ok || errors.Is(err, microsoft.ErrSubscriptionGone) {
				t.Errorf("%s with a revoked token: %v", name, err)
			}
			// A 401 is a token the scheduler refreshes once; if the refresh fails, the
			// connection is broken.
			if reason, ok := provider.RevokedReason(err); !ok || reason != "token_expired" {
				t.Errorf("%s with a revoked token: %v, want a RevokedError token_expired", name, err)
			}
		}
		if n := len(slices.DeleteFunc(e.fake.Calls(), func(c graphfake.Call) bool { return c.Status != http.StatusUnauthorized })); n != len(ops) {
			t.Errorf("%d requests answered 401, want %d (one per call)", n, len(ops))
		}
	})
}

// Graph calls from several goroutines at once, as the scheduler's workers make them: under
// -race this failed while every call built its client with msgraphsdk.NewGraphServiceClient,
// which writes a package-level variable of kiota's.
func TestConcurrentGraphCalls(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, envOptions{})
	cred := e.connect(ctx, microsoft.KindTeams).Credential
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 8 {
		wg.Go(func() {
			if _, err := e.client.Teams(ctx, cred); err != nil {
				errs <- err
			}
			if _, err := e.client.SetPresence(ctx, cred, "Busy", "InACall", time.Hour); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
