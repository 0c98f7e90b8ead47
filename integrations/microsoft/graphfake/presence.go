package graphfake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ClientSessionID is the session ID of the person's own Teams client, set
// with [Server.SetClientSession].
const ClientSessionID = "teams-client"

// Limits of setPresence's expirationDuration.
const (
	MinSessionDuration     = 5 * time.Minute
	MaxSessionDuration     = 4 * time.Hour
	DefaultSessionDuration = 5 * time.Minute
)

// PresenceState is a person's presence as Teams aggregates it, for tests.
type PresenceState struct {
	// Availability and Activity are the aggregated presence GET
	// …/presence reports.
	Availability string
	Activity     string
	// Sessions are the unexpired presence sessions (apps' and the
	// person's Teams client), ordered by ID.
	Sessions []Session
	// Preferred is the unexpired user-preferred presence, if any.
	Preferred *PreferredPresence
	// StatusMessage is the unexpired status message, if any.
	StatusMessage *StatusMessage
}

// Session is one presence session.
type Session struct {
	// ID is the application ID of the app that set it, or
	// [ClientSessionID].
	ID           string
	Availability string
	Activity     string
	// Expires is when the session ends (zero: never, for client
	// sessions only).
	Expires time.Time
	// SetAt is when it was last set.
	SetAt time.Time
}

// PreferredPresence is a user-preferred presence.
type PreferredPresence struct {
	Availability string
	Activity     string
	Expires      time.Time
}

// StatusMessage is a person's Teams status message.
type StatusMessage struct {
	Content     string
	ContentType string
	// Expiry is when it disappears (zero: never); ExpiryTimeZone is the
	// time zone it was given in.
	Expiry         time.Time
	ExpiryTimeZone string
	Published      time.Time
	// SetByApp is true when an app set it through setStatusMessage,
	// false when the person did (SetUserStatusMessage).
	SetByApp bool
}

type presenceData struct {
	sessions  map[string]*Session
	preferred *PreferredPresence
	status    *StatusMessage
}

// setPresence accepts only these availability/activity pairs.
var appPresencePairs = map[string]string{
	"Available":    "Available",
	"Busy":         "InACall|InAConferenceCall",
	"Away":         "Away",
	"DoNotDisturb": "Presenting",
}

// setUserPreferredPresence accepts only these pairs.
var preferredPairs = map[string]string{
	"Available": "Available", "Busy": "Busy", "DoNotDisturb": "DoNotDisturb",
	"BeRightBack": "BeRightBack", "Away": "Away", "Offline": "OffWork",
}

func validAppPair(availability, activity string) bool {
	acts, ok := appPresencePairs[availability]
	return ok && slices.Contains(strings.Split(acts, "|"), activity)
}

var validAvailability = []string{"Available", "AvailableIdle", "Away", "BeRightBack", "Busy", "BusyIdle", "DoNotDisturb", "Offline", "PresenceUnknown"}

// sessionRank orders sessions for aggregation: DoNotDisturb > Busy >
// Available > Away.
func sessionRank(availability string) int {
	switch availability {
	case "DoNotDisturb":
		return 5
	case "Busy", "BusyIdle":
		return 4
	case "Available", "AvailableIdle":
		return 3
	case "BeRightBack":
		return 2
	case "Away":
		return 1
	}
	return 0
}

// pruneLocked drops what has expired at now.
func (p *presenceData) pruneLocked(now time.Time) {
	for id, ss := range p.sessions {
		if !ss.Expires.IsZero() && !now.Before(ss.Expires) {
			delete(p.sessions, id)
		}
	}
	if p.preferred != nil && !now.Before(p.preferred.Expires) {
		p.preferred = nil
	}
	if p.status != nil && !p.status.Expiry.IsZero() && !now.Before(p.status.Expiry) {
		p.status = nil
	}
}

// aggregateLocked computes the presence GET reports: the user-preferred
// presence while any session exists, else the highest-ranked session (the
// latest set on a tie), else the no-session presence.
func (s *Server) aggregateLocked(u *user) (string, string) {
	p := &u.presence
	p.pruneLocked(s.now())
	if len(p.sessions) == 0 {
		return s.opts.NoSessionAvailability, s.opts.NoSessionActivity
	}
	if p.preferred != nil {
		return p.preferred.Availability, p.preferred.Activity
	}
	var best *Session
	for _, ss := range p.sessions {
		if best == nil || sessionRank(ss.Availability) > sessionRank(best.Availability) ||
			(sessionRank(ss.Availability) == sessionRank(best.Availability) && ss.SetAt.After(best.SetAt)) {
			best = ss
		}
	}
	return best.Availability, best.Activity
}

// Presence returns a person's aggregated presence, sessions, user-preferred
// presence and status message at the fake clock's time.
func (s *Server) Presence(oid string) PresenceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return PresenceState{}
	}
	av, act := s.aggregateLocked(u)
	out := PresenceState{Availability: av, Activity: act}
	for _, ss := range u.presence.sessions {
		out.Sessions = append(out.Sessions, *ss)
	}
	slices.SortFunc(out.Sessions, func(a, b Session) int { return strings.Compare(a.ID, b.ID) })
	if pp := u.presence.preferred; pp != nil {
		c := *pp
		out.Preferred = &c
	}
	if sm := u.presence.status; sm != nil {
		c := *sm
		out.StatusMessage = &c
	}
	return out
}

// SetUserStatusMessage sets the status message as the person would in Teams
// (no API call is logged). An empty text clears it; a zero expiry means it
// does not expire.
func (s *Server) SetUserStatusMessage(oid, text string, expiry time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return err
	}
	if text == "" {
		u.presence.status = nil
		return nil
	}
	u.presence.status = &StatusMessage{Content: text, ContentType: "text", Expiry: expiry, ExpiryTimeZone: "UTC", Published: s.now()}
	return nil
}

// SetUserPreferredPresence sets the person's preferred presence as Teams
// would when they pick a status by hand. Only the pairs
// setUserPreferredPresence accepts are allowed; a zero expiry takes Graph's
// default (1 day for Busy and DoNotDisturb, 7 days otherwise).
func (s *Server) SetUserPreferredPresence(oid, availability, activity string, expiry time.Time) error {
	if preferredPairs[availability] != activity {
		return fmt.Errorf("graphfake: %s/%s is not a user-preferred presence pair", availability, activity)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return err
	}
	if expiry.IsZero() {
		expiry = s.now().Add(defaultPreferredDuration(availability))
	}
	u.presence.preferred = &PreferredPresence{Availability: availability, Activity: activity, Expires: expiry}
	return nil
}

// ClearUserPreferredPresence removes the person's preferred presence.
func (s *Server) ClearUserPreferredPresence(oid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return err
	}
	u.presence.preferred = nil
	return nil
}

// SetClientSession sets the presence session of the person's own Teams
// client ([ClientSessionID]), as if they were signed in to Teams; a zero
// expires means until changed. An empty availability removes the session.
func (s *Server) SetClientSession(oid, availability, activity string, expires time.Time) error {
	if availability != "" && !slices.Contains(validAvailability, availability) {
		return fmt.Errorf("graphfake: unknown availability %q", availability)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return err
	}
	if availability == "" {
		delete(u.presence.sessions, ClientSessionID)
		return nil
	}
	s.setSessionLocked(u, &Session{ID: ClientSessionID, Availability: availability, Activity: activity, Expires: expires, SetAt: s.now()})
	return nil
}

func (s *Server) setSessionLocked(u *user, ss *Session) {
	if u.presence.sessions == nil {
		u.presence.sessions = make(map[string]*Session)
	}
	u.presence.sessions[ss.ID] = ss
}

func defaultPreferredDuration(availability string) time.Duration {
	if availability == "Busy" || availability == "DoNotDisturb" {
		return 24 * time.Hour
	}
	return 7 * 24 * time.Hour
}

// handlePresenceGet serves GET {user}/presence.
func (s *Server) handlePresenceGet(w http.ResponseWriter, r *http.Request, g *graphCtx) {
	s.mu.Lock()
	u := g.target
	av, act := s.aggregateLocked(u)
	b := s.baseLocked(r)
	var status any
	if sm := u.presence.status; sm != nil {
		m := map[string]any{
			"message": map[string]string{"content": sm.Content, "contentType": sm.ContentType},
		}
		if g.self {
			// Others see neither the expiry nor the publish time.
			m["publishedDateTime"] = sm.Published.UTC().Format(graphDateTime + "Z")
			if !sm.Expiry.IsZero() {
				loc, _ := lookupZone(sm.ExpiryTimeZone)
				if loc == nil {
					loc = time.UTC
				}
				m["expiryDateTime"] = dateTimeTimeZoneJSON{DateTime: sm.Expiry.In(loc).Format(graphDateTime), TimeZone: sm.ExpiryTimeZone}
			}
		}
		status = m
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context":      b + "/v1.0/$metadata#users('" + u.oid + "')/presence/$entity",
		"id":                  u.oid,
		"availability":        av,
		"activity":            act,
		"statusMessage":       status,
		"outOfOfficeSettings": map[string]any{"message": nil, "isOutOfOffice": false},
	})
}

// readBody decodes a JSON request body into v, answering 400 on failure.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "The request body is too large or could not be read.")
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "Empty Payload. JSON content expected.")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return false
	}
	return true
}

// noContent answers 200 with an empty body, as the presence actions do.
func noContent(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

type setPresenceBody struct {
	SessionID          string `json:"sessionId"`
	Availability       string `json:"availability"`
	Activity           string `json:"activity"`
	ExpirationDuration string `json:"expirationDuration"`
}

// handleSetPresence serves POST {user}/presence/setPresence.
func (s *Server) handleSetPresence(w http.ResponseWriter, r *http.Request, g *graphCtx) {
	var body setPresenceBody
	if !s.readBody(w, r, &body) {
		return
	}
	switch {
	case body.SessionID == "":
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "SessionId is required.")
		return
	case !strings.EqualFold(body.SessionID, g.at.grant.clientID):
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "SessionId must be the application (client) ID of the calling app.")
		return
	case body.Availability == "" || body.Activity == "":
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "Availability and activity are required.")
		return
	case !validAppPair(body.Availability, body.Activity):
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest,
			fmt.Sprintf("The availability and activity combination %s/%s is not supported. Supported: Available/Available, Busy/InACall, Busy/InAConferenceCall, Away/Away, DoNotDisturb/Presenting.", body.Availability, body.Activity))
		return
	}
	d := DefaultSessionDuration
	if body.ExpirationDuration != "" {
		var err error
		d, err = parseISODuration(body.ExpirationDuration)
		if err != nil {
			s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "ExpirationDuration is not a valid ISO 8601 duration.")
			return
		}
		if d < MinSessionDuration || d > MaxSessionDuration {
			s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "ExpirationDuration must be between PT5M and PT4H.")
			return
		}
	}
	s.mu.Lock()
	now := s.now()
	s.setSessionLocked(g.target, &Session{ID: g.at.grant.clientID, Availability: body.Availability, Activity: body.Activity, Expires: now.Add(d), SetAt: now})
	s.mu.Unlock()
	noContent(w)
}

// handleClearPresence serves POST {user}/presence/clearPresence.
func (s *Server) handleClearPresence(w http.ResponseWriter, r *http.Request, g *graphCtx) {
	var body struct {
		SessionID string `json:"sessionId"`
	}
	if !s.readBody(w, r, &body) {
		return
	}
	if body.SessionID == "" {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "SessionId is required.")
		return
	}
	s.mu.Lock()
	p := &g.target.presence
	p.pruneLocked(s.now())
	var found bool
	if strings.EqualFold(body.SessionID, g.at.grant.clientID) {
		_, found = p.sessions[g.at.grant.clientID]
		delete(p.sessions, g.at.grant.clientID)
	}
	s.mu.Unlock()
	if !found {
		s.graphError(w, r, http.StatusNotFound, CodeNotFound, "The presence session was not found.")
		return
	}
	noContent(w)
}

// handleSetUserPreferredPresence serves POST
// {user}/presence/setUserPreferredPresence.
func (s *Server) handleSetUserPreferredPresence(w http.ResponseWriter, r *http.Request, g *graphCtx) {
	var body setPresenceBody
	if !s.readBody(w, r, &body) {
		return
	}
	if preferredPairs[body.Availability] != body.Activity || body.Activity == "" {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest,
			fmt.Sprintf("The availability and activity combination %s/%s is not supported for user preferred presence.", body.Availability, body.Activity))
		return
	}
	d := defaultPreferredDuration(body.Availability)
	if body.ExpirationDuration != "" {
		var err error
		if d, err = parseISODuration(body.ExpirationDuration); err != nil || d <= 0 {
			s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "ExpirationDuration is not a valid ISO 8601 duration.")
			return
		}
	}
	s.mu.Lock()
	g.target.presence.preferred = &PreferredPresence{Availability: body.Availability, Activity: body.Activity, Expires: s.now().Add(d)}
	s.mu.Unlock()
	noContent(w)
}

// handleClearUserPreferredPresence serves POST
// {user}/presence/clearUserPreferredPresence.
func (s *Server) handleClearUserPreferredPresence(w http.ResponseWriter, _ *http.Request, g *graphCtx) {
	s.mu.Lock()
	g.target.presence.preferred = nil
	s.mu.Unlock()
	noContent(w)
}

type setStatusMessageBody struct {
	StatusMessage *struct {
		Message *struct {
			Content     string `json:"content"`
			ContentType string `json:"contentType"`
		} `json:"message"`
		ExpiryDateTime *dateTimeTimeZoneJSON `json:"expiryDateTime"`
	} `json:"statusMessage"`
}

// handleSetStatusMessage serves POST {user}/presence/setStatusMessage.
func (s *Server) handleSetStatusMessage(w http.ResponseWriter, r *http.Request, g *graphCtx) {
	var body setStatusMessageBody
	if !s.readBody(w, r, &body) {
		return
	}
	if body.StatusMessage == nil {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "StatusMessage is required.")
		return
	}
	sm := body.StatusMessage
	var content, contentType string
	if sm.Message != nil {
		content, contentType = sm.Message.Content, cmp.Or(sm.Message.ContentType, "text")
	}
	if !strings.EqualFold(contentType, "text") && !strings.EqualFold(contentType, "html") && content != "" {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "Message contentType must be text or html.")
		return
	}
	if max := s.opts.MaxStatusMessageLength; max > 0 && utf8.RuneCountInString(content) > max {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "The status message is longer than "+strconv.Itoa(max)+" characters.")
		return
	}
	var expiry time.Time
	var expiryTZ string
	if e := sm.ExpiryDateTime; e != nil && e.DateTime != "" {
		expiryTZ = cmp.Or(e.TimeZone, "UTC")
		loc, ok := lookupZone(expiryTZ)
		if !ok {
			s.timeZoneNotSupported(w, r, expiryTZ)
			return
		}
		var err error
		if expiry, err = parseGraphTime(e.DateTime, loc); err != nil {
			s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "ExpiryDateTime.dateTime is not a valid ISO 8601 date and time.")
			return
		}
	}
	s.mu.Lock()
	if content == "" {
		g.target.presence.status = nil
	} else {
		g.target.presence.status = &StatusMessage{Content: content, ContentType: strings.ToLower(contentType),
			Expiry: expiry, ExpiryTimeZone: expiryTZ, Published: s.now(), SetByApp: true}
	}
	s.mu.Unlock()
	noContent(w)
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISODuration parses an ISO 8601 duration without years or months
// ("PT5M", "PT1H30M", "P1D", "P1W").
func parseISODuration(v string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(v)
	if m == nil || v == "P" || strings.HasSuffix(v, "T") {
		return 0, fmt.Errorf("graphfake: %q is not an ISO 8601 duration", v)
	}
	var d time.Duration
	units := []time.Duration{7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second}
	for i, unit := range units {
		if m[i+1] == "" {
			continue
		}
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, err
		}
		d += time.Duration(f * float64(unit))
	}
	return d, nil
}
