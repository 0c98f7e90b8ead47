package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// DefaultResource is the calendar synced when the person selected none.
const DefaultResource = "primary"

// syncConnection syncs every due resource of a source connection and returns when it is next
// due (zero when never, e.g. once the connection broke).
func (s *Scheduler) syncConnection(ctx context.Context, u store.User, c *store.Connection, src Source, now time.Time) time.Time {
	resources := c.Resources
	if len(resources) == 0 {
		resources = []string{DefaultResource}
	}
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	var cred *provider.Credential
	// The connection's backoff starts over only after a run in which every due resource
	// synced (and subscribed): one calendar that went well must not reset the backoff of
	// another that keeps failing.
	synced, failed := false, false
	for _, res := range resources {
		ss, err := s.st.GetSyncState(ctx, c.ID, res)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("read sync state", "user", u.ID, "connection", c.ID, "err", err)
			earlier(now.Add(s.opt.RetryBase))
			continue
		}
		due := ss.Synced.Add(s.opt.ResyncInterval)
		requested := !c.SyncRequested.IsZero() && !c.SyncRequested.Before(ss.Synced)
		watchAt := s.watchAt(c, src, ss)
		if !ss.Synced.IsZero() && due.After(now) && !requested && (watchAt.IsZero() || watchAt.After(now)) {
			earlier(due)
			earlier(watchAt)
			continue
		}
		// From here on the old watch time (now or past) no longer counts: this run renews the
		// subscription, or fails to and retries with a backoff. Counting it would make the
		// person due again at once, and a subscription that keeps failing a hot loop.
		if cred == nil {
			k, err := s.credential(ctx, c, src.Refresh, now)
			if err != nil {
				return s.retryAt(ctx, c, "sync", c.Provider, err, now)
			}
			cred = &k
		}
		source := c.ID + "/" + res
		res0 := ss
		res0.ConnectionID, res0.Resource, res0.UserID = c.ID, res, u.ID
		result, err := src.Sync(ctx, *cred, res, ss.Token, now, u.Rules.TitleEmoji)
		if reason, ok := provider.RevokedReason(err); ok && reason == "token_expired" && cred.RefreshToken != "" {
			// The access token died before its expiry said: refresh once and try again.
			k, rerr := s.refresh(ctx, c, *cred, src.Refresh, now)
			if rerr != nil {
				err = rerr
			} else {
				cred = &k
				result, err = src.Sync(ctx, *cred, res, ss.Token, now, u.Rules.TitleEmoji)
			}
		}
		if err != nil {
			t := s.retryAt(ctx, c, "sync", c.Provider, err, now)
			if c.Health != store.HealthOK {
				return time.Time{}
			}
			earlier(t)
			failed = true
			if provider.TimedOut(err) {
				// The provider does not answer: the other calendars wait for the retry
				// rather than each wait for the client's timeout.
				break
			}
			continue
		}
		for i := range result.Events {
			result.Events[i].Source = source
		}
		if result.Full {
			err = s.st.ReplaceEvents(ctx, u.ID, source, result.Events)
		} else {
			if err = s.st.PutEvents(ctx, u.ID, result.Events); err == nil && len(result.Deleted) > 0 {
				keys := make([]string, len(result.Deleted))
				for i, id := range result.Deleted {
					keys[i] = source + "/" + id
				}
				err = s.st.DeleteEvents(ctx, u.ID, keys)
			}
		}
		if err != nil {
			s.log.Error("store events", "user", u.ID, "connection", c.ID, "err", err)
			earlier(now.Add(s.opt.RetryBase))
			continue
		}
		res0.Token, res0.Synced = result.NextToken, now
		change, werr := s.ensureWatch(ctx, c, src, *cred, &res0, now)
		if werr != nil {
			// Retried with the connection's backoff, which keeps growing: the sync went
			// well, the subscription did not.
			earlier(s.retryAt(ctx, c, "watch", c.Provider, werr, now))
			failed = true
		} else {
			earlier(s.watchAt(c, src, res0))
		}
		if err := s.st.PutSyncState(ctx, res0); err != nil {
			s.log.Error("store sync state", "user", u.ID, "connection", c.ID, "err", err)
		} else {
			s.watchStored(ctx, c, src, *cred, change, now)
		}
		synced = true
		s.log.Debug("synced", "user", u.ID, "connection", c.ID, "full", result.Full, "changed", len(result.Events), "deleted", len(result.Deleted))
		earlier(now.Add(s.opt.ResyncInterval))
	}
	if synced && !failed {
		s.succeeded(c.ID)
	}
	return next
}

// Watcher is a Source with push notifications (Graph subscriptions, Google watch channels).
type Watcher interface {
	// Watch subscribes notifyURL to changes of resource; notifications carry token.
	Watch(ctx context.Context, cred provider.Credential, resource, notifyURL, token string, now time.Time) (id string, expiry time.Time, err error)
	// RenewWatch extends a subscription; ErrWatchGone means subscribe again.
	RenewWatch(ctx context.Context, cred provider.Credential, id string, now time.Time) (time.Time, error)
}

// ChannelWatcher is a Watcher whose channels cannot be renewed, only replaced, and must be
// stopped with a provider resource ID besides their own (Google watch channels). Its
// RenewWatch answers ErrWatchGone; the scheduler then creates the new channel with
// WatchChannel, stores it, and stops the replaced one with StopWatch.
type ChannelWatcher interface {
	Watcher
	// WatchChannel is Watch, also returning the watched resource's provider ID.
	WatchChannel(ctx context.Context, cred provider.Credential, resource, notifyURL, token string, now time.Time) (Channel, error)
	// StopWatch stops a channel; one already gone is not an error.
	StopWatch(ctx context.Context, cred provider.Credential, id, resourceID string) error
}

// Channel is a push channel a ChannelWatcher created.
type Channel struct {
	ID         string
	ResourceID string
	Expiry     time.Time
}

// ErrWatchGone means a push subscription no longer exists.
var ErrWatchGone = errors.New("push subscription gone")

// watchRenewBefore is how long before it expires a push subscription of two days or more is
// renewed (see renewBefore).
const watchRenewBefore = 24 * time.Hour

// renewBefore is how long before its expiry the push channel of ss is renewed: a day for
// channels that live two days or more (Graph subscriptions, week-long Google channels), a
// sixth of the lifetime for shorter ones (an hour-long channel: 10 minutes before), so a short
// channel is neither renewed the moment it is made nor left to lapse. A channel stored without
// ChannelSince (before it existed) takes the day.
func renewBefore(ss store.SyncState) time.Duration {
	life := ss.ChannelExpiry.Sub(ss.ChannelSince)
	if ss.ChannelSince.IsZero() || life >= 2*watchRenewBefore {
		return watchRenewBefore
	}
	return max(life/6, 0)
}

// watchAt is when a resource's push subscription must be created or renewed (zero when the
// source has no push, or no webhook URL is configured for it).
func (s *Scheduler) watchAt(c *store.Connection, src Source, ss store.SyncState) time.Time {
	if _, ok := src.(Watcher); !ok || s.opt.NotifyURLs[c.Provider] == "" || ss.Synced.IsZero() {
		return time.Time{}
	}
	if ss.ChannelID == "" {
		return ss.Synced // as soon as the first sync is done
	}
	return ss.ChannelExpiry.Add(-renewBefore(ss))
}

// watchChange is what ensureWatch did that matters once the sync state is stored: a new
// channel, and the channel it replaced (stopped only once the new one is stored).
type watchChange struct {
	subscribed         bool
	oldID, oldResource string
}

// ensureWatch creates or renews the push subscription of a resource when it is due, updating
// ss (which the caller stores, then hands the change to watchStored).
func (s *Scheduler) ensureWatch(ctx context.Context, c *store.Connection, src Source, cred provider.Credential, ss *store.SyncState, now time.Time) (watchChange, error) {
	w, ok := src.(Watcher)
	url := s.opt.NotifyURLs[c.Provider]
	if !ok || url == "" {
		return watchChange{}, nil
	}
	if ss.ChannelID != "" && ss.ChannelExpiry.Sub(now) > renewBefore(*ss) {
		return watchChange{}, nil
	}
	if ss.ChannelID != "" {
		exp, err := w.RenewWatch(ctx, cred, ss.ChannelID, now)
		if err == nil {
			ss.ChannelExpiry, ss.ChannelSince = exp, now
			return watchChange{}, nil
		}
		if !errors.Is(err, ErrWatchGone) {
			return watchChange{}, err
		}
	}
	b := make([]byte, 24)
	rand.Read(b)
	token := hex.EncodeToString(b)
	var ch Channel
	var err error
	if cw, ok := w.(ChannelWatcher); ok {
		ch, err = cw.WatchChannel(ctx, cred, ss.Resource, url, token, now)
	} else {
		ch.ID, ch.Expiry, err = w.Watch(ctx, cred, ss.Resource, url, token, now)
	}
	if err != nil {
		return watchChange{}, err
	}
	change := watchChange{subscribed: true, oldID: ss.ChannelID, oldResource: ss.ChannelResource}
	ss.ChannelID, ss.ChannelResource, ss.ChannelExpiry, ss.ChannelToken, ss.ChannelSince = ch.ID, ch.ResourceID, ch.Expiry, store.ChannelTokenDigest(token), now
	return change, nil
}

// watchStored finishes a watch change once the sync state holding the new channel is stored:
// the activity log says so (only now can a notification find the channel), and the replaced
// channel of a ChannelWatcher is stopped. A stop that fails is logged and left: the old
// channel expires on its own, and its notifications no longer find a sync state.
func (s *Scheduler) watchStored(ctx context.Context, c *store.Connection, src Source, cred provider.Credential, change watchChange, now time.Time) {
	if !change.subscribed {
		return
	}
	s.activity(ctx, c.UserID, store.Activity{At: now, Kind: "push", Target: c.Provider, Outcome: "subscribed"})
	cw, ok := src.(ChannelWatcher)
	if !ok || change.oldID == "" {
		return
	}
	if err := cw.StopWatch(ctx, cred, change.oldID, change.oldResource); err != nil {
		s.log.Warn("stop a replaced push channel", "user", c.UserID, "connection", c.ID, "err", err)
	}
}
