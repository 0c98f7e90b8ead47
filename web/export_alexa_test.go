package web

import (
	"context"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
)

// AlexaAnswer is what POST /alexa answers to a request that passed verification, for the
// fuzz test in package web_test.
func (s *Server) AlexaAnswer(ctx context.Context, req alexa.Request) alexa.ResponseEnvelope {
	return s.alexaAnswer(ctx, req)
}
