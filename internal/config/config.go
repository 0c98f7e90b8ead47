// Package config loads dontinterrupt's configuration from environment variables (design.md
// section 3), with defaults, validation that names the variable at fault, and secrets that stay
// masked whenever the configuration is printed or logged.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/ratelimit"
)

// Secret is a configuration value that must never be printed: String, Format, LogValue and
// MarshalText all mask it. Reveal returns the value.
type Secret string

const masked = "********"

// Reveal returns the secret in clear, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s != "" }

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return masked
}

// GoString masks the secret for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText masks the secret in JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// StoreKind is the kind of store.
type StoreKind string

const (
	StoreBolt  StoreKind = "bolt"
	StoreRedis StoreKind = "redis"
)

// Store says where data lives.
type Store struct {
	Kind StoreKind
	// Path is the bbolt file (bolt).
	Path string
	// RedisURL is the redis:// or rediss:// URL (redis); it may hold a password, so it is a
	// Secret.
	RedisURL Secret
}

// Google configures Google sign-in and Calendar.
type Google struct {
	ClientID     string
	ClientSecret Secret
	IssuerURL    string
	APIURL       string
	// PushTTL is the lifetime asked for each Calendar push channel (Google may grant less).
	PushTTL time.Duration
}

// Microsoft configures Microsoft sign-in, Outlook and Teams.
type Microsoft struct {
	ClientID     string
	ClientSecret Secret
	Tenant       string
	AuthorityURL string
	GraphURL     string
}

// Slack configures the Slack app.
type Slack struct {
	ClientID      string
	ClientSecret  Secret
	SigningSecret Secret
	BaseURL       string
}

// Zoom configures the Zoom app.
type Zoom struct {
	ClientID           string
	ClientSecret       Secret
	WebhookSecretToken Secret
	OAuthURL           string
	APIURL             string
}

// Alexa configures the Alexa skill and its account linking.
type Alexa struct {
	SkillID      string
	ClientID     string
	ClientSecret Secret
	RedirectURIs []string
}

// Scheduler tunes the scheduler.
type Scheduler struct {
	// ResyncInterval is the safety-net resync of every source (push does the rest).
	ResyncInterval time.Duration
	// Workers is how many people are reconciled at once.
	Workers int
	// Lease is how long a claim on a due person lasts before another worker may take it.
	Lease time.Duration
	// Horizon is how far ahead the planner plans.
	Horizon time.Duration
	// WriteLead is how far before a boundary a write may be sent when the rate limits cannot
	// take every write of a burst at the boundary itself.
	WriteLead time.Duration
	// RateLimits are the limits the scheduler books writes against, by name (DefaultRateLimits
	// with DI_RATE_LIMITS on top).
	RateLimits map[string]ratelimit.Rate
}

// DefaultRateLimits are the limits writes are scheduled against, a tenth under what api-notes.md
// gives for each (a sliding window is met with jitter to spare):
//   - slack.users.profile.set: per workspace, Tier 3 (50/min);
//   - slack.users.profile.get, slack.dnd.info: per workspace, Tier 4 (100/min) and Tier 3
//     (50/min), the reads before a status or snooze write;
//   - slack.profile.user: per person's token, Slack's 10 profile updates a minute;
//   - slack.dnd.setSnooze, slack.dnd.endSnooze, slack.users.setPresence: per workspace, Tier 2 (20/min);
//   - teams.presence: per tenant, Graph's 1,500 presence requests per 30 s;
//   - self: this deployment's own pace, people whose targets change at one boundary per
//     second, so that a crowd at 10:00 is worked through in the seconds before it.
func DefaultRateLimits() map[string]ratelimit.Rate {
	return map[string]ratelimit.Rate{
		"slack.users.profile.set": {N: 45, Per: time.Minute},
		"slack.users.profile.get": {N: 90, Per: time.Minute},
		"slack.dnd.info":          {N: 45, Per: time.Minute},
		"slack.profile.user":      {N: 9, Per: time.Minute},
		"slack.dnd.setSnooze":     {N: 18, Per: time.Minute},
		"slack.dnd.endSnooze":     {N: 18, Per: time.Minute},
		"slack.users.setPresence": {N: 18, Per: time.Minute},
		"teams.presence":          {N: 1350, Per: 30 * time.Second},
		"self":                    {N: 200, Per: time.Second},
	}
}

// Sandbox mode values.
const (
	SandboxAuto = "auto"
	SandboxOn   = "on"
	SandboxOff  = "off"
)

// Config is the whole configuration.
type Config struct {
	Addr      string
	PublicURL *url.URL
	Store     Store
	// KeysetFile is the encryption keyset; KeysetFileSet reports whether DI_KEYSET_FILE was
	// given (Redis mode requires it).
	KeysetFile    string
	KeysetFileSet bool
	// SandboxSetting is DI_SANDBOX as given; Sandbox is the decision (see Load).
	SandboxSetting  string
	Sandbox         bool
	LogLevel        slog.Level
	LogFormat       string
	ShutdownTimeout time.Duration
	// Push says whether to ask providers for push notifications (see DI_PUSH).
	Push bool

	Google    Google
	Microsoft Microsoft
	Slack     Slack
	Zoom      Zoom
	Alexa     Alexa
	Scheduler Scheduler
}

// Var documents one environment variable.
type Var struct {
	Name    string
	Default string
	Secret  bool
	Help    string
}

// Vars lists every variable Load reads, in the order the README documents them.
var Vars = []Var{
	{"DI_ADDR", "127.0.0.1:8080", false, "listen address (host:port; port 0 picks a free port)"},
	{"DI_PUBLIC_URL", "http://localhost:8080", false, "public base URL: OAuth redirect URIs and webhook URLs derive from it"},
	{"DI_STORE", "bolt:data/dontinterrupt.db", false, "bolt:PATH (embedded, one process) or redis://… / rediss://… (any number of replicas)"},
	{"DI_KEYSET_FILE", "data/keyset.json (bolt); required with Redis", false, "encryption keyset; created with mode 0600 on first run in bolt mode only"},
	{"DI_SANDBOX", "auto", false, "auto: sandbox providers when no provider credentials are set; on; off"},
	{"DI_LOG_LEVEL", "info", false, "debug, info, warn or error"},
	{"DI_LOG_FORMAT", "text", false, "text or json"},
	{"DI_SHUTDOWN_TIMEOUT", "10s", false, "how long a graceful shutdown waits for requests and workers"},
	{"DI_RESYNC_INTERVAL", "15m", false, "safety-net resync of every source (push notifications do the rest)"},
	{"DI_WORKERS", "8", false, "people reconciled at once"},
	{"DI_PUSH", "auto", false, "push notifications from providers: auto (when DI_PUBLIC_URL is https, or in the sandbox), on, off"},
	{"DI_LEASE", "30s", false, "how long a worker's claim on a person lasts before another may take it"},
	{"DI_HORIZON", "36h", false, "how far ahead the planner plans"},
	{"DI_WRITE_LEAD", "60s", false, "how far before a boundary writes may go when a burst is more than the rate limits take at once (0 turns leading off)"},
	{"DI_RATE_LIMITS", "", false, "NAME=N/DURATION,… on top of the defaults (see README: slack.users.profile.set=45/1m, self=200/1s, …)"},
	{"GOOGLE_CLIENT_ID", "", false, "enables Google sign-in and Calendar (with GOOGLE_CLIENT_SECRET)"},
	{"GOOGLE_CLIENT_SECRET", "", true, ""},
	{"GOOGLE_ISSUER_URL", "https://accounts.google.com", false, "OIDC issuer (discovery gives authorize, token and JWKS)"},
	{"GOOGLE_API_URL", "https://www.googleapis.com/", false, "Google API base"},
	{"GOOGLE_PUSH_TTL", "168h", false, "lifetime asked for each Calendar push channel (Google may grant less; a new channel replaces it before it ends)"},
	{"MICROSOFT_CLIENT_ID", "", false, "enables Microsoft sign-in, Outlook and Teams (with MICROSOFT_CLIENT_SECRET)"},
	{"MICROSOFT_CLIENT_SECRET", "", true, ""},
	{"MICROSOFT_TENANT", "common", false, "tenant ID or domain to pin; common allows any work or school account"},
	{"MICROSOFT_AUTHORITY_URL", "https://login.microsoftonline.com", false, "identity platform (national clouds, tests)"},
	{"MICROSOFT_GRAPH_URL", "https://graph.microsoft.com/v1.0", false, "Graph base"},
	{"SLACK_CLIENT_ID", "", false, "enables Slack (with SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET)"},
	{"SLACK_CLIENT_SECRET", "", true, ""},
	{"SLACK_SIGNING_SECRET", "", true, "verifies Events API and interactivity requests"},
	{"SLACK_BASE_URL", "https://slack.com", false, "Web API at /api/, OAuth at /oauth/v2/authorize, OIDC issuer"},
	{"ZOOM_CLIENT_ID", "", false, "enables Zoom (with ZOOM_CLIENT_SECRET and ZOOM_WEBHOOK_SECRET_TOKEN)"},
	{"ZOOM_CLIENT_SECRET", "", true, ""},
	{"ZOOM_WEBHOOK_SECRET_TOKEN", "", true, "verifies Zoom webhooks"},
	{"ZOOM_OAUTH_URL", "https://zoom.us", false, "Zoom OAuth base"},
	{"ZOOM_API_URL", "https://api.zoom.us/v2", false, "Zoom REST base"},
	{"ALEXA_SKILL_ID", "", false, "enables the Alexa skill (requests for other skill IDs are refused)"},
	{"ALEXA_CLIENT_ID", "", false, "account linking: the client ID the Alexa console is given"},
	{"ALEXA_CLIENT_SECRET", "", true, "account linking: the client secret the Alexa console is given"},
	{"ALEXA_REDIRECT_URIS", "", false, "account linking: comma-separated redirect URIs Amazon may use"},
}

// Error is a problem with one variable.
type Error struct {
	Var string
	Msg string
}

func (e *Error) Error() string { return e.Var + ": " + e.Msg }

// Errors are all the problems Load found; it unwraps to each *Error.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual errors.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// IsConfigError reports whether err came from Load (a start-up configuration error).
func IsConfigError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

type loader struct {
	getenv func(string) string
	errs   Errors
}

func (l *loader) fail(name, format string, args ...any) {
	l.errs = append(l.errs, &Error{Var: name, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

func (l *loader) secret(name string) Secret { return Secret(strings.TrimSpace(l.getenv(name))) }

func (l *loader) duration(name string, def time.Duration, min time.Duration) time.Duration {
	v := l.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		l.fail(name, "%q is not a duration; write it like 90s, 15m or 1h30m", v)
		return def
	}
	if d < min {
		l.fail(name, "%s is too short; the minimum is %s", d, min)
		return def
	}
	return d
}

func (l *loader) baseURL(name, def string) string {
	v := l.str(name, def)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.fail(name, "%q is not an absolute http(s) URL", v)
		return def
	}
	return strings.TrimRight(v, "/")
}

// Load reads the configuration through getenv (os.Getenv in production, a map in tests). It
// returns every problem at once, each naming its variable.
func Load(getenv func(string) string) (*Config, error) {
	l := &loader{getenv: getenv}
	c := &Config{}

	c.Addr = l.str("DI_ADDR", "127.0.0.1:8080")
	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		l.fail("DI_ADDR", "%q is not host:port (%v); for example 127.0.0.1:8080 or :8080", c.Addr, unwrapAddrErr(err))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		l.fail("DI_ADDR", "port %q in %q is not a number from 0 to 65535", port, c.Addr)
	} else if host != "" && net.ParseIP(strings.Trim(host, "[]")) == nil && !validHostname(host) {
		l.fail("DI_ADDR", "host %q in %q is not an IP address or host name", host, c.Addr)
	}

	pub := l.str("DI_PUBLIC_URL", "http://localhost:8080")
	if u, err := url.Parse(pub); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.fail("DI_PUBLIC_URL", "%q is not an absolute http(s) URL like https://dontinterrupt.example.com", pub)
	} else if u.RawQuery != "" || u.Fragment != "" {
		l.fail("DI_PUBLIC_URL", "%q must not have a query or fragment", pub)
	} else {
		u.Path = strings.TrimRight(u.Path, "/")
		c.PublicURL = u
	}

	storeVal := l.str("DI_STORE", "bolt:data/dontinterrupt.db")
	switch {
	case strings.HasPrefix(storeVal, "bolt:"):
		c.Store = Store{Kind: StoreBolt, Path: strings.TrimPrefix(storeVal, "bolt:")}
		if c.Store.Path == "" {
			l.fail("DI_STORE", "bolt: needs a file path, like bolt:data/dontinterrupt.db")
		}
	case strings.HasPrefix(storeVal, "redis://"), strings.HasPrefix(storeVal, "rediss://"):
		if u, err := url.Parse(storeVal); err != nil || u.Host == "" {
			l.fail("DI_STORE", "not a valid Redis URL; use redis://[:password@]host:port/db")
		} else {
			c.Store = Store{Kind: StoreRedis, RedisURL: Secret(storeVal)}
		}
	default:
		scheme, _, ok := strings.Cut(storeVal, ":")
		if !ok {
			scheme = storeVal
		}
		l.fail("DI_STORE", "unknown scheme %q; use bolt:PATH or redis://…", scheme)
	}

	c.KeysetFile = l.str("DI_KEYSET_FILE", "")
	c.KeysetFileSet = c.KeysetFile != ""
	if !c.KeysetFileSet {
		c.KeysetFile = "data/keyset.json"
		if c.Store.Kind == StoreRedis {
			l.fail("DI_KEYSET_FILE", "required with a Redis store (every replica needs the same keys); create one with `dontinterrupt keys generate -o keyset.json` and set DI_KEYSET_FILE to its path")
		}
	}

	c.LogFormat = l.str("DI_LOG_FORMAT", "text")
	if c.LogFormat != "text" && c.LogFormat != "json" {
		l.fail("DI_LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	lvl := l.str("DI_LOG_LEVEL", "info")
	if err := c.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
		l.fail("DI_LOG_LEVEL", "%q is not debug, info, warn or error", lvl)
	}
	c.ShutdownTimeout = l.duration("DI_SHUTDOWN_TIMEOUT", 10*time.Second, 0)

	c.Scheduler.ResyncInterval = l.duration("DI_RESYNC_INTERVAL", 15*time.Minute, time.Minute)
	c.Scheduler.Lease = l.duration("DI_LEASE", 30*time.Second, time.Second)
	c.Scheduler.Horizon = l.duration("DI_HORIZON", 36*time.Hour, time.Hour)
	c.Scheduler.WriteLead = l.duration("DI_WRITE_LEAD", time.Minute, 0)
	if c.Scheduler.WriteLead > 15*time.Minute {
		l.fail("DI_WRITE_LEAD", "%s is more than 15m; a status that early would mislead people", c.Scheduler.WriteLead)
	}
	c.Scheduler.RateLimits = DefaultRateLimits()
	if v := l.str("DI_RATE_LIMITS", ""); v != "" {
		over, err := ratelimit.ParseRates(v)
		if err != nil {
			l.fail("DI_RATE_LIMITS", "%v; write NAME=N/DURATION,… like slack.users.profile.set=45/1m", err)
		}
		defaults := DefaultRateLimits()
		for name, r := range over {
			if _, ok := defaults[name]; !ok {
				l.fail("DI_RATE_LIMITS", "unknown limit %q; known: %s", name, strings.Join(slices.Sorted(maps.Keys(defaults)), ", "))
				continue
			}
			c.Scheduler.RateLimits[name] = r
		}
	}
	c.Scheduler.Workers = 8
	if v := l.str("DI_WORKERS", ""); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1024 {
			l.fail("DI_WORKERS", "%q is not a number from 1 to 1024", v)
		} else {
			c.Scheduler.Workers = n
		}
	}

	c.Google = Google{
		ClientID:     l.str("GOOGLE_CLIENT_ID", ""),
		ClientSecret: l.secret("GOOGLE_CLIENT_SECRET"),
		IssuerURL:    l.baseURL("GOOGLE_ISSUER_URL", "https://accounts.google.com"),
		APIURL:       l.baseURL("GOOGLE_API_URL", "https://www.googleapis.com/") + "/",
		PushTTL:      l.duration("GOOGLE_PUSH_TTL", 7*24*time.Hour, 10*time.Minute),
	}
	c.Microsoft = Microsoft{
		ClientID:     l.str("MICROSOFT_CLIENT_ID", ""),
		ClientSecret: l.secret("MICROSOFT_CLIENT_SECRET"),
		Tenant:       l.str("MICROSOFT_TENANT", "common"),
		AuthorityURL: l.baseURL("MICROSOFT_AUTHORITY_URL", "https://login.microsoftonline.com"),
		GraphURL:     l.baseURL("MICROSOFT_GRAPH_URL", "https://graph.microsoft.com/v1.0"),
	}
	if strings.ContainsAny(c.Microsoft.Tenant, "/?# ") {
		l.fail("MICROSOFT_TENANT", "%q is not a tenant ID or domain", c.Microsoft.Tenant)
	}
	c.Slack = Slack{
		ClientID:      l.str("SLACK_CLIENT_ID", ""),
		ClientSecret:  l.secret("SLACK_CLIENT_SECRET"),
		SigningSecret: l.secret("SLACK_SIGNING_SECRET"),
		BaseURL:       l.baseURL("SLACK_BASE_URL", "https://slack.com"),
	}
	c.Zoom = Zoom{
		ClientID:           l.str("ZOOM_CLIENT_ID", ""),
		ClientSecret:       l.secret("ZOOM_CLIENT_SECRET"),
		WebhookSecretToken: l.secret("ZOOM_WEBHOOK_SECRET_TOKEN"),
		OAuthURL:           l.baseURL("ZOOM_OAUTH_URL", "https://zoom.us"),
		APIURL:             l.baseURL("ZOOM_API_URL", "https://api.zoom.us/v2"),
	}
	c.Alexa = Alexa{
		SkillID:      l.str("ALEXA_SKILL_ID", ""),
		ClientID:     l.str("ALEXA_CLIENT_ID", ""),
		ClientSecret: l.secret("ALEXA_CLIENT_SECRET"),
	}
	if v := l.str("ALEXA_REDIRECT_URIS", ""); v != "" {
		for _, r := range strings.Split(v, ",") {
			r = strings.TrimSpace(r)
			if u, err := url.Parse(r); err != nil || u.Scheme != "https" || u.Host == "" {
				l.fail("ALEXA_REDIRECT_URIS", "%q is not an absolute https URL", r)
				continue
			}
			c.Alexa.RedirectURIs = append(c.Alexa.RedirectURIs, r)
		}
	}

	c.SandboxSetting = l.str("DI_SANDBOX", SandboxAuto)
	switch c.SandboxSetting {
	case SandboxAuto:
		c.Sandbox = !c.anyProviderCredentials()
	case SandboxOn:
		c.Sandbox = true
	case SandboxOff:
		c.Sandbox = false
	default:
		l.fail("DI_SANDBOX", "%q is not auto, on or off", c.SandboxSetting)
	}
	if !c.Sandbox {
		l.pairs(c)
	}
	switch v := l.str("DI_PUSH", "auto"); v {
	case "auto":
		c.Push = c.Sandbox || (c.PublicURL != nil && c.PublicURL.Scheme == "https")
	case "on":
		c.Push = true
	case "off":
		c.Push = false
	default:
		l.fail("DI_PUSH", "%q is not auto, on or off", v)
	}

	if len(l.errs) > 0 {
		return nil, l.errs
	}
	return c, nil
}

// pairs checks that a provider is configured whole or not at all (outside the sandbox, where
// the missing parts are generated).
func (l *loader) pairs(c *Config) {
	need := func(idVar, id string, others ...any) {
		set := id != ""
		for i := 0; i < len(others); i += 2 {
			if others[i+1].(bool) {
				set = true
			}
		}
		if !set {
			return
		}
		if id == "" {
			l.fail(idVar, "required when the other %s settings are set", strings.SplitN(idVar, "_", 2)[0])
		}
		for i := 0; i < len(others); i += 2 {
			if !others[i+1].(bool) {
				l.fail(others[i].(string), "required when %s is set", idVar)
			}
		}
	}
	need("GOOGLE_CLIENT_ID", c.Google.ClientID, "GOOGLE_CLIENT_SECRET", c.Google.ClientSecret.IsSet())
	need("MICROSOFT_CLIENT_ID", c.Microsoft.ClientID, "MICROSOFT_CLIENT_SECRET", c.Microsoft.ClientSecret.IsSet())
	need("SLACK_CLIENT_ID", c.Slack.ClientID, "SLACK_CLIENT_SECRET", c.Slack.ClientSecret.IsSet(), "SLACK_SIGNING_SECRET", c.Slack.SigningSecret.IsSet())
	need("ZOOM_CLIENT_ID", c.Zoom.ClientID, "ZOOM_CLIENT_SECRET", c.Zoom.ClientSecret.IsSet(), "ZOOM_WEBHOOK_SECRET_TOKEN", c.Zoom.WebhookSecretToken.IsSet())
	if c.Alexa.SkillID != "" || c.Alexa.ClientID != "" || c.Alexa.ClientSecret.IsSet() || len(c.Alexa.RedirectURIs) > 0 {
		for _, v := range []struct {
			name string
			ok   bool
		}{
			{"ALEXA_SKILL_ID", c.Alexa.SkillID != ""},
			{"ALEXA_CLIENT_ID", c.Alexa.ClientID != ""},
			{"ALEXA_CLIENT_SECRET", c.Alexa.ClientSecret.IsSet()},
			{"ALEXA_REDIRECT_URIS", len(c.Alexa.RedirectURIs) > 0},
		} {
			if !v.ok {
				l.fail(v.name, "required when the other ALEXA_ settings are set")
			}
		}
	}
}

func (c *Config) anyProviderCredentials() bool {
	return c.Google.ClientID != "" || c.Google.ClientSecret.IsSet() ||
		c.Microsoft.ClientID != "" || c.Microsoft.ClientSecret.IsSet() ||
		c.Slack.ClientID != "" || c.Slack.ClientSecret.IsSet() ||
		c.Zoom.ClientID != "" || c.Zoom.ClientSecret.IsSet() ||
		c.Alexa.ClientID != "" || c.Alexa.ClientSecret.IsSet()
}

// GoogleEnabled reports whether Google is configured (always true in the sandbox).
func (c *Config) GoogleEnabled() bool {
	return c.Sandbox || (c.Google.ClientID != "" && c.Google.ClientSecret.IsSet())
}

// MicrosoftEnabled reports whether Microsoft is configured (always true in the sandbox).
func (c *Config) MicrosoftEnabled() bool {
	return c.Sandbox || (c.Microsoft.ClientID != "" && c.Microsoft.ClientSecret.IsSet())
}

// SlackEnabled reports whether Slack is configured (always true in the sandbox).
func (c *Config) SlackEnabled() bool {
	return c.Sandbox || (c.Slack.ClientID != "" && c.Slack.ClientSecret.IsSet())
}

// ZoomEnabled reports whether Zoom is configured (always true in the sandbox).
func (c *Config) ZoomEnabled() bool {
	return c.Sandbox || (c.Zoom.ClientID != "" && c.Zoom.ClientSecret.IsSet())
}

// AlexaEnabled reports whether the Alexa skill is configured.
func (c *Config) AlexaEnabled() bool { return c.Alexa.SkillID != "" }

// URL returns the public URL of a path ("/connect/slack/callback").
func (c *Config) URL(path string) string {
	u := *c.PublicURL
	u.Path = strings.TrimRight(u.Path, "/") + path
	return u.String()
}

// Print writes the configuration, one variable a line, secrets masked.
func (c *Config) Print(w io.Writer) {
	storeVal := "bolt:" + c.Store.Path
	if c.Store.Kind == StoreRedis {
		storeVal = maskURL(c.Store.RedisURL.Reveal())
	}
	rows := [][2]string{
		{"DI_ADDR", c.Addr},
		{"DI_PUBLIC_URL", c.PublicURL.String()},
		{"DI_STORE", storeVal},
		{"DI_KEYSET_FILE", c.KeysetFile},
		{"DI_SANDBOX", fmt.Sprintf("%s (sandbox %s)", c.SandboxSetting, onOff(c.Sandbox))},
		{"DI_LOG_LEVEL", strings.ToLower(c.LogLevel.String())},
		{"DI_LOG_FORMAT", c.LogFormat},
		{"DI_SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String()},
		{"DI_RESYNC_INTERVAL", c.Scheduler.ResyncInterval.String()},
		{"DI_WORKERS", strconv.Itoa(c.Scheduler.Workers)},
		{"DI_PUSH", onOff(c.Push)},
		{"DI_LEASE", c.Scheduler.Lease.String()},
		{"DI_HORIZON", c.Scheduler.Horizon.String()},
		{"DI_WRITE_LEAD", c.Scheduler.WriteLead.String()},
		{"DI_RATE_LIMITS", ratelimit.FormatRates(c.Scheduler.RateLimits)},
		{"GOOGLE_CLIENT_ID", c.Google.ClientID},
		{"GOOGLE_CLIENT_SECRET", c.Google.ClientSecret.String()},
		{"GOOGLE_ISSUER_URL", c.Google.IssuerURL},
		{"GOOGLE_API_URL", c.Google.APIURL},
		{"GOOGLE_PUSH_TTL", c.Google.PushTTL.String()},
		{"MICROSOFT_CLIENT_ID", c.Microsoft.ClientID},
		{"MICROSOFT_CLIENT_SECRET", c.Microsoft.ClientSecret.String()},
		{"MICROSOFT_TENANT", c.Microsoft.Tenant},
		{"MICROSOFT_AUTHORITY_URL", c.Microsoft.AuthorityURL},
		{"MICROSOFT_GRAPH_URL", c.Microsoft.GraphURL},
		{"SLACK_CLIENT_ID", c.Slack.ClientID},
		{"SLACK_CLIENT_SECRET", c.Slack.ClientSecret.String()},
		{"SLACK_SIGNING_SECRET", c.Slack.SigningSecret.String()},
		{"SLACK_BASE_URL", c.Slack.BaseURL},
		{"ZOOM_CLIENT_ID", c.Zoom.ClientID},
		{"ZOOM_CLIENT_SECRET", c.Zoom.ClientSecret.String()},
		{"ZOOM_WEBHOOK_SECRET_TOKEN", c.Zoom.WebhookSecretToken.String()},
		{"ZOOM_OAUTH_URL", c.Zoom.OAuthURL},
		{"ZOOM_API_URL", c.Zoom.APIURL},
		{"ALEXA_SKILL_ID", c.Alexa.SkillID},
		{"ALEXA_CLIENT_ID", c.Alexa.ClientID},
		{"ALEXA_CLIENT_SECRET", c.Alexa.ClientSecret.String()},
		{"ALEXA_REDIRECT_URIS", strings.Join(c.Alexa.RedirectURIs, ",")},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-26s %s\n", r[0], r[1])
	}
}

// LogValue summarises the configuration for the start-up log line, without secrets.
func (c *Config) LogValue() slog.Value {
	storeVal := "bolt:" + c.Store.Path
	if c.Store.Kind == StoreRedis {
		storeVal = maskURL(c.Store.RedisURL.Reveal())
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("public_url", c.PublicURL.String()),
		slog.String("store", storeVal),
		slog.Bool("sandbox", c.Sandbox),
		slog.Bool("google", c.GoogleEnabled()),
		slog.Bool("microsoft", c.MicrosoftEnabled()),
		slog.Bool("slack", c.SlackEnabled()),
		slog.Bool("zoom", c.ZoomEnabled()),
		slog.Bool("alexa", c.AlexaEnabled()),
	)
}

// maskURL hides the password of a URL.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return masked
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.Redacted()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func unwrapAddrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}
