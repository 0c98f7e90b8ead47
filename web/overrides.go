package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// ActionKind is a manual override people take from the Slack App Home, a message, Alexa or the
// web page. All of them go through applyAction, so the three always agree.
type ActionKind string

const (
	ActFocus  ActionKind = "focus"  // focus until Until
	ActBack   ActionKind = "back"   // end our block now; the person's own status returns
	ActExtend ActionKind = "extend" // keep the current block Duration longer
	ActIgnore ActionKind = "ignore" // ignore the meeting(s) in progress
	ActPause  ActionKind = "pause"  // pause automation until Until
	ActResume ActionKind = "resume" // end a pause
)

// Action is one manual override.
type Action struct {
	Kind     ActionKind
	Until    time.Time
	Duration time.Duration
	// Origin is where it came from: "slack", "alexa", "web" (shown as the reason).
	Origin string
}

// maxManual bounds how far ahead a manual focus or pause may reach.
const (
	maxFocusAhead = 12 * time.Hour
	maxPauseAhead = 31 * 24 * time.Hour
)

// current plans the person's timeline now, for actions that depend on the block in progress.
func (s *Server) current(ctx context.Context, u store.User, now time.Time) (presence.Timeline, []presence.Override, error) {
	events, err := s.st.ListEvents(ctx, u.ID, now.Add(-48*time.Hour), now.Add(s.horizon))
	if err != nil {
		return presence.Timeline{}, nil, err
	}
	overrides, err := s.st.ListOverrides(ctx, u.ID)
	if err != nil {
		return presence.Timeline{}, nil, err
	}
	return presence.Plan(events, overrides, u.Rules, now, s.horizon), overrides, nil
}

func active(o presence.Override, now time.Time) bool {
	return !o.Start.After(now) && (o.End.IsZero() || o.End.After(now))
}

// applyAction records a manual override and wakes the scheduler; it returns a short sentence
// for the person ("Focus until 14:30.").
func (s *Server) applyAction(ctx context.Context, userID string, a Action) (string, error) {
	now := s.clock.Now()
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return "", err
	}
	loc, _ := u.Rules.Location()
	tl, overrides, err := s.current(ctx, u, now)
	if err != nil {
		return "", err
	}
	cur := tl.Current().State
	put := func(o presence.Override) error {
		o.ID, o.Origin = "o_"+randomToken(9), a.Origin
		return s.st.PutOverride(ctx, userID, o)
	}
	drop := func(kind presence.OverrideKind) error {
		for _, o := range overrides {
			if o.Kind == kind && active(o, now) {
				if err := s.st.DeleteOverride(ctx, userID, o.ID); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var msg string
	switch a.Kind {
	case ActFocus:
		if !a.Until.After(now) || a.Until.Sub(now) > maxFocusAhead {
			return "", fmt.Errorf("web: focus must end within %s", maxFocusAhead)
		}
		if err := drop(presence.OverrideFocus); err != nil {
			return "", err
		}
		if err := put(presence.Override{Kind: presence.OverrideFocus, Start: now, End: a.Until}); err != nil {
			return "", err
		}
		msg = "Focus until " + presence.FormatUntil(a.Until, now, loc) + "."
	case ActBack:
		if err := drop(presence.OverrideFocus); err != nil {
			return "", err
		}
		// Whatever shows once our focus is gone (a meeting in progress) ends too.
		after, _, err := s.current(ctx, u, now)
		if err != nil {
			return "", err
		}
		if after.Current().State.Kind != presence.KindNone {
			if err := put(presence.Override{Kind: presence.OverrideBack, Start: now}); err != nil {
				return "", err
			}
		}
		msg = "Welcome back: your own status is back."
	case ActExtend:
		d := a.Duration
		if d <= 0 {
			d = 15 * time.Minute
		}
		extended := false
		for _, o := range overrides {
			if o.Kind == presence.OverrideFocus && active(o, now) && !o.End.IsZero() {
				o.End = o.End.Add(d)
				if err := s.st.PutOverride(ctx, userID, o); err != nil {
					return "", err
				}
				msg, extended = "Focus extended until "+presence.FormatUntil(o.End, now, loc)+".", true
				break
			}
		}
		if !extended {
			from := now
			if cur.Kind != presence.KindNone && !cur.Until.IsZero() {
				from = cur.Until
			}
			if err := put(presence.Override{Kind: presence.OverrideFocus, Start: from, End: from.Add(d)}); err != nil {
				return "", err
			}
			msg = "Kept you undisturbed until " + presence.FormatUntil(from.Add(d), now, loc) + "."
		}
	case ActIgnore:
		if len(cur.EventKeys) == 0 {
			return "Nothing from your calendar is in progress.", nil
		}
		for _, k := range cur.EventKeys {
			if err := put(presence.Override{Kind: presence.OverrideIgnore, Start: now, End: cur.Until, EventKey: k}); err != nil {
				return "", err
			}
		}
		msg = "Ignoring this meeting."
	case ActPause:
		if !a.Until.After(now) || a.Until.Sub(now) > maxPauseAhead {
			return "", fmt.Errorf("web: a pause must end within %s", maxPauseAhead)
		}
		if err := drop(presence.OverridePause); err != nil {
			return "", err
		}
		if err := put(presence.Override{Kind: presence.OverridePause, Start: now, End: a.Until}); err != nil {
			return "", err
		}
		msg = "Automation paused until " + presence.FormatUntil(a.Until, now, loc) + "."
	case ActResume:
		if err := drop(presence.OverridePause); err != nil {
			return "", err
		}
		msg = "Automation resumed."
	default:
		return "", fmt.Errorf("web: unknown action %q", a.Kind)
	}
	s.st.AppendActivity(ctx, userID, store.Activity{At: now, Kind: string(a.Kind), Target: "override", Outcome: "requested", Reason: "from " + a.Origin})
	s.wake(ctx, userID)
	return msg, nil
}

// tomorrowMorning is the start of the person's next working day, or tomorrow at 00:00.
func tomorrowMorning(u store.User, now time.Time) time.Time {
	loc, _ := u.Rules.Location()
	l := now.In(loc)
	for d := 1; d <= 7; d++ {
		day := time.Date(l.Year(), l.Month(), l.Day()+d, 0, 0, 0, 0, loc)
		if spans := u.Rules.WorkingHours[day.Weekday()]; len(spans) > 0 {
			return day.Add(time.Duration(spans[0].Start) * time.Minute)
		}
	}
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
}

// handleAction serves the dashboard's manual controls (POST /actions).
func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", "Sign in to use the manual controls.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "That form could not be read", "Please reload the dashboard and try again.")
		return
	}
	now := s.clock.Now()
	a := Action{Kind: ActionKind(r.PostForm.Get("action")), Origin: "web"}
	switch a.Kind {
	case ActFocus:
		mins, err := strconv.Atoi(r.PostForm.Get("minutes"))
		if err != nil || mins < 1 || mins > 12*60 {
			s.errorPage(w, r, http.StatusBadRequest, "How long?", "Focus lasts from 1 minute to 12 hours.")
			return
		}
		a.Until = now.Add(time.Duration(mins) * time.Minute)
	case ActPause:
		u, err := s.st.GetUser(r.Context(), sess.UserID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		a.Until = tomorrowMorning(u, now)
	case ActBack, ActResume, ActExtend, ActIgnore:
	default:
		s.errorPage(w, r, http.StatusBadRequest, "Unknown action", "That button is not one of ours. Please reload the dashboard.")
		return
	}
	if _, err := s.applyAction(r.Context(), sess.UserID, a); err != nil {
		s.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
