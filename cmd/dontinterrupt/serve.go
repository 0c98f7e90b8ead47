package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
	"github.com/dontinterrupt/dontinterrupt/integrations/google"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft"
	slackint "github.com/dontinterrupt/dontinterrupt/integrations/slack"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/config"
	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	redisstore "github.com/dontinterrupt/dontinterrupt/internal/store/redis"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
	"github.com/dontinterrupt/dontinterrupt/scheduler"
	"github.com/dontinterrupt/dontinterrupt/web"
)

// newLogger builds the one logger of the process.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens the configured store.
func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	switch cfg.Store.Kind {
	case config.StoreRedis:
		s, err := redisstore.Open(ctx, cfg.Store.RedisURL.Reveal())
		if err != nil {
			return nil, fmt.Errorf("DI_STORE: %w", err)
		}
		return s, nil
	default:
		s, err := bolt.Open(cfg.Store.Path)
		if err != nil {
			return nil, fmt.Errorf("DI_STORE: %w", err)
		}
		return s, nil
	}
}

// openVault opens the keyset: created on first run in bolt mode, required with Redis. It then
// checks that the keyset opens what the store holds, so a wrong keyset stops the start rather
// than breaking every connection later.
func openVault(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger) (*vault.Vault, error) {
	v, created, err := vault.Open(cfg.KeysetFile, cfg.Store.Kind == config.StoreBolt)
	if err != nil {
		return nil, &config.Error{Var: "DI_KEYSET_FILE", Msg: err.Error()}
	}
	if created {
		log.Info("created a new keyset; back it up: without it stored credentials cannot be read", "file", cfg.KeysetFile)
	}
	if err := checkKeyset(ctx, v, st); err != nil {
		return nil, &config.Error{Var: "DI_KEYSET_FILE", Msg: err.Error()}
	}
	return v, nil
}

var errStopEach = errors.New("stop")

// checkKeyset opens one stored credential, if any.
func checkKeyset(ctx context.Context, v *vault.Vault, st store.Store) error {
	var checkErr error
	err := st.EachConnection(ctx, func(c store.Connection) error {
		if len(c.Credential) == 0 {
			return nil
		}
		if _, err := v.Open(c.Credential, c.UserID, c.ID); err != nil {
			checkErr = fmt.Errorf("this keyset cannot decrypt the stored credentials (%w); is it the keyset the data was written with?", err)
		}
		return errStopEach
	})
	if err != nil && !errors.Is(err, errStopEach) {
		return fmt.Errorf("read stored credentials: %w", err)
	}
	return checkErr
}

// serve runs the service until ctx is cancelled.
func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	// Listen first, so a taken port fails fast, before anything is opened.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return &config.Error{Var: "DI_ADDR", Msg: fmt.Sprintf("cannot listen on %s: %v", cfg.Addr, err)}
	}
	defer ln.Close()

	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	v, err := openVault(ctx, cfg, st, log)
	if err != nil {
		return err
	}

	clk := clock.Real{}
	var sb *sandbox
	if cfg.Sandbox {
		if sb, err = startSandbox(cfg, log); err != nil {
			return err
		}
		defer sb.stop()
	}

	httpClient := &http.Client{Timeout: 20 * time.Second}
	sources := map[string]scheduler.Source{}
	var gc *google.Client
	if cfg.GoogleEnabled() {
		gc, err = google.New(ctx, google.Config{
			ClientID:           cfg.Google.ClientID,
			ClientSecret:       cfg.Google.ClientSecret.Reveal(),
			IssuerURL:          cfg.Google.IssuerURL,
			APIURL:             cfg.Google.APIURL,
			SignInRedirectURL:  cfg.URL("/signin/google/callback"),
			ConnectRedirectURL: cfg.URL("/connect/google/callback"),
			HTTPClient:         httpClient,
			ChannelTTL:         cfg.Google.PushTTL,
		})
		if err != nil {
			return err
		}
		sources["google"] = googleSource{gc}
	}
	var sc *slackint.Client
	if cfg.SlackEnabled() {
		sc, err = slackint.New(slackint.Config{
			ClientID:          cfg.Slack.ClientID,
			ClientSecret:      cfg.Slack.ClientSecret.Reveal(),
			BaseURL:           cfg.Slack.BaseURL,
			RedirectURL:       cfg.URL("/connect/slack/callback"),
			SignInRedirectURL: cfg.URL("/signin/slack/callback"),
			HTTPClient:        httpClient,
		})
		if err != nil {
			return err
		}
	}

	var mc *microsoft.Client
	if cfg.MicrosoftEnabled() {
		mc, err = microsoft.New(microsoft.Config{
			ClientID:           cfg.Microsoft.ClientID,
			ClientSecret:       cfg.Microsoft.ClientSecret.Reveal(),
			Tenant:             cfg.Microsoft.Tenant,
			AuthorityURL:       cfg.Microsoft.AuthorityURL,
			GraphURL:           cfg.Microsoft.GraphURL,
			SignInRedirectURL:  cfg.URL("/signin/microsoft/callback"),
			OutlookRedirectURL: cfg.URL("/connect/outlook/callback"),
			TeamsRedirectURL:   cfg.URL("/connect/teams/callback"),
			HTTPClient:         httpClient,
		})
		if err != nil {
			return err
		}
		sources["outlook"] = outlookSource{mc, cfg.Scheduler.Horizon}
	}
	var zc *zoom.Client
	if cfg.ZoomEnabled() {
		zc, err = zoom.New(zoom.Config{
			ClientID:           cfg.Zoom.ClientID,
			ClientSecret:       cfg.Zoom.ClientSecret.Reveal(),
			OAuthURL:           cfg.Zoom.OAuthURL,
			APIURL:             cfg.Zoom.APIURL,
			RedirectURL:        cfg.URL("/connect/zoom/callback"),
			WebhookSecretToken: cfg.Zoom.WebhookSecretToken.Reveal(),
			HTTPClient:         httpClient,
		})
		if err != nil {
			return err
		}
		sources["zoom"] = zoomSource{zc}
	}
	// Providers push only to https (and the sandbox's fakes to its plain http URL); Google
	// also only to a domain verified for the project.
	notify := map[string]string{}
	if cfg.Push {
		notify["outlook"] = cfg.URL("/webhooks/microsoft")
		notify["google"] = cfg.URL("/webhooks/google")
	}

	met := metrics.New()
	schedDeps := scheduler.Deps{
		Logger: log, Store: st, Vault: v, Clock: clk, Sources: sources, Metrics: met,
		Options: scheduler.Options{
			Workers:        cfg.Scheduler.Workers,
			Lease:          cfg.Scheduler.Lease,
			Horizon:        cfg.Scheduler.Horizon,
			ResyncInterval: cfg.Scheduler.ResyncInterval,
			NotifyURLs:     notify,
			RateLimits:     cfg.Scheduler.RateLimits,
			Lead:           leadOption(cfg.Scheduler.WriteLead),
		},
		Limits: rateSchedule(st),
	}
	if sc != nil {
		schedDeps.Slack = sc
	}
	if mc != nil {
		schedDeps.Teams = teamsTarget{mc}
	}
	sched, err := scheduler.New(schedDeps)
	if err != nil {
		return err
	}

	webDeps := web.Deps{
		Logger: log, Store: st, Vault: v, Clock: clk,
		Secure:  cfg.PublicURL.Scheme == "https",
		Sandbox: cfg.Sandbox,
		Horizon: cfg.Scheduler.Horizon,
		Wake:    sched.Wake,
		Metrics: met,
	}
	if gc != nil {
		webDeps.Google = gc
	}
	if sc != nil {
		webDeps.Slack = sc
		webDeps.SlackBot = sc
		webDeps.SlackSigningSecret = cfg.Slack.SigningSecret.Reveal()
	}
	webDeps.PublicURL = cfg.URL("")
	if mc != nil {
		webDeps.Microsoft = microsoftWeb{mc}
	}
	if zc != nil {
		webDeps.Zoom = zc
	}
	if sb != nil {
		webDeps.SandboxEvents = sb.addEvent
		webDeps.SandboxSlackURL = sb.slackURL
		webDeps.SandboxOutlook = sb.addOutlookEvent
		webDeps.SandboxLinks = sb.links()
	}
	if cfg.AlexaEnabled() {
		webDeps.OAuthClient = &web.OAuthClient{ID: cfg.Alexa.ClientID, Secret: cfg.Alexa.ClientSecret.Reveal(), RedirectURIs: cfg.Alexa.RedirectURIs}
		verifier := &alexa.Verifier{SkillID: cfg.Alexa.SkillID}
		if sb != nil {
			verifier.Roots, verifier.Fetch = sb.alexa.Roots(), sb.alexa.Fetch
		}
		webDeps.Alexa = verifier
	}
	if sb != nil {
		// The sandbox Alexa talks to this process over loopback.
		base := "http://" + ln.Addr().String()
		webDeps.SandboxAlexaLink = sb.alexaLink(cfg, base)
		webDeps.SandboxAlexaSay = sb.alexaSay(base)
	}
	handler, err := web.NewServer(webDeps)
	if err != nil {
		return err
	}
	// The App Home follows every change the scheduler makes, and hears of broken connections.
	sched.SetHooks(handler.RefreshHome, handler.NotifyBroken)

	// Maintenance. A `keys rotate` run elsewhere adds a key to the keyset file; the service
	// notices within seconds (a stat of the file) and re-encrypts (in bolt mode the rotating
	// command cannot open the store while the service holds it).
	rot := &rotationWatch{v: v, st: st, log: log}
	rot.run(ctx)
	jobs := cron.New()
	jobs.AddFunc("@every 10s", func() { rot.run(ctx) })
	jobs.Start()
	defer func() { <-jobs.Stop().Done() }()

	schedCtx, stopSched := context.WithCancel(ctx)
	schedDone := make(chan error, 1)
	go func() { schedDone <- sched.Run(schedCtx) }()
	defer func() { stopSched(); <-schedDone }()

	srv := newHTTPServer(ctx, handler, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	mode := ""
	if cfg.Sandbox {
		mode = " (sandbox: providers are local fakes)"
	}
	fmt.Fprintf(stdout, "dontinterrupt listening on http://%s%s\n", ln.Addr(), mode)
	log.Info("serving", "config", cfg, "listen", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// newHTTPServer is the service's HTTP server. Every phase of a request has a deadline, so a
// client that sends its headers or body slowly (slowloris), or never reads the answer, cannot
// hold a connection for long.
func newHTTPServer(ctx context.Context, handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
}

// rotationWatch re-encrypts credentials when the keyset's primary key changes (or when a
// previous pass did not finish), so the store is not read whole every minute for nothing.
type rotationWatch struct {
	v   *vault.Vault
	st  store.Store
	log *slog.Logger

	mu   sync.Mutex
	done uint32 // the primary key the last complete pass re-encrypted under
}

func (r *rotationWatch) run(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.v.Reload(); err != nil {
		r.log.Error("reload keyset", "err", err)
		return
	}
	primary := r.v.Primary()
	if primary == r.done {
		return
	}
	res, err := r.v.Reencrypt(credentialStore{ctx, r.st}, isConflict)
	if err != nil {
		r.log.Error("re-encrypt credentials", "err", err)
		return
	}
	if res.Reencrypted > 0 || res.Conflicts > 0 {
		r.log.Info("re-encrypted credentials under the primary key", "count", res.Reencrypted, "changed_meanwhile", res.Conflicts, "primary", fmt.Sprintf("%08x", primary))
	}
	if res.Conflicts > 0 {
		return // those changed meanwhile are looked at again on the next pass
	}
	if r.done != 0 {
		// A rotation while serving is over (the first pass, at start-up, says nothing).
		r.log.Info("every credential is under the primary key", "total", res.Total, "primary", fmt.Sprintf("%08x", primary))
	}
	r.done = primary
}

// rateSchedule is where writes are booked against the rate limits: in Redis when the store is
// (every replica shares one schedule), else in this process.
func rateSchedule(st store.Store) ratelimit.Schedule {
	if rs, ok := st.(*redisstore.Store); ok {
		return ratelimit.NewRedis(rs.Client(), rs.Prefix())
	}
	return ratelimit.NewMemory()
}

// leadOption maps DI_WRITE_LEAD to the scheduler's option, where 0 means the default.
func leadOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
