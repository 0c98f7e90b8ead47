package zoom

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook event names we act on.
const (
	EventURLValidation     = "endpoint.url_validation"
	EventMeetingStarted    = "meeting.started"
	EventMeetingEnded      = "meeting.ended"
	EventParticipantJoined = "meeting.participant_joined"
	EventParticipantLeft   = "meeting.participant_left"
	EventPresenceUpdated   = "user.presence_status_updated"
)

// WebhookTolerance is how far x-zm-request-timestamp may be from now, either
// way. Zoom names no replay window; 5 minutes is the common choice.
const WebhookTolerance = 5 * time.Minute

// MaxWebhookBody is the largest webhook body VerifyWebhook accepts; read the
// request with http.MaxBytesReader(w, r.Body, MaxWebhookBody).
const MaxWebhookBody = 1 << 20

// The kinds of webhook refusal. Answer ErrBadSignature and ErrStaleTimestamp
// with 401, ErrMalformedWebhook with 400 (see WebhookStatus).
var (
	// ErrWebhookNotConfigured means Config.WebhookSecretToken is empty.
	ErrWebhookNotConfigured = errors.New("zoom webhook: no secret token configured")
	// ErrBadSignature means x-zm-signature or x-zm-request-timestamp is
	// missing, malformed or does not match the body.
	ErrBadSignature = errors.New("zoom webhook: bad or missing signature")
	// ErrStaleTimestamp means a correctly signed request whose timestamp is
	// more than WebhookTolerance from now (a replay, or a skewed clock).
	ErrStaleTimestamp = errors.New("zoom webhook: timestamp outside the allowed window")
	// ErrMalformedWebhook means a correctly signed body that is not one
	// JSON event of the expected shape.
	ErrMalformedWebhook = errors.New("zoom webhook: malformed body")
)

// WebhookStatus is the HTTP status to answer a VerifyWebhook error with:
// 401 for a bad signature or a stale timestamp, 400 for a malformed body,
// 503 when the secret token is not configured, 200 for nil.
func WebhookStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrStaleTimestamp):
		return http.StatusUnauthorized
	case errors.Is(err, ErrMalformedWebhook):
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// Webhook is a verified Zoom event, reduced to IDs, times and the presence
// status: no topic, user name or e-mail address.
type Webhook struct {
	// Event is Zoom's event name (one of the Event constants, or another
	// event the app is subscribed to).
	Event string
	// EventID identifies the event across Zoom's redeliveries, which resend
	// the same body: event name, event_ts and the object's key (meeting UUID
	// or ID, participant, user), joined by ":". Deduplicate on it.
	EventID string
	// EventTime is event_ts.
	EventTime time.Time
	// AccountID is payload.account_id.
	AccountID string

	// UserID is the Zoom user the event is about: the host for
	// meeting.started/ended, the participant (when signed in to Zoom) for
	// participant events, the user for presence. Find the connection by it.
	UserID string
	// HostID is the meeting's host_id.
	HostID string

	// MeetingID is the meeting number (a string, as webhooks send it);
	// MeetingUUID identifies this instance of it.
	MeetingID   string
	MeetingUUID string
	MeetingType int
	// Start and End are the meeting's start_time and end_time (meeting.ended).
	Start time.Time
	End   time.Time

	// ParticipantID is participant.id (or participant_user_id): the Zoom
	// user ID of a signed-in participant, empty for a guest.
	// ParticipantUserID is participant.user_id, Zoom's per-meeting number.
	ParticipantID     string
	ParticipantUserID string
	// ParticipantTime is participant.join_time or leave_time.
	ParticipantTime time.Time

	// PresenceStatus is user.presence_status_updated's presence_status
	// ("Available", "Away", "Do_Not_Disturb", "In_Meeting", …); PresenceTime
	// its date_time.
	PresenceStatus string
	PresenceTime   time.Time

	// PlainToken is endpoint.url_validation's challenge; answer it with
	// URLValidationResponse.
	PlainToken string
}

// VerifyWebhook checks a webhook request and parses it. header and body are
// the request's headers and raw body; now is the receiving time.
//
// The signature is checked first, in constant time: x-zm-signature must be
// "v0=" + hex(HMAC-SHA256(Config.WebhookSecretToken,
// "v0:" + x-zm-request-timestamp + ":" + body)). Then the timestamp (Unix
// seconds) must be within WebhookTolerance of now. Then the body must be
// exactly one JSON object with an event, an event_ts and a payload, and the
// fields the event needs (for meeting events the meeting ID and host, for
// participant events the participant, for presence the user and status,
// for url_validation the plainToken).
//
// Errors wrap ErrBadSignature, ErrStaleTimestamp or ErrMalformedWebhook (or
// are ErrWebhookNotConfigured); WebhookStatus maps them to HTTP statuses.
func (c *Client) VerifyWebhook(header http.Header, body []byte, now time.Time) (Webhook, error) {
	secret := c.cfg.WebhookSecretToken
	if secret == "" {
		return Webhook{}, ErrWebhookNotConfigured
	}
	now = c.now(now)
	tsText := header.Get("x-zm-request-timestamp")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || ts <= 0 {
		return Webhook{}, fmt.Errorf("%w: no valid x-zm-request-timestamp", ErrBadSignature)
	}
	sig, ok := strings.CutPrefix(header.Get("x-zm-signature"), "v0=")
	if !ok {
		return Webhook{}, fmt.Errorf("%w: no v0 x-zm-signature", ErrBadSignature)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return Webhook{}, fmt.Errorf("%w: x-zm-signature is not hex", ErrBadSignature)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, "v0:"+tsText+":")
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return Webhook{}, ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return Webhook{}, fmt.Errorf("%w: %s off", ErrStaleTimestamp, d.Round(time.Second))
	}
	w, err := parseWebhook(body)
	if err != nil {
		return Webhook{}, fmt.Errorf("%w: %s", ErrMalformedWebhook, err)
	}
	return w, nil
}

// URLValidationResponse is the body to answer endpoint.url_validation with
// (HTTP 200, Content-Type application/json): {"plainToken": plainToken,
// "encryptedToken": hex(HMAC-SHA256(secret token, plainToken))}. It is nil
// when no secret token is configured.
func (c *Client) URLValidationResponse(plainToken string) []byte {
	if c.cfg.WebhookSecretToken == "" {
		return nil
	}
	mac := hmac.New(sha256.New, []byte(c.cfg.WebhookSecretToken))
	io.WriteString(mac, plainToken)
	b, _ := json.Marshal(struct {
		PlainToken     string `json:"plainToken"`
		EncryptedToken string `json:"encryptedToken"`
	}{plainToken, hex.EncodeToString(mac.Sum(nil))}) // strings always marshal
	return b
}

// The wire shapes; fields we do not use (topic, user_name, email, …) are
// not decoded.
type (
	webhookJSON struct {
		Event   *string          `json:"event"`
		EventTS *json.Number     `json:"event_ts"`
		Payload *json.RawMessage `json:"payload"`
	}
	payloadJSON struct {
		AccountID  string      `json:"account_id"`
		Object     *objectJSON `json:"object"`
		PlainToken string      `json:"plainToken"`
	}
	objectJSON struct {
		ID             flexID           `json:"id"`
		UUID           string           `json:"uuid"`
		HostID         string           `json:"host_id"`
		Type           int              `json:"type"`
		StartTime      string           `json:"start_time"`
		EndTime        string           `json:"end_time"`
		Participant    *participantJSON `json:"participant"`
		PresenceStatus string           `json:"presence_status"`
		DateTime       string           `json:"date_time"`
	}
	participantJSON struct {
		UserID            flexID `json:"user_id"`
		ID                string `json:"id"`
		ParticipantUserID string `json:"participant_user_id"`
		JoinTime          string `json:"join_time"`
		LeaveTime         string `json:"leave_time"`
	}
)

// parseWebhook decodes a verified body strictly.
func parseWebhook(body []byte) (Webhook, error) {
	if len(body) > MaxWebhookBody {
		return Webhook{}, errors.New("body too large")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var env webhookJSON
	if err := dec.Decode(&env); err != nil {
		return Webhook{}, errors.New("not a JSON object of the expected shape")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Webhook{}, errors.New("data after the JSON object")
	}
	if env.Event == nil || *env.Event == "" || env.EventTS == nil || env.Payload == nil {
		return Webhook{}, errors.New("event, event_ts and payload are required")
	}
	ms, err := env.EventTS.Int64()
	if err != nil || ms <= 0 {
		return Webhook{}, errors.New("event_ts is not a positive integer")
	}
	w := Webhook{Event: *env.Event, EventTime: time.UnixMilli(ms).UTC()}
	var p payloadJSON
	if err := json.Unmarshal(*env.Payload, &p); err != nil {
		return Webhook{}, errors.New("payload is not an object of the expected shape")
	}
	w.AccountID = p.AccountID
	key := ""
	switch w.Event {
	case EventURLValidation:
		if p.PlainToken == "" {
			return Webhook{}, errors.New("url_validation without plainToken")
		}
		w.PlainToken = p.PlainToken
	case EventMeetingStarted, EventMeetingEnded, EventParticipantJoined, EventParticipantLeft:
		if err := w.meeting(p.Object); err != nil {
			return Webhook{}, err
		}
		key = w.MeetingUUID
		if key == "" {
			key = w.MeetingID
		}
		if w.Event == EventParticipantJoined || w.Event == EventParticipantLeft {
			key += ":" + w.ParticipantID + "/" + w.ParticipantUserID
		}
	case EventPresenceUpdated:
		o := p.Object
		if o == nil || o.ID == "" || o.PresenceStatus == "" {
			return Webhook{}, errors.New("presence event without object.id or presence_status")
		}
		w.UserID, w.PresenceStatus = string(o.ID), o.PresenceStatus
		if w.PresenceTime, err = optionalTime(o.DateTime); err != nil {
			return Webhook{}, errors.New("bad date_time")
		}
		key = w.UserID
	default:
		if p.Object != nil {
			key = string(p.Object.ID)
		}
	}
	w.EventID = w.Event + ":" + strconv.FormatInt(ms, 10) + ":" + key
	return w, nil
}

// meeting fills the meeting fields of a meeting or participant event.
func (w *Webhook) meeting(o *objectJSON) error {
	if o == nil {
		return errors.New("meeting event without object")
	}
	if o.ID == "" && o.UUID == "" {
		return errors.New("meeting event without id or uuid")
	}
	w.MeetingID, w.MeetingUUID, w.HostID, w.MeetingType = string(o.ID), o.UUID, o.HostID, o.Type
	var err error
	if w.Start, err = optionalTime(o.StartTime); err != nil {
		return errors.New("bad start_time")
	}
	if w.End, err = optionalTime(o.EndTime); err != nil {
		return errors.New("bad end_time")
	}
	switch w.Event {
	case EventMeetingStarted, EventMeetingEnded:
		if w.HostID == "" {
			return errors.New("meeting event without host_id")
		}
		if w.Event == EventMeetingEnded && w.End.IsZero() {
			return errors.New("meeting.ended without end_time")
		}
		w.UserID = w.HostID
		return nil
	}
	p := o.Participant
	if p == nil {
		return errors.New("participant event without participant")
	}
	w.ParticipantID = p.ID
	if w.ParticipantID == "" {
		w.ParticipantID = p.ParticipantUserID
	}
	w.ParticipantUserID = string(p.UserID)
	w.UserID = w.ParticipantID
	at := p.JoinTime
	if w.Event == EventParticipantLeft {
		at = p.LeaveTime
	}
	if w.ParticipantTime, err = optionalTime(at); err != nil {
		return errors.New("bad join_time or leave_time")
	}
	return nil
}

// optionalTime parses an RFC 3339 time; empty gives the zero time.
func optionalTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.UTC(), err
}
