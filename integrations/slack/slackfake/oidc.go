package slackfake

// Sign in with Slack (OpenID Connect), as slack.com serves it: a discovery
// document whose issuer is the fake's base URL, a JWKS, the authorize page
// (the same consent page as OAuth v2) and openid.connect.token, which answers
// like every Web API method: HTTP 200 with {"ok":true,…} or
// {"ok":false,"error":…}. golang.org/x/oauth2 (v0.38) reads the "error" of an
// HTTP 200 answer as a *oauth2.RetrieveError, so a generic OIDC client works
// against it too.

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
	"slices"
	"strings"
	"time"
)

// IDTokenLifetime is how long a Sign in with Slack ID token is valid.
const IDTokenLifetime = time.Hour

// OpenID scopes Sign in with Slack knows.
const (
	ScopeOpenID  = "openid"
	ScopeProfile = "profile"
	ScopeEmail   = "email"
)

// Namespaced claims of Slack's ID tokens and userInfo answers.
const (
	ClaimUserID   = "https://slack.com/user_id"
	ClaimTeamID   = "https://slack.com/team_id"
	ClaimTeamName = "https://slack.com/team_name"
)

// signingKey returns key, or a new 2048-bit RSA key.
func signingKey(key *rsa.PrivateKey) *rsa.PrivateKey {
	if key != nil {
		return key
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("slackfake: generate the ID token signing key: " + err.Error())
	}
	return key
}

// keyID is the JWKS kid of the signing key.
func (s *Server) keyID() string {
	sum := sha256.Sum256(s.key.N.Bytes())
	return fmt.Sprintf("%x", sum[:10])
}

// requestOrigin is scheme://host of r.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Issuer returns the OpenID issuer: the URL given to SetBaseURL, or ""
// when none was set (then each request's own origin is used).
func (s *Server) Issuer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// issuer is the issuer for a request that came to origin; s.mu must be held.
func (s *Server) issuer(origin string) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	return origin
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// handleOIDCDiscovery serves GET /.well-known/openid-configuration. Slack's
// own document does not list code_challenge_methods_supported; the fake
// lists S256 (and accepts PKCE when a client sends it).
func (s *Server) handleOIDCDiscovery(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b := s.issuer(requestOrigin(r))
	s.mu.Unlock()
	writeJSON(w, map[string]any{
		"issuer":                                b,
		"authorization_endpoint":                b + "/openid/connect/authorize",
		"token_endpoint":                        b + "/api/openid.connect.token",
		"userinfo_endpoint":                     b + "/api/openid.connect.userInfo",
		"jwks_uri":                              b + "/openid/connect/keys",
		"scopes_supported":                      []string{ScopeOpenID, ScopeProfile, ScopeEmail},
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported":                      []string{"sub", "auth_time", "iss"},
		"claims_parameter_supported":            false,
		"request_parameter_supported":           false,
		"request_uri_parameter_supported":       true,
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

// handleJWKS serves GET /openid/connect/keys.
func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, map[string]any{
		"keys": []map[string]string{{
			"kty": "RSA",
			"alg": "RS256",
			"use": "sig",
			"kid": s.keyID(),
			"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}},
	})
}

// handleOIDCAuthorize serves GET /openid/connect/authorize: the consent page
// of Sign in with Slack (or a redirect at once with AutoApprove).
func (s *Server) handleOIDCAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := s.now()
	ar := &authRequest{
		oidc:            true,
		clientID:        q.Get("client_id"),
		scopes:          splitScopes(q.Get("scope")),
		redirectURI:     q.Get("redirect_uri"),
		state:           q.Get("state"),
		nonce:           q.Get("nonce"),
		challenge:       q.Get("code_challenge"),
		challengeMethod: q.Get("code_challenge_method"),
		expires:         now.Add(CodeLifetime),
	}

	s.mu.Lock()
	msg := ""
	switch {
	case ar.clientID == "" || ar.clientID != s.clientID:
		msg = "invalid_client_id: this app's client_id is unknown to Sandbox Slack."
	case q.Get("response_type") != "code":
		msg = "unsupported_response_type: Sign in with Slack supports response_type=code only."
	case !slices.Contains(ar.scopes, ScopeOpenID):
		msg = "invalid_scope: Sign in with Slack needs the openid scope."
	case slices.ContainsFunc(ar.scopes, func(sc string) bool {
		return sc != ScopeOpenID && sc != ScopeProfile && sc != ScopeEmail
	}):
		msg = "invalid_scope: Sign in with Slack knows openid, profile and email only."
	default:
		msg = s.checkRedirect(ar)
	}
	if msg == "" && ar.challenge != "" && ar.challengeMethod != "" && ar.challengeMethod != "S256" && ar.challengeMethod != "plain" {
		msg = "invalid_code_challenge_method: use S256."
	}
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
		RequestID:    id,
		ClientID:     ar.clientID,
		SignInScopes: ar.scopes,
		Action:       "/openid/connect/authorize",
		Redirect:     ar.redirectURI,
		Teams:        s.peopleView(now),
	}
	s.mu.Unlock()
	s.render(w, http.StatusOK, "consent", page{Title: "Sign in with Slack", Body: data})
}

// openIDConnectToken answers POST /api/openid.connect.token; s.mu must be
// held. Success is {"ok":true,"access_token":"xoxp-…","token_type":"Bearer",
// "id_token":"<JWT>"}; errors are HTTP 200 {"ok":false,"error":…}.
func (s *Server) openIDConnectToken(req *apiRequest) result {
	clientID := req.params.Get("client_id")
	secret := req.params.Get("client_secret")
	if req.basic.ok && clientID == "" && secret == "" {
		clientID, secret = req.basic.user, req.basic.pass
	}
	if res, failed := s.takeFailure(req.method); failed {
		return res
	}
	if ok, retry := s.admit(req.now, limit{key: req.method + "/" + clientID, max: s.methodLimit(req.method)}); !ok {
		return rateLimited(retry)
	}
	if clientID == "" || clientID != s.clientID {
		return errResult("invalid_client_id")
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) != 1 {
		return errResult("bad_client_secret")
	}
	switch req.params.Get("grant_type") {
	case "", "authorization_code":
	default:
		return errResult("invalid_grant_type")
	}
	ac := s.codes[req.params.Get("code")]
	if ac == nil || ac.used || !req.now.Before(ac.expires) || ac.req.clientID != s.clientID || !ac.req.oidc {
		return errResult("invalid_code")
	}
	if got := req.params.Get("redirect_uri"); (ac.req.redirectGiven || got != "") && got != ac.req.redirectURI {
		return errResult("bad_redirect_uri")
	}
	if ac.req.challenge != "" && !verifierMatches(ac.req, req.params.Get("code_verifier")) {
		return errResult("invalid_code_verifier")
	}
	ac.used = true
	tm, p := s.teams[ac.teamID], s.users[ac.userID]
	if tm == nil || p == nil {
		return errResult("invalid_code")
	}
	req.team, req.user = tm.id, p.id
	access, _ := s.issue(userToken, tm.id, p.id, ac.req.scopes, false)

	claims := s.identityClaims(tm, p, ac.req.scopes)
	claims["iss"] = s.issuer(req.origin)
	claims["aud"] = s.clientID
	claims["iat"] = req.now.Unix()
	claims["exp"] = req.now.Add(IDTokenLifetime).Unix()
	claims["auth_time"] = req.now.Unix()
	claims["at_hash"] = atHash(access)
	if ac.req.nonce != "" {
		claims["nonce"] = ac.req.nonce
	}
	return okResult(map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"id_token":     s.signJWT(claims),
	})
}

// openIDConnectUserInfo answers openid.connect.userInfo (a token from
// openid.connect.token).
func (s *Server) openIDConnectUserInfo(_ *apiRequest, t *token) result {
	tm, p := s.teams[t.teamID], s.users[t.userID]
	if tm == nil || p == nil {
		return errResult("user_not_found")
	}
	return okResult(s.identityClaims(tm, p, t.scopes))
}

// identityClaims are the claims about p that scopes allow; s.mu must be held.
func (s *Server) identityClaims(tm *team, p *person, scopes []string) map[string]any {
	c := map[string]any{
		"sub":       p.id,
		ClaimUserID: p.id,
		ClaimTeamID: tm.id,
	}
	if slices.Contains(scopes, ScopeEmail) {
		c["email"] = emailOf(p.name, tm.id)
		c["email_verified"] = true
	}
	if slices.Contains(scopes, ScopeProfile) {
		c["name"] = p.name
		given, family, _ := strings.Cut(p.name, " ")
		c["given_name"] = given
		c["family_name"] = family
		c["locale"] = "en-US"
		c[ClaimTeamName] = tm.name
	}
	return c
}

// emailOf is the address the fake gives a person (with the email scope).
func emailOf(name, teamID string) string {
	local := strings.ToLower(strings.Join(strings.Fields(name), "."))
	if local == "" {
		local = "person"
	}
	return local + "@" + strings.ToLower(teamID) + ".slack.example"
}

// atHash is the ID token's at_hash for an access token (RS256: SHA-256).
func atHash(access string) string {
	sum := sha256.Sum256([]byte(access))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// signJWT returns claims as a compact RS256 JWS.
func (s *Server) signJWT(claims any) string {
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": s.keyID(), "typ": "JWT"})
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
