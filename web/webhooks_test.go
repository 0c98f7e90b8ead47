package web_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/zoom"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/web"
)

// webhookEpoch is the fake clock's start in the webhook tests (whole seconds, so Zoom's
// millisecond event_ts round-trips exactly).
var webhookEpoch = time.Date(2025, 3, 5, 10, 0, 0, 0, time.UTC)

const msTenant = "5a1dbb0e-0000-4000-8000-00000000cafe"

// configureAll runs several envOptions.configure functions in order.
func configureAll(fs ...func(*env, *web.Deps)) func(*env, *web.Deps) {
	return func(e *env, d *web.Deps) {
		for _, f := range fs {
			f(e, d)
		}
	}
}

// postRaw posts body to path as a provider does: no cookie, no Origin, no Sec-Fetch-Site.
func (e *env) postRaw(path string, body []byte, hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range hdr {
		h[k] = v
	}
	return e.do(http.DefaultClient, http.MethodPost, path, bytes.NewReader(body), h)
}

// outlookSeed is a person with an Outlook connection and its Graph subscription, as the
// scheduler leaves them after subscribing.
type outlookSeed struct {
	uid, oid string
	conn     store.Connection
	ss       store.SyncState
}

// seedOutlook stores a user whose Outlook connection (account oid) has the subscription subID
// with clientState, expiring at expiry.
func (e *env) seedOutlook(oid, subID, clientState string, expiry time.Time) outlookSeed {
	e.t.Helper()
	ctx := e.t.Context()
	now := e.clock.Now()
	o := outlookSeed{uid: "u_" + oid, oid: oid}
	if err := e.st.CreateUser(ctx, store.User{ID: o.uid, Created: now, Rules: presence.DefaultRules()}); err != nil {
		e.t.Fatal(err)
	}
	o.conn = store.Connection{ID: "c_" + oid, UserID: o.uid, Provider: "outlook", ExternalID: oid, TeamID: msTenant,
		Health: store.HealthOK, Resources: []string{"calendar"}, Created: now, Updated: now}
	if err := e.st.PutConnection(ctx, o.conn); err != nil {
		e.t.Fatal(err)
	}
	o.ss = store.SyncState{ConnectionID: o.conn.ID, Resource: "calendar", Token: "delta-" + oid,
		ChannelID: subID, ChannelToken: store.ChannelTokenDigest(clientState), ChannelExpiry: expiry}
	if err := e.st.PutSyncState(ctx, o.ss); err != nil {
		e.t.Fatal(err)
	}
	return o
}

// graphNotification is one change notification as Graph sends it for an event of oid.
func graphNotification(subID, clientState, oid string) map[string]any {
	resource := "Users/" + oid + "/Events/AAMkAGI2TAAA="
	n := map[string]any{
		"subscriptionId":                 subID,
		"subscriptionExpirationDateTime": webhookEpoch.Add(48 * time.Hour).Format(time.RFC3339),
		"changeType":                     "updated",
		"resource":                       resource,
		"resourceData": map[string]any{
			"@odata.type": "#Microsoft.Graph.Event",
			"@odata.id":   resource,
			"id":          "AAMkAGI2TAAA=",
		},
		"tenantId": msTenant,
	}
	if clientState != "" {
		n["clientState"] = clientState
	}
	return n
}

func graphBody(t *testing.T, notes ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"value": notes})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMicrosoftValidationHandshake: a subscription's validation request is answered with the
// URL-decoded token as text/plain, exactly; an empty token is a 400. Nothing is stored.
func TestMicrosoftValidationHandshake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{clock: clock.NewFake(webhookEpoch)})
	before := e.records()

	resp, body := e.postRaw("/webhooks/microsoft?validationToken=abc%20def", nil, http.Header{"Content-Type": {"text/plain; charset=utf-8"}})
	if resp.StatusCode != http.StatusOK || body != "abc def" {
		t.Errorf("handshake: %d %q, want 200 %q", resp.StatusCode, body, "abc def")
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("handshake Content-Type = %q, want text/plain", ct)
	}

	// Graph's real tokens have spaces, colons and plus signs; markup in one is echoed as text
	// that no browser sniffs as a page.
	for _, tok := range []string{
		"Validation: Testing client application reachability for subscription Request-Id: 9d4a2b6e-1c1e-4a9b-8f44-0e4f5f1c2a3b",
		"a+b&c=d/é",
		"<script>alert(1)</script>",
	} {
		resp, body = e.postRaw("/webhooks/microsoft?"+url.Values{"validationToken": {tok}}.Encode(), nil, nil)
		if resp.StatusCode != http.StatusOK || body != tok {
			t.Errorf("handshake with %q: %d %q", tok, resp.StatusCode, body)
		}
		if ct, nosniff := resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"); !strings.HasPrefix(ct, "text/plain") || nosniff != "nosniff" {
			t.Errorf("handshake with %q: Content-Type %q, X-Content-Type-Options %q", tok, ct, nosniff)
		}
	}

	for _, q := range []string{"validationToken=", "validationToken", "validationToken=" + strings.Repeat("a", 1025)} {
		resp, body = e.postRaw("/webhooks/microsoft?"+q, nil, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "validationToken") {
			t.Errorf("handshake ?%.40s: %d %q, want 400 naming validationToken", q, resp.StatusCode, body)
		}
	}
	unchanged(t, "handshakes", before, e.records())
	if w := e.wakes.all(); len(w) != 0 {
		t.Errorf("handshakes woke %v", w)
	}
}

// TestMicrosoftNotification: a notification whose subscription and clientState match a
// stored Outlook subscription marks that connection for a sync and wakes its person, and
// only them. Graph sends neither Origin nor Sec-Fetch-Site: a plain POST is accepted.
func TestMicrosoftNotification(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(webhookEpoch)
	e := newEnv(t, envOptions{clock: clk})
	ctx := t.Context()
	a := e.seedOutlook("oid-a", "sub-1", "secret", clk.Now().Add(48*time.Hour))
	b := e.seedOutlook("oid-b", "sub-2", "other-secret", clk.Now().Add(48*time.Hour))
	clk.Advance(time.Minute)

	resp, body := e.postRaw("/webhooks/microsoft", graphBody(t, graphNotification("sub-1", "secret", a.oid)), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notification: %d, want 202\n%s", resp.StatusCode, body)
	}
	got, err := e.st.GetConnection(ctx, a.uid, a.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.SyncRequested.Equal(clk.Now()) {
		t.Errorf("SyncRequested = %v, want %v", got.SyncRequested, clk.Now())
	}
	if w := e.wakes.all(); !slices.Equal(w, []string{a.uid}) {
		t.Errorf("wakes = %v, want [%s]", w, a.uid)
	}
	if other, err := e.st.GetConnection(ctx, b.uid, b.conn.ID); err != nil || !other.SyncRequested.IsZero() {
		t.Errorf("the other person's connection = %+v, %v; want it untouched", other, err)
	}
	if ss, err := e.st.GetSyncState(ctx, a.conn.ID, "calendar"); err != nil || ss != a.ss {
		t.Errorf("sync state after the notification = %+v, %v; want it untouched (the scheduler syncs)", ss, err)
	}

	// Graph batches notifications; one that matches is enough for the batch to be accepted,
	// and only the matching person is woken.
	clk.Advance(time.Minute)
	resp, body = e.postRaw("/webhooks/microsoft", graphBody(t,
		graphNotification("sub-2", "wrong", b.oid),
		graphNotification("sub-1", "secret", a.oid)), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch: %d, want 202\n%s", resp.StatusCode, body)
	}
	if w := e.wakes.all(); !slices.Equal(w, []string{a.uid, a.uid}) {
		t.Errorf("wakes after the batch = %v", w)
	}
	if other, _ := e.st.GetConnection(ctx, b.uid, b.conn.ID); !other.SyncRequested.IsZero() {
		t.Error("the notification with the wrong clientState requested a sync")
	}
	if got, _ := e.st.GetConnection(ctx, a.uid, a.conn.ID); !got.SyncRequested.Equal(clk.Now()) {
		t.Errorf("SyncRequested after the batch = %v, want %v", got.SyncRequested, clk.Now())
	}
}

// TestMicrosoftNotificationRefused: a notification that does not match a stored subscription
// with its clientState is a 403; a body that is not a notification is a 400 that says why; a
// body over 64 KiB is a 413. None changes anything or wakes anyone.
func TestMicrosoftNotificationRefused(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(webhookEpoch)
	e := newEnv(t, envOptions{clock: clk})
	a := e.seedOutlook("oid-a", "sub-1", "secret", clk.Now().Add(48*time.Hour))
	b := e.seedOutlook("oid-b", "sub-2", "secret-b", clk.Now().Add(48*time.Hour))
	e.seedOutlook("oid-c", "sub-3", "secret-c", clk.Now().Add(-2*time.Hour)) // expired two hours ago
	before := e.records()

	forbidden := []struct {
		name string
		note map[string]any
	}{
		{"wrong clientState", graphNotification("sub-1", "not-the-secret", a.oid)},
		{"clientState a prefix of the right one", graphNotification("sub-1", "secre", a.oid)},
		{"no clientState", graphNotification("sub-1", "", a.oid)},
		{"unknown subscription", graphNotification("sub-9", "secret", a.oid)},
		{"no subscription ID", graphNotification("", "secret", a.oid)},
		{"resource of another person", graphNotification("sub-1", "secret", b.oid)},
		{"resource of an unknown account", graphNotification("sub-1", "secret", "oid-unknown")},
		{"another person's subscription with this clientState", graphNotification("sub-2", "secret", b.oid)},
		{"expired subscription", graphNotification("sub-3", "secret-c", "oid-c")},
		{"resource not of a user", func() map[string]any {
			n := graphNotification("sub-1", "secret", a.oid)
			n["resource"] = "Groups/" + a.oid + "/Events/x"
			return n
		}()},
	}
	for _, c := range forbidden {
		resp, body := e.postRaw("/webhooks/microsoft", graphBody(t, c.note), nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "clientState") {
			t.Errorf("%s: %d %q, want 403 naming clientState", c.name, resp.StatusCode, body)
		}
	}

	bad := []struct {
		name string
		body []byte
		want string
	}{
		{"not JSON", []byte("value=1"), "malformed JSON"},
		{"truncated JSON", graphBody(t, graphNotification("sub-1", "secret", a.oid))[:40], "malformed JSON"},
		{"a JSON array", []byte(`[{"subscriptionId":"sub-1"}]`), "malformed JSON"},
		{"value of the wrong type", []byte(`{"value":"sub-1"}`), "malformed JSON"},
		{"empty value array", []byte(`{"value":[]}`), "no value array"},
		{"no value array", []byte(`{"validationTokens":["x"]}`), "no value array"},
		{"empty body", nil, "malformed JSON"},
	}
	for _, c := range bad {
		resp, body := e.postRaw("/webhooks/microsoft", c.body, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want 400 saying %q", c.name, resp.StatusCode, body, c.want)
		}
	}

	// Over 64 KiB: a valid notification padded out, with a length and chunked.
	big := graphBody(t, graphNotification("sub-1", "secret", a.oid), map[string]any{"pad": strings.Repeat("a", 64<<10)})
	resp, body := e.postRaw("/webhooks/microsoft", big, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body: %d, want 413\n%.200s", len(big), resp.StatusCode, body)
	}
	resp, body = e.do(http.DefaultClient, http.MethodPost, "/webhooks/microsoft", io.MultiReader(bytes.NewReader(big)), http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a chunked %d-byte body: %d, want 413\n%.200s", len(big), resp.StatusCode, body)
	}

	unchanged(t, "refused notifications", before, e.records())
	if w := e.wakes.all(); len(w) != 0 {
		t.Errorf("refused notifications woke %v", w)
	}

	// The subscription still works: the refusals did not break it.
	resp, body = e.postRaw("/webhooks/microsoft", graphBody(t, graphNotification("sub-1", "secret", a.oid)), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("a good notification after the refusals: %d\n%s", resp.StatusCode, body)
	}
}

// zoomSide is the real Zoom client of the server under test, talking to zoomfake, which
// signs its webhooks with the same secret token and fires them at the server.
type zoomSide struct {
	fake   *zoomfake.Server
	url    string
	client *zoom.Client
	secret string
}

// configure adds Zoom to a server's dependencies.
func (z *zoomSide) configure(e *env, d *web.Deps) {
	z.secret = "zoom-webhook-secret-token"
	z.fake = zoomfake.New(zoomfake.Options{Now: e.clock.Now, WebhookSecretToken: z.secret, AutoApprove: true})
	srv := httptest.NewServer(z.fake)
	e.t.Cleanup(srv.Close)
	z.url = srv.URL
	var err error
	z.client, err = zoom.New(zoom.Config{
		ClientID:           z.fake.ClientID(),
		ClientSecret:       z.fake.ClientSecret(),
		OAuthURL:           srv.URL,
		APIURL:             srv.URL + "/v2",
		RedirectURL:        e.base + "/connect/zoom/callback",
		WebhookSecretToken: z.secret,
		HTTPClient:         srv.Client(),
		Now:                e.clock.Now,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	d.Zoom = z.client
	z.fake.SetWebhookURL(e.base + "/webhooks/zoom")
}

// newZoomEnv is an env on a fake clock with Zoom configured.
func newZoomEnv(t *testing.T) (*env, *zoomSide, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(webhookEpoch)
	z := &zoomSide{}
	e := newEnv(t, envOptions{clock: clk, configure: z.configure})
	return e, z, clk
}

// seedZoom stores a user with a Zoom connection of the Zoom user zoomUser.
func (e *env) seedZoom(uid, zoomUser string) store.Connection {
	e.t.Helper()
	ctx := e.t.Context()
	now := e.clock.Now()
	if err := e.st.CreateUser(ctx, store.User{ID: uid, Created: now, Rules: presence.DefaultRules()}); err != nil {
		e.t.Fatal(err)
	}
	c := store.Connection{ID: "c_zoom_" + uid, UserID: uid, Provider: "zoom", ExternalID: zoomUser, TeamID: zoomfake.DefaultAccountID,
		Health: store.HealthOK, Resources: []string{"meetings"}, Created: now, Updated: now}
	if err := e.st.PutConnection(ctx, c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// liveEvents returns the person's live Zoom calls, ordered by start.
func (e *env) liveEvents(uid string) []presence.Event {
	e.t.Helper()
	now := e.clock.Now()
	evs, err := e.st.ListEvents(e.t.Context(), uid, now.Add(-24*time.Hour), now.Add(24*time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []presence.Event
	for _, ev := range evs {
		if ev.Type == presence.EventZoomLive {
			out = append(out, ev)
		}
	}
	return out
}

// outcomes returns how often each activity outcome of a kind was logged for the person.
func (e *env) outcomes(uid, kind string) map[string]int {
	e.t.Helper()
	acts, err := e.st.ListActivity(e.t.Context(), uid, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, a := range acts {
		if a.Kind == kind {
			out[a.Outcome]++
		}
	}
	return out
}

// meetingUUID reads the meeting instance's UUID from a delivery's body.
func meetingUUID(t *testing.T, d zoomfake.Delivery) string {
	t.Helper()
	var body struct {
		Payload struct {
			Object struct {
				UUID string `json:"uuid"`
			} `json:"object"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(d.Body, &body); err != nil || body.Payload.Object.UUID == "" {
		t.Fatalf("delivery %s without a meeting UUID: %v\n%s", d.Event, err, d.Body)
	}
	return body.Payload.Object.UUID
}

func wantDelivered(t *testing.T, what string, d zoomfake.Delivery, err error, status int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if d.Status != status {
		t.Fatalf("%s: our endpoint answered %d, want %d\n%s", what, d.Status, status, d.Response)
	}
}

// TestZoomURLValidation: endpoint.url_validation is answered as Zoom checks it, and stores
// nothing.
func TestZoomURLValidation(t *testing.T) {
	t.Parallel()
	e, z, _ := newZoomEnv(t)
	before := e.records()
	for i := range 2 { // a delivery ID is not remembered for a validation: it is answered every time
		d, err := z.fake.ValidateEndpoint(t.Context())
		if err != nil {
			t.Fatalf("validation %d: %v (status %d, %s)", i, err, d.Status, d.Response)
		}
	}
	unchanged(t, "url validation", before, e.records())
	if w := e.wakes.all(); len(w) != 0 {
		t.Errorf("url validation woke %v", w)
	}
}

// TestZoomLiveCall: a call that starts stores a live block from its start for a provisional
// four hours and wakes the person; its end moves the block's end to when it really ended. An
// unscheduled call gets a block as well as a scheduled one, and a call of someone who is not
// connected changes nothing.
func TestZoomLiveCall(t *testing.T) {
	t.Parallel()
	e, z, clk := newZoomEnv(t)
	ctx := t.Context()
	const uid = "u_ada"
	conn := e.seedZoom(uid, zoomfake.DefaultUserID)
	source := conn.ID + "/live"
	clk.Advance(time.Minute)

	// An unscheduled call (no meeting ID: a new ad-hoc meeting).
	start := clk.Now()
	d, err := z.fake.StartMeeting(ctx, zoomfake.DefaultUserID, "")
	wantDelivered(t, "meeting.started", d, err, http.StatusOK)
	adhoc := meetingUUID(t, d)
	live := e.liveEvents(uid)
	want := presence.Event{Source: source, ID: adhoc, Type: presence.EventZoomLive, Start: start, End: start.Add(4 * time.Hour),
		Busy: presence.BusyBusy, HasOtherAttendees: true}
	if len(live) != 1 || !sameEvent(live[0], want) {
		t.Fatalf("live events after meeting.started = %+v, want [%+v]", live, want)
	}
	if w := e.wakes.all(); !slices.Equal(w, []string{uid}) {
		t.Errorf("wakes after meeting.started = %v, want [%s]", w, uid)
	}
	if o := e.outcomes(uid, string(presence.KindZoomCall)); o["call started"] != 1 || len(o) != 1 {
		t.Errorf("activity after meeting.started = %v", o)
	}

	// It overruns nothing: it ends 25 minutes later, and the block with it.
	clk.Advance(25 * time.Minute)
	end := clk.Now()
	d, err = z.fake.EndMeeting(ctx, zoomfake.DefaultUserID, "")
	wantDelivered(t, "meeting.ended", d, err, http.StatusOK)
	live = e.liveEvents(uid)
	want.End = end
	if len(live) != 1 || !sameEvent(live[0], want) {
		t.Fatalf("live events after meeting.ended = %+v, want [%+v]", live, want)
	}
	if w := e.wakes.all(); !slices.Equal(w, []string{uid, uid}) {
		t.Errorf("wakes after meeting.ended = %v", w)
	}
	if o := e.outcomes(uid, string(presence.KindZoomCall)); o["call started"] != 1 || o["call ended"] != 1 {
		t.Errorf("activity after meeting.ended = %v", o)
	}

	// A scheduled meeting, started late and running past its scheduled end.
	clk.Advance(5 * time.Minute)
	id := z.fake.AddMeeting(zoomfake.DefaultUserID, zoomfake.Meeting{Topic: "Planning", Start: clk.Now().Add(-2 * time.Minute), Duration: 30 * time.Minute})
	start2 := clk.Now()
	d, err = z.fake.StartMeeting(ctx, zoomfake.DefaultUserID, strconv.FormatInt(id, 10))
	wantDelivered(t, "scheduled meeting.started", d, err, http.StatusOK)
	scheduled := meetingUUID(t, d)
	if scheduled == adhoc {
		t.Fatal("two calls with one UUID")
	}
	clk.Advance(40 * time.Minute)
	end2 := clk.Now()
	d, err = z.fake.EndMeeting(ctx, zoomfake.DefaultUserID, strconv.FormatInt(id, 10))
	wantDelivered(t, "scheduled meeting.ended", d, err, http.StatusOK)
	live = e.liveEvents(uid)
	want2 := want
	want2.ID, want2.Start, want2.End = scheduled, start2, end2
	if len(live) != 2 || !sameEvent(live[0], want) || !sameEvent(live[1], want2) {
		t.Errorf("live events after the scheduled call = %+v, want [%+v %+v]", live, want, want2)
	}
	if o := e.outcomes(uid, string(presence.KindZoomCall)); o["call started"] != 2 || o["call ended"] != 2 {
		t.Errorf("activity after two calls = %v", o)
	}

	// Nothing said a word about the meetings' topics.
	if raw := e.rawFile(); bytes.Contains(raw, []byte("Planning")) || bytes.Contains(raw, []byte("Zoom Meeting")) {
		t.Error("the bolt file holds a meeting topic")
	}

	// A call of a Zoom user nobody connected: acknowledged, nothing stored, nobody woken.
	z.fake.AddUser(zoomfake.DefaultAccountID, zoomfake.DefaultUserID) // the first AddUser drops the default user
	z.fake.AddUser(zoomfake.DefaultAccountID, "SbxUserBob000000000002")
	before, wakes := e.records(), len(e.wakes.all())
	d, err = z.fake.StartMeeting(ctx, "SbxUserBob000000000002", "")
	wantDelivered(t, "a stranger's meeting.started", d, err, http.StatusOK)
	after := e.records()
	for k := range after {
		if _, ok := before[k]; !ok && !strings.HasPrefix(k, "seen/") {
			t.Errorf("a stranger's call added %s", k)
		}
	}
	if n := len(e.wakes.all()); n != wakes {
		t.Errorf("a stranger's call woke someone")
	}
}

// sameEvent compares events with time.Time.Equal.
func sameEvent(a, b presence.Event) bool {
	as, ae, bs, be := a.Start, a.End, b.Start, b.End
	a.Start, a.End, b.Start, b.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b && as.Equal(bs) && ae.Equal(be)
}

// TestZoomRedelivery: Zoom's retries resend the same event; each acts once. A "started"
// retried after the call ended does not bring the call back.
func TestZoomRedelivery(t *testing.T) {
	t.Parallel()
	e, z, clk := newZoomEnv(t)
	ctx := t.Context()
	const uid = "u_ada"
	e.seedZoom(uid, zoomfake.DefaultUserID)

	started, err := z.fake.StartMeeting(ctx, zoomfake.DefaultUserID, "")
	wantDelivered(t, "meeting.started", started, err, http.StatusOK)
	first := e.liveEvents(uid)
	for i := range 2 {
		clk.Advance(20 * time.Second) // a retry comes later, with a new timestamp and signature
		d, err := z.fake.Redeliver(ctx, started)
		wantDelivered(t, fmt.Sprintf("redelivery %d of meeting.started", i+1), d, err, http.StatusOK)
		if d.Timestamp == started.Timestamp {
			t.Fatal("the redelivery did not carry a new timestamp")
		}
	}
	if live := e.liveEvents(uid); len(live) != 1 || !sameEvent(live[0], first[0]) {
		t.Errorf("live events after three deliveries = %+v, want %+v", live, first)
	}
	if o := e.outcomes(uid, string(presence.KindZoomCall)); o["call started"] != 1 {
		t.Errorf("activity after three deliveries = %v, want one \"call started\"", o)
	}
	if w := e.wakes.all(); len(w) != 1 {
		t.Errorf("wakes after three deliveries = %v, want one", w)
	}

	clk.Advance(10 * time.Minute)
	ended, err := z.fake.EndMeeting(ctx, zoomfake.DefaultUserID, "")
	wantDelivered(t, "meeting.ended", ended, err, http.StatusOK)
	endedAt := clk.Now()
	for _, d := range []zoomfake.Delivery{ended, ended, started} {
		clk.Advance(time.Second)
		got, err := z.fake.Redeliver(ctx, d)
		wantDelivered(t, "redelivery of "+d.Event, got, err, http.StatusOK)
	}
	live := e.liveEvents(uid)
	if len(live) != 1 || !live[0].End.Equal(endedAt) {
		t.Errorf("live events after the redeliveries = %+v, want one ending at %v", live, endedAt)
	}
	if o := e.outcomes(uid, string(presence.KindZoomCall)); o["call started"] != 1 || o["call ended"] != 1 {
		t.Errorf("activity after the redeliveries = %v, want one start and one end", o)
	}
	if w := e.wakes.all(); len(w) != 2 {
		t.Errorf("wakes after the redeliveries = %v, want two", w)
	}
}

// zoomSign is x-zm-signature for body at timestamp ts.
func zoomSign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// zoomStartedBody is a meeting.started webhook body for a call hosted by host.
func zoomStartedBody(t *testing.T, host, uuid string, at time.Time) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"event":    "meeting.started",
		"event_ts": at.UnixMilli(),
		"payload": map[string]any{
			"account_id": zoomfake.DefaultAccountID,
			"object": map[string]any{
				"id": "81234567890", "uuid": uuid, "host_id": host, "type": 1,
				"topic": "Secret topic", "start_time": at.UTC().Format(time.RFC3339),
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestZoomRefused: a bad or missing signature and a stale timestamp are 401, a correctly
// signed body that is not one JSON event is 400; none changes anything (not even the record
// of seen deliveries, so the genuine event still acts afterwards).
func TestZoomRefused(t *testing.T) {
	t.Parallel()
	e, z, clk := newZoomEnv(t)
	ctx := t.Context()
	const uid = "u_ada"
	e.seedZoom(uid, zoomfake.DefaultUserID)
	now := clk.Now()
	body := zoomStartedBody(t, zoomfake.DefaultUserID, "uuid-1==", now)
	ts := now.Unix()
	before := e.records()

	hdr := func(ts int64, sig string) http.Header {
		h := http.Header{}
		if ts != 0 {
			h.Set("x-zm-request-timestamp", strconv.FormatInt(ts, 10))
		}
		if sig != "" {
			h.Set("x-zm-signature", sig)
		}
		return h
	}
	tampered := bytes.Replace(body, []byte(zoomfake.DefaultUserID), []byte("SbxUserEve000000000003"), 1)
	cases := []struct {
		name   string
		body   []byte
		header http.Header
		status int
		want   string
	}{
		{"tampered body", tampered, hdr(ts, zoomSign(z.secret, ts, body)), http.StatusUnauthorized, "signature"},
		{"signed with another secret", body, hdr(ts, zoomSign("not-the-secret", ts, body)), http.StatusUnauthorized, "signature"},
		{"signed for another timestamp", body, hdr(ts, zoomSign(z.secret, ts-1, body)), http.StatusUnauthorized, "signature"},
		{"no signature", body, hdr(ts, ""), http.StatusUnauthorized, "signature"},
		{"signature without v0=", body, hdr(ts, strings.TrimPrefix(zoomSign(z.secret, ts, body), "v0=")), http.StatusUnauthorized, "signature"},
		{"signature not hex", body, hdr(ts, "v0=zz"), http.StatusUnauthorized, "signature"},
		{"no timestamp", body, hdr(0, zoomSign(z.secret, ts, body)), http.StatusUnauthorized, "timestamp"},
		{"stale timestamp", body, hdr(ts-6*60, zoomSign(z.secret, ts-6*60, body)), http.StatusUnauthorized, "timestamp"},
		{"timestamp from the future", body, hdr(ts+6*60, zoomSign(z.secret, ts+6*60, body)), http.StatusUnauthorized, "timestamp"},
		{"signed, not JSON", []byte("event=meeting.started"), hdr(ts, zoomSign(z.secret, ts, []byte("event=meeting.started"))), http.StatusBadRequest, "malformed"},
	}
	for _, c := range cases {
		resp, got := e.postRaw("/webhooks/zoom", c.body, c.header)
		if resp.StatusCode != c.status || !strings.Contains(got, c.want) {
			t.Errorf("%s: %d %q, want %d saying %q", c.name, resp.StatusCode, got, c.status, c.want)
		}
	}

	// Through zoomfake: correctly signed bodies that are not one JSON event.
	for _, raw := range []string{"not json", `{"event":"meeting.started"}`, string(body) + string(body), `{"event":"meeting.started","event_ts":1,"payload":{"object":{"id":"1"}}}`} {
		d, err := z.fake.SendRaw(ctx, []byte(raw))
		wantDelivered(t, fmt.Sprintf("SendRaw(%.30q)", raw), d, err, http.StatusBadRequest)
	}

	unchanged(t, "refused webhooks", before, e.records())
	if w := e.wakes.all(); len(w) != 0 {
		t.Errorf("refused webhooks woke %v", w)
	}
	if live := e.liveEvents(uid); len(live) != 0 {
		t.Errorf("refused webhooks stored %+v", live)
	}

	// The genuine delivery, correctly signed, still acts: the refusals consumed nothing.
	resp, got := e.postRaw("/webhooks/zoom", body, hdr(ts, zoomSign(z.secret, ts, body)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the genuine delivery: %d %q", resp.StatusCode, got)
	}
	if live := e.liveEvents(uid); len(live) != 1 || live[0].ID != "uuid-1==" || !live[0].Start.Equal(now) {
		t.Errorf("live events after the genuine delivery = %+v", live)
	}
	if raw := e.rawFile(); bytes.Contains(raw, []byte("Secret topic")) {
		t.Error("the bolt file holds the meeting topic")
	}
}

// TestZoomNotConfigured: without a Zoom client the webhook does not exist.
func TestZoomNotConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	before := e.records()
	ts := e.clock.Now().Unix()
	body := zoomStartedBody(t, zoomfake.DefaultUserID, "uuid-1", e.clock.Now())
	resp, got := e.postRaw("/webhooks/zoom", body, http.Header{
		"X-Zm-Request-Timestamp": {strconv.FormatInt(ts, 10)},
		"X-Zm-Signature":         {zoomSign("any", ts, body)},
	})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(got, "Zoom is not configured") {
		t.Errorf("POST /webhooks/zoom without Zoom: %d %q, want 404", resp.StatusCode, got)
	}
	unchanged(t, "webhook without Zoom", before, e.records())
}
