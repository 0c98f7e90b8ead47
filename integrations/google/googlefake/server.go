package googlefake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The default fake account, created when no account has been added by the
// time one is needed (the consent page, the sandbox page, a hook naming it).
const (
	DefaultSub   = "100000000000000000001"
	DefaultEmail = "ada@sandbox.invalid"
	DefaultName  = "Ada Sandbox"
)

// OAuth scopes the fake knows about.
const (
	ScopeOpenID                 = "openid"
	ScopeEmail                  = "email"
	ScopeProfile                = "profile"
	ScopeUserinfoEmail          = "https://www.googleapis.com/auth/userinfo.email"
	ScopeUserinfoProfile        = "https://www.googleapis.com/auth/userinfo.profile"
	ScopeCalendar               = "https://www.googleapis.com/auth/calendar"
	ScopeCalendarReadonly       = "https://www.googleapis.com/auth/calendar.readonly"
	ScopeCalendarEvents         = "https://www.googleapis.com/auth/calendar.events"
	ScopeCalendarEventsReadonly = "https://www.googleapis.com/auth/calendar.events.readonly"
	ScopeCalendarSettings       = "https://www.googleapis.com/auth/calendar.settings.readonly"
)

// Endpoint names used in [Call.Endpoint], [Server.FailNext] and
// [Server.WaitForCall]. Calendar names are Google's RPC method names.
const (
	EndpointDiscovery        = "oidc.discovery"
	EndpointJWKS             = "oidc.jwks"
	EndpointAuthorize        = "oauth2.authorize"
	EndpointConsent          = "oauth2.consent"
	EndpointToken            = "oauth2.token"
	EndpointRevoke           = "oauth2.revoke"
	EndpointUserinfo         = "oauth2.userinfo"
	EndpointCalendarListList = "calendar.calendarList.list"
	EndpointEventsList       = "calendar.events.list"
	EndpointEventsWatch      = "calendar.events.watch"
	EndpointChannelsStop     = "calendar.channels.stop"
	// EndpointPushNotification is not a request the fake receives but one
	// it sends: each attempt to deliver a push notification is logged
	// under it (see [Server.Calls]).
	EndpointPushNotification = "push.notification"
	EndpointSandboxPage      = "sandbox.page"
	EndpointSandboxAddEvent  = "sandbox.addEvent"
	EndpointUnknown          = "unknown"
)

// FaultMalformedJSON is a [Server.FailNext] reason that makes the next
// matching request answer with a truncated, unparsable JSON body (status 200
// unless another status is given).
const FaultMalformedJSON = "malformedJSON"

// Options configure a [Server]. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret identify the one registered OAuth client.
	// Random values are generated when empty; see [Server.ClientID] and
	// [Server.ClientSecret].
	ClientID     string
	ClientSecret string
	// RedirectURIs, when set, are the only redirect URIs the client may
	// use (exact match, as at Google). When empty any absolute http or
	// https URL is accepted.
	RedirectURIs []string
	// RequirePKCE rejects authorization requests without an S256
	// code_challenge. Google does not require PKCE for web clients, so
	// the default is false; a code_verifier is always checked when the
	// authorization request carried a challenge.
	RequirePKCE bool
	// AutoApprove skips the consent page: the authorization endpoint
	// approves at once for the account named by login_hint (sub or
	// e-mail) or else the first account.
	AutoApprove bool

	// Now is the clock (nil means time.Now). Token, code and channel
	// expiry, event timestamps and the per-minute quotas all use it.
	Now func() time.Time

	// UserRequestsPerMinute is the per-user quota for Calendar endpoints
	// over a sliding minute (default 600, as at Google).
	UserRequestsPerMinute int
	// ProjectRequestsPerMinute is the quota for Calendar endpoints across
	// all users (default 10,000).
	ProjectRequestsPerMinute int
	// RateLimitStatus is the status used when a quota is exceeded:
	// http.StatusForbidden (default; reason userRateLimitExceeded for the
	// per-user quota, rateLimitExceeded for the project quota) or
	// http.StatusTooManyRequests (reason rateLimitExceeded).
	RateLimitStatus int

	// AccessTokenTTL is the lifetime of access tokens (default one hour;
	// token responses say expires_in 3599, as Google does).
	AccessTokenTTL time.Duration
	// ChannelTTL is the longest lifetime of a push channel created by
	// events.watch (default 7 days); a shorter expiration or params.ttl
	// in the request wins.
	ChannelTTL time.Duration
	// AllowHTTPWebhooks accepts http:// addresses in events.watch when
	// their host is a loopback one (localhost, 127.0.0.0/8, ::1).
	// Google accepts https only; this relaxation exists for the sandbox
	// and tests, whose service listens on plain http.
	AllowHTTPWebhooks bool
	// HTTPWebhookHosts are more host names (without port) events.watch
	// accepts in an http:// address, whatever AllowHTTPWebhooks says: the
	// same relaxation for a test that maps a name to its service.
	HTTPWebhookHosts []string
	// HTTPClient sends push notifications (nil: a client with a 10-second
	// timeout). Tests that receive them on https give their server's
	// client.
	HTTPClient *http.Client
	// PushAttempts is how many times a push notification is sent while
	// the receiver answers 5xx or cannot be reached (default 3). Any
	// other answer, 2xx or 4xx, ends it.
	PushAttempts int
	// PushRetryDelay is the wall-clock wait before a notification's
	// second attempt, doubled before each later one (default 1s).
	PushRetryDelay time.Duration
	// TimeZone is the IANA time zone of every fake calendar (default
	// "UTC"); all-day events are placed in it.
	TimeZone string

	// CallLogLimit is how many calls [Server.Calls] keeps, oldest
	// dropped first (default 10,000; negative keeps none, for load tests
	// that count with OnCall instead). [Server.WaitForCall] counts every
	// call regardless.
	CallLogLimit int
	// OnCall, when set, is called with every request once it is answered,
	// while the fake's lock is held: it must be quick and must not call the
	// Server. Load tests use it to keep statistics instead of the call log.
	OnCall func(Call)

	// SigningKey signs ID tokens (RS256). A 2048-bit key is generated
	// when nil.
	SigningKey *rsa.PrivateKey
	// Logger receives one debug line per request (endpoint, status, the
	// account's subject ID); nil discards. Tokens, secrets, e-mail
	// addresses and titles are never logged.
	Logger *slog.Logger
}

// Server is the fake Google. It is an http.Handler; create it with [New].
// All methods are safe for concurrent use.
type Server struct {
	opts    Options
	now     func() time.Time
	key     *rsa.PrivateKey
	kid     string
	loc     *time.Location
	mux     *http.ServeMux
	tmpl    *template.Template
	logger  *slog.Logger
	maxTTL  time.Duration
	userQPM int
	projQPM int

	client *http.Client
	ctx    context.Context // ends with Close: deliveries stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // delivery goroutines

	mu            sync.Mutex
	closed        bool
	baseURL       string
	accounts      map[string]*account
	accountOrder  []string
	pending       map[string]*authRequest
	codes         map[string]*authCode
	grants        []*grant
	access        map[string]*accessToken
	accessKept    int // live access tokens after the last sweep
	refresh       map[string]*grant
	syncTokens    map[string]*syncState
	syncByKey     map[syncState]string
	syncRecent    map[string][]string // per calendar (list): its live tokens, oldest first
	pageTokens    map[string]*pageState
	channels      []*channel
	faults        []fault
	calls         []Call
	callCounts    map[string]int
	callsChanged  chan struct{}
	userWindow    map[string][]time.Time
	projectWindow []time.Time
	seq           int64
}

// Call is one request the fake received.
type Call struct {
	// Endpoint is one of the Endpoint constants.
	Endpoint string
	Method   string
	Path     string
	// Account is the subject ID of the account the request acted for,
	// when known (bearer token, code, refresh token, form field).
	Account string
	// Query holds the query parameters and, for form posts, the form
	// fields. Token-like values (codes, verifiers, secrets, access,
	// refresh, sync and page tokens, state, nonce) read "REDACTED".
	Query url.Values
	// Time is the fake clock's time when the request arrived.
	Time time.Time
	// Status is the HTTP status the fake answered with.
	Status int
}

type fault struct {
	match  string
	status int
	reason string
}

// New returns a fake Google configured by opts. Call [Server.SetBaseURL] once
// the listener's URL is known.
func New(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = randomDigits(12) + "-" + strings.ToLower(randomToken(16)) + ".apps.googleusercontent.com"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "GOCSPX-" + randomToken(21)
	}
	if opts.UserRequestsPerMinute <= 0 {
		opts.UserRequestsPerMinute = 600
	}
	if opts.ProjectRequestsPerMinute <= 0 {
		opts.ProjectRequestsPerMinute = 10000
	}
	if opts.RateLimitStatus != http.StatusTooManyRequests {
		opts.RateLimitStatus = http.StatusForbidden
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.ChannelTTL <= 0 {
		opts.ChannelTTL = 7 * 24 * time.Hour
	}
	if opts.CallLogLimit == 0 {
		opts.CallLogLimit = 10000
	}
	if opts.PushAttempts <= 0 {
		opts.PushAttempts = 3
	}
	if opts.PushRetryDelay <= 0 {
		opts.PushRetryDelay = time.Second
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.TimeZone == "" {
		opts.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(opts.TimeZone)
	if err != nil {
		panic(fmt.Sprintf("googlefake: time zone %q: %v", opts.TimeZone, err))
	}
	key := opts.SigningKey
	if key == nil {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("googlefake: generate signing key: %v", err))
		}
	}
	kidSum := sha256.Sum256(key.N.Bytes())
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		client:       client,
		ctx:          ctx,
		cancel:       cancel,
		opts:         opts,
		now:          now,
		key:          key,
		kid:          fmt.Sprintf("%x", kidSum[:20]),
		loc:          loc,
		tmpl:         template.Must(template.New("pages").Parse(pageTemplates)),
		logger:       logger,
		maxTTL:       opts.ChannelTTL,
		userQPM:      opts.UserRequestsPerMinute,
		projQPM:      opts.ProjectRequestsPerMinute,
		accounts:     make(map[string]*account),
		pending:      make(map[string]*authRequest),
		codes:        make(map[string]*authCode),
		access:       make(map[string]*accessToken),
		refresh:      make(map[string]*grant),
		syncTokens:   make(map[string]*syncState),
		syncByKey:    make(map[syncState]string),
		syncRecent:   make(map[string][]string),
		pageTokens:   make(map[string]*pageState),
		callCounts:   make(map[string]int),
		callsChanged: make(chan struct{}),
		userWindow:   make(map[string][]time.Time),
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

func (s *Server) routes() {
	s.handle("GET /.well-known/openid-configuration", EndpointDiscovery, s.handleDiscovery)
	s.handle("GET /oauth2/v3/certs", EndpointJWKS, s.handleJWKS)
	s.handle("GET /o/oauth2/v2/auth", EndpointAuthorize, s.handleAuthorize)
	s.handle("POST /o/oauth2/v2/auth/consent", EndpointConsent, s.handleConsent)
	s.handle("POST /token", EndpointToken, s.handleToken)
	s.handle("POST /revoke", EndpointRevoke, s.handleRevoke)
	s.handle("GET /v1/userinfo", EndpointUserinfo, s.handleUserinfo)
	s.handle("GET /oauth2/v3/userinfo", EndpointUserinfo, s.handleUserinfo)
	s.handle("GET /calendar/v3/users/me/calendarList", EndpointCalendarListList, s.calendarEndpoint(scopesCalendarList, s.handleCalendarList))
	s.handle("GET /calendar/v3/calendars/{calendarId}/events", EndpointEventsList, s.calendarEndpoint(scopesEventsRead, s.handleEventsList))
	s.handle("POST /calendar/v3/calendars/{calendarId}/events/watch", EndpointEventsWatch, s.calendarEndpoint(scopesEventsRead, s.handleEventsWatch))
	s.handle("POST /calendar/v3/channels/stop", EndpointChannelsStop, s.calendarEndpoint(scopesAnyCalendar, s.handleChannelsStop))
	s.handle("/calendar/v3/", EndpointUnknown, s.handleCalendarNotFound)
	s.handle("GET /{$}", EndpointSandboxPage, s.handleSandboxPage)
	s.handle("POST /_sandbox/events", EndpointSandboxAddEvent, s.handleSandboxAddEvent)
	s.handle("/", EndpointUnknown, s.handleNotFound)
}

// reqInfo is what a handler learns about the request for the call log.
type reqInfo struct {
	account string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, info *reqInfo)

// handle registers h under pattern with the call log, fault injection and
// logging around it.
func (s *Server) handle(pattern, endpoint string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		info := &reqInfo{}
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			r.Body = http.MaxBytesReader(rec, r.Body, 1<<20)
			_ = r.ParseForm() // handlers see a failure as missing fields
		}
		if tok, ok := bearerToken(r); ok {
			s.mu.Lock()
			if at := s.access[tok]; at != nil {
				info.account = at.grant.sub
			}
			s.mu.Unlock()
		}
		start := s.now()
		if f, ok := s.takeFault(endpoint, r.URL.Path); ok {
			writeFault(rec, endpoint, f)
		} else {
			h(rec, r, info)
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		var query url.Values
		if s.opts.CallLogLimit > 0 {
			query = redact(r)
		}
		s.record(Call{
			Endpoint: endpoint,
			Method:   r.Method,
			Path:     r.URL.Path,
			Account:  info.account,
			Query:    query,
			Time:     start,
			Status:   rec.status,
		})
		s.logger.LogAttrs(r.Context(), slog.LevelDebug, "googlefake request",
			slog.String("endpoint", endpoint), slog.Int("status", rec.status), slog.String("sub", info.account))
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetBaseURL sets the fake's own base URL (scheme and host, for example
// httptest.Server.URL; a trailing slash is dropped), which is the OIDC issuer,
// the "iss" of ID tokens and the prefix of every endpoint in discovery. It
// must equal the URL the client passes to oidc.NewProvider. Until it is
// called the base URL is derived from each request's Host header.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimSuffix(u, "/")
}

// ClientID returns the OAuth client ID the fake accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the OAuth client secret the fake accepts.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// base returns the issuer / base URL for r.
func (s *Server) base(r *http.Request) string {
	s.mu.Lock()
	b := s.baseURL
	s.mu.Unlock()
	if b != "" {
		return b
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// FailNext makes the next request that matches answer with status and reason
// instead of being served, once. match is an endpoint name (for example
// [EndpointEventsList]) or a path prefix starting with "/". Calendar endpoints
// answer with Google's JSON error shape (domain usageLimits for rate and quota
// reasons, global otherwise), OAuth endpoints with {"error": reason}. The
// reason [FaultMalformedJSON] sends a truncated JSON body instead (status 200
// when status is 0). Faults queue up and are matched in the order added.
func (s *Server) FailNext(match string, status int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{match: match, status: status, reason: reason})
}

func (s *Server) takeFault(endpoint, path string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.match == endpoint || (strings.HasPrefix(f.match, "/") && strings.HasPrefix(path, f.match)) {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return fault{}, false
}

func writeFault(w http.ResponseWriter, endpoint string, f fault) {
	if f.reason == FaultMalformedJSON {
		status := f.status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"kind": "calendar#events", "items": [{"id": "`)
		return
	}
	status := f.status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	reason := f.reason
	if reason == "" {
		reason = defaultReason(status)
	}
	if strings.HasPrefix(endpoint, "oauth2.") || strings.HasPrefix(endpoint, "oidc.") {
		writeOAuthError(w, status, reason, http.StatusText(status))
		return
	}
	msg := reasonMessage(reason)
	domain := "global"
	switch reason {
	case "rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded":
		domain = "usageLimits"
	}
	writeAPIError(w, status, msg, apiErrorItem{Domain: domain, Reason: reason, Message: msg})
}

func defaultReason(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "badRequest"
	case http.StatusUnauthorized:
		return "authError"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "notFound"
	case http.StatusGone:
		return "fullSyncRequired"
	case http.StatusTooManyRequests:
		return "rateLimitExceeded"
	default:
		return "backendError"
	}
}

func reasonMessage(reason string) string {
	switch reason {
	case "rateLimitExceeded":
		return "Rate Limit Exceeded"
	case "userRateLimitExceeded":
		return "User Rate Limit Exceeded"
	case "quotaExceeded":
		return "Calendar usage limits exceeded."
	case "backendError":
		return "Backend Error"
	case "notFound":
		return "Not Found"
	case "forbidden":
		return "Forbidden"
	case "badRequest":
		return "Bad Request"
	case "authError":
		return "Invalid Credentials"
	case "fullSyncRequired":
		return "Sync token is no longer valid, a full sync is required."
	default:
		return reason
	}
}

// record appends c to the call log and wakes waiters.
func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.OnCall != nil {
		s.opts.OnCall(c)
	}
	if s.opts.CallLogLimit > 0 {
		if len(s.calls) >= s.opts.CallLogLimit {
			s.calls = slices.Delete(s.calls, 0, len(s.calls)-s.opts.CallLogLimit+1)
		}
		s.calls = append(s.calls, c)
	}
	s.callCounts[c.Endpoint]++
	close(s.callsChanged)
	s.callsChanged = make(chan struct{})
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
// since the server started and returns the logged calls to endpoint, oldest
// first; or returns ctx's error. It waits on a channel, never by polling.
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
			return s.CallsTo(endpoint), fmt.Errorf("googlefake: waiting for %d calls to %s (have %d): %w", n, endpoint, count, ctx.Err())
		}
	}
}

// sensitiveParams are the parameters whose values the call log redacts.
var sensitiveParams = map[string]bool{
	"access_token": true, "client_secret": true, "code": true, "code_verifier": true,
	"refresh_token": true, "token": true, "id_token": true, "syncToken": true,
	"pageToken": true, "state": true, "nonce": true, "code_challenge": true,
	"assertion": true, "request": true, "login_hint": true, "summary": true,
}

func redact(r *http.Request) url.Values {
	out := url.Values{}
	add := func(v url.Values) {
		for k, vs := range v {
			for _, x := range vs {
				if sensitiveParams[k] {
					x = "REDACTED"
				}
				out[k] = append(out[k], x)
			}
		}
	}
	add(r.URL.Query())
	add(r.PostForm)
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

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

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

var lowerBase32Hex = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// randomToken returns n bytes of randomness, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomEventID returns an ID in the alphabet Google uses for event IDs.
func randomEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return lowerBase32Hex.EncodeToString(b)
}

func randomDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	http.Error(w, "404. That’s an error. The requested URL was not found on this server.", http.StatusNotFound)
}
