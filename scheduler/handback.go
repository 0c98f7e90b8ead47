package scheduler

import (
	"context"
	"sync"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// handBack returns claims this process will not finish (it is shutting down) to the due index,
// due now, so another replica takes them at once instead of after the lease; with a shared
// store the other replicas are woken. A run cut short may have written to a provider without
// recording it: the replica that takes the person over adopts such a write (see
// reconcileSlack), it does not repeat it.
func (s *Scheduler) handBack(ctx context.Context, claims []store.Claim) {
	if len(claims) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	now := s.clock.Now()
	for _, c := range claims {
		if err := s.st.Complete(ctx, c, now); err != nil {
			s.log.Error("hand back claim", "user", c.UserID, "err", err)
		}
	}
	s.log.Info("handed claimed people back at shutdown", "count", len(claims))
	if w, ok := s.st.(store.DueWaker); ok {
		if err := w.WakeDue(ctx); err != nil {
			s.log.Warn("wake the other replicas", "err", err)
		}
	}
}

// watchHandBacks wakes the loop when another replica hands people back (a store shared by
// several processes), until ctx ends; wg waits for it.
func (s *Scheduler) watchHandBacks(ctx context.Context, wg *sync.WaitGroup) {
	w, ok := s.st.(store.DueWaker)
	if !ok {
		return
	}
	wg.Go(func() { w.WatchDue(ctx, s.poke) })
}
