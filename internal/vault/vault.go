// Package vault encrypts the credentials dontinterrupt stores (OAuth tokens) with AES-256-GCM
// under a keyset: several keys, each with an ID, that can all decrypt, one of which (the primary)
// encrypts. Every blob is bound by associated data to the record it belongs to, (user ID,
// connection ID), so a blob copied onto another record fails to decrypt.
//
// A blob is: version byte (1) | key ID (4 bytes, big endian) | nonce (12 bytes) | ciphertext+tag.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

const (
	blobVersion = 1
	keySize     = 32 // AES-256
	nonceSize   = 12
	headerSize  = 1 + 4 + nonceSize
	fileVersion = 1
)

// Errors callers can test with errors.Is.
var (
	// ErrUnknownKey: the blob was sealed under a key the keyset does not hold.
	ErrUnknownKey = errors.New("vault: blob sealed under a key this keyset does not have")
	// ErrDecrypt: the blob is corrupt or belongs to another record.
	ErrDecrypt = errors.New("vault: blob does not decrypt (corrupt, or it belongs to another record)")
)

// Key is one AES-256 key with its ID.
type Key struct {
	ID      uint32    `json:"id"`
	Created time.Time `json:"created"`
	Secret  []byte    `json:"secret"` // 32 bytes, base64 in the file
}

// Keyset is a set of keys, one of them primary. The zero value is empty and unusable; make one
// with Generate or LoadFile.
type Keyset struct {
	Version int    `json:"version"`
	Primary uint32 `json:"primary"`
	Keys    []Key  `json:"keys"`

	aeads map[uint32]cipher.AEAD
}

// Generate returns a keyset with one fresh key, the primary.
func Generate() (*Keyset, error) {
	ks := &Keyset{Version: fileVersion}
	if _, err := ks.AddKey(); err != nil {
		return nil, err
	}
	return ks, nil
}

// AddKey adds a fresh key and makes it the primary; older keys stay for decryption.
func (ks *Keyset) AddKey() (uint32, error) {
	secret := make([]byte, keySize)
	if _, err := rand.Read(secret); err != nil {
		return 0, fmt.Errorf("vault: random key: %w", err)
	}
	var id uint32
	for {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("vault: random key id: %w", err)
		}
		id = binary.BigEndian.Uint32(b[:])
		if id != 0 && ks.key(id) == nil {
			break
		}
	}
	ks.Keys = append(ks.Keys, Key{ID: id, Created: time.Now().UTC().Truncate(time.Second), Secret: secret})
	ks.Primary = id
	ks.aeads = nil
	return id, ks.init()
}

func (ks *Keyset) key(id uint32) *Key {
	for i := range ks.Keys {
		if ks.Keys[i].ID == id {
			return &ks.Keys[i]
		}
	}
	return nil
}

// init validates the keyset and builds one AEAD per key.
func (ks *Keyset) init() error {
	if ks.Version != fileVersion {
		return fmt.Errorf("vault: keyset version %d is not supported (want %d)", ks.Version, fileVersion)
	}
	if len(ks.Keys) == 0 {
		return errors.New("vault: keyset has no keys")
	}
	aeads := make(map[uint32]cipher.AEAD, len(ks.Keys))
	for _, k := range ks.Keys {
		if len(k.Secret) != keySize {
			return fmt.Errorf("vault: key %08x is %d bytes, want %d", k.ID, len(k.Secret), keySize)
		}
		if _, dup := aeads[k.ID]; dup {
			return fmt.Errorf("vault: key id %08x appears twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return fmt.Errorf("vault: key %08x: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("vault: key %08x: %w", k.ID, err)
		}
		aeads[k.ID] = aead
	}
	if _, ok := aeads[ks.Primary]; !ok {
		return fmt.Errorf("vault: primary key %08x is not in the keyset", ks.Primary)
	}
	ks.aeads = aeads
	return nil
}

// associatedData binds a blob to its record. Each part is length-prefixed so ("ab","c") and
// ("a","bc") differ.
func associatedData(parts ...string) []byte {
	ad := []byte("dontinterrupt/vault/v1")
	for _, p := range parts {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(p)))
		ad = append(ad, p...)
	}
	return ad
}

// Seal encrypts plaintext under the primary key, bound to the record named by context (for a
// credential: user ID, connection ID).
func (ks *Keyset) Seal(plaintext []byte, context ...string) ([]byte, error) {
	aead := ks.aeads[ks.Primary]
	if aead == nil {
		return nil, errors.New("vault: keyset not initialised")
	}
	out := make([]byte, headerSize, headerSize+len(plaintext)+aead.Overhead())
	out[0] = blobVersion
	binary.BigEndian.PutUint32(out[1:5], ks.Primary)
	if _, err := rand.Read(out[5:headerSize]); err != nil {
		return nil, fmt.Errorf("vault: nonce: %w", err)
	}
	return aead.Seal(out, out[5:headerSize], plaintext, associatedData(context...)), nil
}

// Open decrypts a blob sealed with the same context.
func (ks *Keyset) Open(blob []byte, context ...string) ([]byte, error) {
	id, err := KeyID(blob)
	if err != nil {
		return nil, err
	}
	aead := ks.aeads[id]
	if aead == nil {
		return nil, fmt.Errorf("%w (key %08x)", ErrUnknownKey, id)
	}
	pt, err := aead.Open(nil, blob[5:headerSize], blob[headerSize:], associatedData(context...))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// KeyID returns the ID of the key a blob was sealed under.
func KeyID(blob []byte) (uint32, error) {
	if len(blob) < headerSize+16 || blob[0] != blobVersion {
		return 0, fmt.Errorf("%w: not a vault blob", ErrDecrypt)
	}
	return binary.BigEndian.Uint32(blob[1:5]), nil
}

// LoadFile reads a keyset file. The error names the file and says what is wrong.
func LoadFile(path string) (*Keyset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vault: read keyset: %w", err)
	}
	var ks Keyset
	if err := json.Unmarshal(data, &ks); err != nil {
		return nil, fmt.Errorf("vault: keyset %s is not valid JSON: %w", path, err)
	}
	if err := ks.init(); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return &ks, nil
}

// WriteFile writes the keyset to path with mode 0600, atomically (a temporary file renamed
// over the old one), creating the directory (0700) if needed.
func (ks *Keyset) WriteFile(path string) error {
	data, err := json.MarshalIndent(ks, "", "  ")
	if err != nil {
		return fmt.Errorf("vault: encode keyset: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("vault: create keyset directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".keyset-*")
	if err != nil {
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	return nil
}

// KeyIDs returns the IDs of the keys, oldest first.
func (ks *Keyset) KeyIDs() []uint32 {
	ids := make([]uint32, 0, len(ks.Keys))
	for _, k := range ks.Keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// Vault is a keyset loaded from a file that follows the file: when it meets a blob sealed under
// a key it does not know, it reads the file again (another process, `dontinterrupt keys
// rotate`, may have added a key). Safe for concurrent use.
type Vault struct {
	path string

	mu      sync.RWMutex
	ks      *Keyset
	modTime time.Time
}

// New returns a Vault over an in-memory keyset (tests); it never reloads.
func New(ks *Keyset) *Vault { return &Vault{ks: ks} }

// Open loads the keyset file at path. createIfMissing makes a new keyset (mode 0600) when the
// file does not exist (bolt mode); otherwise a missing file is an error that says how to make
// one.
func Open(path string, createIfMissing bool) (*Vault, bool, error) {
	created := false
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if !createIfMissing {
			return nil, false, fmt.Errorf("keyset file %s does not exist; create one with `dontinterrupt keys generate` (and give every replica the same file)", path)
		}
		ks, err := Generate()
		if err != nil {
			return nil, false, err
		}
		if err := ks.WriteFile(path); err != nil {
			return nil, false, err
		}
		created = true
	}
	v := &Vault{path: path}
	if err := v.Reload(); err != nil {
		return nil, false, err
	}
	return v, created, nil
}

// Reload reads the keyset file again if it changed.
func (v *Vault) Reload() error {
	if v.path == "" {
		return nil
	}
	st, err := os.Stat(v.path)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("vault: keyset file %s has mode %v; it holds keys and must not be readable by others (chmod 600)", v.path, st.Mode().Perm())
	}
	v.mu.RLock()
	same := v.ks != nil && st.ModTime().Equal(v.modTime)
	v.mu.RUnlock()
	if same {
		return nil
	}
	ks, err := LoadFile(v.path)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.ks, v.modTime = ks, st.ModTime()
	v.mu.Unlock()
	return nil
}

func (v *Vault) keyset() *Keyset {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.ks
}

// Primary returns the ID of the key that encrypts.
func (v *Vault) Primary() uint32 { return v.keyset().Primary }

// Seal encrypts under the primary key, bound to context.
func (v *Vault) Seal(plaintext []byte, context ...string) ([]byte, error) {
	return v.keyset().Seal(plaintext, context...)
}

// Open decrypts a blob bound to context, reloading the keyset file once if the blob's key is
// unknown.
func (v *Vault) Open(blob []byte, context ...string) ([]byte, error) {
	pt, err := v.keyset().Open(blob, context...)
	if errors.Is(err, ErrUnknownKey) && v.path != "" {
		if rerr := v.Reload(); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		return v.keyset().Open(blob, context...)
	}
	return pt, err
}

// NeedsRotation reports whether blob was sealed under a key other than the primary.
func (v *Vault) NeedsRotation(blob []byte) bool {
	id, err := KeyID(blob)
	return err == nil && id != v.Primary()
}

// Credential is what Reencrypt needs to know of a stored credential.
type Credential struct {
	UserID, ConnectionID string
	Blob                 []byte
}

// CredentialStore is the part of the store Reencrypt uses.
type CredentialStore interface {
	// EachCredential calls fn for every stored credential.
	EachCredential(fn func(Credential) error) error
	// SwapCredential replaces old with updated, or fails with a conflict if it changed.
	SwapCredential(c Credential, updated []byte) error
}

// ReencryptResult counts what Reencrypt did.
type ReencryptResult struct {
	Total, Reencrypted, AlreadyCurrent, Conflicts int
}

// Reencrypt seals every credential not under the primary key again under it. A credential that
// changes meanwhile (a token refresh) is counted as a conflict and left alone: its new blob is
// already under the primary key of whoever wrote it. A blob that does not decrypt stops the run.
func (v *Vault) Reencrypt(cs CredentialStore, isConflict func(error) bool) (ReencryptResult, error) {
	var res ReencryptResult
	err := cs.EachCredential(func(c Credential) error {
		res.Total++
		if len(c.Blob) == 0 || !v.NeedsRotation(c.Blob) {
			res.AlreadyCurrent++
			return nil
		}
		pt, err := v.Open(c.Blob, c.UserID, c.ConnectionID)
		if err != nil {
			return fmt.Errorf("vault: credential of connection %s: %w", c.ConnectionID, err)
		}
		sealed, err := v.Seal(pt, c.UserID, c.ConnectionID)
		clear(pt)
		if err != nil {
			return err
		}
		if err := cs.SwapCredential(c, sealed); err != nil {
			if isConflict != nil && isConflict(err) {
				res.Conflicts++
				return nil
			}
			return err
		}
		res.Reencrypted++
		return nil
	})
	return res, err
}

// Describe lists the keys for people: ID, creation time and which one is primary. No secrets.
func (ks *Keyset) Describe(w io.Writer) {
	keys := slices.Clone(ks.Keys)
	for _, k := range keys {
		mark := " "
		if k.ID == ks.Primary {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %08x  created %s\n", mark, k.ID, k.Created.Format(time.RFC3339))
	}
}
