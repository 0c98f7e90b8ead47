package scheduler

import (
	"context"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// Rate-limit names the scheduler books writes against (config.DefaultRateLimits gives values).
const (
	RateSlackProfileSet  = "slack.users.profile.set" // per workspace
	RateSlackProfileGet  = "slack.users.profile.get" // per workspace: read before a status write
	RateSlackProfileUser = "slack.profile.user"      // per person's Slack token
	RateSlackSnooze      = "slack.dnd.setSnooze"     // per workspace
	RateSlackEndSnooze   = "slack.dnd.endSnooze"     // per workspace
	RateSlackDNDInfo     = "slack.dnd.info"          // per workspace: read before a snooze
	RateSlackPresence    = "slack.users.setPresence" // per workspace
	RateTeamsPresence    = "teams.presence"          // per tenant: presence and status message
	RateSelf             = "self"                    // the deployment's own pace
)

// leadState is what the targets should show in a run shortly before the boundary at which next
// begins: every change that turns something on (a status, a snooze, away, a Teams presence or
// message) is taken from next, so that it may be written ahead of the boundary; every change
// that turns something off or gives a status back stays as cur has it, for the run at the
// boundary. Nothing leads into or out of a pause.
func leadState(cur, next presence.DesiredState) presence.DesiredState {
	if cur.Paused || next.Paused {
		return cur
	}
	out := cur
	took := false
	if !next.SlackStatus.IsZero() && next.SlackStatus != cur.SlackStatus {
		out.SlackStatus, took = next.SlackStatus, true
	}
	if next.SlackDND.On && next.SlackDND != cur.SlackDND {
		out.SlackDND, took = next.SlackDND, true
	}
	if next.SlackPresence.Away && next.SlackPresence != cur.SlackPresence {
		out.SlackPresence, took = next.SlackPresence, true
	}
	if next.TeamsPresence.Availability != "" && next.TeamsPresence != cur.TeamsPresence {
		out.TeamsPresence, took = next.TeamsPresence, true
	}
	if next.TeamsMessage.Text != "" && next.TeamsMessage != cur.TeamsMessage {
		out.TeamsMessage, took = next.TeamsMessage, true
	}
	if took {
		out.Kind, out.Cause, out.EventKeys, out.Until = next.Kind, next.Cause, next.EventKeys, next.Until
	}
	return out
}

// boundaryBuckets returns the limits the writes of the change cur → next at boundary b count
// against: those that may be sent ahead of it (lead) and those that may not (at).
func (s *Scheduler) boundaryBuckets(conns []store.Connection, cur, next presence.DesiredState, b time.Time) (lead, at []ratelimit.Bucket) {
	canLead := !cur.Paused && !next.Paused
	add := func(leads bool, name, scope string) {
		r, ok := s.opt.RateLimits[name]
		if !ok || r.Every() <= 0 {
			return
		}
		bk := ratelimit.Bucket{Key: name + ":" + scope, Every: r.Every()}
		if leads && canLead {
			lead = append(lead, bk)
		} else {
			at = append(at, bk)
		}
	}
	for i := range conns {
		c := &conns[i]
		if c.Health != store.HealthOK {
			continue
		}
		switch {
		case c.Provider == "slack" && s.slack != nil:
			// A status or a snooze is read before it is written (the person may have set
			// their own): the read counts against its method's limit in the same run.
			if next.SlackStatus != cur.SlackStatus && !next.SlackStatus.IsZero() {
				add(true, RateSlackProfileSet, c.TeamID)
				add(true, RateSlackProfileGet, c.TeamID)
				add(true, RateSlackProfileUser, c.ID)
			}
			switch {
			case next.SlackDND.On && next.SlackDND != cur.SlackDND:
				add(true, RateSlackSnooze, c.TeamID)
				add(true, RateSlackDNDInfo, c.TeamID)
			case cur.SlackDND.On && !next.SlackDND.On && cur.SlackDND.Until.After(b):
				add(false, RateSlackEndSnooze, c.TeamID)
				add(false, RateSlackDNDInfo, c.TeamID)
			}
			if next.SlackPresence.Away != cur.SlackPresence.Away {
				add(next.SlackPresence.Away, RateSlackPresence, c.TeamID)
			}
		case c.Provider == "teams" && s.teams != nil:
			if next.TeamsPresence != cur.TeamsPresence && (next.TeamsPresence.Availability != "" || cur.TeamsPresence.Until.After(b)) {
				add(next.TeamsPresence.Availability != "", RateTeamsPresence, c.TeamID)
			}
			if next.TeamsMessage != cur.TeamsMessage && (next.TeamsMessage.Text != "" || cur.TeamsMessage.Until.After(b)) {
				add(next.TeamsMessage.Text != "", RateTeamsPresence, c.TeamID)
			}
		}
	}
	// Two writes of one person to one limit (a Teams presence and message) are one booking:
	// both go in the same run. The deployment's own pace counts each person once.
	lead, at = dedupe(lead), dedupe(at)
	if len(lead)+len(at) > 0 {
		if len(lead) > 0 {
			add(true, RateSelf, "")
		} else {
			add(false, RateSelf, "")
		}
	}
	return lead, at
}

func dedupe(bs []ratelimit.Bucket) []ratelimit.Bucket {
	out := bs[:0]
	for _, b := range bs {
		dup := false
		for _, o := range out {
			if o == b {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, b)
		}
	}
	return out
}

// book books one kind ("lead" or "at") of the writes of the boundary b for a person: the time
// to send them, or zero when they need no booking (none, or no schedule configured). A person
// holds one booking of each kind: when their next boundary moves, the old one is given back.
func (s *Scheduler) book(ctx context.Context, userID, kind string, buckets []ratelimit.Bucket, b time.Time, leadBy time.Duration) time.Time {
	if s.limits == nil || len(buckets) == 0 {
		return time.Time{}
	}
	t, err := s.limits.Reserve(ctx, userID+"/"+kind, buckets, b, leadBy, s.clock.Now())
	if err != nil {
		// The schedule is an optimisation: without it the write goes at the boundary and a
		// 429 is honoured as ever.
		s.log.Warn("book rate-limit slot", "user", userID, "err", err)
		return b
	}
	return t
}

// leadNow reports whether this run, at now, may write ahead of the boundary b: b is within
// the lead and the booked time of b's leading writes has come. Booking here as well (it is
// idempotent) covers a boundary first seen inside the lead, such as a meeting created a minute
// before it starts.
func (s *Scheduler) leadNow(ctx context.Context, userID string, conns []store.Connection, cur, next presence.DesiredState, b, now time.Time) bool {
	if s.limits == nil || s.opt.Lead <= 0 || b.Sub(now) > s.opt.Lead {
		return false
	}
	lead, _ := s.boundaryBuckets(conns, cur, next, b)
	t := s.book(ctx, userID, "lead", lead, b, s.opt.Lead)
	return !t.IsZero() && !t.After(now)
}

// runFor returns when to run next for the boundary b: the earliest booked time of its writes,
// or b itself when nothing needed booking. inLead says this run was the early one for b (its
// leading writes are done), so only what may not lead is looked at.
func (s *Scheduler) runFor(ctx context.Context, userID string, conns []store.Connection, cur, next presence.DesiredState, b time.Time, inLead bool) time.Time {
	lead, at := s.boundaryBuckets(conns, cur, next, b)
	when := s.book(ctx, userID, "at", at, b, 0)
	if !inLead {
		if t := s.book(ctx, userID, "lead", lead, b, s.opt.Lead); !t.IsZero() && (when.IsZero() || t.Before(when)) {
			when = t
		}
	}
	if when.IsZero() {
		return b
	}
	return when
}
