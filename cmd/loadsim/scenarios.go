package main

import (
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/config"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

// params are one scenario's settings (from the flags).
type params struct {
	scenario, strategy string
	people             int
	wsMin, wsMax       int
	seed               uint64
	storeKind          string
	redisURL           string
	dir                string
	workers            int
	lead               time.Duration
	warmup             time.Duration
	burstRate          int
	burstDIRate        int
	interval           time.Duration // the reference poller's
	gap                time.Duration // realtime: between the two bursts
	memprofile         string        // a heap profile at the end of the measured span
	progress           io.Writer
}

// result is one row of the table (a child process prints it as JSON).
type result struct {
	Scenario string    `json:"scenario"`
	Strategy string    `json:"strategy"`
	People   int       `json:"people"`
	Replicas int       `json:"replicas"`
	Store    string    `json:"store"`
	Lag      lagReport `json:"lag"`
	// Calls by provider method over the measured span, and that span.
	Calls     map[string]int `json:"calls"`
	SpanHours float64        `json:"span_hours"`
	Slack429  int            `json:"slack_429"`
	Google429 int            `json:"google_429"`
	Errors    map[string]int `json:"errors,omitempty"`
	// CPU of this process (scheduler, fakes and driver: all in one) over the measured span,
	// and of the private redis-server.
	CPUSeconds      float64 `json:"cpu_s"`
	RedisCPUSeconds float64 `json:"redis_cpu_s"`
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	WallSeconds     float64 `json:"wall_s"`
	SetupSeconds    float64 `json:"setup_s"`
	Steps           int64   `json:"steps,omitempty"`
	Nudges          int64   `json:"nudges,omitempty"` // lost wake-ups the driver repaired
	// Burst: first and last write relative to the boundary, and the bound.
	BurstWrites int     `json:"burst_writes,omitempty"`
	BurstFirst  float64 `json:"burst_first,omitempty"`
	BurstLast   float64 `json:"burst_last,omitempty"`
	BurstBound  float64 `json:"burst_bound,omitempty"`
	BurstDIRate int     `json:"burst_di_rate,omitempty"`
	// Slack429ByMethod says which methods the fake refused.
	Slack429ByMethod map[string]int `json:"slack_429_by_method,omitempty"`
	// First429 are the first Slack 429s: time from the start of the measured span, method,
	// workspace, person.
	First429 []string `json:"first_429,omitempty"`
	Notes    string   `json:"notes,omitempty"`
}

// signingKey is one key for both fakes' ID tokens (made once: RSA keys are slow to make).
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(crand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// cpuTime is this process's user+system CPU time; peakRSS its maximum resident set.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func peakRSSMB() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}

// redisCPU reads the redis-server's CPU seconds (INFO cpu), 0 without Redis.
func (w *world) redisCPU(ctx context.Context) float64 {
	if w.rs == nil {
		return 0
	}
	info, err := w.rs.Client().InfoMap(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var sum float64
	for _, k := range []string{"used_cpu_sys", "used_cpu_user"} {
		var v float64
		fmt.Sscan(info["CPU"][k], &v)
		sum += v
	}
	return sum
}

var _ = redis.Nil // the store's client type

func (prm params) sizes(r *rand.Rand) func() int {
	return func() int {
		if prm.wsMax <= prm.wsMin {
			return prm.wsMin
		}
		return prm.wsMin + r.IntN(prm.wsMax-prm.wsMin+1)
	}
}

func (prm params) logf(format string, args ...any) {
	if prm.progress != nil {
		fmt.Fprintf(prm.progress, "loadsim %s/%s: "+format+"\n", append([]any{prm.scenario, prm.strategy}, args...)...)
	}
}

// diRates are the rates the scheduler books against: the defaults (a tenth under the fakes'
// limits), as DI_RATE_LIMITS would give them.
func diRates() map[string]ratelimit.Rate { return config.DefaultRateLimits() }

// capacityFor is what the limits allow around one boundary.
func capacityFor(rates map[string]ratelimit.Rate, lead time.Duration) capacity {
	return capacity{
		perWorkspace: map[string]time.Duration{
			"users.profile.set": rates[scheduler.RateSlackProfileSet].Every(),
			"dnd.setSnooze":     rates[scheduler.RateSlackSnooze].Every(),
			"users.setPresence": rates[scheduler.RateSlackPresence].Every(),
		},
		self:        rates[scheduler.RateSelf].Every(),
		profileUser: rates[scheduler.RateSlackProfileUser].Every(),
		lead:        lead,
	}
}

// run runs one scenario with one strategy.
func run(ctx context.Context, prm params) (result, error) {
	switch prm.scenario {
	case "realtime", "day":
	case "burst":
		if prm.strategy != "ours" {
			return result{}, errors.New("the burst scenario is run with our scheduler only")
		}
	default:
		return result{}, fmt.Errorf("unknown scenario %q", prm.scenario)
	}
	switch prm.strategy {
	case "ours", "poll60":
	default:
		return result{}, fmt.Errorf("unknown strategy %q", prm.strategy)
	}
	t0 := time.Now()
	var res0 result
	st := newStats()
	rng := rand.New(rand.NewPCG(prm.seed, 0))

	var (
		clk     clock.Clock
		fake    *clock.Fake
		day     = time.Date(2026, 1, 12, 0, 0, 0, 0, time.UTC) // a Monday
		changes []change
		gen     func(*simPerson) []simEvent
		from    time.Time // measured span
		to      time.Time
		until   time.Time // real time: when the run ends
	)
	cfg := worldConfig{
		storeKind: prm.storeKind, redisURL: prm.redisURL, dir: prm.dir, stats: st,
		googleProjectQPM: max(10000, 3*prm.people), conns: 2 * prm.workers,
	}
	rates := diRates()
	lead := prm.lead
	sizes := prm.sizes(rng)
	switch prm.scenario {
	case "day":
		fake = clock.NewFake(day.Add(-30 * time.Minute))
		clk = fake
		gen = dayCalendar(prm.seed, day, &changes)
		from, to = day, day.Add(24*time.Hour)
	case "realtime":
		clk = clock.Real{}
		b1 := time.Now().Add(prm.warmup).Truncate(time.Second)
		gen = burstCalendar(prm.seed, b1, prm.gap, &changes)
		from, to = b1.Add(-time.Second), b1.Add(2*prm.gap+prm.gap/2)
		until = to
	case "burst":
		clk = clock.Real{}
		b := time.Now().Add(prm.warmup).Truncate(time.Second)
		gen = func(p *simPerson) []simEvent {
			return []simEvent{{start: b, end: b.Add(30 * time.Minute), kind: "meeting"}}
		}
		from, to = b, b.Add(time.Second)
		until = b.Add(time.Duration(prm.people/max(prm.burstRate, 1))*time.Second + 5*time.Second)
		sizes = func() int { return prm.people }
		diRate := prm.burstDIRate
		if diRate <= 0 {
			diRate = max(prm.burstRate*9/10, 1)
		}
		rates[scheduler.RateSlackProfileSet] = ratelimit.Rate{N: diRate, Per: time.Second}
		// The read before each write is booked with it: at the fake's users.profile.get
		// limit (twice users.profile.set, as Tier 4 is Tier 3's), a tenth under.
		rates[scheduler.RateSlackProfileGet] = ratelimit.Rate{N: 2 * diRate, Per: time.Second}
		res0.BurstDIRate = diRate
		cfg.slackLimits = map[string]int{"users.profile.set": prm.burstRate, "users.profile.get": 2 * prm.burstRate}
		cfg.slackWindow = time.Second
	}
	cfg.clk, cfg.now = clk, clk.Now
	ours := prm.strategy == "ours"
	if !ours {
		cfg.storeKind = "none"
	}
	w, err := newWorld(ctx, cfg)
	if err != nil {
		return result{}, err
	}
	defer w.close()

	if err := w.addPeople(ctx, prm.people, sizes, gen, ours, func(n int) { prm.logf("seeded %d people", n) }); err != nil {
		return result{}, fmt.Errorf("seed people: %w", err)
	}
	recordChanges(w.people, changes)
	slices.SortFunc(changes, func(a, b change) int { return a.at.Compare(b.at) })
	prm.logf("seeded %d people in %d workspaces, %d calendar changes (%.1fs)", len(w.people), countTeams(w.people), len(changes), time.Since(t0).Seconds())

	res := res0
	res.Scenario, res.Strategy, res.People, res.Replicas, res.Store = prm.scenario, prm.strategy, prm.people, 1, prm.storeKind
	if !ours {
		res.Store = "memory"
	}
	res.SetupSeconds = time.Since(t0).Seconds()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sched *scheduler.Scheduler
	var cst *countingStore
	var runDone chan error
	var dclk *drivenClock
	var stopping atomic.Bool
	if ours {
		cst = &countingStore{Store: w.st}
		schedClock := clk
		if fake != nil {
			dclk = &drivenClock{Fake: fake, st: cst}
			schedClock = dclk
		}
		sched, err = scheduler.New(scheduler.Deps{
			Logger:  errorLogger(&stopping),
			Store:   cst,
			Vault:   w.vault,
			Clock:   schedClock,
			Sources: map[string]scheduler.Source{"google": googleSource{w.gc}},
			Slack:   w.sc,
			Options: scheduler.Options{Workers: prm.workers, RateLimits: rates, Lead: lead},
			Limits:  w.limits(),
		})
		if err != nil {
			return result{}, err
		}
		// Everyone's first run (their first full sync): at once in real time, spread over
		// the first 15 minutes (whole seconds) of a simulated day, as people who connected
		// over time would be.
		for _, p := range w.people {
			at := clk.Now()
			if fake != nil {
				at = at.Add(time.Duration(rng.IntN(900)) * time.Second)
			}
			if err := w.st.MarkDue(ctx, p.id, at); err != nil {
				return result{}, err
			}
		}
		if fake != nil {
			if err := w.st.CreateUser(ctx, store.User{ID: nudgeUser, Created: clk.Now(), Rules: presence.DefaultRules()}); err != nil {
				return result{}, err
			}
		}
		runDone = make(chan error, 1)
		go func() { runDone <- sched.Run(runCtx) }()
	}

	// push applies a change to the fake calendar and, for our scheduler, tells it the way a
	// push notification does (what web/webhooks.go does for Microsoft Graph: RequestSync for
	// the connection, then Wake). The webhook's HTTP handler itself is not in the loop.
	var pushErrs int
	push := func(c change) {
		ev := c.p.events[c.ev]
		var err error
		if c.cancel {
			err = w.gfake.DeleteEvent(c.p.sub, "primary", ev.id)
		} else {
			err = w.gfake.UpdateEvent(c.p.sub, "primary", ev.id, func(e *googlefake.Event) { e.Start, e.End = c.newStart, c.newEnd })
		}
		if err == nil && ours {
			now := clk.Now()
			if err = w.st.RequestSync(ctx, c.p.id, c.p.gconn, now); err == nil {
				err = sched.Wake(ctx, c.p.id)
			}
		}
		if err != nil {
			pushErrs++
		}
	}
	nextChange := 0
	applyChanges := func(now time.Time) {
		for nextChange < len(changes) && !changes[nextChange].at.After(now) {
			push(changes[nextChange])
			nextChange++
		}
	}
	nextChangeAt := func() (time.Time, bool) {
		if nextChange < len(changes) {
			return changes[nextChange].at, true
		}
		return time.Time{}, false
	}

	var pl *poller
	var pollErrs int64
	var pollMu sync.Mutex
	if !ours {
		pl = newPoller(w, prm.interval)
	}

	var cpu0 time.Duration
	var redis0 float64
	var wall0 time.Time
	startMeasure := func() {
		st.on.Store(true)
		cpu0, redis0, wall0 = cpuTime(), w.redisCPU(ctx), time.Now()
	}
	stopMeasure := func() {
		st.on.Store(false)
		if prm.memprofile != "" {
			if f, err := os.Create(prm.memprofile); err == nil {
				runtime.GC()
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
		res.CPUSeconds = (cpuTime() - cpu0).Seconds()
		res.RedisCPUSeconds = w.redisCPU(ctx) - redis0
		res.WallSeconds = time.Since(wall0).Seconds()
	}
	lastProgress := time.Now()
	progress := func(now time.Time) {
		if time.Since(lastProgress) < 10*time.Second {
			return
		}
		lastProgress = time.Now()
		st.mu.Lock()
		nw := len(st.writes)
		st.mu.Unlock()
		prm.logf("at %s: %d writes so far, cpu %.0fs, rss %.0f MB", now.Format("15:04:05"), nw, (cpuTime() - cpu0).Seconds(), peakRSSMB())
	}

	switch {
	case fake != nil && ours: // day, our scheduler
		d := &fakeDriver{clk: dclk, st: cst, sched: sched}
		prm.logf("warming up (first syncs) until %s", from.Format("15:04"))
		if err := d.run(runCtx, from, nextChangeAt, applyChanges, progress); err != nil {
			return result{}, err
		}
		startMeasure()
		if err := d.run(runCtx, to, nextChangeAt, applyChanges, progress); err != nil {
			return result{}, err
		}
		stopMeasure()
		res.Steps, res.Nudges = d.steps, d.nudges
	case fake != nil: // day, reference poller: a step per simulated second
		prm.logf("polling every %s from %s", prm.interval, from.Format("15:04"))
		fake.Set(from)
		startMeasure()
		for t := from; t.Before(to); t = t.Add(time.Second) {
			fake.Set(t)
			applyChanges(t)
			pl.pollAll(runCtx, pl.due(t), prm.workers, &pollErrs, &pollMu)
			progress(t)
			if runCtx.Err() != nil {
				return result{}, runCtx.Err()
			}
		}
		stopMeasure()
	default: // real time
		startMeasure()
		ticker := time.NewTicker(50 * time.Millisecond)
		defer ticker.Stop()
		nextPoll := time.Now().Truncate(time.Second).Add(time.Second)
		var pollWG sync.WaitGroup
		for time.Now().Before(until) {
			select {
			case <-runCtx.Done():
				return result{}, runCtx.Err()
			case <-ticker.C:
			}
			now := time.Now()
			applyChanges(now)
			if pl != nil && !now.Before(nextPoll) {
				idx := pl.due(nextPoll)
				nextPoll = nextPoll.Add(time.Second)
				pollWG.Add(1)
				go func() {
					defer pollWG.Done()
					pl.pollAll(runCtx, idx, prm.workers, &pollErrs, &pollMu)
				}()
			}
			progress(now)
		}
		pollWG.Wait()
		stopMeasure()
	}
	stopping.Store(true)
	cancel()
	if runDone != nil {
		<-runDone
	}
	res.PeakRSSMB = peakRSSMB()

	st.mu.Lock()
	defer st.mu.Unlock()
	attrLead := time.Duration(0)
	if ours {
		attrLead = lead
	}
	// Both strategies are held to what the limits allow within our lead of the boundary.
	res.Lag = analyse(w.people, st.writes, attrLead, capacityFor(rates, lead), slackMethod, from, to)
	res.Calls = map[string]int{}
	for m, n := range st.slackCalls {
		res.Calls["slack."+m] = n
	}
	for m, n := range st.googleCalls {
		res.Calls["google."+m] = n
	}
	res.Slack429, res.Google429 = st.slack429, st.google429
	res.Slack429ByMethod = st.slack429By
	for _, f := range st.first429 {
		res.First429 = append(res.First429, fmt.Sprintf("%+.3fs %s %s %s", f.at.Sub(from).Seconds(), f.method, f.team, f.user))
	}
	if len(st.slackErrors) > 0 || pushErrs > 0 || pollErrs > 0 {
		res.Errors = map[string]int{}
		for k, n := range st.slackErrors {
			res.Errors["slack."+k] = n
		}
		if pushErrs > 0 {
			res.Errors["push"] = pushErrs
		}
		if pollErrs > 0 {
			res.Errors["poll"] = int(pollErrs)
		}
	}
	res.SpanHours = to.Sub(from).Hours()
	if prm.scenario != "day" {
		res.SpanHours = res.WallSeconds / 3600
	}
	if prm.scenario == "burst" {
		var ts []int64
		for _, wr := range st.writes {
			if wr.target == targetStatus {
				ts = append(ts, wr.at)
			}
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		res.BurstWrites = len(ts)
		if len(ts) > 0 {
			b := from.UnixNano()
			res.BurstFirst = float64(ts[0]-b) / 1e9
			res.BurstLast = float64(ts[len(ts)-1]-b) / 1e9
		}
		res.BurstBound = float64(prm.people)/float64(prm.burstRate) + 1
	}
	return res, nil
}

func countTeams(people []*simPerson) int {
	n, last := 0, ""
	for _, p := range people {
		if p.team != last {
			n++
			last = p.team
		}
	}
	return n
}
