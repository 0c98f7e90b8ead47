// Package slackfake is a fake of the Slack Web API and of Slack's OAuth v2
// flow, for tests and for sandbox mode.
//
// A *Server is a real http.Handler: tests wrap it in httptest.NewServer and
// point the real slack-go client at it (slack.OptionAPIURL(srv.URL+"/api/"),
// slack.OAuthOptionAPIURL(srv.URL+"/api/")); sandbox mode serves it on a
// loopback listener and points SLACK_BASE_URL at it. It answers the way
// slack.com does: HTTP 200 with {"ok":false,"error":…} for API errors, HTTP
// 429 with an integer Retry-After when a per-minute rate limit is exceeded,
// HTTP 404 with unknown_method for methods it does not know.
//
// It also plays Slack's side of the App Home. views.publish keeps each
// person's Home view and chat.postMessage their DM with the app. The fake
// delivers signed Events API requests (URLVerification, OpenAppHome,
// SendIM: url_verification, app_home_opened, message.im) to
// Options.EventsURL and signed block_actions interactions (ClickButton) to
// Options.InteractivityURL, exactly as Slack sends them, and records every
// delivery (Deliveries). Redeliver, Replay, SendSigned, SendWrongSignature,
// SendTampered, ClickRaw and SendRaw make the retried, replayed, stale,
// forged and malformed requests an endpoint must handle. Deliveries are
// synchronous and never hold the fake's lock, so the app may call the Web
// API back while answering. Its pages render each person's published Home
// view as simple HTML whose buttons and message form fire those deliveries.
//
// Routes:
//
//	GET  /, /people          a page listing every fake person and their status ("Sandbox Slack")
//	GET  /people/{user}      the person's App Home: the published Home view and the DM conversation
//	POST /_sandbox/open      fire app_home_opened (form: user, tab) and go back to the App Home page
//	POST /_sandbox/click     click a Home view button (form: user, action_id) and go back
//	POST /_sandbox/im        send a message in the App Home (form: user, text, thread_ts) and go back
//	GET  /oauth/v2/authorize the consent page (pick a fake person, Approve or Cancel)
//	POST /oauth/v2/authorize the consent decision; redirects to redirect_uri
//	GET  /.well-known/openid-configuration  Sign in with Slack's discovery document (issuer: SetBaseURL's URL)
//	GET  /openid/connect/keys               the JWKS that verifies ID tokens
//	GET  /openid/connect/authorize          Sign in with Slack's consent page (same people picker)
//	POST /openid/connect/authorize          its decision; redirects to redirect_uri
//	     /api/<method>       Web API: oauth.v2.access, openid.connect.token,
//	                         openid.connect.userInfo, auth.test, auth.revoke,
//	                         users.profile.get, users.profile.set, dnd.info,
//	                         dnd.setSnooze, dnd.endSnooze, dnd.endDnd,
//	                         users.setPresence, users.getPresence,
//	                         views.publish, chat.postMessage
//
// Time comes from Options.Now, so status expiration, DND snoozes, token
// expiry and rate-limit windows follow a fake clock in tests. The fake never
// logs; tokens, codes and secrets are removed from the call log.
package slackfake

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Default identities used when no team or user has been added.
const (
	DefaultTeamID   = "T0001"
	DefaultTeamName = "Sandbox Workspace"
	// AppID is the app ID the fake reports in OAuth responses, views and
	// deliveries unless Options.AppID says otherwise.
	AppID = "A0SANDBOX01"
)

// Token lifetimes and limits that follow Slack's documented values.
const (
	// RotatingTokenLifetime is how long an access token lives with token
	// rotation on (expires_in 43200).
	RotatingTokenLifetime = 12 * time.Hour
	// CodeLifetime is how long an authorization code can be exchanged.
	CodeLifetime = 10 * time.Minute
	// MaxStatusTextLength is the longest status_text Slack accepts, in characters.
	MaxStatusTextLength = 100
	// DefaultProfileSetPerUserLimit is Slack's per-user profile update limit
	// (users.profile.set calls per minute for one person).
	DefaultProfileSetPerUserLimit = 10
)

// defaultRateLimits are the per-minute limits per method per workspace.
var defaultRateLimits = map[string]int{
	"users.profile.set":       50,
	"users.profile.get":       100,
	"dnd.setSnooze":           20,
	"dnd.endSnooze":           20,
	"dnd.endDnd":              20,
	"dnd.info":                50,
	"users.setPresence":       20,
	"users.getPresence":       50,
	"auth.test":               600,
	"oauth.v2.access":         100,
	"views.publish":           100,
	"chat.postMessage":        60,
	"auth.revoke":             50,
	"openid.connect.token":    100,
	"openid.connect.userInfo": 50,
}

// DefaultRateLimits returns the per-minute limits per method per workspace
// the fake applies unless Options.RateLimits overrides them. They follow
// Slack's rate tiers (Tier 2 = 20, Tier 3 = 50, Tier 4 = 100); auth.test and
// chat.postMessage are "special" in Slack and modelled as 600 and 60.
func DefaultRateLimits() map[string]int { return maps.Clone(defaultRateLimits) }

// Options configure a Server. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret are the app's OAuth credentials. Empty
	// means generated; read them back with Server.ClientID/ClientSecret.
	ClientID     string
	ClientSecret string

	// Now is the clock used for status expiration, DND snoozes, token and
	// code expiry, rate-limit windows and the call log. Nil means time.Now.
	Now func() time.Time

	// TokenRotation makes the fake behave like an app with token rotation
	// on: access tokens (xoxe.xoxp-…, xoxe.xoxb-…) expire after 12 hours and
	// come with a refresh token (xoxe-1-…) usable once with
	// oauth.v2.access grant_type=refresh_token.
	TokenRotation bool

	// RateLimits overrides the per-minute limit per method per workspace
	// (see DefaultRateLimits). A value <= 0 turns the method's limit off.
	RateLimits map[string]int

	// RateWindow is the sliding window of the per-method workspace limits in RateLimits. 0
	// means a minute, as at Slack; a load test that wants "50 a second" sets RateLimits
	// {"users.profile.set": 50} and RateWindow time.Second.
	RateWindow time.Duration

	// OnCall, when set, is called with every Web API call once it is answered, in the order
	// the fake answered them, while the fake's lock is held: it must be quick and must not
	// call the Server. Load tests use it to keep statistics instead of the call log.
	OnCall func(Call)

	// NoCallLog keeps no call log (Calls and CallsTo return nothing, WaitForCall waits for
	// ever): for load tests with millions of calls, with OnCall counting them instead.
	NoCallLog bool

	// ProfileSetPerUserLimit is the number of users.profile.set calls per
	// minute allowed for one person. 0 means 10 (Slack's figure); a negative
	// value turns the per-user limit off.
	ProfileSetPerUserLimit int

	// MaxSnoozeMinutes, when positive, makes dnd.setSnooze answer too_long
	// for longer snoozes. 0 means no maximum (Slack's maximum is not documented).
	MaxSnoozeMinutes int

	// RefreshUserTokenInAuthedUser makes a refresh of a user token answer
	// with the new token under authed_user (as the first exchange does)
	// instead of at the top level with token_type "user". Slack's exact
	// shape is not documented; the default is the top-level form.
	RefreshUserTokenInAuthedUser bool

	// RedirectURIs, when set, is the app's list of allowed redirect URL
	// prefixes; an authorize request with another redirect_uri is refused,
	// and one without redirect_uri uses the first entry.
	RedirectURIs []string

	// SigningSecret signs every Events API and interactivity delivery
	// (X-Slack-Signature). Empty means generated; read it back with
	// Server.SigningSecret.
	SigningSecret string

	// VerificationToken is the legacy verification token sent as "token" in
	// every delivery. Empty means generated; see Server.VerificationToken.
	VerificationToken string

	// EventsURL is the app's Events API Request URL, where url_verification,
	// app_home_opened and message.im are delivered. It can be set later with
	// Server.SetEventsURL.
	EventsURL string

	// InteractivityURL is the app's Interactivity Request URL, where
	// block_actions payloads are delivered. It can be set later with
	// Server.SetInteractivityURL.
	InteractivityURL string

	// AppID is the app's ID (api_app_id) in OAuth responses, views and
	// deliveries. Empty means the AppID constant.
	AppID string

	// SigningKey signs the ID tokens of Sign in with Slack (published at
	// /openid/connect/keys). Nil means a 2048-bit RSA key generated by New.
	SigningKey *rsa.PrivateKey

	// DeliveryClient sends the deliveries. Nil means a client with a
	// 10-second timeout that, like Slack, follows at most two redirects.
	DeliveryClient *http.Client
}

// Server is the fake Slack. Create it with New; it is safe for concurrent use.
type Server struct {
	opts         Options
	now          func() time.Time
	clientID     string
	clientSecret string
	mux          *http.ServeMux

	mu          sync.Mutex
	baseURL     string
	seeded      bool // the default team is in place and no Add* call happened yet
	teams       map[string]*team
	teamOrder   []string
	users       map[string]*person
	tokens      map[string]*token
	refresh     map[string]*refreshToken
	codes       map[string]*authCode
	pending     map[string]*authRequest
	autoApprove string
	windows     map[string]*window
	failures    map[string][]failure
	calls       []Call
	changed     chan struct{} // closed and replaced whenever the call or delivery log grows
	tsSeq       int

	appID             string
	signingSecret     string
	verificationToken string
	client            *http.Client
	eventsURL         string
	interactivityURL  string
	deliveries        []Delivery
	eventSeq          int

	key *rsa.PrivateKey // signs Sign in with Slack ID tokens
}

type team struct {
	id, name  string
	userIDs   []string
	botUserID string
	botID     string
}

type person struct {
	id, teamID, name string

	statusText  string
	statusEmoji string
	statusExp   time.Time // zero: never expires
	snoozeEnd   time.Time // zero: no snooze
	manualAway  bool
	homeView    json.RawMessage // the full published Home view, as views.publish answers it
	homeViewID  string          // stable per person once a view is published
	homeHash    string
	messages    []Message // the App Home DM: the person's messages and the app's
}

type tokenKind int

const (
	userToken tokenKind = iota + 1
	botToken
)

func (k tokenKind) String() string {
	if k == botToken {
		return "bot"
	}
	return "user"
}

type token struct {
	kind     tokenKind
	teamID   string
	userID   string // the person, or the team's bot user for bot tokens
	scopes   []string
	revoked  bool
	expires  time.Time // zero: never
	clientID string
	refresh  string // refresh token issued with it, if any
}

type refreshToken struct {
	kind     tokenKind
	teamID   string
	userID   string
	scopes   []string
	revoked  bool
	clientID string
}

// Call is one request the fake received at /api/<method>.
type Call struct {
	Method string
	Team   string // team of the token, "" when none was valid
	User   string // user of the token (the bot user for bot tokens)
	// Params are the request's parameters (query, form, or the top-level
	// fields of a JSON body, objects as JSON text) without the token and
	// without secrets (client_secret, code, refresh_token, code_verifier).
	Params url.Values
	Time   time.Time // from the fake clock
	Status int       // HTTP status returned
	Error  string    // Slack error code when ok was false, else ""
	// Changed reports, for a call that writes a person's status, snooze or presence
	// (users.profile.set, dnd.setSnooze, dnd.endSnooze, dnd.endDnd, users.setPresence),
	// whether it changed what Slack shows: false for a write that set what was already
	// there (a redundant write) and for a refused one.
	Changed bool
}

// Status is a person's custom status.
type Status struct {
	Text       string
	Emoji      string
	Expiration time.Time // zero: does not expire
}

// DNDState is a person's Do Not Disturb snooze.
type DNDState struct {
	Snoozed   bool
	SnoozeEnd time.Time // zero when not snoozed
}

// Message is one message in a person's App Home DM: one the app sent with
// chat.postMessage, or one the person sent (SendIM).
type Message struct {
	Channel string // the DM channel, D…
	Text    string
	Blocks  json.RawMessage
	TS      string
	// ThreadTS is the ts of the thread's parent for a reply in a thread,
	// else "".
	ThreadTS string
	// User is the author: the person's ID, or the workspace's bot user for
	// the app's messages.
	User string
	// Bot is true for the app's messages.
	Bot  bool
	Time time.Time
}

type failure struct {
	status int
	err    string
}

// New returns a fake Slack configured by opts. Until AddTeam or AddUser is
// called it has one workspace, T0001, with U0001 "Ada" and U0002 "Grace".
func New(opts Options) *Server {
	s := &Server{
		opts:         opts,
		now:          opts.Now,
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		teams:        map[string]*team{},
		users:        map[string]*person{},
		tokens:       map[string]*token{},
		refresh:      map[string]*refreshToken{},
		codes:        map[string]*authCode{},
		pending:      map[string]*authRequest{},
		windows:      map[string]*window{},
		failures:     map[string][]failure{},
		changed:      make(chan struct{}),
	}
	// Keep copies, so a caller changing its map or slice later races with nothing.
	s.opts.RateLimits = maps.Clone(opts.RateLimits)
	s.opts.RedirectURIs = slices.Clone(opts.RedirectURIs)
	if s.now == nil {
		s.now = time.Now
	}
	if s.clientID == "" {
		s.clientID = randDigits(10) + "." + randDigits(13)
	}
	if s.clientSecret == "" {
		s.clientSecret = randHex(16)
	}
	s.appID = cmp.Or(opts.AppID, AppID)
	s.signingSecret = cmp.Or(opts.SigningSecret, randHex(16))
	s.verificationToken = cmp.Or(opts.VerificationToken, randToken(24))
	s.eventsURL, s.interactivityURL = opts.EventsURL, opts.InteractivityURL
	s.client = opts.DeliveryClient
	if s.client == nil {
		s.client = &http.Client{
			Timeout: 10 * time.Second,
			CheckRedirect: func(_ *http.Request, via []*http.Request) error {
				if len(via) > 2 {
					return errTooManyRedirects
				}
				return nil
			},
		}
	}
	s.key = signingKey(opts.SigningKey)
	s.addTeam(DefaultTeamID, DefaultTeamName)
	s.addUser(DefaultTeamID, "U0001", "Ada")
	s.addUser(DefaultTeamID, "U0002", "Grace")
	s.seeded = true

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handlePeople)
	mux.HandleFunc("GET /people", s.handlePeople)
	mux.HandleFunc("GET /oauth/v2/authorize", s.handleAuthorize)
	mux.HandleFunc("POST /oauth/v2/authorize", s.handleDecision)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleOIDCDiscovery)
	mux.HandleFunc("GET /openid/connect/keys", s.handleJWKS)
	mux.HandleFunc("GET /openid/connect/authorize", s.handleOIDCAuthorize)
	mux.HandleFunc("POST /openid/connect/authorize", s.handleDecision)
	mux.HandleFunc("/api/{method}", s.handleAPI)
	mux.HandleFunc("GET /people/{user}", s.handleAppHome)
	mux.HandleFunc("POST /_sandbox/open", s.handleSandboxOpen)
	mux.HandleFunc("POST /_sandbox/click", s.handleSandboxClick)
	mux.HandleFunc("POST /_sandbox/im", s.handleSandboxIM)
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ClientID returns the app's OAuth client ID.
func (s *Server) ClientID() string { return s.clientID }

// ClientSecret returns the app's OAuth client secret.
func (s *Server) ClientSecret() string { return s.clientSecret }

// AppID returns the app's ID (api_app_id).
func (s *Server) AppID() string { return s.appID }

// SigningSecret returns the secret that signs deliveries; the app verifies
// X-Slack-Signature with it.
func (s *Server) SigningSecret() string { return s.signingSecret }

// VerificationToken returns the legacy verification token sent as "token"
// in deliveries.
func (s *Server) VerificationToken() string { return s.verificationToken }

// SetEventsURL sets the app's Events API Request URL.
func (s *Server) SetEventsURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventsURL = u
}

// SetInteractivityURL sets the app's Interactivity Request URL.
func (s *Server) SetInteractivityURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interactivityURL = u
}

// SetBaseURL tells the fake where it is served (for example
// "http://127.0.0.1:4321"), so that auth.test and its pages can give
// absolute URLs. Without it, auth.test reports an .invalid workspace URL.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(u, "/")
}

// AddTeam adds a workspace (or renames an existing one). The first AddTeam
// or AddUser call removes the default workspace T0001.
func (s *Server) AddTeam(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unseed()
	s.addTeam(id, name)
}

// AddUser adds a person to a workspace (creating the workspace, named after
// its ID, if needed), or renames an existing person.
func (s *Server) AddUser(teamID, userID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unseed()
	if s.teams[teamID] == nil {
		s.addTeam(teamID, teamID)
	}
	s.addUser(teamID, userID, name)
}

func (s *Server) unseed() {
	if !s.seeded {
		return
	}
	s.seeded = false
	for _, uid := range s.teams[DefaultTeamID].userIDs {
		delete(s.users, uid)
	}
	delete(s.teams, DefaultTeamID)
	s.teamOrder = slices.DeleteFunc(s.teamOrder, func(id string) bool { return id == DefaultTeamID })
}

func (s *Server) addTeam(id, name string) {
	if t := s.teams[id]; t != nil {
		t.name = name
		return
	}
	suffix := strings.TrimPrefix(id, "T")
	s.teams[id] = &team{id: id, name: name, botUserID: "UB" + suffix, botID: "B" + suffix}
	s.teamOrder = append(s.teamOrder, id)
}

func (s *Server) addUser(teamID, userID, name string) {
	if p := s.users[userID]; p != nil {
		p.name = name
		return
	}
	s.users[userID] = &person{id: userID, teamID: teamID, name: name}
	t := s.teams[teamID]
	t.userIDs = append(t.userIDs, userID)
}

// AutoApprove makes GET /oauth/v2/authorize skip the consent page and
// approve at once as userID, as a signed-in person who clicks Allow would.
// An empty userID brings the consent page back.
func (s *Server) AutoApprove(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoApprove = userID
}

// IssueUserToken returns a new user token (xoxp-…) for userID with the given
// scopes, as if the person had installed the app; with TokenRotation it
// expires after 12 hours (and has no refresh token). It panics if the user
// does not exist: it is a test helper.
func (s *Server) IssueUserToken(userID string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.users[userID]
	if p == nil {
		panic("slackfake: IssueUserToken: unknown user " + userID)
	}
	v, _ := s.issue(userToken, p.teamID, p.id, scopes, false)
	return v
}

// IssueBotToken returns a new bot token (xoxb-…) for teamID with the given
// scopes. It panics if the team does not exist.
func (s *Server) IssueBotToken(teamID string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.teams[teamID]
	if t == nil {
		panic("slackfake: IssueBotToken: unknown team " + teamID)
	}
	v, _ := s.issue(botToken, t.id, t.botUserID, scopes, false)
	return v
}

// issue creates an access token (and a refresh token when withRefresh and
// rotation is on). It must be called with s.mu held.
func (s *Server) issue(kind tokenKind, teamID, userID string, scopes []string, withRefresh bool) (access, refresh string) {
	prefix := "xoxp-"
	if kind == botToken {
		prefix = "xoxb-"
	}
	t := &token{kind: kind, teamID: teamID, userID: userID, scopes: slices.Clone(scopes), clientID: s.clientID}
	if s.opts.TokenRotation {
		access = "xoxe." + prefix + "1-" + randHex(24)
		t.expires = s.now().Add(RotatingTokenLifetime)
		if withRefresh {
			refresh = "xoxe-1-" + randHex(24)
			s.refresh[refresh] = &refreshToken{kind: kind, teamID: teamID, userID: userID, scopes: t.scopes, clientID: s.clientID}
			t.refresh = refresh
		}
	} else {
		access = prefix + strings.TrimPrefix(teamID, "T") + "-" + randDigits(12) + "-" + randHex(12)
	}
	s.tokens[access] = t
	return access, refresh
}

// RevokeUserTokens revokes every user token (and refresh token) of userID,
// as when the person removes the app; later calls get token_revoked.
func (s *Server) RevokeUserTokens(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.kind == userToken && t.userID == userID {
			t.revoked = true
		}
	}
	for _, r := range s.refresh {
		if r.kind == userToken && r.userID == userID {
			r.revoked = true
		}
	}
}

// SetStatus sets a person's custom status as the person would by hand in
// Slack (no API call is logged). A zero exp means it does not expire; empty
// text and emoji clear it.
func (s *Server) SetStatus(userID, text, emoji string, exp time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.users[userID]
	if p == nil {
		return
	}
	p.statusText, p.statusEmoji, p.statusExp = text, emoji, exp
	if text == "" && emoji == "" {
		p.statusExp = time.Time{}
	}
}

// Status returns a person's current custom status; an expired status reads
// as cleared.
func (s *Server) Status(userID string) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.users[userID]
	if p == nil {
		return Status{}
	}
	s.expire(p, s.now())
	return Status{Text: p.statusText, Emoji: p.statusEmoji, Expiration: p.statusExp}
}

// DND returns a person's Do Not Disturb snooze; an ended snooze reads as
// not snoozed.
func (s *Server) DND(userID string) DNDState {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.users[userID]
	if p == nil {
		return DNDState{}
	}
	s.expire(p, s.now())
	return DNDState{Snoozed: !p.snoozeEnd.IsZero(), SnoozeEnd: p.snoozeEnd}
}

// Presence returns the presence a person's app set with users.setPresence:
// "away" or "auto" (the default).
func (s *Server) Presence(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.users[userID]; p != nil && p.manualAway {
		return "away"
	}
	return "auto"
}

// HomeView returns the App Home view last published for userID with
// views.publish, or nil. It is the full view as views.publish answered it
// (id, team_id, type, blocks, private_metadata, callback_id, state, hash,
// app_id, bot_id, …) and as app_home_opened and block_actions carry it.
func (s *Server) HomeView(userID string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.users[userID]; p != nil {
		return slices.Clone(p.homeView)
	}
	return nil
}

// Messages returns the messages the app posted to a person's app DM with
// chat.postMessage (channel = the user ID or its D… channel), oldest first.
func (s *Server) Messages(userID string) []Message {
	return slices.DeleteFunc(s.Conversation(userID), func(m Message) bool { return !m.Bot })
}

// Conversation returns the person's whole App Home DM, oldest first: the
// messages the person sent (SendIM) and the app's (chat.postMessage).
func (s *Server) Conversation(userID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.users[userID]; p != nil {
		return slices.Clone(p.messages)
	}
	return nil
}

// expire clears a status past its expiration and a snooze past its end.
func (s *Server) expire(p *person, now time.Time) {
	if !p.statusExp.IsZero() && !now.Before(p.statusExp) {
		p.statusText, p.statusEmoji, p.statusExp = "", "", time.Time{}
	}
	if !p.snoozeEnd.IsZero() && !now.Before(p.snoozeEnd) {
		p.snoozeEnd = time.Time{}
	}
}

// FailNext makes the next call to method fail once: with HTTP status (for
// example 500 or 503; 429 comes with Retry-After: 1) when status is neither
// 0 nor 200, else with HTTP 200 and {"ok":false,"error":slackError}.
// Several FailNext calls queue up in order.
func (s *Server) FailNext(method string, status int, slackError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], failure{status: status, err: slackError})
}

// Calls returns a copy of the call log.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Params = cloneValues(c.Params)
		out[i] = c
	}
	return out
}

// CallsTo returns the logged calls to one method.
func (s *Server) CallsTo(method string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Reset empties the call log. State, tokens and rate-limit windows stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// WaitForCall blocks until the call log holds at least n calls to method
// (any method when method is ""), or ctx is done.
func (s *Server) WaitForCall(ctx context.Context, method string, n int) error {
	for {
		s.mu.Lock()
		count := 0
		for _, c := range s.calls {
			if method == "" || c.Method == method {
				count++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if count >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// record appends to the call log and wakes waiters; s.mu must be held.
func (s *Server) record(c Call) {
	if s.opts.OnCall != nil {
		s.opts.OnCall(c)
	}
	if s.opts.NoCallLog {
		return
	}
	s.calls = append(s.calls, c)
	close(s.changed)
	s.changed = make(chan struct{})
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func randDigits(n int) string {
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
