package alexa_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
	"github.com/dontinterrupt/dontinterrupt/integrations/alexa/alexafake"
)

const skillID = "amzn1.ask.skill.11111111-2222-4333-8444-555555555555"

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// endpoint is an /alexa handler around a Verifier that remembers the last
// verification error.
type endpoint struct {
	*httptest.Server
	v       *alexa.Verifier
	mu      sync.Mutex
	lastErr error
	last    alexa.Request
}

func (e *endpoint) result() (alexa.Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last, e.lastErr
}

type env struct {
	clock *clock
	fake  *alexafake.Fake
	ep    *endpoint
	ctx   context.Context
}

func setup(t *testing.T, mod ...func(*alexa.Verifier)) *env {
	t.Helper()
	c := newClock()
	fake := alexafake.New(alexafake.Options{SkillID: skillID, Now: c.Now})
	v := &alexa.Verifier{SkillID: skillID, Roots: fake.Roots(), Fetch: fake.Fetch, Now: c.Now}
	for _, m := range mod {
		m(v)
	}
	ep := &endpoint{v: v}
	ep.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, alexa.MaxRequestBytes))
		if err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		req, err := v.Verify(r.Context(), r.Header, body)
		ep.mu.Lock()
		ep.last, ep.lastErr = req, err
		ep.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.Request.Type == alexa.TypeSessionEnded {
			_ = alexa.WriteResponse(w, alexa.Empty())
			return
		}
		if req.AccessToken() == "" {
			_ = alexa.WriteResponse(w, alexa.LinkAccountCard("Open the Alexa app to link your account."))
			return
		}
		_ = alexa.WriteResponse(w, alexa.Speak("ok "+req.Request.Type))
	}))
	t.Cleanup(ep.Close)
	return &env{clock: c, fake: fake, ep: ep, ctx: context.Background()}
}

func (e *env) send(t *testing.T, req alexa.Request, opts ...alexafake.SendOption) (alexafake.Result, alexa.Request, error) {
	t.Helper()
	res, err := e.fake.Send(e.ctx, e.ep.URL, req, opts...)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got, verr := e.ep.result()
	return res, got, verr
}

func TestVerifyAcceptsGoodRequests(t *testing.T) {
	e := setup(t)
	res, got, err := e.send(t, e.fake.Intent("StartFocusIntent", map[string]string{"duration": "PT45M", "until": ""}, "tok-1"))
	if err != nil || res.Status != 200 {
		t.Fatalf("status %d, err %v", res.Status, err)
	}
	if got.IntentName() != "StartFocusIntent" || got.AccessToken() != "tok-1" || got.ApplicationID() != skillID {
		t.Errorf("parsed %+v", got.Request)
	}
	if v, ok := got.SlotValue("duration"); !ok || v != "PT45M" {
		t.Errorf("duration %q %v", v, ok)
	}
	if _, ok := got.SlotValue("until"); ok {
		t.Errorf("until should be unfilled")
	}
	if res.Speech() != "ok IntentRequest" || !res.EndsSession() {
		t.Errorf("answer %q", res.Body)
	}

	res, _, err = e.send(t, e.fake.Launch("", ""))
	if err != nil || res.Status != 200 {
		t.Fatalf("launch: %d %v", res.Status, err)
	}
	if c := res.Card(); c == nil || c.Type != alexa.CardLinkAccount {
		t.Errorf("unlinked launch: card %+v", c)
	}

	// SessionEndedRequest, a request 149 s old and one 149 s ahead.
	for _, opt := range []alexafake.SendOption{nil, alexafake.WithTimestampOffset(-149 * time.Second), alexafake.WithTimestampOffset(149 * time.Second)} {
		var opts []alexafake.SendOption
		if opt != nil {
			opts = append(opts, opt)
		}
		if res, _, err := e.send(t, e.fake.SessionEnded(""), opts...); err != nil || res.Status != 200 {
			t.Errorf("session ended: %d %v", res.Status, err)
		}
	}
}

func TestVerifyAcceptsNormalisedCertURLs(t *testing.T) {
	e := setup(t)
	for _, u := range []string{
		"https://s3.amazonaws.com:443/echo.api/../echo.api/echo-api-cert.pem",
		"HTTPS://S3.AMAZONAWS.COM/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com/echo.api/./echo-api-cert.pem",
	} {
		if res, _, err := e.send(t, e.fake.Launch("", "t"), alexafake.WithCertURL(u)); err != nil || res.Status != 200 {
			t.Errorf("%s: %d %v", u, res.Status, err)
		}
	}
}

func TestVerifyRefusesBrokenRequests(t *testing.T) {
	cases := []struct {
		name string
		opts []alexafake.SendOption
		req  func(*alexafake.Fake) alexa.Request
		want error
	}{
		{name: "wrong skill ID", opts: []alexafake.SendOption{alexafake.WithSkillID("amzn1.ask.skill.someone-else")}, want: alexa.ErrSkillID},
		{name: "timestamp 151 s old", opts: []alexafake.SendOption{alexafake.WithTimestampOffset(-151 * time.Second)}, want: alexa.ErrTimestamp},
		{name: "timestamp 151 s ahead", opts: []alexafake.SendOption{alexafake.WithTimestampOffset(151 * time.Second)}, want: alexa.ErrTimestamp},
		{name: "signature over a different body", opts: []alexafake.SendOption{alexafake.WithSignedBody([]byte(`{"version":"1.0"}`))}, want: alexa.ErrSignature},
		{name: "cert URL on another host", opts: []alexafake.SendOption{alexafake.WithCertURL("https://notamazon.com/echo.api/echo-api-cert.pem")}, want: alexa.ErrCertURL},
		{name: "cert URL on a look-alike host", opts: []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com.evil.example/echo.api/echo-api-cert.pem")}, want: alexa.ErrCertURL},
		{name: "cert URL over http", opts: []alexafake.SendOption{alexafake.WithCertURL("http://s3.amazonaws.com/echo.api/echo-api-cert.pem")}, want: alexa.ErrCertURL},
		{name: "cert URL on another port", opts: []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem")}, want: alexa.ErrCertURL},
		{name: "cert URL escaping /echo.api/", opts: []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com/echo.api/../x")}, want: alexa.ErrCertURL},
		{name: "cert URL path in other case", opts: []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem")}, want: alexa.ErrCertURL},
		{name: "cert URL not found", opts: []alexafake.SendOption{alexafake.WithCertURL("https://s3.amazonaws.com/echo.api/nothing.pem")}, want: alexa.ErrCertInvalid},
		{name: "expired certificate", opts: []alexafake.SendOption{alexafake.WithCert(alexafake.CertExpired)}, want: alexa.ErrCertInvalid},
		{name: "certificate without the SAN", opts: []alexafake.SendOption{alexafake.WithCert(alexafake.CertNoSAN)}, want: alexa.ErrCertInvalid},
		{name: "certificate from an untrusted root", opts: []alexafake.SendOption{alexafake.WithCert(alexafake.CertUntrusted)}, want: alexa.ErrCertInvalid},
		{name: "no Signature-256", opts: []alexafake.SendOption{alexafake.WithoutHeader(alexa.HeaderSignature)}, want: alexa.ErrMissingHeaders},
		{name: "no SignatureCertChainUrl", opts: []alexafake.SendOption{alexafake.WithoutHeader(alexa.HeaderCertChainURL)}, want: alexa.ErrMissingHeaders},
		{name: "no headers", opts: []alexafake.SendOption{alexafake.WithoutHeader(alexa.HeaderSignature), alexafake.WithoutHeader(alexa.HeaderCertChainURL)}, want: alexa.ErrMissingHeaders},
		{name: "signed body that is not an envelope", opts: []alexafake.SendOption{alexafake.WithBody([]byte(`{"version":"1.0","request":{}}`))}, want: alexa.ErrMalformed},
		{name: "skill event 61 minutes old", opts: []alexafake.SendOption{alexafake.WithTimestampOffset(-61 * time.Minute)},
			req: func(f *alexafake.Fake) alexa.Request {
				r := f.Launch("", "t")
				r.Request.Type = "AlexaSkillEvent.SkillAccountLinked"
				r.Session = nil
				return r
			}, want: alexa.ErrTimestamp},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			req := e.fake.Intent("PauseIntent", nil, "tok")
			if tc.req != nil {
				req = tc.req(e.fake)
			}
			res, _, err := e.send(t, req, tc.opts...)
			if res.Status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", res.Status)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if strings.Contains(string(res.Body), "tok") || (err != nil && strings.Contains(err.Error(), "tok")) {
				t.Errorf("the refusal quotes the token: %q", res.Body)
			}
		})
	}
}

func TestVerifyBadSignatureEncoding(t *testing.T) {
	c := newClock()
	fake := alexafake.New(alexafake.Options{SkillID: skillID, Now: c.Now, BeforeSend: func(r *http.Request) {
		r.Header.Set(alexa.HeaderSignature, "!!not base64!!")
	}})
	v := &alexa.Verifier{SkillID: skillID, Roots: fake.Roots(), Fetch: fake.Fetch, Now: c.Now}
	var gotErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, gotErr = v.Verify(r.Context(), r.Header, body)
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer srv.Close()
	if _, err := fake.Send(context.Background(), srv.URL, fake.Launch("", "")); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(gotErr, alexa.ErrSignature) {
		t.Errorf("err %v", gotErr)
	}
}

func TestVerifySkillEventTolerance(t *testing.T) {
	e := setup(t)
	r := e.fake.Launch("", "t")
	r.Request.Type = "AlexaSkillEvent.SkillEnabled"
	r.Session = nil
	if res, _, err := e.send(t, r, alexafake.WithTimestampOffset(-59*time.Minute)); err != nil || res.Status != 200 {
		t.Errorf("skill event 59 minutes old: %d %v", res.Status, err)
	}
}

func TestVerifyWithoutSkillIDRefusesAll(t *testing.T) {
	e := setup(t, func(v *alexa.Verifier) { v.SkillID = "" })
	res, _, err := e.send(t, e.fake.Launch("", "t"))
	if res.Status != 400 || !errors.Is(err, alexa.ErrSkillID) {
		t.Errorf("%d %v", res.Status, err)
	}
}

func TestVerifyCachesChains(t *testing.T) {
	e := setup(t)
	for i := range 2 {
		if res, _, err := e.send(t, e.fake.Launch("", "t")); err != nil || res.Status != 200 {
			t.Fatalf("request %d: %d %v", i, res.Status, err)
		}
	}
	// The normalised URL is the same cache key.
	if res, _, err := e.send(t, e.fake.Launch("", "t"), alexafake.WithCertURL("https://s3.amazonaws.com:443/echo.api/../echo.api/echo-api-cert.pem")); err != nil || res.Status != 200 {
		t.Fatalf("normalised URL: %d %v", res.Status, err)
	}
	if n := e.fake.Fetches(); n != 1 {
		t.Errorf("fetched %d times, want 1", n)
	}
	// A refused chain is not cached.
	for range 2 {
		e.send(t, e.fake.Launch("", "t"), alexafake.WithCert(alexafake.CertNoSAN))
	}
	if n := e.fake.Fetches(); n != 3 {
		t.Errorf("fetched %d times, want 3", n)
	}
	// Past the signing certificate's NotAfter the entry is dropped: the
	// chain is fetched again (and is now expired).
	e.clock.Advance(alexafake.DefaultCertLifetime + time.Hour)
	res, _, err := e.send(t, e.fake.Launch("", "t"))
	if res.Status != 400 || !errors.Is(err, alexa.ErrCertInvalid) {
		t.Errorf("after expiry: %d %v", res.Status, err)
	}
	if n := e.fake.Fetches(); n != 4 {
		t.Errorf("fetched %d times, want 4", n)
	}
}

func TestVerifyCacheIsBounded(t *testing.T) {
	c := newClock()
	fake := alexafake.New(alexafake.Options{SkillID: skillID, Now: c.Now})
	fetches := 0
	v := &alexa.Verifier{SkillID: skillID, Roots: fake.Roots(), Now: c.Now, CacheSize: 2,
		Fetch: func(ctx context.Context, url string) ([]byte, error) {
			fetches++ // Verify runs in this goroutine
			return fake.Fetch(ctx, fake.CertChainURL())
		}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r.Context(), r.Header, body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		_ = alexa.WriteResponse(w, alexa.Speak("ok"))
	}))
	defer srv.Close()
	for i, name := range []string{"a", "b", "c", "a"} {
		res, err := fake.Send(context.Background(), srv.URL, fake.Launch("", "t"),
			alexafake.WithCertURL("https://s3.amazonaws.com/echo.api/"+name+".pem"))
		if err != nil || res.Status != 200 {
			t.Fatalf("request %d: %d %v", i, res.Status, err)
		}
		if n := v.CacheLen(); n > 2 {
			t.Fatalf("cache holds %d chains, bound 2", n)
		}
	}
	if fetches != 4 {
		t.Errorf("fetches %d, want 4 (a was evicted)", fetches)
	}
}

func TestCheckCertURL(t *testing.T) {
	ok := map[string]string{
		"https://s3.amazonaws.com/echo.api/echo-api-cert.pem":                 "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com:443/echo.api/echo-api-cert.pem":             "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com:443/echo.api/../echo.api/echo-api-cert.pem": "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"HtTpS://S3.AmAzOnAwS.CoM/echo.api/echo-api-cert.pem":                 "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com/echo.api/sub/../echo-api-cert-2.pem":        "https://s3.amazonaws.com/echo.api/echo-api-cert-2.pem",
	}
	for in, want := range ok {
		got, err := alexa.CheckCertURL(in)
		if err != nil || got != want {
			t.Errorf("CheckCertURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"",
		"http://s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"https://notamazon.com/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem",
		"https://s3.amazonaws.com/invalid.path/echo-api-cert.pem",
		"https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com:/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com/echo.api/../x",
		"https://s3.amazonaws.com/echo.api/%2e%2e/x",
		"https://s3.amazonaws.com/echo.api/",
		"https://s3.amazonaws.com/echo.api",
		"https://s3.amazonaws.com/echo.apix/cert.pem",
		"https://user@s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"https://s3.amazonaws.com/echo.api/echo-api-cert.pem?x=1",
		"https://s3.amazonaws.com/echo.api/echo-api-cert.pem#f",
		"//s3.amazonaws.com/echo.api/echo-api-cert.pem",
		"https:s3.amazonaws.com/echo.api/echo-api-cert.pem",
	} {
		if got, err := alexa.CheckCertURL(in); !errors.Is(err, alexa.ErrCertURL) {
			t.Errorf("CheckCertURL(%q) = %q, %v; want ErrCertURL", in, got, err)
		}
	}
}
