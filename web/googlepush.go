package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// Headers of a Google push notification.
const (
	hdrGoogChannelID     = "X-Goog-Channel-ID"
	hdrGoogChannelToken  = "X-Goog-Channel-Token"
	hdrGoogMessageNumber = "X-Goog-Message-Number"
	hdrGoogResourceState = "X-Goog-Resource-State"
)

// googleChannelGrace is how long after its expiry a channel's notifications are still taken
// (a notification sent just before expiry, delivered late): as for Graph subscriptions.
const googleChannelGrace = time.Hour

// handleGoogleWebhook receives Google Calendar push notifications: the channels the scheduler
// makes with events.watch. Google names only the channel (X-Goog-Channel-ID) and echoes the
// token we gave it (X-Goog-Channel-Token); the body is empty, and whatever comes is read under
// the usual body limit and ignored. Google stops retrying on any 2xx and, as far as is known,
// retries only 5xx, so:
//
//   - 400: not a Google notification: no or an over-long channel ID, no message number, or a
//     resource state other than sync, exists and not_exists.
//   - 404: a channel we do not know, or no longer (replaced, stopped, its connection
//     disconnected, expired over an hour ago). It is never retried; Google stops sending when
//     the channel expires, or at once when it was stopped. The "sync" message of a new
//     channel usually comes before the scheduler stored the channel: it gets this 404 too,
//     quietly (a debug line, not counted as refused), as there was nothing to do.
//   - 401: a channel we know with a missing or wrong token (compared in constant time). The
//     sender knows the channel ID but not its secret: nothing is done.
//   - 200: "sync" (the first message of a channel: nothing to do); "exists" and "not_exists"
//     (something in the calendar changed: the connection is marked for a sync and its person
//     woken; the incremental sync sees deletions too); or a message number of this channel
//     seen before (acted on once already).
//   - 503: the store failed; Google retries.
func (s *Server) handleGoogleWebhook(w http.ResponseWriter, r *http.Request) {
	if s.google == nil {
		http.Error(w, "Google is not configured on this server", http.StatusNotFound)
		return
	}
	if _, ok := readBody(w, r); !ok {
		s.metrics.Push("google", false)
		return
	}
	ctx := r.Context()
	refuse := func(status int, msg string) {
		s.logger(ctx).Warn("google notification refused", "status", status, "why", msg)
		s.metrics.Push("google", false)
		http.Error(w, msg, status)
	}
	id, state := r.Header.Get(hdrGoogChannelID), r.Header.Get(hdrGoogResourceState)
	number, err := strconv.ParseUint(r.Header.Get(hdrGoogMessageNumber), 10, 64)
	switch {
	case id == "" || len(id) > 64:
		refuse(http.StatusBadRequest, "not a Google push notification: "+hdrGoogChannelID+" is missing or longer than 64 characters")
		return
	case err != nil:
		refuse(http.StatusBadRequest, "not a Google push notification: "+hdrGoogMessageNumber+" is missing or not a number")
		return
	case state != "sync" && state != "exists" && state != "not_exists":
		refuse(http.StatusBadRequest, "not a Google push notification: "+hdrGoogResourceState+" is not sync, exists or not_exists")
		return
	}
	now := s.clock.Now()
	ss, err := s.st.FindChannel(ctx, id)
	if errors.Is(err, store.ErrNotFound) && state == "sync" {
		// Expected once per channel: Google sends "sync" as soon as it made the channel,
		// usually before the scheduler has stored it. Nothing was to be done anyway.
		s.logger(ctx).Debug("google sync message of a channel not stored (yet)")
		http.Error(w, "no such channel", http.StatusNotFound)
		return
	} else if errors.Is(err, store.ErrNotFound) {
		refuse(http.StatusNotFound, "no such channel")
		return
	} else if err != nil {
		s.logger(ctx).Error("find a push channel", "err", err)
		http.Error(w, "could not look the channel up; please retry", http.StatusServiceUnavailable)
		return
	}
	tok := r.Header.Get(hdrGoogChannelToken)
	if !store.ChannelTokenMatches(ss.ChannelToken, tok) {
		refuse(http.StatusUnauthorized, "wrong channel token")
		return
	}
	c, err := s.st.GetConnection(ctx, ss.UserID, ss.ConnectionID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Provider != "google") ||
		(!ss.ChannelExpiry.IsZero() && ss.ChannelExpiry.Before(now.Add(-googleChannelGrace))) {
		refuse(http.StatusNotFound, "no such channel")
		return
	} else if err != nil {
		s.logger(ctx).Error("read the connection of a push channel", "err", err)
		http.Error(w, "could not look the channel up; please retry", http.StatusServiceUnavailable)
		return
	}
	s.metrics.Push("google", true)
	if state == "sync" {
		w.WriteHeader(http.StatusOK)
		return
	}
	seen := "google:" + id + ":" + strconv.FormatUint(number, 10)
	first, err := s.st.MarkSeen(ctx, seen, seenTTL)
	if err != nil {
		s.logger(ctx).Error("record a google notification", "err", err)
		http.Error(w, "could not record the notification; please retry", http.StatusServiceUnavailable)
		return
	}
	if !first {
		w.WriteHeader(http.StatusOK) // a redelivery: acted on once already
		return
	}
	if err := s.st.RequestSync(ctx, c.UserID, c.ID, now); err != nil {
		s.logger(ctx).Error("request a sync from a notification", "err", err)
		// Forget the message so Google's retry is acted on.
		if uerr := s.st.UnmarkSeen(ctx, seen); uerr != nil {
			s.logger(ctx).Error("forget a google notification", "err", uerr)
		}
		http.Error(w, "could not record the notification; please retry", http.StatusServiceUnavailable)
		return
	}
	s.wake(ctx, c.UserID)
	s.logger(ctx).Debug("google notification", "user", c.UserID, "connection", c.ID, "state", state)
	w.WriteHeader(http.StatusOK)
}
