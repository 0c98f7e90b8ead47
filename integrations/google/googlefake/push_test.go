package googlefake_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/calendar/v3"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
)

// received is one push notification as our receiver saw it.
type received struct {
	path   string
	header http.Header
	body   []byte
	length int64
}

// receiver is a webhook endpoint that records what it is sent and answers with the statuses
// queued in answers (200 once they run out).
type receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	got     []received
	answers []int
}

func newReceiver(t *testing.T, tls bool) *receiver {
	t.Helper()
	rx := &receiver{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rx.mu.Lock()
		rx.got = append(rx.got, received{path: r.URL.Path, header: r.Header.Clone(), body: body, length: r.ContentLength})
		status := http.StatusOK
		if len(rx.answers) > 0 {
			status, rx.answers = rx.answers[0], rx.answers[1:]
		}
		rx.mu.Unlock()
		w.WriteHeader(status)
	})
	if tls {
		rx.srv = httptest.NewTLSServer(h)
	} else {
		rx.srv = httptest.NewServer(h)
	}
	t.Cleanup(rx.srv.Close)
	return rx
}

func (rx *receiver) answer(statuses ...int) {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	rx.answers = append(rx.answers, statuses...)
}

func (rx *receiver) all() []received {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return slices.Clone(rx.got)
}

// waitPushes waits (on the fake's call log, never by polling) until n delivery attempts have
// been made and returns them.
func (e *env) waitPushes(n int) []googlefake.Call {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	calls, err := e.fake.WaitForCall(ctx, googlefake.EndpointPushNotification, n)
	if err != nil {
		e.t.Fatal(err)
	}
	return calls
}

func watchReq(id, address string) *calendar.Channel {
	return &calendar.Channel{Id: id, Type: "web_hook", Address: address, Token: "tok-" + id, Params: map[string]string{"ttl": "3600"}}
}

// TestPushNotifications: a new channel gets a "sync" message numbered 1, then every insert,
// update and delete of an event of its calendar an "exists" message, numbered on, each an
// empty POST with Google's headers. Another calendar's changes are not sent, and two channels
// on one calendar number their messages each on their own.
func TestPushNotifications(t *testing.T) {
	rx := newReceiver(t, true)
	e := newEnv(t, googlefake.Options{HTTPClient: rx.srv.Client()})
	svc := e.connect(googlefake.DefaultSub)
	if err := e.fake.AddCalendar(googlefake.DefaultSub, "team@group.calendar.sandbox.invalid", "Team"); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()

	ch, err := svc.Events.Watch("primary", watchReq("chan-1", rx.srv.URL+"/webhooks/google")).Do()
	if err != nil {
		t.Fatal(err)
	}
	calls := e.waitPushes(1)
	if q := calls[0].Query; calls[0].Status != http.StatusOK || q.Get("resourceState") != "sync" || q.Get("messageNumber") != "1" ||
		q.Get("channelId") != "chan-1" || q.Get("attempt") != "1" || calls[0].Path != rx.srv.URL+"/webhooks/google" {
		t.Errorf("first push call %+v, want the sync message answered 200", calls[0])
	}
	got := rx.all()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want the sync message", len(got))
	}
	sync := got[0]
	wantHeaders := map[string]string{
		"X-Goog-Channel-Id":         "chan-1",
		"X-Goog-Channel-Token":      "tok-chan-1",
		"X-Goog-Channel-Expiration": now.Add(time.Hour).UTC().Format(http.TimeFormat),
		"X-Goog-Message-Number":     "1",
		"X-Goog-Resource-Id":        ch.ResourceId,
		"X-Goog-Resource-Uri":       ch.ResourceUri,
		"X-Goog-Resource-State":     "sync",
	}
	for k, v := range wantHeaders {
		if g := sync.header.Get(k); g != v {
			t.Errorf("sync message %s = %q, want %q", k, g, v)
		}
	}
	if !strings.HasPrefix(sync.header.Get("User-Agent"), "APIs-Google") {
		t.Errorf("User-Agent %q, want Google's", sync.header.Get("User-Agent"))
	}
	if len(sync.body) != 0 || sync.length != 0 || sync.path != "/webhooks/google" {
		t.Errorf("sync message: path %q, %d-byte body (Content-Length %d), want an empty POST to /webhooks/google", sync.path, len(sync.body), sync.length)
	}
	// "Tue, 19 Nov 2013 01:13:52 GMT", as Google writes it.
	if _, err := time.Parse(time.RFC1123, sync.header.Get("X-Goog-Channel-Expiration")); err != nil {
		t.Errorf("X-Goog-Channel-Expiration %q is not an RFC 1123 date: %v", sync.header.Get("X-Goog-Channel-Expiration"), err)
	}

	start := now.Add(2 * time.Hour)
	id := e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: "x", Start: start, End: start.Add(time.Hour)})
	e.waitPushes(2)
	if err := e.fake.UpdateEvent(googlefake.DefaultSub, "primary", id, func(ev *googlefake.Event) { ev.Start, ev.End = ev.Start.Add(time.Hour), ev.End.Add(time.Hour) }); err != nil {
		t.Fatal(err)
	}
	e.waitPushes(3)
	if err := e.fake.DeleteEvent(googlefake.DefaultSub, "primary", id); err != nil {
		t.Fatal(err)
	}
	e.waitPushes(4)
	// A change on another calendar goes to that calendar's channels only; then a second
	// channel on the primary calendar counts from 1 while the first goes on at 5.
	e.fake.AddEvent(googlefake.DefaultSub, "team@group.calendar.sandbox.invalid", googlefake.Event{Start: start, End: start.Add(time.Hour)})
	if _, err := svc.Events.Watch("primary", watchReq("chan-2", rx.srv.URL+"/webhooks/google")).Do(); err != nil {
		t.Fatal(err)
	}
	e.waitPushes(5)
	e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Start: start, End: start.Add(time.Hour)})
	e.waitPushes(7)

	type msg struct{ channel, state, number string }
	var msgs []msg
	for _, r := range rx.all() {
		msgs = append(msgs, msg{r.header.Get("X-Goog-Channel-Id"), r.header.Get("X-Goog-Resource-State"), r.header.Get("X-Goog-Message-Number")})
	}
	want := []msg{
		{"chan-1", "sync", "1"}, {"chan-1", "exists", "2"}, {"chan-1", "exists", "3"}, {"chan-1", "exists", "4"},
		{"chan-2", "sync", "1"},
	}
	// The last change reaches both channels, in either order.
	if len(msgs) != 7 || !slices.Equal(msgs[:5], want) ||
		!slices.Contains(msgs[5:], msg{"chan-1", "exists", "5"}) || !slices.Contains(msgs[5:], msg{"chan-2", "exists", "2"}) {
		t.Errorf("messages %v, want %v then chan-1 #5 and chan-2 #2", msgs, want)
	}
}

// TestPushRetries: a 5xx (or no answer) is retried with a growing wait, up to PushAttempts
// tries, each logged; a 4xx or 2xx ends the delivery.
func TestPushRetries(t *testing.T) {
	rx := newReceiver(t, false)
	e := newEnv(t, googlefake.Options{AllowHTTPWebhooks: true, PushAttempts: 3, PushRetryDelay: time.Millisecond})
	svc := e.connect(googlefake.DefaultSub)

	// 503, 503, 200: three attempts of the sync message.
	rx.answer(http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	if _, err := svc.Events.Watch("primary", watchReq("retry-1", rx.srv.URL+"/hook")).Do(); err != nil {
		t.Fatal(err)
	}
	calls := e.waitPushes(3)
	var statuses []int
	var attempts []string
	for _, c := range calls {
		statuses = append(statuses, c.Status)
		attempts = append(attempts, c.Query.Get("attempt"))
		if c.Query.Get("messageNumber") != "1" || c.Query.Get("resourceState") != "sync" {
			t.Errorf("attempt %+v, want the sync message each time", c)
		}
	}
	if !slices.Equal(statuses, []int{503, 503, 200}) || !slices.Equal(attempts, []string{"1", "2", "3"}) {
		t.Errorf("attempts %v with statuses %v, want 1, 2, 3 answered 503, 503, 200", attempts, statuses)
	}

	// 500 three times: given up after the third.
	rx.answer(500, 500, 500)
	start := e.clock.Now().Add(time.Hour)
	e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Start: start, End: start.Add(time.Hour)})
	calls = e.waitPushes(6)[3:]
	for i, c := range calls {
		if c.Status != 500 || c.Query.Get("attempt") != strconv.Itoa(i+1) || c.Query.Get("messageNumber") != "2" {
			t.Errorf("attempt %d: %+v, want message 2 answered 500", i+1, c)
		}
	}

	// 404: not retried. The next message (4) shows message 3 had one attempt only.
	rx.answer(http.StatusNotFound)
	e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Start: start, End: start.Add(time.Hour)})
	e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Start: start, End: start.Add(time.Hour)})
	calls = e.waitPushes(8)[6:]
	if calls[0].Status != 404 || calls[0].Query.Get("messageNumber") != "3" ||
		calls[1].Status != 200 || calls[1].Query.Get("messageNumber") != "4" || calls[1].Query.Get("attempt") != "1" {
		t.Errorf("after a 404: %+v, want message 3 once (404) then message 4 (200)", calls)
	}

	// Nobody listening: "request failed", retried too.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	if _, err := svc.Events.Watch("primary", watchReq("retry-dead", deadURL+"/hook")).Do(); err != nil {
		t.Fatal(err)
	}
	var failed int
	for _, c := range e.waitPushes(8 + 3)[8:] {
		if c.Query.Get("channelId") == "retry-dead" && c.Status == 0 && c.Query.Get("error") == "request failed" {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("%d failed attempts to a closed port, want 3", failed)
	}
}

// TestPushChannelLifetime: a stopped channel sends nothing more; a channel past its expiration
// on the fake's clock sends nothing, cannot be stopped (404) and its ID may be used again.
func TestPushChannelLifetime(t *testing.T) {
	rx := newReceiver(t, false)
	e := newEnv(t, googlefake.Options{AllowHTTPWebhooks: true})
	svc := e.connect(googlefake.DefaultSub)
	start := e.clock.Now().Add(3 * time.Hour)

	stopped, err := svc.Events.Watch("primary", watchReq("stopped", rx.srv.URL+"/hook")).Do()
	if err != nil {
		t.Fatal(err)
	}
	shortReq := watchReq("short", rx.srv.URL+"/hook")
	shortReq.Params["ttl"] = "600"
	short, err := svc.Events.Watch("primary", shortReq).Do()
	if err != nil {
		t.Fatal(err)
	}
	e.waitPushes(2) // both sync messages
	if err := svc.Channels.Stop(&calendar.Channel{Id: stopped.Id, ResourceId: stopped.ResourceId}).Do(); err != nil {
		t.Fatal(err)
	}
	e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Start: start, End: start.Add(time.Hour)})
	calls := e.waitPushes(3)
	if c := calls[2]; c.Query.Get("channelId") != "short" {
		t.Errorf("after the stop the change went to %q, want only the live channel", c.Query.Get("channelId"))
	}

	// Ten minutes later (its ttl) the channel has expired.
	e.clock.Advance(10 * time.Minute)
	e.fake.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Start: start, End: start.Add(time.Hour)})
	err = svc.Channels.Stop(&calendar.Channel{Id: short.Id, ResourceId: short.ResourceId}).Do()
	apiError(t, err, http.StatusNotFound, "notFound")
	// Its ID is free again: the new channel's sync message is the next delivery, so the
	// change above sent nothing.
	if _, err := svc.Events.Watch("primary", watchReq("short", rx.srv.URL+"/hook")).Do(); err != nil {
		t.Fatalf("watch with an expired channel's ID: %v", err)
	}
	calls = e.waitPushes(4)
	if c := calls[3]; c.Query.Get("resourceState") != "sync" || c.Query.Get("messageNumber") != "1" {
		t.Errorf("delivery after expiry %+v, want only the new channel's sync message", c)
	}
	if n := len(rx.all()); n != 4 {
		t.Errorf("receiver got %d messages, want 4", n)
	}
}

// TestWatchRequestChecks: the Channel body is checked as Google does; plain http is refused
// except for loopback hosts with AllowHTTPWebhooks and for the hosts named in
// HTTPWebhookHosts.
func TestWatchRequestChecks(t *testing.T) {
	rx := newReceiver(t, false)
	e := newEnv(t, googlefake.Options{AllowHTTPWebhooks: true, HTTPWebhookHosts: []string{"di.test"}, PushAttempts: 1})
	svc := e.connect(googlefake.DefaultSub)

	for _, tc := range []struct {
		name   string
		ch     *calendar.Channel
		reason string
	}{
		{"no id", &calendar.Channel{Type: "web_hook", Address: "https://di.example/hook"}, "required"},
		{"id too long", &calendar.Channel{Id: strings.Repeat("a", 65), Type: "web_hook", Address: "https://di.example/hook"}, "invalid"},
		{"id with a space", &calendar.Channel{Id: "a b", Type: "web_hook", Address: "https://di.example/hook"}, "invalid"},
		{"type", &calendar.Channel{Id: "t1", Type: "email", Address: "https://di.example/hook"}, "invalid"},
		{"no address", &calendar.Channel{Id: "t2", Type: "web_hook"}, "required"},
		{"http elsewhere", &calendar.Channel{Id: "t3", Type: "web_hook", Address: "http://di.example/hook"}, "push.webhookUrlNotHttps"},
		{"bad ttl", &calendar.Channel{Id: "t4", Type: "web_hook", Address: "https://di.example/hook", Params: map[string]string{"ttl": "soon"}}, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Events.Watch("primary", tc.ch).Do()
			apiError(t, err, http.StatusBadRequest, tc.reason)
		})
	}
	for i, addr := range []string{rx.srv.URL + "/hook", "http://localhost:1/hook", "http://di.test/hook"} {
		if _, err := svc.Events.Watch("primary", &calendar.Channel{Id: "ok-" + strconv.Itoa(i), Type: "webhook", Address: addr}).Do(); err != nil {
			t.Errorf("watch %s: %v", addr, err)
		}
	}
	if len(e.fake.Channels()) != 3 {
		t.Errorf("%d channels, want the 3 accepted", len(e.fake.Channels()))
	}

	// Without credentials: 401, no channel.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/calendar/v3/calendars/primary/events/watch",
		strings.NewReader(`{"id":"anon","type":"web_hook","address":"https://di.example/hook"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(e.fake.Channels()) != 3 {
		t.Errorf("anonymous watch: %d with %d channels, want 401 and no new channel", resp.StatusCode, len(e.fake.Channels()))
	}
}
