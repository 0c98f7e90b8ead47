// Command dontinterrupt keeps a person's Slack and Teams presence truthful from their calendars
// and Zoom.
//
// Usage:
//
//	dontinterrupt [serve]          run the service (the default)
//	dontinterrupt config           print the configuration, secrets masked
//	dontinterrupt keys generate    write a new keyset file
//	dontinterrupt keys rotate      add a key and re-encrypt every stored credential under it
//	dontinterrupt keys list        list the keys of the keyset (IDs and dates, no secrets)
//
// Configuration comes from environment variables; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dontinterrupt/dontinterrupt/internal/config"
)

func main() {
	err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dontinterrupt:", err)
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake in the command line or the configuration: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode is 2 for a usage or configuration error (nothing was done), 1 otherwise.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || config.IsConfigError(err) {
		return 2
	}
	return 1
}

const usage = `usage: dontinterrupt [command]

commands:
  serve          run the service (the default)
  config         print the configuration, secrets masked
  keys generate  write a new keyset file (-o PATH, default DI_KEYSET_FILE)
  keys rotate    add a key to the keyset and re-encrypt every stored credential under it
  keys list      list the keys of the keyset (IDs and dates, never the keys)

Settings come from environment variables; see README.md.`

// run is the whole program, with the operating system passed in so tests can call it. It stops
// when ctx is cancelled or on SIGINT/SIGTERM.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd := "serve"
	var rest []string
	if len(args) > 1 {
		cmd, rest = args[1], args[2:]
	}
	switch cmd {
	case "serve":
		if len(rest) > 0 {
			return usagef("serve takes no arguments (settings are environment variables)\n%s", usage)
		}
		return serve(ctx, getenv, stdout, stderr)
	case "config":
		cfg, err := config.Load(getenv)
		if err != nil {
			return err
		}
		cfg.Print(stdout)
		return nil
	case "keys":
		return keys(ctx, rest, getenv, stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return usagef("unknown command %q\n%s", cmd, usage)
	}
}
