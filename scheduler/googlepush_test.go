package scheduler_test

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

// googleWatchSource is googleSource with Google's push channels (a copy of the adapter in
// cmd/dontinterrupt): channels are never renewed, only replaced and stopped.
type googleWatchSource struct{ googleSource }

var _ scheduler.ChannelWatcher = googleWatchSource{}

func (g googleWatchSource) Watch(ctx context.Context, cred provider.Credential, resource, notifyURL, token string, now time.Time) (string, time.Time, error) {
	ch, err := g.c.Watch(ctx, cred, resource, notifyURL, token, now)
	return ch.ID, ch.Expiry, err
}

func (g googleWatchSource) RenewWatch(context.Context, provider.Credential, string, time.Time) (time.Time, error) {
	return time.Time{}, scheduler.ErrWatchGone
}

func (g googleWatchSource) WatchChannel(ctx context.Context, cred provider.Credential, resource, notifyURL, token string, now time.Time) (scheduler.Channel, error) {
	ch, err := g.c.Watch(ctx, cred, resource, notifyURL, token, now)
	return scheduler.Channel(ch), err
}

func (g googleWatchSource) StopWatch(ctx context.Context, cred provider.Credential, id, resourceID string) error {
	return g.c.StopWatch(ctx, cred, id, resourceID)
}

// TestGoogleChannelReplacedBeforeExpiry: after the first sync a Google channel is made for the
// calendar with the configured ttl and stored with its resource ID, token and lifetime; the
// person is next due when it must be replaced: a day before expiry for a week-long channel, a
// sixth of the lifetime before for channels under two days (an hour-long one 10 minutes
// before). Then a new channel is made, stored, and the old one stopped at Google.
func TestGoogleChannelReplacedBeforeExpiry(t *testing.T) {
	for _, tc := range []struct {
		ttl, before time.Duration
	}{
		{time.Hour, 10 * time.Minute},
		{36 * time.Hour, 6 * time.Hour},
		{7 * 24 * time.Hour, 24 * time.Hour},
	} {
		t.Run(tc.ttl.String(), func(t *testing.T) {
			e := newEnv(t, envOptions{start: at(9, 0)})
			t.Cleanup(e.gfake.Close)
			// Notifications go to a TLS server the fake does not trust: this test is about
			// the channels, not their deliveries (the web tests take those).
			rx := httptest.NewTLSServer(http.NotFoundHandler())
			rx.Config.ErrorLog = log.New(io.Discard, "", 0)
			t.Cleanup(rx.Close)
			notifyURL := rx.URL + "/webhooks/google"
			gc, err := google.New(e.ctx, google.Config{
				ClientID: e.gfake.ClientID(), ClientSecret: e.gfake.ClientSecret(),
				IssuerURL: e.gsrv.URL, APIURL: e.gsrv.URL + "/",
				SignInRedirectURL: signInRedirect, ConnectRedirectURL: connectRedirect,
				HTTPClient: e.gsrv.Client(), Now: e.clk.Now, ChannelTTL: tc.ttl,
			})
			if err != nil {
				t.Fatal(err)
			}
			s, err := scheduler.New(scheduler.Deps{
				Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
				Store:  e.st, Vault: e.vault, Clock: e.clk,
				Sources: map[string]scheduler.Source{"google": googleWatchSource{googleSource{gc}}},
				Slack:   e.sc,
				Options: scheduler.Options{ResyncInterval: 30 * 24 * time.Hour, NotifyURLs: map[string]string{"google": notifyURL}},
			})
			if err != nil {
				t.Fatal(err)
			}
			ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
			process := func(at time.Time) time.Time {
				t.Helper()
				e.clk.Set(at)
				next, err := s.ProcessUser(e.ctx, ada.id)
				if err != nil {
					t.Fatal(err)
				}
				return next
			}
			state := func() store.SyncState {
				t.Helper()
				ss, err := e.st.GetSyncState(e.ctx, ada.google.ID, "primary")
				if err != nil {
					t.Fatal(err)
				}
				return ss
			}

			t0 := at(9, 0)
			next := process(t0)
			ss := state()
			chans := e.gfake.Channels()
			if len(chans) != 1 {
				t.Fatalf("%d channels at Google, want 1", len(chans))
			}
			first := chans[0]
			if ss.ChannelID != first.ID || ss.ChannelResource != first.ResourceID || !store.ChannelTokenMatches(ss.ChannelToken, first.Token) || ss.ChannelToken == first.Token ||
				!ss.ChannelExpiry.Equal(t0.Add(tc.ttl)) || !ss.ChannelSince.Equal(t0) || ss.UserID != ada.id || first.Address != notifyURL {
				t.Fatalf("sync state %+v for channel %+v: want it stored with its resource, token, since and expiry", ss, first)
			}
			if got, err := e.st.FindChannel(e.ctx, first.ID); err != nil || got.ConnectionID != ada.google.ID || got.UserID != ada.id {
				t.Errorf("FindChannel(%s) = %+v, %v", first.ID, got, err)
			}
			if _, ok := e.findActivity(ada.id, "google", "subscribed"); !ok {
				t.Error("no activity entry for the new channel")
			}
			// Follow the due times (the planning horizon brings the person back before a
			// long channel's renewal): one of them is the renewal time, and no channel is
			// made before it.
			followTo := func(next, renewAt time.Time, channels int) {
				t.Helper()
				for i := 0; next.Before(renewAt); i++ {
					if i > 20 {
						t.Fatalf("next due %s never reached the renewal time %s", next, renewAt)
					}
					next = process(next)
					if n := len(e.gfake.Channels()); n != channels {
						t.Fatalf("at %s: %d channels, want %d (renewed before %s)", e.clk.Now(), n, channels, renewAt)
					}
				}
				e.wantNext(next, renewAt, "the renewal time")
			}
			renewAt := t0.Add(tc.ttl - tc.before)
			followTo(next, renewAt, 1)

			next = process(renewAt)
			chans = e.gfake.Channels()
			if len(chans) != 2 || !chans[0].Stopped || chans[1].Stopped {
				t.Fatalf("channels %+v: want the first stopped and a new one", chans)
			}
			ss = state()
			if ss.ChannelID != chans[1].ID || ss.ChannelID == first.ID || ss.ChannelResource != chans[1].ResourceID ||
				!ss.ChannelSince.Equal(renewAt) || !ss.ChannelExpiry.Equal(renewAt.Add(tc.ttl)) || !store.ChannelTokenMatches(ss.ChannelToken, chans[1].Token) {
				t.Errorf("sync state %+v, want the new channel %+v", ss, chans[1])
			}
			if _, err := e.st.FindChannel(e.ctx, first.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the replaced channel is still found: %v", err)
			}
			followTo(next, renewAt.Add(tc.ttl-tc.before), 2)
		})
	}
}
