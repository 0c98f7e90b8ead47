package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
	"github.com/dontinterrupt/dontinterrupt/internal/config"
)

// sandbox is the in-process fakes of sandbox mode, each on its own loopback listener.
type sandbox struct {
	google                                     *googlefake.Server
	slack                                      *slackfake.Server
	graph                                      *graphfake.Server
	zoom                                       *zoomfake.Server
	googleURL, slackURL, microsoftURL, zoomURL string
	servers                                    []*http.Server
}

// startSandbox starts the fakes and points the configuration at them. Provider secrets set in
// the environment are shared with the fakes (so a test outside the process can sign
// requests); unset ones are generated for the run.
func startSandbox(cfg *config.Config, log *slog.Logger) (*sandbox, error) {
	sb := &sandbox{}
	listen := func(h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("sandbox: listen: %w", err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		sb.servers = append(sb.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("sandbox fake stopped", "err", err)
			}
		}()
		return "http://" + ln.Addr().String(), nil
	}

	sb.google = googlefake.New(googlefake.Options{
		ClientID:          cfg.Google.ClientID,
		ClientSecret:      cfg.Google.ClientSecret.Reveal(),
		AllowHTTPWebhooks: true,
	})
	u, err := listen(sb.google)
	if err != nil {
		return nil, err
	}
	sb.google.SetBaseURL(u)
	sb.googleURL = u
	cfg.Google.ClientID, cfg.Google.ClientSecret = sb.google.ClientID(), config.Secret(sb.google.ClientSecret())
	cfg.Google.IssuerURL, cfg.Google.APIURL = u, u+"/"

	if !cfg.Slack.SigningSecret.IsSet() {
		cfg.Slack.SigningSecret = config.Secret(randomHex(16))
	}
	sb.slack = slackfake.New(slackfake.Options{
		ClientID:         cfg.Slack.ClientID,
		ClientSecret:     cfg.Slack.ClientSecret.Reveal(),
		SigningSecret:    cfg.Slack.SigningSecret.Reveal(),
		EventsURL:        cfg.URL("/slack/events"),
		InteractivityURL: cfg.URL("/slack/interactivity"),
		TokenRotation:    true,
	})
	u, err = listen(sb.slack)
	if err != nil {
		sb.stop()
		return nil, err
	}
	sb.slack.SetBaseURL(u)
	sb.slackURL = u
	cfg.Slack.ClientID, cfg.Slack.ClientSecret = sb.slack.ClientID(), config.Secret(sb.slack.ClientSecret())
	cfg.Slack.BaseURL = u
	sb.graph = graphfake.New(graphfake.Options{
		ClientID:             cfg.Microsoft.ClientID,
		ClientSecret:         cfg.Microsoft.ClientSecret.Reveal(),
		AllowHTTPWebhooks:    true,
		KeepOldRefreshTokens: true, // as Microsoft documents
	})
	u, err = listen(sb.graph)
	if err != nil {
		sb.stop()
		return nil, err
	}
	sb.graph.SetBaseURL(u)
	sb.microsoftURL = u
	cfg.Microsoft.ClientID, cfg.Microsoft.ClientSecret = sb.graph.ClientID(), config.Secret(sb.graph.ClientSecret())
	cfg.Microsoft.AuthorityURL, cfg.Microsoft.GraphURL = u, u+"/v1.0"

	zoomSecret := cfg.Zoom.WebhookSecretToken.Reveal()
	if zoomSecret == "" {
		zoomSecret = randomHex(16)
	}
	sb.zoom = zoomfake.New(zoomfake.Options{
		ClientID:           cfg.Zoom.ClientID,
		ClientSecret:       cfg.Zoom.ClientSecret.Reveal(),
		WebhookSecretToken: zoomSecret,
		WebhookURL:         cfg.URL("/webhooks/zoom"),
	})
	u, err = listen(sb.zoom)
	if err != nil {
		sb.stop()
		return nil, err
	}
	sb.zoomURL = u
	cfg.Zoom.ClientID, cfg.Zoom.ClientSecret = sb.zoom.ClientID(), config.Secret(sb.zoom.ClientSecret())
	cfg.Zoom.WebhookSecretToken = config.Secret(zoomSecret)
	cfg.Zoom.OAuthURL, cfg.Zoom.APIURL = u, u+"/v2"

	log.Info("sandbox providers started", "google", sb.googleURL, "slack", sb.slackURL, "microsoft", sb.microsoftURL, "zoom", sb.zoomURL)
	return sb, nil
}

// addEvent adds an event to a fake Google account's primary calendar (the sandbox form).
func (sb *sandbox) addEvent(_ context.Context, sub string, start time.Time, d time.Duration, kind string) error {
	ev := googlefake.Event{Summary: "Sandbox event", Start: start, End: start.Add(d), EventType: kind}
	if kind == "default" {
		ev.EventType = ""
	}
	sb.google.AddEvent(sub, "primary", ev)
	return nil
}

func (sb *sandbox) stop() {
	for _, s := range sb.servers {
		s.Close()
	}
	if sb.graph != nil {
		sb.graph.Close()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// addOutlookEvent adds an event to a fake Microsoft account's calendar (the sandbox form).
func (sb *sandbox) addOutlookEvent(_ context.Context, oid string, start time.Time, d time.Duration, kind string) error {
	ev := graphfake.Event{Subject: "Sandbox event", Start: start, End: start.Add(d)}
	switch kind {
	case "outOfOffice":
		ev.ShowAs = "oof"
	case "focusTime":
		ev.ShowAs = "busy"
	}
	sb.graph.AddEvent(oid, ev)
	return nil
}

// links are the fakes' own pages, for the dashboard.
func (sb *sandbox) links() map[string]string {
	return map[string]string{"Google": sb.googleURL, "Microsoft (Outlook, Teams)": sb.microsoftURL, "Zoom (start or end a call)": sb.zoomURL}
}
