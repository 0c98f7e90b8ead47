package scheduler

import (
	"context"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// meteredSlack counts the writes the reconcile steps make to Slack, by method and outcome.
// Reads and refreshes pass through (refreshes are counted in Scheduler.refresh).
type meteredSlack struct {
	SlackAPI
	m *metrics.Metrics
}

func (a meteredSlack) SetStatus(ctx context.Context, cred provider.Credential, st presence.SlackStatus) error {
	err := a.SlackAPI.SetStatus(ctx, cred, st)
	a.m.Write("slack", "status", err)
	return err
}

func (a meteredSlack) Snooze(ctx context.Context, cred provider.Credential, until, now time.Time) (time.Time, error) {
	end, err := a.SlackAPI.Snooze(ctx, cred, until, now)
	a.m.Write("slack", "dnd_snooze", err)
	return end, err
}

func (a meteredSlack) EndSnooze(ctx context.Context, cred provider.Credential) error {
	err := a.SlackAPI.EndSnooze(ctx, cred)
	a.m.Write("slack", "dnd_end", err)
	return err
}

func (a meteredSlack) SetAway(ctx context.Context, cred provider.Credential, away bool) error {
	err := a.SlackAPI.SetAway(ctx, cred, away)
	a.m.Write("slack", "presence", err)
	return err
}

// meteredTeams counts the writes the reconcile steps make to Teams.
type meteredTeams struct {
	TeamsAPI
	m *metrics.Metrics
}

func (a meteredTeams) SetPresence(ctx context.Context, cred provider.Credential, availability, activity string, d time.Duration) (time.Duration, error) {
	got, err := a.TeamsAPI.SetPresence(ctx, cred, availability, activity, d)
	a.m.Write("teams", "presence", err)
	return got, err
}

func (a meteredTeams) ClearPresence(ctx context.Context, cred provider.Credential) error {
	err := a.TeamsAPI.ClearPresence(ctx, cred)
	a.m.Write("teams", "clear_presence", err)
	return err
}

func (a meteredTeams) SetStatusMessage(ctx context.Context, cred provider.Credential, text string, expiry time.Time) error {
	err := a.TeamsAPI.SetStatusMessage(ctx, cred, text, expiry)
	a.m.Write("teams", "status_message", err)
	return err
}
