// Package graphfake is a fake of the parts of Microsoft that dontinterrupt
// talks to: the Microsoft identity platform (OpenID Connect discovery with
// the multi-tenant {tenantid} issuer template, JWKS, the authorization
// endpoint with a consent page, the token endpoint with refresh-token
// rotation, userinfo) and the Microsoft Graph v1.0 endpoints the Outlook
// source and the Teams target call: calendarView/delta, the presence actions
// (setPresence, clearPresence, setUserPreferredPresence,
// clearUserPreferredPresence, setStatusMessage), /me, and change
// notification subscriptions with their validation handshake.
//
// A [Server] is an [net/http.Handler]. Tests wrap it in
// [net/http/httptest.NewServer]; sandbox mode serves it on a loopback
// listener. Either way it is a real HTTP server that stands for both
// login.microsoftonline.com and graph.microsoft.com: it checks what it is
// sent (client credentials, redirect URIs, PKCE verifiers, bearer tokens and
// their scopes, query parameters, Prefer headers and bodies) and answers
// with the status codes and JSON shapes the real services use, errors and
// throttling included, so golang.org/x/oauth2, github.com/coreos/go-oidc/v3
// and github.com/microsoftgraph/msgraph-sdk-go can be pointed at it
// unchanged:
//
//	fake := graphfake.New(graphfake.Options{Now: clock.Now})
//	defer fake.Close()
//	srv := httptest.NewServer(fake)
//	fake.SetBaseURL(srv.URL)
//	// Sign-in: discovery for "common" carries the issuer template, so
//	// check "iss" against the token's "tid" yourself.
//	ctx = oidc.InsecureIssuerURLContext(ctx, srv.URL+"/{tenantid}/v2.0")
//	provider, err := oidc.NewProvider(ctx, srv.URL+"/common/v2.0")
//	// Graph: the SDK's base URL is the fake's /v1.0.
//	adapter.SetBaseUrl(srv.URL + "/v1.0")
//
// Graph paths are matched case-insensitively, for /me/… and
// /users/{id or userPrincipalName}/… alike; the SDK's "calendarView/delta()"
// spelling is accepted next to "calendarView/delta". A request for
// /users/me-token-to-replace/… (an SDK client built without Graph's URL
// replacement middleware) fails with 404 as it would at Graph.
//
// Tests and the sandbox drive the fake's data through Go hooks
// ([Server.AddUser], [Server.AddEvent], [Server.UpdateEvent],
// [Server.DeleteEvent], [Server.SetUserStatusMessage],
// [Server.SetUserPreferredPresence], [Server.SetClientSession]), read what
// the app did with [Server.Presence], [Server.Subscriptions] and
// [Server.Deliveries], inject faults with [Server.FailNext], invalidate
// state with [Server.InvalidateDeltaTokens] and [Server.RevokeTokens], and
// observe traffic with [Server.Calls], [Server.WaitForCall] and
// [Server.WaitForNotification]. Time comes from [Options.Now], so expiries
// (codes, tokens, presence sessions, status messages, subscriptions) and
// throttling windows are tested by moving a fake clock, never by sleeping.
// Change notifications are POSTed asynchronously when a hook changes a
// mailbox; [Server.Close] stops them.
//
// Where Microsoft's documentation leaves a value open the fake makes it
// configurable ([Options.SyncStateCode], [Options.MaxSubscriptionLifetime],
// [Options.DefaultPageSize], [Options.MaxStatusMessageLength],
// [Options.KeepOldRefreshTokens]).
//
// The fake also serves a small human page at "/" ("Sandbox Microsoft")
// listing every fake account with its upcoming events, Teams presence and
// status message, with a form that adds an event starting in N minutes.
//
// The fake never logs tokens, codes, client secrets, client states, e-mail
// addresses or event subjects, and its call log ([Server.Calls]) redacts
// every token-like parameter.
package graphfake
