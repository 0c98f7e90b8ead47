package slackfake

import "time"

// window is a sliding log of admitted requests for one key.
type window struct {
	hits []time.Time
}

// rateWindow is the length of Slack's rate-limit windows (Options.RateWindow can shorten the
// per-method ones).
const rateWindow = time.Minute

// check reports whether one more request fits under limit per window at now, and if not how
// long until the oldest request that blocks it leaves the window.
func (w *window) check(limit int, per time.Duration, now time.Time) (ok bool, retryAfter time.Duration) {
	i := 0
	for i < len(w.hits) && now.Sub(w.hits[i]) >= per {
		i++
	}
	w.hits = w.hits[i:]
	if len(w.hits) < limit {
		return true, 0
	}
	return false, w.hits[len(w.hits)-limit].Add(per).Sub(now)
}

func (w *window) take(now time.Time) { w.hits = append(w.hits, now) }

// limit is one rate limit that applies to a request.
type limit struct {
	key string
	max int
	per time.Duration // the window; 0 means rateWindow
}

// admit checks every limit and, when all allow the request, counts it in
// each; otherwise it returns the Retry-After in whole seconds (at least 1)
// of the first limit that refused. s.mu must be held.
func (s *Server) admit(now time.Time, limits ...limit) (ok bool, retryAfterSeconds int) {
	for _, l := range limits {
		if l.max <= 0 {
			continue
		}
		w := s.windows[l.key]
		if w == nil {
			w = &window{}
			s.windows[l.key] = w
		}
		per := l.per
		if per <= 0 {
			per = rateWindow
		}
		if ok, d := w.check(l.max, per, now); !ok {
			secs := int((d + time.Second - 1) / time.Second)
			return false, max(secs, 1)
		}
	}
	for _, l := range limits {
		if l.max > 0 {
			s.windows[l.key].take(now)
		}
	}
	return true, 0
}

// methodWindow is the window of the per-method workspace limits.
func (s *Server) methodWindow() time.Duration {
	if s.opts.RateWindow > 0 {
		return s.opts.RateWindow
	}
	return rateWindow
}

// methodLimit is the per-minute limit of method per workspace.
func (s *Server) methodLimit(method string) int {
	if n, ok := s.opts.RateLimits[method]; ok {
		return n
	}
	return defaultRateLimits[method]
}

// profileUserLimit is the per-minute users.profile.set limit for one person.
func (s *Server) profileUserLimit() int {
	switch n := s.opts.ProfileSetPerUserLimit; {
	case n < 0:
		return 0
	case n == 0:
		return DefaultProfileSetPerUserLimit
	default:
		return n
	}
}
