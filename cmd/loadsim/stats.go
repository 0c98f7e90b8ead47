package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
)

// debugOut, when set (LOADSIM_DEBUG=1), gets the blocks with more than one write per target.
var debugOut io.Writer

// Targets a Slack write is for.
const (
	targetStatus uint8 = iota
	targetDND
	targetPresence
	numTargets
)

var targetNames = [numTargets]string{"status", "dnd", "presence"}

// slackWriteTarget maps a Slack write method to its target.
var slackWriteTarget = map[string]uint8{
	"users.profile.set": targetStatus,
	"dnd.setSnooze":     targetDND,
	"dnd.endSnooze":     targetDND,
	"dnd.endDnd":        targetDND,
	"users.setPresence": targetPresence,
}

// writeRec is one successful write as the fake Slack received it.
type writeRec struct {
	person  int32
	target  uint8
	changed bool
	at      int64 // UnixNano of the fake's clock when it received the write
}

// stats counts what the fakes received, from their OnCall hooks (never from what the
// scheduler thinks it did). Counting is on only between start and stop.
type stats struct {
	on atomic.Bool

	mu          sync.Mutex
	slackCalls  map[string]int
	slack429    int
	slack429By  map[string]int
	first429    []first429
	slackErrors map[string]int // other refusals, by error code
	googleCalls map[string]int
	google429   int // 429 and 403 rate-limit answers
	writes      []writeRec
}

func newStats() *stats {
	return &stats{slackCalls: map[string]int{}, slack429By: map[string]int{}, slackErrors: map[string]int{}, googleCalls: map[string]int{}}
}

func (s *stats) slackCall(c slackfake.Call) {
	if !s.on.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slackCalls[c.Method]++
	switch {
	case c.Status == http.StatusTooManyRequests:
		s.slack429++
		s.slack429By[c.Method]++
		if len(s.first429) < 10 {
			s.first429 = append(s.first429, first429{c.Time, c.Method, c.Team, c.User})
		}
		return
	case c.Status != http.StatusOK || c.Error != "":
		s.slackErrors[c.Method+":"+c.Error]++
		return
	}
	t, ok := slackWriteTarget[c.Method]
	if !ok {
		return
	}
	s.writes = append(s.writes, writeRec{person: int32(personIndex(c.User)), target: t, changed: c.Changed, at: c.Time.UnixNano()})
}

func (s *stats) googleCall(c googlefake.Call) {
	if !s.on.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.googleCalls[c.Endpoint]++
	if c.Status == http.StatusTooManyRequests || (c.Status == http.StatusForbidden && c.Endpoint != googlefake.EndpointToken) {
		s.google429++
	}
}

type first429 struct {
	at                 time.Time
	method, team, user string
}

// personIndex reads the index out of a Slack user ID "U%08d".
func personIndex(user string) int {
	if len(user) < 2 {
		return -1
	}
	n, err := strconv.Atoi(user[1:])
	if err != nil {
		return -1
	}
	return n
}

// rates are the limits, per target and per workspace, that writes are booked against, and the
// deployment's own pace: they say how many writes the limits allow around one boundary.
type capacity struct {
	perWorkspace map[string]time.Duration // Slack method → interval of one request
	self         time.Duration            // the deployment's own pace (0: none)
	profileUser  time.Duration            // one person's status writes
	lead         time.Duration
}

// lagReport is what the analysis of the writes found.
type lagReport struct {
	Writes    int     `json:"writes"`
	Redundant int     `json:"redundant"`
	N         int     `json:"lag_n"` // writes within what the limits allow at the boundary
	P50       float64 `json:"lag_p50"`
	P99       float64 `json:"lag_p99"`
	Max       float64 `json:"lag_max"`
	Min       float64 `json:"lag_min"` // most negative: the earliest lead
	Spilled   int     `json:"spilled"` // writes beyond what the limits allow at the boundary
	SpillP99  float64 `json:"spill_p99"`
	SpillMax  float64 `json:"spill_max"`
	// Unattributed writes came before the window's first transition.
	Unattributed int `json:"unattributed"`
	// ChangeWrites are writes for a calendar change (its time, or a cancelled or moved
	// event's old times) rather than for a block of the final calendar.
	ChangeWrites int `json:"change_writes"`

	PerBlockMax  map[string]int     `json:"per_block_max"`
	PerBlockMean map[string]float64 `json:"per_block_mean"`
}

// analyse attributes each write to the person's latest transition at or before the write time
// + lead (the writes of our scheduler may lead their boundary; the reference poller's never
// do, lead 0) and measures lag = receive time − that transition: negative when the write came
// ahead of the boundary. Writes the limits do not allow at the boundary (beyond capacity, in
// receive order, per workspace and method and for the deployment's own pace) are reported
// apart. Only transitions in [from, to) count; earlier writes are unattributed.
func analyse(people []*simPerson, writes []writeRec, lead time.Duration, cap capacity, methodOf func(writeRec) string, from, to time.Time) lagReport {
	r := lagReport{Writes: len(writes), PerBlockMax: map[string]int{}, PerBlockMean: map[string]float64{}}
	type attributed struct {
		w     writeRec
		trans int64
	}
	var atts []attributed
	for _, w := range writes {
		if !w.changed {
			r.Redundant++
		}
		if w.person < 0 || int(w.person) >= len(people) {
			r.Unattributed++
			continue
		}
		p := people[w.person]
		limit := w.at + int64(lead)
		i := sort.Search(len(p.transitions), func(i int) bool { return p.transitions[i].UnixNano() > limit }) - 1
		if i < 0 || p.transitions[i].Before(from) || !p.transitions[i].Before(to) {
			r.Unattributed++
			continue
		}
		atts = append(atts, attributed{w, p.transitions[i].UnixNano()})
	}
	// Capacity: what an ideal schedule of the same limits could place in [b−lead, b+1s].
	// Boundaries are taken in time order; at each, every person's writes for it, in the
	// order they were received, are booked together, as the scheduler books them: one time
	// free in every limit they count against (their workspace's methods, the person's own
	// profile limit for a status, the deployment's own pace), the latest in the window, else
	// the earliest after it (where it takes room from later boundaries, as a real spill
	// does). Writes booked within the window are within the limits.
	slices.SortFunc(atts, func(a, b attributed) int {
		if a.trans != b.trans {
			return cmpInt(a.trans, b.trans)
		}
		return cmpInt(a.w.at, b.w.at)
	})
	book := newSlotBook()
	inWindow := map[[2]int64]bool{} // boundary, person → booked within the window
	for i := 0; i < len(atts); {
		b := atts[i].trans
		j := i
		for j < len(atts) && atts[j].trans == b {
			j++
		}
		seen := map[int32]bool{}
		for _, a := range atts[i:j] {
			if seen[a.w.person] {
				continue
			}
			seen[a.w.person] = true
			p := people[a.w.person]
			var keys []string
			var every []time.Duration
			add := func(k string, e time.Duration) {
				if e > 0 && !slices.Contains(keys, k) {
					keys, every = append(keys, k), append(every, e)
				}
			}
			for _, o := range atts[i:j] {
				if o.w.person != a.w.person {
					continue
				}
				m := methodOf(o.w)
				add(p.team+"/"+m, cap.perWorkspace[m])
				if m == "users.profile.set" {
					add("user/"+p.id, cap.profileUser)
				}
			}
			add("self", cap.self)
			inWindow[[2]int64{b, int64(a.w.person)}] = book.reserve(keys, every, b-int64(cap.lead), b+int64(time.Second))
		}
		i = j
	}
	var lags, spills []float64
	blockWrites := map[[3]int64]int{} // person, target, block start → writes
	for _, a := range atts {
		p := people[a.w.person]
		lag := float64(a.w.at-a.trans) / 1e9
		if inWindow[[2]int64{a.trans, int64(a.w.person)}] {
			lags = append(lags, lag)
			if debugOut != nil && lag > 1 {
				fmt.Fprintf(debugOut, "late write within the limits: person %d (%s) %s at %s for %s; events %v\n", a.w.person, p.team, targetNames[a.w.target],
					time.Unix(0, a.w.at).UTC().Format("15:04:05.000"), time.Unix(0, a.trans).UTC().Format("15:04:05"), p.changeLog)
			}
		} else {
			spills = append(spills, lag)
		}
		if blk, ok := p.blockOf(a.trans); ok {
			blockWrites[[3]int64{int64(a.w.person), int64(a.w.target), blk}]++
		} else {
			r.ChangeWrites++
		}
	}
	r.N, r.Spilled = len(lags), len(spills)
	if len(lags) > 0 {
		slices.Sort(lags)
		r.P50, r.P99, r.Max, r.Min = quantile(lags, 0.5), quantile(lags, 0.99), lags[len(lags)-1], lags[0]
	}
	if len(spills) > 0 {
		slices.Sort(spills)
		r.SpillP99, r.SpillMax = quantile(spills, 0.99), spills[len(spills)-1]
	}
	if debugOut != nil {
		shown := 0
		for k, c := range blockWrites {
			if c <= 1 || shown >= 10 {
				continue
			}
			shown++
			p := people[k[0]]
			var at []string
			for _, a := range atts {
				if blk, ok := p.blockOf(a.trans); ok && int64(a.w.person) == k[0] && int64(a.w.target) == k[1] && blk == k[2] {
					at = append(at, time.Unix(0, a.w.at).UTC().Format("15:04:05.000"))
				}
			}
			var evs []string
			for _, e := range p.events {
				evs = append(evs, e.kind+" "+e.start.Format("15:04")+"-"+e.end.Format("15:04"))
			}
			fmt.Fprintf(debugOut, "%d %s writes for person %d block %s at %v; events %v; changes %v\n", c, targetNames[k[1]], k[0],
				time.Unix(0, k[2]).UTC().Format("15:04:05"), at, evs, p.changeLog)
		}
	}
	sum := map[string]int{}
	n := map[string]int{}
	for k, c := range blockWrites {
		name := targetNames[k[1]]
		sum[name] += c
		n[name]++
		if c > r.PerBlockMax[name] {
			r.PerBlockMax[name] = c
		}
	}
	for name, c := range n {
		r.PerBlockMean[name] = float64(sum[name]) / float64(c)
	}
	return r
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// slotBook is the ideal schedule of analyse: per limit, the slots taken, with "nearest free
// slot below / above" pointers (path-compressed) so that a crowd at one boundary is booked in
// near-linear time.
type slotBook struct {
	below map[string]map[int64]int64 // taken slot → a slot below it that may be free
	above map[string]map[int64]int64
}

func newSlotBook() *slotBook {
	return &slotBook{below: map[string]map[int64]int64{}, above: map[string]map[int64]int64{}}
}

func find(m map[int64]int64, s int64) int64 {
	root := s
	for {
		n, taken := m[root]
		if !taken {
			break
		}
		root = n
	}
	for s != root {
		n := m[s]
		m[s] = root
		s = n
	}
	return root
}

// reserve books one time free in every limit (key, one request per every) for a window
// [lo, hi] (ns): the latest such time in it, else the earliest after it; it reports whether
// the time is in the window.
func (sb *slotBook) reserve(keys []string, every []time.Duration, lo, hi int64) bool {
	if len(keys) == 0 {
		return true
	}
	below := make([]map[int64]int64, len(keys))
	above := make([]map[int64]int64, len(keys))
	for i, k := range keys {
		if sb.below[k] == nil {
			sb.below[k], sb.above[k] = map[int64]int64{}, map[int64]int64{}
		}
		below[i], above[i] = sb.below[k], sb.above[k]
	}
	take := func(t int64) {
		for i, e := range every {
			s := floorDiv(t, int64(e))
			below[i][s], above[i][s] = s-1, s+1
		}
	}
	// Down from hi.
	for t := hi; t >= lo; {
		next := t
		for i, e := range every {
			s := floorDiv(t, int64(e))
			if f := find(below[i], s); f != s {
				if end := (f+1)*int64(e) - 1; end < next {
					next = end
				}
			}
		}
		if next == t {
			take(t)
			return true
		}
		t = next
	}
	// Up from hi.
	for t := hi + 1; ; {
		next := t
		for i, e := range every {
			s := floorDiv(t, int64(e))
			if f := find(above[i], s); f != s {
				if start := f * int64(e); start > next {
					next = start
				}
			}
		}
		if next == t {
			take(t)
			return false
		}
		t = next
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// slackMethod guesses the method of a write from its target, for the capacity ranking (the
// snooze's end and start share the snooze limit closely enough).
func slackMethod(w writeRec) string {
	switch w.target {
	case targetDND:
		return "dnd.setSnooze"
	case targetPresence:
		return "users.setPresence"
	default:
		return "users.profile.set"
	}
}

// finish sets the person's transitions (sorted, unique: every start and end of every version
// of every event, and the time of every change) and blocks (the busy intervals of the final
// calendar, after every change: events of one kind that overlap or touch merged, as the planner
// merges them).
func (p *simPerson) finish(extra []time.Time, final []simEvent) {
	var ts []time.Time
	for _, e := range p.events {
		ts = append(ts, e.start, e.end)
	}
	ts = append(ts, extra...)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	p.transitions = slices.CompactFunc(ts, func(a, b time.Time) bool { return a.Equal(b) })
	p.changeTimes = extra
	final = slices.Clone(final)
	slices.SortFunc(final, func(a, b simEvent) int { return a.start.Compare(b.start) })
	p.blocks = p.blocks[:0]
	var kinds []string
	for _, e := range final {
		if n := len(p.blocks); n > 0 && kinds[n-1] == e.kind && !e.start.After(p.blocks[n-1][1]) {
			if e.end.After(p.blocks[n-1][1]) {
				p.blocks[n-1][1] = e.end
			}
			continue
		}
		p.blocks = append(p.blocks, [2]time.Time{e.start, e.end})
		kinds = append(kinds, e.kind)
	}
}

// blockOf names the block of the final calendar a transition belongs to (its start): the one
// it starts, else the one it is inside of, else the one it ends. ok is false for a change's time and for a
// transition of no final block (a cancelled or moved event's): writes for those are counted
// as writes for changes.
func (p *simPerson) blockOf(t int64) (int64, bool) {
	for _, c := range p.changeTimes {
		if c.UnixNano() == t {
			return 0, false
		}
	}
	for _, b := range p.blocks {
		if b[0].UnixNano() == t {
			return t, true
		}
	}
	for _, b := range p.blocks {
		if b[0].UnixNano() < t && t < b[1].UnixNano() {
			return b[0].UnixNano(), true
		}
	}
	for _, b := range p.blocks {
		if b[1].UnixNano() == t {
			return b[0].UnixNano(), true
		}
	}
	return 0, false
}
