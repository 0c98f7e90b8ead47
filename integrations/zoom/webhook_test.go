package zoom

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
)

// hookReceiver is an endpoint like ours: it verifies with VerifyWebhook,
// answers url_validation, and acts once per EventID.
type hookReceiver struct {
	c   *Client
	now func() time.Time

	mu       sync.Mutex
	accepted []Webhook
	dups     int
	errs     []error
	seen     map[string]bool
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	hook, err := h.c.VerifyWebhook(r.Header, body, h.now())
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.errs = append(h.errs, err)
		http.Error(w, "refused", WebhookStatus(err))
		return
	}
	if hook.Event == EventURLValidation {
		w.Header().Set("Content-Type", "application/json")
		w.Write(h.c.URLValidationResponse(hook.PlainToken))
		return
	}
	if h.seen[hook.EventID] {
		h.dups++
		w.WriteHeader(http.StatusOK)
		return
	}
	h.seen[hook.EventID] = true
	h.accepted = append(h.accepted, hook)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) last() Webhook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted[len(h.accepted)-1]
}

func (h *hookReceiver) counts() (accepted, dups int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.accepted), h.dups
}

func (h *hookReceiver) lastErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) == 0 {
		return nil
	}
	return h.errs[len(h.errs)-1]
}

// newHookEnv is a client env plus our webhook endpoint on a loopback server,
// with the fake firing at it.
func newHookEnv(t *testing.T) (*env, *hookReceiver, string) {
	t.Helper()
	e := newEnv(t, zoomfake.Options{})
	rc := &hookReceiver{c: e.c, now: e.clock.Now, seen: map[string]bool{}}
	app := httptest.NewServer(rc)
	t.Cleanup(app.Close)
	e.fake.SetWebhookURL(app.URL + "/webhooks/zoom")
	return e, rc, app.URL + "/webhooks/zoom"
}

func TestWebhookLiveCall(t *testing.T) {
	e, rc, _ := newHookEnv(t)
	ctx := t.Context()
	if _, err := e.fake.ValidateEndpoint(ctx); err != nil {
		t.Fatalf("url validation: %v", err)
	}
	sched := e.fake.AddMeeting(user, zoomfake.Meeting{Topic: "Secret board meeting", Start: e.clock.Now(), Duration: 30 * time.Minute})
	meetingID := strconv.FormatInt(sched, 10)

	d, err := e.fake.StartMeeting(ctx, user, meetingID)
	if err != nil || d.Status != http.StatusNoContent {
		t.Fatalf("start: %d %v (%v)", d.Status, err, rc.lastErr())
	}
	w := rc.last()
	if w.Event != EventMeetingStarted || w.UserID != user || w.HostID != user || w.AccountID != zoomfake.DefaultAccountID ||
		w.MeetingID != meetingID || w.MeetingUUID == "" || w.MeetingType != 2 || !w.Start.Equal(e.clock.Now()) ||
		!w.EventTime.Truncate(time.Second).Equal(e.clock.Now()) || w.EventID == "" { // event_ts is in ms, kept increasing by the fake
		t.Errorf("started %+v", w)
	}
	if strings.Contains(fmt.Sprintf("%+v", w), "Secret") || strings.Contains(fmt.Sprintf("%+v", w), "@") {
		t.Errorf("the webhook keeps a topic or an address: %+v", w)
	}

	if _, err := e.fake.ParticipantJoined(ctx, "other-user", meetingID); err != nil {
		t.Fatal(err)
	}
	if w := rc.last(); w.Event != EventParticipantJoined || w.UserID != "other-user" || w.ParticipantID != "other-user" ||
		w.ParticipantUserID == "" || w.HostID != user || !w.ParticipantTime.Equal(e.clock.Now()) {
		t.Errorf("joined %+v", w)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.fake.ParticipantLeft(ctx, "other-user", meetingID); err != nil {
		t.Fatal(err)
	}
	if w := rc.last(); w.Event != EventParticipantLeft || w.UserID != "other-user" || !w.ParticipantTime.Equal(e.clock.Now()) {
		t.Errorf("left %+v", w)
	}

	e.clock.Advance(40 * time.Minute) // an overrun
	end, err := e.fake.EndMeeting(ctx, user, meetingID)
	if err != nil || end.Status != http.StatusNoContent {
		t.Fatalf("end: %v", err)
	}
	w = rc.last()
	if w.Event != EventMeetingEnded || w.UserID != user || !w.End.Equal(e.clock.Now()) || w.MeetingID != meetingID {
		t.Errorf("ended %+v", w)
	}

	if _, err := e.fake.PresenceChanged(ctx, user, "Do_Not_Disturb"); err != nil {
		t.Fatal(err)
	}
	if w := rc.last(); w.Event != EventPresenceUpdated || w.UserID != user || w.PresenceStatus != "Do_Not_Disturb" || !w.PresenceTime.Equal(e.clock.Now()) {
		t.Errorf("presence %+v", w)
	}
	if n, _ := rc.counts(); n != 5 {
		t.Errorf("%d webhooks accepted", n)
	}
}

func TestWebhookRedeliveryHasTheSameEventID(t *testing.T) {
	e, rc, _ := newHookEnv(t)
	d, err := e.fake.StartMeeting(t.Context(), user, "")
	if err != nil {
		t.Fatal(err)
	}
	first := rc.last()
	// Zoom retries 5 minutes later (a new timestamp and signature), then again.
	for range 2 {
		e.clock.Advance(5 * time.Minute)
		again, err := e.fake.Redeliver(t.Context(), d)
		if err != nil || again.Status != http.StatusOK {
			t.Fatalf("redelivery: %d %v (%v)", again.Status, err, rc.lastErr())
		}
	}
	if n, dups := rc.counts(); n != 1 || dups != 2 || rc.last().EventID != first.EventID {
		t.Errorf("accepted %d, duplicates %d", n, dups)
	}
	// Another event of the same meeting is not a duplicate.
	if _, err := e.fake.EndMeeting(t.Context(), user, d.MeetingID); err != nil {
		t.Fatal(err)
	}
	if n, _ := rc.counts(); n != 2 || rc.last().EventID == first.EventID {
		t.Errorf("meeting.ended taken for a duplicate")
	}
}

func TestWebhookRefusals(t *testing.T) {
	e, rc, hookURL := newHookEnv(t)
	ctx := t.Context()

	t.Run("bad signature", func(t *testing.T) {
		other := zoomfake.New(zoomfake.Options{Now: e.clock.Now, WebhookSecretToken: "not-our-secret", WebhookURL: hookURL})
		d, err := other.StartMeeting(ctx, user, "")
		if err != nil || d.Status != http.StatusUnauthorized || !errors.Is(rc.lastErr(), ErrBadSignature) {
			t.Fatalf("%d %v, receiver: %v", d.Status, err, rc.lastErr())
		}
	})
	t.Run("stale timestamp", func(t *testing.T) {
		behind := func() time.Time { return e.clock.Now().Add(-WebhookTolerance - time.Second) }
		old := zoomfake.New(zoomfake.Options{Now: behind, WebhookSecretToken: webhookSecret, WebhookURL: hookURL})
		d, err := old.StartMeeting(ctx, user, "")
		if err != nil || d.Status != http.StatusUnauthorized || !errors.Is(rc.lastErr(), ErrStaleTimestamp) {
			t.Fatalf("%d %v, receiver: %v", d.Status, err, rc.lastErr())
		}
		// A delivery replayed later than the window is refused too.
		d, err = e.fake.StartMeeting(ctx, user, "")
		if err != nil || d.Status != http.StatusNoContent {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, hookURL, strings.NewReader(string(d.Body)))
		req.Header.Set("x-zm-request-timestamp", strconv.FormatInt(d.Timestamp, 10))
		req.Header.Set("x-zm-signature", signForTest(webhookSecret, d.Timestamp, d.Body))
		e.clock.Advance(WebhookTolerance + time.Second)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !errors.Is(rc.lastErr(), ErrStaleTimestamp) {
			t.Fatalf("replay: %d %v", resp.StatusCode, rc.lastErr())
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		for _, body := range []string{
			`not json`,
			`{"event":"meeting.started","event_ts":1796289000000,"payload":{"account_id":"a","object":{"id":"1"}}} {}`,
			`{"event":"meeting.started","event_ts":1796289000000,"payload":{"account_id":"a"}}`,
			`{"event":"meeting.started","event_ts":"yesterday","payload":{}}`,
			`{"event":"meeting.ended","event_ts":1796289000000,"payload":{"object":{"id":"1","host_id":"h"}}}`,
			`{"event":"meeting.started","event_ts":1796289000000,"payload":{"object":{"id":"1","host_id":"h","start_time":"9am"}}}`,
			`{"event":"user.presence_status_updated","event_ts":1796289000000,"payload":{"object":{"id":"u"}}}`,
			`{"event":"endpoint.url_validation","event_ts":1796289000000,"payload":{}}`,
			`[1,2,3]`,
		} {
			d, err := e.fake.SendRaw(ctx, []byte(body))
			if err != nil || d.Status != http.StatusBadRequest || !errors.Is(rc.lastErr(), ErrMalformedWebhook) {
				t.Errorf("%s: %d %v, receiver: %v", body, d.Status, err, rc.lastErr())
			}
		}
	})
	if n, _ := rc.counts(); n != 1 { // only the in-window delivery above
		t.Errorf("%d webhooks accepted", n)
	}
}

func signForTest(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

func TestVerifyWebhookDirect(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	now := e.clock.Now()
	body := []byte(`{"event":"meeting.started","payload":{"account_id":"A1","object":{"id":81234567890,"uuid":"u==","host_id":"H1","topic":"x","type":2,"start_time":"2026-12-03T09:00:00Z","duration":30}},"event_ts":1796288400123}`)
	header := func(ts int64, sig string) http.Header {
		return http.Header{"X-Zm-Request-Timestamp": {strconv.FormatInt(ts, 10)}, "X-Zm-Signature": {sig}}
	}
	ts := now.Unix()
	w, err := e.c.VerifyWebhook(header(ts, signForTest(webhookSecret, ts, body)), body, now)
	if err != nil {
		t.Fatal(err)
	}
	if w.MeetingID != "81234567890" || w.EventID != "meeting.started:1796288400123:u==" || w.UserID != "H1" {
		t.Errorf("webhook %+v", w)
	}
	// The window is inclusive, both ways.
	for _, off := range []time.Duration{WebhookTolerance, -WebhookTolerance} {
		ts := now.Add(off).Unix()
		if _, err := e.c.VerifyWebhook(header(ts, signForTest(webhookSecret, ts, body)), body, now); err != nil {
			t.Errorf("at %s: %v", off, err)
		}
	}
	for name, tc := range map[string]struct {
		h    http.Header
		body []byte
		want error
	}{
		"tampered body":    {header(ts, signForTest(webhookSecret, ts, body)), []byte(strings.Replace(string(body), "H1", "H2", 1)), ErrBadSignature},
		"other timestamp":  {header(ts+1, signForTest(webhookSecret, ts, body)), body, ErrBadSignature},
		"no signature":     {header(ts, ""), body, ErrBadSignature},
		"no v0 prefix":     {header(ts, strings.TrimPrefix(signForTest(webhookSecret, ts, body), "v0=")), body, ErrBadSignature},
		"not hex":          {header(ts, "v0=zz"), body, ErrBadSignature},
		"no timestamp":     {http.Header{"X-Zm-Signature": {signForTest(webhookSecret, ts, body)}}, body, ErrBadSignature},
		"future timestamp": {header(ts+400, signForTest(webhookSecret, ts+400, body)), body, ErrStaleTimestamp},
	} {
		if _, err := e.c.VerifyWebhook(tc.h, tc.body, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if WebhookStatus(ErrBadSignature) != 401 || WebhookStatus(fmt.Errorf("x: %w", ErrStaleTimestamp)) != 401 ||
		WebhookStatus(ErrMalformedWebhook) != 400 || WebhookStatus(ErrWebhookNotConfigured) != 503 {
		t.Error("WebhookStatus")
	}
	// Without a secret token nothing is accepted.
	c, _ := New(Config{ClientID: "a", ClientSecret: "b", RedirectURL: redirectURL})
	if _, err := c.VerifyWebhook(header(ts, signForTest("", ts, body)), body, now); !errors.Is(err, ErrWebhookNotConfigured) {
		t.Errorf("no secret: %v", err)
	}
	if c.URLValidationResponse("x") != nil {
		t.Error("a validation answer without a secret")
	}
}

func TestURLValidationResponse(t *testing.T) {
	e := newEnv(t, zoomfake.Options{})
	var got struct{ PlainToken, EncryptedToken string }
	if err := json.Unmarshal(e.c.URLValidationResponse("qgg8vlvZRS6UYooatFL8Aw"), &got); err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write([]byte("qgg8vlvZRS6UYooatFL8Aw"))
	if got.PlainToken != "qgg8vlvZRS6UYooatFL8Aw" || got.EncryptedToken != hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("answer %+v", got)
	}
}
