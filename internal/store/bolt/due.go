package bolt

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
	bbolt "go.etcd.io/bbolt"
)

// Due times are kept in milliseconds since the Unix epoch, like the Redis implementation's
// sorted-set scores, so both backends round the same way.

// dueEntry is one person's due entry. While a worker holds a claim, at equals lease and a
// MarkDue goes into dirty instead of moving at, so no other claim returns the person before
// the lease ends; Complete then keeps the earlier of dirty and the next due time.
type dueEntry struct {
	uid      string
	at       int64 // the due time: the heap's key
	lease    int64 // when held: the lease end of the claim
	dirty    int64 // when hasDirty: the earliest MarkDue during the claim
	held     bool
	hasDirty bool
	index    int // in the heap
}

const (
	flagHeld  = 1 << 0
	flagDirty = 1 << 1
)

func (e *dueEntry) marshal() []byte {
	b := make([]byte, 0, 25)
	b = binary.BigEndian.AppendUint64(b, uint64(e.at))
	b = binary.BigEndian.AppendUint64(b, uint64(e.lease))
	b = binary.BigEndian.AppendUint64(b, uint64(e.dirty))
	var flags byte
	if e.held {
		flags |= flagHeld
	}
	if e.hasDirty {
		flags |= flagDirty
	}
	return append(b, flags)
}

func unmarshalDueEntry(uid string, b []byte) (*dueEntry, error) {
	if len(b) != 25 {
		return nil, fmt.Errorf("due entry of %s: %d bytes, want 25", uid, len(b))
	}
	return &dueEntry{
		uid:      uid,
		at:       int64(binary.BigEndian.Uint64(b[0:8])),
		lease:    int64(binary.BigEndian.Uint64(b[8:16])),
		dirty:    int64(binary.BigEndian.Uint64(b[16:24])),
		held:     b[24]&flagHeld != 0,
		hasDirty: b[24]&flagDirty != 0,
	}, nil
}

// dueHeap is a min-heap of entries by (at, uid).
type dueHeap []*dueEntry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].uid < h[j].uid
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*dueEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// dueIndex is the in-memory mirror of the due bucket. Store.mu guards it.
type dueIndex struct {
	h dueHeap
	m map[string]*dueEntry
}

func newDueIndex() dueIndex { return dueIndex{m: map[string]*dueEntry{}} }

// set inserts e or replaces the entry of e.uid with e's values.
func (d *dueIndex) set(e *dueEntry) {
	if old, ok := d.m[e.uid]; ok {
		idx := old.index
		*old = *e
		old.index = idx
		heap.Fix(&d.h, idx)
		return
	}
	d.m[e.uid] = e
	heap.Push(&d.h, e)
}

func (d *dueIndex) remove(uid string) {
	if e, ok := d.m[uid]; ok {
		heap.Remove(&d.h, e.index)
		delete(d.m, uid)
	}
}

// countUpTo counts entries with at <= limit, visiting only those and their children.
func (d *dueIndex) countUpTo(limit int64) int {
	n := 0
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(d.h) || d.h[i].at > limit {
			continue
		}
		n++
		stack = append(stack, 2*i+1, 2*i+2)
	}
	return n
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// writeDue persists the entries in one transaction; the caller holds s.mu and applies them to
// the mirror only after this succeeds.
func (s *Store) writeDue(ctx context.Context, op string, entries ...*dueEntry) error {
	return s.update(ctx, op, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDue)
		for _, e := range entries {
			if err := b.Put([]byte(e.uid), e.marshal()); err != nil {
				return err
			}
		}
		return nil
	})
}

// MarkDue makes the person due at at, or earlier if they already are. While a claim holds the
// person, the mark is kept for Complete instead.
func (s *Store) MarkDue(ctx context.Context, userID string, at time.Time) error {
	if userID == "" {
		return fmt.Errorf("store/bolt: mark due: %w", need("user ID", userID))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := ms(at)
	e := &dueEntry{uid: userID, at: t}
	if old, ok := s.due.m[userID]; ok {
		cp := *old
		e = &cp
		switch {
		case e.held:
			if e.hasDirty && e.dirty <= t {
				return nil
			}
			e.dirty, e.hasDirty = t, true
		case t < e.at:
			e.at = t
		default:
			return nil
		}
	}
	if err := s.writeDue(ctx, "mark due", e); err != nil {
		return err
	}
	s.due.set(e)
	return nil
}

// ClaimDue claims up to max people due at or before now, earliest first, moving each due time
// to now+lease.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, max int, lease time.Duration) ([]store.Claim, error) {
	if lease < time.Millisecond {
		return nil, fmt.Errorf("store/bolt: claim due: lease %v is shorter than 1ms", lease)
	}
	if max <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, until := ms(now), ms(now.Add(lease))
	var picked []*dueEntry
	for len(s.due.h) > 0 && len(picked) < max && s.due.h[0].at <= n {
		picked = append(picked, heap.Pop(&s.due.h).(*dueEntry))
	}
	updated := make([]*dueEntry, len(picked))
	for i, e := range picked {
		updated[i] = &dueEntry{uid: e.uid, at: until, lease: until, held: true}
	}
	err := s.writeDue(ctx, "claim due", updated...)
	for i, e := range picked {
		if err == nil {
			idx := e.index
			*e = *updated[i]
			e.index = idx
		}
		heap.Push(&s.due.h, e)
	}
	if err != nil {
		return nil, err
	}
	claims := make([]store.Claim, len(picked))
	for i, e := range picked {
		claims[i] = store.Claim{UserID: e.uid, LeaseUntil: fromMS(until)}
	}
	return claims, nil
}

// held returns a copy of the entry of c if c's claim still holds it.
func (s *Store) held(c store.Claim) (*dueEntry, bool) {
	e, ok := s.due.m[c.UserID]
	if !ok || !e.held || e.lease != ms(c.LeaseUntil) {
		return nil, false
	}
	cp := *e
	return &cp, true
}

// ExtendLease pushes a claim's lease to until if the claim is still held; ErrConflict
// otherwise.
func (s *Store) ExtendLease(ctx context.Context, c store.Claim, until time.Time) (store.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.held(c)
	if !ok {
		return store.Claim{}, fmt.Errorf("store/bolt: extend lease of %s: %w", c.UserID, store.ErrConflict)
	}
	e.at, e.lease = ms(until), ms(until)
	if err := s.writeDue(ctx, "extend lease", e); err != nil {
		return store.Claim{}, err
	}
	s.due.set(e)
	return store.Claim{UserID: c.UserID, LeaseUntil: fromMS(e.lease)}, nil
}

// Complete ends a claim and sets the next due time, keeping an earlier MarkDue made during the
// claim. A claim that another claim has replaced (the lease ran out and someone else claimed
// the person) returns ErrConflict and changes nothing; a person whose due entry was removed
// meanwhile stays removed; one removed and marked due again keeps the earlier time.
func (s *Store) Complete(ctx context.Context, c store.Claim, next time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.due.m[c.UserID]
	if !ok {
		return nil
	}
	e, held := s.held(c)
	switch {
	case held:
		e.at, e.held, e.lease = ms(next), false, 0
		if e.hasDirty && e.dirty < e.at {
			e.at = e.dirty
		}
		e.hasDirty, e.dirty = false, 0
	case old.held:
		return fmt.Errorf("store/bolt: complete %s: %w", c.UserID, store.ErrConflict)
	default:
		if ms(next) >= old.at {
			return nil
		}
		cp := *old
		e = &cp
		e.at = ms(next)
	}
	if err := s.writeDue(ctx, "complete", e); err != nil {
		return err
	}
	s.due.set(e)
	return nil
}

// NextDue returns the earliest due time (a held person's is their lease end).
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, fmt.Errorf("store/bolt: next due: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.due.h) == 0 {
		return time.Time{}, false, nil
	}
	return fromMS(s.due.h[0].at), true, nil
}

// DueCount returns how many people have a due entry, and how many are due at or before now.
func (s *Store) DueCount(ctx context.Context, now time.Time) (int, int, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("store/bolt: due count: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.due.m), s.due.countUpTo(ms(now)), nil
}

// RemoveDue removes the person's due entry; a missing one is not an error.
func (s *Store) RemoveDue(ctx context.Context, userID string) error {
	if userID == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.update(ctx, "remove due", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDue).Delete([]byte(userID))
	})
	if err != nil {
		return err
	}
	s.due.remove(userID)
	return nil
}
