package slackfake

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// authRequest is an authorize request waiting on the consent page.
type authRequest struct {
	clientID        string
	scopes          []string // bot scopes ("scope")
	userScopes      []string // user scopes ("user_scope")
	redirectURI     string
	redirectGiven   bool // redirect_uri was in the authorize request
	state           string
	challenge       string // PKCE code_challenge
	challengeMethod string
	expires         time.Time

	// Sign in with Slack (OpenID Connect) requests: scopes holds the
	// OpenID scopes (openid, profile, email).
	oidc  bool
	nonce string
}

// authCode is an issued authorization code.
type authCode struct {
	req     authRequest
	teamID  string
	userID  string
	expires time.Time
	used    bool
}

// splitScopes splits Slack's comma-separated scope lists (spaces are tolerated).
func splitScopes(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// handleAuthorize serves GET /oauth/v2/authorize: the consent page.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := s.now()

	s.mu.Lock()
	ar, msg := s.parseAuthorize(q, now)
	if msg != "" {
		s.mu.Unlock()
		s.renderError(w, http.StatusBadRequest, msg)
		return
	}
	if uid := s.autoApprove; uid != "" && s.users[uid] != nil {
		loc := s.approve(ar, s.users[uid], now)
		s.mu.Unlock()
		http.Redirect(w, r, loc, http.StatusFound)
		return
	}
	for id, p := range s.pending {
		if !now.Before(p.expires) {
			delete(s.pending, id)
		}
	}
	id := randHex(16)
	s.pending[id] = ar
	data := consentData{
		RequestID:  id,
		ClientID:   ar.clientID,
		Scopes:     ar.scopes,
		UserScopes: ar.userScopes,
		Redirect:   ar.redirectURI,
		Teams:      s.peopleView(now),
	}
	s.mu.Unlock()
	s.render(w, http.StatusOK, "consent", page{Title: "Allow access", Body: data})
}

// parseAuthorize validates an authorize request; s.mu must be held. A
// non-empty message means the request is refused with that text.
func (s *Server) parseAuthorize(q url.Values, now time.Time) (*authRequest, string) {
	ar := &authRequest{
		clientID:        q.Get("client_id"),
		scopes:          splitScopes(q.Get("scope")),
		userScopes:      splitScopes(q.Get("user_scope")),
		redirectURI:     q.Get("redirect_uri"),
		state:           q.Get("state"),
		challenge:       q.Get("code_challenge"),
		challengeMethod: q.Get("code_challenge_method"),
		expires:         now.Add(CodeLifetime),
	}
	if ar.clientID == "" || ar.clientID != s.clientID {
		return nil, "invalid_client_id: this app's client_id is unknown to Sandbox Slack."
	}
	if len(ar.scopes) == 0 && len(ar.userScopes) == 0 {
		return nil, "invalid_scope: the request asks for no scope (scope or user_scope)."
	}
	if msg := s.checkRedirect(ar); msg != "" {
		return nil, msg
	}
	if ar.challenge != "" && ar.challengeMethod != "" && ar.challengeMethod != "S256" && ar.challengeMethod != "plain" {
		return nil, "invalid_code_challenge_method: use S256."
	}
	return ar, ""
}

// checkRedirect validates (or defaults) the request's redirect_uri; s.mu must be held.
func (s *Server) checkRedirect(ar *authRequest) string {
	ar.redirectGiven = ar.redirectURI != ""
	if !ar.redirectGiven {
		if len(s.opts.RedirectURIs) == 0 {
			return "bad_redirect_uri: no redirect_uri was given and the app has none configured."
		}
		ar.redirectURI = s.opts.RedirectURIs[0]
	}
	u, err := url.Parse(ar.redirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return "bad_redirect_uri: redirect_uri must be an absolute http(s) URL without a fragment."
	}
	if len(s.opts.RedirectURIs) > 0 && !slices.ContainsFunc(s.opts.RedirectURIs, func(p string) bool {
		return strings.HasPrefix(ar.redirectURI, p)
	}) {
		return "bad_redirect_uri: redirect_uri does not match the app's configured redirect URLs."
	}
	return ""
}

// handleDecision serves POST /oauth/v2/authorize: Approve or Cancel.
func (s *Server) handleDecision(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
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
	case "approve":
		p := s.users[r.PostForm.Get("user")]
		if p == nil {
			s.mu.Unlock()
			s.renderError(w, http.StatusBadRequest, "Choose a person to sign in as.")
			return
		}
		loc = s.approve(ar, p, now)
	default:
		s.mu.Unlock()
		s.renderError(w, http.StatusBadRequest, "Choose Allow or Cancel.")
		return
	}
	delete(s.pending, id)
	s.mu.Unlock()
	http.Redirect(w, r, loc, http.StatusFound)
}

// approve issues a code for p and returns the redirect; s.mu must be held.
func (s *Server) approve(ar *authRequest, p *person, now time.Time) string {
	code := randDigits(10) + "." + randDigits(13) + "." + randHex(32)
	s.codes[code] = &authCode{req: *ar, teamID: p.teamID, userID: p.id, expires: now.Add(CodeLifetime)}
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
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// oauthV2Access answers POST /api/oauth.v2.access; s.mu must be held.
func (s *Server) oauthV2Access(req *apiRequest) result {
	clientID := req.params.Get("client_id")
	secret := req.params.Get("client_secret")
	if req.basic.ok && clientID == "" && secret == "" {
		clientID, secret = req.basic.user, req.basic.pass
	}
	if res, failed := s.takeFailure(req.method); failed {
		return res
	}
	if ok, retry := s.admit(req.now, limit{key: "oauth.v2.access/" + clientID, max: s.methodLimit(req.method)}); !ok {
		return rateLimited(retry)
	}
	if clientID == "" || clientID != s.clientID {
		return errResult("invalid_client_id")
	}
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) == 1
	if secret != "" && !secretOK {
		return errResult("bad_client_secret")
	}
	switch req.params.Get("grant_type") {
	case "", "authorization_code":
		return s.exchangeCode(req, secretOK)
	case "refresh_token":
		if !secretOK {
			return errResult("bad_client_secret")
		}
		return s.refreshTokens(req)
	default:
		return errResult("invalid_grant_type")
	}
}

func (s *Server) exchangeCode(req *apiRequest, secretOK bool) result {
	ac := s.codes[req.params.Get("code")]
	if ac == nil || ac.used || !req.now.Before(ac.expires) || ac.req.clientID != s.clientID || ac.req.oidc {
		return errResult("invalid_code")
	}
	if !secretOK {
		// Without the secret, only a PKCE verifier proves the caller.
		if ac.req.challenge == "" {
			return errResult("bad_client_secret")
		}
		if !verifierMatches(ac.req, req.params.Get("code_verifier")) {
			return errResult("invalid_code_verifier")
		}
	} else if ac.req.challenge != "" && !verifierMatches(ac.req, req.params.Get("code_verifier")) {
		return errResult("invalid_code_verifier")
	}
	if got := req.params.Get("redirect_uri"); (ac.req.redirectGiven || got != "") && got != ac.req.redirectURI {
		return errResult("bad_redirect_uri")
	}
	ac.used = true
	tm := s.teams[ac.teamID]
	if tm == nil || s.users[ac.userID] == nil {
		return errResult("invalid_code")
	}
	req.team, req.user = tm.id, ac.userID

	fields := map[string]any{
		"app_id":                s.appID,
		"team":                  map[string]any{"id": tm.id, "name": tm.name},
		"enterprise":            nil,
		"is_enterprise_install": false,
	}
	if len(ac.req.scopes) > 0 {
		access, refresh := s.issue(botToken, tm.id, tm.botUserID, ac.req.scopes, true)
		fields["access_token"] = access
		fields["token_type"] = "bot"
		fields["scope"] = strings.Join(ac.req.scopes, ",")
		fields["bot_user_id"] = tm.botUserID
		if refresh != "" {
			fields["refresh_token"] = refresh
			fields["expires_in"] = int(RotatingTokenLifetime / time.Second)
		}
	}
	authed := map[string]any{"id": ac.userID}
	if len(ac.req.userScopes) > 0 {
		access, refresh := s.issue(userToken, tm.id, ac.userID, ac.req.userScopes, true)
		authed["access_token"] = access
		authed["token_type"] = "user"
		authed["scope"] = strings.Join(ac.req.userScopes, ",")
		if refresh != "" {
			authed["refresh_token"] = refresh
			authed["expires_in"] = int(RotatingTokenLifetime / time.Second)
		}
	}
	fields["authed_user"] = authed
	return okResult(fields)
}

func verifierMatches(ar authRequest, verifier string) bool {
	if verifier == "" {
		return false
	}
	want := verifier
	if ar.challengeMethod != "plain" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(ar.challenge)) == 1
}

// refreshTokens answers grant_type=refresh_token: a new access token and a
// new refresh token; the old refresh token stops working.
func (s *Server) refreshTokens(req *apiRequest) result {
	rt := s.refresh[req.params.Get("refresh_token")]
	if rt == nil || rt.revoked || rt.clientID != s.clientID {
		return errResult("invalid_refresh_token")
	}
	tm := s.teams[rt.teamID]
	if tm == nil || (rt.kind == userToken && s.users[rt.userID] == nil) {
		return errResult("invalid_refresh_token")
	}
	rt.revoked = true
	req.team, req.user = rt.teamID, rt.userID
	access, refresh := s.issue(rt.kind, rt.teamID, rt.userID, rt.scopes, true)
	expiresIn := int(RotatingTokenLifetime / time.Second)
	fields := map[string]any{
		"app_id":                s.appID,
		"team":                  map[string]any{"id": tm.id, "name": tm.name},
		"enterprise":            nil,
		"is_enterprise_install": false,
	}
	scope := strings.Join(rt.scopes, ",")
	if rt.kind == userToken && s.opts.RefreshUserTokenInAuthedUser {
		fields["authed_user"] = map[string]any{
			"id": rt.userID, "access_token": access, "token_type": "user", "scope": scope,
			"refresh_token": refresh, "expires_in": expiresIn,
		}
		return okResult(fields)
	}
	fields["access_token"] = access
	fields["token_type"] = rt.kind.String()
	fields["scope"] = scope
	fields["refresh_token"] = refresh
	fields["expires_in"] = expiresIn
	if rt.kind == botToken {
		fields["bot_user_id"] = tm.botUserID
	} else {
		fields["authed_user"] = map[string]any{"id": rt.userID}
	}
	return okResult(fields)
}
