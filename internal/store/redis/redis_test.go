package redis_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store/redis"
	"github.com/dontinterrupt/dontinterrupt/internal/store/storetest"
	goredis "github.com/redis/go-redis/v9"
)

const defaultTestURL = "redis://127.0.0.1:6379/15"

// testClient connects to the test Redis, or skips (fails under CI) when none answers.
func testClient(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	url := os.Getenv("DI_TEST_REDIS_URL")
	if url == "" {
		url = defaultTestURL
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("DI_TEST_REDIS_URL %q: %v", url, err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Redis answers at %s (CI is set, so this is a failure): %v", url, err)
		}
		t.Skipf("skipping the Redis contract: no Redis answers at %s (%v); set DI_TEST_REDIS_URL or start Redis", url, err)
	}
	return rdb, url
}

func TestStoreContract(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		rdb, url := testClient(t)
		t.Logf("Redis at %s", url)
		storetest.Run(t, func(t *testing.T) storetest.Harness {
			ctx := t.Context()
			// Only the test database: FLUSHDB acts on the DB number of the URL.
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			s, err := redis.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			return storetest.Harness{
				Store: s,
				Raw:   func() []byte { return dumpDB(t, rdb) },
				Channels: func() []string {
					keys, err := rdb.Keys(ctx, redis.DefaultPrefix+"channel:*").Result()
					if err != nil {
						t.Fatal(err)
					}
					for i, k := range keys {
						keys[i] = strings.TrimPrefix(k, redis.DefaultPrefix+"channel:")
					}
					return keys
				},
				PutRawUser: func(id string, data []byte) {
					if err := rdb.Set(ctx, redis.DefaultPrefix+"user:"+id, data, 0).Err(); err != nil {
						t.Fatal(err)
					}
				},
			}
		})
	})
}

// dumpDB returns every key and value of the test database (tests only: it SCANs everything).
func dumpDB(t *testing.T, rdb *goredis.Client) []byte {
	t.Helper()
	ctx := t.Context()
	var keys []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "set":
			v, err = rdb.SMembers(ctx, k).Result()
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		case "none":
			continue
		default:
			t.Fatalf("key %s of unexpected type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s (%s) = %v\n", k, typ, v)
	}
	return []byte(b.String())
}

func TestPrefix(t *testing.T) {
	rdb, url := testClient(t)
	ctx := t.Context()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	a, err := redis.Open(ctx, url, redis.WithPrefix("a:"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := redis.Open(ctx, url, redis.WithPrefix("b:"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.MarkDue(ctx, "u1", time.Unix(100, 0)); err != nil {
		t.Fatal(err)
	}
	if total, _, err := b.DueCount(ctx, time.Unix(200, 0)); err != nil || total != 0 {
		t.Errorf("store b sees %d due entries of store a (%v)", total, err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "a:") {
			t.Errorf("key %q without the prefix", k)
		}
	}
	if len(keys) == 0 {
		t.Error("no keys written")
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := redis.Open(ctx, "redis://127.0.0.1:1/0")
	if err == nil || !strings.HasPrefix(err.Error(), "store/redis: connect") {
		t.Errorf("open of an unreachable Redis: err = %v", err)
	}
}

// A wake-up published by one process reaches every process watching the same database.
func TestWakeDue(t *testing.T) {
	_, url := testClient(t)
	ctx := t.Context()
	a, err := redis.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := redis.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	woken := make(chan struct{}, 10)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.WatchDue(wctx, func() { woken <- struct{}{} })
	}()
	// The subscription starts asynchronously: publish until the watcher hears one.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		if err := a.WakeDue(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woken:
			break wait
		case <-tick.C:
		case <-deadline:
			t.Fatal("WatchDue heard no WakeDue within 10s")
		}
	}
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WatchDue did not return after its context ended")
	}
}
