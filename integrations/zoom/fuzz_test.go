package zoom

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzZoomWebhook fuzzes the parse of a webhook body behind a valid signature: every body is
// signed with the test secret (as Zoom would sign it), so the fuzzer reaches parseWebhook
// rather than stopping at the HMAC check. skew moves x-zm-request-timestamp away from now.
// VerifyWebhook must never panic, must refuse with one of its documented errors, and what it
// accepts must be a complete event; the same body one byte longer must fail the signature.
func FuzzZoomWebhook(f *testing.F) {
	for _, s := range []string{
		`{"event":"endpoint.url_validation","event_ts":1764752400000,"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"}}`,
		`{"event":"meeting.started","event_ts":1764752400000,"payload":{"account_id":"A1","object":{"id":"85746065432","uuid":"4444AAAiAAAAAiAiAiiAii==","host_id":"H1","type":2,"start_time":"2026-12-03T09:00:00Z"}}}`,
		`{"event":"meeting.ended","event_ts":1764752400000,"payload":{"account_id":"A1","object":{"id":85746065432,"uuid":"u1","host_id":"H1","type":2,"start_time":"2026-12-03T09:00:00Z","end_time":"2026-12-03T09:30:00Z"}}}`,
		`{"event":"meeting.participant_joined","event_ts":1764752400000,"payload":{"account_id":"A1","object":{"id":"1","uuid":"u1","host_id":"H1","participant":{"user_id":16778240,"id":"P1","join_time":"2026-12-03T09:01:00Z"}}}}`,
		`{"event":"meeting.participant_left","event_ts":1764752400000,"payload":{"account_id":"A1","object":{"id":"1","uuid":"u1","host_id":"H1","participant":{"user_id":"16778240","participant_user_id":"P2","leave_time":"2026-12-03T09:31:00Z"}}}}`,
		`{"event":"user.presence_status_updated","event_ts":1764752400000,"payload":{"account_id":"A1","object":{"id":"U1","presence_status":"Do_Not_Disturb","date_time":"2026-12-03T09:00:00Z"}}}`,
		`{"event":"meeting.deleted","event_ts":1,"payload":{"object":{"id":1e3}}}`,
		`{"event":"meeting.ended","event_ts":1764752400000,"payload":{"object":{"id":"1","host_id":"H1"}}}`,
		`{"event":"meeting.started","event_ts":-1,"payload":{}}`,
		`{"event":"x","event_ts":1.5,"payload":null}`,
		`{"event":"x","event_ts":1,"payload":{}} {}`,
		`{"event":"user.presence_status_updated","event_ts":1,"payload":{"object":{"id":"U1","presence_status":"Away","date_time":"not a time"}}}`,
		`[]`, `null`, ``, `{"event":`,
	} {
		f.Add([]byte(s), int64(0))
	}
	f.Add([]byte(`{"event":"meeting.started","event_ts":1,"payload":{"object":{"id":"1","host_id":"H"}}}`), int64(301))
	f.Add([]byte(`{"event":"meeting.started","event_ts":1,"payload":{"object":{"id":"1","host_id":"H"}}}`), int64(-300))

	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	c, err := New(Config{ClientID: "zoom-client-1", ClientSecret: "zoom-secret-2", RedirectURL: redirectURL, WebhookSecretToken: webhookSecret})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, skew int64) {
		skew %= 1000 // around the ±300 s window
		ts := now.Unix() + skew
		h := http.Header{}
		h.Set("x-zm-request-timestamp", strconv.FormatInt(ts, 10))
		h.Set("x-zm-signature", signForTest(webhookSecret, ts, body))

		w, err := c.VerifyWebhook(h, body, now)
		status := WebhookStatus(err)
		stale := skew > int64(WebhookTolerance/time.Second) || skew < -int64(WebhookTolerance/time.Second)
		switch {
		case stale:
			if !errors.Is(err, ErrStaleTimestamp) {
				t.Fatalf("skew %d s: err %v, want ErrStaleTimestamp", skew, err)
			}
		case err != nil:
			if !errors.Is(err, ErrMalformedWebhook) || status != http.StatusBadRequest {
				t.Fatalf("signed body refused with %v (status %d), want ErrMalformedWebhook/400", err, status)
			}
		default:
			if status != http.StatusOK || w.Event == "" || w.EventTime.IsZero() || !strings.HasPrefix(w.EventID, w.Event+":") {
				t.Fatalf("accepted an incomplete event: %+v", w)
			}
			switch w.Event {
			case EventURLValidation:
				var ans struct{ PlainToken, EncryptedToken string }
				if w.PlainToken == "" || json.Unmarshal(c.URLValidationResponse(w.PlainToken), &ans) != nil || ans.PlainToken != w.PlainToken || len(ans.EncryptedToken) != 64 {
					t.Fatalf("url_validation %+v: answer %+v", w, ans)
				}
			case EventMeetingStarted, EventMeetingEnded:
				if w.HostID == "" || w.UserID != w.HostID || (w.MeetingID == "" && w.MeetingUUID == "") {
					t.Fatalf("meeting event %+v", w)
				}
			case EventPresenceUpdated:
				if w.UserID == "" || w.PresenceStatus == "" {
					t.Fatalf("presence event %+v", w)
				}
			}
		}
		// The signature covers the body: one more byte is a forgery.
		if _, err := c.VerifyWebhook(h, append(body[:len(body):len(body)], ' '), now); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("tampered body: %v, want ErrBadSignature", err)
		}
	})
}
