package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// testRedis starts a private redis-server for the package's tests (never the shared one).
func testRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is needed: %v", err)
		}
		t.Skipf("no redis-server on PATH: %v", err)
	}
	rs, err := startRedis(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.stop)
	return rs.url
}

func tinyParams(t *testing.T, redisURL, scenario, strategy string, people int) params {
	return params{
		scenario: scenario, strategy: strategy, people: people, wsMin: 10, wsMax: 30, seed: 7,
		storeKind: "redis", redisURL: redisURL, dir: t.TempDir(), workers: 8,
		lead: 5 * time.Second, warmup: 15 * time.Second, gap: 10 * time.Second,
		burstRate: 20, interval: 5 * time.Second, progress: testWriter{t},
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// Every scenario at tiny scale, on a private Redis, each run in its own database. On the fake
// clock (day) the timing is exact, so our scheduler must write at most once per block and
// status, never redundantly, without a 429, within a second of the boundary for what the limits
// allow, and read calendars at most 100 times a day; the poller must write set + clear. On the
// wall clock (realtime, burst) timing depends on how loaded the machine is (make test runs
// every package at once, with the race detector), so those runs check what does not: one
// status write per block, no redundant write, a burst that starts before its boundary and ends
// within its bound; their 429s and lag are logged, and measured by make bench.
func TestScenariosTiny(t *testing.T) {
	url := testRedis(t)
	db := func(n int) string { return strings.TrimSuffix(url, "/0") + "/" + string(rune('0'+n)) }
	ctx := context.Background()

	t.Run("day/ours", func(t *testing.T) {
		t.Parallel()
		prm := tinyParams(t, db(1), "day", "ours", 60)
		prm.lead = time.Minute // the default: on the fake clock no warm-up is needed for it
		res, err := run(ctx, prm)
		if err != nil {
			t.Fatal(err)
		}
		wantOurs(t, res, true)
		reads := float64(res.Calls["google.calendar.events.list"]) / float64(res.People) / (res.SpanHours / 24)
		if reads > 100 || reads < 90 {
			t.Errorf("calendar reads per person per day = %.1f, want 90..100 (a resync every 15 min and a few pushes)", reads)
		}
		if res.CPUSeconds <= 0 || res.PeakRSSMB <= 0 {
			t.Errorf("CPU %.2f s, peak RSS %.0f MB: not measured", res.CPUSeconds, res.PeakRSSMB)
		}
	})
	t.Run("day/poll60", func(t *testing.T) {
		t.Parallel()
		prm := tinyParams(t, "", "day", "poll60", 20)
		prm.interval = time.Minute
		res, err := run(ctx, prm)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Calls["google.calendar.events.list"]; got != 20*1440 {
			t.Errorf("the poller read calendars %d times, want 20 people × 1,440", got)
		}
		if res.Lag.PerBlockMean["status"] < 1.9 {
			t.Errorf("the poller wrote %.2f status writes per block, want about 2 (set + clear) or more", res.Lag.PerBlockMean["status"])
		}
		if res.Lag.P50 <= 0 {
			t.Errorf("the poller's median lag is %.2f s, want > 0 (it finds out at its next poll)", res.Lag.P50)
		}
	})
	t.Run("realtime/ours", func(t *testing.T) {
		t.Parallel()
		res, err := run(ctx, tinyParams(t, db(2), "realtime", "ours", 50))
		if err != nil {
			t.Fatal(err)
		}
		wantOurs(t, res, false)
	})
	t.Run("realtime/poll60", func(t *testing.T) {
		t.Parallel()
		res, err := run(ctx, tinyParams(t, "", "realtime", "poll60", 50))
		if err != nil {
			t.Fatal(err)
		}
		if res.Lag.Writes == 0 || res.Lag.PerBlockMean["status"] < 1.5 {
			t.Errorf("the poller wrote %d times, %.2f per block: want set + clear", res.Lag.Writes, res.Lag.PerBlockMean["status"])
		}
	})
	// Not parallel: it runs alone while the parallel subtests above wait for this function to
	// return (a wall-clock burst of 60 writes is what a race build on a busy 2-core machine
	// does not keep up with beside three other runs).
	t.Run("burst/ours", func(t *testing.T) {
		res, err := run(ctx, tinyParams(t, db(3), "burst", "ours", 60))
		if err != nil {
			t.Fatal(err)
		}
		if res.BurstWrites != 60 {
			t.Errorf("burst: %d writes, want 60", res.BurstWrites)
		}
		t.Logf("burst: %d 429s", res.Slack429)
		if res.BurstFirst >= 0 || res.BurstLast > res.BurstBound {
			t.Errorf("burst: first write %+.2f s, last %+.2f s from the boundary; want the first before it and the last within %.1f s", res.BurstFirst, res.BurstLast, res.BurstBound)
		}
	})
}

func wantOurs(t *testing.T, res result, exact bool) {
	t.Helper()
	t.Logf("lag p50 %.2f p99 %.2f max %.2f s, 429s %d (%v)", res.Lag.P50, res.Lag.P99, res.Lag.Max, res.Slack429, res.Slack429ByMethod)
	l := res.Lag
	if l.Writes == 0 || l.N == 0 {
		t.Fatalf("no writes measured: %+v", l)
	}
	for target, n := range l.PerBlockMax {
		if n > 1 && target == "status" {
			t.Errorf("up to %d %s writes per block, want at most 1", n, target)
		}
	}
	if l.Redundant != 0 {
		t.Errorf("%d redundant writes, want none", l.Redundant)
	}
	if !exact {
		return
	}
	if res.Slack429 != 0 || res.Google429 != 0 {
		t.Errorf("429s: Slack %d (%v), Google %d; want none", res.Slack429, res.Slack429ByMethod, res.Google429)
	}
	// p99 is the target; the maximum may exceed it by a few slots, because the scheduler
	// keeps slots booked for writes a later change made unnecessary, which an ideal schedule
	// would give to others.
	if l.P99 > 1 || l.Max > 5 {
		t.Errorf("lag p99 %.2f s, max %.2f s; want p99 ≤ 1 s (and max ≤ 5 s) for the writes the limits allow", l.P99, l.Max)
	}
	if len(res.Errors) > 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}

// The tables have one row per run and the columns the issue asks for.
func TestPrintTables(t *testing.T) {
	var b bytes.Buffer
	printTables(&b, []result{
		{Scenario: "day", Strategy: "ours", People: 10, Replicas: 1, SpanHours: 24, CPUSeconds: 864,
			Calls: map[string]int{"google.calendar.events.list": 960}, Lag: lagReport{N: 1, PerBlockMax: map[string]int{"status": 1}, PerBlockMean: map[string]float64{"status": 1}}},
	}, flags{burstRate: 50})
	out := b.String()
	for _, want := range []string{"| day | ours | 10 | 1 |", "| 96.0 |", "1.00%", "status 1 (1.00)", "calendar reads/person/day", "person·day"} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q:\n%s", want, out)
		}
	}
}
