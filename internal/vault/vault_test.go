package vault

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustGenerate(t *testing.T) *Keyset {
	t.Helper()
	ks, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestSealOpen(t *testing.T) {
	ks := mustGenerate(t)
	secret := []byte(`{"access_token":"xoxp-very-secret"}`)
	blob, err := ks.Seal(secret, "u1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("very-secret")) {
		t.Fatal("blob contains the plaintext")
	}
	got, err := ks.Open(blob, "u1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, want %q", got, secret)
	}
	blob2, _ := ks.Seal(secret, "u1", "c1")
	if bytes.Equal(blob, blob2) {
		t.Fatal("two seals of the same plaintext are equal: nonce reused")
	}
}

// A blob copied onto another record (other connection, other user, or a shifted split of the
// same characters) fails to decrypt.
func TestAssociatedDataBindsRecord(t *testing.T) {
	ks := mustGenerate(t)
	blob, err := ks.Seal([]byte("token"), "u1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ctx  []string
	}{
		{"other connection", []string{"u1", "c2"}},
		{"other user", []string{"u2", "c1"}},
		{"shifted boundary", []string{"u1c", "1"}},
		{"no context", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ks.Open(blob, tc.ctx...); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open with %q = %v, want ErrDecrypt", tc.ctx, err)
			}
		})
	}
}

func TestTamperedBlob(t *testing.T) {
	ks := mustGenerate(t)
	blob, _ := ks.Seal([]byte("token"), "u1", "c1")
	for _, i := range []int{0, 1, headerSize, len(blob) - 1} {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x55
		if _, err := ks.Open(bad, "u1", "c1"); err == nil {
			t.Errorf("tampered byte %d: Open succeeded", i)
		}
	}
	if _, err := ks.Open(blob[:10], "u1", "c1"); !errors.Is(err, ErrDecrypt) {
		t.Errorf("short blob: %v, want ErrDecrypt", err)
	}
}

func TestRotationKeepsOldKeysForDecrypt(t *testing.T) {
	ks := mustGenerate(t)
	old := ks.Primary
	blob, _ := ks.Seal([]byte("token"), "u", "c")
	newID, err := ks.AddKey()
	if err != nil {
		t.Fatal(err)
	}
	if newID == old || ks.Primary != newID {
		t.Fatalf("primary = %08x, want the new key %08x", ks.Primary, newID)
	}
	if _, err := ks.Open(blob, "u", "c"); err != nil {
		t.Fatalf("old blob after AddKey: %v", err)
	}
	blob2, _ := ks.Seal([]byte("token"), "u", "c")
	if id, _ := KeyID(blob2); id != newID {
		t.Fatalf("new blob under %08x, want %08x", id, newID)
	}
	other := mustGenerate(t)
	if _, err := other.Open(blob2, "u", "c"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("foreign keyset: %v, want ErrUnknownKey", err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, content, want string
	}{
		{"not json", "hello", "not valid JSON"},
		{"no keys", `{"version":1,"primary":1,"keys":[]}`, "no keys"},
		{"short key", `{"version":1,"primary":1,"keys":[{"id":1,"secret":"AAAA"}]}`, "is 3 bytes, want 32"},
		{"missing primary", `{"version":1,"primary":2,"keys":[{"id":1,"secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`, "primary key 00000002 is not in the keyset"},
		{"wrong version", `{"version":9,"primary":1,"keys":[]}`, "version 9 is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "_")+".json", tc.content)
			_, err := LoadFile(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadFile = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestOpenCreatesFile0600(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "keyset.json")
	if _, _, err := Open(p, false); err == nil || !strings.Contains(err.Error(), "dontinterrupt keys generate") {
		t.Fatalf("missing keyset without create: %v, want advice to run keys generate", err)
	}
	v, created, err := Open(p, true)
	if err != nil || !created {
		t.Fatalf("Open(create) = %v, created=%v", err, created)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	blob, _ := v.Seal([]byte("x"), "u", "c")
	v2, created, err := Open(p, true)
	if err != nil || created {
		t.Fatalf("second Open = %v, created=%v", err, created)
	}
	if _, err := v2.Open(blob, "u", "c"); err != nil {
		t.Fatalf("reopened keyset cannot open: %v", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(p, true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable keyset: %v, want a refusal", err)
	}
}

// A running service that meets a blob under a key added by `keys rotate` in another process
// reads the file again.
func TestVaultReloadsOnUnknownKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keyset.json")
	serving, _, err := Open(p, true)
	if err != nil {
		t.Fatal(err)
	}
	rotator, _, err := Open(p, false)
	if err != nil {
		t.Fatal(err)
	}
	ks := rotator.keyset()
	if _, err := ks.AddKey(); err != nil {
		t.Fatal(err)
	}
	if err := ks.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	blob, _ := rotator.Seal([]byte("tok"), "u", "c")
	got, err := serving.Open(blob, "u", "c")
	if err != nil || string(got) != "tok" {
		t.Fatalf("serving.Open after rotation = %q, %v", got, err)
	}
	if serving.Primary() != ks.Primary {
		t.Fatalf("serving primary %08x, want %08x", serving.Primary(), ks.Primary)
	}
}

type memCreds struct {
	m        map[string]Credential
	conflict string // connection whose swap conflicts once
}

var errConflict = errors.New("conflict")

func (m *memCreds) EachCredential(fn func(Credential) error) error {
	for _, c := range m.m {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *memCreds) SwapCredential(c Credential, updated []byte) error {
	if c.ConnectionID == m.conflict {
		m.conflict = ""
		return errConflict
	}
	cur := m.m[c.ConnectionID]
	if !bytes.Equal(cur.Blob, c.Blob) {
		return errConflict
	}
	cur.Blob = updated
	m.m[c.ConnectionID] = cur
	return nil
}

func TestReencrypt(t *testing.T) {
	ks := mustGenerate(t)
	v := New(ks)
	creds := &memCreds{m: map[string]Credential{}}
	for _, id := range []string{"c1", "c2", "c3"} {
		blob, _ := v.Seal([]byte("token-"+id), "u1", id)
		creds.m[id] = Credential{UserID: "u1", ConnectionID: id, Blob: blob}
	}
	if _, err := ks.AddKey(); err != nil {
		t.Fatal(err)
	}
	creds.conflict = "c3"
	res, err := v.Reencrypt(creds, func(err error) bool { return errors.Is(err, errConflict) })
	if err != nil {
		t.Fatal(err)
	}
	if res != (ReencryptResult{Total: 3, Reencrypted: 2, Conflicts: 1}) {
		t.Fatalf("first run = %+v", res)
	}
	res, err = v.Reencrypt(creds, func(err error) bool { return errors.Is(err, errConflict) })
	if err != nil {
		t.Fatal(err)
	}
	if res != (ReencryptResult{Total: 3, Reencrypted: 1, AlreadyCurrent: 2}) {
		t.Fatalf("second run = %+v", res)
	}
	for id, c := range creds.m {
		if v.NeedsRotation(c.Blob) {
			t.Errorf("%s still under an old key", id)
		}
		got, err := v.Open(c.Blob, "u1", id)
		if err != nil || string(got) != "token-"+id {
			t.Errorf("%s: Open = %q, %v", id, got, err)
		}
	}
}
