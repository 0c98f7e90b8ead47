package googlefake

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scopes that allow each Calendar endpoint.
var (
	scopesCalendarList = []string{ScopeCalendar, ScopeCalendarReadonly}
	scopesEventsRead   = []string{ScopeCalendar, ScopeCalendarReadonly, ScopeCalendarEvents, ScopeCalendarEventsReadonly}
	scopesAnyCalendar  = []string{ScopeCalendar, ScopeCalendarReadonly, ScopeCalendarEvents, ScopeCalendarEventsReadonly, ScopeCalendarSettings}
)

// apiErrorItem is one entry of a Google JSON API error's "errors" list.
type apiErrorItem struct {
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Message      string `json:"message"`
	LocationType string `json:"locationType,omitempty"`
	Location     string `json:"location,omitempty"`
}

type apiError struct {
	Errors  []apiErrorItem `json:"errors"`
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Status  string         `json:"status,omitempty"`
}

// writeAPIError writes Google's JSON API error body, which google.golang.org/api
// turns into a *googleapi.Error.
func writeAPIError(w http.ResponseWriter, code int, message string, items ...apiErrorItem) {
	e := apiError{Errors: items, Code: code, Message: message}
	switch code {
	case http.StatusUnauthorized:
		e.Status = "UNAUTHENTICATED"
	case http.StatusTooManyRequests:
		e.Status = "RESOURCE_EXHAUSTED"
	}
	writeJSON(w, code, map[string]apiError{"error": e})
}

func badParam(w http.ResponseWriter, reason, message, param string) {
	writeAPIError(w, http.StatusBadRequest, message, apiErrorItem{
		Domain: "global", Reason: reason, Message: message, LocationType: "parameter", Location: param,
	})
}

func invalidParam(w http.ResponseWriter, param, value string) {
	badParam(w, "invalid", fmt.Sprintf("Invalid value '%s'. %s", value, "Values must match the documented format."), param)
}

func notFound(w http.ResponseWriter) {
	writeAPIError(w, http.StatusNotFound, "Not Found", apiErrorItem{Domain: "global", Reason: "notFound", Message: "Not Found"})
}

func fullSyncRequired(w http.ResponseWriter) {
	msg := "Sync token is no longer valid, a full sync is required."
	writeAPIError(w, http.StatusGone, msg, apiErrorItem{
		Domain: "calendar", Reason: "fullSyncRequired", Message: msg, LocationType: "parameter", Location: "syncToken",
	})
}

type calendarHandler func(w http.ResponseWriter, r *http.Request, sub string)

// calendarEndpoint wraps h with bearer-token authentication, the scope check
// and the per-user and per-project quotas.
func (s *Server) calendarEndpoint(scopes []string, h calendarHandler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, info *reqInfo) {
		tok, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
			writeAPIError(w, http.StatusUnauthorized,
				"Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
				apiErrorItem{Domain: "global", Reason: "required", Message: "Login Required.", LocationType: "header", Location: "Authorization"})
			return
		}
		s.mu.Lock()
		at := s.access[tok]
		if at == nil || at.grant.revoked || !s.now().Before(at.expires) {
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
			writeAPIError(w, http.StatusUnauthorized,
				"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
				apiErrorItem{Domain: "global", Reason: "authError", Message: "Invalid Credentials", LocationType: "header", Location: "Authorization"})
			return
		}
		g := at.grant
		info.account = g.sub
		if !slices.ContainsFunc(scopes, g.has) {
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="`+strings.Join(scopes, " ")+`"`)
			writeAPIError(w, http.StatusForbidden, "Request had insufficient authentication scopes.",
				apiErrorItem{Domain: "global", Reason: "insufficientPermissions", Message: "Insufficient Permission"})
			return
		}
		status, reason, limited := s.rateLimitLocked(g.sub)
		s.mu.Unlock()
		if limited {
			msg := reasonMessage(reason)
			writeAPIError(w, status, msg, apiErrorItem{Domain: "usageLimits", Reason: reason, Message: msg})
			return
		}
		h(w, r, g.sub)
	}
}

// rateLimitLocked counts a request against the sliding-minute quotas and
// reports whether it exceeds one.
func (s *Server) rateLimitLocked(sub string) (status int, reason string, limited bool) {
	now := s.now()
	cutoff := now.Add(-time.Minute)
	prune := func(ts []time.Time) []time.Time {
		i := 0
		for i < len(ts) && !ts[i].After(cutoff) {
			i++
		}
		return ts[i:]
	}
	s.projectWindow = prune(s.projectWindow)
	user := prune(s.userWindow[sub])
	s.userWindow[sub] = user
	switch {
	case len(s.projectWindow) >= s.projQPM:
		return s.opts.RateLimitStatus, "rateLimitExceeded", true
	case len(user) >= s.userQPM:
		if s.opts.RateLimitStatus == http.StatusTooManyRequests {
			return http.StatusTooManyRequests, "rateLimitExceeded", true
		}
		return http.StatusForbidden, "userRateLimitExceeded", true
	}
	s.projectWindow = append(s.projectWindow, now)
	s.userWindow[sub] = append(user, now)
	return 0, "", false
}

func (s *Server) handleCalendarNotFound(w http.ResponseWriter, _ *http.Request, _ *reqInfo) {
	notFound(w)
}

// syncState is what a sync token stands for.
type syncState struct {
	kind  string // "events" or "calendarList"
	sub   string
	calID string
	seq   int64
	epoch int
}

// pageState is what a page token stands for: the result IDs fixed by the
// first page, so paging is stable while data changes.
type pageState struct {
	kind     string
	sub      string
	calID    string
	queryKey string
	ids      []string
	offset   int
	snapshot int64
	epoch    int
	syncable bool
	created  time.Time
}

// Page tokens are swept once this many exist; those older than
// pageTokenTTL go.
const (
	maxPageTokens = 4096
	pageTokenTTL  = time.Hour
)

// queryKey identifies a list query for page-token checks.
func queryKey(q url.Values) string {
	c := cloneValues(q)
	for _, k := range []string{"pageToken", "maxResults", "alt", "prettyPrint", "fields", "key", "quotaUser"} {
		c.Del(k)
	}
	return c.Encode()
}

func (s *Server) syncTokenLocked(st syncState) string {
	if tok, ok := s.syncByKey[st]; ok {
		return tok
	}
	tok := "CP" + randomToken(24)
	s.syncTokens[tok] = &st
	s.syncByKey[st] = tok
	// Keep the last few tokens of each calendar (list): an older one answers 410
	// fullSyncRequired, as Google's expired tokens do, and a long run does not keep every
	// token it ever gave.
	k := st.kind + "\x00" + st.sub + "\x00" + st.calID
	recent := append(s.syncRecent[k], tok)
	if len(recent) > syncTokensKept {
		old := recent[0]
		if os := s.syncTokens[old]; os != nil {
			delete(s.syncByKey, *os)
		}
		delete(s.syncTokens, old)
		recent = recent[1:]
	}
	s.syncRecent[k] = recent
	return tok
}

// syncTokensKept is how many sync tokens of one calendar (or calendar list) stay valid.
const syncTokensKept = 8

func parseBoolParam(w http.ResponseWriter, q url.Values, name string) (val, ok bool) {
	v := q.Get(name)
	switch v {
	case "":
		return false, true
	case "true":
		return true, true
	case "false":
		return false, true
	}
	invalidParam(w, name, v)
	return false, false
}

func parseMaxResults(w http.ResponseWriter, q url.Values, def, most int) (int, bool) {
	v := q.Get("maxResults")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		invalidParam(w, "maxResults", v)
		return 0, false
	}
	return min(n, most), true
}

// pageLocked resolves the IDs for this request: from the page token, or from
// compute for a first page.
func (s *Server) pageLocked(w http.ResponseWriter, q url.Values, kind, sub, calID string, epoch int, syncable bool, compute func() []string) (*pageState, bool) {
	if pt := q.Get("pageToken"); pt != "" {
		ps := s.pageTokens[pt]
		if ps == nil || ps.kind != kind || ps.sub != sub || ps.calID != calID || ps.queryKey != queryKey(q) {
			invalidParam(w, "pageToken", "[redacted]")
			return nil, false
		}
		if ps.epoch != epoch && q.Get("syncToken") != "" {
			fullSyncRequired(w)
			return nil, false
		}
		return ps, true
	}
	return &pageState{
		kind: kind, sub: sub, calID: calID, queryKey: queryKey(q),
		ids: compute(), snapshot: s.seq, epoch: epoch, syncable: syncable,
	}, true
}

// nextLocked cuts one page out of ps and returns its IDs with the next page
// token or, on the last page, the next sync token.
func (s *Server) nextLocked(ps *pageState, max int) (ids []string, nextPage, nextSync string) {
	end := min(ps.offset+max, len(ps.ids))
	ids = ps.ids[ps.offset:end]
	if end < len(ps.ids) {
		next := *ps
		next.offset = end
		nextPage = randomToken(24)
		next.created = s.now()
		if len(s.pageTokens) >= maxPageTokens {
			for tok, p := range s.pageTokens {
				if next.created.Sub(p.created) > pageTokenTTL {
					delete(s.pageTokens, tok)
				}
			}
		}
		s.pageTokens[nextPage] = &next
		return ids, nextPage, ""
	}
	if ps.syncable {
		nextSync = s.syncTokenLocked(syncState{kind: ps.kind, sub: ps.sub, calID: ps.calID, seq: ps.snapshot, epoch: ps.epoch})
	}
	return ids, "", nextSync
}

type calendarListEntryJSON struct {
	Kind             string         `json:"kind"`
	Etag             string         `json:"etag"`
	ID               string         `json:"id"`
	Summary          string         `json:"summary"`
	TimeZone         string         `json:"timeZone"`
	ColorID          string         `json:"colorId"`
	BackgroundColor  string         `json:"backgroundColor"`
	ForegroundColor  string         `json:"foregroundColor"`
	Selected         bool           `json:"selected,omitempty"`
	AccessRole       string         `json:"accessRole"`
	DefaultReminders []reminderJSON `json:"defaultReminders"`
	Primary          bool           `json:"primary,omitempty"`
	ConferenceProps  map[string]any `json:"conferenceProperties"`
}

type reminderJSON struct {
	Method  string `json:"method"`
	Minutes int    `json:"minutes"`
}

type calendarListJSON struct {
	Kind          string                  `json:"kind"`
	Etag          string                  `json:"etag"`
	NextPageToken string                  `json:"nextPageToken,omitempty"`
	NextSyncToken string                  `json:"nextSyncToken,omitempty"`
	Items         []calendarListEntryJSON `json:"items"`
}

func (s *Server) handleCalendarList(w http.ResponseWriter, r *http.Request, sub string) {
	q := r.URL.Query()
	max, ok := parseMaxResults(w, q, 100, 250)
	if !ok {
		return
	}
	for _, name := range []string{"showDeleted", "showHidden"} {
		if _, ok := parseBoolParam(w, q, name); !ok {
			return
		}
	}
	if mar := q.Get("minAccessRole"); mar != "" && !oneOf(mar, "freeBusyReader", "reader", "writer", "owner") {
		invalidParam(w, "minAccessRole", mar)
		return
	}
	syncTok := q.Get("syncToken")
	if syncTok != "" && q.Get("minAccessRole") != "" {
		msg := "Sync token cannot be used with other request restrictions."
		badParam(w, "invalid", msg, "minAccessRole")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.accountLocked(sub)
	if err != nil {
		notFound(w)
		return
	}
	var since int64 = -1
	if syncTok != "" {
		st := s.syncTokens[syncTok]
		if st == nil || st.kind != "calendarList" || st.sub != sub || st.epoch != a.syncEpoch {
			fullSyncRequired(w)
			return
		}
		since = st.seq
	}
	ps, ok := s.pageLocked(w, q, "calendarList", sub, "", a.syncEpoch, true, func() []string {
		var ids []string
		for _, id := range a.calOrder {
			if a.calendars[id].seq > since {
				ids = append(ids, id)
			}
		}
		return ids
	})
	if !ok {
		return
	}
	ids, nextPage, nextSync := s.nextLocked(ps, max)
	out := calendarListJSON{
		Kind:          "calendar#calendarList",
		Etag:          etag(s.seq),
		NextPageToken: nextPage,
		NextSyncToken: nextSync,
		Items:         []calendarListEntryJSON{},
	}
	for i, id := range ids {
		c := a.calendars[id]
		out.Items = append(out.Items, calendarListEntryJSON{
			Kind:             "calendar#calendarListEntry",
			Etag:             etag(c.seq),
			ID:               c.id,
			Summary:          c.summary,
			TimeZone:         s.opts.TimeZone,
			ColorID:          strconv.Itoa(14 + i%10),
			BackgroundColor:  "#9fe1e7",
			ForegroundColor:  "#000000",
			Selected:         true,
			AccessRole:       "owner",
			DefaultReminders: defaultReminders(c.primary),
			Primary:          c.primary,
			ConferenceProps:  map[string]any{"allowedConferenceSolutionTypes": []string{"hangoutsMeet"}},
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func defaultReminders(primary bool) []reminderJSON {
	if primary {
		return []reminderJSON{{Method: "popup", Minutes: 10}}
	}
	return []reminderJSON{}
}

func etag(seq int64) string { return strconv.Quote(strconv.FormatInt(3_500_000_000_000_000+seq, 10)) }

// Wire shapes of calendar#events and calendar#event.
type (
	eventsJSON struct {
		Kind             string         `json:"kind"`
		Etag             string         `json:"etag"`
		Summary          string         `json:"summary"`
		Description      string         `json:"description"`
		Updated          string         `json:"updated"`
		TimeZone         string         `json:"timeZone"`
		AccessRole       string         `json:"accessRole"`
		DefaultReminders []reminderJSON `json:"defaultReminders"`
		NextPageToken    string         `json:"nextPageToken,omitempty"`
		NextSyncToken    string         `json:"nextSyncToken,omitempty"`
		Items            []eventJSON    `json:"items"`
	}
	eventJSON struct {
		Kind                  string         `json:"kind"`
		Etag                  string         `json:"etag"`
		ID                    string         `json:"id"`
		Status                string         `json:"status"`
		HTMLLink              string         `json:"htmlLink,omitempty"`
		Created               string         `json:"created,omitempty"`
		Updated               string         `json:"updated"`
		Summary               string         `json:"summary,omitempty"`
		Description           string         `json:"description,omitempty"`
		Location              string         `json:"location,omitempty"`
		Creator               *personJSON    `json:"creator,omitempty"`
		Organizer             *personJSON    `json:"organizer,omitempty"`
		Start                 *timeJSON      `json:"start,omitempty"`
		End                   *timeJSON      `json:"end,omitempty"`
		Transparency          string         `json:"transparency,omitempty"`
		Visibility            string         `json:"visibility,omitempty"`
		ICalUID               string         `json:"iCalUID,omitempty"`
		Sequence              *int           `json:"sequence,omitempty"`
		Attendees             []attendeeJSON `json:"attendees,omitempty"`
		HangoutLink           string         `json:"hangoutLink,omitempty"`
		Reminders             *remindersJSON `json:"reminders,omitempty"`
		EventType             string         `json:"eventType,omitempty"`
		OutOfOfficeProperties *oooJSON       `json:"outOfOfficeProperties,omitempty"`
		FocusTimeProperties   *focusTimeJSON `json:"focusTimeProperties,omitempty"`
		WorkingLocationProps  map[string]any `json:"workingLocationProperties,omitempty"`
	}
	personJSON struct {
		Email       string `json:"email,omitempty"`
		DisplayName string `json:"displayName,omitempty"`
		Self        bool   `json:"self,omitempty"`
	}
	timeJSON struct {
		Date     string `json:"date,omitempty"`
		DateTime string `json:"dateTime,omitempty"`
		TimeZone string `json:"timeZone,omitempty"`
	}
	attendeeJSON struct {
		Email          string `json:"email,omitempty"`
		DisplayName    string `json:"displayName,omitempty"`
		Organizer      bool   `json:"organizer,omitempty"`
		Self           bool   `json:"self,omitempty"`
		Resource       bool   `json:"resource,omitempty"`
		Optional       bool   `json:"optional,omitempty"`
		ResponseStatus string `json:"responseStatus"`
	}
	remindersJSON struct {
		UseDefault bool `json:"useDefault"`
	}
	oooJSON struct {
		AutoDeclineMode string `json:"autoDeclineMode,omitempty"`
		DeclineMessage  string `json:"declineMessage,omitempty"`
	}
	focusTimeJSON struct {
		AutoDeclineMode string `json:"autoDeclineMode,omitempty"`
		DeclineMessage  string `json:"declineMessage,omitempty"`
		ChatStatus      string `json:"chatStatus,omitempty"`
	}
)

// listParams are the parsed events.list parameters.
type listParams struct {
	max          int
	singleEvents bool
	showDeleted  bool
	orderBy      string
	timeMin      time.Time
	timeMax      time.Time
	updatedMin   time.Time
	eventTypes   map[string]bool
	q            string
	iCalUID      string
	extProps     bool
	loc          *time.Location // response time zone, nil for the events' own
	syncToken    string
}

func (s *Server) parseListParams(w http.ResponseWriter, q url.Values) (*listParams, bool) {
	p := &listParams{q: q.Get("q"), iCalUID: q.Get("iCalUID"), syncToken: q.Get("syncToken")}
	var ok bool
	if p.max, ok = parseMaxResults(w, q, 250, 2500); !ok {
		return nil, false
	}
	if p.singleEvents, ok = parseBoolParam(w, q, "singleEvents"); !ok {
		return nil, false
	}
	if p.showDeleted, ok = parseBoolParam(w, q, "showDeleted"); !ok {
		return nil, false
	}
	for _, name := range []string{"showHiddenInvitations", "alwaysIncludeEmail"} {
		if _, ok = parseBoolParam(w, q, name); !ok {
			return nil, false
		}
	}
	if v := q.Get("maxAttendees"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			invalidParam(w, "maxAttendees", v)
			return nil, false
		}
	}
	p.orderBy = q.Get("orderBy")
	switch p.orderBy {
	case "", "updated":
	case "startTime":
		if !p.singleEvents {
			msg := "The requested ordering is not available for the particular query."
			badParam(w, "badRequest", msg, "orderBy")
			return nil, false
		}
	default:
		invalidParam(w, "orderBy", p.orderBy)
		return nil, false
	}
	for _, name := range []string{"timeMin", "timeMax", "updatedMin"} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			badParam(w, "badRequest", "Bad Request", name)
			return nil, false
		}
		switch name {
		case "timeMin":
			p.timeMin = t
		case "timeMax":
			p.timeMax = t
		default:
			p.updatedMin = t
		}
	}
	if !p.timeMin.IsZero() && !p.timeMax.IsZero() && !p.timeMin.Before(p.timeMax) {
		msg := "The specified time range is empty."
		writeAPIError(w, http.StatusBadRequest, msg, apiErrorItem{
			Domain: "calendar", Reason: "timeRangeEmpty", Message: msg, LocationType: "parameter", Location: "timeMax",
		})
		return nil, false
	}
	for _, v := range q["eventTypes"] {
		for t := range strings.SplitSeq(v, ",") {
			if !validEventTypes[t] {
				invalidParam(w, "eventTypes", t)
				return nil, false
			}
			if p.eventTypes == nil {
				p.eventTypes = make(map[string]bool)
			}
			p.eventTypes[t] = true
		}
	}
	if tz := q.Get("timeZone"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			invalidParam(w, "timeZone", tz)
			return nil, false
		}
		p.loc = loc
	}
	p.extProps = len(q["privateExtendedProperty"]) > 0 || len(q["sharedExtendedProperty"]) > 0
	if p.syncToken != "" {
		for _, name := range []string{"iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin"} {
			if q.Has(name) {
				msg := "Sync token cannot be used with other request restrictions."
				badParam(w, "syncTokenWithRequestRestrictions", msg, name)
				return nil, false
			}
		}
		if q.Get("showDeleted") == "false" {
			msg := "Sync token cannot be used with other request restrictions."
			badParam(w, "syncTokenWithRequestRestrictions", msg, "showDeleted")
			return nil, false
		}
	}
	return p, true
}

func (s *Server) handleEventsList(w http.ResponseWriter, r *http.Request, sub string) {
	q := r.URL.Query()
	p, ok := s.parseListParams(w, q)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, c, err := s.calendarLocked(sub, r.PathValue("calendarId"))
	if err != nil {
		notFound(w)
		return
	}
	var since int64 = -1
	if p.syncToken != "" {
		st := s.syncTokens[p.syncToken]
		if st == nil || st.kind != "events" || st.sub != sub || st.calID != c.id || st.epoch != a.syncEpoch {
			fullSyncRequired(w)
			return
		}
		since = st.seq
	}
	// Google gives no nextSyncToken to queries that cannot be continued
	// with one.
	syncable := p.orderBy == "" && p.q == "" && p.iCalUID == "" && p.updatedMin.IsZero() && !p.extProps
	ps, ok := s.pageLocked(w, q, "events", sub, c.id, a.syncEpoch, syncable, func() []string {
		return s.selectEventsLocked(c, p, since)
	})
	if !ok {
		return
	}
	ids, nextPage, nextSync := s.nextLocked(ps, p.max)
	out := eventsJSON{
		Kind:             "calendar#events",
		Etag:             etag(s.seq),
		Summary:          c.summary,
		Updated:          formatUpdated(s.calendarUpdatedLocked(c)),
		TimeZone:         s.opts.TimeZone,
		AccessRole:       "owner",
		DefaultReminders: defaultReminders(c.primary),
		NextPageToken:    nextPage,
		NextSyncToken:    nextSync,
		Items:            []eventJSON{},
	}
	if p.loc != nil {
		out.TimeZone = p.loc.String()
	}
	base := s.baseURLLocked(r)
	for _, id := range ids {
		if se := c.events[id]; se != nil {
			out.Items = append(out.Items, s.renderEvent(a, c, se, p.loc, base))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// selectEventsLocked returns the IDs of the events a query selects, in the
// order Google would list them.
func (s *Server) selectEventsLocked(c *calendarData, p *listParams, since int64) []string {
	var sel []*storedEvent
	for _, se := range c.events {
		if p.eventTypes != nil && !p.eventTypes[eventTypeOf(&se.ev)] {
			continue
		}
		if since >= 0 {
			// Incremental sync: every change since the token,
			// deletions included, whatever its time.
			if se.seq > since {
				sel = append(sel, se)
			}
			continue
		}
		if se.deleted && !p.showDeleted && p.updatedMin.IsZero() {
			continue
		}
		start, end := se.ev.span(s.loc)
		if !p.timeMin.IsZero() && !end.After(p.timeMin) {
			continue
		}
		if !p.timeMax.IsZero() && !start.Before(p.timeMax) {
			continue
		}
		if !p.updatedMin.IsZero() && se.updated.Before(p.updatedMin) {
			continue
		}
		if p.iCalUID != "" && p.iCalUID != iCalUID(se.ev.ID) {
			continue
		}
		if p.extProps {
			continue // the fake's events have no extended properties
		}
		if p.q != "" && !matchesText(&se.ev, p.q) {
			continue
		}
		sel = append(sel, se)
	}
	switch {
	case since >= 0:
		slices.SortFunc(sel, func(x, y *storedEvent) int { return cmp.Compare(x.seq, y.seq) })
	case p.orderBy == "updated":
		slices.SortFunc(sel, func(x, y *storedEvent) int {
			return cmp.Or(x.updated.Compare(y.updated), cmp.Compare(x.ev.ID, y.ev.ID))
		})
	default:
		slices.SortFunc(sel, func(x, y *storedEvent) int {
			xs, _ := x.ev.span(s.loc)
			ys, _ := y.ev.span(s.loc)
			return cmp.Or(xs.Compare(ys), cmp.Compare(x.ev.ID, y.ev.ID))
		})
	}
	ids := make([]string, len(sel))
	for i, se := range sel {
		ids[i] = se.ev.ID
	}
	return ids
}

func matchesText(ev *Event, q string) bool {
	q = strings.ToLower(q)
	for _, f := range []string{ev.Summary, ev.Description, ev.Location} {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

func eventTypeOf(ev *Event) string {
	if ev.EventType == "" {
		return "default"
	}
	return ev.EventType
}

func iCalUID(id string) string { return id + "@google.com" }

func (s *Server) calendarUpdatedLocked(c *calendarData) time.Time {
	var latest time.Time
	for _, se := range c.events {
		if se.updated.After(latest) {
			latest = se.updated
		}
	}
	if latest.IsZero() {
		latest = s.now()
	}
	return latest
}

func formatUpdated(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// renderEvent returns the calendar#event for se. Cancelled events are
// minimal, as Google sends them in incremental sync.
func (s *Server) renderEvent(a *account, c *calendarData, se *storedEvent, respLoc *time.Location, base string) eventJSON {
	ev := &se.ev
	out := eventJSON{
		Kind:    "calendar#event",
		Etag:    etag(se.seq),
		ID:      ev.ID,
		Status:  cmp.Or(ev.Status, "confirmed"),
		Updated: formatUpdated(se.updated),
	}
	if se.deleted {
		out.Status = "cancelled"
		return out
	}
	seq := se.sequence
	out.HTMLLink = base + "/calendar/event?eid=" + base64.RawURLEncoding.EncodeToString([]byte(ev.ID+" "+c.id))
	out.Created = formatUpdated(se.created)
	out.Summary, out.Description, out.Location = ev.Summary, ev.Description, ev.Location
	out.Creator = &personJSON{Email: a.email, Self: true}
	if ev.OrganizerEmail == "" || ev.OrganizerEmail == a.email {
		out.Organizer = &personJSON{Email: c.id, Self: true}
		if !c.primary {
			out.Organizer.DisplayName = c.summary
		}
	} else {
		out.Organizer = &personJSON{Email: ev.OrganizerEmail}
		out.Creator = &personJSON{Email: ev.OrganizerEmail}
	}
	if ev.AllDay {
		out.Start = &timeJSON{Date: ev.Start.Format(time.DateOnly)}
		out.End = &timeJSON{Date: ev.End.Format(time.DateOnly)}
	} else {
		tz := cmp.Or(ev.TimeZone, s.opts.TimeZone)
		loc := respLoc
		if loc == nil {
			loc, _ = time.LoadLocation(tz) // validated when stored
		}
		out.Start = &timeJSON{DateTime: ev.Start.In(loc).Format(time.RFC3339), TimeZone: tz}
		out.End = &timeJSON{DateTime: ev.End.In(loc).Format(time.RFC3339), TimeZone: tz}
	}
	if ev.Transparency == "transparent" {
		out.Transparency = "transparent"
	}
	if ev.Visibility != "" && ev.Visibility != "default" {
		out.Visibility = ev.Visibility
	}
	out.ICalUID = iCalUID(ev.ID)
	out.Sequence = &seq
	for _, at := range ev.Attendees {
		out.Attendees = append(out.Attendees, attendeeJSON{
			Email: at.Email, DisplayName: at.DisplayName, Organizer: at.Organizer, Self: at.Self,
			Resource: at.Resource, Optional: at.Optional, ResponseStatus: cmp.Or(at.ResponseStatus, "needsAction"),
		})
	}
	out.HangoutLink = ev.HangoutLink
	out.Reminders = &remindersJSON{UseDefault: true}
	out.EventType = eventTypeOf(ev)
	switch out.EventType {
	case "outOfOffice":
		out.OutOfOfficeProperties = &oooJSON{
			AutoDeclineMode: cmp.Or(ev.AutoDeclineMode, "declineAllConflictingInvitations"),
			DeclineMessage:  ev.DeclineMessage,
		}
		out.Reminders = &remindersJSON{}
	case "focusTime":
		out.FocusTimeProperties = &focusTimeJSON{
			AutoDeclineMode: cmp.Or(ev.AutoDeclineMode, "declineOnlyNewConflictingInvitations"),
			DeclineMessage:  ev.DeclineMessage,
			ChatStatus:      cmp.Or(ev.ChatStatus, "doNotDisturb"),
		}
		out.Reminders = &remindersJSON{}
	case "workingLocation":
		out.WorkingLocationProps = map[string]any{"type": "homeOffice", "homeOffice": map[string]any{}}
		out.Transparency = "transparent"
		out.Visibility = "public"
	}
	return out
}

// channelJSON is the api#channel resource. Expiration is milliseconds since
// the epoch as a string; requests may also send it as a number.
type channelJSON struct {
	Kind        string            `json:"kind,omitempty"`
	ID          string            `json:"id"`
	ResourceID  string            `json:"resourceId,omitempty"`
	ResourceURI string            `json:"resourceUri,omitempty"`
	Token       string            `json:"token,omitempty"`
	Type        string            `json:"type,omitempty"`
	Address     string            `json:"address,omitempty"`
	Expiration  string            `json:"expiration,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
}

// UnmarshalJSON accepts expiration as a JSON string or number.
func (c *channelJSON) UnmarshalJSON(b []byte) error {
	type plain channelJSON
	var raw struct {
		plain
		Expiration json.RawMessage `json:"expiration"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = channelJSON(raw.plain)
	if len(raw.Expiration) > 0 && string(raw.Expiration) != "null" {
		e := strings.Trim(string(raw.Expiration), `"`)
		if _, err := strconv.ParseInt(e, 10, 64); err != nil && e != "" {
			return fmt.Errorf("expiration: %w", err)
		}
		c.Expiration = e
	}
	return nil
}

func parseError(w http.ResponseWriter) {
	writeAPIError(w, http.StatusBadRequest, "Parse Error", apiErrorItem{Domain: "global", Reason: "parseError", Message: "Parse Error"})
}

func readChannel(w http.ResponseWriter, r *http.Request) (*channelJSON, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	var ch channelJSON
	if err != nil || json.Unmarshal(body, &ch) != nil {
		parseError(w)
		return nil, false
	}
	return &ch, true
}

func (s *Server) handleEventsWatch(w http.ResponseWriter, r *http.Request, sub string) {
	q := r.URL.Query()
	var eventTypes []string
	for _, v := range q["eventTypes"] {
		for t := range strings.SplitSeq(v, ",") {
			if !validEventTypes[t] {
				invalidParam(w, "eventTypes", t)
				return
			}
			eventTypes = append(eventTypes, t)
		}
	}
	req, ok := readChannel(w, r)
	if !ok {
		return
	}
	switch {
	case req.ID == "":
		badParam(w, "required", "Required", "id")
		return
	case len(req.ID) > 64 || strings.ContainsFunc(req.ID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_+/=", r))
	}):
		badParam(w, "invalid", "Invalid channel id", "id")
		return
	case req.Type != "web_hook" && req.Type != "webhook":
		badParam(w, "invalid", fmt.Sprintf("Invalid value for: %s is not a valid value", req.Type), "type")
		return
	case req.Address == "":
		badParam(w, "required", "Required", "address")
		return
	}
	addr, err := url.Parse(req.Address)
	if err != nil || addr.Host == "" || (addr.Scheme != "https" && addr.Scheme != "http") {
		badParam(w, "invalid", "Invalid webhook address", "address")
		return
	}
	if addr.Scheme != "https" && !s.webhookHostAllowed(addr.Hostname()) {
		msg := "WebHook callback must be HTTPS: " + req.Address
		writeAPIError(w, http.StatusBadRequest, msg, apiErrorItem{Domain: "global", Reason: "push.webhookUrlNotHttps", Message: msg})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, c, err := s.calendarLocked(sub, r.PathValue("calendarId"))
	if err != nil {
		notFound(w)
		return
	}
	now := s.now()
	exp := now.Add(s.maxTTL)
	if ttl := req.Params["ttl"]; ttl != "" {
		n, err := strconv.ParseInt(ttl, 10, 64)
		if err != nil || n <= 0 {
			badParam(w, "invalid", "Invalid ttl value", "params.ttl")
			return
		}
		if t := now.Add(time.Duration(n) * time.Second); t.Before(exp) {
			exp = t
		}
	}
	if req.Expiration != "" {
		ms, _ := strconv.ParseInt(req.Expiration, 10, 64)
		if t := time.UnixMilli(ms); ms > 0 && t.Before(exp) {
			if !t.After(now) {
				badParam(w, "invalid", "Invalid expiration value", "expiration")
				return
			}
			exp = t
		}
	}
	for _, ch := range s.channels {
		if ch.ID == req.ID && s.liveLocked(ch) {
			writeAPIError(w, http.StatusBadRequest, "Channel id not unique",
				apiErrorItem{Domain: "global", Reason: "channelIdNotUnique", Message: "Channel id not unique"})
			return
		}
	}
	ch := &channel{Channel: Channel{
		ID:          req.ID,
		ResourceID:  c.resourceID,
		ResourceURI: s.baseURLLocked(r) + "/calendar/v3/calendars/" + pathEscapeID(r.PathValue("calendarId")) + "/events?alt=json",
		Token:       req.Token,
		Type:        req.Type,
		Address:     req.Address,
		Params:      req.Params,
		EventTypes:  eventTypes,
		Expiration:  time.UnixMilli(exp.UnixMilli()),
		Account:     sub,
		CalendarID:  c.id,
	}}
	s.channels = append(s.channels, ch)
	// Google confirms every new channel with a "sync" message (number 1).
	s.enqueueLocked(ch, StateSync)
	writeJSON(w, http.StatusOK, channelJSON{
		Kind:        "api#channel",
		ID:          ch.ID,
		ResourceID:  ch.ResourceID,
		ResourceURI: ch.ResourceURI,
		Token:       ch.Token,
		Expiration:  strconv.FormatInt(exp.UnixMilli(), 10),
	})
}

func (s *Server) baseURLLocked(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) handleChannelsStop(w http.ResponseWriter, r *http.Request, sub string) {
	req, ok := readChannel(w, r)
	if !ok {
		return
	}
	if req.ID == "" {
		badParam(w, "required", "Required", "id")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		// An expired channel is as unknown as a stopped one.
		if ch.ID == req.ID && ch.ResourceID == req.ResourceID && ch.Account == sub && s.liveLocked(ch) {
			ch.Stopped = true
			ch.queue = nil
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	msg := fmt.Sprintf("Channel '%s' not found for project 'googlefake'", req.ID)
	writeAPIError(w, http.StatusNotFound, msg, apiErrorItem{Domain: "global", Reason: "notFound", Message: msg})
}
