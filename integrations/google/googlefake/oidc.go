package googlefake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	codeTTL    = 10 * time.Minute
	pendingTTL = 30 * time.Minute
)

// authRequest is a validated authorization request waiting for consent.
type authRequest struct {
	id          string
	clientID    string
	redirectURI string
	scopes      []string // as requested, normalised, deduplicated
	state       string
	nonce       string
	challenge   string
	method      string
	offline     bool
	loginHint   string
	expires     time.Time
}

type authCode struct {
	req     *authRequest
	sub     string
	expires time.Time
	used    bool
	grant   *grant // set once redeemed
}

// grant is one consent: the tokens issued from one code share it, so
// revoking any of them revokes all, as at Google.
type grant struct {
	sub      string
	clientID string
	scopes   []string
	revoked  bool
}

type accessToken struct {
	grant   *grant
	expires time.Time
}

func (g *grant) has(scope string) bool { return slices.Contains(g.scopes, scope) }

// knownScopes maps the scopes the fake accepts to the form Google reports
// them in (short OIDC names become userinfo URLs, as Google does).
var knownScopes = map[string]string{
	ScopeOpenID:                 ScopeOpenID,
	ScopeEmail:                  ScopeUserinfoEmail,
	ScopeProfile:                ScopeUserinfoProfile,
	ScopeUserinfoEmail:          ScopeUserinfoEmail,
	ScopeUserinfoProfile:        ScopeUserinfoProfile,
	ScopeCalendar:               ScopeCalendar,
	ScopeCalendarReadonly:       ScopeCalendarReadonly,
	ScopeCalendarEvents:         ScopeCalendarEvents,
	ScopeCalendarEventsReadonly: ScopeCalendarEventsReadonly,
	ScopeCalendarSettings:       ScopeCalendarSettings,
}

var scopeDescriptions = map[string]string{
	ScopeOpenID:                 "Associate you with your personal info on Google",
	ScopeUserinfoEmail:          "See your primary Google Account email address",
	ScopeUserinfoProfile:        "See your personal info, including any personal info you've made publicly available",
	ScopeCalendar:               "See, edit, share, and permanently delete all the calendars you can access using Google Calendar",
	ScopeCalendarReadonly:       "See and download any calendar you can access using your Google Calendar",
	ScopeCalendarEvents:         "View and edit events on all your calendars",
	ScopeCalendarEventsReadonly: "View events on all your calendars",
	ScopeCalendarSettings:       "See your Google Calendar settings",
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	b := s.base(r)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                b,
		"authorization_endpoint":                b + "/o/oauth2/v2/auth",
		"token_endpoint":                        b + "/token",
		"userinfo_endpoint":                     b + "/v1/userinfo",
		"revocation_endpoint":                   b + "/revoke",
		"jwks_uri":                              b + "/oauth2/v3/certs",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_supported": []string{"aud", "email", "email_verified", "exp", "family_name", "given_name",
			"iat", "iss", "name", "sub", "nonce", "at_hash", "azp"},
		"code_challenge_methods_supported": []string{"plain", "S256"},
		"grant_types_supported":            []string{"authorization_code", "refresh_token"},
	})
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request, _ *reqInfo) {
	pub := s.key.PublicKey
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, map[string]any{
		"keys": []map[string]string{{
			"kty": "RSA",
			"alg": "RS256",
			"use": "sig",
			"kid": s.kid,
			"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}},
	})
}

// handleAuthorize validates an authorization request and shows the consent
// page. Like Google, problems with the client or redirect URI are shown on an
// error page; later problems are reported to the redirect URI.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	q := r.URL.Query()
	clientID := q.Get("client_id")
	if clientID == "" {
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: client_id")
		return
	}
	if clientID != s.opts.ClientID {
		s.errorPage(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" {
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: redirect_uri")
		return
	}
	if !s.redirectAllowed(redirectURI) {
		s.errorPage(w, http.StatusBadRequest, "redirect_uri_mismatch",
			"You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy: the redirect URI is not registered for this client.")
		return
	}
	if q.Get("scope") == "" {
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: scope")
		return
	}
	var scopes []string
	for _, sc := range strings.Fields(q.Get("scope")) {
		norm, ok := knownScopes[sc]
		if !ok {
			s.errorPage(w, http.StatusBadRequest, "invalid_scope", "Some requested scopes were invalid.")
			return
		}
		if !slices.Contains(scopes, norm) {
			scopes = append(scopes, norm)
		}
	}
	method := q.Get("code_challenge_method")
	challenge := q.Get("code_challenge")
	switch {
	case challenge == "" && method != "":
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Missing code_challenge.")
		return
	case challenge != "" && method == "":
		method = "plain"
	case challenge != "" && method != "plain" && method != "S256":
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid code_challenge_method value.")
		return
	}
	if s.opts.RequirePKCE && (challenge == "" || method != "S256") {
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "code_challenge with code_challenge_method S256 is required.")
		return
	}
	if challenge != "" && (len(challenge) < 43 || len(challenge) > 128) {
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid code_challenge.")
		return
	}
	accessType := q.Get("access_type")
	if accessType != "" && accessType != "online" && accessType != "offline" {
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Invalid access_type: "+accessType)
		return
	}
	state := q.Get("state")
	if rt := q.Get("response_type"); rt != "code" {
		redirectWith(w, r, redirectURI, url.Values{"error": {"unsupported_response_type"}, "state": {state}})
		return
	}
	req := &authRequest{
		id:          randomToken(24),
		clientID:    clientID,
		redirectURI: redirectURI,
		scopes:      scopes,
		state:       state,
		nonce:       q.Get("nonce"),
		challenge:   challenge,
		method:      method,
		offline:     accessType == "offline",
		loginHint:   q.Get("login_hint"),
		expires:     s.now().Add(pendingTTL),
	}
	prompts := strings.Fields(q.Get("prompt"))
	if slices.Contains(prompts, "none") && !s.opts.AutoApprove {
		// The fake keeps no browser session, so it can never answer
		// without showing a page.
		redirectWith(w, r, redirectURI, url.Values{"error": {"interaction_required"}, "state": {state}})
		return
	}
	s.mu.Lock()
	s.ensureDefaultLocked()
	if s.opts.AutoApprove {
		sub := s.hintedAccountLocked(req.loginHint)
		u := s.approveLocked(req, sub)
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
	data := consentPage{
		RequestID: req.id,
		Action:    "/o/oauth2/v2/auth/consent",
		Selected:  s.hintedAccountLocked(req.loginHint),
	}
	for _, sub := range s.accountOrder {
		a := s.accounts[sub]
		data.Accounts = append(data.Accounts, consentAccount{Sub: a.sub, Email: a.email, Name: a.name})
	}
	s.mu.Unlock()
	for _, sc := range scopes {
		data.Scopes = append(data.Scopes, consentScope{Scope: sc, Description: scopeDescriptions[sc]})
	}
	if host, err := url.Parse(redirectURI); err == nil {
		data.ClientHost = host.Host
	}
	s.renderPage(w, http.StatusOK, "consent", data)
}

// hintedAccountLocked returns the account login_hint names (sub or e-mail),
// or the first account.
func (s *Server) hintedAccountLocked(hint string) string {
	for _, sub := range s.accountOrder {
		a := s.accounts[sub]
		if hint != "" && (hint == a.sub || strings.EqualFold(hint, a.email)) {
			return sub
		}
	}
	return s.accountOrder[0]
}

// approveLocked issues a code for req and returns the redirect URL.
func (s *Server) approveLocked(req *authRequest, sub string) string {
	code := "4/0" + randomToken(48)
	s.codes[code] = &authCode{req: req, sub: sub, expires: s.now().Add(codeTTL)}
	return addQuery(req.redirectURI, url.Values{
		"state":    {req.state},
		"code":     {code},
		"scope":    {strings.Join(req.scopes, " ")},
		"authuser": {"0"},
		"prompt":   {"consent"},
	})
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	if !sameOrigin(r) {
		s.errorPage(w, http.StatusForbidden, "invalid_request", "Cross-origin consent is not allowed.")
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
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "This sign-in request has expired or was already used. Start again from the app.")
		return
	}
	if r.PostForm.Get("action") != "allow" {
		s.mu.Unlock()
		redirectWith(w, r, req.redirectURI, url.Values{"error": {"access_denied"}, "state": {req.state}})
		return
	}
	sub := r.PostForm.Get("account")
	if s.accounts[sub] == nil {
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Choose an account.")
		return
	}
	info.account = sub
	u := s.approveLocked(req, sub)
	s.mu.Unlock()
	http.Redirect(w, r, u, http.StatusFound)
}

// tokenResponse is the token endpoint's success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	IDToken      string `json:"id_token,omitempty"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
		return
	}
	form := r.PostForm
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || (clientID != "" && clientID != u) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Malformed client credentials.")
			return
		}
		clientID, secret = u, p
	}
	switch {
	case clientID == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
		return
	case clientID != s.opts.ClientID:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	case subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		s.redeemCode(w, r, info)
	case "refresh_token":
		s.redeemRefreshToken(w, r, info)
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
}

func (s *Server) redeemCode(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	form := r.PostForm
	code := form.Get("code")
	if code == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ac := s.codes[code]
	if ac == nil || s.now().After(ac.expires) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Malformed auth code.")
		return
	}
	info.account = ac.sub
	if ac.used {
		// A replayed code revokes what it was exchanged for (RFC 6749 4.1.2).
		if ac.grant != nil {
			ac.grant.revoked = true
		}
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	}
	req := ac.req
	if req.clientID != s.opts.ClientID {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	}
	if form.Get("redirect_uri") != req.redirectURI {
		writeOAuthError(w, http.StatusBadRequest, "redirect_uri_mismatch", "Bad Request")
		return
	}
	verifier := form.Get("code_verifier")
	if req.challenge != "" {
		ac.used = true // a failed verifier burns the code
		if verifier == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Missing code verifier.")
			return
		}
		if !pkceMatches(req.method, req.challenge, verifier) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Invalid code verifier.")
			return
		}
	} else if verifier != "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code_verifier or verifier is not needed.")
		return
	}
	ac.used = true
	g := &grant{sub: ac.sub, clientID: req.clientID, scopes: slices.Clone(req.scopes)}
	ac.grant = g
	s.grants = append(s.grants, g)
	resp := s.issueLocked(r, g, req.nonce)
	if req.offline {
		rt := "1//0" + randomToken(64)
		s.refresh[rt] = g
		resp.RefreshToken = rt
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) redeemRefreshToken(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.refresh[rt]
	if g == nil || g.revoked {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	info.account = g.sub
	if g.clientID != s.opts.ClientID {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "Unauthorized")
		return
	}
	writeJSON(w, http.StatusOK, s.issueLocked(r, g, ""))
}

// issueLocked mints an access token (and an ID token when openid was
// granted) for g.
func (s *Server) issueLocked(r *http.Request, g *grant, nonce string) tokenResponse {
	at := "ya29.a0" + randomToken(96)
	now := s.now()
	s.sweepAccessLocked(now)
	s.access[at] = &accessToken{grant: g, expires: now.Add(s.opts.AccessTokenTTL)}
	resp := tokenResponse{
		AccessToken: at,
		ExpiresIn:   int(s.opts.AccessTokenTTL/time.Second) - 1,
		Scope:       strings.Join(g.scopes, " "),
		TokenType:   "Bearer",
	}
	if g.has(ScopeOpenID) {
		resp.IDToken = s.idTokenLocked(r, g, nonce, at, now)
	}
	return resp
}

// sweepAccessLocked drops expired access tokens once there are many: when the map has grown
// to twice what the last sweep left (at least 4,096), so that with many live tokens each issue
// does not walk them all.
func (s *Server) sweepAccessLocked(now time.Time) {
	if len(s.access) < max(4096, 2*s.accessKept) {
		return
	}
	for tok, old := range s.access {
		if !now.Before(old.expires) {
			delete(s.access, tok)
		}
	}
	s.accessKept = len(s.access)
}

// IssueGrant mints a grant for the account sub with scopes, as if the person had consented
// to this client, and returns its access token, refresh token and the access token's expiry.
// Load tests seed thousands of connected people with it instead of the consent flow; a grant
// without openid refreshes without signing an ID token. It panics on an unknown account.
func (s *Server) IssueGrant(sub string, scopes ...string) (access, refresh string, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[sub] == nil {
		panic("googlefake: IssueGrant: unknown account " + sub)
	}
	var granted []string
	for _, sc := range scopes {
		if v, ok := knownScopes[sc]; ok && !slices.Contains(granted, v) {
			granted = append(granted, v)
		}
	}
	g := &grant{sub: sub, clientID: s.opts.ClientID, scopes: granted}
	s.grants = append(s.grants, g)
	now := s.now()
	s.sweepAccessLocked(now)
	access = "ya29.a0" + randomToken(96)
	expires = now.Add(s.opts.AccessTokenTTL)
	s.access[access] = &accessToken{grant: g, expires: expires}
	refresh = "1//0" + randomToken(64)
	s.refresh[refresh] = g
	return access, refresh, expires
}

type idTokenClaims struct {
	Iss           string `json:"iss"`
	Azp           string `json:"azp"`
	Aud           string `json:"aud"`
	Sub           string `json:"sub"`
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	AtHash        string `json:"at_hash,omitempty"`
	Nonce         string `json:"nonce,omitempty"`
	Name          string `json:"name,omitempty"`
	GivenName     string `json:"given_name,omitempty"`
	FamilyName    string `json:"family_name,omitempty"`
	Iat           int64  `json:"iat"`
	Exp           int64  `json:"exp"`
}

func (s *Server) idTokenLocked(r *http.Request, g *grant, nonce, accessToken string, now time.Time) string {
	a := s.accounts[g.sub]
	baseURL := s.baseURL
	if baseURL == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		baseURL = scheme + "://" + r.Host
	}
	atSum := sha256.Sum256([]byte(accessToken))
	c := idTokenClaims{
		Iss:    baseURL,
		Azp:    g.clientID,
		Aud:    g.clientID,
		Sub:    g.sub,
		AtHash: base64.RawURLEncoding.EncodeToString(atSum[:16]),
		Nonce:  nonce,
		Iat:    now.Unix(),
		Exp:    now.Add(time.Hour).Unix(),
	}
	if a != nil && g.has(ScopeUserinfoEmail) {
		verified := true
		c.Email, c.EmailVerified = a.email, &verified
	}
	if a != nil && g.has(ScopeUserinfoProfile) {
		c.Name = a.name
		given, family, _ := strings.Cut(a.name, " ")
		c.GivenName, c.FamilyName = given, family
	}
	return s.signJWT(c)
}

// signJWT returns claims as a compact RS256 JWS.
func (s *Server) signJWT(claims any) string {
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": s.kid, "typ": "JWT"})
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

func pkceMatches(method, challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// handleRevoke revokes the grant behind an access or refresh token.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	tok := r.PostForm.Get("token")
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	s.mu.Lock()
	var g *grant
	if at := s.access[tok]; at != nil {
		g = at.grant
	} else if rg := s.refresh[tok]; rg != nil {
		g = rg
	}
	if g != nil && !g.revoked {
		g.revoked = true
		info.account = g.sub
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	s.mu.Unlock()
	writeOAuthError(w, http.StatusBadRequest, "invalid_token", "Token expired or revoked")
}

func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	g, ok := s.validAccess(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_request", "Invalid Credentials")
		return
	}
	info.account = g.sub
	s.mu.Lock()
	a := s.accounts[g.sub]
	s.mu.Unlock()
	out := map[string]any{"sub": g.sub}
	if a != nil && g.has(ScopeUserinfoEmail) {
		out["email"], out["email_verified"] = a.email, true
	}
	if a != nil && g.has(ScopeUserinfoProfile) {
		given, family, _ := strings.Cut(a.name, " ")
		out["name"], out["given_name"], out["family_name"] = a.name, given, family
	}
	writeJSON(w, http.StatusOK, out)
}

// validAccess returns the grant of the request's bearer token when it is
// known, unexpired and not revoked.
func (s *Server) validAccess(r *http.Request) (*grant, bool) {
	tok, ok := bearerToken(r)
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.access[tok]
	if at == nil || at.grant.revoked || !s.now().Before(at.expires) {
		return nil, false
	}
	return at.grant, true
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
		if len(vs) == 1 && vs[0] == "" && k == "state" {
			continue
		}
		q[k] = vs
	}
	p.RawQuery = q.Encode()
	return p.String()
}

func redirectWith(w http.ResponseWriter, r *http.Request, redirectURI string, v url.Values) {
	http.Redirect(w, r, addQuery(redirectURI, v), http.StatusFound)
}

// sameOrigin rejects form posts whose Origin header names another site.
// Browsers send "null" in some same-site cases, so that passes.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "googlefake: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
