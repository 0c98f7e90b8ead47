package zoomfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Event names the fake sends.
const (
	EventURLValidation      = "endpoint.url_validation"
	EventMeetingStarted     = "meeting.started"
	EventMeetingEnded       = "meeting.ended"
	EventParticipantJoined  = "meeting.participant_joined"
	EventParticipantLeft    = "meeting.participant_left"
	EventPresenceUpdated    = "user.presence_status_updated"
	maxDeliveryResponseBody = 64 << 10
)

// ErrNoWebhookURL means no webhook URL is set (Options.WebhookURL or
// [Server.SetWebhookURL]).
var ErrNoWebhookURL = errors.New("zoomfake: no webhook URL set")

// Delivery is one webhook request the fake sent.
type Delivery struct {
	Event string
	// EventTS is the payload's event_ts (Unix milliseconds); a redelivery
	// carries the same one.
	EventTS   int64
	UserID    string // the user the event is about (host, participant or presence user)
	MeetingID string // for meeting events
	// Body is the JSON sent, byte for byte.
	Body []byte
	// Timestamp is the x-zm-request-timestamp sent (Unix seconds); it is new
	// on every delivery.
	Timestamp int64
	Time      time.Time // the fake clock when sent
	// Status is what our endpoint answered (0 when the request failed), and
	// Response the start of its body.
	Status   int
	Response []byte
}

// liveCall is a meeting in progress.
type liveCall struct {
	id           int64
	uuid, hostID string
	topic        string
	typ          int
	start        time.Time
	duration     time.Duration
	timezone     string
	participants map[string]string // Zoom user ID → per-meeting participant user_id
}

// Deliveries returns every webhook delivery so far, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// LiveMeetings returns the IDs of the calls in progress hosted by userID.
func (s *Server) LiveMeetings(userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, c := range s.live {
		if c.hostID == userID {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// sign returns x-zm-signature for body at timestamp ts.
func sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// envelope is a webhook body, fields in Zoom's order.
type envelope struct {
	Event   string `json:"event"`
	Payload any    `json:"payload"`
	EventTS int64  `json:"event_ts"`
}

// newEvent builds a Delivery with a fresh event_ts (strictly increasing,
// so two events at one instant of a frozen clock stay apart).
func (s *Server) newEvent(event, userID, meetingID string, payload any) (Delivery, error) {
	s.mu.Lock()
	ts := max(s.now().UnixMilli(), s.lastEventTS+1)
	s.lastEventTS = ts
	s.mu.Unlock()
	body, err := json.Marshal(envelope{Event: event, Payload: payload, EventTS: ts})
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{Event: event, EventTS: ts, UserID: userID, MeetingID: meetingID, Body: body}, nil
}

// deliver signs and POSTs d.Body to the webhook URL now, as Zoom does, and
// records the answer. It never holds s.mu during the request, so our
// endpoint may call the fake back.
func (s *Server) deliver(ctx context.Context, d Delivery) (Delivery, error) {
	s.mu.Lock()
	target := s.webhookURL
	now := s.now()
	s.mu.Unlock()
	if target == "" {
		return d, ErrNoWebhookURL
	}
	d.Time, d.Timestamp, d.Status, d.Response = now, now.Unix(), 0, nil
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(d.Body))
	if err != nil {
		return d, fmt.Errorf("zoomfake: webhook: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Zoom Marketplace/1.0a")
	h.Set("x-zm-request-timestamp", strconv.FormatInt(d.Timestamp, 10))
	h.Set("x-zm-signature", sign(s.opts.WebhookSecretToken, d.Timestamp, d.Body))
	h.Set("x-zm-trackingid", "v=2.0;clid=sbx;rid="+randHex(8))
	resp, err := s.opts.WebhookClient.Do(req)
	if err == nil {
		d.Status = resp.StatusCode
		d.Response, _ = io.ReadAll(io.LimitReader(resp.Body, maxDeliveryResponseBody))
		resp.Body.Close()
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	if err != nil {
		return d, fmt.Errorf("zoomfake: webhook %s: %w", d.Event, err)
	}
	return d, nil
}

// Redeliver sends a delivery's body again, as Zoom's retries do: the same
// event and event_ts, with a new x-zm-request-timestamp and signature.
func (s *Server) Redeliver(ctx context.Context, d Delivery) (Delivery, error) {
	return s.deliver(ctx, d)
}

// SendRaw signs body and POSTs it as a webhook: for bodies Zoom would never
// send (not JSON, an unknown event).
func (s *Server) SendRaw(ctx context.Context, body []byte) (Delivery, error) {
	return s.deliver(ctx, Delivery{Body: slices.Clone(body)})
}

// ValidateEndpoint sends endpoint.url_validation with a random plainToken
// and checks the answer: HTTP 200 with JSON {"plainToken": the same,
// "encryptedToken": hex(HMAC-SHA256(secret token, plainToken))}. A nil
// error means our endpoint passed, as Zoom requires when the URL is saved
// and every 72 hours.
func (s *Server) ValidateEndpoint(ctx context.Context) (Delivery, error) {
	plain := randToken(22)
	d, err := s.newEvent(EventURLValidation, "", "", map[string]string{"plainToken": plain})
	if err != nil {
		return d, err
	}
	if d, err = s.deliver(ctx, d); err != nil {
		return d, err
	}
	if d.Status != http.StatusOK {
		return d, fmt.Errorf("zoomfake: url validation: HTTP %d, want 200", d.Status)
	}
	var answer struct {
		PlainToken     string `json:"plainToken"`
		EncryptedToken string `json:"encryptedToken"`
	}
	if err := json.Unmarshal(d.Response, &answer); err != nil {
		return d, fmt.Errorf("zoomfake: url validation: the answer is not JSON: %w", err)
	}
	mac := hmac.New(sha256.New, []byte(s.opts.WebhookSecretToken))
	mac.Write([]byte(plain))
	want := hex.EncodeToString(mac.Sum(nil))
	if answer.PlainToken != plain || !hmac.Equal([]byte(answer.EncryptedToken), []byte(want)) {
		return d, errors.New("zoomfake: url validation: wrong plainToken or encryptedToken")
	}
	return d, nil
}

// meetingObject is the payload object of meeting events (Zoom sends the ID
// as a string here, unlike the REST API).
func (c *liveCall) object() map[string]any {
	return map[string]any{
		"id":         strconv.FormatInt(c.id, 10),
		"uuid":       c.uuid,
		"host_id":    c.hostID,
		"topic":      c.topic,
		"type":       c.typ,
		"start_time": c.start.UTC().Format(time.RFC3339),
		"timezone":   c.timezone,
		"duration":   int(c.duration / time.Minute),
	}
}

func (s *Server) payload(accountID string, object map[string]any) map[string]any {
	return map[string]any{"account_id": accountID, "object": object}
}

// The meeting hooks change the fake's state (calls in progress, their
// participants) and then deliver the event; without a webhook URL they fail
// with ErrNoWebhookURL and change nothing. A failed delivery leaves the
// state changed, as at Zoom.

// StartMeeting starts a call hosted by userID and sends meeting.started.
// meetingID names one of the user's scheduled meetings (or any meeting
// number); empty starts an ad-hoc call (type 1) with a new ID, found in the
// returned Delivery's MeetingID.
func (s *Server) StartMeeting(ctx context.Context, userID, meetingID string) (Delivery, error) {
	s.mu.Lock()
	if s.webhookURL == "" {
		s.mu.Unlock()
		return Delivery{}, ErrNoWebhookURL
	}
	u := s.users[userID]
	if u == nil {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("zoomfake: unknown user %q", userID)
	}
	c := &liveCall{hostID: u.id, typ: 1, topic: "Sandbox User's Zoom Meeting", uuid: newUUID(),
		timezone: "UTC", duration: 0, start: s.now(), participants: map[string]string{}}
	if meetingID == "" {
		c.id = newMeetingID()
	} else {
		id, err := strconv.ParseInt(meetingID, 10, 64)
		if err != nil || id <= 0 {
			s.mu.Unlock()
			return Delivery{}, fmt.Errorf("zoomfake: meeting ID %q is not a meeting number", meetingID)
		}
		c.id = id
		if i := slices.IndexFunc(u.meetings, func(m *Meeting) bool { return m.ID == id }); i >= 0 {
			m := u.meetings[i]
			c.typ, c.topic, c.uuid, c.timezone, c.duration = m.Type, m.Topic, m.UUID, m.TimeZone, m.Duration
		}
	}
	key := strconv.FormatInt(c.id, 10)
	if s.live[key] != nil {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("zoomfake: meeting %s is already in progress", key)
	}
	s.live[key] = c
	obj, account := c.object(), u.accountID
	s.mu.Unlock()
	d, err := s.newEvent(EventMeetingStarted, userID, key, s.payload(account, obj))
	if err != nil {
		return d, err
	}
	return s.deliver(ctx, d)
}

// EndMeeting ends a call hosted by userID and sends meeting.ended (with
// end_time). An empty meetingID ends the user's latest call in progress.
func (s *Server) EndMeeting(ctx context.Context, userID, meetingID string) (Delivery, error) {
	s.mu.Lock()
	if s.webhookURL == "" {
		s.mu.Unlock()
		return Delivery{}, ErrNoWebhookURL
	}
	u := s.users[userID]
	if meetingID == "" {
		var latest *liveCall
		for id, c := range s.live {
			if c.hostID == userID && (latest == nil || c.start.After(latest.start)) {
				latest, meetingID = c, id
			}
		}
	}
	c := s.live[meetingID]
	if u == nil || c == nil || c.hostID != userID {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("zoomfake: user %q hosts no call %q in progress", userID, meetingID)
	}
	delete(s.live, meetingID)
	obj := c.object()
	obj["end_time"] = s.now().UTC().Format(time.RFC3339)
	account := u.accountID
	s.mu.Unlock()
	d, err := s.newEvent(EventMeetingEnded, userID, meetingID, s.payload(account, obj))
	if err != nil {
		return d, err
	}
	return s.deliver(ctx, d)
}

// ParticipantJoined sends meeting.participant_joined: userID joins the call
// in progress meetingID. participant.id and participant.participant_user_id
// carry the Zoom user ID; participant.user_id is Zoom's per-meeting number.
func (s *Server) ParticipantJoined(ctx context.Context, userID, meetingID string) (Delivery, error) {
	return s.participant(ctx, userID, meetingID, true)
}

// ParticipantLeft sends meeting.participant_left: userID leaves the call in
// progress meetingID.
func (s *Server) ParticipantLeft(ctx context.Context, userID, meetingID string) (Delivery, error) {
	return s.participant(ctx, userID, meetingID, false)
}

func (s *Server) participant(ctx context.Context, userID, meetingID string, joined bool) (Delivery, error) {
	s.mu.Lock()
	if s.webhookURL == "" {
		s.mu.Unlock()
		return Delivery{}, ErrNoWebhookURL
	}
	c := s.live[meetingID]
	if c == nil {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("zoomfake: no call %q in progress", meetingID)
	}
	pid, in := c.participants[userID]
	switch {
	case joined && in:
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("zoomfake: %q is already in call %q", userID, meetingID)
	case !joined && !in:
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("zoomfake: %q is not in call %q", userID, meetingID)
	case joined:
		pid = strconv.Itoa(16778240 + len(c.participants)*1024)
		c.participants[userID] = pid
	default:
		delete(c.participants, userID)
	}
	account := DefaultAccountID
	if h := s.users[c.hostID]; h != nil {
		account = h.accountID
	}
	now := s.now().UTC().Format(time.RFC3339)
	p := map[string]any{
		"user_id":             pid,
		"user_name":           "Sandbox Participant",
		"id":                  userID,
		"participant_uuid":    newUUID(),
		"email":               emailOf(userID),
		"participant_user_id": userID,
	}
	event := EventParticipantJoined
	if joined {
		p["join_time"] = now
	} else {
		event = EventParticipantLeft
		p["leave_time"] = now
		p["leave_reason"] = "left the meeting"
	}
	obj := c.object()
	obj["participant"] = p
	s.mu.Unlock()
	d, err := s.newEvent(event, userID, meetingID, s.payload(account, obj))
	if err != nil {
		return d, err
	}
	return s.deliver(ctx, d)
}

// PresenceChanged sends user.presence_status_updated for userID with
// status (Zoom's values include Available, Away, Do_Not_Disturb,
// In_Meeting, Presenting, On_Phone_Call, In_Calendar_Event).
func (s *Server) PresenceChanged(ctx context.Context, userID, status string) (Delivery, error) {
	s.mu.Lock()
	u := s.users[userID]
	now := s.now()
	account := ""
	if u != nil {
		account = u.accountID
	}
	s.mu.Unlock()
	if u == nil {
		return Delivery{}, fmt.Errorf("zoomfake: unknown user %q", userID)
	}
	obj := map[string]any{
		"date_time":       now.UTC().Format(time.RFC3339),
		"email":           emailOf(userID),
		"id":              userID,
		"presence_status": status,
	}
	d, err := s.newEvent(EventPresenceUpdated, userID, "", s.payload(account, obj))
	if err != nil {
		return d, err
	}
	return s.deliver(ctx, d)
}
