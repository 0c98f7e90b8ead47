package ratelimit

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// schedules returns the implementations under test: Memory, and Redis on DB 12 of the test
// Redis (DI_TEST_REDIS_RATELIMIT_URL), which this package alone uses and flushes.
func schedules(t *testing.T) map[string]func() Schedule {
	out := map[string]func() Schedule{"memory": func() Schedule { return NewMemory() }}
	url := os.Getenv("DI_TEST_REDIS_RATELIMIT_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/12"
	}
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s does not answer: %v", url, err)
		}
		t.Logf("skipping the Redis schedule: %s does not answer (%v)", url, err)
		return out
	}
	n := 0
	out["redis"] = func() Schedule {
		if err := rdb.FlushDB(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		n++
		return NewRedis(rdb, fmt.Sprintf("test%d:", n))
	}
	return out
}

var (
	t0    = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	early = t0.Add(-time.Hour) // "now" for bookings made well ahead
)

func TestParseRates(t *testing.T) {
	got, err := ParseRates(" slack.users.profile.set=45/1m, teams.presence=1400/30s,self=500/s ")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Rate{
		"slack.users.profile.set": {45, time.Minute},
		"teams.presence":          {1400, 30 * time.Second},
		"self":                    {500, time.Second},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := FormatRates(got); s != "self=500/1s,slack.users.profile.set=45/1m,teams.presence=1400/30s" {
		t.Fatalf("FormatRates = %q", s)
	}
	if got["slack.users.profile.set"].Every() != 1333333333*time.Nanosecond {
		t.Fatalf("Every = %v", got["slack.users.profile.set"].Every())
	}
	for _, bad := range []string{"x", "a=", "a=5", "a=0/1m", "a=-1/1m", "a=5/soon", "a=5/0s", "=5/1m", "a=2000/1s"} {
		if _, err := ParseRates(bad); err == nil {
			t.Errorf("ParseRates(%q) gave no error", bad)
		}
	}
}

func TestReserve(t *testing.T) {
	ctx := context.Background()
	ws := Bucket{Key: "slack.users.profile.set:T1", Every: time.Second}
	for name, mk := range schedules(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("free slot is the boundary itself", func(t *testing.T) {
				s := mk()
				got, err := s.Reserve(ctx, "u1@b", []Bucket{ws}, t0, time.Minute, early)
				if err != nil || !got.Equal(t0) {
					t.Fatalf("got %v, %v; want %v", got, err, t0)
				}
				again, err := s.Reserve(ctx, "u1@b", []Bucket{ws}, t0, time.Minute, early)
				if err != nil || !again.Equal(got) {
					t.Fatalf("same owner again: %v, %v; want %v", again, err, got)
				}
			})
			t.Run("burst leads, then spills", func(t *testing.T) {
				s := mk()
				var times []time.Time
				for i := range 100 {
					got, err := s.Reserve(ctx, fmt.Sprintf("u%d@b", i), []Bucket{ws}, t0, 30*time.Second, early)
					if err != nil {
						t.Fatal(err)
					}
					times = append(times, got)
				}
				// 31 slots in [t0−30s, t0] (the boundary's own slot and 30 before it), then
				// the rest one per second after it.
				for i, got := range times {
					var lo time.Time // the request must fall in the slot [lo, lo+1s)
					switch {
					case i == 0:
						if !got.Equal(t0) {
							t.Fatalf("first request at %v, want the boundary", got.Sub(t0))
						}
						continue
					case i <= 30:
						lo = t0.Add(-time.Duration(i) * time.Second)
					default:
						lo = t0.Add(time.Duration(i-30) * time.Second)
					}
					if got.Before(lo) || !got.Before(lo.Add(time.Second)) {
						t.Fatalf("request %d at %v, want in [%v, %v)", i, got.Sub(t0), lo.Sub(t0), lo.Add(time.Second).Sub(t0))
					}
				}
				assertConforms(t, times, time.Second)
			})
			t.Run("a slot must be free in every bucket", func(t *testing.T) {
				s := mk()
				user := Bucket{Key: "slack.profile.user:C1", Every: 6 * time.Second}
				a, err := s.Reserve(ctx, "a", []Bucket{ws, user}, t0, time.Minute, early)
				if err != nil || !a.Equal(t0) {
					t.Fatalf("first: %v %v", a, err)
				}
				// Same person's token again, for the same boundary: the user bucket's slot
				// [t0, t0+6s) is taken, so the workspace slot below that is used.
				b, err := s.Reserve(ctx, "b", []Bucket{ws, user}, t0.Add(3*time.Second), time.Minute, early)
				if err != nil {
					t.Fatal(err)
				}
				if !b.Before(t0) || b.Before(t0.Add(-time.Second)) {
					t.Fatalf("second at %v, want in the second before t0", b.Sub(t0))
				}
				// Another person in the workspace, boundary t0+3s: free in its own bucket and the
				// workspace slot of t0+3s is free.
				c, err := s.Reserve(ctx, "c", []Bucket{ws, {Key: "slack.profile.user:C2", Every: 6 * time.Second}}, t0.Add(3*time.Second), time.Minute, early)
				if err != nil || !c.Equal(t0.Add(3*time.Second)) {
					t.Fatalf("third: %v %v", c.Sub(t0), err)
				}
			})
			t.Run("no lead means at or after the boundary", func(t *testing.T) {
				s := mk()
				for i := range 5 {
					got, err := s.Reserve(ctx, fmt.Sprint(i), []Bucket{ws}, t0, 0, early)
					if err != nil {
						t.Fatal(err)
					}
					if got.Before(t0) || got.After(t0.Add(time.Duration(i+1)*time.Second)) {
						t.Fatalf("request %d at %v", i, got.Sub(t0))
					}
				}
			})
			t.Run("concurrent bookings never share a slot", func(t *testing.T) {
				s := mk()
				var mu sync.Mutex
				var times []time.Time
				var wg sync.WaitGroup
				for g := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range 50 {
							got, err := s.Reserve(ctx, fmt.Sprintf("g%d-%d", g, i), []Bucket{{Key: "k", Every: 10 * time.Millisecond}}, t0, time.Second, early)
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							times = append(times, got)
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if len(times) != 200 {
					t.Fatalf("%d bookings", len(times))
				}
				assertConforms(t, times, 10*time.Millisecond)
				slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
				if span := times[len(times)-1].Sub(times[0]); span > 2*time.Second {
					t.Fatalf("200 bookings at 100/s span %v, want about 2s", span)
				}
			})
			t.Run("a changed plan frees its slot", func(t *testing.T) {
				s := mk()
				// Ada is first booked for 10:00, then her meeting moves to 10:00:01.
				if got, err := s.Reserve(ctx, "ada", []Bucket{ws}, t0, time.Minute, early); err != nil || !got.Equal(t0) {
					t.Fatalf("first booking %v %v", got, err)
				}
				if got, err := s.Reserve(ctx, "ada", []Bucket{ws}, t0.Add(500*time.Millisecond), time.Minute, early); err != nil || !got.Equal(t0.Add(500*time.Millisecond)) {
					t.Fatalf("moved booking %v %v, want the new boundary (the old slot was hers)", got, err)
				}
				// Grace at 10:00 gets the slot Ada's old booking left... which is the same
				// slot [10:00, 10:00:01) Ada holds now: one below.
				if got, err := s.Reserve(ctx, "grace", []Bucket{ws}, t0, time.Minute, early); err != nil || !got.Before(t0) {
					t.Fatalf("grace %v %v, want before 10:00", got, err)
				}
				// Ada moves again, to 10:05: her slot at 10:00 is freed and Bob gets 10:00:00.5.
				if _, err := s.Reserve(ctx, "ada", []Bucket{ws}, t0.Add(5*time.Minute), time.Minute, early); err != nil {
					t.Fatal(err)
				}
				if got, err := s.Reserve(ctx, "bob", []Bucket{ws}, t0.Add(500*time.Millisecond), time.Minute, early); err != nil || !got.Equal(t0.Add(500*time.Millisecond)) {
					t.Fatalf("bob %v %v, want the slot Ada freed", got, err)
				}
			})
			t.Run("never before now, and a past slot stays taken", func(t *testing.T) {
				s := mk()
				now := t0.Add(-10 * time.Second)
				var times []time.Time
				for i := range 15 {
					got, err := s.Reserve(ctx, fmt.Sprint("p", i), []Bucket{ws}, t0, time.Minute, now)
					if err != nil {
						t.Fatal(err)
					}
					if got.Before(now) {
						t.Fatalf("booking %d at %v, before now (%v)", i, got.Sub(t0), now.Sub(t0))
					}
					times = append(times, got)
				}
				assertConforms(t, times, time.Second)
				// p0 wrote at 10:00 and is rebooked for 11:00 after it: its used slot is kept.
				if _, err := s.Reserve(ctx, "p0", []Bucket{ws}, t0.Add(time.Hour), time.Minute, t0.Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				got, err := s.Reserve(ctx, "late", []Bucket{ws}, t0, 0, t0)
				if err != nil {
					t.Fatal(err)
				}
				if slot(got.UnixMicro(), time.Second.Microseconds()) == slot(t0.UnixMicro(), time.Second.Microseconds()) {
					t.Fatalf("late booking got the slot p0 used")
				}
			})
			t.Run("bad buckets", func(t *testing.T) {
				s := mk()
				if _, err := s.Reserve(ctx, "x", nil, t0, 0, early); err == nil {
					t.Fatal("no bucket accepted")
				}
				if _, err := s.Reserve(ctx, "x", []Bucket{{Key: "k"}}, t0, 0, early); err == nil {
					t.Fatal("zero interval accepted")
				}
			})
		})
	}
}

// assertConforms checks that no two times fall in the same slot of width every, which is what
// keeps every window of every·N at N requests or fewer.
func assertConforms(t *testing.T, times []time.Time, every time.Duration) {
	t.Helper()
	seen := map[int64]time.Time{}
	for _, tm := range times {
		s := slot(tm.UnixMicro(), every.Microseconds())
		if prev, ok := seen[s]; ok {
			t.Fatalf("%v and %v share a slot of %v", prev.Sub(t0), tm.Sub(t0), every)
		}
		seen[s] = tm
	}
}

func TestMemoryPrunes(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	for i := range 10000 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if _, err := m.Reserve(ctx, fmt.Sprint(i), []Bucket{{Key: "k", Every: time.Second}}, at, time.Minute, at.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// Pruned every 4096 bookings to the last two hours'.
	if n := len(m.owners); n > 4096+125 {
		t.Fatalf("%d owners kept after 10000 minutes of bookings", n)
	}
	if n := len(m.buckets["k@1000000"]); n > 4096+125 {
		t.Fatalf("%d slots kept", n)
	}
}
