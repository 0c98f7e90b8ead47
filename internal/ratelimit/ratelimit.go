// Package ratelimit turns providers' rate limits into a schedule (design.md section 7): instead
// of sending writes as fast as they come and meeting 429s, the scheduler books each write into
// the free slots of every limit it counts against, as late as possible but not after the
// boundary it is for. When a boundary burst (everyone's 10:00 meeting) needs more writes than a
// limit allows at once, the writes land in the seconds before the boundary (a bounded lead);
// only when the lead is full do they spill past it.
//
// A limit is a Bucket: one request per Every on Key (a method in a workspace or tenant, a user's
// token, this deployment's own capacity). Slots are fixed: slot i of a bucket is
// [i·Every, (i+1)·Every). A reservation takes, in every bucket it names, the slot that holds its
// time, so that no bucket ever admits more than one request per Every: conforming to a sliding
// window or token bucket of the same rate whatever the phase. Reservations are idempotent per
// owner: asking again for the same owner gives the same time.
//
// Two implementations: Memory for one process (the embedded store) and Redis, where one Lua
// script searches and books atomically, so every replica shares the same schedule.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bucket is one rate limit: at most one request per Every on Key.
type Bucket struct {
	Key   string
	Every time.Duration
}

// Schedule books requests into the slots of their buckets.
type Schedule interface {
	// Reserve books one request for the boundary at, counted against every bucket, and
	// returns when to send it: the latest time in [at−lead, at] (and not before now) whose
	// slot is free in every bucket, or else the earliest time after that. An owner holds one
	// booking: asking again for the same at gives the earlier answer (a person planned twice
	// for one boundary books once); asking for another at (the plan changed) frees the old
	// booking's slots if they are still ahead of now, and books anew.
	Reserve(ctx context.Context, owner string, buckets []Bucket, at time.Time, lead time.Duration, now time.Time) (time.Time, error)
}

// maxSpill bounds how far past its boundary a request is placed: further than this and the
// limits are configured far below the load, which Reserve reports as an error.
const maxSpill = 24 * time.Hour

// ErrFull means no slot was free within maxSpill after the boundary.
var ErrFull = errors.New("ratelimit: no free slot within 24h of the boundary")

// Rate is a limit as operators write it: N requests per Per ("50/1m").
type Rate struct {
	N   int
	Per time.Duration
}

// Every is the spacing of one request.
func (r Rate) Every() time.Duration {
	if r.N <= 0 {
		return 0
	}
	return r.Per / time.Duration(r.N)
}

func (r Rate) String() string { return strconv.Itoa(r.N) + "/" + shortDuration(r.Per) }

func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseRate reads "N/DURATION" ("50/1m", "1500/30s", "20/s", "45/m").
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q is not N/DURATION (like 50/1m)", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count <= 0 {
		return Rate{}, fmt.Errorf("%q: %q is not a positive whole number", s, n)
	}
	per = strings.TrimSpace(per)
	switch per {
	case "s", "m", "h":
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("%q: %q is not a duration like 1m or 30s", s, per)
	}
	if d/time.Duration(count) < time.Millisecond {
		return Rate{}, fmt.Errorf("%q: more than one request per millisecond", s)
	}
	return Rate{N: count, Per: d}, nil
}

// ParseRates reads a comma-separated list of NAME=RATE ("slack.users.profile.set=45/1m,...").
func ParseRates(s string) (map[string]Rate, error) {
	out := map[string]Rate{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not NAME=N/DURATION", item)
		}
		r, err := ParseRate(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = r
	}
	return out, nil
}

// FormatRates writes rates back in ParseRates' syntax, sorted by name.
func FormatRates(rates map[string]Rate) string {
	names := make([]string, 0, len(rates))
	for n := range rates {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + rates[n].String()
	}
	return strings.Join(parts, ",")
}

// ---- the search, shared by Memory and mirrored by the Lua script ----

// slot is the index of the slot of bucket every (µs) that holds t (µs).
func slot(t, every int64) int64 {
	if t >= 0 {
		return t / every
	}
	return -((-t + every - 1) / every)
}

// floorMs and ceilMs round µs to whole milliseconds: the due index keeps milliseconds, so a
// booked time must be one, or rounding it would move it into the next slot.
func floorMs(t int64) int64 { return slot(t, 1000) * 1000 }
func ceilMs(t int64) int64  { return -slot(-t, 1000) * 1000 }

// search finds the time (µs, a whole millisecond) for a request at `at` with lead, not before
// now, given taken(bucket i, slot).
func search(at, lead, now int64, every []int64, taken func(i int, s int64) bool) (int64, bool) {
	lo := max(at-lead, ceilMs(now))
	hi := max(floorMs(at), lo)
	// Down from the boundary to the lead's start: the latest time free in every bucket.
	t := hi
	for t >= lo {
		blocked := false
		next := t
		for i, e := range every {
			if s := slot(t, e); taken(i, s) {
				blocked = true
				// Everything in this slot is taken for bucket i: go below its start.
				if start := floorMs(s*e - 1); start < next {
					next = start
				}
			}
		}
		if !blocked {
			return t, true
		}
		t = next
	}
	// Up from just after: the earliest time free in every bucket.
	t = ceilMs(hi + 1)
	for t <= hi+maxSpill.Microseconds() {
		blocked := false
		next := t
		for i, e := range every {
			if s := slot(t, e); taken(i, s) {
				blocked = true
				if end := ceilMs((s + 1) * e); end > next {
					next = end
				}
			}
		}
		if !blocked {
			return t, true
		}
		t = next
	}
	return 0, false
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func validate(buckets []Bucket) ([]int64, error) {
	// Slots narrower than the due index's millisecond could not be told apart.
	if len(buckets) == 0 {
		return nil, errors.New("ratelimit: no bucket")
	}
	every := make([]int64, len(buckets))
	for i, b := range buckets {
		if b.Key == "" || strings.ContainsAny(b.Key, " \t\n") || b.Every < time.Millisecond {
			return nil, fmt.Errorf("ratelimit: bucket %q needs a key without spaces and an interval of at least 1ms", b.Key)
		}
		every[i] = b.Every.Microseconds()
	}
	return every, nil
}

// ---- Memory ----

// Memory is a Schedule for one process.
type Memory struct {
	mu      sync.Mutex
	buckets map[string]map[int64]struct{} // bucket id → taken slots
	owners  map[string]*booking
	ops     int // reservations since the last prune
}

type booking struct {
	at, placed int64 // µs
	slots      []bucketSlot
}

type bucketSlot struct {
	id   string
	slot int64
}

// memoryKeep is how long past its time a booking is remembered.
const memoryKeep = 2 * time.Hour

// NewMemory returns an empty in-process schedule.
func NewMemory() *Memory {
	return &Memory{buckets: map[string]map[int64]struct{}{}, owners: map[string]*booking{}}
}

func bucketID(b Bucket) string { return b.Key + "@" + strconv.FormatInt(b.Every.Microseconds(), 10) }

// Reserve implements Schedule.
func (m *Memory) Reserve(ctx context.Context, owner string, buckets []Bucket, at time.Time, lead time.Duration, now time.Time) (time.Time, error) {
	every, err := validate(buckets)
	if err != nil {
		return time.Time{}, err
	}
	a, n := micros(at), micros(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	if bk, ok := m.owners[owner]; ok {
		if bk.at == a {
			return time.UnixMicro(bk.placed), nil
		}
		if bk.placed > n {
			m.free(bk)
		}
		delete(m.owners, owner)
	}
	ids := make([]string, len(buckets))
	sets := make([]map[int64]struct{}, len(buckets))
	for i, b := range buckets {
		ids[i] = bucketID(b)
		if sets[i] = m.buckets[ids[i]]; sets[i] == nil {
			sets[i] = map[int64]struct{}{}
			m.buckets[ids[i]] = sets[i]
		}
	}
	t, ok := search(a, max(lead.Microseconds(), 0), n, every, func(i int, s int64) bool {
		_, taken := sets[i][s]
		return taken
	})
	if !ok {
		return time.Time{}, ErrFull
	}
	bk := &booking{at: a, placed: t}
	for i := range buckets {
		s := slot(t, every[i])
		sets[i][s] = struct{}{}
		bk.slots = append(bk.slots, bucketSlot{ids[i], s})
	}
	m.owners[owner] = bk
	if m.ops++; m.ops >= 4096 {
		m.ops = 0
		m.prune(n)
	}
	return time.UnixMicro(t), nil
}

func (m *Memory) free(bk *booking) {
	for _, bs := range bk.slots {
		delete(m.buckets[bs.id], bs.slot)
	}
}

// prune forgets bookings and slots more than memoryKeep before now (µs).
func (m *Memory) prune(now int64) {
	cut := now - memoryKeep.Microseconds()
	for o, bk := range m.owners {
		if bk.placed < cut && bk.at < cut {
			delete(m.owners, o)
		}
	}
	for id, set := range m.buckets {
		e, _ := strconv.ParseInt(id[strings.LastIndexByte(id, '@')+1:], 10, 64)
		for sl := range set {
			if (sl+1)*e < cut {
				delete(set, sl)
			}
		}
		if len(set) == 0 {
			delete(m.buckets, id)
		}
	}
}
