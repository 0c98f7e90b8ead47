package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa/alexafake"
	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
)

// The secrets scan of the end-to-end suite. Every e2e world records every response the service
// serves (to the test's browsers and to the fakes' deliveries: Slack events and interactivity,
// Graph notifications, Zoom webhooks, Alexa account linking) and every token, authorization
// code and event title the fakes hand out. When the test ends, the scan looks for those, the
// configured secrets, the keyset's keys and the fakes' e-mail addresses in every response
// (status, every header including Location and Set-Cookie, body), in the debug log and in the
// store.

// servedResponse is one response of the service, as its client received it.
type servedResponse struct {
	method, url string
	status      int
	header      http.Header
	body        []byte
}

// trafficLog is what the scan reads: the service's responses and what the fakes issued.
type trafficLog struct {
	host string // the service's host name; responses from other hosts are not ours

	mu        sync.Mutex
	responses []servedResponse
	issued    map[string]string // a value the fakes handed out → what it is
}

func (l *trafficLog) served() []servedResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.responses)
}

// minNeedle is the shortest issued value worth looking for: anything shorter would be found by
// chance.
const minNeedle = 8

// learn adds a value a fake handed out to the needles.
func (l *trafficLog) learn(what, value string) {
	if len(value) < minNeedle {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.issued == nil {
		l.issued = map[string]string{}
	}
	if _, ok := l.issued[value]; !ok {
		l.issued[value] = what
	}
}

// issuedNeedles are the values the fakes handed out, and how many of each kind.
func (l *trafficLog) issuedNeedles() ([]needle, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []needle
	kinds := map[string]int{}
	for v, what := range l.issued {
		out = append(out, needle{what, v})
		kinds[what]++
	}
	return out, kinds
}

// recordingTransport keeps a copy of every response from the service's host; the caller
// still reads the whole body.
type recordingTransport struct {
	next http.RoundTripper
	log  *trafficLog
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() == rt.log.host && req.GetBody != nil {
		// What the fakes deliver to us (webhooks, events) names meetings and people: the
		// service must not repeat it.
		if b, err := req.GetBody(); err == nil {
			body, _ := io.ReadAll(b)
			b.Close()
			rt.log.learnFromJSON(body)
		}
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil || req.URL.Hostname() != rt.log.host {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
	} else {
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	rt.log.mu.Lock()
	rt.log.responses = append(rt.log.responses, servedResponse{
		method: req.Method, url: req.URL.String(), status: resp.StatusCode, header: resp.Header.Clone(), body: body,
	})
	rt.log.mu.Unlock()
	return resp, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// sniff wraps a fake so that every token, ID token, authorization code and event title it
// hands out becomes a needle.
func (l *trafficLog) sniff(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &copyWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		if loc, err := url.Parse(w.Header().Get("Location")); err == nil {
			for _, q := range []url.Values{loc.Query(), parseFragment(loc.Fragment)} {
				if c := q.Get("code"); c != "" {
					l.learn("authorization code", c)
				}
				for _, k := range []string{"access_token", "id_token", "refresh_token"} {
					if v := q.Get(k); v != "" {
						l.learn(k, v)
					}
				}
			}
		}
		l.learnFromJSON(cw.body.Bytes())
	})
}

func parseFragment(f string) url.Values {
	q, _ := url.ParseQuery(f)
	return q
}

// learnFromJSON takes the tokens and titles out of a JSON document (anything else is ignored).
func (l *trafficLog) learnFromJSON(body []byte) {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(k, x)
			}
		case []any:
			for _, x := range v {
				walk(key, x)
			}
		case string:
			switch key {
			case "access_token", "refresh_token", "id_token":
				l.learn(key, v)
			case "summary", "subject", "topic":
				// Google event and calendar titles, Outlook subjects, Zoom topics.
				l.learn("event title", v)
			case "email", "mail", "userPrincipalName":
				l.learn("e-mail address", v)
			case "token", "clientState":
				// Slack's verification token, a Graph subscription's client state.
				l.learn("delivery secret", v)
			}
		}
	}
	walk("", doc)
}

// copyWriter keeps a copy of what a handler writes.
type copyWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (c *copyWriter) Write(p []byte) (int, error) {
	if c.body.Len() < 1<<20 {
		c.body.Write(p)
	}
	return c.ResponseWriter.Write(p)
}

// needle is a value no response, log line or stored byte may contain.
type needle struct{ what, value string }

// emailPattern finds anything that looks like an e-mail address.
var emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)

// testTitles are the titles of every event the e2e tests create.
var testTitles = []string{secretTitle, "Declined thing", "Free thing", "Cancelled thing"}

// needles is everything secret or personal the world knows of: the configured secrets, the
// keyset's keys, the fakes' e-mail addresses, the tests' event titles, the prefixes of the
// providers' tokens, and every token, code and title the fakes handed out.
func (w *e2eWorld) needles() []needle {
	ns := []needle{
		{"google client secret", w.google.ClientSecret()},
		{"slack client secret", w.slack.ClientSecret()},
		{"microsoft client secret", w.graph.ClientSecret()},
		{"zoom client secret", w.zoom.ClientSecret()},
		{"slack signing secret", w.env["SLACK_SIGNING_SECRET"]},
		{"zoom webhook secret", w.env["ZOOM_WEBHOOK_SECRET_TOKEN"]},
		{"e-mail address", googlefake.DefaultEmail},
		{"e-mail address", graphfake.DefaultEmail},
		{"e-mail address", "@sandbox.invalid"},
		{"e-mail address", "@sandbox.onmicrosoft.invalid"},
		{"e-mail address", ".slack.example"},
		{"slack user token", "xoxp-"},
		{"slack bot token", "xoxb-"},
		{"slack refresh token", "xoxe-1-"},
		{"google access token", "ya29."},
		{"google refresh token", "1//0"},
	}
	if s := w.env["ALEXA_CLIENT_SECRET"]; s != "" {
		ns = append(ns, needle{"alexa client secret", s})
	}
	for _, title := range testTitles {
		ns = append(ns, needle{"event title", title})
	}
	ns = append(ns, keysetNeedles(w.t, w.env["DI_KEYSET_FILE"])...)
	issued, _ := w.traffic.issuedNeedles()
	return append(ns, issued...)
}

// keysetNeedles are the keys of the keyset file in every encoding that could leak.
func keysetNeedles(t *testing.T, path string) []needle {
	t.Helper()
	ks, err := vault.LoadFile(path)
	if err != nil {
		t.Errorf("read the keyset for the scan: %v", err)
		return nil
	}
	var ns []needle
	for _, k := range ks.Keys {
		what := fmt.Sprintf("key %08x of the keyset", k.ID)
		ns = append(ns,
			needle{what, base64.StdEncoding.EncodeToString(k.Secret)},
			needle{what, base64.RawURLEncoding.EncodeToString(k.Secret)},
			needle{what, hex.EncodeToString(k.Secret)},
			needle{what, string(k.Secret)},
		)
	}
	return ns
}

// variants are the ways text may carry a needle: as is, HTML-escaped, URL-escaped.
func variants(s string) []string {
	out := []string{s}
	if strings.IndexByte(s, '&') >= 0 {
		if u := html.UnescapeString(s); u != s {
			out = append(out, u)
		}
	}
	if strings.ContainsAny(s, "%+") {
		if u, err := url.QueryUnescape(s); err == nil && u != s {
			out = append(out, u)
		}
		if u, err := url.PathUnescape(s); err == nil && u != s {
			out = append(out, u)
		}
	}
	return out
}

// matcher finds many needles in one pass over a text: a needle is looked for only where the
// text holds its first four bytes.
type matcher struct {
	first2   [1 << 16]bool       // the first two bytes of some needle
	byPrefix map[uint32][]needle // needles by their first four bytes
	short    []needle            // needles under four bytes (looked for one by one)
}

func newMatcher(needles []needle) *matcher {
	m := &matcher{byPrefix: map[uint32][]needle{}}
	for _, n := range needles {
		switch v := n.value; {
		case v == "":
		case len(v) < 4:
			m.short = append(m.short, n)
		default:
			m.first2[uint16(v[0])|uint16(v[1])<<8] = true
			k := uint32(v[0]) | uint32(v[1])<<8 | uint32(v[2])<<16 | uint32(v[3])<<24
			m.byPrefix[k] = append(m.byPrefix[k], n)
		}
	}
	return m
}

// find returns the needles text holds, each once, in the order found.
func (m *matcher) find(text string) []needle {
	var out []needle
	have := map[string]bool{}
	add := func(n needle) {
		if !have[n.value] {
			have[n.value] = true
			out = append(out, n)
		}
	}
	for i := 0; i+4 <= len(text); i++ {
		if !m.first2[uint16(text[i])|uint16(text[i+1])<<8] {
			continue
		}
		k := uint32(text[i]) | uint32(text[i+1])<<8 | uint32(text[i+2])<<16 | uint32(text[i+3])<<24
		for _, n := range m.byPrefix[k] {
			if strings.HasPrefix(text[i:], n.value) {
				add(n)
			}
		}
	}
	for _, n := range m.short {
		if strings.Contains(text, n.value) {
			add(n)
		}
	}
	return out
}

// report reports every needle in text or its unescaped variants (where says what the text
// is), and, when emails is set, anything shaped like an e-mail address. It returns how many it
// found.
func (m *matcher) report(where, text string, emails bool, errorf func(string, ...any)) int {
	found := 0
	reported := map[string]bool{}
	for _, v := range variants(text) {
		for _, n := range m.find(v) {
			if !reported[n.value] {
				reported[n.value] = true
				errorf("%s holds a %s (%q)", where, n.what, shorten(n.value))
				found++
			}
		}
		if emails && strings.IndexByte(v, '@') >= 0 {
			if e := emailPattern.FindString(v); e != "" {
				errorf("%s holds an e-mail address (%q)", where, e)
				found++
				emails = false
			}
		}
	}
	return found
}

// scanText reports every needle in text (where says what the text is). It returns how many it
// found.
func scanText(needles []needle, where, text string, errorf func(string, ...any)) int {
	return newMatcher(needles).report(where, text, false, errorf)
}

func shorten(s string) string {
	if len(s) > 24 {
		return s[:12] + "…" + s[len(s)-6:]
	}
	return s
}

// scanResponses reports every needle, and anything shaped like an e-mail address, in the
// status, headers and body of every response. A text seen before (the same page served
// again) is scanned once. It returns how many it found.
func scanResponses(needles []needle, responses []servedResponse, errorf func(string, ...any)) int {
	found := 0
	m := newMatcher(needles)
	scanned := map[string]bool{}
	for _, r := range responses {
		what := fmt.Sprintf("the response %d to %s %s", r.status, r.method, r.url)
		parts := [][2]string{{"body", string(r.body)}}
		for name, vs := range r.header {
			for _, v := range vs {
				parts = append(parts, [2]string{"header " + name, v})
			}
		}
		for _, p := range parts {
			if scanned[p[1]] {
				continue
			}
			scanned[p[1]] = true
			found += m.report(what+" ("+p[0]+")", p[1], true, errorf)
		}
	}
	return found
}

// scanStoreAndLogs reports every needle (and any bearer header) in the store and the log.
func (w *e2eWorld) scanStoreAndLogs(kind string, stored []byte, logs string, errorf func(string, ...any)) {
	needles := append(w.needles(), needle{"bearer header", "Bearer "})
	scanText(needles, "the "+kind+" store", string(stored), errorf)
	scanText(needles, "the debug log", logs, errorf)
	w.scanned = true
}

// scanAll is the scan at the end of every e2e test: it stops the service, then scans every
// response it served, its log and its store.
func (w *e2eWorld) scanAll(kind string) {
	t := w.t
	if w.stop == nil {
		return // the service never started
	}
	if err := w.stop(); err != nil {
		t.Errorf("stop the service: %v", err)
	}
	began := time.Now()
	responses := w.traffic.served()
	needles := w.needles()
	_, kinds := w.traffic.issuedNeedles()
	size := 0
	for _, r := range responses {
		size += len(r.body)
	}
	scanResponses(needles, responses, t.Errorf)
	if !w.scanned {
		w.scanStoreAndLogs(kind, w.storeBytes(kind), w.logs.String(), t.Errorf)
	}
	if len(responses) == 0 {
		t.Errorf("the scan saw no response of the service: is the recording transport in the path?")
	}
	t.Logf("secrets scan: %d responses (%d body bytes), the log and the store, for %d needles (issued by the fakes: %v), in %v",
		len(responses), size, len(needles), kinds, time.Since(began).Round(time.Millisecond))
}

// TestScanCatchesPlantedNeedles: the scan can fail. A stand-in provider hands out tokens, a
// code and a title through the sniffer; a stand-in service leaks each of them, a configured
// secret and an e-mail address in another part of its responses; the scan finds every leak
// where it is, and nothing in a clean response. The recording leaves the caller's body whole,
// and responses from other hosts are not recorded.
func TestScanCatchesPlantedNeedles(t *testing.T) {
	log := &trafficLog{host: publicHost}
	const (
		access  = "planted-access-token-0123456789"
		refresh = "planted-refresh-token-9876543210"
		code    = "planted-authorization-code-42"
		title   = "Ada's planted 1:1 <review>"
		secret  = "planted-client-secret-xyz"
	)
	provider := httptest.NewServer(log.sniff(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ok":true,"authed_user":{"access_token":%q,"refresh_token":%q}}`, access, refresh)
		case "/authorize":
			http.Redirect(w, r, "http://"+publicHost+"/callback?state=s&code="+code, http.StatusFound)
		case "/events":
			json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"summary": title}}})
		}
	})))
	defer provider.Close()
	const clean = "<p>In a meeting until 10:30</p>"
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/clean":
			fmt.Fprint(w, clean)
		case "/body":
			fmt.Fprintf(w, "<p>token %s</p>", access)
		case "/location":
			w.Header().Set("Location", "/next?t="+url.QueryEscape(refresh))
			w.WriteHeader(http.StatusFound)
		case "/cookie":
			http.SetCookie(w, &http.Cookie{Name: "x", Value: code})
		case "/title":
			fmt.Fprintf(w, "<p>%s</p>", html.EscapeString(title))
		case "/email":
			fmt.Fprint(w, "write to someone@elsewhere.example")
		case "/secret":
			w.Header().Set("X-Debug", secret)
		}
	}))
	defer service.Close()

	serviceAddr := strings.TrimPrefix(service.URL, "http://")
	mapped := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(a); host == publicHost {
			a = serviceAddr
		}
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	defer mapped.CloseIdleConnections()
	client := &http.Client{
		Transport:     &recordingTransport{next: mapped, log: log},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	fetch := func(u string) string {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, p := range []string{"/token", "/authorize", "/events"} {
		fetch(provider.URL + p)
	}
	if got := len(log.served()); got != 0 {
		t.Fatalf("recorded %d responses of another host, want only the service's", got)
	}
	leaks := map[string]string{
		"/body":     "(body) holds a access_token",
		"/location": "(header Location) holds a refresh_token",
		"/cookie":   "(header Set-Cookie) holds a authorization code",
		"/title":    "(body) holds a event title",
		"/email":    "(body) holds an e-mail address",
		"/secret":   "(header X-Debug) holds a client secret",
	}
	for _, p := range []string{"/clean", "/body", "/location", "/cookie", "/title", "/email", "/secret"} {
		body := fetch("http://" + publicHost + p)
		if p == "/clean" && body != clean {
			t.Fatalf("the caller read %q through the recording, want %q", body, clean)
		}
	}
	if got := len(log.served()); got != 7 {
		t.Fatalf("recorded %d responses, want 7", got)
	}

	issued, kinds := log.issuedNeedles()
	if kinds["access_token"] != 1 || kinds["refresh_token"] != 1 || kinds["authorization code"] != 1 || kinds["event title"] != 1 {
		t.Fatalf("the sniffer learned %v, want one access token, refresh token, code and title", kinds)
	}
	needles := append([]needle{{"client secret", secret}}, issued...)
	var found []string
	errorf := func(format string, args ...any) { found = append(found, fmt.Sprintf(format, args...)) }
	if n := scanResponses(needles, log.served(), errorf); n != len(leaks) {
		t.Errorf("the scan found %d leaks, want %d:\n%s", n, len(leaks), strings.Join(found, "\n"))
	}
	for path, want := range leaks {
		if !slices.ContainsFunc(found, func(f string) bool {
			return strings.Contains(f, "http://"+publicHost+path+" ") && strings.Contains(f, want)
		}) {
			t.Errorf("the scan missed the leak in %s (%s):\n%s", path, want, strings.Join(found, "\n"))
		}
	}
	for _, f := range found {
		if strings.Contains(f, "/clean") {
			t.Errorf("the clean response was reported: %s", f)
		}
	}

	// The same needles in a log line.
	found = nil
	if n := scanText(needles, "the debug log", "level=DEBUG msg=refreshed token="+refresh, errorf); n != 1 {
		t.Errorf("the log scan found %d, want 1: %v", n, found)
	}
}

// TestEndToEndSecretsScanCoverage brings the responses the other end-to-end tests leave out
// under the scan of newWorld's cleanup: Slack's Events API and interactivity (url_verification,
// the App Home, a button, a message, a forged delivery), Zoom and Graph deliveries, Alexa
// account linking through our OAuth server (authorize, consent, token, refresh), every page of
// the web app with a meeting planned (the dashboard, settings, preview, activity, data, the
// export, metrics), the manual controls, and error pages. It checks that each of those was
// recorded and that the fakes' tokens are among the needles; the scan itself must find nothing.
func TestEndToEndSecretsScanCoverage(t *testing.T) {
	env := map[string]string{
		"ALEXA_SKILL_ID":      "amzn1.ask.skill.e2e-scan",
		"ALEXA_CLIENT_ID":     "alexa-e2e",
		"ALEXA_CLIENT_SECRET": "e2e-alexa-client-secret",
		"ALEXA_REDIRECT_URIS": "https://pitangui.amazon.com/api/skill/link/E2E",
		"DI_RESYNC_INTERVAL":  "24h",
	}
	w := newWorld(t, "bolt", env)
	ctx := t.Context()
	w.signInAndConnect()
	later := time.Now().Add(20 * time.Minute).Truncate(time.Minute)
	w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: later, End: later.Add(30 * time.Minute),
		Attendees: []googlefake.Attendee{{Email: googlefake.DefaultEmail, Self: true, ResponseStatus: "accepted"}, {Email: "bob@sandbox.invalid", ResponseStatus: "accepted"}}})
	w.connectGoogle()
	w.connect("teams", "conn-teams")
	w.connect("outlook", "conn-outlook")
	w.connect("zoom", "conn-zoom")
	w.waitFor("the meeting on the dashboard", 15*time.Second, func() bool {
		_, body := w.get("/")
		return strings.Contains(body, later.UTC().Format("15:04"))
	})

	// Slack: the Events API and interactivity, as Slack sends them.
	if _, err := w.slack.URLVerification(ctx); err != nil {
		t.Fatalf("url_verification: %v", err)
	}
	if d, err := w.slack.OpenAppHome(ctx, slackUser, "home"); err != nil || d.Status != http.StatusOK {
		t.Fatalf("app_home_opened: %+v %v", d.Status, err)
	}
	w.waitFor("the App Home", 10*time.Second, func() bool { return w.slack.HomeView(slackUser) != nil })
	if d, err := w.slack.ClickButton(ctx, slackUser, "focus_30"); err != nil || d.Status != http.StatusOK {
		t.Fatalf("click focus_30: %d %v", d.Status, err)
	}
	im, err := w.slack.SendIM(ctx, slackUser, "back")
	if err != nil || im.Status != http.StatusOK {
		t.Fatalf("message: %d %v", im.Status, err)
	}
	if d, err := w.slack.SendWrongSignature(ctx, "http://"+publicHost+"/slack/events", "application/json", im.Body); err != nil || d.Status != http.StatusUnauthorized {
		t.Fatalf("forged event: %d %v, want 401", d.Status, err)
	}

	// Zoom and Graph deliveries.
	if d, err := w.zoom.StartMeeting(ctx, zoomfake.DefaultUserID, ""); err != nil || d.Status != http.StatusOK {
		t.Fatalf("meeting.started: %+v %v", d, err)
	}
	live := w.zoom.LiveMeetings(zoomfake.DefaultUserID)
	if len(live) != 1 {
		t.Fatalf("live meetings %v", live)
	}
	if d, err := w.zoom.EndMeeting(ctx, zoomfake.DefaultUserID, live[0]); err != nil || d.Status != http.StatusOK {
		t.Fatalf("meeting.ended: %+v %v", d, err)
	}
	w.waitFor("the Graph subscription", 15*time.Second, func() bool { return len(w.graph.Subscriptions()) >= 1 })
	w.graph.AddEvent(graphfake.DefaultOID, graphfake.Event{Subject: secretTitle, Start: later.Add(time.Hour), End: later.Add(2 * time.Hour)})
	w.waitFor("a change notification", 15*time.Second, func() bool {
		for _, d := range w.graph.Deliveries() {
			if d.Kind == graphfake.DeliveryNotification && d.Status == http.StatusAccepted {
				return true
			}
		}
		return false
	})

	// Alexa account linking through our OAuth server, with the person's browser session.
	alexa := alexafake.New(alexafake.Options{SkillID: env["ALEXA_SKILL_ID"]})
	link := alexafake.LinkConfig{
		AuthorizeURL: "http://" + publicHost + "/oauth/authorize", TokenURL: "http://" + publicHost + "/oauth/token",
		ClientID: env["ALEXA_CLIENT_ID"], ClientSecret: env["ALEXA_CLIENT_SECRET"],
		RedirectURI: env["ALEXA_REDIRECT_URIS"], Scope: "status", UseBasicAuth: true, PKCE: true,
		HTTPClient: w.client,
		Browser: func(ctx context.Context, hc *http.Client, page *http.Response) (*http.Response, error) {
			page.Body.Close()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, page.Request.URL.String(), strings.NewReader("decision=allow"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return hc.Do(req)
		},
	}
	tokens, err := alexa.Link(ctx, link)
	if err != nil {
		t.Fatalf("account linking: %v", err)
	}
	if _, err := alexa.Refresh(ctx, link, tokens.RefreshToken); err != nil {
		t.Fatalf("refresh: %v", err)
	}

	// The web app's pages, controls and error pages.
	for _, p := range []string{"/", "/settings", "/preview", "/activity", "/data", "/data/export", "/metrics", "/healthz", "/readyz", "/static/style.css"} {
		if code, body := w.get(p); code != http.StatusOK {
			t.Errorf("GET %s: %d\n%.300s", p, code, body)
		}
	}
	for _, f := range []url.Values{{"action": {"focus"}, "minutes": {"30"}}, {"action": {"back"}}} {
		resp, err := w.client.PostForm("http://"+publicHost+"/actions", f)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("POST /actions %v: %d", f, resp.StatusCode)
		}
	}
	for p, want := range map[string]int{
		"/signin/nope": http.StatusNotFound,
		"/connect/google/callback?state=forged&code=x":        http.StatusBadRequest,
		"/connect/slack/callback?error=access_denied&state=x": http.StatusBadRequest,
	} {
		if code, body := w.get(p); code != want {
			t.Errorf("GET %s: %d, want %d\n%.300s", p, code, want, body)
		}
	}

	// What the scan will read.
	seen := map[string]int{}
	for _, r := range w.traffic.served() {
		u, _ := url.Parse(r.url)
		seen[r.method+" "+u.Path]++
	}
	for _, route := range []string{
		"POST /slack/events", "POST /slack/interactivity", "POST /webhooks/zoom", "POST /webhooks/microsoft",
		"GET /oauth/authorize", "POST /oauth/authorize", "POST /oauth/token", "POST /actions",
		"GET /", "GET /preview", "GET /activity", "GET /data/export", "GET /metrics",
		"GET /signin/google/callback", "GET /connect/slack/callback", "GET /connect/teams/callback",
	} {
		if seen[route] == 0 {
			t.Errorf("no response to %s was recorded; recorded: %v", route, seen)
		}
	}
	_, kinds := w.traffic.issuedNeedles()
	if kinds["access_token"] < 4 || kinds["refresh_token"] < 3 || kinds["id_token"] < 2 || kinds["authorization code"] < 5 || kinds["event title"] < 2 {
		t.Errorf("the fakes' tokens, codes and titles learned: %v; want each provider's", kinds)
	}
}
