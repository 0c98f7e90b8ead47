package zoomfake

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Category is Zoom's rate-limit label of an API.
type Category string

// The rate-limit categories (Resource-intensive APIs are not faked).
const (
	Light  Category = "Light"
	Medium Category = "Medium"
	Heavy  Category = "Heavy"
)

// Plan is the Zoom account's plan, which sets the rate limits.
type Plan string

// Plans with their own rate-limit tables.
const (
	PlanFree     Plan = "free"
	PlanPro      Plan = "pro"
	PlanBusiness Plan = "business" // Business, Education, Enterprise, Partners
)

// Limit is one category's rate limit for an account. A value <= 0 means
// no limit of that kind.
type Limit struct {
	PerSecond int
	PerDay    int
}

// DefaultLimits returns Zoom's documented limits for plan: Free 4/2/1 per
// second and 6,000/2,000/1,000 per day (Light/Medium/Heavy); Pro 30/20/10
// per second; Business+ 80/60/40 per second.
func DefaultLimits(plan Plan) map[Category]Limit {
	switch plan {
	case PlanFree:
		return map[Category]Limit{Light: {4, 6000}, Medium: {2, 2000}, Heavy: {1, 1000}}
	case PlanBusiness:
		return map[Category]Limit{Light: {80, 0}, Medium: {60, 0}, Heavy: {40, 0}}
	default:
		return map[Category]Limit{Light: {30, 0}, Medium: {20, 0}, Heavy: {10, 0}}
	}
}

func (s *Server) limit(c Category) Limit {
	if l, ok := s.opts.RateLimits[c]; ok {
		return l
	}
	return DefaultLimits(s.opts.Plan)[c]
}

// admit counts one request of category c for account at now, or reports
// which limit refused it ("QPS" or "Daily-limit"); s.mu must be held.
func (s *Server) admit(account string, c Category, now time.Time) (ok bool, kind string, l Limit) {
	l = s.limit(c)
	key := account + "/" + string(c)
	hits := s.hits[key]
	i := 0
	for i < len(hits) && now.Sub(hits[i]) >= time.Second {
		i++
	}
	hits = hits[i:]
	dayKey := key + "/" + now.UTC().Format(time.DateOnly)
	switch {
	case l.PerSecond > 0 && len(hits) >= l.PerSecond:
		s.hits[key] = hits
		return false, "QPS", l
	case l.PerDay > 0 && s.daily[dayKey] >= l.PerDay:
		s.hits[key] = hits
		return false, "Daily-limit", l
	}
	s.hits[key] = append(hits, now)
	s.daily[dayKey]++
	return true, "", l
}

// writeRateLimited writes Zoom's 429. kind is "QPS" or "Daily-limit".
func (s *Server) writeRateLimited(w http.ResponseWriter, c Category, kind string, limit int, now time.Time) {
	h := w.Header()
	h.Set("X-RateLimit-Category", string(c))
	if limit > 0 {
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	}
	h.Set("X-RateLimit-Remaining", "0")
	msg := "You have reached the maximum per-second rate limit for this API. Try again later."
	if kind == "Daily-limit" {
		msg = "You have reached the maximum daily rate limit for this API. Refer to the response header for details on when you can make another request."
	}
	if !s.opts.OmitRateLimitHeaders {
		h.Set("X-RateLimit-Type", kind)
		if kind == "Daily-limit" {
			y, m, d := now.UTC().Date()
			h.Set("Retry-After", time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339))
		} else {
			h.Set("Retry-After", "1")
		}
	}
	writeAPIError(w, http.StatusTooManyRequests, http.StatusTooManyRequests, msg)
}

// writeAPIError writes Zoom's REST error: {"code":…,"message":…}.
func writeAPIError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{"code": code, "message": message})
}

// Scopes accepted by each endpoint (any one of them suffices).
var (
	userScopes    = []string{ScopeUserRead, ScopeUserReadAdmin, ScopeClassicUserRead, ScopeClassicUserAdmin}
	meetingScopes = []string{ScopeMeetingsList, ScopeMeetingsListAdmin, ScopeClassicMeetingRead, ScopeClassicMeetingAdmin}
)

// apiHandler serves one REST endpoint for an authenticated user.
type apiHandler func(w http.ResponseWriter, r *http.Request, u *user, now time.Time)

// api wraps h with bearer authentication, the scope check, the path's user
// ("me" or the token's own user ID) and the rate limit of category c.
func (s *Server) api(c Category, scopes []string, h apiHandler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, info *reqInfo) {
		w.Header().Set("x-zm-trackingid", "v=2.0;clid=sbx;rid="+randHex(8))
		now := s.now()
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		at := s.access[strings.TrimSpace(tok)]
		switch {
		case !ok || at == nil || at.grant.revoked || s.users[at.grant.userID] == nil:
			s.mu.Unlock()
			writeAPIError(w, http.StatusUnauthorized, 124, "Invalid access token.")
			return
		case !now.Before(at.expires):
			s.mu.Unlock()
			writeAPIError(w, http.StatusUnauthorized, 124, "Access token is expired.")
			return
		}
		u := s.users[at.grant.userID]
		info.user = u.id
		if !slices.ContainsFunc(scopes, func(sc string) bool { return slices.Contains(at.grant.scopes, sc) }) {
			s.mu.Unlock()
			writeAPIError(w, http.StatusBadRequest, 4711,
				"Invalid access token, does not contain scopes:["+scopes[0]+", "+scopes[1]+"]")
			return
		}
		if id := r.PathValue("userId"); id != "me" && id != u.id {
			s.mu.Unlock()
			writeAPIError(w, http.StatusNotFound, 1001, "User does not exist: "+id+".")
			return
		}
		admitted, kind, l := s.admit(u.accountID, c, now)
		s.mu.Unlock()
		if !admitted {
			limit := l.PerSecond
			if kind == "Daily-limit" {
				limit = l.PerDay
			}
			s.writeRateLimited(w, c, kind, limit, now)
			return
		}
		w.Header().Set("X-RateLimit-Category", string(c))
		h(w, r, u, now)
	}
}

func (s *Server) handleAPINotFound(w http.ResponseWriter, _ *http.Request, _ *reqInfo) {
	writeAPIError(w, http.StatusNotFound, 404, "Not Found")
}

// handleUser serves GET /v2/users/me: Zoom's user object. The e-mail address
// is made up from the ID; the fake stores none.
func (s *Server) handleUser(w http.ResponseWriter, _ *http.Request, u *user, now time.Time) {
	writeJSON(w, http.StatusOK, map[string]any{
		"id":              u.id,
		"account_id":      u.accountID,
		"first_name":      "Sandbox",
		"last_name":       "User",
		"display_name":    "Sandbox User",
		"email":           emailOf(u.id),
		"type":            2,
		"role_name":       "Member",
		"pmi":             5_550_000_001,
		"use_pmi":         false,
		"timezone":        "UTC",
		"verified":        1,
		"dept":            "",
		"created_at":      "2024-01-01T00:00:00Z",
		"last_login_time": now.UTC().Format(time.RFC3339),
		"language":        "en-US",
		"status":          "active",
	})
}

// pageState is what a next_page_token stands for: a snapshot of the listing.
type pageState struct {
	userID   string
	items    []meetingJSON
	offset   int
	pageSize int
	expires  time.Time
}

type meetingJSON struct {
	UUID      string `json:"uuid"`
	ID        int64  `json:"id"`
	HostID    string `json:"host_id"`
	Topic     string `json:"topic"`
	Type      int    `json:"type"`
	StartTime string `json:"start_time,omitempty"`
	Duration  int    `json:"duration"`
	Timezone  string `json:"timezone"`
	CreatedAt string `json:"created_at"`
	JoinURL   string `json:"join_url"`
}

// handleMeetings serves GET /v2/users/{userId}/meetings with type
// scheduled (default), live, upcoming, upcoming_meetings or
// previous_meetings, paged with page_size and next_page_token.
func (s *Server) handleMeetings(w http.ResponseWriter, r *http.Request, u *user, now time.Time) {
	q := r.URL.Query()
	pageSize := DefaultPageSize
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeAPIError(w, http.StatusBadRequest, 300, "Invalid field: page_size.")
			return
		}
		pageSize = min(n, MaxPageSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps *pageState
	if tok := q.Get("next_page_token"); tok != "" {
		ps = s.pages[tok]
		delete(s.pages, tok)
		if ps == nil || ps.userID != u.id || !now.Before(ps.expires) {
			writeAPIError(w, http.StatusBadRequest, 300, "The next page token is either invalid or has expired.")
			return
		}
		ps.pageSize = pageSize
	} else {
		items, ok := s.listMeetings(u, q.Get("type"), now)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, 300, "Invalid field: type.")
			return
		}
		ps = &pageState{userID: u.id, items: items, pageSize: pageSize}
	}
	end := min(ps.offset+ps.pageSize, len(ps.items))
	page := ps.items[ps.offset:end]
	next := ""
	if end < len(ps.items) {
		next = randToken(32)
		s.pages[next] = &pageState{userID: u.id, items: ps.items, offset: end, expires: now.Add(PageTokenLifetime)}
	}
	if page == nil {
		page = []meetingJSON{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"page_size":       ps.pageSize,
		"total_records":   len(ps.items),
		"next_page_token": next,
		"meetings":        page,
	})
}

// listMeetings selects u's meetings for a list type; s.mu must be held.
func (s *Server) listMeetings(u *user, typ string, now time.Time) ([]meetingJSON, bool) {
	var out []meetingJSON
	add := func(m *Meeting) {
		mj := meetingJSON{UUID: m.UUID, ID: m.ID, HostID: u.id, Topic: m.Topic, Type: m.Type,
			Duration: int(m.Duration / time.Minute), Timezone: m.TimeZone,
			CreatedAt: m.Start.Add(-24 * time.Hour).UTC().Format(time.RFC3339),
			JoinURL:   "https://sandbox.invalid/j/" + strconv.FormatInt(m.ID, 10)}
		if m.Type != 3 && !m.Start.IsZero() {
			mj.StartTime = m.Start.UTC().Format(time.RFC3339)
		}
		out = append(out, mj)
	}
	ended := func(m *Meeting) bool { return m.Type != 3 && !now.Before(m.Start.Add(m.Duration)) }
	switch typ {
	case "", "scheduled": // every unexpired scheduled meeting
		for _, m := range u.meetings {
			if !ended(m) {
				add(m)
			}
		}
	case "upcoming", "upcoming_meetings": // the ones with a time that has not ended
		for _, m := range u.meetings {
			if m.Type != 3 && !ended(m) {
				add(m)
			}
		}
	case "previous_meetings":
		for _, m := range u.meetings {
			if ended(m) {
				add(m)
			}
		}
	case "live":
		for _, c := range s.live {
			if c.hostID == u.id {
				add(&Meeting{ID: c.id, UUID: c.uuid, Topic: c.topic, Type: c.typ, Start: c.start,
					Duration: c.duration, TimeZone: c.timezone})
			}
		}
	default:
		return nil, false
	}
	slices.SortStableFunc(out, func(a, b meetingJSON) int { return strings.Compare(a.StartTime, b.StartTime) })
	return out, true
}
