package google

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/calendar/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// FullSyncWindow is how far back a full sync reaches: events that ended more than this before
// now are not listed. (The sync token it yields then reports every later change, whatever the
// event's time.)
const FullSyncWindow = 24 * time.Hour

// DefaultRetryAfter is the wait reported for a rate limit that names none.
const DefaultRetryAfter = 30 * time.Second

// maxPages bounds one sync's paging, against a server that never stops.
const maxPages = 1000

// SyncOptions are the person's choices that change what a sync extracts.
type SyncOptions struct {
	// TitleEmoji extracts the leading emoji of each event's title into Event.Emoji. When off,
	// titles are not even requested from Google.
	TitleEmoji bool
}

// SyncResult is what a sync found; it has the fields of scheduler.SyncResult.
type SyncResult struct {
	// Full means Events are all the calendar's events in the window: replace what is stored.
	// Otherwise Events and Deleted are changes since the sync token.
	Full bool
	// Events carry Google's event IDs; the caller sets their Source.
	Events []presence.Event
	// Deleted are the IDs of events deleted or cancelled since the token.
	Deleted []string
	// NextToken is the sync token for the next incremental sync.
	NextToken string
}

// Sync brings one calendar ("primary" or a calendar ID) up to date. With an empty syncToken it
// lists every event that ends after now - FullSyncWindow (Full true); with a token it lists the
// changes since (deleted and cancelled events in Deleted), and falls back to a full sync when
// Google answers 410 Gone (token expired). Recurring events are expanded into instances.
// Events that never block time (working location, birthdays, events from Gmail) are left out.
//
// Errors: a rate limit is a *provider.RateLimitedError; anything else (5xx, network) is a
// plain wrapped error. A 401 with a refresh token is a *provider.RevokedError with reason
// "token_expired": Google refused the access token before its expiry, and the caller refreshes
// (storing the new token, so later syncs use it) and calls again once; a refused refresh
// (invalid_grant) then means the grant is gone. (Sync used to refresh and retry by itself
// without returning the new token, so every later sync was refused and refreshed again.)
func (c *Client) Sync(ctx context.Context, cred provider.Credential, calendarID, syncToken string, now time.Time, opt SyncOptions) (SyncResult, error) {
	if calendarID == "" {
		calendarID = "primary"
	}
	res, err := c.sync(ctx, cred.AccessToken, calendarID, syncToken, now, opt)
	if err != nil && isStatus(err, http.StatusUnauthorized) && cred.RefreshToken != "" {
		return SyncResult{}, fmt.Errorf("google: events.list: %w", &provider.RevokedError{Reason: "token_expired"})
	}
	if err != nil {
		return SyncResult{}, fmt.Errorf("google: events.list: %w", apiError(err, now, "events.list"))
	}
	return res, nil
}

// sync runs one sync with an access token; errors are the API's, unmapped.
func (c *Client) sync(ctx context.Context, accessToken, calendarID, syncToken string, now time.Time, opt SyncOptions) (SyncResult, error) {
	svc, err := c.calendarService(ctx, accessToken)
	if err != nil {
		return SyncResult{}, err
	}
	if syncToken != "" {
		res, err := listEvents(ctx, svc, calendarID, syncToken, now, opt)
		if err == nil || !isStatus(err, http.StatusGone) {
			return res, err
		}
		// The token expired (fullSyncRequired, updatedMinTooLongAgo): start over.
	}
	return listEvents(ctx, svc, calendarID, "", now, opt)
}

// calendarService returns a Calendar API client sending accessToken.
func (c *Client) calendarService(ctx context.Context, accessToken string) (*calendar.Service, error) {
	base := c.cfg.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc := &http.Client{
		Transport: &oauth2.Transport{
			Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}),
			Base:   base,
		},
		Timeout: c.cfg.HTTPClient.Timeout,
	}
	return calendar.NewService(ctx, option.WithEndpoint(c.cfg.APIURL+"calendar/v3/"), option.WithHTTPClient(hc))
}

// listEvents pages through one events.list query: a full sync when syncToken is empty.
func listEvents(ctx context.Context, svc *calendar.Service, calendarID, syncToken string, now time.Time, opt SyncOptions) (SyncResult, error) {
	res := SyncResult{Full: syncToken == ""}
	// Ask only for what we use: no descriptions, locations or attendee addresses, and no
	// titles unless the title emoji is wanted.
	item := "id,status,eventType,transparency,start,end,attendees(self,resource,responseStatus)"
	if opt.TitleEmoji {
		item += ",summary"
	}
	fields := googleapi.Field("nextPageToken,nextSyncToken,items(" + item + ")")
	pageToken := ""
	for range maxPages {
		call := svc.Events.List(calendarID).SingleEvents(true).Fields(fields).Context(ctx)
		if syncToken != "" {
			call = call.SyncToken(syncToken)
		} else {
			call = call.TimeMin(now.Add(-FullSyncWindow).UTC().Format(time.RFC3339))
		}
		if pageToken != "" {
			call = call.PageToken(pageToken)
		}
		page, err := call.Do()
		if err != nil {
			return SyncResult{}, err
		}
		for _, it := range page.Items {
			if it == nil || it.Id == "" {
				continue
			}
			if it.Status == "cancelled" {
				res.Deleted = append(res.Deleted, it.Id)
				continue
			}
			if ev, ok := toEvent(it, opt); ok {
				res.Events = append(res.Events, ev)
			}
		}
		if page.NextPageToken == "" {
			if page.NextSyncToken == "" {
				return SyncResult{}, errors.New("the last page has no nextSyncToken")
			}
			res.NextToken = page.NextSyncToken
			return res, nil
		}
		pageToken = page.NextPageToken
	}
	return SyncResult{}, fmt.Errorf("more than %d pages", maxPages)
}

// toEvent maps a Google event to a presence.Event. It reports false for events that never
// block time and for events without a usable start and end.
func toEvent(it *calendar.Event, opt SyncOptions) (presence.Event, bool) {
	ev := presence.Event{ID: it.Id, Type: presence.EventDefault, Busy: presence.BusyBusy}
	switch it.EventType {
	case "", "default":
	case "outOfOffice":
		ev.Type = presence.EventOutOfOffice
	case "focusTime":
		ev.Type = presence.EventFocusTime
	default: // workingLocation, birthday, fromGmail and any type added later
		return presence.Event{}, false
	}
	var ok bool
	if ev.Start, ev.End, ev.AllDay, ok = span(it.Start, it.End); !ok {
		return presence.Event{}, false
	}
	ev.Cancelled = it.Status == "cancelled"
	switch {
	case ev.Type == presence.EventOutOfOffice:
		ev.Busy = presence.BusyOutOfOffice
	case it.Transparency == "transparent":
		ev.Busy = presence.BusyFree
	case it.Status == "tentative":
		ev.Busy = presence.BusyTentative
	}
	for _, a := range it.Attendees {
		switch {
		case a == nil:
		case a.Self:
			ev.Response = response(a.ResponseStatus)
		case !a.Resource:
			ev.HasOtherAttendees = true
		}
	}
	if opt.TitleEmoji {
		ev.Emoji = presence.LeadingEmoji(it.Summary)
	}
	return ev, true
}

// span returns an event's bounds in UTC: dateTime for timed events, midnight UTC of date for
// all-day events (end exclusive, as Google gives it).
func span(start, end *calendar.EventDateTime) (from, to time.Time, allDay, ok bool) {
	if start == nil || end == nil {
		return time.Time{}, time.Time{}, false, false
	}
	if start.DateTime != "" && end.DateTime != "" {
		from, err1 := time.Parse(time.RFC3339, start.DateTime)
		to, err2 := time.Parse(time.RFC3339, end.DateTime)
		if err1 != nil || err2 != nil {
			return time.Time{}, time.Time{}, false, false
		}
		return from.UTC(), to.UTC(), false, true
	}
	if start.Date != "" && end.Date != "" {
		from, err1 := time.Parse(time.DateOnly, start.Date)
		to, err2 := time.Parse(time.DateOnly, end.Date)
		if err1 != nil || err2 != nil {
			return time.Time{}, time.Time{}, false, false
		}
		return from, to, true, true
	}
	return time.Time{}, time.Time{}, false, false
}

// response maps an attendee's responseStatus.
func response(s string) presence.Response {
	switch s {
	case "accepted":
		return presence.ResponseAccepted
	case "tentative":
		return presence.ResponseTentative
	case "declined":
		return presence.ResponseDeclined
	case "needsAction":
		return presence.ResponsePending
	}
	return presence.ResponseNone
}

// isStatus reports whether err is a Google API error with HTTP status code.
func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

// apiError maps a Calendar API error of method: rate limits become
// *provider.RateLimitedError; every other error is returned as it is.
func apiError(err error, now time.Time, method string) error {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return err
	}
	limited := ge.Code == http.StatusTooManyRequests
	if ge.Code == http.StatusForbidden {
		for _, e := range ge.Errors {
			if e.Reason == "rateLimitExceeded" || e.Reason == "userRateLimitExceeded" {
				limited = true
			}
		}
	}
	if !limited {
		return err
	}
	d, named := retryAfter(ge.Header, now)
	return &provider.RateLimitedError{RetryAfter: d, Method: method, Guessed: !named}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); without a usable one it
// returns DefaultRetryAfter and named false.
func retryAfter(h http.Header, now time.Time) (d time.Duration, named bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return DefaultRetryAfter, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return DefaultRetryAfter, false
}
