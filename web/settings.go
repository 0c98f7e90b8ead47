package web

import (
	"net/http"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// commonZones are offered as suggestions; any IANA name is accepted.
var commonZones = []string{
	"UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Zurich", "America/New_York",
	"America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata",
	"Asia/Singapore", "Asia/Tokyo", "Australia/Sydney",
}

type settingsData struct {
	page
	Rules   presence.Rules
	Zones   []string
	Saved   bool
	Problem string
}

// handleSettings shows the person's settings.
func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", "Sign in to change your settings.")
		return
	}
	u, err := s.st.GetUser(r.Context(), sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "settings", settingsData{
		page:  page{Title: "Settings", Sandbox: s.sandbox, SignedIn: true},
		Rules: u.Rules, Zones: commonZones, Saved: r.URL.Query().Get("saved") == "1",
	})
}

// handleSaveSettings saves the settings form; an invalid value is shown back with the reason
// and nothing is saved.
func (s *Server) handleSaveSettings(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", "Sign in to change your settings.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "That form could not be read", "Please reload the settings page and try again.")
		return
	}
	u, err := s.st.GetUser(r.Context(), sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	rules := u.Rules
	rules.TimeZone = r.PostForm.Get("time_zone")
	rules.LeaveOwnStatus = r.PostForm.Get("leave_own_status") == "on"
	rules.TentativeCounts = r.PostForm.Get("tentative_counts") == "on"
	rules.OnlyWithOthers = r.PostForm.Get("only_with_others") == "on"
	rules.TitleEmoji = r.PostForm.Get("title_emoji") == "on"
	if err := rules.Validate(); err != nil {
		s.render(w, r, http.StatusBadRequest, "settings", settingsData{
			page:  page{Title: "Settings", Sandbox: s.sandbox, SignedIn: true},
			Rules: rules, Zones: commonZones, Problem: "Not saved: " + err.Error(),
		})
		return
	}
	titleEmojiChanged := rules.TitleEmoji != u.Rules.TitleEmoji
	u.Rules = rules
	if err := s.st.PutUser(r.Context(), u); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.st.AppendActivity(r.Context(), u.ID, store.Activity{At: s.clock.Now(), Kind: "settings", Target: "rules", Outcome: "saved"})
	if titleEmojiChanged {
		// Emoji come from titles at sync time: sync the calendars again, in full.
		if conns, err := s.st.ListConnections(r.Context(), u.ID); err == nil {
			for i, c := range conns {
				states, _ := s.st.ListSyncStates(r.Context(), c.ID)
				for _, ss := range states {
					ss.Token, ss.Synced = "", time.Time{}
					s.st.PutSyncState(r.Context(), ss)
				}
				s.resyncNow(r, &conns[i])
			}
		}
	}
	s.wake(r.Context(), u.ID)
	http.Redirect(w, r, "/settings?saved=1", http.StatusSeeOther)
}
