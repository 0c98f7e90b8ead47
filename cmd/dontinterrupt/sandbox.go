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
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/config"
)

// sandbox is the in-process fakes of sandbox mode, each on its own loopback listener.
type sandbox struct {
	google              *googlefake.Server
	slack               *slackfake.Server
	googleURL, slackURL string
	servers             []*http.Server
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

	sb.slack = slackfake.New(slackfake.Options{
		ClientID:      cfg.Slack.ClientID,
		ClientSecret:  cfg.Slack.ClientSecret.Reveal(),
		TokenRotation: true,
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
	if !cfg.Slack.SigningSecret.IsSet() {
		cfg.Slack.SigningSecret = config.Secret(randomHex(16))
	}
	log.Info("sandbox providers started", "google", sb.googleURL, "slack", sb.slackURL)
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
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
