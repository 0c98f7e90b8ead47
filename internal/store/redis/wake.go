package redis

import (
	"context"
	"strconv"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

var _ store.DueWaker = (*Store)(nil)

// wakeChannel is the pub/sub channel of due wake-ups. Channels are shared by every database of
// a Redis server, so the name carries the database number besides the prefix.
func (s *Store) wakeChannel() string {
	return s.prefix + "due:wake:" + strconv.Itoa(s.rdb.Options().DB)
}

// WakeDue publishes a wake-up to every process watching (WatchDue).
func (s *Store) WakeDue(ctx context.Context) error {
	return wrap("wake due", s.rdb.Publish(ctx, s.wakeChannel(), "1").Err())
}

// WatchDue calls fn for each wake-up published on the database until ctx ends. go-redis
// subscribes again by itself after a lost connection.
func (s *Store) WatchDue(ctx context.Context, fn func()) {
	sub := s.rdb.Subscribe(ctx, s.wakeChannel())
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			fn()
		}
	}
}
