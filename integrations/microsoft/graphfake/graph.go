package graphfake

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// area is a Graph workload; each has its own scopes, error codes and
// throttling budget.
type area int

const (
	areaDirectory area = iota
	areaOutlook
	areaPresence
	areaSubscriptions
)

// graphCtx is what an authenticated Graph handler knows.
type graphCtx struct {
	at     *accessToken
	target *user // the user named by the path (me resolved); nil for /subscriptions
	self   bool  // target is the caller
}

type graphHandler func(w http.ResponseWriter, r *http.Request, g *graphCtx)

// endpointSpec describes one Graph endpoint.
type endpointSpec struct {
	name   string
	method string
	area   area
	// self are the scopes that allow the call on the caller's own data,
	// other those that allow it on another user of the same tenant (none:
	// 403).
	self, other []string
	h           graphHandler
}

var (
	scopesUserSelf      = []string{ScopeUserRead, ScopeUserReadBasicAll}
	scopesUserOther     = []string{ScopeUserReadBasicAll}
	scopesCalendarRead  = []string{ScopeCalendarsRead, ScopeCalendarsReadBasic, ScopeCalendarsReadWrite}
	scopesPresenceRead  = []string{ScopePresenceRead, ScopePresenceReadAll, ScopePresenceReadWrite, ScopePresenceReadWriteAll}
	scopesPresenceOther = []string{ScopePresenceReadAll, ScopePresenceReadWriteAll}
	scopesPresenceWrite = []string{ScopePresenceReadWrite, ScopePresenceReadWriteAll}
	scopesPresenceWAll  = []string{ScopePresenceReadWriteAll}
)

// graphRoute maps a /v1.0/ path to its endpoint, case-insensitively as
// Graph does. Both /me/… and /users/{id|userPrincipalName}/… are served; the
// msgraph SDK's "/delta()" spelling is accepted next to "/delta".
func (s *Server) graphRoute(r *http.Request) (string, handlerFunc) {
	rest := strings.Trim(r.URL.Path[len("/v1.0/"):], "/")
	seg := strings.Split(rest, "/")
	lower := make([]string, len(seg))
	for i, x := range seg {
		lower[i] = strings.TrimPrefix(strings.ToLower(x), "microsoft.graph.")
	}
	var userKey string
	var tail []string
	switch {
	case lower[0] == "me":
		userKey, tail = "me", lower[1:]
	case lower[0] == "users" && len(seg) >= 2 && seg[1] != "":
		userKey, tail = seg[1], lower[2:]
	case lower[0] == "subscriptions":
		return s.subscriptionRoute(r, seg[1:])
	default:
		return EndpointUnknown, s.segmentNotFound(seg[0])
	}
	var spec *endpointSpec
	switch strings.Join(tail, "/") {
	case "":
		spec = &endpointSpec{EndpointMe, http.MethodGet, areaDirectory, scopesUserSelf, scopesUserOther, s.handleUser}
	case "calendarview":
		spec = &endpointSpec{EndpointCalendarView, http.MethodGet, areaOutlook, scopesCalendarRead, nil, s.handleCalendarView}
	case "calendarview/delta", "calendarview/delta()":
		spec = &endpointSpec{EndpointCalendarViewDelta, http.MethodGet, areaOutlook, scopesCalendarRead, nil, s.handleDelta}
	case "presence":
		spec = &endpointSpec{EndpointPresenceGet, http.MethodGet, areaPresence, scopesPresenceRead, scopesPresenceOther, s.handlePresenceGet}
	case "presence/setpresence":
		spec = &endpointSpec{EndpointSetPresence, http.MethodPost, areaPresence, scopesPresenceWrite, scopesPresenceWAll, s.handleSetPresence}
	case "presence/clearpresence":
		spec = &endpointSpec{EndpointClearPresence, http.MethodPost, areaPresence, scopesPresenceWrite, scopesPresenceWAll, s.handleClearPresence}
	case "presence/setuserpreferredpresence":
		spec = &endpointSpec{EndpointSetUserPreferredPresence, http.MethodPost, areaPresence, scopesPresenceWrite, scopesPresenceWAll, s.handleSetUserPreferredPresence}
	case "presence/clearuserpreferredpresence":
		spec = &endpointSpec{EndpointClearUserPreferredPresence, http.MethodPost, areaPresence, scopesPresenceWrite, scopesPresenceWAll, s.handleClearUserPreferredPresence}
	case "presence/setstatusmessage":
		spec = &endpointSpec{EndpointSetStatusMessage, http.MethodPost, areaPresence, scopesPresenceWrite, scopesPresenceWAll, s.handleSetStatusMessage}
	default:
		last := seg[len(seg)-1]
		return EndpointUnknown, s.segmentNotFound(last)
	}
	if r.Method != spec.method {
		return spec.name, s.graphMethodNotAllowed
	}
	return spec.name, s.graphEndpoint(userKey, spec)
}

func (s *Server) segmentNotFound(seg string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
		s.graphError(w, r, http.StatusBadRequest, CodeBadRequest, "Resource not found for the segment '"+seg+"'.")
	}
}

func (s *Server) graphMethodNotAllowed(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	s.graphError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Specified HTTP method is not allowed for the request target.")
}

// authenticate checks the request's bearer token. On failure it returns a
// nil token with the status, code and message to answer.
func (s *Server) authenticate(r *http.Request) (*accessToken, int, string, string) {
	tok, ok := bearerToken(r)
	if !ok {
		return nil, http.StatusUnauthorized, CodeInvalidAuthenticationToken, "Access token is empty."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.access[tok]
	switch {
	case at == nil:
		return nil, http.StatusUnauthorized, CodeInvalidAuthenticationToken, "IDX14100: JWT is not well formed, there are no dots (.)."
	case !s.now().Before(at.expires):
		return nil, http.StatusUnauthorized, CodeInvalidAuthenticationToken, "Lifetime validation failed, the token is expired."
	case at.grant.revoked:
		return nil, http.StatusUnauthorized, CodeInvalidAuthenticationToken,
			"Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp"
	}
	return at, 0, "", ""
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("WWW-Authenticate",
		`Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	s.graphError(w, r, status, code, msg)
}

// graphEndpoint wraps spec's handler with authentication, user resolution,
// the scope check and throttling.
func (s *Server) graphEndpoint(userKey string, spec *endpointSpec) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, info *reqInfo) {
		at, status, code, msg := s.authenticate(r)
		if at == nil {
			s.unauthorized(w, r, status, code, msg)
			return
		}
		info.user = at.grant.oid
		s.mu.Lock()
		caller := s.users[at.grant.oid]
		target := caller
		if userKey != "me" {
			target = s.lookupUserLocked(userKey)
		}
		s.mu.Unlock()
		if target == nil || caller == nil || target.tid != caller.tid {
			s.graphError(w, r, http.StatusNotFound, CodeRequestResourceNotFound,
				"Resource '"+userKey+"' does not exist or one of its queried reference-property objects are not present.")
			return
		}
		g := &graphCtx{at: at, target: target, self: target == caller}
		allowed := spec.self
		if !g.self {
			allowed = spec.other
		}
		if !slices.ContainsFunc(allowed, at.has) {
			s.forbidden(w, r, spec.area)
			return
		}
		if !s.throttle(w, r, spec.area, at, target) {
			return
		}
		spec.h(w, r, g)
	}
}

// forbidden answers 403 with the code the workload uses.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, a area) {
	switch a {
	case areaOutlook:
		s.graphError(w, r, http.StatusForbidden, CodeErrorAccessDenied, "Access is denied. Check credentials and try again.")
	case areaDirectory:
		s.graphError(w, r, http.StatusForbidden, CodeAuthorizationRequestDenied, "Insufficient privileges to complete the operation.")
	default:
		s.graphError(w, r, http.StatusForbidden, CodeForbidden, "Missing scope permissions on the request. API requires one of the required permissions.")
	}
}

// throttle counts the request against its workload's budget and answers 429
// with Retry-After when it is spent.
func (s *Server) throttle(w http.ResponseWriter, r *http.Request, a area, at *accessToken, target *user) bool {
	var key string
	var limit RateLimit
	switch a {
	case areaOutlook:
		key, limit = "outlook|"+at.grant.clientID+"|"+target.oid, s.opts.OutlookLimit
	case areaPresence:
		key, limit = "presence|"+at.grant.clientID+"|"+target.tid, s.opts.PresenceLimit
	default:
		return true
	}
	s.mu.Lock()
	ok, secs := s.admitLocked(key, limit)
	s.mu.Unlock()
	if ok {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.graphError(w, r, http.StatusTooManyRequests, CodeTooManyRequests,
		"Too many requests from the application for this "+map[area]string{areaOutlook: "mailbox", areaPresence: "tenant"}[a]+". Retry after "+strconv.Itoa(secs)+" seconds.")
	return false
}

// handleUser serves GET /me and GET /users/{id}.
func (s *Server) handleUser(w http.ResponseWriter, r *http.Request, g *graphCtx) {
	s.mu.Lock()
	u := *g.target
	b := s.baseLocked(r)
	s.mu.Unlock()
	given, family, _ := strings.Cut(u.name, " ")
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context":    b + "/v1.0/$metadata#users/$entity",
		"businessPhones":    []string{},
		"displayName":       u.name,
		"givenName":         given,
		"jobTitle":          nil,
		"mail":              u.email,
		"mobilePhone":       nil,
		"officeLocation":    nil,
		"preferredLanguage": "en-US",
		"surname":           family,
		"userPrincipalName": u.email,
		"id":                u.oid,
	})
}
