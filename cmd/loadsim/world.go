package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	redisstore "github.com/dontinterrupt/dontinterrupt/internal/store/redis"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

const (
	connectRedirect      = "http://loadsim.invalid/connect/google/callback"
	signInRedirect       = "http://loadsim.invalid/signin/google/callback"
	slackConnectRedirect = "http://loadsim.invalid/connect/slack/callback"
)

// worldConfig says how to build one world: the fakes, the clients, the store and the people.
type worldConfig struct {
	clk clock.Clock
	now func() time.Time
	// storeKind is "redis" (redisURL) or "bolt" (a file in dir).
	storeKind string
	redisURL  string
	dir       string
	// slackLimits and slackWindow are the fake Slack's per-method workspace limits (nil: its
	// defaults, per minute).
	slackLimits map[string]int
	slackWindow time.Duration
	// googleProjectQPM is the fake Google's per-project quota per minute.
	googleProjectQPM int
	stats            *stats
	conns            int // HTTP connections kept per fake (the workers' concurrency)
}

// world is one run's fakes, clients, store and people.
type world struct {
	cfg   worldConfig
	gfake *googlefake.Server
	gsrv  *httptest.Server
	gc    *google.Client
	sfake *slackfake.Server
	ssrv  *httptest.Server
	sc    *slack.Client
	st    store.Store
	rs    *redisstore.Store // when storeKind is redis
	vault *vault.Vault
	hc    *http.Client

	people []*simPerson
}

// simPerson is one simulated person: their accounts at the fakes, their connections and the
// ground truth of their day (every version of every event, and every change).
type simPerson struct {
	idx       int
	id        string
	sub       string // Google account
	slackUser string
	team      string
	gconn     string // connection IDs
	sconn     string

	// gAccess/gRefresh/gExpiry and slackToken are the person's tokens, for the reference
	// poller (which keeps them in memory, as the peers do).
	gAccess    string
	gRefresh   string
	gExpiry    time.Time
	slackToken string

	events      []simEvent
	transitions []time.Time // sorted: every start, end and change time
	blocks      [][2]time.Time
	changeTimes []time.Time
	changeLog   []string // for LOADSIM_DEBUG
}

// simEvent is one generated event, with its ID at the fake once added.
type simEvent struct {
	id         string
	start, end time.Time
	kind       string // "meeting", "focus", "ooo"
}

func (w *world) close() {
	if w.gsrv != nil {
		w.gsrv.Close()
	}
	if w.ssrv != nil {
		w.ssrv.Close()
	}
	if c, ok := w.st.(io.Closer); ok {
		c.Close()
	}
}

// newWorld starts the fakes on loopback httptest servers, builds the real Google and Slack
// clients against them, and opens the store.
func newWorld(ctx context.Context, cfg worldConfig) (*world, error) {
	w := &world{cfg: cfg}
	ks, err := vault.Generate()
	if err != nil {
		return nil, err
	}
	w.vault = vault.New(ks)

	conns := max(cfg.conns, 16)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		IdleConnTimeout:     90 * time.Second,
	}
	w.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}

	gopts := googlefake.Options{
		AutoApprove:              true,
		Now:                      cfg.now,
		ProjectRequestsPerMinute: cfg.googleProjectQPM,
		CallLogLimit:             -1,
		OnCall:                   cfg.stats.googleCall,
		SigningKey:               signingKey(),
	}
	w.gfake = googlefake.New(gopts)
	w.gsrv = httptest.NewServer(w.gfake)
	w.gfake.SetBaseURL(w.gsrv.URL)
	w.gc, err = google.New(ctx, google.Config{
		ClientID:           w.gfake.ClientID(),
		ClientSecret:       w.gfake.ClientSecret(),
		IssuerURL:          w.gsrv.URL,
		APIURL:             w.gsrv.URL + "/",
		SignInRedirectURL:  signInRedirect,
		ConnectRedirectURL: connectRedirect,
		HTTPClient:         w.hc,
		Now:                cfg.now,
	})
	if err != nil {
		return nil, err
	}

	w.sfake = slackfake.New(slackfake.Options{
		Now:          cfg.now,
		RateLimits:   cfg.slackLimits,
		RateWindow:   cfg.slackWindow,
		OnCall:       cfg.stats.slackCall,
		NoCallLog:    true,
		SigningKey:   signingKey(),
		AppID:        "A0LOADSIM01",
		RedirectURIs: []string{slackConnectRedirect},
	})
	w.ssrv = httptest.NewServer(w.sfake)
	w.sfake.SetBaseURL(w.ssrv.URL)
	w.sc, err = slack.New(slack.Config{
		ClientID:     w.sfake.ClientID(),
		ClientSecret: w.sfake.ClientSecret(),
		BaseURL:      w.ssrv.URL,
		RedirectURL:  slackConnectRedirect,
		HTTPClient:   w.hc,
		Now:          cfg.now,
	})
	if err != nil {
		return nil, err
	}

	switch cfg.storeKind {
	case "none": // the reference poller keeps its people in memory
	case "bolt":
		st, err := bolt.Open(filepath.Join(cfg.dir, "loadsim.db"), bolt.WithClock(cfg.now))
		if err != nil {
			return nil, err
		}
		w.st = st
	default:
		rs, err := redisstore.Open(ctx, cfg.redisURL, redisstore.WithClock(cfg.now))
		if err != nil {
			return nil, err
		}
		// A private instance: flushing it is ours to do.
		if err := rs.Client().FlushDB(ctx).Err(); err != nil {
			return nil, err
		}
		w.st, w.rs = rs, rs
	}
	return w, nil
}

// limits is the rate-limit schedule shared with the store (Redis) or in memory (bolt).
func (w *world) limits() ratelimit.Schedule {
	if w.rs != nil {
		return ratelimit.NewRedis(w.rs.Client(), w.rs.Prefix())
	}
	return ratelimit.NewMemory()
}

// googleSource adapts the Google client to the scheduler's Source (cmd/dontinterrupt has the
// same adapter; a main package cannot be imported).
type googleSource struct{ c *google.Client }

func (g googleSource) Sync(ctx context.Context, cred provider.Credential, resource, syncToken string, now time.Time, titleEmoji bool) (scheduler.SyncResult, error) {
	r, err := g.c.Sync(ctx, cred, resource, syncToken, now, google.SyncOptions{TitleEmoji: titleEmoji})
	return scheduler.SyncResult(r), err
}

func (g googleSource) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return g.c.Refresh(ctx, cred, now)
}

// addPeople creates n people at the fakes and in the store, spread over Slack workspaces of
// the sizes sizes gives, each with a Google calendar (connected with a grant the fake mints:
// calendar.readonly only, so refreshes make the fake sign no ID token) and a Slack user token.
// Their calendars come from gen. withStore false skips the store (the reference poller keeps
// its people in memory).
func (w *world) addPeople(ctx context.Context, n int, sizes func() int, gen func(p *simPerson) []simEvent, withStore bool, progress func(done int)) error {
	now := w.cfg.now()
	team, left := 0, 0
	for i := range n {
		if left == 0 {
			team++
			left = max(sizes(), 1)
		}
		left--
		p := &simPerson{
			idx:       i,
			id:        fmt.Sprintf("u%07d", i),
			sub:       fmt.Sprintf("1%020d", i),
			slackUser: fmt.Sprintf("U%08d", i),
			team:      fmt.Sprintf("T%06d", team),
		}
		p.gconn, p.sconn = "google-"+p.id, "slack-"+p.id
		w.people = append(w.people, p)
	}
	for _, p := range w.people {
		w.sfake.AddUser(p.team, p.slackUser, "Person "+p.id)
		w.gfake.AddAccount(p.sub, p.id+"@loadsim.invalid", "Person "+p.id)
		p.events = gen(p)
		for i := range p.events {
			ev := &p.events[i]
			ev.id = w.gfake.AddEvent(p.sub, "primary", fakeEvent(*ev))
		}
		p.gAccess, p.gRefresh, p.gExpiry = w.gfake.IssueGrant(p.sub, googlefake.ScopeCalendarReadonly)
		p.slackToken = w.sfake.IssueUserToken(p.slackUser, slack.UserScopes...)
	}
	if !withStore {
		return nil
	}
	rules := presence.DefaultRules()
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		wg       sync.WaitGroup
	)
	ch := make(chan *simPerson)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range ch {
				err := w.storePerson(ctx, p, rules, now)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				done++
				if progress != nil && done%5000 == 0 {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range w.people {
		ch <- p
	}
	close(ch)
	wg.Wait()
	return firstErr
}

func (w *world) storePerson(ctx context.Context, p *simPerson, rules presence.Rules, now time.Time) error {
	if err := w.st.CreateUser(ctx, store.User{ID: p.id, Created: now, Rules: rules}); err != nil {
		return err
	}
	gblob, err := w.seal(p.id, p.gconn, provider.Credential{AccessToken: p.gAccess, RefreshToken: p.gRefresh, Expiry: p.gExpiry})
	if err != nil {
		return err
	}
	if err := w.st.PutConnection(ctx, store.Connection{
		ID: p.gconn, UserID: p.id, Provider: "google", ExternalID: p.sub,
		Scopes: []string{google.ScopeCalendarReadonly}, Resources: []string{"primary"}, Health: store.HealthOK,
		Credential: gblob, Created: now, Updated: now,
	}); err != nil {
		return err
	}
	sblob, err := w.seal(p.id, p.sconn, provider.Credential{AccessToken: p.slackToken})
	if err != nil {
		return err
	}
	return w.st.PutConnection(ctx, store.Connection{
		ID: p.sconn, UserID: p.id, Provider: "slack", ExternalID: p.slackUser, TeamID: p.team,
		Scopes: slack.UserScopes, Health: store.HealthOK, Credential: sblob, Created: now, Updated: now,
	})
}

func (w *world) seal(userID, connID string, cred provider.Credential) ([]byte, error) {
	pt, err := cred.Marshal()
	if err != nil {
		return nil, err
	}
	return w.vault.Seal(pt, userID, connID)
}

// fakeEvent is the fake calendar's form of a generated event (titles are fixed text: the
// scheduler never reads them unless a rule asks for the title emoji).
func fakeEvent(e simEvent) googlefake.Event {
	switch e.kind {
	case "ooo":
		return googlefake.Event{Summary: "Away", Start: e.start, End: e.end, AllDay: true, EventType: "outOfOffice"}
	case "focus":
		return googlefake.Event{Summary: "Focus", Start: e.start, End: e.end, EventType: "focusTime"}
	default:
		return googlefake.Event{Summary: "Meeting", Start: e.start, End: e.end}
	}
}

// errorLogger logs errors only, to stderr, so that a broken run is visible; once stopping
// is set (the run is over and its context cancelled) it logs nothing.
func errorLogger(stopping *atomic.Bool) *slog.Logger {
	return slog.New(quietHandler{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}), stopping})
}

type quietHandler struct {
	slog.Handler
	stopping *atomic.Bool
}

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.stopping.Load() && h.Handler.Enabled(ctx, l)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as), h.stopping}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name), h.stopping}
}
