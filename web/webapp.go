package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// ---- today's timeline preview ----

// previewRow is one segment of the preview, in words.
type previewRow struct {
	From, To         time.Time
	FromText, ToText string
	Kind             string
	Cause            string
	Paused, Nothing  bool
	SlackStatus      string
	SlackDND         string
	SlackPresence    string
	TeamsPresence    string
	TeamsMessage     string
}

// previewWindowMin is the least the preview shows, even late in the day.
const previewWindowMin = 12 * time.Hour

// clockText formats t in loc: "15:04" on now's day, "Mon 2 Jan 15:04" otherwise.
func clockText(t, now time.Time, loc *time.Location) string {
	lt, ln := t.In(loc), now.In(loc)
	if lt.Year() == ln.Year() && lt.YearDay() == ln.YearDay() {
		return lt.Format("15:04")
	}
	return lt.Format("Mon 2 Jan 15:04")
}

// previewRowOf says what every target shows during seg.
func previewRowOf(seg presence.Segment, to, now time.Time, loc *time.Location) previewRow {
	st := seg.State
	row := previewRow{
		From: seg.From, To: to,
		FromText: clockText(seg.From, now, loc), ToText: clockText(to, now, loc),
		Cause: st.Cause,
	}
	until := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return " until " + presence.FormatUntil(t, now, loc)
	}
	switch {
	case st.Paused:
		row.Paused, row.Kind = true, "Paused"
		row.SlackStatus, row.SlackDND, row.SlackPresence, row.TeamsPresence, row.TeamsMessage =
			"Left as it is (paused)", "Left as it is", "Left as it is", "Left as it is", "Left as it is"
		return row
	case st.Kind == presence.KindNone:
		row.Nothing, row.Kind = true, "Nothing"
		row.SlackStatus, row.SlackDND, row.SlackPresence, row.TeamsPresence, row.TeamsMessage =
			"Your own status", "Yours", "Automatic", "Yours", "Yours"
		return row
	}
	row.Kind = kindTitle(st.Kind)
	if ss := st.SlackStatus; !ss.IsZero() {
		row.SlackStatus = strings.TrimSpace(ss.Emoji + " " + ss.Text)
		if !ss.Expiration.IsZero() {
			row.SlackStatus += ", clears at " + presence.FormatUntil(ss.Expiration, now, loc)
		}
	} else {
		row.SlackStatus = "Not set by us"
	}
	if st.SlackDND.On {
		row.SlackDND = "On" + until(st.SlackDND.Until)
	} else {
		row.SlackDND = "Not set by us"
	}
	if st.SlackPresence.Away {
		row.SlackPresence = "Away" + until(st.SlackPresence.Until)
	} else {
		row.SlackPresence = "Automatic"
	}
	if tp := st.TeamsPresence; tp.Availability != "" {
		row.TeamsPresence = tp.Availability
		if tp.Activity != "" && tp.Activity != tp.Availability {
			row.TeamsPresence += ", " + tp.Activity
		}
		row.TeamsPresence += until(tp.Until)
	} else {
		row.TeamsPresence = "Not changed"
	}
	if tm := st.TeamsMessage; tm.Text != "" {
		row.TeamsMessage = "“" + tm.Text + "”" + until(tm.Until)
	} else {
		row.TeamsMessage = "Not changed"
	}
	return row
}

// handlePreview shows today's timeline: what the planner sets on each target and when, from
// the cached blocks (which have no titles), computed afresh on every request.
func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.signInFirst(w, r, "Sign in to see your timeline.")
		return
	}
	ctx := r.Context()
	u, err := s.st.GetUser(ctx, sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	conns, err := s.st.ListConnections(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	now := s.clock.Now()
	tl, _, err := s.current(ctx, u, now)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	loc, _ := u.Rules.Location()
	ln := now.In(loc)
	end := time.Date(ln.Year(), ln.Month(), ln.Day()+1, 0, 0, 0, 0, loc)
	if end.Sub(now) < previewWindowMin {
		end = now.Add(previewWindowMin)
	}
	if h := now.Add(s.horizon); end.After(h) {
		end = h
	}
	var rows []previewRow
	for _, seg := range tl.Segments {
		if !seg.From.Before(end) {
			break
		}
		to := seg.To
		if to.IsZero() || to.After(end) {
			to = end
		}
		rows = append(rows, previewRowOf(seg, to, now, loc))
	}
	has := func(p string) bool {
		return slices.ContainsFunc(conns, func(c store.Connection) bool { return c.Provider == p })
	}
	// A target that is not connected shows nothing, not what it would show.
	for i := range rows {
		if !has("slack") {
			rows[i].SlackStatus, rows[i].SlackDND, rows[i].SlackPresence = "—", "—", "—"
		}
		if !has("teams") {
			rows[i].TeamsPresence, rows[i].TeamsMessage = "—", "—"
		}
	}
	var notes []string
	if !has("slack") {
		notes = append(notes, "Slack is not connected: nothing is set there until you connect it.")
	}
	if !has("teams") {
		notes = append(notes, "Teams is not connected: nothing is set there until you connect it.")
	}
	if !has("google") && !has("outlook") && !has("zoom") {
		notes = append(notes, "No calendar or Zoom is connected, so only working hours and your manual controls shape this timeline.")
	}
	if u.Rules.LeaveOwnStatus {
		notes = append(notes, "If you set your own Slack status, it is left alone (you can change this in Settings).")
	}
	s.render(w, r, http.StatusOK, "preview", struct {
		page
		Rows     []previewRow
		Notes    []string
		TimeZone string
		Now, End string
	}{
		page: page{Title: "Today's timeline", Sandbox: s.sandbox, SignedIn: true, Current: "preview"},
		Rows: rows, Notes: notes, TimeZone: loc.String(),
		Now: clockText(now, now, loc), End: clockText(end, now, loc),
	})
}

// ---- activity ----

// handleActivity lists the last ActivityCap decisions, newest first.
func (s *Server) handleActivity(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.signInFirst(w, r, "Sign in to see your activity.")
		return
	}
	u, err := s.st.GetUser(r.Context(), sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	acts, err := s.st.ListActivity(r.Context(), u.ID, store.ActivityCap)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	loc, _ := u.Rules.Location()
	type row struct {
		store.Activity
		When string
	}
	rows := make([]row, len(acts))
	now := s.clock.Now()
	for i, a := range acts {
		rows[i] = row{a, clockText(a.At, now, loc) + a.At.In(loc).Format(":05")}
	}
	s.render(w, r, http.StatusOK, "activity", struct {
		page
		Rows     []row
		Cap      int
		TimeZone string
	}{page{Title: "Activity", Sandbox: s.sandbox, SignedIn: true, Current: "activity"}, rows, store.ActivityCap, loc.String()})
}

// ---- your data: export and delete ----

// exportUser is the user record.
type exportUser struct {
	ID      string         `json:"id"`
	Created time.Time      `json:"created"`
	Rules   presence.Rules `json:"rules"`
}

type exportIdentity struct {
	Provider string    `json:"provider"`
	Subject  string    `json:"subject"`
	Created  time.Time `json:"created"`
}

// exportConnection is a connection without its credential.
type exportConnection struct {
	ID           string    `json:"id"`
	Provider     string    `json:"provider"`
	ExternalID   string    `json:"external_id,omitempty"`
	TeamID       string    `json:"team_id,omitempty"`
	Scopes       []string  `json:"scopes,omitempty"`
	Health       string    `json:"health"`
	HealthReason string    `json:"health_reason,omitempty"`
	Resources    []string  `json:"resources,omitempty"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated,omitzero"`
	// CredentialStored says an encrypted credential is kept (never the credential itself).
	CredentialStored bool `json:"credential_stored"`
}

// exportSyncState is a sync position without its tokens.
type exportSyncState struct {
	ConnectionID    string    `json:"connection_id"`
	Resource        string    `json:"resource"`
	Synced          time.Time `json:"synced,omitzero"`
	HasSyncPosition bool      `json:"has_sync_position"`
	Push            bool      `json:"push"`
	PushExpires     time.Time `json:"push_expires,omitzero"`
}

// exportTarget is what we last wrote to a target, without the person's replaced status
// (encrypted; we say whether we keep one).
type exportTarget struct {
	Target            string          `json:"target"`
	Written           json.RawMessage `json:"written,omitempty"`
	WrittenAt         time.Time       `json:"written_at,omitzero"`
	KeepsReplacedOwn  bool            `json:"keeps_your_replaced_status"`
	ReplacedOwnStatus string          `json:"replaced_status_note,omitempty"`
}

// exportData is everything we store about a person, as the export shows it.
type exportData struct {
	Service      string              `json:"service"`
	ExportedAt   time.Time           `json:"exported_at"`
	User         exportUser          `json:"user"`
	Identities   []exportIdentity    `json:"identities"`
	Connections  []exportConnection  `json:"connections"`
	SyncStates   []exportSyncState   `json:"sync_states"`
	Events       []presence.Event    `json:"events"`
	TargetStates []exportTarget      `json:"target_states"`
	Overrides    []presence.Override `json:"overrides"`
	Activity     []store.Activity    `json:"activity"`
}

// withoutAddress keeps a provider ID out of an export if it looks like an e-mail address
// (a calendar ID may be one): it is replaced by a short hash that still tells IDs apart.
func withoutAddress(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "withheld-" + hex.EncodeToString(sum[:6])
}

// eventsFrom and eventsTo bound "every cached event".
var (
	eventsFrom = time.Unix(0, 0).UTC()
	eventsTo   = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// collectData gathers everything we store about userID (the connections are returned whole
// too, for revocation).
func (s *Server) collectData(ctx context.Context, userID string) (exportData, []store.Connection, map[string][]store.SyncState, error) {
	d := exportData{Service: "dontinterrupt", ExportedAt: s.clock.Now().UTC()}
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return d, nil, nil, err
	}
	d.User = exportUser{ID: u.ID, Created: u.Created, Rules: u.Rules}
	ids, err := s.st.ListIdentities(ctx, userID)
	if err != nil {
		return d, nil, nil, err
	}
	d.Identities = []exportIdentity{}
	for _, id := range ids {
		d.Identities = append(d.Identities, exportIdentity{Provider: id.Provider, Subject: withoutAddress(id.Subject), Created: id.Created})
	}
	conns, err := s.st.ListConnections(ctx, userID)
	if err != nil {
		return d, nil, nil, err
	}
	slices.SortFunc(conns, func(a, b store.Connection) int { return a.Created.Compare(b.Created) })
	d.Connections, d.SyncStates = []exportConnection{}, []exportSyncState{}
	states := map[string][]store.SyncState{}
	for _, c := range conns {
		res := make([]string, len(c.Resources))
		for i, r := range c.Resources {
			res[i] = withoutAddress(r)
		}
		d.Connections = append(d.Connections, exportConnection{
			ID: c.ID, Provider: c.Provider, ExternalID: withoutAddress(c.ExternalID), TeamID: c.TeamID,
			Scopes: c.Scopes, Health: string(c.Health), HealthReason: c.HealthReason, Resources: res,
			Created: c.Created, Updated: c.Updated, CredentialStored: len(c.Credential) > 0,
		})
		ss, err := s.st.ListSyncStates(ctx, c.ID)
		if err != nil {
			return d, nil, nil, err
		}
		states[c.ID] = ss
		for _, st := range ss {
			d.SyncStates = append(d.SyncStates, exportSyncState{
				ConnectionID: st.ConnectionID, Resource: withoutAddress(st.Resource), Synced: st.Synced,
				HasSyncPosition: st.Token != "", Push: st.ChannelID != "", PushExpires: st.ChannelExpiry,
			})
		}
	}
	events, err := s.st.ListEvents(ctx, userID, eventsFrom, eventsTo)
	if err != nil {
		return d, nil, nil, err
	}
	d.Events = []presence.Event{}
	for _, e := range events {
		e.Source, e.ID = withoutAddress(e.Source), withoutAddress(e.ID)
		d.Events = append(d.Events, e)
	}
	targets, err := s.st.ListTargetStates(ctx, userID)
	if err != nil {
		return d, nil, nil, err
	}
	slices.SortFunc(targets, func(a, b store.TargetState) int { return strings.Compare(a.Target, b.Target) })
	d.TargetStates = []exportTarget{}
	for _, t := range targets {
		et := exportTarget{Target: t.Target, WrittenAt: t.WrittenAt, KeepsReplacedOwn: len(t.Replaced) > 0}
		if len(t.Written) > 0 && json.Valid(t.Written) {
			et.Written = json.RawMessage(t.Written)
		}
		if et.KeepsReplacedOwn {
			et.ReplacedOwnStatus = "kept encrypted, to restore your own status when our block ends"
		}
		d.TargetStates = append(d.TargetStates, et)
	}
	d.Overrides, err = s.st.ListOverrides(ctx, userID)
	if err != nil {
		return d, nil, nil, err
	}
	if d.Overrides == nil {
		d.Overrides = []presence.Override{}
	}
	slices.SortFunc(d.Overrides, func(a, b presence.Override) int { return a.Start.Compare(b.Start) })
	d.Activity, err = s.st.ListActivity(ctx, userID, 0)
	if err != nil {
		return d, nil, nil, err
	}
	if d.Activity == nil {
		d.Activity = []store.Activity{}
	}
	return d, conns, states, nil
}

// dataCount is one line of "what we keep".
type dataCount struct {
	What string
	N    int
}

func (d exportData) counts() []dataCount {
	return []dataCount{
		{"Account with your settings and rules", 1},
		{"Sign-in identities", len(d.Identities)},
		{"Connections", len(d.Connections)},
		{"Sync positions", len(d.SyncStates)},
		{"Cached calendar blocks", len(d.Events)},
		{"States we last wrote to a target", len(d.TargetStates)},
		{"Manual overrides", len(d.Overrides)},
		{"Activity entries", len(d.Activity)},
	}
}

type dataPage struct {
	page
	Counts  []dataCount
	Problem string
}

// handleData shows what we keep, the export link and the delete form.
func (s *Server) handleData(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.signInFirst(w, r, "Sign in to see and download your data.")
		return
	}
	d, _, _, err := s.collectData(r.Context(), sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "data", dataPage{page: page{Title: "Your data", Sandbox: s.sandbox, SignedIn: true, Current: "data"}, Counts: d.counts()})
}

// handleExport downloads everything we store about the person as JSON: no credential, token,
// channel secret or replaced status.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.signInFirst(w, r, "Sign in to download your data.")
		return
	}
	d, _, _, err := s.collectData(r.Context(), sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	name := "dontinterrupt-data-" + d.ExportedAt.Format("2006-01-02") + ".json"
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
	s.logger(r.Context()).Info("data exported", "user", sess.UserID)
}

// revokeResult is what revoking one connection at its provider did.
type revokeResult struct {
	Provider string
	Account  string
	Revoked  bool
	Note     string
}

// revokeAll revokes every connection at its provider where the provider allows; errors are
// logged and listed, never fatal.
func (s *Server) revokeAll(ctx context.Context, conns []store.Connection, states map[string][]store.SyncState) []revokeResult {
	var out []revokeResult
	for _, c := range conns {
		res := revokeResult{Provider: title(c.Provider), Account: withoutAddress(c.ExternalID)}
		rv := s.revokers[c.Provider]
		pt, err := s.vault.Open(c.Credential, c.UserID, c.ID)
		switch {
		case rv == nil:
			res.Note = "this server cannot revoke " + title(c.Provider) + " access; remove the app in your " + title(c.Provider) + " account settings"
		case err != nil:
			s.logger(ctx).Warn("delete account: open credential", "provider", c.Provider, "err", err)
			res.Note = "its stored credential could not be read, so it could not be revoked; remove the app in your " + title(c.Provider) + " account settings"
		default:
			cred, err := provider.UnmarshalCredential(pt)
			if err == nil {
				rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				err = rv(rctx, cred, states[c.ID])
				cancel()
			}
			if err != nil {
				s.logger(ctx).Warn("delete account: revoke at provider failed; deleting our copy anyway", "provider", c.Provider, "err", err)
				res.Note = title(c.Provider) + " did not confirm the revocation; remove the app in your " + title(c.Provider) + " account settings"
			} else {
				res.Revoked, res.Note = true, "access revoked"
			}
		}
		clear(pt)
		out = append(out, res)
	}
	return out
}

// handleDelete deletes the account after the person typed "delete": revokes every connection
// at its provider where possible, removes every record of theirs, ends the session, and shows
// what was removed.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.signInFirst(w, r, "Sign in to delete your account.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "That form could not be read", "Please reload the page and try again. Nothing was deleted.")
		return
	}
	ctx := r.Context()
	d, conns, states, err := s.collectData(ctx, sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !strings.EqualFold(strings.TrimSpace(r.PostForm.Get("confirm")), "delete") {
		s.render(w, r, http.StatusBadRequest, "data", dataPage{
			page:    page{Title: "Your data", Sandbox: s.sandbox, SignedIn: true, Current: "data"},
			Counts:  d.counts(),
			Problem: `Nothing was deleted: type the word "delete" in the box to confirm.`,
		})
		return
	}
	revoked := s.revokeAll(ctx, conns, states)
	if s.oauth != nil {
		// The Alexa link: every code and token of theirs goes.
		if _, err := s.oauth.ForgetUser(ctx, sess.UserID); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	if err := s.st.DeleteUser(ctx, sess.UserID); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.st.DeleteSession(ctx, sess.ID)
	s.homes.mu.Lock()
	delete(s.homes.last, sess.UserID)
	s.homes.mu.Unlock()
	s.setCookie(w, "", -1)
	s.logger(r.Context()).Info("account deleted", "user", sess.UserID, "connections", len(conns))
	s.render(w, r, http.StatusOK, "deleted", struct {
		page
		Counts  []dataCount
		Revoked []revokeResult
		Summary string
	}{
		page:    page{Title: "Account deleted", Sandbox: s.sandbox},
		Counts:  d.counts(),
		Revoked: revoked,
		Summary: fmt.Sprintf("Your account and everything we kept about you are gone: %d connections, %d cached calendar blocks and %d activity entries among them.", len(d.Connections), len(d.Events), len(d.Activity)),
	})
}
