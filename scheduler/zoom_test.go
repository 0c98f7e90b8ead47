package scheduler_test

// Integration tests of the scheduler with Zoom (issue 5): scheduled meetings from zoomfake as a
// source merged with calendar meetings, and live calls (stored as the web's webhook handler
// stores them) that win over the calendar and end when the call really ends. The environment
// is teams_test.go's.

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
)

// liveProvisional is how long the web's webhook handler lets a call last until Zoom says it
// ended.
const liveProvisional = 4 * time.Hour

// startCall stores a live call as the web's Zoom webhook handler does on meeting.started.
func (e *msEnv) startCall(p *msPerson, uuid string, start time.Time) presence.Event {
	e.t.Helper()
	ev := presence.Event{
		Source: p.zoom.ID + "/live", ID: uuid, Type: presence.EventZoomLive,
		Start: start, End: start.Add(liveProvisional), Busy: presence.BusyBusy, HasOtherAttendees: true,
	}
	if err := e.st.PutEvents(e.ctx, p.id, []presence.Event{ev}); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// endCall moves a live call's end to when it really ended, as on meeting.ended.
func (e *msEnv) endCall(p *msPerson, ev presence.Event, end time.Time) {
	e.t.Helper()
	ev.End = end
	if err := e.st.PutEvents(e.ctx, p.id, []presence.Event{ev}); err != nil {
		e.t.Fatal(err)
	}
}

// --- 9. A Zoom meeting and a calendar event at the same times are one block ----------------

func TestZoomMeetingAndCalendarEventAreOneBlock(t *testing.T) {
	e := newMSEnv(t, msEnvOptions{})
	ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
	e.connectZoom(ada, "ZUserAda0000000000001")
	e.connectTeams(ada)
	start, end := at(10, 0), at(10, 45)
	id := e.zfake.AddMeeting(ada.zoomUser, zoomfake.Meeting{Topic: "Secret roadmap", Start: start, Duration: end.Sub(start)})
	e.addEvent(ada.person, meeting(start, end))

	next := e.processMS(ada, at(9, 50))
	e.wantNoWrites("before the meeting")
	e.wantNext(next, start, "before the meeting")
	lists := e.zfake.CallsTo(zoomfake.EndpointMeetingsList)
	if len(lists) != 1 || lists[0].Status != http.StatusOK || lists[0].User != ada.zoomUser {
		t.Fatalf("Zoom meeting lists %+v, want one for %s", lists, ada.zoomUser)
	}
	evs, err := e.st.ListEvents(e.ctx, ada.id, start, end)
	if err != nil {
		t.Fatal(err)
	}
	var zoomEv, googleEv int
	for _, ev := range evs {
		switch ev.Source {
		case ada.zoom.ID + "/meetings":
			zoomEv++
			if ev.Type != presence.EventZoomScheduled || ev.ID != strconv.FormatInt(id, 10) || !ev.Start.Equal(start) || !ev.End.Equal(end) {
				t.Errorf("Zoom event %+v", ev)
			}
		case ada.google.ID + "/primary":
			googleEv++
		}
	}
	if zoomEv != 1 || googleEv != 1 {
		t.Fatalf("stored events %+v, want one from Zoom and one from Google", evs)
	}

	next = e.processMS(ada, start)
	e.wantNext(next, end, "at the start")
	sets := e.okCalls("users.profile.set", "U0001")
	if len(sets) != 1 {
		t.Fatalf("at the start: %d users.profile.set, want 1:%s", len(sets), describe(e.writes()))
	}
	wantProfile(t, sets[0], "In a meeting", ":spiral_calendar_pad:", end)
	if w := e.writes(); len(w) != 1 {
		t.Errorf("Slack writes %s, want one", describe(w))
	}
	if sp := e.okGraph(graphfake.EndpointSetPresence, oidAda); len(sp) != 1 {
		t.Errorf("setPresence calls %s, want one", describeGraph(sp))
	}
	e.wantSession(oidAda, "Busy", "InACall", start, end)

	slackCalls, graphWrites := len(e.sfake.Calls()), len(e.teamsWrites())
	e.processMS(ada, at(10, 20))
	e.processMS(ada, end)
	if c := e.sfake.Calls()[slackCalls:]; len(c) != 0 {
		t.Errorf("Slack was called during and at the end of the block:%s", describe(c))
	}
	e.wantNoTeamsWritesSince(graphWrites, "during and at the end of the block")
}

// --- 10. A live Zoom call wins over the calendar and ends when the call ends ---------------

func TestLiveZoomCall(t *testing.T) {
	zoomText, zoomEmoji := "On a Zoom call", ":video_camera:"

	// The call overruns its calendar meeting: the Zoom status stays past the meeting's end,
	// and when the call really ends the person's own status comes back.
	t.Run("overrun keeps the status, then the person's own comes back", func(t *testing.T) {
		e := newMSEnv(t, msEnvOptions{})
		ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(func(r *presence.Rules) { r.LeaveOwnStatus = false }))
		e.connectZoom(ada, "ZUserAda0000000000001")
		e.connectTeams(ada)
		lunchExp := at(13, 0)
		e.sfake.SetStatus("U0001", "Lunch later", ":sandwich:", lunchExp)
		start, mEnd := at(10, 0), at(10, 30)
		e.addEvent(ada.person, meeting(start, mEnd))
		e.processMS(ada, at(9, 50))

		call := e.startCall(ada, "uuid-call-1", start)
		next := e.processMS(ada, start)
		e.wantNext(next, start.Add(liveProvisional), "at the start of the call")
		sets := e.okCalls("users.profile.set", "U0001")
		if len(sets) != 1 {
			t.Fatalf("at the start: %d users.profile.set, want 1:%s", len(sets), describe(e.writes()))
		}
		// The Zoom call wins over the meeting, for as long as the call may last.
		wantProfile(t, sets[0], zoomText, zoomEmoji, start.Add(liveProvisional))
		e.wantSession(oidAda, "Busy", "InACall", start, start.Add(liveProvisional))
		if a, ok := e.findActivity(ada.id, "slack:status", "set"); !ok || a.Kind != string(presence.KindZoomCall) || a.Reason != "from zoom" {
			t.Errorf("activity %+v (found %v), want the Zoom call status", a, ok)
		}

		// The meeting's scheduled end passes: nothing changes.
		slackCalls, teamsWrites := len(e.sfake.Calls()), len(e.teamsWrites())
		e.wantNext(e.processMS(ada, mEnd), start.Add(liveProvisional), "at the meeting's scheduled end")
		if c := e.sfake.Calls()[slackCalls:]; len(c) != 0 {
			t.Errorf("at the meeting's end Slack was called:%s", describe(c))
		}
		e.wantNoTeamsWritesSince(teamsWrites, "at the meeting's end")
		if got := e.sfake.Status("U0001"); got.Text != zoomText {
			t.Errorf("Slack shows %+v after the meeting's end, want the Zoom status", got)
		}

		// meeting.ended at 10:40.
		callEnd := at(10, 40)
		e.endCall(ada, call, callEnd)
		next = e.processMS(ada, callEnd)
		sets = e.okCalls("users.profile.set", "U0001")
		if len(sets) != 2 || !sets[1].Time.Equal(callEnd) {
			t.Fatalf("users.profile.set calls:%s, want the restore at %s", describe(sets), callEnd.Format("15:04"))
		}
		wantProfile(t, sets[1], "Lunch later", ":sandwich:", lunchExp)
		if a, ok := e.findActivity(ada.id, "slack:status", "restored"); !ok || !a.At.Equal(callEnd) {
			t.Errorf("activity %+v (found %v), want the own status restored", a, ok)
		}
		// Our presence session would outlive the call: it is ended.
		clears := e.okGraph(graphfake.EndpointClearPresence, oidAda)
		if len(clears) != 1 || !clears[0].Time.Equal(callEnd) {
			t.Errorf("clearPresence calls %s, want one at %s", describeGraph(clears), callEnd.Format("15:04"))
		}
		e.wantNoSession(oidAda, "after the call")
		e.wantNext(next, at(9, 50).Add(msResync), "after the call")
	})

	// A call with nothing on the calendar that ends early: cleared at once, not at the end of
	// its provisional four hours.
	t.Run("an unscheduled call ending early clears early", func(t *testing.T) {
		e := newMSEnv(t, msEnvOptions{})
		ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
		e.connectZoom(ada, "ZUserAda0000000000001")
		e.connectTeams(ada)
		e.processMS(ada, at(9, 50))

		start := at(10, 5)
		call := e.startCall(ada, "uuid-call-2", start)
		e.wantNext(e.processMS(ada, start), start.Add(liveProvisional), "at the start")
		sets := e.okCalls("users.profile.set", "U0001")
		if len(sets) != 1 {
			t.Fatalf("%d users.profile.set, want 1", len(sets))
		}
		wantProfile(t, sets[0], zoomText, zoomEmoji, start.Add(liveProvisional))

		callEnd := at(10, 25)
		e.endCall(ada, call, callEnd)
		e.processMS(ada, callEnd)
		sets = e.okCalls("users.profile.set", "U0001")
		if len(sets) != 2 {
			t.Fatalf("%d users.profile.set, want 2:%s", len(sets), describe(e.writes()))
		}
		wantProfile(t, sets[1], "", "", time.Time{})
		if got := e.sfake.Status("U0001"); got.Text != "" {
			t.Errorf("Slack shows %+v after the call, want nothing", got)
		}
		if a, ok := e.findActivity(ada.id, "slack:status", "cleared"); !ok || !a.At.Equal(callEnd) {
			t.Errorf("activity %+v (found %v), want the status cleared", a, ok)
		}
		e.wantNoSession(oidAda, "after the call")
		if n := len(e.okGraph(graphfake.EndpointClearPresence, oidAda)); n != 1 {
			t.Errorf("%d clearPresence, want 1", n)
		}
	})

	// A call that ends during a longer meeting: the meeting's state comes back, with the
	// meeting's end, and the Teams session is cut to it.
	t.Run("the meeting comes back when the call ends first", func(t *testing.T) {
		e := newMSEnv(t, msEnvOptions{})
		ada := e.addMSPerson("u-ada", oidAda, "U0001", rules(nil))
		e.connectZoom(ada, "ZUserAda0000000000001")
		e.connectTeams(ada)
		start, mEnd := at(10, 0), at(11, 0)
		e.zfake.AddMeeting(ada.zoomUser, zoomfake.Meeting{Topic: "Secret", Start: start, Duration: time.Hour})
		e.processMS(ada, at(9, 50))

		call := e.startCall(ada, "uuid-call-3", start)
		e.processMS(ada, start)
		sets := e.okCalls("users.profile.set", "U0001")
		if len(sets) != 1 {
			t.Fatalf("%d users.profile.set, want 1", len(sets))
		}
		wantProfile(t, sets[0], zoomText, zoomEmoji, start.Add(liveProvisional))

		callEnd := at(10, 20)
		e.endCall(ada, call, callEnd)
		next := e.processMS(ada, callEnd)
		e.wantNext(next, mEnd, "when the call ended")
		sets = e.okCalls("users.profile.set", "U0001")
		if len(sets) != 2 {
			t.Fatalf("%d users.profile.set, want 2:%s", len(sets), describe(e.writes()))
		}
		wantProfile(t, sets[1], "In a meeting", ":spiral_calendar_pad:", mEnd)
		e.wantSession(oidAda, "Busy", "InACall", callEnd, mEnd)

		writes := len(e.teamsWrites())
		e.processMS(ada, mEnd)
		e.wantNoTeamsWritesSince(writes, "at the meeting's end")
		e.wantNoSession(oidAda, "at the meeting's end")
		if n := len(e.okCalls("users.profile.set", "U0001")); n != 2 {
			t.Errorf("%d users.profile.set in all, want 2", n)
		}
	})
}
