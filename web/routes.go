package web

import (
	"reflect"
)

// routes registers every route of the service (design.md section 4) in one place.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
	if s.metrics != nil {
		s.mux.Handle("GET /metrics", s.metrics.Handler())
	}
	s.mux.Handle("GET /static/", staticHandler())
	s.mux.HandleFunc("GET /{$}", s.handleIndex)

	s.mux.HandleFunc("GET /signin/{provider}", s.handleSignIn)
	s.mux.HandleFunc("GET /signin/{provider}/callback", s.handleSignInCallback)
	s.mux.HandleFunc("POST /signout", s.handleSignOut)

	s.mux.HandleFunc("GET /connect/{provider}", s.handleConnect)
	s.mux.HandleFunc("GET /connect/{provider}/callback", s.handleConnectCallback)
	s.mux.HandleFunc("POST /connections/{id}/disconnect", s.handleDisconnect)

	s.mux.HandleFunc("GET /oauth/authorize", s.handleOAuthAuthorize)
	s.mux.HandleFunc("POST /oauth/authorize", s.handleOAuthAuthorize)
	s.mux.HandleFunc("POST /oauth/token", s.handleOAuthToken)
	s.mux.HandleFunc("POST /alexa", s.handleAlexa)
	s.mux.HandleFunc("POST /slack/events", s.handleSlackEvents)
	s.mux.HandleFunc("POST /slack/interactivity", s.handleSlackInteractivity)
	s.mux.HandleFunc("POST /webhooks/google", s.handleGoogleWebhook)
	s.mux.HandleFunc("POST /webhooks/microsoft", s.handleMicrosoftWebhook)
	s.mux.HandleFunc("POST /webhooks/zoom", s.handleZoomWebhook)

	s.mux.HandleFunc("POST /actions", s.handleAction)

	s.mux.HandleFunc("GET /settings", s.handleSettings)
	s.mux.HandleFunc("POST /settings", s.handleSaveSettings)
	s.mux.HandleFunc("GET /preview", s.handlePreview)
	s.mux.HandleFunc("GET /activity", s.handleActivity)
	s.mux.HandleFunc("GET /data", s.handleData)
	s.mux.HandleFunc("GET /data/export", s.handleExport)
	s.mux.HandleFunc("POST /data/delete", s.handleDelete)

	if s.sandbox {
		s.mux.HandleFunc("POST /sandbox/events", s.handleSandboxEvent)
		s.mux.HandleFunc("POST /sandbox/alexa/link", s.handleSandboxAlexaLink)
		s.mux.HandleFunc("POST /sandbox/alexa/say", s.handleSandboxAlexaSay)
	}
}

func isNilInterface(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
