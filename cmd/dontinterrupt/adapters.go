package main

import (
	"context"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
)

// googleSource adapts the Google client to the scheduler's Source.
type googleSource struct{ c *google.Client }

func (g googleSource) Sync(ctx context.Context, cred provider.Credential, resource, syncToken string, now time.Time, titleEmoji bool) (scheduler.SyncResult, error) {
	r, err := g.c.Sync(ctx, cred, resource, syncToken, now, google.SyncOptions{TitleEmoji: titleEmoji})
	return scheduler.SyncResult(r), err
}

func (g googleSource) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return g.c.Refresh(ctx, cred, now)
}
