package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// AlexaVerifier checks a skill request as Amazon requires (signature, certificate chain,
// timestamp, skill ID) and parses it.
type AlexaVerifier interface {
	Verify(ctx context.Context, h http.Header, body []byte) (alexa.Request, error)
}

// The skill's own intents (integrations/alexa/skill).
const (
	intentStartFocus = "StartFocusIntent"
	intentEndFocus   = "EndFocusIntent"
	intentPause      = "PauseIntent"
	intentResume     = "ResumeIntent"
	intentStatus     = "StatusIntent"
)

const alexaHelp = "You can say: I'm focusing for 45 minutes, focus until 3 PM, I'm back, pause, resume, or what's my status."

// handleAlexa is the skill endpoint. Every request is verified before it is acted on; a broken
// one is refused with 400 and changes nothing.
func (s *Server) handleAlexa(w http.ResponseWriter, r *http.Request) {
	if s.alexa == nil || s.oauth == nil {
		http.Error(w, "the Alexa skill is not configured on this server", http.StatusNotFound)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	req, err := s.alexa.Verify(r.Context(), r.Header, body)
	if err != nil {
		s.logger(r.Context()).Warn("alexa request refused", "err", err)
		http.Error(w, "refused: "+err.Error(), http.StatusBadRequest)
		return
	}
	resp := s.alexaAnswer(r.Context(), req)
	if err := alexa.WriteResponse(w, resp); err != nil {
		s.logger(r.Context()).Error("write alexa response", "err", err)
	}
}

// alexaAnswer decides what to say.
func (s *Server) alexaAnswer(ctx context.Context, req alexa.Request) alexa.ResponseEnvelope {
	if req.Request.Type == alexa.TypeSessionEnded || strings.HasPrefix(req.Request.Type, alexa.TypeSkillEventPrefix) {
		return alexa.Empty()
	}
	tok := req.AccessToken()
	if tok == "" {
		return alexa.LinkAccountCard("To use Don't Interrupt, link your account: open the Alexa app, where I've put a card to start.")
	}
	userID, err := s.oauth.UserForToken(ctx, tok)
	if err != nil {
		return alexa.LinkAccountCard("Your account link has expired or was removed. Open the Alexa app to link Don't Interrupt again.")
	}
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return alexa.LinkAccountCard("I can't find your Don't Interrupt account any more. Open the Alexa app to link it again.")
	}
	if req.Request.Type == alexa.TypeLaunch {
		return alexa.Ask("Don't Interrupt here. "+alexaHelp, alexaHelp)
	}
	loc, _ := u.Rules.Location()
	now := s.clock.Now()
	say := func(t time.Time) string { return spokenTime(t, now, loc, req.Request.Locale) }
	where := s.targetsPhrase(ctx, userID)

	switch req.IntentName() {
	case intentStartFocus:
		var until time.Time
		if v, ok := req.SlotValue("duration"); ok {
			d, err := alexa.ParseDuration(v)
			if err != nil || d < time.Minute {
				return alexa.Ask("I didn't catch how long. Say, for example, focus for 45 minutes.", alexaHelp)
			}
			if d > maxFocusAhead {
				return alexa.Ask("That's longer than I can hold focus. Try up to 12 hours.", alexaHelp)
			}
			until = now.Add(d)
		} else if v, ok := req.SlotValue("until"); ok {
			c, err := alexa.ParseClock(v)
			if err != nil {
				return alexa.Ask("I didn't catch the time. Say, for example, focus until 3 PM.", alexaHelp)
			}
			until = c.On(now, loc)
			if !until.After(now) {
				return alexa.Ask("That time has passed; say a time later today, or a length, like focus for 45 minutes.", alexaHelp)
			}
			if until.Sub(now) > maxFocusAhead {
				return alexa.Ask("That's too far away. Try a time within the next 12 hours.", alexaHelp)
			}
		} else {
			return alexa.Ask("For how long? Say, for example, for 45 minutes, or until 3 PM.", "For how long?")
		}
		if _, err := s.applyAction(ctx, userID, Action{Kind: ActFocus, Until: until, Origin: "alexa"}); err != nil {
			return alexa.Speak("Sorry, I couldn't start focus just now. Please try again.")
		}
		return alexa.Speak("You're in focus until " + say(until) + where + ".")
	case intentEndFocus:
		if _, err := s.applyAction(ctx, userID, Action{Kind: ActBack, Origin: "alexa"}); err != nil {
			return alexa.Speak("Sorry, that didn't work. Please try again.")
		}
		return alexa.Speak("Welcome back. Your own status is showing again" + where + ".")
	case intentPause:
		until := tomorrowMorning(u, now)
		if _, err := s.applyAction(ctx, userID, Action{Kind: ActPause, Until: until, Origin: "alexa"}); err != nil {
			return alexa.Speak("Sorry, that didn't work. Please try again.")
		}
		return alexa.Speak("Paused until " + spokenDay(until, now, loc) + say(until) + ". Say resume to start again.")
	case intentResume:
		if _, err := s.applyAction(ctx, userID, Action{Kind: ActResume, Origin: "alexa"}); err != nil {
			return alexa.Speak("Sorry, that didn't work. Please try again.")
		}
		return alexa.Speak("Resumed. I'm keeping your status in sync again.")
	case intentStatus:
		return alexa.Speak(s.spokenStatus(ctx, u, now, loc, req.Request.Locale))
	case alexa.IntentHelp:
		return alexa.Ask(alexaHelp, alexaHelp)
	case alexa.IntentStop, alexa.IntentCancel:
		return alexa.Speak("Okay.")
	case alexa.IntentNavigateHome:
		return alexa.Empty()
	default: // AMAZON.FallbackIntent and anything unknown
		return alexa.Ask("Sorry, I didn't get that. "+alexaHelp, alexaHelp)
	}
}

// targetsPhrase is " on Slack and Teams" for what is connected, or a nudge when nothing is.
func (s *Server) targetsPhrase(ctx context.Context, userID string) string {
	conns, _ := s.st.ListConnections(ctx, userID)
	var names []string
	for _, p := range []string{"slack", "teams"} {
		for _, c := range conns {
			if c.Provider == p && c.Health == store.HealthOK {
				names = append(names, title(p))
				break
			}
		}
	}
	switch len(names) {
	case 0:
		return ", but nothing is connected yet: connect Slack or Teams on the Don't Interrupt web page"
	case 1:
		return " on " + names[0]
	}
	return " on " + names[0] + " and " + names[1]
}

// spokenStatus: "You're in focus until 3:15 PM on Slack and Teams; your next meeting starts at 4 PM."
func (s *Server) spokenStatus(ctx context.Context, u store.User, now time.Time, loc *time.Location, locale string) string {
	tl, _, err := s.current(ctx, u, now)
	if err != nil {
		return "Sorry, I can't tell right now."
	}
	cur := tl.Current().State
	var out string
	switch {
	case cur.Paused:
		out = "Automation is paused"
	case cur.Kind == presence.KindNone:
		out = "Nothing is set by me right now; your own status shows"
	default:
		what := map[presence.Kind]string{
			presence.KindMeeting: "in a meeting", presence.KindFocus: "in focus", presence.KindManualFocus: "in focus",
			presence.KindOutOfOffice: "out of office", presence.KindZoomCall: "on a Zoom call", presence.KindOutsideHours: "outside working hours",
		}[cur.Kind]
		out = "You're " + what + " until " + spokenTime(cur.Until, now, loc, locale) + s.targetsPhrase(ctx, u.ID)
	}
	for _, seg := range tl.Segments[1:] {
		if seg.State.Kind == presence.KindMeeting && seg.From.Sub(now) < 24*time.Hour {
			out += "; your next meeting starts at " + spokenTime(seg.From, now, loc, locale)
			break
		}
	}
	return out + "."
}

// spokenTime says a time the way people in the locale do: "3:15 PM" (en-US), "15:15" (en-GB).
func spokenTime(t, now time.Time, loc *time.Location, locale string) string {
	lt := t.In(loc)
	if strings.EqualFold(locale, "en-GB") {
		return lt.Format("15:04")
	}
	if lt.Minute() == 0 {
		return lt.Format("3 PM")
	}
	return lt.Format("3:04 PM")
}

// spokenDay is "" today, "tomorrow, " or "Monday, ".
func spokenDay(t, now time.Time, loc *time.Location) string {
	lt, ln := t.In(loc), now.In(loc)
	if lt.YearDay() == ln.YearDay() && lt.Year() == ln.Year() {
		return ""
	}
	if lt.Sub(time.Date(ln.Year(), ln.Month(), ln.Day(), 0, 0, 0, 0, loc)) < 48*time.Hour {
		return "tomorrow, "
	}
	return lt.Format("Monday") + ", "
}

// handleSandboxAlexaLink links the sandbox Alexa to the signed-in person, through the real
// account-linking flow (sandbox only).
func (s *Server) handleSandboxAlexaLink(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	c, err := r.Cookie(sessionCookie)
	if sess.UserID == "" || err != nil {
		s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", "Sign in, then link the sandbox Alexa.")
		return
	}
	if s.alexaLink == nil {
		s.errorPage(w, r, http.StatusNotFound, "No sandbox Alexa", "The sandbox Alexa is not running.")
		return
	}
	if err := s.alexaLink(r.Context(), c); err != nil {
		s.logger(r.Context()).Warn("sandbox alexa link", "err", err)
		s.errorPage(w, r, http.StatusBadGateway, "Linking the sandbox Alexa failed", "The account-linking flow did not complete. Please try again.")
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleSandboxAlexaSay sends a phrase to the skill as the sandbox Alexa and shows the answer.
func (s *Server) handleSandboxAlexaSay(w http.ResponseWriter, r *http.Request) {
	if s.alexaSay == nil {
		s.errorPage(w, r, http.StatusNotFound, "No sandbox Alexa", "The sandbox Alexa is not running.")
		return
	}
	if err := r.ParseForm(); err != nil || strings.TrimSpace(r.PostForm.Get("text")) == "" {
		s.errorPage(w, r, http.StatusBadRequest, "Say something", "Type what you would say to Alexa, like \"I'm focusing for 45 minutes\".")
		return
	}
	speech, err := s.alexaSay(r.Context(), r.PostForm.Get("text"))
	if err != nil {
		s.logger(r.Context()).Warn("sandbox alexa say", "err", err)
		s.errorPage(w, r, http.StatusBadGateway, "The sandbox Alexa failed", "The request did not go through. Please try again.")
		return
	}
	s.render(w, r, http.StatusOK, "error", struct{ page }{page{Title: "Alexa says", Message: speech, Sandbox: s.sandbox, SignedIn: s.session(r).UserID != ""}})
}
