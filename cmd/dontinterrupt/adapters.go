package main

import (
	"context"
	"errors"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
	"github.com/dontinterrupt/dontinterrupt/web"
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

// The Google source's push channels (events.watch): never renewed, only replaced, and the
// replaced one stopped (scheduler.ChannelWatcher).
var _ scheduler.ChannelWatcher = googleSource{}

func (g googleSource) Watch(ctx context.Context, cred provider.Credential, resource, notifyURL, token string, now time.Time) (string, time.Time, error) {
	ch, err := g.c.Watch(ctx, cred, resource, notifyURL, token, now)
	return ch.ID, ch.Expiry, err
}

// RenewWatch always says the channel is gone: Google channels cannot be extended, so the
// scheduler makes a new one (WatchChannel) and then stops this one (StopWatch).
func (g googleSource) RenewWatch(context.Context, provider.Credential, string, time.Time) (time.Time, error) {
	return time.Time{}, scheduler.ErrWatchGone
}

func (g googleSource) WatchChannel(ctx context.Context, cred provider.Credential, resource, notifyURL, token string, now time.Time) (scheduler.Channel, error) {
	ch, err := g.c.Watch(ctx, cred, resource, notifyURL, token, now)
	return scheduler.Channel(ch), err
}

func (g googleSource) StopWatch(ctx context.Context, cred provider.Credential, id, resourceID string) error {
	return g.c.StopWatch(ctx, cred, id, resourceID)
}

// microsoftWeb adapts the Microsoft client to what the web needs.
type microsoftWeb struct{ c *microsoft.Client }

func (m microsoftWeb) AuthURL(ctx context.Context, kind, state, nonce, verifier string) (string, error) {
	return m.c.AuthURL(ctx, microsoft.Kind(kind), state, nonce, verifier)
}

func (m microsoftWeb) Finish(ctx context.Context, kind, code, verifier, nonce string, now time.Time) (web.Grant, error) {
	g, err := m.c.Finish(ctx, microsoft.Kind(kind), code, verifier, nonce, now)
	if err != nil {
		return web.Grant{}, err
	}
	out := web.Grant{Subject: g.Subject, ExternalID: g.ObjectID, TeamID: g.TenantID, Scopes: g.Scopes, Credential: g.Credential}
	if microsoft.Kind(kind) == microsoft.KindOutlook {
		out.Resources = []string{outlookResource}
	}
	return out, nil
}

func (m microsoftWeb) Revoke(ctx context.Context, cred provider.Credential, states []store.SyncState) error {
	var errs []error
	for _, ss := range states {
		if ss.ChannelID != "" {
			errs = append(errs, m.c.Unsubscribe(ctx, cred, ss.ChannelID))
		}
	}
	return errors.Join(errs...)
}

// outlookResource names the one resource of an Outlook connection: the default calendar view.
const outlookResource = "calendar"

// outlookSource adapts the Microsoft client to the scheduler's Source and Watcher.
type outlookSource struct {
	c       *microsoft.Client
	horizon time.Duration
}

func (o outlookSource) Sync(ctx context.Context, cred provider.Credential, _, token string, now time.Time, titleEmoji bool) (scheduler.SyncResult, error) {
	r, err := o.c.Sync(ctx, cred, token, now, o.horizon, titleEmoji)
	return scheduler.SyncResult(r), err
}

func (o outlookSource) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return o.c.Refresh(ctx, cred, now)
}

func (o outlookSource) Watch(ctx context.Context, cred provider.Credential, _, notifyURL, token string, now time.Time) (string, time.Time, error) {
	return o.c.Subscribe(ctx, cred, notifyURL, token, now)
}

func (o outlookSource) RenewWatch(ctx context.Context, cred provider.Credential, id string, now time.Time) (time.Time, error) {
	exp, err := o.c.Renew(ctx, cred, id, now)
	if errors.Is(err, microsoft.ErrSubscriptionGone) {
		return exp, scheduler.ErrWatchGone
	}
	return exp, err
}

// teamsTarget adapts the Microsoft client to the scheduler's TeamsAPI.
type teamsTarget struct{ c *microsoft.Client }

func (t teamsTarget) Teams(ctx context.Context, cred provider.Credential) (scheduler.TeamsState, error) {
	st, err := t.c.Teams(ctx, cred)
	return scheduler.TeamsState(st), err
}

func (t teamsTarget) SetPresence(ctx context.Context, cred provider.Credential, availability, activity string, d time.Duration) (time.Duration, error) {
	return t.c.SetPresence(ctx, cred, availability, activity, d)
}

func (t teamsTarget) ClearPresence(ctx context.Context, cred provider.Credential) error {
	return t.c.ClearPresence(ctx, cred)
}

func (t teamsTarget) SetStatusMessage(ctx context.Context, cred provider.Credential, text string, expiry time.Time) error {
	return t.c.SetStatusMessage(ctx, cred, text, expiry)
}

func (t teamsTarget) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return t.c.Refresh(ctx, cred, now)
}

// zoomSource adapts the Zoom client to the scheduler's Source: upcoming meetings, listed whole
// at each sync (Zoom has no incremental listing).
type zoomSource struct{ c *zoom.Client }

func (z zoomSource) Sync(ctx context.Context, cred provider.Credential, _, _ string, now time.Time, _ bool) (scheduler.SyncResult, error) {
	evs, err := z.c.Meetings(ctx, cred, now, nil)
	return scheduler.SyncResult{Full: true, Events: evs}, err
}

func (z zoomSource) Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error) {
	return z.c.Refresh(ctx, cred, now)
}
