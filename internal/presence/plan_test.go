package presence

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// mar2 returns h:m on Monday 2 March 2026 in UTC, the day most cases play on.
func mar2(h, m int) time.Time { return time.Date(2026, 3, 2, h, m, 0, 0, time.UTC) }

func utc(y int, mo time.Month, d, h, m int) time.Time {
	return time.Date(y, mo, d, h, m, 0, 0, time.UTC)
}

// meet is an accepted meeting with others in c1/primary.
func meet(id string, from, to time.Time) Event {
	return Event{Source: "c1/primary", ID: id, Type: EventDefault, Start: from, End: to,
		Response: ResponseAccepted, Busy: BusyBusy, HasOtherAttendees: true}
}

func with(e Event, f func(*Event)) Event { f(&e); return e }

func typed(id string, t EventType, from, to time.Time) Event {
	return with(meet(id, from, to), func(e *Event) { e.Type = t; e.HasOtherAttendees = false; e.Response = ResponseNone })
}

func allDay(id string, t EventType, from, to time.Time) Event {
	return with(typed(id, t, from, to), func(e *Event) { e.AllDay = true })
}

func key(id string) string { return "c1/primary/" + id }

func keys(ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = key(id)
	}
	return out
}

type mod func(*DesiredState)

func apply(s DesiredState, mods []mod) DesiredState {
	for _, m := range mods {
		m(&s)
	}
	return s
}

func statusUntil(t time.Time) mod { return func(s *DesiredState) { s.SlackStatus.Expiration = t } }
func dndUntil(t time.Time) mod    { return func(s *DesiredState) { s.SlackDND.Until = t } }
func awayUntil(t time.Time) mod   { return func(s *DesiredState) { s.SlackPresence.Until = t } }
func teamsUntil(t time.Time) mod  { return func(s *DesiredState) { s.TeamsPresence.Until = t } }
func cause(c string) mod          { return func(s *DesiredState) { s.Cause = c } }
func kind(k Kind) mod             { return func(s *DesiredState) { s.Kind = k } }
func emoji(e string) mod          { return func(s *DesiredState) { s.SlackStatus.Emoji = e } }
func text(t string) mod           { return func(s *DesiredState) { s.SlackStatus.Text = t } }
func message(t string, until time.Time) mod {
	return func(s *DesiredState) { s.TeamsMessage = TeamsMessage{Text: t, Until: until} }
}

// The states DefaultRules give, every target until the block's end unless a mod says otherwise.

func meetingState(until time.Time, keys []string, mods ...mod) DesiredState {
	return apply(DesiredState{Kind: KindMeeting, Cause: "calendar", EventKeys: keys, Until: until,
		SlackStatus:   SlackStatus{Text: "In a meeting", Emoji: ":spiral_calendar_pad:", Expiration: until},
		TeamsPresence: TeamsPresence{Availability: "Busy", Activity: "InACall", Until: until},
	}, mods)
}

func focusState(until time.Time, keys []string, mods ...mod) DesiredState {
	return apply(DesiredState{Kind: KindFocus, Cause: "calendar", EventKeys: keys, Until: until,
		SlackStatus:   SlackStatus{Text: "Focusing", Emoji: ":headphones:", Expiration: until},
		SlackDND:      SlackDND{On: true, Until: until},
		TeamsPresence: TeamsPresence{Availability: "DoNotDisturb", Activity: "Presenting", Until: until},
	}, mods)
}

func oooState(until time.Time, untilText string, keys []string, mods ...mod) DesiredState {
	t := "Out of office until " + untilText
	return apply(DesiredState{Kind: KindOutOfOffice, Cause: "calendar", EventKeys: keys, Until: until,
		SlackStatus:   SlackStatus{Text: t, Emoji: ":palm_tree:", Expiration: until},
		SlackDND:      SlackDND{On: true, Until: until},
		SlackPresence: SlackPresence{Away: true, Until: until},
		TeamsPresence: TeamsPresence{Availability: "Away", Activity: "Away", Until: until},
		TeamsMessage:  TeamsMessage{Text: t, Until: until},
	}, mods)
}

func zoomState(until time.Time, keys []string, mods ...mod) DesiredState {
	return apply(DesiredState{Kind: KindZoomCall, Cause: "zoom", EventKeys: keys, Until: until,
		SlackStatus:   SlackStatus{Text: "On a Zoom call", Emoji: ":video_camera:", Expiration: until},
		TeamsPresence: TeamsPresence{Availability: "Busy", Activity: "InACall", Until: until},
	}, mods)
}

func outsideState(until time.Time) DesiredState {
	return DesiredState{Kind: KindOutsideHours, Cause: "working hours", Until: until,
		SlackStatus:   SlackStatus{Text: "Outside working hours", Emoji: ":crescent_moon:", Expiration: until},
		SlackPresence: SlackPresence{Away: true, Until: until},
	}
}

func seg(from, to time.Time, s DesiredState) Segment { return Segment{From: from, To: to, State: s} }

func enable(k Kind) func(*Rules) {
	return func(r *Rules) {
		kr := r.Kinds[k]
		kr.Enabled = true
		r.Kinds[k] = kr
	}
}

type planCase struct {
	name      string
	rules     func(*Rules) // changes to DefaultRules
	events    []Event
	overrides []Override
	now       time.Time     // default mar2(8, 0)
	horizon   time.Duration // default 12h
	want      []Segment
}

func (c planCase) plan() Timeline {
	r := DefaultRules()
	if c.rules != nil {
		c.rules(&r)
	}
	now, horizon := c.now, c.horizon
	if now.IsZero() {
		now = mar2(8, 0)
	}
	if horizon == 0 {
		horizon = 12 * time.Hour
	}
	return Plan(c.events, c.overrides, r, now, horizon)
}

// normalize puts every instant of want in UTC, as Plan answers.
func normalize(segs []Segment) []Segment {
	out := make([]Segment, len(segs))
	for i, s := range segs {
		st := s.State
		st.Until = st.Until.UTC()
		st.SlackStatus.Expiration = st.SlackStatus.Expiration.UTC()
		st.SlackDND.Until = st.SlackDND.Until.UTC()
		st.SlackPresence.Until = st.SlackPresence.Until.UTC()
		st.TeamsPresence.Until = st.TeamsPresence.Until.UTC()
		st.TeamsMessage.Until = st.TeamsMessage.Until.UTC()
		out[i] = Segment{From: s.From.UTC(), To: s.To.UTC(), State: st}
	}
	return out
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("Jan 2 15:04:05.999999999Z")
}

func fmtSegs(segs []Segment) string {
	var b strings.Builder
	for _, s := range segs {
		st := s.State
		fmt.Fprintf(&b, "  [%s, %s) kind=%q paused=%v cause=%q keys=%v until=%s\n", fmtTime(s.From), fmtTime(s.To),
			st.Kind, st.Paused, st.Cause, st.EventKeys, fmtTime(st.Until))
		fmt.Fprintf(&b, "      slack status %q %q exp=%s; dnd %v until=%s; away %v until=%s\n",
			st.SlackStatus.Text, st.SlackStatus.Emoji, fmtTime(st.SlackStatus.Expiration),
			st.SlackDND.On, fmtTime(st.SlackDND.Until), st.SlackPresence.Away, fmtTime(st.SlackPresence.Until))
		fmt.Fprintf(&b, "      teams %q/%q until=%s; message %q until=%s\n",
			st.TeamsPresence.Availability, st.TeamsPresence.Activity, fmtTime(st.TeamsPresence.Until),
			st.TeamsMessage.Text, fmtTime(st.TeamsMessage.Until))
	}
	return b.String()
}

func checkTimeline(t *testing.T, got Timeline, want []Segment) {
	t.Helper()
	want = normalize(want)
	if !reflect.DeepEqual(got.Segments, want) {
		t.Errorf("timeline:\ngot\n%swant\n%s", fmtSegs(got.Segments), fmtSegs(want))
	}
}

// checkShape checks what holds for every timeline: contiguous segments from now to the end,
// no two adjacent ones equal, every instant in UTC.
func checkShape(t *testing.T, tl Timeline, now, end time.Time) {
	t.Helper()
	if len(tl.Segments) == 0 {
		t.Fatalf("empty timeline")
	}
	if !tl.Segments[0].From.Equal(now) {
		t.Errorf("first segment starts at %s, want now %s", fmtTime(tl.Segments[0].From), fmtTime(now))
	}
	if last := tl.Segments[len(tl.Segments)-1]; !end.IsZero() && !last.To.Equal(end) {
		t.Errorf("last segment ends at %s, want %s", fmtTime(last.To), fmtTime(end))
	}
	for i, s := range tl.Segments {
		if !s.To.After(s.From) {
			t.Errorf("segment %d is empty: [%s, %s)", i, fmtTime(s.From), fmtTime(s.To))
		}
		if s.From.Location() != time.UTC || s.To.Location() != time.UTC {
			t.Errorf("segment %d not in UTC", i)
		}
		if i > 0 {
			if !s.From.Equal(tl.Segments[i-1].To) {
				t.Errorf("gap between segments %d and %d", i-1, i)
			}
			if s.State.equal(tl.Segments[i-1].State) {
				t.Errorf("segments %d and %d have equal states and were not merged", i-1, i)
			}
		}
	}
}

func TestPlan(t *testing.T) {
	nyc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	end := mar2(20, 0) // default now + horizon
	long := strings.Repeat("é", 96) + " {until}"

	cases := []planCase{
		{
			name:   "declined",
			events: []Event{with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Response = ResponseDeclined })},
			want:   []Segment{seg(mar2(8, 0), end, DesiredState{})},
		},
		{
			name:   "cancelled",
			events: []Event{with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Cancelled = true })},
			want:   []Segment{seg(mar2(8, 0), end, DesiredState{})},
		},
		{
			name:   "free/transparent",
			events: []Event{with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Busy = BusyFree })},
			want:   []Segment{seg(mar2(8, 0), end, DesiredState{})},
		},
		{
			name:   "working elsewhere",
			events: []Event{with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Busy = BusyWorkingElsewhere })},
			want:   []Segment{seg(mar2(8, 0), end, DesiredState{})},
		},
		{
			name: "tentative counts (default)",
			events: []Event{
				with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Response = ResponseTentative }),
				with(meet("m2", mar2(11, 0), mar2(12, 0)), func(e *Event) { e.Busy = BusyTentative }),
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(10, 0), keys("m1"))),
				seg(mar2(10, 0), mar2(11, 0), DesiredState{}),
				seg(mar2(11, 0), mar2(12, 0), meetingState(mar2(12, 0), keys("m2"))),
				seg(mar2(12, 0), end, DesiredState{}),
			},
		},
		{
			name:  "tentative does not count (setting off)",
			rules: func(r *Rules) { r.TentativeCounts = false },
			events: []Event{
				with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Response = ResponseTentative }),
				with(meet("m2", mar2(11, 0), mar2(12, 0)), func(e *Event) { e.Busy = BusyTentative }),
				meet("m3", mar2(13, 0), mar2(14, 0)),
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(13, 0), DesiredState{}),
				seg(mar2(13, 0), mar2(14, 0), meetingState(mar2(14, 0), keys("m3"))),
				seg(mar2(14, 0), end, DesiredState{}),
			},
		},
		{
			name: "unanswered invitation counts",
			events: []Event{
				with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Response = ResponsePending }),
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(10, 0), keys("m1"))),
				seg(mar2(10, 0), end, DesiredState{}),
			},
		},
		{
			// Sat 7 to Mon 9 March inclusive in New York, across the US spring-forward on the 8th:
			// from midnight EST (05:00Z) to midnight EDT (04:00Z), beyond the horizon.
			name:    "all-day out of office in America/New_York, across DST",
			rules:   func(r *Rules) { r.TimeZone = "America/New_York" },
			events:  []Event{allDay("ooo", EventOutOfOffice, utc(2026, 3, 7, 0, 0), utc(2026, 3, 10, 0, 0))},
			now:     utc(2026, 3, 7, 12, 0),
			horizon: 24 * time.Hour,
			want: []Segment{
				seg(utc(2026, 3, 7, 12, 0), utc(2026, 3, 8, 12, 0), oooState(utc(2026, 3, 10, 4, 0), "Tue 10 Mar", keys("ooo"))),
			},
		},
		{
			name:    "all-day out of office ends at midnight in the person's time zone",
			rules:   func(r *Rules) { r.TimeZone = "America/New_York" },
			events:  []Event{allDay("ooo", EventOutOfOffice, utc(2026, 3, 3, 0, 0), utc(2026, 3, 4, 0, 0))},
			now:     utc(2026, 3, 3, 12, 0),
			horizon: 24 * time.Hour,
			want: []Segment{
				seg(utc(2026, 3, 3, 12, 0), time.Date(2026, 3, 4, 0, 0, 0, 0, nyc), oooState(utc(2026, 3, 4, 5, 0), "Wed 4 Mar", keys("ooo"))),
				seg(utc(2026, 3, 4, 5, 0), utc(2026, 3, 4, 12, 0), DesiredState{}),
			},
		},
		{
			name: "all-day non-out-of-office events ignored",
			events: []Event{
				allDay("holiday", EventDefault, utc(2026, 3, 2, 0, 0), utc(2026, 3, 3, 0, 0)),
				allDay("focus", EventFocusTime, utc(2026, 3, 2, 0, 0), utc(2026, 3, 3, 0, 0)),
			},
			want: []Segment{seg(mar2(8, 0), end, DesiredState{})},
		},
		{
			name:   "Google out-of-office event type",
			events: []Event{typed("o1", EventOutOfOffice, mar2(12, 0), mar2(15, 30))},
			want: []Segment{
				seg(mar2(8, 0), mar2(12, 0), DesiredState{}),
				seg(mar2(12, 0), mar2(15, 30), oooState(mar2(15, 30), "15:30", keys("o1"))),
				seg(mar2(15, 30), end, DesiredState{}),
			},
		},
		{
			name:   "Graph showAs oof",
			events: []Event{with(meet("o2", mar2(12, 0), mar2(15, 30)), func(e *Event) { e.Busy = BusyOutOfOffice })},
			want: []Segment{
				seg(mar2(8, 0), mar2(12, 0), DesiredState{}),
				seg(mar2(12, 0), mar2(15, 30), oooState(mar2(15, 30), "15:30", keys("o2"))),
				seg(mar2(15, 30), end, DesiredState{}),
			},
		},
		{
			name:   "focus-time event",
			events: []Event{typed("f1", EventFocusTime, mar2(9, 0), mar2(11, 0))},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(11, 0), focusState(mar2(11, 0), keys("f1"))),
				seg(mar2(11, 0), end, DesiredState{}),
			},
		},
		{
			name:  "only with others on",
			rules: func(r *Rules) { r.OnlyWithOthers = true },
			events: []Event{
				with(meet("alone", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.HasOtherAttendees = false }),
				typed("f1", EventFocusTime, mar2(10, 0), mar2(11, 0)),
				meet("m1", mar2(12, 0), mar2(13, 0)),
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(10, 0), DesiredState{}),
				seg(mar2(10, 0), mar2(11, 0), focusState(mar2(11, 0), keys("f1"))),
				seg(mar2(11, 0), mar2(12, 0), DesiredState{}),
				seg(mar2(12, 0), mar2(13, 0), meetingState(mar2(13, 0), keys("m1"))),
				seg(mar2(13, 0), end, DesiredState{}),
			},
		},
		{
			name: "only with others off",
			events: []Event{
				with(meet("alone", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.HasOtherAttendees = false }),
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(10, 0), keys("alone"))),
				seg(mar2(10, 0), end, DesiredState{}),
			},
		},
		{
			name:   "overlapping merge",
			events: []Event{meet("m2", mar2(9, 30), mar2(11, 0)), meet("m1", mar2(9, 0), mar2(10, 0))},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(11, 0), meetingState(mar2(11, 0), keys("m1", "m2"))),
				seg(mar2(11, 0), end, DesiredState{}),
			},
		},
		{
			name:   "back-to-back merge",
			events: []Event{meet("m1", mar2(9, 0), mar2(10, 0)), meet("m2", mar2(10, 0), mar2(11, 0))},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(11, 0), meetingState(mar2(11, 0), keys("m1", "m2"))),
				seg(mar2(11, 0), end, DesiredState{}),
			},
		},
		{
			name: "zoom live over meeting",
			events: []Event{
				meet("m1", mar2(9, 0), mar2(11, 0)),
				{Source: "z1", ID: "call1", Type: EventZoomLive, Start: mar2(9, 30), End: mar2(10, 0)},
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				// Teams shows Busy/InACall for both: one presence until 11:00.
				seg(mar2(9, 0), mar2(9, 30), meetingState(mar2(11, 0), keys("m1"), statusUntil(mar2(9, 30)))),
				seg(mar2(9, 30), mar2(10, 0), zoomState(mar2(10, 0), []string{"z1/call1"}, teamsUntil(mar2(11, 0)))),
				seg(mar2(10, 0), mar2(11, 0), meetingState(mar2(11, 0), keys("m1"))),
				seg(mar2(11, 0), end, DesiredState{}),
			},
		},
		{
			name: "out of office over meeting",
			events: []Event{
				meet("m1", mar2(9, 0), mar2(11, 0)),
				typed("o1", EventOutOfOffice, mar2(10, 0), mar2(14, 0)),
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(11, 0), keys("m1"), statusUntil(mar2(10, 0)), teamsUntil(mar2(10, 0)))),
				seg(mar2(10, 0), mar2(14, 0), oooState(mar2(14, 0), "14:00", keys("o1"))),
				seg(mar2(14, 0), end, DesiredState{}),
			},
		},
		{
			name:      "override focus",
			events:    []Event{meet("m1", mar2(9, 0), mar2(11, 0))},
			overrides: []Override{{ID: "x", Kind: OverrideFocus, Start: mar2(9, 30), End: mar2(10, 30), Origin: "slack"}},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(9, 30), meetingState(mar2(11, 0), keys("m1"), statusUntil(mar2(9, 30)), teamsUntil(mar2(9, 30)))),
				seg(mar2(9, 30), mar2(10, 30), focusState(mar2(10, 30), nil, kind(KindManualFocus), cause("slack"))),
				seg(mar2(10, 30), mar2(11, 0), meetingState(mar2(11, 0), keys("m1"))),
				seg(mar2(11, 0), end, DesiredState{}),
			},
		},
		{
			name:      "override back ends the current block, a later block unaffected",
			events:    []Event{meet("m1", mar2(9, 0), mar2(10, 0)), meet("m2", mar2(10, 30), mar2(11, 0))},
			overrides: []Override{{ID: "x", Kind: OverrideBack, Start: mar2(9, 20), Origin: "alexa"}},
			now:       mar2(9, 15),
			want: []Segment{
				seg(mar2(9, 15), mar2(9, 20), meetingState(mar2(10, 0), keys("m1"), statusUntil(mar2(9, 20)), teamsUntil(mar2(9, 20)))),
				seg(mar2(9, 20), mar2(10, 30), DesiredState{}),
				seg(mar2(10, 30), mar2(11, 0), meetingState(mar2(11, 0), keys("m2"))),
				seg(mar2(11, 0), mar2(21, 15), DesiredState{}),
			},
		},
		{
			name:      "override back with an end",
			events:    []Event{meet("m1", mar2(9, 0), mar2(12, 0))},
			overrides: []Override{{ID: "x", Kind: OverrideBack, Start: mar2(10, 0), End: mar2(11, 0), Origin: "web"}},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(12, 0), keys("m1"), statusUntil(mar2(10, 0)), teamsUntil(mar2(10, 0)))),
				seg(mar2(10, 0), mar2(11, 0), DesiredState{}),
				seg(mar2(11, 0), mar2(12, 0), meetingState(mar2(12, 0), keys("m1"))),
				seg(mar2(12, 0), end, DesiredState{}),
			},
		},
		{
			name:      "override back with nothing in progress does nothing",
			events:    []Event{meet("m1", mar2(9, 0), mar2(10, 0))},
			overrides: []Override{{ID: "x", Kind: OverrideBack, Start: mar2(8, 30), Origin: "web"}},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(10, 0), keys("m1"))),
				seg(mar2(10, 0), end, DesiredState{}),
			},
		},
		{
			name:      "override pause",
			events:    []Event{meet("m1", mar2(9, 0), mar2(11, 0))},
			overrides: []Override{{ID: "x", Kind: OverridePause, Start: mar2(10, 0), End: mar2(10, 30), Origin: "web"}},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(11, 0), keys("m1"), statusUntil(mar2(10, 0)), teamsUntil(mar2(10, 0)))),
				seg(mar2(10, 0), mar2(10, 30), DesiredState{Paused: true, Cause: "web", Until: mar2(10, 30)}),
				seg(mar2(10, 30), mar2(11, 0), meetingState(mar2(11, 0), keys("m1"))),
				seg(mar2(11, 0), end, DesiredState{}),
			},
		},
		{
			name:      "override pause until further notice",
			events:    []Event{meet("m1", mar2(13, 0), mar2(14, 0)), typed("o1", EventOutOfOffice, mar2(15, 0), utc(2026, 3, 5, 0, 0))},
			overrides: []Override{{ID: "x", Kind: OverridePause, Start: mar2(12, 0), Origin: "alexa"}},
			want: []Segment{
				seg(mar2(8, 0), mar2(12, 0), DesiredState{}),
				seg(mar2(12, 0), end, DesiredState{Paused: true, Cause: "alexa"}),
			},
		},
		{
			name:      "override ignore",
			events:    []Event{meet("m1", mar2(9, 0), mar2(10, 0)), meet("m2", mar2(9, 30), mar2(10, 30))},
			overrides: []Override{{ID: "x", Kind: OverrideIgnore, Start: mar2(7, 0), EventKey: key("m1"), Origin: "slack"}},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 30), DesiredState{}),
				seg(mar2(9, 30), mar2(10, 30), meetingState(mar2(10, 30), keys("m2"))),
				seg(mar2(10, 30), end, DesiredState{}),
			},
		},
		{
			name:   "ended overrides ignored",
			events: []Event{meet("m1", mar2(7, 0), mar2(9, 0))},
			overrides: []Override{
				{ID: "a", Kind: OverrideFocus, Start: mar2(6, 0), End: mar2(7, 0), Origin: "slack"},
				{ID: "b", Kind: OverridePause, Start: mar2(5, 0), End: mar2(8, 0), Origin: "web"},
				{ID: "c", Kind: OverrideBack, Start: mar2(7, 0), End: mar2(7, 59), Origin: "web"},
				{ID: "d", Kind: OverrideIgnore, Start: mar2(6, 0), End: mar2(7, 30), EventKey: key("m1")},
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), meetingState(mar2(9, 0), keys("m1"))),
				seg(mar2(9, 0), end, DesiredState{}),
			},
		},
		{
			name: "working hours per weekday, weekend off",
			rules: func(r *Rules) {
				enable(KindOutsideHours)(r)
				r.WorkingHours[time.Monday] = []Span{{NewClock(10, 0), NewClock(12, 0)}, {NewClock(13, 0), NewClock(18, 0)}}
			},
			now:     utc(2026, 3, 6, 12, 0), // Friday
			horizon: 96 * time.Hour,
			want: []Segment{
				seg(utc(2026, 3, 6, 12, 0), utc(2026, 3, 6, 17, 0), DesiredState{}),
				seg(utc(2026, 3, 6, 17, 0), utc(2026, 3, 9, 10, 0), outsideState(utc(2026, 3, 9, 10, 0))),
				seg(utc(2026, 3, 9, 10, 0), utc(2026, 3, 9, 12, 0), DesiredState{}),
				seg(utc(2026, 3, 9, 12, 0), utc(2026, 3, 9, 13, 0), outsideState(utc(2026, 3, 9, 13, 0))),
				seg(utc(2026, 3, 9, 13, 0), utc(2026, 3, 9, 18, 0), DesiredState{}),
				seg(utc(2026, 3, 9, 18, 0), utc(2026, 3, 10, 9, 0), outsideState(utc(2026, 3, 10, 9, 0))),
				seg(utc(2026, 3, 10, 9, 0), utc(2026, 3, 10, 12, 0), DesiredState{}),
			},
		},
		{
			name: "outside working hours under a meeting",
			rules: func(r *Rules) {
				enable(KindOutsideHours)(r)
			},
			events: []Event{meet("late", mar2(16, 30), mar2(17, 30))},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), outsideState(mar2(9, 0))),
				seg(mar2(9, 0), mar2(16, 30), DesiredState{}),
				seg(mar2(16, 30), mar2(17, 30), meetingState(mar2(17, 30), keys("late"))),
				seg(mar2(17, 30), end, apply(outsideState(utc(2026, 3, 3, 9, 0)), []mod{cause("working hours")})),
			},
		},
		{
			// CET until Sunday 29 March 2026 02:00, CEST after: Friday 17:00 is 16:00Z, Monday
			// 09:00 is 07:00Z.
			name:    "working hours across DST spring forward (Europe/Berlin)",
			rules:   func(r *Rules) { enable(KindOutsideHours)(r); r.TimeZone = "Europe/Berlin" },
			now:     utc(2026, 3, 27, 12, 0),
			horizon: 72 * time.Hour,
			want: []Segment{
				seg(utc(2026, 3, 27, 12, 0), utc(2026, 3, 27, 16, 0), DesiredState{}),
				seg(utc(2026, 3, 27, 16, 0), utc(2026, 3, 30, 7, 0), outsideState(utc(2026, 3, 30, 7, 0))),
				seg(utc(2026, 3, 30, 7, 0), utc(2026, 3, 30, 12, 0), DesiredState{}),
			},
		},
		{
			name: "working hours on the day of DST spring forward (Europe/Berlin, every day)",
			rules: func(r *Rules) {
				enable(KindOutsideHours)(r)
				r.TimeZone = "Europe/Berlin"
				for d := range r.WorkingHours {
					r.WorkingHours[d] = []Span{{NewClock(9, 0), NewClock(17, 0)}}
				}
			},
			now:     utc(2026, 3, 28, 12, 0),
			horizon: 36 * time.Hour,
			want: []Segment{
				seg(utc(2026, 3, 28, 12, 0), utc(2026, 3, 28, 16, 0), DesiredState{}),
				seg(utc(2026, 3, 28, 16, 0), utc(2026, 3, 29, 7, 0), outsideState(utc(2026, 3, 29, 7, 0))),
				seg(utc(2026, 3, 29, 7, 0), utc(2026, 3, 29, 15, 0), DesiredState{}),
				seg(utc(2026, 3, 29, 15, 0), utc(2026, 3, 30, 0, 0), outsideState(utc(2026, 3, 30, 7, 0))),
			},
		},
		{
			// CEST until Sunday 25 October 2026 03:00, CET after.
			name: "working hours across DST fall back (Europe/Berlin, every day)",
			rules: func(r *Rules) {
				enable(KindOutsideHours)(r)
				r.TimeZone = "Europe/Berlin"
				for d := range r.WorkingHours {
					r.WorkingHours[d] = []Span{{NewClock(9, 0), NewClock(17, 0)}}
				}
			},
			now:     utc(2026, 10, 24, 10, 0),
			horizon: 48 * time.Hour,
			want: []Segment{
				seg(utc(2026, 10, 24, 10, 0), utc(2026, 10, 24, 15, 0), DesiredState{}),
				seg(utc(2026, 10, 24, 15, 0), utc(2026, 10, 25, 8, 0), outsideState(utc(2026, 10, 25, 8, 0))),
				seg(utc(2026, 10, 25, 8, 0), utc(2026, 10, 25, 16, 0), DesiredState{}),
				seg(utc(2026, 10, 25, 16, 0), utc(2026, 10, 26, 8, 0), outsideState(utc(2026, 10, 26, 8, 0))),
				seg(utc(2026, 10, 26, 8, 0), utc(2026, 10, 26, 10, 0), DesiredState{}),
			},
		},
		{
			name: "per-target run: focus then out of office, one DND until the end of out of office",
			events: []Event{
				typed("f1", EventFocusTime, mar2(9, 0), mar2(10, 0)),
				typed("o1", EventOutOfOffice, mar2(10, 0), mar2(12, 0)),
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), focusState(mar2(10, 0), keys("f1"), dndUntil(mar2(12, 0)))),
				seg(mar2(10, 0), mar2(12, 0), oooState(mar2(12, 0), "12:00", keys("o1"))),
				seg(mar2(12, 0), end, DesiredState{}),
			},
		},
		{
			name: "per-target run: out of office then outside hours, one away",
			rules: func(r *Rules) {
				enable(KindOutsideHours)(r)
			},
			now:    mar2(12, 0),
			events: []Event{typed("o1", EventOutOfOffice, mar2(14, 0), mar2(17, 0))},
			want: []Segment{
				seg(mar2(12, 0), mar2(14, 0), DesiredState{}),
				seg(mar2(14, 0), mar2(17, 0), oooState(mar2(17, 0), "17:00", keys("o1"), awayUntil(utc(2026, 3, 3, 9, 0)))),
				seg(mar2(17, 0), mar2(24, 0), apply(outsideState(utc(2026, 3, 3, 9, 0)), nil)),
			},
		},
		{
			name:   "title emoji off",
			events: []Event{with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Emoji = "🍕" })},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(10, 0), keys("m1"))),
				seg(mar2(10, 0), end, DesiredState{}),
			},
		},
		{
			name:  "title emoji on",
			rules: func(r *Rules) { r.TitleEmoji = true },
			events: []Event{
				with(meet("m1", mar2(9, 0), mar2(10, 0)), func(e *Event) { e.Emoji = "🍕" }),
				with(meet("m2", mar2(10, 0), mar2(11, 0)), func(e *Event) { e.Emoji = ":coffee:" }),
				meet("m3", mar2(11, 0), mar2(12, 0)),
				with(typed("f1", EventFocusTime, mar2(13, 0), mar2(14, 0)), func(e *Event) { e.Emoji = "🍕" }),
			},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(12, 0), keys("m1", "m2", "m3"), emoji("🍕"), statusUntil(mar2(10, 0)))),
				seg(mar2(10, 0), mar2(11, 0), meetingState(mar2(12, 0), keys("m1", "m2", "m3"), emoji(":coffee:"), statusUntil(mar2(11, 0)))),
				seg(mar2(11, 0), mar2(12, 0), meetingState(mar2(12, 0), keys("m1", "m2", "m3"))),
				seg(mar2(12, 0), mar2(13, 0), DesiredState{}),
				seg(mar2(13, 0), mar2(14, 0), focusState(mar2(14, 0), keys("f1"))),
				seg(mar2(14, 0), end, DesiredState{}),
			},
		},
		{
			name: "{until} on the same day",
			rules: func(r *Rules) {
				kr := r.Kinds[KindMeeting]
				kr.SlackText, kr.TeamsMessage = "Busy until {until}", "Back at {until}"
				r.Kinds[KindMeeting] = kr
			},
			events: []Event{meet("m1", mar2(9, 0), mar2(10, 15))},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 15), meetingState(mar2(10, 15), keys("m1"), text("Busy until 10:15"), message("Back at 10:15", mar2(10, 15)))),
				seg(mar2(10, 15), end, DesiredState{}),
			},
		},
		{
			name: "{until} at midnight",
			rules: func(r *Rules) {
				kr := r.Kinds[KindMeeting]
				kr.SlackText = "Busy until {until}"
				r.Kinds[KindMeeting] = kr
			},
			events:  []Event{meet("m1", mar2(22, 0), utc(2026, 3, 3, 0, 0))},
			horizon: 18 * time.Hour,
			want: []Segment{
				seg(mar2(8, 0), mar2(22, 0), DesiredState{}),
				seg(mar2(22, 0), utc(2026, 3, 3, 0, 0), meetingState(utc(2026, 3, 3, 0, 0), keys("m1"), text("Busy until Tue 3 Mar"))),
				seg(utc(2026, 3, 3, 0, 0), utc(2026, 3, 3, 2, 0), DesiredState{}),
			},
		},
		{
			name: "{until} on another day, in the person's time zone",
			rules: func(r *Rules) {
				r.TimeZone = "America/New_York"
				kr := r.Kinds[KindMeeting]
				kr.SlackText = "Busy until {until}"
				r.Kinds[KindMeeting] = kr
			},
			// 23:00 to 01:30 EST.
			events:  []Event{meet("m1", utc(2026, 3, 3, 4, 0), utc(2026, 3, 3, 6, 30))},
			horizon: 24 * time.Hour,
			want: []Segment{
				seg(mar2(8, 0), utc(2026, 3, 3, 4, 0), DesiredState{}),
				seg(utc(2026, 3, 3, 4, 0), utc(2026, 3, 3, 6, 30), meetingState(utc(2026, 3, 3, 6, 30), keys("m1"), text("Busy until Tue 3 Mar 01:30"))),
				seg(utc(2026, 3, 3, 6, 30), utc(2026, 3, 3, 8, 0), DesiredState{}),
			},
		},
		{
			name:  "disabled rule shows the lower kind",
			rules: func(r *Rules) { kr := r.Kinds[KindFocus]; kr.Enabled = false; r.Kinds[KindFocus] = kr },
			events: []Event{
				meet("m1", mar2(9, 0), mar2(11, 0)),
				typed("f1", EventFocusTime, mar2(9, 30), mar2(10, 0)),
			},
			overrides: []Override{{ID: "x", Kind: OverrideFocus, Start: mar2(10, 0), End: mar2(10, 30), Origin: "slack"}},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(11, 0), meetingState(mar2(11, 0), keys("m1"))),
				seg(mar2(11, 0), end, DesiredState{}),
			},
		},
		{
			name: "text capped at 100 characters",
			rules: func(r *Rules) {
				kr := r.Kinds[KindMeeting]
				kr.SlackText = long
				r.Kinds[KindMeeting] = kr
			},
			events: []Event{meet("m1", mar2(9, 0), mar2(10, 0))},
			want: []Segment{
				seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
				seg(mar2(9, 0), mar2(10, 0), meetingState(mar2(10, 0), keys("m1"), text(strings.Repeat("é", 96)+" 10:"))),
				seg(mar2(10, 0), end, DesiredState{}),
			},
		},
		{
			name:   "unknown time zone falls back to UTC",
			rules:  func(r *Rules) { r.TimeZone = "Mars/Olympus_Mons" },
			events: []Event{allDay("ooo", EventOutOfOffice, utc(2026, 3, 2, 0, 0), utc(2026, 3, 3, 0, 0))},
			want: []Segment{
				seg(mar2(8, 0), end, oooState(utc(2026, 3, 3, 0, 0), "Tue 3 Mar", keys("ooo"))),
			},
		},
		{
			name:    "empty horizon: one segment covering now",
			events:  []Event{meet("m1", mar2(9, 0), mar2(10, 0))},
			now:     mar2(9, 30),
			horizon: -time.Hour,
			want:    []Segment{seg(mar2(9, 30), mar2(10, 0), meetingState(mar2(10, 0), keys("m1")))},
		},
		{
			name:    "empty horizon with nothing planned",
			now:     mar2(9, 30),
			horizon: -1,
			want:    []Segment{seg(mar2(9, 30), mar2(9, 30).Add(time.Nanosecond), DesiredState{})},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tl := c.plan()
			checkTimeline(t, tl, c.want)
			if len(c.want) > 0 {
				checkShape(t, tl, c.want[0].From.UTC(), c.want[len(c.want)-1].To.UTC())
			}
		})
	}
}

// TestKindRules checks the state each kind's default rule asks of every target.
func TestKindRules(t *testing.T) {
	from, to := mar2(9, 0), mar2(10, 0)
	cases := []struct {
		name      string
		events    []Event
		overrides []Override
		now       time.Time
		want      DesiredState
	}{
		{
			name:   "meeting",
			events: []Event{meet("m1", from, to)},
			want: DesiredState{Kind: KindMeeting, Cause: "calendar", EventKeys: []string{"c1/primary/m1"}, Until: to,
				SlackStatus:   SlackStatus{Text: "In a meeting", Emoji: ":spiral_calendar_pad:", Expiration: to},
				TeamsPresence: TeamsPresence{Availability: "Busy", Activity: "InACall", Until: to}},
		},
		{
			name:   "scheduled zoom meeting is a meeting",
			events: []Event{{Source: "z1", ID: "88", Type: EventZoomScheduled, Start: from, End: to}},
			want: DesiredState{Kind: KindMeeting, Cause: "zoom", EventKeys: []string{"z1/88"}, Until: to,
				SlackStatus:   SlackStatus{Text: "In a meeting", Emoji: ":spiral_calendar_pad:", Expiration: to},
				TeamsPresence: TeamsPresence{Availability: "Busy", Activity: "InACall", Until: to}},
		},
		{
			name:   "focus",
			events: []Event{typed("f1", EventFocusTime, from, to)},
			want: DesiredState{Kind: KindFocus, Cause: "calendar", EventKeys: []string{"c1/primary/f1"}, Until: to,
				SlackStatus:   SlackStatus{Text: "Focusing", Emoji: ":headphones:", Expiration: to},
				SlackDND:      SlackDND{On: true, Until: to},
				TeamsPresence: TeamsPresence{Availability: "DoNotDisturb", Activity: "Presenting", Until: to}},
		},
		{
			name:      "manual focus",
			overrides: []Override{{ID: "x", Kind: OverrideFocus, Start: from, End: to, Origin: "alexa"}},
			want: DesiredState{Kind: KindManualFocus, Cause: "alexa", Until: to,
				SlackStatus:   SlackStatus{Text: "Focusing", Emoji: ":headphones:", Expiration: to},
				SlackDND:      SlackDND{On: true, Until: to},
				TeamsPresence: TeamsPresence{Availability: "DoNotDisturb", Activity: "Presenting", Until: to}},
		},
		{
			name:   "out of office",
			events: []Event{typed("o1", EventOutOfOffice, from, to)},
			want: DesiredState{Kind: KindOutOfOffice, Cause: "calendar", EventKeys: []string{"c1/primary/o1"}, Until: to,
				SlackStatus:   SlackStatus{Text: "Out of office until 10:00", Emoji: ":palm_tree:", Expiration: to},
				SlackDND:      SlackDND{On: true, Until: to},
				SlackPresence: SlackPresence{Away: true, Until: to},
				TeamsPresence: TeamsPresence{Availability: "Away", Activity: "Away", Until: to},
				TeamsMessage:  TeamsMessage{Text: "Out of office until 10:00", Until: to}},
		},
		{
			name:   "zoom call",
			events: []Event{{Source: "z1", ID: "live", Type: EventZoomLive, Start: from, End: to}},
			want: DesiredState{Kind: KindZoomCall, Cause: "zoom", EventKeys: []string{"z1/live"}, Until: to,
				SlackStatus:   SlackStatus{Text: "On a Zoom call", Emoji: ":video_camera:", Expiration: to},
				TeamsPresence: TeamsPresence{Availability: "Busy", Activity: "InACall", Until: to}},
		},
		{
			name: "outside hours",
			now:  mar2(18, 0),
			want: DesiredState{Kind: KindOutsideHours, Cause: "working hours", Until: utc(2026, 3, 3, 9, 0),
				SlackStatus:   SlackStatus{Text: "Outside working hours", Emoji: ":crescent_moon:", Expiration: utc(2026, 3, 3, 9, 0)},
				SlackPresence: SlackPresence{Away: true, Until: utc(2026, 3, 3, 9, 0)}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := DefaultRules()
			enable(KindOutsideHours)(&r)
			now := c.now
			if now.IsZero() {
				now = from
			}
			tl := Plan(c.events, c.overrides, r, now, time.Hour)
			got := tl.Current().State
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("state:\ngot\n%swant\n%s", fmtSegs([]Segment{{State: got}}), fmtSegs([]Segment{{State: c.want}}))
			}
		})
	}
}

func TestOutsideHoursOffByDefault(t *testing.T) {
	tl := Plan(nil, nil, DefaultRules(), mar2(18, 0), 24*time.Hour)
	checkTimeline(t, tl, []Segment{seg(mar2(18, 0), utc(2026, 3, 3, 18, 0), DesiredState{})})
}

func TestOverridesLatestWins(t *testing.T) {
	// A pause started at 9:00, then "focus" pressed at 9:30: focus wins while it lasts, the pause
	// shows again after it.
	overrides := []Override{
		{ID: "p", Kind: OverridePause, Start: mar2(9, 0), End: mar2(11, 0), Origin: "web"},
		{ID: "f", Kind: OverrideFocus, Start: mar2(9, 30), End: mar2(10, 0), Origin: "slack"},
	}
	tl := Plan(nil, overrides, DefaultRules(), mar2(9, 0), 3*time.Hour)
	checkTimeline(t, tl, []Segment{
		seg(mar2(9, 0), mar2(9, 30), DesiredState{Paused: true, Cause: "web", Until: mar2(11, 0)}),
		seg(mar2(9, 30), mar2(10, 0), focusState(mar2(10, 0), nil, kind(KindManualFocus), cause("slack"))),
		seg(mar2(10, 0), mar2(11, 0), DesiredState{Paused: true, Cause: "web", Until: mar2(11, 0)}),
		seg(mar2(11, 0), mar2(12, 0), DesiredState{}),
	})
}

func TestBackEndsManualFocus(t *testing.T) {
	overrides := []Override{
		{ID: "f", Kind: OverrideFocus, Start: mar2(9, 0), End: mar2(10, 0), Origin: "slack"},
		{ID: "b", Kind: OverrideBack, Start: mar2(9, 20), Origin: "slack"},
	}
	tl := Plan([]Event{meet("m1", mar2(10, 0), mar2(11, 0))}, overrides, DefaultRules(), mar2(9, 10), time.Hour)
	checkTimeline(t, tl, []Segment{
		seg(mar2(9, 10), mar2(9, 20), focusState(mar2(10, 0), nil, kind(KindManualFocus), cause("slack"), statusUntil(mar2(9, 20)), dndUntil(mar2(9, 20)), teamsUntil(mar2(9, 20)))),
		seg(mar2(9, 20), mar2(10, 0), DesiredState{}),
		seg(mar2(10, 0), mar2(10, 10), meetingState(mar2(11, 0), keys("m1"))),
	})
}

func TestNextBoundaryAndAt(t *testing.T) {
	events := []Event{typed("f1", EventFocusTime, mar2(9, 0), mar2(10, 0))}
	overrides := []Override{{ID: "x", Kind: OverrideFocus, Start: mar2(10, 0), End: mar2(11, 0), Origin: "web"}}

	// Calendar focus then manual focus: the kind and cause change at 10:00 but no target does.
	tl := Plan(events, overrides, DefaultRules(), mar2(8, 0), 12*time.Hour)
	checkTimeline(t, tl, []Segment{
		seg(mar2(8, 0), mar2(9, 0), DesiredState{}),
		seg(mar2(9, 0), mar2(10, 0), focusState(mar2(10, 0), keys("f1"), statusUntil(mar2(11, 0)), dndUntil(mar2(11, 0)), teamsUntil(mar2(11, 0)))),
		seg(mar2(10, 0), mar2(11, 0), focusState(mar2(11, 0), nil, kind(KindManualFocus), cause("web"))),
		seg(mar2(11, 0), mar2(20, 0), DesiredState{}),
	})
	if got, ok := tl.NextBoundary(); !ok || !got.Equal(mar2(9, 0)) {
		t.Errorf("NextBoundary at 8:00 = %s, %v; want 09:00", fmtTime(got), ok)
	}
	if got, want := tl.Boundaries(), []time.Time{mar2(9, 0), mar2(10, 0), mar2(11, 0)}; !reflect.DeepEqual(got, want) {
		t.Errorf("Boundaries = %v, want %v", got, want)
	}

	tl = Plan(events, overrides, DefaultRules(), mar2(9, 0), 12*time.Hour)
	if got, ok := tl.NextBoundary(); !ok || !got.Equal(mar2(11, 0)) {
		t.Errorf("NextBoundary at 9:00 = %s, %v; want 11:00 (10:00 changes no target)", fmtTime(got), ok)
	}
	if got := tl.Current(); !got.From.Equal(mar2(9, 0)) || got.State.Kind != KindFocus {
		t.Errorf("Current = [%s, %s) %q, want the calendar focus from 09:00", fmtTime(got.From), fmtTime(got.To), got.State.Kind)
	}

	at := []struct {
		t    time.Time
		ok   bool
		kind Kind
		from time.Time
	}{
		{mar2(8, 59), false, "", time.Time{}},
		{mar2(9, 0), true, KindFocus, mar2(9, 0)},
		{mar2(9, 59), true, KindFocus, mar2(9, 0)},
		{mar2(10, 0), true, KindManualFocus, mar2(10, 0)}, // a boundary belongs to the later segment
		{mar2(10, 30), true, KindManualFocus, mar2(10, 0)},
		{mar2(11, 0), true, KindNone, mar2(11, 0)},
		{mar2(20, 59), true, KindNone, mar2(11, 0)},
		{mar2(21, 0), false, "", time.Time{}}, // the end of the timeline is outside it
	}
	for _, c := range at {
		s, ok := tl.At(c.t)
		if ok != c.ok || s.State.Kind != c.kind || !s.From.Equal(c.from) {
			t.Errorf("At(%s) = [%s, %s) %q, %v; want from %s %q, %v", fmtTime(c.t), fmtTime(s.From), fmtTime(s.To), s.State.Kind, ok, fmtTime(c.from), c.kind, c.ok)
		}
	}

	// Nothing planned: no boundary.
	tl = Plan(nil, nil, DefaultRules(), mar2(8, 0), 12*time.Hour)
	if got, ok := tl.NextBoundary(); ok {
		t.Errorf("NextBoundary of an empty day = %s, want none", fmtTime(got))
	}
	if got := tl.Boundaries(); len(got) != 0 {
		t.Errorf("Boundaries of an empty day = %v, want none", got)
	}

	// A pause changes no target value but is a boundary: the reconciler must stop.
	tl = Plan(nil, []Override{{Kind: OverridePause, Start: mar2(12, 0), End: mar2(13, 0)}}, DefaultRules(), mar2(8, 0), 12*time.Hour)
	if got, ok := tl.NextBoundary(); !ok || !got.Equal(mar2(12, 0)) {
		t.Errorf("NextBoundary before a pause = %s, %v; want 12:00", fmtTime(got), ok)
	}

	var empty Timeline
	if _, ok := empty.At(mar2(8, 0)); ok {
		t.Errorf("At on an empty timeline found a segment")
	}
	if got := empty.Current(); !reflect.DeepEqual(got, Segment{}) {
		t.Errorf("Current of an empty timeline = %+v", got)
	}
}

func TestFormatUntil(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 3, 9, 0, 0, 0, berlin)
	cases := []struct {
		name string
		end  time.Time
		want string
	}{
		{"same day", time.Date(2026, 12, 3, 15, 30, 0, 0, berlin), "15:30"},
		{"midnight", time.Date(2026, 12, 4, 0, 0, 0, 0, berlin), "Fri 4 Dec"},
		{"another day", time.Date(2026, 12, 4, 15, 30, 0, 0, berlin), "Fri 4 Dec 15:30"},
		{"same instant in UTC, another local day", time.Date(2026, 12, 3, 23, 30, 0, 0, time.UTC), "Fri 4 Dec 00:30"},
		{"UTC midnight is not a local midnight", time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), "Fri 4 Dec 01:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := FormatUntil(c.end, from, berlin); got != c.want {
				t.Errorf("FormatUntil(%s) = %q, want %q", c.end, got, c.want)
			}
		})
	}
}

func TestCapRunes(t *testing.T) {
	cases := []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"🌴🌴🌴🌴", 2, "🌴🌴"},
		{"éé", 0, ""},
	}
	for _, c := range cases {
		if got := capRunes(c.s, c.n); got != c.want {
			t.Errorf("capRunes(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

func TestDefaultRulesValid(t *testing.T) {
	r := DefaultRules()
	if err := r.Validate(); err != nil {
		t.Fatalf("DefaultRules().Validate() = %v", err)
	}
	for _, k := range RuleKinds {
		if _, ok := r.Kinds[k]; !ok {
			t.Errorf("DefaultRules has no rule for %q", k)
		}
	}
	if r.Kinds[KindOutsideHours].Enabled {
		t.Errorf("outside hours is on by default; want opt-in")
	}
	if len(r.WorkingHours[time.Saturday]) != 0 || len(r.WorkingHours[time.Sunday]) != 0 {
		t.Errorf("default working hours include the weekend")
	}
	if got := r.WorkingHours[time.Wednesday]; !reflect.DeepEqual(got, []Span{{540, 1020}}) {
		t.Errorf("Wednesday = %v, want 09:00–17:00", got)
	}
	// Changing one person's rules leaves the defaults alone.
	r.WorkingHours[time.Monday][0].Start = 0
	r.Kinds[KindMeeting] = KindRule{}
	if d := DefaultRules(); d.WorkingHours[time.Monday][0].Start != 540 || !d.Kinds[KindMeeting].Enabled {
		t.Errorf("DefaultRules shares state between calls")
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Rules)
		want   []string // substrings of the error; none means valid
	}{
		{name: "defaults", change: func(*Rules) {}},
		{name: "empty time zone is UTC", change: func(r *Rules) { r.TimeZone = "" }},
		{name: "IANA zone", change: func(r *Rules) { r.TimeZone = "Europe/Zurich" }},
		{name: "unknown time zone", change: func(r *Rules) { r.TimeZone = "Mars/Olympus_Mons" }, want: []string{`unknown time zone "Mars/Olympus_Mons"`}},
		{name: "Local is not a time zone", change: func(r *Rules) { r.TimeZone = "Local" }, want: []string{`unknown time zone "Local"`}},
		{name: "span to midnight", change: func(r *Rules) { r.WorkingHours[time.Saturday] = []Span{{NewClock(20, 0), NewClock(24, 0)}} }},
		{name: "span past midnight", change: func(r *Rules) { r.WorkingHours[time.Saturday] = []Span{{NewClock(20, 0), NewClock(25, 0)}} },
			want: []string{"working hours on Saturday: span 20:00–25:00 is out of range"}},
		{name: "negative span", change: func(r *Rules) { r.WorkingHours[time.Monday] = []Span{{-10, 60}} },
			want: []string{"working hours on Monday: span -00:10–01:00 is out of range"}},
		{name: "empty span", change: func(r *Rules) { r.WorkingHours[time.Monday] = []Span{{600, 600}} },
			want: []string{"span 10:00–10:00 is out of range"}},
		{name: "overlapping spans", change: func(r *Rules) {
			r.WorkingHours[time.Tuesday] = []Span{{NewClock(13, 0), NewClock(17, 0)}, {NewClock(9, 0), NewClock(13, 30)}}
		}, want: []string{"working hours on Tuesday: spans 09:00–13:30 and 13:00–17:00 overlap"}},
		{name: "touching spans", change: func(r *Rules) {
			r.WorkingHours[time.Tuesday] = []Span{{NewClock(9, 0), NewClock(12, 0)}, {NewClock(12, 0), NewClock(17, 0)}}
		}},
		{name: "Slack text too long", change: func(r *Rules) {
			kr := r.Kinds[KindFocus]
			kr.SlackText = strings.Repeat("x", 101)
			r.Kinds[KindFocus] = kr
		}, want: []string{"focus rule: Slack status text is 101 characters, Slack accepts at most 100"}},
		{name: "Slack text of 100 characters", change: func(r *Rules) {
			kr := r.Kinds[KindFocus]
			kr.SlackText = strings.Repeat("é", 100)
			r.Kinds[KindFocus] = kr
		}},
		{name: "Teams pair not accepted", change: func(r *Rules) {
			kr := r.Kinds[KindMeeting]
			kr.TeamsActivity = "Presenting"
			r.Kinds[KindMeeting] = kr
		}, want: []string{`meeting rule: Teams availability "Busy" with activity "Presenting" is not a pair Teams accepts`}},
		{name: "Teams availability without activity", change: func(r *Rules) {
			kr := r.Kinds[KindMeeting]
			kr.TeamsActivity = ""
			r.Kinds[KindMeeting] = kr
		}, want: []string{`Teams availability "Busy" with activity ""`}},
		{name: "no Teams presence", change: func(r *Rules) {
			kr := r.Kinds[KindMeeting]
			kr.TeamsAvailability, kr.TeamsActivity = "", ""
			r.Kinds[KindMeeting] = kr
		}},
		{name: "unknown kind", change: func(r *Rules) { r.Kinds["lunch"] = KindRule{Enabled: true} }, want: []string{`rule for unknown kind "lunch"`}},
		{name: "manual focus has no rule of its own", change: func(r *Rules) { r.Kinds[KindManualFocus] = KindRule{} }, want: []string{`unknown kind "manual_focus"`}},
		{name: "every problem reported", change: func(r *Rules) {
			r.TimeZone = "Nowhere"
			r.Kinds["lunch"] = KindRule{}
			r.WorkingHours[time.Friday] = []Span{{NewClock(18, 0), NewClock(9, 0)}}
		}, want: []string{`unknown time zone "Nowhere"`, `unknown kind "lunch"`, "working hours on Friday"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := DefaultRules()
			c.change(&r)
			err := r.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLocation(t *testing.T) {
	for _, name := range []string{"", "UTC"} {
		loc, err := Rules{TimeZone: name}.Location()
		if err != nil || loc != time.UTC {
			t.Errorf("Location(%q) = %v, %v; want UTC", name, loc, err)
		}
	}
	loc, err := Rules{TimeZone: "Asia/Kolkata"}.Location()
	if err != nil || loc.String() != "Asia/Kolkata" {
		t.Errorf("Location(Asia/Kolkata) = %v, %v", loc, err)
	}
	loc, err = Rules{TimeZone: "No/Where"}.Location()
	if err == nil || loc != time.UTC {
		t.Errorf("Location(No/Where) = %v, %v; want UTC and an error", loc, err)
	}
}

// TestPlanOddInput checks that odd input never panics and still gives a well-formed timeline.
func TestPlanOddInput(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("X", 3*3600+1800))
	withHours := DefaultRules()
	enable(KindOutsideHours)(&withHours)
	withHours.WorkingHours[time.Monday] = []Span{{-5, 3000}, {600, 500}, {0, 0}, {NewClock(9, 0), NewClock(17, 0)}, {NewClock(12, 0), NewClock(13, 0)}}
	noWork := DefaultRules()
	enable(KindOutsideHours)(&noWork)
	noWork.WorkingHours = [7][]Span{}

	events := []Event{
		{},
		{Start: now, End: now.Add(-time.Hour)},
		{AllDay: true, Type: EventOutOfOffice},
		{AllDay: true, Type: EventOutOfOffice, Start: now, End: now.Add(-48 * time.Hour)},
		{Type: "mystery", Start: now, End: now.Add(time.Hour), Busy: "mystery"},
		{Type: EventZoomLive, Start: now.Add(-time.Hour), End: now.Add(time.Hour)},
		{Type: EventOutOfOffice, Start: now.Add(-400 * 24 * time.Hour), End: now.Add(400 * 24 * time.Hour)},
	}
	overrides := []Override{
		{},
		{Kind: OverrideFocus, Start: now.Add(time.Hour)},
		{Kind: OverrideFocus, Start: now.Add(time.Hour), End: now},
		{Kind: OverrideBack, Start: now.Add(-365 * 24 * time.Hour)},
		{Kind: OverridePause, Start: now.Add(30 * time.Hour)},
		{Kind: OverrideIgnore},
		{Kind: "mystery", Start: now, End: now.Add(time.Hour)},
	}
	rules := []Rules{{}, DefaultRules(), withHours, noWork, {TimeZone: "Bad/Zone", Kinds: map[Kind]KindRule{KindOutsideHours: {Enabled: true}}}}
	horizons := []time.Duration{-time.Hour, 0, time.Nanosecond, time.Minute, 24 * time.Hour, 3 * 365 * 24 * time.Hour}
	for ri, r := range rules {
		for _, h := range horizons {
			for _, evs := range [][]Event{nil, events} {
				for _, ovs := range [][]Override{nil, overrides} {
					name := fmt.Sprintf("rules%d/horizon%s/events%d/overrides%d", ri, h, len(evs), len(ovs))
					tl := Plan(evs, ovs, r, now, h)
					end := now.Add(h).UTC()
					if h <= 0 {
						end = time.Time{}
					}
					t.Run(name, func(t *testing.T) { checkShape(t, tl, now.UTC(), end) })
				}
			}
		}
	}
}

// TestPlanDoesNotModifyInput checks that Plan leaves the caller's slices alone.
func TestPlanDoesNotModifyInput(t *testing.T) {
	events := []Event{meet("b", mar2(10, 0), mar2(11, 0)), meet("a", mar2(9, 0), mar2(10, 30))}
	overrides := []Override{{Kind: OverrideFocus, Start: mar2(12, 0), End: mar2(13, 0)}, {Kind: OverrideFocus, Start: mar2(11, 0), End: mar2(12, 0)}}
	ev, ov := append([]Event(nil), events...), append([]Override(nil), overrides...)
	tl := Plan(events, overrides, DefaultRules(), mar2(8, 0), 12*time.Hour)
	if !reflect.DeepEqual(events, ev) || !reflect.DeepEqual(overrides, ov) {
		t.Errorf("Plan modified its input")
	}
	tl.Segments[1].State.EventKeys[0] = "changed"
	if tl2 := Plan(events, overrides, DefaultRules(), mar2(8, 0), 12*time.Hour); tl2.Segments[1].State.EventKeys[0] != key("a") {
		t.Errorf("segments share event keys between plans")
	}
}

func BenchmarkPlan(b *testing.B) {
	rules := DefaultRules()
	rules.TimeZone = "Europe/Berlin"
	rules.TitleEmoji = true
	enable(KindOutsideHours)(&rules)
	now := mar2(6, 0)
	var events []Event
	for i := range 50 {
		start := now.Add(time.Duration(i) * 25 * time.Minute)
		e := meet(fmt.Sprintf("m%d", i), start, start.Add(time.Duration(15+i%4*15)*time.Minute))
		switch i % 10 {
		case 3:
			e.Type = EventFocusTime
		case 5:
			e.Response = ResponseDeclined
		case 7:
			e.Response = ResponseTentative
		case 8:
			e.Emoji = "🍕"
		case 9:
			e.Type = EventZoomLive
		}
		events = append(events, e)
	}
	events = append(events, allDay("ooo", EventOutOfOffice, utc(2026, 3, 3, 0, 0), utc(2026, 3, 4, 0, 0)))
	overrides := []Override{
		{Kind: OverrideFocus, Start: mar2(14, 0), End: mar2(15, 0), Origin: "slack"},
		{Kind: OverrideIgnore, EventKey: key("m12")},
	}
	b.ReportAllocs()
	for b.Loop() {
		Plan(events, overrides, rules, now, 24*time.Hour)
	}
}
