package scheduler_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A run that outlasts its lease (Slack answers slowly) keeps its claim: the lease is renewed,
// so another replica claiming at the same moment gets nobody, and the person is written once.
func TestLongRunKeepsItsLease(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var once, released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	e := newEnv(t, envOptions{
		start: at(9, 59),
		lease: 30 * time.Second,
		slackHook: func(r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/users.profile.set") {
				once.Do(func() { close(entered) })
				<-release
			}
		},
	})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	e.addEvent(ada, meeting(at(10, 0), at(10, 30)))
	if err := e.st.MarkDue(e.ctx, ada.id, at(10, 0)); err != nil {
		t.Fatal(err)
	}
	runLoop(t, e)
	t.Cleanup(free) // runs before runLoop's cleanup stops the loop (cleanups run last first)
	waitFor(t, e, "the loop to sleep until 10:00", func() bool { return e.idle(at(10, 0)) })
	e.clk.Set(at(10, 0))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the status write never started")
	}
	// Two minutes pass while Slack holds the request, in steps shorter than the renewal
	// interval (a third of the lease). Before each step the run's lease keeper is asleep on its
	// timer (two timers: the loop's and the keeper's), so every renewal it owes has been made.
	for i := 1; i <= 24; i++ {
		waitForWhy(t, e, "the lease keeper to sleep", func() bool {
			d, ok := e.clk.NextDeadline()
			return e.clk.PendingTimers() == 2 && ok && d.After(e.clk.Now())
		}, func() string { return fmt.Sprintf("%d timers", e.clk.PendingTimers()) })
		e.clk.Set(at(10, 0).Add(time.Duration(i) * 5 * time.Second))
		if due, ok, err := e.st.NextDue(e.ctx); err != nil || !ok || !due.After(e.clk.Now()) {
			t.Fatalf("at %s the lease ends %s (%v %v): not renewed", e.clk.Now().Format("15:04:05"), due.Format("15:04:05"), ok, err)
		}
	}
	// Another replica looking for work now finds nobody: the person is still held.
	other, err := e.st.ClaimDue(e.ctx, e.clk.Now(), 10, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != 0 {
		t.Fatalf("another replica claimed %v while the run was still working", other)
	}
	free()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := e.sfake.WaitForCall(ctx, "users.profile.set", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e, "the loop to sleep until the meeting's end", func() bool { return e.idle(at(10, 30)) })
	if n := len(e.okCalls("users.profile.set", "U0001")); n != 1 {
		t.Fatalf("%d status writes, want 1", n)
	}
}
