package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// TeamsState is what Teams shows a person: aggregated presence and status message.
type TeamsState struct {
	Availability, Activity string
	Message                string
	MessageExpiry          time.Time
}

// TeamsAPI is what the scheduler needs of Microsoft Teams.
type TeamsAPI interface {
	Teams(ctx context.Context, cred provider.Credential) (TeamsState, error)
	// SetPresence sets our app's presence session for about d (the provider clamps it) and
	// returns the length it asked for.
	SetPresence(ctx context.Context, cred provider.Credential, availability, activity string, d time.Duration) (time.Duration, error)
	ClearPresence(ctx context.Context, cred provider.Credential) error
	SetStatusMessage(ctx context.Context, cred provider.Credential, text string, expiry time.Time) error
	Refresh(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error)
}

const (
	targetTeamsPresence = "teams:presence"
	targetTeamsMessage  = "teams:message"
	// sessionRenewAhead: a presence session is renewed this long before it expires, so the
	// renewal itself is never shorter than Graph's 5-minute minimum.
	sessionRenewAhead = 5 * time.Minute
)

// teamsWritten is what we last wrote to one Teams target.
type teamsWritten struct {
	Availability string    `json:"availability,omitempty"`
	Activity     string    `json:"activity,omitempty"`
	Until        time.Time `json:"until,omitzero"`       // the block's end
	SessionEnd   time.Time `json:"session_end,omitzero"` // when our presence session expires
	Message      string    `json:"message,omitempty"`
	Skipped      string    `json:"skipped,omitempty"` // a message we did not write (theirs stayed)
	// Sent is a message we sent whose answer never came, until SentUntil: Teams may show it,
	// and then it is ours (see slackWritten.Sent).
	Sent      string        `json:"sent,omitempty"`
	SentUntil time.Time     `json:"sent_until,omitzero"`
	Kind      presence.Kind `json:"kind,omitempty"`
	// Pending is the presence session we are about to ask for, stored before asking: Graph
	// cannot show an app its own session (only the aggregated presence, which Teams also sets
	// by itself during calls), so after a run that stopped between the call and the store
	// update, only this record says that the presence Teams shows may be ours.
	Pending *teamsWritten `json:"pending,omitempty"`
}

// Graph's range for a presence session's expirationDuration (api-notes.md 4.3). The scheduler
// asks for lengths inside it, so the session end it records before asking is the one Graph sets.
const (
	minTeamsSession = 5 * time.Minute
	maxTeamsSession = 4 * time.Hour
)

func decodeTeams(ts *store.TargetState) teamsWritten {
	var w teamsWritten
	if len(ts.Written) > 0 {
		json.Unmarshal(ts.Written, &w)
	}
	return w
}

func encodeTeams(ts *store.TargetState, w teamsWritten) {
	b, _ := json.Marshal(w)
	ts.Written = b
}

// reconcileTeams makes a Teams connection's presence and status message match want; it returns
// when it must run again (a session renewal or a retry), or zero.
func (s *Scheduler) reconcileTeams(ctx context.Context, u store.User, c *store.Connection, want presence.DesiredState, now time.Time) time.Time {
	cred, err := s.credential(ctx, c, s.teams.Refresh, now)
	if err != nil {
		return s.retryAt(ctx, c, string(want.Kind), "teams", err, now)
	}
	if want.Paused {
		return time.Time{}
	}
	api := &answeredTeams{TeamsAPI: s.teams}
	var next time.Time
	failed := false
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, step := range []struct {
		target string
		fn     func(context.Context, provider.Credential, presence.DesiredState, *store.TargetState) (time.Time, error)
	}{
		{targetTeamsPresence, func(ctx context.Context, cr provider.Credential, w presence.DesiredState, ts *store.TargetState) (time.Time, error) {
			return s.teamsPresence(ctx, api, u, cr, w, ts, now)
		}},
		{targetTeamsMessage, func(ctx context.Context, cr provider.Credential, w presence.DesiredState, ts *store.TargetState) (time.Time, error) {
			return time.Time{}, s.teamsMessage(ctx, api, u, c, cr, w, ts, now)
		}},
	} {
		key := step.target + ":" + c.ID
		ts, err := s.st.GetTargetState(ctx, u.ID, key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("read target state", "user", u.ID, "target", key, "err", err)
			continue
		}
		ts.UserID, ts.Target = u.ID, key
		before := string(ts.Written) + string(ts.Replaced)
		again, err := step.fn(ctx, cred, want, &ts)
		if reason, ok := provider.RevokedReason(err); ok && reason == "token_expired" && cred.RefreshToken != "" {
			// Graph refused the access token before its expiry: refresh once and retry.
			if fresh, rerr := s.refresh(ctx, c, cred, s.teams.Refresh, now); rerr != nil {
				err = rerr
			} else {
				cred = fresh
				again, err = step.fn(ctx, cred, want, &ts)
			}
		}
		if after := string(ts.Written) + string(ts.Replaced); after != before {
			ts.WrittenAt = now
			if perr := s.st.PutTargetState(ctx, ts); perr != nil {
				s.log.Error("store target state", "user", u.ID, "target", key, "err", perr)
			}
		}
		if err != nil {
			t := s.retryAt(ctx, c, string(want.Kind), step.target, err, now)
			if c.Health != store.HealthOK {
				return time.Time{}
			}
			earlier(t)
			failed = true
			if provider.TimedOut(err) {
				break // Graph does not answer: the other step waits for the retry
			}
			continue
		}
		earlier(again)
	}
	// The backoff starts over only when both steps went well and Graph answered at least
	// one call (see reconcileSlack).
	if !failed && api.answered {
		s.succeeded(c.ID)
	}
	return next
}

// answeredTeams notes whether any call of one run succeeded.
type answeredTeams struct {
	TeamsAPI
	answered bool
}

func (a *answeredTeams) note(err error) {
	if err == nil {
		a.answered = true
	}
}

func (a *answeredTeams) Teams(ctx context.Context, cred provider.Credential) (TeamsState, error) {
	st, err := a.TeamsAPI.Teams(ctx, cred)
	a.note(err)
	return st, err
}

func (a *answeredTeams) SetPresence(ctx context.Context, cred provider.Credential, availability, activity string, d time.Duration) (time.Duration, error) {
	got, err := a.TeamsAPI.SetPresence(ctx, cred, availability, activity, d)
	a.note(err)
	return got, err
}

func (a *answeredTeams) ClearPresence(ctx context.Context, cred provider.Credential) error {
	err := a.TeamsAPI.ClearPresence(ctx, cred)
	a.note(err)
	return err
}

func (a *answeredTeams) SetStatusMessage(ctx context.Context, cred provider.Credential, text string, expiry time.Time) error {
	err := a.TeamsAPI.SetStatusMessage(ctx, cred, text, expiry)
	a.note(err)
	return err
}

// teamsPresence keeps our app presence session set for the block, renewing sessions longer
// than Graph allows, and ends it only when it would outlive the block. A session set for
// exactly the rest of the block expires by itself: nothing is written at the end. Before
// asking for a new pair it stores the request (Pending), so that after a run that stopped
// between the call and the store update, a Teams presence showing that pair is adopted
// instead of set again.
func (s *Scheduler) teamsPresence(ctx context.Context, api TeamsAPI, u store.User, cred provider.Credential, want presence.DesiredState, ts *store.TargetState, now time.Time) (time.Time, error) {
	w := decodeTeams(ts)
	d := want.TeamsPresence
	live := !w.SessionEnd.IsZero() && w.SessionEnd.After(now)
	if d.Availability != "" {
		same := live && w.Availability == d.Availability && w.Activity == d.Activity && w.Until.Equal(d.Until)
		if same && (!w.SessionEnd.Before(d.Until) || w.SessionEnd.Sub(now) > sessionRenewAhead) {
			if w.SessionEnd.Before(d.Until) {
				return w.SessionEnd.Add(-sessionRenewAhead), nil
			}
			return time.Time{}, nil
		}
		// A new pair (not a renewal, nor the pair Teams shows already for another end): the
		// aggregated presence can tell whether an earlier run set it, if it said it would.
		fresh := !live || w.Availability != d.Availability || w.Activity != d.Activity
		if p := w.Pending; fresh && p != nil && p.Availability == d.Availability && p.Activity == d.Activity && p.Until.Equal(d.Until) && p.SessionEnd.After(now) {
			cur, err := api.Teams(ctx, cred)
			if err != nil {
				return time.Time{}, err
			}
			if cur.Availability == d.Availability && cur.Activity == d.Activity {
				// The session an earlier run asked for, and did not record, is on: adopt it.
				w = *p
				encodeTeams(ts, w)
				s.log.Info("provider already shows the wanted state; recorded it without writing", "user", u.ID, "target", targetTeamsPresence)
				return sessionNext(w, d.Until), nil
			}
		}
		ask := min(max(d.Until.Sub(now), minTeamsSession), maxTeamsSession)
		if fresh {
			w.Pending = &teamsWritten{Availability: d.Availability, Activity: d.Activity, Until: d.Until, SessionEnd: now.Add(ask), Kind: want.Kind}
			encodeTeams(ts, w)
			if err := s.st.PutTargetState(ctx, *ts); err != nil {
				return time.Time{}, err
			}
		}
		got, err := api.SetPresence(ctx, cred, d.Availability, d.Activity, ask)
		if err != nil {
			if fresh {
				// Graph refused it: nothing of ours to adopt later.
				w.Pending = nil
				encodeTeams(ts, w)
				if perr := s.st.PutTargetState(ctx, *ts); perr != nil {
					s.log.Error("store target state", "user", u.ID, "target", ts.Target, "err", perr)
				}
			}
			return time.Time{}, err
		}
		outcome := "set"
		if same {
			outcome = "renewed"
		}
		w = teamsWritten{Availability: d.Availability, Activity: d.Activity, Until: d.Until, SessionEnd: now.Add(got), Kind: want.Kind}
		encodeTeams(ts, w)
		s.activity(ctx, u.ID, store.Activity{At: now, Kind: string(want.Kind), Target: targetTeamsPresence, Outcome: outcome, Reason: "from " + want.Cause})
		return sessionNext(w, d.Until), nil
	}
	if p := w.Pending; p != nil && p.SessionEnd.After(now) {
		live = true // a session an earlier run may have set, and not recorded, may outlive the block
	}
	if live {
		if err := api.ClearPresence(ctx, cred); err != nil {
			return time.Time{}, err
		}
		s.activity(ctx, u.ID, store.Activity{At: now, Kind: string(w.Kind), Target: targetTeamsPresence, Outcome: "cleared"})
	}
	if len(ts.Written) > 0 {
		encodeTeams(ts, teamsWritten{})
	}
	return time.Time{}, nil
}

// sessionNext is when a presence session w, set for a block ending at until, needs the
// scheduler again: its renewal, or the block's end when the session outlives it (it is ended
// then), or never (zero) when it expires with the block.
func sessionNext(w teamsWritten, until time.Time) time.Time {
	if w.SessionEnd.Before(until) {
		return w.SessionEnd.Add(-sessionRenewAhead)
	}
	if w.SessionEnd.After(until) {
		return until
	}
	return time.Time{}
}

// teamsMessage sets the status message like a Slack status: never over a message the person
// wrote (unless their rule says so), restoring theirs after our block when it was replaced; our
// message carries the block's end as expiry, so its end costs no call.
func (s *Scheduler) teamsMessage(ctx context.Context, api TeamsAPI, u store.User, c *store.Connection, cred provider.Credential, want presence.DesiredState, ts *store.TargetState, now time.Time) error {
	w := decodeTeams(ts)
	d := want.TeamsMessage
	ours := w.Message
	if ours != "" && !w.Until.IsZero() && !w.Until.After(now) {
		ours = ""
	}
	sent := w.Sent
	if sent != "" && !w.SentUntil.IsZero() && !w.SentUntil.After(now) {
		sent = ""
	}
	if d.Text != "" {
		if (d.Text == ours && w.Until.Equal(d.Until)) || d.Text == w.Skipped {
			return nil
		}
		cur, err := api.Teams(ctx, cred)
		if err != nil {
			return err
		}
		if cur.Message == d.Text && (sameSecond(cur.MessageExpiry, d.Until) || (sent == d.Text && w.SentUntil.Equal(d.Until))) {
			// Teams shows this message with our expiry, or the one whose answer was lost: an
			// earlier run wrote it and stopped before recording it (see the Slack status).
			// Record it, do not write it again.
			encodeTeams(ts, teamsWritten{Message: d.Text, Until: d.Until, Kind: want.Kind})
			s.log.Info("provider already shows the wanted state; recorded it without writing", "user", u.ID, "connection", c.ID, "target", targetTeamsMessage)
			return nil
		}
		theirs := cur.Message != "" && cur.Message != ours && cur.Message != sent
		if theirs {
			if u.Rules.LeaveOwnStatus {
				encodeTeams(ts, teamsWritten{Skipped: d.Text, Kind: want.Kind})
				s.activity(ctx, u.ID, store.Activity{At: now, Kind: string(want.Kind), Target: targetTeamsMessage, Outcome: "skipped", Reason: "left your own status message"})
				return nil
			}
			sealed, err := s.sealJSON(replacedStatus{Text: cur.Message, Expiration: cur.MessageExpiry}, u.ID, c.ID, "replaced-teams-message")
			if err != nil {
				return err
			}
			ts.Replaced = sealed
			// Keep theirs before replacing it (see the Slack status).
			if err := s.st.PutTargetState(ctx, *ts); err != nil {
				return err
			}
		}
		// Until the answer comes, what we sent may be what Teams shows (kept in the store even
		// when the call fails).
		w.Sent, w.SentUntil = d.Text, d.Until
		encodeTeams(ts, w)
		if err := api.SetStatusMessage(ctx, cred, d.Text, d.Until); err != nil {
			return err
		}
		encodeTeams(ts, teamsWritten{Message: d.Text, Until: d.Until, Kind: want.Kind})
		s.activity(ctx, u.ID, store.Activity{At: now, Kind: string(want.Kind), Target: targetTeamsMessage, Outcome: "set", Reason: "from " + want.Cause})
		return nil
	}
	if ours == "" && sent == "" && len(ts.Replaced) == 0 {
		if len(ts.Written) > 0 {
			encodeTeams(ts, teamsWritten{})
		}
		return nil
	}
	cur, err := api.Teams(ctx, cred)
	if err != nil {
		return err
	}
	stillOurs := (ours != "" && cur.Message == ours) || (sent != "" && cur.Message == sent)
	if ours == "" {
		ours = sent
	}
	var restore replacedStatus
	hasRestore := false
	if len(ts.Replaced) > 0 {
		if err := s.openJSON(ts.Replaced, &restore, u.ID, c.ID, "replaced-teams-message"); err == nil {
			hasRestore = restore.Expiration.IsZero() || restore.Expiration.After(now)
		}
	}
	switch {
	case ours != "" && !stillOurs:
		// The person changed it meanwhile: theirs now.
	case hasRestore && (stillOurs || cur.Message == ""):
		if err := api.SetStatusMessage(ctx, cred, restore.Text, restore.Expiration); err != nil {
			return err
		}
		s.activity(ctx, u.ID, store.Activity{At: now, Kind: string(w.Kind), Target: targetTeamsMessage, Outcome: "restored", Reason: "your own status message, as before"})
	case stillOurs:
		if err := api.SetStatusMessage(ctx, cred, "", time.Time{}); err != nil {
			return err
		}
		s.activity(ctx, u.ID, store.Activity{At: now, Kind: string(w.Kind), Target: targetTeamsMessage, Outcome: "cleared", Reason: "block ended early"})
	}
	ts.Replaced = nil
	encodeTeams(ts, teamsWritten{})
	return nil
}

// sealJSON seals v for the record named by context.
func (s *Scheduler) sealJSON(v any, context ...string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return s.vault.Seal(b, context...)
}

// openJSON opens a blob sealed by sealJSON.
func (s *Scheduler) openJSON(blob []byte, v any, context ...string) error {
	b, err := s.vault.Open(blob, context...)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
