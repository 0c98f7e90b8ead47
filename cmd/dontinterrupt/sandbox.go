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
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa/alexafake"
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
	alexa                                      *alexafake.Fake
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

	// The sandbox Google pushes calendar changes to this service's /webhooks/google over
	// plain http, which Google never does: on loopback and at the public URL's host only.
	sb.google = googlefake.New(googlefake.Options{
		ClientID:          cfg.Google.ClientID,
		ClientSecret:      cfg.Google.ClientSecret.Reveal(),
		AllowHTTPWebhooks: true,
		HTTPWebhookHosts:  []string{cfg.PublicURL.Hostname()},
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

	if cfg.Alexa.SkillID == "" {
		cfg.Alexa.SkillID = "amzn1.ask.skill.sandbox-" + randomHex(8)
	}
	if cfg.Alexa.ClientID == "" {
		cfg.Alexa.ClientID = "alexa-sandbox"
	}
	if !cfg.Alexa.ClientSecret.IsSet() {
		cfg.Alexa.ClientSecret = config.Secret(randomHex(16))
	}
	if len(cfg.Alexa.RedirectURIs) == 0 {
		cfg.Alexa.RedirectURIs = []string{sandboxAlexaRedirect}
	}
	sb.alexa = alexafake.New(alexafake.Options{SkillID: cfg.Alexa.SkillID})

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
	if sb.google != nil {
		sb.google.Close()
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

// sandboxAlexaRedirect stands for Amazon's account-linking redirect URI; it is never fetched.
const sandboxAlexaRedirect = "https://pitangui.amazon.com/api/skill/link/SANDBOX"

// alexaLink links the sandbox Alexa to the person whose session cookie is given: the real
// account-linking flow, with the consent page answered "allow".
func (sb *sandbox) alexaLink(cfg *config.Config, base string) func(context.Context, *http.Cookie) error {
	return func(ctx context.Context, c *http.Cookie) error {
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(base)
		jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
		client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		_, err := sb.alexa.Link(ctx, alexafake.LinkConfig{
			AuthorizeURL: base + "/oauth/authorize", TokenURL: base + "/oauth/token",
			ClientID: cfg.Alexa.ClientID, ClientSecret: cfg.Alexa.ClientSecret.Reveal(),
			RedirectURI: cfg.Alexa.RedirectURIs[0], Scope: "status", UseBasicAuth: true, PKCE: true,
			HTTPClient: client,
			Browser: func(ctx context.Context, hc *http.Client, page *http.Response) (*http.Response, error) {
				page.Body.Close()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, page.Request.URL.String(), strings.NewReader("decision=allow"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return hc.Do(req)
			},
		})
		return err
	}
}

// alexaSay sends a phrase to the skill endpoint as the sandbox Alexa.
func (sb *sandbox) alexaSay(base string) func(context.Context, string) (string, error) {
	return func(ctx context.Context, text string) (string, error) {
		res, err := sb.alexa.SaySomething(ctx, base+"/alexa", text)
		if err != nil {
			return "", err
		}
		if res.Status != http.StatusOK {
			return "", fmt.Errorf("sandbox alexa: the skill answered %d", res.Status)
		}
		return res.Speech(), nil
	}
}
