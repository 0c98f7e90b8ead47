package googlefake

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Event is a calendar event as tests and the sandbox create it. Fields left
// empty take Google's defaults.
type Event struct {
	// ID is the event ID; one in Google's alphabet (base32hex) is
	// generated when empty.
	ID          string
	Summary     string
	Description string
	Location    string

	// Start and End bound a timed event. For an all-day event (AllDay)
	// only their calendar dates as written (in their own location) count,
	// and End's date is exclusive, as on the wire: a one-day event on
	// 3 Dec has Start 3 Dec and End 4 Dec.
	Start time.Time
	End   time.Time
	// TimeZone is the IANA zone reported in start/end of a timed event
	// and used to format dateTime; default the calendar's time zone.
	TimeZone string
	AllDay   bool

	// Status is confirmed (default), tentative or cancelled.
	Status string
	// Transparency is opaque (default, busy) or transparent (free).
	Transparency string
	// Visibility is default (when empty), public, private or
	// confidential.
	Visibility string
	// EventType is default (when empty), outOfOffice, focusTime,
	// workingLocation, birthday or fromGmail.
	EventType string
	// AutoDeclineMode and DeclineMessage fill outOfOfficeProperties or
	// focusTimeProperties for those event types; ChatStatus (focusTime
	// only) defaults to doNotDisturb.
	AutoDeclineMode string
	DeclineMessage  string
	ChatStatus      string

	// Attendees of the event. Mark the calendar owner's row Self.
	Attendees []Attendee
	// OrganizerEmail is the organizer; empty means the calendar owner
	// (organizer.self is then true).
	OrganizerEmail string
	// HangoutLink is a Meet URL, if any.
	HangoutLink string
}

// Attendee is one row of an event's attendee list.
type Attendee struct {
	Email       string
	DisplayName string
	// Self marks the calendar owner's own row.
	Self      bool
	Organizer bool
	Optional  bool
	Resource  bool
	// ResponseStatus is needsAction (default), declined, tentative or
	// accepted.
	ResponseStatus string
}

type account struct {
	sub, email, name string
	calendars        map[string]*calendarData
	calOrder         []string
	primaryID        string
	syncEpoch        int
}

type calendarData struct {
	id, summary string
	primary     bool
	resourceID  string
	events      map[string]*storedEvent
	seq         int64 // last change to the calendar list entry
}

type storedEvent struct {
	ev       Event
	created  time.Time
	updated  time.Time
	seq      int64
	sequence int
	deleted  bool
}

// AddAccount adds (or renames) a fake Google account with a primary calendar
// whose ID is the e-mail address, as at Google.
func (s *Server) AddAccount(sub, email, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addAccountLocked(sub, email, name)
}

func (s *Server) addAccountLocked(sub, email, name string) *account {
	if a := s.accounts[sub]; a != nil {
		a.email, a.name = email, name
		return a
	}
	a := &account{sub: sub, email: email, name: name, calendars: make(map[string]*calendarData)}
	s.accounts[sub] = a
	s.accountOrder = append(s.accountOrder, sub)
	s.addCalendarLocked(a, email, email, true)
	a.primaryID = email
	return a
}

// ensureDefaultLocked adds the default account when there is none.
func (s *Server) ensureDefaultLocked() {
	if len(s.accounts) == 0 {
		s.addAccountLocked(DefaultSub, DefaultEmail, DefaultName)
	}
}

// AccountSubs returns the subject IDs of the fake accounts in the order they
// were added (the default account if none was).
func (s *Server) AccountSubs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureDefaultLocked()
	return slices.Clone(s.accountOrder)
}

// AddCalendar adds a secondary calendar to an account's calendar list.
func (s *Server) AddCalendar(sub, calendarID, summary string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.accountLocked(sub)
	if err != nil {
		return err
	}
	if c := a.calendars[calendarID]; c != nil {
		c.summary = summary
		s.seq++
		c.seq = s.seq
		return nil
	}
	s.addCalendarLocked(a, calendarID, summary, false)
	return nil
}

func (s *Server) addCalendarLocked(a *account, id, summary string, primary bool) {
	s.seq++
	a.calendars[id] = &calendarData{
		id: id, summary: summary, primary: primary,
		resourceID: randomToken(20),
		events:     make(map[string]*storedEvent),
		seq:        s.seq,
	}
	a.calOrder = append(a.calOrder, id)
}

func (s *Server) accountLocked(sub string) (*account, error) {
	if sub == DefaultSub {
		s.ensureDefaultLocked()
	}
	a := s.accounts[sub]
	if a == nil {
		return nil, fmt.Errorf("googlefake: no account %q", sub)
	}
	return a, nil
}

// calendarLocked resolves "primary" and calendar IDs of an account.
func (s *Server) calendarLocked(sub, calendarID string) (*account, *calendarData, error) {
	a, err := s.accountLocked(sub)
	if err != nil {
		return nil, nil, err
	}
	if calendarID == "primary" {
		calendarID = a.primaryID
	}
	c := a.calendars[calendarID]
	if c == nil {
		return a, nil, fmt.Errorf("googlefake: account %q has no calendar %q", sub, calendarID)
	}
	return a, c, nil
}

// AddEvent adds ev to an account's calendar ("primary" or a calendar ID) and
// returns its ID. It panics when the account or calendar does not exist or
// the event is invalid, which is a mistake in the calling test.
func (s *Server) AddEvent(sub, calendarID string, ev Event) (id string) {
	id, err := s.addEvent(sub, calendarID, ev)
	if err != nil {
		panic(err)
	}
	return id
}

func (s *Server) addEvent(sub, calendarID string, ev Event) (string, error) {
	if err := s.validateEvent(&ev); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, c, err := s.calendarLocked(sub, calendarID)
	if err != nil {
		return "", err
	}
	if ev.ID == "" {
		ev.ID = randomEventID()
	}
	if c.events[ev.ID] != nil {
		return "", fmt.Errorf("googlefake: event %q already exists", ev.ID)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	s.seq++
	c.events[ev.ID] = &storedEvent{ev: ev, created: now, updated: now, seq: s.seq, deleted: ev.Status == "cancelled"}
	s.changedLocked(sub, c.id, eventTypeOf(&ev))
	return ev.ID, nil
}

func (s *Server) validateEvent(ev *Event) error {
	if ev.Start.IsZero() || ev.End.IsZero() {
		return fmt.Errorf("googlefake: event needs Start and End")
	}
	if ev.AllDay {
		if !dateOf(ev.End).After(dateOf(ev.Start)) {
			return fmt.Errorf("googlefake: all-day event must end on a later date than it starts (End is exclusive)")
		}
	} else if !ev.End.After(ev.Start) {
		return fmt.Errorf("googlefake: event must end after it starts")
	}
	if ev.TimeZone != "" {
		if _, err := time.LoadLocation(ev.TimeZone); err != nil {
			return fmt.Errorf("googlefake: event time zone: %w", err)
		}
	}
	if !oneOf(ev.Status, "", "confirmed", "tentative", "cancelled") {
		return fmt.Errorf("googlefake: event status %q", ev.Status)
	}
	if !oneOf(ev.Transparency, "", "opaque", "transparent") {
		return fmt.Errorf("googlefake: event transparency %q", ev.Transparency)
	}
	if ev.EventType != "" && !validEventTypes[ev.EventType] {
		return fmt.Errorf("googlefake: event type %q", ev.EventType)
	}
	for _, at := range ev.Attendees {
		if !oneOf(at.ResponseStatus, "", "needsAction", "declined", "tentative", "accepted") {
			return fmt.Errorf("googlefake: attendee response status %q", at.ResponseStatus)
		}
	}
	return nil
}

// UpdateEvent changes an event in place: update receives a copy of the event
// (ID, event type and calendar cannot change) and the result replaces it,
// bumping updated, etag and sequence so incremental sync reports it.
func (s *Server) UpdateEvent(sub, calendarID, id string, update func(*Event)) error {
	s.mu.Lock()
	a, c, err := s.calendarLocked(sub, calendarID)
	var se *storedEvent
	if err == nil {
		se = c.events[id]
		if se == nil || se.deleted {
			err = fmt.Errorf("googlefake: no event %q", id)
		}
	}
	var ev Event
	if err == nil {
		ev = se.ev
		ev.Attendees = slices.Clone(ev.Attendees)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	update(&ev)
	ev.ID = id
	if ev.EventType != se.ev.EventType {
		return fmt.Errorf("googlefake: the event type cannot be changed after creation")
	}
	if err := s.validateEvent(&ev); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.events[id] != se {
		return fmt.Errorf("googlefake: event %q changed concurrently", id)
	}
	s.seq++
	se.ev = ev
	se.updated = s.now().UTC().Truncate(time.Millisecond)
	se.seq = s.seq
	se.sequence++
	se.deleted = ev.Status == "cancelled"
	s.changedLocked(a.sub, c.id, eventTypeOf(&ev))
	return nil
}

// DeleteEvent deletes an event. Like at Google it stays visible as status
// "cancelled" to incremental sync and to showDeleted=true listings.
func (s *Server) DeleteEvent(sub, calendarID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, c, err := s.calendarLocked(sub, calendarID)
	if err != nil {
		return err
	}
	se := c.events[id]
	if se == nil || se.deleted {
		// Google answers 410 Gone for an already deleted event.
		return fmt.Errorf("googlefake: no event %q (or already deleted)", id)
	}
	s.seq++
	se.deleted = true
	se.ev.Status = "cancelled"
	se.updated = s.now().UTC().Truncate(time.Millisecond)
	se.seq = s.seq
	s.changedLocked(a.sub, c.id, eventTypeOf(&se.ev))
	return nil
}

// InvalidateSyncTokens makes every sync token issued for the account's
// calendars answer 410 fullSyncRequired, as Google does when a token expires.
func (s *Server) InvalidateSyncTokens(sub string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.accountLocked(sub)
	if err != nil {
		return err
	}
	a.syncEpoch++
	return nil
}

// RevokeTokens revokes every grant of the account: its refresh tokens answer
// invalid_grant and its access tokens 401, as after the user removes the
// app's access in their Google account.
func (s *Server) RevokeTokens(sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.grants {
		if g.sub == sub {
			g.revoked = true
		}
	}
}

// Channel is a push notification channel created by events.watch.
type Channel struct {
	ID          string
	ResourceID  string
	ResourceURI string
	// Token is the opaque token the client asked Google to echo in
	// X-Goog-Channel-Token.
	Token      string
	Type       string
	Address    string
	Params     map[string]string
	EventTypes []string
	Expiration time.Time
	// Account and CalendarID identify the watched calendar (the real
	// calendar ID, "primary" resolved).
	Account    string
	CalendarID string
	// Stopped is set once channels.stop was called for the channel.
	Stopped bool
}

// Channels returns every channel created by events.watch, stopped and
// expired ones included (see [Channel.Stopped], [Channel.Expiration]),
// oldest first.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, 0, len(s.channels))
	for _, ch := range s.channels {
		c := ch.Channel
		c.EventTypes = slices.Clone(c.EventTypes)
		if c.Params != nil {
			p := make(map[string]string, len(c.Params))
			for k, v := range c.Params {
				p[k] = v
			}
			c.Params = p
		}
		out = append(out, c)
	}
	return out
}

func oneOf(v string, set ...string) bool { return slices.Contains(set, v) }

var validEventTypes = map[string]bool{
	"default": true, "birthday": true, "focusTime": true, "fromGmail": true,
	"outOfOffice": true, "workingLocation": true,
}

// dateOf returns t's calendar date (in t's own location) as midnight UTC.
func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// span returns the instants an event occupies, all-day events placed in loc.
func (e *Event) span(loc *time.Location) (time.Time, time.Time) {
	if e.AllDay {
		sy, sm, sd := e.Start.Date()
		ey, em, ed := e.End.Date()
		return time.Date(sy, sm, sd, 0, 0, 0, 0, loc), time.Date(ey, em, ed, 0, 0, 0, 0, loc)
	}
	return e.Start, e.End
}

func pathEscapeID(id string) string { return strings.ReplaceAll(url.PathEscape(id), "%40", "@") }
