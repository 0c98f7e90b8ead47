package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

type providerLink struct {
	Name, Title string
	Enabled     bool
}

type connRow struct {
	ID, Provider, Title, Account string
	Broken                       bool
}

type transition struct {
	At    time.Time
	Clock string
	What  string
}

// handleIndex serves the landing page, or the dashboard when signed in.
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.render(w, r, http.StatusOK, "landing", struct {
			page
			Providers []providerLink
		}{page{Title: "Welcome", Sandbox: s.sandbox}, []providerLink{
			{"google", "Google", s.signIn["google"].start != nil},
			{"microsoft", "Microsoft", s.signIn["microsoft"].start != nil},
			{"slack", "Slack", s.signIn["slack"].start != nil},
		}})
		return
	}
	ctx := r.Context()
	u, err := s.st.GetUser(ctx, sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	conns, err := s.st.ListConnections(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	var rows []connRow
	googleConnected, outlookConnected := false, false
	for _, c := range conns {
		rows = append(rows, connRow{ID: c.ID, Provider: c.Provider, Title: title(c.Provider), Account: c.ExternalID, Broken: c.Health == store.HealthBroken})
		if c.Provider == "google" && c.Health == store.HealthOK {
			googleConnected = true
		}
		if c.Provider == "outlook" && c.Health == store.HealthOK {
			outlookConnected = true
		}
	}
	now := s.clock.Now()
	events, err := s.st.ListEvents(ctx, u.ID, now.Add(-48*time.Hour), now.Add(s.horizon))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	overrides, err := s.st.ListOverrides(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	loc, _ := u.Rules.Location()
	tl := presence.Plan(events, overrides, u.Rules, now, s.horizon)
	var next []transition
	endOfDay := time.Date(now.In(loc).Year(), now.In(loc).Month(), now.In(loc).Day()+1, 0, 0, 0, 0, loc)
	for _, seg := range tl.Segments[1:] {
		if !seg.From.Before(endOfDay) || len(next) >= 10 {
			break
		}
		next = append(next, transition{At: seg.From, Clock: seg.From.In(loc).Format("15:04"), What: describe(seg.State, loc, now)})
	}
	activity, err := s.st.ListActivity(ctx, u.ID, store.ActivityCap)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "dashboard", struct {
		page
		Now              string
		Next             []transition
		Connections      []connRow
		Connectable      []providerLink
		Activity         []store.Activity
		SignIns          []providerLink // Enabled: already a sign-in method of this account
		GoogleConnected  bool
		OutlookConnected bool
		SandboxSlackURL  string
		SandboxLinks     []providerLink
	}{
		page:        page{Title: "Dashboard", Sandbox: s.sandbox, SignedIn: true, Current: "dashboard"},
		Now:         describe(tl.Current().State, loc, now),
		Next:        next,
		Connections: rows,
		Connectable: []providerLink{
			{"google", "Google Calendar", s.connect["google"].start != nil},
			{"outlook", "Outlook", s.connect["outlook"].start != nil},
			{"zoom", "Zoom", s.connect["zoom"].start != nil},
			{"slack", "Slack", s.connect["slack"].start != nil},
			{"teams", "Teams", s.connect["teams"].start != nil},
		},
		Activity:         activity,
		SignIns:          s.signInMethods(ctx, u.ID),
		GoogleConnected:  googleConnected,
		OutlookConnected: outlookConnected,
		SandboxSlackURL:  s.sandboxSlackURL,
		SandboxLinks:     s.sandboxLinks,
	})
}

// describe says what a state means, in words, without any event content.
func describe(st presence.DesiredState, loc *time.Location, now time.Time) string {
	if st.Paused {
		return "Automation paused"
	}
	var what string
	switch st.Kind {
	case presence.KindNone:
		return "Nothing set: your own status shows"
	case presence.KindMeeting:
		what = "In a meeting"
	case presence.KindFocus, presence.KindManualFocus:
		what = "Focus"
	case presence.KindOutOfOffice:
		what = "Out of office"
	case presence.KindZoomCall:
		what = "On a Zoom call"
	case presence.KindOutsideHours:
		what = "Outside working hours"
	default:
		what = string(st.Kind)
	}
	if !st.Until.IsZero() {
		what += " until " + presence.FormatUntil(st.Until, now, loc)
	}
	if st.Cause != "" {
		what += ", from " + st.Cause
	}
	if !st.SlackStatus.IsZero() {
		what += fmt.Sprintf(" (Slack: %s %s)", st.SlackStatus.Emoji, st.SlackStatus.Text)
	}
	return what
}

// handleSandboxEvent adds an event to the signed-in person's fake Google or Outlook calendar (sandbox
// only), then makes the scheduler resync them now.
func (s *Server) handleSandboxEvent(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", "Sign in and connect Google Calendar first.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "That form could not be read", err.Error())
		return
	}
	startIn, err1 := strconv.Atoi(r.PostForm.Get("start_in_minutes"))
	dur, err2 := strconv.Atoi(r.PostForm.Get("duration_minutes"))
	kind := r.PostForm.Get("kind")
	if err1 != nil || err2 != nil || startIn < 0 || startIn > 1440 || dur < 1 || dur > 1440 || (kind != "default" && kind != "focusTime" && kind != "outOfOffice") {
		s.errorPage(w, r, http.StatusBadRequest, "That event makes no sense", "Give a start from 0 to 1440 minutes from now, a length from 1 to 1440 minutes, and a kind from the list.")
		return
	}
	conns, err := s.st.ListConnections(r.Context(), sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	calendar := r.PostForm.Get("calendar")
	if calendar == "" {
		calendar = "google"
	}
	var hook SandboxEvents
	switch calendar {
	case "google":
		hook = s.sandboxEvents
	case "outlook":
		hook = s.sandboxOutlook
	default:
		// Only calendars have a fake calendar: another connection's account ID must never
		// reach the Google hook.
		s.errorPage(w, r, http.StatusBadRequest, "No such calendar", "The sandbox adds events to Google Calendar or Outlook only.")
		return
	}
	var src *store.Connection
	for i := range conns {
		if conns[i].Provider == calendar {
			src = &conns[i]
		}
	}
	if src == nil || hook == nil {
		name := map[string]string{"google": "Google Calendar", "outlook": "Outlook"}[calendar]
		s.errorPage(w, r, http.StatusBadRequest, "Connect "+name+" first", "The sandbox adds events to your fake "+name+" calendar; connect it from the dashboard.")
		return
	}
	start := s.clock.Now().Add(time.Duration(startIn) * time.Minute).Truncate(time.Second)
	if err := hook(r.Context(), src.ExternalID, start, time.Duration(dur)*time.Minute, kind); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.resyncNow(r, src)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// resyncNow asks the scheduler to sync every resource of a source connection now, as a push
// notification would: it marks the connection (so a sync already running does not swallow the
// request) and wakes the scheduler.
func (s *Server) resyncNow(r *http.Request, c *store.Connection) {
	if err := s.st.RequestSync(r.Context(), c.UserID, c.ID, s.clock.Now()); err != nil {
		s.logger(r.Context()).Error("request a sync", "err", err)
	}
	s.wake(r.Context(), c.UserID)
}

// signInMethods lists the sign-in providers this server offers, marking those already linked
// to the account (one account can hold several identities).
func (s *Server) signInMethods(ctx context.Context, userID string) []providerLink {
	ids, _ := s.st.ListIdentities(ctx, userID)
	var out []providerLink
	for _, p := range signInProviders {
		if _, ok := s.signIn[p]; !ok {
			continue
		}
		linked := slices.ContainsFunc(ids, func(i store.Identity) bool { return i.Provider == p })
		out = append(out, providerLink{Name: p, Title: title(p), Enabled: linked})
	}
	return out
}
