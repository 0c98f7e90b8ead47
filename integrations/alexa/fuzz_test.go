package alexa_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
)

// FuzzParseRequest feeds ParseRequest arbitrary bodies. The seed corpus is
// every envelope in testdata/requests (LaunchRequest, IntentRequest with
// durations and times, SessionEndedRequest, a skill event), so plain
// `go test` runs them. Properties: no panic; every error wraps
// ErrMalformed; an accepted request keeps what the skill relies on through
// a re-encoding.
func FuzzParseRequest(f *testing.F) {
	files, err := filepath.Glob("testdata/requests/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed corpus: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"request":{"type":"IntentRequest","timestamp":"2026-05-01T09:00:00Z","intent":{"name":"X","slots":{"d":{"name":"d","value":"PT1H30M"}}}},"context":{"System":{"application":{"applicationId":"a"}}}}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := alexa.ParseRequest(body)
		if err != nil {
			if !errors.Is(err, alexa.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if r.Request.Type == "" || r.Request.Timestamp.IsZero() || r.ApplicationID() == "" {
			t.Fatalf("accepted a request without type, timestamp or application ID")
		}
		if r.Request.Type == alexa.TypeIntent && r.IntentName() == "" {
			t.Fatalf("accepted an IntentRequest without an intent name")
		}
		if v, ok := r.SlotValue("duration"); ok {
			_, _ = alexa.ParseDuration(v)
		}
		if v, ok := r.SlotValue("until"); ok {
			_, _ = alexa.ParseClock(v)
		}
		again, err := json.Marshal(r)
		if err != nil {
			return // e.g. a timestamp year Go cannot print back; not the parser's concern
		}
		r2, err := alexa.ParseRequest(again)
		if err != nil {
			if len(again) > alexa.MaxRequestBytes {
				return
			}
			t.Fatalf("re-encoded request refused: %v", err)
		}
		if r2.Request.Type != r.Request.Type || !r2.Request.Timestamp.Equal(r.Request.Timestamp) ||
			r2.ApplicationID() != r.ApplicationID() || r2.AccessToken() != r.AccessToken() || r2.IntentName() != r.IntentName() {
			t.Fatalf("re-encoding changed the request")
		}
	})
}

// FuzzParseDuration checks ParseDuration never panics and never returns a
// negative duration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"PT45M", "PT1H30M", "P2YT3H10M", "P1W", "PT1.5H", "P", "PT", "P300Y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := alexa.ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
		if err != nil && !errors.Is(err, alexa.ErrDuration) {
			t.Fatalf("error not ErrDuration: %v", err)
		}
	})
}
