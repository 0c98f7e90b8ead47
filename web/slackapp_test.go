package web_test

// Tests of the Slack App Home (issue 6) through the real flow: the fake Slack delivers signed
// app_home_opened, message.im and block_actions requests to the server on httptest, the
// server publishes the Home view and answers in the messages tab with the real Slack client
// (bot token from the real install), and a real scheduler, run by hand with ProcessUser,
// makes the status and Do Not Disturb writes that follow. One fake clock drives the service,
// the store, the fake Slack and the scheduler; it starts at the real time, because
// slack.NewSecretsVerifier checks the request timestamp against the real clock.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests place the person in an Etc/GMT zone

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	slackint "github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
	"github.com/dontinterrupt/dontinterrupt/web"
)

// ourActions are the action IDs of the App Home's buttons, as issue 6 lists them.
var ourActions = []string{"focus_30", "focus_60", "focus_120", "back", "extend_15", "ignore_meeting", "pause_until_tomorrow", "resume"}

// googleSource adapts the Google client to the scheduler's Source (as cmd/dontinterrupt does).
type googleSource struct{ c *google.Client }

func (g googleSource) Sync(ctx context.Context, cred provider.Credential, resource, syncToken string, now time.Time, titleEmoji bool) (scheduler.SyncResult, error) {
	r, err := g.c.Sync(ctx, cred, resource, syncToken, now, google.SyncOptions{TitleEmoji: titleEmoji})
	return scheduler.SyncResult(r), err
}

func (g googleSource) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return g.c.Refresh(ctx, cred, now)
}

// appEnv is a person with Google and Slack connected through the real flows, the App Home
// enabled, and a scheduler to run by hand.
type appEnv struct {
	*env
	ctx   context.Context
	fc    *clock.Fake
	t0    time.Time // the fake clock at the start, the real time truncated to the second
	loc   *time.Location
	uid   string
	gconn store.Connection
	sconn store.Connection
	sched *scheduler.Scheduler
	// sib is a second server on the same dependencies: the scheduler's hooks (NotifyBroken)
	// call it, as cmd/dontinterrupt wires them to the server.
	sib *web.Server
}

type appOptions struct {
	// googleSource makes the scheduler sync the Google calendar of the fake; without it the
	// tests store the person's events by hand and the scheduler only writes to Slack.
	googleSource bool
}

// zoneAt names an IANA zone (Etc/GMT±n) in which t falls between 10:00 and 11:00, so that the
// transitions the tests plan all fall on the person's "today", whatever the real time is.
func zoneAt(t time.Time) string {
	off := 10 - t.UTC().Hour()
	if off < -12 {
		off += 24
	}
	if off > 14 {
		off -= 24
	}
	switch {
	case off > 0:
		return fmt.Sprintf("Etc/GMT-%d", off) // POSIX signs: Etc/GMT-10 is UTC+10
	case off < 0:
		return fmt.Sprintf("Etc/GMT+%d", -off)
	}
	return "Etc/GMT"
}

func newAppEnv(t *testing.T, o appOptions) *appEnv {
	t.Helper()
	t0 := time.Now().Truncate(time.Second)
	a := &appEnv{ctx: t.Context(), fc: clock.NewFake(t0), t0: t0}
	a.env = newEnv(t, envOptions{clock: a.fc, configure: func(e *env, d *web.Deps) {
		// A fake Slack on the service's clock whose Events API and Interactivity Request URLs
		// are this server's.
		e.slack = slackfake.New(slackfake.Options{
			Now:              a.fc.Now,
			TokenRotation:    true,
			EventsURL:        e.base + "/slack/events",
			InteractivityURL: e.base + "/slack/interactivity",
		})
		ss := httptest.NewServer(e.slack)
		t.Cleanup(ss.Close)
		e.slack.SetBaseURL(ss.URL)
		e.slack.AutoApprove(slackUser)
		sc, err := slackint.New(slackint.Config{
			ClientID:     e.slack.ClientID(),
			ClientSecret: e.slack.ClientSecret(),
			BaseURL:      ss.URL,
			RedirectURL:  e.base + "/connect/slack/callback",
			HTTPClient:   ss.Client(),
		})
		if err != nil {
			t.Fatal(err)
		}
		e.sc = sc
		d.Slack, d.SlackBot, d.SlackSigningSecret, d.PublicURL = sc, sc, e.slack.SigningSecret(), e.base
		if a.sib, err = web.NewServer(*d); err != nil {
			t.Fatal(err)
		}
	}})

	a.uid = a.signIn()
	u, err := a.st.GetUser(a.ctx, a.uid)
	if err != nil {
		t.Fatal(err)
	}
	u.Rules.TimeZone = zoneAt(t0)
	if err := a.st.PutUser(a.ctx, u); err != nil {
		t.Fatal(err)
	}
	if a.loc, err = u.Rules.Location(); err != nil {
		t.Fatal(err)
	}
	a.gconn = a.connect(a.uid, "google")
	a.sconn = a.connect(a.uid, "slack")
	if a.sconn.ExternalID != slackUser || a.sconn.TeamID != slackTeam {
		t.Fatalf("Slack connection of %s in %s, want %s in %s", a.sconn.ExternalID, a.sconn.TeamID, slackUser, slackTeam)
	}
	// The install asked for the bot scopes too: the credential holds the workspace's bot token.
	if cred := a.credential(a.sconn); !strings.HasPrefix(cred.Extra[slackint.ExtraBotToken], "xoxe.xoxb-") || cred.Extra[slackint.ExtraBotRefresh] == "" {
		t.Fatalf("the Slack credential has no rotating bot token: %v", slices.Sorted(maps.Keys(cred.Extra)))
	}

	sources := map[string]scheduler.Source{}
	if o.googleSource {
		sources["google"] = googleSource{a.gc}
	}
	a.sched, err = scheduler.New(scheduler.Deps{
		Logger:   slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:    a.st,
		Vault:    a.vault,
		Clock:    a.fc,
		Sources:  sources,
		Slack:    a.sc,
		OnBroken: a.sib.NotifyBroken,
		Options:  scheduler.Options{ResyncInterval: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// at is t0 + d.
func (a *appEnv) at(d time.Duration) time.Time { return a.t0.Add(d) }

// hm formats t as the App Home does for today ("15:04" in the person's zone).
func (a *appEnv) hm(t time.Time) string { return t.In(a.loc).Format("15:04") }

// meeting stores an accepted meeting of the person's Google calendar.
func (a *appEnv) meeting(id string, start, end time.Time) presence.Event {
	a.t.Helper()
	ev := presence.Event{
		Source: a.gconn.ID + "/" + scheduler.DefaultResource, ID: id, Type: presence.EventDefault,
		Start: start, End: end, Response: presence.ResponseAccepted, HasOtherAttendees: true,
	}
	if err := a.st.PutEvents(a.ctx, a.uid, []presence.Event{ev}); err != nil {
		a.t.Fatal(err)
	}
	return ev
}

// plan is what the scheduler would plan now (the scheduler is not running in these tests).
func (a *appEnv) plan() presence.Timeline {
	a.t.Helper()
	now := a.fc.Now()
	u, err := a.st.GetUser(a.ctx, a.uid)
	if err != nil {
		a.t.Fatal(err)
	}
	evs, err := a.st.ListEvents(a.ctx, a.uid, now.Add(-48*time.Hour), now.Add(48*time.Hour))
	if err != nil {
		a.t.Fatal(err)
	}
	ovs, err := a.st.ListOverrides(a.ctx, a.uid)
	if err != nil {
		a.t.Fatal(err)
	}
	return presence.Plan(evs, ovs, u.Rules, now, 36*time.Hour)
}

// stateAt is the planned state at t.
func (a *appEnv) stateAt(t time.Time) presence.DesiredState {
	a.t.Helper()
	seg, ok := a.plan().At(t)
	if !ok {
		a.t.Fatalf("the plan does not cover %s", t)
	}
	return seg.State
}

func (a *appEnv) overrides() []presence.Override {
	a.t.Helper()
	ovs, err := a.st.ListOverrides(a.ctx, a.uid)
	if err != nil {
		a.t.Fatal(err)
	}
	return ovs
}

// wantOverride checks that the only stored override is one of kind ending at end, from Slack.
func (a *appEnv) wantOverride(what string, kind presence.OverrideKind, start, end time.Time) presence.Override {
	a.t.Helper()
	ovs := a.overrides()
	if len(ovs) != 1 {
		a.t.Fatalf("%s: overrides %+v, want one %s override", what, ovs, kind)
	}
	o := ovs[0]
	if o.Kind != kind || !o.Start.Equal(start) || !o.End.Equal(end) || o.Origin != "slack" {
		a.t.Fatalf("%s: override %+v, want %s from %s to %s from slack", what, o, kind, start, end)
	}
	return o
}

// wantState checks the planned current state.
func (a *appEnv) wantState(what string, kind presence.Kind, until time.Time, cause string) {
	a.t.Helper()
	st := a.plan().Current().State
	if st.Paused || st.Kind != kind || !st.Until.Equal(until) || st.Cause != cause {
		a.t.Fatalf("%s: planned now %+v, want %q until %s from %q", what, st, kind, until, cause)
	}
}

// process runs the scheduler for the person now and returns the Slack writes it made.
func (a *appEnv) process() []string {
	a.t.Helper()
	mark := len(a.slack.Calls())
	if _, err := a.sched.ProcessUser(a.ctx, a.uid); err != nil {
		a.t.Fatalf("ProcessUser: %v", err)
	}
	return writes(a.t, a.slack.Calls()[mark:])
}

// writes describes the calls that change something in Slack: "status <emoji> <text> until
// <15:04:05 UTC>", "status cleared", "snooze <n> min", "snooze ended".
func writes(t *testing.T, calls []slackfake.Call) []string {
	t.Helper()
	var out []string
	for _, c := range calls {
		var s string
		switch c.Method {
		case "users.profile.set":
			var p struct {
				Text       string `json:"status_text"`
				Emoji      string `json:"status_emoji"`
				Expiration int64  `json:"status_expiration"`
			}
			if err := json.Unmarshal([]byte(c.Params.Get("profile")), &p); err != nil {
				t.Fatalf("users.profile.set profile %q: %v", c.Params.Get("profile"), err)
			}
			if p.Text == "" && p.Emoji == "" {
				s = "status cleared"
			} else {
				s = statusWrite(p.Emoji, p.Text, time.Unix(p.Expiration, 0))
			}
		case "dnd.setSnooze":
			s = "snooze " + c.Params.Get("num_minutes") + " min"
		case "dnd.endSnooze", "dnd.endDnd":
			s = "snooze ended"
		case "users.setPresence":
			s = "presence " + c.Params.Get("presence")
		default:
			continue
		}
		if c.Error != "" || c.Status != http.StatusOK {
			s += fmt.Sprintf(" → %d %s", c.Status, c.Error)
		}
		out = append(out, s)
	}
	return out
}

func statusWrite(emoji, text string, until time.Time) string {
	return fmt.Sprintf("status %s %s until %s", emoji, text, until.UTC().Format("15:04:05"))
}

// snooze is a snooze of d, in whole minutes rounded up as the Slack client asks for it.
func snooze(d time.Duration) string {
	return fmt.Sprintf("snooze %d min", int((d+time.Minute-1)/time.Minute))
}

const (
	statusCleared = "status cleared"
	snoozeEnded   = "snooze ended"
)

func wantWrites(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: Slack writes\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// publishes counts the views.publish calls Slack answered with ok.
func (a *appEnv) publishes() int {
	n := 0
	for _, c := range a.slack.CallsTo("views.publish") {
		if c.Status == http.StatusOK && c.Error == "" {
			n++
		}
	}
	return n
}

// homeView is the published Home view, read back from the fake.
type homeView struct {
	JSON    string
	Texts   []string          // every text of its blocks, in order
	Buttons []string          // the action IDs of its buttons, in order
	Values  map[string]string // button values by action ID
}

func (v homeView) has(s string) bool {
	return slices.ContainsFunc(v.Texts, func(t string) bool { return strings.Contains(t, s) })
}

func (a *appEnv) home() homeView {
	a.t.Helper()
	raw := a.slack.HomeView(slackUser)
	if raw == nil {
		a.t.Fatal("no Home view was published")
	}
	var doc struct {
		Type   string `json:"type"`
		Blocks []any  `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		a.t.Fatalf("the published view is not JSON: %v", err)
	}
	if doc.Type != "home" {
		a.t.Fatalf("the published view is of type %q, want home", doc.Type)
	}
	v := homeView{JSON: string(raw), Values: map[string]string{}}
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if x["type"] == "button" {
				id, _ := x["action_id"].(string)
				val, _ := x["value"].(string)
				v.Buttons = append(v.Buttons, id)
				v.Values[id] = val
			}
			if s, ok := x["text"].(string); ok {
				v.Texts = append(v.Texts, s)
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(x[k])
			}
		}
	}
	walk(doc.Blocks)
	return v
}

// wantHome checks the published view says each of want and has exactly the buttons.
func (a *appEnv) wantHome(what string, buttons []string, want ...string) homeView {
	a.t.Helper()
	v := a.home()
	for _, w := range want {
		if !v.has(w) {
			a.t.Errorf("%s: the Home view does not say %q; it says\n\t%s", what, w, strings.Join(v.Texts, "\n\t"))
		}
	}
	if buttons != nil && !slices.Equal(v.Buttons, buttons) {
		a.t.Errorf("%s: the Home view's buttons are %v, want %v", what, v.Buttons, buttons)
	}
	return v
}

// ok fails unless a delivery went through with status.
func (a *appEnv) ok(what string, d slackfake.Delivery, err error, status int) slackfake.Delivery {
	a.t.Helper()
	if err != nil {
		a.t.Fatalf("%s: %v", what, err)
	}
	if d.Status != status {
		a.t.Fatalf("%s: HTTP %d, want %d: %s", what, d.Status, status, d.Response)
	}
	return d
}

// open delivers app_home_opened on the Home tab; the view is published.
func (a *appEnv) open() slackfake.Delivery {
	a.t.Helper()
	n := a.publishes()
	d, err := a.slack.OpenAppHome(a.ctx, slackUser, "home")
	a.ok("app_home_opened", d, err, http.StatusOK)
	if a.publishes() != n+1 {
		a.t.Fatalf("app_home_opened: %d views published, want 1", a.publishes()-n)
	}
	return d
}

// click presses a button of the published view; the view is published again.
func (a *appEnv) click(actionID string) slackfake.Delivery {
	a.t.Helper()
	n := a.publishes()
	d, err := a.slack.ClickButton(a.ctx, slackUser, actionID)
	a.ok("click "+actionID, d, err, http.StatusOK)
	if a.publishes() != n+1 {
		a.t.Fatalf("click %s: %d views published, want 1", actionID, a.publishes()-n)
	}
	return d
}

// eventTS reads the ts of the message of a message.im delivery.
func eventTS(t *testing.T, payload []byte) string {
	t.Helper()
	var p struct {
		Event struct {
			TS      string `json:"ts"`
			Channel string `json:"channel"`
		} `json:"event"`
	}
	if err := json.Unmarshal(payload, &p); err != nil || p.Event.TS == "" {
		t.Fatalf("no event ts in %s (%v)", payload, err)
	}
	return p.Event.TS
}

// replies returns the app's messages in the thread of the message with ts threadTS.
func (a *appEnv) replies(threadTS string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range a.slack.Conversation(slackUser) {
		if m.Bot && m.ThreadTS == threadTS {
			out = append(out, m)
		}
	}
	return out
}

// say sends text in the App Home's messages tab and returns the one reply in its thread.
func (a *appEnv) say(text string) string {
	a.t.Helper()
	d, err := a.slack.SendIM(a.ctx, slackUser, text)
	a.ok("message "+strconv.Quote(text), d, err, http.StatusOK)
	ts := eventTS(a.t, d.Payload)
	r := a.replies(ts)
	if len(r) != 1 {
		a.t.Fatalf("message %q: %d replies in its thread, want 1: %+v", text, len(r), a.slack.Conversation(slackUser))
	}
	return r[0].Text
}

func wantReply(t *testing.T, text, reply string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(reply, w) {
			t.Errorf("reply to %q is %q, want it to say %q", text, reply, w)
		}
	}
}

// buttons of the view in each state.
var (
	buttonsMeeting = []string{"focus_30", "focus_60", "focus_120", "back", "extend_15", "ignore_meeting", "pause_until_tomorrow"}
	buttonsFocus   = []string{"focus_30", "focus_60", "focus_120", "back", "extend_15", "pause_until_tomorrow"}
	buttonsNothing = []string{"focus_30", "focus_60", "focus_120", "pause_until_tomorrow"}
	buttonsPaused  = []string{"focus_30", "focus_60", "focus_120", "resume"}
)

// The App Home, opened during a meeting: the state and why, today's next transitions by time
// and kind (never a title), connection health and the buttons. When a connection breaks, the
// person is told in the App Home with a reconnect link, and the view shows it.
func TestSlackAppHomeOpened(t *testing.T) {
	a := newAppEnv(t, appOptions{googleSource: true})
	m1 := a.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: "Secret planning", Description: "Merger talks", Location: "Room Zanzibar", Start: a.at(-10 * time.Minute), End: a.at(50 * time.Minute)})
	a.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: "Quarterly numbers", Start: a.at(2 * time.Hour), End: a.at(3 * time.Hour)})

	// The scheduler syncs the calendar and sets the meeting's status.
	wantWrites(t, "the meeting", a.process(), statusWrite(":spiral_calendar_pad:", "In a meeting", a.at(50*time.Minute)))

	// The messages tab opened: nothing to publish.
	d, err := a.slack.OpenAppHome(a.ctx, slackUser, "messages")
	a.ok("app_home_opened messages", d, err, http.StatusOK)
	if n := a.publishes(); n != 0 {
		t.Fatalf("opening the messages tab published %d views", n)
	}

	a.open()
	v := a.wantHome("the Home tab", buttonsMeeting,
		"*In a meeting until "+a.hm(a.at(50*time.Minute))+"*, from Google Calendar.",
		"Slack: :spiral_calendar_pad: In a meeting",
		"*Next today:* "+a.hm(a.at(50*time.Minute))+" your own status · "+a.hm(a.at(2*time.Hour))+" in a meeting · "+a.hm(a.at(3*time.Hour))+" your own status",
		":white_check_mark: Google",
		":white_check_mark: Slack",
		"Settings and history: <"+a.base+"/|dontinterrupt>",
	)
	if want := a.gconn.ID + "/primary/" + m1; v.Values["ignore_meeting"] != want {
		t.Errorf("the Ignore button's value is %q, want the meeting's key %q", v.Values["ignore_meeting"], want)
	}
	for _, secret := range []string{"Secret planning", "Merger talks", "Zanzibar", "Quarterly numbers", "Teams"} {
		if strings.Contains(v.JSON, secret) {
			t.Errorf("the Home view shows %q:\n%s", secret, v.JSON)
		}
	}

	// Google access is revoked: the next sync breaks the connection, the person is told in the
	// App Home with a reconnect link, and the view shows it.
	a.google.RevokeTokens(googlefake.DefaultSub)
	if err := a.st.RequestSync(a.ctx, a.uid, a.gconn.ID, a.fc.Now()); err != nil {
		t.Fatal(err)
	}
	a.process()
	if c := a.connection(a.uid, "google"); c.Health != store.HealthBroken {
		t.Fatalf("the Google connection is %q after its grant was revoked", c.Health)
	}
	reconnect := a.base + "/connect/google"
	msgs := a.slack.Messages(slackUser)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Google connection stopped working") || !strings.Contains(msgs[0].Text, reconnect) || msgs[0].ThreadTS != "" {
		t.Fatalf("messages after the connection broke: %+v, want one telling the person to reconnect at %s", msgs, reconnect)
	}
	broken := ":warning: Google needs reconnecting: <" + reconnect + "|reconnect>"
	a.wantHome("after the connection broke", nil, broken, ":white_check_mark: Slack")
	a.open()
	a.wantHome("opened again", buttonsMeeting, broken, "*In a meeting until "+a.hm(a.at(50*time.Minute))+"*, from Google Calendar.")
}

// Every button acts through the shared override path; the scheduler then writes what the new
// plan says, and the republished view shows the new state.
func TestSlackAppHomeButtons(t *testing.T) {
	t.Run("focus, extend and I'm back", func(t *testing.T) {
		a := newAppEnv(t, appOptions{})
		a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
		m2 := a.meeting("m2", a.at(2*time.Hour), a.at(3*time.Hour))
		wantWrites(t, "the meeting", a.process(), statusWrite(":spiral_calendar_pad:", "In a meeting", a.at(50*time.Minute)))
		a.open()

		for _, c := range []struct {
			id string
			d  time.Duration
		}{{"focus_30", 30 * time.Minute}, {"focus_60", time.Hour}, {"focus_120", 2 * time.Hour}} {
			a.click(c.id)
			end := a.at(c.d)
			a.wantOverride(c.id, presence.OverrideFocus, a.t0, end)
			a.wantState(c.id, presence.KindManualFocus, end, "slack")
			wantWrites(t, c.id, a.process(), statusWrite(":headphones:", "Focusing", end), snooze(c.d))
			a.wantHome(c.id, buttonsFocus, "*Focus until "+a.hm(end)+"*, started from Slack.", "Slack: :headphones: Focusing")
		}

		a.click("extend_15")
		end := a.at(2*time.Hour + 15*time.Minute)
		a.wantOverride("extend_15", presence.OverrideFocus, a.t0, end)
		a.wantState("extend_15", presence.KindManualFocus, end, "slack")
		wantWrites(t, "extend_15", a.process(), statusWrite(":headphones:", "Focusing", end), snooze(135*time.Minute))
		a.wantHome("extend_15", buttonsFocus, "*Focus until "+a.hm(end)+"*, started from Slack.")

		// I'm back: the focus goes and so does the meeting in progress; our status is cleared
		// and the snooze we started ends. The later meeting still counts.
		a.click("back")
		ovs := a.overrides()
		if len(ovs) != 1 || ovs[0].Kind != presence.OverrideBack || ovs[0].Origin != "slack" {
			t.Fatalf("after back: overrides %+v, want one back override", ovs)
		}
		a.wantState("back", presence.KindNone, time.Time{}, "")
		wantWrites(t, "back", a.process(), statusCleared, snoozeEnded)
		if st := a.slack.Status(slackUser); st.Text != "" || st.Emoji != "" {
			t.Errorf("Slack shows %+v after back", st)
		}
		if dnd := a.slack.DND(slackUser); dnd.Snoozed {
			t.Errorf("Slack is still snoozed after back: %+v", dnd)
		}
		if st := a.stateAt(a.at(2*time.Hour + time.Minute)); st.Kind != presence.KindMeeting || !slices.Equal(st.EventKeys, []string{m2.Key()}) {
			t.Errorf("the later meeting after back: %+v", st)
		}
		a.wantHome("back", buttonsNothing, "*Nothing set by me right now:* your own status shows.",
			"*Next today:* "+a.hm(a.at(2*time.Hour))+" in a meeting · "+a.hm(a.at(3*time.Hour))+" your own status")
	})

	t.Run("ignore this meeting", func(t *testing.T) {
		a := newAppEnv(t, appOptions{})
		m1 := a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
		m2 := a.meeting("m2", a.at(2*time.Hour), a.at(3*time.Hour))
		wantWrites(t, "the meeting", a.process(), statusWrite(":spiral_calendar_pad:", "In a meeting", a.at(50*time.Minute)))
		a.open()
		a.click("ignore_meeting")
		o := a.wantOverride("ignore", presence.OverrideIgnore, a.t0, a.at(50*time.Minute))
		if o.EventKey != m1.Key() {
			t.Fatalf("the ignore override names %q, want %q", o.EventKey, m1.Key())
		}
		a.wantState("ignore", presence.KindNone, time.Time{}, "")
		if st := a.stateAt(a.at(2*time.Hour + time.Minute)); st.Kind != presence.KindMeeting || !slices.Equal(st.EventKeys, []string{m2.Key()}) {
			t.Errorf("the later meeting after ignoring the first: %+v", st)
		}
		wantWrites(t, "ignore", a.process(), statusCleared)
		a.wantHome("ignore", buttonsNothing, "*Nothing set by me right now:* your own status shows.",
			"*Next today:* "+a.hm(a.at(2*time.Hour))+" in a meeting")
	})

	t.Run("extend a meeting", func(t *testing.T) {
		a := newAppEnv(t, appOptions{})
		a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
		wantWrites(t, "the meeting", a.process(), statusWrite(":spiral_calendar_pad:", "In a meeting", a.at(50*time.Minute)))
		a.open()
		// Extend with no focus running keeps the person undisturbed 15 minutes past the meeting.
		a.click("extend_15")
		a.wantOverride("extend", presence.OverrideFocus, a.at(50*time.Minute), a.at(65*time.Minute))
		a.wantState("extend", presence.KindMeeting, a.at(50*time.Minute), presence.CauseCalendar)
		if st := a.stateAt(a.at(55 * time.Minute)); st.Kind != presence.KindManualFocus || !st.Until.Equal(a.at(65*time.Minute)) {
			t.Errorf("after the meeting: %+v, want focus until +65m", st)
		}
		wantWrites(t, "extend: nothing changes now", a.process())
		a.wantHome("extend", buttonsMeeting, "*In a meeting until "+a.hm(a.at(50*time.Minute))+"*, from Google Calendar.",
			"*Next today:* "+a.hm(a.at(50*time.Minute))+" focus · "+a.hm(a.at(65*time.Minute))+" your own status")
	})

	t.Run("pause until tomorrow and resume", func(t *testing.T) {
		a := newAppEnv(t, appOptions{})
		a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
		wantWrites(t, "the meeting", a.process(), statusWrite(":spiral_calendar_pad:", "In a meeting", a.at(50*time.Minute)))
		a.open()
		a.click("pause_until_tomorrow")
		a.wantOverride("pause", presence.OverridePause, a.t0, nextWorkday(a.t0, a.loc))
		if st := a.plan().Current().State; !st.Paused {
			t.Fatalf("after pause: %+v, want paused", st)
		}
		wantWrites(t, "paused: nothing is touched", a.process())
		a.wantHome("pause", buttonsPaused, "*Automation paused.*")

		a.click("resume")
		if ovs := a.overrides(); len(ovs) != 0 {
			t.Fatalf("after resume: overrides %+v", ovs)
		}
		a.wantState("resume", presence.KindMeeting, a.at(50*time.Minute), presence.CauseCalendar)
		wantWrites(t, "resumed: our status is still right", a.process())
		a.wantHome("resume", buttonsMeeting, "*In a meeting until "+a.hm(a.at(50*time.Minute))+"*, from Google Calendar.")
	})
}

// nextWorkday is 09:00 on the next Monday-to-Friday day after t (the default working hours).
func nextWorkday(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	for d := 1; ; d++ {
		day := time.Date(l.Year(), l.Month(), l.Day()+d, 9, 0, 0, 0, loc)
		if day.Weekday() != time.Saturday && day.Weekday() != time.Sunday {
			return day
		}
	}
}

// Focus pressed during a meeting wins until it ends; then the meeting's state returns, since
// the meeting is still on, and the scheduler writes it again.
func TestSlackFocusDuringMeeting(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	m1 := a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
	wantWrites(t, "the meeting", a.process(), statusWrite(":spiral_calendar_pad:", "In a meeting", a.at(50*time.Minute)))
	a.open()
	a.click("focus_30")
	a.wantState("focus", presence.KindManualFocus, a.at(30*time.Minute), "slack")
	if st := a.stateAt(a.at(30*time.Minute - time.Second)); st.Kind != presence.KindManualFocus {
		t.Errorf("just before the focus ends: %+v", st)
	}
	if st := a.stateAt(a.at(30 * time.Minute)); st.Kind != presence.KindMeeting || !st.Until.Equal(m1.End) || !slices.Equal(st.EventKeys, []string{m1.Key()}) {
		t.Errorf("when the focus ends: %+v, want the meeting again", st)
	}
	if st := a.stateAt(a.at(50 * time.Minute)); st.Kind != presence.KindNone {
		t.Errorf("after the meeting: %+v", st)
	}
	wantWrites(t, "focus", a.process(), statusWrite(":headphones:", "Focusing", a.at(30*time.Minute)), snooze(30*time.Minute))
	a.wantHome("focus", buttonsFocus, "*Focus until "+a.hm(a.at(30*time.Minute))+"*, started from Slack.",
		"*Next today:* "+a.hm(a.at(30*time.Minute))+" in a meeting · "+a.hm(a.at(50*time.Minute))+" your own status")

	// At the focus's end the snooze has run out by itself, and the meeting's status returns.
	a.fc.Set(a.at(30 * time.Minute))
	wantWrites(t, "the focus ended", a.process(), statusWrite(":spiral_calendar_pad:", "In a meeting", a.at(50*time.Minute)))
	if st := a.slack.Status(slackUser); st.Text != "In a meeting" {
		t.Errorf("Slack shows %+v when the focus ended", st)
	}
	if dnd := a.slack.DND(slackUser); dnd.Snoozed {
		t.Errorf("still snoozed after the focus: %+v", dnd)
	}
	// At the meeting's end the status expires by itself: nothing to write.
	a.fc.Set(a.at(50 * time.Minute))
	wantWrites(t, "the meeting ended", a.process())
	if st := a.slack.Status(slackUser); st.Text != "" {
		t.Errorf("Slack shows %+v after the meeting", st)
	}
}

// Every command of the messages tab is answered in its thread and does what it says.
func TestSlackMessagesTabCommands(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
	a.meeting("m2", a.at(2*time.Hour), a.at(3*time.Hour))
	wantWrites(t, "the meeting", a.process(), statusWrite(":spiral_calendar_pad:", "In a meeting", a.at(50*time.Minute)))
	a.open()

	d, err := a.slack.SendIM(a.ctx, slackUser, "help")
	a.ok("help", d, err, http.StatusOK)
	helpTS := eventTS(t, d.Payload)
	r := a.replies(helpTS)
	if len(r) != 1 {
		t.Fatalf("help: %d replies in its thread", len(r))
	}
	wantReply(t, "help", r[0].Text, "I keep your status truthful", "`focus 45m`", "`focus until 3pm`", "`back`", "`pause until monday`", "`resume`", "`status`")
	// A message in that thread is answered in the same thread.
	d, err = a.slack.SendIMInThread(a.ctx, slackUser, helpTS, "status")
	a.ok("status in the thread", d, err, http.StatusOK)
	if r = a.replies(helpTS); len(r) != 2 || !strings.Contains(r[1].Text, "In a meeting until "+a.hm(a.at(50*time.Minute))) {
		t.Fatalf("replies in the thread of help: %+v", r)
	}
	wantReply(t, "status", a.say("status"), "In a meeting until "+a.hm(a.at(50*time.Minute)))
	if ovs := a.overrides(); len(ovs) != 0 {
		t.Fatalf("help and status stored overrides %+v", ovs)
	}

	wantReply(t, "focus 45m", a.say("focus 45m"), "Focus until "+a.hm(a.at(45*time.Minute))+".")
	a.wantOverride("focus 45m", presence.OverrideFocus, a.t0, a.at(45*time.Minute))
	a.wantState("focus 45m", presence.KindManualFocus, a.at(45*time.Minute), "slack")
	wantWrites(t, "focus 45m", a.process(), statusWrite(":headphones:", "Focusing", a.at(45*time.Minute)), snooze(45*time.Minute))
	a.wantHome("focus 45m", buttonsFocus, "*Focus until "+a.hm(a.at(45*time.Minute))+"*, started from Slack.")

	wantReply(t, "extend 15m", a.say("extend 15m"), "Focus extended until "+a.hm(a.at(time.Hour))+".")
	a.wantOverride("extend 15m", presence.OverrideFocus, a.t0, a.at(time.Hour))
	wantWrites(t, "extend 15m", a.process(), statusWrite(":headphones:", "Focusing", a.at(time.Hour)), snooze(time.Hour))
	a.wantHome("extend 15m", buttonsFocus, "*Focus until "+a.hm(a.at(time.Hour))+"*, started from Slack.")

	// "focus until 1pm": three whole hours ahead in the person's zone, written like 3pm.
	l := a.t0.In(a.loc)
	until := time.Date(l.Year(), l.Month(), l.Day(), l.Hour()+3, 0, 0, 0, a.loc)
	text := "focus until " + until.Format("3pm")
	wantReply(t, text, a.say(text), "Focus until "+a.hm(until)+".")
	a.wantOverride(text, presence.OverrideFocus, a.t0, until)
	a.wantState(text, presence.KindManualFocus, until, "slack")
	wantWrites(t, text, a.process(), statusWrite(":headphones:", "Focusing", until), snooze(until.Sub(a.t0)))

	wantReply(t, "back", a.say("back"), "Welcome back")
	a.wantState("back", presence.KindNone, time.Time{}, "")
	wantWrites(t, "back", a.process(), statusCleared, snoozeEnded)
	a.wantHome("back", buttonsNothing, "*Nothing set by me right now:* your own status shows.")

	monday := time.Date(l.Year(), l.Month(), l.Day()+(8-int(l.Weekday()))%7, 0, 0, 0, 0, a.loc)
	if !monday.After(a.t0) {
		monday = monday.AddDate(0, 0, 7)
	}
	// A moment later (overrides that start at the same instant tie), pause until Monday.
	a.fc.Advance(time.Second)
	wantReply(t, "pause until monday", a.say("pause until monday"), "Automation paused until "+presence.FormatUntil(monday, a.t0, a.loc)+".")
	ovs := a.overrides()
	i := slices.IndexFunc(ovs, func(o presence.Override) bool { return o.Kind == presence.OverridePause })
	if i < 0 || !ovs[i].End.Equal(monday) || ovs[i].Origin != "slack" {
		t.Fatalf("after pause until monday: overrides %+v, want a pause until %s", ovs, monday)
	}
	if !a.plan().Current().State.Paused {
		t.Fatal("not paused after pause until monday")
	}
	wantWrites(t, "pause", a.process())
	a.wantHome("pause", buttonsPaused, "*Automation paused.*")

	wantReply(t, "resume", a.say("resume"), "Automation resumed.")
	if slices.ContainsFunc(a.overrides(), func(o presence.Override) bool { return o.Kind == presence.OverridePause }) || a.plan().Current().State.Paused {
		t.Fatal("still paused after resume")
	}
	a.wantHome("resume", buttonsNothing, "*Nothing set by me right now:* your own status shows.")

	// Anything else gets a helpful reply and changes nothing.
	before := a.overrides()
	for _, c := range []struct{ text, want string }{
		{"make me a sandwich", "I did not understand \"make me a sandwich\". Try: `focus 45m`"},
		{"focus for a while", "write it like 45m, 1h30m or 2 hours"},
		{"pause", "For example `pause until monday`"},
		{"focus 13h", "longer than"},
		{"focus until 25:00", "is not a time"},
	} {
		wantReply(t, c.text, a.say(c.text), c.want)
	}
	if after := a.overrides(); !slices.EqualFunc(before, after, func(x, y presence.Override) bool { return x.ID == y.ID && x.End.Equal(y.End) }) {
		t.Fatalf("nonsense changed the overrides: %+v → %+v", before, after)
	}
}

// The person's own Slack status, left alone by their rule, is what the Home view says; it does
// not claim the status we would have set.
func TestSlackHomeLeftOwnStatus(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
	a.slack.SetStatus(slackUser, "Lunch", ":sandwich:", time.Time{})
	wantWrites(t, "the meeting, own status set", a.process())
	a.open()
	v := a.wantHome("own status", buttonsMeeting, "*In a meeting until "+a.hm(a.at(50*time.Minute))+"*, from Google Calendar.", "Left your own Slack status alone.")
	if v.has("Slack: :spiral_calendar_pad: In a meeting") {
		t.Errorf("the view claims the meeting status we did not set:\n\t%s", strings.Join(v.Texts, "\n\t"))
	}
}

// Only the person's own messages in the App Home's messages tab are read: the app's own
// messages, edits, messages in channels and people who never connected get no answer and
// change nothing.
func TestSlackIgnoresOtherMessages(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
	a.open()
	message := func(eventID string, fields map[string]any) []byte {
		ev := map[string]any{"type": "message", "channel": "D0001", "user": slackUser, "text": "focus 45m", "ts": "1355517523.000005", "event_ts": "1355517523.000005", "channel_type": "im"}
		for k, v := range fields {
			if v == nil {
				delete(ev, k)
			} else {
				ev[k] = v
			}
		}
		b, err := json.Marshal(map[string]any{"token": "x", "team_id": slackTeam, "api_app_id": a.slack.AppID(), "type": "event_callback", "event_id": eventID, "event_time": a.fc.Now().Unix(), "event": ev})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before, pubs := a.overrides(), a.publishes()
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"the app's own message", message("EvBOT", map[string]any{"bot_id": "B0001", "subtype": "bot_message"})},
		{"an edit", message("EvEDIT", map[string]any{"subtype": "message_changed", "user": nil})},
		{"a channel message", message("EvCHANNEL", map[string]any{"channel": "C0001", "channel_type": "channel"})},
		{"a group DM", message("EvMPIM", map[string]any{"channel": "G0001", "channel_type": "mpim"})},
		{"someone who never connected", message("EvGRACE", map[string]any{"user": "U0002", "channel": "D0002"})},
	} {
		d, err := a.slack.SendSigned(a.ctx, a.base+"/slack/events", "application/json", c.body, time.Time{})
		a.ok(c.name, d, err, http.StatusOK)
	}
	d, err := a.slack.OpenAppHome(a.ctx, "U0002", "home")
	a.ok("App Home of someone who never connected", d, err, http.StatusOK)
	if a.slack.HomeView("U0002") != nil {
		t.Error("a Home view was published for someone who never connected")
	}
	if posts := a.slack.CallsTo("chat.postMessage"); len(posts) != 0 {
		t.Errorf("answered messages it must not read: %+v", posts)
	}
	if n := a.publishes(); n != pubs {
		t.Errorf("%d views published", n-pubs)
	}
	if after := a.overrides(); len(after) != len(before) {
		t.Errorf("overrides changed: %+v", after)
	}
}

// The scheduler refreshes the App Home after each run: a view that did not change is not sent
// again, and a bot token about to expire (token rotation) is rotated and stored first.
func TestSlackRefreshHomeRotatesTheBotToken(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
	old := a.credential(a.sconn).Extra[slackint.ExtraBotToken]
	a.sib.RefreshHome(a.ctx, a.uid)
	a.sib.RefreshHome(a.ctx, a.uid)
	if n := a.publishes(); n != 1 {
		t.Fatalf("two refreshes of an unchanged view published %d views, want 1", n)
	}
	a.wantHome("refreshed", buttonsMeeting, "*In a meeting until "+a.hm(a.at(50*time.Minute))+"*, from Google Calendar.")

	// Five minutes before the bot token expires, the next refresh rotates it.
	a.fc.Set(a.at(slackfake.RotatingTokenLifetime - 5*time.Minute))
	a.sib.RefreshHome(a.ctx, a.uid)
	if n := a.publishes(); n != 2 {
		t.Fatalf("%d views published, want 2", n)
	}
	cred := a.credential(a.connection(a.uid, "slack"))
	if cur := cred.Extra[slackint.ExtraBotToken]; cur == old || cur == "" {
		t.Fatalf("the bot token was not rotated (%q)", cur)
	}
	a.wantHome("after the rotation", buttonsNothing, "*Nothing set by me right now:* your own status shows.")
}

// refusal is one request the endpoints must refuse.
type refusal struct {
	name   string
	status int
	send   func() (slackfake.Delivery, error)
}

// Forged, stale, replayed, oversized and malformed requests are refused with a clear 4xx and
// change nothing: no record, no published view, no message, no wake-up.
func TestSlackRefusals(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
	opened := a.open()
	clicked := a.click("focus_30")
	a.wantOverride("focus", presence.OverrideFocus, a.t0, a.at(30*time.Minute))

	events := a.base + "/slack/events"
	interactivity := a.base + "/slack/interactivity"
	const jsonType, formType = "application/json", "application/x-www-form-urlencoded"
	homeOpened := func(eventID string) []byte {
		b, err := json.Marshal(map[string]any{
			"token": a.slack.VerificationToken(), "team_id": slackTeam, "api_app_id": a.slack.AppID(),
			"type": "event_callback", "event_id": eventID, "event_time": a.fc.Now().Unix(),
			"event": map[string]any{"type": "app_home_opened", "user": slackUser, "channel": "D0001", "tab": "home", "event_ts": "1515449522000016"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	click, err := a.slack.ClickPayload(slackUser, "focus_60")
	if err != nil {
		t.Fatal(err)
	}
	// The same click with an action ID the view never had.
	var p map[string]any
	if err := json.Unmarshal(click, &p); err != nil {
		t.Fatal(err)
	}
	acts, _ := p["actions"].([]any)
	if len(acts) != 1 {
		t.Fatalf("actions of the click payload: %v", p["actions"])
	}
	acts[0].(map[string]any)["action_id"] = "delete_everything"
	unknown, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	huge := homeOpened("EvHUGE" + strings.Repeat("x", 65<<10))

	refusals := []refusal{
		{"wrong signature", 401, func() (slackfake.Delivery, error) {
			return a.slack.SendWrongSignature(a.ctx, events, jsonType, homeOpened("EvFORGED1"))
		}},
		{"wrong signature on a click", 401, func() (slackfake.Delivery, error) {
			return a.slack.SendWrongSignature(a.ctx, interactivity, formType, []byte(url.Values{"payload": {string(click)}}.Encode()))
		}},
		{"timestamp 6 minutes old", 401, func() (slackfake.Delivery, error) {
			return a.slack.SendSigned(a.ctx, events, jsonType, homeOpened("EvOLD1"), a.fc.Now().Add(-6*time.Minute))
		}},
		{"click 6 minutes old", 401, func() (slackfake.Delivery, error) {
			return a.slack.SendSigned(a.ctx, interactivity, formType, []byte(url.Values{"payload": {string(click)}}.Encode()), a.fc.Now().Add(-6*time.Minute))
		}},
		{"body changed after signing", 401, func() (slackfake.Delivery, error) {
			return a.slack.SendTampered(a.ctx, opened, homeOpened("EvTAMPERED1"))
		}},
		{"no signature", 401, func() (slackfake.Delivery, error) {
			return a.slack.SendRaw(a.ctx, slackfake.RawRequest{URL: events, Body: homeOpened("EvUNSIGNED1"), OmitSignature: true})
		}},
		{"replayed event", 409, func() (slackfake.Delivery, error) { return a.slack.Replay(a.ctx, opened) }},
		{"replayed click", 409, func() (slackfake.Delivery, error) { return a.slack.Replay(a.ctx, clicked) }},
		{"event over 64 KiB", 413, func() (slackfake.Delivery, error) {
			return a.slack.SendSigned(a.ctx, events, jsonType, huge, time.Time{})
		}},
		{"click over 64 KiB", 413, func() (slackfake.Delivery, error) {
			return a.slack.SendSigned(a.ctx, interactivity, formType, []byte(url.Values{"payload": {string(huge)}}.Encode()), time.Time{})
		}},
		// Correctly signed from here on.
		{"payload not JSON", 400, func() (slackfake.Delivery, error) {
			return a.slack.SendSigned(a.ctx, interactivity, formType, []byte("payload=not-json"), time.Time{})
		}},
		{"event not JSON", 400, func() (slackfake.Delivery, error) {
			return a.slack.SendSigned(a.ctx, events, jsonType, []byte("not json"), time.Time{})
		}},
		{"action we never sent", 400, func() (slackfake.Delivery, error) { return a.slack.ClickRaw(a.ctx, slackUser, unknown) }},
	}
	const signed = 3 // the last ones pass the signature check: their signatures are kept against replays

	before, wakes, pubs, msgs, view := a.records(), len(a.wakes.all()), a.publishes(), len(a.slack.Messages(slackUser)), a.slack.HomeView(slackUser)
	for _, r := range refusals {
		d, err := r.send()
		if err != nil {
			t.Errorf("%s: %v", r.name, err)
			continue
		}
		if d.Status != r.status {
			t.Errorf("%s: HTTP %d, want %d: %s", r.name, d.Status, r.status, d.Response)
		}
	}
	after := a.records()
	added := 0
	for k := range after {
		if _, ok := before[k]; !ok && strings.HasPrefix(k, "seen/slack-sig:v0=") {
			delete(after, k)
			added++
		}
	}
	if added != signed {
		t.Errorf("%d signatures kept against replays, want %d", added, signed)
	}
	unchanged(t, "refused Slack requests", before, after)
	a.wantOverride("after the refusals", presence.OverrideFocus, a.t0, a.at(30*time.Minute))
	if n := len(a.wakes.all()); n != wakes {
		t.Errorf("refused requests woke the scheduler %d times", n-wakes)
	}
	if n := a.publishes(); n != pubs {
		t.Errorf("refused requests published %d views", n-pubs)
	}
	if n := len(a.slack.Messages(slackUser)); n != msgs {
		t.Errorf("refused requests posted %d messages", n-msgs)
	}
	if !bytes.Equal(a.slack.HomeView(slackUser), view) {
		t.Error("refused requests changed the Home view")
	}
}

// A button kept from before its meeting ended, pressed after, gets a polite "expired" reply and
// ignores nothing, not even the meeting on now.
func TestSlackStaleIgnoreButton(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	a.meeting("m1", a.at(-10*time.Minute), a.at(time.Minute))
	m3 := a.meeting("m3", a.at(2*time.Minute), a.at(30*time.Minute))
	a.open()
	stale, err := a.slack.ClickPayload(slackUser, "ignore_meeting")
	if err != nil {
		t.Fatal(err)
	}
	// The meeting ends; the next one is on. (A few minutes on, so the request timestamp is still
	// within Slack's window of the real clock.)
	a.fc.Set(a.at(2 * time.Minute))
	d, err := a.slack.ClickRaw(a.ctx, slackUser, stale)
	a.ok("stale ignore", d, err, http.StatusOK)
	msgs := a.slack.Messages(slackUser)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "expired") {
		t.Fatalf("messages after a stale button: %+v, want one saying it expired", msgs)
	}
	if ovs := a.overrides(); len(ovs) != 0 {
		t.Fatalf("a stale button stored overrides %+v", ovs)
	}
	a.wantState("stale ignore", presence.KindMeeting, m3.End, presence.CauseCalendar)
	v := a.wantHome("after a stale button", buttonsMeeting, "*In a meeting until "+a.hm(m3.End)+"*")
	if v.Values["ignore_meeting"] != m3.Key() {
		t.Errorf("the Ignore button now names %q, want %q", v.Values["ignore_meeting"], m3.Key())
	}
}

// Slack's retries (X-Slack-Retry-Num, new signature, same event_id) are acted on once.
func TestSlackRetriesActOnce(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
	opened := a.open()
	for n := 1; n <= 3; n++ {
		// Slack retries after a failure or a 3-second timeout: a later timestamp, so a new
		// signature (the same one would be a byte-for-byte replay).
		a.fc.Advance(3 * time.Second)
		d, err := a.slack.Redeliver(a.ctx, opened, n)
		a.ok("app_home_opened retry", d, err, http.StatusOK)
		if d.RetryNum != n || d.EventID != opened.EventID {
			t.Fatalf("retry %d: %+v", n, d)
		}
	}
	if n := a.publishes(); n != 1 {
		t.Errorf("app_home_opened and its retries published %d views, want 1", n)
	}

	sent := a.fc.Now()
	d, err := a.slack.SendIM(a.ctx, slackUser, "focus 45m")
	a.ok("focus 45m", d, err, http.StatusOK)
	for n := 1; n <= 2; n++ {
		a.fc.Advance(3 * time.Second)
		r, err := a.slack.Redeliver(a.ctx, d, n)
		a.ok("focus 45m retry", r, err, http.StatusOK)
	}
	if r := a.replies(eventTS(t, d.Payload)); len(r) != 1 {
		t.Errorf("a message and its retries got %d replies, want 1: %+v", len(r), r)
	}
	a.wantOverride("focus 45m, retried", presence.OverrideFocus, sent, sent.Add(45*time.Minute))
}

// The url_verification challenge Slack sends when the Request URL is saved is answered; a
// forged one is not.
func TestSlackURLVerification(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	d, err := a.slack.URLVerification(a.ctx)
	a.ok("url_verification", d, err, http.StatusOK)
	d, err = a.slack.SendWrongSignature(a.ctx, a.base+"/slack/events", "application/json", []byte(`{"token":"x","challenge":"forged","type":"url_verification"}`))
	a.ok("forged url_verification", d, err, http.StatusUnauthorized)
	if strings.Contains(string(d.Response), "forged") {
		t.Errorf("a forged challenge was echoed: %s", d.Response)
	}
}

// testdata reads a payload modelled on Slack's documentation (web/testdata/slack).
func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "slack", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The payloads of Slack's documentation, with our user, team and action IDs, signed and sent
// as Slack would, are handled.
func TestSlackDocumentedPayloads(t *testing.T) {
	a := newAppEnv(t, appOptions{})
	a.meeting("m1", a.at(-10*time.Minute), a.at(50*time.Minute))
	// The person's App Home DM channel, from a real delivery.
	d, err := a.slack.OpenAppHome(a.ctx, slackUser, "messages")
	a.ok("messages tab", d, err, http.StatusOK)
	var dm struct {
		Event struct {
			Channel string `json:"channel"`
		} `json:"event"`
	}
	if err := json.Unmarshal(d.Payload, &dm); err != nil || dm.Event.Channel == "" {
		t.Fatalf("no channel in %s", d.Payload)
	}
	ours := strings.NewReplacer("U123ABC456", slackUser, "T123ABC456", slackTeam, "D024BE91L", dm.Event.Channel)
	doc := func(name string) []byte { return []byte(ours.Replace(string(testdata(t, name)))) }
	events := a.base + "/slack/events"

	d, err = a.slack.SendSigned(a.ctx, events, "application/json", doc("url_verification.json"), time.Time{})
	a.ok("url_verification.json", d, err, http.StatusOK)
	if got := string(d.Response); got != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification answered %q", got)
	}

	d, err = a.slack.SendSigned(a.ctx, events, "application/json", doc("app_home_opened.json"), time.Time{})
	a.ok("app_home_opened.json", d, err, http.StatusOK)
	if n := a.publishes(); n != 1 {
		t.Fatalf("app_home_opened.json published %d views", n)
	}
	a.wantHome("app_home_opened.json", buttonsMeeting, "*In a meeting until "+a.hm(a.at(50*time.Minute))+"*, from Google Calendar.")

	d, err = a.slack.SendSigned(a.ctx, events, "application/json", doc("message_im.json"), time.Time{})
	a.ok("message_im.json", d, err, http.StatusOK)
	// The reply goes to the thread of the documented message (which the fake's DM does not
	// hold, so it shows it un-threaded, as Slack would): check what was asked of Slack.
	posts := a.slack.CallsTo("chat.postMessage")
	if len(posts) != 1 || posts[0].Error != "" {
		t.Fatalf("chat.postMessage calls after message_im.json: %+v", posts)
	}
	if p := posts[0].Params; p.Get("channel") != dm.Event.Channel || p.Get("thread_ts") != "1355517523.000005" || p.Get("text") != "Focus until "+a.hm(a.at(45*time.Minute))+"." {
		t.Fatalf("the reply to message_im.json: %v", p)
	}
	a.wantOverride("message_im.json", presence.OverrideFocus, a.t0, a.at(45*time.Minute))

	form := url.Values{"payload": {string(doc("block_actions.json"))}}.Encode()
	d, err = a.slack.SendSigned(a.ctx, a.base+"/slack/interactivity", "application/x-www-form-urlencoded", []byte(form), time.Time{})
	a.ok("block_actions.json", d, err, http.StatusOK)
	a.wantOverride("block_actions.json", presence.OverrideFocus, a.t0, a.at(30*time.Minute))
	a.wantHome("block_actions.json", buttonsFocus, "*Focus until "+a.hm(a.at(30*time.Minute))+"*, started from Slack.")
	wantWrites(t, "after the documented payloads", a.process(), statusWrite(":headphones:", "Focusing", a.at(30*time.Minute)), snooze(30*time.Minute))
}

// eventSeeds are the Events API seeds of the fuzz test: the documented payloads and malformed ones.
func eventSeeds(f *testing.F) [][]byte {
	seeds := [][]byte{testdata(f, "url_verification.json"), testdata(f, "app_home_opened.json"), testdata(f, "message_im.json")}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `not json`, `{"type":"url_verification"}`,
		`{"type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820,"api_app_id":"A1"}`,
		`{"type":"event_callback"}`,
		`{"type":"event_callback","event_id":"Ev1"}`,
		`{"type":"event_callback","event_id":"Ev1","event":null}`,
		`{"type":"event_callback","event_id":"Ev1","event":"x"}`,
		`{"type":"event_callback","event_id":"Ev1","event":{}}`,
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"no_such_event"}}`,
		`{"type":"event_callback","event_id":"","event":{"type":"app_home_opened","user":"U1","tab":"home"}}`,
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"app_home_opened","view":5}}`,
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel_type":"im","user":["U1"]}}`,
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"message","subtype":"bot_message","bot_id":"B1","channel_type":"im"}}`,
		`{"type":"event_callback","event_id":7,"event":{"type":"message"}}`,
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"message","subtype":"message_changed","channel_type":"im","message":{"type":"message","user":"U1","text":"focus 1h","edited":{"user":"U1"}},"previous_message":{"text":"focus"}}}`,
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"app_home_opened","user":"U1","tab":"home","view":{"type":"home","blocks":[{"type":"bogus"},{"type":"actions","elements":[{"type":"button"}]},null]}}}`,
		`{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel_type":"im","user":"U1","text":"focus 45m","blocks":[{"type":"rich_text","elements":[{"type":"rich_text_section","elements":[{"type":"text","text":"focus 45m"}]}]}],"files":[{}],"attachments":[{}]}}`,
		`{"type":"block_actions","actions":[{"action_id":"focus_30"}]}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzSlackEvents: the Events API parser never panics, and every event_callback it accepts
// names its event_id (the key retries are recognised by).
func FuzzSlackEvents(f *testing.F) {
	for _, s := range eventSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, meta, err := web.ParseEventsPayload(body)
		if err != nil {
			return
		}
		switch ev.Type {
		case slackevents.CallbackEvent:
			if meta.EventID == "" {
				t.Errorf("an event_callback without event_id was accepted: %q", body)
			}
		case slackevents.URLVerification, slackevents.AppRateLimited:
		default:
			// Other outer types are answered 200 and ignored; nothing to check.
		}
	})
}

// interactionSeeds are the interactivity seeds: the documented block_actions, form-encoded and
// bare (the fuzz function form-encodes every input too), and malformed ones.
func interactionSeeds(f *testing.F) [][]byte {
	doc := testdata(f, "block_actions.json")
	seeds := [][]byte{[]byte(url.Values{"payload": {string(doc)}}.Encode()), doc}
	for _, s := range []string{
		``, `payload=`, `payload=not-json`, `payload=%7B%7D`, `payload=null`, `%zz`, `payload=%7B&payload=x`,
		`{"type":"block_actions"}`,
		`{"type":"block_actions","user":{"id":"U1"},"actions":[]}`,
		`{"type":"block_actions","user":{"id":"U1"},"actions":[null]}`,
		`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"delete_everything"}]}`,
		`{"type":"block_actions","user":{"id":""},"actions":[{"action_id":"focus_30"}]}`,
		`{"type":"block_actions","actions":[{"action_id":"focus_30"}]}`,
		`{"type":"block_actions","user":{"id":"U1","team_id":"T1"},"actions":[{"action_id":"ignore_meeting","value":"c/primary/m1"}]}`,
		`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"focus_30\u0000<script>"}]}`,
		`{"type":"view_submission","user":{"id":"U1"},"actions":[{"action_id":"focus_30"}]}`,
		`{"type":"block_actions","user":"U1","actions":[{"action_id":"focus_30"}]}`,
		`{"type":"block_actions","user":{"id":"U1"},"actions":{"action_id":"focus_30"}}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzSlackInteractivity: the interactivity parser never panics, and every interaction it
// accepts is a block_actions with one of our action IDs and a user.
func FuzzSlackInteractivity(f *testing.F) {
	for _, s := range interactionSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, b := range [][]byte{body, []byte(url.Values{"payload": {string(body)}}.Encode())} {
			cb, act, err := web.ParseInteractionPayload(b)
			if err != nil {
				continue
			}
			if !slices.Contains(ourActions, act.ActionID) {
				t.Errorf("accepted action %q we never sent: %q", act.ActionID, b)
			}
			if cb.User.ID == "" {
				t.Errorf("accepted an interaction without a user: %q", b)
			}
			if cb.Type != slack.InteractionTypeBlockActions {
				t.Errorf("accepted an interaction of type %q: %q", cb.Type, b)
			}
		}
	})
}
