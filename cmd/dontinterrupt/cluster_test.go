package main

// The multi-process kill test (issue #9): three dontinterrupt processes on one Redis, one
// killed with SIGKILL in the middle of a boundary burst. No transition is missed and none is
// written twice. Run it with `make test-cluster` (DI_TEST_CLUSTER=1); it builds the binary.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	redisstore "github.com/dontinterrupt/dontinterrupt/internal/store/redis"
)

// burstGate sits in front of the Slack fake. Status writes are applied at once; from the
// holdAt-th on, their answers are held until release, so every replica has writes Slack
// accepted and it has not heard of yet: the moment to kill one.
type burstGate struct {
	holdAt, need int

	mu      sync.Mutex
	applied int
	held    int
	opened  bool
	open    chan struct{}
	ready   chan struct{} // closed when need answers are held
}

func newBurstGate(holdAt, need int) *burstGate {
	return &burstGate{holdAt: holdAt, need: need, open: make(chan struct{}), ready: make(chan struct{})}
}

func (g *burstGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/users.profile.set" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		g.mu.Lock()
		g.applied++
		hold := !g.opened && g.applied >= g.holdAt
		if hold {
			g.held++
			if g.held == g.need {
				close(g.ready)
			}
		}
		g.mu.Unlock()
		if hold {
			select {
			case <-g.open:
			case <-r.Context().Done():
				return // the caller is gone (killed)
			}
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

func (g *burstGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.opened {
		g.opened = true
		close(g.open)
	}
}

func (g *burstGate) counts() (applied, held int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.applied, g.held
}

func TestClusterKillOneReplica(t *testing.T) {
	if os.Getenv("DI_TEST_CLUSTER") == "" {
		t.Skip("the multi-process kill test runs with DI_TEST_CLUSTER=1 (make test-cluster)")
	}
	const (
		people   = 200
		replicas = 3
		workers  = 8
		lease    = 3 * time.Second
		// bound is how long after the lease the last write may come: the survivors claim the
		// killed replica's people when its lease ends, then write.
		bound = 3 * time.Second
	)
	bin := buildBinary(t)
	rs := startRedisServer(t)
	url := rs.url(0)
	// Hold answers from a third of the writes on, until every replica has some held: with
	// `workers` workers each, more than (replicas-1)×workers held answers means all have.
	gate := newBurstGate(people/3, (replicas-1)*workers+1)
	f := newFleet(t, url, gate.wrap)
	t.Cleanup(gate.release) // before the fake's server closes (cleanups run last first)
	ctx := t.Context()
	st, err := redisstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rc := redisClient(t, url)

	// Each person in a Slack workspace of their own: the burst is bounded by no workspace's
	// rate limit (this test is about the kill).
	seedStart := time.Now()
	ps := make([]fleetPerson, people)
	for i := range ps {
		ps[i] = f.addPerson(ctx, st, i+1, fmt.Sprintf("T%04d", i+1), fmt.Sprintf("U%04d", i+1))
		if i%2 == 1 {
			// Half replace a status they set by hand: for them a write taken for theirs
			// would be written again, for the others left alone (both wrong).
			u, err := st.GetUser(ctx, ps[i].id)
			if err != nil {
				t.Fatal(err)
			}
			u.Rules.LeaveOwnStatus = false
			if err := st.PutUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("seeded %d people in %v", people, time.Since(seedStart).Round(time.Millisecond))
	b := time.Now().Add(8 * time.Second).Truncate(time.Second)
	end := b.Add(30 * time.Minute)
	for _, p := range ps {
		f.google.AddEvent(p.googleSub, "primary", googlefake.Event{Summary: "Planning", Start: b, End: end})
	}

	env := maps.Clone(f.env)
	env["DI_LEASE"] = lease.String()
	env["DI_WORKERS"] = strconv.Itoa(workers)
	env["DI_SHUTDOWN_TIMEOUT"] = "5s"
	// This test is about the kill, not the rate-limit schedule (scheduler/lead_test.go): no
	// write leads the boundary, and the deployment's own pace books 200 people within 200 ms.
	env["DI_WRITE_LEAD"] = "0"
	env["DI_RATE_LIMITS"] = "self=1000/1s"
	rep := make([]*replica, replicas)
	for i := range rep {
		rep[i] = startReplica(t, bin, fmt.Sprintf("replica-%d", i), env)
	}
	for _, r := range rep {
		if code, body := get(t, r.base+"/readyz"); code != 200 {
			t.Fatalf("%s /readyz = %d %q", r.name, code, body)
		}
	}
	// The first runs sync every calendar and plan: everyone is due at the boundary (or in the
	// 200 ms after it that the pace books).
	bms := strconv.FormatInt(b.UnixMilli(), 10)
	bEnd := strconv.FormatInt(b.Add(time.Second).UnixMilli(), 10)
	poll(t, "every person to be due at the boundary", time.Until(b.Add(-time.Second)), func() bool {
		n, err := rc.ZCount(ctx, redisstore.DefaultPrefix+"due", bms, bEnd).Result()
		return err == nil && n == people
	})
	if n := len(profileSets(f.slack)); n != 0 {
		t.Fatalf("%d status writes before the boundary", n)
	}
	t.Logf("everyone planned %v before the boundary", time.Until(b).Round(time.Millisecond))

	// The burst: once every replica has accepted-but-unanswered writes, kill one.
	select {
	case <-gate.ready:
	case <-time.After(time.Until(b) + 20*time.Second):
		applied, held := gate.counts()
		t.Fatalf("the burst did not reach the kill point: %d writes applied, %d held (want %d)", applied, held, gate.need)
	}
	victim := rep[0]
	victim.kill(t)
	killedAt := time.Now()
	applied, held := gate.counts()
	gate.release()
	t.Logf("killed %s %v after the boundary, with %d writes applied and %d answers held", victim.name, killedAt.Sub(b).Round(time.Millisecond), applied, held)

	// Every person's status is written and recorded.
	recorded := map[string]bool{}
	allRecorded := waitUntil(t, lease+15*time.Second, func() bool {
		all := true
		for _, p := range ps {
			if recorded[p.id] {
				continue
			}
			ts, err := st.GetTargetState(ctx, p.id, "slack:status:slack-"+p.id)
			var w struct {
				Status struct{ Text string } `json:"status"`
			}
			if err != nil || json.Unmarshal(ts.Written, &w) != nil || w.Status.Text != "In a meeting" {
				all = false // not yet, or not as ours (taken for the person's own)
				continue
			}
			recorded[p.id] = true
		}
		return all
	})
	if !allRecorded {
		var not []string
		for _, p := range ps {
			if !recorded[p.id] {
				ts, _ := st.GetTargetState(ctx, p.id, "slack:status:slack-"+p.id)
				not = append(not, p.id+" "+string(ts.Written))
			}
		}
		t.Errorf("%d people have no status recorded as ours %v after the boundary:\n%s", len(not), time.Since(b).Round(time.Millisecond), strings.Join(not, "\n"))
	}

	writes := f.statusWrites()
	var missing, twice []string
	var last time.Time
	for _, p := range ps {
		calls := writes[p.slackUser]
		switch {
		case len(calls) == 0:
			missing = append(missing, p.id)
		case len(calls) > 1:
			twice = append(twice, fmt.Sprintf("%s×%d", p.id, len(calls)))
		}
		for _, c := range calls {
			if text, _, exp := profileOf(t, c); text != "In a meeting" || exp != end.Unix() {
				t.Errorf("%s: status %q expiring %d, want the meeting's until %d", p.id, text, exp, end.Unix())
			}
			if c.Time.After(last) {
				last = c.Time
			}
		}
		if s := f.slack.Status(p.slackUser); s.Text != "In a meeting" {
			t.Errorf("%s: Slack shows %+v, want the meeting's status", p.id, s)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d people never got their status (transitions missed): %v", len(missing), missing)
	}
	if len(twice) > 0 {
		slices.Sort(twice)
		t.Errorf("%d people got their status written more than once: %v", len(twice), twice)
	}
	t.Logf("last write %v after the boundary (lease %v)", last.Sub(b).Round(time.Millisecond), lease)
	if lag := last.Sub(b); lag > lease+bound {
		t.Errorf("the last write came %v after the boundary, want within the lease %v + %v", lag.Round(time.Millisecond), lease, bound)
	}

	// The survivors took over the victim's people: those it had written were adopted.
	adopted := 0
	for _, r := range rep[1:] {
		adopted += strings.Count(r.logs.String(), "provider already shows the wanted state")
	}
	if adopted == 0 {
		t.Error("no survivor adopted a write of the killed replica (it had writes accepted and unanswered)")
	}
	t.Logf("writes adopted by the survivors: %d", adopted)

	// The survivors stop gracefully, and no process saw a data race.
	for _, r := range rep[1:] {
		if err := r.stop(10 * time.Second); err != nil {
			t.Errorf("%s: graceful stop: %v", r.name, err)
		}
	}
	for _, r := range rep {
		if strings.Contains(r.logs.String(), "DATA RACE") {
			t.Errorf("%s reported a data race:\n%s", r.name, tail(r.logs.String(), 6000))
		}
	}
}
