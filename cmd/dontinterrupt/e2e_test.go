package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
)

// e2eWorld is the service under test, started through run on a free port, with Google and
// Slack fakes the test can drive and inspect.
type e2eWorld struct {
	t      *testing.T
	google *googlefake.Server
	slack  *slackfake.Server
	graph  *graphfake.Server
	zoom   *zoomfake.Server
	client *http.Client // follows redirects, keeps cookies; "http://di.test" reaches the service
	logs   *syncBuffer
	stop   func() error
	env    map[string]string
	// traffic records every response the service served to the test's clients and to the
	// fakes' deliveries, and the tokens, codes and titles the fakes handed out; the scan at
	// the end of the test looks for the secrets in all of it.
	traffic   *trafficLog
	transport http.RoundTripper // reaches "di.test", recorded
	scanned   bool              // the store and log were scanned (scanForSecrets)
}

const publicHost = "di.test"
const slackUser = "U0001"

// testRedisURL returns the Redis database the e2e test may flush, or skips.
func testRedisURL(t *testing.T) string {
	u := os.Getenv("DI_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/14"
	} else {
		// Use the database after the contract suite's, so the two never flush each other.
		pu, err := url.Parse(u)
		if err == nil {
			n, _ := strconv.Atoi(strings.Trim(pu.Path, "/"))
			pu.Path = "/" + strconv.Itoa((n+1)%16)
			u = pu.String()
		}
	}
	return flushedRedis(t, u)
}

// testRedisDB returns database db of the test Redis (DI_TEST_REDIS_URL's server, or the local
// one), flushed, or skips: for a test that must not share the e2e database.
func testRedisDB(t *testing.T, db int) string {
	u := "redis://127.0.0.1:6379"
	if env := os.Getenv("DI_TEST_REDIS_URL"); env != "" {
		u = env
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("DI_TEST_REDIS_URL: %v", err)
	}
	pu.Path = "/" + strconv.Itoa(db)
	return flushedRedis(t, pu.String())
}

// flushedRedis pings and flushes the Redis database at u, or skips (fails under CI) when there
// is no Redis.
func flushedRedis(t *testing.T, u string) string {
	opt, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Redis at %s (CI requires one): %v", u, err)
		}
		t.Skipf("no Redis at %s, skipping the Redis run: %v", u, err)
	}
	if err := rc.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// worldOptions adjust the fakes of a world before they start.
type worldOptions struct {
	env map[string]string
	// redisDB, when not 0, is the Redis database of a "redis" world instead of the e2e one.
	redisDB int
	google  func(*googlefake.Options)
	slack   func(*slackfake.Options)
	graph   func(*graphfake.Options)
}

func newWorld(t *testing.T, storeKind string, extraEnv ...map[string]string) *e2eWorld {
	t.Helper()
	o := worldOptions{env: map[string]string{}}
	for _, m := range extraEnv {
		for k, v := range m {
			o.env[k] = v
		}
	}
	return newWorldWith(t, storeKind, o)
}

// e2eSigningSecret is the Slack signing secret the service and the Slack fake share.
const e2eSigningSecret = "e2e-signing-secret"

func newWorldWith(t *testing.T, storeKind string, o worldOptions) *e2eWorld {
	t.Helper()
	w := &e2eWorld{t: t, traffic: &trafficLog{host: publicHost}}
	// Every client that must reach the service (the test's browser, the fakes' webhooks) dials
	// "di.test" to wherever the service listens.
	var addr atomic.Value
	addr.Store("")
	dialer := &net.Dialer{}
	mapped := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(a); host == publicHost {
			a = addr.Load().(string)
		}
		return dialer.DialContext(ctx, network, a)
	}}
	t.Cleanup(mapped.CloseIdleConnections)
	// Everything that reaches the service goes through recorded: every response it serves is
	// kept for the scan.
	recorded := &recordingTransport{next: mapped, log: w.traffic}
	w.transport = recorded

	// Google pushes to http://di.test/webhooks/google: plain http, allowed for that host only.
	gopts := googlefake.Options{AutoApprove: true, HTTPWebhookHosts: []string{publicHost}, HTTPClient: &http.Client{Transport: recorded, Timeout: 10 * time.Second}}
	if o.google != nil {
		o.google(&gopts)
	}
	w.google = googlefake.New(gopts)
	gs := httptest.NewServer(w.traffic.sniff(w.google))
	t.Cleanup(gs.Close)
	t.Cleanup(w.google.Close)
	w.google.SetBaseURL(gs.URL)
	sopts := slackfake.Options{
		TokenRotation:    true,
		SigningSecret:    e2eSigningSecret,
		EventsURL:        "http://" + publicHost + "/slack/events",
		InteractivityURL: "http://" + publicHost + "/slack/interactivity",
		DeliveryClient: &http.Client{Transport: recorded, Timeout: 10 * time.Second, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) > 2 {
				return errors.New("too many redirects")
			}
			return nil
		}},
	}
	if o.slack != nil {
		o.slack(&sopts)
	}
	w.slack = slackfake.New(sopts)
	ss := httptest.NewServer(w.traffic.sniff(w.slack))
	t.Cleanup(ss.Close)
	w.slack.SetBaseURL(ss.URL)
	w.slack.AutoApprove(slackUser)
	mopts := graphfake.Options{AutoApprove: true, AllowHTTPWebhooks: true, KeepOldRefreshTokens: true, HTTPClient: &http.Client{Transport: recorded, Timeout: 10 * time.Second}}
	if o.graph != nil {
		o.graph(&mopts)
	}
	w.graph = graphfake.New(mopts)
	ms := httptest.NewServer(w.traffic.sniff(w.graph))
	t.Cleanup(ms.Close)
	t.Cleanup(w.graph.Close)
	w.graph.SetBaseURL(ms.URL)
	w.zoom = zoomfake.New(zoomfake.Options{AutoApprove: true, WebhookSecretToken: "e2e-zoom-webhook-secret", WebhookURL: "http://" + publicHost + "/webhooks/zoom", WebhookClient: &http.Client{Transport: recorded, Timeout: 10 * time.Second}})
	zs := httptest.NewServer(w.traffic.sniff(w.zoom))
	t.Cleanup(zs.Close)

	dir := t.TempDir()
	w.env = map[string]string{
		"DI_ADDR":                   "127.0.0.1:0",
		"DI_PUBLIC_URL":             "http://" + publicHost,
		"DI_SANDBOX":                "off",
		"DI_PUSH":                   "on",
		"DI_LOG_LEVEL":              "debug",
		"DI_KEYSET_FILE":            filepath.Join(dir, "keyset.json"),
		"GOOGLE_CLIENT_ID":          w.google.ClientID(),
		"GOOGLE_CLIENT_SECRET":      w.google.ClientSecret(),
		"GOOGLE_ISSUER_URL":         gs.URL,
		"GOOGLE_API_URL":            gs.URL + "/",
		"SLACK_CLIENT_ID":           w.slack.ClientID(),
		"SLACK_CLIENT_SECRET":       w.slack.ClientSecret(),
		"SLACK_SIGNING_SECRET":      e2eSigningSecret,
		"SLACK_BASE_URL":            ss.URL,
		"MICROSOFT_CLIENT_ID":       w.graph.ClientID(),
		"MICROSOFT_CLIENT_SECRET":   w.graph.ClientSecret(),
		"MICROSOFT_AUTHORITY_URL":   ms.URL,
		"MICROSOFT_GRAPH_URL":       ms.URL + "/v1.0",
		"ZOOM_CLIENT_ID":            w.zoom.ClientID(),
		"ZOOM_CLIENT_SECRET":        w.zoom.ClientSecret(),
		"ZOOM_WEBHOOK_SECRET_TOKEN": "e2e-zoom-webhook-secret",
		"ZOOM_OAUTH_URL":            zs.URL,
		"ZOOM_API_URL":              zs.URL + "/v2",
	}
	for k, v := range o.env {
		w.env[k] = v
	}
	switch storeKind {
	case "bolt":
		w.env["DI_STORE"] = "bolt:" + filepath.Join(dir, "di.db")
	case "redis":
		if o.redisDB != 0 {
			w.env["DI_STORE"] = testRedisDB(t, o.redisDB)
		} else {
			w.env["DI_STORE"] = testRedisURL(t)
		}
	}
	if storeKind == "redis" {
		// The keyset must exist in Redis mode.
		var out strings.Builder
		if err := run(t.Context(), []string{"di", "keys", "generate"}, envOf(w.env), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	// Registered before the service starts, so it runs after the service has stopped (cleanups
	// run last-in first-out): the scan of every response, the log and the store.
	t.Cleanup(func() { w.scanAll(storeKind) })
	base, stop, logs := startService(t, w.env)
	w.stop, w.logs = stop, logs
	addr.Store(strings.TrimPrefix(base, "http://"))
	w.client = w.newClient()
	return w
}

// newClient is a browser of its own (its own cookie jar) on the service; its traffic is recorded.
func (w *e2eWorld) newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: w.transport}
}

// get fetches a page of the service (or a followed redirect) and returns status and body.
func (w *e2eWorld) get(path string) (int, string) {
	w.t.Helper()
	resp, err := w.client.Get("http://" + publicHost + path)
	if err != nil {
		w.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (w *e2eWorld) signInAndConnect() {
	w.t.Helper()
	if code, body := w.get("/signin/google"); code != 200 || !strings.Contains(body, "Your dashboard") {
		w.t.Fatalf("sign in: %d\n%s", code, body)
	}
	if code, body := w.get("/connect/slack"); code != 200 || !strings.Contains(body, "conn-slack") {
		w.t.Fatalf("connect slack: %d\n%s", code, body)
	}
}

func (w *e2eWorld) connectGoogle() {
	w.t.Helper()
	if code, body := w.get("/connect/google"); code != 200 || !strings.Contains(body, "conn-google") {
		w.t.Fatalf("connect google: %d\n%s", code, body)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func (w *e2eWorld) waitFor(what string, d time.Duration, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s\nservice log:\n%s", what, w.logs)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-w.t.Context().Done():
			w.t.Fatal("test ended")
		}
	}
}

func profileSets(s *slackfake.Server) []slackfake.Call {
	var out []slackfake.Call
	for _, c := range s.CallsTo("users.profile.set") {
		if c.Error == "" && c.Status == 200 {
			out = append(out, c)
		}
	}
	return out
}

func profileOf(t *testing.T, c slackfake.Call) (text, emoji string, exp int64) {
	t.Helper()
	var p struct {
		Text  string `json:"status_text"`
		Emoji string `json:"status_emoji"`
		Exp   int64  `json:"status_expiration"`
	}
	if err := json.Unmarshal([]byte(c.Params.Get("profile")), &p); err != nil {
		t.Fatalf("profile param %q: %v", c.Params.Get("profile"), err)
	}
	return p.Text, p.Emoji, p.Exp
}

const secretTitle = "Quarterly planning with Ada Lovelace"

// TestEndToEndMeetingSetsSlackStatus walks the real redirects against the fakes, then shows a
// Google Calendar event setting the Slack status at its start, with the event end as
// expiration, and no write at the end. It runs on bolt and on Redis.
func TestEndToEndMeetingSetsSlackStatus(t *testing.T) {
	for _, kind := range []string{"bolt", "redis"} {
		t.Run(kind, func(t *testing.T) {
			w := newWorld(t, kind)
			w.signInAndConnect()

			start := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
			end := start.Add(3 * time.Second)
			w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: start, End: end})
			w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: "Declined thing", Start: start, End: end.Add(time.Hour),
				Attendees: []googlefake.Attendee{{Email: "ada@sandbox.invalid", Self: true, ResponseStatus: "declined"}, {Email: "bob@sandbox.invalid"}}})
			w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: "Free thing", Start: start, End: end.Add(2 * time.Hour), Transparency: "transparent"})
			w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: "Cancelled thing", Start: start, End: end.Add(3 * time.Hour), Status: "cancelled"})
			w.connectGoogle()

			w.waitFor("the status write at the start", 15*time.Second, func() bool { return len(profileSets(w.slack)) >= 1 })
			sets := profileSets(w.slack)
			text, emoji, exp := profileOf(t, sets[0])
			if text != "In a meeting" || emoji != ":spiral_calendar_pad:" {
				t.Errorf("status = %q %q, want the meeting rule's text and emoji", text, emoji)
			}
			if exp != end.Unix() {
				t.Errorf("status_expiration = %d, want the event end %d (declined/free/cancelled events must not extend it)", exp, end.Unix())
			}
			lag := sets[0].Time.Sub(start)
			t.Logf("boundary lag: %v", lag)
			if lag < 0 || lag > time.Second {
				t.Errorf("status written %v after the start, want within [0, 1s]", lag)
			}

			// After the end: the expiration cleared it; we wrote nothing more.
			w.waitFor("the status to clear at the end", 15*time.Second, func() bool {
				return w.slack.Status(slackUser).Text == "" && time.Now().After(end.Add(1500*time.Millisecond))
			})
			if n := len(profileSets(w.slack)); n != 1 {
				t.Errorf("users.profile.set called %d times, want exactly 1 (no write at the end)", n)
			}
			if err := w.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			w.scanForSecrets(kind)
		})
	}
}

// TestEndToEndOwnStatus: a status the person set by hand is left alone when their rule says so
// (the default), and replaced then restored, with its original expiration, when it does not.
func TestEndToEndOwnStatus(t *testing.T) {
	for _, kind := range []string{"bolt", "redis"} {
		t.Run(kind+"/left alone", func(t *testing.T) {
			w := newWorld(t, kind)
			w.signInAndConnect()
			own := time.Now().Add(time.Hour).Truncate(time.Second)
			w.slack.SetStatus(slackUser, "Lunch", ":pizza:", own)
			start := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
			w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: start, End: start.Add(3 * time.Second)})
			w.connectGoogle()
			w.waitFor("the activity log to say it left the status alone", 15*time.Second, func() bool {
				_, body := w.get("/")
				return strings.Contains(body, "left your own status")
			})
			if n := len(profileSets(w.slack)); n != 0 {
				t.Fatalf("users.profile.set called %d times, want 0 (the person's own status stays)", n)
			}
			if st := w.slack.Status(slackUser); st.Text != "Lunch" || st.Emoji != ":pizza:" {
				t.Fatalf("status = %+v, want the person's own", st)
			}
		})
		t.Run(kind+"/replaced and restored", func(t *testing.T) {
			w := newWorld(t, kind)
			w.signInAndConnect()
			resp, err := w.client.PostForm("http://"+publicHost+"/settings", url.Values{"time_zone": {"Europe/Zurich"}, "tentative_counts": {"on"}})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "Saved") {
				t.Fatalf("save settings: %d\n%s", resp.StatusCode, body)
			}
			own := time.Now().Add(time.Hour).Truncate(time.Second)
			w.slack.SetStatus(slackUser, "Lunch", ":pizza:", own)
			start := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
			end := start.Add(3 * time.Second)
			w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: start, End: end})
			w.connectGoogle()
			w.waitFor("our status, then the person's restored", 20*time.Second, func() bool { return len(profileSets(w.slack)) >= 2 })
			sets := profileSets(w.slack)
			if text, _, exp := profileOf(t, sets[0]); text != "In a meeting" || exp != end.Unix() {
				t.Errorf("first write = %q until %d, want the meeting until %d", text, exp, end.Unix())
			}
			text, emoji, exp := profileOf(t, sets[1])
			if text != "Lunch" || emoji != ":pizza:" || exp != own.Unix() {
				t.Errorf("restored %q %q until %d, want Lunch :pizza: until %d (the original expiration)", text, emoji, exp, own.Unix())
			}
			if lag := sets[1].Time.Sub(end); lag < 0 || lag > time.Second {
				t.Errorf("restored %v after the end, want within [0, 1s]", lag)
			}
			if st := w.slack.Status(slackUser); st.Text != "Lunch" {
				t.Errorf("status now %+v, want Lunch", st)
			}
		})
	}
}

// scanForSecrets checks every byte of the store and of the debug log for tokens, secrets,
// e-mail addresses and event titles (the needles of scan_test.go). The service must have
// stopped.
func (w *e2eWorld) scanForSecrets(kind string) {
	t := w.t
	t.Helper()
	stored := w.storeBytes(kind)
	logs := w.logs.String()
	w.scanStoreAndLogs(kind, stored, logs, t.Errorf)
	if len(stored) == 0 || !strings.Contains(logs, "level=DEBUG") {
		t.Fatalf("nothing to scan (store %d bytes); log:\n%s", len(stored), logs)
	}
}

// storeBytes is every key and value of the store, concatenated.
func (w *e2eWorld) storeBytes(kind string) []byte {
	t := w.t
	var stored []byte
	switch kind {
	case "bolt":
		b, err := os.ReadFile(strings.TrimPrefix(w.env["DI_STORE"], "bolt:"))
		if err != nil {
			t.Fatal(err)
		}
		stored = b
	case "redis":
		opt, _ := goredis.ParseURL(w.env["DI_STORE"])
		rc := goredis.NewClient(opt)
		defer rc.Close()
		ctx := context.WithoutCancel(t.Context())
		keys, err := rc.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			stored = append(stored, k...)
			var vals []string
			switch rc.Type(ctx, k).Val() {
			case "string":
				vals = []string{rc.Get(ctx, k).Val()}
			case "hash":
				for f, v := range rc.HGetAll(ctx, k).Val() {
					vals = append(vals, f, v)
				}
			case "list":
				vals = rc.LRange(ctx, k, 0, -1).Val()
			case "set":
				vals = rc.SMembers(ctx, k).Val()
			case "zset":
				vals = rc.ZRange(ctx, k, 0, -1).Val()
			case "none": // expired meanwhile
			default:
				t.Errorf("key %q of an unexpected type", k)
			}
			for _, v := range vals {
				stored = append(stored, v...)
			}
		}
	}
	return stored
}

// TestEndToEndRateLimitAndRevocation: a 429 with Retry-After delays the write until after the
// wait, and it then happens exactly once; a revoked Slack token shows the connection as broken
// on the dashboard while the Google connection keeps working.
func TestEndToEndRateLimitAndRevocation(t *testing.T) {
	t.Run("429", func(t *testing.T) {
		w := newWorld(t, "bolt")
		w.signInAndConnect()
		start := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		end := start.Add(5 * time.Second)
		w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: start, End: end})
		w.slack.FailNext("users.profile.set", http.StatusTooManyRequests, "")
		w.connectGoogle()
		w.waitFor("the write after the wait", 15*time.Second, func() bool { return len(profileSets(w.slack)) >= 1 })
		calls := w.slack.CallsTo("users.profile.set")
		if len(calls) < 2 || calls[0].Status != http.StatusTooManyRequests {
			t.Fatalf("calls = %+v, want a 429 then the write", calls)
		}
		sets := profileSets(w.slack)
		if wait := sets[0].Time.Sub(calls[0].Time); wait < time.Second {
			t.Errorf("retried %v after the 429, want at least Retry-After (1s)", wait)
		}
		w.waitFor("the end of the event", 15*time.Second, func() bool { return time.Now().After(end.Add(time.Second)) })
		if n := len(profileSets(w.slack)); n != 1 {
			t.Errorf("%d successful writes, want exactly 1", n)
		}
		if _, body := w.get("/"); !strings.Contains(body, "rate limited, retrying after 1s") {
			t.Errorf("the activity log does not explain the retry:\n%s", body)
		}
	})
	t.Run("token revoked", func(t *testing.T) {
		w := newWorld(t, "bolt")
		w.signInAndConnect()
		w.slack.RevokeUserTokens(slackUser)
		start := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		// Long enough to be written even when the first sync comes late on a busy machine.
		w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: start, End: start.Add(time.Minute)})
		w.connectGoogle()
		var body string
		w.waitFor("the Slack connection to show as broken", 15*time.Second, func() bool {
			_, body = w.get("/")
			return strings.Contains(body, "Broken: reconnect needed")
		})
		if !strings.Contains(body, `href="/connect/slack"`) {
			t.Errorf("no reconnect link for Slack:\n%s", body)
		}
		google := body[strings.Index(body, "conn-google"):]
		google = google[:strings.Index(google, "</tr>")]
		if !strings.Contains(google, "Connected") {
			t.Errorf("the Google connection is not healthy: %s", google)
		}
		if !strings.Contains(body, "In a meeting") && !strings.Contains(body, "Nothing set") {
			t.Errorf("the dashboard lost the timeline:\n%s", body)
		}
	})
}
