package slackfake

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Delivery headers, as Slack names them.
const (
	HeaderSignature   = "X-Slack-Signature"
	HeaderTimestamp   = "X-Slack-Request-Timestamp"
	HeaderRetryNum    = "X-Slack-Retry-Num"
	HeaderRetryReason = "X-Slack-Retry-Reason"
)

// maxDeliveryResponse is how much of our endpoint's answer a Delivery keeps.
const maxDeliveryResponse = 1 << 10

// DeliveryKind says what a Delivery carried.
type DeliveryKind string

// The kinds of deliveries.
const (
	// KindURLVerification is an Events API url_verification challenge.
	KindURLVerification DeliveryKind = "url_verification"
	// KindAppHomeOpened is an event_callback with an app_home_opened event.
	KindAppHomeOpened DeliveryKind = "app_home_opened"
	// KindMessageIM is an event_callback with a message event in the App
	// Home DM (channel_type "im").
	KindMessageIM DeliveryKind = "message.im"
	// KindBlockActions is a block_actions interaction from the Home view.
	KindBlockActions DeliveryKind = "block_actions"
	// KindRaw is a hand-made delivery: ClickRaw, SendSigned, SendRaw,
	// SendWrongSignature, SendTampered.
	KindRaw DeliveryKind = "raw"
)

// Errors the delivery methods return.
var (
	// ErrNoEventsURL means no Events API Request URL is set
	// (Options.EventsURL or Server.SetEventsURL).
	ErrNoEventsURL = errors.New("slackfake: no Events API request URL set")
	// ErrNoInteractivityURL means no Interactivity Request URL is set
	// (Options.InteractivityURL or Server.SetInteractivityURL).
	ErrNoInteractivityURL = errors.New("slackfake: no interactivity request URL set")
	// ErrNoSuchButton means the person's published Home view (if any) has
	// no button with that action_id.
	ErrNoSuchButton = errors.New("slackfake: the published Home view has no such button")
	// ErrUnknownUser means the user ID names no fake person.
	ErrUnknownUser = errors.New("slackfake: unknown user")

	errTooManyRedirects = errors.New("too_many_redirects")
)

// Delivery is one request the fake sent to the app's Events API or
// Interactivity Request URL.
type Delivery struct {
	Kind    DeliveryKind
	UserID  string // the person the delivery is about ("" for url_verification)
	EventID string // event_id of an event_callback, else ""
	URL     string
	// ContentType is the request's Content-Type: application/json for
	// events, application/x-www-form-urlencoded for interactions.
	ContentType string
	// Body is the request body, byte for byte as sent and signed.
	Body []byte
	// Payload is the JSON document: the body of an event, the payload
	// form field of an interaction (nil when the body holds none).
	Payload json.RawMessage
	// Header holds the request headers sent (X-Slack-Signature,
	// X-Slack-Request-Timestamp, and the retry headers on a redelivery).
	Header http.Header
	// Timestamp is the X-Slack-Request-Timestamp sent, in Unix seconds (0
	// when the header was left out).
	Timestamp int64
	// RetryNum is the X-Slack-Retry-Num sent, 0 for a first delivery.
	RetryNum int
	// Time is the fake clock when the delivery was sent.
	Time time.Time
	// Status is what our endpoint answered (0 when the request failed),
	// Response the first KB of its body and ResponseHeader its headers.
	Status         int
	Response       []byte
	ResponseHeader http.Header
}

// RawRequest is a delivery built by hand, for tests of what Slack would
// never send or what an attacker would; see Server.SendRaw. The zero value
// of each field means "as Slack would do it".
type RawRequest struct {
	// URL is where to POST. Empty means the Events API URL for a JSON body
	// and the Interactivity URL for any other.
	URL string
	// ContentType is the Content-Type; empty means application/json.
	ContentType string
	// Body is sent as is.
	Body []byte
	// Timestamp is X-Slack-Request-Timestamp; zero means the fake clock.
	Timestamp time.Time
	// Secret, when set, signs instead of the signing secret (a wrong
	// signature).
	Secret string
	// SignedBody, when not nil, is what the signature covers instead of
	// Body (a body changed after signing).
	SignedBody []byte
	// Signature, when set, is sent verbatim as X-Slack-Signature.
	Signature string
	// OmitSignature and OmitTimestamp leave those headers out.
	OmitSignature, OmitTimestamp bool
	// Header adds or overrides request headers.
	Header http.Header
	// UserID is recorded in the Delivery.
	UserID string
}

// Sign returns the X-Slack-Signature Slack sends for body at ts with secret:
// "v0=" + hex(HMAC-SHA256(secret, "v0:{ts}:{body}")).
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Deliveries returns every delivery so far, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = d.clone()
	}
	return out
}

// WaitForDelivery blocks until at least n deliveries of kind (any kind when
// kind is "") have been sent, or ctx is done. Deliveries are synchronous,
// so this is for deliveries another goroutine starts (the sandbox pages).
func (s *Server) WaitForDelivery(ctx context.Context, kind DeliveryKind, n int) error {
	for {
		s.mu.Lock()
		count := 0
		for _, d := range s.deliveries {
			if kind == "" || d.Kind == kind {
				count++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if count >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (d Delivery) clone() Delivery {
	d.Body = slices.Clone(d.Body)
	d.Payload = slices.Clone(d.Payload)
	d.Header = d.Header.Clone()
	d.Response = slices.Clone(d.Response)
	d.ResponseHeader = d.ResponseHeader.Clone()
	return d
}

// isJSON reports whether a Content-Type is JSON.
func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}

// send POSTs d.Body as r says, signing it, and records the delivery. It
// never holds s.mu during the request, so our endpoint may call the fake
// back (views.publish, chat.postMessage) before it answers.
func (s *Server) send(ctx context.Context, d Delivery, r RawRequest) (Delivery, error) {
	s.mu.Lock()
	now := s.now()
	target := r.URL
	if target == "" {
		switch {
		case d.Kind == KindBlockActions, d.Kind == KindRaw && !isJSON(d.ContentType):
			target = s.interactivityURL
		default:
			target = s.eventsURL
		}
	}
	s.mu.Unlock()
	if target == "" {
		if d.Kind == KindBlockActions || !isJSON(d.ContentType) {
			return d, ErrNoInteractivityURL
		}
		return d, ErrNoEventsURL
	}
	ts := r.Timestamp
	if ts.IsZero() {
		ts = now
	}
	d.URL, d.Time, d.Status, d.Response, d.ResponseHeader = target, now, 0, nil, nil
	d.Header = http.Header{}
	d.Header.Set("Content-Type", d.ContentType)
	d.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	d.Timestamp = 0
	if !r.OmitTimestamp {
		d.Timestamp = ts.Unix()
		d.Header.Set(HeaderTimestamp, strconv.FormatInt(d.Timestamp, 10))
	}
	if !r.OmitSignature {
		sig := r.Signature
		if sig == "" {
			secret := cmp.Or(r.Secret, s.signingSecret)
			signed := d.Body
			if r.SignedBody != nil {
				signed = r.SignedBody
			}
			sig = Sign(secret, ts.Unix(), signed)
		}
		d.Header.Set(HeaderSignature, sig)
	}
	for k, vs := range r.Header {
		d.Header[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	d.RetryNum, _ = strconv.Atoi(d.Header.Get(HeaderRetryNum))

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(d.Body))
	if err != nil {
		return d, fmt.Errorf("slackfake: %s delivery: %w", d.Kind, err)
	}
	req.Header = d.Header.Clone()
	resp, err := s.client.Do(req)
	if err == nil {
		d.Status = resp.StatusCode
		d.ResponseHeader = resp.Header.Clone()
		d.Response, _ = io.ReadAll(io.LimitReader(resp.Body, maxDeliveryResponse))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d.clone())
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if err != nil {
		return d, fmt.Errorf("slackfake: %s delivery: %w", d.Kind, err)
	}
	return d, nil
}

// SendRaw sends a hand-made delivery (recorded as KindRaw); see RawRequest.
func (s *Server) SendRaw(ctx context.Context, r RawRequest) (Delivery, error) {
	d := Delivery{
		Kind: KindRaw, UserID: r.UserID, ContentType: cmp.Or(r.ContentType, "application/json"),
		Body: slices.Clone(r.Body),
	}
	d.Payload = payloadOf(d.ContentType, d.Body)
	return s.send(ctx, d, r)
}

// payloadOf extracts the JSON document of a body: the body itself when it
// is JSON, the payload form field of a form.
func payloadOf(contentType string, body []byte) json.RawMessage {
	if isJSON(contentType) {
		if json.Valid(body) {
			return slices.Clone(body)
		}
		return nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || !json.Valid([]byte(form.Get("payload"))) {
		return nil
	}
	return json.RawMessage(form.Get("payload"))
}

// SendSigned POSTs body, correctly signed for timestamp ts (zero: the fake
// clock), to url (empty: the Events API URL for JSON, the Interactivity
// URL otherwise): for example with a timestamp six minutes old, or a body
// Slack would never send (not JSON, too large, an unknown event type).
func (s *Server) SendSigned(ctx context.Context, url, contentType string, body []byte, ts time.Time) (Delivery, error) {
	return s.SendRaw(ctx, RawRequest{URL: url, ContentType: contentType, Body: body, Timestamp: ts})
}

// SendWrongSignature POSTs body with a current timestamp and a well-formed
// signature made with another secret, as a forger would.
func (s *Server) SendWrongSignature(ctx context.Context, url, contentType string, body []byte) (Delivery, error) {
	return s.SendRaw(ctx, RawRequest{URL: url, ContentType: contentType, Body: body, Secret: "not-" + s.signingSecret})
}

// SendTampered sends body to d's URL with the signature of d's own body
// (at a fresh timestamp): a genuine delivery whose body was changed on the
// way.
func (s *Server) SendTampered(ctx context.Context, d Delivery, body []byte) (Delivery, error) {
	return s.SendRaw(ctx, RawRequest{
		URL: d.URL, ContentType: d.ContentType, Body: body, SignedBody: slices.Clone(d.Body), UserID: d.UserID,
	})
}

// Replay sends d again with exactly the same headers (timestamp and
// signature included) and body, as an attacker replaying a captured
// request would. Within five minutes the signature still verifies; the app
// must recognise the event_id (or the interaction) it already handled.
func (s *Server) Replay(ctx context.Context, d Delivery) (Delivery, error) {
	r := RawRequest{
		URL: d.URL, ContentType: d.ContentType, Body: d.Body, Header: d.Header.Clone(),
		OmitSignature: d.Header.Get(HeaderSignature) == "", OmitTimestamp: d.Header.Get(HeaderTimestamp) == "",
	}
	r.Signature = d.Header.Get(HeaderSignature)
	r.Timestamp = time.Unix(d.Timestamp, 0)
	d.Body = slices.Clone(d.Body)
	return s.send(ctx, d, r)
}

// Redeliver sends d's body again as Slack's retries do: the same body (and
// so the same event_id), a new timestamp and signature, and the headers
// X-Slack-Retry-Num: retryNum and X-Slack-Retry-Reason: http_timeout.
func (s *Server) Redeliver(ctx context.Context, d Delivery, retryNum int) (Delivery, error) {
	r := RawRequest{URL: d.URL, ContentType: d.ContentType, Header: http.Header{
		HeaderRetryNum:    {strconv.Itoa(retryNum)},
		HeaderRetryReason: {"http_timeout"},
	}}
	d.Body = slices.Clone(d.Body)
	return s.send(ctx, d, r)
}

// URLVerification sends the url_verification challenge Slack sends when
// the Request URL is saved, and checks the answer: HTTP 200 whose body is
// the challenge (text/plain), challenge=… (form) or {"challenge":…} (JSON).
func (s *Server) URLVerification(ctx context.Context) (Delivery, error) {
	challenge := randToken(48)
	body, err := json.Marshal(struct {
		Token     string `json:"token"`
		Challenge string `json:"challenge"`
		Type      string `json:"type"`
	}{s.verificationToken, challenge, "url_verification"})
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Kind: KindURLVerification, ContentType: "application/json", Body: body, Payload: body}
	d, err = s.send(ctx, d, RawRequest{})
	if err != nil {
		return d, err
	}
	if d.Status != http.StatusOK {
		return d, fmt.Errorf("slackfake: url_verification: HTTP %d, want 200", d.Status)
	}
	if challengeAnswer(d.ResponseHeader.Get("Content-Type"), d.Response) != challenge {
		return d, fmt.Errorf("slackfake: url_verification: the answer %q does not echo the challenge", d.Response)
	}
	return d, nil
}

// challengeAnswer reads the challenge out of a url_verification answer.
func challengeAnswer(contentType string, body []byte) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/json":
		var v struct {
			Challenge string `json:"challenge"`
		}
		_ = json.Unmarshal(body, &v)
		return v.Challenge
	case "application/x-www-form-urlencoded":
		q, _ := url.ParseQuery(string(body))
		return q.Get("challenge")
	}
	return strings.TrimSpace(string(body))
}

// eventCallback is the Events API wrapper, fields in Slack's order.
type eventCallback struct {
	Token               string          `json:"token"`
	TeamID              string          `json:"team_id"`
	ContextTeamID       string          `json:"context_team_id"`
	ContextEnterpriseID *string         `json:"context_enterprise_id"`
	APIAppID            string          `json:"api_app_id"`
	Event               any             `json:"event"`
	Type                string          `json:"type"`
	EventID             string          `json:"event_id"`
	EventTime           int64           `json:"event_time"`
	Authorizations      []authorization `json:"authorizations"`
	IsExtSharedChannel  bool            `json:"is_ext_shared_channel"`
	EventContext        string          `json:"event_context"`
	AuthedUsers         []string        `json:"authed_users"`
}

type authorization struct {
	EnterpriseID        *string `json:"enterprise_id"`
	TeamID              string  `json:"team_id"`
	UserID              string  `json:"user_id"`
	IsBot               bool    `json:"is_bot"`
	IsEnterpriseInstall bool    `json:"is_enterprise_install"`
}

// wrap builds an event_callback body for an event about p; s.mu must be held.
func (s *Server) wrap(p *person, event any, now time.Time) ([]byte, string, error) {
	tm := s.teams[p.teamID]
	s.eventSeq++
	id := fmt.Sprintf("Ev%s%04X", strings.ToUpper(randToken(6)), s.eventSeq%0x10000)
	body, err := json.Marshal(eventCallback{
		Token: s.verificationToken, TeamID: tm.id, ContextTeamID: tm.id, APIAppID: s.appID,
		Event: event, Type: "event_callback", EventID: id, EventTime: now.Unix(),
		Authorizations: []authorization{{TeamID: tm.id, UserID: tm.botUserID, IsBot: true}},
		EventContext:   "4-" + randToken(40),
		AuthedUsers:    []string{tm.botUserID},
	})
	return body, id, err
}

// appHomeOpened is the app_home_opened inner event.
type appHomeOpened struct {
	Type    string          `json:"type"`
	User    string          `json:"user"`
	Channel string          `json:"channel"`
	Tab     string          `json:"tab"`
	View    json.RawMessage `json:"view,omitempty"`
	EventTS string          `json:"event_ts"`
}

// OpenAppHome delivers app_home_opened as when the person opens the app's
// App Home on tab "home" (empty means "home") or "messages": the event
// carries the DM channel and, when a Home view was published, that view.
func (s *Server) OpenAppHome(ctx context.Context, userID, tab string) (Delivery, error) {
	tab = cmp.Or(tab, "home")
	if tab != "home" && tab != "messages" {
		return Delivery{}, fmt.Errorf("slackfake: OpenAppHome: tab %q is neither home nor messages", tab)
	}
	s.mu.Lock()
	p := s.users[userID]
	if p == nil {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("%w %q", ErrUnknownUser, userID)
	}
	if s.eventsURL == "" {
		s.mu.Unlock()
		return Delivery{}, ErrNoEventsURL
	}
	now := s.now()
	ev := appHomeOpened{Type: "app_home_opened", User: p.id, Channel: dmChannel(p), Tab: tab, EventTS: s.nextTS(now)}
	if p.homeView != nil {
		ev.View = slices.Clone(p.homeView)
	}
	body, id, err := s.wrap(p, ev, now)
	s.mu.Unlock()
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Kind: KindAppHomeOpened, UserID: userID, EventID: id, ContentType: "application/json", Body: body, Payload: body}
	return s.send(ctx, d, RawRequest{})
}

// messageEvent is the message inner event of message.im, fields in Slack's
// order.
type messageEvent struct {
	ClientMsgID  string `json:"client_msg_id"`
	Type         string `json:"type"`
	Text         string `json:"text"`
	User         string `json:"user"`
	TS           string `json:"ts"`
	Blocks       []any  `json:"blocks"`
	Team         string `json:"team"`
	ThreadTS     string `json:"thread_ts,omitempty"`
	ParentUserID string `json:"parent_user_id,omitempty"`
	Channel      string `json:"channel"`
	EventTS      string `json:"event_ts"`
	ChannelType  string `json:"channel_type"`
}

// SendIM delivers a message.im event as when the person writes text in the
// App Home Messages tab, and records the message in the DM (Conversation).
// As in Slack, the event's text has &, < and > escaped as &amp;, &lt; and
// &gt;; its rich_text block carries the text as typed.
func (s *Server) SendIM(ctx context.Context, userID, text string) (Delivery, error) {
	return s.SendIMInThread(ctx, userID, "", text)
}

// SendIMInThread is SendIM for a reply in the thread whose parent has ts
// threadTS (empty: a top-level message).
func (s *Server) SendIMInThread(ctx context.Context, userID, threadTS, text string) (Delivery, error) {
	s.mu.Lock()
	p := s.users[userID]
	if p == nil {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("%w %q", ErrUnknownUser, userID)
	}
	if s.eventsURL == "" {
		s.mu.Unlock()
		return Delivery{}, ErrNoEventsURL
	}
	now := s.now()
	ts := s.nextTS(now)
	ev := messageEvent{
		ClientMsgID: uuid(), Type: "message", Text: slackEscape(text), User: p.id, TS: ts,
		Blocks: []any{map[string]any{
			"type": "rich_text", "block_id": randToken(5),
			"elements": []any{map[string]any{
				"type":     "rich_text_section",
				"elements": []any{map[string]any{"type": "text", "text": text}},
			}},
		}},
		Team: p.teamID, ThreadTS: threadTS, Channel: dmChannel(p), EventTS: ts, ChannelType: "im",
	}
	if threadTS != "" {
		ev.ParentUserID = p.id
		for _, m := range p.messages {
			if m.TS == threadTS {
				ev.ParentUserID = m.User
			}
		}
	}
	p.messages = append(p.messages, Message{
		Channel: ev.Channel, Text: ev.Text, TS: ts, ThreadTS: threadTS, User: p.id, Time: now,
	})
	body, id, err := s.wrap(p, ev, now)
	s.mu.Unlock()
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Kind: KindMessageIM, UserID: userID, EventID: id, ContentType: "application/json", Body: body, Payload: body}
	return s.send(ctx, d, RawRequest{})
}

// blockActions is a block_actions payload from the Home tab, fields in
// Slack's order.
type blockActions struct {
	Type                string          `json:"type"`
	User                payloadUser     `json:"user"`
	APIAppID            string          `json:"api_app_id"`
	Token               string          `json:"token"`
	Container           viewContainer   `json:"container"`
	TriggerID           string          `json:"trigger_id"`
	Team                payloadTeam     `json:"team"`
	Enterprise          *struct{}       `json:"enterprise"`
	IsEnterpriseInstall bool            `json:"is_enterprise_install"`
	View                json.RawMessage `json:"view"`
	Actions             []buttonAction  `json:"actions"`
}

type payloadUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	TeamID   string `json:"team_id"`
}

type payloadTeam struct {
	ID     string `json:"id"`
	Domain string `json:"domain"`
}

type viewContainer struct {
	Type   string `json:"type"`
	ViewID string `json:"view_id"`
}

type buttonAction struct {
	ActionID string          `json:"action_id"`
	BlockID  string          `json:"block_id"`
	Text     json.RawMessage `json:"text,omitempty"`
	Value    string          `json:"value,omitempty"`
	Style    string          `json:"style,omitempty"`
	URL      string          `json:"url,omitempty"`
	Type     string          `json:"type"`
	ActionTS string          `json:"action_ts"`
}

// ClickPayload returns the block_actions payload (JSON) ClickButton would
// send for the person's current Home view, without sending it: a test can
// keep it to send later with ClickRaw (a stale view) or change it (an
// unknown action_id).
func (s *Server) ClickPayload(userID, actionID string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	payload, _, err := s.clickPayload(userID, actionID)
	return payload, err
}

// clickPayload builds a block_actions payload; s.mu must be held.
func (s *Server) clickPayload(userID, actionID string) ([]byte, button, error) {
	p := s.users[userID]
	if p == nil {
		return nil, button{}, fmt.Errorf("%w %q", ErrUnknownUser, userID)
	}
	if p.homeView == nil {
		return nil, button{}, fmt.Errorf("%w: %s has no published Home view", ErrNoSuchButton, userID)
	}
	buttons := viewButtons(p.homeView)
	i := slices.IndexFunc(buttons, func(b button) bool { return b.ActionID == actionID })
	if i < 0 {
		return nil, button{}, fmt.Errorf("%w: no button %q in %s's Home view", ErrNoSuchButton, actionID, userID)
	}
	b := buttons[i]
	tm := s.teams[p.teamID]
	payload, err := json.Marshal(blockActions{
		Type:      "block_actions",
		User:      payloadUser{ID: p.id, Username: handle(p.name), Name: handle(p.name), TeamID: tm.id},
		APIAppID:  s.appID,
		Token:     s.verificationToken,
		Container: viewContainer{Type: "view", ViewID: p.homeViewID},
		TriggerID: randDigits(13) + "." + randDigits(13) + "." + randHex(16),
		Team:      payloadTeam{ID: tm.id, Domain: handle(tm.name)},
		View:      slices.Clone(p.homeView),
		Actions: []buttonAction{{
			ActionID: b.ActionID, BlockID: b.BlockID, Text: b.Text, Value: b.Value, Style: b.Style,
			URL: b.URL, Type: "button", ActionTS: s.nextTS(s.now()),
		}},
	})
	return payload, b, err
}

// handle turns a display name into a Slack-style handle or domain.
func handle(name string) string {
	return strings.ToLower(strings.Join(strings.Fields(name), "-"))
}

// ClickButton delivers block_actions as when the person clicks the button
// with actionID in their published Home view: the payload references that
// view (container view_id, the view with its hash and private_metadata)
// and carries the button's block_id and value. It returns ErrNoSuchButton
// when the view has no such button (or no view was published).
func (s *Server) ClickButton(ctx context.Context, userID, actionID string) (Delivery, error) {
	d, _, err := s.clickButton(ctx, userID, actionID)
	return d, err
}

func (s *Server) clickButton(ctx context.Context, userID, actionID string) (Delivery, button, error) {
	s.mu.Lock()
	if s.interactivityURL == "" {
		s.mu.Unlock()
		return Delivery{}, button{}, ErrNoInteractivityURL
	}
	payload, b, err := s.clickPayload(userID, actionID)
	s.mu.Unlock()
	if err != nil {
		return Delivery{}, b, err
	}
	d := Delivery{
		Kind: KindBlockActions, UserID: userID, ContentType: "application/x-www-form-urlencoded",
		Body: []byte(url.Values{"payload": {string(payload)}}.Encode()), Payload: payload,
	}
	d, err = s.send(ctx, d, RawRequest{})
	return d, b, err
}

// ClickRaw delivers an arbitrary interaction payload, form-encoded and
// signed as Slack does (payload=<JSON>), to the Interactivity URL: for
// unknown action IDs, stale views or payload types the app does not
// handle. It is recorded as KindRaw.
func (s *Server) ClickRaw(ctx context.Context, userID string, payloadJSON []byte) (Delivery, error) {
	d := Delivery{
		Kind: KindRaw, UserID: userID, ContentType: "application/x-www-form-urlencoded",
		Body: []byte(url.Values{"payload": {string(payloadJSON)}}.Encode()),
	}
	if json.Valid(payloadJSON) {
		d.Payload = slices.Clone(payloadJSON)
	}
	return s.send(ctx, d, RawRequest{})
}

// randToken returns n random letters and digits.
func randToken(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// uuid returns a random version-4 UUID, as client_msg_id carries.
func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
