package zoom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// Paging of GET /users/me/meetings.
const (
	pageSize = 300 // Zoom's maximum
	maxPages = 100 // against a server that never stops
)

// SaveFunc persists a credential Meetings had to refresh. Zoom's refresh
// tokens rotate, so the old one is already dead when SaveFunc is called: it
// must store fresh (sealed) before returning, and an error from it stops the
// call.
type SaveFunc func(ctx context.Context, fresh provider.Credential) error

// Meetings lists the person's upcoming scheduled meetings
// (GET /users/me/meetings?type=upcoming, every page) as planner events:
// ID the meeting number, Type presence.EventZoomScheduled, Start and End
// (start + duration), Busy. Source is left for the caller to set. Topics and
// everything else Zoom sends are dropped here. Meetings without a fixed time
// (type 3) and ones of no duration are left out; when a recurring meeting's
// occurrences share a number, the later ones get "@" and their start time
// (RFC 3339, UTC) appended to the ID.
//
// A 401 (the access token expired early or was revoked) is retried once
// after a refresh when cred has a refresh token and save is not nil: the
// rotated credential goes to save first. With save nil, a 401 is a
// *provider.RevokedError with reason "token_expired" (as Slack's expired
// tokens are), for the caller to refresh, persist and call again.
//
// Errors: a 429 is a *provider.RateLimitedError; a refused refresh, a
// missing scope (Zoom's 400 with code 4711) or a 401 that cannot be
// refreshed is a *provider.RevokedError; anything else (5xx, network) is a
// plain wrapped error.
func (c *Client) Meetings(ctx context.Context, cred provider.Credential, now time.Time, save SaveFunc) ([]presence.Event, error) {
	now = c.now(now)
	events, err := c.meetings(ctx, cred.AccessToken)
	var ae *apiErr
	if errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
		if save == nil || cred.RefreshToken == "" {
			reason := "token_expired"
			if cred.RefreshToken == "" {
				reason = "invalid_access_token"
			}
			return nil, fmt.Errorf("zoom: meetings: %w", &provider.RevokedError{Reason: reason})
		}
		fresh, rerr := c.Refresh(ctx, cred, now)
		if rerr != nil {
			return nil, fmt.Errorf("zoom: meetings: %w", rerr)
		}
		if serr := save(ctx, fresh); serr != nil {
			return nil, fmt.Errorf("zoom: meetings: save the refreshed token: %w", serr)
		}
		events, err = c.meetings(ctx, fresh.AccessToken)
		if errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
			return nil, fmt.Errorf("zoom: meetings: %w", &provider.RevokedError{Reason: "invalid_access_token"})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("zoom: meetings: %w", apiError(err, now, "users/me/meetings"))
	}
	return events, nil
}

// meetingJSON is what we read of a meeting in the list; the topic, agenda
// and join URL are not even decoded.
type meetingJSON struct {
	ID        flexID `json:"id"`
	Type      int    `json:"type"`
	StartTime string `json:"start_time"`
	Duration  int    `json:"duration"` // minutes
}

type meetingsPage struct {
	NextPageToken string        `json:"next_page_token"`
	Meetings      []meetingJSON `json:"meetings"`
}

// meetings pages through the list with one access token; errors are unmapped.
func (c *Client) meetings(ctx context.Context, accessToken string) ([]presence.Event, error) {
	var out []presence.Event
	seen := map[string]bool{}
	q := url.Values{"type": {"upcoming"}, "page_size": {strconv.Itoa(pageSize)}}
	for range maxPages {
		var page meetingsPage
		if err := c.get(ctx, accessToken, "/users/me/meetings", q, &page); err != nil {
			return nil, err
		}
		for _, m := range page.Meetings {
			ev, ok, err := m.event()
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if seen[ev.ID] {
				ev.ID += "@" + ev.Start.UTC().Format(time.RFC3339)
			}
			seen[ev.ID] = true
			out = append(out, ev)
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		q.Set("next_page_token", page.NextPageToken)
	}
	return nil, fmt.Errorf("more than %d pages", maxPages)
}

// event converts a listed meeting; ok is false for one that blocks no time.
func (m meetingJSON) event() (presence.Event, bool, error) {
	if m.Type == 3 || m.StartTime == "" || m.Duration <= 0 {
		return presence.Event{}, false, nil
	}
	if m.ID == "" {
		return presence.Event{}, false, errors.New("a meeting without an id")
	}
	start, err := time.Parse(time.RFC3339, m.StartTime)
	if err != nil {
		return presence.Event{}, false, fmt.Errorf("meeting %s: bad start_time", m.ID)
	}
	return presence.Event{
		ID:    string(m.ID),
		Type:  presence.EventZoomScheduled,
		Start: start.UTC(),
		End:   start.UTC().Add(time.Duration(m.Duration) * time.Minute),
		Busy:  presence.BusyBusy,
		// Zoom's list does not say who is invited; a scheduled Zoom meeting
		// is presumed to be with others, so "only with others" keeps it.
		HasOtherAttendees: true,
	}, true, nil
}

// me is what we read of GET /users/me: the two IDs, nothing else.
type me struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

func (c *Client) me(ctx context.Context, accessToken string) (me, error) {
	var m me
	if err := c.get(ctx, accessToken, "/users/me", nil, &m); err != nil {
		return me{}, err
	}
	if m.ID == "" || m.AccountID == "" {
		return me{}, errors.New("users/me: no id or account_id")
	}
	return m, nil
}

// apiErr is a non-2xx answer of the REST API.
type apiErr struct {
	status  int
	code    int // Zoom's error code
	message string
	header  http.Header
}

func (e *apiErr) Error() string {
	if e.code != 0 {
		return fmt.Sprintf("HTTP %d (Zoom code %d)", e.status, e.code)
	}
	return fmt.Sprintf("HTTP %d", e.status)
}

// get GETs APIURL+path with the bearer token and decodes a 2xx JSON answer into out.
func (c *Client) get(ctx context.Context, accessToken, path string, q url.Values, out any) error {
	u := c.cfg.APIURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		// The URL may hold a next_page_token: leave it out.
		return redactURLError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiErr{status: resp.StatusCode, header: resp.Header}
		var zb struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &zb) == nil {
			e.code, e.message = zb.Code, zb.Message
		}
		return e
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// apiError maps a REST error to the provider's kinds.
func apiError(err error, now time.Time, method string) error {
	var e *apiErr
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case e.status == http.StatusTooManyRequests:
		d, named := retryAfter(e.header, e.message, now)
		return &provider.RateLimitedError{RetryAfter: d, Method: method, Guessed: !named}
	case e.status == http.StatusUnauthorized:
		return &provider.RevokedError{Reason: "invalid_access_token"}
	case e.status == http.StatusBadRequest && (e.code == 4711 || e.code == 4700 || strings.Contains(e.message, "does not contain scopes")):
		return &provider.RevokedError{Reason: "missing_scope"}
	}
	return err
}

// retryAfter reads how long to wait from a 429: Retry-After in seconds, an
// ISO timestamp (Zoom's daily limits) or an HTTP date; else the next
// midnight UTC when the daily limit was hit; else DefaultRetryAfter, with
// named false (Zoom said nothing of when to come back).
func retryAfter(h http.Header, message string, now time.Time) (wait time.Duration, named bool) {
	until := func(t time.Time) time.Duration { return max(t.Sub(now), time.Second) }
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return max(time.Duration(n)*time.Second, time.Second), true
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return until(t), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return until(t), true
		}
	}
	if strings.EqualFold(h.Get("X-RateLimit-Type"), "Daily-limit") || strings.Contains(strings.ToLower(message), "daily") {
		y, m, d := now.UTC().Date()
		return until(time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)), true
	}
	return DefaultRetryAfter, false
}

// flexID is a Zoom ID that arrives as a JSON number (REST: meeting IDs
// above 2^32) or a string (webhooks); it keeps the decimal text exactly.
type flexID string

// UnmarshalJSON accepts a string or an integer.
func (f *flexID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
		return fmt.Errorf("id %s is not an integer", n)
	}
	*f = flexID(n.String())
	return nil
}
