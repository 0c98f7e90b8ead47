package zoomfake

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// authRequest is an authorize request waiting on the consent page.
type authRequest struct {
	redirectURI     string
	state           string
	challenge       string
	challengeMethod string
	expires         time.Time
}

// authCode is an issued authorization code.
type authCode struct {
	req     authRequest
	userID  string
	expires time.Time
}

// grant is one authorization of the app by a user; its tokens die with it.
type grant struct {
	userID  string
	scopes  []string
	revoked bool
}

type accessToken struct {
	grant   *grant
	expires time.Time
}

type refreshToken struct {
	grant   *grant
	expires time.Time
}

// writeOAuthError writes Zoom's token-endpoint error: {"reason":…,"error":…}.
func writeOAuthError(w http.ResponseWriter, status int, code, reason string) {
	writeJSON(w, status, map[string]string{"reason": reason, "error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// handleAuthorize serves GET /oauth/authorize: the consent page, or an
// immediate redirect with AutoApprove.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	q := r.URL.Query()
	now := s.now()
	s.mu.Lock()
	ar, msg := s.parseAuthorize(q, now)
	if msg != "" {
		s.mu.Unlock()
		s.renderError(w, http.StatusBadRequest, msg)
		return
	}
	if s.autoApprove {
		uid := s.autoUser
		if uid == "" && len(s.userOrder) > 0 {
			uid = s.userOrder[0]
		}
		if s.users[uid] != nil {
			info.user = uid
			loc := s.approve(ar, uid, now)
			s.mu.Unlock()
			http.Redirect(w, r, loc, http.StatusFound)
			return
		}
	}
	for id, p := range s.pending {
		if !now.Before(p.expires) {
			delete(s.pending, id)
		}
	}
	id := randHex(16)
	s.pending[id] = ar
	data := consentData{RequestID: id, ClientID: s.opts.ClientID, Redirect: ar.redirectURI,
		Scopes: s.scopes, Users: slices.Clone(s.userOrder)}
	s.mu.Unlock()
	s.render(w, http.StatusOK, "consent", page{Title: "Allow access", Body: data})
}

// parseAuthorize validates an authorize request; s.mu must be held. A
// non-empty message means the request is refused with that text.
func (s *Server) parseAuthorize(q url.Values, now time.Time) (*authRequest, string) {
	ar := &authRequest{
		redirectURI:     q.Get("redirect_uri"),
		state:           q.Get("state"),
		challenge:       q.Get("code_challenge"),
		challengeMethod: q.Get("code_challenge_method"),
		expires:         now.Add(10 * time.Minute),
	}
	if q.Get("response_type") != "code" {
		return nil, "Invalid response_type: use code."
	}
	if id := q.Get("client_id"); id == "" || id != s.opts.ClientID {
		return nil, "Invalid client_id: this app is unknown to Sandbox Zoom (error 4,700)."
	}
	u, err := url.Parse(ar.redirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return nil, "Invalid redirect: redirect_uri must be an absolute http(s) URL without a fragment (error 4,700)."
	}
	if len(s.opts.RedirectURIs) > 0 && !slices.ContainsFunc(s.opts.RedirectURIs, func(p string) bool {
		return strings.HasPrefix(ar.redirectURI, p)
	}) {
		return nil, "Invalid redirect: redirect_uri is not on the app's OAuth allow list (error 4,700)."
	}
	switch {
	case ar.challenge == "" && s.opts.RequirePKCE:
		return nil, "Invalid request: code_challenge is required."
	case ar.challenge != "" && ar.challengeMethod == "":
		ar.challengeMethod = "plain"
	case ar.challenge != "" && ar.challengeMethod != "S256" && ar.challengeMethod != "plain":
		return nil, "Invalid request: code_challenge_method must be S256 or plain."
	}
	return ar, ""
}

// handleConsent serves POST /oauth/authorize: Allow or Cancel.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	now := s.now()
	s.mu.Lock()
	id := r.PostForm.Get("request")
	ar := s.pending[id]
	if ar == nil || !now.Before(ar.expires) {
		delete(s.pending, id)
		s.mu.Unlock()
		s.renderError(w, http.StatusBadRequest, "This authorization request is unknown or expired; start again from the app.")
		return
	}
	var loc string
	switch r.PostForm.Get("decision") {
	case "cancel":
		loc = redirectWith(ar.redirectURI, url.Values{"error": {"access_denied"}, "state": {ar.state}})
	case "allow":
		uid := r.PostForm.Get("user")
		if s.users[uid] == nil {
			s.mu.Unlock()
			s.renderError(w, http.StatusBadRequest, "Choose a person to sign in as.")
			return
		}
		info.user = uid
		loc = s.approve(ar, uid, now)
	default:
		s.mu.Unlock()
		s.renderError(w, http.StatusBadRequest, "Choose Allow or Cancel.")
		return
	}
	delete(s.pending, id)
	s.mu.Unlock()
	http.Redirect(w, r, loc, http.StatusFound)
}

// approve issues a code for userID and returns the redirect; s.mu must be held.
func (s *Server) approve(ar *authRequest, userID string, now time.Time) string {
	code := randToken(32)
	s.codes[code] = &authCode{req: *ar, userID: userID, expires: now.Add(CodeLifetime)}
	return redirectWith(ar.redirectURI, url.Values{"code": {code}, "state": {ar.state}})
}

// redirectWith adds params to a redirect URI, keeping its own query.
func redirectWith(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI
	}
	q := u.Query()
	for k, vs := range params {
		if len(vs) == 1 && vs[0] == "" {
			continue
		}
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// clientAuth checks the Basic header, the only place Zoom reads client
// credentials from.
func (s *Server) clientAuth(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return false
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1
	return idOK && secretOK
}

// handleToken serves POST /oauth/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	if !s.clientAuth(r) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Invalid client_id or client_secret")
		return
	}
	now := s.now()
	f := r.PostForm
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f.Get("grant_type") {
	case "authorization_code":
		code := f.Get("code")
		ac := s.codes[code]
		if ac == nil || !now.Before(ac.expires) {
			delete(s.codes, code)
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid authorization code")
			return
		}
		delete(s.codes, code) // one use, even when the rest fails
		if f.Get("redirect_uri") != ac.req.redirectURI {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Redirect URI mismatch.")
			return
		}
		if ac.req.challenge != "" && !verifierMatches(ac.req, f.Get("code_verifier")) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid code_verifier")
			return
		}
		if s.users[ac.userID] == nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid authorization code")
			return
		}
		info.user = ac.userID
		g := &grant{userID: ac.userID, scopes: slices.Clone(s.scopes)}
		s.writeTokens(w, g, now)
	case "refresh_token":
		rt := f.Get("refresh_token")
		old := s.refresh[rt]
		if old == nil || old.grant.revoked || !now.Before(old.expires) || s.users[old.grant.userID] == nil {
			writeOAuthError(w, http.StatusBadRequest, s.opts.RefreshErrorCode, "Invalid Token!")
			return
		}
		delete(s.refresh, rt) // rotation: the old refresh token stops working
		info.user = old.grant.userID
		s.writeTokens(w, old.grant, now)
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing grant_type")
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type")
	}
}

// writeTokens issues an access and a refresh token under g; s.mu must be held.
func (s *Server) writeTokens(w http.ResponseWriter, g *grant, now time.Time) {
	access, refresh := s.issue(g, now)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  access,
		"token_type":    "bearer",
		"refresh_token": refresh,
		"expires_in":    int(s.opts.AccessTokenTTL/time.Second) - 1,
		"scope":         strings.Join(g.scopes, " "),
	})
}

func (s *Server) issue(g *grant, now time.Time) (access, refresh string) {
	access = "zfa." + randToken(40)
	refresh = "zfr." + randToken(40)
	s.access[access] = &accessToken{grant: g, expires: now.Add(s.opts.AccessTokenTTL)}
	s.refresh[refresh] = &refreshToken{grant: g, expires: now.Add(s.opts.RefreshTokenTTL)}
	return access, refresh
}

func verifierMatches(ar authRequest, verifier string) bool {
	if verifier == "" {
		return false
	}
	want := verifier
	if ar.challengeMethod == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(ar.challenge)) == 1
}

// handleRevoke serves POST /oauth/revoke?token=…: the grant behind an access
// or refresh token is revoked with all its tokens.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	if !s.clientAuth(r) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Invalid client_id or client_secret")
		return
	}
	tok := r.Form.Get("token") // query or form
	s.mu.Lock()
	defer s.mu.Unlock()
	var g *grant
	if at := s.access[tok]; at != nil {
		g = at.grant
	} else if rt := s.refresh[tok]; rt != nil {
		g = rt.grant
	}
	if g == nil || g.revoked {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid Token!")
		return
	}
	g.revoked = true
	info.user = g.userID
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}

// IssueToken returns a new access and refresh token for userID with the
// given scopes (the app's when none), as if the person had authorized the
// app. It panics when the user does not exist: it is a test helper.
func (s *Server) IssueToken(userID string, scopes ...string) (access, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[userID] == nil {
		panic("zoomfake: IssueToken: unknown user " + userID)
	}
	if len(scopes) == 0 {
		scopes = s.scopes
	}
	return s.issue(&grant{userID: userID, scopes: slices.Clone(scopes)}, s.now())
}

// RevokeTokens revokes every grant of userID, as when the person removes
// the app: later API calls get 401 and refreshes get "Invalid Token!".
func (s *Server) RevokeTokens(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.access {
		if at.grant.userID == userID {
			at.grant.revoked = true
		}
	}
	for _, rt := range s.refresh {
		if rt.grant.userID == userID {
			rt.grant.revoked = true
		}
	}
}

// ExpireAccessTokens makes every access token of userID expire now (refresh
// tokens keep working), to test a 401 followed by a refresh.
func (s *Server) ExpireAccessTokens(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, at := range s.access {
		if at.grant.userID == userID && at.expires.After(now) {
			at.expires = now
		}
	}
}
