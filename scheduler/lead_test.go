package scheduler_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
)

// drive runs the loop on the fake clock: whenever the loop sleeps until its earliest due time
// (and no claim is held: claims last an hour here), the clock jumps there. It stops once until
// has passed and the loop sleeps.
func drive(t *testing.T, e *env, until time.Time) {
	t.Helper()
	for {
		var next time.Time
		waitFor(t, e, "the loop to sleep", func() bool {
			d, ok := e.clk.NextDeadline()
			due, dueOK, err := e.st.NextDue(e.ctx)
			now := e.clk.Now()
			if e.s.InFlight() > 0 || !ok || err != nil || !dueOK || !d.Equal(due) || !due.After(now) || due.After(now.Add(30*time.Minute)) {
				return false
			}
			next = due
			return true
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

func slotOf(t time.Time, every time.Duration) int64 { return t.UnixNano() / int64(every) }

// Without a schedule nothing leads: the write goes at the boundary.
func TestNoLeadWithoutASchedule(t *testing.T) {
	e := newEnv(t, envOptions{start: at(9, 59)})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	e.addEvent(ada, meeting(at(10, 0), at(10, 30)))
	next := e.process(ada, at(9, 59).Add(30*time.Second))
	e.wantNoWrites("30 s before the meeting, no schedule")
	e.wantNext(next, at(10, 0), "next run")
}
