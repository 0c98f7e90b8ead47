package slackfake

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// OnCall sees every call with Changed telling a write that changed what Slack shows from a
// redundant one; NoCallLog keeps no log.
func TestOnCallChangedAndNoCallLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	var calls []Call
	f := newFixture(t, Options{NoCallLog: true, OnCall: func(c Call) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
	}})
	c := f.client(f.srv.IssueUserToken("U0001", "users.profile:write", "dnd:write", "users:write"))
	exp := f.clk.Now().Add(30 * time.Minute).Unix()
	steps := []struct {
		name string
		call func() error
		want bool
	}{
		{"set a status", func() error { return c.SetUserCustomStatusContext(ctx, "In a meeting", ":calendar:", exp) }, true},
		{"the same status again", func() error { return c.SetUserCustomStatusContext(ctx, "In a meeting", ":calendar:", exp) }, false},
		{"a later expiration", func() error { return c.SetUserCustomStatusContext(ctx, "In a meeting", ":calendar:", exp+60) }, true},
		{"snooze", func() error { _, err := c.SetSnoozeContext(ctx, 30); return err }, true},
		{"snooze to the same minute", func() error { _, err := c.SetSnoozeContext(ctx, 30); return err }, false},
		{"end the snooze", func() error { _, err := c.EndSnoozeContext(ctx); return err }, true},
		{"away", func() error { return c.SetUserPresenceContext(ctx, "away") }, true},
		{"away again", func() error { return c.SetUserPresenceContext(ctx, "away") }, false},
	}
	for i, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		mu.Lock()
		got := calls[len(calls)-1]
		n := len(calls)
		mu.Unlock()
		if n != i+1 {
			t.Fatalf("after %q OnCall saw %d calls, want %d", s.name, n, i+1)
		}
		if got.Changed != s.want || got.User != "U0001" || got.Params != nil {
			t.Errorf("%s: Call{Changed: %v, User: %q, Params: %v}, want Changed %v, U0001, no params", s.name, got.Changed, got.User, got.Params, s.want)
		}
	}
	if log := f.srv.Calls(); len(log) != 0 {
		t.Errorf("NoCallLog: the log has %d calls", len(log))
	}
}

// RateWindow makes the per-method limits count over a shorter window: 2 a second.
func TestRateWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{RateLimits: map[string]int{"users.profile.set": 2}, RateWindow: time.Second, ProfileSetPerUserLimit: -1})
	c := f.client(f.srv.IssueUserToken("U0001", "users.profile:write"))
	set := func() error { return c.SetUserCustomStatusContext(ctx, "x", ":x:", 0) }
	for i := range 2 {
		if err := set(); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	var rl *slack.RateLimitedError
	if err := set(); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("third call in the same second: %v, want a 429 with Retry-After 1", err)
	}
	f.clk.Advance(time.Second)
	if err := set(); err != nil {
		t.Fatalf("a second later: %v", err)
	}
}
