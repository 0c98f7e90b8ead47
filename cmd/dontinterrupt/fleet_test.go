package main

// Helpers of the store-fault and cluster tests: a private redis-server, the Google and Slack
// fakes with people seeded straight into the store (sealed credentials the fakes issued), and
// dontinterrupt processes started from a binary built once.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
)

// poll calls cond every 20ms until it holds; it fails the test after d.
func poll(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	if !waitUntil(t, d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// waitUntil calls cond every 20ms until it holds (true) or d has passed (false).
func waitUntil(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			return false
		}
	}
	return true
}

// ---- a private redis-server ----------------------------------------------------------------

// redisServer is a redis-server of the test's own, on a free port with its data in a temporary
// directory, which the test may stop and start again.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
	log *os.File
}

// startRedisServer starts a private redis-server, or skips the test when none is installed
// (it fails under CI, which installs one). args are extra configuration ("--appendonly", "yes").
func startRedisServer(t *testing.T, args ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not installed (CI requires it): %v", err)
		}
		t.Skipf("skipping: redis-server is not installed (%v); install it (apt-get install redis-server) to run this test", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, bin: bin, dir: t.TempDir(), port: port, args: args}
	r.start()
	t.Cleanup(r.kill)
	return r
}

// url is the redis:// URL of database db.
func (r *redisServer) url(db int) string {
	return fmt.Sprintf("redis://127.0.0.1:%d/%d", r.port, db)
}

// start starts redis-server on the port and directory (again) and waits until it answers.
func (r *redisServer) start() {
	r.t.Helper()
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "yes",
	}, r.args...)
	logf, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd, r.log = cmd, logf
	r.mu.Unlock()
	rc := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1})
	defer rc.Close()
	poll(r.t, "redis-server to answer", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(r.t.Context(), time.Second)
		defer cancel()
		return rc.Ping(ctx).Err() == nil
	})
}

// kill stops redis-server at once (SIGKILL: what it had not written to disk is lost) and waits
// for it to exit.
func (r *redisServer) kill() {
	r.mu.Lock()
	cmd, logf := r.cmd, r.log
	r.cmd, r.log = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	logf.Close()
}

// ---- the fakes and the people --------------------------------------------------------------

// fleet is what dontinterrupt processes on one Redis talk to: a Google and a Slack fake on
// httptest servers, a keyset file, and the store the test seeds people into.
type fleet struct {
	t      *testing.T
	google *googlefake.Server
	gsrv   *httptest.Server
	gc     *google.Client
	slack  *slackfake.Server
	ssrv   *httptest.Server
	vault  *vault.Vault
	env    map[string]string
}

// newFleet starts the fakes (Slack's rate limits off: this is not a rate-limit test) and writes
// a keyset. wrapSlack, when set, wraps the Slack fake's handler.
func newFleet(t *testing.T, redisURL string, wrapSlack func(http.Handler) http.Handler) *fleet {
	t.Helper()
	f := &fleet{t: t}
	f.google = googlefake.New(googlefake.Options{AutoApprove: true})
	f.gsrv = httptest.NewServer(f.google)
	t.Cleanup(f.gsrv.Close)
	f.google.SetBaseURL(f.gsrv.URL)

	limits := slackfake.DefaultRateLimits()
	for m := range limits {
		limits[m] = 0
	}
	f.slack = slackfake.New(slackfake.Options{RateLimits: limits, ProfileSetPerUserLimit: -1})
	var h http.Handler = f.slack
	if wrapSlack != nil {
		h = wrapSlack(h)
	}
	f.ssrv = httptest.NewServer(h)
	t.Cleanup(f.ssrv.Close)
	f.slack.SetBaseURL(f.ssrv.URL)

	var err error
	f.gc, err = google.New(t.Context(), google.Config{
		ClientID:           f.google.ClientID(),
		ClientSecret:       f.google.ClientSecret(),
		IssuerURL:          f.gsrv.URL,
		APIURL:             f.gsrv.URL + "/",
		SignInRedirectURL:  "http://127.0.0.1/signin/google/callback",
		ConnectRedirectURL: "http://127.0.0.1/connect/google/callback",
		HTTPClient:         f.gsrv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	f.env = map[string]string{
		"DI_ADDR":              "127.0.0.1:0",
		"DI_PUBLIC_URL":        "http://127.0.0.1:8080",
		"DI_STORE":             redisURL,
		"DI_KEYSET_FILE":       filepath.Join(dir, "keyset.json"),
		"DI_SANDBOX":           "off",
		"DI_PUSH":              "off",
		"DI_LOG_LEVEL":         "info",
		"GOOGLE_CLIENT_ID":     f.google.ClientID(),
		"GOOGLE_CLIENT_SECRET": f.google.ClientSecret(),
		"GOOGLE_ISSUER_URL":    f.gsrv.URL,
		"GOOGLE_API_URL":       f.gsrv.URL + "/",
		"SLACK_CLIENT_ID":      f.slack.ClientID(),
		"SLACK_CLIENT_SECRET":  f.slack.ClientSecret(),
		"SLACK_SIGNING_SECRET": "fleet-signing-secret",
		"SLACK_BASE_URL":       f.ssrv.URL,
	}
	if err := run(t.Context(), []string{"dontinterrupt", "keys", "generate"}, envOf(f.env), io.Discard, io.Discard); err != nil {
		t.Fatalf("keys generate: %v", err)
	}
	f.vault, _, err = vault.Open(f.env["DI_KEYSET_FILE"], false)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fleetPerson is a person seeded by addPerson.
type fleetPerson struct {
	id, googleSub, slackUser string
}

// addPerson creates person i in st: a user with the default rules, a Google account connected
// through the fake's real OAuth flow, and the Slack user slackUser of workspace slackTeam
// (added to the fake, whose seeded default workspace then goes) with a token the fake issued;
// the person is due now.
func (f *fleet) addPerson(ctx context.Context, st store.Store, i int, slackTeam, slackUser string) fleetPerson {
	f.t.Helper()
	p := fleetPerson{id: fmt.Sprintf("u-%04d", i), googleSub: fmt.Sprintf("sub-%04d", i), slackUser: slackUser}
	now := time.Now()
	if err := st.CreateUser(ctx, store.User{ID: p.id, Created: now, Rules: presence.DefaultRules()}); err != nil {
		f.t.Fatal(err)
	}
	f.google.AddAccount(p.googleSub, p.googleSub+"@fleet.invalid", "Person "+p.googleSub)
	cn := f.connectGoogle(ctx, p)
	f.putConnection(ctx, st, store.Connection{
		ID: "google-" + p.id, UserID: p.id, Provider: "google", ExternalID: cn.Subject,
		Scopes: cn.Scopes, Resources: []string{"primary"},
	}, cn.Credential)
	f.slack.AddUser(slackTeam, slackUser, "Person "+slackUser)
	tok := f.slack.IssueUserToken(slackUser, slack.UserScopes...)
	f.putConnection(ctx, st, store.Connection{
		ID: "slack-" + p.id, UserID: p.id, Provider: "slack", ExternalID: slackUser,
		TeamID: slackTeam, Scopes: slack.UserScopes,
	}, provider.Credential{AccessToken: tok})
	if err := st.MarkDue(ctx, p.id, now); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fleet) putConnection(ctx context.Context, st store.Store, c store.Connection, cred provider.Credential) {
	f.t.Helper()
	pt, err := cred.Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	c.Credential, err = f.vault.Seal(pt, c.UserID, c.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	c.Health, c.Created, c.Updated = store.HealthOK, time.Now(), time.Now()
	if err := st.PutConnection(ctx, c); err != nil {
		f.t.Fatal(err)
	}
}

// connectGoogle runs the connect flow at the fake (which approves at once) for p.
func (f *fleet) connectGoogle(ctx context.Context, p fleetPerson) google.Connect {
	f.t.Helper()
	state, nonce, verifier := "state-"+p.id, "nonce-"+p.id, oauth2.GenerateVerifier()
	u, err := f.gc.ConnectURL(ctx, state, nonce, verifier)
	if err != nil {
		f.t.Fatal(err)
	}
	hc := &http.Client{
		Transport:     f.gsrv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Get(u + "&login_hint=" + url.QueryEscape(p.googleSub))
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		f.t.Fatalf("authorize: HTTP %d to %q, want a redirect with a code", resp.StatusCode, resp.Header.Get("Location"))
	}
	cn, err := f.gc.FinishConnect(ctx, loc.Query().Get("code"), verifier, nonce, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return cn
}

// statusWrites returns the successful users.profile.set calls by Slack user.
func (f *fleet) statusWrites() map[string][]slackfake.Call {
	out := map[string][]slackfake.Call{}
	for _, c := range profileSets(f.slack) {
		out[c.User] = append(out[c.User], c)
	}
	return out
}

// ---- dontinterrupt processes ---------------------------------------------------------------

// buildBinary builds cmd/dontinterrupt once per test into a temporary directory, with the race
// detector when this test binary has it (so the build reuses the packages `go test -race`
// compiled, and the processes are checked for races too).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dontinterrupt")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), "go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built %s (race %v) in %v", bin, raceEnabled, time.Since(start).Round(time.Millisecond))
	return bin
}

// replica is one dontinterrupt process.
type replica struct {
	name string
	cmd  *exec.Cmd
	base string // http://host:port
	logs *syncBuffer
	done chan struct{}
	err  error // after done
}

// startReplica starts bin with exactly env (and PATH, HOME) and waits until it listens.
func startReplica(t *testing.T, bin, name string, env map[string]string) *replica {
	t.Helper()
	r := &replica{name: name, logs: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin)
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stderr = r.logs
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "dontinterrupt listening on "); ok {
				listening <- strings.Fields(rest)[0]
			}
		}
	}()
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s log (last 4000 bytes):\n%s", name, tail(r.logs.String(), 4000))
		}
	})
	select {
	case r.base = <-listening:
	case <-r.done:
		t.Fatalf("%s exited before listening: %v\n%s", name, r.err, r.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not listen within 30s\n%s", name, r.logs)
	}
	return r
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still runs 10s after SIGKILL", r.name)
	}
}

// stop sends SIGTERM (a graceful shutdown), waits up to d, then kills; it returns the exit error.
func (r *replica) stop(d time.Duration) error {
	select {
	case <-r.done:
		return r.err
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
		return errors.New(r.name + " did not stop within " + d.String() + " of SIGTERM")
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
