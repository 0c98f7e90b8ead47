// Package microsoft connects a person's Microsoft 365 account: sign in with Microsoft (OIDC on
// the identity platform), Outlook calendar as a source (calendarView/delta) and Teams presence
// and status message as a target, with Graph change notifications. Every Graph call goes
// through github.com/microsoftgraph/msgraph-sdk-go, which this package alone imports (it costs
// minutes to compile). graphfake/ is the fake the tests and the sandbox use.
package microsoft

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoft/kiota-abstractions-go/authentication"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// Scopes, and why each is needed.
var (
	// SignInScopes: who you are (the tenant and your object ID), nothing else.
	SignInScopes = []string{oidc.ScopeOpenID, "profile"}
	// OutlookScopes: read your calendar (times, response, show-as) and keep access while you
	// are away (offline_access gives a refresh token).
	OutlookScopes = []string{oidc.ScopeOpenID, "profile", "offline_access", "Calendars.Read"}
	// TeamsScopes: read and set your Teams presence and status message.
	TeamsScopes = []string{oidc.ScopeOpenID, "profile", "offline_access", "Presence.ReadWrite"}
)

// Config configures the Microsoft app registration.
type Config struct {
	ClientID     string
	ClientSecret string
	// Tenant is "common" (any work or school account) or a tenant ID or domain to pin.
	Tenant string
	// AuthorityURL is https://login.microsoftonline.com, or a fake's URL.
	AuthorityURL string
	// GraphURL is https://graph.microsoft.com/v1.0, or a fake's URL.
	GraphURL string
	// Redirect URLs: /signin/microsoft/callback, /connect/outlook/callback, /connect/teams/callback.
	SignInRedirectURL, OutlookRedirectURL, TeamsRedirectURL string
	HTTPClient                                              *http.Client
	// Now is the clock for ID token checks (nil: time.Now).
	Now func() time.Time
}

// Client talks to Microsoft for every connected person.
type Client struct {
	cfg Config

	mu       sync.Mutex
	provider *oidc.Provider
}

// New returns a client. Nothing is fetched until first use, so the service starts even when
// Microsoft cannot be reached.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" || cfg.AuthorityURL == "" || cfg.GraphURL == "" {
		return nil, errors.New("microsoft: client ID, secret, authority URL and Graph URL are required")
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "common"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 20 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.AuthorityURL = strings.TrimRight(cfg.AuthorityURL, "/")
	cfg.GraphURL = strings.TrimRight(cfg.GraphURL, "/")
	return &Client{cfg: cfg}, nil
}

// ClientID is the app's client ID (the Teams presence session ID).
func (c *Client) ClientID() string { return c.cfg.ClientID }

func (c *Client) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
}

// discover fetches the OpenID configuration once (retried on the next call if it failed). For
// multi-tenant authorities the document's issuer is a template ("…/{tenantid}/v2.0"); tokens
// are then checked against their own tenant (see verify).
func (c *Client) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	issuer := c.cfg.AuthorityURL + "/" + c.cfg.Tenant + "/v2.0"
	octx := oidc.ClientContext(ctx, c.cfg.HTTPClient)
	if c.multiTenant() {
		octx = oidc.InsecureIssuerURLContext(octx, c.cfg.AuthorityURL+"/{tenantid}/v2.0")
	}
	p, err := oidc.NewProvider(octx, issuer)
	if err != nil {
		return nil, fmt.Errorf("microsoft: discovery: %w", err)
	}
	c.provider = p
	return p, nil
}

func (c *Client) multiTenant() bool {
	switch strings.ToLower(c.cfg.Tenant) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// graph returns a Graph client that sends this access token. The SDK's own retry handler is
// left out of the pipeline: the scheduler honours Retry-After itself, so a 429 is never
// retried twice over.
func (c *Client) graph(accessToken string) (*msgraphsdk.GraphBaseServiceClient, error) {
	var mws []khttp.Middleware
	for _, m := range msgraphcore.GetDefaultMiddlewaresWithOptions(&msgraphcore.GraphClientOptions{}) {
		switch m.(type) {
		case *khttp.RetryHandler, *khttp.CompressionHandler:
			continue
		}
		mws = append(mws, m)
	}
	parent := c.cfg.HTTPClient.Transport
	if parent == nil {
		parent = http.DefaultTransport
	}
	hc := &http.Client{
		Timeout:   c.cfg.HTTPClient.Timeout,
		Transport: khttp.NewCustomTransportWithParentTransport(bearer{parent, accessToken}, mws...),
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(&authentication.AnonymousAuthenticationProvider{}, nil, nil, hc)
	if err != nil {
		return nil, fmt.Errorf("microsoft: graph adapter: %w", err)
	}
	adapter.SetBaseUrl(c.cfg.GraphURL)
	// Not msgraphsdk.NewGraphServiceClient: it passes kiota's package-level
	// BackingStoreFactoryInstance to the adapter, which writes it back to that variable, so
	// two clients made at once (two scheduler workers) raced with each other and with every
	// model the SDK was decoding. A nil factory leaves the variable alone; the default it
	// holds is used all the same.
	return msgraphsdk.NewGraphBaseServiceClient(adapter, nil), nil
}

// bearer adds the access token to every request.
type bearer struct {
	next  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// DefaultRetryAfter is the first wait after a 429 that names none (Graph always should).
const DefaultRetryAfter = 10 * time.Second

// revokedCodes are Graph error codes that mean the grant is gone.
var revokedCodes = map[string]bool{"InvalidAuthenticationToken": true, "AuthenticationError": true}

// mapErr turns SDK errors into the kinds the scheduler acts on.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var oe *odataerrors.ODataError
	status, code := 0, ""
	var headers *abs.ResponseHeaders
	if errors.As(err, &oe) {
		status, headers = oe.ResponseStatusCode, oe.ResponseHeaders
		if me := oe.GetErrorEscaped(); me != nil && me.GetCode() != nil {
			code = *me.GetCode()
		}
	} else {
		var ae *abs.ApiError
		if errors.As(err, &ae) {
			status, headers = ae.ResponseStatusCode, ae.ResponseHeaders
		}
	}
	switch {
	case status == http.StatusTooManyRequests || (status == http.StatusServiceUnavailable && retryAfter(headers) > 0):
		d := retryAfter(headers)
		if d <= 0 {
			return &provider.RateLimitedError{RetryAfter: DefaultRetryAfter, Method: op, Guessed: true}
		}
		return &provider.RateLimitedError{RetryAfter: d, Method: op}
	case status == http.StatusUnauthorized && revokedCodes[code]:
		// The access token is not accepted: the scheduler refreshes once and retries; if the
		// refresh fails (invalid_grant) the connection is marked broken.
		return fmt.Errorf("microsoft: %s: %w", op, &provider.RevokedError{Reason: "token_expired"})
	}
	if code != "" {
		return fmt.Errorf("microsoft: %s: %d %s: %w", op, status, code, err)
	}
	return fmt.Errorf("microsoft: %s: %w", op, err)
}

func retryAfter(h *abs.ResponseHeaders) time.Duration {
	if h == nil {
		return 0
	}
	for _, v := range h.Get("Retry-After") {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return time.Until(t)
		}
	}
	return 0
}
