package bolt_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	"github.com/dontinterrupt/dontinterrupt/internal/store/storetest"
	bbolt "go.etcd.io/bbolt"
)

func TestStoreContract(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Harness {
			path := filepath.Join(t.TempDir(), "data", "dontinterrupt.db") // the directory is created by Open
			s, err := bolt.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return storetest.Harness{
				Store:    s,
				Channels: func() []string { return bolt.Channels(t, s) },
				Raw: func() []byte {
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					return b
				},
				PutRawUser: func(id string, data []byte) {
					err := bolt.RawUpdate(s, func(tx *bbolt.Tx) error {
						ub, err := tx.Bucket([]byte("users")).CreateBucketIfNotExists([]byte(id))
						if err != nil {
							return err
						}
						return ub.Put([]byte("rec"), data)
					})
					if err != nil {
						t.Fatal(err)
					}
				},
			}
		})
	})
}

func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	second, err := bolt.Open(path, bolt.WithLockTimeout(200*time.Millisecond))
	if err == nil {
		second.Close()
		t.Fatal("second open of a locked file succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("second open took %v", took)
	}
	want := "store: bolt file " + path + " is locked by another process"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

func TestDueIndexSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "due.db")
	t0 := time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i, u := range []string{"a", "b", "c"} {
		if err := s.MarkDue(ctx, u, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	claims, err := s.ClaimDue(ctx, t0, 1, time.Minute)
	if err != nil || len(claims) != 1 || claims[0].UserID != "a" {
		t.Fatalf("claim = %v, %v", claims, err)
	}
	if err := s.MarkDue(ctx, "a", t0.Add(10*time.Second)); err != nil { // a dirty mark during the claim
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	total, due, err := s.DueCount(ctx, t0.Add(time.Minute))
	if err != nil || total != 3 || due != 2 { // b at t0+1m and a's lease end at t0+1m
		t.Errorf("DueCount after reopen = %d, %d, %v; want 3, 2", total, due, err)
	}
	at, ok, err := s.NextDue(ctx)
	if err != nil || !ok || !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("NextDue after reopen = %v, %v, %v", at, ok, err)
	}
	// The claim from before the restart still holds: it can complete, keeping the dirty mark.
	if err := s.Complete(ctx, claims[0], t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimDue(ctx, t0.Add(30*time.Second), 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].UserID != "a" {
		t.Errorf("claim after reopen = %v, %v; want a (its mark at t0+10s)", got, err)
	}
	if _, err := s.GetUser(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser: %v", err)
	}
}
