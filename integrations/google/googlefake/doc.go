// Package googlefake is a fake of the parts of Google that dontinterrupt talks
// to: the Google OpenID Connect provider (discovery, JWKS, the authorization
// endpoint with a consent page, the token and revocation endpoints, userinfo)
// and the Calendar API v3 endpoints the Calendar source calls
// (calendarList.list, events.list, events.watch, channels.stop), with the
// push notifications events.watch sets up.
//
// A [Server] is an [net/http.Handler]. Tests wrap it in
// [net/http/httptest.NewServer]; sandbox mode serves it on a loopback
// listener. Either way the fake is a real HTTP server: it checks what it is
// sent (client credentials, redirect URIs, PKCE verifiers, bearer tokens and
// their scopes, query parameters and bodies) and answers with the status codes
// and JSON shapes the real APIs use, errors and quotas included, so the real
// clients (github.com/coreos/go-oidc/v3, golang.org/x/oauth2 and
// google.golang.org/api/calendar/v3) can be pointed at it unchanged:
//
//	fake := googlefake.New(googlefake.Options{Now: clock.Now})
//	srv := httptest.NewServer(fake)
//	fake.SetBaseURL(srv.URL)
//	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, srv.Client()), srv.URL)
//	...
//	svc, err := calendar.NewService(ctx,
//		option.WithEndpoint(srv.URL+"/calendar/v3/"),
//		option.WithHTTPClient(oauthClient))
//
// Tests and the sandbox drive the fake's data through Go hooks ([Server.AddAccount],
// [Server.AddCalendar], [Server.AddEvent], [Server.UpdateEvent],
// [Server.DeleteEvent]), inject faults with [Server.FailNext], invalidate sync
// tokens and grants with [Server.InvalidateSyncTokens] and
// [Server.RevokeTokens], and observe traffic with [Server.Calls] and
// [Server.WaitForCall]. Time comes from [Options.Now], so expiries (codes,
// access tokens, channels) and the per-minute quotas are tested by moving a
// fake clock, never by sleeping.
//
// Push notifications work as at Google: events.watch checks the Channel
// (ID of at most 64 characters and unique among live channels, type
// web_hook, an https address, params.ttl) and answers an api#channel whose
// expiration is a string of Unix milliseconds; right after, the channel gets
// a "sync" message (number 1), and every event inserted, updated or deleted
// in its calendar an "exists" message, numbered on per channel: an empty
// POST with the X-Goog-Channel-ID, -Token, -Expiration, X-Goog-Message-Number
// and X-Goog-Resource-ID, -URI and -State headers, sent asynchronously and
// in order, again after a growing wait on a 5xx or no answer (a bounded
// number of times). Every attempt is in the call log under
// [EndpointPushNotification]. A channel expires on the fake's clock;
// channels.stop stops it (204; an unknown, stopped or expired one is 404).
// One relaxation: [Options.AllowHTTPWebhooks] and [Options.HTTPWebhookHosts]
// let plain http addresses through for loopback and named hosts, which
// Google never does. [Server.Close] stops the deliveries.
//
// The fake also serves a small human page at "/" ("Sandbox Google") listing
// every fake account's calendars and upcoming events, with a form that adds
// an event starting in N minutes.
//
// The fake never logs tokens, codes, client secrets, e-mail addresses or event
// titles, and its call log ([Server.Calls]) redacts every token-like
// parameter.
package googlefake
