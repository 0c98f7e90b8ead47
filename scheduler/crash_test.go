package scheduler_test

// A run that stops between a provider write and the store update recording it (a crash, a
// store outage) must not make the next run write again: the next reconcile reads the target
// (as it does before any write), finds what it would write, and records it (issue #10).

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

var errCrash = errors.New("crash: the process stopped before recording the write")

// crashStore is a store whose PutTargetState fails once for a target after a chosen provider
// call was sent: the run stops, as far as the store can tell, between the provider write and
// the update that records it.
type crashStore struct {
	store.Store

	mu      sync.Mutex
	after   map[string]string // provider method → target prefix whose next put fails after it
	armed   map[string]bool   // target prefixes whose next put fails
	crashes []string          // the targets whose put failed
}

func newCrashStore() *crashStore {
	return &crashStore{after: map[string]string{}, armed: map[string]bool{}}
}

// crashAfter makes the next put of target fail once method has been sent.
func (c *crashStore) crashAfter(method, target string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.after[method] = target
}

// sent is the provider clients' hook: it runs before every request.
func (c *crashStore) sent(r *http.Request) {
	method := path.Base(r.URL.Path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if target, ok := c.after[method]; ok {
		delete(c.after, method)
		c.armed[target] = true
	}
}

func (c *crashStore) PutTargetState(ctx context.Context, ts store.TargetState) error {
	c.mu.Lock()
	for prefix := range c.armed {
		if strings.HasPrefix(ts.Target, prefix) {
			delete(c.armed, prefix)
			c.crashes = append(c.crashes, ts.Target)
			c.mu.Unlock()
			return errCrash
		}
	}
	c.mu.Unlock()
	return c.Store.PutTargetState(ctx, ts)
}

func (c *crashStore) crashed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.crashes...)
}

// newCrashEnv is newEnv with the scheduler on a crashStore, whose hook sees every request of
// the scheduler's Slack client.
func newCrashEnv(t *testing.T) (*env, *crashStore) {
	t.Helper()
	cs := newCrashStore()
	e := newEnv(t, envOptions{slackHook: cs.sent})
	cs.Store = e.st
	s, err := scheduler.New(scheduler.Deps{
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:   cs,
		Vault:   e.vault,
		Clock:   e.clk,
		Sources: map[string]scheduler.Source{"google": googleSource{e.gc}},
		Slack:   e.sc,
		Options: scheduler.Options{ResyncInterval: resync},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	return e, cs
}

// newCrashMSEnv is newMSEnv with the scheduler on a crashStore, whose hook sees every request
// of the scheduler's Slack and Teams clients.
func newCrashMSEnv(t *testing.T) (*msEnv, *crashStore) {
	t.Helper()
	cs := newCrashStore()
	e := newMSEnv(t, msEnvOptions{})
	cs.Store = e.st
	hooked := &http.Client{Transport: hookTransport{base: e.msrv.Client().Transport, hook: cs.sent}}
	mc, err := microsoft.New(microsoft.Config{
		ClientID:           e.mfake.ClientID(),
		ClientSecret:       e.mfake.ClientSecret(),
		AuthorityURL:       e.msrv.URL,
		GraphURL:           e.msrv.URL + "/v1.0",
		SignInRedirectURL:  msSignInRedirect,
		OutlookRedirectURL: outlookConnectRedirect,
		TeamsRedirectURL:   teamsConnectRedirect,
		HTTPClient:         hooked,
		Now:                e.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.New(scheduler.Deps{
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:  cs,
		Vault:  e.vault,
		Clock:  e.clk,
		Sources: map[string]scheduler.Source{
			"google":  googleSource{e.gc},
			"outlook": outlookSource{e.mc, horizon},
		},
		Slack:   e.sc,
		Teams:   teamsTarget{mc},
		Options: scheduler.Options{ResyncInterval: msResync, Horizon: horizon},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	return e, cs
}

// written returns the stored record of what we wrote to target, decoded as a JSON object
// (nil when there is none).
func (e *env) written(userID, target string) map[string]any {
	e.t.Helper()
	ts, err := e.st.GetTargetState(e.ctx, userID, target)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(ts.Written) == 0) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(ts.Written, &m); err != nil {
		e.t.Fatalf("target %s: %v", target, err)
	}
	return m
}

func wantCrashes(t *testing.T, cs *crashStore, targets ...string) {
	t.Helper()
	got := cs.crashed()
	if strings.Join(got, ",") != strings.Join(targets, ",") {
		t.Fatalf("puts failed for %q, want %q (the simulated crash did not happen as planned)", got, targets)
	}
}

func TestCrashAfterSlackStatusWrite(t *testing.T) {
	start, end := at(10, 0), at(10, 30)
	mr := presence.DefaultRules().Kinds[presence.KindMeeting]

	t.Run("the next run records it without writing, and it is ours to clear", func(t *testing.T) {
		e, cs := newCrashEnv(t)
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
		e.addEvent(ada, meeting(start, end))
		target := "slack:status:" + ada.slack.ID

		cs.crashAfter("users.profile.set", "slack:status:")
		e.process(ada, start)
		wantCrashes(t, cs, target)
		if w := e.written(ada.id, target); w != nil && w["status"] != nil {
			t.Fatalf("the failed put was stored anyway: %v", w)
		}
		if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
			t.Fatalf("users.profile.set calls:%s, want 1", describe(sets))
		}

		// The next run (another replica, or this one after a restart) finds the status.
		reads := len(e.sfake.CallsTo("users.profile.get"))
		e.process(ada, start.Add(30*time.Second))
		if sets := e.okCalls("users.profile.set", "U0001"); len(sets) != 1 {
			t.Fatalf("after the crash users.profile.set calls:%s, want still 1", describe(sets))
		}
		if n := len(e.sfake.CallsTo("users.profile.get")) - reads; n != 1 {
			t.Errorf("the next run read the status %d times, want once", n)
		}
		w := e.written(ada.id, target)
		st, _ := w["status"].(map[string]any)
		if st == nil || st["text"] != mr.SlackText {
			t.Errorf("stored record %v, want our status recorded", w)
		}
		if _, ok := e.findActivity(ada.id, "slack:status", "skipped"); ok {
			t.Error("our own status was taken for the person's (activity says skipped)")
		}

		// Recorded, the next run does not even read Slack.
		reads = len(e.sfake.CallsTo("users.profile.get"))
		e.process(ada, start.Add(time.Minute))
		if n := len(e.sfake.CallsTo("users.profile.get")) - reads; n != 0 {
			t.Errorf("a run with the status recorded read Slack %d times", n)
		}

		// "I'm back" ends the block early: the adopted status is ours, so it is cleared.
		if err := e.st.PutOverride(e.ctx, ada.id, presence.Override{ID: "back-1", Kind: presence.OverrideBack, Start: at(10, 10), Origin: "web"}); err != nil {
			t.Fatal(err)
		}
		e.process(ada, at(10, 10))
		sets := e.okCalls("users.profile.set", "U0001")
		if len(sets) != 2 {
			t.Fatalf("users.profile.set calls:%s, want the meeting's and the clear", describe(sets))
		}
		wantProfile(t, sets[1], "", "", time.Time{})
		if got := e.sfake.Status("U0001"); got.Text != "" {
			t.Errorf("after the early end Slack shows %+v, want no status", got)
		}
	})

	t.Run("the person's status replaced before the crash comes back after the block", func(t *testing.T) {
		e, cs := newCrashEnv(t)
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
		e.addEvent(ada, meeting(start, end))
		e.sfake.SetStatus("U0001", "Lunch", ":sandwich:", time.Time{})

		cs.crashAfter("users.profile.set", "slack:status:")
		e.process(ada, start)
		wantCrashes(t, cs, "slack:status:"+ada.slack.ID)
		e.process(ada, start.Add(30*time.Second))
		e.process(ada, end)
		sets := e.okCalls("users.profile.set", "U0001")
		if len(sets) != 2 {
			t.Fatalf("users.profile.set calls:%s, want the meeting's and the restore", describe(sets))
		}
		wantProfile(t, sets[0], mr.SlackText, mr.SlackEmoji, end)
		wantProfile(t, sets[1], "Lunch", ":sandwich:", time.Time{})
	})

	t.Run("a status set by hand with our text but not our expiration is still left alone", func(t *testing.T) {
		e, _ := newCrashEnv(t)
		ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
		e.addEvent(ada, meeting(start, end))
		e.sfake.SetStatus("U0001", mr.SlackText, mr.SlackEmoji, at(11, 0))

		e.process(ada, start)
		e.wantNoWrites("over the person's own status")
		if _, ok := e.findActivity(ada.id, "slack:status", "skipped"); !ok {
			t.Error("no activity says the person's status was left alone")
		}
		// Their status stays after our block too (it was never ours).
		e.process(ada, at(10, 10))
		if err := e.st.PutOverride(e.ctx, ada.id, presence.Override{ID: "back-1", Kind: presence.OverrideBack, Start: at(10, 10), Origin: "web"}); err != nil {
			t.Fatal(err)
		}
		e.process(ada, at(10, 11))
		e.wantNoWrites("after the block ended early")
	})
}

func TestCrashAfterSlackSnooze(t *testing.T) {
	start, end := at(10, 0), at(11, 0)
	e, cs := newCrashEnv(t)
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	e.addEvent(ada, googlefake.Event{Summary: "Deep work", EventType: "focusTime", Start: start, End: end})

	cs.crashAfter("dnd.setSnooze", "slack:dnd:")
	e.process(ada, start)
	wantCrashes(t, cs, "slack:dnd:"+ada.slack.ID)
	if c := e.okCalls("dnd.setSnooze", "U0001"); len(c) != 1 {
		t.Fatalf("dnd.setSnooze calls:%s, want 1", describe(c))
	}

	e.process(ada, start.Add(30*time.Second))
	if c := e.okCalls("dnd.setSnooze", "U0001"); len(c) != 1 {
		t.Fatalf("after the crash dnd.setSnooze calls:%s, want still 1", describe(c))
	}
	if w := e.written(ada.id, "slack:dnd:"+ada.slack.ID); w == nil || w["dnd"] == nil {
		t.Fatalf("stored record %v, want our snooze recorded", w)
	}

	// Ours, so "I'm back" ends it.
	if err := e.st.PutOverride(e.ctx, ada.id, presence.Override{ID: "back-1", Kind: presence.OverrideBack, Start: at(10, 20), Origin: "web"}); err != nil {
		t.Fatal(err)
	}
	e.process(ada, at(10, 20))
	if c := e.okCalls("dnd.endSnooze", "U0001"); len(c) != 1 {
		t.Errorf("dnd.endSnooze calls:%s, want 1 (the adopted snooze is ours)", describe(c))
	}
	if c := e.okCalls("dnd.setSnooze", "U0001"); len(c) != 1 {
		t.Errorf("dnd.setSnooze calls:%s, want 1", describe(c))
	}
}

func TestCrashAfterTeamsWrites(t *testing.T) {
	oofStart, oofEnd := at(13, 0), at(15, 0)
	e, cs := newCrashMSEnv(t)
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectOutlook(ada)
	e.connectTeams(ada)
	e.addOutlookEvent(ada, graphfake.Event{Start: oofStart, End: oofEnd, ShowAs: "oof"})

	cs.crashAfter("setPresence", "teams:presence:")
	cs.crashAfter("setStatusMessage", "teams:message:")
	e.processMS(ada, at(12, 0))
	e.processMS(ada, oofStart)
	wantCrashes(t, cs, "teams:presence:"+ada.teams.ID, "teams:message:"+ada.teams.ID)
	if c := e.okGraph(graphfake.EndpointSetPresence, oidAda); len(c) != 1 {
		t.Fatalf("setPresence calls:%s, want 1", describeGraph(c))
	}
	if c := e.okGraph(graphfake.EndpointSetStatusMessage, oidAda); len(c) != 1 {
		t.Fatalf("setStatusMessage calls:%s, want 1", describeGraph(c))
	}
	writes := len(e.teamsWrites())

	e.processMS(ada, oofStart.Add(30*time.Second))
	e.wantNoTeamsWritesSince(writes, "after the crash")
	e.wantSession(oidAda, "Away", "Away", oofStart, oofEnd)
	pw := e.written(ada.id, "teams:presence:"+ada.teams.ID)
	if pw == nil || pw["availability"] != "Away" || pw["pending"] != nil {
		t.Errorf("stored presence record %v, want our session recorded and nothing pending", pw)
	}
	if end, _ := time.Parse(time.RFC3339, pw["session_end"].(string)); !end.Equal(oofEnd) {
		t.Errorf("recorded session end %v, want %s", pw["session_end"], oofEnd)
	}
	if mw := e.written(ada.id, "teams:message:"+ada.teams.ID); mw == nil || mw["message"] != "Out of office until 15:00" {
		t.Errorf("stored message record %v, want our message recorded", mw)
	}

	// At the end both expire by themselves: nothing is written.
	e.processMS(ada, oofEnd)
	e.wantNoTeamsWritesSince(writes, "at the end")
	e.wantNoSession(oidAda, "at the end")
}

// The Teams client's own session (a call) shows the pair we want at a block's start: it is not
// ours, so our session is still set (it lasts the whole block, the call may not).
func TestTeamsOwnPresenceIsNotTakenForOurs(t *testing.T) {
	start, end := at(10, 0), at(10, 30)
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectOutlook(ada)
	e.connectTeams(ada)
	e.addOutlookEvent(ada, graphfake.Event{Start: start, End: end})
	if err := e.mfake.SetClientSession(oidAda, "Busy", "InACall", at(10, 5)); err != nil {
		t.Fatal(err)
	}
	e.processMS(ada, at(9, 58))
	e.processMS(ada, start)
	if c := e.okGraph(graphfake.EndpointSetPresence, oidAda); len(c) != 1 {
		t.Fatalf("setPresence calls:%s, want ours set although Teams showed Busy/InACall", describeGraph(c))
	}
	e.wantSession(oidAda, "Busy", "InACall", start, end)
}
