package web_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/web"
)

// googleSeed is a person with a Google Calendar connection and its push channel, as the
// scheduler leaves them after a watch.
type googleSeed struct {
	uid  string
	conn store.Connection
	ss   store.SyncState
}

// seedGoogle stores a user whose Google connection (account sub) has the channel channelID
// with token, expiring at expiry.
func (e *env) seedGoogle(sub, channelID, token string, expiry time.Time) googleSeed {
	e.t.Helper()
	ctx := e.t.Context()
	now := e.clock.Now()
	g := googleSeed{uid: "u_" + sub}
	if err := e.st.CreateUser(ctx, store.User{ID: g.uid, Created: now, Rules: presence.DefaultRules()}); err != nil {
		e.t.Fatal(err)
	}
	g.conn = store.Connection{ID: "c_" + sub, UserID: g.uid, Provider: "google", ExternalID: sub,
		Health: store.HealthOK, Resources: []string{"primary"}, Created: now, Updated: now}
	if err := e.st.PutConnection(ctx, g.conn); err != nil {
		e.t.Fatal(err)
	}
	g.ss = store.SyncState{ConnectionID: g.conn.ID, Resource: "primary", UserID: g.uid, Token: "sync-" + sub,
		ChannelID: channelID, ChannelResource: "res-" + sub, ChannelToken: token, ChannelSince: now, ChannelExpiry: expiry, Synced: now}
	if err := e.st.PutSyncState(ctx, g.ss); err != nil {
		e.t.Fatal(err)
	}
	return g
}

// googleHeaders are a notification's headers as Google sends them.
func googleHeaders(channelID, token, state string, number int) http.Header {
	h := http.Header{
		"X-Goog-Channel-Id":         {channelID},
		"X-Goog-Channel-Expiration": {webhookEpoch.Add(7 * 24 * time.Hour).Format(http.TimeFormat)},
		"X-Goog-Message-Number":     {strconv.Itoa(number)},
		"X-Goog-Resource-Id":        {"res-x"},
		"X-Goog-Resource-Uri":       {"https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json"},
		"X-Goog-Resource-State":     {state},
		"User-Agent":                {"APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"},
		"Content-Type":              {""},
	}
	if token != "" {
		h.Set("X-Goog-Channel-Token", token)
	}
	return h
}

// googlePush posts an empty notification with hdr.
func (e *env) googlePush(hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	return e.do(http.DefaultClient, http.MethodPost, "/webhooks/google", http.NoBody, hdr)
}

// TestGooglePushExists: "exists" and "not_exists" notifications of a known channel with its
// token mark that connection for a sync and wake its person, and only them; "sync" does
// nothing. The sync state is left to the scheduler. Each is counted.
func TestGooglePushExists(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(webhookEpoch)
	m := metrics.New()
	e := newEnv(t, envOptions{clock: clk, configure: func(_ *env, d *web.Deps) { d.Metrics = m }})
	ctx := t.Context()
	a := e.seedGoogle("g-a", "chan-a", "token-a", clk.Now().Add(7*24*time.Hour))
	b := e.seedGoogle("g-b", "chan-b", "token-b", clk.Now().Add(7*24*time.Hour))

	// The first message of a channel: acknowledged, nothing else.
	before := e.records()
	resp, body := e.googlePush(googleHeaders("chan-a", "token-a", "sync", 1))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sync: %d, want 200\n%s", resp.StatusCode, body)
	}
	unchanged(t, "sync message", before, e.records())
	if w := e.wakes.all(); len(w) != 0 {
		t.Errorf("sync message woke %v", w)
	}

	for i, state := range []string{"exists", "not_exists"} {
		clk.Advance(time.Minute)
		resp, body := e.googlePush(googleHeaders("chan-a", "token-a", state, 2+i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d, want 200\n%s", state, resp.StatusCode, body)
		}
		got, err := e.st.GetConnection(ctx, a.uid, a.conn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.SyncRequested.Equal(clk.Now()) {
			t.Errorf("%s: SyncRequested = %v, want %v", state, got.SyncRequested, clk.Now())
		}
		if w := e.wakes.all(); len(w) != i+1 || w[i] != a.uid {
			t.Errorf("%s: wakes = %v, want %s woken", state, w, a.uid)
		}
	}
	if other, err := e.st.GetConnection(ctx, b.uid, b.conn.ID); err != nil || !other.SyncRequested.IsZero() {
		t.Errorf("the other person's connection = %+v, %v; want it untouched", other, err)
	}
	if ss, err := e.st.GetSyncState(ctx, a.conn.ID, "primary"); err != nil || ss != a.ss {
		t.Errorf("sync state after the notifications = %+v, %v; want it untouched (the scheduler syncs)", ss, err)
	}

	// A refused one is counted too; the sync message of a channel not stored yet (it comes
	// while the scheduler stores the channel it just made) is a quiet 404, not counted.
	e.googlePush(googleHeaders("chan-a", "token-b", "exists", 9))
	if resp, body := e.googlePush(googleHeaders("chan-new", "token-new", "sync", 1)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("sync of a channel not stored yet: %d %q, want 404", resp.StatusCode, body)
	}
	code, metricsBody := e.get("/metrics")
	for _, want := range []string{
		`dontinterrupt_push_notifications_total{outcome="accepted",provider="google"} 3`,
		`dontinterrupt_push_notifications_total{outcome="refused",provider="google"} 1`,
	} {
		if code != http.StatusOK || !strings.Contains(metricsBody, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
}

// TestGooglePushReplay: a message Google sends again (same channel and message number) is
// acknowledged and acted on once; the next message acts again.
func TestGooglePushReplay(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(webhookEpoch)
	e := newEnv(t, envOptions{clock: clk})
	ctx := t.Context()
	a := e.seedGoogle("g-a", "chan-a", "token-a", clk.Now().Add(7*24*time.Hour))

	resp, _ := e.googlePush(googleHeaders("chan-a", "token-a", "exists", 7))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	first := clk.Now()
	clk.Advance(time.Minute)
	for range 3 {
		resp, _ = e.googlePush(googleHeaders("chan-a", "token-a", "exists", 7))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("replay: %d, want 200 (acknowledged)", resp.StatusCode)
		}
	}
	if got, _ := e.st.GetConnection(ctx, a.uid, a.conn.ID); !got.SyncRequested.Equal(first) {
		t.Errorf("SyncRequested after replays = %v, want still %v", got.SyncRequested, first)
	}
	if w := e.wakes.all(); len(w) != 1 {
		t.Errorf("wakes after replays = %v, want one", w)
	}
	// The same number on another channel is another message.
	b := e.seedGoogle("g-b", "chan-b", "token-b", clk.Now().Add(7*24*time.Hour))
	resp, _ = e.googlePush(googleHeaders("chan-b", "token-b", "exists", 7))
	if got, _ := e.st.GetConnection(ctx, b.uid, b.conn.ID); resp.StatusCode != http.StatusOK || !got.SyncRequested.Equal(clk.Now()) {
		t.Errorf("message 7 of another channel: %d, SyncRequested %v", resp.StatusCode, got.SyncRequested)
	}
	resp, _ = e.googlePush(googleHeaders("chan-a", "token-a", "exists", 8))
	if got, _ := e.st.GetConnection(ctx, a.uid, a.conn.ID); resp.StatusCode != http.StatusOK || !got.SyncRequested.Equal(clk.Now()) {
		t.Errorf("the next message: %d, SyncRequested %v, want %v", resp.StatusCode, got.SyncRequested, clk.Now())
	}
	if w := e.wakes.all(); !slices.Equal(w, []string{a.uid, b.uid, a.uid}) {
		t.Errorf("wakes = %v", w)
	}
}

// TestGooglePushRefused: an unknown channel (never made, of a deleted connection, not a
// Google connection's, long expired) is a 404; a known channel without its token a 401; a
// request that is not a Google notification a 400; a body over 64 KiB a 413. None changes
// anything or wakes anyone, and the channel still works afterwards.
func TestGooglePushRefused(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(webhookEpoch)
	e := newEnv(t, envOptions{clock: clk})
	ctx := t.Context()
	e.seedGoogle("g-a", "chan-a", "token-a", clk.Now().Add(7*24*time.Hour))
	e.seedGoogle("g-b", "chan-b", "token-b", clk.Now().Add(7*24*time.Hour))
	e.seedGoogle("g-old", "chan-old", "token-old", clk.Now().Add(-2*time.Hour)) // expired two hours ago
	e.seedGoogle("g-late", "chan-late", "token-late", clk.Now().Add(-30*time.Minute))
	// A sync state whose connection is gone, and an Outlook subscription.
	if err := e.st.PutSyncState(ctx, store.SyncState{ConnectionID: "c_gone", Resource: "primary", UserID: "u_g-a", ChannelID: "chan-gone", ChannelToken: "token-gone"}); err != nil {
		t.Fatal(err)
	}
	o := e.seedOutlook("oid-o", "sub-o", "token-o", clk.Now().Add(48*time.Hour))
	o.ss.UserID = o.uid
	if err := e.st.PutSyncState(ctx, o.ss); err != nil {
		t.Fatal(err)
	}
	before := e.records()

	for _, c := range []struct {
		name   string
		hdr    http.Header
		status int
		want   string
	}{
		{"unknown channel", googleHeaders("chan-nope", "token-a", "exists", 2), 404, "no such channel"},
		{"connection gone", googleHeaders("chan-gone", "token-gone", "exists", 2), 404, "no such channel"},
		{"an Outlook subscription", googleHeaders("sub-o", "token-o", "exists", 2), 404, "no such channel"},
		{"expired over an hour ago", googleHeaders("chan-old", "token-old", "exists", 2), 404, "no such channel"},
		{"wrong token", googleHeaders("chan-a", "token-b", "exists", 2), 401, "wrong channel token"},
		{"token a prefix", googleHeaders("chan-a", "token-", "exists", 2), 401, "wrong channel token"},
		{"token longer", googleHeaders("chan-a", "token-a2", "exists", 2), 401, "wrong channel token"},
		{"no token", googleHeaders("chan-a", "", "exists", 2), 401, "wrong channel token"},
		{"no channel ID", googleHeaders("", "token-a", "exists", 2), 400, "X-Goog-Channel-ID"},
		{"channel ID of 65 characters", googleHeaders(strings.Repeat("c", 65), "token-a", "exists", 2), 400, "X-Goog-Channel-ID"},
		{"no message number", func() http.Header {
			h := googleHeaders("chan-a", "token-a", "exists", 2)
			h.Del("X-Goog-Message-Number")
			return h
		}(), 400, "X-Goog-Message-Number"},
		{"message number not a number", func() http.Header {
			h := googleHeaders("chan-a", "token-a", "exists", 2)
			h.Set("X-Goog-Message-Number", "-1")
			return h
		}(), 400, "X-Goog-Message-Number"},
		{"unknown state", googleHeaders("chan-a", "token-a", "created", 2), 400, "X-Goog-Resource-State"},
		{"no state", googleHeaders("chan-a", "token-a", "", 2), 400, "X-Goog-Resource-State"},
	} {
		resp, body := e.googlePush(c.hdr)
		if resp.StatusCode != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want %d saying %q", c.name, resp.StatusCode, body, c.status, c.want)
		}
	}

	// Over 64 KiB, with a length and chunked: 413 before anything is looked at.
	big := bytes.Repeat([]byte("a"), 64<<10+1)
	resp, _ := e.do(http.DefaultClient, http.MethodPost, "/webhooks/google", bytes.NewReader(big), googleHeaders("chan-a", "token-a", "exists", 3))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body: %d, want 413", len(big), resp.StatusCode)
	}
	resp, _ = e.do(http.DefaultClient, http.MethodPost, "/webhooks/google", io.MultiReader(bytes.NewReader(big)), googleHeaders("chan-a", "token-a", "exists", 4))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a chunked %d-byte body: %d, want 413", len(big), resp.StatusCode)
	}
	unchanged(t, "refused notifications", before, e.records())
	if w := e.wakes.all(); len(w) != 0 {
		t.Errorf("refused notifications woke %v", w)
	}

	// Still good: the channel (and one expired less than an hour ago: a late delivery), and
	// a small body is ignored.
	for _, c := range []struct{ id, token string }{{"chan-a", "token-a"}, {"chan-late", "token-late"}} {
		resp, body := e.do(http.DefaultClient, http.MethodPost, "/webhooks/google", strings.NewReader("ignored"), googleHeaders(c.id, c.token, "exists", 5))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s after the refusals: %d\n%s", c.id, resp.StatusCode, body)
		}
	}
	if w := e.wakes.all(); !slices.Equal(w, []string{"u_g-a", "u_g-late"}) {
		t.Errorf("wakes = %v", w)
	}
}

// TestGoogleDisconnectStopsChannels: disconnecting Google Calendar stops its push channels at
// Google before the grant is revoked; deleting the account does too.
func TestGoogleDisconnectStopsChannels(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"disconnect", "delete account"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			ctx := t.Context()
			uid := e.signIn()
			gc := e.connect(uid, "google")
			cred := e.credential(gc)
			// Two calendars watched, as the scheduler leaves them.
			for _, res := range []string{"primary", googlefake.DefaultEmail} {
				ch, err := e.gc.Watch(ctx, cred, res, "https://di.invalid/webhooks/google", "tok-"+res, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if err := e.st.PutSyncState(ctx, store.SyncState{ConnectionID: gc.ID, Resource: res, UserID: uid,
					ChannelID: ch.ID, ChannelResource: ch.ResourceID, ChannelToken: "tok-" + res, ChannelExpiry: ch.Expiry}); err != nil {
					t.Fatal(err)
				}
			}
			var resp *http.Response
			var body string
			if how == "disconnect" {
				resp, body = e.postForm("/connections/"+gc.ID+"/disconnect", nil)
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("disconnect: %d\n%s", resp.StatusCode, body)
				}
			} else {
				resp, body = e.postForm("/data/delete", url.Values{"confirm": {"delete"}})
				wantPage(t, "delete", resp.StatusCode, body, http.StatusOK, "access revoked")
			}
			chans := e.google.Channels()
			if len(chans) != 2 || !chans[0].Stopped || !chans[1].Stopped {
				t.Errorf("channels at Google %+v, want both stopped", chans)
			}
			var order []string
			for _, c := range e.google.Calls() {
				if c.Endpoint == googlefake.EndpointChannelsStop || c.Endpoint == googlefake.EndpointRevoke {
					order = append(order, c.Endpoint+" "+strconv.Itoa(c.Status))
				}
			}
			want := []string{"calendar.channels.stop 204", "calendar.channels.stop 204", "oauth2.revoke 200"}
			if !slices.Equal(order, want) {
				t.Errorf("calls %q, want both channels stopped, then the grant revoked: %q", order, want)
			}
			for _, ch := range chans {
				if _, err := e.st.FindChannel(ctx, ch.ID); err == nil {
					t.Errorf("channel %s still found in the store", ch.ID)
				}
			}
		})
	}
}
