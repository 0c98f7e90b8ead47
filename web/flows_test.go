package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/zoom/zoomfake"
	"github.com/dontinterrupt/dontinterrupt/internal/clock"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/web"
)

// msClient implements web.MicrosoftClient over golang.org/x/oauth2 and go-oidc, against
// graphfake, the way cmd/dontinterrupt's adapter does over integrations/microsoft.
//
// Why not the real client: the web must not import integrations/microsoft (it pulls the Graph
// SDK, minutes of compiling, into the web's tests), and the real adapter lives in package main.
// What is under test here is the web's side of the flows: the kind names it passes, the
// state, nonce and PKCE verifier it keeps and hands back (graphfake checks the verifier and
// the redirect URI, this client the nonce, the ID token's signature and its tenant's
// issuer), what it stores from the Grant, and what it gives the revoker. Revoke deletes the
// connection's Graph subscriptions at graphfake, as the real adapter does.
type msClient struct {
	base, clientID, clientSecret, appBase string
	hc                                    *http.Client
	now                                   func() time.Time
	calls                                 *recorder[string] // "AuthURL outlook", "Finish outlook"…
	revokes                               *recorder[msRevoke]

	mu       sync.Mutex
	provider *oidc.Provider
}

// msRevoke is one call of msClient.Revoke.
type msRevoke struct {
	Cred   provider.Credential
	States []store.SyncState
	Err    error
}

// The scopes and callbacks of each kind of Microsoft flow (as in integrations/microsoft).
var (
	msScopes = map[string][]string{
		"signin":  {oidc.ScopeOpenID, "profile"},
		"outlook": {oidc.ScopeOpenID, "profile", "offline_access", "Calendars.Read"},
		"teams":   {oidc.ScopeOpenID, "profile", "offline_access", "Presence.ReadWrite"},
	}
	msCallbacks = map[string]string{
		"signin":  "/signin/microsoft/callback",
		"outlook": "/connect/outlook/callback",
		"teams":   "/connect/teams/callback",
	}
)

func (m *msClient) discover(ctx context.Context) (*oidc.Provider, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.provider != nil {
		return m.provider, nil
	}
	octx := oidc.InsecureIssuerURLContext(oidc.ClientContext(context.WithoutCancel(ctx), m.hc), m.base+"/{tenantid}/v2.0")
	p, err := oidc.NewProvider(octx, m.base+"/common/v2.0")
	if err != nil {
		return nil, err
	}
	m.provider = p
	return p, nil
}

func (m *msClient) config(p *oidc.Provider, kind string) (*oauth2.Config, error) {
	scopes, ok := msScopes[kind]
	if !ok {
		return nil, fmt.Errorf("msClient: unknown kind %q", kind)
	}
	return &oauth2.Config{ClientID: m.clientID, ClientSecret: m.clientSecret, Endpoint: p.Endpoint(),
		RedirectURL: m.appBase + msCallbacks[kind], Scopes: scopes}, nil
}

func (m *msClient) AuthURL(ctx context.Context, kind, state, nonce, verifier string) (string, error) {
	m.calls.add("AuthURL " + kind)
	if state == "" || nonce == "" || verifier == "" {
		return "", errors.New("msClient: state, nonce and verifier are required")
	}
	p, err := m.discover(ctx)
	if err != nil {
		return "", err
	}
	cfg, err := m.config(p, kind)
	if err != nil {
		return "", err
	}
	return cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

func (m *msClient) Finish(ctx context.Context, kind, code, verifier, nonce string, now time.Time) (web.Grant, error) {
	m.calls.add("Finish " + kind)
	p, err := m.discover(ctx)
	if err != nil {
		return web.Grant{}, err
	}
	cfg, err := m.config(p, kind)
	if err != nil {
		return web.Grant{}, err
	}
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, m.hc), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return web.Grant{}, err
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: m.clientID, SkipIssuerCheck: true, Now: m.now}).Verify(oidc.ClientContext(ctx, m.hc), raw)
	if err != nil {
		return web.Grant{}, err
	}
	if idt.Nonce != nonce {
		return web.Grant{}, errors.New("msClient: nonce does not match")
	}
	var claims struct {
		TID string `json:"tid"`
		OID string `json:"oid"`
	}
	if err := idt.Claims(&claims); err != nil || claims.TID == "" || claims.OID == "" {
		return web.Grant{}, fmt.Errorf("msClient: claims %+v: %v", claims, err)
	}
	if want := m.base + "/" + claims.TID + "/v2.0"; idt.Issuer != want {
		return web.Grant{}, fmt.Errorf("msClient: issuer %q, want %q", idt.Issuer, want)
	}
	g := web.Grant{Subject: claims.TID + "/" + claims.OID, ExternalID: claims.OID, TeamID: claims.TID}
	if kind == "signin" {
		return g, nil
	}
	s, _ := tok.Extra("scope").(string)
	g.Scopes = strings.Fields(s)
	g.Credential = provider.Credential{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if kind == "outlook" {
		g.Resources = []string{"calendar"}
	}
	return g, nil
}

func (m *msClient) Revoke(ctx context.Context, cred provider.Credential, states []store.SyncState) error {
	var errs []error
	for _, ss := range states {
		if ss.ChannelID == "" {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, m.base+"/v1.0/subscriptions/"+url.PathEscape(ss.ChannelID), nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		req.Header.Set("Authorization", "Bearer "+cred.AccessToken)
		resp, err := m.hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
			errs = append(errs, fmt.Errorf("delete subscription: HTTP %d", resp.StatusCode))
		}
	}
	err := errors.Join(errs...)
	m.revokes.add(msRevoke{cred, states, err})
	return err
}

// msSide is graphfake with msClient as the server's Microsoft client.
type msSide struct {
	fake   *graphfake.Server
	url    string
	client *msClient
}

// configure adds Microsoft to a server's dependencies.
func (m *msSide) configure(e *env, d *web.Deps) {
	m.fake = graphfake.New(graphfake.Options{AutoApprove: true, AllowHTTPWebhooks: true, Now: e.clock.Now})
	srv := httptest.NewServer(m.fake)
	e.t.Cleanup(func() {
		m.fake.Close()
		srv.Close()
	})
	m.fake.SetBaseURL(srv.URL)
	m.url = srv.URL
	m.client = &msClient{base: srv.URL, clientID: m.fake.ClientID(), clientSecret: m.fake.ClientSecret(), appBase: e.base,
		hc: srv.Client(), now: e.clock.Now, calls: &recorder[string]{}, revokes: &recorder[msRevoke]{}}
	d.Microsoft = m.client
}

// graphGet reads a Graph path with an access token and returns the status.
func (m *msSide) graphGet(t *testing.T, token, path string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, m.url+"/v1.0"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := m.client.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// subscribe creates a Graph subscription to the person's events, as the scheduler does after
// connecting Outlook: graphfake runs the validation handshake against notifyURL first.
func (m *msSide) subscribe(t *testing.T, token, notifyURL, clientState string, now time.Time) (string, time.Time) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{
		"changeType":         "created,updated,deleted",
		"notificationUrl":    notifyURL,
		"resource":           "me/events",
		"expirationDateTime": now.Add(48 * time.Hour).UTC().Format(time.RFC3339),
		"clientState":        clientState,
	})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, m.url+"/v1.0/subscriptions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sub struct {
		ID         string `json:"id"`
		Expiration string `json:"expirationDateTime"`
		Error      any    `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sub); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create subscription: %d %+v %v", resp.StatusCode, sub, err)
	}
	exp, err := time.Parse(time.RFC3339, sub.Expiration)
	if err != nil {
		t.Fatalf("subscription expiry %q: %v", sub.Expiration, err)
	}
	return sub.ID, exp
}

// TestMicrosoftFlows: sign in with Microsoft, connect Outlook and Teams, receive a change
// notification of a real subscription, disconnect both.
func TestMicrosoftFlows(t *testing.T) {
	t.Parallel()
	m := &msSide{}
	e := newEnv(t, envOptions{configure: m.configure})
	ctx := t.Context()

	code, body := e.get("/")
	wantPage(t, "landing", code, body, http.StatusOK, `href="/signin/microsoft"`, `href="/signin/google"`)

	// Sign in with Microsoft: the identity is tid/oid.
	code, body = e.get("/signin/microsoft")
	wantPage(t, "sign in with Microsoft", code, body, http.StatusOK, "Your dashboard")
	subject := graphfake.DefaultTenantID + "/" + graphfake.DefaultOID
	id, err := e.st.GetIdentity(ctx, "microsoft", subject)
	if err != nil {
		t.Fatalf("identity (microsoft, %s): %v", subject, err)
	}
	uid := id.UserID
	if ids, err := e.st.ListIdentities(ctx, uid); err != nil || len(ids) != 1 {
		t.Errorf("identities = %+v, %v; want the Microsoft one only", ids, err)
	}

	// Connect Outlook: the calendar, a sealed credential with Calendars.Read only.
	out := e.connect(uid, "outlook")
	if out.ExternalID != graphfake.DefaultOID || out.TeamID != graphfake.DefaultTenantID || out.Health != store.HealthOK ||
		!slices.Equal(out.Resources, []string{"calendar"}) {
		t.Errorf("outlook connection = %+v", out)
	}
	if !slices.Contains(out.Scopes, "Calendars.Read") || slices.Contains(out.Scopes, "Presence.ReadWrite") {
		t.Errorf("outlook scopes = %v", out.Scopes)
	}
	outCred := e.credential(out)
	if outCred.AccessToken == "" || outCred.RefreshToken == "" {
		t.Fatalf("outlook credential without tokens")
	}
	if bytes.Contains(out.Credential, []byte(outCred.AccessToken)) || bytes.Contains(out.Credential, []byte(outCred.RefreshToken)) {
		t.Error("the sealed outlook blob holds a token in clear")
	}
	now := e.clock.Now()
	window := "?" + url.Values{"startDateTime": {now.Format(time.RFC3339)}, "endDateTime": {now.Add(24 * time.Hour).Format(time.RFC3339)}}.Encode()
	if st := m.graphGet(t, outCred.AccessToken, "/me/calendarView/delta"+window); st != http.StatusOK {
		t.Errorf("the stored outlook token reads the calendar: %d, want 200", st)
	}
	if st := m.graphGet(t, outCred.AccessToken, "/me/presence"); st != http.StatusForbidden {
		t.Errorf("the outlook token reads presence: %d, want 403", st)
	}

	// Connect Teams: presence only, no resources.
	tm := e.connect(uid, "teams")
	if tm.ExternalID != graphfake.DefaultOID || tm.TeamID != graphfake.DefaultTenantID || len(tm.Resources) != 0 || tm.ID == out.ID {
		t.Errorf("teams connection = %+v", tm)
	}
	if !slices.Contains(tm.Scopes, "Presence.ReadWrite") || slices.Contains(tm.Scopes, "Calendars.Read") {
		t.Errorf("teams scopes = %v", tm.Scopes)
	}
	tmCred := e.credential(tm)
	if st := m.graphGet(t, tmCred.AccessToken, "/me/presence"); st != http.StatusOK {
		t.Errorf("the stored teams token reads presence: %d, want 200", st)
	}
	if st := m.graphGet(t, tmCred.AccessToken, "/me/calendarView/delta"+window); st != http.StatusForbidden {
		t.Errorf("the teams token reads the calendar: %d, want 403", st)
	}
	if got, want := m.client.calls.all(), []string{"AuthURL signin", "Finish signin", "AuthURL outlook", "Finish outlook", "AuthURL teams", "Finish teams"}; !slices.Equal(got, want) {
		t.Errorf("Microsoft client calls = %q, want %q", got, want)
	}
	if w := e.wakes.all(); !slices.Equal(w, []string{uid, uid}) {
		t.Errorf("wakes after connecting = %v", w)
	}

	// A real subscription: graphfake's validation handshake reaches our webhook, and its
	// change notification marks the Outlook connection for a sync.
	const clientState = "client-state-7f3a"
	subID, exp := m.subscribe(t, outCred.AccessToken, e.base+"/webhooks/microsoft", clientState, now)
	ss := store.SyncState{ConnectionID: out.ID, Resource: "calendar", ChannelID: subID, ChannelToken: clientState, ChannelExpiry: exp}
	if err := e.st.PutSyncState(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if ds := m.fake.Deliveries(); len(ds) != 1 || ds[0].Kind != graphfake.DeliveryValidation || ds[0].Status != http.StatusOK || ds[0].Err != "" {
		t.Errorf("validation deliveries = %+v", ds)
	}
	m.fake.AddEvent(graphfake.DefaultOID, graphfake.Event{Subject: "Standup", Start: now.Add(time.Hour), End: now.Add(90 * time.Minute)})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	notes, err := m.fake.WaitForNotification(wctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if notes[0].Status != http.StatusAccepted || notes[0].SubscriptionID != subID {
		t.Errorf("notification delivery = %+v, want 202", notes[0])
	}
	if c, err := e.st.GetConnection(ctx, uid, out.ID); err != nil || c.SyncRequested.IsZero() {
		t.Errorf("outlook connection after the notification = %+v, %v; want SyncRequested set", c, err)
	}
	if w := e.wakes.all(); len(w) != 3 || w[2] != uid {
		t.Errorf("wakes after the notification = %v", w)
	}

	// Disconnect Outlook: the revoker gets the connection's sync states and deletes the
	// subscription at Graph.
	resp, body := e.postForm("/connections/"+out.ID+"/disconnect", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect outlook: %d\n%s", resp.StatusCode, body)
	}
	revokes := m.client.revokes.all()
	if len(revokes) != 1 || revokes[0].Err != nil || revokes[0].Cred.AccessToken != outCred.AccessToken ||
		len(revokes[0].States) != 1 || revokes[0].States[0].ChannelID != subID || revokes[0].States[0].ChannelToken != clientState {
		t.Errorf("revokes after disconnecting outlook = %+v", revokes)
	}
	if subs := m.fake.Subscriptions(); len(subs) != 0 {
		t.Errorf("subscriptions at Graph after disconnecting = %+v", subs)
	}
	if _, err := e.st.GetConnection(ctx, uid, out.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("outlook connection after disconnect: %v", err)
	}
	if states, err := e.st.ListSyncStates(ctx, out.ID); err != nil || len(states) != 0 {
		t.Errorf("sync states after disconnect = %+v, %v", states, err)
	}

	// Disconnect Teams: revoked with no sync state.
	resp, body = e.postForm("/connections/"+tm.ID+"/disconnect", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect teams: %d\n%s", resp.StatusCode, body)
	}
	if revokes = m.client.revokes.all(); len(revokes) != 2 || revokes[1].Cred.AccessToken != tmCred.AccessToken || len(revokes[1].States) != 0 {
		t.Errorf("revokes after disconnecting teams = %+v", revokes)
	}
	var got []string
	acts, _ := e.st.ListActivity(ctx, uid, 0)
	for _, a := range acts {
		got = append(got, a.Target+" "+a.Outcome)
	}
	if want := []string{"teams disconnected", "outlook disconnected", "teams connected", "outlook connected"}; !slices.Equal(got, want) {
		t.Errorf("activity = %q, want %q", got, want)
	}

	// Signing in again with Microsoft finds the same person.
	if resp, _ := e.postForm("/signout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	code, body = e.get("/signin/microsoft")
	wantPage(t, "second sign-in", code, body, http.StatusOK, "Your dashboard")
	if c := e.snapshot(); c.Users != 1 || c.Identities != 1 {
		t.Errorf("a second sign-in made records: %+v", c)
	}

	// No token in the file or the log.
	raw, logs := e.rawFile(), e.logs.String()
	for what, s := range map[string]string{
		"outlook access token":  outCred.AccessToken,
		"outlook refresh token": outCred.RefreshToken,
		"teams access token":    tmCred.AccessToken,
		"teams refresh token":   tmCred.RefreshToken,
		"client secret":         m.fake.ClientSecret(),
	} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the bolt file holds the %s", what)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the %s", what)
		}
	}
}

// TestZoomConnectFlow: connecting Zoom stores the Zoom user and account with the meetings
// resource; the live-call webhook finds the connection by that user; disconnecting revokes
// the grant at Zoom.
func TestZoomConnectFlow(t *testing.T) {
	t.Parallel()
	z := &zoomSide{}
	e := newEnv(t, envOptions{configure: z.configure})
	ctx := t.Context()
	uid := e.signIn()

	c := e.connect(uid, "zoom")
	if c.ExternalID != zoomfake.DefaultUserID || c.TeamID != zoomfake.DefaultAccountID || c.Health != store.HealthOK ||
		!slices.Equal(c.Resources, []string{"meetings"}) {
		t.Errorf("zoom connection = %+v", c)
	}
	if !slices.Contains(c.Scopes, zoomfake.ScopeUserRead) || !slices.Contains(c.Scopes, zoomfake.ScopeMeetingsList) {
		t.Errorf("zoom scopes = %v", c.Scopes)
	}
	if calls := z.fake.CallsTo(zoomfake.EndpointAuthorize); len(calls) != 1 || calls[0].Query.Get("code_challenge_method") != "S256" ||
		calls[0].Query.Get("redirect_uri") != e.base+"/connect/zoom/callback" {
		t.Errorf("authorize calls = %+v, want one with PKCE and our callback", calls)
	}
	cred := e.credential(c)
	if cred.AccessToken == "" || cred.RefreshToken == "" || bytes.Contains(c.Credential, []byte(cred.AccessToken)) {
		t.Fatalf("zoom credential: tokens missing or in clear")
	}
	if _, err := z.client.Meetings(ctx, cred, e.clock.Now(), nil); err != nil {
		t.Errorf("the stored zoom token does not list meetings: %v", err)
	}
	if w := e.wakes.all(); len(w) != 1 || w[0] != uid {
		t.Errorf("wakes after connecting = %v", w)
	}

	// The connection's external ID is what Zoom's webhooks name: a call starts a live block.
	d, err := z.fake.StartMeeting(ctx, zoomfake.DefaultUserID, "")
	wantDelivered(t, "meeting.started", d, err, http.StatusOK)
	if live := e.liveEvents(uid); len(live) != 1 || live[0].Source != c.ID+"/live" {
		t.Errorf("live events = %+v", live)
	}

	// Disconnect: revoked at Zoom (the refresh token is dead), deleted here with its live call.
	resp, body := e.postForm("/connections/"+c.ID+"/disconnect", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect zoom: %d\n%s", resp.StatusCode, body)
	}
	if calls := z.fake.CallsTo(zoomfake.EndpointRevoke); len(calls) != 1 || calls[0].Status != http.StatusOK || calls[0].User != zoomfake.DefaultUserID {
		t.Errorf("revoke calls = %+v, want one that succeeded", calls)
	}
	if _, err := z.client.Refresh(ctx, cred, e.clock.Now()); !errors.Is(err, provider.ErrRevoked) {
		t.Errorf("refresh after disconnect: %v, want revoked", err)
	}
	if _, err := e.st.GetConnection(ctx, uid, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("zoom connection after disconnect: %v", err)
	}
	if live := e.liveEvents(uid); len(live) != 0 {
		t.Errorf("live events after disconnect = %+v", live)
	}
	// Nothing stays to act on the next call.
	if _, err := z.fake.EndMeeting(ctx, zoomfake.DefaultUserID, ""); err != nil {
		t.Fatal(err)
	}
	if live := e.liveEvents(uid); len(live) != 0 {
		t.Errorf("live events after a call of the disconnected account = %+v", live)
	}
}

// TestProviderPages: the landing page and the dashboard offer what is configured; the sandbox
// lists the fakes' pages and adds events to the fake Outlook calendar.
func TestProviderPages(t *testing.T) {
	t.Parallel()
	t.Run("configured", func(t *testing.T) {
		t.Parallel()
		clk := clock.NewFake(webhookEpoch)
		m, z := &msSide{}, &zoomSide{}
		outlookCalls := &recorder[sandboxCall]{}
		e := newEnv(t, envOptions{sandbox: true, clock: clk, configure: configureAll(m.configure, z.configure, func(e *env, d *web.Deps) {
			d.SandboxOutlook = func(_ context.Context, oid string, start time.Time, dur time.Duration, kind string) error {
				outlookCalls.add(sandboxCall{oid, start, dur, kind})
				return nil
			}
			d.SandboxLinks = map[string]string{"Zoom": z.url + "/", "Microsoft": m.url + "/"}
		})})
		ctx := t.Context()

		code, body := e.get("/")
		wantPage(t, "landing", code, body, http.StatusOK, `href="/signin/microsoft"`, "Sign in with Microsoft")

		uid := e.signIn()
		code, body = e.get("/")
		wantPage(t, "dashboard", code, body, http.StatusOK, `href="/connect/outlook"`, `href="/connect/teams"`, `href="/connect/zoom"`,
			"Connect Outlook", "Connect Teams", "Connect Zoom",
			`<a href="`+m.url+`/">Microsoft</a>`, `<a href="`+z.url+`/">Zoom</a>`)
		if strings.Contains(body, "not available on this server") {
			t.Errorf("the dashboard says a configured provider is not available:\n%s", body)
		}
		if strings.Contains(body, `value="outlook"`) || strings.Contains(body, `action="/sandbox/events"`) {
			t.Errorf("the sandbox offers an Outlook calendar before Outlook is connected:\n%s", body)
		}
		if i, j := strings.Index(body, ">Microsoft</a>"), strings.Index(body, ">Zoom</a>"); i > j {
			t.Error("the sandbox links are not in title order")
		}

		// Without an Outlook connection the form is refused for Outlook.
		form := url.Values{"calendar": {"outlook"}, "start_in_minutes": {"5"}, "duration_minutes": {"30"}, "kind": {"default"}}
		resp, body := e.postForm("/sandbox/events", form)
		wantPage(t, "outlook event before connecting", resp.StatusCode, body, http.StatusBadRequest, "Connect Outlook first")

		out := e.connect(uid, "outlook")
		code, body = e.get("/")
		wantPage(t, "dashboard with outlook", code, body, http.StatusOK, `action="/sandbox/events"`, `<option value="outlook">Outlook</option>`)
		if strings.Contains(body, `value="google"`) {
			t.Error("the sandbox offers Google Calendar, which is not connected")
		}
		wakes := len(e.wakes.all())
		resp, body = e.postForm("/sandbox/events", form)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("outlook sandbox event: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		want := sandboxCall{Sub: graphfake.DefaultOID, Start: clk.Now().Add(5 * time.Minute), D: 30 * time.Minute, Kind: "default"}
		if calls := outlookCalls.all(); len(calls) != 1 || calls[0].Sub != want.Sub || !calls[0].Start.Equal(want.Start) || calls[0].D != want.D || calls[0].Kind != want.Kind {
			t.Errorf("SandboxOutlook calls = %+v, want [%+v]", calls, want)
		}
		if n := len(e.sandbox.all()); n != 0 {
			t.Errorf("an Outlook event went to the Google hook (%d calls)", n)
		}
		if c, err := e.st.GetConnection(ctx, uid, out.ID); err != nil || !c.SyncRequested.Equal(clk.Now()) {
			t.Errorf("outlook connection after the sandbox event = %+v, %v; want a sync requested now", c, err)
		}
		if w := e.wakes.all(); len(w) != wakes+1 || w[len(w)-1] != uid {
			t.Errorf("wakes after the sandbox event = %v", w)
		}

		// A calendar that is not one: refused, whatever is connected under that name.
		e.connect(uid, "zoom")
		e.connect(uid, "teams")
		e.connect(uid, "slack")
		before := e.records()
		for _, cal := range []string{"zoom", "teams", "slack", "microsoft", "nonsense"} {
			form.Set("calendar", cal)
			resp, body = e.postForm("/sandbox/events", form)
			wantPage(t, "sandbox event in calendar "+cal, resp.StatusCode, body, http.StatusBadRequest, "No such calendar")
		}
		if g, o := len(e.sandbox.all()), len(outlookCalls.all()); g != 0 || o != 1 {
			t.Errorf("events for calendars that are not ones reached the hooks: %d Google, %d Outlook calls", g, o-1)
		}
		unchanged(t, "sandbox events for calendars that are not ones", before, e.records())
	})

	t.Run("not configured", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{sandbox: true})
		code, body := e.get("/")
		wantPage(t, "landing", code, body, http.StatusOK, `href="/signin/google"`, "Microsoft: not available on this server")
		if strings.Contains(body, `href="/signin/microsoft"`) {
			t.Error("the landing page offers Microsoft sign-in without Microsoft")
		}
		code, body = e.get("/signin/microsoft")
		wantPage(t, "sign in with Microsoft", code, body, http.StatusNotFound, "not available on this server")

		uid := e.signIn()
		code, body = e.get("/")
		wantPage(t, "dashboard", code, body, http.StatusOK, "Outlook: not available on this server", "Teams: not available on this server",
			"Zoom: not available on this server")
		for _, p := range []string{"outlook", "teams", "zoom"} {
			if strings.Contains(body, `href="/connect/`+p+`"`) {
				t.Errorf("the dashboard offers %s without it", p)
			}
			code, body := e.get("/connect/" + p)
			wantPage(t, "connect "+p, code, body, http.StatusNotFound, "not available on this server")
		}
		e.connect(uid, "google")
		resp, body := e.postForm("/sandbox/events", url.Values{"calendar": {"outlook"}, "start_in_minutes": {"5"}, "duration_minutes": {"30"}, "kind": {"default"}})
		wantPage(t, "outlook event without Outlook", resp.StatusCode, body, http.StatusBadRequest, "Connect Outlook first")
		if n := len(e.sandbox.all()); n != 0 {
			t.Errorf("the Google hook got an Outlook event")
		}
	})
}
