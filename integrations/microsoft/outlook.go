package microsoft

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// FullSyncPast is how far back a full sync's window starts.
const FullSyncPast = 24 * time.Hour

// SyncResult is what an Outlook sync found (the same fields as the scheduler's).
type SyncResult struct {
	Full      bool
	Events    []presence.Event
	Deleted   []string
	NextToken string
}

// syncToken is what we keep between syncs: the delta link and the end of its window (a delta
// query's window is fixed when it starts, so a sync restarts before the window runs short).
type syncToken struct {
	Link  string    `json:"link"`
	Until time.Time `json:"until"`
}

// Sync brings the person's Outlook calendar up to date through calendarView/delta: a full
// sync over [now-24h, now+horizon] when token is empty, no longer valid (410), or its window
// ends within half a horizon; otherwise the changes since the delta link. Events are in UTC
// (Prefer: outlook.timezone="UTC"); titles are read only when titleEmoji is on, for their
// leading emoji, and dropped.
func (c *Client) Sync(ctx context.Context, cred provider.Credential, token string, now time.Time, horizon time.Duration, titleEmoji bool) (SyncResult, error) {
	g, err := c.graph(cred.AccessToken)
	if err != nil {
		return SyncResult{}, err
	}
	var st syncToken
	if token != "" && json.Unmarshal([]byte(token), &st) == nil && st.Link != "" && st.Until.Sub(now) > horizon/2 {
		res, err := c.syncPages(ctx, g, st.Link, nil, titleEmoji)
		if err == nil {
			res.NextToken = encodeToken(res.NextToken, st.Until)
			return res, nil
		}
		if !isGone(err) {
			return SyncResult{}, mapErr("calendarView/delta", err)
		}
	}
	until := now.Add(horizon).UTC()
	start := now.Add(-FullSyncPast).UTC().Format(time.RFC3339)
	end := until.Format(time.RFC3339)
	res, err := c.syncPages(ctx, g, "", &users.ItemCalendarViewDeltaRequestBuilderGetQueryParameters{StartDateTime: &start, EndDateTime: &end}, titleEmoji)
	if err != nil {
		return SyncResult{}, mapErr("calendarView/delta", err)
	}
	res.Full = true
	res.NextToken = encodeToken(res.NextToken, until)
	return res, nil
}

func encodeToken(link string, until time.Time) string {
	if link == "" {
		return ""
	}
	b, _ := json.Marshal(syncToken{Link: link, Until: until})
	return string(b)
}

func isGone(err error) bool {
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		return oe.ResponseStatusCode == http.StatusGone
	}
	var ae *abs.ApiError
	return errors.As(err, &ae) && ae.ResponseStatusCode == http.StatusGone
}

// syncPages follows @odata.nextLink from link (or from the first request) to the page with the
// @odata.deltaLink, returned as NextToken.
func (c *Client) syncPages(ctx context.Context, g graphClient, link string, q *users.ItemCalendarViewDeltaRequestBuilderGetQueryParameters, titleEmoji bool) (SyncResult, error) {
	headers := abs.NewRequestHeaders()
	headers.Add("Prefer", `outlook.timezone="UTC"`)
	headers.Add("Prefer", "odata.maxpagesize=100")
	cfg := &users.ItemCalendarViewDeltaRequestBuilderGetRequestConfiguration{Headers: headers, QueryParameters: q}
	var res SyncResult
	for page := 0; ; page++ {
		if page > 1000 {
			return res, errors.New("microsoft: calendarView/delta: more than 1000 pages")
		}
		b := g.Me().CalendarView().Delta()
		if link != "" {
			b = b.WithUrl(link)
			cfg.QueryParameters = nil
		}
		resp, err := b.GetAsDeltaGetResponse(ctx, cfg)
		if err != nil {
			return res, err
		}
		for _, e := range resp.GetValue() {
			if e == nil || e.GetId() == nil {
				continue
			}
			if _, removed := e.GetAdditionalData()["@removed"]; removed || deref(e.GetIsCancelled()) {
				res.Deleted = append(res.Deleted, *e.GetId())
				continue
			}
			if ev, ok := toEvent(e, titleEmoji); ok {
				res.Events = append(res.Events, ev)
			} else {
				res.Deleted = append(res.Deleted, *e.GetId())
			}
		}
		if next := resp.GetOdataNextLink(); next != nil && *next != "" {
			link = *next
			continue
		}
		if delta := resp.GetOdataDeltaLink(); delta != nil {
			res.NextToken = *delta
		}
		return res, nil
	}
}

// graphClient is the generated Graph client (named for readability).
type graphClient = interface {
	Me() *users.UserItemRequestBuilder
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// graphTime parses Graph's dateTimeTimeZone ("2026-12-01T09:00:00.0000000", "UTC"). The zone
// may be an IANA name or, as Graph mostly writes it, a Windows one ("Pacific Standard Time");
// events are asked for in UTC, but a status message's expiry comes back in the zone it was
// set in. An unknown zone is read as UTC.
func graphTime(dt models.DateTimeTimeZoneable) (time.Time, bool) {
	if dt == nil || dt.GetDateTime() == nil {
		return time.Time{}, false
	}
	loc := time.UTC
	if tz := strings.TrimSpace(deref(dt.GetTimeZone())); tz != "" && tz != "UTC" {
		if iana, ok := windowsZones[strings.ToLower(tz)]; ok {
			tz = iana
		}
		if l, err := time.LoadLocation(tz); err == nil && tz != "Local" {
			loc = l
		}
	}
	s := strings.TrimSuffix(*dt.GetDateTime(), "Z")
	t, err := time.ParseInLocation("2006-01-02T15:04:05.9999999", s, loc)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// toEvent maps an Outlook event into the planner's terms; nothing of its content is kept
// except, when asked, the title's leading emoji.
func toEvent(e models.Eventable, titleEmoji bool) (presence.Event, bool) {
	start, ok1 := graphTime(e.GetStart())
	end, ok2 := graphTime(e.GetEnd())
	if !ok1 || !ok2 || !end.After(start) {
		return presence.Event{}, false
	}
	ev := presence.Event{ID: *e.GetId(), Type: presence.EventDefault, Start: start, End: end}
	if deref(e.GetIsAllDay()) {
		ev.AllDay = true
		ev.Start = time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC)
		ev.End = time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC)
	}
	if s := e.GetShowAs(); s != nil {
		switch *s {
		case models.FREE_FREEBUSYSTATUS:
			ev.Busy = presence.BusyFree
		case models.TENTATIVE_FREEBUSYSTATUS:
			ev.Busy = presence.BusyTentative
		case models.OOF_FREEBUSYSTATUS:
			ev.Busy, ev.Type = presence.BusyOutOfOffice, presence.EventOutOfOffice
		case models.WORKINGELSEWHERE_FREEBUSYSTATUS:
			ev.Busy = presence.BusyWorkingElsewhere
		default:
			ev.Busy = presence.BusyBusy
		}
	}
	if rs := e.GetResponseStatus(); rs != nil && rs.GetResponse() != nil {
		switch *rs.GetResponse() {
		case models.DECLINED_RESPONSETYPE:
			ev.Response = presence.ResponseDeclined
		case models.TENTATIVELYACCEPTED_RESPONSETYPE:
			ev.Response = presence.ResponseTentative
		case models.ACCEPTED_RESPONSETYPE, models.ORGANIZER_RESPONSETYPE:
			ev.Response = presence.ResponseAccepted
		case models.NOTRESPONDED_RESPONSETYPE:
			ev.Response = presence.ResponsePending
		}
	}
	others := !deref(e.GetIsOrganizer()) && e.GetIsOrganizer() != nil
	for _, a := range e.GetAttendees() {
		if a == nil {
			continue
		}
		if t := a.GetTypeEscaped(); t != nil && *t == models.RESOURCE_ATTENDEETYPE {
			continue
		}
		others = true
	}
	ev.HasOtherAttendees = others
	if titleEmoji {
		ev.Emoji = presence.LeadingEmoji(deref(e.GetSubject()))
	}
	return ev, true
}

// windowsZones maps Windows time zone names (lower case), as Graph writes them in
// dateTimeTimeZone, to IANA names (CLDR windowsZones.xml, territory 001).
var windowsZones = map[string]string{
	"utc":                             "UTC",
	"coordinated universal time":      "UTC",
	"dateline standard time":          "Etc/GMT+12",
	"utc-11":                          "Etc/GMT+11",
	"hawaiian standard time":          "Pacific/Honolulu",
	"aleutian standard time":          "America/Adak",
	"alaskan standard time":           "America/Anchorage",
	"pacific standard time (mexico)":  "America/Tijuana",
	"utc-08":                          "Etc/GMT+8",
	"pacific standard time":           "America/Los_Angeles",
	"us mountain standard time":       "America/Phoenix",
	"mountain standard time (mexico)": "America/Mazatlan",
	"mountain standard time":          "America/Denver",
	"central america standard time":   "America/Guatemala",
	"central standard time":           "America/Chicago",
	"central standard time (mexico)":  "America/Mexico_City",
	"canada central standard time":    "America/Regina",
	"sa pacific standard time":        "America/Bogota",
	"eastern standard time (mexico)":  "America/Cancun",
	"eastern standard time":           "America/New_York",
	"us eastern standard time":        "America/Indiana/Indianapolis",
	"venezuela standard time":         "America/Caracas",
	"paraguay standard time":          "America/Asuncion",
	"atlantic standard time":          "America/Halifax",
	"central brazilian standard time": "America/Cuiaba",
	"sa western standard time":        "America/La_Paz",
	"pacific sa standard time":        "America/Santiago",
	"newfoundland standard time":      "America/St_Johns",
	"e. south america standard time":  "America/Sao_Paulo",
	"sa eastern standard time":        "America/Cayenne",
	"argentina standard time":         "America/Argentina/Buenos_Aires",
	"greenland standard time":         "America/Godthab",
	"montevideo standard time":        "America/Montevideo",
	"utc-02":                          "Etc/GMT+2",
	"azores standard time":            "Atlantic/Azores",
	"cape verde standard time":        "Atlantic/Cape_Verde",
	"gmt standard time":               "Europe/London",
	"greenwich standard time":         "Atlantic/Reykjavik",
	"morocco standard time":           "Africa/Casablanca",
	"w. europe standard time":         "Europe/Berlin",
	"central europe standard time":    "Europe/Budapest",
	"romance standard time":           "Europe/Paris",
	"central european standard time":  "Europe/Warsaw",
	"w. central africa standard time": "Africa/Lagos",
	"jordan standard time":            "Asia/Amman",
	"gtb standard time":               "Europe/Bucharest",
	"middle east standard time":       "Asia/Beirut",
	"egypt standard time":             "Africa/Cairo",
	"e. europe standard time":         "Europe/Chisinau",
	"syria standard time":             "Asia/Damascus",
	"south africa standard time":      "Africa/Johannesburg",
	"fle standard time":               "Europe/Kiev",
	"israel standard time":            "Asia/Jerusalem",
	"kaliningrad standard time":       "Europe/Kaliningrad",
	"arabic standard time":            "Asia/Baghdad",
	"turkey standard time":            "Europe/Istanbul",
	"arab standard time":              "Asia/Riyadh",
	"belarus standard time":           "Europe/Minsk",
	"russian standard time":           "Europe/Moscow",
	"e. africa standard time":         "Africa/Nairobi",
	"iran standard time":              "Asia/Tehran",
	"arabian standard time":           "Asia/Dubai",
	"azerbaijan standard time":        "Asia/Baku",
	"georgian standard time":          "Asia/Tbilisi",
	"caucasus standard time":          "Asia/Yerevan",
	"afghanistan standard time":       "Asia/Kabul",
	"west asia standard time":         "Asia/Tashkent",
	"ekaterinburg standard time":      "Asia/Yekaterinburg",
	"pakistan standard time":          "Asia/Karachi",
	"india standard time":             "Asia/Kolkata",
	"sri lanka standard time":         "Asia/Colombo",
	"nepal standard time":             "Asia/Kathmandu",
	"central asia standard time":      "Asia/Almaty",
	"bangladesh standard time":        "Asia/Dhaka",
	"myanmar standard time":           "Asia/Yangon",
	"se asia standard time":           "Asia/Bangkok",
	"n. central asia standard time":   "Asia/Novosibirsk",
	"north asia standard time":        "Asia/Krasnoyarsk",
	"china standard time":             "Asia/Shanghai",
	"north asia east standard time":   "Asia/Irkutsk",
	"singapore standard time":         "Asia/Singapore",
	"w. australia standard time":      "Australia/Perth",
	"taipei standard time":            "Asia/Taipei",
	"ulaanbaatar standard time":       "Asia/Ulaanbaatar",
	"tokyo standard time":             "Asia/Tokyo",
	"korea standard time":             "Asia/Seoul",
	"yakutsk standard time":           "Asia/Yakutsk",
	"cen. australia standard time":    "Australia/Adelaide",
	"aus central standard time":       "Australia/Darwin",
	"e. australia standard time":      "Australia/Brisbane",
	"aus eastern standard time":       "Australia/Sydney",
	"west pacific standard time":      "Pacific/Port_Moresby",
	"tasmania standard time":          "Australia/Hobart",
	"vladivostok standard time":       "Asia/Vladivostok",
	"central pacific standard time":   "Pacific/Guadalcanal",
	"utc+12":                          "Etc/GMT-12",
	"new zealand standard time":       "Pacific/Auckland",
	"fiji standard time":              "Pacific/Fiji",
	"tonga standard time":             "Pacific/Tongatapu",
	"samoa standard time":             "Pacific/Apia",
	"line islands standard time":      "Pacific/Kiritimati",
}
