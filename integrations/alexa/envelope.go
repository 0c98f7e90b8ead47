package alexa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Request types Alexa sends to a custom skill.
const (
	TypeLaunch       = "LaunchRequest"
	TypeIntent       = "IntentRequest"
	TypeSessionEnded = "SessionEndedRequest"
	// TypeSkillEventPrefix starts the type of skill events
	// (AlexaSkillEvent.SkillEnabled, …AccountLinked, …), which may be up to
	// SkillEventTolerance old.
	TypeSkillEventPrefix = "AlexaSkillEvent."
)

// Built-in intents the skill handles.
const (
	IntentHelp         = "AMAZON.HelpIntent"
	IntentStop         = "AMAZON.StopIntent"
	IntentCancel       = "AMAZON.CancelIntent"
	IntentFallback     = "AMAZON.FallbackIntent"
	IntentNavigateHome = "AMAZON.NavigateHomeIntent"
)

// SessionEndedRequest reasons.
const (
	ReasonUserInitiated        = "USER_INITIATED"
	ReasonError                = "ERROR"
	ReasonExceededMaxReprompts = "EXCEEDED_MAX_REPROMPTS"
)

// Limits Amazon sets on requests and responses.
const (
	// MaxRequestBytes is the largest request body ParseRequest and
	// Verifier.Verify accept (Alexa's are a few KB); read the body with
	// http.MaxBytesReader(w, r.Body, MaxRequestBytes).
	MaxRequestBytes = 256 << 10
	// MaxSpeechChars is the most characters an outputSpeech (text or SSML)
	// may hold.
	MaxSpeechChars = 8000
	// MaxCardChars is the most characters a card's title and content (or
	// text) may hold together.
	MaxCardChars = 8000
	// MaxResponseBytes is the largest response Alexa accepts (24 KB).
	MaxResponseBytes = 24 * 1024
)

// Request is the envelope Alexa POSTs to the skill endpoint.
type Request struct {
	Version string   `json:"version"`
	Session *Session `json:"session,omitempty"`
	Context Context  `json:"context"`
	Request Body     `json:"request"`
}

// Session is the envelope's session object. LaunchRequest, IntentRequest and
// SessionEndedRequest carry one; skill events do not.
type Session struct {
	New         bool           `json:"new"`
	SessionID   string         `json:"sessionId"`
	Application Application    `json:"application"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	User        User           `json:"user"`
}

// Application names the skill a request is for.
type Application struct {
	ApplicationID string `json:"applicationId"`
}

// User is the Alexa user. AccessToken is the token our OAuth server issued
// at account linking; it is absent when the person has not linked.
type User struct {
	UserID      string `json:"userId"`
	AccessToken string `json:"accessToken,omitempty"`
}

// Context is the envelope's context object.
type Context struct {
	System System `json:"System"`
}

// System is context.System: the skill, the user and the device.
type System struct {
	Application    Application `json:"application"`
	User           User        `json:"user"`
	Device         *Device     `json:"device,omitempty"`
	APIEndpoint    string      `json:"apiEndpoint,omitempty"`
	APIAccessToken string      `json:"apiAccessToken,omitempty"`
}

// Device is context.System.device.
type Device struct {
	DeviceID            string         `json:"deviceId"`
	SupportedInterfaces map[string]any `json:"supportedInterfaces,omitempty"`
}

// Body is the envelope's request object. Which fields are set depends on
// Type.
type Body struct {
	Type      string    `json:"type"`
	RequestID string    `json:"requestId"`
	Timestamp time.Time `json:"timestamp"`
	Locale    string    `json:"locale,omitempty"`
	// Reason and Error are set on a SessionEndedRequest.
	Reason string        `json:"reason,omitempty"`
	Error  *RequestError `json:"error,omitempty"`
	// DialogState and Intent are set on an IntentRequest.
	DialogState string  `json:"dialogState,omitempty"`
	Intent      *Intent `json:"intent,omitempty"`
}

// RequestError is the error of a SessionEndedRequest with reason ERROR.
type RequestError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Intent is the intent of an IntentRequest.
type Intent struct {
	Name               string          `json:"name"`
	ConfirmationStatus string          `json:"confirmationStatus,omitempty"`
	Slots              map[string]Slot `json:"slots,omitempty"`
}

// Slot is one slot of an intent. A slot the person did not fill has no
// Value.
type Slot struct {
	Name               string `json:"name"`
	Value              string `json:"value,omitempty"`
	ConfirmationStatus string `json:"confirmationStatus,omitempty"`
}

// AccessToken is the account-linking access token: context.System.user's,
// else session.user's; "" when the person has not linked their account.
func (r Request) AccessToken() string {
	if t := r.Context.System.User.AccessToken; t != "" {
		return t
	}
	if r.Session != nil {
		return r.Session.User.AccessToken
	}
	return ""
}

// ApplicationID is the skill the request is for:
// context.System.application's, else session.application's.
func (r Request) ApplicationID() string {
	if id := r.Context.System.Application.ApplicationID; id != "" {
		return id
	}
	if r.Session != nil {
		return r.Session.Application.ApplicationID
	}
	return ""
}

// UserID is the Alexa user ID (context.System.user's, else session.user's).
func (r Request) UserID() string {
	if id := r.Context.System.User.UserID; id != "" {
		return id
	}
	if r.Session != nil {
		return r.Session.User.UserID
	}
	return ""
}

// IntentName is the intent of an IntentRequest, "" for other requests.
func (r Request) IntentName() string {
	if r.Request.Type != TypeIntent || r.Request.Intent == nil {
		return ""
	}
	return r.Request.Intent.Name
}

// SlotValue is the value of the named slot of an IntentRequest and whether
// it was filled.
func (r Request) SlotValue(name string) (string, bool) {
	if r.Request.Intent == nil {
		return "", false
	}
	s, ok := r.Request.Intent.Slots[name]
	if !ok || s.Value == "" {
		return "", false
	}
	return s.Value, true
}

// ParseRequest decodes and checks a request envelope. It is strict about
// what the skill relies on and lenient about the rest (fields Amazon adds
// later are ignored). Every error wraps ErrMalformed and says what is wrong
// without quoting the body. It refuses a body that is empty, larger than
// MaxRequestBytes, not one JSON object, has no request.type or
// request.timestamp (or one that is not an ISO-8601 time), names no
// application ID or two different ones, or is an IntentRequest without an
// intent name.
func ParseRequest(body []byte) (Request, error) {
	var r Request
	if len(bytes.TrimSpace(body)) == 0 {
		return r, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if len(body) > MaxRequestBytes {
		return r, fmt.Errorf("%w: body larger than %d bytes", ErrMalformed, MaxRequestBytes)
	}
	if !utf8.Valid(body) {
		return r, fmt.Errorf("%w: body is not UTF-8", ErrMalformed)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Request{}, fmt.Errorf("%w: not a JSON request envelope: %s", ErrMalformed, jsonReason(err))
	}
	if strings.TrimSpace(r.Request.Type) == "" {
		return Request{}, fmt.Errorf("%w: request.type is missing", ErrMalformed)
	}
	if r.Request.Timestamp.IsZero() {
		return Request{}, fmt.Errorf("%w: request.timestamp is missing", ErrMalformed)
	}
	ctxID := r.Context.System.Application.ApplicationID
	var sessID string
	if r.Session != nil {
		sessID = r.Session.Application.ApplicationID
	}
	switch {
	case ctxID == "" && sessID == "":
		return Request{}, fmt.Errorf("%w: no application ID (context.System.application.applicationId)", ErrMalformed)
	case ctxID != "" && sessID != "" && ctxID != sessID:
		return Request{}, fmt.Errorf("%w: context and session name different application IDs", ErrMalformed)
	}
	if r.Request.Type == TypeIntent && (r.Request.Intent == nil || r.Request.Intent.Name == "") {
		return Request{}, fmt.Errorf("%w: IntentRequest without request.intent.name", ErrMalformed)
	}
	return r, nil
}

// jsonReason describes a decoding error without quoting the input.
func jsonReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var perr *time.ParseError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s is a JSON %s, want %s", typ.Field, typ.Value, typ.Type)
		}
		return fmt.Sprintf("a JSON %s where %s is expected", typ.Value, typ.Type)
	case errors.As(err, &perr), strings.Contains(err.Error(), "Time.UnmarshalJSON"):
		// The only time.Time is request.timestamp. The message of a
		// *time.ParseError quotes the input, so it is not passed on.
		return "request.timestamp is not an ISO-8601 time"
	default:
		return "cannot decode"
	}
}

// ResponseEnvelope is what the skill answers with.
type ResponseEnvelope struct {
	Version           string         `json:"version"`
	SessionAttributes map[string]any `json:"sessionAttributes,omitempty"`
	Response          Response       `json:"response"`
}

// Response is the envelope's response object.
type Response struct {
	OutputSpeech *OutputSpeech `json:"outputSpeech,omitempty"`
	Card         *Card         `json:"card,omitempty"`
	Reprompt     *Reprompt     `json:"reprompt,omitempty"`
	// ShouldEndSession nil leaves the session open without a reprompt
	// (Alexa's default behaviour differs by device); Speak sets true.
	ShouldEndSession *bool `json:"shouldEndSession,omitempty"`
}

// Output speech types.
const (
	SpeechPlainText = "PlainText"
	SpeechSSML      = "SSML"
)

// OutputSpeech is what Alexa says: Text when Type is PlainText, SSML
// ("<speak>…</speak>") when Type is SSML.
type OutputSpeech struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
	SSML string `json:"ssml,omitempty"`
}

// Reprompt is said when the person does not answer an open session.
type Reprompt struct {
	OutputSpeech *OutputSpeech `json:"outputSpeech"`
}

// Card types.
const (
	CardSimple      = "Simple"
	CardLinkAccount = "LinkAccount"
)

// Card is shown in the Alexa app: Simple (Title, Content) or LinkAccount
// (no fields; starts account linking).
type Card struct {
	Type    string `json:"type"`
	Title   string `json:"title,omitempty"`
	Content string `json:"content,omitempty"`
}

// Errors about responses.
var (
	// ErrResponseTooLarge means a response breaks one of Amazon's limits
	// (MaxSpeechChars, MaxCardChars, MaxResponseBytes).
	ErrResponseTooLarge = errors.New("alexa: response exceeds Amazon's limits")
)

// Speak answers with plain-text speech and ends the session. Text longer
// than MaxSpeechChars is cut at the last space before the limit.
func Speak(text string) ResponseEnvelope {
	end := true
	return ResponseEnvelope{Version: "1.0", Response: Response{
		OutputSpeech:     plain(text),
		ShouldEndSession: &end,
	}}
}

// Ask answers with speech and keeps the session open, saying reprompt if
// the person says nothing. Both are cut to MaxSpeechChars like Speak's.
func Ask(text, reprompt string) ResponseEnvelope {
	end := false
	return ResponseEnvelope{Version: "1.0", Response: Response{
		OutputSpeech:     plain(text),
		Reprompt:         &Reprompt{OutputSpeech: plain(reprompt)},
		ShouldEndSession: &end,
	}}
}

// LinkAccountCard answers a person who has not linked their account (or
// whose token is no longer valid): text is spoken, a LinkAccount card
// appears in the Alexa app, and the session ends.
func LinkAccountCard(text string) ResponseEnvelope {
	e := Speak(text)
	e.Response.Card = &Card{Type: CardLinkAccount}
	return e
}

// Empty is the answer to a SessionEndedRequest, which cannot speak.
func Empty() ResponseEnvelope {
	return ResponseEnvelope{Version: "1.0"}
}

// WithSimpleCard returns e with a Simple card; title and content are cut so
// that together they fit MaxCardChars.
func (e ResponseEnvelope) WithSimpleCard(title, content string) ResponseEnvelope {
	title = Truncate(title, MaxCardChars)
	content = Truncate(content, MaxCardChars-utf8.RuneCountInString(title))
	e.Response.Card = &Card{Type: CardSimple, Title: title, Content: content}
	return e
}

func plain(text string) *OutputSpeech {
	return &OutputSpeech{Type: SpeechPlainText, Text: Truncate(text, MaxSpeechChars)}
}

// Truncate cuts s to at most max characters (runes), at the last space
// before the limit when there is one.
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	runes := []rune(s)[:max]
	cut := string(runes)
	if i := strings.LastIndexByte(cut, ' '); i > 0 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:")
}

// Check reports whether e keeps Amazon's limits: each speech at most
// MaxSpeechChars, the card at most MaxCardChars, the speech types
// consistent, and the JSON at most MaxResponseBytes.
func (e ResponseEnvelope) Check() error {
	_, err := e.Marshal()
	return err
}

// Marshal encodes e after checking Amazon's limits; an error wraps
// ErrResponseTooLarge (or says which speech is inconsistent).
func (e ResponseEnvelope) Marshal() ([]byte, error) {
	if err := checkSpeech("outputSpeech", e.Response.OutputSpeech); err != nil {
		return nil, err
	}
	if e.Response.Reprompt != nil {
		if err := checkSpeech("reprompt", e.Response.Reprompt.OutputSpeech); err != nil {
			return nil, err
		}
	}
	if c := e.Response.Card; c != nil {
		if n := utf8.RuneCountInString(c.Title) + utf8.RuneCountInString(c.Content); n > MaxCardChars {
			return nil, fmt.Errorf("%w: card has %d characters (max %d)", ErrResponseTooLarge, n, MaxCardChars)
		}
	}
	if e.Version == "" {
		e.Version = "1.0"
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("alexa: encoding response: %w", err)
	}
	if len(b) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: response is %d bytes (max %d)", ErrResponseTooLarge, len(b), MaxResponseBytes)
	}
	return b, nil
}

func checkSpeech(where string, s *OutputSpeech) error {
	if s == nil {
		return nil
	}
	var text string
	switch s.Type {
	case SpeechPlainText:
		text = s.Text
	case SpeechSSML:
		text = s.SSML
	default:
		return fmt.Errorf("alexa: %s has type %q, want PlainText or SSML", where, s.Type)
	}
	if n := utf8.RuneCountInString(text); n > MaxSpeechChars {
		return fmt.Errorf("%w: %s has %d characters (max %d)", ErrResponseTooLarge, where, n, MaxSpeechChars)
	}
	return nil
}

// WriteResponse writes e as the 200 answer with Content-Type
// application/json;charset=UTF-8. A response breaking Amazon's limits is
// not sent: the error is returned and a 500 written instead.
func WriteResponse(w http.ResponseWriter, e ResponseEnvelope) error {
	b, err := e.Marshal()
	if err != nil {
		http.Error(w, "response too large", http.StatusInternalServerError)
		return err
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}
