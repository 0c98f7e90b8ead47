// Package alexafake plays Alexa against dontinterrupt, for tests and for
// sandbox mode. Alexa is the client here: the fake builds request envelopes
// in the shapes Amazon documents, signs them with a test certificate chain
// the way Alexa does (Signature-256 over the exact body, SignatureCertChainUrl
// naming where the chain lives) and POSTs them to our /alexa endpoint over
// real HTTP; and it performs account linking against our OAuth server as the
// Alexa app does (authorization code grant, then refresh).
//
//	fake := alexafake.New(alexafake.Options{SkillID: skillID, Now: clock.Now})
//	verifier := &alexa.Verifier{SkillID: skillID, Roots: fake.Roots(), Fetch: fake.Fetch, Now: clock.Now}
//	// … serve /alexa with the verifier …
//	res, err := fake.Send(ctx, app.URL+"/alexa",
//		fake.Intent("StartFocusIntent", map[string]string{"duration": "PT45M"}, accessToken))
//	// res.Status == 200, res.Speech() == "Focusing until 10:45 …"
//
// New generates a test root CA, an intermediate and signing certificates
// with the SAN echo-api.amazon.com; [Fake.Fetch] serves their PEM chains at
// https://s3.amazonaws.com/echo.api/… URLs (never over the network) and
// [Fake.Roots] is the pool to trust. Inject both into the [alexa.Verifier];
// the verifier's checks stay on.
//
// Broken requests, for the refusal tests, come from [SendOption]s:
// [WithSkillID], [WithTimestampOffset], [WithSignedBody], [WithCertURL],
// [WithCert] (CertExpired, CertNoSAN, CertUntrusted), [WithoutHeader] and
// [WithBody].
//
// [Fake.Link] and [Fake.Refresh] do account linking; [Fake.SaySomething]
// maps a few spoken phrases to intents and sends them with the linked
// token, for the sandbox's "say something" box.
//
// Time comes from [Options.Now]; nothing sleeps. The fake never logs, and
// its record of deliveries ([Fake.Deliveries]) holds no tokens.
package alexafake
