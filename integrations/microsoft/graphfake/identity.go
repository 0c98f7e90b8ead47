package graphfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	codeTTL     = 10 * time.Minute
	pendingTTL  = 30 * time.Minute
	consentPath = "/_consent"
)

// authRequest is a validated authorization request waiting for consent.
type authRequest struct {
	id          string
	tenantPath  string // as in the URL: common, organizations, a GUID or a domain
	tid         string // the resolved tenant, "" for common/organizations
	clientID    string
	redirectURI string
	scopes      []string
	state       string
	nonce       string
	challenge   string
	loginHint   string
	expires     time.Time
}

type authCode struct {
	req     *authRequest
	oid     string
	tid     string
	expires time.Time
	used    bool
	grant   *grant
}

// grant is one consent: every token issued from one code (and its refresh
// tokens) shares it.
type grant struct {
	tid, oid string
	clientID string
	scopes   []string
	revoked  bool
}

func (g *grant) has(scope string) bool {
	return slices.ContainsFunc(g.scopes, func(s string) bool { return strings.EqualFold(s, scope) })
}

type accessToken struct {
	grant   *grant
	scopes  []string
	expires time.Time
}

func (a *accessToken) has(scope string) bool {
	return slices.ContainsFunc(a.scopes, func(s string) bool { return strings.EqualFold(s, scope) })
}

type refreshToken struct {
	grant   *grant
	expires time.Time
	used    bool
}

// knownScopes are the scopes the fake grants, in their canonical spelling.
var knownScopes = []string{
	ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess,
	ScopeUserRead, ScopeUserReadBasicAll,
	ScopeCalendarsRead, ScopeCalendarsReadBasic, ScopeCalendarsReadWrite,
	ScopePresenceRead, ScopePresenceReadAll, ScopePresenceReadWrite, ScopePresenceReadWriteAll,
}

var scopeDescriptions = map[string]string{
	ScopeOpenID:               "Sign you in",
	ScopeProfile:              "View your basic profile",
	ScopeEmail:                "View your email address",
	ScopeOfflineAccess:        "Maintain access to data you have given it access to",
	ScopeUserRead:             "Sign you in and read your profile",
	ScopeUserReadBasicAll:     "Read all users' basic profiles",
	ScopeCalendarsRead:        "Read your calendars",
	ScopeCalendarsReadBasic:   "Read basic details of your calendars",
	ScopeCalendarsReadWrite:   "Have full access to your calendars",
	ScopePresenceRead:         "Read your presence information",
	ScopePresenceReadAll:      "Read presence information of all users in your organization",
	ScopePresenceReadWrite:    "Read and write your presence information",
	ScopePresenceReadWriteAll: "Read and write presence information for all users",
}

// normalizeScope returns the canonical form of a requested scope, accepting
// Graph permissions with or without the resource URI prefix.
func normalizeScope(sc string) (string, bool) {
	sc = strings.TrimPrefix(sc, graphResource)
	sc = strings.TrimPrefix(sc, "https://graph.microsoft.com")
	for _, k := range knownScopes {
		if strings.EqualFold(k, sc) {
			return k, true
		}
	}
	return "", false
}

func isOIDCScope(sc string) bool {
	return sc == ScopeOpenID || sc == ScopeProfile || sc == ScopeEmail || sc == ScopeOfflineAccess
}

// resolveTenantLocked maps the tenant segment of an identity URL to a tenant
// ID; multi is true for common and organizations.
func (s *Server) resolveTenantLocked(name string) (tid string, multi, ok bool) {
	s.ensureDefaultLocked()
	switch strings.ToLower(name) {
	case "common", "organizations":
		return "", true, true
	}
	for id := range s.tenants {
		if strings.EqualFold(id, name) {
			return id, false, true
		}
	}
	for _, oid := range s.userOrder {
		u := s.users[oid]
		if _, domain, ok := strings.Cut(u.email, "@"); ok && strings.EqualFold(domain, name) {
			return u.tid, false, true
		}
	}
	return "", false, false
}

// issuer returns the issuer for tid, or the {tenantid} template.
func issuer(base, tid string) string {
	if tid == "" {
		tid = "{tenantid}"
	}
	return base + "/" + tid + "/v2.0"
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request, _ *reqInfo, tenantName string) {
	s.mu.Lock()
	tid, multi, ok := s.resolveTenantLocked(tenantName)
	b := s.baseLocked(r)
	s.mu.Unlock()
	if !ok {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenantName), s.now())
		return
	}
	t := tid
	if multi {
		t = strings.ToLower(tenantName)
	}
	w.Header().Set("Cache-Control", "max-age=86400, private")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        b + "/" + t + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              b + "/" + t + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                issuer(b, tid),
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     b + "/oidc/userinfo",
		"authorization_endpoint":                b + "/" + t + "/oauth2/v2.0/authorize",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  b + "/" + t + "/oauth2/v2.0/logout",
		"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
			"cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce",
			"preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"tenant_region_scope":   nil,
		"cloud_instance_name":   "microsoftonline.com",
		"cloud_graph_host_name": "graph.windows.net",
		"msgraph_host":          "graph.microsoft.com",
	})
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request, _ *reqInfo, tenantName string) {
	s.mu.Lock()
	tid, _, ok := s.resolveTenantLocked(tenantName)
	b := s.baseLocked(r)
	s.mu.Unlock()
	if !ok {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found.", tenantName), s.now())
		return
	}
	pub := s.key.PublicKey
	w.Header().Set("Cache-Control", "max-age=86400, private")
	writeJSON(w, http.StatusOK, map[string]any{
		"keys": []map[string]string{{
			"kty":    "RSA",
			"use":    "sig",
			"kid":    s.kid,
			"x5t":    s.kid,
			"n":      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			"issuer": issuer(b, tid),
		}},
	})
}

// handleAuthorize validates an authorization request and shows the consent
// page. As at the identity platform, problems with the tenant, client or
// redirect URI are shown on an error page; later problems are reported to
// the redirect URI.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request, _ *reqInfo, tenantName string) {
	q := r.URL.Query()
	s.mu.Lock()
	tid, _, ok := s.resolveTenantLocked(tenantName)
	s.mu.Unlock()
	if !ok {
		s.errorPage(w, http.StatusBadRequest, "AADSTS90002", fmt.Sprintf("Tenant '%s' not found.", tenantName))
		return
	}
	clientID := q.Get("client_id")
	switch {
	case clientID == "":
		s.errorPage(w, http.StatusBadRequest, "AADSTS900144", "The request body must contain the following parameter: 'client_id'.")
		return
	case !strings.EqualFold(clientID, s.opts.ClientID):
		s.errorPage(w, http.StatusBadRequest, "AADSTS700016", fmt.Sprintf("Application with identifier '%s' was not found in the directory.", clientID))
		return
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" || !s.redirectAllowed(redirectURI) {
		s.errorPage(w, http.StatusBadRequest, "AADSTS50011",
			"The redirect URI specified in the request does not match the redirect URIs configured for the application.")
		return
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		s.errorPage(w, http.StatusBadRequest, "AADSTS900144", "graphfake supports response_mode=query only.")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		v := url.Values{"error": {code}, "error_description": {desc}}
		if state != "" {
			v.Set("state", state)
		}
		http.Redirect(w, r, addQuery(redirectURI, v), http.StatusFound)
	}
	if rt := q.Get("response_type"); rt != "code" {
		fail("unsupported_response_type", "AADSTS700054: response_type '"+rt+"' is not enabled for the application (graphfake supports the authorization code flow only).")
		return
	}
	if strings.TrimSpace(q.Get("scope")) == "" {
		fail("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'.")
		return
	}
	var scopes []string
	for _, sc := range strings.Fields(q.Get("scope")) {
		norm, ok := normalizeScope(sc)
		if !ok {
			fail("invalid_scope", "AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope "+sc+" is not valid.")
			return
		}
		if !slices.Contains(scopes, norm) {
			scopes = append(scopes, norm)
		}
	}
	if state == "" {
		fail("invalid_request", "graphfake: the state parameter is required (dontinterrupt always sends one).")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && !s.opts.AllowMissingPKCE:
		fail("invalid_request", "AADSTS9002325: Proof Key for Code Exchange is required (graphfake refuses requests without an S256 code_challenge).")
		return
	case challenge != "" && method != "S256":
		fail("invalid_request", "AADSTS501491: graphfake accepts code_challenge_method S256 only.")
		return
	case challenge != "" && len(challenge) != 43:
		fail("invalid_request", "AADSTS501491: Invalid size of Code_Challenge parameter.")
		return
	}
	req := &authRequest{
		id:          randomToken(24),
		tenantPath:  tenantName,
		tid:         tid,
		clientID:    s.opts.ClientID,
		redirectURI: redirectURI,
		scopes:      scopes,
		state:       state,
		nonce:       q.Get("nonce"),
		challenge:   challenge,
		loginHint:   q.Get("login_hint"),
		expires:     s.now().Add(pendingTTL),
	}
	prompts := strings.Fields(q.Get("prompt"))
	if slices.Contains(prompts, "none") && !s.opts.AutoApprove {
		fail("login_required", "AADSTS50058: A silent sign-in request was sent but no user is signed in.")
		return
	}
	s.mu.Lock()
	candidates := s.candidatesLocked(tid)
	if len(candidates) == 0 {
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "AADSTS50020", "The tenant has no fake accounts.")
		return
	}
	selected := s.hintedLocked(candidates, req.loginHint)
	if s.opts.AutoApprove {
		u := s.approveLocked(req, selected)
		s.mu.Unlock()
		http.Redirect(w, r, u, http.StatusFound)
		return
	}
	if len(s.pending) >= 1024 {
		for id, p := range s.pending {
			if s.now().After(p.expires) {
				delete(s.pending, id)
			}
		}
	}
	s.pending[req.id] = req
	data := consentPage{RequestID: req.id, Action: consentPath, Selected: selected.oid}
	for _, u := range candidates {
		data.Accounts = append(data.Accounts, consentAccount{OID: u.oid, Email: u.email, Name: u.name, Tenant: u.tid})
	}
	s.mu.Unlock()
	for _, sc := range scopes {
		data.Scopes = append(data.Scopes, consentScope{Scope: sc, Description: scopeDescriptions[sc]})
	}
	if p, err := url.Parse(redirectURI); err == nil {
		data.ClientHost = p.Host
	}
	s.renderPage(w, http.StatusOK, "consent", data)
}

// candidatesLocked returns the accounts that may sign in through a tenant
// ("" for common/organizations: everyone).
func (s *Server) candidatesLocked(tid string) []*user {
	s.ensureDefaultLocked()
	var out []*user
	for _, oid := range s.userOrder {
		if u := s.users[oid]; tid == "" || u.tid == tid {
			out = append(out, u)
		}
	}
	return out
}

func (s *Server) hintedLocked(candidates []*user, hint string) *user {
	for _, u := range candidates {
		if hint != "" && (strings.EqualFold(hint, u.email) || strings.EqualFold(hint, u.oid)) {
			return u
		}
	}
	return candidates[0]
}

// approveLocked issues a code for req and returns the redirect URL.
func (s *Server) approveLocked(req *authRequest, u *user) string {
	code := "1.A" + randomToken(96)
	s.codes[code] = &authCode{req: req, oid: u.oid, tid: u.tid, expires: s.now().Add(codeTTL)}
	return addQuery(req.redirectURI, url.Values{
		"code":          {code},
		"state":         {req.state},
		"session_state": {newGUID()},
	})
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	if !sameOrigin(r) {
		s.errorPage(w, http.StatusForbidden, "AADSTS90014", "Cross-origin consent is not allowed.")
		return
	}
	id := r.PostForm.Get("request")
	s.mu.Lock()
	req := s.pending[id]
	delete(s.pending, id)
	if req != nil && s.now().After(req.expires) {
		req = nil
	}
	if req == nil {
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "AADSTS90014", "This sign-in request has expired or was already used. Start again from the app.")
		return
	}
	if r.PostForm.Get("action") != "allow" {
		s.mu.Unlock()
		http.Redirect(w, r, addQuery(req.redirectURI, url.Values{
			"error":             {"access_denied"},
			"error_description": {"AADSTS65004: User declined to consent to access the app."},
			"state":             {req.state},
		}), http.StatusFound)
		return
	}
	u := s.users[r.PostForm.Get("account")]
	if u == nil || (req.tid != "" && u.tid != req.tid) {
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "AADSTS50020", "Choose one of the listed accounts.")
		return
	}
	info.user = u.oid
	loc := s.approveLocked(req, u)
	s.mu.Unlock()
	http.Redirect(w, r, loc, http.StatusFound)
}

// tokenResponse is the token endpoint's success body.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, info *reqInfo, tenantName string) {
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	now := s.now()
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", now)
		return
	}
	s.mu.Lock()
	tid, _, ok := s.resolveTenantLocked(tenantName)
	s.mu.Unlock()
	if !ok {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found.", tenantName), now)
		return
	}
	form := r.PostForm
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || (clientID != "" && clientID != u) {
			writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "Malformed client credentials.", now)
			return
		}
		clientID, secret = u, p
	}
	switch {
	case clientID == "":
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.", now)
		return
	case !strings.EqualFold(clientID, s.opts.ClientID):
		writeAADError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory.", clientID), now)
		return
	case secret == "":
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.", now)
		return
	case subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1:
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.", now)
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		s.redeemCode(w, r, info, tid)
	case "refresh_token":
		s.redeemRefreshToken(w, r, info, tid)
	case "":
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", now)
	default:
		writeAADError(w, http.StatusBadRequest, "unsupported_grant_type", 70003,
			"The app requested an unsupported grant type '"+gt+"' (graphfake supports authorization_code and refresh_token).", now)
	}
}

func (s *Server) redeemCode(w http.ResponseWriter, r *http.Request, info *reqInfo, pathTID string) {
	form := r.PostForm
	now := s.now()
	code := form.Get("code")
	if code == "" {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'code'.", now)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ac := s.codes[code]
	switch {
	case ac == nil:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.", now)
		return
	case now.After(ac.expires):
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 70008,
			"The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.", now)
		return
	}
	info.user = ac.oid
	if ac.used {
		if ac.grant != nil {
			ac.grant.revoked = true // a replayed code revokes what it bought (RFC 6749 4.1.2)
		}
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 54005,
			"OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.", now)
		return
	}
	req := ac.req
	if pathTID != "" && pathTID != ac.tid {
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 50020, "The code was issued for another tenant.", now)
		return
	}
	if form.Get("redirect_uri") != req.redirectURI {
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 50011,
			"The redirect URI specified in the request does not match the redirect URI used to obtain the authorization code.", now)
		return
	}
	verifier := form.Get("code_verifier")
	if req.challenge != "" {
		ac.used = true // a failed verifier burns the code
		if !pkceMatches(req.challenge, verifier) {
			writeAADError(w, http.StatusBadRequest, "invalid_grant", 501481,
				"The Code_Verifier does not match the code_challenge supplied in the authorization request.", now)
			return
		}
	}
	ac.used = true
	g := &grant{tid: ac.tid, oid: ac.oid, clientID: req.clientID, scopes: slices.Clone(req.scopes)}
	ac.grant = g
	s.grants = append(s.grants, g)
	writeJSON(w, http.StatusOK, s.issueLocked(r, g, g.scopes, req.nonce))
}

func (s *Server) redeemRefreshToken(w http.ResponseWriter, r *http.Request, info *reqInfo, pathTID string) {
	now := s.now()
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'.", now)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.refresh[rt]
	if tok == nil {
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.", now)
		return
	}
	g := tok.grant
	info.user = g.oid
	switch {
	case g.revoked:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 50173,
			"The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.", now)
		return
	case tok.used:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 70008,
			"The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource. (graphfake: this refresh token was already redeemed; use the rotated one.)", now)
		return
	case !now.Before(tok.expires):
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 700082,
			"The refresh token has expired due to inactivity.", now)
		return
	case !strings.EqualFold(g.clientID, s.opts.ClientID):
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 70000, "The refresh token was issued to another client.", now)
		return
	case pathTID != "" && pathTID != g.tid:
		writeAADError(w, http.StatusBadRequest, "invalid_grant", 50020, "The refresh token was issued for another tenant.", now)
		return
	}
	scopes := g.scopes
	if raw := strings.TrimSpace(r.PostForm.Get("scope")); raw != "" {
		scopes = nil
		for _, sc := range strings.Fields(raw) {
			norm, ok := normalizeScope(sc)
			if !ok || !g.has(norm) {
				writeAADError(w, http.StatusBadRequest, "invalid_grant", 65001,
					"The user or administrator has not consented to use the application with ID '"+g.clientID+"'. Send an interactive authorization request for this user and resource.", now)
				return
			}
			if !slices.Contains(scopes, norm) {
				scopes = append(scopes, norm)
			}
		}
	}
	if !s.opts.KeepOldRefreshTokens {
		tok.used = true
	}
	writeJSON(w, http.StatusOK, s.issueLocked(r, g, scopes, ""))
}

// issueLocked mints an access token for scopes of g, a refresh token when
// offline_access was granted and an ID token when openid was.
func (s *Server) issueLocked(r *http.Request, g *grant, scopes []string, nonce string) tokenResponse {
	now := s.now()
	s.sweepTokensLocked(now)
	at := "EwB" + randomToken(120)
	s.access[at] = &accessToken{grant: g, scopes: slices.Clone(scopes), expires: now.Add(s.opts.AccessTokenTTL)}
	ttl := int(s.opts.AccessTokenTTL / time.Second)
	resp := tokenResponse{
		TokenType:    "Bearer",
		Scope:        strings.Join(scopes, " "),
		ExpiresIn:    ttl,
		ExtExpiresIn: ttl,
		AccessToken:  at,
	}
	if g.has(ScopeOfflineAccess) {
		rt := "1.AQ" + randomToken(160)
		s.refresh[rt] = &refreshToken{grant: g, expires: now.Add(s.opts.RefreshTokenTTL)}
		resp.RefreshToken = rt
	}
	if g.has(ScopeOpenID) {
		resp.IDToken = s.idTokenLocked(r, g, scopes, nonce, now)
	}
	return resp
}

func (s *Server) sweepTokensLocked(now time.Time) {
	if len(s.access) >= 4096 {
		for tok, a := range s.access {
			if !now.Before(a.expires) {
				delete(s.access, tok)
			}
		}
	}
	if len(s.refresh) >= 4096 {
		for tok, rt := range s.refresh {
			if !now.Before(rt.expires) {
				delete(s.refresh, tok)
			}
		}
	}
}

// IssueToken returns a new access token for the account with the given
// scopes, as if the person had consented, skipping the authorization code
// flow. It panics when the account does not exist: it is a test helper.
func (s *Server) IssueToken(oid string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		panic(err)
	}
	var norm []string
	for _, sc := range scopes {
		n, ok := normalizeScope(sc)
		if !ok {
			panic(fmt.Sprintf("graphfake: unknown scope %q", sc))
		}
		norm = append(norm, n)
	}
	g := &grant{tid: u.tid, oid: u.oid, clientID: s.opts.ClientID, scopes: norm}
	s.grants = append(s.grants, g)
	at := "EwB" + randomToken(120)
	s.access[at] = &accessToken{grant: g, scopes: norm, expires: s.now().Add(s.opts.AccessTokenTTL)}
	return at
}

// Subject returns the "sub" claim the fake puts in ID tokens for the account:
// like the identity platform's, it is pairwise (differs per application).
func (s *Server) Subject(oid string) string {
	sum := sha256.Sum256([]byte(s.opts.ClientID + "|" + oid))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:43]
}

type idTokenClaims struct {
	Aud               string `json:"aud"`
	Iss               string `json:"iss"`
	Iat               int64  `json:"iat"`
	Nbf               int64  `json:"nbf"`
	Exp               int64  `json:"exp"`
	Email             string `json:"email,omitempty"`
	Name              string `json:"name,omitempty"`
	Nonce             string `json:"nonce,omitempty"`
	OID               string `json:"oid"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Sub               string `json:"sub"`
	TID               string `json:"tid"`
	Uti               string `json:"uti"`
	Ver               string `json:"ver"`
}

func (s *Server) idTokenLocked(r *http.Request, g *grant, scopes []string, nonce string, now time.Time) string {
	c := idTokenClaims{
		Aud:   g.clientID,
		Iss:   issuer(s.baseLocked(r), g.tid),
		Iat:   now.Unix(),
		Nbf:   now.Unix(),
		Exp:   now.Add(time.Hour).Unix(),
		Nonce: nonce,
		OID:   g.oid,
		Sub:   s.Subject(g.oid),
		TID:   g.tid,
		Uti:   randomToken(16),
		Ver:   "2.0",
	}
	if u := s.users[g.oid]; u != nil {
		if slices.Contains(scopes, ScopeEmail) {
			c.Email = u.email
		}
		if slices.Contains(scopes, ScopeProfile) {
			c.Name, c.PreferredUsername = u.name, u.email
		}
	}
	return s.signJWT(c)
}

// signJWT returns claims as a compact RS256 JWS.
func (s *Server) signJWT(claims any) string {
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": s.kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func pkceMatches(challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// handleUserinfo serves Graph's OpenID Connect userinfo endpoint.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	at, status, code, msg := s.authenticate(r)
	if at == nil {
		s.unauthorized(w, r, status, code, msg)
		return
	}
	info.user = at.grant.oid
	if !at.has(ScopeOpenID) {
		s.graphError(w, r, http.StatusForbidden, CodeAuthorizationRequestDenied, "Insufficient privileges to complete the operation.")
		return
	}
	s.mu.Lock()
	u := s.users[at.grant.oid]
	s.mu.Unlock()
	out := map[string]any{"sub": s.Subject(at.grant.oid)}
	if u != nil && at.has(ScopeProfile) {
		given, family, _ := strings.Cut(u.name, " ")
		out["name"], out["given_name"], out["family_name"] = u.name, given, family
		out["picture"] = s.base(r) + "/v1.0/me/photo/$value"
	}
	if u != nil && at.has(ScopeEmail) {
		out["email"] = u.email
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) redirectAllowed(u string) bool {
	if len(s.opts.RedirectURIs) > 0 {
		return slices.Contains(s.opts.RedirectURIs, u)
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && p.Fragment == ""
}

func addQuery(u string, v url.Values) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	for k, vs := range v {
		q[k] = vs
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// sameOrigin rejects form posts whose Origin header names another site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// writeAADError writes the identity platform's token endpoint error body.
func writeAADError(w http.ResponseWriter, status int, code string, aadsts int, desc string, now time.Time) {
	trace, corr := newGUID(), newGUID()
	ts := now.UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, status, map[string]any{
		"error": code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			aadsts, desc, trace, corr, ts),
		"error_codes":    []int{aadsts},
		"timestamp":      ts,
		"trace_id":       trace,
		"correlation_id": corr,
		"error_uri":      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}
