// Package bolt is the embedded store.Store: one bbolt file, one process (design.md section 7).
//
// Layout: a bucket per record type, records as JSON with a version field "v". Everything about
// one person lives in a nested bucket under "users" (the user record, connections, events,
// target state, overrides, activity, and the index keys of their identities and sessions), so
// DeleteUser removes that bucket and the few global index entries pointing into it. Global
// buckets hold what is looked up without a user ID: identities by (provider, subject),
// connections by (provider, external ID), sync state by connection, push channels by ID,
// sessions, and the due index. The due index is also mirrored into an in-memory min-heap, rebuilt on Open, so
// ClaimDue and NextDue never scan the file.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Global buckets.
var (
	bucketUsers      = []byte("users")       // user ID → nested bucket (see user sub-buckets)
	bucketIdentities = []byte("identities")  // key(provider, subject) → Identity
	bucketConnExt    = []byte("conn_ext")    // key(provider, external ID, user ID, connection ID) → empty
	bucketSync       = []byte("sync")        // key(connection ID, resource) → SyncState
	bucketChannels   = []byte("channels")    // push channel ID → key(connection ID, resource)
	bucketSessions   = []byte("sessions")    // session ID → Session
	bucketSessionExp = []byte("session_exp") // be64(expires ms) + session ID → empty
	bucketDue        = []byte("due")         // user ID → due entry (see dueEntry.marshal)
	bucketSeen       = []byte("seen")        // delivery key → be64(expires ms)
	bucketOAuth      = []byte("oauth")       // kind + 0 + key → be64(expires ms) + data
)

// Keys inside a user's nested bucket.
var (
	keyUserRecord   = []byte("rec")         // the User record
	subIdentities   = []byte("identities")  // key(provider, subject) → empty
	subConnections  = []byte("connections") // connection ID → Connection
	subEvents       = []byte("events")      // event key → presence.Event
	subTargets      = []byte("targets")     // target → TargetState
	subOverrides    = []byte("overrides")   // override ID → presence.Override
	subActivity     = []byte("activity")    // be64(sequence) → Activity
	subUserSessions = []byte("sessions")    // session ID → empty
)

// DefaultLockTimeout is how long Open waits for the file lock held by another process.
const DefaultLockTimeout = time.Second

// eachConnectionPage is how many connections EachConnection reads per read transaction; fn is
// called outside any transaction so it may write.
const eachConnectionPage = 256

// sessionPurgeBatch is how many expired sessions PutSession removes at most per call.
const sessionPurgeBatch = 64

type options struct {
	lockTimeout time.Duration
	now         func() time.Time
}

// Option configures Open.
type Option func(*options)

// WithLockTimeout sets how long Open waits for the file lock (DefaultLockTimeout otherwise).
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// WithClock sets the clock used for session expiry and connection update times (time.Now
// otherwise).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Store is a store.Store in one bbolt file. It is safe for concurrent use by one process.
type Store struct {
	db  *bbolt.DB
	now func() time.Time

	// mu guards due and orders every write of the due bucket with its mirror. It is always
	// taken before a bbolt write transaction begins, never inside one.
	mu  sync.Mutex
	due dueIndex
}

var _ store.Store = (*Store)(nil)

// ErrLocked means another process (usually a running service) holds the bolt file.
var ErrLocked = errors.New("locked by another process")

// Open opens (or creates) the bolt file at path, creating its directory if missing, and
// rebuilds the in-memory due index from it. A file locked by another process is an error
// after the lock timeout.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{lockTimeout: DefaultLockTimeout, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store/bolt: create directory: %w", err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: o.lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: bolt file %s is %w (is the service running?): %v", path, ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store/bolt: open %s: %w", path, err)
	}
	s := &Store{db: db, now: o.now, due: newDueIndex()}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketUsers, bucketIdentities, bucketConnExt, bucketSync, bucketChannels, bucketSessions, bucketSessionExp, bucketDue, bucketSeen, bucketOAuth} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketDue).ForEach(func(k, v []byte) error {
			e, err := unmarshalDueEntry(string(k), v)
			if err != nil {
				return err
			}
			s.due.set(e)
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store/bolt: open %s: %w", path, err)
	}
	return s, nil
}

// Path returns the file's path.
func (s *Store) Path() string { return s.db.Path() }

// Ping reports whether the file is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store/bolt: ping: %w", err)
	}
	if err := s.db.View(func(*bbolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("store/bolt: ping: %w", err)
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store/bolt: close: %w", err)
	}
	return nil
}

// view and update run fn in a transaction, check ctx first and wrap any error with op.
func (s *Store) view(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	return nil
}

func (s *Store) update(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("store/bolt: %s: %w", op, err)
	}
	return nil
}

// ---- encoding ----

// encode marshals a record as JSON with the version field "v" first.
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("record %T is not a JSON object", v)
	}
	out := make([]byte, 0, len(b)+8)
	out = append(out, `{"v":`...)
	out = strconv.AppendInt(out, store.RecordVersion, 10)
	if b[1] != '}' {
		out = append(out, ',')
	}
	return append(out, b[1:]...), nil
}

// decode unmarshals a record of any version: unknown fields are ignored.
func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

func put(b *bbolt.Bucket, key []byte, v any) error {
	data, err := encode(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// key joins parts with a length prefix each, so no part can run into the next and a prefix
// of parts is a byte prefix of the key.
func key(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	k := make([]byte, 0, n)
	for _, p := range parts {
		k = binary.AppendUvarint(k, uint64(len(p)))
		k = append(k, p...)
	}
	return k
}

// splitKey is the inverse of key.
func splitKey(k []byte) ([]string, error) {
	var parts []string
	for len(k) > 0 {
		n, w := binary.Uvarint(k)
		if w <= 0 || uint64(len(k)-w) < n {
			return nil, errors.New("malformed index key")
		}
		parts = append(parts, string(k[w:w+int(n)]))
		k = k[w+int(n):]
	}
	return parts, nil
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func sessionExpKey(s store.Session) []byte {
	return append(be64(uint64(max(s.Expires.UnixMilli(), 0))), s.ID...)
}

func need(what, v string) error {
	if v == "" {
		return fmt.Errorf("empty %s", what)
	}
	return nil
}

// userBucket returns the nested bucket of user id, creating it when create is set (in a
// write transaction); nil when it does not exist.
func userBucket(tx *bbolt.Tx, id string, create bool) (*bbolt.Bucket, error) {
	users := tx.Bucket(bucketUsers)
	if !create {
		return users.Bucket([]byte(id)), nil
	}
	return users.CreateBucketIfNotExists([]byte(id))
}

// sub returns a sub-bucket of user id: nil (no error) when missing and create is not set.
func sub(tx *bbolt.Tx, id string, name []byte, create bool) (*bbolt.Bucket, error) {
	ub, err := userBucket(tx, id, create)
	if err != nil || ub == nil {
		return nil, err
	}
	if !create {
		return ub.Bucket(name), nil
	}
	return ub.CreateBucketIfNotExists(name)
}

// ---- users ----

// CreateUser stores a new user; ErrConflict if the ID exists.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return s.update(ctx, "create user", func(tx *bbolt.Tx) error {
		if err := need("user ID", u.ID); err != nil {
			return err
		}
		ub, err := userBucket(tx, u.ID, true)
		if err != nil {
			return err
		}
		if ub.Get(keyUserRecord) != nil {
			return store.ErrConflict
		}
		return put(ub, keyUserRecord, u)
	})
}

// GetUser returns user id.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	var u store.User
	err := s.view(ctx, "get user", func(tx *bbolt.Tx) error {
		ub, _ := userBucket(tx, id, false)
		if ub == nil || id == "" {
			return store.ErrNotFound
		}
		data := ub.Get(keyUserRecord)
		if data == nil {
			return store.ErrNotFound
		}
		return decode(data, &u)
	})
	return u, err
}

// PutUser replaces an existing user; ErrNotFound if there is none (CreateUser creates).
func (s *Store) PutUser(ctx context.Context, u store.User) error {
	return s.update(ctx, "put user", func(tx *bbolt.Tx) error {
		ub, _ := userBucket(tx, u.ID, false)
		if ub == nil || u.ID == "" || ub.Get(keyUserRecord) == nil {
			return store.ErrNotFound
		}
		return put(ub, keyUserRecord, u)
	})
}

// DeleteUser removes the user and everything stored about them. Deleting a missing user is
// not an error.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("store/bolt: delete user: %w", need("user ID", id))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.update(ctx, "delete user", func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketDue).Delete([]byte(id)); err != nil {
			return err
		}
		ub, _ := userBucket(tx, id, false)
		if ub == nil {
			return nil
		}
		if b := ub.Bucket(subIdentities); b != nil {
			idents := tx.Bucket(bucketIdentities)
			if err := b.ForEach(func(k, _ []byte) error { return idents.Delete(k) }); err != nil {
				return err
			}
		}
		if b := ub.Bucket(subConnections); b != nil {
			err := b.ForEach(func(_, v []byte) error {
				var c store.Connection
				if err := decode(v, &c); err != nil {
					return err
				}
				return deleteConnectionIndexes(tx, c)
			})
			if err != nil {
				return err
			}
		}
		if b := ub.Bucket(subUserSessions); b != nil {
			sessions, exp := tx.Bucket(bucketSessions), tx.Bucket(bucketSessionExp)
			err := b.ForEach(func(k, _ []byte) error {
				if data := sessions.Get(k); data != nil {
					var ss store.Session
					if err := decode(data, &ss); err != nil {
						return err
					}
					if err := exp.Delete(sessionExpKey(ss)); err != nil {
						return err
					}
				}
				return sessions.Delete(k)
			})
			if err != nil {
				return err
			}
		}
		return tx.Bucket(bucketUsers).DeleteBucket([]byte(id))
	})
	if err != nil {
		return err
	}
	s.due.remove(id)
	return nil
}

// ---- identities ----

// PutIdentity stores a sign-in identity, moving it if it belonged to another user.
func (s *Store) PutIdentity(ctx context.Context, id store.Identity) error {
	return s.update(ctx, "put identity", func(tx *bbolt.Tx) error {
		if err := errors.Join(need("provider", id.Provider), need("subject", id.Subject), need("user ID", id.UserID)); err != nil {
			return err
		}
		k := key(id.Provider, id.Subject)
		idents := tx.Bucket(bucketIdentities)
		if data := idents.Get(k); data != nil {
			var old store.Identity
			if err := decode(data, &old); err != nil {
				return err
			}
			if old.UserID != id.UserID {
				if b, _ := sub(tx, old.UserID, subIdentities, false); b != nil {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
			}
		}
		b, err := sub(tx, id.UserID, subIdentities, true)
		if err != nil {
			return err
		}
		if err := b.Put(k, nil); err != nil {
			return err
		}
		return put(idents, k, id)
	})
}

// GetIdentity finds the identity (provider, subject).
func (s *Store) GetIdentity(ctx context.Context, provider, subject string) (store.Identity, error) {
	var id store.Identity
	err := s.view(ctx, "get identity", func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketIdentities).Get(key(provider, subject))
		if data == nil {
			return store.ErrNotFound
		}
		return decode(data, &id)
	})
	return id, err
}

// ListIdentities returns the user's identities ordered by provider and subject.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]store.Identity, error) {
	var list []store.Identity
	err := s.view(ctx, "list identities", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subIdentities, false)
		if b == nil || userID == "" {
			return nil
		}
		idents := tx.Bucket(bucketIdentities)
		return b.ForEach(func(k, _ []byte) error {
			data := idents.Get(k)
			if data == nil {
				return nil
			}
			var id store.Identity
			if err := decode(data, &id); err != nil {
				return err
			}
			list = append(list, id)
			return nil
		})
	})
	return list, err
}

// DeleteIdentity removes the identity (provider, subject); a missing one is not an error.
func (s *Store) DeleteIdentity(ctx context.Context, provider, subject string) error {
	return s.update(ctx, "delete identity", func(tx *bbolt.Tx) error {
		k := key(provider, subject)
		idents := tx.Bucket(bucketIdentities)
		data := idents.Get(k)
		if data == nil {
			return nil
		}
		var old store.Identity
		if err := decode(data, &old); err != nil {
			return err
		}
		if b, _ := sub(tx, old.UserID, subIdentities, false); b != nil {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return idents.Delete(k)
	})
}

// ---- connections ----

func connExtKey(c store.Connection) []byte {
	return key(c.Provider, c.ExternalID, c.UserID, c.ID)
}

// deleteConnectionIndexes removes the global entries of c: its external-ID index entry, its
// sync state and the channel index entries of its sync state.
func deleteConnectionIndexes(tx *bbolt.Tx, c store.Connection) error {
	if err := tx.Bucket(bucketConnExt).Delete(connExtKey(c)); err != nil {
		return err
	}
	prefix := key(c.ID)
	cur := tx.Bucket(bucketSync).Cursor()
	var channels []string
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		var st store.SyncState
		if err := decode(v, &st); err != nil {
			return err
		}
		if st.ChannelID != "" {
			channels = append(channels, st.ChannelID)
		}
	}
	for _, id := range channels {
		if err := unindexChannel(tx, id, prefix); err != nil {
			return err
		}
	}
	return deletePrefix(tx.Bucket(bucketSync), prefix)
}

// unindexChannel removes the channel index entry of id if it points at a sync state whose key
// starts with prefix (one state's key, or a connection's prefix).
func unindexChannel(tx *bbolt.Tx, id string, prefix []byte) error {
	b := tx.Bucket(bucketChannels)
	if ref := b.Get([]byte(id)); ref != nil && bytes.HasPrefix(ref, prefix) {
		return b.Delete([]byte(id))
	}
	return nil
}

// deletePrefix deletes every key of b starting with prefix.
func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// PutConnection creates or replaces a connection.
func (s *Store) PutConnection(ctx context.Context, c store.Connection) error {
	return s.update(ctx, "put connection", func(tx *bbolt.Tx) error {
		if err := errors.Join(need("user ID", c.UserID), need("connection ID", c.ID)); err != nil {
			return err
		}
		return putConnection(tx, c)
	})
}

func putConnection(tx *bbolt.Tx, c store.Connection) error {
	b, err := sub(tx, c.UserID, subConnections, true)
	if err != nil {
		return err
	}
	ext := tx.Bucket(bucketConnExt)
	if data := b.Get([]byte(c.ID)); data != nil {
		var old store.Connection
		if err := decode(data, &old); err != nil {
			return err
		}
		if err := ext.Delete(connExtKey(old)); err != nil {
			return err
		}
	}
	if c.ExternalID != "" {
		if err := ext.Put(connExtKey(c), nil); err != nil {
			return err
		}
	}
	return put(b, []byte(c.ID), c)
}

func getConnection(tx *bbolt.Tx, userID, id string) (store.Connection, error) {
	var c store.Connection
	b, _ := sub(tx, userID, subConnections, false)
	if b == nil || userID == "" || id == "" {
		return c, store.ErrNotFound
	}
	data := b.Get([]byte(id))
	if data == nil {
		return c, store.ErrNotFound
	}
	return c, decode(data, &c)
}

// GetConnection returns connection id of user userID.
func (s *Store) GetConnection(ctx context.Context, userID, id string) (store.Connection, error) {
	var c store.Connection
	err := s.view(ctx, "get connection", func(tx *bbolt.Tx) error {
		var err error
		c, err = getConnection(tx, userID, id)
		return err
	})
	return c, err
}

// ListConnections returns the user's connections ordered by ID.
func (s *Store) ListConnections(ctx context.Context, userID string) ([]store.Connection, error) {
	var list []store.Connection
	err := s.view(ctx, "list connections", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subConnections, false)
		if b == nil || userID == "" {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var c store.Connection
			if err := decode(v, &c); err != nil {
				return err
			}
			list = append(list, c)
			return nil
		})
	})
	return list, err
}

// FindConnections returns every connection of provider with this external account ID,
// ordered by user ID and connection ID.
func (s *Store) FindConnections(ctx context.Context, provider, externalID string) ([]store.Connection, error) {
	var list []store.Connection
	err := s.view(ctx, "find connections", func(tx *bbolt.Tx) error {
		if externalID == "" {
			return nil
		}
		prefix := key(provider, externalID)
		cur := tx.Bucket(bucketConnExt).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			parts, err := splitKey(k)
			if err != nil {
				return err
			}
			if len(parts) != 4 || parts[0] != provider || parts[1] != externalID {
				continue
			}
			c, err := getConnection(tx, parts[2], parts[3])
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			list = append(list, c)
		}
		return nil
	})
	return list, err
}

// DeleteConnection removes a connection and its sync state; a missing one is not an error.
func (s *Store) DeleteConnection(ctx context.Context, userID, id string) error {
	return s.update(ctx, "delete connection", func(tx *bbolt.Tx) error {
		c, err := getConnection(tx, userID, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := deleteConnectionIndexes(tx, c); err != nil {
			return err
		}
		b, _ := sub(tx, userID, subConnections, false)
		return b.Delete([]byte(id))
	})
}

// SwapCredential replaces the credential blob only if it is still old (ErrConflict
// otherwise), and sets Updated.
func (s *Store) SwapCredential(ctx context.Context, userID, id string, old, updated []byte) error {
	return s.update(ctx, "swap credential", func(tx *bbolt.Tx) error {
		c, err := getConnection(tx, userID, id)
		if err != nil {
			return err
		}
		if !bytes.Equal(c.Credential, old) {
			return store.ErrConflict
		}
		c.Credential = bytes.Clone(updated)
		c.Updated = s.now().UTC()
		return putConnection(tx, c)
	})
}

// RequestSync sets the connection's SyncRequested (never moving it back) in one transaction.
func (s *Store) RequestSync(ctx context.Context, userID, id string, at time.Time) error {
	return s.update(ctx, "request sync", func(tx *bbolt.Tx) error {
		c, err := getConnection(tx, userID, id)
		if err != nil {
			return err
		}
		if !at.After(c.SyncRequested) {
			return nil
		}
		c.SyncRequested = at.UTC()
		return putConnection(tx, c)
	})
}

// EachConnection calls fn for every connection, ordered by user ID and connection ID. fn runs
// outside any transaction, so it may call other methods; connections added during the walk
// may or may not be visited.
func (s *Store) EachConnection(ctx context.Context, fn func(store.Connection) error) error {
	var afterUser, afterID []byte
	for {
		var page []store.Connection
		startUser, startID := afterUser, afterID
		err := s.view(ctx, "each connection", func(tx *bbolt.Tx) error {
			users := tx.Bucket(bucketUsers)
			cur := users.Cursor()
			var k []byte
			if startUser == nil {
				k, _ = cur.First()
			} else {
				k, _ = cur.Seek(startUser)
			}
			for ; k != nil && len(page) < eachConnectionPage; k, _ = cur.Next() {
				ub := users.Bucket(k)
				if ub == nil {
					continue
				}
				cb := ub.Bucket(subConnections)
				if cb == nil {
					continue
				}
				cc := cb.Cursor()
				var ck, cv []byte
				if startUser != nil && bytes.Equal(k, startUser) {
					ck, cv = cc.Seek(startID)
					if ck != nil && bytes.Equal(ck, startID) {
						ck, cv = cc.Next()
					}
				} else {
					ck, cv = cc.First()
				}
				for ; ck != nil && len(page) < eachConnectionPage; ck, cv = cc.Next() {
					var c store.Connection
					if err := decode(cv, &c); err != nil {
						return err
					}
					page = append(page, c)
					afterUser, afterID = bytes.Clone(k), bytes.Clone(ck)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, c := range page {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("store/bolt: each connection: %w", err)
			}
			if err := fn(c); err != nil {
				return err
			}
		}
	}
}

// ---- sync state ----

// PutSyncState creates or replaces the sync state of one resource of a connection.
func (s *Store) PutSyncState(ctx context.Context, st store.SyncState) error {
	return s.update(ctx, "put sync state", func(tx *bbolt.Tx) error {
		if err := errors.Join(need("connection ID", st.ConnectionID), need("resource", st.Resource)); err != nil {
			return err
		}
		k := key(st.ConnectionID, st.Resource)
		if data := tx.Bucket(bucketSync).Get(k); data != nil {
			var old store.SyncState
			if err := decode(data, &old); err != nil {
				return err
			}
			if old.ChannelID != "" && old.ChannelID != st.ChannelID {
				if err := unindexChannel(tx, old.ChannelID, k); err != nil {
					return err
				}
			}
		}
		if st.ChannelID != "" {
			if err := tx.Bucket(bucketChannels).Put([]byte(st.ChannelID), k); err != nil {
				return err
			}
		}
		return put(tx.Bucket(bucketSync), k, st)
	})
}

// GetSyncState returns the sync state of (connectionID, resource).
func (s *Store) GetSyncState(ctx context.Context, connectionID, resource string) (store.SyncState, error) {
	var st store.SyncState
	err := s.view(ctx, "get sync state", func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketSync).Get(key(connectionID, resource))
		if data == nil {
			return store.ErrNotFound
		}
		return decode(data, &st)
	})
	return st, err
}

// ListSyncStates returns the sync states of a connection ordered by resource.
func (s *Store) ListSyncStates(ctx context.Context, connectionID string) ([]store.SyncState, error) {
	var list []store.SyncState
	err := s.view(ctx, "list sync states", func(tx *bbolt.Tx) error {
		prefix := key(connectionID)
		cur := tx.Bucket(bucketSync).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			var st store.SyncState
			if err := decode(v, &st); err != nil {
				return err
			}
			list = append(list, st)
		}
		return nil
	})
	slices.SortFunc(list, func(a, b store.SyncState) int { return strings.Compare(a.Resource, b.Resource) })
	return list, err
}

// DeleteSyncState removes the sync state of (connectionID, resource).
func (s *Store) DeleteSyncState(ctx context.Context, connectionID, resource string) error {
	return s.update(ctx, "delete sync state", func(tx *bbolt.Tx) error {
		k := key(connectionID, resource)
		if data := tx.Bucket(bucketSync).Get(k); data != nil {
			var old store.SyncState
			if err := decode(data, &old); err != nil {
				return err
			}
			if old.ChannelID != "" {
				if err := unindexChannel(tx, old.ChannelID, k); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketSync).Delete(k)
	})
}

// FindChannel returns the sync state whose push channel is channelID.
func (s *Store) FindChannel(ctx context.Context, channelID string) (store.SyncState, error) {
	var st store.SyncState
	err := s.view(ctx, "find channel", func(tx *bbolt.Tx) error {
		if channelID == "" {
			return store.ErrNotFound
		}
		ref := tx.Bucket(bucketChannels).Get([]byte(channelID))
		if ref == nil {
			return store.ErrNotFound
		}
		data := tx.Bucket(bucketSync).Get(ref)
		if data == nil {
			return store.ErrNotFound
		}
		if err := decode(data, &st); err != nil {
			return err
		}
		if st.ChannelID != channelID {
			st = store.SyncState{}
			return store.ErrNotFound
		}
		return nil
	})
	return st, err
}

// ---- events ----

// PutEvents creates or replaces events (by Key) of a person.
func (s *Store) PutEvents(ctx context.Context, userID string, events []presence.Event) error {
	return s.update(ctx, "put events", func(tx *bbolt.Tx) error {
		if err := need("user ID", userID); err != nil {
			return err
		}
		b, err := sub(tx, userID, subEvents, true)
		if err != nil {
			return err
		}
		for _, e := range events {
			if err := put(b, []byte(e.Key()), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteEvents removes events by key; missing keys are ignored.
func (s *Store) DeleteEvents(ctx context.Context, userID string, keys []string) error {
	return s.update(ctx, "delete events", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subEvents, false)
		if b == nil || userID == "" {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReplaceEvents replaces every event whose Source is source with events, in one transaction.
func (s *Store) ReplaceEvents(ctx context.Context, userID, source string, events []presence.Event) error {
	return s.update(ctx, "replace events", func(tx *bbolt.Tx) error {
		if err := need("user ID", userID); err != nil {
			return err
		}
		b, err := sub(tx, userID, subEvents, true)
		if err != nil {
			return err
		}
		var stale [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var e presence.Event
			if err := decode(v, &e); err != nil {
				return err
			}
			if e.Source == source {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for _, e := range events {
			if e.Source != source {
				return fmt.Errorf("event %s is not from source %s", e.Key(), source)
			}
			if err := put(b, []byte(e.Key()), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListEvents returns the events overlapping [from, to), ordered by start (then key).
func (s *Store) ListEvents(ctx context.Context, userID string, from, to time.Time) ([]presence.Event, error) {
	var list []presence.Event
	err := s.view(ctx, "list events", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subEvents, false)
		if b == nil || userID == "" {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var e presence.Event
			if err := decode(v, &e); err != nil {
				return err
			}
			if e.Start.Before(to) && e.End.After(from) {
				list = append(list, e)
			}
			return nil
		})
	})
	sortEvents(list)
	return list, err
}

func sortEvents(list []presence.Event) {
	slices.SortFunc(list, func(a, b presence.Event) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Key(), b.Key())
	})
}

// ---- target state ----

// PutTargetState creates or replaces the state of one target of a person.
func (s *Store) PutTargetState(ctx context.Context, st store.TargetState) error {
	return s.update(ctx, "put target state", func(tx *bbolt.Tx) error {
		if err := errors.Join(need("user ID", st.UserID), need("target", st.Target)); err != nil {
			return err
		}
		b, err := sub(tx, st.UserID, subTargets, true)
		if err != nil {
			return err
		}
		return put(b, []byte(st.Target), st)
	})
}

// GetTargetState returns the state of one target of a person.
func (s *Store) GetTargetState(ctx context.Context, userID, target string) (store.TargetState, error) {
	var st store.TargetState
	err := s.view(ctx, "get target state", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subTargets, false)
		if b == nil || userID == "" || target == "" {
			return store.ErrNotFound
		}
		data := b.Get([]byte(target))
		if data == nil {
			return store.ErrNotFound
		}
		return decode(data, &st)
	})
	return st, err
}

// ListTargetStates returns a person's target states ordered by target.
func (s *Store) ListTargetStates(ctx context.Context, userID string) ([]store.TargetState, error) {
	var list []store.TargetState
	err := s.view(ctx, "list target states", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subTargets, false)
		if b == nil || userID == "" {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var st store.TargetState
			if err := decode(v, &st); err != nil {
				return err
			}
			list = append(list, st)
			return nil
		})
	})
	return list, err
}

// ---- overrides ----

// PutOverride creates or replaces an override (by ID) of a person.
func (s *Store) PutOverride(ctx context.Context, userID string, o presence.Override) error {
	return s.update(ctx, "put override", func(tx *bbolt.Tx) error {
		if err := errors.Join(need("user ID", userID), need("override ID", o.ID)); err != nil {
			return err
		}
		b, err := sub(tx, userID, subOverrides, true)
		if err != nil {
			return err
		}
		return put(b, []byte(o.ID), o)
	})
}

// ListOverrides returns a person's overrides ordered by ID.
func (s *Store) ListOverrides(ctx context.Context, userID string) ([]presence.Override, error) {
	var list []presence.Override
	err := s.view(ctx, "list overrides", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subOverrides, false)
		if b == nil || userID == "" {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var o presence.Override
			if err := decode(v, &o); err != nil {
				return err
			}
			list = append(list, o)
			return nil
		})
	})
	return list, err
}

// DeleteOverride removes an override; a missing one is not an error.
func (s *Store) DeleteOverride(ctx context.Context, userID, id string) error {
	return s.update(ctx, "delete override", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subOverrides, false)
		if b == nil || userID == "" || id == "" {
			return nil
		}
		return b.Delete([]byte(id))
	})
}

// ---- activity ----

// AppendActivity adds an entry to a person's activity log, dropping the oldest beyond
// store.ActivityCap.
func (s *Store) AppendActivity(ctx context.Context, userID string, a store.Activity) error {
	return s.update(ctx, "append activity", func(tx *bbolt.Tx) error {
		if err := need("user ID", userID); err != nil {
			return err
		}
		b, err := sub(tx, userID, subActivity, true)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := put(b, be64(seq), a); err != nil {
			return err
		}
		n := 0
		cur := b.Cursor()
		for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
			n++
		}
		if n <= store.ActivityCap {
			return nil
		}
		var drop [][]byte
		for k, _ := cur.First(); k != nil && len(drop) < n-store.ActivityCap; k, _ = cur.Next() {
			drop = append(drop, bytes.Clone(k))
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListActivity returns up to limit entries (all kept entries when limit <= 0), newest first.
func (s *Store) ListActivity(ctx context.Context, userID string, limit int) ([]store.Activity, error) {
	var list []store.Activity
	err := s.view(ctx, "list activity", func(tx *bbolt.Tx) error {
		b, _ := sub(tx, userID, subActivity, false)
		if b == nil || userID == "" {
			return nil
		}
		cur := b.Cursor()
		for k, v := cur.Last(); k != nil && (limit <= 0 || len(list) < limit); k, v = cur.Prev() {
			var a store.Activity
			if err := decode(v, &a); err != nil {
				return err
			}
			list = append(list, a)
		}
		return nil
	})
	return list, err
}

// ---- sessions ----

// deleteSession removes session id and its index entries, if it exists.
func deleteSession(tx *bbolt.Tx, id []byte) error {
	sessions := tx.Bucket(bucketSessions)
	data := sessions.Get(id)
	if data == nil {
		return nil
	}
	var old store.Session
	if err := decode(data, &old); err != nil {
		return err
	}
	if err := tx.Bucket(bucketSessionExp).Delete(sessionExpKey(old)); err != nil {
		return err
	}
	if old.UserID != "" {
		if b, _ := sub(tx, old.UserID, subUserSessions, false); b != nil {
			if err := b.Delete(id); err != nil {
				return err
			}
		}
	}
	return sessions.Delete(id)
}

// PutSession creates or replaces a session, and removes a few expired ones.
func (s *Store) PutSession(ctx context.Context, ss store.Session) error {
	return s.update(ctx, "put session", func(tx *bbolt.Tx) error {
		if err := need("session ID", ss.ID); err != nil {
			return err
		}
		if ss.Expires.IsZero() {
			return errors.New("session without expiry")
		}
		id := []byte(ss.ID)
		if err := deleteSession(tx, id); err != nil {
			return err
		}
		if err := put(tx.Bucket(bucketSessions), id, ss); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSessionExp).Put(sessionExpKey(ss), nil); err != nil {
			return err
		}
		if ss.UserID != "" {
			b, err := sub(tx, ss.UserID, subUserSessions, true)
			if err != nil {
				return err
			}
			if err := b.Put(id, nil); err != nil {
				return err
			}
		}
		// Purge expired sessions, oldest first, a few per call.
		now := s.now().UnixMilli()
		var expired [][]byte
		cur := tx.Bucket(bucketSessionExp).Cursor()
		for k, _ := cur.First(); k != nil && len(k) >= 8 && len(expired) < sessionPurgeBatch; k, _ = cur.Next() {
			if int64(binary.BigEndian.Uint64(k[:8])) > now {
				break
			}
			expired = append(expired, bytes.Clone(k[8:]))
		}
		for _, id := range expired {
			if err := deleteSession(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetSession returns a session; an expired one is ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var ss store.Session
	err := s.view(ctx, "get session", func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketSessions).Get([]byte(id))
		if data == nil || id == "" {
			return store.ErrNotFound
		}
		if err := decode(data, &ss); err != nil {
			return err
		}
		if !s.now().Before(ss.Expires) {
			return store.ErrNotFound
		}
		return nil
	})
	return ss, err
}

// DeleteSession removes a session; a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.update(ctx, "delete session", func(tx *bbolt.Tx) error {
		if id == "" {
			return nil
		}
		return deleteSession(tx, []byte(id))
	})
}

// MarkSeen records key until now+ttl; it reports whether key was not already recorded (or its
// record had expired). Expired records are dropped by a sweep of a few entries per call, so
// the bucket stays small.
func (s *Store) MarkSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	first := false
	err := s.update(ctx, "mark seen", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSeen)
		now := s.now().UnixMilli()
		if v := b.Get([]byte(key)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now {
			return nil
		}
		first = true
		c := b.Cursor()
		var stale [][]byte
		for k, v := c.First(); k != nil && len(stale) < 16; k, v = c.Next() {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) <= now {
				stale = append(stale, append([]byte(nil), k...))
			}
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return b.Put([]byte(key), be64(uint64(now+ttl.Milliseconds())))
	})
	return first, err
}

// UnmarkSeen forgets a delivery key.
func (s *Store) UnmarkSeen(ctx context.Context, key string) error {
	return s.update(ctx, "unmark seen", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSeen).Delete([]byte(key))
	})
}

func oauthKey(kind, key string) []byte { return append(append([]byte(kind), 0), key...) }

// PutOAuthRecord stores an OAuth server record until expires.
func (s *Store) PutOAuthRecord(ctx context.Context, kind, key string, data []byte, expires time.Time) error {
	return s.update(ctx, "put oauth record", func(tx *bbolt.Tx) error {
		v := append(be64(uint64(expires.UnixMilli())), data...)
		return tx.Bucket(bucketOAuth).Put(oauthKey(kind, key), v)
	})
}

// GetOAuthRecord reads an OAuth server record; an expired one is ErrNotFound.
func (s *Store) GetOAuthRecord(ctx context.Context, kind, key string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, "get oauth record", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketOAuth).Get(oauthKey(kind, key))
		if len(v) < 8 || int64(binary.BigEndian.Uint64(v[:8])) <= s.now().UnixMilli() {
			return store.ErrNotFound
		}
		out = bytes.Clone(v[8:])
		return nil
	})
	return out, err
}

// DeleteOAuthRecord removes an OAuth server record (a missing one is fine).
func (s *Store) DeleteOAuthRecord(ctx context.Context, kind, key string) error {
	return s.update(ctx, "delete oauth record", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketOAuth).Delete(oauthKey(kind, key))
	})
}
