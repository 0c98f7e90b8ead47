package scheduler

import (
	"context"
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
	for _, res := range resources {
		ss, err := s.st.GetSyncState(ctx, c.ID, res)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("read sync state", "user", u.ID, "connection", c.ID, "err", err)
			earlier(now.Add(s.opt.RetryBase))
			continue
		}
		due := ss.Synced.Add(s.opt.ResyncInterval)
		requested := !c.SyncRequested.IsZero() && !c.SyncRequested.Before(ss.Synced)
		if !ss.Synced.IsZero() && due.After(now) && !requested {
			earlier(due)
			continue
		}
		if cred == nil {
			k, err := s.credential(ctx, c, src.Refresh, now)
			if err != nil {
				return s.retryAt(ctx, c, "sync", c.Provider, err, now)
			}
			cred = &k
		}
		source := c.ID + "/" + res
		res0 := ss
		res0.ConnectionID, res0.Resource = c.ID, res
		result, err := src.Sync(ctx, *cred, res, ss.Token, now, u.Rules.TitleEmoji)
		if err != nil {
			t := s.retryAt(ctx, c, "sync", c.Provider, err, now)
			if c.Health != store.HealthOK {
				return time.Time{}
			}
			earlier(t)
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
		if err := s.st.PutSyncState(ctx, res0); err != nil {
			s.log.Error("store sync state", "user", u.ID, "connection", c.ID, "err", err)
		}
		s.succeeded(c.ID)
		s.log.Debug("synced", "user", u.ID, "connection", c.ID, "full", result.Full, "changed", len(result.Events), "deleted", len(result.Deleted))
		earlier(now.Add(s.opt.ResyncInterval))
	}
	return next
}
