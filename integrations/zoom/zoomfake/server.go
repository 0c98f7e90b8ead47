package zoomfake

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The default account and user, present until the first [Server.AddUser].
const (
	DefaultAccountID = "SbxAccount0000000000001"
	DefaultUserID    = "SbxUserAda000000000001"
)

// Scopes the fake knows. The app's scopes are Options.Scopes; every token
// carries all of them (Zoom grants the scopes configured on the app, not
// ones named in the authorize URL).
const (
	ScopeUserRead            = "user:read:user"                   // granular: GET /users/me
	ScopeUserReadAdmin       = "user:read:user:admin"             // granular, account-wide
	ScopeMeetingsList        = "meeting:read:list_meetings"       // granular: GET /users/me/meetings
	ScopeMeetingsListAdmin   = "meeting:read:list_meetings:admin" // granular, account-wide
	ScopeClassicUserRead     = "user:read"                        // classic
	ScopeClassicMeetingRead  = "meeting:read"                     // classic
	ScopeClassicUserAdmin    = "user:read:admin"                  // classic, account-wide
	ScopeClassicMeetingAdmin = "meeting:read:admin"               // classic, account-wide
)

// DefaultScopes are the app's scopes when Options.Scopes is empty: the
// least a client needs to read the user and their meetings.
func DefaultScopes() []string { return []string{ScopeUserRead, ScopeMeetingsList} }

// Endpoint names used in [Call.Endpoint], [Server.FailNext] and
// [Server.WaitForCall].
const (
	EndpointAuthorize    = "oauth.authorize"
	EndpointConsent      = "oauth.consent"
	EndpointToken        = "oauth.token"
	EndpointRevoke       = "oauth.revoke"
	EndpointUsersMe      = "users.get"
	EndpointMeetingsList = "meetings.list"
	EndpointSandbox      = "sandbox"
	EndpointUnknown      = "unknown"
)

// Lifetimes that follow Zoom's documented values.
const (
	// CodeLifetime is how long an authorization code can be exchanged.
	CodeLifetime = 5 * time.Minute
	// DefaultAccessTokenTTL is the lifetime of an access token; token
	// responses say expires_in 3599.
	DefaultAccessTokenTTL = time.Hour
	// DefaultRefreshTokenTTL is the lifetime of a refresh token. Zoom's
	// figure is not confirmed (90 days is the common report).
	DefaultRefreshTokenTTL = 90 * 24 * time.Hour
	// PageTokenLifetime is how long a next_page_token works (15 minutes at Zoom).
	PageTokenLifetime = 15 * time.Minute
	// DefaultPageSize and MaxPageSize bound page_size on list endpoints.
	DefaultPageSize = 30
	MaxPageSize     = 300
)

// Options configure a [Server]. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret are the app's OAuth credentials; random
	// when empty (read them back with [Server.ClientID] and [Server.ClientSecret]).
	ClientID     string
	ClientSecret string
	// RedirectURIs, when set, is the app's allow list: an authorize
	// request's redirect_uri must start with one of them. When empty any
	// absolute http(s) URL is accepted.
	RedirectURIs []string
	// Scopes are the app's scopes, granted with every token
	// (DefaultScopes when empty).
	Scopes []string
	// RequirePKCE refuses authorize requests without an S256 code_challenge.
	RequirePKCE bool
	// AutoApprove skips the consent page: GET /oauth/authorize approves at
	// once as AutoApproveUser (the first user when empty), as a signed-in
	// person who clicks Allow would.
	AutoApprove     bool
	AutoApproveUser string

	// Now is the clock (nil: time.Now).
	Now func() time.Time

	// AccessTokenTTL and RefreshTokenTTL override the token lifetimes.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// RefreshErrorCode is the "error" of the answer to a refresh with a
	// dead refresh token: "invalid_grant" (default) or "invalid_request";
	// Zoom has been reported to send both, always with reason "Invalid Token!".
	RefreshErrorCode string

	// Plan picks the rate-limit table (PlanPro when empty).
	Plan Plan
	// RateLimits overrides the plan's limits per category.
	RateLimits map[Category]Limit
	// OmitRateLimitHeaders leaves X-RateLimit-Type and Retry-After out of
	// 429 answers, as users report Zoom sometimes does.
	OmitRateLimitHeaders bool

	// WebhookSecretToken is the app's webhook Secret Token (random when
	// empty; see [Server.WebhookSecretToken]).
	WebhookSecretToken string
	// WebhookURL is our endpoint (see also [Server.SetWebhookURL]).
	WebhookURL string
	// WebhookClient posts webhooks (nil: a client with Zoom's 3-second timeout).
	WebhookClient *http.Client
}

// Server is the fake Zoom. Create it with [New]; it is safe for concurrent use.
type Server struct {
	opts   Options
	now    func() time.Time
	mux    *http.ServeMux
	scopes []string

	mu           sync.Mutex
	webhookURL   string
	autoApprove  bool
	autoUser     string
	seeded       bool
	users        map[string]*user
	userOrder    []string
	pending      map[string]*authRequest
	codes        map[string]*authCode
	access       map[string]*accessToken
	refresh      map[string]*refreshToken
	pages        map[string]*pageState
	live         map[string]*liveCall // by meeting ID
	hits         map[string][]time.Time
	daily        map[string]int
	faults       []fault
	calls        []Call
	callCounts   map[string]int
	callsChanged chan struct{}
	deliveries   []Delivery
	lastEventTS  int64
}

type user struct {
	id, accountID string
	meetings      []*Meeting
}

// Meeting is a scheduled meeting of the fake's, as [Server.AddMeeting] takes it.
type Meeting struct {
	// ID is Zoom's meeting number (generated when 0: 11 digits, above 2^32
	// like real ones).
	ID int64
	// UUID identifies the meeting instance (generated when empty).
	UUID  string
	Topic string
	// Type is Zoom's meeting type: 2 scheduled (the default), 3 recurring
	// with no fixed time, 8 recurring with a fixed time.
	Type     int
	Start    time.Time
	Duration time.Duration // whole minutes count
	TimeZone string        // IANA name, "UTC" when empty
}

// Call is one request the fake received.
type Call struct {
	Endpoint string // one of the Endpoint constants
	Method   string
	Path     string
	// User is the Zoom user ID the request acted for, when known.
	User string
	// Query holds the query parameters and form fields; token-like values
	// (code, code_verifier, refresh_token, token, state, client_secret,
	// next_page_token) read "REDACTED".
	Query  url.Values
	Time   time.Time // the fake clock when the request arrived
	Status int
}

type fault struct {
	endpoint string
	status   int
	body     string // empty: Zoom's error for the status
}

// New returns a fake Zoom configured by opts. Until AddUser is called it has
// one account, DefaultAccountID, with one user, DefaultUserID.
func New(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = randToken(22)
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = randToken(32)
	}
	if opts.WebhookSecretToken == "" {
		opts.WebhookSecretToken = randToken(22)
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if opts.RefreshTokenTTL <= 0 {
		opts.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if opts.RefreshErrorCode == "" {
		opts.RefreshErrorCode = "invalid_grant"
	}
	if opts.Plan == "" {
		opts.Plan = PlanPro
	}
	if opts.WebhookClient == nil {
		opts.WebhookClient = &http.Client{Timeout: 3 * time.Second}
	}
	// Keep copies, so a caller changing its map or slice later races with nothing.
	opts.RedirectURIs = slices.Clone(opts.RedirectURIs)
	opts.RateLimits = maps.Clone(opts.RateLimits)
	s := &Server{
		opts:         opts,
		now:          opts.Now,
		scopes:       slices.Clone(opts.Scopes),
		webhookURL:   opts.WebhookURL,
		autoApprove:  opts.AutoApprove,
		autoUser:     opts.AutoApproveUser,
		users:        map[string]*user{},
		pending:      map[string]*authRequest{},
		codes:        map[string]*authCode{},
		access:       map[string]*accessToken{},
		refresh:      map[string]*refreshToken{},
		pages:        map[string]*pageState{},
		live:         map[string]*liveCall{},
		hits:         map[string][]time.Time{},
		daily:        map[string]int{},
		callCounts:   map[string]int{},
		callsChanged: make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if len(s.scopes) == 0 {
		s.scopes = DefaultScopes()
	}
	s.addUser(DefaultAccountID, DefaultUserID)
	s.seeded = true

	s.mux = http.NewServeMux()
	s.handle("GET /{$}", EndpointSandbox, s.handlePage)
	s.handle("POST /sandbox/start", EndpointSandbox, s.handleSandboxStart)
	s.handle("POST /sandbox/end", EndpointSandbox, s.handleSandboxEnd)
	s.handle("GET /oauth/authorize", EndpointAuthorize, s.handleAuthorize)
	s.handle("POST /oauth/authorize", EndpointConsent, s.handleConsent)
	s.handle("POST /oauth/token", EndpointToken, s.handleToken)
	s.handle("POST /oauth/revoke", EndpointRevoke, s.handleRevoke)
	s.handle("GET /v2/users/{userId}", EndpointUsersMe, s.api(Light, userScopes, s.handleUser))
	s.handle("GET /v2/users/{userId}/meetings", EndpointMeetingsList, s.api(Medium, meetingScopes, s.handleMeetings))
	s.handle("/v2/", EndpointUnknown, s.handleAPINotFound)
	s.handle("/", EndpointUnknown, func(w http.ResponseWriter, r *http.Request, _ *reqInfo) { http.NotFound(w, r) })
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ClientID returns the app's OAuth client ID.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the app's OAuth client secret.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// WebhookSecretToken returns the app's webhook Secret Token.
func (s *Server) WebhookSecretToken() string { return s.opts.WebhookSecretToken }

// SetWebhookURL sets our endpoint, where the webhook hooks POST.
func (s *Server) SetWebhookURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookURL = u
}

// SetAutoApprove turns auto-approval on as userID ("" for the first user),
// or off when on is false.
func (s *Server) SetAutoApprove(on bool, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoApprove, s.autoUser = on, userID
}

// AddUser adds a user to an account (DefaultAccountID when accountID is
// empty). The first AddUser removes the default user.
func (s *Server) AddUser(accountID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seeded {
		s.seeded = false
		delete(s.users, DefaultUserID)
		s.userOrder = nil
	}
	if accountID == "" {
		accountID = DefaultAccountID
	}
	s.addUser(accountID, userID)
}

func (s *Server) addUser(accountID, userID string) {
	if u := s.users[userID]; u != nil {
		u.accountID = accountID
		return
	}
	s.users[userID] = &user{id: userID, accountID: accountID}
	s.userOrder = append(s.userOrder, userID)
}

// Users returns the user IDs, in the order they were added.
func (s *Server) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.userOrder)
}

// AddMeeting schedules a meeting hosted by userID and returns its ID. It
// panics when the user does not exist: it is a test helper.
func (s *Server) AddMeeting(userID string, m Meeting) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil {
		panic("zoomfake: AddMeeting: unknown user " + userID)
	}
	if m.ID == 0 {
		m.ID = newMeetingID()
	}
	if m.UUID == "" {
		m.UUID = newUUID()
	}
	if m.Type == 0 {
		m.Type = 2
	}
	if m.TimeZone == "" {
		m.TimeZone = "UTC"
	}
	m.Duration = m.Duration.Truncate(time.Minute)
	u.meetings = append(u.meetings, &m)
	return m.ID
}

// RemoveMeeting deletes a scheduled meeting.
func (s *Server) RemoveMeeting(userID string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[userID]; u != nil {
		u.meetings = slices.DeleteFunc(u.meetings, func(m *Meeting) bool { return m.ID == id })
	}
}

// Meetings returns a user's scheduled meetings.
func (s *Server) Meetings(userID string) []Meeting {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil {
		return nil
	}
	out := make([]Meeting, len(u.meetings))
	for i, m := range u.meetings {
		out[i] = *m
	}
	return out
}

// FailNext makes the next request to endpoint (one of the Endpoint
// constants) fail once with status and Zoom's error body for it: the OAuth
// error shape on the token and revoke endpoints, {"code","message"} on the
// REST API (a 429 comes with the rate-limit headers). Faults queue up in order.
func (s *Server) FailNext(endpoint string, status int) {
	s.FailNextBody(endpoint, status, "")
}

// FailNextBody is FailNext with the response body given verbatim (a
// malformed body, an unusual error); an empty body means Zoom's.
func (s *Server) FailNextBody(endpoint string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{endpoint: endpoint, status: status, body: body})
}

func (s *Server) takeFault(endpoint string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.endpoint == endpoint {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return fault{}, false
}

// Calls returns a copy of the call log, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Query = cloneValues(c.Query)
		out[i] = c
	}
	return out
}

// CallsTo returns the logged calls to endpoint, oldest first.
func (s *Server) CallsTo(endpoint string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Endpoint == endpoint {
			out = append(out, c)
		}
	}
	return out
}

// WaitForCall blocks until at least n calls to endpoint have been answered
// since the server started, and returns the logged calls to it; or returns
// ctx's error. It waits on a channel, never by polling.
func (s *Server) WaitForCall(ctx context.Context, endpoint string, n int) ([]Call, error) {
	for {
		s.mu.Lock()
		count := s.callCounts[endpoint]
		changed := s.callsChanged
		s.mu.Unlock()
		if count >= n {
			return s.CallsTo(endpoint), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s.CallsTo(endpoint), fmt.Errorf("zoomfake: waiting for %d calls to %s (have %d): %w", n, endpoint, count, ctx.Err())
		}
	}
}

// reqInfo is what a handler tells the call log about a request.
type reqInfo struct{ user string }

type handlerFunc func(w http.ResponseWriter, r *http.Request, info *reqInfo)

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// maxBodyBytes bounds request bodies.
const maxBodyBytes = 1 << 20

// handle registers h under pattern with fault injection and the call log around it.
func (s *Server) handle(pattern, endpoint string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(rec, r.Body, maxBodyBytes)
			_ = r.ParseForm() // handlers see a failure as missing fields
		}
		start := s.now()
		info := &reqInfo{}
		if f, ok := s.takeFault(endpoint); ok {
			s.writeFault(rec, endpoint, f, start)
		} else {
			h(rec, r, info)
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.record(Call{Endpoint: endpoint, Method: r.Method, Path: r.URL.Path, User: info.user,
			Query: redact(r), Time: start, Status: rec.status})
	})
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const keep = 10000
	if len(s.calls) >= keep {
		s.calls = slices.Delete(s.calls, 0, len(s.calls)-keep+1)
	}
	s.calls = append(s.calls, c)
	s.callCounts[c.Endpoint]++
	close(s.callsChanged)
	s.callsChanged = make(chan struct{})
}

func (s *Server) writeFault(w http.ResponseWriter, endpoint string, f fault, now time.Time) {
	status := f.status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if f.body != "" {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.body))
		return
	}
	switch endpoint {
	case EndpointToken, EndpointRevoke:
		code, reason := "server_error", http.StatusText(status)
		switch status {
		case http.StatusBadRequest:
			code, reason = s.opts.RefreshErrorCode, "Invalid Token!"
		case http.StatusUnauthorized:
			code, reason = "invalid_client", "Invalid client_id or client_secret"
		case http.StatusTooManyRequests:
			code, reason = "too_many_requests", "Too many requests"
		}
		writeOAuthError(w, status, code, reason)
		return
	}
	switch status {
	case http.StatusTooManyRequests:
		s.writeRateLimited(w, Medium, "QPS", 0, now)
	case http.StatusUnauthorized:
		writeAPIError(w, status, 124, "Invalid access token.")
	default:
		writeAPIError(w, status, status, http.StatusText(status))
	}
}

// redact copies the request's query and form, hiding token-like values.
func redact(r *http.Request) url.Values {
	out := cloneValues(r.URL.Query())
	for k, vs := range r.PostForm {
		out[k] = slices.Clone(vs)
	}
	for _, k := range []string{"code", "code_verifier", "refresh_token", "token", "state", "client_secret", "next_page_token", "access_token"} {
		if _, ok := out[k]; ok {
			out[k] = []string{"REDACTED"}
		}
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// randToken returns n random characters of base64url.
func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newMeetingID returns an 11-digit meeting number (above 2^32, as Zoom's are).
func newMeetingID() int64 {
	n, _ := rand.Int(rand.Reader, big.NewInt(89_999_999_999))
	return 10_000_000_000 + n.Int64()
}

// newUUID returns a meeting UUID in Zoom's shape (24 characters of base64 ending in "==").
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// emailOf makes up an address for answers; the fake stores none.
func emailOf(userID string) string { return strings.ToLower(userID) + "@sandbox.invalid" }
