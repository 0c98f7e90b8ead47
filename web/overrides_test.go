package web_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
)

// The dashboard's manual controls go through the shared override path: focus beats a meeting
// until it ends, then the meeting returns; "I'm back" ends the block; extend, ignore, pause and
// resume do what they say.
func TestManualControls(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fc := clock.NewFake(now)
	e := newEnv(t, envOptions{clock: fc})
	userID := e.signIn()
	ctx := t.Context()
	meeting := presence.Event{Source: "c1/primary", ID: "m1", Type: presence.EventDefault, Start: now.Add(-10 * time.Minute), End: now.Add(time.Hour), Response: presence.ResponseAccepted}
	if err := e.st.PutEvents(ctx, userID, []presence.Event{meeting}); err != nil {
		t.Fatal(err)
	}
	plan := func() presence.Timeline {
		t.Helper()
		u, err := e.st.GetUser(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := e.st.ListEvents(ctx, userID, now.Add(-48*time.Hour), now.Add(48*time.Hour))
		ovs, _ := e.st.ListOverrides(ctx, userID)
		return presence.Plan(evs, ovs, u.Rules, fc.Now(), 36*time.Hour)
	}
	act := func(form url.Values) {
		t.Helper()
		resp, body := e.postForm("/actions", form)
		if resp.StatusCode != 200 && resp.StatusCode != 303 {
			t.Fatalf("POST /actions %v = %d\n%s", form, resp.StatusCode, body)
		}
	}
	wakes := len(e.wakes.all())

	// Focus 30 min during the meeting: focus wins until it ends, then the meeting is back.
	act(url.Values{"action": {"focus"}, "minutes": {"30"}})
	tl := plan()
	if st := tl.Current().State; st.Kind != presence.KindManualFocus || !st.Until.Equal(now.Add(30*time.Minute)) || st.Cause != "web" {
		t.Fatalf("after focus: %+v", st)
	}
	if seg, _ := tl.At(now.Add(31 * time.Minute)); seg.State.Kind != presence.KindMeeting {
		t.Fatalf("after the focus ends: %+v, want the meeting again", seg.State)
	}
	if len(e.wakes.all()) <= wakes {
		t.Fatal("the scheduler was not woken")
	}

	// Extend adds 15 minutes to the focus.
	act(url.Values{"action": {"extend"}})
	if st := plan().Current().State; st.Kind != presence.KindManualFocus || !st.Until.Equal(now.Add(45*time.Minute)) {
		t.Fatalf("after extend: %+v", st)
	}

	// I'm back: the focus goes, and so does the meeting in progress.
	act(url.Values{"action": {"back"}})
	tl = plan()
	if st := tl.Current().State; st.Kind != presence.KindNone {
		t.Fatalf("after back: %+v, want nothing", st)
	}

	// A new meeting later is not affected by that "back".
	later := presence.Event{Source: "c1/primary", ID: "m2", Type: presence.EventDefault, Start: now.Add(2 * time.Hour), End: now.Add(3 * time.Hour)}
	e.st.PutEvents(ctx, userID, []presence.Event{later})
	if seg, _ := plan().At(now.Add(2*time.Hour + time.Minute)); seg.State.Kind != presence.KindMeeting {
		t.Fatalf("the later meeting: %+v", seg.State)
	}

	// Ignore this meeting, during the later meeting: only that one goes.
	fc.Set(now.Add(2*time.Hour + time.Minute))
	act(url.Values{"action": {"ignore"}})
	if st := plan().Current().State; st.Kind != presence.KindNone {
		t.Fatalf("after ignore: %+v", st)
	}

	// Pause until tomorrow's working day, then resume.
	act(url.Values{"action": {"pause"}})
	if st := plan().Current().State; !st.Paused {
		t.Fatalf("after pause: %+v", st)
	}
	act(url.Values{"action": {"resume"}})
	if st := plan().Current().State; st.Paused {
		t.Fatalf("after resume: %+v", st)
	}

	// Bad input: an unknown action, a focus of 0 minutes.
	for _, form := range []url.Values{{"action": {"explode"}}, {"action": {"focus"}, "minutes": {"0"}}} {
		resp, _ := e.postForm("/actions", form)
		if resp.StatusCode != 400 {
			t.Errorf("POST /actions %v = %d, want 400", form, resp.StatusCode)
		}
	}
}
