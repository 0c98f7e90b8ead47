package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
)

// browserSecrets are the provider secrets of the browser test's sandbox: the fakes use them, so
// the scan of what the browser received can look for them.
var browserSecrets = map[string]string{
	"GOOGLE_CLIENT_ID":          "browser-google-client",
	"GOOGLE_CLIENT_SECRET":      "browser-google-client-secret",
	"SLACK_CLIENT_ID":           "1111111111.2222222222222",
	"SLACK_CLIENT_SECRET":       "browser-slack-client-secret",
	"SLACK_SIGNING_SECRET":      "browser-slack-signing-secret",
	"MICROSOFT_CLIENT_ID":       "browser-microsoft-client",
	"MICROSOFT_CLIENT_SECRET":   "browser-microsoft-client-secret",
	"ZOOM_CLIENT_ID":            "browser-zoom-client",
	"ZOOM_CLIENT_SECRET":        "browser-zoom-client-secret",
	"ZOOM_WEBHOOK_SECRET_TOKEN": "browser-zoom-webhook-secret",
	"ALEXA_SKILL_ID":            "amzn1.ask.skill.browser",
	"ALEXA_CLIENT_ID":           "alexa-browser",
	"ALEXA_CLIENT_SECRET":       "browser-alexa-client-secret",
	"ALEXA_REDIRECT_URIS":       "https://pitangui.amazon.com/api/skill/link/BROWSER",
}

// browserTraffic is what the service answered the browser: every response from its address
// (with its body once loaded), every redirect it sent, and the raw headers (Set-Cookie among
// them, which Chromium reports only there) of every response.
type browserTraffic struct {
	host string // host:port of the service (the sandbox fakes share its IP, not its port)

	mu        sync.Mutex
	method    map[network.RequestID]string
	pending   map[network.RequestID]int // responses whose body is not loaded yet
	responses []servedResponse
	raw       []string
	bodies    sync.WaitGroup
}

func recordBrowser(t *testing.T, tab context.Context, base string) *browserTraffic {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	bt := &browserTraffic{host: u.Host, method: map[network.RequestID]string{}, pending: map[network.RequestID]int{}}
	ours := func(raw string) bool {
		u, err := url.Parse(raw)
		return err == nil && u.Host == bt.host
	}
	header := func(h network.Headers) http.Header {
		out := http.Header{}
		for k, v := range h {
			out.Add(k, fmt.Sprint(v))
		}
		return out
	}
	err = chromedp.Listen(tab, func(ev any) {
		bt.mu.Lock()
		defer bt.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if r := e.RedirectResponse; r != nil && ours(r.URL) {
				bt.responses = append(bt.responses, servedResponse{method: bt.method[e.RequestID], url: r.URL, status: int(r.Status), header: header(r.Headers)})
			}
			bt.method[e.RequestID] = e.Request.Method
		case *network.EventResponseReceived:
			if ours(e.Response.URL) {
				bt.pending[e.RequestID] = len(bt.responses)
				bt.responses = append(bt.responses, servedResponse{method: bt.method[e.RequestID], url: e.Response.URL, status: int(e.Response.Status), header: header(e.Response.Headers)})
			}
		case *network.EventResponseReceivedExtraInfo:
			for k, v := range e.Headers {
				bt.raw = append(bt.raw, fmt.Sprintf("%s: %v", k, v))
			}
		case *network.EventLoadingFinished:
			i, ok := bt.pending[e.RequestID]
			if !ok {
				return
			}
			delete(bt.pending, e.RequestID)
			bt.bodies.Add(1)
			go func() { // no command may run inside the listener
				defer bt.bodies.Done()
				res, err := chromedp.Call(tab, network.GetResponseBody, network.GetResponseBodyParams{RequestID: e.RequestID})
				if err != nil {
					return
				}
				bt.mu.Lock()
				bt.responses[i].body = res.Body
				bt.mu.Unlock()
			}()
		}
	})
	if err != nil {
		t.Fatalf("listen to the browser's network events: %v", err)
	}
	return bt
}

// scan looks for the sandbox's secrets, the keyset's keys, e-mail addresses, the sandbox
// events' title and provider tokens in every response the browser received from the service,
// in every raw response header, and in the debug log.
func (bt *browserTraffic) scan(t *testing.T, env map[string]string, logs *syncBuffer) {
	t.Helper()
	done := make(chan struct{})
	go func() { bt.bodies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the browser did not hand over every response body within 10s")
	}
	needles := []needle{
		{"event title", "Sandbox event"},
		{"e-mail address", googlefake.DefaultEmail},
		{"e-mail address", graphfake.DefaultEmail},
		{"e-mail address", "@sandbox.invalid"},
		{"e-mail address", ".slack.example"},
		{"slack user token", "xoxp-"},
		{"slack bot token", "xoxb-"},
		{"slack refresh token", "xoxe-1-"},
		{"google access token", "ya29."},
		{"google refresh token", "1//0"},
	}
	for _, k := range []string{"GOOGLE_CLIENT_SECRET", "SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET", "MICROSOFT_CLIENT_SECRET", "ZOOM_CLIENT_SECRET", "ZOOM_WEBHOOK_SECRET_TOKEN", "ALEXA_CLIENT_SECRET"} {
		needles = append(needles, needle{k, env[k]})
	}
	needles = append(needles, keysetNeedles(t, env["DI_KEYSET_FILE"])...)

	bt.mu.Lock()
	responses, raw := append([]servedResponse(nil), bt.responses...), append([]string(nil), bt.raw...)
	bt.mu.Unlock()
	scanResponses(needles, responses, t.Errorf)
	m := newMatcher(needles)
	for _, h := range raw {
		m.report("a raw response header", h, false, t.Errorf)
	}
	scanText(needles, "the debug log", logs.String(), t.Errorf)
	withBody, size := 0, 0
	for _, r := range responses {
		if len(r.body) > 0 {
			withBody++
			size += len(r.body)
		}
	}
	if withBody < 10 {
		t.Errorf("the scan saw %d response bodies of the service, want every page of the journey", withBody)
	}
	t.Logf("secrets scan of the browser's traffic: %d responses of the service (%d with a body, %d bytes), %d raw headers, the log, for %d needles",
		len(responses), withBody, size, len(raw), len(needles))
}
