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

// graphTime parses Graph's dateTimeTimeZone ("2026-12-01T09:00:00.0000000", "UTC").
func graphTime(dt models.DateTimeTimeZoneable) (time.Time, bool) {
	if dt == nil || dt.GetDateTime() == nil {
		return time.Time{}, false
	}
	loc := time.UTC
	if tz := deref(dt.GetTimeZone()); tz != "" && tz != "UTC" {
		if l, err := time.LoadLocation(tz); err == nil {
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
