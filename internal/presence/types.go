// Package presence is the domain of dontinterrupt: calendar events, the person's rules and
// overrides, and the planner that turns them into a timeline of desired states for every target
// (Slack status, Slack Do Not Disturb, Slack presence, Teams presence, Teams status message).
//
// Everything here is pure: no I/O, no clock. Time comes in as arguments.
package presence

import (
	"time"
)

// Kind is the kind of a block of time; rules are chosen per kind.
type Kind string

// The kinds, in the order of their priority (highest first) when blocks overlap; see Priority.
const (
	KindNone         Kind = ""
	KindManualFocus  Kind = "manual_focus" // a focus block started by hand (App Home, Alexa, web)
	KindZoomCall     Kind = "zoom_call"    // a live Zoom call (from webhooks), whatever the calendar says
	KindOutOfOffice  Kind = "out_of_office"
	KindFocus        Kind = "focus" // focus time from a calendar
	KindMeeting      Kind = "meeting"
	KindOutsideHours Kind = "outside_hours"
)

// RuleKinds are the kinds a person configures rules for, in the order a settings page lists them.
// A manual focus block uses the focus rule.
var RuleKinds = []Kind{KindMeeting, KindFocus, KindOutOfOffice, KindZoomCall, KindOutsideHours}

// Priority returns the rank of k: a higher number wins when blocks overlap.
func Priority(k Kind) int {
	switch k {
	case KindManualFocus:
		return 60
	case KindZoomCall:
		return 50
	case KindOutOfOffice:
		return 40
	case KindFocus:
		return 30
	case KindMeeting:
		return 20
	case KindOutsideHours:
		return 10
	}
	return 0
}

// RuleKind is the kind whose rule applies to a block of kind k.
func (k Kind) RuleKind() Kind {
	if k == KindManualFocus {
		return KindFocus
	}
	return k
}

// EventType says what a calendar or Zoom event is, as its source reports it.
type EventType string

const (
	EventDefault       EventType = "default"        // an ordinary event (a meeting, if busy)
	EventOutOfOffice   EventType = "out_of_office"  // Google eventType outOfOffice
	EventFocusTime     EventType = "focus_time"     // Google eventType focusTime
	EventZoomScheduled EventType = "zoom_scheduled" // a scheduled Zoom meeting (counts as a meeting)
	EventZoomLive      EventType = "zoom_live"      // a Zoom call in progress (from webhooks)
)

// Response is the person's own answer to an invitation.
type Response string

const (
	ResponseNone      Response = ""          // no invitation: the person's own event, or the source does not say
	ResponseAccepted  Response = "accepted"  // also Graph "organizer"
	ResponseTentative Response = "tentative" // Google "tentative", Graph "tentativelyAccepted"
	ResponseDeclined  Response = "declined"
	ResponsePending   Response = "needs_action" // Google "needsAction", Graph "notResponded"/"none"
)

// BusyClass is how the event shows the person's time (Google transparency, Graph showAs).
type BusyClass string

const (
	BusyBusy             BusyClass = "busy" // Google opaque (the default), Graph busy
	BusyFree             BusyClass = "free" // Google transparent, Graph free
	BusyTentative        BusyClass = "tentative"
	BusyOutOfOffice      BusyClass = "oof"
	BusyWorkingElsewhere BusyClass = "working_elsewhere"
)

// Event is one calendar (or Zoom) event as the planner needs it. It deliberately has no title,
// description, location or attendee list: those are never stored. Emoji is the leading emoji of
// the title, extracted only when the person enabled the title-emoji rule.
type Event struct {
	// Source names where the event came from: the connection ID, and for calendars the
	// calendar ID after a slash ("c123/primary"). Source and ID together are unique.
	Source string    `json:"source"`
	ID     string    `json:"id"`
	Type   EventType `json:"type,omitempty"`

	// Start and End bound a timed event, End exclusive. For an all-day event (AllDay), only
	// the calendar dates of Start and End in UTC count (End exclusive, as Google gives them):
	// the planner places them at midnight in the person's time zone.
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	AllDay bool      `json:"all_day,omitempty"`

	Cancelled         bool      `json:"cancelled,omitempty"`
	Response          Response  `json:"response,omitempty"`
	Busy              BusyClass `json:"busy,omitempty"` // empty means busy
	HasOtherAttendees bool      `json:"has_other_attendees,omitempty"`
	Emoji             string    `json:"emoji,omitempty"`
}

// Key is the event's unique key, Source + "/" + ID; an ignore override names it.
func (e Event) Key() string { return e.Source + "/" + e.ID }

// OverrideKind is what a manual override does.
type OverrideKind string

const (
	// OverrideFocus is a manual focus block over [Start, End): the highest priority.
	OverrideFocus OverrideKind = "focus"
	// OverrideBack is "I'm back": from Start to End nothing is set, whatever the calendar says,
	// so the person's own status returns. A zero End means "until the end of the block in
	// progress at Start" (a block that starts later is not affected).
	OverrideBack OverrideKind = "back"
	// OverridePause pauses automation over [Start, End): the service sets nothing and the
	// timeline says Paused. A zero End means until further notice.
	OverridePause OverrideKind = "pause"
	// OverrideIgnore ignores one event, named by EventKey.
	OverrideIgnore OverrideKind = "ignore"
)

// Override is a manual decision of the person's: from the Slack App Home, Alexa or the web.
type Override struct {
	ID       string       `json:"id"`
	Kind     OverrideKind `json:"kind"`
	Start    time.Time    `json:"start"`
	End      time.Time    `json:"end,omitzero"`
	EventKey string       `json:"event_key,omitempty"` // for OverrideIgnore
	Origin   string       `json:"origin,omitempty"`    // "slack", "alexa", "web": shown as the reason
}

// Clock is a time of day in minutes after midnight, 0 to 1440.
type Clock int

// NewClock returns the Clock for h:m.
func NewClock(h, m int) Clock { return Clock(h*60 + m) }

// Span is a working span of one day, [Start, End) in the person's local time. End may be 1440
// (midnight at the end of the day).
type Span struct {
	Start Clock `json:"start"`
	End   Clock `json:"end"`
}

// KindRule says what to set on each target while a block of one kind is in progress.
// Text fields may hold "{until}", replaced with the block's end in the person's time zone
// ("15:30" on the same day, "Mon 3 Dec" at a midnight, "Mon 3 Dec 15:30" otherwise).
type KindRule struct {
	Enabled bool `json:"enabled"`

	SlackText  string `json:"slack_text,omitempty"`
	SlackEmoji string `json:"slack_emoji,omitempty"`
	SlackDND   bool   `json:"slack_dnd,omitempty"`
	SlackAway  bool   `json:"slack_away,omitempty"`

	// TeamsAvailability/TeamsActivity must be a pair Graph's setPresence accepts (see
	// TeamsPairs); empty leaves Teams presence alone.
	TeamsAvailability string `json:"teams_availability,omitempty"`
	TeamsActivity     string `json:"teams_activity,omitempty"`
	TeamsMessage      string `json:"teams_message,omitempty"`
}

// TeamsPairs are the availability/activity pairs Graph's setPresence accepts.
var TeamsPairs = [][2]string{
	{"Available", "Available"},
	{"Busy", "InACall"},
	{"Busy", "InAConferenceCall"},
	{"Away", "Away"},
	{"DoNotDisturb", "Presenting"},
}

// Rules are a person's settings: time zone, working hours, event policy and one rule per kind.
type Rules struct {
	// TimeZone is an IANA name ("Europe/Zurich"); empty means UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// WorkingHours holds the working spans of each weekday, indexed by time.Weekday (Sunday
	// first). A day with no spans is not a working day.
	WorkingHours [7][]Span `json:"working_hours"`

	TentativeCounts bool              `json:"tentative_counts"` // tentative events count as meetings
	OnlyWithOthers  bool              `json:"only_with_others"` // meetings count only when others are invited
	TitleEmoji      bool              `json:"title_emoji"`      // use the event title's leading emoji for meetings
	LeaveOwnStatus  bool              `json:"leave_own_status"` // never replace a status the person set by hand
	Kinds           map[Kind]KindRule `json:"kinds"`            // keyed by RuleKinds
}

// Slack and Teams fields of the desired state. A zero value means "nothing of ours here": the
// reconciler clears what it set (or restores the person's own status) and otherwise leaves the
// target alone.

// SlackStatus is the custom status to show; Expiration is when it should clear itself.
type SlackStatus struct {
	Text       string    `json:"text,omitempty"`
	Emoji      string    `json:"emoji,omitempty"`
	Expiration time.Time `json:"expiration,omitzero"`
}

// IsZero reports whether no status is wanted.
func (s SlackStatus) IsZero() bool { return s.Text == "" && s.Emoji == "" }

// SlackDND is a Do Not Disturb snooze until Until.
type SlackDND struct {
	On    bool      `json:"on,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// SlackPresence is the presence to force: Away, or automatic (the zero value).
type SlackPresence struct {
	Away  bool      `json:"away,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// TeamsPresence is an app presence session's availability and activity until Until.
type TeamsPresence struct {
	Availability string    `json:"availability,omitempty"`
	Activity     string    `json:"activity,omitempty"`
	Until        time.Time `json:"until,omitzero"`
}

// TeamsMessage is the Teams status message until Until.
type TeamsMessage struct {
	Text  string    `json:"text,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// DesiredState is what every target should show during one segment of a timeline.
type DesiredState struct {
	Kind   Kind `json:"kind,omitempty"`   // KindNone when nothing is in progress
	Paused bool `json:"paused,omitempty"` // automation paused by the person: touch nothing
	// Cause says why, for the person: "calendar", "zoom", "alexa", "slack", "web",
	// "working hours" (an override's Origin for manual blocks). Never an event title.
	Cause string `json:"cause,omitempty"`
	// EventKeys are the events merged into this block (empty for overrides and working hours).
	EventKeys []string `json:"event_keys,omitempty"`
	// Until is the end of the whole block of this kind (merged), after this segment's To when
	// the same block continues.
	Until time.Time `json:"until,omitzero"`

	SlackStatus   SlackStatus   `json:"slack_status,omitzero"`
	SlackDND      SlackDND      `json:"slack_dnd,omitzero"`
	SlackPresence SlackPresence `json:"slack_presence,omitzero"`
	TeamsPresence TeamsPresence `json:"teams_presence,omitzero"`
	TeamsMessage  TeamsMessage  `json:"teams_message,omitzero"`
}

// Segment is a span [From, To) of a timeline with one desired state.
type Segment struct {
	From  time.Time    `json:"from"`
	To    time.Time    `json:"to"`
	State DesiredState `json:"state"`
}

// Timeline is the planner's answer: contiguous segments from "now" to the horizon, in order.
type Timeline struct {
	Segments []Segment `json:"segments"`
}
