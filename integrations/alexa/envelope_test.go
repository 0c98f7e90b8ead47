package alexa_test

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
)

// The envelopes in testdata/requests are in the shapes Amazon documents;
// they carry skill ID alexafake.DefaultSkillID and timestamp
// 2026-05-01T09:00:00Z.
func TestParseRequestTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/requests/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := alexa.ParseRequest(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if r.ApplicationID() != "amzn1.ask.skill.00000000-0000-4000-8000-000000000001" {
			t.Errorf("%s: application ID %q", f, r.ApplicationID())
		}
		unlinked := strings.Contains(f, "unlinked")
		if (r.AccessToken() == "") != unlinked {
			t.Errorf("%s: access token present %v", f, r.AccessToken() != "")
		}
	}
	b, _ := os.ReadFile("testdata/requests/start_focus_hours_minutes.json")
	r, _ := alexa.ParseRequest(b)
	if r.IntentName() != "StartFocusIntent" || r.Request.Locale != "en-US" || r.UserID() == "" {
		t.Errorf("parsed %+v", r.Request)
	}
	v, ok := r.SlotValue("duration")
	d, err := alexa.ParseDuration(v)
	if !ok || err != nil || d.Minutes() != 90 {
		t.Errorf("duration %q → %v %v", v, d, err)
	}
	b, _ = os.ReadFile("testdata/requests/session_ended_error.json")
	r, _ = alexa.ParseRequest(b)
	if r.Request.Reason != alexa.ReasonError || r.Request.Error == nil || r.Request.Error.Type != "INVALID_RESPONSE" {
		t.Errorf("session ended: %+v", r.Request)
	}
}

func TestAccessTokenFallsBackToSession(t *testing.T) {
	b := `{"version":"1.0","session":{"application":{"applicationId":"s"},"user":{"userId":"u","accessToken":"from-session"}},
		"context":{"System":{"application":{"applicationId":"s"},"user":{"userId":"u"}}},
		"request":{"type":"LaunchRequest","requestId":"r","timestamp":"2026-05-01T09:00:00Z"}}`
	r, err := alexa.ParseRequest([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if r.AccessToken() != "from-session" {
		t.Errorf("token %q", r.AccessToken())
	}
	// Application ID from the session alone.
	b = `{"session":{"application":{"applicationId":"s"},"user":{"userId":"u"}},"context":{"System":{}},
		"request":{"type":"LaunchRequest","timestamp":"2026-05-01T09:00:00Z"}}`
	if r, err := alexa.ParseRequest([]byte(b)); err != nil || r.ApplicationID() != "s" {
		t.Errorf("%q %v", r.ApplicationID(), err)
	}
}

func TestParseRequestErrors(t *testing.T) {
	const ok = `"context":{"System":{"application":{"applicationId":"amzn1.ask.skill.x"}}}`
	cases := []struct {
		name, body, want string
	}{
		{"empty", "", "empty body"},
		{"spaces", "  \n", "empty body"},
		{"not JSON", "hello", "not a JSON request envelope"},
		{"array", "[1,2]", "not a JSON request envelope"},
		{"truncated", `{"version":"1.0","request":{"type":"Launch`, "not a JSON request envelope"},
		{"trailing data", `{"request":{"type":"LaunchRequest","timestamp":"2026-05-01T09:00:00Z"},` + ok + `} {}`, "not a JSON request envelope"},
		{"wrong type", `{"request":"LaunchRequest",` + ok + `}`, "not a JSON request envelope"},
		{"no request type", `{"request":{"timestamp":"2026-05-01T09:00:00Z"},` + ok + `}`, "request.type is missing"},
		{"no timestamp", `{"request":{"type":"LaunchRequest"},` + ok + `}`, "request.timestamp is missing"},
		{"bad timestamp", `{"request":{"type":"LaunchRequest","timestamp":"yesterday secret-token"},` + ok + `}`, "request.timestamp is not an ISO-8601 time"},
		{"numeric timestamp", `{"request":{"type":"LaunchRequest","timestamp":1714554000},` + ok + `}`, "request.timestamp is not an ISO-8601 time"},
		{"no application ID", `{"request":{"type":"LaunchRequest","timestamp":"2026-05-01T09:00:00Z"}}`, "no application ID"},
		{"two application IDs", `{"session":{"application":{"applicationId":"other"}},"request":{"type":"LaunchRequest","timestamp":"2026-05-01T09:00:00Z"},` + ok + `}`, "different application IDs"},
		{"intent without name", `{"request":{"type":"IntentRequest","timestamp":"2026-05-01T09:00:00Z","intent":{}},` + ok + `}`, "without request.intent.name"},
		{"intent missing", `{"request":{"type":"IntentRequest","timestamp":"2026-05-01T09:00:00Z"},` + ok + `}`, "without request.intent.name"},
		{"not UTF-8", "{\"request\":{\"type\":\"\xff\"}}", "not UTF-8"},
		{"too large", `{"x":"` + strings.Repeat("a", alexa.MaxRequestBytes) + `"}`, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alexa.ParseRequest([]byte(tc.body))
			if !errors.Is(err, alexa.ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %q, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "yesterday") {
				t.Errorf("error quotes the body: %q", err)
			}
		})
	}
}

func TestResponses(t *testing.T) {
	b, err := alexa.Speak("You're in focus until 3:15.").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"1.0","response":{"outputSpeech":{"type":"PlainText","text":"You're in focus until 3:15."},"shouldEndSession":true}}`
	if string(b) != want {
		t.Errorf("Speak:\n%s\nwant\n%s", b, want)
	}
	b, _ = alexa.LinkAccountCard("Link your account in the Alexa app.").Marshal()
	if !strings.Contains(string(b), `"card":{"type":"LinkAccount"}`) {
		t.Errorf("LinkAccountCard: %s", b)
	}
	b, _ = alexa.Empty().Marshal()
	if string(b) != `{"version":"1.0","response":{}}` {
		t.Errorf("Empty: %s", b)
	}
	b, _ = alexa.Ask("For how long?", "How long should I hold your calls?").Marshal()
	if !strings.Contains(string(b), `"reprompt":{"outputSpeech":{"type":"PlainText","text":"How long should I hold your calls?"}}`) ||
		!strings.Contains(string(b), `"shouldEndSession":false`) {
		t.Errorf("Ask: %s", b)
	}

	// Speak cuts long speech at a word boundary within the limit.
	long := strings.Repeat("word ", 3000)
	e := alexa.Speak(long)
	if n := utf8.RuneCountInString(e.Response.OutputSpeech.Text); n > alexa.MaxSpeechChars || n < alexa.MaxSpeechChars-10 {
		t.Errorf("speech cut to %d characters", n)
	}
	if strings.HasSuffix(e.Response.OutputSpeech.Text, " ") || !strings.HasSuffix(e.Response.OutputSpeech.Text, "word") {
		t.Errorf("cut mid-word")
	}
	if err := e.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}

	// Hand-built responses beyond the limits are refused.
	over := alexa.ResponseEnvelope{Response: alexa.Response{OutputSpeech: &alexa.OutputSpeech{Type: alexa.SpeechSSML, SSML: "<speak>" + strings.Repeat("é", 8000) + "</speak>"}}}
	if _, err := over.Marshal(); !errors.Is(err, alexa.ErrResponseTooLarge) {
		t.Errorf("long SSML: %v", err)
	}
	big := alexa.Speak("hi")
	big.SessionAttributes = map[string]any{"x": strings.Repeat("a", alexa.MaxResponseBytes)}
	if _, err := big.Marshal(); !errors.Is(err, alexa.ErrResponseTooLarge) {
		t.Errorf("large response: %v", err)
	}
	card := alexa.Speak("hi").WithSimpleCard(strings.Repeat("t", 100), strings.Repeat("c", 9000))
	if err := card.Check(); err != nil {
		t.Errorf("WithSimpleCard should fit: %v", err)
	}
	if _, err := (alexa.ResponseEnvelope{Response: alexa.Response{OutputSpeech: &alexa.OutputSpeech{Type: "Text"}}}).Marshal(); err == nil {
		t.Errorf("unknown speech type accepted")
	}

	w := httptest.NewRecorder()
	if err := alexa.WriteResponse(w, alexa.Speak("ok")); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json;charset=UTF-8" {
		t.Errorf("WriteResponse: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var back alexa.ResponseEnvelope
	if err := json.Unmarshal(w.Body.Bytes(), &back); err != nil || back.Response.OutputSpeech.Text != "ok" {
		t.Errorf("WriteResponse body %s", w.Body)
	}
	w = httptest.NewRecorder()
	if err := alexa.WriteResponse(w, big); err == nil || w.Code != 500 {
		t.Errorf("WriteResponse of an oversized response: %d %v", w.Code, err)
	}
}
