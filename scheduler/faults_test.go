package scheduler_test

// Provider faults (issue 10) for every provider the scheduler reads or writes: Google Calendar,
// Outlook and Teams through Graph, Slack, and Zoom. The faults come from internal/faulttest,
// which sits in front of each fake (env.gfault, env.sfault, msEnv.mfault, msEnv.zfault); the
// environment is teams_test.go's, with every person connected to all five through the real
// OAuth flows, so each has a refresh token.
//
// Already covered elsewhere, and not repeated here: a Slack 429 with Retry-After
// (TestRateLimitedStatusIsRetriedAfterRetryAfter), Slack and Teams 500s
// (TestFailingTargetsBackOff), a Slack token that expired early
// (TestSlackTokenExpiredIsRefreshedAndRetried), a revoked Google or Outlook grant
// (TestRevokedGoogleGrantKeepsCachedEvents, TestRevokedMicrosoftRefreshTokenBreaksOnlyThatConnection)
// and a revoked Slack token (TestRevokedSlackTokenBreaksOnlyThatConnection).

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
	"github.com/dontinterrupt/dontinterrupt/internal/faulttest"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

const (
	oidGrace = "0d5c1a2b-0000-4000-8000-00000000067a"

	// retryBase is the scheduler's default Options.RetryBase: the first backoff.
	retryBase = 5 * time.Second
	// faultTimeout is the faulted provider client's timeout in the fault tests.
	faultTimeout = time.Second
)

// faultSpec is what the fault tests need to know of one provider.
type faultSpec struct {
	provider string // the connection's provider
	source   bool   // a calendar the scheduler reads (else a status it writes)
	fault    func(e *msEnv) *faulttest.Injector
	http     func(e *msEnv) *http.Client // the provider client's HTTP client
	api      faulttest.Match             // the provider's API calls for this connection
	token    faulttest.Match             // its OAuth token endpoint
	conn     func(p *msPerson) *store.Connection
	// stepTarget is the activity log's Target when an API call fails.
	stepTarget string
	// guessed is the first wait after a 429 without Retry-After (the client's default).
	guessed time.Duration
	// event adds a meeting to the person's calendar at this source (sources only) and returns
	// a function that deletes it.
	event func(e *msEnv, p *msPerson, start, end time.Time) (remove func())
	// calls counts the requests the provider received for the person's connection.
	calls func(e *msEnv, p *msPerson) int
}

// slackAPI matches Slack's Web API calls but the token endpoint.
func slackAPI(r *http.Request, _ url.Values) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/api/oauth.v2.access"
}

var faultSpecs = []faultSpec{
	{
		provider: "google", source: true,
		fault:   func(e *msEnv) *faulttest.Injector { return e.gfault },
		http:    func(e *msEnv) *http.Client { return e.ghttp },
		api:     faulttest.Prefix("/calendar/v3/"),
		token:   faulttest.Prefix("/token"),
		conn:    func(p *msPerson) *store.Connection { return &p.google },
		guessed: google.DefaultRetryAfter, stepTarget: "google",
		event: func(e *msEnv, p *msPerson, start, end time.Time) func() {
			id := e.addEvent(p.person, meeting(start, end))
			return func() {
				if err := e.gfake.DeleteEvent(p.googleSub, "primary", id); err != nil {
					e.t.Fatal(err)
				}
			}
		},
		calls: func(e *msEnv, p *msPerson) int {
			n := 0
			for _, c := range e.gfake.Calls() {
				if c.Account == p.googleSub {
					n++
				}
			}
			return n
		},
	},
	{
		provider: "outlook", source: true,
		fault:   func(e *msEnv) *faulttest.Injector { return e.mfault },
		http:    func(e *msEnv) *http.Client { return e.mhttp },
		api:     faulttest.Prefix("/v1.0/me/calendarView"),
		token:   faulttest.Suffix("/oauth2/v2.0/token"),
		conn:    func(p *msPerson) *store.Connection { return &p.outlook },
		guessed: microsoft.DefaultRetryAfter, stepTarget: "outlook",
		event: func(e *msEnv, p *msPerson, start, end time.Time) func() {
			id := e.addOutlookEvent(p, graphfake.Event{Start: start, End: end})
			return func() {
				if err := e.mfake.DeleteEvent(p.oid, id); err != nil {
					e.t.Fatal(err)
				}
			}
		},
		calls: func(e *msEnv, p *msPerson) int {
			n := 0
			for _, c := range e.mfake.Calls() {
				if c.User == p.oid && strings.HasPrefix(c.Endpoint, "graph.calendarView") {
					n++
				}
			}
			return n
		},
	},
	{
		provider: "zoom", source: true,
		fault:   func(e *msEnv) *faulttest.Injector { return e.zfault },
		http:    func(e *msEnv) *http.Client { return e.zhttp },
		api:     faulttest.Prefix("/v2/"),
		token:   faulttest.Prefix("/oauth/token"),
		conn:    func(p *msPerson) *store.Connection { return &p.zoom },
		guessed: zoom.DefaultRetryAfter, stepTarget: "zoom",
		event: func(e *msEnv, p *msPerson, start, end time.Time) func() {
			id := e.zfake.AddMeeting(p.zoomUser, zoomfake.Meeting{Topic: "Secret roadmap", Start: start, Duration: end.Sub(start)})
			return func() { e.zfake.RemoveMeeting(p.zoomUser, id) }
		},
		calls: func(e *msEnv, p *msPerson) int {
			n := 0
			for _, c := range e.zfake.Calls() {
				if c.User == p.zoomUser {
					n++
				}
			}
			return n
		},
	},
	{
		provider: "slack",
		fault:    func(e *msEnv) *faulttest.Injector { return e.sfault },
		http:     func(e *msEnv) *http.Client { return e.shttp },
		api:      slackAPI,
		token:    faulttest.Prefix("/api/oauth.v2.access"),
		conn:     func(p *msPerson) *store.Connection { return &p.slack },
		guessed:  slack.DefaultRetryAfter, stepTarget: "slack:status",
		calls: func(e *msEnv, p *msPerson) int {
			n := 0
			for _, c := range e.sfake.Calls() {
				if c.User == p.slackUser {
					n++
				}
			}
			return n
		},
	},
	{
		provider: "teams",
		fault:    func(e *msEnv) *faulttest.Injector { return e.mfault },
		http:     func(e *msEnv) *http.Client { return e.mhttp },
		api:      faulttest.Prefix("/v1.0/me/presence"),
		token:    faulttest.Suffix("/oauth2/v2.0/token"),
		conn:     func(p *msPerson) *store.Connection { return &p.teams },
		guessed:  microsoft.DefaultRetryAfter, stepTarget: "teams:presence",
		calls: func(e *msEnv, p *msPerson) int {
			n := 0
			for _, c := range e.mfake.Calls() {
				if c.User == p.oid && strings.HasPrefix(c.Endpoint, "graph.presence") {
					n++
				}
			}
			return n
		},
	},
}

// newFaultEnv is an msEnv whose fakes issue hour-long access tokens (as the real providers do)
// and whose Slack rotates tokens, so every connection has a refresh token.
func newFaultEnv(t *testing.T, o msEnvOptions) *msEnv {
	t.Helper()
	if o.start.IsZero() {
		o.start = at(9, 59)
	}
	o.slackRotation = true
	o.graph = func(g *graphfake.Options) { g.AccessTokenTTL = time.Hour }
	return newMSEnv(t, o)
}

// addFaultPerson adds a person connected to all five providers through the real OAuth flows.
func (e *msEnv) addFaultPerson(id, oid, slackUser, zoomUser string) *msPerson {
	e.t.Helper()
	p := e.addMSPerson(id, oid, slackUser, rules(nil))
	inst := e.connectSlack(slackUser)
	if inst.Credential.RefreshToken == "" {
		e.t.Fatal("the Slack install has no refresh token")
	}
	p.slack = e.putSlack(id, slackUser, inst.Credential)
	e.connectOutlookOAuth(p)
	e.connectTeamsOAuth(p)
	e.connectZoom(p, zoomUser)
	return p
}

// setExpiry changes the stored expiry of a connection's access token (the token itself stays
// what the provider issued).
func (e *msEnv) setExpiry(c *store.Connection, exp time.Time) {
	e.t.Helper()
	cur := e.connection(c.UserID, c.ID)
	cred := e.open(cur)
	cred.Expiry = exp
	cur.Credential = e.seal(c.UserID, c.ID, cred)
	if err := e.st.PutConnection(e.ctx, cur); err != nil {
		e.t.Fatal(err)
	}
	*c = cur
}

// wantHealthy fails unless every connection of the person is healthy.
func (e *msEnv) wantHealthy(p *msPerson, when string) {
	e.t.Helper()
	conns, err := e.st.ListConnections(e.ctx, p.id)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(conns) != 5 {
		e.t.Fatalf("%s: %s has %d connections, want 5", when, p.id, len(conns))
	}
	for _, c := range conns {
		if c.Health != store.HealthOK {
			e.t.Errorf("%s: %s's %s connection is %s (%s), want ok", when, p.id, c.Provider, c.Health, c.HealthReason)
		}
	}
}

// shown is what a person's Slack and Teams show.
type shown struct {
	SlackText, SlackEmoji string
	SlackExpiration       time.Time
	DND                   bool
	DNDEnd                time.Time
	Presence              string
	TeamsAvailability     string
	TeamsActivity         string
	Session               time.Time // when our presence session expires (zero: none)
	TeamsMessage          string
	TeamsMessageExpiry    time.Time
}

func (e *msEnv) shown(p *msPerson) shown {
	st := e.sfake.Status(p.slackUser)
	d := e.sfake.DND(p.slackUser)
	pr := e.mfake.Presence(p.oid)
	s := shown{
		SlackText: st.Text, SlackEmoji: st.Emoji, SlackExpiration: st.Expiration,
		DND: d.Snoozed, DNDEnd: d.SnoozeEnd, Presence: e.sfake.Presence(p.slackUser),
		TeamsAvailability: pr.Availability, TeamsActivity: pr.Activity,
	}
	if ses, ok := e.ourSession(p.oid); ok {
		s.Session = ses.Expires
	}
	if pr.StatusMessage != nil {
		s.TeamsMessage, s.TeamsMessageExpiry = pr.StatusMessage.Content, pr.StatusMessage.Expiry
	}
	return s
}

// slackPart and teamsPart are what one target shows.
func (s shown) slackPart() shown {
	return shown{SlackText: s.SlackText, SlackEmoji: s.SlackEmoji, SlackExpiration: s.SlackExpiration, DND: s.DND, DNDEnd: s.DNDEnd, Presence: s.Presence}
}

func (s shown) teamsPart() shown {
	return shown{TeamsAvailability: s.TeamsAvailability, TeamsActivity: s.TeamsActivity, Session: s.Session, TeamsMessage: s.TeamsMessage, TeamsMessageExpiry: s.TeamsMessageExpiry}
}

// same reports whether a and b show the same, allowing a minute's difference in the ends a
// provider counts from the time of the write (a DND snooze and a presence session set a few
// seconds later).
func (a shown) same(b shown) bool {
	near := func(x, y time.Time) bool { return x.Sub(y).Abs() < time.Minute }
	ea, eb := a, b
	ea.DNDEnd, eb.DNDEnd, ea.Session, eb.Session = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return ea == eb && near(a.DNDEnd, b.DNDEnd) && near(a.Session, b.Session)
}

// faultWrites counts the person's successful writes to Slack and Teams, by method.
func (e *msEnv) faultWrites(p *msPerson) map[string]int {
	out := map[string]int{}
	for _, c := range e.sfake.Calls() {
		switch c.Method {
		case "users.profile.set", "dnd.setSnooze", "dnd.endSnooze", "dnd.endDnd", "users.setPresence":
			if c.User == p.slackUser && c.Status == http.StatusOK && c.Error == "" {
				out[c.Method]++
			}
		}
	}
	for _, c := range e.mfake.Calls() {
		if teamsWriteEndpoints[c.Endpoint] && c.User == p.oid && c.Status/100 == 2 {
			out[c.Endpoint]++
		}
	}
	return out
}

// faultCase is one fault of the table, and the wait it must lead to.
type faultCase struct {
	name    string
	fault   faulttest.Fault
	refresh bool // the fault hits the token endpoint, and a refresh is due
	wait    func(s faultSpec) time.Duration
}

func base(faultSpec) time.Duration { return retryBase }

var faultCases = []faultCase{
	{"429 with Retry-After", faulttest.RateLimited("7"), false, func(faultSpec) time.Duration { return 7 * time.Second }},
	{"429 without Retry-After", faulttest.RateLimited(""), false, func(s faultSpec) time.Duration { return s.guessed }},
	{"500", faulttest.Status(http.StatusInternalServerError), false, base},
	{"503", faulttest.Status(http.StatusServiceUnavailable), false, base},
	{"timeout", faulttest.Hang(), false, base},
	{"connection reset", faulttest.Reset(), false, base},
	// A 200 means the provider did the work: only the answer is broken.
	{"malformed JSON", faulttest.Malformed().AfterServing(), false, base},
	{"refresh timeout", faulttest.Hang(), true, base},
	{"refresh 503", faulttest.Status(http.StatusServiceUnavailable), true, base},
	{"refresh connection reset", faulttest.Reset(), true, base},
}

// coveredElsewhere are cases existing tests show (see the top of this file).
var coveredElsewhere = map[string]bool{
	"slack/429 with Retry-After": true,
	"slack/500":                  true,
	"teams/500":                  true,
}

// TestProviderFaults: for every provider and every transient fault, the person's run gives up
// on that provider within the client's timeout, the connection stays healthy (nobody is told to
// reconnect), the person is due again after Retry-After or the backoff (never at once), other
// people and the person's other connections are unaffected, and once the fault is gone the
// person ends up showing exactly what an unaffected person shows, with as many writes.
func TestProviderFaults(t *testing.T) {
	for _, spec := range faultSpecs {
		for _, fc := range faultCases {
			name := spec.provider + "/" + fc.name
			if coveredElsewhere[name] {
				continue
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runFaultCase(t, spec, fc)
			})
		}
	}
}

func runFaultCase(t *testing.T, spec faultSpec, fc faultCase) {
	e := newFaultEnv(t, msEnvOptions{})
	ada := e.addFaultPerson("u-ada", oidAda, "U0001", "ZUserAda0000000000001")
	grace := e.addFaultPerson("u-grace", oidGrace, "U0002", "ZUserGrace00000000002")
	now := at(10, 0)
	// A source's meeting starts 5 minutes later (the sync that fails happens before it); a
	// target's block is in progress: a 2-hour out-of-office, which writes every Slack and
	// Teams field.
	blockStart := now
	for _, p := range []*msPerson{ada, grace} {
		if spec.source {
			blockStart = now.Add(5 * time.Minute)
			spec.event(e, p, blockStart, blockStart.Add(30*time.Minute))
		} else {
			e.addEvent(p.person, googlefake.Event{Summary: "Secret trip", EventType: "outOfOffice", Start: now, End: now.Add(2 * time.Hour)})
		}
	}
	conn := spec.conn(ada)
	cred := e.open(e.connection(ada.id, conn.ID))
	match := []faulttest.Match{spec.api, faulttest.Secret(cred.AccessToken)}
	stepTarget := spec.stepTarget
	if fc.refresh {
		// A refresh is due now, for both; Ada's fails.
		e.setExpiry(conn, now.Add(2*time.Minute))
		e.setExpiry(spec.conn(grace), now.Add(2*time.Minute))
		match = []faulttest.Match{spec.token, faulttest.Secret(cred.RefreshToken)}
		stepTarget = spec.provider
	}
	inj := spec.fault(e)
	inj.Inject(fc.fault, match...)
	// The faulted provider's client gives up after faultTimeout (set now, while nothing runs:
	// the connect flows above may be slow on a busy machine).
	spec.http(e).Timeout = faultTimeout

	began := time.Now()
	next := e.processMS(ada, now)
	took := time.Since(began)

	faulted := inj.Faulted()
	if faulted == 0 {
		t.Fatal("the fault was never hit: the scenario does not call the provider")
	}
	if fc.fault.Hangs() {
		// The run gave up on the provider within the client's timeout, once: the
		// connection's other calls in the same run would each have waited as long.
		if faulted != 1 {
			t.Errorf("%d requests hung in one run (%q), want 1", faulted, inj.FaultedPaths())
		}
		if took < faultTimeout || took > faultTimeout+5*time.Second {
			t.Errorf("the run took %s with a client timeout of %s", took, faultTimeout)
		}
	}
	e.wantNext(next, now.Add(fc.wait(spec)), "after the fault")
	e.wantHealthy(ada, "after the fault")
	if got := e.broken(); len(got) != 0 {
		t.Errorf("OnBroken calls %q, want none", got)
	}
	outcome := "error"
	if strings.HasPrefix(fc.name, "429") {
		outcome = "rate_limited"
	}
	// (A target's failing step may be any of its steps: the status message, say, when the
	// presence write went through before its answer broke.)
	found := false
	for _, a := range e.activity(ada.id) {
		if a.Outcome == outcome && (a.Target == stepTarget || strings.HasPrefix(a.Target, spec.provider+":")) {
			found = true
			if !strings.Contains(a.Reason, "retrying") {
				t.Errorf("activity %+v, want it to say when it retries", a)
			}
		}
	}
	if !found {
		t.Errorf("no %s activity for %s: %+v", outcome, stepTarget, e.activity(ada.id))
	}

	// Grace, processed at the same time, is unaffected.
	nothing := e.shown(grace)
	e.processMS(grace, now)
	e.wantHealthy(grace, "Grace")
	if !spec.source {
		g := e.shown(grace)
		if g.SlackText == "" || !g.DND || g.Presence != "away" || g.TeamsAvailability != "Away" || g.TeamsMessage == "" {
			t.Fatalf("Grace shows %+v, want the out-of-office everywhere", g)
		}
		// Ada's other target shows what Grace's does; the failing one nothing yet.
		a := e.shown(ada)
		other, failing := a.teamsPart(), a.slackPart()
		gOther, none := g.teamsPart(), nothing.slackPart()
		if spec.provider == "teams" {
			other, failing, gOther, none = a.slackPart(), a.teamsPart(), g.slackPart(), nothing.teamsPart()
		}
		if !other.same(gOther) {
			t.Errorf("Ada's other target shows %+v, Grace's %+v", other, gOther)
		}
		if !fc.fault.Served() && failing != none {
			t.Errorf("the failing target shows %+v, want nothing yet (%+v)", failing, none)
		}
	}

	// The fault goes; at the retry Ada catches up.
	inj.Clear()
	e.processMS(ada, next)
	if blockStart.After(next) {
		e.processMS(ada, blockStart)
		e.processMS(grace, blockStart)
	}
	a, g := e.shown(ada), e.shown(grace)
	if g.SlackText == "" {
		t.Fatalf("Grace shows %+v: the block is not in progress", g)
	}
	if !a.same(g) {
		t.Errorf("after the retry Ada shows\n\t%+v\nGrace\n\t%+v", a, g)
	}
	aw, gw := e.faultWrites(ada), e.faultWrites(grace)
	for m, n := range gw {
		switch {
		case fc.fault.Served() && (aw[m] < n || aw[m] > n+1):
			t.Errorf("Ada's %s writes: %d, want %d or one more (a write whose answer was lost)", m, aw[m], n)
		case !fc.fault.Served() && aw[m] != n:
			t.Errorf("Ada's %s writes: %d, Grace's %d", m, aw[m], n)
		}
	}
	e.wantHealthy(ada, "after the retry")
	if got := e.broken(); len(got) != 0 {
		t.Errorf("OnBroken calls %q, want none", got)
	}
}

// A request that hangs for one person holds up nobody else: while Ada's call waits for an
// answer, Grace (due at the same time) is synced and written in full by another worker; when
// the provider finally answers with an error, Ada is retried with the backoff.
func TestHangingProviderHoldsNobodyElseUp(t *testing.T) {
	for _, spec := range faultSpecs {
		t.Run(spec.provider, func(t *testing.T) {
			t.Parallel()
			e := newFaultEnv(t, msEnvOptions{}) // no client timeout: the hang lasts until Clear
			ada := e.addFaultPerson("u-ada", oidAda, "U0001", "ZUserAda0000000000001")
			grace := e.addFaultPerson("u-grace", oidGrace, "U0002", "ZUserGrace00000000002")
			now := at(10, 0)
			end := now.Add(30 * time.Minute)
			for _, p := range []*msPerson{ada, grace} {
				if spec.source {
					spec.event(e, p, now, end)
				} else {
					e.addEvent(p.person, meeting(now, end))
				}
				if err := e.st.MarkDue(e.ctx, p.id, now); err != nil {
					t.Fatal(err)
				}
			}
			inj := spec.fault(e)
			inj.Inject(faulttest.Hang(), spec.api, faulttest.Secret(e.open(e.connection(ada.id, spec.conn(ada).ID)).AccessToken))
			e.clk.Set(now)
			stop := runLoop(t, e.env)

			eventually(t, "Ada's call hanging and Grace's status and presence written", func() bool {
				g := e.shown(grace)
				return inj.Hanging() == 1 && g.SlackText == "In a meeting" && g.TeamsAvailability == "Busy"
			})
			if a := e.shown(ada); a.SlackText != "" && spec.source {
				t.Errorf("Ada shows %+v while her calendar hangs", a)
			}
			inj.Clear() // the provider answers 503 at last
			waitFor(t, e.env, "Ada to be due again after the backoff", func() bool { return e.idle(now.Add(retryBase)) })
			stop()
			e.wantHealthy(ada, "Ada")
			e.wantHealthy(grace, "Grace")
			if got := e.broken(); len(got) != 0 {
				t.Errorf("OnBroken calls %q, want none", got)
			}
		})
	}
}

// eventually polls cond until it holds, for at most ten seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// An access token the provider refuses before the stored expiry says (revoked by a password
// change, a clock skew, or an expiry we never knew): the scheduler refreshes once, retries
// once in the same run, stores the new token, and the next call uses it without refreshing
// again. (Slack: TestSlackTokenExpiredIsRefreshedAndRetried.)
func TestExpiredAccessTokenIsRefreshedAndRetriedOnce(t *testing.T) {
	for _, spec := range faultSpecs {
		if spec.provider == "slack" {
			continue
		}
		t.Run(spec.provider, func(t *testing.T) {
			t.Parallel()
			e := newFaultEnv(t, msEnvOptions{})
			ada := e.addFaultPerson("u-ada", oidAda, "U0001", "ZUserAda0000000000001")
			// The tokens issued at 09:59 died at 10:59; the stored expiry of this one is lost.
			now := at(11, 0)
			blockStart := now
			if spec.source {
				blockStart = now.Add(5 * time.Minute)
				spec.event(e, ada, blockStart, blockStart.Add(30*time.Minute))
			} else {
				e.addEvent(ada.person, googlefake.Event{Summary: "Secret trip", EventType: "outOfOffice", Start: now, End: now.Add(2 * time.Hour)})
			}
			conn := spec.conn(ada)
			old := e.open(e.connection(ada.id, conn.ID))
			e.setExpiry(conn, time.Time{})
			callsBefore := spec.calls(e, ada)

			e.processMS(ada, now)
			e.wantHealthy(ada, "after the refresh")
			refreshed := func() int {
				n := 0
				for _, a := range e.activity(ada.id) {
					if a.Kind == "token" && a.Target == spec.provider && a.Outcome == "refreshed" {
						n++
					}
				}
				return n
			}
			if n := refreshed(); n != 1 {
				t.Errorf("%d refreshes of the %s token, want 1", n, spec.provider)
			}
			fresh := e.open(e.connection(ada.id, conn.ID))
			if fresh.AccessToken == old.AccessToken || fresh.Expiry.IsZero() {
				t.Errorf("the stored %s token was not replaced by the refreshed one (expiry %s)", spec.provider, fresh.Expiry)
			}
			// The refused call and its retry, nothing more.
			if spec.source {
				evs, err := e.st.ListEvents(e.ctx, ada.id, now, now.Add(time.Hour))
				if err != nil || len(evs) != 1 {
					t.Errorf("events after the sync: %+v %v, want the meeting", evs, err)
				}
			} else if a := e.shown(ada); a.SlackText == "" || a.TeamsAvailability != "Away" {
				t.Errorf("Ada shows %+v, want the out-of-office written after the refresh", a)
			}
			used := spec.calls(e, ada) - callsBefore

			// Later the new token works at once: no refresh, no refused call.
			later := now.Add(time.Minute)
			if spec.source {
				if err := e.st.RequestSync(e.ctx, ada.id, conn.ID, later); err != nil {
					t.Fatal(err)
				}
			} else {
				// A manual focus block makes the target write again.
				if err := e.st.PutOverride(e.ctx, ada.id, presence.Override{ID: "focus-1", Kind: presence.OverrideFocus, Start: later, End: later.Add(30 * time.Minute), Origin: "web"}); err != nil {
					t.Fatal(err)
				}
			}
			before := spec.calls(e, ada)
			e.processMS(ada, later)
			if n := refreshed(); n != 1 {
				t.Errorf("%d refreshes after the next call, want still 1", n)
			}
			if n := spec.calls(e, ada) - before; n == 0 || n >= used {
				t.Errorf("the next run made %d calls to %s (the first %d, with the refused one and its retry), want fewer, not none", n, spec.provider, used)
			}
		})
	}
}

// A refresh token the provider no longer accepts (invalid_grant, or Slack's equivalent)
// breaks that connection only: the person is told once (OnBroken → the App Home message and the
// dashboard's "reconnect", see web's TestSlackAppHomeOpened and TestDashboard), their other
// connections keep working, other people are unaffected, and the broken connection is not
// called again. Google and Outlook: see the top of this file.
func TestRevokedRefreshTokenBreaksOnlyThatConnection(t *testing.T) {
	revoke := map[string]func(e *msEnv, p *msPerson) string{
		"teams": func(e *msEnv, p *msPerson) string {
			// Revoking in graphfake would revoke the person's Outlook grant too: refuse only
			// the Teams refresh token, as the identity platform does.
			cred := e.open(e.connection(p.id, p.teams.ID))
			e.mfault.Inject(faulttest.Status(http.StatusBadRequest).WithBody("application/json",
				`{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked."}`),
				faulttest.Suffix("/oauth2/v2.0/token"), faulttest.Secret(cred.RefreshToken))
			return "invalid_grant"
		},
		"zoom": func(e *msEnv, p *msPerson) string {
			e.zfake.RevokeTokens(p.zoomUser)
			return "invalid_grant"
		},
		"slack": func(e *msEnv, p *msPerson) string {
			e.sfake.RevokeUserTokens(p.slackUser)
			return "invalid_refresh_token"
		},
	}
	for _, spec := range faultSpecs {
		fn, ok := revoke[spec.provider]
		if !ok {
			continue
		}
		t.Run(spec.provider, func(t *testing.T) {
			t.Parallel()
			e := newFaultEnv(t, msEnvOptions{})
			ada := e.addFaultPerson("u-ada", oidAda, "U0001", "ZUserAda0000000000001")
			grace := e.addFaultPerson("u-grace", oidGrace, "U0002", "ZUserGrace00000000002")
			now := at(10, 0)
			for _, p := range []*msPerson{ada, grace} {
				if spec.source {
					spec.event(e, p, now, now.Add(30*time.Minute))
				} else {
					e.addEvent(p.person, meeting(now, now.Add(30*time.Minute)))
				}
				e.setExpiry(spec.conn(p), now.Add(2*time.Minute)) // a refresh is due
			}
			reason := fn(e, ada)

			e.processMS(ada, now)
			e.processMS(grace, now)
			c := e.connection(ada.id, spec.conn(ada).ID)
			if c.Health != store.HealthBroken || c.HealthReason != reason {
				t.Fatalf("Ada's %s connection: %s (%s), want broken (%s)", spec.provider, c.Health, c.HealthReason, reason)
			}
			if got := e.broken(); !slices.Equal(got, []string{"u-ada " + spec.provider}) {
				t.Errorf("OnBroken calls %q, want Ada told once about %s", got, spec.provider)
			}
			if a, ok := e.findActivity(ada.id, spec.provider, "broken"); !ok || a.Reason != "reconnect needed ("+reason+")" {
				t.Errorf("activity %+v (found %v), want the connection broken", a, ok)
			}
			conns, err := e.st.ListConnections(e.ctx, ada.id)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range conns {
				if c.Provider != spec.provider && c.Health != store.HealthOK {
					t.Errorf("Ada's %s connection: %s, want ok", c.Provider, c.Health)
				}
			}
			e.wantHealthy(grace, "Grace")
			g := e.shown(grace)
			if g.SlackText != "In a meeting" || g.TeamsAvailability != "Busy" {
				t.Errorf("Grace shows %+v, want the meeting", g)
			}
			// Ada's other target still works. (A broken source's meeting was never read: her
			// targets show nothing for it, while Grace's show it.)
			a := e.shown(ada)
			switch spec.provider {
			case "slack":
				if a.TeamsAvailability != "Busy" {
					t.Errorf("Ada's Teams shows %+v, want the meeting", a.teamsPart())
				}
			case "teams":
				if a.SlackText != "In a meeting" {
					t.Errorf("Ada's Slack shows %+v, want the meeting", a.slackPart())
				}
			}
			// The broken connection is left alone from now on.
			calls := spec.calls(e, ada)
			e.processMS(ada, now.Add(time.Hour))
			if n := spec.calls(e, ada); n != calls {
				t.Errorf("the broken %s connection was called %d more times", spec.provider, n-calls)
			}
			if got := e.broken(); len(got) != 1 {
				t.Errorf("OnBroken calls %q, want still one", got)
			}
		})
	}
}

// --- A provider down for an hour -------------------------------------------------------------

// outageRetryMax caps the backoff in the outage tests.
const outageRetryMax = 10 * time.Minute

// retryWaits parses the waits the activity log gives for target's failures, in order.
func retryWaits(acts []store.Activity, target string) []time.Duration {
	var out []time.Duration
	for i := len(acts) - 1; i >= 0; i-- { // oldest first
		a := acts[i]
		if a.Target != target || (a.Outcome != "error" && a.Outcome != "rate_limited") {
			continue
		}
		_, s, ok := strings.Cut(a.Reason, "retrying in ")
		if !ok {
			_, s, ok = strings.Cut(a.Reason, "retrying after ")
		}
		if d, err := time.ParseDuration(s); ok && err == nil {
			out = append(out, d)
		}
	}
	return out
}

// A provider down from 10:00 to 11:00 (Zoom with 429s without Retry-After, the others with
// 503s). Following the person's due times with the fake clock: the connection's backoff grows
// and is capped at Options.RetryMax, the provider is called a bounded number of times, nothing
// is written wrongly meanwhile (a source's cached events still count; a target gets no late
// write for a block that ended during the outage), nobody is told to reconnect, and once the
// provider is back the state catches up at the next retry: for a source, a meeting added and
// one deleted during the outage are picked up; for a target, the block in progress is written
// exactly once.
func TestProviderDownForAnHour(t *testing.T) {
	for _, spec := range faultSpecs {
		t.Run(spec.provider, func(t *testing.T) {
			t.Parallel()
			e := newFaultEnv(t, msEnvOptions{start: at(8, 59), resync: time.Hour, retryMax: outageRetryMax})
			ada := e.addFaultPerson("u-ada", oidAda, "U0001", "ZUserAda0000000000001")
			down, up := at(10, 0), at(11, 0)
			fault := faulttest.Status(http.StatusServiceUnavailable)
			if spec.provider == "zoom" {
				fault = faulttest.RateLimited("")
			}
			var addDuring, deleteDuring func()
			if spec.source {
				spec.event(e, ada, at(10, 15), at(10, 30))                        // known before: written from the cache
				deleteDuring = spec.event(e, ada, at(11, 40), at(12, 0))          // deleted during the outage
				addDuring = func() { spec.event(e, ada, at(10, 50), at(11, 30)) } // added during it
			} else {
				e.addEvent(ada.person, meeting(at(10, 15), at(10, 45))) // ends during the outage
				e.addEvent(ada.person, meeting(at(10, 50), at(11, 30))) // in progress when it is back
			}

			inj := spec.fault(e)
			now := at(9, 0)
			var failedCalls int
			var injected bool
			var recovered time.Time
			var caughtUp shown // what Ada shows right after the first run once it is back
			for now.Before(at(12, 30)) {
				if !injected && !now.Before(down) {
					inj.Inject(fault, spec.api)
					injected = true
					if spec.source {
						addDuring()
						deleteDuring()
					}
				}
				if recovered.IsZero() && !now.Before(up) {
					failedCalls = inj.Faulted()
					inj.Clear()
					recovered = now
				}
				next := e.processMS(ada, now)
				if !next.After(now) {
					t.Fatalf("at %s: next due %s, not later (a hot loop)", now.Format("15:04:05"), next.Format("15:04:05"))
				}
				if now.Equal(recovered) {
					caughtUp = e.shown(ada)
				}
				now = next
			}
			if recovered.IsZero() {
				t.Fatal("the provider never came back")
			}
			if recovered.Sub(up) > outageRetryMax {
				t.Errorf("caught up at %s, more than RetryMax after the provider came back at 11:00", recovered.Format("15:04:05"))
			}
			// Bounded calls: a backoff growing from 5s to 10 minutes makes about a dozen
			// attempts in the hour (a fixed 5s wait would make 720).
			if failedCalls < 5 || failedCalls > 25 {
				t.Errorf("%d calls to %s during the hour, want between 5 and 25", failedCalls, spec.provider)
			}
			waits := retryWaits(e.activity(ada.id), spec.stepTarget)
			t.Logf("%d calls to %s during the hour; waits %v; caught up at %s", failedCalls, spec.provider, waits, recovered.Format("15:04:05"))
			if len(waits) < 5 {
				t.Fatalf("retry waits %v: want one per failed attempt", waits)
			}
			for i := 1; i < len(waits); i++ {
				if waits[i] < waits[i-1] {
					t.Errorf("retry waits %v: they shrink at %d", waits, i)
				}
			}
			if last := waits[len(waits)-1]; last != outageRetryMax || slices.Max(waits) != outageRetryMax {
				t.Errorf("retry waits %v: want them to grow to RetryMax (%s) and stop there", waits, outageRetryMax)
			}
			e.wantHealthy(ada, "after the outage")
			if got := e.broken(); len(got) != 0 {
				t.Errorf("OnBroken calls %q, want none", got)
			}

			// What was written, in all: exactly the right thing, once.
			w := e.faultWrites(ada)
			sets := e.okCalls("users.profile.set", ada.slackUser)
			switch {
			case spec.source:
				// The cached 10:15 meeting at 10:15, the one added during the outage once
				// it was back; nothing at 11:40 (deleted during the outage).
				if len(sets) != 2 {
					t.Fatalf("users.profile.set:%s, want the 10:15 meeting's and the 10:50 one's", describe(sets))
				}
				wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", at(10, 30))
				wantProfile(t, sets[1], "In a meeting", ":spiral_calendar_pad:", at(11, 30))
				if !sets[0].Time.Equal(at(10, 15)) || !sets[1].Time.Equal(recovered) {
					t.Errorf("written at %s and %s, want 10:15 and at the recovery %s", sets[0].Time.Format("15:04:05"), sets[1].Time.Format("15:04:05"), recovered.Format("15:04:05"))
				}
				if n := w[graphfake.EndpointSetPresence]; n != 2 {
					t.Errorf("%d Teams setPresence, want 2", n)
				}
			case spec.provider == "slack":
				if len(sets) != 1 || !sets[0].Time.Equal(recovered) {
					t.Fatalf("users.profile.set:%s, want only the block in progress at the recovery", describe(sets))
				}
				wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", at(11, 30))
				if caughtUp.SlackText != "In a meeting" {
					t.Errorf("after the recovery Slack shows %+v", caughtUp.slackPart())
				}
			case spec.provider == "teams":
				ok := e.okGraph(graphfake.EndpointSetPresence, ada.oid)
				if len(ok) != 1 || !ok[0].Time.Equal(recovered) {
					t.Fatalf("setPresence:%s, want only the block in progress at the recovery", describeGraph(ok))
				}
				if caughtUp.TeamsAvailability != "Busy" || caughtUp.Session.Sub(at(11, 30)).Abs() >= time.Minute {
					t.Errorf("after the recovery Teams shows %+v, want our Busy session until 11:30", caughtUp.teamsPart())
				}
			}
		})
	}
}

// --- A write whose answer is lost ------------------------------------------------------------

// The connection breaks after the provider applied a write (a reset, or a timeout, after
// serving): the scheduler sees an error and retries, and must then recognise what it finds as
// its own, not as something the person set by hand meanwhile. Otherwise the person's own status,
// which ours replaced, is taken to be ours-replaced-by-theirs and lost, and when the block ends
// early (I'm back) our status, our snooze and our Teams message stay.
func TestWriteWhoseAnswerWasLost(t *testing.T) {
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
	e.connectTeams(ada)
	e.sfake.SetStatus("U0001", "Lunch", ":sandwich:", at(12, 0))
	if err := e.mfake.SetUserStatusMessage(oidAda, "Back at 2", time.Time{}); err != nil {
		t.Fatal(err)
	}
	e.addEvent(ada.person, googlefake.Event{Summary: "Secret trip", EventType: "outOfOffice", Start: at(10, 0), End: at(12, 0)})
	lost := faulttest.Reset().AfterServing()
	e.sfault.Times(1, lost, faulttest.Prefix("/api/users.profile.set"))
	e.sfault.Times(1, lost, faulttest.Prefix("/api/dnd.setSnooze"))
	e.mfault.Times(1, lost, faulttest.Prefix("/v1.0/me/presence/setStatusMessage"))

	next := e.processMS(ada, at(10, 0))
	e.wantNext(next, at(10, 0).Add(retryBase), "after the lost answers")
	if n := e.sfault.Faulted() + e.mfault.Faulted(); n != 3 {
		t.Fatalf("%d answers lost, want 3", n)
	}
	a := e.shown(ada)
	if !strings.HasPrefix(a.SlackText, "Out of office") || !a.DND || !strings.HasPrefix(a.TeamsMessage, "Out of office") {
		t.Fatalf("the providers did not apply the writes: %+v", a)
	}

	e.processMS(ada, next)
	for _, act := range e.activity(ada.id) {
		if act.Outcome == "skipped" {
			t.Errorf("activity %+v: our own write was taken for the person's", act)
		}
	}
	if a := e.shown(ada); !strings.HasPrefix(a.SlackText, "Out of office") || !a.DND || !strings.HasPrefix(a.TeamsMessage, "Out of office") {
		t.Errorf("after the retry Ada shows %+v, want the out-of-office", a)
	}
	// The retry found the writes done and did not make them again.
	w := e.faultWrites(ada)
	for _, m := range []string{"users.profile.set", "dnd.setSnooze", graphfake.EndpointSetStatusMessage} {
		if w[m] != 1 {
			t.Errorf("%d %s applied, want 1 (the one whose answer was lost)", w[m], m)
		}
	}

	// I'm back: ours goes, hers comes back.
	if err := e.st.PutOverride(e.ctx, ada.id, presence.Override{ID: "back-1", Kind: presence.OverrideBack, Start: at(10, 20), Origin: "slack"}); err != nil {
		t.Fatal(err)
	}
	e.processMS(ada, at(10, 20))
	a = e.shown(ada)
	if a.SlackText != "Lunch" || a.SlackEmoji != ":sandwich:" || !a.SlackExpiration.Equal(at(12, 0)) {
		t.Errorf("after I'm back Slack shows %q %q until %s, want her Lunch status back", a.SlackText, a.SlackEmoji, a.SlackExpiration)
	}
	if a.DND {
		t.Errorf("after I'm back our snooze runs on until %s", a.DNDEnd)
	}
	if a.TeamsMessage != "Back at 2" {
		t.Errorf("after I'm back Teams shows the message %q, want hers back", a.TeamsMessage)
	}
}
