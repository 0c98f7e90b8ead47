package googlefake

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Resource states of push notifications (X-Goog-Resource-State).
const (
	// StateSync is the first message of every channel, right after
	// events.watch (message number 1).
	StateSync = "sync"
	// StateExists follows every change of an event of the watched
	// calendar: created, updated or deleted.
	StateExists = "exists"
)

// pushUserAgent is the User-Agent Google's push notifications carry.
const pushUserAgent = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"

// channel is a Channel with its delivery state.
type channel struct {
	Channel
	messages int64          // message numbers given out so far
	queue    []notification // waiting to be sent, in order
	sending  bool           // a goroutine is draining queue
}

// notification is one message of a channel.
type notification struct {
	state  string
	number int64
}

// liveLocked reports whether ch still sends: not stopped, not expired on
// the fake's clock.
func (s *Server) liveLocked(ch *channel) bool {
	return !ch.Stopped && s.now().Before(ch.Expiration)
}

// webhookHostAllowed reports whether an http:// address on host is
// accepted (see [Options.AllowHTTPWebhooks], [Options.HTTPWebhookHosts]).
func (s *Server) webhookHostAllowed(host string) bool {
	if slices.Contains(s.opts.HTTPWebhookHosts, host) {
		return true
	}
	if !s.opts.AllowHTTPWebhooks {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// enqueueLocked queues a message of state on ch with the channel's next
// message number, and starts the channel's sender if it is idle. Messages
// of one channel go out one at a time, in order.
func (s *Server) enqueueLocked(ch *channel, state string) {
	if s.closed {
		return
	}
	ch.messages++
	ch.queue = append(ch.queue, notification{state: state, number: ch.messages})
	if ch.sending {
		return
	}
	ch.sending = true
	s.wg.Add(1)
	go s.send(ch)
}

// changedLocked sends an "exists" message to every live channel watching
// the calendar (of account sub) that changed, unless the channel was
// restricted to other event types.
func (s *Server) changedLocked(sub, calendarID, eventType string) {
	for _, ch := range s.channels {
		if ch.Account != sub || ch.CalendarID != calendarID || !s.liveLocked(ch) {
			continue
		}
		if len(ch.EventTypes) > 0 && !slices.Contains(ch.EventTypes, eventType) {
			continue
		}
		s.enqueueLocked(ch, StateExists)
	}
}

// send drains ch's queue.
func (s *Server) send(ch *channel) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(ch.queue) == 0 || s.closed {
			ch.queue, ch.sending = nil, false
			s.mu.Unlock()
			return
		}
		n := ch.queue[0]
		ch.queue = ch.queue[1:]
		s.mu.Unlock()
		s.deliver(ch, n)
	}
}

// deliver POSTs one notification, again after a growing wait while the
// receiver answers 5xx or cannot be reached, up to [Options.PushAttempts]
// times; it gives up early when the channel is stopped or expires, or the
// fake is closed. Each attempt is logged as a call to
// [EndpointPushNotification].
func (s *Server) deliver(ch *channel, n notification) {
	delay := s.opts.PushRetryDelay
	for attempt := 1; attempt <= s.opts.PushAttempts; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			delay *= 2
		}
		s.mu.Lock()
		live, c := s.liveLocked(ch), ch.Channel
		s.mu.Unlock()
		if !live {
			return
		}
		status, failure := s.post(c, n)
		q := url.Values{
			"channelId":     {c.ID},
			"resourceState": {n.state},
			"messageNumber": {strconv.FormatInt(n.number, 10)},
			"attempt":       {strconv.Itoa(attempt)},
		}
		if failure != "" {
			q.Set("error", failure)
		}
		s.record(Call{
			Endpoint: EndpointPushNotification,
			Method:   http.MethodPost,
			Path:     c.Address,
			Account:  c.Account,
			Query:    q,
			Time:     s.now(),
			Status:   status,
		})
		s.logger.LogAttrs(s.ctx, slog.LevelDebug, "googlefake push",
			slog.String("state", n.state), slog.Int64("message", n.number), slog.Int("attempt", attempt),
			slog.Int("status", status), slog.String("err", failure))
		if failure == "" && status < 500 {
			return
		}
	}
}

// post sends one attempt and returns the receiver's status, or why there
// was none.
func (s *Server) post(c Channel, n notification) (status int, failure string) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Address, http.NoBody)
	if err != nil {
		return 0, "bad address"
	}
	h := req.Header
	h.Set("User-Agent", pushUserAgent)
	h.Set("X-Goog-Channel-ID", c.ID)
	if c.Token != "" {
		h.Set("X-Goog-Channel-Token", c.Token)
	}
	h.Set("X-Goog-Channel-Expiration", c.Expiration.UTC().Format(http.TimeFormat))
	h.Set("X-Goog-Message-Number", strconv.FormatInt(n.number, 10))
	h.Set("X-Goog-Resource-ID", c.ResourceID)
	h.Set("X-Goog-Resource-URI", c.ResourceURI)
	h.Set("X-Goog-Resource-State", n.state)
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, "timeout"
		}
		return 0, "request failed"
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, ""
}

// Close stops push deliveries, waiting for those in flight to end. The
// fake keeps serving requests; it sends nothing more.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
