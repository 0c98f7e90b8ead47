package web

import (
	"context"
	"net/http"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/zoom"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// ZoomClient is what the web needs of Zoom.
type ZoomClient interface {
	AuthCodeURL(state, verifier string) (string, error)
	Exchange(ctx context.Context, code, verifier string, now time.Time) (zoom.Connect, error)
	Revoke(ctx context.Context, cred provider.Credential) error
	VerifyWebhook(h http.Header, body []byte, now time.Time) (zoom.Webhook, error)
	URLValidationResponse(plainToken string) []byte
}

const (
	// zoomResource is the one synced resource of a Zoom connection: upcoming meetings.
	zoomResource = "meetings"
	// zoomLive is the source suffix of live calls (from webhooks), apart from the synced ones.
	zoomLive = "live"
	// liveProvisional is how long a live call is assumed to last until Zoom says it ended:
	// the status expires by then even if the "ended" webhook never comes.
	liveProvisional = 4 * time.Hour
	// seenTTL is how long a delivery ID is remembered (Zoom retries for far less).
	seenTTL = 48 * time.Hour
)

func (s *Server) zoomFlows(z ZoomClient) {
	s.connect["zoom"] = oauthFlow{"Zoom",
		func(_ context.Context, state, _, verifier string) (string, error) {
			return z.AuthCodeURL(state, verifier)
		},
		func(ctx context.Context, code, verifier, _ string, now time.Time) (Grant, error) {
			res, err := z.Exchange(ctx, code, verifier, now)
			return Grant{ExternalID: res.UserID, TeamID: res.AccountID, Scopes: res.Scopes, Credential: res.Credential, Resources: []string{zoomResource}}, err
		}}
	s.revokers["zoom"] = func(ctx context.Context, cred provider.Credential, _ []store.SyncState) error {
		return z.Revoke(ctx, cred)
	}
}

// handleZoomWebhook receives Zoom's event notifications. The signature (x-zm-signature over
// "v0:{timestamp}:{body}") and the timestamp window are checked before anything is parsed; the
// endpoint validation is answered; a delivery seen before is acknowledged and ignored. Calls
// that start and end drive a live "on a Zoom call" block, which beats the calendar.
func (s *Server) handleZoomWebhook(w http.ResponseWriter, r *http.Request) {
	if s.zoom == nil {
		http.Error(w, "Zoom is not configured on this server", http.StatusNotFound)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	now := s.clock.Now()
	ev, err := s.zoom.VerifyWebhook(r.Header, body, now)
	if err != nil {
		s.logger(r.Context()).Warn("zoom webhook refused", "err", err)
		s.metrics.Push("zoom", false)
		http.Error(w, "refused: "+err.Error(), zoom.WebhookStatus(err))
		return
	}
	s.metrics.Push("zoom", true)
	if ev.Event == zoom.EventURLValidation {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.zoom.URLValidationResponse(ev.PlainToken))
		return
	}
	first, err := s.st.MarkSeen(r.Context(), "zoom:"+ev.EventID, seenTTL)
	if err != nil {
		s.logger(r.Context()).Error("record zoom delivery", "err", err)
		http.Error(w, "could not record the delivery; please retry", http.StatusServiceUnavailable)
		return
	}
	if !first {
		w.WriteHeader(http.StatusOK) // a redelivery: acknowledged, acted on once already
		return
	}
	if ev.UserID == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	conns, err := s.st.FindConnections(r.Context(), "zoom", ev.UserID)
	if err != nil {
		s.logger(r.Context()).Error("find zoom connections", "err", err)
		s.st.UnmarkSeen(r.Context(), "zoom:"+ev.EventID)
		http.Error(w, "could not handle the delivery; please retry", http.StatusServiceUnavailable)
		return
	}
	for _, c := range conns {
		if err := s.applyZoomEvent(r.Context(), c, ev, now); err != nil {
			s.logger(r.Context()).Error("apply zoom event", "user", c.UserID, "err", err)
			// Forget the delivery so Zoom's retry is acted on.
			if uerr := s.st.UnmarkSeen(r.Context(), "zoom:"+ev.EventID); uerr != nil {
				s.logger(r.Context()).Error("forget zoom delivery", "err", uerr)
			}
			http.Error(w, "could not handle the delivery; please retry", http.StatusServiceUnavailable)
			return
		}
		s.wake(r.Context(), c.UserID)
	}
	w.WriteHeader(http.StatusOK)
}

// applyZoomEvent turns a call starting or ending into the live block of one connection.
func (s *Server) applyZoomEvent(ctx context.Context, c store.Connection, ev zoom.Webhook, now time.Time) error {
	source := c.ID + "/" + zoomLive
	at := ev.EventTime
	if at.IsZero() || at.After(now) {
		at = now
	}
	key := ev.MeetingUUID
	if key == "" {
		key = ev.MeetingID
	}
	live, err := s.liveCalls(ctx, c.UserID, source, now)
	if err != nil {
		return err
	}
	switch ev.Event {
	case zoom.EventMeetingStarted, zoom.EventParticipantJoined:
		if key == "" {
			return nil
		}
		for _, e := range live {
			if e.ID == key {
				return nil // already in progress
			}
		}
		start := at
		if ev.Event == zoom.EventParticipantJoined && !ev.ParticipantTime.IsZero() && !ev.ParticipantTime.After(now) {
			start = ev.ParticipantTime
		}
		s.st.AppendActivity(ctx, c.UserID, store.Activity{At: now, Kind: string(presence.KindZoomCall), Target: "zoom", Outcome: "call started"})
		return s.st.PutEvents(ctx, c.UserID, []presence.Event{{
			Source: source, ID: key, Type: presence.EventZoomLive, Start: start, End: start.Add(liveProvisional),
			Busy: presence.BusyBusy, HasOtherAttendees: true,
		}})
	case zoom.EventMeetingEnded, zoom.EventParticipantLeft:
		return s.endLive(ctx, c.UserID, live, func(e presence.Event) bool { return key == "" || e.ID == key }, at, now)
	case zoom.EventPresenceUpdated:
		// Back to Available (or away) while we think a call is live: the "ended" delivery was
		// missed. End every live call now.
		switch ev.PresenceStatus {
		case "Available", "Away", "Offline":
			return s.endLive(ctx, c.UserID, live, func(presence.Event) bool { return true }, at, now)
		}
	}
	return nil
}

// liveCalls returns the live calls of a source that are still in progress.
func (s *Server) liveCalls(ctx context.Context, userID, source string, now time.Time) ([]presence.Event, error) {
	evs, err := s.st.ListEvents(ctx, userID, now.Add(-liveProvisional), now.Add(time.Minute))
	if err != nil {
		return nil, err
	}
	var live []presence.Event
	for _, e := range evs {
		if e.Source == source && e.End.After(now) {
			live = append(live, e)
		}
	}
	return live, nil
}

// endLive ends the matching live calls at at.
func (s *Server) endLive(ctx context.Context, userID string, live []presence.Event, match func(presence.Event) bool, at, now time.Time) error {
	var ended []presence.Event
	for _, e := range live {
		if match(e) {
			e.End = at
			if !e.End.After(e.Start) {
				e.End = e.Start.Add(time.Second)
			}
			ended = append(ended, e)
		}
	}
	if len(ended) == 0 {
		return nil
	}
	s.st.AppendActivity(ctx, userID, store.Activity{At: now, Kind: string(presence.KindZoomCall), Target: "zoom", Outcome: "call ended"})
	if err := s.st.PutEvents(ctx, userID, ended); err != nil {
		return err
	}
	return s.endMeetingsEarly(ctx, userID, ended, at, now)
}

// endMeetingsEarly: a call that ends before its meeting's scheduled end ends the meeting's
// status too (Zoom knows when the call really ended). It adds a "back" override from the end of
// the call to the end of the calendar or Zoom meetings the call overlapped, so a meeting that
// follows is not touched.
func (s *Server) endMeetingsEarly(ctx context.Context, userID string, calls []presence.Event, at, now time.Time) error {
	evs, err := s.st.ListEvents(ctx, userID, at, at.Add(time.Second))
	if err != nil {
		return err
	}
	var until time.Time
	for _, e := range evs {
		if e.Type == presence.EventZoomLive || e.AllDay || !e.Start.Before(at) || !e.End.After(at) {
			continue
		}
		if e.Type != presence.EventDefault && e.Type != presence.EventZoomScheduled {
			continue // focus time, out of office: not the meeting the call was
		}
		for _, c := range calls {
			if e.Start.Before(c.End) && c.Start.Before(e.End) && e.End.After(until) {
				until = e.End
			}
		}
	}
	if until.IsZero() {
		return nil
	}
	return s.st.PutOverride(ctx, userID, presence.Override{
		ID: "zoom-ended-" + randomToken(6), Kind: presence.OverrideBack, Start: at, End: until, Origin: "zoom",
	})
}
