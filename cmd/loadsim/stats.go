package main

import (
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
	slackErrors map[string]int // other refusals, by error code
	googleCalls map[string]int
	google429   int // 429 and 403 rate-limit answers
	writes      []writeRec
}

func newStats() *stats {
	return &stats{slackCalls: map[string]int{}, slackErrors: map[string]int{}, googleCalls: map[string]int{}}
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
	lead         time.Duration
}

// allowed is how many requests of interval every fit in [b−lead, b+1s].
func (c capacity) allowed(every time.Duration) int {
	if every <= 0 {
		return math.MaxInt
	}
	return int((c.lead+time.Second)/every) + 1
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
	// Capacity: rank writes per (boundary, workspace, method) and per (boundary) person by
	// receive time.
	slices.SortFunc(atts, func(a, b attributed) int {
		if a.w.at != b.w.at {
			if a.w.at < b.w.at {
				return -1
			}
			return 1
		}
		return 0
	})
	type groupKey struct {
		trans  int64
		team   string
		method string
	}
	rank := map[groupKey]int{}
	selfRank := map[int64]int{}
	selfSeen := map[[2]int64]bool{}
	var lags, spills []float64
	blockWrites := map[[3]int64]int{} // person, target, block start → writes
	for _, a := range atts {
		p := people[a.w.person]
		lag := float64(a.w.at-a.trans) / 1e9
		m := methodOf(a.w)
		k := groupKey{a.trans, p.team, m}
		ok := rank[k] < cap.allowed(cap.perWorkspace[m])
		rank[k]++
		pk := [2]int64{a.trans, int64(a.w.person)}
		if !selfSeen[pk] {
			selfSeen[pk] = true
			if cap.self > 0 && selfRank[a.trans] >= cap.allowed(cap.self) {
				ok = false
			}
			selfRank[a.trans]++
		}
		if ok {
			lags = append(lags, lag)
		} else {
			spills = append(spills, lag)
		}
		blockWrites[[3]int64{int64(a.w.person), int64(a.w.target), p.blockOf(a.trans)}]++
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

// finish sets the person's transitions (sorted, unique) and blocks (their busy intervals,
// every version of every event merged) from their events and changes.
func (p *simPerson) finish(extra []time.Time) {
	var ts []time.Time
	var spans [][2]time.Time
	for _, e := range p.events {
		ts = append(ts, e.start, e.end)
		spans = append(spans, [2]time.Time{e.start, e.end})
	}
	ts = append(ts, extra...)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	p.transitions = slices.CompactFunc(ts, func(a, b time.Time) bool { return a.Equal(b) })
	slices.SortFunc(spans, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	p.blocks = p.blocks[:0]
	for _, s := range spans {
		if n := len(p.blocks); n > 0 && !s[0].After(p.blocks[n-1][1]) {
			if s[1].After(p.blocks[n-1][1]) {
				p.blocks[n-1][1] = s[1]
			}
			continue
		}
		p.blocks = append(p.blocks, s)
	}
}

// blockOf names the block a transition belongs to (its start), or the transition itself when
// it is in no block (a change between blocks).
func (p *simPerson) blockOf(t int64) int64 {
	for _, b := range p.blocks {
		if b[0].UnixNano() <= t && t <= b[1].UnixNano() {
			return b[0].UnixNano()
		}
	}
	return t
}
