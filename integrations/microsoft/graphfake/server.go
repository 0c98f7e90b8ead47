package graphfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The default tenant and account, created when no account has been added by
// the time one is needed (the consent page, the sandbox page, a hook naming
// DefaultOID).
const (
	DefaultTenantID = "5a1dbb0e-0000-4000-8000-00000000cafe"
	DefaultOID      = "0d5c1a2b-0000-4000-8000-0000000000a1"
	DefaultName     = "Ada Sandbox"
	DefaultEmail    = "ada@sandbox.onmicrosoft.invalid"
)

// Scopes (delegated permissions and OpenID Connect scopes) the fake knows.
// Requests may also name Graph permissions by their full URI,
// "https://graph.microsoft.com/Calendars.Read".
const (
	ScopeOpenID                = "openid"
	ScopeProfile               = "profile"
	ScopeEmail                 = "email"
	ScopeOfflineAccess         = "offline_access"
	ScopeUserRead              = "User.Read"
	ScopeUserReadBasicAll      = "User.ReadBasic.All"
	ScopeCalendarsRead         = "Calendars.Read"
	ScopeCalendarsReadBasic    = "Calendars.ReadBasic"
	ScopeCalendarsReadWrite    = "Calendars.ReadWrite"
	ScopePresenceRead          = "Presence.Read"
	ScopePresenceReadAll       = "Presence.Read.All"
	ScopePresenceReadWrite     = "Presence.ReadWrite"
	ScopePresenceReadWriteAll  = "Presence.ReadWrite.All"
	graphResource              = "https://graph.microsoft.com/"
	graphResourceDefaultSuffix = ".default"
)

// Endpoint names used in [Call.Endpoint], [Server.FailNext] and
// [Server.WaitForCall].
const (
	EndpointDiscovery                  = "identity.discovery"
	EndpointJWKS                       = "identity.jwks"
	EndpointAuthorize                  = "identity.authorize"
	EndpointConsent                    = "identity.consent"
	EndpointToken                      = "identity.token"
	EndpointUserinfo                   = "identity.userinfo"
	EndpointMe                         = "graph.user.get"
	EndpointCalendarViewDelta          = "graph.calendarView.delta"
	EndpointCalendarView               = "graph.calendarView.list"
	EndpointPresenceGet                = "graph.presence.get"
	EndpointSetPresence                = "graph.presence.setPresence"
	EndpointClearPresence              = "graph.presence.clearPresence"
	EndpointSetUserPreferredPresence   = "graph.presence.setUserPreferredPresence"
	EndpointClearUserPreferredPresence = "graph.presence.clearUserPreferredPresence"
	EndpointSetStatusMessage           = "graph.presence.setStatusMessage"
	EndpointSubscriptionCreate         = "graph.subscriptions.create"
	EndpointSubscriptionList           = "graph.subscriptions.list"
	EndpointSubscriptionGet            = "graph.subscriptions.get"
	EndpointSubscriptionUpdate         = "graph.subscriptions.update"
	EndpointSubscriptionDelete         = "graph.subscriptions.delete"
	EndpointSandboxPage                = "sandbox.page"
	EndpointSandboxAddEvent            = "sandbox.addEvent"
	EndpointUnknown                    = "unknown"
)

// Graph error codes the fake answers with (the "code" of
// {"error":{"code":…,"message":…}}).
const (
	CodeInvalidAuthenticationToken  = "InvalidAuthenticationToken"
	CodeAuthorizationRequestDenied  = "Authorization_RequestDenied"
	CodeErrorAccessDenied           = "ErrorAccessDenied"
	CodeForbidden                   = "Forbidden"
	CodeTooManyRequests             = "TooManyRequests"
	CodeSyncStateNotFound           = "SyncStateNotFound"
	CodeBadRequest                  = "BadRequest"
	CodeErrorInvalidParameter       = "ErrorInvalidParameter"
	CodeValidationError             = "ValidationError"
	CodeInvalidRequest              = "InvalidRequest"
	CodeNotFound                    = "NotFound"
	CodeResourceNotFound            = "ResourceNotFound"
	CodeRequestResourceNotFound     = "Request_ResourceNotFound"
	CodeInternalServerError         = "InternalServerError"
	CodeServiceUnavailable          = "ServiceUnavailable"
	CodeMethodNotAllowed            = "Request_BadRequest"
	defaultMaxEventSubscriptionMins = 4230
)

// RateLimit is a request budget over a sliding window.
type RateLimit struct {
	// Requests is how many requests the window admits. Zero means the
	// default; a negative value turns the limit off.
	Requests int
	// Window is the window's length. Zero means the default.
	Window time.Duration
}

// Options configure a [Server]. The zero value is usable.
type Options struct {
	// ClientID (the application ID, a GUID) and ClientSecret identify the
	// one registered app. Random values are generated when empty; read
	// them back with [Server.ClientID] and [Server.ClientSecret].
	ClientID     string
	ClientSecret string
	// RedirectURIs, when set, are the only redirect URIs the app may use
	// (exact match, as in the app registration). When empty any absolute
	// http or https URL without a fragment is accepted.
	RedirectURIs []string
	// AutoApprove skips the consent page: the authorization endpoint
	// approves at once for the account named by login_hint (UPN, e-mail
	// or object ID) or else the first account of the tenant.
	AutoApprove bool
	// AllowMissingPKCE accepts authorization requests without a PKCE
	// challenge. The identity platform does not require PKCE from web
	// apps, but dontinterrupt always sends one, so by default the fake
	// refuses requests without an S256 code_challenge.
	AllowMissingPKCE bool
	// KeepOldRefreshTokens keeps a refresh token valid after it has been
	// redeemed, as the identity platform documents ("doesn't revoke old
	// refresh tokens when used"). By default the fake is stricter: every
	// refresh answers with a new refresh token and the old one then
	// fails with invalid_grant (AADSTS70008), which proves the client
	// persists the rotated token.
	KeepOldRefreshTokens bool

	// Now is the clock (nil means time.Now). Token and code expiry,
	// presence sessions, status messages, subscriptions, throttling
	// windows and event timestamps all use it.
	Now func() time.Time

	// AccessTokenTTL is the lifetime of access tokens (default one hour).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of refresh tokens (default 90 days).
	RefreshTokenTTL time.Duration

	// OutlookLimit is the budget of calendar requests per app per mailbox
	// (default 10,000 per 10 minutes, Graph's Outlook limit).
	OutlookLimit RateLimit
	// PresenceLimit is the budget of presence requests per app per tenant
	// (default 1,500 per 30 seconds, Graph's cloud communications limit).
	PresenceLimit RateLimit

	// DefaultPageSize is the calendarView page size when the request has
	// no Prefer: odata.maxpagesize (default 10; Graph's default is not
	// documented). MaxPageSize caps odata.maxpagesize (default 1000).
	DefaultPageSize int
	MaxPageSize     int
	// SyncStateStatus and SyncStateCode are the HTTP status and Graph
	// error code for an invalidated or unknown delta or skip token
	// (default 410 and "SyncStateNotFound"; Graph's exact code for event
	// delta is not documented).
	SyncStateStatus int
	SyncStateCode   string
	// CancelledAsRemoved makes events with IsCancelled come back from
	// delta as {"@removed":{"reason":"deleted"}} instead of as full events
	// with "isCancelled": true (the default, as for an attendee whose
	// meeting the organizer cancelled).
	CancelledAsRemoved bool

	// NoSessionAvailability and NoSessionActivity are the presence of a
	// person with no presence session (default Offline/Offline).
	NoSessionAvailability string
	NoSessionActivity     string
	// MaxStatusMessageLength, when positive, makes setStatusMessage refuse
	// longer messages (in characters) with 400. Graph's limit is not
	// documented; the default is no limit.
	MaxStatusMessageLength int

	// MaxSubscriptionLifetime is the longest lifetime of a subscription
	// to events (default 4,230 minutes, the documented value; newer
	// sources quote 10,080).
	MaxSubscriptionLifetime time.Duration
	// AllowHTTPWebhooks accepts http:// notification URLs. Graph requires
	// https; sandbox mode and tests on loopback need this.
	AllowHTTPWebhooks bool
	// ValidationTimeout is how long the subscription validation handshake
	// waits for the notification URL's answer (default 10 s, as Graph).
	ValidationTimeout time.Duration
	// NotificationTimeout is how long a change notification delivery
	// waits for an answer (default 10 s; Graph expects one within 3 s and
	// counts slower ones against the endpoint).
	NotificationTimeout time.Duration
	// ManualNotifications turns off the automatic change notifications
	// sent when AddEvent, UpdateEvent or DeleteEvent change a mailbox;
	// [Server.Notify] still sends them.
	ManualNotifications bool
	// HTTPClient delivers validation requests and notifications (default
	// a plain client). The timeouts above apply on top of its own.
	HTTPClient *http.Client

	// CallLogLimit is how many calls [Server.Calls] keeps, oldest
	// dropped first (default 10,000). [Server.WaitForCall] counts every
	// call regardless.
	CallLogLimit int

	// SigningKey signs ID tokens (RS256). A 2048-bit key is generated
	// when nil.
	SigningKey *rsa.PrivateKey
	// Logger receives one debug line per request (endpoint, status, the
	// account's object ID) and per webhook delivery; nil discards.
	// Tokens, secrets, client states, e-mail addresses and subjects are
	// never logged.
	Logger *slog.Logger
}

// Server is the fake Microsoft identity platform and Graph. It is an
// http.Handler; create it with [New] and stop its webhook deliveries with
// [Server.Close]. All methods are safe for concurrent use.
type Server struct {
	opts   Options
	now    func() time.Time
	key    *rsa.PrivateKey
	kid    string
	tmpl   *template.Template
	logger *slog.Logger
	client *http.Client

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	baseURL    string
	tenants    map[string]*tenant
	users      map[string]*user
	userOrder  []string
	pending    map[string]*authRequest
	codes      map[string]*authCode
	grants     []*grant
	access     map[string]*accessToken
	refresh    map[string]*refreshToken
	pages      map[string]*pageState
	deltas     map[string]*deltaState
	subs       map[string]*subscription
	subOrder   []string
	deliveries []Delivery
	faults     []fault
	calls      []Call
	callCounts map[string]int
	changed    chan struct{} // closed and replaced on every call and delivery
	windows    map[string]*window
	seq        int64
	closed     bool
}

// Call is one request the fake received.
type Call struct {
	// Endpoint is one of the Endpoint constants.
	Endpoint string
	Method   string
	Path     string
	// User is the object ID of the account the request acted for, when
	// known (bearer token, code, refresh token, consent).
	User string
	// Query holds the query parameters and, for form posts, the form
	// fields. Token-like values (codes, verifiers, secrets, tokens,
	// skip and delta tokens, state, nonce, login hints) read "REDACTED".
	Query url.Values
	// Time is the fake clock's time when the request arrived.
	Time time.Time
	// Status is the HTTP status the fake answered with.
	Status int
}

type fault struct {
	match  string
	status int
	code   string
}

// New returns a fake configured by opts. Call [Server.SetBaseURL] once the
// listener's URL is known, and [Server.Close] when done.
func New(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = newGUID()
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = randomSecret()
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.RefreshTokenTTL <= 0 {
		opts.RefreshTokenTTL = 90 * 24 * time.Hour
	}
	opts.OutlookLimit = withDefaults(opts.OutlookLimit, 10000, 10*time.Minute)
	opts.PresenceLimit = withDefaults(opts.PresenceLimit, 1500, 30*time.Second)
	if opts.DefaultPageSize <= 0 {
		opts.DefaultPageSize = 10
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 1000
	}
	if opts.SyncStateStatus == 0 {
		opts.SyncStateStatus = http.StatusGone
	}
	if opts.SyncStateCode == "" {
		opts.SyncStateCode = CodeSyncStateNotFound
	}
	if opts.NoSessionAvailability == "" {
		opts.NoSessionAvailability = "Offline"
	}
	if opts.NoSessionActivity == "" {
		opts.NoSessionActivity = "Offline"
	}
	if opts.MaxSubscriptionLifetime <= 0 {
		opts.MaxSubscriptionLifetime = defaultMaxEventSubscriptionMins * time.Minute
	}
	if opts.ValidationTimeout <= 0 {
		opts.ValidationTimeout = 10 * time.Second
	}
	if opts.NotificationTimeout <= 0 {
		opts.NotificationTimeout = 10 * time.Second
	}
	if opts.CallLogLimit <= 0 {
		opts.CallLogLimit = 10000
	}
	key := opts.SigningKey
	if key == nil {
		var err error
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("graphfake: generate signing key: %v", err))
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
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:       opts,
		now:        now,
		key:        key,
		kid:        base64.RawURLEncoding.EncodeToString(kidSum[:20]),
		tmpl:       template.Must(template.New("pages").Parse(pageTemplates)),
		logger:     logger,
		client:     client,
		ctx:        ctx,
		cancel:     cancel,
		tenants:    make(map[string]*tenant),
		users:      make(map[string]*user),
		pending:    make(map[string]*authRequest),
		codes:      make(map[string]*authCode),
		access:     make(map[string]*accessToken),
		refresh:    make(map[string]*refreshToken),
		pages:      make(map[string]*pageState),
		deltas:     make(map[string]*deltaState),
		subs:       make(map[string]*subscription),
		callCounts: make(map[string]int),
		changed:    make(chan struct{}),
		windows:    make(map[string]*window),
	}
}

func withDefaults(l RateLimit, n int, d time.Duration) RateLimit {
	if l.Requests == 0 {
		l.Requests = n
	}
	if l.Window <= 0 {
		l.Window = d
	}
	return l
}

// Close stops webhook deliveries in flight and waits for their goroutines.
// The handler keeps answering requests; later changes send no
// notifications.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// SetBaseURL sets the fake's own base URL (scheme and host, for example
// httptest.Server.URL; a trailing slash is dropped). It stands for both
// https://login.microsoftonline.com (issuers, discovery endpoints) and
// https://graph.microsoft.com (so the Graph SDK's base URL is
// base+"/v1.0"), and prefixes @odata.nextLink and @odata.deltaLink. Until
// it is called the base URL is derived from each request's Host header.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimSuffix(u, "/")
}

// ClientID returns the application (client) ID the fake accepts. It is also
// the only sessionId setPresence accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the client secret the fake accepts.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// base returns the base URL for r.
func (s *Server) base(r *http.Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseLocked(r)
}

func (s *Server) baseLocked(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// reqInfo is what a handler learns about the request for the call log.
type reqInfo struct {
	user string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, info *reqInfo)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, h := s.route(r)
	rec := &statusRecorder{ResponseWriter: w}
	info := &reqInfo{}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(rec, r.Body, 1<<20)
		_ = r.ParseForm() // handlers see a failure as missing fields
	}
	if tok, ok := bearerToken(r); ok {
		s.mu.Lock()
		if at := s.access[tok]; at != nil {
			info.user = at.grant.oid
		}
		s.mu.Unlock()
	}
	start := s.now()
	if f, ok := s.takeFault(endpoint, r.URL.Path); ok {
		s.writeFault(rec, r, endpoint, f)
	} else {
		h(rec, r, info)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	s.record(Call{
		Endpoint: endpoint,
		Method:   r.Method,
		Path:     r.URL.Path,
		User:     info.user,
		Query:    redact(r),
		Time:     start,
		Status:   rec.status,
	})
	s.logger.LogAttrs(r.Context(), slog.LevelDebug, "graphfake request",
		slog.String("endpoint", endpoint), slog.Int("status", rec.status), slog.String("oid", info.user))
}

// route maps a request to its endpoint name and handler. Identity paths are
// matched exactly; Graph paths case-insensitively, as Graph does.
func (s *Server) route(r *http.Request) (string, handlerFunc) {
	p := r.URL.Path
	switch {
	case p == "/":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return EndpointUnknown, methodNotAllowed
		}
		return EndpointSandboxPage, s.handleSandboxPage
	case p == "/_sandbox/events":
		if r.Method != http.MethodPost {
			return EndpointUnknown, methodNotAllowed
		}
		return EndpointSandboxAddEvent, s.handleSandboxAddEvent
	case p == consentPath:
		if r.Method != http.MethodPost {
			return EndpointUnknown, methodNotAllowed
		}
		return EndpointConsent, s.handleConsent
	case p == "/oidc/userinfo":
		return EndpointUserinfo, s.handleUserinfo
	case len(p) >= 6 && strings.EqualFold(p[:6], "/v1.0/"):
		return s.graphRoute(r)
	}
	seg := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(seg) < 2 {
		return EndpointUnknown, s.handleNotFound
	}
	tenant, rest := seg[0], strings.Join(seg[1:], "/")
	var endpoint string
	var h func(http.ResponseWriter, *http.Request, *reqInfo, string)
	method := http.MethodGet
	switch rest {
	case "v2.0/.well-known/openid-configuration":
		endpoint, h = EndpointDiscovery, s.handleDiscovery
	case "discovery/v2.0/keys", "discovery/keys":
		endpoint, h = EndpointJWKS, s.handleJWKS
	case "oauth2/v2.0/authorize":
		endpoint, h = EndpointAuthorize, s.handleAuthorize
	case "oauth2/v2.0/token":
		endpoint, h, method = EndpointToken, s.handleToken, http.MethodPost
	default:
		return EndpointUnknown, s.handleNotFound
	}
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		return endpoint, methodNotAllowed
	}
	return endpoint, func(w http.ResponseWriter, r *http.Request, info *reqInfo) { h(w, r, info, tenant) }
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request, _ *reqInfo) {
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func (s *Server) handleNotFound(w http.ResponseWriter, _ *http.Request, _ *reqInfo) {
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// FailNext makes the next request that matches answer with status and code
// instead of being served, once. match is an endpoint name (for example
// [EndpointSetPresence]) or a path prefix starting with "/" (for example
// "/v1.0/me/presence"). Graph endpoints answer with Graph's error body
// {"error":{"code":code,…}} (429 and 503 with Retry-After: 1), identity
// endpoints with {"error":code,"error_description":…}. An empty code is
// derived from status. Faults queue up and are matched in the order added.
func (s *Server) FailNext(match string, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{match: match, status: status, code: code})
}

func (s *Server) takeFault(endpoint, path string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.match == endpoint || (strings.HasPrefix(f.match, "/") && strings.HasPrefix(strings.ToLower(path), strings.ToLower(f.match))) {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return fault{}, false
}

func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, endpoint string, f fault) {
	status := f.status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	code := f.code
	if strings.HasPrefix(endpoint, "identity.") {
		if code == "" {
			code = "temporarily_unavailable"
			if status < 500 {
				code = "invalid_request"
			}
		}
		writeAADError(w, status, code, 90000, "Injected fault.", s.now())
		return
	}
	if code == "" {
		code = defaultCode(status)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	s.graphError(w, r, status, code, "Injected fault: "+http.StatusText(status)+".")
}

func defaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeInvalidAuthenticationToken
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusGone:
		return CodeSyncStateNotFound
	case http.StatusTooManyRequests:
		return CodeTooManyRequests
	case http.StatusServiceUnavailable:
		return CodeServiceUnavailable
	default:
		return CodeInternalServerError
	}
}

// graphError writes Graph's OData error body.
func (s *Server) graphError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	reqID := newGUID()
	inner := map[string]string{
		"date":       s.now().UTC().Format("2006-01-02T15:04:05"),
		"request-id": reqID,
	}
	if cid := r.Header.Get("client-request-id"); cid != "" {
		inner["client-request-id"] = cid
		w.Header().Set("client-request-id", cid)
	}
	w.Header().Set("request-id", reqID)
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":       code,
		"message":    message,
		"innerError": inner,
	}})
}

// record appends c to the call log and wakes waiters.
func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) >= s.opts.CallLogLimit {
		s.calls = slices.Delete(s.calls, 0, len(s.calls)-s.opts.CallLogLimit+1)
	}
	s.calls = append(s.calls, c)
	s.callCounts[c.Endpoint]++
	s.wakeLocked()
}

func (s *Server) wakeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
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
		changed := s.changed
		s.mu.Unlock()
		if count >= n {
			return s.CallsTo(endpoint), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s.CallsTo(endpoint), fmt.Errorf("graphfake: waiting for %d calls to %s (have %d): %w", n, endpoint, count, ctx.Err())
		}
	}
}

// sensitiveParams are the parameters whose values the call log redacts.
var sensitiveParams = map[string]bool{
	"client_secret": true, "code": true, "code_verifier": true, "refresh_token": true,
	"access_token": true, "id_token": true, "state": true, "nonce": true,
	"code_challenge": true, "login_hint": true, "request": true, "client_assertion": true,
	"$skiptoken": true, "$deltatoken": true, "validationtoken": true, "subject": true,
	"assertion": true, "password": true,
}

func redact(r *http.Request) url.Values {
	out := url.Values{}
	add := func(v url.Values) {
		for k, vs := range v {
			for _, x := range vs {
				if sensitiveParams[strings.ToLower(k)] {
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
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "graphfake: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// randomToken returns n bytes of randomness, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newGUID returns a random version 4 UUID in its usual text form.
func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// randomSecret returns a client secret in the shape the Entra admin centre
// shows (40 characters with a "~" at position 4).
func randomSecret() string {
	t := randomToken(30)
	return t[:3] + "8Q~" + t[3:37]
}

// window is a sliding log of admitted requests for one key.
type window struct {
	hits []time.Time
}

// admit counts a request against limit l under key and reports whether it
// fits, and if not after how many whole seconds (at least 1) it will.
func (s *Server) admitLocked(key string, l RateLimit) (bool, int) {
	if l.Requests < 0 {
		return true, 0
	}
	now := s.now()
	w := s.windows[key]
	if w == nil {
		w = &window{}
		s.windows[key] = w
	}
	i := 0
	for i < len(w.hits) && now.Sub(w.hits[i]) >= l.Window {
		i++
	}
	w.hits = w.hits[i:]
	if len(w.hits) >= l.Requests {
		wait := w.hits[len(w.hits)-l.Requests].Add(l.Window).Sub(now)
		secs := int((wait + time.Second - 1) / time.Second)
		return false, max(secs, 1)
	}
	w.hits = append(w.hits, now)
	return true, 0
}
