package presence

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	// The planner's answers depend on the IANA time zone database; embed it so that a
	// container image without /usr/share/zoneinfo plans the same as a developer's machine.
	_ "time/tzdata"
)

// MaxSlackText is the longest Slack status text, in characters, Slack accepts.
const MaxSlackText = 100

// DefaultRules are the rules of a person who has not changed anything: UTC, Monday to Friday
// 09:00–17:00, tentative events count, every kind on except "outside working hours" (opt-in).
func DefaultRules() Rules {
	workday := []Span{{Start: NewClock(9, 0), End: NewClock(17, 0)}}
	var hours [7][]Span
	for d := time.Monday; d <= time.Friday; d++ {
		hours[d] = slices.Clone(workday)
	}
	return Rules{
		TimeZone:        "UTC",
		WorkingHours:    hours,
		TentativeCounts: true,
		OnlyWithOthers:  false,
		TitleEmoji:      false,
		LeaveOwnStatus:  true,
		Kinds: map[Kind]KindRule{
			KindMeeting: {
				Enabled:           true,
				SlackText:         "In a meeting",
				SlackEmoji:        ":spiral_calendar_pad:",
				TeamsAvailability: "Busy",
				TeamsActivity:     "InACall",
			},
			KindFocus: {
				Enabled:           true,
				SlackText:         "Focusing",
				SlackEmoji:        ":headphones:",
				SlackDND:          true,
				TeamsAvailability: "DoNotDisturb",
				TeamsActivity:     "Presenting",
			},
			KindOutOfOffice: {
				Enabled:           true,
				SlackText:         "Out of office until {until}",
				SlackEmoji:        ":palm_tree:",
				SlackDND:          true,
				SlackAway:         true,
				TeamsAvailability: "Away",
				TeamsActivity:     "Away",
				TeamsMessage:      "Out of office until {until}",
			},
			KindZoomCall: {
				Enabled:           true,
				SlackText:         "On a Zoom call",
				SlackEmoji:        ":video_camera:",
				TeamsAvailability: "Busy",
				TeamsActivity:     "InACall",
			},
			KindOutsideHours: {
				Enabled:    false,
				SlackText:  "Outside working hours",
				SlackEmoji: ":crescent_moon:",
				SlackAway:  true,
			},
		},
	}
}

// String formats c as "15:04" ("24:00" for the end of the day).
func (c Clock) String() string {
	if c < 0 {
		return fmt.Sprintf("-%02d:%02d", int(-c)/60, int(-c)%60)
	}
	return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60)
}

// valid reports whether s is a non-empty span within one day.
func (s Span) valid() bool { return s.Start >= 0 && s.End <= 24*60 && s.Start < s.End }

// Validate reports every problem with r, joined: an unknown time zone, working spans out of
// range or overlapping, a rule for an unknown kind, a Slack text longer than MaxSlackText
// characters, or a Teams availability/activity pair Graph does not accept. Plan copes with
// rules that fail Validate (see Plan), but a settings page should refuse them.
func (r Rules) Validate() error {
	var errs []error
	if _, err := r.Location(); err != nil {
		errs = append(errs, err)
	}
	for d, spans := range r.WorkingHours {
		day := time.Weekday(d)
		for _, s := range spans {
			if !s.valid() {
				errs = append(errs, fmt.Errorf("presence: working hours on %s: span %s–%s is out of range (want 00:00 ≤ start < end ≤ 24:00)", day, s.Start, s.End))
			}
		}
		sorted := slices.Clone(spans)
		slices.SortFunc(sorted, func(a, b Span) int { return int(a.Start - b.Start) })
		for i := 1; i < len(sorted); i++ {
			if sorted[i].Start < sorted[i-1].End {
				errs = append(errs, fmt.Errorf("presence: working hours on %s: spans %s–%s and %s–%s overlap", day, sorted[i-1].Start, sorted[i-1].End, sorted[i].Start, sorted[i].End))
			}
		}
	}
	kinds := make([]Kind, 0, len(r.Kinds))
	for k := range r.Kinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		kr := r.Kinds[k]
		if !slices.Contains(RuleKinds, k) {
			errs = append(errs, fmt.Errorf("presence: rule for unknown kind %q (want one of %v)", k, RuleKinds))
			continue
		}
		if n := utf8.RuneCountInString(kr.SlackText); n > MaxSlackText {
			errs = append(errs, fmt.Errorf("presence: %s rule: Slack status text is %d characters, Slack accepts at most %d", k, n, MaxSlackText))
		}
		if kr.TeamsAvailability != "" || kr.TeamsActivity != "" {
			pair := [2]string{kr.TeamsAvailability, kr.TeamsActivity}
			if !slices.Contains(TeamsPairs, pair) {
				errs = append(errs, fmt.Errorf("presence: %s rule: Teams availability %q with activity %q is not a pair Teams accepts (want one of %v)", k, kr.TeamsAvailability, kr.TeamsActivity, TeamsPairs))
			}
		}
	}
	return errors.Join(errs...)
}

// Location returns the person's time zone. An empty TimeZone is UTC. For a name the time zone
// database does not know (or "Local", which would depend on the server), it returns UTC and an
// error, so a caller may fall back to UTC as Plan does.
func (r Rules) Location() (*time.Location, error) {
	switch r.TimeZone {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return time.UTC, fmt.Errorf("presence: unknown time zone %q: want an IANA name such as \"Europe/Zurich\"", r.TimeZone)
	}
	if loc, ok := locations.Load(r.TimeZone); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		return time.UTC, fmt.Errorf("presence: unknown time zone %q: %w", r.TimeZone, err)
	}
	locations.Store(r.TimeZone, loc)
	return loc, nil
}

// locations caches loaded time zones by name: time.LoadLocation reads and parses the zone
// file on every call, and Plan runs for every user at every boundary.
var locations sync.Map // string → *time.Location

// rule returns the rule that applies to a block of kind k, and whether it is enabled.
func (r Rules) rule(k Kind) (KindRule, bool) {
	kr, ok := r.Kinds[k.RuleKind()]
	return kr, ok && kr.Enabled
}
