package graphfake

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// graphDateTime is the dateTimeTimeZone.dateTime layout: no offset, seven
// fractional digits.
const graphDateTime = "2006-01-02T15:04:05.0000000"

// zeroTime is how Graph writes an unset response time.
const zeroTime = "0001-01-01T00:00:00Z"

// pageState is what a $skiptoken stands for: the result fixed by the first
// page, so paging is stable while data changes.
type pageState struct {
	oid        string
	ids        []string
	offset     int
	snapshot   int64 // s.seq when the first page was cut
	epoch      int
	start, end time.Time
	delta      bool // the last page carries a deltaLink
	created    time.Time
}

// deltaState is what a $deltatoken stands for.
type deltaState struct {
	oid        string
	seq        int64
	epoch      int
	start, end time.Time
	created    time.Time
}

const maxTokens = 4096

// prefs are the parsed Prefer headers.
type prefs struct {
	pageSize int // 0: not given
	tzName   string
	loc      *time.Location
	applied  []string
}

// parsePrefer reads Prefer headers (several headers or comma-separated
// preferences). It reports false when outlook.timezone names an unknown zone.
func parsePrefer(r *http.Request, maxPage int) (prefs, string, bool) {
	p := prefs{tzName: "UTC", loc: time.UTC}
	for _, h := range r.Header.Values("Prefer") {
		for part := range strings.SplitSeq(h, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			k = strings.ToLower(strings.TrimSpace(k))
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch k {
			case "odata.maxpagesize":
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					p.pageSize = min(n, maxPage)
					p.applied = append(p.applied, "odata.maxpagesize="+strconv.Itoa(p.pageSize))
				}
			case "outlook.timezone":
				loc, ok := lookupZone(v)
				if !ok {
					return p, v, false
				}
				p.tzName, p.loc = v, loc
				p.applied = append(p.applied, `outlook.timezone="`+v+`"`)
			case "outlook.body-content-type":
				if v == "text" || v == "html" {
					p.applied = append(p.applied, `outlook.body-content-type="`+v+`"`)
				}
			}
		}
	}
	return p, "", true
}

func (s *Server) timeZoneNotSupported(w http.ResponseWriter, r *http.Request, tz string) {
	s.graphError(w, r, http.StatusBadRequest, "TimeZoneNotSupportedException",
		"A valid TimeZone value must be specified. The following TimeZone value is not supported: '"+tz+"'.")
}

// queryGet returns a query parameter by case-insensitive name, as Graph
// treats them.
func queryGet(q url.Values, name string) (string, bool) {
	for k, vs := range q {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0], true
		}
	}
	return "", false
}

// userPathPrefix returns "/v1.0/me" or "/v1.0/users/{key}" as the request
// named the user, for next and delta links.
func userPathPrefix(r *http.Request) string {
	rest := r.URL.Path[len("/v1.0/"):]
	seg := strings.Split(rest, "/")
	if strings.EqualFold(seg[0], "users") && len(seg) > 1 {
		return "/v1.0/users/" + url.PathEscape(seg[1])
	}
	return "/v1.0/me"
}

// handleDelta serves GET {user}/calendarView/delta.
func (s *Server) handleDelta(w http.ResponseWriter, r *http.Request, g *graphCtx) {
	s.serveCalendarView(w, r, g, true)
}

// handleCalendarView serves GET {user}/calendarView (no delta link; paged
// with @odata.nextLink).
func (s *Server) handleCalendarView(w http.ResponseWriter, r *http.Request, g *graphCtx) {
	s.serveCalendarView(w, r, g, false)
}

func (s *Server) serveCalendarView(w http.ResponseWriter, r *http.Request, g *graphCtx, delta bool) {
	p, badTZ, ok := parsePrefer(r, s.opts.MaxPageSize)
	if !ok {
		s.timeZoneNotSupported(w, r, badTZ)
		return
	}
	q := r.URL.Query()
	skip, hasSkip := queryGet(q, "$skiptoken")
	deltaTok, hasDelta := queryGet(q, "$deltatoken")
	var start, end time.Time
	if !hasSkip && !(delta && hasDelta) {
		sv, ok1 := queryGet(q, "startDateTime")
		ev, ok2 := queryGet(q, "endDateTime")
		if !ok1 || !ok2 {
			s.graphError(w, r, http.StatusBadRequest, CodeErrorInvalidParameter,
				"This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.")
			return
		}
		var err1, err2 error
		start, err1 = parseGraphTime(sv, time.UTC)
		end, err2 = parseGraphTime(ev, time.UTC)
		if err1 != nil || err2 != nil {
			s.graphError(w, r, http.StatusBadRequest, CodeErrorInvalidParameter,
				"The parameter 'StartDateTime' or 'EndDateTime' is not a valid ISO 8601 date and time.")
			return
		}
		if !end.After(start) {
			s.graphError(w, r, http.StatusBadRequest, CodeErrorInvalidParameter, "The EndDateTime must be later than the StartDateTime.")
			return
		}
	}
	pageSize := s.opts.DefaultPageSize
	if p.pageSize > 0 {
		pageSize = p.pageSize
	} else if top, ok := queryGet(q, "$top"); ok && !delta {
		if n, err := strconv.Atoi(top); err == nil && n > 0 {
			pageSize = min(n, s.opts.MaxPageSize)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	u := g.target
	now := s.now()
	var ps *pageState
	switch {
	case hasSkip:
		ps = s.pages[skip]
		if ps == nil || ps.oid != u.oid || ps.epoch != u.deltaEpoch || ps.delta != delta {
			s.syncStateErrorLocked(w, r)
			return
		}
		cp := *ps
		ps = &cp
	case delta && hasDelta:
		ds := s.deltas[deltaTok]
		if ds == nil || ds.oid != u.oid || ds.epoch != u.deltaEpoch {
			s.syncStateErrorLocked(w, r)
			return
		}
		ps = &pageState{oid: u.oid, ids: s.changedSinceLocked(u, ds.seq), snapshot: s.seq, epoch: u.deltaEpoch,
			start: ds.start, end: ds.end, delta: true}
	default:
		ps = &pageState{oid: u.oid, ids: s.inWindowLocked(u, start, end), snapshot: s.seq, epoch: u.deltaEpoch,
			start: start, end: end, delta: delta}
	}
	stop := min(ps.offset+pageSize, len(ps.ids))
	ids := ps.ids[ps.offset:stop]
	b := s.baseLocked(r)
	prefix := b + userPathPrefix(r) + "/calendarView"
	if delta {
		prefix += "/delta"
	}
	out := map[string]any{"@odata.context": b + "/v1.0/$metadata#Collection(event)"}
	if stop < len(ps.ids) {
		next := *ps
		next.offset = stop
		next.created = now
		tok := randomToken(32)
		s.sweepPagesLocked(now)
		s.pages[tok] = &next
		out["@odata.nextLink"] = prefix + "?$skiptoken=" + tok
	} else if delta {
		tok := randomToken(32)
		s.sweepPagesLocked(now)
		s.deltas[tok] = &deltaState{oid: u.oid, seq: ps.snapshot, epoch: ps.epoch, start: ps.start, end: ps.end, created: now}
		out["@odata.deltaLink"] = prefix + "?$deltatoken=" + tok
	}
	value := make([]any, 0, len(ids))
	for _, id := range ids {
		se := u.events[id]
		if s.visibleLocked(u, se, ps.start, ps.end) {
			value = append(value, s.renderEvent(u, se, p, b))
		} else {
			value = append(value, map[string]any{
				"@odata.type": "#microsoft.graph.event",
				"id":          id,
				"@removed":    map[string]string{"reason": "deleted"},
			})
		}
	}
	out["value"] = value
	if len(p.applied) > 0 {
		w.Header().Set("Preference-Applied", strings.Join(p.applied, ", "))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) syncStateErrorLocked(w http.ResponseWriter, r *http.Request) {
	// graphError takes no lock on s.mu: it only reads s.now.
	s.graphError(w, r, s.opts.SyncStateStatus, s.opts.SyncStateCode,
		"The sync state is no longer valid (it expired or was reset). Start a new full sync without a delta token.")
}

func (s *Server) sweepPagesLocked(now time.Time) {
	if len(s.pages) >= maxTokens {
		for tok, p := range s.pages {
			if now.Sub(p.created) > time.Hour {
				delete(s.pages, tok)
			}
		}
	}
	if len(s.deltas) >= maxTokens {
		for tok, d := range s.deltas {
			if now.Sub(d.created) > 7*24*time.Hour {
				delete(s.deltas, tok)
			}
		}
	}
}

// visibleLocked reports whether se is returned in full for a view of
// [start, end); otherwise delta reports it as removed.
func (s *Server) visibleLocked(u *user, se *storedEvent, start, end time.Time) bool {
	if se == nil || se.deleted || se.ev.Type == "seriesMaster" || (se.ev.IsCancelled && s.opts.CancelledAsRemoved) {
		return false
	}
	es, ee := se.ev.span(u.loc)
	return es.Before(end) && ee.After(start)
}

// inWindowLocked returns the IDs of the events in [start, end), by start.
func (s *Server) inWindowLocked(u *user, start, end time.Time) []string {
	var sel []*storedEvent
	for _, se := range u.events {
		if s.visibleLocked(u, se, start, end) {
			sel = append(sel, se)
		}
	}
	slices.SortFunc(sel, func(a, b *storedEvent) int {
		as, _ := a.ev.span(u.loc)
		bs, _ := b.ev.span(u.loc)
		return cmp.Or(as.Compare(bs), strings.Compare(a.ev.ID, b.ev.ID))
	})
	ids := make([]string, len(sel))
	for i, se := range sel {
		ids[i] = se.ev.ID
	}
	return ids
}

// changedSinceLocked returns the IDs of the events changed after seq, in
// the order they changed.
func (s *Server) changedSinceLocked(u *user, seq int64) []string {
	var sel []*storedEvent
	for _, se := range u.events {
		if se.seq > seq {
			sel = append(sel, se)
		}
	}
	slices.SortFunc(sel, func(a, b *storedEvent) int { return cmp.Compare(a.seq, b.seq) })
	ids := make([]string, len(sel))
	for i, se := range sel {
		ids[i] = se.ev.ID
	}
	return ids
}

type emailAddressJSON struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

type dateTimeTimeZoneJSON struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

// renderEvent returns the event resource as Graph writes it, times in the
// zone of p (all-day events as floating midnights, as Outlook does).
func (s *Server) renderEvent(u *user, se *storedEvent, p prefs, base string) map[string]any {
	ev := &se.ev
	changeKey := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("graphfake-%d", se.seq)))
	isOrganizer := ev.OrganizerEmail == "" || strings.EqualFold(ev.OrganizerEmail, u.email)
	organizer := emailAddressJSON{Name: u.name, Address: u.email}
	if !isOrganizer {
		organizer = emailAddressJSON{Name: cmp.Or(ev.OrganizerName, ev.OrganizerEmail), Address: ev.OrganizerEmail}
	}
	response := ev.Response
	if response == "" {
		response = "notResponded"
		if isOrganizer {
			response = "organizer"
		}
	}
	var start, end string
	if ev.IsAllDay {
		start = dateOf(ev.Start).Format(graphDateTime)
		end = dateOf(ev.End).Format(graphDateTime)
	} else {
		start = ev.Start.In(p.loc).Format(graphDateTime)
		end = ev.End.In(p.loc).Format(graphDateTime)
	}
	attendees := make([]map[string]any, 0, len(ev.Attendees))
	for _, a := range ev.Attendees {
		attendees = append(attendees, map[string]any{
			"type":         cmp.Or(a.Type, "required"),
			"status":       map[string]string{"response": cmp.Or(a.Response, "none"), "time": formatResponseTime(a.ResponseTime)},
			"emailAddress": emailAddressJSON{Name: a.Name, Address: a.Address},
		})
	}
	var seriesMaster any
	if ev.SeriesMasterID != "" {
		seriesMaster = ev.SeriesMasterID
	}
	var onlineMeeting any
	provider := "unknown"
	if ev.OnlineMeetingURL != "" {
		onlineMeeting = map[string]string{"joinUrl": ev.OnlineMeetingURL}
		provider = "teamsForBusiness"
	}
	return map[string]any{
		"@odata.type":                "#microsoft.graph.event",
		"@odata.etag":                `W/"` + changeKey + `"`,
		"id":                         ev.ID,
		"createdDateTime":            se.created.UTC().Format(graphDateTime + "Z"),
		"lastModifiedDateTime":       se.modified.UTC().Format(graphDateTime + "Z"),
		"changeKey":                  changeKey,
		"categories":                 []string{},
		"transactionId":              nil,
		"originalStartTimeZone":      u.tz,
		"originalEndTimeZone":        u.tz,
		"iCalUId":                    iCalUID(ev.ID),
		"reminderMinutesBeforeStart": 15,
		"isReminderOn":               true,
		"hasAttachments":             false,
		"subject":                    ev.Subject,
		"bodyPreview":                "",
		"importance":                 "normal",
		"sensitivity":                cmp.Or(ev.Sensitivity, "normal"),
		"isAllDay":                   ev.IsAllDay,
		"isCancelled":                ev.IsCancelled,
		"isOrganizer":                isOrganizer,
		"responseRequested":          true,
		"seriesMasterId":             seriesMaster,
		"showAs":                     cmp.Or(ev.ShowAs, "busy"),
		"type":                       cmp.Or(ev.Type, "singleInstance"),
		"webLink":                    base + "/owa/?itemid=" + url.QueryEscape(ev.ID) + "&exvsurl=1&path=/calendar/item",
		"onlineMeetingUrl":           nil,
		"isOnlineMeeting":            ev.OnlineMeetingURL != "",
		"onlineMeetingProvider":      provider,
		"allowNewTimeProposals":      true,
		"isDraft":                    false,
		"hideAttendees":              false,
		"recurrence":                 nil,
		"onlineMeeting":              onlineMeeting,
		"responseStatus":             map[string]string{"response": response, "time": formatResponseTime(ev.ResponseTime)},
		"body":                       map[string]string{"contentType": "html", "content": ""},
		"start":                      dateTimeTimeZoneJSON{DateTime: start, TimeZone: p.tzName},
		"end":                        dateTimeTimeZoneJSON{DateTime: end, TimeZone: p.tzName},
		"location":                   map[string]any{"displayName": ev.Location, "locationType": "default", "uniqueIdType": "unknown"},
		"locations":                  []any{},
		"attendees":                  attendees,
		"organizer":                  map[string]any{"emailAddress": organizer},
	}
}

// iCalUID derives a stable iCalendar UID from an event ID, in Outlook's
// shape.
func iCalUID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "040000008200E00074C5B7101A82E008" + strings.ToUpper(hex.EncodeToString(sum[:16]))
}

func formatResponseTime(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.UTC().Format(time.RFC3339)
}

// parseGraphTime parses an ISO 8601 date and time. Values without an offset
// are in loc.
func parseGraphTime(v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("graphfake: %q is not an ISO 8601 date and time", v)
}

// windowsZones maps Windows time zone names (as Outlook uses them) to IANA
// names. Lookups are case-insensitive; IANA names are accepted as well.
var windowsZones = map[string]string{
	"utc":                             "UTC",
	"dateline standard time":          "Etc/GMT+12",
	"hawaiian standard time":          "Pacific/Honolulu",
	"alaskan standard time":           "America/Anchorage",
	"pacific standard time":           "America/Los_Angeles",
	"us mountain standard time":       "America/Phoenix",
	"mountain standard time":          "America/Denver",
	"central standard time":           "America/Chicago",
	"central standard time (mexico)":  "America/Mexico_City",
	"canada central standard time":    "America/Regina",
	"central america standard time":   "America/Guatemala",
	"eastern standard time":           "America/New_York",
	"sa pacific standard time":        "America/Bogota",
	"atlantic standard time":          "America/Halifax",
	"newfoundland standard time":      "America/St_Johns",
	"e. south america standard time":  "America/Sao_Paulo",
	"argentina standard time":         "America/Argentina/Buenos_Aires",
	"pacific sa standard time":        "America/Santiago",
	"greenwich standard time":         "Atlantic/Reykjavik",
	"gmt standard time":               "Europe/London",
	"w. europe standard time":         "Europe/Berlin",
	"central europe standard time":    "Europe/Budapest",
	"central european standard time":  "Europe/Warsaw",
	"romance standard time":           "Europe/Paris",
	"e. europe standard time":         "Europe/Chisinau",
	"fle standard time":               "Europe/Kiev",
	"gtb standard time":               "Europe/Bucharest",
	"turkey standard time":            "Europe/Istanbul",
	"russian standard time":           "Europe/Moscow",
	"israel standard time":            "Asia/Jerusalem",
	"egypt standard time":             "Africa/Cairo",
	"south africa standard time":      "Africa/Johannesburg",
	"w. central africa standard time": "Africa/Lagos",
	"arab standard time":              "Asia/Riyadh",
	"arabian standard time":           "Asia/Dubai",
	"iran standard time":              "Asia/Tehran",
	"pakistan standard time":          "Asia/Karachi",
	"india standard time":             "Asia/Kolkata",
	"nepal standard time":             "Asia/Kathmandu",
	"bangladesh standard time":        "Asia/Dhaka",
	"se asia standard time":           "Asia/Bangkok",
	"china standard time":             "Asia/Shanghai",
	"singapore standard time":         "Asia/Singapore",
	"taipei standard time":            "Asia/Taipei",
	"w. australia standard time":      "Australia/Perth",
	"tokyo standard time":             "Asia/Tokyo",
	"korea standard time":             "Asia/Seoul",
	"cen. australia standard time":    "Australia/Adelaide",
	"aus central standard time":       "Australia/Darwin",
	"e. australia standard time":      "Australia/Brisbane",
	"aus eastern standard time":       "Australia/Sydney",
	"tasmania standard time":          "Australia/Hobart",
	"new zealand standard time":       "Pacific/Auckland",
}

// lookupZone resolves a Windows or IANA time zone name.
func lookupZone(name string) (*time.Location, bool) {
	if name == "" {
		return nil, false
	}
	if iana, ok := windowsZones[strings.ToLower(name)]; ok {
		name = iana
	}
	if name == "Local" {
		return nil, false
	}
	loc, err := time.LoadLocation(name)
	return loc, err == nil
}
