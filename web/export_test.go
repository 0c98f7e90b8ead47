package web

// The Slack parsers, for the fuzz tests in package web_test.
var (
	ParseEventsPayload      = parseEventsPayload
	ParseInteractionPayload = parseInteractionPayload
)
