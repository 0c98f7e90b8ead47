package scheduler_test

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

// sharedStore is a store several schedulers of one test share, with the wake-ups a store
// shared by several processes (Redis) carries between them.
type sharedStore struct {
	store.Store
	mu       sync.Mutex
	watchers map[int]func()
	n        int
}

func (s *sharedStore) WakeDue(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fn := range s.watchers {
		fn()
	}
	return nil
}

func (s *sharedStore) WatchDue(ctx context.Context, fn func()) {
	s.mu.Lock()
	if s.watchers == nil {
		s.watchers = map[int]func(){}
	}
	s.n++
	id := s.n
	s.watchers[id] = fn
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.watchers, id)
	s.mu.Unlock()
}

// newReplica is a scheduler on st with e's fakes: another replica, made like e.s but for the
// store and options.
func newReplica(t *testing.T, e *env, st store.Store, o scheduler.Options) *scheduler.Scheduler {
	t.Helper()
	o.ResyncInterval = resync
	d := e.deps
	d.Store, d.Options = st, o
	s, err := scheduler.New(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A replica that stops hands its people back and wakes the others: one sleeping until the
// stopping replica's lease ends takes them at once (the fake clock never reaches the lease end).
func TestShutdownWakesAnotherReplica(t *testing.T) {
	entered := make(chan struct{}, 1)
	var once sync.Once
	hook := func(r *http.Request) {
		if path.Base(r.URL.Path) != "users.profile.set" {
			return
		}
		block := false
		once.Do(func() { block = true })
		if block {
			entered <- struct{}{}
			<-r.Context().Done()
		}
	}
	e := newEnv(t, envOptions{slackHook: hook, start: at(10, 0)})
	shared := &sharedStore{Store: e.st}
	const lease = 30 * time.Second
	a := newReplica(t, e, shared, scheduler.Options{Workers: 1, Batch: 2, Lease: lease})
	b := newReplica(t, e, shared, scheduler.Options{Lease: lease})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	bob := e.addPerson("u-bob", "sub-bob", "U0002", rules(nil))
	for _, p := range []*person{ada, bob} {
		e.addEvent(p, meeting(at(10, 0), at(10, 30)))
		if err := e.st.MarkDue(e.ctx, p.id, at(10, 0)); err != nil {
			t.Fatal(err)
		}
	}

	e.s = a
	stopA := runLoop(t, e)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("replica A never reached the status write")
	}
	e.s = b
	runLoop(t, e)
	// B finds nobody to claim and sleeps until A's lease ends (A's worker also has a timer: it
	// renews the lease every third of it).
	waitFor(t, e, "replica B to sleep until A's lease ends", func() bool {
		return e.clk.HasTimerAt(at(10, 0).Add(lease))
	})

	stopA()
	waitFor(t, e, "replica B to write both statuses", func() bool {
		return len(e.okCalls("users.profile.set", "U0001")) == 1 && len(e.okCalls("users.profile.set", "U0002")) == 1
	})
	if now := e.clk.Now(); !now.Equal(at(10, 0)) {
		t.Errorf("the fake clock moved to %s", now.Format(time.TimeOnly))
	}
}

// A graceful shutdown hands the people it claimed back, due at once: the one whose run was cut
// short and the one still waiting for a worker. Another replica need not wait out the lease.
func TestShutdownHandsClaimsBack(t *testing.T) {
	entered := make(chan struct{}, 1)
	var once sync.Once
	// The first status write blocks until its request is cancelled: a worker busy at shutdown.
	hook := func(r *http.Request) {
		if path.Base(r.URL.Path) != "users.profile.set" {
			return
		}
		block := false
		once.Do(func() { block = true })
		if block {
			entered <- struct{}{}
			<-r.Context().Done()
		}
	}
	e := newEnv(t, envOptions{slackHook: hook, start: at(10, 0)})
	const lease = 30 * time.Second
	s, err := scheduler.New(scheduler.Deps{
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:   e.st,
		Vault:   e.vault,
		Clock:   e.clk,
		Sources: map[string]scheduler.Source{"google": googleSource{e.gc}},
		Slack:   e.sc,
		// One worker, and a batch of two: the second person waits for the first.
		Options: scheduler.Options{ResyncInterval: resync, Workers: 1, Batch: 2, Lease: lease},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	bob := e.addPerson("u-bob", "sub-bob", "U0002", rules(nil))
	for _, p := range []*person{ada, bob} {
		e.addEvent(p, meeting(at(10, 0), at(10, 30)))
		if err := e.st.MarkDue(e.ctx, p.id, at(10, 0)); err != nil {
			t.Fatal(err)
		}
	}

	stop := runLoop(t, e)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no worker reached the status write")
	}
	if got, err := e.st.ClaimDue(e.ctx, e.clk.Now(), 10, lease); err != nil || len(got) != 0 {
		t.Fatalf("while the loop holds them, a claim got %v, %v; want nobody", got, err)
	}
	stop()

	now := e.clk.Now()
	got, err := e.st.ClaimDue(e.ctx, now, 10, lease)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, c.UserID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"u-ada", "u-bob"}) {
		at, _, _ := e.st.NextDue(e.ctx)
		t.Fatalf("after the shutdown a claim at %s got %v, want both people handed back (next due %s)", now.Format(time.TimeOnly), ids, at.Format(time.TimeOnly))
	}
}
