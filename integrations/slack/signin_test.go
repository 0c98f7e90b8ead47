package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
)

const signInRedirect = "https://app.example/signin/slack/callback"

type signInEnv struct {
	fake *slackfake.Server
	hs   *httptest.Server
	c    *slack.Client
	now  time.Time
}

func newSignInEnv(t *testing.T, clientID string) *signInEnv {
	t.Helper()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fake := slackfake.New(slackfake.Options{Now: func() time.Time { return now }})
	hs := httptest.NewServer(fake)
	t.Cleanup(hs.Close)
	fake.SetBaseURL(hs.URL)
	if clientID == "" {
		clientID = fake.ClientID()
	}
	c, err := slack.New(slack.Config{
		ClientID: clientID, ClientSecret: fake.ClientSecret(), BaseURL: hs.URL,
		RedirectURL: "https://app.example/connect/slack/callback", SignInRedirectURL: signInRedirect,
		HTTPClient: hs.Client(), Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return &signInEnv{fake: fake, hs: hs, c: c, now: now}
}

func (e *signInEnv) noRedirects() *http.Client {
	c := *e.hs.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

var requestIDRe = regexp.MustCompile(`name="request" value="([0-9a-f]+)"`)

// consent follows the sign-in URL to the consent page, posts the decision and returns the
// callback's query.
func (e *signInEnv) consent(t *testing.T, authURL, decision, user string) url.Values {
	t.Helper()
	if !strings.HasPrefix(authURL, e.hs.URL+"/openid/connect/authorize?") {
		t.Fatalf("sign-in URL %s", authURL)
	}
	resp, err := e.noRedirects().Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent page: HTTP %d: %s", resp.StatusCode, body)
	}
	m := requestIDRe.FindSubmatch(body)
	if m == nil || !strings.Contains(string(body), `action="/openid/connect/authorize"`) {
		t.Fatalf("consent page without its form:\n%s", body)
	}
	resp, err = e.noRedirects().PostForm(e.hs.URL+"/openid/connect/authorize", url.Values{
		"request": {string(m[1])}, "decision": {decision}, "user": {user},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("decision: HTTP %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), signInRedirect+"?") {
		t.Fatalf("decision redirects to %q", resp.Header.Get("Location"))
	}
	return loc.Query()
}

func TestFakeDiscovery(t *testing.T) {
	e := newSignInEnv(t, "")
	resp, err := e.hs.Client().Get(e.hs.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"issuer":                 e.hs.URL,
		"authorization_endpoint": e.hs.URL + "/openid/connect/authorize",
		"token_endpoint":         e.hs.URL + "/api/openid.connect.token",
		"userinfo_endpoint":      e.hs.URL + "/api/openid.connect.userInfo",
		"jwks_uri":               e.hs.URL + "/openid/connect/keys",
	} {
		if d[k] != want {
			t.Errorf("%s = %v, want %s", k, d[k], want)
		}
	}
	resp2, err := e.hs.Client().Get(e.hs.URL + "/openid/connect/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var jwks struct {
		Keys []struct{ Kty, Alg, Kid, N, E string }
	}
	if err := json.NewDecoder(resp2.Body).Decode(&jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].N == "" {
		t.Fatalf("JWKS %+v, %v", jwks, err)
	}
}

func TestSignIn(t *testing.T) {
	e := newSignInEnv(t, "")
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	authURL, err := e.c.SignInURL(ctx, "st4te", "n0nce", verifier)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	if q.Get("scope") != "openid" || q.Get("nonce") != "n0nce" || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != signInRedirect || q.Get("response_type") != "code" {
		t.Fatalf("sign-in URL query %v", q)
	}
	cb := e.consent(t, authURL, "approve", "U0002")
	if cb.Get("state") != "st4te" || cb.Get("code") == "" {
		t.Fatalf("callback %v", cb)
	}
	sub, err := e.c.FinishSignIn(ctx, cb.Get("code"), verifier, "n0nce")
	if err != nil {
		t.Fatal(err)
	}
	if sub != "T0001/U0002" {
		t.Errorf("subject %q, want T0001/U0002", sub)
	}

	// The code is single use.
	_, err = e.c.FinishSignIn(ctx, cb.Get("code"), verifier, "n0nce")
	var se *slack.SignInError
	if !errors.As(err, &se) || se.Code != "invalid_code" || se.Status != http.StatusOK {
		t.Fatalf("reused code: %v", err)
	}
}

func TestSignInRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("wrong nonce", func(t *testing.T) {
		e := newSignInEnv(t, "")
		e.fake.AutoApprove("U0001")
		verifier := oauth2.GenerateVerifier()
		authURL, err := e.c.SignInURL(ctx, "s", "the-nonce", verifier)
		if err != nil {
			t.Fatal(err)
		}
		code := autoCode(t, e, authURL)
		if _, err := e.c.FinishSignIn(ctx, code, verifier, "another-nonce"); err == nil || !strings.Contains(err.Error(), "nonce") {
			t.Fatalf("wrong nonce: %v", err)
		}
	})
	t.Run("wrong verifier", func(t *testing.T) {
		e := newSignInEnv(t, "")
		e.fake.AutoApprove("U0001")
		authURL, err := e.c.SignInURL(ctx, "s", "n", oauth2.GenerateVerifier())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.c.FinishSignIn(ctx, autoCode(t, e, authURL), oauth2.GenerateVerifier(), "n")
		var se *slack.SignInError
		if !errors.As(err, &se) || se.Code != "invalid_code_verifier" {
			t.Fatalf("wrong verifier: %v", err)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		e := newSignInEnv(t, "9999.8888")
		authURL, err := e.c.SignInURL(ctx, "s", "n", oauth2.GenerateVerifier())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.noRedirects().Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_client_id") {
			t.Fatalf("authorize with an unknown client: HTTP %d: %s", resp.StatusCode, body)
		}
		_, err = e.c.FinishSignIn(ctx, "some-code", oauth2.GenerateVerifier(), "n")
		var se *slack.SignInError
		if !errors.As(err, &se) || se.Code != "invalid_client_id" {
			t.Fatalf("exchange with an unknown client: %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		e := newSignInEnv(t, "")
		authURL, err := e.c.SignInURL(ctx, "st", "n", oauth2.GenerateVerifier())
		if err != nil {
			t.Fatal(err)
		}
		cb := e.consent(t, authURL, "cancel", "")
		if cb.Get("error") != "access_denied" || cb.Get("state") != "st" || cb.Has("code") {
			t.Fatalf("cancel: callback %v", cb)
		}
	})
	t.Run("missing parameters", func(t *testing.T) {
		e := newSignInEnv(t, "")
		if _, err := e.c.SignInURL(ctx, "s", "", "v"); err == nil {
			t.Error("SignInURL without a nonce succeeded")
		}
		if _, err := e.c.FinishSignIn(ctx, "c", "", "n"); err == nil {
			t.Error("FinishSignIn without a verifier succeeded")
		}
	})
}

func TestSignInDiscoveryRetried(t *testing.T) {
	fake := slackfake.New(slackfake.Options{})
	var up atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	defer hs.Close()
	fake.SetBaseURL(hs.URL)
	c, err := slack.New(slack.Config{ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), BaseURL: hs.URL,
		RedirectURL: "https://app.example/connect/slack/callback", SignInRedirectURL: signInRedirect, HTTPClient: hs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignInURL(context.Background(), "s", "n", "v"); err == nil {
		t.Fatal("SignInURL succeeded with Slack down")
	}
	up.Store(true)
	if _, err := c.SignInURL(context.Background(), "s", "n", "v"); err != nil {
		t.Fatalf("discovery not retried: %v", err)
	}
}

// autoCode follows authURL with AutoApprove on and returns the code.
func autoCode(t *testing.T, e *signInEnv, authURL string) string {
	t.Helper()
	resp, err := e.noRedirects().Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("auto-approve: HTTP %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}
