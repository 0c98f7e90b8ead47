package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/dontinterrupt/dontinterrupt/internal/command"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// SlackBot is what the App Home needs of Slack's bot side.
type SlackBot interface {
	PublishHome(ctx context.Context, cred provider.Credential, userID string, view slack.HomeTabViewRequest) error
	PostMessage(ctx context.Context, cred provider.Credential, channel, text, threadTS string) error
	RefreshBot(ctx context.Context, cred provider.Credential, now time.Time) (provider.Credential, error)
}

// The action IDs of the App Home's buttons; anything else is refused.
const (
	actFocus30  = "focus_30"
	actFocus60  = "focus_60"
	actFocus120 = "focus_120"
	actBack     = "back"
	actExtend   = "extend_15"
	actIgnore   = "ignore_meeting"
	actPause    = "pause_until_tomorrow"
	actResume   = "resume"
)

var knownActions = []string{actFocus30, actFocus60, actFocus120, actBack, actExtend, actIgnore, actPause, actResume}

// homeCache remembers the hash of the last view published per person, so the view is sent
// again only when it changes.
type homeCache struct {
	mu   sync.Mutex
	last map[string]string
}

// verifySlack checks Slack's signature over the raw body (X-Slack-Signature over
// "v0:{timestamp}:{body}", a 5-minute window, constant time) before anything is parsed.
func (s *Server) verifySlack(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if s.slackSigningSecret == "" || s.slackBot == nil {
		http.Error(w, "Slack is not configured on this server", http.StatusNotFound)
		return nil, false
	}
	body, ok := readBody(w, r)
	if !ok {
		return nil, false
	}
	sv, err := slack.NewSecretsVerifier(r.Header, s.slackSigningSecret)
	if err == nil {
		sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		s.logger(r.Context()).Warn("slack request refused", "route", r.Pattern, "err", err)
		s.metrics.Push("slack", false)
		http.Error(w, "signature check failed: "+err.Error(), http.StatusUnauthorized)
		return nil, false
	}
	// A request replayed byte for byte (same timestamp and signature) inside the window is
	// refused; Slack's own retries are new requests with new signatures.
	first, err := s.st.MarkSeen(r.Context(), "slack-sig:"+r.Header.Get("X-Slack-Signature"), 10*time.Minute)
	if err != nil {
		http.Error(w, "please retry", http.StatusServiceUnavailable)
		return nil, false
	}
	if !first {
		s.metrics.Push("slack", false)
		http.Error(w, "this exact request was already received (replay)", http.StatusConflict)
		return nil, false
	}
	s.metrics.Push("slack", true)
	return body, true
}

// eventMeta is the part of an event_callback wrapper we use.
type eventMeta struct {
	EventID string `json:"event_id"`
	TeamID  string `json:"team_id"`
}

// parseEventsPayload reads an Events API body (already verified).
func parseEventsPayload(body []byte) (slackevents.EventsAPIEvent, eventMeta, error) {
	var meta eventMeta
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		return ev, meta, fmt.Errorf("not an Events API payload: %w", err)
	}
	if ev.Type == slackevents.CallbackEvent {
		if err := json.Unmarshal(body, &meta); err != nil || meta.EventID == "" {
			return ev, meta, errors.New("event_callback without an event_id")
		}
	}
	return ev, meta, nil
}

// parseInteractionPayload reads an interactivity body (already verified): a form with a
// payload field holding a block_actions callback with one of our action IDs.
func parseInteractionPayload(body []byte) (slack.InteractionCallback, slack.BlockAction, error) {
	var cb slack.InteractionCallback
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		return cb, slack.BlockAction{}, errors.New("expected a form with a payload field")
	}
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		return cb, slack.BlockAction{}, fmt.Errorf("the payload is not JSON: %w", err)
	}
	if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) == 0 || cb.ActionCallback.BlockActions[0] == nil {
		return cb, slack.BlockAction{}, errors.New("only App Home button presses are handled here")
	}
	act := *cb.ActionCallback.BlockActions[0]
	if !slices.Contains(knownActions, act.ActionID) {
		return cb, act, errors.New("unknown action " + strings.Map(printable, act.ActionID))
	}
	if cb.User.ID == "" {
		return cb, act, errors.New("the payload names no user")
	}
	return cb, act, nil
}

// slackUser finds our person and their Slack connection for a Slack (team, user).
func (s *Server) slackUser(ctx context.Context, teamID, slackUserID string) (store.Connection, bool, error) {
	conns, err := s.st.FindConnections(ctx, "slack", slackUserID)
	if err != nil {
		return store.Connection{}, false, err
	}
	for _, c := range conns {
		if teamID == "" || c.TeamID == "" || c.TeamID == teamID {
			return c, true, nil
		}
	}
	return store.Connection{}, false, nil
}

// handleSlackEvents serves the Events API: url_verification, app_home_opened (publish the
// Home) and messages in the App Home's messages tab (the command language). A delivery Slack
// retries is acted on once.
func (s *Server) handleSlackEvents(w http.ResponseWriter, r *http.Request) {
	body, ok := s.verifySlack(w, r)
	if !ok {
		return
	}
	ev, wrapper, err := parseEventsPayload(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		var uv slackevents.ChallengeResponse
		if err := json.Unmarshal(body, &uv); err != nil || uv.Challenge == "" {
			http.Error(w, "url_verification without a challenge", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, uv.Challenge)
		return
	case slackevents.CallbackEvent:
	default:
		w.WriteHeader(http.StatusOK) // app_rate_limited and others: nothing to do
		return
	}
	first, err := s.st.MarkSeen(r.Context(), "slack:"+wrapper.EventID, seenTTL)
	if err != nil {
		http.Error(w, "could not record the event; please retry", http.StatusServiceUnavailable)
		return
	}
	if !first {
		w.WriteHeader(http.StatusOK) // a retry of an event already handled
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2500*time.Millisecond)
	defer cancel()
	switch inner := ev.InnerEvent.Data.(type) {
	case *slackevents.AppHomeOpenedEvent:
		if inner.Tab == "home" {
			if c, found, err := s.slackUser(ctx, wrapper.TeamID, inner.User); err == nil && found {
				if err := s.publishHome(ctx, c, true); err != nil {
					s.logger(r.Context()).Warn("publish App Home", "user", c.UserID, "err", err)
				}
			}
		}
	case *slackevents.MessageEvent:
		if inner.ChannelType != "im" || inner.BotID != "" || inner.SubType != "" || inner.User == "" {
			break // only the person's own messages in the App Home's messages tab
		}
		c, found, err := s.slackUser(ctx, wrapper.TeamID, inner.User)
		if err != nil || !found {
			break
		}
		reply := s.runCommand(ctx, c, inner.Text)
		thread := inner.ThreadTimeStamp
		if thread == "" {
			thread = inner.TimeStamp
		}
		if err := s.botPost(ctx, c, inner.Channel, reply, thread); err != nil {
			s.logger(r.Context()).Warn("reply in the App Home", "user", c.UserID, "err", err)
		}
	}
	w.WriteHeader(http.StatusOK)
}

// runCommand parses and carries out a messages-tab command; it returns the reply.
func (s *Server) runCommand(ctx context.Context, c store.Connection, text string) string {
	u, err := s.st.GetUser(ctx, c.UserID)
	if err != nil {
		return "Something went wrong on our side; please try again."
	}
	loc, _ := u.Rules.Location()
	now := s.clock.Now()
	cmd, err := command.Parse(text, now, loc)
	if err != nil {
		return strings.TrimPrefix(err.Error(), command.ErrUnknown.Error()+": ")
	}
	var a Action
	switch cmd.Kind {
	case command.Help:
		return "I keep your status truthful. " + command.Usage
	case command.Status:
		tl, _, err := s.current(ctx, u, now)
		if err != nil {
			return "Something went wrong on our side; please try again."
		}
		return describe(tl.Current().State, loc, now) + "."
	case command.Focus:
		a = Action{Kind: ActFocus, Until: cmd.Until}
	case command.Back:
		a = Action{Kind: ActBack}
	case command.Extend:
		a = Action{Kind: ActExtend, Duration: cmd.Duration}
	case command.Pause:
		a = Action{Kind: ActPause, Until: cmd.Until}
	case command.Resume:
		a = Action{Kind: ActResume}
	}
	a.Origin = "slack"
	msg, err := s.applyAction(ctx, c.UserID, a)
	if err != nil {
		return "That did not work: " + err.Error()
	}
	s.publishHome(ctx, c, false)
	return msg
}

// handleSlackInteractivity serves the App Home's buttons (block_actions).
func (s *Server) handleSlackInteractivity(w http.ResponseWriter, r *http.Request) {
	body, ok := s.verifySlack(w, r)
	if !ok {
		return
	}
	cb, act, err := parseInteractionPayload(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, found, err := s.slackUser(r.Context(), cb.User.TeamID, cb.User.ID)
	if err != nil {
		http.Error(w, "please retry", http.StatusServiceUnavailable)
		return
	}
	if !found {
		http.Error(w, "this Slack account is not connected to dontinterrupt", http.StatusForbidden)
		return
	}
	u, err := s.st.GetUser(r.Context(), c.UserID)
	if err != nil {
		http.Error(w, "please retry", http.StatusServiceUnavailable)
		return
	}
	now := s.clock.Now()
	a := Action{Origin: "slack"}
	switch act.ActionID {
	case actFocus30, actFocus60, actFocus120:
		mins := map[string]int{actFocus30: 30, actFocus60: 60, actFocus120: 120}[act.ActionID]
		a.Kind, a.Until = ActFocus, now.Add(time.Duration(mins)*time.Minute)
	case actBack:
		a.Kind = ActBack
	case actExtend:
		a.Kind, a.Duration = ActExtend, 15*time.Minute
	case actIgnore:
		a.Kind = ActIgnore
		// A stale button (the meeting it was shown for is over): say so politely.
		tl, _, err := s.current(r.Context(), u, now)
		if err == nil && act.Value != "" && !slices.Contains(tl.Current().State.EventKeys, act.Value) {
			s.publishHome(r.Context(), c, true)
			s.botPost(r.Context(), c, cb.User.ID, "That button has expired: the meeting it was for is no longer in progress.", "")
			w.WriteHeader(http.StatusOK)
			return
		}
	case actPause:
		a.Kind, a.Until = ActPause, tomorrowMorning(u, now)
	case actResume:
		a.Kind = ActResume
	}
	if _, err := s.applyAction(r.Context(), c.UserID, a); err != nil {
		s.logger(r.Context()).Error("App Home action", "action", act.ActionID, "err", err)
		http.Error(w, "could not do that; please retry", http.StatusServiceUnavailable)
		return
	}
	if err := s.publishHome(r.Context(), c, true); err != nil {
		s.logger(r.Context()).Warn("publish App Home", "user", c.UserID, "err", err)
	}
	w.WriteHeader(http.StatusOK)
}

func printable(r rune) rune {
	if r < 32 || r > 126 || r == '<' || r == '>' {
		return -1
	}
	return r
}

// botCredential opens a Slack connection's credential, rotating its bot token first when it is
// about to expire.
func (s *Server) botCredential(ctx context.Context, c store.Connection) (provider.Credential, error) {
	pt, err := s.vault.Open(c.Credential, c.UserID, c.ID)
	if err != nil {
		return provider.Credential{}, err
	}
	cred, err := provider.UnmarshalCredential(pt)
	clear(pt)
	if err != nil {
		return cred, err
	}
	exp, perr := time.Parse(time.RFC3339, cred.Extra["bot_expiry"])
	if perr == nil && cred.Extra["bot_refresh"] != "" && !s.clock.Now().Add(10*time.Minute).Before(exp) {
		fresh, err := s.slackBot.RefreshBot(ctx, cred, s.clock.Now())
		if err != nil {
			return cred, err
		}
		b, _ := fresh.Marshal()
		blob, err := s.vault.Seal(b, c.UserID, c.ID)
		clear(b)
		if err != nil {
			return cred, err
		}
		if err := s.st.SwapCredential(ctx, c.UserID, c.ID, c.Credential, blob); err != nil {
			return cred, err
		}
		cred = fresh
	}
	return cred, nil
}

func (s *Server) botPost(ctx context.Context, c store.Connection, channel, text, thread string) error {
	cred, err := s.botCredential(ctx, c)
	if err != nil {
		return err
	}
	return s.slackBot.PostMessage(ctx, cred, channel, text, thread)
}

// RefreshHome publishes the App Home of every Slack connection of a person whose view changed
// (the scheduler calls it after each run).
func (s *Server) RefreshHome(ctx context.Context, userID string) {
	if s.slackBot == nil {
		return
	}
	conns, err := s.st.ListConnections(ctx, userID)
	if err != nil {
		return
	}
	for _, c := range conns {
		if c.Provider == "slack" {
			if err := s.publishHome(ctx, c, false); err != nil {
				s.logger(ctx).Debug("refresh App Home", "user", userID, "err", err)
			}
		}
	}
}

// NotifyBroken tells the person in the App Home that a connection broke, with a reconnect
// link (the scheduler calls it).
func (s *Server) NotifyBroken(ctx context.Context, userID, brokenProvider string) {
	if s.slackBot == nil {
		return
	}
	conns, err := s.st.ListConnections(ctx, userID)
	if err != nil {
		return
	}
	for _, c := range conns {
		if c.Provider != "slack" {
			continue
		}
		text := fmt.Sprintf("Your %s connection stopped working (access was revoked or expired), so I can't keep your status in sync from it. Reconnect it here: %s", title(brokenProvider), s.publicURL+"/connect/"+brokenProvider)
		if err := s.botPost(ctx, c, c.ExternalID, text, ""); err != nil {
			s.logger(ctx).Debug("tell the person a connection broke", "user", userID, "err", err)
		}
		s.publishHome(ctx, c, true)
	}
}

// publishHome builds and publishes the App Home view (skipped when unchanged, unless force).
func (s *Server) publishHome(ctx context.Context, c store.Connection, force bool) error {
	u, err := s.st.GetUser(ctx, c.UserID)
	if err != nil {
		return err
	}
	view, err := s.homeView(ctx, u)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(view)
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:])
	key := c.ID
	s.homes.mu.Lock()
	same := s.homes.last[key] == hash
	s.homes.mu.Unlock()
	if same && !force {
		return nil
	}
	cred, err := s.botCredential(ctx, c)
	if err != nil {
		return err
	}
	if err := s.slackBot.PublishHome(ctx, cred, c.ExternalID, view); err != nil {
		return err
	}
	s.homes.mu.Lock()
	if s.homes.last == nil {
		s.homes.last = map[string]string{}
	}
	s.homes.last[key] = hash
	s.homes.mu.Unlock()
	return nil
}

// sourceName says where a block came from, for people, as the end of "Focus until 14:30, …":
// "started from Alexa" for a manual block, "from Google Calendar" for a calendar's.
func (s *Server) sourceName(ctx context.Context, userID string, st presence.DesiredState) string {
	switch st.Cause {
	case "slack":
		return "started from Slack"
	case "alexa":
		return "started from Alexa"
	case "web":
		return "started from the web page"
	case presence.CauseWorkingHours:
		return "from your working hours"
	case presence.CauseZoom:
		return "from Zoom"
	}
	if len(st.EventKeys) > 0 {
		connID, _, _ := strings.Cut(st.EventKeys[0], "/")
		if c, err := s.st.GetConnection(ctx, userID, connID); err == nil {
			switch c.Provider {
			case "google":
				return "from Google Calendar"
			case "outlook":
				return "from Outlook"
			case "zoom":
				return "from Zoom"
			}
		}
	}
	return "from your calendar"
}

func kindWords(k presence.Kind) string {
	switch k {
	case presence.KindMeeting:
		return "In a meeting"
	case presence.KindFocus, presence.KindManualFocus:
		return "Focus"
	case presence.KindOutOfOffice:
		return "Out of office"
	case presence.KindZoomCall:
		return "On a Zoom call"
	case presence.KindOutsideHours:
		return "Outside working hours"
	}
	return string(k)
}

// homeView is the App Home: what is set now and why, today's next transitions (times and
// kinds, never titles), connection health, and the buttons.
func (s *Server) homeView(ctx context.Context, u store.User) (slack.HomeTabViewRequest, error) {
	now := s.clock.Now()
	loc, _ := u.Rules.Location()
	tl, _, err := s.current(ctx, u, now)
	if err != nil {
		return slack.HomeTabViewRequest{}, err
	}
	cur := tl.Current().State
	md := func(t string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, t, false, false)
	}
	pt := func(t string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, t, false, false)
	}

	var now1 string
	switch {
	case cur.Paused:
		now1 = "*Automation paused.* I'm not changing anything until you resume."
	case cur.Kind == presence.KindNone:
		now1 = "*Nothing set by me right now:* your own status shows."
	default:
		now1 = fmt.Sprintf("*%s until %s*, %s.", kindWords(cur.Kind), presence.FormatUntil(cur.Until, now, loc), s.sourceName(ctx, u.ID, cur))
	}
	var lines []string
	states, _ := s.st.ListTargetStates(ctx, u.ID)
	ownStatus := slices.ContainsFunc(states, func(ts store.TargetState) bool {
		return strings.HasPrefix(ts.Target, "slack:status:") && strings.Contains(string(ts.Written), `"skipped"`)
	})
	// The status we would set is named only when we set it: a status the person set and their
	// rule told us to leave alone is what Slack shows.
	switch {
	case ownStatus:
		lines = append(lines, "Left your own Slack status alone.")
	case !cur.SlackStatus.IsZero():
		lines = append(lines, fmt.Sprintf("Slack: %s %s", cur.SlackStatus.Emoji, cur.SlackStatus.Text))
	}
	conns, err := s.st.ListConnections(ctx, u.ID)
	if err != nil {
		return slack.HomeTabViewRequest{}, err
	}
	// Teams is named only for a person who connected it: the planned presence of someone
	// without Teams is set nowhere.
	if cur.TeamsPresence.Availability != "" && slices.ContainsFunc(conns, func(c store.Connection) bool { return c.Provider == "teams" }) {
		lines = append(lines, "Teams: "+cur.TeamsPresence.Availability)
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(pt("dontinterrupt")),
		slack.NewSectionBlock(md(now1), nil, nil),
	}
	if len(lines) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", md(strings.Join(lines, " · "))))
	}

	// Buttons.
	btn := func(id, text, value string) *slack.ButtonBlockElement {
		return slack.NewButtonBlockElement(id, value, pt(text))
	}
	actions := []slack.BlockElement{btn(actFocus30, "Focus 30 min", "30"), btn(actFocus60, "Focus 1 h", "60"), btn(actFocus120, "Focus 2 h", "120")}
	if cur.Kind != presence.KindNone && !cur.Paused {
		actions = append(actions, btn(actBack, "I'm back", "back"), btn(actExtend, "Extend 15 min", "15"))
	}
	if len(cur.EventKeys) > 0 && (cur.Kind == presence.KindMeeting || cur.Kind == presence.KindFocus) {
		actions = append(actions, btn(actIgnore, "Ignore this meeting", cur.EventKeys[0]))
	}
	if cur.Paused {
		actions = append(actions, btn(actResume, "Resume", "resume"))
	} else {
		actions = append(actions, btn(actPause, "Pause until tomorrow", "pause"))
	}
	blocks = append(blocks, slack.NewActionBlock("controls", actions...))

	// Today's next transitions.
	endOfDay := time.Date(now.In(loc).Year(), now.In(loc).Month(), now.In(loc).Day()+1, 0, 0, 0, 0, loc)
	var next []string
	for _, seg := range tl.Segments[1:] {
		if !seg.From.Before(endOfDay) || len(next) >= 8 {
			break
		}
		what := "your own status"
		if seg.State.Paused {
			what = "paused"
		} else if seg.State.Kind != presence.KindNone {
			what = strings.ToLower(kindWords(seg.State.Kind))
		}
		next = append(next, fmt.Sprintf("%s %s", seg.From.In(loc).Format("15:04"), what))
	}
	blocks = append(blocks, slack.NewDividerBlock())
	if len(next) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(md("*Next today:* "+strings.Join(next, " · ")), nil, nil))
	} else {
		blocks = append(blocks, slack.NewSectionBlock(md("*Next today:* nothing else planned."), nil, nil))
	}

	// Connections.
	var health []string
	for _, c := range conns {
		if c.Health == store.HealthBroken {
			health = append(health, fmt.Sprintf(":warning: %s needs reconnecting: <%s|reconnect>", title(c.Provider), s.publicURL+"/connect/"+c.Provider))
		} else {
			health = append(health, ":white_check_mark: "+title(c.Provider))
		}
	}
	if len(health) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", md(strings.Join(health, "   "))))
	}
	blocks = append(blocks, slack.NewContextBlock("", md(fmt.Sprintf("Settings and history: <%s|dontinterrupt>", s.publicURL+"/"))))
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}, nil
}
