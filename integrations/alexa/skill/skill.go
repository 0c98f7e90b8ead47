// Package skill holds the Alexa skill package an operator imports into the
// Alexa developer console (or deploys with the ASK CLI), embedded so the
// service and its tests can read it:
//
//	skill.json                          the manifest: a custom skill whose
//	                                    endpoint is https://YOUR-HOST/alexa
//	accountLinking.json                 the account-linking settings
//	                                    (SMAPI accountLinkingRequest):
//	                                    auth code grant against
//	                                    https://YOUR-HOST/oauth/authorize and
//	                                    /oauth/token, HTTP_BASIC, scope "status"
//	interactionModels/custom/en-US.json the interaction model, invocation
//	interactionModels/custom/en-GB.json "don't interrupt"
//
// Replace YOUR-HOST with the service's public host name, and the client ID
// and secret in accountLinking.json with ALEXA_CLIENT_ID and
// ALEXA_CLIENT_SECRET. Account linking is not part of a skill manifest in
// Amazon's schema, hence its own file, which
// `ask smapi update-account-linking-info --skill-id … --account-linking-request file:accountLinking.json`
// takes as is (or copy its values into the console's Account Linking page).
package skill

import "embed"

// Files is the skill package.
//
//go:embed skill.json accountLinking.json interactionModels
var Files embed.FS

// Locales are the locales the skill package has an interaction model for.
var Locales = []string{"en-US", "en-GB"}

// Placeholder is the host name to replace in the manifest and the
// account-linking settings.
const Placeholder = "YOUR-HOST"
