package main

import (
	"math/rand/v2"
	"time"
)

// change is a move or cancellation of one event, made in the fake calendar at a time during
// the run; it reaches our scheduler the way push does (store.RequestSync + Scheduler.Wake) and
// the reference poller at its next poll.
type change struct {
	at       time.Time
	p        *simPerson
	ev       int // index in p.events of the event as first created
	cancel   bool
	newStart time.Time
	newEnd   time.Time
}

// personRand is the person's own random source: the same seed gives the same calendars.
func personRand(seed uint64, p *simPerson) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(p.idx)+1))
}

// dayCalendar generates a busy working day (day is its midnight, UTC, the people's time zone):
//   - 4% are out of office all day (an all-day outOfOffice event);
//   - the others have meetings from 08:00 to 18:00 starting on the hour (45%, 60% in the
//     10–12 and 14–16 peaks) or the half hour (25%), 30 min (55%) or 60 min long, which
//     makes back-to-back blocks; 30% have a two-hour focus block (focusTime) where free;
//   - 8% of meetings are moved by ±30 or +60 min and 4% cancelled, at a time between three
//     hours and two minutes before they start.
func dayCalendar(seed uint64, day time.Time, changes *[]change) func(p *simPerson) []simEvent {
	return func(p *simPerson) []simEvent {
		r := personRand(seed, p)
		if r.Float64() < 0.04 {
			return []simEvent{{start: day, end: day.Add(24 * time.Hour), kind: "ooo"}}
		}
		var evs []simEvent
		busyUntil := time.Time{}
		for t := day.Add(8 * time.Hour); t.Before(day.Add(18 * time.Hour)); t = t.Add(30 * time.Minute) {
			if t.Before(busyUntil) {
				continue
			}
			p0 := 0.25
			if t.Minute() == 0 {
				p0 = 0.45
				if h := t.Hour(); (h >= 10 && h < 12) || (h >= 14 && h < 16) {
					p0 = 0.6
				}
			}
			if r.Float64() >= p0 {
				continue
			}
			d := 30 * time.Minute
			if r.Float64() >= 0.55 {
				d = time.Hour
			}
			evs = append(evs, simEvent{start: t, end: t.Add(d), kind: "meeting"})
			busyUntil = t.Add(d)
		}
		if r.Float64() < 0.3 {
			for _, h := range []int{13, 15, 9} {
				s := day.Add(time.Duration(h) * time.Hour)
				e := s.Add(2 * time.Hour)
				if free(evs, s, e) {
					evs = append(evs, simEvent{start: s, end: e, kind: "focus"})
					break
				}
			}
		}
		if changes != nil {
			n := len(evs)
			for i := 0; i < n; i++ {
				if evs[i].kind != "meeting" {
					continue
				}
				x := r.Float64()
				if x >= 0.12 {
					continue
				}
				lead := 2*time.Minute + time.Duration(r.Int64N(int64(178*time.Minute/time.Second)))*time.Second
				at := evs[i].start.Add(-lead)
				c := change{at: at, p: p, ev: i, cancel: x < 0.04}
				if !c.cancel {
					shift := []time.Duration{-30 * time.Minute, 30 * time.Minute, time.Hour}[r.IntN(3)]
					c.newStart, c.newEnd = evs[i].start.Add(shift), evs[i].end.Add(shift)
				}
				*changes = append(*changes, c)
			}
		}
		return evs
	}
}

func free(evs []simEvent, s, e time.Time) bool {
	for _, ev := range evs {
		if ev.start.Before(e) && s.Before(ev.end) {
			return false
		}
	}
	return true
}

// burstCalendar generates the real-time window: two boundary bursts b1 and b2 = b1 + gap
// (2 min by default), like 10:00 and 10:30 compressed:
//   - 45% have a meeting at b1 (gap long), half of them another at b2 (back to back);
//   - 35% of the others have a meeting at b2 (gap or gap/2 long);
//   - 10% have a focus block from b1 to b2 + gap (status and Do Not Disturb);
//   - 5% of the b2 meetings move by gap/2 and 5% are cancelled, at b1 + gap/4.
func burstCalendar(seed uint64, b1 time.Time, gap time.Duration, changes *[]change) func(p *simPerson) []simEvent {
	b2 := b1.Add(gap)
	return func(p *simPerson) []simEvent {
		r := personRand(seed, p)
		var evs []simEvent
		switch x := r.Float64(); {
		case x < 0.45:
			evs = append(evs, simEvent{start: b1, end: b2, kind: "meeting"})
			if r.Float64() < 0.5 {
				evs = append(evs, simEvent{start: b2, end: b2.Add(gap), kind: "meeting"})
			}
		case x < 0.45+0.55*0.35:
			d := gap / 2
			if r.Float64() < 0.5 {
				d = gap
			}
			evs = append(evs, simEvent{start: b2, end: b2.Add(d), kind: "meeting"})
		case x < 0.45+0.55*0.35+0.10:
			evs = append(evs, simEvent{start: b1, end: b2.Add(gap), kind: "focus"})
		}
		if changes != nil {
			for i, ev := range evs {
				if ev.kind != "meeting" || !ev.start.Equal(b2) {
					continue
				}
				switch x := r.Float64(); {
				case x < 0.05:
					*changes = append(*changes, change{at: b1.Add(gap / 4), p: p, ev: i, cancel: true})
				case x < 0.10:
					*changes = append(*changes, change{at: b1.Add(gap / 4), p: p, ev: i,
						newStart: ev.start.Add(gap / 2), newEnd: ev.end.Add(gap / 2)})
				}
			}
		}
		return evs
	}
}

// recordChanges adds every change to the ground truth: the moved version of each event and the
// time of each change are transitions too, and the final calendar gives the blocks.
func recordChanges(people []*simPerson, changes []change) {
	extra := map[*simPerson][]time.Time{}
	gone := map[*simPerson]map[int]bool{}
	moved := map[*simPerson][]simEvent{}
	for _, c := range changes {
		extra[c.p] = append(extra[c.p], c.at)
		ev := c.p.events[c.ev]
		what := "cancel"
		if !c.cancel {
			what = "move to " + c.newStart.Format("15:04")
		}
		c.p.changeLog = append(c.p.changeLog, c.at.Format("15:04:05")+" "+ev.start.Format("15:04")+"-"+ev.end.Format("15:04")+" "+what)
		if gone[c.p] == nil {
			gone[c.p] = map[int]bool{}
		}
		gone[c.p][c.ev] = true
		if !c.cancel {
			moved[c.p] = append(moved[c.p], simEvent{id: ev.id, start: c.newStart, end: c.newEnd, kind: ev.kind})
		}
	}
	for _, p := range people {
		var final []simEvent
		for i, e := range p.events {
			if !gone[p][i] {
				final = append(final, e)
			}
		}
		final = append(final, moved[p]...)
		p.events = append(p.events, moved[p]...)
		p.finish(extra[p], final)
	}
}
