// Package redis is the store.Store on Redis, for any number of replicas (design.md section 7).
//
// Every key starts with a prefix ("di:" by default). Records are JSON with a version field
// "v". Keys, with {uid} a user ID:
//
//	user:{uid}                 string  User
//	idents:{uid}               set     pair(provider, subject) of the user's identities
//	ident:{provider}:{subject} string  Identity
//	conns:{uid}                hash    connection ID → Connection
//	connext:{provider}:{ext}   set     pair(user ID, connection ID): connections by external ID
//	allconns                   set     pair(user ID, connection ID): every connection (EachConnection)
//	sync:{connection ID}       hash    resource → SyncState
//	channel:{channel ID}       string  pair(connection ID, resource): sync state by push channel
//	events:{uid}               hash    event key → presence.Event
//	eventsend:{uid}            zset    event key scored by its end (ms): the overlap query
//	targets:{uid}              hash    target → TargetState
//	overrides:{uid}            hash    override ID → presence.Override
//	activity:{uid}             list    Activity, newest first, capped with LTRIM
//	session:{id}               string  Session, expiring at its Expires (PXAT)
//	usessions:{uid}            zset    session IDs of the user scored by expiry (ms)
//	due                        zset    user ID scored by due time (ms)
//	due:lease                  hash    user ID → lease end (ms) of the claim holding them
//	due:dirty                  hash    user ID → earliest MarkDue (ms) made during a claim
//
// Provider names must not contain ':'. Normal paths never KEYS or SCAN the database.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key unless WithPrefix says otherwise.
const DefaultPrefix = "di:"

// maxTxRetries bounds optimistic (WATCH) transaction retries under contention.
const maxTxRetries = 100

// eachConnectionBatch is the SSCAN count and the pipeline size of EachConnection.
const eachConnectionBatch = 256

type options struct {
	prefix string
	now    func() time.Time
}

// Option configures Open.
type Option func(*options)

// WithPrefix sets the key prefix (DefaultPrefix otherwise), so several deployments or tests
// can share one database.
func WithPrefix(p string) Option {
	return func(o *options) { o.prefix = p }
}

// WithClock sets the clock used for session expiry and connection update times (time.Now
// otherwise).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Store is a store.Store on Redis. It is safe for concurrent use, also from several processes.
type Store struct {
	rdb    *goredis.Client
	prefix string
	now    func() time.Time
}

var _ store.Store = (*Store)(nil)

// Open connects to the Redis at url (redis:// or rediss://, as redis.ParseURL reads it) and
// checks that it answers.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{prefix: DefaultPrefix, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	ro, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store/redis: parse url: %w", err)
	}
	rdb := goredis.NewClient(ro)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("store/redis: connect %s:%d: %w", ro.Addr, ro.DB, err)
	}
	return &Store{rdb: rdb, prefix: o.prefix, now: o.now}, nil
}

// Client returns the connection pool and Prefix the key prefix, for what shares this Redis
// with the store (the rate-limit schedule).
func (s *Store) Client() *goredis.Client { return s.rdb }

// Prefix is the prefix of every key the store writes.
func (s *Store) Prefix() string { return s.prefix }

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store/redis: ping: %w", err)
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("store/redis: close: %w", err)
	}
	return nil
}

// ---- keys and encoding ----

func (s *Store) key(kind string, parts ...string) string {
	return s.prefix + kind + ":" + strings.Join(parts, ":")
}

func (s *Store) dueKeys() []string {
	return []string{s.prefix + "due", s.prefix + "due:lease", s.prefix + "due:dirty"}
}

// pair joins two strings unambiguously: the length of a, ':', a, b.
func pair(a, b string) string { return strconv.Itoa(len(a)) + ":" + a + b }

func splitPair(p string) (string, string, bool) {
	i := strings.IndexByte(p, ':')
	if i < 0 {
		return "", "", false
	}
	n, err := strconv.Atoi(p[:i])
	if err != nil || n < 0 || len(p)-i-1 < n {
		return "", "", false
	}
	return p[i+1 : i+1+n], p[i+1+n:], true
}

// encode marshals a record as JSON with the version field "v" first.
func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if len(b) < 2 || b[0] != '{' {
		return "", fmt.Errorf("record %T is not a JSON object", v)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	sb.WriteString(`{"v":`)
	sb.WriteString(strconv.Itoa(store.RecordVersion))
	if b[1] != '}' {
		sb.WriteByte(',')
	}
	sb.Write(b[1:])
	return sb.String(), nil
}

// decode unmarshals a record of any version: unknown fields are ignored.
func decode(data string, v any) error {
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func need(what, v string) error {
	if v == "" {
		return fmt.Errorf("empty %s", what)
	}
	return nil
}

// hashRecords decodes every record stored in the fields of a hash, ordered by key.
func hashRecords[T any](ctx context.Context, rdb goredis.Cmdable, hashKey string, key func(T) string) ([]T, error) {
	all, err := rdb.HGetAll(ctx, hashKey).Result()
	if err != nil {
		return nil, err
	}
	list := make([]T, 0, len(all))
	for _, data := range all {
		var v T
		if err := decode(data, &v); err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	slices.SortFunc(list, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return list, nil
}

// hashRecord decodes the record stored in one field of a hash (ErrNotFound when missing).
func hashRecord[T any](ctx context.Context, rdb goredis.Cmdable, hashKey, field string) (T, error) {
	var v T
	data, err := rdb.HGet(ctx, hashKey, field).Result()
	if err != nil {
		return v, notFound(err)
	}
	return v, decode(data, &v)
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store/redis: %s: %w", op, err)
}

// notFound maps redis.Nil to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, goredis.Nil) {
		return store.ErrNotFound
	}
	return err
}

// watch runs fn in an optimistic transaction on keys, retrying while another client changed
// a watched key before EXEC.
func (s *Store) watch(ctx context.Context, op string, fn func(tx *goredis.Tx) error, keys ...string) error {
	for range maxTxRetries {
		err := s.rdb.Watch(ctx, fn, keys...)
		if errors.Is(err, goredis.TxFailedErr) {
			continue
		}
		return wrap(op, err)
	}
	return wrap(op, errors.New("too much contention, gave up"))
}

// ---- users ----

// CreateUser stores a new user; ErrConflict if the ID exists.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := need("user ID", u.ID); err != nil {
		return wrap("create user", err)
	}
	data, err := encode(u)
	if err != nil {
		return wrap("create user", err)
	}
	ok, err := s.rdb.SetNX(ctx, s.key("user", u.ID), data, 0).Result()
	if err != nil {
		return wrap("create user", err)
	}
	if !ok {
		return wrap("create user", store.ErrConflict)
	}
	return nil
}

// GetUser returns user id.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	var u store.User
	data, err := s.rdb.Get(ctx, s.key("user", id)).Result()
	if err != nil {
		return u, wrap("get user", notFound(err))
	}
	return u, wrap("get user", decode(data, &u))
}

// PutUser replaces an existing user; ErrNotFound if there is none (CreateUser creates).
func (s *Store) PutUser(ctx context.Context, u store.User) error {
	data, err := encode(u)
	if err != nil {
		return wrap("put user", err)
	}
	ok, err := s.rdb.SetXX(ctx, s.key("user", u.ID), data, goredis.KeepTTL).Result()
	if err != nil {
		return wrap("put user", err)
	}
	if !ok {
		return wrap("put user", store.ErrNotFound)
	}
	return nil
}

// DeleteUser removes the user and everything stored about them, in one MULTI. Deleting a
// missing user is not an error.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := need("user ID", id); err != nil {
		return wrap("delete user", err)
	}
	identsKey, connsKey, sessKey := s.key("idents", id), s.key("conns", id), s.key("usessions", id)
	return s.watch(ctx, "delete user", func(tx *goredis.Tx) error {
		idents, err := tx.SMembers(ctx, identsKey).Result()
		if err != nil {
			return err
		}
		conns, err := tx.HGetAll(ctx, connsKey).Result()
		if err != nil {
			return err
		}
		sessions, err := tx.ZRange(ctx, sessKey, 0, -1).Result()
		if err != nil {
			return err
		}
		var del []string
		for _, p := range idents {
			if provider, subject, ok := splitPair(p); ok {
				del = append(del, s.key("ident", provider, subject))
			}
		}
		for _, sid := range sessions {
			del = append(del, s.key("session", sid))
		}
		type connRef struct{ ext, member, id string }
		var refs []connRef
		for cid, data := range conns {
			var c store.Connection
			if err := decode(data, &c); err != nil {
				return err
			}
			refs = append(refs, connRef{s.key("connext", c.Provider, c.ExternalID), pair(id, cid), cid})
			del = append(del, s.key("sync", cid))
			chans, err := s.connectionChannelKeys(ctx, tx, cid)
			if err != nil {
				return err
			}
			del = append(del, chans...)
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Del(ctx, s.key("user", id), identsKey, connsKey, sessKey, s.key("events", id), s.key("eventsend", id),
				s.key("targets", id), s.key("overrides", id), s.key("activity", id))
			if len(del) > 0 {
				p.Del(ctx, del...)
			}
			for _, r := range refs {
				p.SRem(ctx, r.ext, r.member)
				p.SRem(ctx, s.prefix+"allconns", r.member)
			}
			due := s.dueKeys()
			p.ZRem(ctx, due[0], id)
			p.HDel(ctx, due[1], id)
			p.HDel(ctx, due[2], id)
			return nil
		})
		return err
	}, identsKey, connsKey, sessKey)
}

// ---- identities ----

// PutIdentity stores a sign-in identity, moving it if it belonged to another user.
func (s *Store) PutIdentity(ctx context.Context, id store.Identity) error {
	if err := errors.Join(need("provider", id.Provider), need("subject", id.Subject), need("user ID", id.UserID)); err != nil {
		return wrap("put identity", err)
	}
	data, err := encode(id)
	if err != nil {
		return wrap("put identity", err)
	}
	k := s.key("ident", id.Provider, id.Subject)
	member := pair(id.Provider, id.Subject)
	return s.watch(ctx, "put identity", func(tx *goredis.Tx) error {
		var old store.Identity
		oldData, err := tx.Get(ctx, k).Result()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return err
		default:
			if err := decode(oldData, &old); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			if old.UserID != "" && old.UserID != id.UserID {
				p.SRem(ctx, s.key("idents", old.UserID), member)
			}
			p.Set(ctx, k, data, 0)
			p.SAdd(ctx, s.key("idents", id.UserID), member)
			return nil
		})
		return err
	}, k)
}

// GetIdentity finds the identity (provider, subject).
func (s *Store) GetIdentity(ctx context.Context, provider, subject string) (store.Identity, error) {
	var id store.Identity
	data, err := s.rdb.Get(ctx, s.key("ident", provider, subject)).Result()
	if err != nil {
		return id, wrap("get identity", notFound(err))
	}
	return id, wrap("get identity", decode(data, &id))
}

// ListIdentities returns the user's identities ordered by provider and subject.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]store.Identity, error) {
	members, err := s.rdb.SMembers(ctx, s.key("idents", userID)).Result()
	if err != nil || len(members) == 0 {
		return nil, wrap("list identities", err)
	}
	slices.Sort(members)
	keys := make([]string, 0, len(members))
	for _, m := range members {
		if provider, subject, ok := splitPair(m); ok {
			keys = append(keys, s.key("ident", provider, subject))
		}
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, wrap("list identities", err)
	}
	var list []store.Identity
	for _, v := range vals {
		data, ok := v.(string)
		if !ok {
			continue
		}
		var id store.Identity
		if err := decode(data, &id); err != nil {
			return nil, wrap("list identities", err)
		}
		if id.UserID == userID {
			list = append(list, id)
		}
	}
	slices.SortFunc(list, func(a, b store.Identity) int {
		return strings.Compare(a.Provider+"\x00"+a.Subject, b.Provider+"\x00"+b.Subject)
	})
	return list, nil
}

// DeleteIdentity removes the identity (provider, subject); a missing one is not an error.
func (s *Store) DeleteIdentity(ctx context.Context, provider, subject string) error {
	k := s.key("ident", provider, subject)
	return s.watch(ctx, "delete identity", func(tx *goredis.Tx) error {
		data, err := tx.Get(ctx, k).Result()
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		var old store.Identity
		if err := decode(data, &old); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Del(ctx, k)
			p.SRem(ctx, s.key("idents", old.UserID), pair(provider, subject))
			return nil
		})
		return err
	}, k)
}

// ---- connections ----

// getConnection reads a connection with c (the client or a transaction).
func (s *Store) getConnection(ctx context.Context, c goredis.Cmdable, userID, id string) (store.Connection, error) {
	var cn store.Connection
	data, err := c.HGet(ctx, s.key("conns", userID), id).Result()
	if err != nil {
		return cn, notFound(err)
	}
	return cn, decode(data, &cn)
}

// putConnection queues the writes replacing old (zero if none) with c.
func (s *Store) putConnection(ctx context.Context, p goredis.Pipeliner, old, c store.Connection, data string) {
	member := pair(c.UserID, c.ID)
	if old.ID != "" && (old.Provider != c.Provider || old.ExternalID != c.ExternalID) {
		p.SRem(ctx, s.key("connext", old.Provider, old.ExternalID), member)
	}
	p.HSet(ctx, s.key("conns", c.UserID), c.ID, data)
	if c.ExternalID != "" {
		p.SAdd(ctx, s.key("connext", c.Provider, c.ExternalID), member)
	}
	p.SAdd(ctx, s.prefix+"allconns", member)
}

// PutConnection creates or replaces a connection.
func (s *Store) PutConnection(ctx context.Context, c store.Connection) error {
	if err := errors.Join(need("user ID", c.UserID), need("connection ID", c.ID)); err != nil {
		return wrap("put connection", err)
	}
	data, err := encode(c)
	if err != nil {
		return wrap("put connection", err)
	}
	connsKey := s.key("conns", c.UserID)
	return s.watch(ctx, "put connection", func(tx *goredis.Tx) error {
		old, err := s.getConnection(ctx, tx, c.UserID, c.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			s.putConnection(ctx, p, old, c, data)
			return nil
		})
		return err
	}, connsKey)
}

// GetConnection returns connection id of user userID.
func (s *Store) GetConnection(ctx context.Context, userID, id string) (store.Connection, error) {
	c, err := s.getConnection(ctx, s.rdb, userID, id)
	return c, wrap("get connection", err)
}

// ListConnections returns the user's connections ordered by ID.
func (s *Store) ListConnections(ctx context.Context, userID string) ([]store.Connection, error) {
	list, err := hashRecords(ctx, s.rdb, s.key("conns", userID), func(v store.Connection) string { return v.ID })
	return list, wrap("list connections", err)
}

// getConnections reads the connections named by pair(user ID, connection ID) members,
// skipping those that no longer exist.
func (s *Store) getConnections(ctx context.Context, members []string) ([]store.Connection, error) {
	if len(members) == 0 {
		return nil, nil
	}
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.StringCmd, 0, len(members))
	for _, m := range members {
		uid, cid, ok := splitPair(m)
		if !ok {
			continue
		}
		cmds = append(cmds, p.HGet(ctx, s.key("conns", uid), cid))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	var list []store.Connection
	for _, cmd := range cmds {
		data, err := cmd.Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var c store.Connection
		if err := decode(data, &c); err != nil {
			return nil, err
		}
		list = append(list, c)
	}
	return list, nil
}

// FindConnections returns every connection of provider with this external account ID,
// ordered by user ID and connection ID.
func (s *Store) FindConnections(ctx context.Context, provider, externalID string) ([]store.Connection, error) {
	if externalID == "" {
		return nil, nil
	}
	members, err := s.rdb.SMembers(ctx, s.key("connext", provider, externalID)).Result()
	if err != nil {
		return nil, wrap("find connections", err)
	}
	all, err := s.getConnections(ctx, members)
	if err != nil {
		return nil, wrap("find connections", err)
	}
	var list []store.Connection
	for _, c := range all {
		if c.Provider == provider && c.ExternalID == externalID {
			list = append(list, c)
		}
	}
	slices.SortFunc(list, func(a, b store.Connection) int {
		return strings.Compare(pair(a.UserID, a.ID), pair(b.UserID, b.ID))
	})
	return list, nil
}

// DeleteConnection removes a connection and its sync state; a missing one is not an error.
func (s *Store) DeleteConnection(ctx context.Context, userID, id string) error {
	connsKey := s.key("conns", userID)
	return s.watch(ctx, "delete connection", func(tx *goredis.Tx) error {
		old, err := s.getConnection(ctx, tx, userID, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		member := pair(userID, id)
		chans, err := s.connectionChannelKeys(ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HDel(ctx, connsKey, id)
			p.SRem(ctx, s.key("connext", old.Provider, old.ExternalID), member)
			p.SRem(ctx, s.prefix+"allconns", member)
			p.Del(ctx, s.key("sync", id))
			if len(chans) > 0 {
				p.Del(ctx, chans...)
			}
			return nil
		})
		return err
	}, connsKey)
}

// SwapCredential replaces the credential blob only if it is still old (ErrConflict
// otherwise), and sets Updated.
func (s *Store) SwapCredential(ctx context.Context, userID, id string, old, updated []byte) error {
	connsKey := s.key("conns", userID)
	return s.watch(ctx, "swap credential", func(tx *goredis.Tx) error {
		c, err := s.getConnection(ctx, tx, userID, id)
		if err != nil {
			return err
		}
		if string(c.Credential) != string(old) {
			return store.ErrConflict
		}
		prev := c
		c.Credential = slices.Clone(updated)
		c.Updated = s.now().UTC()
		data, err := encode(c)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			s.putConnection(ctx, p, prev, c, data)
			return nil
		})
		return err
	}, connsKey)
}

// RequestSync sets the connection's SyncRequested (never moving it back) in an optimistic
// transaction on the user's connections.
func (s *Store) RequestSync(ctx context.Context, userID, id string, at time.Time) error {
	connsKey := s.key("conns", userID)
	return s.watch(ctx, "request sync", func(tx *goredis.Tx) error {
		c, err := s.getConnection(ctx, tx, userID, id)
		if err != nil {
			return err
		}
		if !at.After(c.SyncRequested) {
			return nil
		}
		prev := c
		c.SyncRequested = at.UTC()
		data, err := encode(c)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			s.putConnection(ctx, p, prev, c, data)
			return nil
		})
		return err
	}, connsKey)
}

// EachConnection calls fn for every connection, walking the set of all connections with
// SSCAN. fn may call other methods; connections added or removed during the walk may or may
// not be visited.
func (s *Store) EachConnection(ctx context.Context, fn func(store.Connection) error) error {
	seen := map[string]bool{}
	var cursor uint64
	for {
		members, next, err := s.rdb.SScan(ctx, s.prefix+"allconns", cursor, "", eachConnectionBatch).Result()
		if err != nil {
			return wrap("each connection", err)
		}
		fresh := members[:0]
		for _, m := range members {
			if !seen[m] {
				seen[m] = true
				fresh = append(fresh, m)
			}
		}
		conns, err := s.getConnections(ctx, fresh)
		if err != nil {
			return wrap("each connection", err)
		}
		for _, c := range conns {
			if err := fn(c); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// ---- sync state ----

// PutSyncState creates or replaces the sync state of one resource of a connection, and keeps
// the channel index: in an optimistic transaction on the connection's sync hash, the replaced
// channel's entry goes and the new one's is set.
func (s *Store) PutSyncState(ctx context.Context, st store.SyncState) error {
	if err := errors.Join(need("connection ID", st.ConnectionID), need("resource", st.Resource)); err != nil {
		return wrap("put sync state", err)
	}
	data, err := encode(st)
	if err != nil {
		return wrap("put sync state", err)
	}
	syncKey, ref := s.key("sync", st.ConnectionID), pair(st.ConnectionID, st.Resource)
	return s.watch(ctx, "put sync state", func(tx *goredis.Tx) error {
		old, err := hashRecord[store.SyncState](ctx, tx, syncKey, st.Resource)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var stale string
		if old.ChannelID != "" && old.ChannelID != st.ChannelID {
			if stale, err = s.channelKeyIf(ctx, tx, old.ChannelID, ref); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, syncKey, st.Resource, data)
			if stale != "" {
				p.Del(ctx, stale)
			}
			if st.ChannelID != "" {
				p.Set(ctx, s.key("channel", st.ChannelID), ref, 0)
			}
			return nil
		})
		return err
	}, syncKey)
}

// channelKeyIf returns the channel index key of id if it points at ref, else "".
func (s *Store) channelKeyIf(ctx context.Context, c goredis.Cmdable, id, ref string) (string, error) {
	k := s.key("channel", id)
	got, err := c.Get(ctx, k).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if got != ref {
		return "", nil
	}
	return k, nil
}

// connectionChannelKeys returns the channel index keys that point at sync states of the
// connection id.
func (s *Store) connectionChannelKeys(ctx context.Context, c goredis.Cmdable, id string) ([]string, error) {
	states, err := hashRecords(ctx, c, s.key("sync", id), func(v store.SyncState) string { return v.Resource })
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, st := range states {
		if st.ChannelID == "" {
			continue
		}
		k, err := s.channelKeyIf(ctx, c, st.ChannelID, pair(id, st.Resource))
		if err != nil {
			return nil, err
		}
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// GetSyncState returns the sync state of (connectionID, resource).
func (s *Store) GetSyncState(ctx context.Context, connectionID, resource string) (store.SyncState, error) {
	st, err := hashRecord[store.SyncState](ctx, s.rdb, s.key("sync", connectionID), resource)
	return st, wrap("get sync state", err)
}

// ListSyncStates returns the sync states of a connection ordered by resource.
func (s *Store) ListSyncStates(ctx context.Context, connectionID string) ([]store.SyncState, error) {
	list, err := hashRecords(ctx, s.rdb, s.key("sync", connectionID), func(v store.SyncState) string { return v.Resource })
	return list, wrap("list sync states", err)
}

// DeleteSyncState removes the sync state of (connectionID, resource) and its channel index
// entry.
func (s *Store) DeleteSyncState(ctx context.Context, connectionID, resource string) error {
	syncKey, ref := s.key("sync", connectionID), pair(connectionID, resource)
	return s.watch(ctx, "delete sync state", func(tx *goredis.Tx) error {
		old, err := hashRecord[store.SyncState](ctx, tx, syncKey, resource)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var stale string
		if old.ChannelID != "" {
			if stale, err = s.channelKeyIf(ctx, tx, old.ChannelID, ref); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HDel(ctx, syncKey, resource)
			if stale != "" {
				p.Del(ctx, stale)
			}
			return nil
		})
		return err
	}, syncKey)
}

// FindChannel returns the sync state whose push channel is channelID.
func (s *Store) FindChannel(ctx context.Context, channelID string) (store.SyncState, error) {
	if channelID == "" {
		return store.SyncState{}, wrap("find channel", store.ErrNotFound)
	}
	ref, err := s.rdb.Get(ctx, s.key("channel", channelID)).Result()
	if err != nil {
		return store.SyncState{}, wrap("find channel", notFound(err))
	}
	conn, resource, ok := splitPair(ref)
	if !ok {
		return store.SyncState{}, wrap("find channel", fmt.Errorf("malformed channel index entry"))
	}
	st, err := hashRecord[store.SyncState](ctx, s.rdb, s.key("sync", conn), resource)
	if err != nil {
		return store.SyncState{}, wrap("find channel", err)
	}
	if st.ChannelID != channelID {
		return store.SyncState{}, wrap("find channel", store.ErrNotFound)
	}
	return st, nil
}

// ---- events ----

// putEvents queues the writes of events.
func (s *Store) putEvents(ctx context.Context, p goredis.Pipeliner, userID string, events []presence.Event) error {
	if len(events) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(events))
	ends := make([]goredis.Z, 0, len(events))
	for _, e := range events {
		data, err := encode(e)
		if err != nil {
			return err
		}
		fields = append(fields, e.Key(), data)
		ends = append(ends, goredis.Z{Score: float64(ms(e.End)), Member: e.Key()})
	}
	p.HSet(ctx, s.key("events", userID), fields...)
	p.ZAdd(ctx, s.key("eventsend", userID), ends...)
	return nil
}

// PutEvents creates or replaces events (by Key) of a person.
func (s *Store) PutEvents(ctx context.Context, userID string, events []presence.Event) error {
	if err := need("user ID", userID); err != nil {
		return wrap("put events", err)
	}
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		return s.putEvents(ctx, p, userID, events)
	})
	return wrap("put events", err)
}

// DeleteEvents removes events by key; missing keys are ignored.
func (s *Store) DeleteEvents(ctx context.Context, userID string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	members := make([]any, len(keys))
	for i, k := range keys {
		members[i] = k
	}
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HDel(ctx, s.key("events", userID), keys...)
		p.ZRem(ctx, s.key("eventsend", userID), members...)
		return nil
	})
	return wrap("delete events", err)
}

// ReplaceEvents replaces every event whose Source is source with events, atomically.
func (s *Store) ReplaceEvents(ctx context.Context, userID, source string, events []presence.Event) error {
	if err := need("user ID", userID); err != nil {
		return wrap("replace events", err)
	}
	for _, e := range events {
		if e.Source != source {
			return wrap("replace events", fmt.Errorf("event %s is not from source %s", e.Key(), source))
		}
	}
	eventsKey := s.key("events", userID)
	return s.watch(ctx, "replace events", func(tx *goredis.Tx) error {
		all, err := tx.HGetAll(ctx, eventsKey).Result()
		if err != nil {
			return err
		}
		var stale []string
		for k, data := range all {
			var e presence.Event
			if err := decode(data, &e); err != nil {
				return err
			}
			if e.Source == source {
				stale = append(stale, k)
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			if len(stale) > 0 {
				members := make([]any, len(stale))
				for i, k := range stale {
					members[i] = k
				}
				p.HDel(ctx, eventsKey, stale...)
				p.ZRem(ctx, s.key("eventsend", userID), members...)
			}
			return s.putEvents(ctx, p, userID, events)
		})
		return err
	}, eventsKey)
}

// ListEvents returns the events overlapping [from, to), ordered by start (then key).
func (s *Store) ListEvents(ctx context.Context, userID string, from, to time.Time) ([]presence.Event, error) {
	// Every event ending after from (the score is the end, rounded down to the millisecond,
	// so the bound is inclusive and the exact check follows).
	keys, err := s.rdb.ZRangeByScore(ctx, s.key("eventsend", userID), &goredis.ZRangeBy{
		Min: strconv.FormatInt(ms(from), 10), Max: "+inf",
	}).Result()
	if err != nil || len(keys) == 0 {
		return nil, wrap("list events", err)
	}
	vals, err := s.rdb.HMGet(ctx, s.key("events", userID), keys...).Result()
	if err != nil {
		return nil, wrap("list events", err)
	}
	var list []presence.Event
	for _, v := range vals {
		data, ok := v.(string)
		if !ok {
			continue
		}
		var e presence.Event
		if err := decode(data, &e); err != nil {
			return nil, wrap("list events", err)
		}
		if e.Start.Before(to) && e.End.After(from) {
			list = append(list, e)
		}
	}
	slices.SortFunc(list, func(a, b presence.Event) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Key(), b.Key())
	})
	return list, nil
}

// ---- target state ----

// PutTargetState creates or replaces the state of one target of a person.
func (s *Store) PutTargetState(ctx context.Context, st store.TargetState) error {
	if err := errors.Join(need("user ID", st.UserID), need("target", st.Target)); err != nil {
		return wrap("put target state", err)
	}
	data, err := encode(st)
	if err != nil {
		return wrap("put target state", err)
	}
	return wrap("put target state", s.rdb.HSet(ctx, s.key("targets", st.UserID), st.Target, data).Err())
}

// GetTargetState returns the state of one target of a person.
func (s *Store) GetTargetState(ctx context.Context, userID, target string) (store.TargetState, error) {
	st, err := hashRecord[store.TargetState](ctx, s.rdb, s.key("targets", userID), target)
	return st, wrap("get target state", err)
}

// ListTargetStates returns a person's target states ordered by target.
func (s *Store) ListTargetStates(ctx context.Context, userID string) ([]store.TargetState, error) {
	list, err := hashRecords(ctx, s.rdb, s.key("targets", userID), func(v store.TargetState) string { return v.Target })
	return list, wrap("list target states", err)
}

// ---- overrides ----

// PutOverride creates or replaces an override (by ID) of a person.
func (s *Store) PutOverride(ctx context.Context, userID string, o presence.Override) error {
	if err := errors.Join(need("user ID", userID), need("override ID", o.ID)); err != nil {
		return wrap("put override", err)
	}
	data, err := encode(o)
	if err != nil {
		return wrap("put override", err)
	}
	return wrap("put override", s.rdb.HSet(ctx, s.key("overrides", userID), o.ID, data).Err())
}

// ListOverrides returns a person's overrides ordered by ID.
func (s *Store) ListOverrides(ctx context.Context, userID string) ([]presence.Override, error) {
	list, err := hashRecords(ctx, s.rdb, s.key("overrides", userID), func(v presence.Override) string { return v.ID })
	return list, wrap("list overrides", err)
}

// DeleteOverride removes an override; a missing one is not an error.
func (s *Store) DeleteOverride(ctx context.Context, userID, id string) error {
	return wrap("delete override", s.rdb.HDel(ctx, s.key("overrides", userID), id).Err())
}

// ---- activity ----

// AppendActivity adds an entry to a person's activity log (LPUSH), dropping the oldest beyond
// store.ActivityCap (LTRIM), in one MULTI.
func (s *Store) AppendActivity(ctx context.Context, userID string, a store.Activity) error {
	if err := need("user ID", userID); err != nil {
		return wrap("append activity", err)
	}
	data, err := encode(a)
	if err != nil {
		return wrap("append activity", err)
	}
	k := s.key("activity", userID)
	_, err = s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.LPush(ctx, k, data)
		p.LTrim(ctx, k, 0, store.ActivityCap-1)
		return nil
	})
	return wrap("append activity", err)
}

// ListActivity returns up to limit entries (all kept entries when limit <= 0), newest first.
func (s *Store) ListActivity(ctx context.Context, userID string, limit int) ([]store.Activity, error) {
	stop := int64(limit - 1) // limit <= 0: -1, the whole list
	if limit <= 0 {
		stop = -1
	}
	all, err := s.rdb.LRange(ctx, s.key("activity", userID), 0, stop).Result()
	if err != nil {
		return nil, wrap("list activity", err)
	}
	list := make([]store.Activity, 0, len(all))
	for _, data := range all {
		var a store.Activity
		if err := decode(data, &a); err != nil {
			return nil, wrap("list activity", err)
		}
		list = append(list, a)
	}
	return list, nil
}

// ---- sessions ----

// PutSession creates or replaces a session; Redis expires it at Expires.
func (s *Store) PutSession(ctx context.Context, ss store.Session) error {
	if err := need("session ID", ss.ID); err != nil {
		return wrap("put session", err)
	}
	if ss.Expires.IsZero() {
		return wrap("put session", errors.New("session without expiry"))
	}
	data, err := encode(ss)
	if err != nil {
		return wrap("put session", err)
	}
	k := s.key("session", ss.ID)
	now := s.now()
	return s.watch(ctx, "put session", func(tx *goredis.Tx) error {
		var old store.Session
		oldData, err := tx.Get(ctx, k).Result()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return err
		default:
			if err := decode(oldData, &old); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			if old.UserID != "" && old.UserID != ss.UserID {
				p.ZRem(ctx, s.key("usessions", old.UserID), ss.ID)
			}
			if !now.Before(ss.Expires) {
				// Already expired: nothing to keep.
				p.Del(ctx, k)
				if ss.UserID != "" {
					p.ZRem(ctx, s.key("usessions", ss.UserID), ss.ID)
				}
				return nil
			}
			p.SetArgs(ctx, k, data, goredis.SetArgs{ExpireAt: ss.Expires})
			if ss.UserID != "" {
				uk := s.key("usessions", ss.UserID)
				p.ZAdd(ctx, uk, goredis.Z{Score: float64(ms(ss.Expires)), Member: ss.ID})
				p.ZRemRangeByScore(ctx, uk, "-inf", strconv.FormatInt(ms(now), 10))
			}
			return nil
		})
		return err
	}, k)
}

// GetSession returns a session; an expired one is ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var ss store.Session
	data, err := s.rdb.Get(ctx, s.key("session", id)).Result()
	if err != nil {
		return ss, wrap("get session", notFound(err))
	}
	if err := decode(data, &ss); err != nil {
		return ss, wrap("get session", err)
	}
	if !s.now().Before(ss.Expires) {
		return store.Session{}, wrap("get session", store.ErrNotFound)
	}
	return ss, nil
}

// DeleteSession removes a session; a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	k := s.key("session", id)
	return s.watch(ctx, "delete session", func(tx *goredis.Tx) error {
		data, err := tx.Get(ctx, k).Result()
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		var old store.Session
		if err := decode(data, &old); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Del(ctx, k)
			if old.UserID != "" {
				p.ZRem(ctx, s.key("usessions", old.UserID), id)
			}
			return nil
		})
		return err
	}, k)
}

// MarkSeen records key for ttl (SET NX PX); it reports whether key was not already recorded.
func (s *Store) MarkSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	ok, err := s.rdb.SetNX(ctx, s.key("seen", key), 1, ttl).Result()
	return ok, wrap("mark seen", err)
}

// UnmarkSeen forgets a delivery key.
func (s *Store) UnmarkSeen(ctx context.Context, key string) error {
	return wrap("unmark seen", s.rdb.Del(ctx, s.key("seen", key)).Err())
}

// PutOAuthRecord stores an OAuth server record with a TTL to expires.
func (s *Store) PutOAuthRecord(ctx context.Context, kind, key string, data []byte, expires time.Time) error {
	ttl := time.Until(expires)
	if ttl < time.Millisecond {
		return nil // already expired: nothing to keep
	}
	return wrap("put oauth record", s.rdb.Set(ctx, s.key("oauth", kind, key), data, ttl).Err())
}

// GetOAuthRecord reads an OAuth server record.
func (s *Store) GetOAuthRecord(ctx context.Context, kind, key string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.key("oauth", kind, key)).Bytes()
	if err != nil {
		return nil, wrap("get oauth record", notFound(err))
	}
	return b, nil
}

// DeleteOAuthRecord removes an OAuth server record.
func (s *Store) DeleteOAuthRecord(ctx context.Context, kind, key string) error {
	return wrap("delete oauth record", s.rdb.Del(ctx, s.key("oauth", kind, key)).Err())
}
