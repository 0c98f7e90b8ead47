package presence

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Causes the planner gives for blocks that do not come from an override (whose cause is the
// override's Origin).
const (
	CauseCalendar     = "calendar"
	CauseZoom         = "zoom"
	CauseWorkingHours = "working hours"
)

// outsideHoursLookahead is how far past the horizon the planner looks for the next working span
// when it computes the end of an "outside working hours" block: a week covers every weekday, so
// only a person with no working hours at all sees an outside-hours block end there.
const outsideHoursLookahead = 8 * 24 * time.Hour

// maxPlanDays bounds the number of days of working hours the planner lays out, whatever the
// input, so that odd input (a year-long horizon, an override from long ago) stays cheap.
const maxPlanDays = 400

// Plan turns a person's calendar events, overrides and rules into a timeline of desired states
// over [now, now+horizon). It is pure: the same input gives the same timeline.
//
// The timeline's segments are contiguous, start at now, end at now+horizon, and adjacent
// segments never hold equal states. Every instant in it is in UTC. A horizon of zero or less
// gives a single segment that starts at now and lasts as long as the state at now does.
//
// Which block shows, highest priority first: a manual override (the latest one started wins
// when overrides overlap), a live Zoom call, out of office, focus time, a meeting, outside
// working hours. Declined, cancelled, free and working-elsewhere events never count; tentative
// events count when rules.TentativeCounts; all-day events count only as out of office. Blocks
// of one kind that overlap or touch merge into one; DesiredState.Until is the end of that
// merged block, which may lie beyond the horizon. Each target's own Until (or Expiration) is
// the end of the run of consecutive segments over which that target's value stays the same,
// so that one write with that expiration covers the whole run.
//
// Overrides: when several are in progress, the one that started last decides. A focus override
// without an end lasts until the horizon; a pause without an end lasts until further notice
// (its state has a zero Until); a "back" without an end lasts until the end of the merged
// block that shows at its start (the highest-priority one), and does nothing if none does.
// A focus override counts only while the focus rule is enabled.
//
// Plan never panics on odd input: an unknown time zone is taken as UTC, events that end before
// they start, invalid working spans and overrides that ended before now are left out.
func Plan(events []Event, overrides []Override, rules Rules, now time.Time, horizon time.Duration) Timeline {
	loc, _ := rules.Location() // UTC when unknown; Validate reports it
	p := planner{rules: rules, loc: loc, now: now.UTC()}
	p.horizonEnd = p.now.Add(horizon)
	p.instant = !p.horizonEnd.After(p.now)
	p.minEnd = p.horizonEnd
	if p.instant {
		p.horizonEnd = p.now
		p.minEnd = p.now.Add(time.Nanosecond)
	}
	p.ignoreOverrides(overrides)
	p.eventBlocks(events)
	p.manualFocusBlocks(overrides)
	p.outsideHoursBlocks(overrides)
	p.activeOverrides(overrides)
	return p.timeline()
}

// block is a merged block of one kind.
type block struct {
	kind       Kind
	start, end time.Time
	cause      string
	keys       []string // merged events' keys, by start
	parts      []part   // what was merged
}

// part is one event (or manual focus override) before merging.
type part struct {
	start, end time.Time
	key        string
	cause      string
	emoji      string
}

// activeOverride is a focus, back or pause override that matters to this timeline.
type activeOverride struct {
	kind       OverrideKind
	start, end time.Time
	open       bool // a pause until further notice
	origin     string
	index      int // position in the input, to break ties between equal starts
}

type planner struct {
	rules      Rules
	loc        *time.Location
	now        time.Time
	horizonEnd time.Time // now+horizon; now when instant
	minEnd     time.Time // the earliest end of the timeline: horizonEnd, or just after now
	instant    bool      // horizon ≤ 0: answer for now only

	ignored   map[string]bool
	blocks    []block
	overrides []activeOverride
}

// live reports whether o has not ended before now.
func (p *planner) live(o Override) bool { return o.End.IsZero() || o.End.After(p.now) }

func (p *planner) ignoreOverrides(overrides []Override) {
	for _, o := range overrides {
		if o.Kind == OverrideIgnore && o.EventKey != "" && p.live(o) {
			if p.ignored == nil {
				p.ignored = make(map[string]bool)
			}
			p.ignored[o.EventKey] = true
		}
	}
}

// classify says what kind of block e makes, if any.
func classify(e Event, r Rules) (Kind, bool) {
	if e.Cancelled || e.Response == ResponseDeclined {
		return KindNone, false
	}
	switch e.Busy {
	case BusyFree, BusyWorkingElsewhere:
		return KindNone, false
	}
	if (e.Response == ResponseTentative || e.Busy == BusyTentative) && !r.TentativeCounts {
		return KindNone, false
	}
	if e.Type == EventOutOfOffice || e.Busy == BusyOutOfOffice {
		return KindOutOfOffice, true
	}
	if e.AllDay {
		return KindNone, false
	}
	switch e.Type {
	case EventFocusTime:
		return KindFocus, true
	case EventZoomLive:
		return KindZoomCall, true
	}
	if r.OnlyWithOthers && !e.HasOtherAttendees {
		return KindNone, false
	}
	return KindMeeting, true
}

// span returns the instants e covers, in UTC; an all-day event's dates become midnights in loc.
func span(e Event, loc *time.Location) (start, end time.Time, ok bool) {
	if e.AllDay {
		y, m, d := e.Start.UTC().Date()
		start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		if !e.End.IsZero() {
			ey, em, ed := e.End.UTC().Date()
			end = time.Date(ey, em, ed, 0, 0, 0, 0, loc)
		}
		if !end.After(start) {
			end = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
		}
		return start.UTC(), end.UTC(), true
	}
	if !e.End.After(e.Start) {
		return time.Time{}, time.Time{}, false
	}
	return e.Start.UTC(), e.End.UTC(), true
}

func eventCause(e Event) string {
	switch e.Type {
	case EventZoomLive, EventZoomScheduled:
		return CauseZoom
	}
	return CauseCalendar
}

func (p *planner) eventBlocks(events []Event) {
	byKind := make(map[Kind][]part)
	for _, e := range events {
		if p.ignored[e.Key()] {
			continue
		}
		k, ok := classify(e, p.rules)
		if !ok {
			continue
		}
		if _, on := p.rules.rule(k); !on {
			continue
		}
		start, end, ok := span(e, p.loc)
		if !ok {
			continue
		}
		pt := part{start: start, end: end, key: e.Key(), cause: eventCause(e)}
		if k == KindMeeting && p.rules.TitleEmoji {
			pt.emoji = e.Emoji
		}
		byKind[k] = append(byKind[k], pt)
	}
	for _, k := range []Kind{KindZoomCall, KindOutOfOffice, KindFocus, KindMeeting} {
		p.blocks = append(p.blocks, merge(k, byKind[k])...)
	}
}

func (p *planner) manualFocusBlocks(overrides []Override) {
	if _, on := p.rules.rule(KindManualFocus); !on {
		return
	}
	var parts []part
	for _, o := range overrides {
		if o.Kind != OverrideFocus || !p.live(o) {
			continue
		}
		start, end := o.Start.UTC(), o.End.UTC()
		if o.End.IsZero() {
			end = p.minEnd
		}
		if !end.After(start) {
			continue
		}
		parts = append(parts, part{start: start, end: end, cause: o.Origin})
	}
	p.blocks = append(p.blocks, merge(KindManualFocus, parts)...)
}

// merge merges parts of kind k that overlap or touch into blocks.
func merge(k Kind, parts []part) []block {
	if len(parts) == 0 {
		return nil
	}
	slices.SortFunc(parts, func(a, b part) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		if c := a.end.Compare(b.end); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	var out []block
	for i := 0; i < len(parts); {
		b := block{kind: k, start: parts[i].start, end: parts[i].end, cause: parts[i].cause}
		j := i
		for ; j < len(parts) && !parts[j].start.After(b.end); j++ {
			if parts[j].end.After(b.end) {
				b.end = parts[j].end
			}
			if parts[j].key != "" {
				b.keys = append(b.keys, parts[j].key)
			}
		}
		b.parts = parts[i:j:j]
		out = append(out, b)
		i = j
	}
	return out
}

// outsideHoursBlocks lays out the person's working hours day by day in their time zone and
// adds the time between them as outside-hours blocks.
func (p *planner) outsideHoursBlocks(overrides []Override) {
	if _, on := p.rules.rule(KindOutsideHours); !on {
		return
	}
	from := p.now
	for _, o := range overrides {
		// A "back" without an end needs the block in progress at its start.
		if o.Kind == OverrideBack && o.End.IsZero() && o.Start.Before(from) {
			from = o.Start.UTC()
		}
	}
	if earliest := p.now.Add(-31 * 24 * time.Hour); from.Before(earliest) {
		from = earliest
	}
	to := p.minEnd.Add(outsideHoursLookahead)

	y, m, d := from.In(p.loc).Date()
	var work []part
	for i := -1; i < maxPlanDays; i++ {
		if time.Date(y, m, d+i, 0, 0, 0, 0, p.loc).After(to) {
			break
		}
		// The weekday of the civil date, whatever the zone does at its midnight.
		wd := time.Date(y, m, d+i, 12, 0, 0, 0, time.UTC).Weekday()
		for _, s := range p.rules.WorkingHours[wd] {
			if !s.valid() {
				continue
			}
			start := time.Date(y, m, d+i, int(s.Start)/60, int(s.Start)%60, 0, 0, p.loc).UTC()
			end := time.Date(y, m, d+i, int(s.End)/60, int(s.End)%60, 0, 0, p.loc).UTC()
			if end.After(start) {
				work = append(work, part{start: start, end: end})
			}
		}
	}
	var parts []part
	cursor := from
	for _, w := range merge(KindNone, work) {
		if w.start.After(cursor) {
			parts = append(parts, part{start: cursor, end: w.start, cause: CauseWorkingHours})
		}
		if w.end.After(cursor) {
			cursor = w.end
		}
	}
	if to.After(cursor) {
		parts = append(parts, part{start: cursor, end: to, cause: CauseWorkingHours})
	}
	for _, pt := range parts {
		p.blocks = append(p.blocks, block{kind: KindOutsideHours, start: pt.start, end: pt.end, cause: pt.cause})
	}
}

// top returns the highest-priority block in progress at t.
func (p *planner) top(t time.Time) (*block, bool) {
	var best *block
	for i := range p.blocks {
		b := &p.blocks[i]
		if b.start.After(t) || !b.end.After(t) {
			continue
		}
		if best == nil || Priority(b.kind) > Priority(best.kind) {
			best = b
		}
	}
	return best, best != nil
}

func (p *planner) activeOverrides(overrides []Override) {
	for i, o := range overrides {
		a := activeOverride{kind: o.Kind, start: o.Start.UTC(), end: o.End.UTC(), origin: o.Origin, index: i}
		switch o.Kind {
		case OverrideFocus:
			if _, on := p.rules.rule(KindManualFocus); !on {
				continue
			}
			if o.End.IsZero() {
				a.end = p.minEnd
			}
		case OverrideBack:
			if o.End.IsZero() {
				b, ok := p.top(a.start)
				if !ok {
					continue
				}
				a.end = b.end
			}
		case OverridePause:
			a.open = o.End.IsZero()
		default:
			continue
		}
		if !a.open && (!a.end.After(p.now) || !a.end.After(a.start)) {
			continue
		}
		p.overrides = append(p.overrides, a)
	}
}

// winner returns the override that decides the state at t: the latest started of those in
// progress.
func (p *planner) winner(t time.Time) (*activeOverride, bool) {
	var best *activeOverride
	for i := range p.overrides {
		o := &p.overrides[i]
		if o.start.After(t) || (!o.open && !o.end.After(t)) {
			continue
		}
		if best == nil || o.start.After(best.start) || (o.start.Equal(best.start) && o.index > best.index) {
			best = o
		}
	}
	return best, best != nil
}

// end returns the end of the planner's sweep: the horizon, or the end of the latest block or
// override if later, so that runs that cross the horizon get their true end.
func (p *planner) end() time.Time {
	end := p.minEnd
	for _, b := range p.blocks {
		if b.end.After(end) {
			end = b.end
		}
	}
	for _, o := range p.overrides {
		if !o.open && o.end.After(end) {
			end = o.end
		}
	}
	return end
}

func (p *planner) timeline() Timeline {
	end := p.end()
	for i := range p.overrides {
		if p.overrides[i].open {
			p.overrides[i].end = end
		}
	}

	// Every instant in (now, end) where something may change.
	cuts := []time.Time{p.now, end}
	add := func(t time.Time) {
		if t.After(p.now) && t.Before(end) {
			cuts = append(cuts, t)
		}
	}
	if !p.instant {
		add(p.horizonEnd)
	}
	for _, b := range p.blocks {
		add(b.start)
		add(b.end)
		if b.kind == KindMeeting && p.rules.TitleEmoji {
			for _, pt := range b.parts {
				add(pt.start)
				add(pt.end)
			}
		}
	}
	for _, o := range p.overrides {
		add(o.start)
		add(o.end)
	}
	slices.SortFunc(cuts, time.Time.Compare)
	cuts = slices.CompactFunc(cuts, time.Time.Equal)

	segs := make([]Segment, 0, len(cuts)-1)
	for i := 0; i+1 < len(cuts); i++ {
		segs = append(segs, Segment{From: cuts[i], To: cuts[i+1], State: p.stateAt(cuts[i])})
	}
	setUntils(segs)
	segs = mergeSegments(segs)

	if p.instant {
		return Timeline{Segments: segs[:1]}
	}
	for i := range segs {
		if !segs[i].To.Before(p.horizonEnd) {
			segs[i].To = p.horizonEnd
			segs = segs[:i+1]
			break
		}
	}
	return Timeline{Segments: segs}
}

// stateAt returns the desired state at t, before the per-target Untils are set.
func (p *planner) stateAt(t time.Time) DesiredState {
	if o, ok := p.winner(t); ok {
		switch o.kind {
		case OverridePause:
			s := DesiredState{Paused: true, Cause: o.origin}
			if !o.open {
				s.Until = o.end
			}
			return s
		case OverrideBack:
			return DesiredState{}
		}
		// A focus override: its block is the manual focus block in progress.
	}
	b, ok := p.top(t)
	if !ok {
		return DesiredState{}
	}
	kr, _ := p.rules.rule(b.kind)
	s := DesiredState{
		Kind:      b.kind,
		Cause:     b.cause,
		EventKeys: slices.Clone(b.keys),
		Until:     b.end,
		SlackStatus: SlackStatus{
			Text:  capRunes(p.expand(kr.SlackText, b.end, t), MaxSlackText),
			Emoji: kr.SlackEmoji,
		},
		SlackDND:      SlackDND{On: kr.SlackDND},
		SlackPresence: SlackPresence{Away: kr.SlackAway},
		TeamsPresence: TeamsPresence{Availability: kr.TeamsAvailability, Activity: kr.TeamsActivity},
		TeamsMessage:  TeamsMessage{Text: p.expand(kr.TeamsMessage, b.end, t)},
	}
	if b.kind == KindMeeting && p.rules.TitleEmoji {
		if e := titleEmoji(b.parts, t); e != "" {
			s.SlackStatus.Emoji = e
		}
	}
	return s
}

// titleEmoji returns the emoji of the latest started meeting in progress at t that has one.
func titleEmoji(parts []part, t time.Time) string {
	var best *part
	for i := range parts {
		pt := &parts[i]
		if pt.emoji == "" || pt.start.After(t) || !pt.end.After(t) {
			continue
		}
		if best == nil || pt.start.After(best.start) {
			best = pt
		}
	}
	if best == nil {
		return ""
	}
	return best.emoji
}

// expand replaces "{until}" in text with the end of a block, as seen at from.
func (p *planner) expand(text string, end, from time.Time) string {
	if !strings.Contains(text, "{until}") {
		return text
	}
	return strings.ReplaceAll(text, "{until}", FormatUntil(end, from, p.loc))
}

// FormatUntil formats end, the end of a block, for a status text read from from on, in loc:
// "Mon 3 Dec" when end is a local midnight (the date of end itself), "15:30" when end falls on
// the same local day as from, "Mon 3 Dec 15:30" otherwise.
func FormatUntil(end, from time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	e, f := end.In(loc), from.In(loc)
	if e.Hour() == 0 && e.Minute() == 0 && e.Second() == 0 && e.Nanosecond() == 0 {
		return e.Format("Mon 2 Jan")
	}
	ey, em, ed := e.Date()
	fy, fm, fd := f.Date()
	if ey == fy && em == fm && ed == fd {
		return e.Format("15:04")
	}
	return e.Format("Mon 2 Jan 15:04")
}

// capRunes cuts s to at most n characters, never inside one.
func capRunes(s string, n int) string {
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}

// setUntils sets every target's Until (Slack status: Expiration) to the end of its run: the
// consecutive segments over which its value stays the same. A zero value keeps a zero Until.
func setUntils(segs []Segment) {
	type status struct{ text, emoji string }
	run(segs, func(s *DesiredState) status { return status{s.SlackStatus.Text, s.SlackStatus.Emoji} },
		func(s *DesiredState, t time.Time) { s.SlackStatus.Expiration = t })
	run(segs, func(s *DesiredState) bool { return s.SlackDND.On },
		func(s *DesiredState, t time.Time) { s.SlackDND.Until = t })
	run(segs, func(s *DesiredState) bool { return s.SlackPresence.Away },
		func(s *DesiredState, t time.Time) { s.SlackPresence.Until = t })
	run(segs, func(s *DesiredState) [2]string {
		return [2]string{s.TeamsPresence.Availability, s.TeamsPresence.Activity}
	}, func(s *DesiredState, t time.Time) { s.TeamsPresence.Until = t })
	run(segs, func(s *DesiredState) string { return s.TeamsMessage.Text },
		func(s *DesiredState, t time.Time) { s.TeamsMessage.Until = t })
}

func run[T comparable](segs []Segment, value func(*DesiredState) T, set func(*DesiredState, time.Time)) {
	var zero T
	for i := 0; i < len(segs); {
		v := value(&segs[i].State)
		j := i + 1
		for j < len(segs) && value(&segs[j].State) == v {
			j++
		}
		if v != zero {
			for k := i; k < j; k++ {
				set(&segs[k].State, segs[j-1].To)
			}
		}
		i = j
	}
}

// mergeSegments merges adjacent segments with equal states.
func mergeSegments(segs []Segment) []Segment {
	out := segs[:0]
	for _, s := range segs {
		if n := len(out); n > 0 && out[n-1].State.equal(s.State) {
			out[n-1].To = s.To
			continue
		}
		out = append(out, s)
	}
	return out
}

func (s DesiredState) equal(o DesiredState) bool {
	return s.Kind == o.Kind && s.Paused == o.Paused && s.Cause == o.Cause &&
		slices.Equal(s.EventKeys, o.EventKeys) && s.Until.Equal(o.Until) && s.sameTargets(o)
}

// sameTargets reports whether s and o ask the same of every target (and both or neither are
// paused).
func (s DesiredState) sameTargets(o DesiredState) bool {
	return s.Paused == o.Paused &&
		s.SlackStatus.Text == o.SlackStatus.Text && s.SlackStatus.Emoji == o.SlackStatus.Emoji &&
		s.SlackStatus.Expiration.Equal(o.SlackStatus.Expiration) &&
		s.SlackDND.On == o.SlackDND.On && s.SlackDND.Until.Equal(o.SlackDND.Until) &&
		s.SlackPresence.Away == o.SlackPresence.Away && s.SlackPresence.Until.Equal(o.SlackPresence.Until) &&
		s.TeamsPresence.Availability == o.TeamsPresence.Availability &&
		s.TeamsPresence.Activity == o.TeamsPresence.Activity &&
		s.TeamsPresence.Until.Equal(o.TeamsPresence.Until) &&
		s.TeamsMessage.Text == o.TeamsMessage.Text && s.TeamsMessage.Until.Equal(o.TeamsMessage.Until)
}

// At returns the segment that holds t, if the timeline covers t.
func (tl Timeline) At(t time.Time) (Segment, bool) {
	i, _ := slices.BinarySearchFunc(tl.Segments, t, func(s Segment, t time.Time) int {
		if !s.To.After(t) {
			return -1
		}
		if s.From.After(t) {
			return 1
		}
		return 0
	})
	if i < len(tl.Segments) && !tl.Segments[i].From.After(t) && tl.Segments[i].To.After(t) {
		return tl.Segments[i], true
	}
	return Segment{}, false
}

// Current returns the segment at the start of the timeline (the "now" it was planned for), or
// a zero Segment for an empty timeline.
func (tl Timeline) Current() Segment {
	if len(tl.Segments) == 0 {
		return Segment{}
	}
	return tl.Segments[0]
}

// NextBoundary returns the first boundary after the start of the timeline where what some
// target should show changes (or automation pauses or resumes): the time the scheduler must
// next act. Boundaries where only the kind, cause or block end change are skipped; the end of
// the timeline is not a boundary.
func (tl Timeline) NextBoundary() (time.Time, bool) {
	for i := 1; i < len(tl.Segments); i++ {
		if !tl.Segments[i].State.sameTargets(tl.Segments[i-1].State) {
			return tl.Segments[i].From, true
		}
	}
	return time.Time{}, false
}

// Boundaries returns every instant inside the timeline where one segment ends and the next
// begins, in order.
func (tl Timeline) Boundaries() []time.Time {
	if len(tl.Segments) < 2 {
		return nil
	}
	out := make([]time.Time, 0, len(tl.Segments)-1)
	for _, s := range tl.Segments[1:] {
		out = append(out, s.From)
	}
	return out
}
