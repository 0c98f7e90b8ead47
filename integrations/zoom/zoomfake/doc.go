// Package zoomfake is a fake of the parts of Zoom that dontinterrupt talks to,
// for tests and for sandbox mode: the user-level OAuth flow at the OAuth base
// (https://zoom.us), the REST endpoints under /v2 (https://api.zoom.us/v2)
// that read the user and their meetings, and Zoom's webhooks, which the fake
// signs and POSTs to our endpoint the way Zoom does.
//
// A [Server] is an [net/http.Handler]. Tests wrap it in
// [net/http/httptest.NewServer]; sandbox mode serves it on a loopback
// listener. Either way it is a real HTTP server that checks what it is sent
// and answers with Zoom's status codes and JSON shapes:
//
//	fake := zoomfake.New(zoomfake.Options{Now: clock.Now, WebhookSecretToken: secret})
//	srv := httptest.NewServer(fake)
//	client := zoom.New(zoom.Config{OAuthURL: srv.URL, APIURL: srv.URL + "/v2", ...})
//	fake.SetWebhookURL(app.URL + "/webhooks/zoom")
//	d, err := fake.StartMeeting(ctx, zoomfake.DefaultUserID, "") // an ad-hoc call
//
// Routes:
//
//	GET  /                          the "Sandbox Zoom" page: people, their calls, start/end buttons
//	POST /sandbox/start, /sandbox/end  the page's buttons (fire meeting.started / meeting.ended)
//	GET  /oauth/authorize           the consent page (pick a person, Allow or Cancel)
//	POST /oauth/authorize           the consent decision; redirects to redirect_uri
//	POST /oauth/token               authorization_code and refresh_token grants
//	POST /oauth/revoke              revokes the grant behind a token
//	GET  /v2/users/me               the token's user (Light)
//	GET  /v2/users/{userId}/meetings  the user's meetings, paged (Medium)
//
// What the fake enforces, as Zoom does:
//
//   - Client credentials are read only from the Authorization: Basic header
//     of /oauth/token and /oauth/revoke; credentials in the form are ignored
//     (the request then fails with invalid_client).
//   - Authorization codes live 5 minutes and work once; a PKCE verifier is
//     checked when the authorize request carried a challenge.
//   - Refresh tokens rotate: every refresh answers with a new refresh token
//     and the old one stops working (400 {"reason":"Invalid Token!","error":"invalid_grant"}).
//   - Bearer tokens are checked (401 {"code":124,"message":"Invalid access token."}),
//     and so are scopes (400 {"code":4711,"message":"Invalid access token, does not contain scopes:[…]"}).
//   - Rate limits per account and category (Light, Medium, Heavy) per second
//     and, on the Free plan, per day: 429 with X-RateLimit-Category,
//     X-RateLimit-Type, X-RateLimit-Limit, X-RateLimit-Remaining and
//     Retry-After (seconds for the per-second limit, an ISO timestamp for the
//     daily one).
//
// Webhooks are fired by Go hooks ([Server.StartMeeting], [Server.EndMeeting],
// [Server.ParticipantJoined], [Server.ParticipantLeft],
// [Server.PresenceChanged], [Server.ValidateEndpoint], [Server.Redeliver],
// [Server.SendRaw]), each signed with x-zm-request-timestamp and
// x-zm-signature = "v0=" + hex(HMAC-SHA256(secret token, "v0:{timestamp}:{body}")),
// and each returns the [Delivery] with the HTTP status our endpoint answered.
//
// Time comes from [Options.Now], so code and token expiry, rate-limit windows,
// event_ts and webhook timestamps follow a fake clock; tests never sleep
// ([Server.WaitForCall] waits on a channel). Faults are injected with
// [Server.FailNext]. The fake never logs, never stores e-mail addresses (the
// ones in its answers are made up from the user ID), and its call log
// ([Server.Calls]) redacts tokens, codes, verifiers and secrets.
package zoomfake
