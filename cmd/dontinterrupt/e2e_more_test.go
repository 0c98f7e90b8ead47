package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
)

// nextStart is a start a couple of seconds ahead, on a whole second.
func nextStart(in time.Duration) time.Time {
	return time.Now().Add(in).Truncate(time.Second).Add(time.Second)
}

func (w *e2eWorld) connect(provider, wantRow string) {
	w.t.Helper()
	if code, body := w.get("/connect/" + provider); code != 200 || !strings.Contains(body, wantRow) {
		w.t.Fatalf("connect %s: %d\n%s", provider, code, body)
	}
}

func okCalls(calls []graphfake.Call) []graphfake.Call {
	var out []graphfake.Call
	for _, c := range calls {
		if c.Status/100 == 2 {
			out = append(out, c)
		}
	}
	return out
}

// TestEndToEndMicrosoft: Outlook and Google events drive Slack and Teams; overlapping events of
// both calendars are one block with the later end; a Graph change notification for a moved
// meeting reschedules the transition with the periodic resync out of the way.
func TestEndToEndMicrosoft(t *testing.T) {
	w := newWorld(t, "bolt", map[string]string{"DI_RESYNC_INTERVAL": "24h"})
	w.signInAndConnect()
	w.connect("teams", "conn-teams")

	// Overlapping Google [s, s+3s) and Outlook [s+1s, s+5s): one block until s+5s. Both
	// calendars hold their event before they are connected, so the first syncs bring them.
	start := nextStart(3 * time.Second)
	end := start.Add(5 * time.Second)
	w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: start, End: start.Add(3 * time.Second)})
	w.graph.AddEvent(graphfake.DefaultOID, graphfake.Event{Subject: secretTitle, Start: start.Add(time.Second), End: end})
	w.connect("outlook", "conn-outlook")
	w.connectGoogle()
	w.waitFor("the Graph subscription", 15*time.Second, func() bool { return len(w.graph.Subscriptions()) >= 1 })
	if time.Now().After(start) {
		t.Fatal("connecting took longer than the lead time; the machine is too slow for this timeline")
	}

	w.waitFor("the Slack status and the Teams presence", 15*time.Second, func() bool {
		return len(profileSets(w.slack)) >= 1 && len(okCalls(w.graph.CallsTo(graphfake.EndpointSetPresence))) >= 1
	})
	sets := profileSets(w.slack)
	if text, _, exp := profileOf(t, sets[0]); text != "In a meeting" || exp != end.Unix() {
		t.Errorf("Slack status %q until %d, want In a meeting until the later end %d", text, exp, end.Unix())
	}
	if lag := sets[0].Time.Sub(start); lag < 0 || lag > time.Second {
		t.Errorf("Slack written %v after the start, want within [0, 1s]", lag)
	}
	presence := okCalls(w.graph.CallsTo(graphfake.EndpointSetPresence))[0]
	if lag := presence.Time.Sub(start); lag < 0 || lag > time.Second {
		t.Errorf("Teams presence set %v after the start, want within [0, 1s]", lag)
	}
	if p := w.graph.Presence(graphfake.DefaultOID); p.Availability != "Busy" || p.Activity != "InACall" {
		t.Errorf("Teams presence = %s/%s, want Busy/InACall", p.Availability, p.Activity)
	}
	w.waitFor("the end of the block", 15*time.Second, func() bool { return time.Now().After(end.Add(1500 * time.Millisecond)) })
	if n := len(profileSets(w.slack)); n != 1 {
		t.Errorf("%d Slack writes for one merged block, want 1", n)
	}

	// A meeting 10 minutes out, moved to start in a few seconds: the change notification
	// (not the 24h resync) brings it.
	far := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	id := w.graph.AddEvent(graphfake.DefaultOID, graphfake.Event{Subject: secretTitle, Start: far, End: far.Add(30 * time.Minute)})
	w.waitFor("the notification of the new meeting to be synced", 15*time.Second, func() bool {
		_, body := w.get("/")
		return strings.Contains(body, far.UTC().Format("15:04"))
	})
	moved := nextStart(2 * time.Second)
	before := len(profileSets(w.slack))
	if err := w.graph.UpdateEvent(graphfake.DefaultOID, id, func(e *graphfake.Event) { e.Start, e.End = moved, moved.Add(3*time.Second) }); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the moved meeting's status", 15*time.Second, func() bool { return len(profileSets(w.slack)) > before })
	set := profileSets(w.slack)[before]
	if lag := set.Time.Sub(moved); lag < 0 || lag > time.Second {
		t.Errorf("moved meeting written %v after its new start, want within [0, 1s]", lag)
	}
	if _, _, exp := profileOf(t, set); exp != moved.Add(3*time.Second).Unix() {
		t.Errorf("moved meeting expires %d, want %d", exp, moved.Add(3*time.Second).Unix())
	}
	delivered := 0
	for _, d := range w.graph.Deliveries() {
		if d.Status == http.StatusAccepted {
			delivered++
		}
	}
	if delivered == 0 {
		t.Errorf("no change notification was accepted: %+v", w.graph.Deliveries())
	}
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	w.scanForSecrets("bolt")
}

// TestEndToEndGooglePush: with the periodic resync out of the way (24h), a meeting moved in
// Google Calendar is written to Slack at its new start because of the push notification: the
// channel made after the first sync is told of the change, our /webhooks/google checks its
// token and asks for a sync, and the scheduler plans the new time.
func TestEndToEndGooglePush(t *testing.T) {
	w := newWorld(t, "bolt", map[string]string{"DI_RESYNC_INTERVAL": "24h"})
	w.signInAndConnect()
	w.connectGoogle()
	// The activity log says "subscribed" once the channel is stored, so a notification finds it.
	w.waitFor("the Google channel", 15*time.Second, func() bool {
		_, body := w.get("/activity")
		return strings.Contains(body, "<td>push</td><td>google</td><td>subscribed</td>")
	})
	chans := w.google.Channels()
	if len(chans) != 1 || chans[0].Address != "http://"+publicHost+"/webhooks/google" || chans[0].Params["ttl"] != "604800" ||
		chans[0].Token == "" || chans[0].Stopped {
		t.Fatalf("channels at Google %+v, want one to /webhooks/google asking a week", chans)
	}
	lists := len(w.google.CallsTo(googlefake.EndpointEventsList))

	// A meeting 10 minutes out: pushed, synced, on the dashboard.
	far := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	id := w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: far, End: far.Add(30 * time.Minute)})
	w.waitFor("the notification of the new meeting to be synced", 15*time.Second, func() bool {
		_, body := w.get("/")
		return strings.Contains(body, far.UTC().Format("15:04"))
	})
	// Moved to start in a few seconds.
	moved := nextStart(2 * time.Second)
	before := len(profileSets(w.slack))
	if err := w.google.UpdateEvent(googlefake.DefaultSub, "primary", id, func(e *googlefake.Event) { e.Start, e.End = moved, moved.Add(3*time.Second) }); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the moved meeting's status", 15*time.Second, func() bool { return len(profileSets(w.slack)) > before })
	set := profileSets(w.slack)[before]
	if lag := set.Time.Sub(moved); lag < 0 || lag > time.Second {
		t.Errorf("moved meeting written %v after its new start, want within [0, 1s]", lag)
	}
	if text, _, exp := profileOf(t, set); text != "In a meeting" || exp != moved.Add(3*time.Second).Unix() {
		t.Errorf("moved meeting: %q until %d, want In a meeting until %d", text, exp, moved.Add(3*time.Second).Unix())
	}

	// The pushes did it: both changes were delivered to us and accepted, and each brought one
	// incremental events.list (the resync is a day away).
	accepted := 0
	for _, c := range w.google.CallsTo(googlefake.EndpointPushNotification) {
		if c.Query.Get("resourceState") == "exists" && c.Status == http.StatusOK {
			accepted++
		}
	}
	if accepted != 2 {
		t.Errorf("%d exists notifications answered 200, want 2: %+v", accepted, w.google.CallsTo(googlefake.EndpointPushNotification))
	}
	if n := len(w.google.CallsTo(googlefake.EndpointEventsList)) - lists; n != 2 {
		t.Errorf("%d events.list calls after the channel was made, want 2 (one per push)", n)
	}
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	w.scanForSecrets("bolt")
}

// TestEndToEndZoom: an unscheduled call sets Slack and Teams within a second of the webhook and
// clears when it ends; a meeting that overruns keeps the status until the call ends; a call
// that ends early clears the meeting's status early.
func TestEndToEndZoom(t *testing.T) {
	w := newWorld(t, "bolt", map[string]string{"DI_RESYNC_INTERVAL": "24h"})
	w.signInAndConnect()
	w.connect("teams", "conn-teams")
	w.connect("zoom", "conn-zoom")
	ctx := t.Context()
	user := zoomfake.DefaultUserID

	// The calendar: meeting A [s, s+2s) whose call overruns; meeting B [s+6s, s+66s) whose call
	// ends after a second.
	s := nextStart(5 * time.Second)
	sB := s.Add(6 * time.Second)
	w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: s, End: s.Add(2 * time.Second)})
	w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: sB, End: sB.Add(time.Minute)})
	w.connectGoogle()

	// An unscheduled call, before the calendar's first meeting.
	sent := time.Now()
	if d, err := w.zoom.StartMeeting(ctx, user, ""); err != nil || d.Status != http.StatusOK {
		t.Fatalf("meeting.started delivery: %+v %v", d, err)
	}
	w.waitFor("the Zoom call status", 10*time.Second, func() bool {
		return len(profileSets(w.slack)) >= 1 && len(okCalls(w.graph.CallsTo(graphfake.EndpointSetPresence))) >= 1
	})
	set := profileSets(w.slack)[0]
	if text, _, _ := profileOf(t, set); text != "On a Zoom call" {
		t.Errorf("status %q, want On a Zoom call", text)
	}
	if lag := set.Time.Sub(sent); lag > time.Second {
		t.Errorf("Slack written %v after the webhook, want within 1s", lag)
	}
	if lag := okCalls(w.graph.CallsTo(graphfake.EndpointSetPresence))[0].Time.Sub(sent); lag > time.Second {
		t.Errorf("Teams presence set %v after the webhook, want within 1s", lag)
	}
	live := w.zoom.LiveMeetings(user)
	if len(live) != 1 {
		t.Fatalf("live meetings = %v", live)
	}
	if d, err := w.zoom.EndMeeting(ctx, user, live[0]); err != nil || d.Status != http.StatusOK {
		t.Fatalf("meeting.ended delivery: %+v %v", d, err)
	}
	w.waitFor("the status to clear when the call ends", 10*time.Second, func() bool { return w.slack.Status(slackUser).Text == "" })
	if time.Now().After(s) {
		t.Fatalf("the unscheduled call ran into meeting A; the machine is too slow for this timeline")
	}

	// Meeting A: the call overruns the scheduled end and keeps the status until it ends.
	w.waitFor("meeting A to start", 10*time.Second, func() bool { return w.slack.Status(slackUser).Text == "In a meeting" })
	if d, err := w.zoom.StartMeeting(ctx, user, "123456789"); err != nil || d.Status != http.StatusOK {
		t.Fatalf("meeting.started: %+v %v", d, err)
	}
	w.waitFor("the call to take over", 10*time.Second, func() bool { return w.slack.Status(slackUser).Text == "On a Zoom call" })
	w.waitFor("A's scheduled end to pass", 10*time.Second, func() bool { return time.Now().After(s.Add(3 * time.Second)) })
	if st := w.slack.Status(slackUser); st.Text != "On a Zoom call" {
		t.Errorf("after A's scheduled end the status is %+v, want the call to keep it", st)
	}
	if d, err := w.zoom.EndMeeting(ctx, user, "123456789"); err != nil || d.Status != http.StatusOK {
		t.Fatalf("meeting.ended: %+v %v", d, err)
	}
	w.waitFor("the status to clear after the overrun", 10*time.Second, func() bool { return w.slack.Status(slackUser).Text == "" })

	// Meeting B: the call ends after a second, 59 s before the scheduled end: cleared early.
	w.waitFor("meeting B to start", 15*time.Second, func() bool { return w.slack.Status(slackUser).Text == "In a meeting" })
	if d, err := w.zoom.StartMeeting(ctx, user, "987654321"); err != nil || d.Status != http.StatusOK {
		t.Fatalf("meeting.started: %+v %v", d, err)
	}
	w.waitFor("the call status", 10*time.Second, func() bool { return w.slack.Status(slackUser).Text == "On a Zoom call" })
	if d, err := w.zoom.EndMeeting(ctx, user, "987654321"); err != nil || d.Status != http.StatusOK {
		t.Fatalf("meeting.ended: %+v %v", d, err)
	}
	w.waitFor("the status to clear early", 10*time.Second, func() bool { return w.slack.Status(slackUser).Text == "" })
	if time.Now().After(sB.Add(30 * time.Second)) {
		t.Errorf("cleared only at %v, the meeting ran to %v", time.Now(), sB.Add(time.Minute))
	}
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	w.scanForSecrets("bolt")
}

// TestEndToEndRuleChange: a rule changed on the settings page changes the next real write.
func TestEndToEndRuleChange(t *testing.T) {
	w := newWorld(t, "bolt")
	w.signInAndConnect()
	form := url.Values{
		"time_zone":                {"UTC"},
		"leave_own_status":         {"on"},
		"tentative_counts":         {"on"},
		"rule.meeting.enabled":     {"on"},
		"rule.meeting.slack_text":  {"Heads down"},
		"rule.meeting.slack_emoji": {":no_entry:"},
		"rule.meeting.teams":       {"Busy/InACall"},
	}
	resp, err := w.client.PostForm("http://"+publicHost+"/settings", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("save settings: %d", resp.StatusCode)
	}
	start := nextStart(2 * time.Second)
	w.google.AddEvent(googlefake.DefaultSub, "primary", googlefake.Event{Summary: secretTitle, Start: start, End: start.Add(3 * time.Second)})
	w.connectGoogle()
	w.waitFor("the status write", 15*time.Second, func() bool { return len(profileSets(w.slack)) >= 1 })
	if text, emoji, _ := profileOf(t, profileSets(w.slack)[0]); text != "Heads down" || emoji != ":no_entry:" {
		t.Fatalf("status %q %q, want the changed rule's Heads down :no_entry:", text, emoji)
	}
}

// TestEndToEndSignInWithSlack: Sign in with Slack (OIDC) creates the person, identified as
// team/user, and their dashboard follows.
func TestEndToEndSignInWithSlack(t *testing.T) {
	w := newWorld(t, "bolt")
	code, body := w.get("/")
	if code != http.StatusOK || !strings.Contains(body, `href="/signin/slack"`) {
		t.Fatalf("landing page offers no Sign in with Slack: %d\n%s", code, body)
	}
	code, body = w.get("/signin/slack")
	if code != http.StatusOK || !strings.Contains(body, "Your dashboard") || !strings.Contains(body, "Slack (linked)") {
		t.Fatalf("sign in with Slack: %d\n%s", code, body)
	}
}
