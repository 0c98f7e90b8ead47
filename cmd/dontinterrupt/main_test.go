package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running service.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startService runs `run` in the background on a free port and returns its base URL once it
// listens, and a function that stops it and returns run's error.
func startService(t *testing.T, env map[string]string) (string, func() error, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"dontinterrupt"}, envOf(env), pw, stderr)
		pw.CloseWithError(errors.New("service stopped"))
		done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "dontinterrupt listening on "); ok {
				lines <- strings.Fields(rest)[0]
			}
		}
	}()
	var base string
	select {
	case base = <-lines:
	case err := <-done:
		cancel()
		t.Fatalf("service exited before listening: %v\n%s", err, stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("service did not listen within 30s\n%s", stderr)
	}
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("service did not stop within 30s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { stop() })
	return base, stop, stderr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeHealthAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"DI_ADDR":        "127.0.0.1:0",
		"DI_STORE":       "bolt:" + filepath.Join(dir, "di.db"),
		"DI_KEYSET_FILE": filepath.Join(dir, "keys", "keyset.json"),
	}
	base, stop, _ := startService(t, env)
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if code, body := get(t, base+"/"); code != 200 || !strings.Contains(body, "Sandbox") {
		t.Fatalf("/ = %d, want the sandbox label:\n%s", code, body)
	}
	st, err := os.Stat(env["DI_KEYSET_FILE"])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keyset file: %v mode %v, want created with 0600", err, st.Mode())
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign.json")
	ks, _ := vault.Generate()
	if err := ks.WriteFile(foreign); err != nil {
		t.Fatal(err)
	}
	// A store whose credential was sealed by another keyset.
	dbPath := filepath.Join(dir, "withdata.db")
	own := filepath.Join(dir, "own.json")
	seedCredential(t, dbPath, own)

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{not json"), 0o600)

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"malformed DI_STORE", map[string]string{"DI_STORE": "mysql://db"}, `DI_STORE: unknown scheme "mysql"`},
		{"malformed DI_ADDR", map[string]string{"DI_ADDR": "nonsense"}, "DI_ADDR: "},
		{"port taken", map[string]string{"DI_ADDR": "256.1.1.1:80"}, "DI_ADDR: "},
		{"redis without keyset", map[string]string{"DI_STORE": "redis://127.0.0.1:6379/15", "DI_KEYSET_FILE": ""}, "DI_KEYSET_FILE: required with a Redis store"},
		{"redis with missing keyset", map[string]string{"DI_STORE": "redis://127.0.0.1:6379/15", "DI_KEYSET_FILE": filepath.Join(dir, "nope.json")}, "DI_KEYSET_FILE: keyset file"},
		{"keyset not json", map[string]string{"DI_KEYSET_FILE": bad, "DI_STORE": "bolt:" + filepath.Join(dir, "a.db")}, "DI_KEYSET_FILE: vault: keyset"},
		{"wrong keyset", map[string]string{"DI_KEYSET_FILE": foreign, "DI_STORE": "bolt:" + dbPath}, "DI_KEYSET_FILE: this keyset cannot decrypt the stored credentials"},
		{"unknown command", nil, `unknown command "frobnicate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"DI_ADDR": "127.0.0.1:0", "DI_STORE": "bolt:" + filepath.Join(dir, tc.name+".db"), "DI_KEYSET_FILE": filepath.Join(dir, tc.name+".json")}
			for k, v := range tc.env {
				env[k] = v
			}
			args := []string{"dontinterrupt"}
			if tc.name == "unknown command" {
				args = append(args, "frobnicate")
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), args, envOf(env), &stdout, &stderr)
			if err == nil {
				t.Fatal("run succeeded, want a start-up error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tc.want)
			}
			if code := exitCode(err); code != 2 {
				t.Fatalf("exit code = %d, want 2 (%v)", code, err)
			}
		})
	}
}

// seedCredential writes one connection with a sealed credential into a bolt store at dbPath,
// with the keyset at keysetPath.
func seedCredential(t *testing.T, dbPath, keysetPath string) (store.Connection, []byte) {
	t.Helper()
	ks, err := vault.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.WriteFile(keysetPath); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	plain := []byte(`{"access_token":"xoxp-seeded"}`)
	blob, err := ks.Seal(plain, "u1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	c := store.Connection{ID: "c1", UserID: "u1", Provider: "slack", Credential: blob, Health: store.HealthOK}
	if err := st.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c, plain
}

func TestKeysGenerateRotateList(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "di.db")
	keyset := filepath.Join(dir, "keyset.json")
	env := envOf(map[string]string{"DI_STORE": "bolt:" + dbPath, "DI_KEYSET_FILE": keyset})

	var out bytes.Buffer
	if err := run(t.Context(), []string{"di", "keys", "generate"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"di", "keys", "generate"}, env, &out, io.Discard)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("generate over an existing keyset = %v, want a refusal", err)
	}

	// Seal a credential with the current keyset, rotate, and check it moved to the new key.
	ks, err := vault.LoadFile(keyset)
	if err != nil {
		t.Fatal(err)
	}
	oldPrimary := ks.Primary
	st, err := bolt.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2"} {
		blob, _ := ks.Seal([]byte("token-"+id), "u1", id)
		if err := st.PutConnection(t.Context(), store.Connection{ID: id, UserID: "u1", Provider: "slack", Credential: blob, Health: store.HealthOK}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	out.Reset()
	if err := run(t.Context(), []string{"di", "keys", "rotate"}, env, &out, io.Discard); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if !strings.Contains(out.String(), "re-encrypted 2 of 2") {
		t.Fatalf("rotate output:\n%s", out.String())
	}
	ks2, err := vault.LoadFile(keyset)
	if err != nil {
		t.Fatal(err)
	}
	if ks2.Primary == oldPrimary || len(ks2.Keys) != 2 {
		t.Fatalf("after rotate: primary %08x (old %08x), %d keys", ks2.Primary, oldPrimary, len(ks2.Keys))
	}
	st, err = bolt.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conns, err := st.ListConnections(t.Context(), "u1")
	if err != nil || len(conns) != 2 {
		t.Fatalf("ListConnections = %v, %v", conns, err)
	}
	for _, c := range conns {
		if id, _ := vault.KeyID(c.Credential); id != ks2.Primary {
			t.Errorf("%s under key %08x, want the new primary %08x", c.ID, id, ks2.Primary)
		}
		pt, err := ks2.Open(c.Credential, "u1", c.ID)
		if err != nil || string(pt) != "token-"+c.ID {
			t.Errorf("%s: Open = %q, %v", c.ID, pt, err)
		}
	}

	out.Reset()
	if err := run(t.Context(), []string{"di", "keys", "list"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "created") != 2 || !strings.Contains(out.String(), "*") {
		t.Fatalf("keys list:\n%s", out.String())
	}
	for _, k := range ks2.Keys {
		if strings.Contains(out.String(), base64.StdEncoding.EncodeToString(k.Secret)) {
			t.Fatal("keys list printed a key")
		}
	}
}

func TestConfigCommandMasksSecrets(t *testing.T) {
	var out bytes.Buffer
	env := envOf(map[string]string{"SLACK_CLIENT_ID": "id", "SLACK_CLIENT_SECRET": "very-secret", "SLACK_SIGNING_SECRET": "signing-secret"})
	if err := run(t.Context(), []string{"di", "config"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "very-secret") || strings.Contains(out.String(), "signing-secret") || !strings.Contains(out.String(), "SLACK_CLIENT_SECRET") {
		t.Fatalf("config output:\n%s", out.String())
	}
}

// keys rotate while the service runs on the embedded store: the command only updates the keyset
// (the service holds the database), and the running service re-encrypts every credential and
// keeps serving.
func TestKeysRotateWhileServing(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "di.db")
	keyset := filepath.Join(dir, "keyset.json")
	seedCredential(t, dbPath, keyset)
	env := map[string]string{"DI_ADDR": "127.0.0.1:0", "DI_STORE": "bolt:" + dbPath, "DI_KEYSET_FILE": keyset}
	base, stop, logs := startService(t, env)

	var out bytes.Buffer
	if err := run(t.Context(), []string{"di", "keys", "rotate"}, envOf(env), &out, io.Discard); err != nil {
		t.Fatalf("rotate while serving: %v", err)
	}
	if !strings.Contains(out.String(), "held by the running service") {
		t.Fatalf("rotate output:\n%s", out.String())
	}
	ks, err := vault.LoadFile(keyset)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz during rotation = %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "re-encrypted credentials") {
		if time.Now().After(deadline) {
			t.Fatalf("the service did not re-encrypt within 30s; log:\n%s", logs)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-t.Context().Done():
			return
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetConnection(t.Context(), "u1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := vault.KeyID(c.Credential); id != ks.Primary {
		t.Fatalf("credential under %08x, want the new primary %08x", id, ks.Primary)
	}
	if pt, err := ks.Open(c.Credential, "u1", "c1"); err != nil || string(pt) != `{"access_token":"xoxp-seeded"}` {
		t.Fatalf("Open after rotation = %q, %v", pt, err)
	}
}
