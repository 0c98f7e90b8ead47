package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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

// kindTitles name the rule kinds for people.
var kindTitles = map[presence.Kind]string{
	presence.KindMeeting:      "Meeting",
	presence.KindFocus:        "Focus time",
	presence.KindManualFocus:  "Focus (started by hand)",
	presence.KindOutOfOffice:  "Out of office",
	presence.KindZoomCall:     "Zoom call",
	presence.KindOutsideHours: "Outside working hours",
}

// kindHints say when a rule applies.
var kindHints = map[presence.Kind]string{
	presence.KindMeeting:      "While a busy event you accepted (or, if you allow it, tentatively accepted) is in progress.",
	presence.KindFocus:        "During focus time from your calendar, and when you start focus by hand.",
	presence.KindOutOfOffice:  "During an out-of-office event or an all-day event.",
	presence.KindZoomCall:     "While you are in a live Zoom call, whatever your calendar says.",
	presence.KindOutsideHours: "Outside the working hours below.",
}

func kindTitle(k presence.Kind) string {
	if t, ok := kindTitles[k]; ok {
		return t
	}
	return string(k)
}

// kindForm is one kind's fieldset of the rules editor.
type kindForm struct {
	Kind  string // the form name part: "meeting"
	Title string
	Hint  string
	Rule  presence.KindRule
	Teams string // "Availability/Activity", "" to leave Teams alone
}

// dayForm is one weekday's working hours.
type dayForm struct {
	Index int
	Name  string
	Hours string // "09:00-17:00", "" for no working day
}

// teamsOption is one choice of the Teams select.
type teamsOption struct {
	Value, Label string
}

type settingsData struct {
	page
	Rules   presence.Rules
	Kinds   []kindForm
	Days    []dayForm
	Teams   []teamsOption
	Zones   []string
	Saved   bool
	Problem string
}

// teamsValue is the select value of a Teams pair.
func teamsValue(kr presence.KindRule) string {
	if kr.TeamsAvailability == "" && kr.TeamsActivity == "" {
		return ""
	}
	return kr.TeamsAvailability + "/" + kr.TeamsActivity
}

func teamsOptions() []teamsOption {
	opts := []teamsOption{{"", "Leave my Teams presence alone"}}
	for _, p := range presence.TeamsPairs {
		label := p[0]
		if p[1] != p[0] {
			label += ", " + p[1]
		}
		opts = append(opts, teamsOption{p[0] + "/" + p[1], label})
	}
	return opts
}

// formatSpans writes working spans as "09:00-17:00, 18:00-19:00".
func formatSpans(spans []presence.Span) string {
	parts := make([]string, len(spans))
	for i, s := range spans {
		parts[i] = s.Start.String() + "-" + s.End.String()
	}
	return strings.Join(parts, ", ")
}

// parseClock reads "9:00", "09:00" or "24:00".
func parseClock(s string) (presence.Clock, bool) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(m) != 2 || len(h) < 1 || len(h) > 2 {
		return 0, false
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, false
	}
	return presence.NewClock(hh, mm), true
}

// parseSpans reads a day's working hours: "" (not a working day) or comma-separated spans
// "09:00-12:00, 13:00-17:30" (an en dash works too). Range and overlap are Validate's job.
func parseSpans(day time.Weekday, s string) ([]presence.Span, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var spans []presence.Span
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		part = strings.NewReplacer("–", "-", "—", "-").Replace(part)
		a, b, ok := strings.Cut(part, "-")
		start, ok1 := parseClock(a)
		end, ok2 := parseClock(b)
		if !ok || !ok1 || !ok2 {
			return nil, fmt.Errorf("working hours on %s: %q is not a time span like 09:00-17:00", day, part)
		}
		spans = append(spans, presence.Span{Start: start, End: end})
	}
	return spans, nil
}

// settingsView fills the editor from rules; hours, when given, are the text the person typed
// (shown back as typed when it could not be read).
func (s *Server) settingsView(rules presence.Rules, hours map[int]string) settingsData {
	d := settingsData{
		page:  page{Title: "Settings", Sandbox: s.sandbox, SignedIn: true, Current: "settings"},
		Rules: rules, Zones: commonZones, Teams: teamsOptions(),
	}
	for _, k := range presence.RuleKinds {
		kr := rules.Kinds[k]
		d.Kinds = append(d.Kinds, kindForm{Kind: string(k), Title: kindTitle(k), Hint: kindHints[k], Rule: kr, Teams: teamsValue(kr)})
	}
	// Monday first, as most calendars show the week; the form names keep time.Weekday numbers.
	for _, wd := range []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday} {
		h, ok := hours[int(wd)]
		if !ok {
			h = formatSpans(rules.WorkingHours[wd])
		}
		d.Days = append(d.Days, dayForm{Index: int(wd), Name: wd.String(), Hours: h})
	}
	return d
}

// handleSettings shows the person's settings and rules.
func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.signInFirst(w, r, "Sign in to change your settings.")
		return
	}
	u, err := s.st.GetUser(r.Context(), sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d := s.settingsView(u.Rules, nil)
	d.Saved = r.URL.Query().Get("saved") == "1"
	s.render(w, r, http.StatusOK, "settings", d)
}

// rulesFromForm applies the settings form to rules. A kind or a weekday whose fields are
// absent from the form keeps its current value, so a partial form changes only what it sends.
// hours is the working-hours text as sent, by weekday.
func rulesFromForm(form map[string][]string, old presence.Rules) (presence.Rules, map[int]string, error) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	on := func(k string) bool { return get(k) == "on" }
	rules := old
	rules.TimeZone = strings.TrimSpace(get("time_zone"))
	rules.LeaveOwnStatus = on("leave_own_status")
	rules.TentativeCounts = on("tentative_counts")
	rules.OnlyWithOthers = on("only_with_others")
	rules.TitleEmoji = on("title_emoji")

	rules.Kinds = make(map[presence.Kind]presence.KindRule, len(old.Kinds))
	for k, kr := range old.Kinds {
		rules.Kinds[k] = kr
	}
	for _, k := range presence.RuleKinds {
		p := "rule." + string(k) + "."
		if _, sent := form[p+"slack_text"]; !sent {
			continue
		}
		kr := presence.KindRule{
			Enabled:      on(p + "enabled"),
			SlackText:    strings.TrimSpace(get(p + "slack_text")),
			SlackEmoji:   strings.TrimSpace(get(p + "slack_emoji")),
			SlackDND:     on(p + "slack_dnd"),
			SlackAway:    on(p + "slack_away"),
			TeamsMessage: strings.TrimSpace(get(p + "teams_message")),
		}
		if t := strings.TrimSpace(get(p + "teams")); t != "" {
			kr.TeamsAvailability, kr.TeamsActivity, _ = strings.Cut(t, "/")
		}
		rules.Kinds[k] = kr
	}

	var errs []error
	hours := map[int]string{}
	for d := range 7 {
		v, sent := form["hours."+strconv.Itoa(d)]
		if !sent {
			continue
		}
		text := ""
		if len(v) > 0 {
			text = v[0]
		}
		hours[d] = text
		spans, err := parseSpans(time.Weekday(d), text)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules.WorkingHours[d] = spans
	}
	if err := errors.Join(errs...); err != nil {
		return rules, hours, err
	}
	return rules, hours, rules.Validate()
}

// problemText turns a validation error into sentences for people.
func problemText(err error) string {
	var lines []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		line = strings.TrimPrefix(line, "presence: ")
		if line != "" {
			lines = append(lines, strings.ToUpper(line[:1])+line[1:]+".")
		}
	}
	return "Not saved: " + strings.Join(lines, " ")
}

// handleSaveSettings saves the settings form; an invalid value is shown back with the reason
// and nothing is saved.
func (s *Server) handleSaveSettings(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.signInFirst(w, r, "Sign in to change your settings.")
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
	rules, hours, err := rulesFromForm(r.PostForm, u.Rules)
	if err != nil {
		d := s.settingsView(rules, hours)
		d.Problem = problemText(err)
		s.render(w, r, http.StatusBadRequest, "settings", d)
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

// signInFirst answers 401 with a page that says to sign in (a missing or expired session).
func (s *Server) signInFirst(w http.ResponseWriter, r *http.Request, msg string) {
	s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", msg+" If you were signed in, your session has ended.")
}
