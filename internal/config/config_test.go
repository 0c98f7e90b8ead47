package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.PublicURL.String() != "http://localhost:8080" {
		t.Errorf("addr/public = %q %q", c.Addr, c.PublicURL)
	}
	if c.Store.Kind != StoreBolt || c.Store.Path != "data/dontinterrupt.db" {
		t.Errorf("store = %+v", c.Store)
	}
	if c.KeysetFile != "data/keyset.json" || c.KeysetFileSet {
		t.Errorf("keyset = %q set=%v", c.KeysetFile, c.KeysetFileSet)
	}
	if !c.Sandbox || c.SandboxSetting != "auto" {
		t.Errorf("sandbox = %v %q, want auto → on with no credentials", c.Sandbox, c.SandboxSetting)
	}
	if c.LogLevel != slog.LevelInfo || c.LogFormat != "text" {
		t.Errorf("log = %v %q", c.LogLevel, c.LogFormat)
	}
	if c.Google.IssuerURL != "https://accounts.google.com" || c.Google.APIURL != "https://www.googleapis.com/" || c.Google.PushTTL != 7*24*time.Hour {
		t.Errorf("google = %+v", c.Google)
	}
	if c.Microsoft.Tenant != "common" || c.Microsoft.GraphURL != "https://graph.microsoft.com/v1.0" || c.Microsoft.AuthorityURL != "https://login.microsoftonline.com" {
		t.Errorf("microsoft = %+v", c.Microsoft)
	}
	if c.Slack.BaseURL != "https://slack.com" || c.Zoom.OAuthURL != "https://zoom.us" || c.Zoom.APIURL != "https://api.zoom.us/v2" {
		t.Errorf("slack/zoom = %+v %+v", c.Slack, c.Zoom)
	}
	if c.Scheduler.ResyncInterval != 15*time.Minute || c.Scheduler.Workers != 8 || c.ShutdownTimeout != 10*time.Second {
		t.Errorf("scheduler = %+v", c.Scheduler)
	}
	if got := c.URL("/connect/slack/callback"); got != "http://localhost:8080/connect/slack/callback" {
		t.Errorf("URL = %q", got)
	}
}

func TestEveryVarIsRead(t *testing.T) {
	for _, v := range Vars {
		seen := false
		Load(func(k string) string {
			if k == v.Name {
				seen = true
			}
			return ""
		})
		if !seen {
			t.Errorf("%s is documented in Vars but Load never reads it", v.Name)
		}
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"store mysql", map[string]string{"DI_STORE": "mysql://x"}, `DI_STORE: unknown scheme "mysql"; use bolt:PATH or redis://…`},
		{"store no scheme", map[string]string{"DI_STORE": "data.db"}, `DI_STORE: unknown scheme "data.db"`},
		{"store empty bolt path", map[string]string{"DI_STORE": "bolt:"}, "DI_STORE: bolt: needs a file path"},
		{"redis without keyset", map[string]string{"DI_STORE": "redis://127.0.0.1:6379/0"}, "DI_KEYSET_FILE: required with a Redis store"},
		{"addr no port", map[string]string{"DI_ADDR": "localhost"}, `DI_ADDR: "localhost" is not host:port`},
		{"addr bad port", map[string]string{"DI_ADDR": ":99999"}, `DI_ADDR: port "99999"`},
		{"addr bad host", map[string]string{"DI_ADDR": "bad host:80"}, `DI_ADDR: host "bad host"`},
		{"public url relative", map[string]string{"DI_PUBLIC_URL": "example.com"}, "DI_PUBLIC_URL: "},
		{"sandbox value", map[string]string{"DI_SANDBOX": "maybe"}, `DI_SANDBOX: "maybe" is not auto, on or off`},
		{"log level", map[string]string{"DI_LOG_LEVEL": "loud"}, `DI_LOG_LEVEL: "loud"`},
		{"log format", map[string]string{"DI_LOG_FORMAT": "xml"}, `DI_LOG_FORMAT: "xml"`},
		{"duration", map[string]string{"DI_RESYNC_INTERVAL": "often"}, `DI_RESYNC_INTERVAL: "often" is not a duration`},
		{"duration too short", map[string]string{"DI_RESYNC_INTERVAL": "1s"}, "DI_RESYNC_INTERVAL: 1s is too short"},
		{"workers", map[string]string{"DI_WORKERS": "0"}, "DI_WORKERS: "},
		{"issuer url", map[string]string{"GOOGLE_ISSUER_URL": "accounts.google.com"}, "GOOGLE_ISSUER_URL: "},
		{"push ttl", map[string]string{"GOOGLE_PUSH_TTL": "a week"}, `GOOGLE_PUSH_TTL: "a week" is not a duration`},
		{"push ttl too short", map[string]string{"GOOGLE_PUSH_TTL": "5m"}, "GOOGLE_PUSH_TTL: 5m0s is too short; the minimum is 10m0s"},
		{"half google", map[string]string{"GOOGLE_CLIENT_ID": "id"}, "GOOGLE_CLIENT_SECRET: required when GOOGLE_CLIENT_ID is set"},
		{"half slack", map[string]string{"SLACK_CLIENT_ID": "id", "SLACK_CLIENT_SECRET": "s"}, "SLACK_SIGNING_SECRET: required"},
		{"alexa redirect http", map[string]string{"ALEXA_REDIRECT_URIS": "http://x"}, "ALEXA_REDIRECT_URIS: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load(%v) succeeded, want an error", tc.env)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tc.want)
			}
			if !IsConfigError(err) {
				t.Fatalf("IsConfigError(%v) = false", err)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{"DI_ADDR": "x", "DI_STORE": "mysql:x", "DI_LOG_FORMAT": "xml"}))
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("err = %v, want 3 problems", err)
	}
}

func TestRedisStore(t *testing.T) {
	c, err := Load(env(map[string]string{"DI_STORE": "redis://:hunter2@127.0.0.1:6379/3", "DI_KEYSET_FILE": "/etc/di/keyset.json"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Kind != StoreRedis || c.Store.RedisURL.Reveal() != "redis://:hunter2@127.0.0.1:6379/3" || c.KeysetFile != "/etc/di/keyset.json" {
		t.Fatalf("store = %+v keyset=%q", c.Store, c.KeysetFile)
	}
}

func TestSandboxDecision(t *testing.T) {
	full := map[string]string{"SLACK_CLIENT_ID": "id", "SLACK_CLIENT_SECRET": "sec", "SLACK_SIGNING_SECRET": "sig"}
	c, err := Load(env(full))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sandbox || !c.SlackEnabled() || c.GoogleEnabled() {
		t.Fatalf("with Slack credentials: sandbox=%v slack=%v google=%v", c.Sandbox, c.SlackEnabled(), c.GoogleEnabled())
	}
	full["DI_SANDBOX"] = "on"
	if c, err = Load(env(full)); err != nil || !c.Sandbox {
		t.Fatalf("DI_SANDBOX=on: %v %v", c, err)
	}
	// In the sandbox a half-configured provider is fine: the missing parts are generated.
	if c, err = Load(env(map[string]string{"DI_SANDBOX": "on", "SLACK_SIGNING_SECRET": "sig"})); err != nil || !c.Sandbox {
		t.Fatalf("sandbox with one secret: %v", err)
	}
	if c, err = Load(env(map[string]string{"DI_SANDBOX": "off"})); err != nil || c.Sandbox || c.SlackEnabled() {
		t.Fatalf("DI_SANDBOX=off without credentials: %v sandbox=%v", err, c.Sandbox)
	}
}

// Secrets never appear when the configuration is printed, logged, formatted or encoded.
func TestSecretsMasked(t *testing.T) {
	secrets := map[string]string{
		"GOOGLE_CLIENT_ID": "gid", "GOOGLE_CLIENT_SECRET": "google-secret-1",
		"MICROSOFT_CLIENT_ID": "mid", "MICROSOFT_CLIENT_SECRET": "ms-secret-2",
		"SLACK_CLIENT_ID": "sid", "SLACK_CLIENT_SECRET": "slack-secret-3", "SLACK_SIGNING_SECRET": "slack-signing-4",
		"ZOOM_CLIENT_ID": "zid", "ZOOM_CLIENT_SECRET": "zoom-secret-5", "ZOOM_WEBHOOK_SECRET_TOKEN": "zoom-webhook-6",
		"ALEXA_SKILL_ID": "amzn1.ask.skill.x", "ALEXA_CLIENT_ID": "aid", "ALEXA_CLIENT_SECRET": "alexa-secret-7",
		"ALEXA_REDIRECT_URIS": "https://pitangui.amazon.com/api/skill/link/X",
		"DI_STORE":            "redis://:redis-password-8@127.0.0.1:6379/0", "DI_KEYSET_FILE": "k.json",
	}
	c, err := Load(env(secrets))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Print(&out)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("config", "config", c, "secret", c.Slack.SigningSecret)
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "config", c, "google", c.Google)
	fmt.Fprintf(&out, "%v %+v %#v %s", c.Google, c.Slack, c.Zoom, c.Alexa)
	js, _ := json.Marshal(c)
	out.Write(js)
	for _, s := range []string{"google-secret-1", "ms-secret-2", "slack-secret-3", "slack-signing-4", "zoom-secret-5", "zoom-webhook-6", "alexa-secret-7", "redis-password-8"} {
		if strings.Contains(out.String(), s) {
			t.Errorf("secret %q printed:\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), "SLACK_CLIENT_SECRET") || !strings.Contains(out.String(), masked) {
		t.Errorf("Print does not show masked secrets:\n%s", out.String())
	}
}
