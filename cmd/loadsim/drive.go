package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

// countingStore counts the claims handed out and not yet completed, so that a driver of the
// fake clock knows exactly when no person is being worked on (InFlight alone has a gap
// between a claim and its worker starting).
type countingStore struct {
	store.Store
	outstanding atomic.Int64
	claims      atomic.Int64 // ClaimDue calls

	mu  sync.Mutex
	log []string // the last due-index calls, for the stuck report
}

func (c *countingStore) note(s string) {
	c.mu.Lock()
	c.log = append(c.log, s)
	if len(c.log) > 20 {
		c.log = c.log[len(c.log)-20:]
	}
	c.mu.Unlock()
}

func (c *countingStore) MarkDue(ctx context.Context, userID string, at time.Time) error {
	c.note("mark " + userID + " " + at.Format("15:04:05.000"))
	return c.Store.MarkDue(ctx, userID, at)
}

func (c *countingStore) ClaimDue(ctx context.Context, now time.Time, n int, lease time.Duration) ([]store.Claim, error) {
	c.claims.Add(1)
	claims, err := c.Store.ClaimDue(ctx, now, n, lease)
	c.outstanding.Add(int64(len(claims)))
	c.note(fmt.Sprintf("claim at %s: %d %v", now.Format("15:04:05.000"), len(claims), err))
	return claims, err
}

func (c *countingStore) Complete(ctx context.Context, cl store.Claim, next time.Time) error {
	defer c.outstanding.Add(-1)
	c.note("complete " + cl.UserID + " next " + next.Format("15:04:05.000"))
	return c.Store.Complete(ctx, cl, next)
}

// drivenClock is the scheduler's view of the fake clock: it notes, at each timer Reset, how
// many claims had been made. The loop claims, reads the next due time, computes how long to
// sleep from Now and resets its timer: a driver that moved the clock between the last two
// would leave the loop asleep past a due time. So the driver moves the clock only once the
// timer was reset after the last claim.
type drivenClock struct {
	*clock.Fake
	st         *countingStore
	resetAfter atomic.Int64 // claims made when the timer was last reset
}

func (c *drivenClock) NewTimer(d time.Duration) clock.Timer {
	c.resetAfter.Store(c.st.claims.Load())
	return drivenTimer{c.Fake.NewTimer(d), c}
}

type drivenTimer struct {
	clock.Timer
	c *drivenClock
}

func (t drivenTimer) Reset(d time.Duration) bool {
	n := t.c.st.claims.Load()
	r := t.Timer.Reset(d)
	t.c.resetAfter.Store(n)
	return r
}

// fakeDriver moves the fake clock for a scheduler: only when the loop sleeps until its
// earliest due time and no claim is outstanding does the clock jump, to that due time or to
// the next outside event (a calendar change, a poll), whichever comes first. Lag is then
// measured in simulated time: the time the scheduler's work takes is not in it.
type fakeDriver struct {
	clk    *drivenClock
	st     *countingStore
	sched  *scheduler.Scheduler
	steps  int64
	nudges int64
}

// nudgeUser is a person with no connections: waking them wakes the loop, and their run is a
// no-op.
const nudgeUser = "u-nudge"

// quiet waits until the scheduler sleeps and returns when it wakes next (ok false: never).
//
// One race remains that no outside check can close: a worker's wake-up can make the loop claim
// and compute its sleep from the clock just before the driver moves it, and the timer is then
// set from the new time, past a due person. The driver sees that (the loop asleep past its
// earliest due time) and wakes the loop with a no-op person, without moving the clock.
func (d *fakeDriver) quiet(ctx context.Context) (time.Time, bool, error) {
	spins := 0
	since := time.Now()
	var lost time.Time
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, false, err
		}
		if d.st.outstanding.Load() == 0 && d.sched.InFlight() == 0 && d.clk.resetAfter.Load() == d.st.claims.Load() {
			if deadline, ok := d.clk.NextDeadline(); ok {
				due, dueOK, err := d.st.NextDue(ctx)
				if err != nil {
					return time.Time{}, false, err
				}
				now := d.clk.Now()
				switch {
				case !dueOK:
					return time.Time{}, false, nil
				case due.After(now) && deadline.Equal(due):
					return due, true, nil
				case deadline.After(now) && deadline.Before(due):
					return deadline, true, nil // it wakes early and sleeps again
				case lost.IsZero():
					lost = time.Now()
				case time.Since(lost) > 2*time.Millisecond:
					d.nudges++
					lost = time.Time{}
					if err := d.sched.Wake(ctx, nudgeUser); err != nil {
						return time.Time{}, false, err
					}
				}
			}
		} else {
			lost = time.Time{}
		}
		spins++
		if spins%1000 == 0 && time.Since(since) > 10*time.Second {
			since = time.Now()
			deadline, ok := d.clk.NextDeadline()
			due, dueOK, _ := d.st.NextDue(ctx)
			d.st.mu.Lock()
			fmt.Fprintf(os.Stderr, "last due-index calls:\n  %s\n", strings.Join(d.st.log, "\n  "))
			d.st.mu.Unlock()
			fmt.Fprintf(os.Stderr, "driver stuck? now %s outstanding %d inflight %d timer %v %s due %v %s\n", d.clk.Now().Format("15:04:05.000"), d.st.outstanding.Load(), d.sched.InFlight(), ok, deadline.Format("15:04:05.000"), dueOK, due.Format("15:04:05.000"))
		}
		if spins < 50 {
			continue
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// run drives the clock until until, calling outside(now) for the outside events due by now
// and asking next() when the next one is.
func (d *fakeDriver) run(ctx context.Context, until time.Time, next func() (time.Time, bool), outside func(now time.Time), tick func(now time.Time)) error {
	for {
		due, ok, err := d.quiet(ctx)
		if err != nil {
			return err
		}
		target := until
		if ok && due.Before(target) {
			target = due
		}
		if t, ok := next(); ok && t.Before(target) {
			target = t
		}
		if !target.After(d.clk.Now()) {
			if !target.Before(until) {
				return nil
			}
		}
		d.clk.Set(target)
		d.steps++
		now := d.clk.Now()
		outside(now)
		if tick != nil {
			tick(now)
		}
		if !target.Before(until) {
			// Let the work at until itself finish.
			_, _, err := d.quiet(ctx)
			return err
		}
	}
}
