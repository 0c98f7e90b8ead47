package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	slackint "github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
	"github.com/dontinterrupt/dontinterrupt/web"
)

const (
	cookieName = "di_session"
	slackUser  = "U0001"
	slackTeam  = "T0001"
)

// recorder records the arguments of calls made from handlers.
type recorder[T any] struct {
	mu    sync.Mutex
	calls []T
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, v)
}

func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.calls...)
}

// sandboxCall is one call of Deps.SandboxEvents.
type sandboxCall struct {
	Sub   string
	Start time.Time
	D     time.Duration
	Kind  string
}

// lockedBuffer is the log of the server under test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pingStore is a store whose Ping fails while fail is set.
type pingStore struct {
	store.Store
	mu   sync.Mutex
	fail bool
}

func (p *pingStore) setFail(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = v
}

func (p *pingStore) Ping(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("store is down")
	}
	return p.Store.Ping(ctx)
}

type envOptions struct {
	secure  bool
	sandbox bool
	// clock is the service's clock (and the bolt store's); nil is the real clock.
	clock clock.Clock
	// pingStore wraps the store in a *pingStore.
	pingStore bool
	// configure, when set, adds to the server's dependencies (more providers, sandbox
	// hooks) before the server is built; e.base and e.clock are set by then.
	configure func(e *env, d *web.Deps)
}

// env is a web.Server on httptest with a real bolt store, a real vault and real Google and
// Slack clients talking to the fakes.
type env struct {
	t       *testing.T
	base    string
	st      *bolt.Store
	stPath  string
	ping    *pingStore
	vault   *vault.Vault
	clock   clock.Clock
	google  *googlefake.Server
	gURL    string
	slack   *slackfake.Server
	gc      *google.Client
	sc      *slackint.Client
	jar     http.CookieJar
	client  *http.Client // follows redirects, keeps cookies
	visited *recorder[*url.URL]
	wakes   *recorder[string]
	sandbox *recorder[sandboxCall]
	logs    *lockedBuffer
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, clock: o.clock, wakes: &recorder[string]{}, sandbox: &recorder[sandboxCall]{}, visited: &recorder[*url.URL]{}, logs: &lockedBuffer{}}
	if e.clock == nil {
		e.clock = clock.Real{}
	}

	e.google = googlefake.New(googlefake.Options{AutoApprove: true})
	gs := httptest.NewServer(e.google)
	t.Cleanup(gs.Close)
	t.Cleanup(e.google.Close) // its push deliveries end with the test
	e.google.SetBaseURL(gs.URL)
	e.gURL = gs.URL

	e.slack = slackfake.New(slackfake.Options{TokenRotation: true})
	ss := httptest.NewServer(e.slack)
	t.Cleanup(ss.Close)
	e.slack.SetBaseURL(ss.URL)
	e.slack.AutoApprove(slackUser)

	e.stPath = filepath.Join(t.TempDir(), "di.db")
	st, err := bolt.Open(e.stPath, bolt.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	var deps store.Store = st
	if o.pingStore {
		e.ping = &pingStore{Store: st}
		deps = e.ping
	}

	ks, err := vault.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e.vault = vault.New(ks)

	ts := httptest.NewUnstartedServer(nil)
	e.base = "http://" + ts.Listener.Addr().String()

	e.gc, err = google.New(ctx, google.Config{
		ClientID:           e.google.ClientID(),
		ClientSecret:       e.google.ClientSecret(),
		IssuerURL:          gs.URL,
		APIURL:             gs.URL + "/",
		SignInRedirectURL:  e.base + "/signin/google/callback",
		ConnectRedirectURL: e.base + "/connect/google/callback",
		HTTPClient:         gs.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sc, err = slackint.New(slackint.Config{
		ClientID:     e.slack.ClientID(),
		ClientSecret: e.slack.ClientSecret(),
		BaseURL:      ss.URL,
		RedirectURL:  e.base + "/connect/slack/callback",
		HTTPClient:   ss.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}

	d := web.Deps{
		Logger:  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:   deps,
		Vault:   e.vault,
		Clock:   e.clock,
		Secure:  o.secure,
		Sandbox: o.sandbox,
		Google:  e.gc,
		Slack:   e.sc,
		Wake: func(_ context.Context, userID string) error {
			e.wakes.add(userID)
			return nil
		},
	}
	if o.sandbox {
		d.SandboxEvents = func(_ context.Context, sub string, start time.Time, dur time.Duration, kind string) error {
			e.sandbox.add(sandboxCall{sub, start, dur, kind})
			return nil
		}
		d.SandboxSlackURL = ss.URL
	}
	if o.configure != nil {
		o.configure(e, &d)
	}
	srv, err := web.NewServer(d)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs)
		}
	})

	e.jar, _ = cookiejar.New(nil)
	e.client = &http.Client{
		Jar:     e.jar,
		Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			e.visited.add(req.URL)
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
	return e
}

// noRedirect is a client sharing the cookie jar that does not follow redirects.
func (e *env) noRedirect() *http.Client {
	return &http.Client{Jar: e.jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// do sends a request with c and returns the response with its body read.
func (e *env) do(c *http.Client, method, path string, body io.Reader, hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = e.base + path
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

// get fetches path following redirects.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, body := e.do(e.client, http.MethodGet, path, nil, nil)
	return resp.StatusCode, body
}

// postForm posts a form without following the redirect, as a same-origin browser form would.
func (e *env) postForm(path string, form url.Values) (*http.Response, string) {
	e.t.Helper()
	hdr := http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Sec-Fetch-Site": {"same-origin"},
		"Origin":         {e.base},
	}
	return e.do(e.noRedirect(), http.MethodPost, path, strings.NewReader(form.Encode()), hdr)
}

// startFlow starts a flow at path (/signin/google, /connect/slack…) without following the
// redirect to the provider, and returns the state it carries.
func (e *env) startFlow(path string) string {
	e.t.Helper()
	resp, body := e.do(e.noRedirect(), http.MethodGet, path, nil, nil)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("GET %s: %d, want 302\n%s", path, resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	state := loc.Query().Get("state")
	if state == "" {
		e.t.Fatalf("GET %s: redirect %s has no state", path, loc)
	}
	return state
}

// signIn signs in with Google through the fake and returns the user ID.
func (e *env) signIn() string {
	e.t.Helper()
	code, body := e.get("/signin/google")
	if code != http.StatusOK || !strings.Contains(body, "Your dashboard") {
		e.t.Fatalf("sign in: %d\n%s", code, body)
	}
	id, err := e.st.GetIdentity(e.t.Context(), "google", googlefake.DefaultSub)
	if err != nil {
		e.t.Fatalf("identity after sign-in: %v", err)
	}
	return id.UserID
}

// connect connects provider through the fake and returns the stored connection.
func (e *env) connect(userID, p string) store.Connection {
	e.t.Helper()
	code, body := e.get("/connect/" + p)
	if code != http.StatusOK || !strings.Contains(body, "conn-"+p) {
		e.t.Fatalf("connect %s: %d\n%s", p, code, body)
	}
	return e.connection(userID, p)
}

// connection returns the user's only connection of provider p.
func (e *env) connection(userID, p string) store.Connection {
	e.t.Helper()
	conns, err := e.st.ListConnections(e.t.Context(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Connection
	for _, c := range conns {
		if c.Provider == p {
			out = append(out, c)
		}
	}
	if len(out) != 1 {
		e.t.Fatalf("%d %s connections, want 1: %+v", len(out), p, conns)
	}
	return out[0]
}

// credential opens a stored connection's credential with the vault.
func (e *env) credential(c store.Connection) provider.Credential {
	e.t.Helper()
	pt, err := e.vault.Open(c.Credential, c.UserID, c.ID)
	if err != nil {
		e.t.Fatalf("open credential of %s: %v", c.ID, err)
	}
	cred, err := provider.UnmarshalCredential(pt)
	if err != nil {
		e.t.Fatal(err)
	}
	return cred
}

// cookie returns the session cookie value the jar holds for the service ("" when none).
func (e *env) cookie() string {
	u, _ := url.Parse(e.base)
	for _, c := range e.jar.Cookies(u) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

func sessionKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// googleTokenWorks reports whether an access token reads the Calendar API of the fake.
func (e *env) googleTokenWorks(token string) bool {
	e.t.Helper()
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	resp, body := e.do(http.DefaultClient, http.MethodGet, e.gURL+"/calendar/v3/calendars/primary/events", nil, hdr)
	switch resp.StatusCode {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	}
	e.t.Fatalf("calendar events with the token: %d\n%s", resp.StatusCode, body)
	return false
}

// rawFile returns the bytes of the bolt file.
func (e *env) rawFile() []byte {
	e.t.Helper()
	b, err := os.ReadFile(e.stPath)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// counts are the records of the bolt file, counted from its buckets.
type counts struct {
	Users, Identities, Connections, ConnIndex, SyncStates, Events, Activity, Sessions int
}

// snapshot counts what the bolt file holds, reading a copy of it (the store holds the lock on
// the file itself).
func (e *env) snapshot() counts {
	e.t.Helper()
	db := e.openCopy()
	defer db.Close()
	var c counts
	n := func(b *bbolt.Bucket) int {
		if b == nil {
			return 0
		}
		return b.Stats().KeyN
	}
	err := db.View(func(tx *bbolt.Tx) error {
		users := tx.Bucket([]byte("users"))
		if users == nil {
			return errors.New("no users bucket")
		}
		err := users.ForEachBucket(func(k []byte) error {
			c.Users++
			ub := users.Bucket(k)
			c.Connections += n(ub.Bucket([]byte("connections")))
			c.Events += n(ub.Bucket([]byte("events")))
			c.Activity += n(ub.Bucket([]byte("activity")))
			return nil
		})
		c.Identities = n(tx.Bucket([]byte("identities")))
		c.ConnIndex = n(tx.Bucket([]byte("conn_ext")))
		c.SyncStates = n(tx.Bucket([]byte("sync")))
		c.Sessions = n(tx.Bucket([]byte("sessions")))
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// openCopy opens a read-only copy of the bolt file (the store holds the lock on the file).
func (e *env) openCopy() *bbolt.DB {
	e.t.Helper()
	cp := filepath.Join(e.t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, e.rawFile(), 0o600); err != nil {
		e.t.Fatal(err)
	}
	db, err := bbolt.Open(cp, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	return db
}

// records returns every record of the bolt file but sessions, by bucket path and key, so a
// test can prove a request changed nothing at all, not only no record count (a connection's
// SyncRequested, a webhook delivery marked seen).
func (e *env) records() map[string]string {
	e.t.Helper()
	db := e.openCopy()
	defer db.Close()
	out := map[string]string{}
	var walk func(path string, b *bbolt.Bucket) error
	walk = func(path string, b *bbolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if string(k) == "sessions" {
					return nil
				}
				return walk(path+"/"+string(k), b.Bucket(k))
			}
			out[path+"/"+string(k)] = string(v)
			return nil
		})
	}
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			switch string(name) {
			case "sessions", "session_exp":
				return nil
			}
			return walk(string(name), b)
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// unchanged fails unless the records (sessions aside) are exactly before.
func unchanged(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range after {
		if old, ok := before[k]; !ok {
			t.Errorf("%s: record %s added", what, k)
		} else if old != v {
			t.Errorf("%s: record %s changed:\nbefore %s\nafter  %s", what, k, old, v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			t.Errorf("%s: record %s removed", what, k)
		}
	}
}

// sameRecords fails unless nothing but sessions changed between two snapshots.
func sameRecords(t *testing.T, before, after counts) {
	t.Helper()
	before.Sessions, after.Sessions = 0, 0
	if before != after {
		t.Errorf("records changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// wantPage checks a page's status and that it says each of want.
func wantPage(t *testing.T, what string, code int, body string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: status %d, want %d\n%s", what, code, wantCode, body)
		return
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s: the page does not say %q\n%s", what, w, body)
		}
	}
}
