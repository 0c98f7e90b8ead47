package alexafake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
	"github.com/dontinterrupt/dontinterrupt/integrations/alexa/alexafake"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)} }

const redirectURI = "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA"

// oauthServer is a small authorization server with a sign-in page (sets a
// session cookie) and a consent page, enough to drive Link.
type oauthServer struct {
	*httptest.Server
	t        *testing.T
	mu       sync.Mutex
	codes    map[string]bool
	refresh  map[string]bool
	basic    bool // require Basic client auth (else body)
	lastAuth string
	n        int
	expires  int
}

func newOAuthServer(t *testing.T, basic bool) *oauthServer {
	s := &oauthServer{t: t, codes: map[string]bool{}, refresh: map[string]bool{}, basic: basic, expires: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("session"); err != nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.String()), http.StatusFound)
			return
		}
		q := r.URL.Query()
		if q.Get("redirect_uri") != redirectURI || q.Get("response_type") != "code" || q.Get("client_id") != "alexa" {
			http.Error(w, "bad authorize request", 400)
			return
		}
		fmt.Fprintf(w, `<form method="post" action="/oauth/consent"><input name="q" value="%s"></form>`, url.QueryEscape(r.URL.RawQuery))
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<a href="/login/done?next=%s">Sign in with Google</a>`, url.QueryEscape(r.URL.Query().Get("next")))
	})
	mux.HandleFunc("GET /login/done", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "signed-in", Path: "/"})
		http.Redirect(w, r, r.URL.Query().Get("next"), http.StatusFound)
	})
	mux.HandleFunc("POST /oauth/consent", func(w http.ResponseWriter, r *http.Request) {
		q, _ := url.ParseQuery(r.FormValue("q"))
		if r.FormValue("decision") != "allow" {
			http.Redirect(w, r, q.Get("redirect_uri")+"?error=access_denied&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
			return
		}
		s.mu.Lock()
		s.n++
		code := fmt.Sprintf("code-%d", s.n)
		s.codes[code] = true
		s.mu.Unlock()
		state := q.Get("state")
		if r.FormValue("tamper") != "" {
			state = "other"
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(state), http.StatusFound)
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, basicOK := r.BasicAuth()
		if basicOK {
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		} else {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if basicOK != s.basic || id != "alexa" || secret != "s3cr:t&" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		s.lastAuth = map[bool]string{true: "basic", false: "body"}[basicOK]
		switch r.PostFormValue("grant_type") {
		case "authorization_code":
			code := r.PostFormValue("code")
			if !s.codes[code] || r.PostFormValue("redirect_uri") != redirectURI {
				w.WriteHeader(400)
				io.WriteString(w, `{"error":"invalid_grant","error_description":"code used or unknown"}`)
				return
			}
			delete(s.codes, code)
		case "refresh_token":
			rt := r.PostFormValue("refresh_token")
			if !s.refresh[rt] {
				w.WriteHeader(400)
				io.WriteString(w, `{"error":"invalid_grant"}`)
				return
			}
			delete(s.refresh, rt)
		default:
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"unsupported_grant_type"}`)
			return
		}
		s.n++
		rt := fmt.Sprintf("refresh-%d", s.n)
		s.refresh[rt] = true
		json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("access-%d", s.n), "token_type": "Bearer", "expires_in": s.expires, "refresh_token": rt, "scope": "status"})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// browser signs in and consents: it follows the sign-in link, then posts
// the consent form with the given extra fields.
func browser(extra url.Values) func(ctx context.Context, c *http.Client, page *http.Response) (*http.Response, error) {
	return func(ctx context.Context, c *http.Client, page *http.Response) (*http.Response, error) {
		body, _ := io.ReadAll(page.Body)
		html := string(body)
		base := page.Request.URL
		switch {
		case strings.Contains(html, "Sign in with Google"):
			href := html[strings.Index(html, `href="`)+6:]
			href = href[:strings.Index(href, `"`)]
			u, _ := base.Parse(strings.ReplaceAll(href, "&amp;", "&"))
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			return c.Do(req)
		case strings.Contains(html, `action="/oauth/consent"`):
			v := html[strings.Index(html, `value="`)+7:]
			v = v[:strings.Index(v, `"`)]
			q, _ := url.QueryUnescape(v)
			form := url.Values{"q": {q}, "decision": {"allow"}}
			maps.Copy(form, extra)
			u, _ := base.Parse("/oauth/consent")
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return c.Do(req)
		}
		return nil, errors.New("unknown page")
	}
}

func linkConfig(s *oauthServer, basic bool, extra url.Values) alexafake.LinkConfig {
	jar, _ := cookiejar.New(nil)
	return alexafake.LinkConfig{
		AuthorizeURL: s.URL + "/oauth/authorize", TokenURL: s.URL + "/oauth/token",
		ClientID: "alexa", ClientSecret: "s3cr:t&", RedirectURI: redirectURI, Scope: "status",
		UseBasicAuth: basic, HTTPClient: &http.Client{Jar: jar}, Browser: browser(extra),
		TokenTimeout: -1,
	}
}

func TestLinkAndRefresh(t *testing.T) {
	for _, basic := range []bool{true, false} {
		t.Run(fmt.Sprintf("basic=%v", basic), func(t *testing.T) {
			c := newClock()
			fake := alexafake.New(alexafake.Options{Now: c.Now})
			s := newOAuthServer(t, basic)
			cfg := linkConfig(s, basic, nil)
			tok, err := fake.Link(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != time.Hour || !tok.Expiry.Equal(c.Now().Add(time.Hour)) {
				t.Errorf("tokens %v", tok)
			}
			if strings.Contains(tok.String(), tok.AccessToken) {
				t.Errorf("String shows the token")
			}
			if want := map[bool]string{true: "basic", false: "body"}[basic]; s.lastAuth != want {
				t.Errorf("client auth %s, want %s", s.lastAuth, want)
			}
			tok2, err := fake.Refresh(context.Background(), cfg, tok.RefreshToken)
			if err != nil || tok2.AccessToken == tok.AccessToken {
				t.Fatalf("refresh: %v %v", tok2, err)
			}
			if got, _ := fake.Linked(); got.AccessToken != tok2.AccessToken {
				t.Errorf("linked tokens not updated")
			}
			// The old refresh token was rotated away.
			var ae *alexafake.AuthError
			if _, err := fake.Refresh(context.Background(), cfg, tok.RefreshToken); !errors.As(err, &ae) || ae.Code != "invalid_grant" || ae.Status != 400 {
				t.Errorf("reused refresh token: %v", err)
			}
		})
	}
}

func TestLinkErrors(t *testing.T) {
	c := newClock()
	fake := alexafake.New(alexafake.Options{Now: c.Now})
	s := newOAuthServer(t, true)
	ctx := context.Background()

	cfg := linkConfig(s, true, url.Values{"decision": {"deny"}})
	var ae *alexafake.AuthError
	if _, err := fake.Link(ctx, cfg); !errors.As(err, &ae) || ae.Code != "access_denied" {
		t.Errorf("denied: %v", err)
	}
	if _, err := fake.Link(ctx, linkConfig(s, true, url.Values{"tamper": {"1"}})); !errors.Is(err, alexafake.ErrStateMismatch) {
		t.Errorf("tampered state: %v", err)
	}
	cfg = linkConfig(s, true, nil)
	cfg.Browser = nil
	if _, err := fake.Link(ctx, cfg); !errors.Is(err, alexafake.ErrNeedsBrowser) {
		t.Errorf("no browser: %v", err)
	}
	cfg = linkConfig(s, true, nil)
	cfg.ClientSecret = "wrong"
	if _, err := fake.Link(ctx, cfg); !errors.As(err, &ae) || ae.Code != "invalid_client" || ae.Status != 401 {
		t.Errorf("wrong secret: %v", err)
	}
	cfg = linkConfig(s, true, nil)
	cfg.RedirectURI = "https://layla.amazon.com/api/skill/link/X"
	if _, err := fake.Link(ctx, cfg); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("unlisted redirect URI: %v", err)
	}
	if _, ok := fake.Linked(); ok {
		t.Errorf("linked after failures")
	}
}

func TestUnderstand(t *testing.T) {
	cases := []struct {
		say    string
		intent string
		slots  map[string]string
	}{
		{"I'm focusing for 45 minutes", alexafake.IntentStartFocus, map[string]string{"duration": "PT45M", "until": ""}},
		{"Alexa, tell don't interrupt I'm focusing for forty five minutes", alexafake.IntentStartFocus, map[string]string{"duration": "PT45M", "until": ""}},
		{"focus for 1 hour 30 minutes", alexafake.IntentStartFocus, map[string]string{"duration": "PT1H30M", "until": ""}},
		{"focus for an hour and a half", alexafake.IntentStartFocus, map[string]string{"duration": "PT1H30M", "until": ""}},
		{"i'm busy for half an hour", alexafake.IntentStartFocus, map[string]string{"duration": "PT30M", "until": ""}},
		{"focus for two hours", alexafake.IntentStartFocus, map[string]string{"duration": "PT2H", "until": ""}},
		{"focus until 3 pm", alexafake.IntentStartFocus, map[string]string{"duration": "", "until": "15:00"}},
		{"I'm focusing until 15:30", alexafake.IntentStartFocus, map[string]string{"duration": "", "until": "15:30"}},
		{"focus until the evening", alexafake.IntentStartFocus, map[string]string{"duration": "", "until": "EV"}},
		{"focus until noon", alexafake.IntentStartFocus, map[string]string{"duration": "", "until": "12:00"}},
		{"I'm back", alexafake.IntentEndFocus, nil},
		{"I’m back.", alexafake.IntentEndFocus, nil},
		{"pause", alexafake.IntentPause, nil},
		{"Resume", alexafake.IntentResume, nil},
		{"what's my status?", alexafake.IntentStatus, nil},
		{"ask don't interrupt what's my status", alexafake.IntentStatus, nil},
		{"help", alexa.IntentHelp, nil},
		{"stop", alexa.IntentStop, nil},
		{"cancel", alexa.IntentCancel, nil},
		{"sing me a song", alexa.IntentFallback, nil},
		{"focus for a while", alexa.IntentFallback, nil},
	}
	for _, tc := range cases {
		u := alexafake.Understand(tc.say)
		if u.Launch || u.Intent != tc.intent || (tc.slots != nil && !maps.Equal(u.Slots, tc.slots)) {
			t.Errorf("Understand(%q) = %+v, want %s %v", tc.say, u, tc.intent, tc.slots)
		}
	}
	for _, s := range []string{"", "open don't interrupt", "Alexa, open don't interrupt"} {
		if u := alexafake.Understand(s); !u.Launch {
			t.Errorf("Understand(%q) = %+v, want a launch", s, u)
		}
	}
}

// skill is a stand-in /alexa endpoint that verifies and echoes.
func skill(t *testing.T, fake *alexafake.Fake, c *clock, answer func(alexa.Request) alexa.ResponseEnvelope) (*httptest.Server, *[]alexa.Request) {
	v := &alexa.Verifier{SkillID: fake.SkillID(), Roots: fake.Roots(), Fetch: fake.Fetch, Now: c.Now}
	var mu sync.Mutex
	var got []alexa.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := v.Verify(r.Context(), r.Header, body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		b, _ := json.Marshal(answer(req))
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestSaySomething(t *testing.T) {
	c := newClock()
	fake := alexafake.New(alexafake.Options{Now: c.Now})
	srv, got := skill(t, fake, c, func(r alexa.Request) alexa.ResponseEnvelope {
		if r.AccessToken() == "" {
			return alexa.LinkAccountCard("Please link your account.")
		}
		return alexa.Speak(r.IntentName() + " " + r.AccessToken())
	})
	ctx := context.Background()

	res, err := fake.SaySomething(ctx, srv.URL, "I'm focusing for 45 minutes")
	if err != nil || res.Card() == nil || res.Card().Type != alexa.CardLinkAccount {
		t.Fatalf("unlinked: %+v %v", res, err)
	}

	s := newOAuthServer(t, true)
	s.expires = 60
	cfg := linkConfig(s, true, nil)
	tok, err := fake.Link(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err = fake.SaySomething(ctx, srv.URL, "I'm focusing for 45 minutes")
	if err != nil || res.Speech() != "StartFocusIntent "+tok.AccessToken {
		t.Fatalf("linked: %q %v", res.Speech(), err)
	}
	last := (*got)[len(*got)-1]
	if v, _ := last.SlotValue("duration"); v != "PT45M" {
		t.Errorf("duration slot %q", v)
	}
	// After the access token expires, Alexa refreshes before sending.
	c.Advance(2 * time.Minute)
	res, err = fake.SaySomething(ctx, srv.URL, "what's my status")
	if err != nil || res.Speech() == "StatusIntent "+tok.AccessToken || !strings.HasPrefix(res.Speech(), "StatusIntent access-") {
		t.Errorf("after expiry: %q %v", res.Speech(), err)
	}
	res, err = fake.SaySomething(ctx, srv.URL, "open don't interrupt")
	if err != nil || (*got)[len(*got)-1].Request.Type != alexa.TypeLaunch {
		t.Errorf("launch: %v", err)
	}
	for _, d := range fake.Deliveries() {
		if d.Status != 200 {
			t.Errorf("delivery %+v", d)
		}
	}
	if n := len(fake.Deliveries()); n != 4 {
		t.Errorf("%d deliveries", n)
	}
}

func TestSendChecksTheAnswer(t *testing.T) {
	c := newClock()
	fake := alexafake.New(alexafake.Options{Now: c.Now})
	ctx := context.Background()
	srv, _ := skill(t, fake, c, func(r alexa.Request) alexa.ResponseEnvelope {
		e := alexa.Speak("x")
		e.Response.OutputSpeech.Text = strings.Repeat("a", alexa.MaxSpeechChars+1)
		return e
	})
	if _, err := fake.Send(ctx, srv.URL, fake.Launch("", "t")); !errors.Is(err, alexafake.ErrBadResponse) {
		t.Errorf("long speech: %v", err)
	}
	srv2, _ := skill(t, fake, c, func(r alexa.Request) alexa.ResponseEnvelope { return alexa.Speak("bye") })
	if _, err := fake.Send(ctx, srv2.URL, fake.SessionEnded(alexa.ReasonError)); !errors.Is(err, alexafake.ErrBadResponse) {
		t.Errorf("speech to SessionEnded: %v", err)
	}
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer notJSON.Close()
	if _, err := fake.Send(ctx, notJSON.URL, fake.Launch("", "t")); !errors.Is(err, alexafake.ErrBadResponse) {
		t.Errorf("not JSON: %v", err)
	}
}

func TestEnvelopesAndFetch(t *testing.T) {
	c := newClock()
	fake := alexafake.New(alexafake.Options{SkillID: "amzn1.ask.skill.x", Now: c.Now})
	in := fake.Intent(alexafake.IntentStartFocus, map[string]string{"duration": "PT1H30M", "until": ""}, "tok")
	b, _ := json.Marshal(in)
	r, err := alexa.ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.ApplicationID() != "amzn1.ask.skill.x" || r.Session.Application.ApplicationID != "amzn1.ask.skill.x" ||
		r.AccessToken() != "tok" || r.Session.User.AccessToken != "tok" || !r.Request.Timestamp.Equal(c.Now()) ||
		!strings.HasPrefix(r.Request.RequestID, "amzn1.echo-api.request.") || r.Request.Locale != "en-US" {
		t.Errorf("intent envelope %s", b)
	}
	if strings.Contains(string(b), `"until":{"name":"until","value"`) {
		t.Errorf("unfilled slot has a value: %s", b)
	}
	l := fake.Launch("", "")
	b, _ = json.Marshal(l)
	if strings.Contains(string(b), "accessToken") {
		t.Errorf("unlinked launch carries a token: %s", b)
	}
	se := fake.SessionEnded("")
	if se.Request.Reason != alexa.ReasonUserInitiated || se.Request.Error != nil {
		t.Errorf("session ended %+v", se.Request)
	}

	if fake.CertChainURL() != "https://s3.amazonaws.com/echo.api/echo-api-cert.pem" {
		t.Errorf("CertChainURL %s", fake.CertChainURL())
	}
	pem, err := fake.Fetch(context.Background(), "https://S3.amazonaws.com:443/echo.api/../echo.api/echo-api-cert.pem")
	if err != nil || strings.Count(string(pem), "BEGIN CERTIFICATE") != 2 {
		t.Errorf("Fetch: %v", err)
	}
	if _, err := fake.Fetch(context.Background(), "https://s3.amazonaws.com/echo.api/none.pem"); !errors.Is(err, alexafake.ErrNotFound) {
		t.Errorf("Fetch of nothing: %v", err)
	}
	if fake.Fetches() != 2 {
		t.Errorf("Fetches %d", fake.Fetches())
	}
}
