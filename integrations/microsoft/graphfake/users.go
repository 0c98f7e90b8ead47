package graphfake

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// User is a fake work account as [Server.Users] reports it.
type User struct {
	// ObjectID is the account's object ID (the "oid" claim and the Graph
	// user id).
	ObjectID string
	TenantID string
	// DisplayName is the person's name.
	DisplayName string
	// Email is both the userPrincipalName and the mail address.
	Email string
	// TimeZone is the mailbox time zone (IANA or Windows name; default
	// "UTC"). All-day events occupy whole days in it.
	TimeZone string
}

// Event is a calendar event as tests and the sandbox create it. Fields left
// empty take Outlook's defaults.
type Event struct {
	// ID is the event ID; an Outlook-looking one is generated when empty.
	ID      string
	Subject string
	// Start and End bound the event. For an all-day event (IsAllDay) only
	// their dates as written count, End's date exclusive, and the event
	// occupies those whole days in the mailbox time zone.
	Start    time.Time
	End      time.Time
	IsAllDay bool
	// IsCancelled marks a meeting its organizer cancelled; it stays in
	// the attendee's calendar until removed (see
	// [Options.CancelledAsRemoved]).
	IsCancelled bool
	// ShowAs is free, tentative, busy (default), oof, workingElsewhere
	// or unknown.
	ShowAs string
	// Response is the mailbox owner's response: none, organizer (the
	// default when the owner organizes), tentativelyAccepted, accepted,
	// declined or notResponded (the default for others' meetings).
	Response     string
	ResponseTime time.Time
	// OrganizerName and OrganizerEmail name the organizer; empty means the
	// mailbox owner.
	OrganizerName  string
	OrganizerEmail string
	Attendees      []Attendee
	// Type is singleInstance (default), occurrence, exception or
	// seriesMaster; SeriesMasterID links occurrences and exceptions.
	Type           string
	SeriesMasterID string
	// Sensitivity is normal (default), personal, private or confidential.
	Sensitivity string
	// OnlineMeetingURL, when set, makes the event a Teams meeting.
	OnlineMeetingURL string
	// Location is the display name of the location.
	Location string
}

// Attendee is one attendee of an event.
type Attendee struct {
	Name    string
	Address string
	// Type is required (default), optional or resource.
	Type string
	// Response is none (default), organizer, tentativelyAccepted,
	// accepted, declined or notResponded.
	Response     string
	ResponseTime time.Time
}

type tenant struct {
	id string
}

type user struct {
	oid, tid, name, email string
	tz                    string
	loc                   *time.Location
	events                map[string]*storedEvent
	deltaEpoch            int
	presence              presenceData
}

type storedEvent struct {
	ev       Event
	created  time.Time
	modified time.Time
	seq      int64
	deleted  bool
}

// AddUser adds (or renames) a fake work account in a tenant, creating the
// tenant when needed. Its mailbox time zone is UTC until
// [Server.SetMailboxTimeZone] changes it.
func (s *Server) AddUser(tenantID, oid, displayName, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addUserLocked(tenantID, oid, displayName, email)
}

func (s *Server) addUserLocked(tenantID, oid, displayName, email string) *user {
	if s.tenants[tenantID] == nil {
		s.tenants[tenantID] = &tenant{id: tenantID}
	}
	if u := s.users[oid]; u != nil {
		u.tid, u.name, u.email = tenantID, displayName, email
		return u
	}
	u := &user{oid: oid, tid: tenantID, name: displayName, email: email, tz: "UTC", loc: time.UTC,
		events: make(map[string]*storedEvent)}
	s.users[oid] = u
	s.userOrder = append(s.userOrder, oid)
	return u
}

// ensureDefaultLocked adds the default account when there is none.
func (s *Server) ensureDefaultLocked() {
	if len(s.users) == 0 {
		s.addUserLocked(DefaultTenantID, DefaultOID, DefaultName, DefaultEmail)
	}
}

// Users returns the fake accounts in the order they were added (the default
// account if none was).
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureDefaultLocked()
	out := make([]User, 0, len(s.userOrder))
	for _, oid := range s.userOrder {
		u := s.users[oid]
		out = append(out, User{ObjectID: u.oid, TenantID: u.tid, DisplayName: u.name, Email: u.email, TimeZone: u.tz})
	}
	return out
}

// SetMailboxTimeZone sets a mailbox's time zone, an IANA name or a Windows
// name such as "Pacific Standard Time".
func (s *Server) SetMailboxTimeZone(oid, tz string) error {
	loc, ok := lookupZone(tz)
	if !ok {
		return fmt.Errorf("graphfake: unknown time zone %q", tz)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return err
	}
	u.tz, u.loc = tz, loc
	return nil
}

func (s *Server) userLocked(oid string) (*user, error) {
	if oid == DefaultOID {
		s.ensureDefaultLocked()
	}
	u := s.users[oid]
	if u == nil {
		return nil, fmt.Errorf("graphfake: no user %q", oid)
	}
	return u, nil
}

// lookupUserLocked resolves a Graph user key: an object ID or a
// userPrincipalName, case-insensitively.
func (s *Server) lookupUserLocked(key string) *user {
	if u := s.users[key]; u != nil {
		return u
	}
	for _, oid := range s.userOrder {
		u := s.users[oid]
		if strings.EqualFold(u.oid, key) || strings.EqualFold(u.email, key) {
			return u
		}
	}
	return nil
}

// AddEvent adds ev to a mailbox and returns its ID, notifying matching
// subscriptions (changeType created). It panics when the user does not exist
// or the event is invalid, which is a mistake in the calling test.
func (s *Server) AddEvent(oid string, ev Event) (id string) {
	id, err := s.addEvent(oid, ev)
	if err != nil {
		panic(err)
	}
	return id
}

func (s *Server) addEvent(oid string, ev Event) (string, error) {
	if err := validateEvent(&ev); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return "", err
	}
	if ev.ID == "" {
		ev.ID = newEventID()
	}
	if old := u.events[ev.ID]; old != nil && !old.deleted {
		return "", fmt.Errorf("graphfake: event %q already exists", ev.ID)
	}
	now := s.now().UTC()
	s.seq++
	u.events[ev.ID] = &storedEvent{ev: ev, created: now, modified: now, seq: s.seq}
	s.changeLocked(u, ev.ID, "created", false)
	return ev.ID, nil
}

// UpdateEvent changes an event in place: update receives a copy of the event
// (the ID cannot change) and the result replaces it, so the next delta round
// reports it; matching subscriptions are notified (changeType updated).
func (s *Server) UpdateEvent(oid, id string, update func(*Event)) error {
	s.mu.Lock()
	u, err := s.userLocked(oid)
	var se *storedEvent
	if err == nil {
		se = u.events[id]
		if se == nil || se.deleted {
			err = fmt.Errorf("graphfake: no event %q", id)
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
	if err := validateEvent(&ev); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.events[id] != se {
		return fmt.Errorf("graphfake: event %q changed concurrently", id)
	}
	s.seq++
	se.ev = ev
	se.modified = s.now().UTC()
	se.seq = s.seq
	s.changeLocked(u, id, "updated", false)
	return nil
}

// DeleteEvent removes an event; the next delta round reports it as
// {"@removed":{"reason":"deleted"}} and matching subscriptions are notified
// (changeType deleted).
func (s *Server) DeleteEvent(oid, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return err
	}
	se := u.events[id]
	if se == nil || se.deleted {
		return fmt.Errorf("graphfake: no event %q (or already deleted)", id)
	}
	s.seq++
	se.deleted = true
	se.modified = s.now().UTC()
	se.seq = s.seq
	s.changeLocked(u, id, "deleted", false)
	return nil
}

// Events returns a mailbox's events (deleted ones left out) ordered by
// start.
func (s *Server) Events(oid string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return nil
	}
	var out []Event
	for _, se := range u.events {
		if !se.deleted {
			ev := se.ev
			ev.Attendees = slices.Clone(ev.Attendees)
			out = append(out, ev)
		}
	}
	slices.SortFunc(out, func(a, b Event) int { return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.ID, b.ID)) })
	return out
}

// InvalidateDeltaTokens makes every delta and skip token issued for the
// mailbox answer [Options.SyncStateStatus] (410 SyncStateNotFound by
// default), so the client must start a full sync again.
func (s *Server) InvalidateDeltaTokens(oid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return err
	}
	u.deltaEpoch++
	return nil
}

// RevokeTokens revokes every grant of the account: its refresh tokens answer
// invalid_grant (AADSTS50173) and its access tokens 401
// InvalidAuthenticationToken, as after an admin revokes the person's
// sessions (the real platform lets issued access tokens live until they
// expire unless continuous access evaluation applies).
func (s *Server) RevokeTokens(oid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.grants {
		if g.oid == oid {
			g.revoked = true
		}
	}
}

var (
	validShowAs      = []string{"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}
	validResponses   = []string{"none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded"}
	validEventTypes  = []string{"singleInstance", "occurrence", "exception", "seriesMaster"}
	validSensitivity = []string{"normal", "personal", "private", "confidential"}
	validAttendee    = []string{"required", "optional", "resource"}
)

func validateEvent(ev *Event) error {
	if ev.Start.IsZero() || ev.End.IsZero() {
		return fmt.Errorf("graphfake: event needs Start and End")
	}
	if ev.IsAllDay {
		if !dateOf(ev.End).After(dateOf(ev.Start)) {
			return fmt.Errorf("graphfake: an all-day event must end on a later date than it starts (End is exclusive)")
		}
	} else if !ev.End.After(ev.Start) {
		return fmt.Errorf("graphfake: event must end after it starts")
	}
	check := func(what, v string, set []string) error {
		if v != "" && !slices.Contains(set, v) {
			return fmt.Errorf("graphfake: event %s %q is not one of %v", what, v, set)
		}
		return nil
	}
	if err := cmp.Or(check("showAs", ev.ShowAs, validShowAs), check("response", ev.Response, validResponses),
		check("type", ev.Type, validEventTypes), check("sensitivity", ev.Sensitivity, validSensitivity)); err != nil {
		return err
	}
	for _, a := range ev.Attendees {
		if err := cmp.Or(check("attendee type", a.Type, validAttendee), check("attendee response", a.Response, validResponses)); err != nil {
			return err
		}
	}
	return nil
}

// dateOf returns t's calendar date (in t's own location) as midnight UTC.
func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// span returns the instants an event occupies, all-day events placed in loc.
func (e *Event) span(loc *time.Location) (time.Time, time.Time) {
	if e.IsAllDay {
		sy, sm, sd := e.Start.Date()
		ey, em, ed := e.End.Date()
		return time.Date(sy, sm, sd, 0, 0, 0, 0, loc), time.Date(ey, em, ed, 0, 0, 0, 0, loc)
	}
	return e.Start, e.End
}

// newEventID returns an ID shaped like Outlook's (base64 of an entry ID).
func newEventID() string {
	return "AAMkAGI2" + randomToken(48) + "AAA="
}
