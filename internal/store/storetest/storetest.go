// Package storetest is the contract suite every store.Store implementation passes: store/bolt
// and store/redis run the same Run with their own Harness.
package storetest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// Harness is one fresh, empty store under test.
type Harness struct {
	// Store is the implementation under test. The suite closes it when the subtest ends.
	Store store.Store
	// Raw returns every stored byte (the whole bolt file, or every key and value of the Redis
	// test database) so the suite can scan it for what must never be stored.
	Raw func() []byte
	// PutRawUser stores data as the stored record of user id, byte for byte, bypassing the
	// implementation's encoder. The suite uses it to check that records of a later version
	// (more fields, a higher "v") still read.
	PutRawUser func(id string, data []byte)
	// Channels lists the push channel IDs the store's channel index holds (sorted), so the
	// suite can check that replaced and deleted channels leave it rather than leak.
	Channels func() []string
}

// t0 is the suite's "now": a whole second, so every backend's time resolution holds it exactly.
var t0 = time.Date(2030, time.January, 7, 9, 0, 0, 0, time.UTC)

// Run runs the contract suite. open is called once per subtest and must return an empty store;
// subtests run one after the other, never in parallel, so a backend may share one database.
func Run(t *testing.T, open func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"users", testUsers},
		{"identities", testIdentities},
		{"connections", testConnections},
		{"swap_credential", testSwapCredential},
		{"each_connection", testEachConnection},
		{"sync_state", testSyncState},
		{"channels", testChannels},
		{"events", testEvents},
		{"replace_events", testReplaceEvents},
		{"target_state", testTargetState},
		{"overrides", testOverrides},
		{"activity", testActivity},
		{"sessions", testSessions},
		{"mark_seen", testMarkSeen},
		{"oauth_records", testOAuthRecords},
		{"request_sync", testRequestSync},
		{"due_mark", testDueMark},
		{"due_claim", testDueClaim},
		{"due_lease_expiry", testDueLeaseExpiry},
		{"due_extend_lease", testDueExtendLease},
		{"due_complete", testDueComplete},
		{"due_hand_back", testDueHandBack},
		{"due_remove", testDueRemove},
		{"due_concurrent_claims", testDueConcurrentClaims},
		{"delete_user", testDeleteUser},
		{"record_versions", testRecordVersions},
		{"privacy_scan", testPrivacyScan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := open(t)
			t.Cleanup(func() {
				if err := h.Store.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			if err := h.Store.Ping(ctx(t)); err != nil {
				t.Fatalf("ping: %v", err)
			}
			tc.fn(t, h)
		})
	}
}

// ctx returns a context that ends with the test, with a deadline so a hung backend fails
// instead of blocking.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// sameJSON fails the test when got and want encode differently.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: marshal got: %v", what, err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("%s: marshal want: %v", what, err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func mustNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", what, err)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func sampleRules() presence.Rules {
	r := presence.Rules{
		TimeZone:        "Europe/Zurich",
		TentativeCounts: true,
		TitleEmoji:      true,
		Kinds: map[presence.Kind]presence.KindRule{
			presence.KindMeeting: {Enabled: true, SlackText: "In a meeting until {until}", SlackEmoji: ":spiral_calendar_pad:", SlackDND: true},
			presence.KindFocus:   {Enabled: true, SlackText: "Focusing", TeamsAvailability: "DoNotDisturb", TeamsActivity: "Presenting"},
		},
	}
	for d := time.Monday; d <= time.Friday; d++ {
		r.WorkingHours[d] = []presence.Span{{Start: presence.NewClock(9, 0), End: presence.NewClock(12, 0)}, {Start: presence.NewClock(13, 0), End: presence.NewClock(17, 30)}}
	}
	return r
}

func testUsers(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	u := store.User{ID: "u1", Created: t0, Rules: sampleRules()}
	must(t, "create", s.CreateUser(c, u))
	got, err := s.GetUser(c, "u1")
	must(t, "get", err)
	sameJSON(t, "get after create", got, u)

	dup := store.User{ID: "u1", Created: t0.Add(time.Hour)}
	if err := s.CreateUser(c, dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate create: err = %v, want ErrConflict", err)
	}
	got, err = s.GetUser(c, "u1")
	must(t, "get after duplicate create", err)
	sameJSON(t, "duplicate create changed nothing", got, u)

	u.Rules.TimeZone = "America/New_York"
	u.Rules.OnlyWithOthers = true
	must(t, "put", s.PutUser(c, u))
	got, err = s.GetUser(c, "u1")
	must(t, "get after put", err)
	sameJSON(t, "get after put", got, u)

	_, err = s.GetUser(c, "nobody")
	mustNotFound(t, "get missing", err)
	mustNotFound(t, "put missing", s.PutUser(c, store.User{ID: "nobody", Created: t0}))
	_, err = s.GetUser(c, "nobody")
	mustNotFound(t, "put of a missing user must not create it", err)
}

func testIdentities(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	a1 := store.Identity{Provider: "google", Subject: "1234567890", UserID: "ua", Created: t0}
	a2 := store.Identity{Provider: "microsoft", Subject: "tid-1/oid-1", UserID: "ua", Created: t0.Add(time.Minute)}
	b1 := store.Identity{Provider: "slack", Subject: "T1/U1", UserID: "ub", Created: t0}
	for _, id := range []store.Identity{a1, a2, b1} {
		must(t, "put identity", s.PutIdentity(c, id))
	}
	got, err := s.GetIdentity(c, "microsoft", "tid-1/oid-1")
	must(t, "get identity", err)
	sameJSON(t, "get identity", got, a2)
	_, err = s.GetIdentity(c, "google", "tid-1/oid-1")
	mustNotFound(t, "same subject, other provider", err)

	list, err := s.ListIdentities(c, "ua")
	must(t, "list", err)
	sortIdentities(list)
	sameJSON(t, "list ua", list, []store.Identity{a1, a2})

	// Moving an identity to another user updates both lists.
	moved := a1
	moved.UserID = "ub"
	must(t, "move identity", s.PutIdentity(c, moved))
	list, err = s.ListIdentities(c, "ua")
	must(t, "list ua after move", err)
	sameJSON(t, "list ua after move", list, []store.Identity{a2})
	list, err = s.ListIdentities(c, "ub")
	must(t, "list ub after move", err)
	sortIdentities(list)
	sameJSON(t, "list ub after move", list, []store.Identity{moved, b1})

	must(t, "delete", s.DeleteIdentity(c, "microsoft", "tid-1/oid-1"))
	_, err = s.GetIdentity(c, "microsoft", "tid-1/oid-1")
	mustNotFound(t, "get deleted", err)
	list, err = s.ListIdentities(c, "ua")
	must(t, "list after delete", err)
	if len(list) != 0 {
		t.Errorf("list after delete = %v, want empty", list)
	}
	must(t, "delete is idempotent", s.DeleteIdentity(c, "microsoft", "tid-1/oid-1"))
}

func sortIdentities(l []store.Identity) {
	sort.Slice(l, func(i, j int) bool {
		if l[i].Provider != l[j].Provider {
			return l[i].Provider < l[j].Provider
		}
		return l[i].Subject < l[j].Subject
	})
}

func sortConnections(l []store.Connection) {
	sort.Slice(l, func(i, j int) bool {
		if l[i].UserID != l[j].UserID {
			return l[i].UserID < l[j].UserID
		}
		return l[i].ID < l[j].ID
	})
}

func conn(userID, id, provider, ext string) store.Connection {
	return store.Connection{
		ID: id, UserID: userID, Provider: provider, ExternalID: ext, TeamID: "T-" + ext,
		Scopes:     []string{"scope.a", "scope.b"},
		Credential: []byte("sealed:" + userID + "/" + id),
		Health:     store.HealthOK,
		Resources:  []string{"primary"},
		Created:    t0, Updated: t0,
	}
}

func testConnections(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	a1 := conn("ua", "c1", "google", "g-100")
	a2 := conn("ua", "c2", "slack", "U-shared")
	b1 := conn("ub", "c3", "slack", "U-shared") // same Slack account connected by two people
	b2 := conn("ub", "c4", "zoom", "z-9")
	for _, cn := range []store.Connection{a1, a2, b1, b2} {
		must(t, "put connection", s.PutConnection(c, cn))
	}
	got, err := s.GetConnection(c, "ua", "c1")
	must(t, "get", err)
	sameJSON(t, "get c1", got, a1)
	_, err = s.GetConnection(c, "ub", "c1")
	mustNotFound(t, "get under another user", err)

	list, err := s.ListConnections(c, "ub")
	must(t, "list", err)
	sortConnections(list)
	sameJSON(t, "list ub", list, []store.Connection{b1, b2})

	found, err := s.FindConnections(c, "slack", "U-shared")
	must(t, "find", err)
	sortConnections(found)
	sameJSON(t, "find slack U-shared", found, []store.Connection{a2, b1})
	found, err = s.FindConnections(c, "google", "U-shared")
	must(t, "find other provider", err)
	if len(found) != 0 {
		t.Errorf("find google U-shared = %v, want none", found)
	}

	// Updating a connection: new health, new external ID; the old external ID no longer finds it.
	a1.Health, a1.HealthReason = store.HealthBroken, "invalid_grant"
	a1.ExternalID = "g-200"
	a1.Updated = t0.Add(time.Hour)
	must(t, "update", s.PutConnection(c, a1))
	got, err = s.GetConnection(c, "ua", "c1")
	must(t, "get after update", err)
	sameJSON(t, "get after update", got, a1)
	found, err = s.FindConnections(c, "google", "g-100")
	must(t, "find old external ID", err)
	if len(found) != 0 {
		t.Errorf("old external ID still finds %v", found)
	}
	found, err = s.FindConnections(c, "google", "g-200")
	must(t, "find new external ID", err)
	sameJSON(t, "find new external ID", found, []store.Connection{a1})

	must(t, "put sync state", s.PutSyncState(c, store.SyncState{ConnectionID: "c2", Resource: "team", Token: "tok"}))
	must(t, "delete", s.DeleteConnection(c, "ua", "c2"))
	_, err = s.GetConnection(c, "ua", "c2")
	mustNotFound(t, "get deleted", err)
	found, err = s.FindConnections(c, "slack", "U-shared")
	must(t, "find after delete", err)
	sameJSON(t, "find after delete", found, []store.Connection{b1})
	states, err := s.ListSyncStates(c, "c2")
	must(t, "list sync states of deleted connection", err)
	if len(states) != 0 {
		t.Errorf("sync states of a deleted connection remain: %v", states)
	}
	list, err = s.ListConnections(c, "ua")
	must(t, "list after delete", err)
	sameJSON(t, "list ua after delete", list, []store.Connection{a1})
	must(t, "delete is idempotent", s.DeleteConnection(c, "ua", "c2"))
}

func testSwapCredential(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	cn := conn("ua", "c1", "google", "g-1")
	must(t, "put", s.PutConnection(c, cn))
	old := cn.Credential
	v2 := []byte("sealed:v2")
	must(t, "swap", s.SwapCredential(c, "ua", "c1", old, v2))
	got, err := s.GetConnection(c, "ua", "c1")
	must(t, "get", err)
	if !bytes.Equal(got.Credential, v2) {
		t.Errorf("credential after swap = %q, want %q", got.Credential, v2)
	}
	if got.Provider != cn.Provider || got.ExternalID != cn.ExternalID || !slices.Equal(got.Scopes, cn.Scopes) {
		t.Errorf("swap changed other fields: %+v", got)
	}

	// A second refresher still holding the old blob loses.
	err = s.SwapCredential(c, "ua", "c1", old, []byte("sealed:v3"))
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale swap: err = %v, want ErrConflict", err)
	}
	got, err = s.GetConnection(c, "ua", "c1")
	must(t, "get after stale swap", err)
	if !bytes.Equal(got.Credential, v2) {
		t.Errorf("stale swap changed the credential to %q", got.Credential)
	}
	mustNotFound(t, "swap of a missing connection", s.SwapCredential(c, "ua", "nope", old, v2))

	// Concurrent refreshers: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 8 {
		wg.Go(func() {
			err := s.SwapCredential(c, "ua", "c1", v2, fmt.Appendf(nil, "sealed:racer-%d", i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrConflict):
				conflicts++
			default:
				t.Errorf("concurrent swap: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Errorf("concurrent swaps: %d won, %d conflicted; want 1 and 7", wins, conflicts)
	}
}

func testEachConnection(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	want := map[string]bool{}
	for u := range 5 {
		for k := range 3 {
			cn := conn(fmt.Sprintf("u%d", u), fmt.Sprintf("c%d-%d", u, k), "google", fmt.Sprintf("g%d-%d", u, k))
			must(t, "put", s.PutConnection(c, cn))
			want[cn.UserID+"/"+cn.ID] = true
		}
	}
	seen := map[string]bool{}
	err := s.EachConnection(c, func(cn store.Connection) error {
		key := cn.UserID + "/" + cn.ID
		if seen[key] {
			t.Errorf("EachConnection returned %s twice", key)
		}
		seen[key] = true
		// fn may call other Store methods, including writes.
		got, err := s.GetConnection(c, cn.UserID, cn.ID)
		if err != nil {
			return err
		}
		return s.SwapCredential(c, cn.UserID, cn.ID, got.Credential, append([]byte("rotated:"), got.Credential...))
	})
	must(t, "each", err)
	if len(seen) != len(want) {
		t.Errorf("EachConnection visited %d connections, want %d", len(seen), len(want))
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("EachConnection missed %s", k)
		}
	}
	got, err := s.GetConnection(c, "u3", "c3-1")
	must(t, "get rotated", err)
	if !bytes.HasPrefix(got.Credential, []byte("rotated:sealed:")) {
		t.Errorf("credential after rotation = %q", got.Credential)
	}

	// An error from fn stops the walk and comes back.
	stop := errors.New("stop here")
	calls := 0
	err = s.EachConnection(c, func(store.Connection) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("EachConnection with failing fn: err = %v after %d calls; want the error after 1", err, calls)
	}
}

func testSyncState(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	a := store.SyncState{ConnectionID: "c1", Resource: "primary", Token: "sync-token-1", ChannelID: "ch-1", ChannelExpiry: t0.Add(7 * 24 * time.Hour), Synced: t0}
	b := store.SyncState{ConnectionID: "c1", Resource: "team@group.calendar.google.com", Token: "sync-token-2", Synced: t0}
	other := store.SyncState{ConnectionID: "c2", Resource: "primary", Token: "delta-link"}
	for _, st := range []store.SyncState{a, b, other} {
		must(t, "put", s.PutSyncState(c, st))
	}
	got, err := s.GetSyncState(c, "c1", "primary")
	must(t, "get", err)
	sameJSON(t, "get", got, a)
	_, err = s.GetSyncState(c, "c3", "primary")
	mustNotFound(t, "get missing", err)

	a.Token, a.Synced = "sync-token-1b", t0.Add(time.Minute)
	must(t, "update", s.PutSyncState(c, a))
	list, err := s.ListSyncStates(c, "c1")
	must(t, "list", err)
	sort.Slice(list, func(i, j int) bool { return list[i].Resource < list[j].Resource })
	sameJSON(t, "list", list, []store.SyncState{a, b})

	must(t, "delete", s.DeleteSyncState(c, "c1", "primary"))
	_, err = s.GetSyncState(c, "c1", "primary")
	mustNotFound(t, "get deleted", err)
	list, err = s.ListSyncStates(c, "c1")
	must(t, "list after delete", err)
	sameJSON(t, "list after delete", list, []store.SyncState{b})
	got, err = s.GetSyncState(c, "c2", "primary")
	must(t, "other connection untouched", err)
	sameJSON(t, "other connection", got, other)
}

// testChannels: FindChannel finds a sync state by its push channel ID; a replaced channel, a
// deleted sync state, connection or user leave the index.
func testChannels(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	for _, u := range []string{"ua", "ub"} {
		must(t, "create user", s.CreateUser(c, store.User{ID: u, Created: t0}))
	}
	for _, cn := range []store.Connection{
		{ID: "c1", UserID: "ua", Provider: "google", ExternalID: "g-1", Health: store.HealthOK, Created: t0, Updated: t0},
		{ID: "c2", UserID: "ua", Provider: "outlook", ExternalID: "oid-1", Health: store.HealthOK, Created: t0, Updated: t0},
		{ID: "c3", UserID: "ub", Provider: "google", ExternalID: "g-2", Health: store.HealthOK, Created: t0, Updated: t0},
	} {
		must(t, "put connection", s.PutConnection(c, cn))
	}
	primary := store.SyncState{ConnectionID: "c1", Resource: "primary", UserID: "ua", Token: "tok", ChannelID: "chan-a",
		ChannelResource: "res-primary", ChannelToken: "secret-a", ChannelSince: t0, ChannelExpiry: t0.Add(7 * 24 * time.Hour), Synced: t0}
	team := store.SyncState{ConnectionID: "c1", Resource: "team@group.calendar.google.com", UserID: "ua", ChannelID: "chan-b", ChannelToken: "secret-b", Synced: t0}
	outlook := store.SyncState{ConnectionID: "c2", Resource: "calendar", UserID: "ua", ChannelID: "sub-1", ChannelToken: "state-1"}
	bob := store.SyncState{ConnectionID: "c3", Resource: "primary", UserID: "ub", ChannelID: "chan-c", ChannelToken: "secret-c"}
	noChannel := store.SyncState{ConnectionID: "c3", Resource: "other", UserID: "ub", Token: "t"}
	for _, st := range []store.SyncState{primary, team, outlook, bob, noChannel} {
		must(t, "put sync state", s.PutSyncState(c, st))
	}
	find := func(id string, want store.SyncState) {
		t.Helper()
		got, err := s.FindChannel(c, id)
		must(t, "find "+id, err)
		sameJSON(t, "find "+id, got, want)
	}
	gone := func(id string) {
		t.Helper()
		_, err := s.FindChannel(c, id)
		mustNotFound(t, "find "+id, err)
	}
	index := func(want ...string) {
		t.Helper()
		if h.Channels == nil {
			t.Fatal("harness has no Channels")
		}
		got := h.Channels()
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("channel index holds %q, want %q", got, want)
		}
	}
	find("chan-a", primary)
	find("chan-b", team)
	find("sub-1", outlook)
	find("chan-c", bob)
	gone("chan-unknown")
	gone("")
	index("chan-a", "chan-b", "sub-1", "chan-c")

	// A sync that keeps the channel keeps it findable, with the new state.
	primary.Token, primary.Synced = "tok-2", t0.Add(time.Minute)
	must(t, "update", s.PutSyncState(c, primary))
	find("chan-a", primary)

	// A replaced channel (Google channels are replaced, never renewed) leaves the index.
	primary.ChannelID, primary.ChannelResource, primary.ChannelToken = "chan-a2", "res-primary", "secret-a2"
	must(t, "replace channel", s.PutSyncState(c, primary))
	gone("chan-a")
	find("chan-a2", primary)
	index("chan-a2", "chan-b", "sub-1", "chan-c")

	// A state that drops its channel leaves the index too.
	team.ChannelID, team.ChannelToken = "", ""
	must(t, "drop channel", s.PutSyncState(c, team))
	gone("chan-b")
	index("chan-a2", "sub-1", "chan-c")

	// Deleting the sync state, the connection or the user takes their channels out.
	must(t, "delete sync state", s.DeleteSyncState(c, "c1", "primary"))
	gone("chan-a2")
	index("sub-1", "chan-c")
	must(t, "put again", s.PutSyncState(c, primary))
	find("chan-a2", primary)
	must(t, "delete connection", s.DeleteConnection(c, "ua", "c1"))
	gone("chan-a2")
	find("sub-1", outlook)
	index("sub-1", "chan-c")
	must(t, "delete user", s.DeleteUser(c, "ua"))
	gone("sub-1")
	find("chan-c", bob)
	index("chan-c")
}

func event(source, id string, start time.Time, d time.Duration) presence.Event {
	return presence.Event{Source: source, ID: id, Type: presence.EventDefault, Start: start, End: start.Add(d), Response: presence.ResponseAccepted}
}

func eventKeys(l []presence.Event) []string {
	keys := make([]string, len(l))
	for i, e := range l {
		keys[i] = e.Key()
	}
	return keys
}

func testEvents(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	src := "c1/primary"
	e1 := event(src, "e1", t0, time.Hour)                       // 09:00-10:00
	e2 := event(src, "e2", t0.Add(-2*time.Hour), time.Hour)     // 07:00-08:00
	e3 := event(src, "e3", t0.Add(30*time.Minute), time.Hour)   // 09:30-10:30
	e4 := event(src, "e4", t0.Add(3*time.Hour), time.Hour)      // 12:00-13:00
	ooo := event("c2/primary", "ooo", t0.Add(-48*time.Hour), 0) // all-day, three days
	ooo.Type, ooo.AllDay, ooo.End, ooo.Busy = presence.EventOutOfOffice, true, t0.Add(24*time.Hour), presence.BusyOutOfOffice
	emoji := event("zoom:c3", "83912", t0.Add(time.Hour), 45*time.Minute)
	emoji.Type, emoji.Emoji, emoji.HasOtherAttendees = presence.EventZoomScheduled, "🚀", true
	must(t, "put", s.PutEvents(c, "ua", []presence.Event{e4, e1, e2, e3, ooo, emoji}))
	must(t, "put other user", s.PutEvents(c, "ub", []presence.Event{event(src, "e1", t0, time.Hour)}))

	// [09:15, 12:00): e1, e3, ooo and emoji overlap; e2 ended before; e4 starts at the end (exclusive).
	got, err := s.ListEvents(c, "ua", t0.Add(15*time.Minute), t0.Add(3*time.Hour))
	must(t, "list", err)
	if want := []string{ooo.Key(), e1.Key(), e3.Key(), emoji.Key()}; !slices.Equal(eventKeys(got), want) {
		t.Errorf("list [09:15,12:00) = %v, want %v (ordered by start)", eventKeys(got), want)
	}
	for _, e := range got {
		if e.Key() == emoji.Key() {
			sameJSON(t, "event round trip", e, emoji)
		}
		if e.Key() == ooo.Key() {
			sameJSON(t, "all-day event round trip", e, ooo)
		}
	}
	// An event that ends exactly at from does not overlap.
	got, err = s.ListEvents(c, "ua", t0.Add(-time.Hour), t0)
	must(t, "list [08:00,09:00)", err)
	if want := []string{ooo.Key()}; !slices.Equal(eventKeys(got), want) {
		t.Errorf("list [08:00,09:00) = %v, want %v", eventKeys(got), want)
	}

	// Put replaces an event with the same key.
	e1.End = t0.Add(2 * time.Hour)
	e1.Response = presence.ResponseDeclined
	must(t, "put again", s.PutEvents(c, "ua", []presence.Event{e1}))
	got, err = s.ListEvents(c, "ua", t0.Add(90*time.Minute), t0.Add(100*time.Minute))
	must(t, "list after update", err)
	if want := []string{ooo.Key(), e1.Key(), emoji.Key()}; !slices.Equal(eventKeys(got), want) {
		t.Errorf("list after update = %v, want %v", eventKeys(got), want)
	}
	if len(got) > 1 && got[1].Response != presence.ResponseDeclined {
		t.Errorf("updated event response = %q", got[1].Response)
	}

	must(t, "delete", s.DeleteEvents(c, "ua", []string{e1.Key(), e4.Key(), "no/such"}))
	got, err = s.ListEvents(c, "ua", t0.Add(-72*time.Hour), t0.Add(72*time.Hour))
	must(t, "list all", err)
	if want := []string{ooo.Key(), e2.Key(), e3.Key(), emoji.Key()}; !slices.Equal(eventKeys(got), want) {
		t.Errorf("list after delete = %v, want %v", eventKeys(got), want)
	}
	got, err = s.ListEvents(c, "ub", t0.Add(-72*time.Hour), t0.Add(72*time.Hour))
	must(t, "list other user", err)
	if want := []string{src + "/e1"}; !slices.Equal(eventKeys(got), want) {
		t.Errorf("other user's events = %v, want %v", eventKeys(got), want)
	}
}

func testReplaceEvents(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	g, o := "c1/primary", "c2/primary"
	// A source that is a prefix of another must not take the other's events with it.
	gx := "c1/primary2"
	must(t, "put", s.PutEvents(c, "ua", []presence.Event{
		event(g, "a", t0, time.Hour), event(g, "b", t0.Add(time.Hour), time.Hour),
		event(o, "x", t0.Add(30*time.Minute), time.Hour), event(gx, "y", t0.Add(2*time.Hour), time.Hour),
	}))
	must(t, "replace", s.ReplaceEvents(c, "ua", g, []presence.Event{event(g, "c", t0.Add(15*time.Minute), time.Hour), event(g, "b", t0.Add(3*time.Hour), time.Hour)}))
	got, err := s.ListEvents(c, "ua", t0.Add(-time.Hour), t0.Add(24*time.Hour))
	must(t, "list", err)
	if want := []string{g + "/c", o + "/x", gx + "/y", g + "/b"}; !slices.Equal(eventKeys(got), want) {
		t.Errorf("after replace = %v, want %v", eventKeys(got), want)
	}
	must(t, "replace with nothing", s.ReplaceEvents(c, "ua", g, nil))
	got, err = s.ListEvents(c, "ua", t0.Add(-time.Hour), t0.Add(24*time.Hour))
	must(t, "list", err)
	if want := []string{o + "/x", gx + "/y"}; !slices.Equal(eventKeys(got), want) {
		t.Errorf("after replace with nothing = %v, want %v", eventKeys(got), want)
	}
}

func testTargetState(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	a := store.TargetState{UserID: "ua", Target: "slack:status", Written: []byte(`{"text":"In a meeting","emoji":":calendar:"}`), WrittenAt: t0, Replaced: []byte("sealed-own-status")}
	b := store.TargetState{UserID: "ua", Target: "teams:presence", Written: []byte(`{"availability":"Busy"}`), WrittenAt: t0}
	must(t, "put a", s.PutTargetState(c, a))
	must(t, "put b", s.PutTargetState(c, b))
	must(t, "put other user", s.PutTargetState(c, store.TargetState{UserID: "ub", Target: "slack:status", WrittenAt: t0}))
	got, err := s.GetTargetState(c, "ua", "slack:status")
	must(t, "get", err)
	sameJSON(t, "get", got, a)
	_, err = s.GetTargetState(c, "ua", "slack:dnd")
	mustNotFound(t, "get missing", err)

	a.Written, a.Replaced, a.WrittenAt = []byte(`{}`), nil, t0.Add(time.Hour)
	must(t, "update", s.PutTargetState(c, a))
	list, err := s.ListTargetStates(c, "ua")
	must(t, "list", err)
	sort.Slice(list, func(i, j int) bool { return list[i].Target < list[j].Target })
	sameJSON(t, "list", list, []store.TargetState{a, b})
}

func testOverrides(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	focus := presence.Override{ID: "o1", Kind: presence.OverrideFocus, Start: t0, End: t0.Add(time.Hour), Origin: "alexa"}
	pause := presence.Override{ID: "o2", Kind: presence.OverridePause, Start: t0.Add(-time.Hour), Origin: "web"}
	ignore := presence.Override{ID: "o3", Kind: presence.OverrideIgnore, Start: t0, EventKey: "c1/primary/e1", Origin: "slack"}
	for _, o := range []presence.Override{focus, pause, ignore} {
		must(t, "put", s.PutOverride(c, "ua", o))
	}
	must(t, "put other user", s.PutOverride(c, "ub", focus))
	list, err := s.ListOverrides(c, "ua")
	must(t, "list", err)
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	sameJSON(t, "list", list, []presence.Override{focus, pause, ignore})

	focus.End = t0.Add(2 * time.Hour)
	must(t, "update", s.PutOverride(c, "ua", focus))
	must(t, "delete", s.DeleteOverride(c, "ua", "o2"))
	list, err = s.ListOverrides(c, "ua")
	must(t, "list after delete", err)
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	sameJSON(t, "list after update and delete", list, []presence.Override{focus, ignore})
	list, err = s.ListOverrides(c, "ub")
	must(t, "list other user", err)
	if len(list) != 1 || !list[0].End.Equal(t0.Add(time.Hour)) {
		t.Errorf("other user's overrides = %+v", list)
	}
}

func testActivity(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	n := store.ActivityCap + 25
	for i := range n {
		a := store.Activity{At: t0.Add(time.Duration(i) * time.Second), Kind: "meeting", Target: "slack:status", Outcome: "set", Reason: fmt.Sprintf("r%d", i)}
		must(t, "append", s.AppendActivity(c, "ua", a))
	}
	must(t, "append other user", s.AppendActivity(c, "ub", store.Activity{At: t0, Kind: "resync", Target: "google", Outcome: "error"}))

	all, err := s.ListActivity(c, "ua", 0)
	must(t, "list all", err)
	if len(all) != store.ActivityCap {
		t.Fatalf("kept %d entries, want the cap %d", len(all), store.ActivityCap)
	}
	for i, a := range all {
		if want := fmt.Sprintf("r%d", n-1-i); a.Reason != want {
			t.Fatalf("entry %d = %q, want %q (newest first, oldest dropped)", i, a.Reason, want)
		}
	}
	if !all[0].At.Equal(t0.Add(time.Duration(n-1)*time.Second)) || all[0].Target != "slack:status" || all[0].Outcome != "set" {
		t.Errorf("newest entry = %+v", all[0])
	}
	some, err := s.ListActivity(c, "ua", 3)
	must(t, "list 3", err)
	if got := []string{some[0].Reason, some[1].Reason, some[2].Reason}; len(some) != 3 || !slices.Equal(got, []string{fmt.Sprintf("r%d", n-1), fmt.Sprintf("r%d", n-2), fmt.Sprintf("r%d", n-3)}) {
		t.Errorf("list 3 = %+v", some)
	}
	more, err := s.ListActivity(c, "ua", 10*store.ActivityCap)
	must(t, "list more than kept", err)
	if len(more) != store.ActivityCap {
		t.Errorf("list with a large limit = %d entries, want %d", len(more), store.ActivityCap)
	}
	other, err := s.ListActivity(c, "ub", 10)
	must(t, "list other user", err)
	if len(other) != 1 || other[0].Outcome != "error" {
		t.Errorf("other user's activity = %+v", other)
	}
	none, err := s.ListActivity(c, "nobody", 10)
	must(t, "list unknown user", err)
	if len(none) != 0 {
		t.Errorf("unknown user's activity = %+v", none)
	}
}

func testSessions(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	now := time.Now().UTC().Truncate(time.Second)
	live := store.Session{ID: "sha256-live", UserID: "ua", Data: map[string]string{"csrf": "x1", "state": "s1"}, Created: now, Expires: now.Add(time.Hour)}
	expired := store.Session{ID: "sha256-expired", UserID: "ua", Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}
	anon := store.Session{ID: "sha256-anon", Data: map[string]string{"nonce": "n"}, Created: now, Expires: now.Add(10 * time.Minute)}
	for _, ss := range []store.Session{live, expired, anon} {
		must(t, "put", s.PutSession(c, ss))
	}
	got, err := s.GetSession(c, live.ID)
	must(t, "get", err)
	sameJSON(t, "get", got, live)
	_, err = s.GetSession(c, expired.ID)
	mustNotFound(t, "get expired", err)
	_, err = s.GetSession(c, "sha256-never")
	mustNotFound(t, "get missing", err)

	// Signing in an anonymous session attaches the user.
	anon.UserID = "ub"
	must(t, "sign in", s.PutSession(c, anon))
	got, err = s.GetSession(c, anon.ID)
	must(t, "get signed in", err)
	if got.UserID != "ub" || got.Data["nonce"] != "n" {
		t.Errorf("signed-in session = %+v", got)
	}

	must(t, "delete", s.DeleteSession(c, live.ID))
	_, err = s.GetSession(c, live.ID)
	mustNotFound(t, "get deleted", err)
	must(t, "delete is idempotent", s.DeleteSession(c, live.ID))
}

func claimIDs(cl []store.Claim) []string {
	ids := make([]string, len(cl))
	for i, c := range cl {
		ids[i] = c.UserID
	}
	slices.Sort(ids)
	return ids
}

func nextDue(t *testing.T, s store.Store) time.Time {
	t.Helper()
	at, ok, err := s.NextDue(ctx(t))
	must(t, "next due", err)
	if !ok {
		t.Fatalf("next due: nobody due")
	}
	return at
}

func dueCount(t *testing.T, s store.Store, now time.Time) (int, int) {
	t.Helper()
	total, due, err := s.DueCount(ctx(t), now)
	must(t, "due count", err)
	return total, due
}

func testDueMark(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	if _, ok, err := s.NextDue(c); err != nil || ok {
		t.Fatalf("empty index: NextDue ok=%v err=%v, want ok=false", ok, err)
	}
	must(t, "mark", s.MarkDue(c, "ua", t0.Add(time.Hour)))
	must(t, "mark later", s.MarkDue(c, "ua", t0.Add(2*time.Hour)))
	if got := nextDue(t, s); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("after a later mark, next due = %v, want the earlier %v", got, t0.Add(time.Hour))
	}
	must(t, "mark earlier", s.MarkDue(c, "ua", t0.Add(30*time.Minute)))
	if got := nextDue(t, s); !got.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("after an earlier mark, next due = %v, want %v", got, t0.Add(30*time.Minute))
	}
	must(t, "mark ub", s.MarkDue(c, "ub", t0.Add(10*time.Minute)))
	if got := nextDue(t, s); !got.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("next due = %v, want %v", got, t0.Add(10*time.Minute))
	}
	if total, due := dueCount(t, s, t0.Add(20*time.Minute)); total != 2 || due != 1 {
		t.Errorf("DueCount = %d, %d; want 2 total, 1 due", total, due)
	}
	if total, due := dueCount(t, s, t0.Add(30*time.Minute)); total != 2 || due != 2 {
		t.Errorf("DueCount at the due time = %d, %d; want 2, 2 (due is inclusive)", total, due)
	}
}

func testDueClaim(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	lease := 30 * time.Second
	for i := range 5 {
		must(t, "mark", s.MarkDue(c, fmt.Sprintf("u%d", i), t0.Add(time.Duration(i-2)*time.Minute))) // u0..u2 due by t0
	}
	must(t, "mark future", s.MarkDue(c, "later", t0.Add(time.Hour)))
	if cl, err := s.ClaimDue(c, t0, 0, lease); err != nil || len(cl) != 0 {
		t.Errorf("claim of max 0 = %v, %v; want nothing", cl, err)
	}

	first, err := s.ClaimDue(c, t0, 2, lease)
	must(t, "claim 2", err)
	if got := claimIDs(first); !slices.Equal(got, []string{"u0", "u1"}) {
		t.Errorf("first claim = %v, want the two earliest [u0 u1]", got)
	}
	for _, cl := range first {
		if !cl.LeaseUntil.Equal(t0.Add(lease)) {
			t.Errorf("claim %s lease until %v, want %v", cl.UserID, cl.LeaseUntil, t0.Add(lease))
		}
	}
	second, err := s.ClaimDue(c, t0, 10, lease)
	must(t, "claim rest", err)
	if got := claimIDs(second); !slices.Equal(got, []string{"u2"}) {
		t.Errorf("second claim = %v, want [u2] (only due people, none claimed twice)", got)
	}
	third, err := s.ClaimDue(c, t0.Add(lease-time.Second), 10, lease)
	must(t, "claim within lease", err)
	if len(third) != 0 {
		t.Errorf("claim before the lease ends returned %v", claimIDs(third))
	}
	if total, due := dueCount(t, s, t0.Add(time.Second)); total != 6 || due != 0 {
		t.Errorf("DueCount while claimed = %d, %d; want 6, 0", total, due)
	}
	if got := nextDue(t, s); !got.Equal(t0.Add(lease)) {
		t.Errorf("next due while all due people are claimed = %v, want the lease end %v", got, t0.Add(lease))
	}
	for _, cl := range append(first, second...) {
		must(t, "complete", s.Complete(c, cl, t0.Add(15*time.Minute)))
	}
	if got := nextDue(t, s); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("next due after completing = %v, want u3's %v", got, t0.Add(time.Minute))
	}
	// u3 (due t0+1m) and u4 (t0+2m) become due in order.
	cl, err := s.ClaimDue(c, t0.Add(90*time.Second), 10, lease)
	must(t, "claim at t0+90s", err)
	if got := claimIDs(cl); !slices.Equal(got, []string{"u3"}) {
		t.Errorf("claim at t0+90s = %v, want [u3]", got)
	}
	if _, err := s.ClaimDue(c, t0, 1, 0); err == nil {
		t.Errorf("claim with a zero lease: no error")
	}
}

func testDueLeaseExpiry(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	lease := time.Minute
	must(t, "mark", s.MarkDue(c, "ua", t0))
	crashed, err := s.ClaimDue(c, t0, 10, lease)
	must(t, "claim", err)
	if len(crashed) != 1 {
		t.Fatalf("claim = %v, want ua", crashed)
	}
	// The worker crashes: it never completes. Before the lease ends nobody gets ua ...
	if cl, err := s.ClaimDue(c, t0.Add(lease-time.Millisecond), 10, lease); err != nil || len(cl) != 0 {
		t.Errorf("claim just before the lease ends = %v, %v; want nothing", claimIDs(cl), err)
	}
	// ... after it, another worker does.
	now := t0.Add(lease)
	again, err := s.ClaimDue(c, now, 10, lease)
	must(t, "claim after the lease", err)
	if got := claimIDs(again); !slices.Equal(got, []string{"ua"}) {
		t.Fatalf("claim after the lease = %v, want [ua]", got)
	}
	if !again[0].LeaseUntil.Equal(now.Add(lease)) {
		t.Errorf("new lease until %v, want %v", again[0].LeaseUntil, now.Add(lease))
	}
	// The crashed worker comes back late: its claim is no longer held.
	if err := s.Complete(c, crashed[0], t0.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("complete of a lost claim: err = %v, want ErrConflict", err)
	}
	if _, err := s.ExtendLease(c, crashed[0], t0.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("extend of a lost claim: err = %v, want ErrConflict", err)
	}
	if got := nextDue(t, s); !got.Equal(now.Add(lease)) {
		t.Errorf("a lost claim changed the due time to %v, want the new lease %v", got, now.Add(lease))
	}
	must(t, "complete by the new holder", s.Complete(c, again[0], t0.Add(time.Hour)))
	if got := nextDue(t, s); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("next due = %v, want %v", got, t0.Add(time.Hour))
	}
}

func testDueExtendLease(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	must(t, "mark", s.MarkDue(c, "ua", t0))
	cl, err := s.ClaimDue(c, t0, 1, 30*time.Second)
	must(t, "claim", err)
	if len(cl) != 1 {
		t.Fatalf("claim = %v", cl)
	}
	ext, err := s.ExtendLease(c, cl[0], t0.Add(2*time.Minute))
	must(t, "extend", err)
	if ext.UserID != "ua" || !ext.LeaseUntil.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("extended claim = %+v", ext)
	}
	if got, err := s.ClaimDue(c, t0.Add(time.Minute), 10, 30*time.Second); err != nil || len(got) != 0 {
		t.Errorf("claim after the old lease, within the extended one = %v, %v; want nothing", claimIDs(got), err)
	}
	// The pre-extension claim is stale now.
	if _, err := s.ExtendLease(c, cl[0], t0.Add(5*time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("extend with a stale claim: err = %v, want ErrConflict", err)
	}
	if _, err := s.ExtendLease(c, store.Claim{UserID: "nobody", LeaseUntil: t0}, t0.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("extend of an unclaimed person: err = %v, want ErrConflict", err)
	}
	must(t, "complete with the extended claim", s.Complete(c, ext, t0.Add(time.Hour)))
	if got := nextDue(t, s); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("next due = %v, want %v", got, t0.Add(time.Hour))
	}
}

func testDueComplete(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	lease := time.Minute
	for _, u := range []string{"plain", "marked", "marked-late"} {
		must(t, "mark", s.MarkDue(c, u, t0))
	}
	cl, err := s.ClaimDue(c, t0, 10, lease)
	must(t, "claim", err)
	claims := map[string]store.Claim{}
	for _, x := range cl {
		claims[x.UserID] = x
	}
	if len(claims) != 3 {
		t.Fatalf("claimed %v", claimIDs(cl))
	}
	// A push marks "marked" due while it is claimed: that must not hand it to a second worker
	// before the lease ends, but Complete must keep the earlier time.
	must(t, "mark during claim", s.MarkDue(c, "marked", t0.Add(10*time.Second)))
	must(t, "mark during claim", s.MarkDue(c, "marked-late", t0.Add(3*time.Hour)))
	if got, err := s.ClaimDue(c, t0.Add(20*time.Second), 10, lease); err != nil || len(got) != 0 {
		t.Errorf("claim while held, after a mark = %v, %v; want nothing", claimIDs(got), err)
	}
	next := t0.Add(2 * time.Hour)
	for _, x := range cl {
		must(t, "complete", s.Complete(c, x, next))
	}
	got, err := s.ClaimDue(c, t0.Add(30*time.Second), 10, lease)
	must(t, "claim after complete", err)
	if ids := claimIDs(got); !slices.Equal(ids, []string{"marked"}) {
		t.Errorf("claim after complete = %v, want [marked] (its mark was earlier than next)", ids)
	}
	for _, x := range got {
		must(t, "complete", s.Complete(c, x, next))
	}
	got, err = s.ClaimDue(c, next, 10, lease)
	must(t, "claim at next", err)
	if ids := claimIDs(got); !slices.Equal(ids, []string{"marked", "marked-late", "plain"}) {
		t.Errorf("claim at next = %v, want all three at next (a later mark does not postpone)", ids)
	}
	// A completed claim cannot be completed again to move the due time.
	if err := s.Complete(c, claims["plain"], t0.Add(24*time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second complete of an old claim: err = %v, want ErrConflict", err)
	}
}

// testDueHandBack: a worker that stops (a graceful shutdown) hands its claims back with
// Complete at the time it stops; another worker claims them at once, not after the lease.
func testDueHandBack(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	lease := 30 * time.Second
	must(t, "mark", s.MarkDue(c, "ua", t0))
	must(t, "mark", s.MarkDue(c, "ub", t0.Add(-time.Minute)))
	must(t, "mark", s.MarkDue(c, "later", t0.Add(time.Hour)))
	cl, err := s.ClaimDue(c, t0, 10, lease)
	must(t, "claim", err)
	if ids := claimIDs(cl); !slices.Equal(ids, []string{"ua", "ub"}) {
		t.Fatalf("claimed %v, want [ua ub]", ids)
	}
	stop := t0.Add(2 * time.Second)
	if got, err := s.ClaimDue(c, stop, 10, lease); err != nil || len(got) != 0 {
		t.Fatalf("claim while held = %v, %v; want nothing", claimIDs(got), err)
	}
	for _, x := range cl {
		must(t, "hand back", s.Complete(c, x, stop))
	}
	if _, due := dueCount(t, s, stop); due != 2 {
		t.Errorf("due after the hand-back = %d, want 2", due)
	}
	if got := nextDue(t, s); !got.Equal(stop) {
		t.Errorf("next due after the hand-back = %v, want %v", got, stop)
	}
	got, err := s.ClaimDue(c, stop, 10, lease)
	must(t, "claim after the hand-back", err)
	if ids := claimIDs(got); !slices.Equal(ids, []string{"ua", "ub"}) {
		t.Errorf("claim after the hand-back = %v, want [ua ub] at once", ids)
	}
	// The handed-back claims are over: the stopped worker cannot complete them again.
	if err := s.Complete(c, cl[0], stop.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("complete of a handed-back claim held by another worker: err = %v, want ErrConflict", err)
	}
}

func testDueRemove(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	must(t, "mark", s.MarkDue(c, "ua", t0))
	must(t, "mark", s.MarkDue(c, "ub", t0.Add(time.Minute)))
	cl, err := s.ClaimDue(c, t0, 1, time.Minute)
	must(t, "claim", err)
	must(t, "remove", s.RemoveDue(c, "ua"))
	must(t, "remove is idempotent", s.RemoveDue(c, "ua"))
	if total, _ := dueCount(t, s, t0); total != 1 {
		t.Errorf("DueCount total after remove = %d, want 1", total)
	}
	// Completing a claim of a removed person does not bring them back.
	must(t, "complete after remove", s.Complete(c, cl[0], t0.Add(time.Hour)))
	if total, _ := dueCount(t, s, t0); total != 1 {
		t.Errorf("complete after remove re-added the person: total = %d", total)
	}
	if got := nextDue(t, s); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("next due = %v, want ub's %v", got, t0.Add(time.Minute))
	}
	must(t, "remove ub", s.RemoveDue(c, "ub"))
	if _, ok, err := s.NextDue(c); err != nil || ok {
		t.Errorf("NextDue of an empty index: ok=%v err=%v", ok, err)
	}
}

func testDueConcurrentClaims(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	const people, workers = 60, 8
	for i := range people {
		must(t, "mark", s.MarkDue(c, fmt.Sprintf("p%02d", i), t0.Add(-time.Duration(i)*time.Second)))
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c.Err() == nil {
				cl, err := s.ClaimDue(c, t0, 3, time.Minute)
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if len(cl) == 0 {
					return
				}
				mu.Lock()
				total := 0
				for _, x := range cl {
					claimed[x.UserID]++
				}
				for _, n := range claimed {
					total += n
				}
				mu.Unlock()
				if total > people {
					return // someone was claimed twice: reported below
				}
			}
		})
	}
	wg.Wait()
	if c.Err() != nil {
		t.Fatalf("claims did not finish before the deadline: %v", c.Err())
	}
	if len(claimed) != people {
		t.Errorf("claimed %d distinct people, want %d", len(claimed), people)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("%s claimed %d times within one lease", id, n)
		}
	}
	if total, due := dueCount(t, s, t0); total != people || due != 0 {
		t.Errorf("DueCount after claiming everyone = %d, %d; want %d, 0", total, due, people)
	}
}

// seedUser writes something of every kind for user uid, with connection IDs prefixed by uid.
func seedUser(t *testing.T, s store.Store, uid string) {
	t.Helper()
	c := ctx(t)
	must(t, "create", s.CreateUser(c, store.User{ID: uid, Created: t0, Rules: sampleRules()}))
	must(t, "identity", s.PutIdentity(c, store.Identity{Provider: "google", Subject: "sub-" + uid, UserID: uid, Created: t0}))
	must(t, "identity", s.PutIdentity(c, store.Identity{Provider: "slack", Subject: "T1/" + uid, UserID: uid, Created: t0}))
	for _, p := range []string{"google", "slack"} {
		cn := conn(uid, uid+"-"+p, p, "shared-"+p) // both users share the external accounts
		must(t, "connection", s.PutConnection(c, cn))
		must(t, "sync state", s.PutSyncState(c, store.SyncState{ConnectionID: cn.ID, Resource: "primary", Token: "tok"}))
	}
	must(t, "events", s.PutEvents(c, uid, []presence.Event{event(uid+"-google/primary", "e1", t0, time.Hour)}))
	must(t, "target state", s.PutTargetState(c, store.TargetState{UserID: uid, Target: "slack:status", Written: []byte(`{}`), WrittenAt: t0}))
	must(t, "override", s.PutOverride(c, uid, presence.Override{ID: "o1", Kind: presence.OverrideFocus, Start: t0, End: t0.Add(time.Hour)}))
	must(t, "activity", s.AppendActivity(c, uid, store.Activity{At: t0, Kind: "meeting", Target: "slack:status", Outcome: "set"}))
	now := time.Now()
	must(t, "session", s.PutSession(c, store.Session{ID: "sess-" + uid, UserID: uid, Created: now, Expires: now.Add(time.Hour)}))
	must(t, "due", s.MarkDue(c, uid, t0))
}

// checkUser reports whether everything seedUser wrote for uid is there (present) or gone.
func checkUser(t *testing.T, s store.Store, uid string, present bool) {
	t.Helper()
	c := ctx(t)
	check := func(what string, n int, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of %s: %v", what, uid, err)
			return
		}
		if err != nil {
			n = 0
		}
		if present && n == 0 {
			t.Errorf("%s of %s is missing", what, uid)
		}
		if !present && n != 0 {
			t.Errorf("%s of %s remains after DeleteUser", what, uid)
		}
	}
	one := func(err error) int {
		if err == nil {
			return 1
		}
		return 0
	}
	_, err := s.GetUser(c, uid)
	check("user", one(err), err)
	_, err = s.GetIdentity(c, "google", "sub-"+uid)
	check("identity", one(err), err)
	ids, err := s.ListIdentities(c, uid)
	check("identity list", len(ids), err)
	_, err = s.GetConnection(c, uid, uid+"-google")
	check("connection", one(err), err)
	conns, err := s.ListConnections(c, uid)
	check("connection list", len(conns), err)
	for _, p := range []string{"google", "slack"} {
		found, err := s.FindConnections(c, p, "shared-"+p)
		n := 0
		for _, f := range found {
			if f.UserID == uid {
				n++
			}
		}
		check("connection index "+p, n, err)
		_, err = s.GetSyncState(c, uid+"-"+p, "primary")
		check("sync state "+p, one(err), err)
	}
	n := 0
	err = s.EachConnection(c, func(cn store.Connection) error {
		if cn.UserID == uid {
			n++
		}
		return nil
	})
	check("EachConnection", n, err)
	evs, err := s.ListEvents(c, uid, t0.Add(-24*time.Hour), t0.Add(24*time.Hour))
	check("events", len(evs), err)
	_, err = s.GetTargetState(c, uid, "slack:status")
	check("target state", one(err), err)
	ovs, err := s.ListOverrides(c, uid)
	check("overrides", len(ovs), err)
	acts, err := s.ListActivity(c, uid, 10)
	check("activity", len(acts), err)
	_, err = s.GetSession(c, "sess-"+uid)
	check("session", one(err), err)
	cl, err := s.ClaimDue(c, t0, 100, time.Second)
	n = 0
	for _, x := range cl {
		if x.UserID == uid {
			n++
		}
		// Put it back as it was, so checking is repeatable.
		if err := s.Complete(c, x, t0); err != nil {
			t.Errorf("complete: %v", err)
		}
	}
	check("due entry", n, err)
}

func testDeleteUser(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	seedUser(t, s, "ua")
	seedUser(t, s, "ub")
	checkUser(t, s, "ua", true)
	checkUser(t, s, "ub", true)
	must(t, "delete", s.DeleteUser(c, "ua"))
	checkUser(t, s, "ua", false)
	checkUser(t, s, "ub", true)
	if total, _ := dueCount(t, s, t0); total != 1 {
		t.Errorf("due entries after delete = %d, want 1", total)
	}
	must(t, "delete is idempotent", s.DeleteUser(c, "ua"))
	// The ID can be used again from scratch.
	must(t, "create again", s.CreateUser(c, store.User{ID: "ua", Created: t0.Add(time.Hour)}))
	conns, err := s.ListConnections(c, "ua")
	must(t, "list", err)
	if len(conns) != 0 {
		t.Errorf("recreated user has old connections: %v", conns)
	}
}

func testRecordVersions(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	if h.PutRawUser == nil {
		t.Fatal("harness has no PutRawUser")
	}
	must(t, "create", s.CreateUser(c, store.User{ID: "v1", Created: t0, Rules: sampleRules()}))
	if !bytes.Contains(h.Raw(), []byte(`"v":1`)) {
		t.Errorf(`stored records carry no "v":1`)
	}
	future := []byte(`{"v":2,"id":"v2","created":"2030-01-07T09:00:00Z","rules":{"time_zone":"Asia/Tokyo","working_hours":[null,[{"start":540,"end":1080}],null,null,null,null,null],"tentative_counts":true,"kinds":{"meeting":{"enabled":true,"slack_text":"Busy","future_rule_field":42}},"future_rules_field":"x"},"plan":{"tier":"future"}}`)
	h.PutRawUser("v2", future)
	u, err := s.GetUser(c, "v2")
	must(t, "get a v2 record", err)
	if u.ID != "v2" || !u.Created.Equal(t0) || u.Rules.TimeZone != "Asia/Tokyo" || !u.Rules.TentativeCounts ||
		len(u.Rules.WorkingHours[time.Monday]) != 1 || u.Rules.WorkingHours[time.Monday][0].End != presence.NewClock(18, 0) ||
		u.Rules.Kinds[presence.KindMeeting].SlackText != "Busy" {
		t.Errorf("v2 record read as %+v", u)
	}
	// An old reader rewrites the record with the fields it knows.
	u.Rules.TimeZone = "Europe/Paris"
	must(t, "put", s.PutUser(c, u))
	u2, err := s.GetUser(c, "v2")
	must(t, "get rewritten", err)
	sameJSON(t, "rewritten", u2, u)
	// A record with fields missing reads with zero values.
	h.PutRawUser("v0", []byte(`{"id":"v0"}`))
	u, err = s.GetUser(c, "v0")
	must(t, "get a minimal record", err)
	if u.ID != "v0" || !u.Created.IsZero() || u.Rules.TimeZone != "" {
		t.Errorf("minimal record read as %+v", u)
	}
}

// seal encrypts plaintext with AES-256-GCM the way a vault would: nonce || ciphertext.
func seal(t *testing.T, aead cipher.AEAD, plaintext, ad []byte) []byte {
	t.Helper()
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	return aead.Seal(nonce, nonce, plaintext, ad)
}

func testPrivacyScan(t *testing.T, h Harness) {
	s, c := h.Store, ctx(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	must(t, "cipher", err)
	aead, err := cipher.NewGCM(block)
	must(t, "gcm", err)

	const accessToken = "ya29.a0AfH6SMBx-PLAINTEXT-ACCESS-TOKEN-3f9c2e"
	const refreshToken = "1//0gPLAINTEXT-REFRESH-TOKEN-77aa"
	const email = "only.in.the.plaintext.7731@example.org"
	plain, err := json.Marshal(map[string]string{"access_token": accessToken, "refresh_token": refreshToken, "email": email, "token_type": "Bearer"})
	must(t, "plaintext", err)

	var sealed [][]byte
	for i := range 4 {
		uid := fmt.Sprintf("user-%d", i)
		must(t, "create", s.CreateUser(c, store.User{ID: uid, Created: t0}))
		cn := conn(uid, fmt.Sprintf("conn-%d", i), "google", fmt.Sprintf("ext-%d", i))
		cn.Credential = seal(t, aead, plain, []byte(uid+"/"+cn.ID))
		sealed = append(sealed, cn.Credential)
		must(t, "put connection", s.PutConnection(c, cn))
		if i == 0 {
			// A refresh: the blob is swapped for a fresh sealing of the same plaintext.
			fresh := seal(t, aead, plain, []byte(uid+"/"+cn.ID))
			must(t, "swap", s.SwapCredential(c, uid, cn.ID, cn.Credential, fresh))
			sealed[0] = fresh
		}
		must(t, "target state", s.PutTargetState(c, store.TargetState{UserID: uid, Target: "slack:status", Written: []byte(`{"text":"In a meeting"}`), WrittenAt: t0, Replaced: seal(t, aead, []byte(`{"text":"lunch with `+email+`"}`), nil)}))
		now := time.Now()
		must(t, "session", s.PutSession(c, store.Session{ID: fmt.Sprintf("sess-%d", i), UserID: uid, Data: map[string]string{"state": "opaque"}, Created: now, Expires: now.Add(time.Hour)}))
		must(t, "activity", s.AppendActivity(c, uid, store.Activity{At: t0, Kind: "resync", Target: "google", Outcome: "set"}))
	}

	raw := h.Raw()
	if len(raw) == 0 {
		t.Fatal("Raw returned nothing")
	}
	// The scan is only meaningful if Raw shows what the store wrote: the sealed blob is there.
	if !bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(sealed[0]))) && !bytes.Contains(raw, sealed[0]) {
		t.Errorf("Raw does not contain the sealed credential blob: Raw does not show the stored bytes")
	}
	for _, secret := range []string{accessToken, refreshToken, email, "PLAINTEXT"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("stored bytes contain %q", secret)
		}
		if bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte(secret)))) {
			t.Errorf("stored bytes contain %q in base64", secret)
		}
	}
	// The blobs still open: the store kept them byte for byte.
	for i := range 4 {
		uid, id := fmt.Sprintf("user-%d", i), fmt.Sprintf("conn-%d", i)
		got, err := s.GetConnection(c, uid, id)
		must(t, "get", err)
		nonce, ct := got.Credential[:aead.NonceSize()], got.Credential[aead.NonceSize():]
		opened, err := aead.Open(nil, nonce, ct, []byte(uid+"/"+id))
		if err != nil || !bytes.Equal(opened, plain) {
			t.Errorf("credential of %s does not open: %v", id, err)
		}
	}
}

// testMarkSeen: a delivery key acts once within its TTL, and again after it.
func testMarkSeen(t *testing.T, h Harness) {
	ctx := t.Context()
	st := h.Store
	first, err := st.MarkSeen(ctx, "zoom:meeting.started:1:abc", time.Hour)
	if err != nil || !first {
		t.Fatalf("first MarkSeen = %v, %v; want true", first, err)
	}
	for i := 0; i < 2; i++ {
		if again, err := st.MarkSeen(ctx, "zoom:meeting.started:1:abc", time.Hour); err != nil || again {
			t.Fatalf("repeated MarkSeen = %v, %v; want false", again, err)
		}
	}
	if other, err := st.MarkSeen(ctx, "zoom:meeting.ended:2:abc", time.Hour); err != nil || !other {
		t.Fatalf("another key = %v, %v; want true", other, err)
	}
	if err := st.UnmarkSeen(ctx, "zoom:meeting.ended:2:abc"); err != nil {
		t.Fatal(err)
	}
	if again, err := st.MarkSeen(ctx, "zoom:meeting.ended:2:abc", time.Hour); err != nil || !again {
		t.Fatalf("after UnmarkSeen = %v, %v; want true", again, err)
	}
	if first, err := st.MarkSeen(ctx, "short", 30*time.Millisecond); err != nil || !first {
		t.Fatalf("short key = %v, %v", first, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		again, err := st.MarkSeen(ctx, "short", 30*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if again {
			break // expired, seen afresh
		}
		if time.Now().After(deadline) {
			t.Fatal("a key with a 30ms TTL was still seen after 5s")
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

// testRequestSync: only SyncRequested changes, never backwards, and a credential swapped in
// meanwhile survives.
func testRequestSync(t *testing.T, h Harness) {
	ctx := t.Context()
	st := h.Store
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	if err := st.CreateUser(ctx, store.User{ID: "rs-user", Created: now}); err != nil {
		t.Fatal(err)
	}
	c := store.Connection{ID: "rs-conn", UserID: "rs-user", Provider: "outlook", ExternalID: "oid-1", Credential: []byte("blob-1"), Health: store.HealthOK, Created: now}
	if err := st.PutConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := st.SwapCredential(ctx, "rs-user", "rs-conn", []byte("blob-1"), []byte("blob-2")); err != nil {
		t.Fatal(err)
	}
	if err := st.RequestSync(ctx, "rs-user", "rs-conn", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.RequestSync(ctx, "rs-user", "rs-conn", now); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetConnection(ctx, "rs-user", "rs-conn")
	if err != nil {
		t.Fatal(err)
	}
	if !got.SyncRequested.Equal(now.Add(time.Minute)) || string(got.Credential) != "blob-2" || got.ExternalID != "oid-1" {
		t.Fatalf("after RequestSync: requested %v credential %q external %q", got.SyncRequested, got.Credential, got.ExternalID)
	}
	if err := st.RequestSync(ctx, "rs-user", "nope", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RequestSync of a missing connection = %v, want ErrNotFound", err)
	}
}

// testOAuthRecords: put, get, delete, and an expired record reads as not found.
func testOAuthRecords(t *testing.T, h Harness) {
	ctx := t.Context()
	st := h.Store
	later := time.Now().Add(time.Hour)
	if err := st.PutOAuthRecord(ctx, "access", "sig-1", []byte(`{"subject":"u1"}`), later); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetOAuthRecord(ctx, "access", "sig-1")
	if err != nil || string(got) != `{"subject":"u1"}` {
		t.Fatalf("GetOAuthRecord = %q, %v", got, err)
	}
	if _, err := st.GetOAuthRecord(ctx, "refresh", "sig-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another kind = %v, want ErrNotFound", err)
	}
	if err := st.DeleteOAuthRecord(ctx, "access", "sig-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetOAuthRecord(ctx, "access", "sig-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete = %v, want ErrNotFound", err)
	}
	if err := st.PutOAuthRecord(ctx, "code", "old", []byte("x"), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetOAuthRecord(ctx, "code", "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired record = %v, want ErrNotFound", err)
	}
}
