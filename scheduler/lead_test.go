package scheduler_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	redisstore "github.com/dontinterrupt/dontinterrupt/internal/store/redis"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

// drive runs the loop on the fake clock: whenever nobody is being processed (claims last an
// hour here) and nobody is due yet, the clock jumps to the earliest timer, which is never after
// the earliest due time. (With several replicas a loop may sleep on a timer made stale by
// another's work: firing it makes that loop look again.) It stops once until has passed.
// others are more replicas' schedulers, which must be idle too.
func drive(t *testing.T, e *env, until time.Time, others ...*scheduler.Scheduler) {
	t.Helper()
	busy := func() bool {
		for _, s := range others {
			if s.InFlight() > 0 {
				return true
			}
		}
		return e.s.InFlight() > 0
	}
	for {
		var next time.Time
		waitForWhy(t, e, "the loop to sleep", func() bool {
			d, ok := e.clk.NextDeadline()
			due, dueOK, err := e.st.NextDue(e.ctx)
			now := e.clk.Now()
			if busy() || !ok || err != nil || !dueOK || !d.After(now) || d.After(due) || !due.After(now) || due.After(now.Add(30*time.Minute)) {
				return false
			}
			next = d
			return true
		}, func() string {
			d, ok := e.clk.NextDeadline()
			due, dueOK, err := e.st.NextDue(e.ctx)
			return fmt.Sprintf("busy=%v now=%s deadline=%s %v due=%s %v %v", busy(), e.clk.Now().Format("15:04:05.000"), d.Format("15:04:05.000"), ok, due.Format("15:04:05.000"), dueOK, err)
		})
		if next.After(until) {
			return
		}
		e.clk.Set(next)
	}
}

// Twelve people in one workspace start a meeting at 10:00, and the workspace takes one status
// write every 5 s: the writes go in the minute before 10:00, one per slot, the last at 10:00
// itself, and Slack never answers 429.
func TestBurstLeadsTheBoundary(t *testing.T) {
	every := 5 * time.Second
	e := newEnv(t, envOptions{
		start:  at(9, 50),
		limits: ratelimit.NewMemory(),
		rates: map[string]ratelimit.Rate{
			"slack.users.profile.set": {N: 12, Per: time.Minute},
			"slack.profile.user":      {N: 9, Per: time.Minute},
			"self":                    {N: 100, Per: time.Second},
		},
		lead:        time.Minute,
		lease:       time.Hour,
		slackLimits: map[string]int{"users.profile.set": 12},
	})
	start, end := at(10, 0), at(10, 30)
	for i := range 12 {
		e.sfake.AddUser(slackfake.DefaultTeamID, fmt.Sprintf("U%04d", i+1), fmt.Sprintf("Person %d", i))
	}
	var people []*person
	for i := range 12 {
		p := e.addPerson(fmt.Sprintf("u-%02d", i), fmt.Sprintf("sub-%02d", i), fmt.Sprintf("U%04d", i+1), rules(nil))
		e.addEvent(p, meeting(start, end))
		if err := e.st.MarkDue(e.ctx, p.id, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		people = append(people, p)
	}
	runLoop(t, e)
	drive(t, e, end.Add(-time.Minute))
	checkBurst(t, e, people, start, end, every)
}

// checkBurst checks the status writes of a burst at start: one per person, one per slot of
// every, none refused, the last at the boundary, none before the lead.
func checkBurst(t *testing.T, e *env, people []*person, start, end time.Time, every time.Duration) {
	t.Helper()

	var times []time.Time
	users := map[string]bool{}
	for _, c := range e.sfake.CallsTo("users.profile.set") {
		if c.Status != http.StatusOK || c.Error != "" {
			t.Fatalf("users.profile.set for %s at %s: HTTP %d %q, want no refusal", c.User, c.Time.Format("15:04:05"), c.Status, c.Error)
		}
		wantProfile(t, c, "In a meeting", ":spiral_calendar_pad:", end)
		users[c.User] = true
		times = append(times, c.Time)
	}
	if len(times) != len(people) || len(users) != len(people) {
		t.Fatalf("%d status writes for %d people, want one each", len(times), len(users))
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	if last := times[len(times)-1]; !last.Equal(start) {
		t.Errorf("last write at %s, want the boundary %s", last.Format("15:04:05.000"), start.Format("15:04:05"))
	}
	if first := times[0]; first.Before(start.Add(-time.Minute)) {
		t.Errorf("first write at %s, more than the lead before the boundary", first.Format("15:04:05.000"))
	}
	for i := 1; i < len(times); i++ {
		// One write per 5 s slot of the workspace's limit: [10:00, 10:00:05) holds the
		// last, [09:59:55, 10:00) the one before, and so on.
		if slotOf(times[i], every) == slotOf(times[i-1], every) {
			t.Errorf("writes %d and %d (%s, %s) share a %v slot", i-1, i, times[i-1].Format("15:04:05.000"), times[i].Format("15:04:05.000"), every)
		}
	}
	if n := len(e.writes()); n != len(people) {
		t.Errorf("%d Slack writes in all, want %d (one status each; nothing at the boundary again)", n, len(people))
	}
}

// waitForWhy waits until cond holds, re-checking whenever the fake clock's timers change (a loop
// going back to sleep) and every few milliseconds (a worker's end is not a timer change), for
// at most ten seconds; on a timeout it says what why says. waitFor is it with the loop's
// deadline as the reason.
func waitForWhy(t *testing.T, e *env, what string, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := e.clk.TimerChanged()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s: %s", what, why())
		}
	}
}

func slotOf(t time.Time, every time.Duration) int64 { return t.UnixNano() / int64(every) }

// Two replicas on one Redis share the schedule: the burst above, worked by both, still takes
// one slot per write and meets no 429.
func TestBurstSharedByTwoReplicasOnRedis(t *testing.T) {
	url := os.Getenv("DI_TEST_REDIS_SCHEDULER_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/9"
	}
	every := 5 * time.Second
	var rs *redisstore.Store
	e := newEnv(t, envOptions{
		start: at(9, 50),
		store: func(clk *clock.Fake) store.Store {
			var err error
			rs, err = redisstore.Open(t.Context(), url, redisstore.WithClock(clk.Now))
			if err != nil {
				if os.Getenv("CI") == "" {
					t.Skipf("no Redis at %s: %v", url, err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { rs.Close() })
			if err := rs.Client().FlushDB(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
			return rs
		},
		rates: map[string]ratelimit.Rate{
			"slack.users.profile.set": {N: 12, Per: time.Minute},
			"self":                    {N: 100, Per: time.Second},
		},
		lead:        time.Minute,
		lease:       time.Hour,
		slackLimits: map[string]int{"users.profile.set": 12},
	})
	// Both replicas book in the same Redis schedule.
	e.deps.Limits = ratelimit.NewRedis(rs.Client(), rs.Prefix())
	var err error
	if e.s, err = scheduler.New(e.deps); err != nil {
		t.Fatal(err)
	}
	second, err := scheduler.New(e.deps)
	if err != nil {
		t.Fatal(err)
	}
	start, end := at(10, 0), at(10, 30)
	for i := range 12 {
		e.sfake.AddUser(slackfake.DefaultTeamID, fmt.Sprintf("U%04d", i+1), fmt.Sprintf("Person %d", i))
	}
	var people []*person
	for i := range 12 {
		p := e.addPerson(fmt.Sprintf("u-%02d", i), fmt.Sprintf("sub-%02d", i), fmt.Sprintf("U%04d", i+1), rules(nil))
		e.addEvent(p, meeting(start, end))
		if err := e.st.MarkDue(e.ctx, p.id, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		people = append(people, p)
	}
	runLoop(t, e)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	drive(t, e, end.Add(-time.Minute), second)
	checkBurst(t, e, people, start, end, every)
}

// Without a schedule nothing leads: the write goes at the boundary.
func TestNoLeadWithoutASchedule(t *testing.T) {
	e := newEnv(t, envOptions{start: at(9, 59)})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	e.addEvent(ada, meeting(at(10, 0), at(10, 30)))
	next := e.process(ada, at(9, 59).Add(30*time.Second))
	e.wantNoWrites("30 s before the meeting, no schedule")
	e.wantNext(next, at(10, 0), "next run")
}

// A snooze written ahead of its boundary runs up to a minute past the block (Slack counts whole
// minutes from the request): at the block's end it is left to end by itself, with no read and
// no endSnooze (which, unbooked, would meet the workspace's Tier 2 limit at every 10:30).
func TestLedSnoozeEndsByItself(t *testing.T) {
	e := newEnv(t, envOptions{
		start:  at(9, 50),
		limits: ratelimit.NewMemory(),
		rates: map[string]ratelimit.Rate{
			"slack.dnd.setSnooze": {N: 2, Per: time.Minute},
			"self":                {N: 100, Per: time.Second},
		},
		lead:        time.Minute,
		lease:       time.Hour,
		slackLimits: map[string]int{"dnd.setSnooze": 2},
	})
	start, end := at(10, 0), at(10, 30)
	withDND := rules(func(r *presence.Rules) {
		k := r.Kinds[presence.KindMeeting]
		k.SlackDND = true
		r.Kinds[presence.KindMeeting] = k
	})
	var people []*person
	for i, u := range []string{"U0001", "U0002"} {
		p := e.addPerson(fmt.Sprintf("u-%d", i), fmt.Sprintf("sub-%d", i), u, withDND)
		e.addEvent(p, meeting(start, end))
		if err := e.st.MarkDue(e.ctx, p.id, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		people = append(people, p)
	}
	runLoop(t, e)
	drive(t, e, end.Add(5*time.Minute))

	snoozes := e.sfake.CallsTo("dnd.setSnooze")
	if len(snoozes) != 2 {
		t.Fatalf("%d snoozes, want 2:%s", len(snoozes), describe(snoozes))
	}
	led := 0
	for _, c := range snoozes {
		if c.Status != http.StatusOK || c.Error != "" {
			t.Fatalf("snooze refused: HTTP %d %q", c.Status, c.Error)
		}
		if c.Time.Before(start) {
			led++
		}
	}
	if led != 1 {
		t.Errorf("%d snoozes ahead of the boundary, want 1 (one 30 s slot each)", led)
	}
	if n := len(e.sfake.CallsTo("dnd.endSnooze")); n != 0 {
		t.Errorf("%d endSnooze calls at the end, want none", n)
	}
	for _, c := range e.sfake.CallsTo("dnd.info") {
		if !c.Time.Before(end) {
			t.Errorf("dnd.info at %s, after the block: the snooze ends by itself", c.Time.Format("15:04:05"))
		}
	}
}
