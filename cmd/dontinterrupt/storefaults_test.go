package main

// Store faults (issue #10): the bolt file held by another process, and Redis restarted while
// the service runs.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	redisstore "github.com/dontinterrupt/dontinterrupt/internal/store/redis"
)

// TestBoltFileLockedByAnotherProcess: a second service on the same bolt file stops at start-up,
// within seconds, with an error naming DI_STORE and the file and saying another process holds
// it; once the holder is gone the service starts.
func TestBoltFileLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "di.db")

	// The holder is this test binary again, running TestHelperHoldBoltFile.
	holder := exec.Command(os.Args[0], "-test.run=^TestHelperHoldBoltFile$")
	holder.Env = append(os.Environ(), "DI_TEST_HOLD_BOLT="+db)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var holderErr bytes.Buffer
	holder.Stderr = &holderErr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			stdin.Close()
			holder.Wait()
		}
	}
	t.Cleanup(release)
	held := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "held" {
				held <- true
				io.Copy(io.Discard, stdout)
				return
			}
		}
		held <- false
	}()
	select {
	case ok := <-held:
		if !ok {
			t.Fatalf("the holder process did not take the file: %s", holderErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the holder process did not take the file within 30s")
	}

	env := map[string]string{
		"DI_ADDR":        "127.0.0.1:0",
		"DI_STORE":       "bolt:" + db,
		"DI_KEYSET_FILE": filepath.Join(dir, "keyset.json"),
	}
	start := time.Now()
	var out, logs bytes.Buffer
	err = run(t.Context(), []string{"dontinterrupt"}, envOf(env), &out, &logs)
	took := time.Since(start)
	if err == nil {
		t.Fatal("the service started on a bolt file another process holds")
	}
	msg := err.Error()
	for _, want := range []string{"DI_STORE", db, "locked by another process"} {
		if !strings.Contains(msg, want) {
			t.Errorf("start-up error %q does not contain %q", msg, want)
		}
	}
	if took > 10*time.Second {
		t.Errorf("the start-up error took %v, want it within seconds (bolt.DefaultLockTimeout is %v)", took, bolt.DefaultLockTimeout)
	}
	if code := exitCode(err); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	t.Logf("error after %v: %v", took.Round(time.Millisecond), err)

	// The holder is gone: the service starts on the same file.
	release()
	base, stop, _ := startService(t, env)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %q after the holder exited", code, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestHelperHoldBoltFile is the holder process of TestBoltFileLockedByAnotherProcess: it opens
// the bolt file, says "held", and keeps it until its stdin closes. Run alone it does nothing.
func TestHelperHoldBoltFile(t *testing.T) {
	path := os.Getenv("DI_TEST_HOLD_BOLT")
	if path == "" {
		t.Skip("the helper process of TestBoltFileLockedByAnotherProcess")
	}
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fmt.Println("held")
	io.Copy(io.Discard, os.Stdin)
}

// TestRedisRestartedMidRun: Redis (a private redis-server with appendonly and fsync on every
// write) is killed while the service runs and a meeting comes due during the outage. The
// service keeps serving (/healthz ok, /readyz 503, no crash), reconnects when Redis is back on
// the same port and data, and writes the meeting's status then, once: no due entry was lost.
func TestRedisRestartedMidRun(t *testing.T) {
	rs := startRedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	url := rs.url(0)
	f := newFleet(t, url, nil)
	ctx := t.Context()
	st, err := redisstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	p := f.addPerson(ctx, st, 1, slackfake.DefaultTeamID, "U0001")
	// The meeting starts during the outage.
	start := time.Now().Add(5 * time.Second).Truncate(time.Second)
	f.google.AddEvent(p.googleSub, "primary", googlefake.Event{Summary: "Planning", Start: start, End: start.Add(time.Hour)})

	base, stop, _ := startService(t, f.env)
	rc := redisClient(t, url)
	dueAt := func() (time.Time, error) {
		ms, err := rc.ZScore(ctx, redisstore.DefaultPrefix+"due", p.id).Result()
		return time.UnixMilli(int64(ms)), err
	}
	poll(t, "the first run to plan the meeting (due at its start)", 10*time.Second, func() bool {
		at, err := dueAt()
		return err == nil && at.Equal(start)
	})
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d before the outage", code)
	}
	if time.Now().After(start.Add(-time.Second)) {
		t.Fatalf("the first run finished at %s, too close to the meeting's start %s to stop Redis before it", time.Now().Format(time.TimeOnly), start.Format(time.TimeOnly))
	}

	rs.kill()
	down := time.Now()
	// While Redis is down, and past the meeting's start: alive, not ready, nothing written.
	poll(t, "the outage to last past the meeting's start", 20*time.Second, func() bool {
		if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("/healthz = %d %q while Redis is down", code, body)
		}
		if code, _ := get(t, base+"/readyz"); code != 503 {
			t.Fatalf("/readyz = %d while Redis is down, want 503", code)
		}
		if n := len(profileSets(f.slack)); n != 0 {
			t.Fatalf("%d status writes while Redis was down", n)
		}
		return time.Now().After(start.Add(2 * time.Second))
	})
	if code, body := get(t, base+"/"); code != 200 {
		t.Errorf("GET / = %d while Redis is down, want the sign-in page (no store needed):\n%s", code, body)
	}

	up := time.Now()
	rs.start()
	t.Logf("Redis down for %v", up.Sub(down).Round(time.Millisecond))
	poll(t, "/readyz after Redis is back", 15*time.Second, func() bool {
		code, _ := get(t, base+"/readyz")
		return code == 200
	})
	poll(t, "the meeting's status write after the restart", 15*time.Second, func() bool {
		return len(profileSets(f.slack)) > 0
	})
	// Wait for the run to finish (its record stored), then count the writes.
	poll(t, "the status write to be recorded", 10*time.Second, func() bool {
		ts, err := st.GetTargetState(ctx, p.id, "slack:status:slack-"+p.id)
		return err == nil && strings.Contains(string(ts.Written), "In a meeting")
	})
	sets := profileSets(f.slack)
	if len(sets) != 1 {
		t.Fatalf("%d status writes after the restart, want exactly 1", len(sets))
	}
	if sets[0].Time.Before(up) {
		t.Errorf("the status was written at %s, before Redis came back at %s", sets[0].Time.Format(time.StampMilli), up.Format(time.StampMilli))
	}
	if text, _, exp := profileOf(t, sets[0]); text != "In a meeting" || exp != start.Add(time.Hour).Unix() {
		t.Errorf("status %q expiring %d, want the meeting's until its end", text, exp)
	}
	t.Logf("written %v after Redis came back (%v after the meeting's start)", sets[0].Time.Sub(up).Round(time.Millisecond), sets[0].Time.Sub(start).Round(time.Millisecond))
	// The person stays in the due index: next due at the meeting's end at the latest.
	if at, err := dueAt(); err != nil || at.After(start.Add(time.Hour)) {
		t.Errorf("due entry after the restart: %v, %v; want one by the meeting's end", at, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// redisClient is a plain Redis client on url for the test's own reads.
func redisClient(t *testing.T, url string) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	t.Cleanup(func() { rc.Close() })
	return rc
}
