package scheduler_test

// Integration tests of the scheduler with Microsoft (issue 4): graphfake (identity platform and
// Graph) and zoomfake served by httptest next to the Google and Slack fakes of
// scheduler_test.go, the real Microsoft and Zoom clients, the bolt store, the vault and the fake
// clock. Outlook is a source, Teams presence and status message a target; the tests drive
// ProcessUser at chosen times and assert what the fakes received and the next due times.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
	"github.com/dontinterrupt/dontinterrupt/internal/faulttest"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

// --- Adapters (copies of those in cmd/dontinterrupt, which this package cannot import) ------

// outlookResource names the one resource of an Outlook connection.
const outlookResource = "calendar"

// outlookSource adapts the Microsoft client to the scheduler's Source and Watcher.
type outlookSource struct {
	c       *microsoft.Client
	horizon time.Duration
}

func (o outlookSource) Sync(ctx context.Context, cred provider.Credential, _, token string, now time.Time, titleEmoji bool) (scheduler.SyncResult, error) {
	r, err := o.c.Sync(ctx, cred, token, now, o.horizon, titleEmoji)
	return scheduler.SyncResult(r), err
}

func (o outlookSource) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return o.c.Refresh(ctx, cred, now)
}

func (o outlookSource) Watch(ctx context.Context, cred provider.Credential, _, notifyURL, token string, now time.Time) (string, time.Time, error) {
	return o.c.Subscribe(ctx, cred, notifyURL, token, now)
}

func (o outlookSource) RenewWatch(ctx context.Context, cred provider.Credential, id string, now time.Time) (time.Time, error) {
	exp, err := o.c.Renew(ctx, cred, id, now)
	if errors.Is(err, microsoft.ErrSubscriptionGone) {
		return exp, scheduler.ErrWatchGone
	}
	return exp, err
}

// teamsTarget adapts the Microsoft client to the scheduler's TeamsAPI.
type teamsTarget struct{ c *microsoft.Client }

func (t teamsTarget) Teams(ctx context.Context, cred provider.Credential) (scheduler.TeamsState, error) {
	st, err := t.c.Teams(ctx, cred)
	return scheduler.TeamsState(st), err
}

func (t teamsTarget) SetPresence(ctx context.Context, cred provider.Credential, availability, activity string, d time.Duration) (time.Duration, error) {
	return t.c.SetPresence(ctx, cred, availability, activity, d)
}

func (t teamsTarget) ClearPresence(ctx context.Context, cred provider.Credential) error {
	return t.c.ClearPresence(ctx, cred)
}

func (t teamsTarget) SetStatusMessage(ctx context.Context, cred provider.Credential, text string, expiry time.Time) error {
	return t.c.SetStatusMessage(ctx, cred, text, expiry)
}

func (t teamsTarget) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return t.c.Refresh(ctx, cred, now)
}

// zoomSource adapts the Zoom client to the scheduler's Source.
type zoomSource struct{ c *zoom.Client }

func (z zoomSource) Sync(ctx context.Context, cred provider.Credential, _, _ string, now time.Time, _ bool) (scheduler.SyncResult, error) {
	evs, err := z.c.Meetings(ctx, cred, now, nil)
	return scheduler.SyncResult{Full: true, Events: evs}, err
}

func (z zoomSource) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return z.c.Refresh(ctx, cred, now)
}

// --- The environment ------------------------------------------------------------------------

const (
	outlookConnectRedirect = "http://di.invalid/connect/outlook/callback"
	teamsConnectRedirect   = "http://di.invalid/connect/teams/callback"
	msSignInRedirect       = "http://di.invalid/signin/microsoft/callback"
	zoomConnectRedirect    = "http://di.invalid/connect/zoom/callback"

	// msResync is the resync interval of these tests: longer than every block they use, so
	// the next due times ProcessUser returns are block boundaries and session renewals.
	msResync = 12 * time.Hour
	// horizon is the scheduler's (default) planning horizon, which the Outlook source uses too.
	horizon = 36 * time.Hour

	oidAda = "0d5c1a2b-0000-4000-8000-0000000000ad"
)

// msEnv is the env of scheduler_test.go with Microsoft and Zoom added, and a scheduler that
// knows every source and target.
type msEnv struct {
	*env
	mfake  *graphfake.Server
	mfault *faulttest.Injector // in front of mfake
	msrv   *httptest.Server
	mhttp  *http.Client // the Microsoft client's
	mc     *microsoft.Client

	zfake  *zoomfake.Server
	zfault *faulttest.Injector // in front of zfake
	zsrv   *httptest.Server
	zhttp  *http.Client // the Zoom client's
	zc     *zoom.Client
}

type msEnvOptions struct {
	start  time.Time
	resync time.Duration              // msResync when zero
	notify map[string]string          // the scheduler's NotifyURLs
	graph  func(o *graphfake.Options) // changes graphfake's options
	zoom   func(o *zoomfake.Options)  // changes zoomfake's options
	// slackRotation turns on Slack's token rotation (envOptions.tokenRotation).
	slackRotation bool
	// retryMax is envOptions'.
	retryMax time.Duration
}

func newMSEnv(t *testing.T, o msEnvOptions) *msEnv {
	t.Helper()
	e := &msEnv{env: newEnv(t, envOptions{start: o.start, tokenRotation: o.slackRotation})}
	if o.resync == 0 {
		o.resync = msResync
	}

	gopts := graphfake.Options{
		AutoApprove: true,
		Now:         e.clk.Now,
		SigningKey:  signingKey(),
		// Tokens from IssueToken have no refresh token: let them outlive every test.
		AccessTokenTTL:    30 * 24 * time.Hour,
		AllowHTTPWebhooks: true,
	}
	if o.graph != nil {
		o.graph(&gopts)
	}
	e.mfake = graphfake.New(gopts)
	e.mfault = faulttest.New(e.mfake)
	e.msrv = httptest.NewServer(e.mfault)
	t.Cleanup(e.msrv.Close)
	t.Cleanup(e.mfake.Close) // runs first: stops webhook deliveries
	t.Cleanup(e.mfault.Clear)
	e.mfake.SetBaseURL(e.msrv.URL)
	e.mhttp = copyClient(e.msrv.Client())
	var err error
	e.mc, err = microsoft.New(microsoft.Config{
		ClientID:           e.mfake.ClientID(),
		ClientSecret:       e.mfake.ClientSecret(),
		AuthorityURL:       e.msrv.URL,
		GraphURL:           e.msrv.URL + "/v1.0",
		SignInRedirectURL:  msSignInRedirect,
		OutlookRedirectURL: outlookConnectRedirect,
		TeamsRedirectURL:   teamsConnectRedirect,
		HTTPClient:         e.mhttp,
		Now:                e.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}

	zopts := zoomfake.Options{Now: e.clk.Now}
	if o.zoom != nil {
		o.zoom(&zopts)
	}
	e.zfake = zoomfake.New(zopts)
	e.zfault = faulttest.New(e.zfake)
	e.zsrv = httptest.NewServer(e.zfault)
	t.Cleanup(e.zsrv.Close)
	t.Cleanup(e.zfault.Clear)
	e.zhttp = copyClient(e.zsrv.Client())
	e.zc, err = zoom.New(zoom.Config{
		ClientID:     e.zfake.ClientID(),
		ClientSecret: e.zfake.ClientSecret(),
		OAuthURL:     e.zsrv.URL,
		APIURL:       e.zsrv.URL + "/v2",
		RedirectURL:  zoomConnectRedirect,
		HTTPClient:   e.zhttp,
		Now:          e.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}

	e.s, err = scheduler.New(scheduler.Deps{
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:  e.st,
		Vault:  e.vault,
		Clock:  e.clk,
		Sources: map[string]scheduler.Source{
			"google":  googleSource{e.gc},
			"outlook": outlookSource{e.mc, horizon},
			"zoom":    zoomSource{e.zc},
		},
		Slack:    e.sc,
		Teams:    teamsTarget{e.mc},
		Options:  scheduler.Options{ResyncInterval: o.resync, Horizon: horizon, NotifyURLs: o.notify, RetryMax: o.retryMax},
		OnBroken: e.onBroken,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// msPerson is a person with, besides Google and Slack, Microsoft and Zoom connections.
type msPerson struct {
	*person
	oid      string
	zoomUser string
	outlook  store.Connection
	teams    store.Connection
	zoom     store.Connection
}

// addMSPerson adds a person with Google and Slack (addPerson) and a Microsoft work account
// (not yet connected).
func (e *msEnv) addMSPerson(id, oid, slackUser string, rules presence.Rules) *msPerson {
	e.t.Helper()
	p := &msPerson{person: e.addPerson(id, "sub-"+id, slackUser, rules), oid: oid}
	e.mfake.AddUser(graphfake.DefaultTenantID, oid, "Person "+id, id+"@contoso.invalid")
	return p
}

// putConnection stores a connection with its sealed credential.
func (e *msEnv) putConnection(p *msPerson, prov, external string, scopes, resources []string, cred provider.Credential) store.Connection {
	e.t.Helper()
	id := prov + "-" + p.id
	c := store.Connection{
		ID: id, UserID: p.id, Provider: prov, ExternalID: external, Scopes: scopes,
		Resources: resources, Health: store.HealthOK, Credential: e.seal(p.id, id, cred),
		Created: e.clk.Now(), Updated: e.clk.Now(),
	}
	if prov == "outlook" || prov == "teams" {
		c.TeamID = graphfake.DefaultTenantID
	}
	if err := e.st.PutConnection(e.ctx, c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// connectOutlook connects the person's Outlook calendar with a token graphfake issued.
func (e *msEnv) connectOutlook(p *msPerson) {
	e.t.Helper()
	tok := e.mfake.IssueToken(p.oid, graphfake.ScopeCalendarsRead, graphfake.ScopeOfflineAccess)
	p.outlook = e.putConnection(p, "outlook", p.oid, microsoft.OutlookScopes, []string{outlookResource}, provider.Credential{AccessToken: tok})
}

// connectTeams connects the person's Teams presence with a token graphfake issued.
func (e *msEnv) connectTeams(p *msPerson) {
	e.t.Helper()
	tok := e.mfake.IssueToken(p.oid, graphfake.ScopePresenceReadWrite, graphfake.ScopeOfflineAccess)
	p.teams = e.putConnection(p, "teams", p.oid, microsoft.TeamsScopes, nil, provider.Credential{AccessToken: tok})
}

// connectZoom adds a Zoom user and connects it with tokens zoomfake issued (expiring in an
// hour, as Zoom's do, so longer tests refresh them).
func (e *msEnv) connectZoom(p *msPerson, zoomUser string) {
	e.t.Helper()
	e.zfake.AddUser("", zoomUser)
	p.zoomUser = zoomUser
	access, refresh := e.zfake.IssueToken(zoomUser)
	cred := provider.Credential{AccessToken: access, RefreshToken: refresh, Expiry: e.clk.Now().Add(zoomfake.DefaultAccessTokenTTL)}
	p.zoom = e.putConnection(p, "zoom", zoomUser, zoom.Scopes(), []string{"meetings"}, cred)
}

// connectOutlookOAuth drives the real connect flow (authorize with PKCE, auto-approved for the
// account, code exchange, ID token check) and stores the connection, refresh token included.
func (e *msEnv) connectOutlookOAuth(p *msPerson) microsoft.Grant {
	e.t.Helper()
	g := e.grantMS(p, microsoft.KindOutlook)
	p.outlook = e.putConnection(p, "outlook", p.oid, g.Scopes, []string{outlookResource}, g.Credential)
	return g
}

// connectTeamsOAuth connects Teams through the real connect flow (see connectOutlookOAuth).
func (e *msEnv) connectTeamsOAuth(p *msPerson) microsoft.Grant {
	e.t.Helper()
	g := e.grantMS(p, microsoft.KindTeams)
	p.teams = e.putConnection(p, "teams", p.oid, g.Scopes, nil, g.Credential)
	return g
}

// grantMS drives a Microsoft connect flow of kind k for the person's account.
func (e *msEnv) grantMS(p *msPerson, k microsoft.Kind) microsoft.Grant {
	e.t.Helper()
	state, nonce, verifier := "state-"+p.id, "nonce-"+p.id, oauth2.GenerateVerifier()
	u, err := e.mc.AuthURL(e.ctx, k, state, nonce, verifier)
	if err != nil {
		e.t.Fatal(err)
	}
	q := e.followToRedirect(e.msrv, u+"&login_hint="+p.oid)
	if q.Get("state") != state {
		e.t.Fatalf("connect redirect state = %q, want %q", q.Get("state"), state)
	}
	g, err := e.mc.Finish(e.ctx, k, q.Get("code"), verifier, nonce, e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if g.ObjectID != p.oid || g.Credential.RefreshToken == "" {
		e.t.Fatalf("connected %q (refresh token %v), want %q with a refresh token", g.ObjectID, g.Credential.RefreshToken != "", p.oid)
	}
	return g
}

// addOutlookEvent adds an event to the person's Outlook calendar.
func (e *msEnv) addOutlookEvent(p *msPerson, ev graphfake.Event) string {
	e.t.Helper()
	if ev.Subject == "" {
		ev.Subject = "Secret planning"
	}
	return e.mfake.AddEvent(p.oid, ev)
}

// teamsWriteEndpoints are the Graph endpoints that change what Teams shows.
var teamsWriteEndpoints = map[string]bool{
	graphfake.EndpointSetPresence:                true,
	graphfake.EndpointClearPresence:              true,
	graphfake.EndpointSetStatusMessage:           true,
	graphfake.EndpointSetUserPreferredPresence:   true,
	graphfake.EndpointClearUserPreferredPresence: true,
}

// teamsWrites returns the calls graphfake received that change presence or the message.
func (e *msEnv) teamsWrites() []graphfake.Call {
	var out []graphfake.Call
	for _, c := range e.mfake.Calls() {
		if teamsWriteEndpoints[c.Endpoint] {
			out = append(out, c)
		}
	}
	return out
}

// okGraph returns the successful calls to endpoint for the account oid.
func (e *msEnv) okGraph(endpoint, oid string) []graphfake.Call {
	var out []graphfake.Call
	for _, c := range e.mfake.CallsTo(endpoint) {
		if c.Status/100 == 2 && c.User == oid {
			out = append(out, c)
		}
	}
	return out
}

func describeGraph(calls []graphfake.Call) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString("\n\t")
		b.WriteString(c.Endpoint)
		b.WriteString(" at ")
		b.WriteString(c.Time.Format("15:04:05"))
		b.WriteString(" → ")
		b.WriteString(http.StatusText(c.Status))
	}
	return b.String()
}

// wantNoTeamsWritesSince fails when Teams was written to after its first n writes.
func (e *msEnv) wantNoTeamsWritesSince(n int, when string) {
	e.t.Helper()
	if w := e.teamsWrites(); len(w) > n {
		e.t.Errorf("%s: Teams writes %s, want none", when, describeGraph(w[n:]))
	}
}

// ourSession returns our app's presence session at graphfake, if any.
func (e *msEnv) ourSession(oid string) (graphfake.Session, bool) {
	for _, s := range e.mfake.Presence(oid).Sessions {
		if s.ID == e.mfake.ClientID() {
			return s, true
		}
	}
	return graphfake.Session{}, false
}

// wantSession checks our presence session: its pair, when it was set and when it expires.
func (e *msEnv) wantSession(oid, availability, activity string, setAt, expires time.Time) {
	e.t.Helper()
	s, ok := e.ourSession(oid)
	if !ok {
		e.t.Fatalf("no presence session of ours (presence %+v)", e.mfake.Presence(oid))
	}
	if s.Availability != availability || s.Activity != activity || !s.SetAt.Equal(setAt) || !s.Expires.Equal(expires) {
		e.t.Errorf("presence session %s/%s set at %s expiring %s, want %s/%s set at %s expiring %s",
			s.Availability, s.Activity, s.SetAt.Format(time.DateTime), s.Expires.Format(time.DateTime),
			availability, activity, setAt.Format(time.DateTime), expires.Format(time.DateTime))
	}
	if p := e.mfake.Presence(oid); p.Availability != availability || p.Activity != activity {
		e.t.Errorf("Teams shows %s/%s, want %s/%s", p.Availability, p.Activity, availability, activity)
	}
}

// wantNoSession checks that no session of ours is left and Teams shows no presence.
func (e *msEnv) wantNoSession(oid, when string) {
	e.t.Helper()
	if s, ok := e.ourSession(oid); ok {
		e.t.Errorf("%s: a presence session of ours is left: %+v", when, s)
	}
	if p := e.mfake.Presence(oid); p.Availability != "Offline" {
		e.t.Errorf("%s: Teams shows %s/%s, want Offline", when, p.Availability, p.Activity)
	}
}

// processMS processes the person at t (see env.process).
func (e *msEnv) processMS(p *msPerson, t time.Time) time.Time {
	e.t.Helper()
	return e.process(p.person, t)
}

// --- 1. An Outlook meeting ------------------------------------------------------------------

func TestOutlookMeetingSetsSlackStatusAndTeamsPresence(t *testing.T) {
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectOutlook(ada)
	e.connectTeams(ada)
	start, end := at(10, 0), at(10, 30)
	evID := e.addOutlookEvent(ada, graphfake.Event{Start: start, End: end})

	next := e.processMS(ada, at(9, 50))
	e.wantNoWrites("before the meeting")
	e.wantNoTeamsWritesSince(0, "before the meeting")
	e.wantNext(next, start, "before the meeting")
	if n := len(e.okGraph(graphfake.EndpointCalendarViewDelta, oidAda)); n == 0 {
		t.Fatal("the Outlook calendar was never read")
	}
	evs, err := e.st.ListEvents(e.ctx, ada.id, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Source != ada.outlook.ID+"/"+outlookResource || evs[0].ID != evID ||
		!evs[0].Start.Equal(start) || !evs[0].End.Equal(end) {
		t.Fatalf("stored events %+v, want the Outlook meeting from %s", evs, ada.outlook.ID+"/"+outlookResource)
	}

	next = e.processMS(ada, start)
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("at the start: %d users.profile.set, want 1:%s", len(sets), describe(e.writes()))
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", end)
	if w := e.writes(); len(w) != 1 {
		t.Errorf("at the start: Slack writes %s, want only the status", describe(w))
	}
	tw := e.teamsWrites()
	if len(tw) != 1 || tw[0].Endpoint != graphfake.EndpointSetPresence || tw[0].Status != http.StatusOK || tw[0].User != oidAda {
		t.Fatalf("at the start: Teams writes %s, want one setPresence", describeGraph(tw))
	}
	// sessionId is our client ID (graphfake refuses any other) and the session ends with the
	// meeting.
	e.wantSession(oidAda, "Busy", "InACall", start, end)
	if sm := e.mfake.Presence(oidAda).StatusMessage; sm != nil {
		t.Errorf("a status message was set for a meeting: %+v", sm)
	}
	e.wantNext(next, end, "at the start")
	if a, ok := e.findActivity(ada.id, "teams:presence", "set"); !ok || a.Kind != string(presence.KindMeeting) || !a.At.Equal(start) {
		t.Errorf("activity %+v (found %v), want a meeting presence set at the start", a, ok)
	}

	// Again at the start: nothing differs from what we wrote.
	slackCalls, graphCalls := len(e.sfake.Calls()), len(e.mfake.Calls())
	e.wantNext(e.processMS(ada, start), end, "again at the start")
	if c := e.sfake.Calls()[slackCalls:]; len(c) != 0 {
		t.Errorf("processing again called Slack:%s", describe(c))
	}
	if c := e.mfake.Calls()[graphCalls:]; len(c) != 0 {
		t.Errorf("processing again called Graph:%s", describeGraph(c))
	}

	// At the end: the session and the status expire by themselves; nothing is called.
	slackCalls, graphCalls = len(e.sfake.Calls()), len(e.mfake.Calls())
	next = e.processMS(ada, end)
	if c := e.sfake.Calls()[slackCalls:]; len(c) != 0 {
		t.Errorf("at the end Slack was called:%s", describe(c))
	}
	if c := e.mfake.Calls()[graphCalls:]; len(c) != 0 {
		t.Errorf("at the end Graph was called:%s", describeGraph(c))
	}
	e.wantNoSession(oidAda, "at the end")
	e.wantNext(next, at(9, 50).Add(msResync), "at the end (next resync)")
}

// --- 2. A Google meeting sets Teams presence -------------------------------------------------

func TestGoogleMeetingSetsTeamsPresence(t *testing.T) {
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectTeams(ada)
	start, end := at(10, 0), at(11, 15)
	e.addEvent(ada.person, meeting(start, end))

	e.wantNext(e.processMS(ada, at(9, 50)), start, "before the meeting")
	e.wantNoTeamsWritesSince(0, "before the meeting")

	next := e.processMS(ada, start)
	sp := e.okGraph(graphfake.EndpointSetPresence, oidAda)
	if len(sp) != 1 {
		t.Fatalf("at the start: %d setPresence, want 1:%s", len(sp), describeGraph(e.teamsWrites()))
	}
	e.wantSession(oidAda, "Busy", "InACall", start, end)
	if n := len(e.okCalls("users.profile.set", "U0001")); n != 1 {
		t.Errorf("%d users.profile.set, want 1", n)
	}
	e.wantNext(next, end, "at the start")

	next = e.processMS(ada, end)
	e.wantNoTeamsWritesSince(1, "at the end")
	e.wantNoSession(oidAda, "at the end")
	e.wantNext(next, at(9, 50).Add(msResync), "at the end")
}

// --- 3. Google and Outlook overlap: one block ------------------------------------------------

func TestOverlappingGoogleAndOutlookMeetingsMerge(t *testing.T) {
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectOutlook(ada)
	e.connectTeams(ada)
	e.addEvent(ada.person, meeting(at(10, 0), at(10, 30)))
	e.addOutlookEvent(ada, graphfake.Event{Start: at(10, 15), End: at(11, 0)})
	start, end := at(10, 0), at(11, 0)

	e.wantNext(e.processMS(ada, at(9, 50)), start, "before")
	next := e.processMS(ada, start)
	e.wantNext(next, end, "at the start (the later end)")
	// One session, set at the start, to the later end.
	e.wantSession(oidAda, "Busy", "InACall", start, end)
	for _, ts := range []time.Time{at(10, 15), at(10, 30)} {
		e.wantNext(e.processMS(ada, ts), end, "at "+ts.Format("15:04"))
	}
	e.processMS(ada, end)

	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("%d users.profile.set, want 1:%s", len(sets), describe(e.writes()))
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", end)
	if w := e.writes(); len(w) != 1 {
		t.Errorf("Slack writes %s, want only the status", describe(w))
	}
	tw := e.teamsWrites()
	if len(tw) != 1 || tw[0].Endpoint != graphfake.EndpointSetPresence || !tw[0].Time.Equal(start) {
		t.Fatalf("Teams writes %s, want one setPresence at the start", describeGraph(tw))
	}
	e.wantNoSession(oidAda, "at the end")
	// The block was planned from both calendars.
	if a, ok := e.findActivity(ada.id, "slack:status", "set"); !ok || a.Reason != "from calendar" {
		t.Errorf("activity %+v (found %v), want the status set from the calendar", a, ok)
	}
}

// --- 4. Outlook events that never count, and out of office ---------------------------------

func TestOutlookDeclinedCancelledFreeAndOutOfOffice(t *testing.T) {
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectOutlook(ada)
	e.connectTeams(ada)
	other := graphfake.Attendee{Name: "Bob", Address: "bob@example.invalid", Response: "accepted"}
	e.addOutlookEvent(ada, graphfake.Event{Start: at(10, 0), End: at(10, 30), Response: "declined",
		OrganizerName: "Bob", OrganizerEmail: "bob@example.invalid", Attendees: []graphfake.Attendee{other}})
	e.addOutlookEvent(ada, graphfake.Event{Start: at(11, 0), End: at(11, 30), IsCancelled: true,
		OrganizerName: "Bob", OrganizerEmail: "bob@example.invalid", Attendees: []graphfake.Attendee{other}})
	e.addOutlookEvent(ada, graphfake.Event{Start: at(12, 0), End: at(12, 30), ShowAs: "free"})
	oofStart, oofEnd := at(13, 0), at(15, 0)
	e.addOutlookEvent(ada, graphfake.Event{Subject: "Dentist", Start: oofStart, End: oofEnd, ShowAs: "oof"})

	next := e.processMS(ada, at(9, 50))
	e.wantNext(next, oofStart, "before (nothing counts before out of office)")
	// The events were read, and are stored for what they are (the cancelled one is dropped).
	evs, err := e.st.ListEvents(e.ctx, ada.id, at(9, 0), at(16, 0))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Start.Format("15:04")+" "+string(ev.Response)+" "+string(ev.Busy)+" "+string(ev.Type))
	}
	want := []string{
		"10:00 declined busy default",
		"12:00 accepted free default",
		"13:00 accepted oof out_of_office",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stored events:\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	for _, ts := range []time.Time{at(10, 0), at(11, 0), at(12, 0)} {
		e.processMS(ada, ts)
	}
	e.wantNoWrites("at the events that never count")
	e.wantNoTeamsWritesSince(0, "at the events that never count")
	if c := e.sfake.Calls(); len(c) != 0 {
		t.Errorf("Slack was called for events that never count:%s", describe(c))
	}
	if c := e.mfake.CallsTo(graphfake.EndpointPresenceGet); len(c) != 0 {
		t.Errorf("Teams presence was read for events that never count:%s", describeGraph(c))
	}

	next = e.processMS(ada, oofStart)
	e.wantNext(next, oofEnd, "at the start of out of office")
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("%d users.profile.set, want 1:%s", len(sets), describe(e.writes()))
	}
	wantProfile(t, sets[0], "Out of office until 15:00", ":palm_tree:", oofEnd)
	if d := e.sfake.DND("U0001"); !d.Snoozed || !d.SnoozeEnd.Equal(oofEnd) {
		t.Errorf("Slack DND %+v, want snoozed until %s", d, oofEnd)
	}
	if got := e.sfake.Presence("U0001"); got != "away" {
		t.Errorf("Slack presence %q, want away", got)
	}
	e.wantSession(oidAda, "Away", "Away", oofStart, oofEnd)
	sm := e.mfake.Presence(oidAda).StatusMessage
	if sm == nil || sm.Content != "Out of office until 15:00" || !sm.Expiry.Equal(oofEnd) || !sm.SetByApp {
		t.Fatalf("Teams status message %+v, want ours, \"Out of office until 15:00\" expiring %s", sm, oofEnd)
	}
	if n := len(e.okGraph(graphfake.EndpointSetStatusMessage, oidAda)); n != 1 {
		t.Errorf("%d setStatusMessage, want 1", n)
	}
	if a, ok := e.findActivity(ada.id, "teams:message", "set"); !ok || a.Kind != string(presence.KindOutOfOffice) {
		t.Errorf("activity %+v (found %v), want the out-of-office message set", a, ok)
	}

	// At the end the session and the message expire by themselves.
	writes := len(e.teamsWrites())
	e.processMS(ada, oofEnd)
	e.wantNoTeamsWritesSince(writes, "at the end of out of office")
	e.wantNoSession(oidAda, "at the end of out of office")
	if sm := e.mfake.Presence(oidAda).StatusMessage; sm != nil {
		t.Errorf("at the end the status message is %+v, want it expired", sm)
	}
}

// --- 5. A six-hour focus block: the presence session is renewed ----------------------------

func TestSixHourFocusBlockRenewsTheTeamsSession(t *testing.T) {
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectTeams(ada)
	start, end := at(10, 0), at(16, 0)
	e.addEvent(ada.person, googlefake.Event{Summary: "Deep work", EventType: "focusTime", Start: start, End: end})

	e.wantNext(e.processMS(ada, at(9, 50)), start, "before")

	next := e.processMS(ada, start)
	firstEnd := start.Add(microsoft.MaxSession)
	e.wantSession(oidAda, "DoNotDisturb", "Presenting", start, firstEnd)
	renewAt := firstEnd.Add(-5 * time.Minute)
	e.wantNext(next, renewAt, "at the start (renewal before the 4-hour session ends)")
	if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
		t.Errorf("%d users.profile.set, want 1", len(sets))
	} else {
		wantProfile(t, sets[0], "Focusing", ":headphones:", end)
	}

	// In between nothing is written.
	writes := len(e.teamsWrites())
	e.wantNext(e.processMS(ada, at(12, 0)), renewAt, "in between")
	e.wantNoTeamsWritesSince(writes, "in between")

	next = e.processMS(ada, renewAt)
	sp := e.okGraph(graphfake.EndpointSetPresence, oidAda)
	if len(sp) != 2 || !sp[1].Time.Equal(renewAt) {
		t.Fatalf("setPresence calls %s, want a second one at %s", describeGraph(sp), renewAt.Format("15:04"))
	}
	// The renewal asks for the rest of the block (2h05m), so the session ends with it.
	e.wantSession(oidAda, "DoNotDisturb", "Presenting", renewAt, end)
	e.wantNext(next, end, "after the renewal")
	if a, ok := e.findActivity(ada.id, "teams:presence", "renewed"); !ok || !a.At.Equal(renewAt) {
		t.Errorf("activity %+v (found %v), want the session renewed", a, ok)
	}
	if w := e.teamsWrites(); len(w) != 2 {
		t.Errorf("Teams writes %s, want the two setPresence only", describeGraph(w))
	}

	// Just before the end it still shows; at and after the end nothing is written.
	e.clk.Set(end.Add(-time.Second))
	e.wantSession(oidAda, "DoNotDisturb", "Presenting", renewAt, end)
	writes = len(e.teamsWrites())
	next = e.processMS(ada, end)
	e.wantNoSession(oidAda, "at the end")
	e.wantNext(next, at(9, 50).Add(msResync), "at the end")
	e.processMS(ada, end.Add(time.Hour))
	e.wantNoTeamsWritesSince(writes, "at and after the end")
}

// --- 6. The person's own Teams status message ----------------------------------------------

func TestOwnTeamsStatusMessage(t *testing.T) {
	oofStart, oofEnd := at(13, 0), at(15, 0)
	ownExpiry := at(18, 0)
	const own = "Ask me about the migration"

	t.Run("left alone when the rule says so", func(t *testing.T) {
		e := newMSEnv(t, msEnvOptions{})
		ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = true }))
		e.connectOutlook(ada)
		e.connectTeams(ada)
		e.addOutlookEvent(ada, graphfake.Event{Start: oofStart, End: oofEnd, ShowAs: "oof"})
		if err := e.mfake.SetUserStatusMessage(oidAda, own, ownExpiry); err != nil {
			t.Fatal(err)
		}

		e.processMS(ada, at(12, 0))
		e.processMS(ada, oofStart)
		if c := e.mfake.CallsTo(graphfake.EndpointSetStatusMessage); len(c) != 0 {
			t.Errorf("setStatusMessage called over the person's own message:%s", describeGraph(c))
		}
		sm := e.mfake.Presence(oidAda).StatusMessage
		if sm == nil || sm.Content != own || sm.SetByApp || !sm.Expiry.Equal(ownExpiry) {
			t.Errorf("status message %+v, want the person's own", sm)
		}
		if a, ok := e.findActivity(ada.id, "teams:message", "skipped"); !ok || a.Reason != "left your own status message" || !a.At.Equal(oofStart) {
			t.Errorf("activity %+v (found %v), want the message skipped", a, ok)
		}
		// Presence is still ours to set.
		e.wantSession(oidAda, "Away", "Away", oofStart, oofEnd)

		// Later in the block the skip is remembered: Teams is not even read.
		reads := len(e.mfake.CallsTo(graphfake.EndpointPresenceGet))
		e.processMS(ada, at(14, 0))
		if n := len(e.mfake.CallsTo(graphfake.EndpointPresenceGet)); n != reads {
			t.Errorf("presence read %d more times during the block", n-reads)
		}

		writes := len(e.teamsWrites())
		e.processMS(ada, oofEnd)
		e.wantNoTeamsWritesSince(writes, "at the end")
		if sm := e.mfake.Presence(oidAda).StatusMessage; sm == nil || sm.Content != own {
			t.Errorf("after the block the status message is %+v, want the person's own", sm)
		}
	})

	t.Run("replaced and restored when the rule says so", func(t *testing.T) {
		e := newMSEnv(t, msEnvOptions{})
		ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
		e.connectOutlook(ada)
		e.connectTeams(ada)
		e.addOutlookEvent(ada, graphfake.Event{Start: oofStart, End: oofEnd, ShowAs: "oof"})
		if err := e.mfake.SetUserStatusMessage(oidAda, own, ownExpiry); err != nil {
			t.Fatal(err)
		}

		e.processMS(ada, at(12, 0))
		e.processMS(ada, oofStart)
		sm := e.mfake.Presence(oidAda).StatusMessage
		if sm == nil || sm.Content != "Out of office until 15:00" || !sm.Expiry.Equal(oofEnd) || !sm.SetByApp {
			t.Fatalf("status message %+v, want ours until %s", sm, oofEnd)
		}
		ts, err := e.st.GetTargetState(e.ctx, ada.id, "teams:message:"+ada.teams.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts.Replaced) == 0 {
			t.Fatal("the replaced message was not kept")
		}
		if strings.Contains(string(ts.Replaced), own) || strings.Contains(string(ts.Written), own) {
			t.Error("the person's message is stored in clear")
		}

		e.processMS(ada, oofEnd)
		calls := e.okGraph(graphfake.EndpointSetStatusMessage, oidAda)
		if len(calls) != 2 || !calls[1].Time.Equal(oofEnd) {
			t.Fatalf("setStatusMessage calls %s, want the restore at the end", describeGraph(calls))
		}
		sm = e.mfake.Presence(oidAda).StatusMessage
		if sm == nil || sm.Content != own || !sm.Expiry.Equal(ownExpiry) {
			t.Errorf("after the block the status message is %+v, want %q until %s", sm, own, ownExpiry)
		}
		if a, ok := e.findActivity(ada.id, "teams:message", "restored"); !ok || !a.At.Equal(oofEnd) {
			t.Errorf("activity %+v (found %v), want the message restored", a, ok)
		}
		if ts, err := e.st.GetTargetState(e.ctx, ada.id, "teams:message:"+ada.teams.ID); err != nil || len(ts.Replaced) != 0 {
			t.Errorf("target state after the restore %+v, %v: want nothing replaced", ts, err)
		}

		// Nothing more afterwards.
		writes := len(e.teamsWrites())
		e.processMS(ada, at(16, 0))
		e.wantNoTeamsWritesSince(writes, "after the restore")
	})
}

// --- 7. A revoked Microsoft grant ------------------------------------------------------------

func TestRevokedMicrosoftRefreshTokenBreaksOnlyThatConnection(t *testing.T) {
	// Access tokens live an hour, as Microsoft's do; the resync is due every hour.
	e := newMSEnv(t, msEnvOptions{resync: time.Hour, graph: func(o *graphfake.Options) { o.AccessTokenTTL = time.Hour }})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.clk.Set(at(9, 0))
	g := e.connectOutlookOAuth(ada)
	if !g.Credential.Expiry.Equal(at(10, 0)) {
		t.Fatalf("access token expires %s, want 10:00", g.Credential.Expiry)
	}
	e.addOutlookEvent(ada, graphfake.Event{Start: at(10, 0), End: at(10, 30)})
	e.addEvent(ada.person, meeting(at(11, 0), at(11, 30)))

	e.wantNext(e.processMS(ada, at(9, 0)), at(10, 0), "at 09:00")
	if c := e.connection(ada.id, ada.outlook.ID); c.Health != store.HealthOK {
		t.Fatalf("Outlook health %q after the first sync", c.Health)
	}

	// An admin revokes the person's sessions. At 10:00 the resync is due and the access token
	// expires: the refresh is refused with invalid_grant.
	e.mfake.RevokeTokens(oidAda)
	e.processMS(ada, at(10, 0))
	oc := e.connection(ada.id, ada.outlook.ID)
	if oc.Health != store.HealthBroken || oc.HealthReason != "invalid_grant" {
		t.Fatalf("Outlook connection: health %q reason %q, want broken invalid_grant", oc.Health, oc.HealthReason)
	}
	if a, ok := e.findActivity(ada.id, "outlook", "broken"); !ok || a.Reason != "reconnect needed (invalid_grant)" {
		t.Errorf("activity %+v (found %v), want the Outlook connection broken", a, ok)
	}
	if got := e.broken(); !slices.Equal(got, []string{"u-ada outlook"}) {
		t.Errorf("OnBroken calls %q, want Ada told once about Outlook", got)
	}
	tokenCalls := e.mfake.CallsTo(graphfake.EndpointToken)
	if last := tokenCalls[len(tokenCalls)-1]; last.Status != http.StatusBadRequest || !last.Time.Equal(at(10, 0)) {
		t.Errorf("last token call %+v, want the refused refresh at 10:00", last)
	}
	for _, c := range []store.Connection{ada.google, ada.slack} {
		if got := e.connection(ada.id, c.ID); got.Health != store.HealthOK {
			t.Errorf("%s connection: health %q, want ok", c.Provider, got.Health)
		}
	}
	// The Outlook meeting read before keeps counting: Slack works.
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("at 10:00: %d users.profile.set, want 1:%s", len(sets), describe(e.writes()))
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", at(10, 30))

	// Later the Google meeting sets Slack too, and the broken connection is left alone.
	graphCalls := len(e.mfake.Calls())
	e.processMS(ada, at(11, 0))
	sets = e.okCalls("users.profile.set", "U0001")
	if len(sets) != 2 {
		t.Fatalf("at 11:00: %d users.profile.set, want 2:%s", len(sets), describe(e.writes()))
	}
	wantProfile(t, sets[1], "In a meeting", ":spiral_calendar_pad:", at(11, 30))
	if c := e.mfake.Calls()[graphCalls:]; len(c) != 0 {
		t.Errorf("the broken Outlook connection was used:%s", describeGraph(c))
	}
	if gc := e.connection(ada.id, ada.google.ID); gc.Health != store.HealthOK {
		t.Errorf("Google health %q, want ok", gc.Health)
	}
}

// --- 8. Graph subscriptions: created after the first sync, renewed a day before expiry -----

// webhookReceiver answers graphfake's validation handshake and records notifications.
type webhookReceiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	states []string // clientState of each notification received
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	wr := &webhookReceiver{}
	wr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, tok)
			return
		}
		var body struct {
			Value []struct {
				ClientState string `json:"clientState"`
			} `json:"value"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		wr.mu.Lock()
		for _, v := range body.Value {
			wr.states = append(wr.states, v.ClientState)
		}
		wr.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(wr.srv.Close)
	return wr
}

func (wr *webhookReceiver) clientStates() []string {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return append([]string(nil), wr.states...)
}

func TestOutlookPushSubscriptionCreatedAndRenewed(t *testing.T) {
	wr := newWebhookReceiver(t) // before the env: closed after graphfake stops delivering
	notifyURL := wr.srv.URL + "/webhooks/microsoft"
	e := newMSEnv(t, msEnvOptions{start: at(9, 0), notify: map[string]string{"outlook": notifyURL}})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectOutlook(ada)

	next := e.processMS(ada, at(9, 0))
	ss, err := e.st.GetSyncState(e.ctx, ada.outlook.ID, outlookResource)
	if err != nil {
		t.Fatal(err)
	}
	wantExpiry := at(9, 0).Add(microsoft.SubscriptionLifetime)
	if ss.ChannelID == "" || ss.ChannelToken == "" || !ss.ChannelExpiry.Equal(wantExpiry) {
		t.Fatalf("sync state %+v: want a subscription expiring %s", ss, wantExpiry)
	}
	subs := e.mfake.Subscriptions()
	if len(subs) != 1 {
		t.Fatalf("graphfake has %d subscriptions, want 1", len(subs))
	}
	sub := subs[0]
	if sub.ID != ss.ChannelID || store.ChannelTokenDigest(sub.ClientState) != ss.ChannelToken || sub.NotificationURL != notifyURL ||
		sub.UserID != oidAda || sub.Resource != "me/events" || !sub.Expires.Equal(ss.ChannelExpiry) {
		t.Errorf("subscription %+v, want ours (ID %s, our clientState, %s, expiring %s)", sub, ss.ChannelID, notifyURL, ss.ChannelExpiry)
	}
	if a, ok := e.findActivity(ada.id, "outlook", "subscribed"); !ok {
		t.Errorf("activity %+v (found %v), want the subscription", a, ok)
	}
	e.wantNext(next, at(9, 0).Add(msResync), "after the first sync")

	// A change in the calendar is pushed to the webhook with our clientState.
	e.addOutlookEvent(ada, graphfake.Event{Start: at(15, 0), End: at(15, 30)})
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if _, err := e.mfake.WaitForNotification(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := wr.clientStates(); len(got) == 0 || store.ChannelTokenDigest(got[0]) != ss.ChannelToken {
		t.Errorf("notifications carried clientState %q, want ours", got)
	}

	// Follow the due times: one of them is the renewal time, a day before expiry, and the
	// subscription is renewed then, not before.
	renewAt := ss.ChannelExpiry.Add(-24 * time.Hour)
	for i := 0; next.Before(renewAt); i++ {
		if i > 10 {
			t.Fatalf("next due %s never reached the renewal time %s", next, renewAt)
		}
		next = e.processMS(ada, next)
		if n := len(e.mfake.CallsTo(graphfake.EndpointSubscriptionUpdate)); n != 0 {
			t.Fatalf("subscription renewed at %s, before %s", e.clk.Now(), renewAt)
		}
	}
	if !next.Equal(renewAt) {
		t.Fatalf("next due %s skipped the renewal time %s", next, renewAt)
	}

	next = e.processMS(ada, renewAt)
	upd := e.okGraph(graphfake.EndpointSubscriptionUpdate, oidAda)
	if len(upd) != 1 || !upd[0].Time.Equal(renewAt) {
		t.Fatalf("subscription updates %s, want one at %s", describeGraph(upd), renewAt)
	}
	if n := len(e.mfake.CallsTo(graphfake.EndpointSubscriptionCreate)); n != 1 {
		t.Errorf("%d subscriptions created, want 1", n)
	}
	renewed, err := e.st.GetSyncState(e.ctx, ada.outlook.ID, outlookResource)
	if err != nil {
		t.Fatal(err)
	}
	newExpiry := renewAt.Add(microsoft.SubscriptionLifetime)
	if renewed.ChannelID != ss.ChannelID || renewed.ChannelToken != ss.ChannelToken || !renewed.ChannelExpiry.Equal(newExpiry) {
		t.Errorf("sync state after renewal %+v, want the same subscription expiring %s", renewed, newExpiry)
	}
	if subs := e.mfake.Subscriptions(); len(subs) != 1 || !subs[0].Expires.Equal(newExpiry) {
		t.Errorf("graphfake subscriptions %+v, want ours expiring %s", subs, newExpiry)
	}
	// Next: the Google calendar's resync (last synced at 21:00 the day before), not the
	// renewal again.
	gss, err := e.st.GetSyncState(e.ctx, ada.google.ID, "primary")
	if err != nil {
		t.Fatal(err)
	}
	e.wantNext(next, gss.Synced.Add(msResync), "after the renewal")
	if !next.After(renewAt) {
		t.Errorf("after the renewal: next due %s, want later than now", next)
	}
}

// A subscription that cannot be made (the webhook does not answer the validation handshake)
// is retried with a growing backoff, never at once: the sync itself went well, but the person
// must not come due again immediately, over and over.
func TestOutlookSubscriptionFailureBacksOff(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not today", http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	e := newMSEnv(t, msEnvOptions{start: at(9, 0), notify: map[string]string{"outlook": bad.URL + "/webhooks/microsoft"}})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectOutlook(ada)
	e.addOutlookEvent(ada, graphfake.Event{Start: at(10, 0), End: at(10, 30)})

	now := at(9, 0)
	for i, wait := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		next := e.processMS(ada, now)
		if n := len(e.mfake.CallsTo(graphfake.EndpointSubscriptionCreate)); n != i+1 {
			t.Fatalf("after attempt %d: %d subscription requests, want %d", i+1, n, i+1)
		}
		e.wantNext(next, now.Add(wait), "after failed attempt "+strconv.Itoa(i+1))
		if !next.After(now) {
			t.Fatalf("attempt %d: next due %s is not after now %s", i+1, next, now)
		}
		now = next
	}
	if subs := e.mfake.Subscriptions(); len(subs) != 0 {
		t.Errorf("subscriptions %+v, want none", subs)
	}
	ss, err := e.st.GetSyncState(e.ctx, ada.outlook.ID, outlookResource)
	if err != nil || ss.ChannelID != "" || ss.Synced.IsZero() {
		t.Errorf("sync state %+v, %v: want synced, without a subscription", ss, err)
	}
	if a, ok := e.findActivity(ada.id, "outlook", "error"); !ok || a.Kind != "watch" {
		t.Errorf("activity %+v (found %v), want the subscription error", a, ok)
	}
	// The calendar was synced all the same: the meeting counts.
	e.processMS(ada, at(10, 0))
	if n := len(e.okCalls("users.profile.set", "U0001")); n != 1 {
		t.Errorf("%d users.profile.set at the meeting, want 1", n)
	}
}

// --- Retries --------------------------------------------------------------------------------

// Teams failing again and again is retried with a growing backoff: the status message step,
// which has nothing to do, must not count as a success that resets it. The same for Slack,
// whose DND and presence steps have nothing to do while the status fails.
func TestFailingTargetsBackOff(t *testing.T) {
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectTeams(ada)
	start, end := at(10, 0), at(11, 0)
	e.addEvent(ada.person, meeting(start, end))
	e.addEvent(ada.person, meeting(at(11, 30), at(12, 0)))
	e.processMS(ada, at(9, 50))

	now := start
	for i, wait := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second} {
		e.mfake.FailNext(graphfake.EndpointSetPresence, http.StatusInternalServerError, "")
		e.sfake.FailNext("users.profile.set", http.StatusInternalServerError, "")
		next := e.processMS(ada, now)
		if n := len(e.mfake.CallsTo(graphfake.EndpointSetPresence)); n != i+1 {
			t.Fatalf("attempt %d: %d setPresence calls, want %d", i+1, n, i+1)
		}
		if n := len(e.sfake.CallsTo("users.profile.set")); n != i+1 {
			t.Fatalf("attempt %d: %d users.profile.set calls, want %d", i+1, n, i+1)
		}
		e.wantNext(next, now.Add(wait), "after failed attempt "+strconv.Itoa(i+1))
		now = next
	}
	// Then it works, and the backoff starts over.
	next := e.processMS(ada, now)
	e.wantSession(oidAda, "Busy", "InACall", now, end)
	if got := e.sfake.Status("U0001"); got.Text != "In a meeting" {
		t.Errorf("Slack shows %+v, want the meeting status", got)
	}
	e.wantNext(next, end, "once it worked")
	e.wantNext(e.processMS(ada, end), at(11, 30), "at the end")
	e.mfake.FailNext(graphfake.EndpointSetPresence, http.StatusInternalServerError, "")
	e.wantNext(e.processMS(ada, at(11, 30)), at(11, 30).Add(5*time.Second), "failing at the next meeting")
}
