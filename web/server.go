// Package web is dontinterrupt's HTTP side: the pages people use, the OAuth callbacks, the
// webhooks providers call, and the health endpoints. NewServer returns one http.Handler with
// every route (routes.go) behind the common middleware.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SandboxEvents adds an event to the fake calendar of a Google account (sandbox only).
type SandboxEvents func(ctx context.Context, googleSubject string, start time.Time, d time.Duration, kind string) error

// Deps are what the server needs. Logger, Store, Vault and Clock are required; a nil provider
// client means that provider is not configured.
type Deps struct {
	Logger *slog.Logger
	Store  store.Store
	Vault  *vault.Vault
	Clock  clock.Clock
	// Secure marks cookies Secure (the public URL is https).
	Secure  bool
	Sandbox bool
	Horizon time.Duration

	Google    GoogleClient
	Slack     SlackClient
	Microsoft MicrosoftClient
	Zoom      ZoomClient
	// SlackBot and SlackSigningSecret enable the App Home (events and interactivity).
	SlackBot           SlackBot
	SlackSigningSecret string
	// PublicURL is the service's public base URL (links in Slack messages).
	PublicURL string
	// OAuthClient, when set, turns on our OAuth 2.0 server for Alexa account linking; Alexa
	// verifies skill requests (both are needed for POST /alexa).
	OAuthClient *OAuthClient
	Alexa       AlexaVerifier
	// Wake marks a person due now in the scheduler.
	Wake func(ctx context.Context, userID string) error
	// Metrics, when set, are served at GET /metrics and count push notifications (nil: none).
	Metrics *metrics.Metrics

	// SandboxEvents and SandboxSlackURL exist only in sandbox mode.
	SandboxEvents   SandboxEvents
	SandboxSlackURL string
	// SandboxOutlook adds an event to a fake Outlook calendar (by object ID); SandboxLinks are
	// the fakes' own pages (the Slack status page, Zoom's "start a call" buttons…), by title.
	SandboxOutlook SandboxEvents
	SandboxLinks   map[string]string
	// SandboxAlexaLink links the sandbox Alexa to the signed-in person (it plays the browser
	// with their session cookie); SandboxAlexaSay "says" a phrase and returns Alexa's answer.
	SandboxAlexaLink func(ctx context.Context, sessionCookie *http.Cookie) error
	SandboxAlexaSay  func(ctx context.Context, text string) (string, error)
}

// Server is the HTTP handler of the service.
type Server struct {
	log     *slog.Logger
	st      store.Store
	vault   *vault.Vault
	clock   clock.Clock
	secure  bool
	sandbox bool
	horizon time.Duration
	google  GoogleClient
	slack   SlackClient

	zoom ZoomClient

	slackBot           SlackBot
	slackSigningSecret string
	publicURL          string
	homes              homeCache
	oauth              *oauthServer
	alexa              AlexaVerifier

	signIn   map[string]oauthFlow // by sign-in provider
	connect  map[string]oauthFlow // by connection provider
	revokers map[string]revoker   // by connection provider
	wakeFn   func(ctx context.Context, userID string) error
	metrics  *metrics.Metrics

	sandboxEvents   SandboxEvents
	sandboxSlackURL string
	sandboxOutlook  SandboxEvents
	sandboxLinks    []providerLink
	alexaLink       func(ctx context.Context, sessionCookie *http.Cookie) error
	alexaSay        func(ctx context.Context, text string) (string, error)

	pages   map[string]*template.Template
	mux     *http.ServeMux
	handler http.Handler
}

// NewServer builds the handler, or says which dependency is missing.
func NewServer(d Deps) (*Server, error) {
	switch {
	case d.Logger == nil:
		return nil, errors.New("web: NewServer needs a logger")
	case d.Store == nil:
		return nil, errors.New("web: NewServer needs a store")
	case d.Vault == nil:
		return nil, errors.New("web: NewServer needs a vault")
	case d.Clock == nil:
		return nil, errors.New("web: NewServer needs a clock")
	}
	if d.Horizon <= 0 {
		d.Horizon = 36 * time.Hour
	}
	s := &Server{
		log: d.Logger, st: d.Store, vault: d.Vault, clock: d.Clock,
		secure: d.Secure, sandbox: d.Sandbox, horizon: d.Horizon,
		google: d.Google, slack: d.Slack, wakeFn: d.Wake, metrics: d.Metrics,
		sandboxEvents: d.SandboxEvents, sandboxSlackURL: d.SandboxSlackURL, sandboxOutlook: d.SandboxOutlook,
		alexaLink: d.SandboxAlexaLink, alexaSay: d.SandboxAlexaSay,
		mux: http.NewServeMux(),
	}
	// Interface values holding nil pointers count as "not configured".
	if isNilInterface(s.google) {
		s.google = nil
	}
	if isNilInterface(s.slack) {
		s.slack = nil
	}
	ms := d.Microsoft
	if isNilInterface(ms) {
		ms = nil
	}
	s.buildFlows(ms)
	for _, t := range slices.Sorted(maps.Keys(d.SandboxLinks)) {
		s.sandboxLinks = append(s.sandboxLinks, providerLink{Name: d.SandboxLinks[t], Title: t, Enabled: true})
	}
	if !isNilInterface(d.SlackBot) {
		s.slackBot, s.slackSigningSecret = d.SlackBot, d.SlackSigningSecret
	}
	s.publicURL = strings.TrimRight(d.PublicURL, "/")
	if !isNilInterface(d.Zoom) {
		s.zoom = d.Zoom
		s.zoomFlows(d.Zoom)
	}
	if !isNilInterface(d.Alexa) {
		s.alexa = d.Alexa
	}
	if d.OAuthClient != nil {
		o, err := newOAuthServer(context.Background(), d.Store, d.Vault, *d.OAuthClient)
		if err != nil {
			return nil, err
		}
		s.oauth = o
	}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusForbidden, "This form came from another site",
			"We only accept forms sent from this site's own pages, so nothing was changed. If you pressed a button here, reload the page and try again.")
	}))
	s.handler = s.requestIDs(s.recoverPanics(s.securityHeaders(s.limitBodies(csrf.Handler(s.mux)))))
	return s, nil
}

// parseTemplates parses every page with the layout, once, at start-up.
func (s *Server) parseTemplates() error {
	s.pages = map[string]*template.Template{}
	for _, name := range []string{"landing", "dashboard", "error", "settings", "link", "preview", "activity", "data", "deleted"} {
		t, err := template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return errors.Join(errors.New("web: parse templates"), err)
		}
		s.pages[name] = t
	}
	return nil
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) wake(ctx context.Context, userID string) {
	if s.wakeFn == nil {
		return
	}
	if err := s.wakeFn(ctx, userID); err != nil {
		s.logger(ctx).Error("wake scheduler", "user", userID, "err", err)
	}
}

// page is what every page template gets.
type page struct {
	Title    string
	Sandbox  bool
	SignedIn bool
	// Current names the page in the navigation ("dashboard", "settings", "preview",
	// "activity", "data"), marked aria-current.
	Current string
	Message string
	Data    any
}

// render executes a page into a buffer first, so a template error is a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.logger(r.Context()).Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage answers an error page that says what went wrong and how to start again.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	s.render(w, r, status, "error", struct {
		page
	}{page{Title: title, Message: msg, Sandbox: s.sandbox}})
}

// serverError logs the error and answers a 500 without its details.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.logger(r.Context()).Error("request failed", "method", r.Method, "route", r.Pattern, "err", err)
	s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "An internal error stopped this request; nothing you did caused it. Please try again in a moment.")
}

// providerError answers a 502 when a provider could not be reached.
func (s *Server) providerError(w http.ResponseWriter, r *http.Request, name string, err error) {
	s.logger(r.Context()).Warn("provider unavailable", "provider", name, "err", err)
	s.errorPage(w, r, http.StatusBadGateway, name+" is not answering", name+" could not be reached just now. Please try again in a moment.")
}

// handleHealthz answers liveness: the process serves requests.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// handleReadyz answers readiness: the store is reachable.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.st.Ping(ctx); err != nil {
		s.logger(r.Context()).Warn("readiness: store unreachable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("store unreachable\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		if s.secure {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// maxBody is the largest request body any route accepts.
const maxBody = 64 << 10

// limitBodies caps every request body. A body of unknown length (chunked) is read here, up to
// the cap, so that one over it is a 413 whichever handler it was meant for, rather than a
// read error each handler would have to tell apart.
func (s *Server) limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if r.ContentLength < 0 {
			body, ok := readBody(w, r)
			if !ok {
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		next.ServeHTTP(w, r)
	})
}

// readBody reads a request body (capped by limitBodies); on failure it has answered 413 or
// 400 and returns ok=false.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "could not read the request body", http.StatusBadRequest)
		}
		return nil, false
	}
	return body, true
}

// recoverPanics turns a panic in a handler into a 500 and a log line, not a dead connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger(r.Context()).Error("panic serving request", "method", r.Method, "route", r.Pattern, "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
