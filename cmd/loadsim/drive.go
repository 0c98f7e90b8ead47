package main

import (
	"context"
	"fmt"
	"os"
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
}

func (c *countingStore) ClaimDue(ctx context.Context, now time.Time, n int, lease time.Duration) ([]store.Claim, error) {
	claims, err := c.Store.ClaimDue(ctx, now, n, lease)
	c.outstanding.Add(int64(len(claims)))
	return claims, err
}

func (c *countingStore) Complete(ctx context.Context, cl store.Claim, next time.Time) error {
	defer c.outstanding.Add(-1)
	return c.Store.Complete(ctx, cl, next)
}

// fakeDriver moves the fake clock for a scheduler: only when the loop sleeps until its
// earliest due time and no claim is outstanding does the clock jump, to that due time or to
// the next outside event (a calendar change, a poll), whichever comes first. Lag is then
// measured in simulated time: the time the scheduler's work takes is not in it.
type fakeDriver struct {
	clk   *clock.Fake
	st    *countingStore
	sched *scheduler.Scheduler
	steps int64
}

// quiet waits until the scheduler sleeps and returns its next due time (ok false: none).
func (d *fakeDriver) quiet(ctx context.Context) (time.Time, bool, error) {
	spins := 0
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, false, err
		}
		if d.st.outstanding.Load() == 0 && d.sched.InFlight() == 0 {
			if deadline, ok := d.clk.NextDeadline(); ok {
				due, dueOK, err := d.st.NextDue(ctx)
				if err != nil {
					return time.Time{}, false, err
				}
				now := d.clk.Now()
				if !dueOK {
					return time.Time{}, false, nil
				}
				if due.After(now) && deadline.Equal(due) {
					return due, true, nil
				}
			}
		}
		spins++
		if spins%200000 == 0 {
			deadline, ok := d.clk.NextDeadline()
			due, dueOK, _ := d.st.NextDue(ctx)
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
