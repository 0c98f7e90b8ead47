package google

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/googleapi"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// hook is a webhook receiver that keeps the headers of what it is sent.
type hook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []http.Header
}

func newHook(t *testing.T) *hook {
	t.Helper()
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.got = append(h.got, r.Header.Clone())
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) headers() []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func (e *env) waitPushes(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := e.fake.WaitForCall(ctx, googlefake.EndpointPushNotification, n); err != nil {
		t.Fatal(err)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestWatchNotifyAndStop: Watch creates a channel with a UUID, our token, our address and the
// configured ttl, and takes Google's expiration; the fake's notifications carry the channel,
// the token and the resource; StopWatch stops it, and stopping it again is not an error.
func TestWatchNotifyAndStop(t *testing.T) {
	e := newEnv(t, googlefake.Options{AllowHTTPWebhooks: true})
	e.c.cfg.ChannelTTL = 2 * time.Hour
	h := newHook(t)
	cred := e.connect(t).Credential
	now := e.now()

	ch, err := e.c.Watch(t.Context(), cred, "primary", h.srv.URL+"/webhooks/google", "secret-channel-token", now)
	if err != nil {
		t.Fatal(err)
	}
	if !uuidRE.MatchString(ch.ID) || ch.ResourceID == "" || !ch.Expiry.Equal(now.Add(2*time.Hour)) {
		t.Errorf("channel %+v: want a UUID, a resource ID and Google's expiration (now + 2h)", ch)
	}
	fc := e.fake.Channels()
	if len(fc) != 1 || fc[0].ID != ch.ID || fc[0].ResourceID != ch.ResourceID || fc[0].Token != "secret-channel-token" ||
		fc[0].Type != "web_hook" || fc[0].Address != h.srv.URL+"/webhooks/google" || fc[0].Params["ttl"] != "7200" ||
		fc[0].CalendarID != googlefake.DefaultEmail {
		t.Fatalf("fake channels %+v", fc)
	}

	e.waitPushes(t, 1)
	e.fake.AddEvent(sub, "primary", googlefake.Event{Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)})
	e.waitPushes(t, 2)
	got := h.headers()
	if len(got) != 2 {
		t.Fatalf("%d notifications, want sync and exists", len(got))
	}
	for i, state := range []string{"sync", "exists"} {
		hd := got[i]
		if hd.Get("X-Goog-Channel-ID") != ch.ID || hd.Get("X-Goog-Channel-Token") != "secret-channel-token" ||
			hd.Get("X-Goog-Resource-ID") != ch.ResourceID || hd.Get("X-Goog-Resource-State") != state ||
			hd.Get("X-Goog-Message-Number") != []string{"1", "2"}[i] {
			t.Errorf("notification %d: %v, want %s of our channel", i+1, hd, state)
		}
	}

	if err := e.c.StopWatch(t.Context(), cred, ch.ID, ch.ResourceID); err != nil {
		t.Fatal(err)
	}
	if fc := e.fake.Channels(); !fc[0].Stopped {
		t.Error("channel not stopped at Google")
	}
	if err := e.c.StopWatch(t.Context(), cred, ch.ID, ch.ResourceID); err != nil {
		t.Errorf("stopping a stopped channel: %v, want nil (it is gone)", err)
	}
	if n := len(e.fake.CallsTo(googlefake.EndpointChannelsStop)); n != 2 {
		t.Errorf("%d channels.stop calls, want 2", n)
	}
	// Every call had its own fresh channel ID.
	ch2, err := e.c.Watch(t.Context(), cred, "primary", h.srv.URL+"/webhooks/google", "t2", now)
	if err != nil || ch2.ID == ch.ID {
		t.Errorf("second watch: %+v, %v: want a new channel ID", ch2, err)
	}
}

// TestStopWatchRefreshes: the access token expired (a disconnect an hour after the last sync):
// StopWatch refreshes once and stops the channel.
func TestStopWatchRefreshes(t *testing.T) {
	e := newEnv(t, googlefake.Options{AllowHTTPWebhooks: true})
	h := newHook(t)
	cred := e.connect(t).Credential
	ch, err := e.c.Watch(t.Context(), cred, "primary", h.srv.URL+"/hook", "tok", e.now())
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour) // the access token lasts one
	refreshes := len(e.fake.CallsTo(googlefake.EndpointToken))
	if err := e.c.StopWatch(t.Context(), cred, ch.ID, ch.ResourceID); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.CallsTo(googlefake.EndpointToken)) - refreshes; n != 1 || !e.fake.Channels()[0].Stopped {
		t.Errorf("%d refreshes, stopped %v: want one refresh and the channel stopped", n, e.fake.Channels()[0].Stopped)
	}
}

// TestWatchErrors: Google refusing the address is a 400 (wrapped googleapi error); a rate
// limit is a RateLimitedError naming events.watch.
func TestWatchErrors(t *testing.T) {
	e := newEnv(t, googlefake.Options{})
	cred := e.connect(t).Credential
	_, err := e.c.Watch(t.Context(), cred, "primary", "http://di.example/webhooks/google", "tok", e.now())
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != http.StatusBadRequest || len(ge.Errors) == 0 || ge.Errors[0].Reason != "push.webhookUrlNotHttps" {
		t.Errorf("http address: %v, want Google's 400 push.webhookUrlNotHttps", err)
	}
	e.fake.FailNext(googlefake.EndpointEventsWatch, http.StatusTooManyRequests, "rateLimitExceeded")
	_, err = e.c.Watch(t.Context(), cred, "primary", "https://di.example/webhooks/google", "tok", e.now())
	var rl *provider.RateLimitedError
	if !errors.As(err, &rl) || rl.Method != "events.watch" {
		t.Errorf("rate limited: %v, want a RateLimitedError for events.watch", err)
	}
	if len(e.fake.Channels()) != 0 {
		t.Errorf("channels %+v, want none", e.fake.Channels())
	}
}
