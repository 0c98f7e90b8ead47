package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	slackint "github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// GoogleClient is what the web needs of Google.
type GoogleClient interface {
	SignInURL(ctx context.Context, state, nonce, verifier string) (string, error)
	FinishSignIn(ctx context.Context, code, verifier, nonce string) (string, error)
	ConnectURL(ctx context.Context, state, nonce, verifier string) (string, error)
	FinishConnect(ctx context.Context, code, verifier, nonce string, now time.Time) (google.Connect, error)
	Revoke(ctx context.Context, cred provider.Credential) error
	// StopWatch stops a calendar's push channel (disconnect, account deletion).
	StopWatch(ctx context.Context, cred provider.Credential, channelID, resourceID string) error
}

// SlackClient is what the web needs of Slack.
type SlackClient interface {
	AuthCodeURL(state string) string
	Exchange(ctx context.Context, code string, now time.Time) (slackint.Install, error)
	Revoke(ctx context.Context, cred provider.Credential) error
}

// MicrosoftClient is what the web needs of Microsoft; kind is "signin", "outlook" or "teams".
// (The web does not import the Microsoft package: it pulls in the Graph SDK.)
type MicrosoftClient interface {
	AuthURL(ctx context.Context, kind, state, nonce, verifier string) (string, error)
	Finish(ctx context.Context, kind, code, verifier, nonce string, now time.Time) (Grant, error)
	// Revoke undoes what a connection set up at Microsoft (its change subscriptions);
	// Microsoft has no per-app token revocation for delegated tokens.
	Revoke(ctx context.Context, cred provider.Credential, states []store.SyncState) error
}

// Grant is what a finished flow gives: for sign-in the identity's subject, for a connection
// the account and its sealed-to-be credential.
type Grant struct {
	Subject    string
	ExternalID string
	TeamID     string
	Scopes     []string
	Credential provider.Credential
	Resources  []string
}

// oauthFlow is one sign-in or connect flow of one provider.
type oauthFlow struct {
	title  string // for people: "Google Calendar"
	start  func(ctx context.Context, state, nonce, verifier string) (string, error)
	finish func(ctx context.Context, code, verifier, nonce string, now time.Time) (Grant, error)
}

// revoker undoes a connection at its provider.
type revoker func(ctx context.Context, cred provider.Credential, states []store.SyncState) error

// buildFlows registers the flows of the configured providers.
func (s *Server) buildFlows(ms MicrosoftClient) {
	s.signIn, s.connect, s.revokers = map[string]oauthFlow{}, map[string]oauthFlow{}, map[string]revoker{}
	if g := s.google; g != nil {
		s.signIn["google"] = oauthFlow{"Google", g.SignInURL, func(ctx context.Context, code, verifier, nonce string, _ time.Time) (Grant, error) {
			sub, err := g.FinishSignIn(ctx, code, verifier, nonce)
			return Grant{Subject: sub}, err
		}}
		s.connect["google"] = oauthFlow{"Google Calendar", g.ConnectURL, func(ctx context.Context, code, verifier, nonce string, now time.Time) (Grant, error) {
			res, err := g.FinishConnect(ctx, code, verifier, nonce, now)
			return Grant{ExternalID: res.Subject, Scopes: res.Scopes, Credential: res.Credential, Resources: []string{"primary"}}, err
		}}
		s.revokers["google"] = func(ctx context.Context, cred provider.Credential, states []store.SyncState) error {
			// The push channels first: stopping one needs the grant the revocation ends.
			var errs []error
			for _, ss := range states {
				if ss.ChannelID != "" {
					errs = append(errs, g.StopWatch(ctx, cred, ss.ChannelID, ss.ChannelResource))
				}
			}
			return errors.Join(append(errs, g.Revoke(ctx, cred))...)
		}
	}
	if sl := s.slack; sl != nil {
		s.connect["slack"] = oauthFlow{"Slack", func(_ context.Context, state, _, _ string) (string, error) { return sl.AuthCodeURL(state), nil },
			func(ctx context.Context, code, _, _ string, now time.Time) (Grant, error) {
				res, err := sl.Exchange(ctx, code, now)
				return Grant{ExternalID: res.UserID, TeamID: res.TeamID, Scopes: res.Scopes, Credential: res.Credential}, err
			}}
		s.revokers["slack"] = func(ctx context.Context, cred provider.Credential, _ []store.SyncState) error {
			return sl.Revoke(ctx, cred)
		}
		// Sign in with Slack (OpenID Connect), when the client offers it.
		if ss, ok := sl.(interface {
			SignInConfigured() bool
			SignInURL(ctx context.Context, state, nonce, verifier string) (string, error)
			FinishSignIn(ctx context.Context, code, verifier, nonce string) (string, error)
		}); ok && ss.SignInConfigured() {
			s.signIn["slack"] = oauthFlow{"Slack", ss.SignInURL, func(ctx context.Context, code, verifier, nonce string, _ time.Time) (Grant, error) {
				sub, err := ss.FinishSignIn(ctx, code, verifier, nonce)
				return Grant{Subject: sub}, err
			}}
		}
	}
	if ms != nil {
		for name, kind := range map[string]string{"microsoft": "signin", "outlook": "outlook", "teams": "teams"} {
			f := oauthFlow{title(name),
				func(ctx context.Context, state, nonce, verifier string) (string, error) {
					return ms.AuthURL(ctx, kind, state, nonce, verifier)
				},
				func(ctx context.Context, code, verifier, nonce string, now time.Time) (Grant, error) {
					return ms.Finish(ctx, kind, code, verifier, nonce, now)
				}}
			if kind == "signin" {
				s.signIn[name] = f
			} else {
				s.connect[name] = f
				s.revokers[name] = ms.Revoke
			}
		}
	}
}

// signInProviders and connectProviders are the route contract's provider names.
var (
	signInProviders  = []string{"google", "microsoft", "slack"}
	connectProviders = []string{"google", "outlook", "zoom", "slack", "teams"}
)

// handleSignIn starts "sign in with {provider}".
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("provider")
	if !slices.Contains(signInProviders, p) {
		s.errorPage(w, r, http.StatusNotFound, "Unknown sign-in provider", fmt.Sprintf("There is no sign-in with %q. You can sign in with Google, Microsoft or Slack.", p))
		return
	}
	fl, ok := s.signIn[p]
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, "Sign-in not available", "Sign-in with "+title(p)+" is not available on this server.")
		return
	}
	sess, err := s.ensureSession(w, r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	f := flow{Kind: "signin", Provider: p, Nonce: randomToken(24), Verifier: oauth2.GenerateVerifier()}
	state, err := s.startFlow(r.Context(), &sess, f)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	u, err := fl.start(r.Context(), state, f.Nonce, f.Verifier)
	if err != nil {
		s.providerError(w, r, title(p), err)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// callbackFlow checks a callback's state and code and returns its flow. It answers the error
// page itself and returns ok=false when something is wrong.
func (s *Server) callbackFlow(w http.ResponseWriter, r *http.Request, kind, p string) (store.Session, flow, string, bool) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		msg := "The provider did not complete the request (" + shortCode(e) + ")."
		if e == "access_denied" {
			msg = "You cancelled at " + title(p) + ". Nothing was changed."
		}
		s.errorPage(w, r, http.StatusBadRequest, "Not completed", msg+" You can start again from the home page.")
		return store.Session{}, flow{}, "", false
	}
	sess := s.session(r)
	f, ok := s.takeFlow(r.Context(), &sess, q.Get("state"))
	if !ok || f.Kind != kind || f.Provider != p {
		s.errorPage(w, r, http.StatusBadRequest, "This link has expired or was not started here",
			"The sign-in or connection could not be matched to one you started in this browser (wrong or expired state). Nothing was stored. Please start again from the home page.")
		return store.Session{}, flow{}, "", false
	}
	code := q.Get("code")
	if code == "" {
		s.errorPage(w, r, http.StatusBadRequest, "Missing authorization code",
			"The provider came back without an authorization code. Nothing was stored. Please start again from the home page.")
		return store.Session{}, flow{}, "", false
	}
	return sess, f, code, true
}

// handleSignInCallback finishes a sign-in: finds or creates the user of this identity.
func (s *Server) handleSignInCallback(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("provider")
	fl, known := s.signIn[p]
	if !slices.Contains(signInProviders, p) || !known {
		s.errorPage(w, r, http.StatusNotFound, "Unknown sign-in provider", fmt.Sprintf("There is no sign-in with %q here.", p))
		return
	}
	sess, f, code, ok := s.callbackFlow(w, r, "signin", p)
	if !ok {
		return
	}
	g, err := fl.finish(r.Context(), code, f.Verifier, f.Nonce, s.clock.Now())
	if err != nil || g.Subject == "" {
		s.logger(r.Context()).Warn("sign-in failed", "provider", p, "err", err)
		s.errorPage(w, r, http.StatusBadRequest, "Sign-in failed", title(p)+" did not confirm the sign-in. Nothing was stored. Please start again from the home page.")
		return
	}
	userID, err := s.userForIdentity(r.Context(), p, g.Subject, sess.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	// Where to go next: back to a linking request that needed a sign-in, or the dashboard.
	next := "/"
	if rt := sess.Data["return_to"]; strings.HasPrefix(rt, "/oauth/authorize?") {
		next = rt
	}
	// A new session ID at sign-in (no fixation); the old session goes.
	s.st.DeleteSession(r.Context(), sess.ID)
	value := randomToken(32)
	now := s.clock.Now()
	ns := store.Session{ID: sessionKey(value), UserID: userID, Created: now, Expires: now.Add(sessionLifetime), Data: map[string]string{}}
	if err := s.st.PutSession(r.Context(), ns); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.setCookie(w, value, sessionLifetime)
	s.logger(r.Context()).Info("signed in", "provider", p, "user", userID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// userForIdentity returns the user of (provider, subject): the existing one, the signed-in one
// (linking a second identity), or a new user with default rules.
func (s *Server) userForIdentity(ctx context.Context, p, subject, signedIn string) (string, error) {
	id, err := s.st.GetIdentity(ctx, p, subject)
	if err == nil {
		return id.UserID, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	now := s.clock.Now()
	userID := signedIn
	if userID == "" {
		userID = "u_" + randomToken(12)
		if err := s.st.CreateUser(ctx, store.User{ID: userID, Created: now, Rules: presence.DefaultRules()}); err != nil {
			return "", err
		}
	}
	if err := s.st.PutIdentity(ctx, store.Identity{Provider: p, Subject: subject, UserID: userID, Created: now}); err != nil {
		return "", err
	}
	return userID, nil
}

// handleSignOut ends the session.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if sess := s.session(r); sess.ID != "" {
		s.st.DeleteSession(r.Context(), sess.ID)
	}
	s.setCookie(w, "", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleConnect starts connecting a source or target.
func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("provider")
	if !slices.Contains(connectProviders, p) {
		s.errorPage(w, r, http.StatusNotFound, "Unknown provider", fmt.Sprintf("There is nothing called %q to connect. You can connect Google Calendar, Outlook, Zoom, Slack or Teams.", p))
		return
	}
	sess := s.session(r)
	if sess.UserID == "" {
		s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", "Sign in, then connect your accounts from the dashboard.")
		return
	}
	fl, ok := s.connect[p]
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, "Not available", title(p)+" is not available on this server.")
		return
	}
	f := flow{Kind: "connect", Provider: p, Nonce: randomToken(24), Verifier: oauth2.GenerateVerifier()}
	state, err := s.startFlow(r.Context(), &sess, f)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	target, err := fl.start(r.Context(), state, f.Nonce, f.Verifier)
	if err != nil {
		s.providerError(w, r, title(p), err)
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// handleConnectCallback finishes a connection: stores the sealed credential and wakes the
// scheduler for this person.
func (s *Server) handleConnectCallback(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("provider")
	fl, known := s.connect[p]
	if !slices.Contains(connectProviders, p) || !known {
		s.errorPage(w, r, http.StatusNotFound, "Unknown provider", fmt.Sprintf("There is nothing called %q to connect here.", p))
		return
	}
	sess, f, code, ok := s.callbackFlow(w, r, "connect", p)
	if !ok {
		return
	}
	if sess.UserID == "" {
		s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", "Your session ended. Sign in, then connect again.")
		return
	}
	now := s.clock.Now()
	conn := store.Connection{UserID: sess.UserID, Provider: p, Health: store.HealthOK, Created: now, Updated: now}
	g, err := fl.finish(r.Context(), code, f.Verifier, f.Nonce, now)
	if err != nil {
		s.logger(r.Context()).Warn("connect failed", "provider", p, "err", err)
		s.errorPage(w, r, http.StatusBadRequest, "Connecting "+fl.title+" failed", title(p)+" did not confirm the connection. Nothing was stored. Please try again from the dashboard.")
		return
	}
	conn.ExternalID, conn.TeamID, conn.Scopes, conn.Resources = g.ExternalID, g.TeamID, g.Scopes, g.Resources
	cred := g.Credential
	// Reconnecting the same account replaces the old connection's credential.
	conn.ID = "c_" + randomToken(12)
	if existing, err := s.st.ListConnections(r.Context(), sess.UserID); err == nil {
		for _, c := range existing {
			if c.Provider == p && c.ExternalID == conn.ExternalID {
				conn.ID, conn.Created, conn.Resources = c.ID, c.Created, c.Resources
			}
		}
	}
	pt, err := cred.Marshal()
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	conn.Credential, err = s.vault.Seal(pt, conn.UserID, conn.ID)
	clear(pt)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.st.PutConnection(r.Context(), conn); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.st.AppendActivity(r.Context(), sess.UserID, store.Activity{At: now, Kind: "connection", Target: p, Outcome: "connected"})
	s.wake(r.Context(), sess.UserID)
	s.logger(r.Context()).Info("connected", "provider", p, "user", sess.UserID, "connection", conn.ID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleDisconnect revokes at the provider where it can, then deletes the connection and what
// it brought (cached events, sync state).
func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess.UserID == "" {
		s.errorPage(w, r, http.StatusUnauthorized, "Please sign in first", "Sign in to manage your connections.")
		return
	}
	id := r.PathValue("id")
	c, err := s.st.GetConnection(r.Context(), sess.UserID, id)
	if errors.Is(err, store.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, "No such connection", "That connection does not exist (maybe it was already removed).")
		return
	} else if err != nil {
		s.serverError(w, r, err)
		return
	}
	if pt, err := s.vault.Open(c.Credential, c.UserID, c.ID); err == nil {
		cred, err := provider.UnmarshalCredential(pt)
		clear(pt)
		if err == nil {
			var rerr error
			if rv := s.revokers[c.Provider]; rv != nil {
				states, _ := s.st.ListSyncStates(r.Context(), c.ID)
				rerr = rv(r.Context(), cred, states)
			}
			if rerr != nil {
				s.logger(r.Context()).Warn("revoke at provider failed; deleting our copy anyway", "provider", c.Provider, "err", rerr)
			}
		}
	}
	// The cached events of every resource: the selected ones (the scheduler stores events
	// before their sync state, so a resource may have events and no sync state yet) and any
	// that still has a sync state.
	resources := slices.Clone(c.Resources)
	if c.Provider == "zoom" {
		// The live calls from webhooks are a source of their own: a call in progress must not
		// keep the status set after Zoom is disconnected.
		resources = append(resources, zoomLive)
	}
	states, _ := s.st.ListSyncStates(r.Context(), c.ID)
	for _, ss := range states {
		if !slices.Contains(resources, ss.Resource) {
			resources = append(resources, ss.Resource)
		}
	}
	for _, res := range resources {
		if err := s.st.ReplaceEvents(r.Context(), c.UserID, c.ID+"/"+res, nil); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.st.DeleteSyncState(r.Context(), c.ID, res)
	}
	if err := s.st.DeleteConnection(r.Context(), c.UserID, c.ID); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.st.AppendActivity(r.Context(), sess.UserID, store.Activity{At: s.clock.Now(), Kind: "connection", Target: c.Provider, Outcome: "disconnected"})
	s.wake(r.Context(), sess.UserID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func title(p string) string {
	switch p {
	case "google":
		return "Google"
	case "microsoft":
		return "Microsoft"
	case "slack":
		return "Slack"
	case "outlook":
		return "Outlook"
	case "teams":
		return "Teams"
	case "zoom":
		return "Zoom"
	}
	return p
}

// shortCode keeps a provider's error code printable and short.
func shortCode(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}
