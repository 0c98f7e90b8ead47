package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

const (
	sessionCookie   = "di_session"
	sessionLifetime = 30 * 24 * time.Hour
	flowLifetime    = 15 * time.Minute
	maxFlows        = 5
)

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionKey is what the store keeps for a cookie value: its hash, never the value.
func sessionKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// session loads the request's session, or returns a zero one (ID empty) when there is none.
func (s *Server) session(r *http.Request) store.Session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return store.Session{}
	}
	sess, err := s.st.GetSession(r.Context(), sessionKey(c.Value))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.logger(r.Context()).Error("read session", "err", err)
		}
		return store.Session{}
	}
	return sess
}

// ensureSession returns the request's session, creating one (and its cookie) if needed.
func (s *Server) ensureSession(w http.ResponseWriter, r *http.Request) (store.Session, error) {
	if sess := s.session(r); sess.ID != "" {
		return sess, nil
	}
	value := randomToken(32)
	now := s.clock.Now()
	sess := store.Session{ID: sessionKey(value), Created: now, Expires: now.Add(sessionLifetime), Data: map[string]string{}}
	if err := s.st.PutSession(r.Context(), sess); err != nil {
		return store.Session{}, err
	}
	s.setCookie(w, value, sessionLifetime)
	return sess, nil
}

// setCookie sets the session cookie for maxAge; a negative maxAge deletes it (Max-Age=0).
func (s *Server) setCookie(w http.ResponseWriter, value string, maxAge time.Duration) {
	age := int(maxAge / time.Second)
	if maxAge < 0 {
		// http.Cookie's MaxAge < 0 is "Max-Age=0"; MaxAge 0 would be no Max-Age at all, a
		// session cookie that stays in the browser.
		age = -1
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   age,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// flow is an OAuth or OIDC flow in progress, kept in the session under its state.
type flow struct {
	Kind     string    `json:"kind"` // "signin" or "connect"
	Provider string    `json:"provider"`
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"`
	Started  time.Time `json:"started"`
}

// startFlow records a new flow in the session and returns its state.
func (s *Server) startFlow(ctx context.Context, sess *store.Session, f flow) (string, error) {
	if sess.Data == nil {
		sess.Data = map[string]string{}
	}
	now := s.clock.Now()
	// Drop stale flows, and keep at most maxFlows: the newest ones (map order is random, so
	// sort by start, oldest first, before dropping).
	type started struct {
		key string
		at  time.Time
	}
	var flows []started
	for k, v := range sess.Data {
		if !strings.HasPrefix(k, "flow:") {
			continue
		}
		var old flow
		if json.Unmarshal([]byte(v), &old) != nil || now.Sub(old.Started) > flowLifetime {
			delete(sess.Data, k)
			continue
		}
		flows = append(flows, started{k, old.Started})
	}
	slices.SortFunc(flows, func(a, b started) int { return a.at.Compare(b.at) })
	for len(flows) >= maxFlows {
		delete(sess.Data, flows[0].key)
		flows = flows[1:]
	}
	state := randomToken(24)
	f.Started = now
	b, _ := json.Marshal(f)
	sess.Data["flow:"+state] = string(b)
	return state, s.st.PutSession(ctx, *sess)
}

// takeFlow removes and returns the flow of state from the session (single use).
func (s *Server) takeFlow(ctx context.Context, sess *store.Session, state string) (flow, bool) {
	if sess.ID == "" || state == "" || sess.Data == nil {
		return flow{}, false
	}
	v, ok := sess.Data["flow:"+state]
	if !ok {
		return flow{}, false
	}
	delete(sess.Data, "flow:"+state)
	if err := s.st.PutSession(ctx, *sess); err != nil {
		s.logger(ctx).Error("store session", "err", err)
	}
	var f flow
	if json.Unmarshal([]byte(v), &f) != nil || s.clock.Now().Sub(f.Started) > flowLifetime {
		return flow{}, false
	}
	return f, true
}
