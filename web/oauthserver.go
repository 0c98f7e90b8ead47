package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"golang.org/x/crypto/bcrypt"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
)

// OAuthClient is the one client of our OAuth 2.0 server: the Alexa skill's account linking.
type OAuthClient struct {
	ID           string
	Secret       string
	RedirectURIs []string
}

// The scope the Alexa skill asks for: read and change the person's status.
const oauthScope = "status"

// oauthServer is our OAuth 2.0 authorization server (authorization code grant with refresh
// tokens and PKCE), built on ory/fosite and kept in our store. Tokens are HMAC-signed: the
// store keeps only their signatures.
type oauthServer struct {
	provider fosite.OAuth2Provider
	store    *fositeStore
}

// newOAuthServer builds the server. Its HMAC secret is generated once, sealed by the vault and
// kept in the store, so every replica and restart accepts the same tokens.
func newOAuthServer(ctx context.Context, st store.Store, v *vault.Vault, client OAuthClient) (*oauthServer, error) {
	secret, err := oauthSecret(ctx, st, v)
	if err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(client.Secret), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("web: hash the OAuth client secret: %w", err)
	}
	fc := &fosite.DefaultClient{
		ID:            client.ID,
		Secret:        hash,
		RedirectURIs:  client.RedirectURIs,
		ResponseTypes: []string{"code"},
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		Scopes:        []string{oauthScope},
	}
	fs := &fositeStore{st: st, client: fc}
	cfg := &fosite.Config{
		GlobalSecret:          secret,
		AccessTokenLifespan:   time.Hour,
		RefreshTokenLifespan:  180 * 24 * time.Hour,
		AuthorizeCodeLifespan: 5 * time.Minute,
		// Every grant gets a refresh token: nil would mean fosite's default, refresh tokens
		// only for the "offline" scopes, which Alexa does not ask for (it asks for "status"),
		// so the link would die with the first access token.
		RefreshTokenScopes: []string{},
		ScopeStrategy:      fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: func([]string, []string) error {
			return nil
		},
	}
	provider := compose.Compose(cfg, fs, compose.NewOAuth2HMACStrategy(cfg),
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2TokenIntrospectionFactory,
	)
	return &oauthServer{provider: provider, store: fs}, nil
}

func oauthSecret(ctx context.Context, st store.Store, v *vault.Vault) ([]byte, error) {
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if blob, err := st.GetOAuthRecord(ctx, "server", "hmac-secret"); err == nil {
		return v.Open(blob, "oauth-server", "hmac-secret")
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	blob, err := v.Seal(secret, "oauth-server", "hmac-secret")
	if err != nil {
		return nil, err
	}
	if err := st.PutOAuthRecord(ctx, "server", "hmac-secret", blob, far); err != nil {
		return nil, err
	}
	// Another replica may have won the race: read back what is stored.
	if blob, err := st.GetOAuthRecord(ctx, "server", "hmac-secret"); err == nil {
		return v.Open(blob, "oauth-server", "hmac-secret")
	}
	return secret, nil
}

// UserForToken returns the person an access token belongs to. Only an access token will do:
// fosite's introspection falls back to refresh tokens, which are for our token endpoint alone
// (and live for months).
func (o *oauthServer) UserForToken(ctx context.Context, token string) (string, error) {
	sess := &fosite.DefaultSession{}
	use, ar, err := o.provider.IntrospectToken(ctx, token, fosite.AccessToken, sess)
	if err != nil {
		return "", err
	}
	if use != fosite.AccessToken {
		return "", errors.New("web: not an access token")
	}
	sub := ar.GetSession().GetSubject()
	if sub == "" {
		return "", errors.New("web: token without a subject")
	}
	return sub, nil
}

// handleOAuthAuthorize is the authorization endpoint: the person signs in (with Google,
// Microsoft or Slack) if needed, then approves linking; we redirect back to Alexa with a code.
func (s *Server) handleOAuthAuthorize(w http.ResponseWriter, r *http.Request) {
	if s.oauth == nil {
		s.errorPage(w, r, http.StatusNotFound, "Account linking is off", "The operator has not configured the Alexa skill on this server.")
		return
	}
	ctx := r.Context()
	ar, err := s.oauth.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		// Without a valid client and redirect URI we must not redirect: show the reason.
		var rfc *fosite.RFC6749Error
		if errors.As(err, &rfc) && (rfc.ErrorField == fosite.ErrInvalidClient.ErrorField || strings.Contains(rfc.DescriptionField+rfc.HintField, "redirect")) || ar == nil || ar.GetRedirectURI() == nil {
			s.errorPage(w, r, http.StatusBadRequest, "This linking request is not valid", "The request did not come from a known client or named a redirect address that is not allowed. Nothing was linked.")
			return
		}
		s.oauth.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	sess := s.session(r)
	if sess.UserID == "" {
		// Sign in first, then come back here.
		sess, err := s.ensureSession(w, r)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		sess.Data["return_to"] = r.URL.RequestURI()
		if err := s.st.PutSession(ctx, sess); err != nil {
			s.serverError(w, r, err)
			return
		}
		var links []providerLink
		for _, p := range []string{"google", "microsoft", "slack"} {
			if f, ok := s.signIn[p]; ok {
				links = append(links, providerLink{Name: p, Title: f.title, Enabled: true})
			}
		}
		s.render(w, r, http.StatusOK, "link", struct {
			page
			Providers []providerLink
			Consent   bool
		}{page{Title: "Link Alexa", Sandbox: s.sandbox}, links, false})
		return
	}
	if r.Method == http.MethodGet {
		s.render(w, r, http.StatusOK, "link", struct {
			page
			Providers []providerLink
			Consent   bool
		}{page{Title: "Link Alexa", Sandbox: s.sandbox, SignedIn: true}, nil, true})
		return
	}
	// POST: the person pressed Allow (CSRF: cross-origin POSTs are refused by the middleware).
	if r.PostForm.Get("decision") != "allow" {
		s.oauth.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("You did not allow linking."))
		return
	}
	for _, sc := range ar.GetRequestedScopes() {
		if sc == oauthScope {
			ar.GrantScope(sc)
		}
	}
	resp, err := s.oauth.provider.NewAuthorizeResponse(ctx, ar, &fosite.DefaultSession{Subject: sess.UserID})
	if err != nil {
		s.oauth.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	s.st.AppendActivity(ctx, sess.UserID, store.Activity{At: s.clock.Now(), Kind: "connection", Target: "alexa", Outcome: "linked"})
	s.oauth.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// handleOAuthToken is the token endpoint (authorization_code and refresh_token grants; client
// credentials in Basic or the body).
func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) {
	if s.oauth == nil {
		http.Error(w, "account linking is not configured", http.StatusNotFound)
		return
	}
	ctx := r.Context()
	ar, err := s.oauth.provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
	if err != nil {
		s.oauth.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	for _, sc := range ar.GetRequestedScopes() {
		if sc == oauthScope {
			ar.GrantScope(sc)
		}
	}
	resp, err := s.oauth.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.oauth.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	s.oauth.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// fositeStore keeps fosite's requests in our store: by token signature, never the token.
type fositeStore struct {
	st     store.Store
	client *fosite.DefaultClient
}

var (
	_ oauth2.CoreStorage            = (*fositeStore)(nil)
	_ oauth2.TokenRevocationStorage = (*fositeStore)(nil)
)

// storedRequest is what is kept of a fosite request.
type storedRequest struct {
	ID             string                         `json:"id"`
	RequestedAt    time.Time                      `json:"requested_at"`
	ClientID       string                         `json:"client_id"`
	RequestedScope []string                       `json:"requested_scope,omitempty"`
	GrantedScope   []string                       `json:"granted_scope,omitempty"`
	Form           url.Values                     `json:"form,omitempty"`
	Subject        string                         `json:"subject"`
	ExpiresAt      map[fosite.TokenType]time.Time `json:"expires_at,omitempty"`
	Active         bool                           `json:"active"`
}

func (f *fositeStore) put(ctx context.Context, kind, key string, req fosite.Requester, expires time.Time) error {
	sr := storedRequest{
		ID: req.GetID(), RequestedAt: req.GetRequestedAt(), ClientID: req.GetClient().GetID(),
		RequestedScope: req.GetRequestedScopes(), GrantedScope: req.GetGrantedScopes(),
		Active: true,
	}
	// Keep only the form fields fosite needs later (PKCE), never a secret.
	sr.Form = url.Values{}
	for _, k := range []string{"code_challenge", "code_challenge_method", "redirect_uri", "scope"} {
		if v := req.GetRequestForm().Get(k); v != "" {
			sr.Form.Set(k, v)
		}
	}
	if s, ok := req.GetSession().(*fosite.DefaultSession); ok && s != nil {
		sr.Subject, sr.ExpiresAt = s.Subject, s.ExpiresAt
	}
	b, err := json.Marshal(sr)
	if err != nil {
		return err
	}
	if err := f.st.PutOAuthRecord(ctx, kind, key, b, expires); err != nil {
		return err
	}
	// Index by request ID so a grant can be revoked whole.
	if err := f.st.PutOAuthRecord(ctx, kind+"-by-request", req.GetID(), []byte(key), expires); err != nil {
		return err
	}
	if sr.Subject != "" {
		return f.remember(ctx, sr.Subject, userRecord{Kind: kind, Key: key}, userRecord{Kind: kind + "-by-request", Key: req.GetID()})
	}
	return nil
}

// userRecord names one OAuth record of a person, so deleting the account deletes them all.
type userRecord struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
}

// userIndexLife bounds the per-person index: longer than any token lives.
const userIndexLife = 200 * 24 * time.Hour

// remember adds records to the person's index (read-modify-write; a lost update only leaves a
// record to expire on its own).
func (f *fositeStore) remember(ctx context.Context, userID string, recs ...userRecord) error {
	var list []userRecord
	if b, err := f.st.GetOAuthRecord(ctx, "by-user", userID); err == nil {
		json.Unmarshal(b, &list)
	}
	list = append(list, recs...)
	if len(list) > 200 {
		list = list[len(list)-200:]
	}
	b, _ := json.Marshal(list)
	return f.st.PutOAuthRecord(ctx, "by-user", userID, b, time.Now().Add(userIndexLife))
}

// ForgetUser deletes every OAuth record of a person (account deletion): their Alexa link stops
// working and nothing of theirs stays in the store.
func (o *oauthServer) ForgetUser(ctx context.Context, userID string) (int, error) {
	b, err := o.store.st.GetOAuthRecord(ctx, "by-user", userID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var list []userRecord
	json.Unmarshal(b, &list)
	n := 0
	for _, r := range list {
		if err := o.store.st.DeleteOAuthRecord(ctx, r.Kind, r.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, o.store.st.DeleteOAuthRecord(ctx, "by-user", userID)
}

func (f *fositeStore) get(ctx context.Context, kind, key string, session fosite.Session) (*fosite.Request, storedRequest, error) {
	b, err := f.st.GetOAuthRecord(ctx, kind, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, storedRequest{}, fosite.ErrNotFound
	}
	if err != nil {
		return nil, storedRequest{}, err
	}
	var sr storedRequest
	if err := json.Unmarshal(b, &sr); err != nil {
		return nil, sr, err
	}
	ds, ok := session.(*fosite.DefaultSession)
	if !ok || ds == nil {
		ds = &fosite.DefaultSession{}
	}
	ds.Subject, ds.ExpiresAt = sr.Subject, sr.ExpiresAt
	client, err := f.GetClient(ctx, sr.ClientID)
	if err != nil {
		return nil, sr, err
	}
	req := &fosite.Request{
		ID: sr.ID, RequestedAt: sr.RequestedAt, Client: client,
		RequestedScope: sr.RequestedScope, GrantedScope: sr.GrantedScope,
		Form: sr.Form, Session: ds,
	}
	return req, sr, nil
}

func expiry(req fosite.Requester, tt fosite.TokenType, def time.Duration) time.Time {
	if t := req.GetSession().GetExpiresAt(tt); !t.IsZero() {
		return t
	}
	return time.Now().Add(def)
}

// GetClient returns the one client.
func (f *fositeStore) GetClient(_ context.Context, id string) (fosite.Client, error) {
	if f.client == nil || id != f.client.ID {
		return nil, fosite.ErrNotFound
	}
	return f.client, nil
}

// ClientAssertionJWTValid: JWT client assertions are not used.
func (f *fositeStore) ClientAssertionJWTValid(context.Context, string) error { return nil }

// SetClientAssertionJWT: JWT client assertions are not used.
func (f *fositeStore) SetClientAssertionJWT(context.Context, string, time.Time) error { return nil }

func (f *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, signature string, req fosite.Requester) error {
	return f.put(ctx, "code", signature, req, expiry(req, fosite.AuthorizeCode, 10*time.Minute))
}

func (f *fositeStore) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, sr, err := f.get(ctx, "code", signature, session)
	if err != nil {
		return nil, err
	}
	if !sr.Active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession makes a code single-use: it stays, marked inactive, so a
// second use is detected (and fosite revokes what the first use issued).
func (f *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	b, err := f.st.GetOAuthRecord(ctx, "code", signature)
	if err != nil {
		return fosite.ErrNotFound
	}
	var sr storedRequest
	if err := json.Unmarshal(b, &sr); err != nil {
		return err
	}
	sr.Active = false
	nb, _ := json.Marshal(sr)
	if err := f.st.PutOAuthRecord(ctx, "code", signature, nb, time.Now().Add(time.Hour)); err != nil {
		return err
	}
	// The code is spent: its PKCE challenge goes with it (see DeletePKCERequestSession).
	return f.st.DeleteOAuthRecord(ctx, "pkce", signature)
}

func (f *fositeStore) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	return f.put(ctx, "access", signature, req, expiry(req, fosite.AccessToken, time.Hour))
}

func (f *fositeStore) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := f.get(ctx, "access", signature, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

func (f *fositeStore) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return f.st.DeleteOAuthRecord(ctx, "access", signature)
}

func (f *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, _ string, req fosite.Requester) error {
	return f.put(ctx, "refresh", signature, req, expiry(req, fosite.RefreshToken, 180*24*time.Hour))
}

func (f *fositeStore) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := f.get(ctx, "refresh", signature, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

func (f *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return f.st.DeleteOAuthRecord(ctx, "refresh", signature)
}

// RotateRefreshToken: a refresh revokes the grant's previous refresh and access tokens.
func (f *fositeStore) RotateRefreshToken(ctx context.Context, requestID, _ string) error {
	if err := f.RevokeRefreshToken(ctx, requestID); err != nil {
		return err
	}
	return f.RevokeAccessToken(ctx, requestID)
}

func (f *fositeStore) revokeByRequest(ctx context.Context, kind, requestID string) error {
	sig, err := f.st.GetOAuthRecord(ctx, kind+"-by-request", requestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.st.DeleteOAuthRecord(ctx, kind, string(sig)); err != nil {
		return err
	}
	return f.st.DeleteOAuthRecord(ctx, kind+"-by-request", requestID)
}

func (f *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return f.revokeByRequest(ctx, "refresh", requestID)
}

func (f *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return f.revokeByRequest(ctx, "access", requestID)
}

func (f *fositeStore) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return f.put(ctx, "pkce", signature, req, time.Now().Add(10*time.Minute))
}

func (f *fositeStore) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := f.get(ctx, "pkce", signature, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeletePKCERequestSession keeps the challenge. fosite (v0.49) calls it before it compares
// the verifier, so deleting here would let a code bound to a challenge be exchanged without
// any verifier once one wrong verifier had been tried (a PKCE downgrade; ory/fosite#883).
// The challenge lives as long as the code: InvalidateAuthorizeCodeSession removes it when the
// code is spent, and the record expires with the code otherwise.
func (f *fositeStore) DeletePKCERequestSession(context.Context, string) error {
	return nil
}
