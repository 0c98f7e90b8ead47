package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// graphNotification is the part of a Microsoft Graph change notification we use.
type graphNotification struct {
	SubscriptionID string `json:"subscriptionId"`
	ClientState    string `json:"clientState"`
	ChangeType     string `json:"changeType"`
	Resource       string `json:"resource"`
	TenantID       string `json:"tenantId"`
}

// objectID is the user a notification is about ("Users/{oid}/Events/{id}").
func (n graphNotification) objectID() string {
	parts := strings.Split(strings.Trim(n.Resource, "/"), "/")
	if len(parts) >= 2 && strings.EqualFold(parts[0], "users") {
		return parts[1]
	}
	return ""
}

// handleMicrosoftWebhook receives Graph change notifications for Outlook calendars.
//
// A subscription's validation handshake (?validationToken=…) is answered with the token as
// text/plain. A notification is accepted only when its clientState matches, in constant time,
// the one stored with its subscription; the person is then marked for a sync and the scheduler
// woken. The answer is quick (202): the sync happens in the scheduler, not here.
func (s *Server) handleMicrosoftWebhook(w http.ResponseWriter, r *http.Request) {
	if vals, ok := r.URL.Query()["validationToken"]; ok {
		tok := ""
		if len(vals) > 0 {
			tok = vals[0]
		}
		if tok == "" || len(tok) > 1024 {
			http.Error(w, "validationToken is empty or too long", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, tok)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var doc struct {
		Value []graphNotification `json:"value"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		s.logger(r.Context()).Warn("microsoft notification refused: malformed JSON")
		s.metrics.Push("microsoft", false)
		http.Error(w, "not a change notification: malformed JSON", http.StatusBadRequest)
		return
	}
	if len(doc.Value) == 0 {
		s.logger(r.Context()).Warn("microsoft notification refused: no value array")
		s.metrics.Push("microsoft", false)
		http.Error(w, "not a change notification: no value array (a validation handshake needs ?validationToken=)", http.StatusBadRequest)
		return
	}
	accepted := 0
	now := s.clock.Now()
	for _, n := range doc.Value {
		c, ok := s.matchSubscription(r, n)
		if !ok {
			continue
		}
		accepted++
		if err := s.st.RequestSync(r.Context(), c.UserID, c.ID, now); err != nil {
			s.logger(r.Context()).Error("request a sync from a notification", "err", err)
			http.Error(w, "could not record the notification; please retry", http.StatusServiceUnavailable)
			return
		}
		s.wake(r.Context(), c.UserID)
	}
	if accepted == 0 {
		s.logger(r.Context()).Warn("microsoft notification refused: unknown subscription or wrong clientState", "count", len(doc.Value))
		s.metrics.Push("microsoft", false)
		http.Error(w, "no notification matched a subscription with this clientState", http.StatusForbidden)
		return
	}
	s.metrics.Push("microsoft", true)
	w.WriteHeader(http.StatusAccepted)
}

// matchSubscription finds the Outlook connection whose stored subscription the notification
// belongs to, checking its clientState.
func (s *Server) matchSubscription(r *http.Request, n graphNotification) (store.Connection, bool) {
	oid := n.objectID()
	if oid == "" || n.SubscriptionID == "" {
		return store.Connection{}, false
	}
	conns, err := s.st.FindConnections(r.Context(), "outlook", oid)
	if err != nil {
		s.logger(r.Context()).Error("find connections", "err", err)
		return store.Connection{}, false
	}
	for _, c := range conns {
		states, err := s.st.ListSyncStates(r.Context(), c.ID)
		if err != nil {
			continue
		}
		for _, ss := range states {
			if ss.ChannelID == n.SubscriptionID && store.ChannelTokenMatches(ss.ChannelToken, n.ClientState) &&
				(ss.ChannelExpiry.IsZero() || ss.ChannelExpiry.After(s.clock.Now().Add(-time.Hour))) {
				return c, true
			}
		}
	}
	return store.Connection{}, false
}
