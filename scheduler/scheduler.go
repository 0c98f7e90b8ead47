// Package scheduler keeps every person's targets equal to the planner's answer for "now"
// (design.md section 7). Each person has one due time in the store's due index: the earliest of
// their next timeline boundary, their next resync and any retry. Workers claim due people in
// batches, sync their sources, plan, reconcile every target, and write the next due time. The
// loop sleeps on a timer until the next due time or a wake-up: no minute polling.
package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
)

// Source reads a calendar-like source for one connection.
type Source interface {
	// Sync brings one resource (a calendar) up to date from syncToken; an empty token, or one
	// the provider no longer accepts, gives a full sync (Full true). titleEmoji asks for the
	// leading emoji of titles (the person's rule); titles themselves are never kept.
	Sync(ctx context.Context, cred provider.Credential, resource, syncToken string, now time.Time, titleEmoji bool) (SyncResult, error)
	// Refresh renews an expiring access token.
	Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error)
}

// SyncResult is what a sync found. Events carry the provider's event IDs; the scheduler sets
// their Source.
type SyncResult struct {
	Full      bool
	Events    []presence.Event
	Deleted   []string // event IDs removed or cancelled since the token
	NextToken string
}

// SlackAPI is what the scheduler needs of Slack.
type SlackAPI interface {
	Status(ctx context.Context, cred provider.Credential) (presence.SlackStatus, error)
	SetStatus(ctx context.Context, cred provider.Credential, s presence.SlackStatus) error
	DND(ctx context.Context, cred provider.Credential) (presence.SlackDND, error)
	Snooze(ctx context.Context, cred provider.Credential, until, now time.Time) (time.Time, error)
	EndSnooze(ctx context.Context, cred provider.Credential) error
	SetAway(ctx context.Context, cred provider.Credential, away bool) error
	Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error)
}

// Options tune the scheduler. Zero values take the defaults in parentheses.
type Options struct {
	Workers        int           // people reconciled at once (8)
	Batch          int           // people claimed per claim (2×Workers)
	Lease          time.Duration // claim lease (30s)
	Horizon        time.Duration // planning horizon (36h)
	ResyncInterval time.Duration // safety-net resync (15m)
	// RetryBase and RetryMax bound the backoff after a provider outage (5s, 15m).
	RetryBase, RetryMax time.Duration
	// NotifyURLs are the webhook URLs push subscriptions are made for, by source provider
	// ("outlook" → …/webhooks/microsoft); a source without one is only polled.
	NotifyURLs map[string]string
	// RateLimits are the limits writes are booked against (see lead.go for the names); with
	// Deps.Limits they make a boundary burst lead its boundary by up to Lead (60s) instead of
	// meeting 429s after it. Lead < 0 turns leading off.
	RateLimits map[string]ratelimit.Rate
	Lead       time.Duration
}

// Deps are the scheduler's collaborators. Logger, Store, Vault and Clock are required.
type Deps struct {
	Logger  *slog.Logger
	Store   store.Store
	Vault   *vault.Vault
	Clock   clock.Clock
	Sources map[string]Source // by connection provider ("google")
	Slack   SlackAPI          // nil when Slack is not configured
	Teams   TeamsAPI          // nil when Microsoft is not configured
	// OnProcessed, when set, is called after each person's run (the Slack App Home refreshes
	// itself from it); OnBroken when a connection breaks (the person is told).
	OnProcessed func(ctx context.Context, userID string)
	OnBroken    func(ctx context.Context, userID, provider string)
	Options     Options
	// Metrics, when set, records the scheduler's metrics (nil: none).
	Metrics *metrics.Metrics
	// Limits is the rate-limit schedule shared by every replica (nil: writes are not booked,
	// and 429s are only honoured).
	Limits ratelimit.Schedule
}

// Scheduler runs the due loop.
type Scheduler struct {
	log     *slog.Logger
	st      store.Store
	vault   *vault.Vault
	clock   clock.Clock
	sources map[string]Source
	slack   SlackAPI
	teams   TeamsAPI

	onProcessed func(ctx context.Context, userID string)
	onBroken    func(ctx context.Context, userID, provider string)
	opt         Options

	wake     chan struct{}
	limits   ratelimit.Schedule
	inFlight atomic.Int64 // people being processed by Run's workers

	metrics *metrics.Metrics
	queueAt time.Time // when the due-queue gauges are next updated (Run's goroutine only)

	mu       sync.Mutex
	failures map[string]int // consecutive failures per connection, for backoff
	// boundary is the next timeline boundary each person was planned with (kept only with
	// metrics): the run at or after it measures the boundary lag.
	boundary map[string]time.Time
}

// New checks the dependencies and returns a scheduler.
func New(d Deps) (*Scheduler, error) {
	switch {
	case d.Logger == nil:
		return nil, errors.New("scheduler: a logger is required")
	case d.Store == nil:
		return nil, errors.New("scheduler: a store is required")
	case d.Vault == nil:
		return nil, errors.New("scheduler: a vault is required")
	case d.Clock == nil:
		return nil, errors.New("scheduler: a clock is required")
	}
	o := d.Options
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Batch <= 0 {
		o.Batch = 2 * o.Workers
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Horizon <= 0 {
		o.Horizon = 36 * time.Hour
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = 15 * time.Minute
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 5 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 15 * time.Minute
	}
	if o.Lead == 0 {
		o.Lead = time.Minute
	}
	s := &Scheduler{
		log: d.Logger, st: d.Store, vault: d.Vault, clock: d.Clock,
		sources: d.Sources, slack: d.Slack, teams: d.Teams, opt: o,
		onProcessed: d.OnProcessed, onBroken: d.OnBroken,
		wake:     make(chan struct{}, 1),
		failures: map[string]int{},
		boundary: map[string]time.Time{},
		metrics:  d.Metrics,
		limits:   d.Limits,
	}
	if d.Metrics != nil {
		// Count every provider write where it happens, whichever reconcile step makes it.
		if s.slack != nil {
			s.slack = meteredSlack{s.slack, d.Metrics}
		}
		if s.teams != nil {
			s.teams = meteredTeams{s.teams, d.Metrics}
		}
	}
	return s, nil
}

// SetHooks sets Deps.OnProcessed and Deps.OnBroken after construction (the web server that
// provides them needs the scheduler first). Call it before Run.
func (s *Scheduler) SetHooks(onProcessed func(ctx context.Context, userID string), onBroken func(ctx context.Context, userID, provider string)) {
	s.onProcessed, s.onBroken = onProcessed, onBroken
}

// Wake marks a person due now (a new connection, an override, a push notification) and wakes
// the loop.
func (s *Scheduler) Wake(ctx context.Context, userID string) error {
	if err := s.st.MarkDue(ctx, userID, s.clock.Now()); err != nil {
		return fmt.Errorf("scheduler: mark due: %w", err)
	}
	s.poke()
	return nil
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run claims and processes due people until ctx ends, then waits for the work in progress and
// hands back what it claimed and did not finish (handBack).
func (s *Scheduler) Run(ctx context.Context) error {
	jobs := cron.New()
	jobs.AddFunc("@every 1h", func() { s.maintenance(ctx) })
	jobs.Start()
	defer func() { <-jobs.Stop().Done() }()

	sem := make(chan struct{}, s.opt.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	s.watchHandBacks(ctx, &wg)
	idle := s.clock.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := s.clock.Now()
		s.observeQueue(ctx, now)
		claims, err := s.st.ClaimDue(ctx, now, s.opt.Batch, s.opt.Lease)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Error("claim due people", "err", err)
			claims = nil
			s.sleep(ctx, idle, time.Second)
			continue
		}
		s.metrics.Claims(len(claims))
		for i, c := range claims {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				s.handBack(ctx, claims[i:])
				return nil
			}
			wg.Add(1)
			s.inFlight.Add(1)
			go func(c store.Claim) {
				defer wg.Done()
				defer func() { <-sem }()
				defer s.inFlight.Add(-1)
				s.process(ctx, c)
			}(c)
		}
		if len(claims) == s.opt.Batch {
			continue // more may be due
		}
		wait := time.Hour
		if at, ok, err := s.st.NextDue(ctx); err == nil && ok {
			wait = at.Sub(s.clock.Now())
		}
		if wait > 0 {
			s.sleep(ctx, idle, wait)
		}
	}
}

// InFlight is the number of people Run's workers are processing now (claimed, not yet
// completed): with a fake clock, a driver advances time only when it is zero.
func (s *Scheduler) InFlight() int { return int(s.inFlight.Load()) }

// observeQueue updates the due-queue gauges, at most once a second.
func (s *Scheduler) observeQueue(ctx context.Context, now time.Time) {
	if s.metrics == nil || now.Before(s.queueAt) {
		return
	}
	s.queueAt = now.Add(time.Second)
	_, due, err := s.st.DueCount(ctx, now)
	if err != nil {
		return
	}
	var age time.Duration
	if at, ok, err := s.st.NextDue(ctx); err == nil && ok {
		age = now.Sub(at)
	}
	s.metrics.DueQueue(due, age)
}

// sleep waits for d, a wake-up or the end of ctx.
func (s *Scheduler) sleep(ctx context.Context, t clock.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C():
		default:
		}
	}
	t.Reset(d)
	select {
	case <-t.C():
	case <-s.wake:
	case <-ctx.Done():
	}
}

// process runs one claimed person and completes the claim with their next due time. The lease
// is renewed while the work lasts (a slow provider, a long sync); if it was lost meanwhile
// (this replica stalled past it and another claimed the person), the work is cancelled, so two
// replicas never write for one person at once.
func (s *Scheduler) process(ctx context.Context, c store.Claim) {
	pctx, cancel := context.WithCancel(ctx)
	held := make(chan store.Claim, 1)
	go func() { held <- s.keepLease(pctx, c, cancel) }()
	next, err := s.ProcessUser(pctx, c.UserID)
	cancel()
	c = <-held
	if ctx.Err() != nil {
		s.handBack(ctx, []store.Claim{c}) // shutting down: the run may have stopped half-way
		return
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.st.RemoveDue(ctx, c.UserID)
			s.mu.Lock()
			delete(s.boundary, c.UserID)
			s.mu.Unlock()
			return
		}
		s.log.Error("process person", "user", c.UserID, "err", err)
		next = s.clock.Now().Add(s.opt.RetryBase)
	}
	// The due index keeps milliseconds: round up, so a boundary between two milliseconds is
	// not due (and processed for nothing, again and again) before it comes.
	if r := next.Truncate(time.Millisecond); r.Before(next) {
		next = r.Add(time.Millisecond)
	}
	if err := s.st.Complete(context.WithoutCancel(ctx), c, next); err != nil {
		if errors.Is(err, store.ErrConflict) {
			s.metrics.LeaseExpired()
		}
		s.log.Error("complete claim", "user", c.UserID, "err", err)
	}
	if s.onProcessed != nil && err == nil {
		s.onProcessed(ctx, c.UserID)
	}
	s.poke()
}

// keepLease extends c's lease every third of a lease until ctx ends, and returns the claim as
// last extended. If the claim was lost it cancels the work.
func (s *Scheduler) keepLease(ctx context.Context, c store.Claim, cancel context.CancelFunc) store.Claim {
	t := s.clock.NewTimer(s.opt.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return c
		case <-t.C():
		}
		ext, err := s.st.ExtendLease(ctx, c, s.clock.Now().Add(s.opt.Lease))
		switch {
		case err == nil:
			c = ext
		case errors.Is(err, store.ErrConflict):
			s.metrics.LeaseExpired()
			s.log.Warn("claim lost while working; stopping this person's run", "user", c.UserID)
			cancel()
			return c
		case ctx.Err() != nil:
			return c
		default:
			s.log.Error("extend lease", "user", c.UserID, "err", err)
		}
		t.Reset(s.opt.Lease / 3)
	}
}

// maintenance runs the hourly jobs: drop ended overrides.
func (s *Scheduler) maintenance(ctx context.Context) {
	// Ended overrides (see overrideEnded) are ignored by the planner and pruned when their
	// owner is processed; nothing else needs a periodic pass yet.
	_ = ctx
}

// ProcessUser syncs, plans and reconciles one person now, and returns when they are next due.
func (s *Scheduler) ProcessUser(ctx context.Context, userID string) (time.Time, error) {
	now := s.clock.Now()
	s.observeLag(userID, now)
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return time.Time{}, err
	}
	conns, err := s.st.ListConnections(ctx, userID)
	if err != nil {
		return time.Time{}, err
	}
	next := now.Add(s.opt.Horizon / 2)
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}

	for i := range conns {
		c := &conns[i]
		if src, ok := s.sources[c.Provider]; ok && c.Health == store.HealthOK {
			earlier(s.syncConnection(ctx, u, c, src, now))
		}
	}

	events, err := s.st.ListEvents(ctx, userID, now.Add(-48*time.Hour), now.Add(s.opt.Horizon))
	if err != nil {
		return time.Time{}, err
	}
	overrides, err := s.st.ListOverrides(ctx, userID)
	if err != nil {
		return time.Time{}, err
	}
	anchors := blockAnchors(overrides) // a copy: the loop below filters overrides in place
	live := overrides[:0]
	for _, o := range overrides {
		if s.overrideEnded(o, events, anchors, u.Rules, now) {
			s.st.DeleteOverride(ctx, userID, o.ID)
			continue
		}
		live = append(live, o)
	}
	tl := presence.Plan(events, live, u.Rules, now, s.opt.Horizon)
	cur := tl.Current().State
	want := cur
	b, hasB := tl.NextBoundary()
	var upcoming presence.DesiredState
	inLead := false
	if hasB {
		s.planned(userID, b)
		if seg, ok := tl.At(b); ok {
			upcoming = seg.State
		}
		// Shortly before a boundary whose writes were booked ahead of it (a burst larger
		// than the rate limits take at once), write what turns on at the boundary now.
		if inLead = s.leadNow(ctx, userID, conns, cur, upcoming, b, now); inLead {
			want = leadState(cur, upcoming)
		}
	}

	for i := range conns {
		c := &conns[i]
		if c.Provider == "slack" && s.slack != nil && c.Health == store.HealthOK {
			earlier(s.reconcileSlack(ctx, u, c, want, now))
		}
		if c.Provider == "teams" && s.teams != nil && c.Health == store.HealthOK {
			earlier(s.reconcileTeams(ctx, u, c, want, now))
		}
	}
	if hasB {
		earlier(s.runFor(ctx, userID, conns, cur, upcoming, b, inLead))
	}
	return next, nil
}

// observeLag records the boundary lag when this run is the first at or after the boundary the
// person was planned with: now − that boundary, the time the person's targets waited.
func (s *Scheduler) observeLag(userID string, now time.Time) {
	if s.metrics == nil {
		return
	}
	s.mu.Lock()
	b, ok := s.boundary[userID]
	if ok && !b.After(now) {
		delete(s.boundary, userID)
	}
	s.mu.Unlock()
	if ok && !b.After(now) {
		s.metrics.BoundaryLag(now.Sub(b))
	}
}

// planned remembers the next boundary a person was planned with, for observeLag.
func (s *Scheduler) planned(userID string, b time.Time) {
	if s.metrics == nil {
		return
	}
	s.mu.Lock()
	s.boundary[userID] = b
	s.mu.Unlock()
}

// overrideEnded reports whether o can no longer change any timeline from now on, so it can be
// pruned: its End has passed or, for a "back" without an End (which lasts until the end of the
// block in progress at its start), that block has ended or there was none. Without this, every
// "I'm back" would stay in the store for good. anchors are the overrides the block at o's start
// depends on (blockAnchors). Pause and focus overrides without an End last until removed.
func (s *Scheduler) overrideEnded(o presence.Override, events []presence.Event, anchors []presence.Override, rules presence.Rules, now time.Time) bool {
	if !o.End.IsZero() {
		return !o.End.After(now)
	}
	if o.Kind != presence.OverrideBack || o.Start.After(now) {
		return false
	}
	// Plan from its start out to where the current plan reaches, so that an open-ended manual
	// focus block ends where the current plan ends it, and read the block at its start.
	at := presence.Plan(events, anchors, rules, o.Start, now.Sub(o.Start)+s.opt.Horizon).Current()
	return !at.State.Until.After(now)
}

// blockAnchors returns the overrides that shape the blocks a "back" override applies to:
// manual focus blocks and ignored events.
func blockAnchors(overrides []presence.Override) []presence.Override {
	var out []presence.Override
	for _, o := range overrides {
		if o.Kind == presence.OverrideFocus || o.Kind == presence.OverrideIgnore {
			out = append(out, o)
		}
	}
	return out
}

// credential opens a connection's credential, refreshing it first when it is about to expire.
func (s *Scheduler) credential(ctx context.Context, c *store.Connection, refresh func(context.Context, provider.Credential, time.Time) (provider.Credential, error), now time.Time) (provider.Credential, error) {
	pt, err := s.vault.Open(c.Credential, c.UserID, c.ID)
	if err != nil {
		return provider.Credential{}, fmt.Errorf("open credential: %w", err)
	}
	cred, err := provider.UnmarshalCredential(pt)
	clear(pt)
	if err != nil {
		return provider.Credential{}, err
	}
	if cred.NeedsRefresh(now, 5*time.Minute) && refresh != nil {
		return s.refresh(ctx, c, cred, refresh, now)
	}
	return cred, nil
}

// refresh renews the token and persists the result (rotated refresh tokens are single-use).
func (s *Scheduler) refresh(ctx context.Context, c *store.Connection, cred provider.Credential, refresh func(context.Context, provider.Credential, time.Time) (provider.Credential, error), now time.Time) (provider.Credential, error) {
	fresh, err := refresh(ctx, cred, now)
	s.metrics.TokenRefresh(c.Provider, err)
	if err != nil {
		return cred, err
	}
	pt, err := fresh.Marshal()
	if err != nil {
		return cred, err
	}
	defer clear(pt)
	blob, err := s.vault.Seal(pt, c.UserID, c.ID)
	if err != nil {
		return cred, err
	}
	err = s.st.SwapCredential(ctx, c.UserID, c.ID, c.Credential, blob)
	if errors.Is(err, store.ErrConflict) {
		// A key rotation may have sealed the same token again while we refreshed it. The
		// refreshed token must not be lost (a rotated refresh token is spent): it replaces
		// that one, sealed under what is now the primary key.
		if cur, ok := s.resealedMeanwhile(ctx, c); ok {
			if blob, err = s.vault.Seal(pt, c.UserID, c.ID); err == nil {
				err = s.st.SwapCredential(ctx, c.UserID, c.ID, cur, blob)
			}
		}
	}
	if err != nil {
		return cred, fmt.Errorf("store refreshed token: %w", err)
	}
	c.Credential = blob
	s.activity(ctx, c.UserID, store.Activity{At: now, Kind: "token", Target: c.Provider, Outcome: "refreshed"})
	return fresh, nil
}

// resealedMeanwhile reports whether the stored credential of c changed only in its sealing
// (the same plaintext, re-encrypted by a key rotation) since c was read, and returns it.
func (s *Scheduler) resealedMeanwhile(ctx context.Context, c *store.Connection) ([]byte, bool) {
	cur, err := s.st.GetConnection(ctx, c.UserID, c.ID)
	if err != nil {
		return nil, false
	}
	was, err := s.vault.Open(c.Credential, c.UserID, c.ID)
	if err != nil {
		return nil, false
	}
	defer clear(was)
	now, err := s.vault.Open(cur.Credential, c.UserID, c.ID) // reloads a keyset that gained a key
	if err != nil {
		return nil, false
	}
	defer clear(now)
	return cur.Credential, bytes.Equal(was, now)
}

// broken marks a connection broken after the provider said the grant is gone: in memory at
// once (this run stops using it), and in the store unless the connection changed meanwhile.
// It re-reads the stored connection first, because the person may have disconnected it
// (which revokes the grant, so we see it as revoked, then deletes the record: it must stay
// deleted) or reconnected it (a new credential, which the old grant's failure says nothing
// about) while we were working on it; the fields others may have changed meanwhile are kept.
// (The store has no compare-and-swap for a whole connection, so a change in the instant
// between the read and the write can still be lost.)
func (s *Scheduler) broken(ctx context.Context, c *store.Connection, reason string, now time.Time) {
	used := c.Credential
	c.Health, c.HealthReason, c.Updated = store.HealthBroken, reason, now
	cur, err := s.st.GetConnection(ctx, c.UserID, c.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.log.Info("connection gone meanwhile (disconnected)", "user", c.UserID, "connection", c.ID, "provider", c.Provider)
		return
	case err != nil:
		s.log.Error("mark connection broken", "user", c.UserID, "connection", c.ID, "err", err)
		return
	case !bytes.Equal(cur.Credential, used):
		s.log.Info("connection reconnected meanwhile; not marking it broken", "user", c.UserID, "connection", c.ID, "provider", c.Provider)
		return
	}
	cur.Health, cur.HealthReason, cur.Updated = store.HealthBroken, reason, now
	if err := s.st.PutConnection(ctx, cur); err != nil {
		s.log.Error("mark connection broken", "user", c.UserID, "connection", c.ID, "err", err)
	}
	s.log.Warn("connection broken: the person must reconnect", "user", c.UserID, "connection", c.ID, "provider", c.Provider, "reason", reason)
	s.activity(ctx, c.UserID, store.Activity{At: now, Kind: "connection", Target: c.Provider, Outcome: "broken", Reason: "reconnect needed (" + reason + ")"})
	if s.onBroken != nil {
		s.onBroken(ctx, c.UserID, c.Provider)
	}
}

// retryAt decides when to try a connection again after err, and records why.
//
// A call that timed out (provider.TimedOut) also ends the connection's work for this run: the
// reconcilers and the sync skip its remaining calls, which would each wait for the client's
// timeout again, holding the worker (and the person's claim, whose lease is shorter than a
// few timeouts) for nothing. They are made at the retry.
func (s *Scheduler) retryAt(ctx context.Context, c *store.Connection, kind, target string, err error, now time.Time) time.Time {
	if reason, ok := provider.RevokedReason(err); ok {
		s.broken(ctx, c, reason, now)
		return time.Time{}
	}
	if d, ok := provider.RetryAfter(err); ok {
		if d < time.Second {
			d = time.Second
		}
		if provider.RetryGuessed(err) {
			// The provider named no wait (Zoom sometimes leaves Retry-After out): back off
			// from the client's default, longer each time, as for an error; a fixed wait
			// would poll a provider that keeps refusing every few seconds for as long as it
			// lasts.
			d = s.backoff(c.ID, d)
		}
		s.activity(ctx, c.UserID, store.Activity{At: now, Kind: kind, Target: target, Outcome: "rate_limited", Reason: fmt.Sprintf("rate limited, retrying after %s", d.Round(time.Second))})
		// Retry-After counts from the answer, not from when this run started.
		return s.clock.Now().Add(d)
	}
	d := s.backoff(c.ID, s.opt.RetryBase)
	s.log.Warn("provider call failed; retrying", "user", c.UserID, "connection", c.ID, "target", target, "retry_in", d, "err", err)
	s.activity(ctx, c.UserID, store.Activity{At: now, Kind: kind, Target: target, Outcome: "error", Reason: fmt.Sprintf("provider error, retrying in %s", d)})
	return now.Add(d)
}

// backoff counts one more consecutive failure of a connection and returns the wait before the
// next try: base, doubled for each failure before, capped at Options.RetryMax (or base, when
// that is longer).
func (s *Scheduler) backoff(connID string, base time.Duration) time.Duration {
	s.mu.Lock()
	s.failures[connID]++
	n := s.failures[connID]
	s.mu.Unlock()
	limit := max(s.opt.RetryMax, base)
	d := base << min(n-1, 16)
	if d > limit || d <= 0 {
		d = limit
	}
	return d
}

func (s *Scheduler) succeeded(connID string) {
	s.mu.Lock()
	delete(s.failures, connID)
	s.mu.Unlock()
}

func (s *Scheduler) activity(ctx context.Context, userID string, a store.Activity) {
	if err := s.st.AppendActivity(ctx, userID, a); err != nil {
		s.log.Error("append activity", "user", userID, "err", err)
	}
}
