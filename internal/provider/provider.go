// Package provider holds what the integrations and the scheduler share about talking to a
// provider: the credential kept (encrypted) for a connection, and the kinds of failure the
// scheduler treats differently (a revoked grant, a rate limit, a passing outage).
package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Credential is what a connection keeps, sealed by the vault: the OAuth tokens. It is never
// logged: String masks it.
type Credential struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// Extra holds provider specifics (Slack: the bot token, kept apart from the user token).
	Extra map[string]string `json:"extra,omitempty"`
}

// String masks the credential.
func (c Credential) String() string { return "provider.Credential{…}" }

// GoString masks the credential.
func (c Credential) GoString() string { return c.String() }

// Marshal encodes the credential for sealing.
func (c Credential) Marshal() ([]byte, error) { return json.Marshal(c) }

// UnmarshalCredential decodes a credential opened by the vault.
func UnmarshalCredential(b []byte) (Credential, error) {
	var c Credential
	if err := json.Unmarshal(b, &c); err != nil {
		return Credential{}, fmt.Errorf("provider: decode credential: %w", err)
	}
	return c, nil
}

// NeedsRefresh reports whether the access token expires within margin of now.
func (c Credential) NeedsRefresh(now time.Time, margin time.Duration) bool {
	return c.RefreshToken != "" && !c.Expiry.IsZero() && !now.Add(margin).Before(c.Expiry)
}

// ErrRevoked means the grant is gone (revoked, expired refresh token, account removed): the
// connection is broken until the person reconnects. Wrap it with the provider's code:
// fmt.Errorf("%w: token_revoked", provider.ErrRevoked).
var ErrRevoked = errors.New("access revoked or expired")

// RevokedError wraps ErrRevoked with the provider's short reason code ("token_revoked",
// "invalid_grant"), safe to store and show.
type RevokedError struct{ Reason string }

func (e *RevokedError) Error() string { return "access revoked or expired: " + e.Reason }

// Unwrap makes errors.Is(err, ErrRevoked) true.
func (e *RevokedError) Unwrap() error { return ErrRevoked }

// RateLimitedError is a 429 (or the provider's equivalent): try again after RetryAfter.
type RateLimitedError struct {
	RetryAfter time.Duration
	Method     string
	// Guessed means the provider named no wait (no Retry-After): RetryAfter is the client's
	// default, and the caller backs off from it, longer each time the limit persists.
	Guessed bool
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limited on %s, retry after %s", e.Method, e.RetryAfter)
}

// RetryAfter returns how long to wait when err is a rate limit.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	return 0, false
}

// RetryGuessed reports whether err is a rate limit whose wait the provider did not name.
func RetryGuessed(err error) bool {
	var rl *RateLimitedError
	return errors.As(err, &rl) && rl.Guessed
}

// TimedOut reports whether err is a request that got no answer in time (the client's timeout
// or a deadline): the provider may be hanging, so further calls to it would wait as long.
func TimedOut(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// RevokedReason returns the reason code when err means the connection is broken.
func RevokedReason(err error) (string, bool) {
	var re *RevokedError
	if errors.As(err, &re) {
		return re.Reason, true
	}
	if errors.Is(err, ErrRevoked) {
		return "revoked", true
	}
	return "", false
}
