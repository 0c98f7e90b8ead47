package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dontinterrupt/dontinterrupt/internal/config"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
)

const keysUsage = `usage:
  dontinterrupt keys generate [-o PATH] [-force]   write a new keyset (default path: DI_KEYSET_FILE)
  dontinterrupt keys rotate                        add a key, make it primary, re-encrypt every credential
  dontinterrupt keys list                          list key IDs and dates (never the keys)`

// keys runs the keys subcommands.
func keys(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("keys needs a subcommand\n%s", keysUsage)
	}
	switch args[0] {
	case "generate":
		return keysGenerate(args[1:], getenv, stdout)
	case "rotate":
		if len(args) > 1 {
			return usagef("keys rotate takes no arguments\n%s", keysUsage)
		}
		return keysRotate(ctx, getenv, stdout)
	case "list":
		cfg, err := config.Load(getenv)
		if err != nil {
			return err
		}
		ks, err := vault.LoadFile(cfg.KeysetFile)
		if err != nil {
			return &config.Error{Var: "DI_KEYSET_FILE", Msg: err.Error()}
		}
		fmt.Fprintf(stdout, "keyset %s (* = primary, encrypts; all decrypt)\n", cfg.KeysetFile)
		ks.Describe(stdout)
		return nil
	default:
		return usagef("unknown keys subcommand %q\n%s", args[0], keysUsage)
	}
}

func keysGenerate(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := getenv("DI_KEYSET_FILE")
	if def == "" {
		def = "data/keyset.json"
	}
	out := fs.String("o", def, "where to write the keyset")
	force := fs.Bool("force", false, "overwrite an existing keyset (its credentials become unreadable)")
	if err := fs.Parse(args); err != nil {
		return usagef("%v\n%s", err, keysUsage)
	}
	if _, err := os.Stat(*out); err == nil && !*force {
		return usagef("%s exists; overwriting it would make every credential encrypted with it unreadable. Use `keys rotate` to add a key, or -force if you mean it", *out)
	}
	ks, err := vault.Generate()
	if err != nil {
		return err
	}
	if err := ks.WriteFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a new keyset to %s (mode 0600) with key %08x\nKeep a copy somewhere safe; give every replica the same file (DI_KEYSET_FILE).\n", *out, ks.Primary)
	return nil
}

// keysRotate adds a new primary key to the keyset file, then re-encrypts every stored
// credential under it. It is safe while the service runs: every credential swap is a
// compare-and-swap (a token refreshed meanwhile is already under the new key or is picked up by
// the service), and a running service reloads the keyset when it meets the new key ID. In bolt
// mode the running service holds the file, so the service itself re-encrypts within seconds.
func keysRotate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	ks, err := vault.LoadFile(cfg.KeysetFile)
	if err != nil {
		return &config.Error{Var: "DI_KEYSET_FILE", Msg: err.Error()}
	}
	// Open the store before touching the keyset, so a wrong keyset is found first.
	st, err := openStore(ctx, cfg)
	lockedByService := errors.Is(err, bolt.ErrLocked)
	if err != nil && !lockedByService {
		return err
	}
	if st != nil {
		defer st.Close()
		if err := checkKeyset(ctx, vault.New(ks), st); err != nil {
			return &config.Error{Var: "DI_KEYSET_FILE", Msg: err.Error()}
		}
	}
	id, err := ks.AddKey()
	if err != nil {
		return err
	}
	if err := ks.WriteFile(cfg.KeysetFile); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added key %08x to %s; it is now the primary key\n", id, cfg.KeysetFile)
	if lockedByService {
		fmt.Fprintf(stdout, "the store %s is held by the running service: it re-encrypts every credential under the new key within seconds\n", cfg.Store.Path)
		return nil
	}
	v := vault.New(ks)
	res, err := v.Reencrypt(credentialStore{ctx, st}, isConflict)
	if err != nil {
		return fmt.Errorf("re-encrypt: %w (the new key is in the keyset; run keys rotate again, or let the service finish)", err)
	}
	fmt.Fprintf(stdout, "re-encrypted %d of %d credentials (%d already current, %d changed meanwhile and are re-encrypted by the service)\n",
		res.Reencrypted, res.Total, res.AlreadyCurrent, res.Conflicts)
	return nil
}

// credentialStore adapts the store to what vault.Reencrypt needs.
type credentialStore struct {
	ctx context.Context
	st  store.Store
}

func (c credentialStore) EachCredential(fn func(vault.Credential) error) error {
	return c.st.EachConnection(c.ctx, func(conn store.Connection) error {
		return fn(vault.Credential{UserID: conn.UserID, ConnectionID: conn.ID, Blob: conn.Credential})
	})
}

func (c credentialStore) SwapCredential(cred vault.Credential, updated []byte) error {
	return c.st.SwapCredential(c.ctx, cred.UserID, cred.ConnectionID, cred.Blob, updated)
}

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }
