// Package alexa holds what dontinterrupt needs to be the web service behind
// a custom Alexa skill: the JSON envelopes Alexa POSTs and expects back,
// the request verification Amazon requires of skills not hosted on Lambda,
// and parsers for the two built-in slot types the skill uses
// (AMAZON.DURATION and AMAZON.TIME).
//
// An /alexa handler reads the body (at most [MaxRequestBytes]), verifies it
// and answers:
//
//	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, alexa.MaxRequestBytes))
//	req, err := verifier.Verify(r.Context(), r.Header, body)
//	if err != nil {
//		http.Error(w, err.Error(), http.StatusBadRequest) // changes nothing
//		return
//	}
//	if req.AccessToken() == "" {
//		alexa.WriteResponse(w, alexa.LinkAccountCard("Open the Alexa app to link your account."))
//		return
//	}
//	...
//	alexa.WriteResponse(w, alexa.Speak("You're in focus until 3:15."))
//
// [Verifier.Verify] checks, in order: the Signature-256 and
// SignatureCertChainUrl headers; the certificate URL (https, host
// s3.amazonaws.com, port 443 when given, normalised path under /echo.api/);
// the PEM chain fetched from that URL (cached by URL until the signing
// certificate expires): the signing certificate valid now, with the SAN
// echo-api.amazon.com, chaining to a trusted root; the RSA PKCS #1 v1.5
// SHA-256 signature over the raw body; the request timestamp within 150
// seconds of now (an hour for AlexaSkillEvent.* requests); and the
// application ID equal to the skill ID. Every failure wraps one of the
// sentinel errors (ErrMissingHeaders, ErrCertURL, ErrCertInvalid,
// ErrSignature, ErrTimestamp, ErrSkillID, ErrMalformed); every one is
// answered with 400. The certificate fetcher, the root pool and the clock
// are injectable for tests (see package alexafake); no setting turns the
// verification off.
//
// Nothing in this package logs, and no error message contains an access
// token or any other part of a request body.
package alexa
