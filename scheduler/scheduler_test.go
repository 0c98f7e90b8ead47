package scheduler_test

// Integration tests of the scheduler against the real fakes: googlefake (OIDC + Calendar) and
// slackfake (Web API + OAuth) served by httptest, a bolt store in a temporary directory, a real
// vault, and a fake clock shared by the scheduler, the fakes and the Google client. The tests
// drive ProcessUser at chosen fake times (and Run, with the fake clock's timers) and assert what
// the fake Slack received, the store's state and the activity log.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"
	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/faulttest"
	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

// googleSource adapts the Google client to the scheduler's Source (a copy of the adapter in
// cmd/dontinterrupt, which this package cannot import).
type googleSource struct{ c *google.Client }

func (g googleSource) Sync(ctx context.Context, cred provider.Credential, resource, syncToken string, now time.Time, titleEmoji bool) (scheduler.SyncResult, error) {
	r, err := g.c.Sync(ctx, cred, resource, syncToken, now, google.SyncOptions{TitleEmoji: titleEmoji})
	return scheduler.SyncResult(r), err
}

func (g googleSource) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return g.c.Refresh(ctx, cred, now)
}

const (
	connectRedirect      = "http://di.invalid/connect/google/callback"
	signInRedirect       = "http://di.invalid/signin/google/callback"
	slackConnectRedirect = "http://di.invalid/connect/slack/callback"

	// resync is the scheduler's resync interval in these tests: longer than every block the
	// tests use, so the next due time ProcessUser returns is the block boundary.
	resync = time.Hour
)

// day is Monday 12 January 2026 (winter: New York is UTC−5).
var day = time.Date(2026, 1, 12, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// signingKey is shared by every fake Google: generating an RSA key per test is slow under -race.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// env is one scheduler wired to its own fakes and store.
type env struct {
	t     *testing.T
	ctx   context.Context
	clk   *clock.Fake
	st    store.Store
	vault *vault.Vault

	gfake  *googlefake.Server
	gfault *faulttest.Injector // in front of gfake: switch faults on and off
	gsrv   *httptest.Server
	ghttp  *http.Client // the Google client's (a test may set its Timeout while nothing runs)
	gc     *google.Client

	sfake  *slackfake.Server
	sfault *faulttest.Injector // in front of sfake
	ssrv   *httptest.Server
	shttp  *http.Client // the Slack client's
	sc     *slack.Client

	s    *scheduler.Scheduler
	deps scheduler.Deps // what s was made with (another replica can be made alike)

	brokenMu sync.Mutex
	brokenAt []string // "user provider" of each OnBroken call
}

type envOptions struct {
	start         time.Time
	tokenRotation bool
	// slackHook, when set, runs before every request the scheduler's Slack client sends.
	slackHook func(*http.Request)
	// metrics, when set, is the scheduler's metrics.
	metrics *metrics.Metrics
	// limits, rates and lead book writes against rate limits (nil limits: none);
	// slackLimits are the fake Slack's per-minute limits; lease is the claim lease.
	limits      ratelimit.Schedule
	rates       map[string]ratelimit.Rate
	lead        time.Duration
	slackLimits map[string]int
	lease       time.Duration
	// store, when set, makes the store (default: bolt in a temp dir).
	store func(*clock.Fake) store.Store
	// retryMax is the scheduler's Options.RetryMax (its default when zero).
	retryMax time.Duration
}

// hookTransport runs a hook before each request.
type hookTransport struct {
	base http.RoundTripper
	hook func(*http.Request)
}

func (h hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h.hook(r)
	return h.base.RoundTrip(r)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.start.IsZero() {
		o.start = at(9, 0)
	}
	e := &env{t: t, ctx: t.Context(), clk: clock.NewFake(o.start)}

	if o.store != nil {
		e.st = o.store(e.clk)
	} else {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "di.db"), bolt.WithClock(e.clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		e.st = st
	}

	ks, err := vault.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e.vault = vault.New(ks)

	e.gfake = googlefake.New(googlefake.Options{
		AutoApprove: true,
		Now:         e.clk.Now,
		SigningKey:  signingKey(),
		RequirePKCE: true,
	})
	e.gfault = faulttest.New(e.gfake)
	e.gsrv = httptest.NewServer(e.gfault)
	t.Cleanup(e.gsrv.Close)
	t.Cleanup(e.gfault.Clear) // runs first: hanging requests return before the server waits for them
	e.gfake.SetBaseURL(e.gsrv.URL)
	e.ghttp = copyClient(e.gsrv.Client())
	e.gc, err = google.New(e.ctx, google.Config{
		ClientID:           e.gfake.ClientID(),
		ClientSecret:       e.gfake.ClientSecret(),
		IssuerURL:          e.gsrv.URL,
		APIURL:             e.gsrv.URL + "/",
		SignInRedirectURL:  signInRedirect,
		ConnectRedirectURL: connectRedirect,
		HTTPClient:         e.ghttp,
		Now:                e.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}

	e.sfake = slackfake.New(slackfake.Options{Now: e.clk.Now, TokenRotation: o.tokenRotation, RateLimits: o.slackLimits})
	e.sfault = faulttest.New(e.sfake)
	e.ssrv = httptest.NewServer(e.sfault)
	t.Cleanup(e.ssrv.Close)
	t.Cleanup(e.sfault.Clear)
	e.sfake.SetBaseURL(e.ssrv.URL)
	e.shttp = copyClient(e.ssrv.Client())
	if o.slackHook != nil {
		e.shttp = &http.Client{Transport: hookTransport{base: e.shttp.Transport, hook: o.slackHook}}
	}
	e.sc, err = slack.New(slack.Config{
		ClientID:     e.sfake.ClientID(),
		ClientSecret: e.sfake.ClientSecret(),
		BaseURL:      e.ssrv.URL,
		RedirectURL:  slackConnectRedirect,
		HTTPClient:   e.shttp,
	})
	if err != nil {
		t.Fatal(err)
	}

	e.deps = scheduler.Deps{
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:    e.st,
		Vault:    e.vault,
		Clock:    e.clk,
		Sources:  map[string]scheduler.Source{"google": googleSource{e.gc}},
		Slack:    e.sc,
		Options:  scheduler.Options{ResyncInterval: resync, RetryMax: o.retryMax, RateLimits: o.rates, Lead: o.lead, Lease: o.lease},
		Metrics:  o.metrics,
		OnBroken: e.onBroken,
		Limits:   o.limits,
	}
	e.s, err = scheduler.New(e.deps)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// copyClient returns a copy of c, whose Timeout a test may set without touching the server's
// own client.
func copyClient(c *http.Client) *http.Client {
	cp := *c
	return &cp
}

// onBroken is the scheduler's OnBroken hook: it records who was told.
func (e *env) onBroken(_ context.Context, userID, provider string) {
	e.brokenMu.Lock()
	defer e.brokenMu.Unlock()
	e.brokenAt = append(e.brokenAt, userID+" "+provider)
}

// broken returns the OnBroken calls so far, "user provider" each.
func (e *env) broken() []string {
	e.brokenMu.Lock()
	defer e.brokenMu.Unlock()
	return slices.Clone(e.brokenAt)
}

// person is one user of the service with their accounts at the fakes.
type person struct {
	id        string
	googleSub string
	slackUser string
	google    store.Connection
	slack     store.Connection
}

// addPerson creates a user with rules, a fake Google account connected through the real OAuth
// flow, and a Slack connection with a user token the fake issued.
func (e *env) addPerson(id, googleSub, slackUser string, rules presence.Rules) *person {
	e.t.Helper()
	if err := e.st.CreateUser(e.ctx, store.User{ID: id, Created: e.clk.Now(), Rules: rules}); err != nil {
		e.t.Fatal(err)
	}
	p := &person{id: id, googleSub: googleSub, slackUser: slackUser}
	e.gfake.AddAccount(googleSub, id+"@sandbox.invalid", "Person "+id)
	p.google = e.connectGoogle(id, googleSub)
	tok := e.sfake.IssueUserToken(slackUser, slack.UserScopes...)
	p.slack = e.putSlack(id, slackUser, provider.Credential{AccessToken: tok})
	return p
}

// connectGoogle drives the real connect flow against the fake (which approves at once) and
// stores the connection with its sealed credential.
func (e *env) connectGoogle(userID, sub string) store.Connection {
	e.t.Helper()
	state, nonce, verifier := "state-"+userID, "nonce-"+userID, oauth2.GenerateVerifier()
	u, err := e.gc.ConnectURL(e.ctx, state, nonce, verifier)
	if err != nil {
		e.t.Fatal(err)
	}
	u += "&login_hint=" + url.QueryEscape(sub)
	q := e.followToRedirect(e.gsrv, u)
	if q.Get("state") != state {
		e.t.Fatalf("connect redirect state = %q, want %q", q.Get("state"), state)
	}
	cn, err := e.gc.FinishConnect(e.ctx, q.Get("code"), verifier, nonce, e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if cn.Subject != sub {
		e.t.Fatalf("connected Google account %q, want %q", cn.Subject, sub)
	}
	c := store.Connection{
		ID: "google-" + userID, UserID: userID, Provider: "google", ExternalID: cn.Subject,
		Scopes: cn.Scopes, Resources: []string{"primary"}, Health: store.HealthOK,
		Credential: e.seal(userID, "google-"+userID, cn.Credential),
		Created:    e.clk.Now(), Updated: e.clk.Now(),
	}
	if err := e.st.PutConnection(e.ctx, c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// connectSlack drives Slack's OAuth v2 flow against the fake (auto-approved as slackUser) and
// returns the install.
func (e *env) connectSlack(slackUser string) slack.Install {
	e.t.Helper()
	e.sfake.AutoApprove(slackUser)
	defer e.sfake.AutoApprove("")
	q := e.followToRedirect(e.ssrv, e.sc.AuthCodeURL("state-slack"))
	inst, err := e.sc.Exchange(e.ctx, q.Get("code"), e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return inst
}

func (e *env) putSlack(userID, slackUser string, cred provider.Credential) store.Connection {
	e.t.Helper()
	c := store.Connection{
		ID: "slack-" + userID, UserID: userID, Provider: "slack", ExternalID: slackUser,
		TeamID: slackfake.DefaultTeamID, Scopes: slack.UserScopes, Health: store.HealthOK,
		Credential: e.seal(userID, "slack-"+userID, cred),
		Created:    e.clk.Now(), Updated: e.clk.Now(),
	}
	if err := e.st.PutConnection(e.ctx, c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// followToRedirect GETs u and returns the query of the redirect to our (unreachable) callback.
func (e *env) followToRedirect(srv *httptest.Server, u string) url.Values {
	e.t.Helper()
	hc := &http.Client{
		Transport:     srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("GET authorize: HTTP %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	if loc.Query().Get("code") == "" {
		e.t.Fatalf("redirect %s has no code", loc.Redacted())
	}
	return loc.Query()
}

func (e *env) seal(userID, connID string, cred provider.Credential) []byte {
	e.t.Helper()
	pt, err := cred.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	blob, err := e.vault.Seal(pt, userID, connID)
	if err != nil {
		e.t.Fatal(err)
	}
	return blob
}

func (e *env) open(c store.Connection) provider.Credential {
	e.t.Helper()
	pt, err := e.vault.Open(c.Credential, c.UserID, c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	cred, err := provider.UnmarshalCredential(pt)
	if err != nil {
		e.t.Fatal(err)
	}
	return cred
}

func (e *env) connection(userID, id string) store.Connection {
	e.t.Helper()
	c, err := e.st.GetConnection(e.ctx, userID, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// process sets the fake clock to t (never backwards) and processes the person.
func (e *env) process(p *person, t time.Time) time.Time {
	e.t.Helper()
	e.clk.Set(t)
	if !e.clk.Now().Equal(t) {
		e.t.Fatalf("cannot move the fake clock back to %s (it is %s)", t, e.clk.Now())
	}
	next, err := e.s.ProcessUser(e.ctx, p.id)
	if err != nil {
		e.t.Fatalf("ProcessUser(%s) at %s: %v", p.id, t.Format("15:04:05"), err)
	}
	return next
}

func (e *env) addEvent(p *person, ev googlefake.Event) string {
	e.t.Helper()
	return e.gfake.AddEvent(p.googleSub, "primary", ev)
}

func meeting(start, end time.Time) googlefake.Event {
	return googlefake.Event{Summary: "Secret planning", Start: start, End: end}
}

// writes returns the calls the fake Slack received that change something, successful or not.
func (e *env) writes() []slackfake.Call {
	var out []slackfake.Call
	for _, c := range e.sfake.Calls() {
		switch c.Method {
		case "users.profile.set", "dnd.setSnooze", "dnd.endSnooze", "dnd.endDnd", "users.setPresence":
			out = append(out, c)
		}
	}
	return out
}

// okCalls returns the successful calls to method by a Slack user.
func (e *env) okCalls(method, slackUser string) []slackfake.Call {
	var out []slackfake.Call
	for _, c := range e.sfake.CallsTo(method) {
		if c.Status == http.StatusOK && c.Error == "" && c.User == slackUser {
			out = append(out, c)
		}
	}
	return out
}

func (e *env) wantNoWrites(when string) {
	e.t.Helper()
	if w := e.writes(); len(w) > 0 {
		e.t.Fatalf("%s: Slack writes %s, want none", when, describe(w))
	}
}

func (e *env) wantNext(got, want time.Time, when string) {
	e.t.Helper()
	if !got.Equal(want) {
		e.t.Errorf("%s: next due %s, want %s", when, got.Format(time.DateTime), want.Format(time.DateTime))
	}
}

func (e *env) overrideIDs(p *person) []string {
	e.t.Helper()
	os, err := e.st.ListOverrides(e.ctx, p.id)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, o := range os {
		ids = append(ids, o.ID)
	}
	slices.Sort(ids)
	return ids
}

func (e *env) activity(userID string) []store.Activity {
	e.t.Helper()
	a, err := e.st.ListActivity(e.ctx, userID, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// findActivity returns the newest entry with target and outcome.
func (e *env) findActivity(userID, target, outcome string) (store.Activity, bool) {
	for _, a := range e.activity(userID) {
		if a.Target == target && a.Outcome == outcome {
			return a, true
		}
	}
	return store.Activity{}, false
}

func describe(calls []slackfake.Call) string {
	var b []byte
	for _, c := range calls {
		b = append(b, "\n\t"...)
		b = append(b, c.Method...)
		b = append(b, ' ')
		b = append(b, c.Params.Encode()...)
		b = append(b, " at "...)
		b = append(b, c.Time.Format("15:04:05")...)
		if c.Error != "" {
			b = append(b, " → "...)
			b = append(b, c.Error...)
		}
	}
	return string(b)
}

// profileSet is the status a users.profile.set call asked for.
type profileSet struct {
	Text       string `json:"status_text"`
	Emoji      string `json:"status_emoji"`
	Expiration int64  `json:"status_expiration"`
}

func profileOf(t *testing.T, c slackfake.Call) profileSet {
	t.Helper()
	var p profileSet
	if err := json.Unmarshal([]byte(c.Params.Get("profile")), &p); err != nil {
		t.Fatalf("users.profile.set profile %q: %v", c.Params.Get("profile"), err)
	}
	return p
}

func wantProfile(t *testing.T, c slackfake.Call, text, emoji string, exp time.Time) {
	t.Helper()
	got := profileOf(t, c)
	var wantExp int64
	if !exp.IsZero() {
		wantExp = exp.Unix()
	}
	if got.Text != text || got.Emoji != emoji || got.Expiration != wantExp {
		t.Errorf("users.profile.set %+v, want text %q emoji %q expiration %d (%s)", got, text, emoji, wantExp, exp.UTC().Format(time.DateTime))
	}
}

// rules returns the default rules changed by fn.
func rules(fn func(*presence.Rules)) presence.Rules {
	r := presence.DefaultRules()
	if fn != nil {
		fn(&r)
	}
	return r
}

// --- 1. A meeting -------------------------------------------------------------------------

func TestMeetingSetsStatusOnceWithExpiration(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	start, end := at(10, 0), at(10, 30)
	e.addEvent(ada, meeting(start, end))
	mr := presence.DefaultRules().Kinds[presence.KindMeeting]

	next := e.process(ada, at(9, 50))
	e.wantNoWrites("before the meeting")
	e.wantNext(next, start, "before the meeting")

	next = e.process(ada, start)
	sets := e.sfake.CallsTo("users.profile.set")
	if len(sets) != 1 {
		t.Fatalf("at the start: %d users.profile.set calls, want 1:%s", len(sets), describe(sets))
	}
	if sets[0].Status != http.StatusOK || sets[0].Error != "" || sets[0].User != "U0001" || !sets[0].Time.Equal(start) {
		t.Errorf("users.profile.set answered %d %q for %s at %s", sets[0].Status, sets[0].Error, sets[0].User, sets[0].Time)
	}
	wantProfile(t, sets[0], mr.SlackText, mr.SlackEmoji, end)
	if w := e.writes(); len(w) != 1 {
		t.Errorf("at the start: writes %s, want only the status", describe(w))
	}
	if got := e.sfake.Status("U0001"); got.Text != mr.SlackText || got.Emoji != mr.SlackEmoji || !got.Expiration.Equal(end) {
		t.Errorf("fake Slack shows %+v", got)
	}
	e.wantNext(next, end, "at the start")
	if a, ok := e.findActivity(ada.id, "slack:status", "set"); !ok || a.Kind != string(presence.KindMeeting) || !a.At.Equal(start) {
		t.Errorf("activity %+v (found %v), want a meeting status set at the start", a, ok)
	}

	// Again at the same time: nothing differs from what we wrote.
	before := len(e.sfake.Calls())
	next = e.process(ada, start)
	if calls := e.sfake.Calls()[before:]; len(calls) != 0 {
		t.Errorf("processing again at the start called Slack:%s", describe(calls))
	}
	e.wantNext(next, end, "again at the start")

	// At the end: the expiration clears the status; no call at all.
	before = len(e.sfake.Calls())
	next = e.process(ada, end)
	if calls := e.sfake.Calls()[before:]; len(calls) != 0 {
		t.Errorf("at the end Slack was called:%s", describe(calls))
	}
	if got := e.sfake.Status("U0001"); got != (slackfake.Status{}) {
		t.Errorf("at the end fake Slack shows %+v, want it cleared by the expiration", got)
	}
	e.wantNext(next, at(9, 50).Add(resync), "at the end (next resync)")
	if n := len(e.sfake.CallsTo("users.profile.set")); n != 1 {
		t.Errorf("%d users.profile.set calls in all, want 1", n)
	}
}

// --- 2. Events that never count ------------------------------------------------------------

func TestDeclinedCancelledAndFreeEventsWriteNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	declined := meeting(at(10, 0), at(10, 30))
	declined.Attendees = []googlefake.Attendee{
		{Email: "u-ada@sandbox.invalid", Self: true, ResponseStatus: "declined"},
		{Email: "bob@example.invalid", ResponseStatus: "accepted"},
	}
	e.addEvent(ada, declined)
	cancelled := meeting(at(11, 0), at(11, 30))
	cancelled.Status = "cancelled"
	e.addEvent(ada, cancelled)
	free := meeting(at(12, 0), at(12, 30))
	free.Transparency = "transparent"
	e.addEvent(ada, free)
	// A real meeting later shows the pipeline works in this very setup.
	e.addEvent(ada, meeting(at(13, 0), at(13, 30)))

	next := e.process(ada, at(9, 50))
	e.wantNext(next, at(10, 50), "before (no boundary before the resync)")
	for _, ts := range []time.Time{at(10, 0), at(11, 0), at(12, 0)} {
		e.process(ada, ts)
		e.wantNoWrites("at " + ts.Format("15:04"))
	}
	if calls := e.sfake.Calls(); len(calls) != 0 {
		t.Errorf("Slack was called for events that never count:%s", describe(calls))
	}
	if n := len(e.gfake.CallsTo(googlefake.EndpointEventsList)); n == 0 {
		t.Fatal("the calendar was never read")
	}

	e.process(ada, at(13, 0))
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("at the real meeting: %d users.profile.set, want 1", len(sets))
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", at(13, 30))
}

// --- 3. All-day out of office in New York -------------------------------------------------

func TestAllDayOutOfOfficeInNewYork(t *testing.T) {
	e := newEnv(t, envOptions{start: at(3, 0)})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.TimeZone = "America/New_York" }))
	// Out of office Monday 12 and Tuesday 13 January (the end date is exclusive).
	e.addEvent(ada, googlefake.Event{
		Summary: "Vacation", EventType: "outOfOffice", AllDay: true,
		Start: time.Date(2026, 1, 12, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC),
	})
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	localMidnight := time.Date(2026, 1, 12, 0, 0, 0, 0, ny)
	backMidnight := time.Date(2026, 1, 14, 0, 0, 0, 0, ny)
	if !localMidnight.Equal(at(5, 0)) {
		t.Fatalf("midnight in New York is %s UTC, want 05:00", localMidnight.UTC())
	}

	// 23:00 on Sunday in New York (04:00 UTC): not yet.
	next := e.process(ada, at(4, 0))
	e.wantNoWrites("on Sunday evening in New York")
	e.wantNext(next, localMidnight, "on Sunday evening in New York")

	next = e.process(ada, localMidnight)
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("at local midnight: %d users.profile.set, want 1:%s", len(sets), describe(e.writes()))
	}
	wantProfile(t, sets[0], "Out of office until Wed 14 Jan", ":palm_tree:", backMidnight)

	snoozes := e.okCalls("dnd.setSnooze", "U0001")
	if len(snoozes) != 1 {
		t.Fatalf("%d dnd.setSnooze calls, want 1:%s", len(snoozes), describe(e.writes()))
	}
	if got, want := snoozes[0].Params.Get("num_minutes"), strconv.Itoa(int(backMidnight.Sub(localMidnight)/time.Minute)); got != want {
		t.Errorf("dnd.setSnooze num_minutes = %s, want %s", got, want)
	}
	if d := e.sfake.DND("U0001"); !d.Snoozed || !d.SnoozeEnd.Equal(backMidnight) {
		t.Errorf("fake Slack DND %+v, want snoozed until %s", d, backMidnight.UTC())
	}

	presenceCalls := e.okCalls("users.setPresence", "U0001")
	if len(presenceCalls) != 1 || presenceCalls[0].Params.Get("presence") != "away" {
		t.Errorf("users.setPresence calls:%s, want one with presence=away", describe(presenceCalls))
	}
	if got := e.sfake.Presence("U0001"); got != "away" {
		t.Errorf("fake Slack presence %q, want away", got)
	}
	if n := len(e.writes()); n != 3 {
		t.Errorf("%d writes, want 3 (status, snooze, presence):%s", n, describe(e.writes()))
	}
	// The next due time is the resync (the block lasts two days; the calendar was due again
	// at midnight too).
	e.wantNext(next, localMidnight.Add(resync), "at local midnight")

	// Idempotent: the same time again writes nothing.
	before := len(e.writes())
	e.process(ada, localMidnight)
	if n := len(e.writes()); n != before {
		t.Errorf("processing again wrote:%s", describe(e.writes()[before:]))
	}
}

// --- 4. A status the person set by hand ---------------------------------------------------

func TestOwnStatus(t *testing.T) {
	start, end := at(10, 0), at(10, 30)
	lunchExp := at(11, 0)

	t.Run("left alone when the rule says so", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = true }))
		e.addEvent(ada, meeting(start, end))
		e.sfake.SetStatus("U0001", "Lunch", ":sandwich:", lunchExp)

		e.process(ada, start)
		e.wantNoWrites("at the start")
		a, ok := e.findActivity(ada.id, "slack:status", "skipped")
		if !ok || a.Reason != "left your own status" || a.Kind != string(presence.KindMeeting) {
			t.Errorf("activity %+v (found %v), want skipped: left your own status", a, ok)
		}
		// The same block again: no second read, no write.
		before := len(e.sfake.Calls())
		e.process(ada, at(10, 10))
		if calls := e.sfake.Calls()[before:]; len(calls) != 0 {
			t.Errorf("processing the skipped block again called Slack:%s", describe(calls))
		}
		e.process(ada, end)
		e.wantNoWrites("at the end")
		if got := e.sfake.Status("U0001"); got.Text != "Lunch" || !got.Expiration.Equal(lunchExp) {
			t.Errorf("fake Slack shows %+v, want the person's own status untouched", got)
		}
	})

	t.Run("replaced, then restored with its original expiration", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
		e.addEvent(ada, meeting(start, end))
		e.sfake.SetStatus("U0001", "Lunch", ":sandwich:", lunchExp)

		e.process(ada, start)
		sets := e.okCalls("users.profile.set", "U0001")
		if len(sets) != 1 {
			t.Fatalf("at the start: %d users.profile.set, want 1", len(sets))
		}
		wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", end)
		ts, err := e.st.GetTargetState(e.ctx, ada.id, "slack:status:"+ada.slack.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts.Replaced) == 0 {
			t.Error("the replaced status was not kept")
		}
		if bytes.Contains(ts.Replaced, []byte("Lunch")) || bytes.Contains(ts.Written, []byte("Lunch")) {
			t.Error("the person's own status text is stored in clear")
		}

		next := e.process(ada, end)
		sets = e.okCalls("users.profile.set", "U0001")
		if len(sets) != 2 {
			t.Fatalf("at the end: %d users.profile.set in all, want 2:%s", len(sets), describe(e.writes()))
		}
		wantProfile(t, sets[1], "Lunch", ":sandwich:", lunchExp)
		if !sets[1].Time.Equal(end) {
			t.Errorf("restored at %s, want %s", sets[1].Time, end)
		}
		if got := e.sfake.Status("U0001"); got.Text != "Lunch" || got.Emoji != ":sandwich:" || !got.Expiration.Equal(lunchExp) {
			t.Errorf("fake Slack shows %+v, want Lunch until %s", got, lunchExp)
		}
		if a, ok := e.findActivity(ada.id, "slack:status", "restored"); !ok || !a.At.Equal(end) {
			t.Errorf("activity %+v (found %v), want restored at the end", a, ok)
		}
		ts, err = e.st.GetTargetState(e.ctx, ada.id, "slack:status:"+ada.slack.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts.Replaced) != 0 {
			t.Error("the replaced status is still kept after the restore")
		}
		// Nothing more to do later.
		before := len(e.writes())
		e.process(ada, next)
		if len(e.writes()) != before {
			t.Errorf("later processing wrote:%s", describe(e.writes()[before:]))
		}
	})

	t.Run("replaced, not restored once it has expired", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
		e.addEvent(ada, meeting(start, end))
		e.sfake.SetStatus("U0001", "Coffee", ":coffee:", at(10, 20))

		e.process(ada, start)
		if n := len(e.okCalls("users.profile.set", "U0001")); n != 1 {
			t.Fatalf("at the start: %d users.profile.set, want 1", n)
		}
		e.process(ada, end)
		if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
			t.Errorf("at the end: users.profile.set calls:%s, want none after the start's", describe(sets[1:]))
		}
		if got := e.sfake.Status("U0001"); got != (slackfake.Status{}) {
			t.Errorf("fake Slack shows %+v, want no status", got)
		}
	})
}

// --- 5. Do Not Disturb: never end a snooze we did not start -------------------------------

func TestDNDSnooze(t *testing.T) {
	start, end := at(10, 0), at(11, 0)
	focus := googlefake.Event{Summary: "Deep work", EventType: "focusTime", Start: start, End: end}
	back := func(t *testing.T, e *env, p *person, when time.Time) {
		t.Helper()
		if err := e.st.PutOverride(e.ctx, p.id, presence.Override{ID: "back-1", Kind: presence.OverrideBack, Start: when, Origin: "web"}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("the person's own snooze is left alone", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
		e.addEvent(ada, focus)

		// At 09:55 the person snoozes for 90 minutes themselves (until 11:25).
		e.clk.Set(at(9, 55))
		own := slackapi.New(e.open(ada.slack).AccessToken, slackapi.OptionAPIURL(e.ssrv.URL+"/api/"), slackapi.OptionHTTPClient(e.ssrv.Client()))
		if _, err := own.SetSnoozeContext(e.ctx, 90); err != nil {
			t.Fatal(err)
		}
		ownEnd := at(11, 25)
		e.sfake.Reset()

		e.process(ada, start)
		if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
			t.Fatalf("at the start: %d users.profile.set, want 1 (focus status)", len(sets))
		} else {
			wantProfile(t, sets[0], "Focusing", ":headphones:", end)
		}
		if c := e.sfake.CallsTo("dnd.setSnooze"); len(c) != 0 {
			t.Errorf("dnd.setSnooze called over the person's own snooze:%s", describe(c))
		}

		// "I'm back" ends the focus block early: our status goes, their snooze stays.
		back(t, e, ada, at(10, 20))
		e.process(ada, at(10, 20))
		e.process(ada, end)
		if c := append(e.sfake.CallsTo("dnd.setSnooze"), e.sfake.CallsTo("dnd.endSnooze")...); len(c) != 0 {
			t.Errorf("DND calls:%s, want none", describe(c))
		}
		if c := e.sfake.CallsTo("dnd.endDnd"); len(c) != 0 {
			t.Errorf("dnd.endDnd called:%s", describe(c))
		}
		if d := e.sfake.DND("U0001"); !d.Snoozed || !d.SnoozeEnd.Equal(ownEnd) {
			t.Errorf("fake Slack DND %+v, want the person's snooze until %s", d, ownEnd)
		}
		sets := e.okCalls("users.profile.set", "U0001")
		if len(sets) != 2 {
			t.Fatalf("users.profile.set calls:%s, want the focus status and its early clear", describe(sets))
		}
		wantProfile(t, sets[1], "", "", time.Time{})
	})

	t.Run("a snooze we started ends when the block ends early", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
		e.addEvent(ada, focus)

		e.process(ada, start)
		snoozes := e.okCalls("dnd.setSnooze", "U0001")
		if len(snoozes) != 1 || snoozes[0].Params.Get("num_minutes") != "60" {
			t.Fatalf("dnd.setSnooze calls:%s, want one of 60 minutes", describe(snoozes))
		}
		if d := e.sfake.DND("U0001"); !d.Snoozed || !d.SnoozeEnd.Equal(end) {
			t.Fatalf("fake Slack DND %+v, want snoozed until %s", d, end)
		}

		back(t, e, ada, at(10, 20))
		e.process(ada, at(10, 20))
		ends := e.okCalls("dnd.endSnooze", "U0001")
		if len(ends) != 1 || !ends[0].Time.Equal(at(10, 20)) {
			t.Fatalf("dnd.endSnooze calls:%s, want one at 10:20", describe(e.sfake.CallsTo("dnd.endSnooze")))
		}
		if d := e.sfake.DND("U0001"); d.Snoozed {
			t.Errorf("fake Slack DND %+v, want not snoozed", d)
		}
		if a, ok := e.findActivity(ada.id, "slack:dnd", "cleared"); !ok || !a.At.Equal(at(10, 20)) {
			t.Errorf("activity %+v (found %v), want the snooze cleared at 10:20", a, ok)
		}
		if got := e.sfake.Status("U0001"); got != (slackfake.Status{}) {
			t.Errorf("fake Slack shows %+v, want our status cleared", got)
		}

		// "I'm back" holds for the rest of the block; at the block's planned end nothing more
		// happens, and the override, now without effect, is pruned.
		before := len(e.writes())
		e.process(ada, at(10, 40))
		if ids := e.overrideIDs(ada); !slices.Equal(ids, []string{"back-1"}) {
			t.Errorf("overrides during the block %v, want [back-1]", ids)
		}
		e.process(ada, end)
		if len(e.writes()) != before {
			t.Errorf("after the early end:%s", describe(e.writes()[before:]))
		}
		if n := len(e.sfake.CallsTo("dnd.setSnooze")); n != 1 {
			t.Errorf("%d dnd.setSnooze calls in all, want 1", n)
		}
		if ids := e.overrideIDs(ada); len(ids) != 0 {
			t.Errorf("overrides after the block %v, want none (an ended \"back\" is pruned)", ids)
		}
	})

	t.Run("a snooze the person replaced after ours is left alone", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
		e.addEvent(ada, focus)

		e.process(ada, start)
		if n := len(e.okCalls("dnd.setSnooze", "U0001")); n != 1 {
			t.Fatalf("%d dnd.setSnooze calls at the start, want 1", n)
		}
		// At 10:10 the person snoozes for two hours themselves (until 12:10).
		e.clk.Set(at(10, 10))
		own := slackapi.New(e.open(ada.slack).AccessToken, slackapi.OptionAPIURL(e.ssrv.URL+"/api/"), slackapi.OptionHTTPClient(e.ssrv.Client()))
		if _, err := own.SetSnoozeContext(e.ctx, 120); err != nil {
			t.Fatal(err)
		}

		back(t, e, ada, at(10, 20))
		e.process(ada, at(10, 20))
		e.process(ada, end)
		if c := e.sfake.CallsTo("dnd.endSnooze"); len(c) != 0 {
			t.Errorf("the person's own snooze was ended:%s", describe(c))
		}
		if d := e.sfake.DND("U0001"); !d.Snoozed || !d.SnoozeEnd.Equal(at(12, 10)) {
			t.Errorf("fake Slack DND %+v, want the person's snooze until 12:10", d)
		}
	})
}

// --- 6. Rate limited ----------------------------------------------------------------------

func TestRateLimitedStatusIsRetriedAfterRetryAfter(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	start, end := at(10, 0), at(10, 30)
	e.addEvent(ada, meeting(start, end))
	e.process(ada, at(9, 50))
	e.sfake.FailNext("users.profile.set", http.StatusTooManyRequests, "")

	next := e.process(ada, start)
	if want := start.Add(time.Second); !next.Equal(want) {
		t.Errorf("after a 429: next due %s, want %s (Retry-After: 1)", next.Format("15:04:05"), want.Format("15:04:05"))
	}
	if ok := e.okCalls("users.profile.set", "U0001"); len(ok) != 0 {
		t.Errorf("a successful write despite the 429:%s", describe(ok))
	}
	if c := e.sfake.CallsTo("users.profile.set"); len(c) != 1 || c[0].Status != http.StatusTooManyRequests {
		t.Errorf("users.profile.set calls:%s, want one answered 429", describe(c))
	}
	a, ok := e.findActivity(ada.id, "slack:status", "rate_limited")
	if !ok || a.Reason != "rate limited, retrying after 1s" {
		t.Errorf("activity %+v (found %v), want rate limited", a, ok)
	}

	next = e.process(ada, start.Add(time.Second))
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("after the retry: %d successful users.profile.set, want 1", len(sets))
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", end)
	e.wantNext(next, end, "after the retry")
	if c := e.sfake.CallsTo("users.profile.set"); len(c) != 2 {
		t.Errorf("users.profile.set calls:%s, want the 429 and the retry", describe(c))
	}
	// And no further write for this block.
	e.process(ada, start.Add(2*time.Second))
	if n := len(e.okCalls("users.profile.set", "U0001")); n != 1 {
		t.Errorf("%d successful users.profile.set in all, want 1", n)
	}
}

// --- 7. token_revoked ---------------------------------------------------------------------

func TestRevokedSlackTokenBreaksOnlyThatConnection(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	grace := e.addPerson("u-grace", "sub-grace", "U0002", rules(nil))
	start, end := at(10, 0), at(10, 30)
	e.addEvent(ada, meeting(start, end))
	e.addEvent(grace, meeting(start, end))
	e.sfake.RevokeUserTokens("U0001")

	// Both are due at the start and processed in the same run of the loop.
	for _, p := range []*person{ada, grace} {
		if err := e.st.MarkDue(e.ctx, p.id, start); err != nil {
			t.Fatal(err)
		}
	}
	e.clk.Set(start)
	stop := runLoop(t, e)
	waitFor(t, e, "Ada's Slack connection broken and Grace's status set", func() bool {
		c, err := e.st.GetConnection(e.ctx, ada.id, ada.slack.ID)
		return err == nil && c.Health == store.HealthBroken && len(e.okCalls("users.profile.set", "U0002")) == 1 && e.idle(end)
	})
	stop()

	sc := e.connection(ada.id, ada.slack.ID)
	if sc.Health != store.HealthBroken || sc.HealthReason != "token_revoked" {
		t.Errorf("Ada's Slack connection: health %q reason %q, want broken token_revoked", sc.Health, sc.HealthReason)
	}
	if a, ok := e.findActivity(ada.id, "slack", "broken"); !ok || a.Reason != "reconnect needed (token_revoked)" {
		t.Errorf("activity %+v (found %v), want the connection broken", a, ok)
	}
	if got := e.broken(); !slices.Equal(got, []string{"u-ada slack"}) {
		t.Errorf("OnBroken calls %q, want Ada told once about Slack", got)
	}
	if gc := e.connection(ada.id, ada.google.ID); gc.Health != store.HealthOK {
		t.Errorf("Ada's Google connection: health %q, want ok", gc.Health)
	}
	sets := e.okCalls("users.profile.set", "U0002")
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", end)
	if c := e.sfake.CallsTo("users.profile.set"); len(c) != 1 {
		t.Errorf("users.profile.set calls:%s, want only Grace's", describe(c))
	}
	if got := e.sfake.Status("U0002"); got.Text != "In a meeting" {
		t.Errorf("Grace's status %+v", got)
	}

	// Later Ada's calendar keeps syncing, and the broken Slack connection is not called.
	adaLists := func() int {
		n := 0
		for _, c := range e.gfake.CallsTo(googlefake.EndpointEventsList) {
			if c.Account == ada.googleSub && c.Status == http.StatusOK {
				n++
			}
		}
		return n
	}
	synced := adaLists()
	if synced == 0 {
		t.Fatal("Ada's calendar was never read")
	}
	slackCalls := len(e.sfake.Calls())
	e.process(ada, start.Add(resync))
	if adaLists() != synced+1 {
		t.Errorf("Ada's calendar reads %d → %d, want one more at the resync", synced, adaLists())
	}
	if calls := e.sfake.Calls()[slackCalls:]; len(calls) != 0 {
		t.Errorf("the broken Slack connection was called:%s", describe(calls))
	}
	if gc := e.connection(ada.id, ada.google.ID); gc.Health != store.HealthOK {
		t.Errorf("Ada's Google connection: health %q, want ok", gc.Health)
	}
	ss, err := e.st.GetSyncState(e.ctx, ada.google.ID, "primary")
	if err != nil || !ss.Synced.Equal(start.Add(resync)) {
		t.Errorf("Ada's sync state %+v, %v: want synced at %s", ss, err, start.Add(resync))
	}
}

// --- 8. Token rotation --------------------------------------------------------------------

func TestSlackTokenRotation(t *testing.T) {
	e := newEnv(t, envOptions{tokenRotation: true})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	inst := e.connectSlack("U0001")
	if inst.Credential.RefreshToken == "" || inst.Credential.Expiry.IsZero() {
		t.Fatal("the install has no refresh token or expiry: is token rotation on?")
	}
	old := inst.Credential
	ada.slack = e.putSlack(ada.id, "U0001", old)
	oldBlob := ada.slack.Credential

	// Four minutes before the access token expires, a meeting starts.
	start := old.Expiry.Add(-4 * time.Minute)
	e.addEvent(ada, meeting(start, start.Add(30*time.Minute)))
	e.sfake.Reset()
	e.process(ada, start)

	refreshes := e.sfake.CallsTo("oauth.v2.access")
	if len(refreshes) != 1 || refreshes[0].Params.Get("grant_type") != "refresh_token" || refreshes[0].Error != "" {
		t.Fatalf("oauth.v2.access calls:%s, want one successful refresh", describe(refreshes))
	}
	stored := e.connection(ada.id, ada.slack.ID)
	if string(stored.Credential) == string(oldBlob) {
		t.Fatal("the stored credential did not change")
	}
	fresh := e.open(stored)
	if fresh.AccessToken == "" || fresh.AccessToken == old.AccessToken {
		t.Error("the stored access token is not a new one")
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == old.RefreshToken {
		t.Error("the stored refresh token is not the rotated one")
	}
	if want := start.Add(slackfake.RotatingTokenLifetime); !fresh.Expiry.Equal(want) {
		t.Errorf("stored expiry %s, want %s", fresh.Expiry, want)
	}
	if a, ok := e.findActivity(ada.id, "slack", "refreshed"); !ok || a.Kind != "token" {
		t.Errorf("activity %+v (found %v), want the token refreshed", a, ok)
	}
	// The status was written with the new token.
	if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
		t.Errorf("%d users.profile.set, want 1", len(sets))
	}
	// The old refresh token is spent.
	_, err := e.sc.Refresh(e.ctx, old, e.clk.Now())
	if reason, ok := provider.RevokedReason(err); !ok || reason != "invalid_refresh_token" {
		t.Errorf("refresh with the old refresh token: %v, want invalid_refresh_token", err)
	}
	// No second refresh while the new token is fresh; and after the old token's expiry the
	// writes still work (they use the new token).
	e.sfake.Reset()
	e.addEvent(ada, meeting(old.Expiry.Add(time.Hour), old.Expiry.Add(2*time.Hour)))
	e.process(ada, old.Expiry.Add(time.Hour))
	if c := e.sfake.CallsTo("oauth.v2.access"); len(c) != 0 {
		t.Errorf("refreshed again:%s", describe(c))
	}
	if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
		t.Errorf("after the old token expired: %d successful users.profile.set, want 1:%s", len(sets), describe(e.sfake.Calls()))
	}
}

// TestSlackTokenExpiredIsRefreshedAndRetried covers a token Slack says has expired although
// the stored expiry did not say so: the scheduler refreshes and retries once.
func TestSlackTokenExpiredIsRefreshedAndRetried(t *testing.T) {
	e := newEnv(t, envOptions{tokenRotation: true})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	inst := e.connectSlack("U0001")
	cred := inst.Credential
	expiry := cred.Expiry
	cred.Expiry = time.Time{} // unknown
	ada.slack = e.putSlack(ada.id, "U0001", cred)

	start := expiry.Add(time.Hour)
	e.addEvent(ada, meeting(start, start.Add(30*time.Minute)))
	e.sfake.Reset()
	e.process(ada, start)

	if c := e.sfake.CallsTo("oauth.v2.access"); len(c) != 1 || c[0].Error != "" {
		t.Fatalf("oauth.v2.access calls:%s, want one refresh", describe(c))
	}
	if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
		t.Fatalf("%d successful users.profile.set, want 1:%s", len(sets), describe(e.sfake.Calls()))
	}
	if c := e.connection(ada.id, ada.slack.ID); c.Health != store.HealthOK {
		t.Errorf("Slack connection %q %q, want ok", c.Health, c.HealthReason)
	}
	if fresh := e.open(e.connection(ada.id, ada.slack.ID)); fresh.AccessToken == cred.AccessToken {
		t.Error("the refreshed token was not stored")
	}
}

// TestRefreshSurvivesReencryption: a key rotation seals the credential again while the
// scheduler is refreshing its token (after reading it, before storing the refreshed one). The
// refreshed token is stored all the same, not lost: with token rotation the old refresh token
// is spent, and losing the new one would break the connection at the next refresh.
func TestRefreshSurvivesReencryption(t *testing.T) {
	var e *env
	var slackConn store.Connection
	resealed := 0
	e = newEnv(t, envOptions{tokenRotation: true, slackHook: func(r *http.Request) {
		if slackConn.ID == "" || !strings.HasSuffix(r.URL.Path, "/oauth.v2.access") || resealed > 0 {
			return
		}
		// What `keys rotate` does to the credential: the same plaintext, sealed again.
		c := e.connection(slackConn.UserID, slackConn.ID)
		pt, err := e.vault.Open(c.Credential, c.UserID, c.ID)
		if err != nil {
			t.Errorf("open: %v", err)
			return
		}
		blob, _ := e.vault.Seal(pt, c.UserID, c.ID)
		if err := e.st.SwapCredential(e.ctx, c.UserID, c.ID, c.Credential, blob); err != nil {
			t.Errorf("re-encrypt: %v", err)
		}
		resealed++
	}})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	inst := e.connectSlack("U0001")
	old := inst.Credential
	ada.slack = e.putSlack(ada.id, "U0001", old)
	slackConn = ada.slack

	start := old.Expiry.Add(-4 * time.Minute)
	e.addEvent(ada, meeting(start, start.Add(30*time.Minute)))
	e.sfake.Reset()
	e.process(ada, start)

	if resealed != 1 {
		t.Fatalf("the credential was re-encrypted %d times during the refresh, want 1", resealed)
	}
	if c := e.sfake.CallsTo("oauth.v2.access"); len(c) != 1 || c[0].Error != "" {
		t.Fatalf("oauth.v2.access calls:%s, want one refresh", describe(c))
	}
	if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
		t.Errorf("%d successful users.profile.set, want 1:%s", len(sets), describe(e.sfake.Calls()))
	}
	fresh := e.open(e.connection(ada.id, ada.slack.ID))
	if fresh.RefreshToken == "" || fresh.RefreshToken == old.RefreshToken || fresh.AccessToken == old.AccessToken {
		t.Fatal("the refreshed token was lost: the store still holds the spent one")
	}
	// The stored refresh token is the live one.
	if _, err := e.sc.Refresh(e.ctx, fresh, e.clk.Now()); err != nil {
		t.Errorf("refresh with the stored token: %v", err)
	}
}

// --- 9. The Run loop ----------------------------------------------------------------------

func TestRunWritesAtTheBoundaryNotBefore(t *testing.T) {
	e := newEnv(t, envOptions{start: at(9, 50)})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	start, end := at(10, 0), at(10, 30)
	e.addEvent(ada, meeting(start, end))
	if err := e.st.MarkDue(e.ctx, ada.id, start); err != nil {
		t.Fatal(err)
	}

	stop := runLoop(t, e)
	defer stop()
	waitFor(t, e, "the loop to sleep until the start", func() bool { return e.idle(start) })
	if calls := e.sfake.Calls(); len(calls) != 0 {
		t.Fatalf("Slack called before the start:%s", describe(calls))
	}
	if calls := e.gfake.CallsTo(googlefake.EndpointEventsList); len(calls) != 0 {
		t.Fatalf("calendar read before the person was due: %d calls", len(calls))
	}

	// A second before the start: still asleep, nothing written.
	e.clk.Set(start.Add(-time.Second))
	if d, ok := e.clk.NextDeadline(); !ok || !d.Equal(start) {
		t.Fatalf("loop deadline %s (%v), want %s", d, ok, start)
	}
	if calls := e.sfake.Calls(); len(calls) != 0 {
		t.Fatalf("Slack called before the start:%s", describe(calls))
	}

	e.clk.Set(start)
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := e.sfake.WaitForCall(ctx, "users.profile.set", 1); err != nil {
		t.Fatalf("no users.profile.set once the fake time reached the start: %v", err)
	}
	sets := e.sfake.CallsTo("users.profile.set")
	if !sets[0].Time.Equal(start) {
		t.Errorf("written at %s, want %s", sets[0].Time, start)
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", end)
	// The loop completes the claim and sleeps until the meeting's end.
	waitFor(t, e, "the loop to sleep until the end", func() bool { return e.idle(end) })
	if due, ok, err := e.st.NextDue(e.ctx); err != nil || !ok || !due.Equal(end) {
		t.Errorf("next due %s %v %v, want %s", due, ok, err, end)
	}

	stop()
	if n := len(e.sfake.CallsTo("users.profile.set")); n != 1 {
		t.Errorf("%d users.profile.set calls, want 1", n)
	}
}

// runLoop starts s.Run and returns a function that cancels it and waits for Run to return
// (idempotent; also run at cleanup).
func runLoop(t *testing.T, e *env) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// idle reports whether the loop sleeps on its timer until deadline, the earliest due time.
// (While a claim is held the earliest due time is its lease end, now+lease, so callers pick a
// deadline that no lease can equal.)
func (e *env) idle(deadline time.Time) bool {
	d, ok := e.clk.NextDeadline()
	if !ok || !d.Equal(deadline) {
		return false
	}
	due, ok, err := e.st.NextDue(e.ctx)
	return err == nil && ok && due.Equal(deadline)
}

// waitFor waits until cond holds, re-checking whenever the fake clock's timers change (the
// loop resets its timer each time it goes back to sleep), for at most ten seconds.
func waitFor(t *testing.T, e *env, what string, cond func() bool) {
	t.Helper()
	waitForWhy(t, e, what, cond, func() string {
		d, ok := e.clk.NextDeadline()
		return fmt.Sprintf("loop deadline %s %v", d, ok)
	})
}

// --- More boundaries ------------------------------------------------------------------------

// A meeting followed at once by a focus block: one write per block, and the person's own
// status, replaced by the first, comes back after the last with its original expiration.
func TestBackToBackBlocksRestoreOwnStatusAfterTheLast(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
	e.addEvent(ada, meeting(at(10, 0), at(10, 30)))
	e.addEvent(ada, googlefake.Event{Summary: "Deep work", EventType: "focusTime", Start: at(10, 30), End: at(11, 0)})
	e.sfake.SetStatus("U0001", "Commuting", ":bus:", at(12, 0))

	if next := e.process(ada, at(10, 0)); !next.Equal(at(10, 30)) {
		t.Errorf("next due %s, want 10:30", next.Format("15:04"))
	}
	if next := e.process(ada, at(10, 30)); !next.Equal(at(11, 0)) {
		t.Errorf("next due %s, want 11:00", next.Format("15:04"))
	}
	e.process(ada, at(11, 0))
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 3 {
		t.Fatalf("users.profile.set calls:%s, want meeting, focus, restore", describe(sets))
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", at(10, 30))
	wantProfile(t, sets[1], "Focusing", ":headphones:", at(11, 0))
	wantProfile(t, sets[2], "Commuting", ":bus:", at(12, 0))
	if n := len(e.okCalls("dnd.setSnooze", "U0001")); n != 1 {
		t.Errorf("%d dnd.setSnooze calls, want 1 (the focus block)", n)
	}
	if c := e.sfake.CallsTo("dnd.endSnooze"); len(c) != 0 {
		t.Errorf("dnd.endSnooze at the focus block's normal end:%s", describe(c))
	}
}

// A status the person sets by hand during our block is theirs: when the block ends early we
// neither clear it nor restore the one we replaced over it.
func TestStatusChangedByHandDuringTheBlockIsLeftAlone(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
	e.addEvent(ada, meeting(at(10, 0), at(11, 0)))
	e.sfake.SetStatus("U0001", "Lunch", ":sandwich:", time.Time{})

	e.process(ada, at(10, 0))
	e.sfake.SetStatus("U0001", "Running late", ":runner:", time.Time{})
	if err := e.st.PutOverride(e.ctx, ada.id, presence.Override{ID: "back-1", Kind: presence.OverrideBack, Start: at(10, 20), Origin: "slack"}); err != nil {
		t.Fatal(err)
	}
	e.process(ada, at(10, 20))
	e.process(ada, at(11, 0))
	if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
		t.Errorf("users.profile.set calls:%s, want only the meeting's", describe(sets))
	}
	if got := e.sfake.Status("U0001"); got.Text != "Running late" {
		t.Errorf("fake Slack shows %+v, want the person's new status", got)
	}
}

// A meeting deleted while in progress: the next sync drops it and our status goes at once,
// with the person's own status restored.
func TestMeetingDeletedDuringTheBlock(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
	id := e.addEvent(ada, meeting(at(10, 0), at(12, 0)))
	e.sfake.SetStatus("U0001", "Lunch", ":sandwich:", time.Time{})

	e.process(ada, at(10, 0))
	e.clk.Set(at(10, 30))
	if err := e.gfake.DeleteEvent(ada.googleSub, "primary", id); err != nil {
		t.Fatal(err)
	}
	e.process(ada, at(10, 0).Add(resync)) // the resync
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 2 {
		t.Fatalf("users.profile.set calls:%s, want the meeting's and the restore", describe(sets))
	}
	wantProfile(t, sets[1], "Lunch", ":sandwich:", time.Time{})
}

// A 429 on the restore at the end: the restore happens at the retry, once.
func TestRateLimitedRestoreIsRetried(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
	e.addEvent(ada, meeting(at(10, 0), at(10, 30)))
	e.sfake.SetStatus("U0001", "Lunch", ":sandwich:", at(12, 0))
	e.process(ada, at(10, 0))
	e.sfake.FailNext("users.profile.set", http.StatusTooManyRequests, "")
	if next := e.process(ada, at(10, 30)); !next.Equal(at(10, 30).Add(time.Second)) {
		t.Errorf("next due %s, want 10:30:01", next.Format("15:04:05"))
	}
	e.process(ada, at(10, 30).Add(time.Second))
	e.process(ada, at(10, 30).Add(2*time.Second))
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 2 {
		t.Fatalf("users.profile.set calls:%s, want the meeting's and one restore", describe(sets))
	}
	wantProfile(t, sets[1], "Lunch", ":sandwich:", at(12, 0))
}

// A revoked Google grant breaks the Google connection; the cached events still drive Slack.
func TestRevokedGoogleGrantKeepsCachedEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	e.addEvent(ada, meeting(at(10, 0), at(10, 30)))
	e.process(ada, at(9, 0))
	e.gfake.RevokeTokens(ada.googleSub)

	e.process(ada, at(10, 0)) // the resync is due and fails
	gc := e.connection(ada.id, ada.google.ID)
	if gc.Health != store.HealthBroken || gc.HealthReason != "invalid_grant" {
		t.Errorf("Google connection %q %q, want broken invalid_grant", gc.Health, gc.HealthReason)
	}
	if got := e.broken(); !slices.Equal(got, []string{"u-ada google"}) {
		t.Errorf("OnBroken calls %q, want Ada told once about Google", got)
	}
	if c := e.connection(ada.id, ada.slack.ID); c.Health != store.HealthOK {
		t.Errorf("Slack connection %q, want ok", c.Health)
	}
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("users.profile.set calls:%s, want the meeting's from the cached events", describe(sets))
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", at(10, 30))
}

// A rule with text and no emoji: Slack shows its default emoji (:speech_balloon:) with the
// text, and the status is still recognised as ours, so "I'm back" clears it and the person's
// own status comes back.
func TestStatusWithoutEmojiIsStillOurs(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) {
		r.LeaveOwnStatus = false
		mr := r.Kinds[presence.KindMeeting]
		mr.SlackEmoji = ""
		r.Kinds[presence.KindMeeting] = mr
	}))
	e.addEvent(ada, meeting(at(10, 0), at(11, 0)))
	e.sfake.SetStatus("U0001", "Lunch", ":sandwich:", at(12, 0))

	e.process(ada, at(10, 0))
	if got := e.sfake.Status("U0001"); got.Text != "In a meeting" || got.Emoji != ":speech_balloon:" {
		t.Fatalf("fake Slack shows %+v, want our text with Slack's default emoji", got)
	}
	if err := e.st.PutOverride(e.ctx, ada.id, presence.Override{ID: "back-1", Kind: presence.OverrideBack, Start: at(10, 20), Origin: "slack"}); err != nil {
		t.Fatal(err)
	}
	e.process(ada, at(10, 20))
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 2 {
		t.Fatalf("users.profile.set calls:%s, want ours and the restore", describe(sets))
	}
	wantProfile(t, sets[1], "Lunch", ":sandwich:", at(12, 0))
	if got := e.sfake.Status("U0001"); got.Text != "Lunch" {
		t.Errorf("fake Slack shows %+v, want Lunch back", got)
	}
}

// A meeting extended while in progress: the next sync moves our status's expiration (one more
// write), even with a text-only rule and "leave my own status" on: the status read back is
// recognised as ours, not taken for the person's.
func TestMeetingExtendedDuringTheBlockMovesTheExpiration(t *testing.T) {
	e := newEnv(t, envOptions{})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) {
		r.LeaveOwnStatus = true
		mr := r.Kinds[presence.KindMeeting]
		mr.SlackEmoji = ""
		r.Kinds[presence.KindMeeting] = mr
	}))
	id := e.addEvent(ada, meeting(at(10, 0), at(12, 0)))

	e.process(ada, at(10, 0))
	e.clk.Set(at(10, 30))
	if err := e.gfake.UpdateEvent(ada.googleSub, "primary", id, func(ev *googlefake.Event) { ev.End = at(13, 0) }); err != nil {
		t.Fatal(err)
	}
	next := e.process(ada, at(11, 0)) // the resync
	e.wantNext(next, at(12, 0), "after the extension (next resync)")
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 2 {
		t.Fatalf("users.profile.set calls:%s, want the first and the extension", describe(sets))
	}
	wantProfile(t, sets[1], "In a meeting", "", at(13, 0))
	if a, ok := e.findActivity(ada.id, "slack:status", "skipped"); ok {
		t.Errorf("activity %+v: our own status was taken for the person's", a)
	}
	if got := e.sfake.Status("U0001"); !got.Expiration.Equal(at(13, 0)) {
		t.Errorf("fake Slack shows %+v, want it to expire at 13:00", got)
	}
}

// A person disconnects Slack (the web revokes the grant, then deletes the connection) or
// reconnects it while the scheduler is working on them: the token_revoked the scheduler then
// gets must neither bring the deleted connection back nor mark the new one broken.
func TestConnectionChangedWhileProcessing(t *testing.T) {
	for _, reconnect := range []bool{false, true} {
		name := "disconnected"
		if reconnect {
			name = "reconnected"
		}
		t.Run(name, func(t *testing.T) {
			var e *env
			var ada *person
			var once sync.Once
			var newBlob []byte
			e = newEnv(t, envOptions{slackHook: func(r *http.Request) {
				if r.URL.Path != "/api/users.profile.get" {
					return
				}
				once.Do(func() {
					e.sfake.RevokeUserTokens("U0001")
					if reconnect {
						tok := e.sfake.IssueUserToken("U0001", slack.UserScopes...)
						newBlob = e.putSlack(ada.id, "U0001", provider.Credential{AccessToken: tok}).Credential
						return
					}
					if err := e.st.DeleteConnection(context.WithoutCancel(r.Context()), ada.id, ada.slack.ID); err != nil {
						t.Error(err)
					}
				})
			}})
			ada = e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
			e.addEvent(ada, meeting(at(10, 0), at(10, 30)))

			e.process(ada, at(10, 0))
			c, err := e.st.GetConnection(e.ctx, ada.id, ada.slack.ID)
			if !reconnect {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("the disconnected Slack connection is back: %+v, %v", c, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Health != store.HealthOK || !bytes.Equal(c.Credential, newBlob) {
				t.Fatalf("the reconnected Slack connection: health %q %q, new credential kept %v", c.Health, c.HealthReason, bytes.Equal(c.Credential, newBlob))
			}
			// The next run uses the new grant.
			e.process(ada, at(10, 0).Add(time.Second))
			if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
				t.Errorf("users.profile.set calls:%s, want one with the new grant", describe(e.sfake.Calls()))
			}
		})
	}
}
