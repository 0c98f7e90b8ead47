// Package store declares what dontinterrupt keeps, and the interface both implementations
// satisfy: store/bolt (embedded, one process, the default) and store/redis (any number of
// replicas). store/storetest is the contract suite both pass.
//
// What may be stored is fixed by design.md section 5: IDs, encrypted credential blobs, opaque
// sync tokens, cached calendar blocks without content, the state we last wrote, settings,
// overrides, a capped activity log without content, and sessions. Never a token in clear, an
// e-mail address, a name, an event title or a message text.
//
// Every record is stored as JSON with a version field "v" (RecordVersion). A later version may
// add fields; a reader ignores fields it does not know and fills missing ones with zero values,
// so no migration tool is needed for additions.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
)

// RecordVersion is the version written into every record.
const RecordVersion = 1

// ActivityCap is how many activity entries are kept per person; older ones are dropped.
const ActivityCap = 100

// Errors every implementation returns (wrapped) so callers can test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap found another value than expected.
	ErrConflict = errors.New("conflict")
)

// User is a person using the service.
type User struct {
	ID      string         `json:"id"`
	Created time.Time      `json:"created"`
	Rules   presence.Rules `json:"rules"`
}

// Identity is a sign-in identity: (provider, subject) only.
type Identity struct {
	Provider string    `json:"provider"` // "google", "microsoft", "slack"
	Subject  string    `json:"subject"`  // the OIDC "sub" (for Microsoft: tid/oid)
	UserID   string    `json:"user_id"`
	Created  time.Time `json:"created"`
}

// Health of a connection.
type Health string

const (
	HealthOK     Health = "ok"
	HealthBroken Health = "broken" // token revoked or expired: the person must reconnect
)

// Connection is an OAuth connection of a source or a target.
type Connection struct {
	ID         string   `json:"id"`
	UserID     string   `json:"user_id"`
	Provider   string   `json:"provider"`              // "google", "outlook", "zoom", "slack", "teams"
	ExternalID string   `json:"external_id,omitempty"` // the account's ID at the provider
	TeamID     string   `json:"team_id,omitempty"`     // Slack team, Microsoft tenant
	Scopes     []string `json:"scopes,omitempty"`
	// Credential is the token blob, encrypted by internal/vault with associated data bound to
	// (UserID, ID). The store never sees it in clear.
	Credential []byte `json:"credential,omitempty"`
	Health     Health `json:"health"`
	// HealthReason is a short code ("token_revoked", "invalid_grant"), never provider text.
	HealthReason string `json:"health_reason,omitempty"`
	// Resources are the provider resources the person selected (calendar IDs).
	Resources []string `json:"resources,omitempty"`
	// SyncRequested is when a sync was last asked for (a push notification, the sandbox, a
	// changed setting): the scheduler syncs every resource whose last sync started before it.
	SyncRequested time.Time `json:"sync_requested,omitzero"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
}

// SyncState is an opaque sync position for one resource of a connection (a calendar's
// syncToken, a Graph deltaLink) and its push channel, if any.
type SyncState struct {
	ConnectionID string `json:"connection_id"`
	Resource     string `json:"resource"`
	// UserID is the person the connection belongs to, so a push notification naming only its
	// channel (Google) finds them through FindChannel. Empty in records written before it
	// existed; the scheduler fills it at the next sync.
	UserID    string `json:"user_id,omitempty"`
	Token     string `json:"token,omitempty"`
	ChannelID string `json:"channel_id,omitempty"`
	// ChannelResource is the provider's ID of the watched resource, which stopping a channel
	// needs besides its ID (Google's resourceId); empty for Graph subscriptions.
	ChannelResource string `json:"channel_resource,omitempty"`
	// ChannelToken is the digest (ChannelTokenDigest) of the secret a push notification must
	// carry (Graph clientState, Google channel token), never the secret itself; checked with
	// ChannelTokenMatches.
	ChannelToken  string    `json:"channel_token,omitempty"`
	ChannelExpiry time.Time `json:"channel_expiry,omitzero"`
	// ChannelSince is when the channel was created or last renewed: with ChannelExpiry it
	// gives the channel's lifetime, which sets how early it is renewed.
	ChannelSince time.Time `json:"channel_since,omitzero"`
	Synced       time.Time `json:"synced,omitzero"`
}

// TargetState is what we last wrote to one target of a person ("slack:status", "slack:dnd",
// "slack:presence", "teams:presence", "teams:message"), and the person's own status we replaced.
type TargetState struct {
	UserID string `json:"user_id"`
	Target string `json:"target"`
	// Written is what we last wrote, as the scheduler encodes it (JSON).
	Written   []byte    `json:"written,omitempty"`
	WrittenAt time.Time `json:"written_at,omitzero"`
	// Replaced is the person's own status we replaced, encrypted by the vault (it is their
	// text); nil when we replaced nothing.
	Replaced []byte `json:"replaced,omitempty"`
}

// Activity is one decision in the person's activity log: no content, only what and why.
type Activity struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`    // the block kind or action: "meeting", "focus", "back", "resync"
	Target  string    `json:"target"`  // "slack:status", "teams:presence", "google", …
	Outcome string    `json:"outcome"` // "set", "cleared", "restored", "skipped", "error"
	Reason  string    `json:"reason,omitempty"`
}

// Session is a web session, stored server-side. ID is the hash of the cookie value, never the
// cookie value itself.
type Session struct {
	ID      string            `json:"id"`
	UserID  string            `json:"user_id,omitempty"`
	Data    map[string]string `json:"data,omitempty"` // OAuth state, nonce, PKCE verifier, CSRF token
	Created time.Time         `json:"created"`
	Expires time.Time         `json:"expires"`
}

// Claim is a due person claimed by a worker until LeaseUntil; until then no other claim returns
// them. A worker finishes with Complete; a crashed worker's claim is returned again after the
// lease.
type Claim struct {
	UserID     string
	LeaseUntil time.Time
}

// Store is everything the service keeps. All methods are safe for concurrent use. Lookups of a
// missing record return an error wrapping ErrNotFound; deleting a missing record is not an
// error. Lists of records without a stated order come in an order the caller must not rely on.
type Store interface {
	// Ping reports whether the store is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error

	// Users.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	// PutUser replaces an existing user; a missing one is ErrNotFound (CreateUser creates),
	// so a worker racing DeleteUser cannot bring the user back.
	PutUser(ctx context.Context, u User) error
	// DeleteUser removes the user and everything stored about them: identities, connections,
	// sync state, events, target state, overrides, activity, sessions and the due entry.
	DeleteUser(ctx context.Context, id string) error

	// Identities.
	PutIdentity(ctx context.Context, id Identity) error
	// GetIdentity finds the identity (provider, subject).
	GetIdentity(ctx context.Context, provider, subject string) (Identity, error)
	ListIdentities(ctx context.Context, userID string) ([]Identity, error)
	DeleteIdentity(ctx context.Context, provider, subject string) error

	// Connections.
	PutConnection(ctx context.Context, c Connection) error
	GetConnection(ctx context.Context, userID, id string) (Connection, error)
	ListConnections(ctx context.Context, userID string) ([]Connection, error)
	// FindConnections returns every connection of provider with this external account ID
	// (webhooks name the account, not our user).
	FindConnections(ctx context.Context, provider, externalID string) ([]Connection, error)
	// DeleteConnection removes the connection and its sync state.
	DeleteConnection(ctx context.Context, userID, id string) error
	// SwapCredential replaces the credential blob of a connection only if it is still old;
	// otherwise it returns ErrConflict (someone refreshed the token meanwhile).
	SwapCredential(ctx context.Context, userID, id string, old, updated []byte) error
	// RequestSync sets only the connection's SyncRequested to at (never earlier than it was),
	// leaving the rest of the record (a credential refreshed meanwhile) alone.
	RequestSync(ctx context.Context, userID, id string, at time.Time) error
	// EachConnection calls fn for every connection of every user (key rotation, maintenance).
	// fn may call other Store methods.
	EachConnection(ctx context.Context, fn func(Connection) error) error

	// Sync state. PutSyncState also keeps an index from the state's push channel ID (a Google
	// channel, a Graph subscription) to the state: a replaced channel leaves the index, and
	// DeleteSyncState, DeleteConnection and DeleteUser take theirs out of it.
	PutSyncState(ctx context.Context, s SyncState) error
	GetSyncState(ctx context.Context, connectionID, resource string) (SyncState, error)
	ListSyncStates(ctx context.Context, connectionID string) ([]SyncState, error)
	DeleteSyncState(ctx context.Context, connectionID, resource string) error
	// FindChannel returns the sync state whose push channel is channelID (ErrNotFound when no
	// stored state has it): Google's notifications name their channel, not the person.
	FindChannel(ctx context.Context, channelID string) (SyncState, error)

	// Cached calendar blocks of a person.
	PutEvents(ctx context.Context, userID string, events []presence.Event) error
	DeleteEvents(ctx context.Context, userID string, keys []string) error
	// ReplaceEvents replaces every event whose Source is source (a full resync).
	ReplaceEvents(ctx context.Context, userID, source string, events []presence.Event) error
	// ListEvents returns the events that overlap [from, to), ordered by start.
	ListEvents(ctx context.Context, userID string, from, to time.Time) ([]presence.Event, error)

	// Target state.
	PutTargetState(ctx context.Context, s TargetState) error
	GetTargetState(ctx context.Context, userID, target string) (TargetState, error)
	ListTargetStates(ctx context.Context, userID string) ([]TargetState, error)

	// Overrides.
	PutOverride(ctx context.Context, userID string, o presence.Override) error
	ListOverrides(ctx context.Context, userID string) ([]presence.Override, error)
	DeleteOverride(ctx context.Context, userID, id string) error

	// Activity log, capped at ActivityCap entries per person.
	AppendActivity(ctx context.Context, userID string, a Activity) error
	// ListActivity returns up to limit entries (every kept entry when limit <= 0), newest first.
	ListActivity(ctx context.Context, userID string, limit int) ([]Activity, error)

	// Sessions. GetSession of an expired session returns ErrNotFound.
	PutSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	DeleteSession(ctx context.Context, id string) error

	// OAuth server records (Alexa account linking): by kind ("code", "access", "refresh",
	// "pkce", …) and key, a token's HMAC signature or a request ID, never a token. A record
	// past its expiry reads as ErrNotFound.
	PutOAuthRecord(ctx context.Context, kind, key string, data []byte, expires time.Time) error
	GetOAuthRecord(ctx context.Context, kind, key string) ([]byte, error)
	DeleteOAuthRecord(ctx context.Context, kind, key string) error

	// MarkSeen records key (a webhook delivery ID) for ttl and reports whether this is the
	// first time it was seen within ttl: deliveries repeated by a provider act once.
	MarkSeen(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
	// UnmarkSeen forgets key, so a delivery that could not be acted on is acted on when the
	// provider retries it.
	UnmarkSeen(ctx context.Context, key string) error

	// Due index: one due time per person (design.md section 7), kept to the millisecond.
	//
	// MarkDue makes the person due at at, or earlier if they already are (a push "dirty"
	// mark, a new override). While a claim holds the person the mark does not cut the lease
	// short (no second worker gets them before the lease ends): it is kept, and Complete
	// applies it.
	MarkDue(ctx context.Context, userID string, at time.Time) error
	// ClaimDue claims up to max people due at or before now, moving each due time to
	// now+lease so no other claim returns them before the lease ends.
	ClaimDue(ctx context.Context, now time.Time, max int, lease time.Duration) ([]Claim, error)
	// ExtendLease pushes a claim's lease to until, if the claim is still held; otherwise
	// ErrConflict.
	ExtendLease(ctx context.Context, c Claim, until time.Time) (Claim, error)
	// Complete ends a claim and sets the next due time. If the person was marked due
	// meanwhile, the earlier of the mark and next stays. If the lease ran out and another
	// claim holds the person now, it changes nothing and returns ErrConflict; if the due entry
	// was removed meanwhile (RemoveDue, DeleteUser), it stays removed.
	Complete(ctx context.Context, c Claim, next time.Time) error
	// NextDue returns the earliest due time, or ok=false when nobody is due ever.
	NextDue(ctx context.Context) (at time.Time, ok bool, err error)
	// DueCount returns how many people have a due entry, and how many are due at or before now.
	DueCount(ctx context.Context, now time.Time) (total, due int, err error)
	RemoveDue(ctx context.Context, userID string) error
}

// DueWaker is implemented by stores that several processes share (Redis). A process handing
// claims back at shutdown (Complete with the time they were due) tells the others, which would
// otherwise sleep until the next due time they knew of. A store one process owns (bolt) has
// nobody to tell and does not implement it.
type DueWaker interface {
	// WakeDue tells every process watching that people became due earlier than they knew.
	WakeDue(ctx context.Context) error
	// WatchDue calls fn after each WakeDue of any process (its own included) until ctx ends,
	// then returns. A wake-up sent while the connection is down is lost (the sleeper still
	// wakes at its next due time).
	WatchDue(ctx context.Context, fn func())
}
