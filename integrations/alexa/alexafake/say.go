package alexafake

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
)

// Intents of the skill's interaction model (integrations/alexa/skill).
const (
	IntentStartFocus = "StartFocusIntent"
	IntentEndFocus   = "EndFocusIntent"
	IntentPause      = "PauseIntent"
	IntentResume     = "ResumeIntent"
	IntentStatus     = "StatusIntent"
)

// Slot names of StartFocusIntent.
const (
	SlotDuration = "duration"
	SlotUntil    = "until"
)

// Utterance is what Alexa's language understanding made of a phrase.
type Utterance struct {
	// Launch is true for "open don't interrupt" (and an empty phrase): a
	// LaunchRequest, no intent.
	Launch bool
	Intent string
	Slots  map[string]string
}

var (
	invocationPrefix = regexp.MustCompile(`^(alexa )?((tell|ask|open|launch|start) )?(don'?t interrupt|dont interrupt|do not interrupt)( (that|to|if|whether|for))?\b ?`)
	forDuration      = regexp.MustCompile(`^(?:i'?m |i am )?(?:focus(?:ing)?|busy|heads down|do not disturb me|don'?t disturb me) for (.+)$`)
	untilTime        = regexp.MustCompile(`^(?:i'?m |i am )?(?:focus(?:ing)?|busy|heads down|do not disturb me|don'?t disturb me) until (.+)$`)
	durationPart     = regexp.MustCompile(`(\d+|an|a|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|forty five|fifty|sixty|ninety|half an?) ?(hours?|minutes?|mins?|hrs?|seconds?)`)
	clockTime        = regexp.MustCompile(`^(\d{1,2})(?::(\d{2}))? ?(am|pm|a\.m\.|p\.m\.)?$`)
)

var numberWords = map[string]int{
	"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
	"seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
	"fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "forty five": 45,
	"fifty": 50, "sixty": 60, "ninety": 90,
}

// Understand maps a phrase to an intent the way the skill's interaction
// model would, for a handful of phrasings: "I'm focusing for 45 minutes"
// (StartFocusIntent, duration PT45M), "focus for an hour and a half",
// "focus until 3 pm" (until 15:00), "I'm back" (EndFocusIntent), "pause",
// "resume", "what's my status", "help", "stop", "cancel", "go home";
// "open don't interrupt" or nothing is a launch; anything else is
// AMAZON.FallbackIntent. A leading "Alexa, tell don't interrupt" is
// ignored.
func Understand(phrase string) Utterance {
	s := strings.ToLower(strings.TrimSpace(phrase))
	s = strings.NewReplacer("’", "'", ",", " ", "?", " ", "!", " ").Replace(s)
	s = strings.TrimRight(strings.Join(strings.Fields(s), " "), ".")
	s = strings.TrimSpace(invocationPrefix.ReplaceAllString(s, ""))
	switch s {
	case "":
		return Utterance{Launch: true}
	case "i'm back", "im back", "i am back", "back", "end focus", "stop focusing", "i'm done", "i'm done focusing", "end focus mode":
		return Utterance{Intent: IntentEndFocus}
	case "pause", "pause automation", "pause updates", "pause my status":
		return Utterance{Intent: IntentPause}
	case "resume", "resume automation", "resume updates", "unpause":
		return Utterance{Intent: IntentResume}
	case "what's my status", "whats my status", "what is my status", "status", "am i in focus":
		return Utterance{Intent: IntentStatus}
	case "help", "what can i say":
		return Utterance{Intent: alexa.IntentHelp}
	case "stop", "shut up", "never mind":
		return Utterance{Intent: alexa.IntentStop}
	case "cancel":
		return Utterance{Intent: alexa.IntentCancel}
	case "go home", "home":
		return Utterance{Intent: alexa.IntentNavigateHome}
	}
	if m := forDuration.FindStringSubmatch(s); m != nil {
		if iso, ok := spokenDuration(m[1]); ok {
			return Utterance{Intent: IntentStartFocus, Slots: map[string]string{SlotDuration: iso, SlotUntil: ""}}
		}
	}
	if m := untilTime.FindStringSubmatch(s); m != nil {
		if hm, ok := spokenTime(m[1]); ok {
			return Utterance{Intent: IntentStartFocus, Slots: map[string]string{SlotDuration: "", SlotUntil: hm}}
		}
	}
	return Utterance{Intent: alexa.IntentFallback}
}

// spokenDuration turns "45 minutes", "an hour and a half", "1 hour 30
// minutes" into an ISO-8601 duration.
func spokenDuration(s string) (string, bool) {
	s = strings.ReplaceAll(s, " and a half", " and half")
	var mins, secs int
	matched := false
	for _, m := range durationPart.FindAllStringSubmatch(s, -1) {
		n := 0
		switch {
		case strings.HasPrefix(m[1], "half"):
			n = -1 // half a unit
		default:
			if v, err := strconv.Atoi(m[1]); err == nil {
				n = v
			} else {
				n = numberWords[m[1]]
			}
		}
		matched = true
		switch unit := m[2]; {
		case strings.HasPrefix(unit, "h"):
			if n < 0 {
				mins += 30
			} else {
				mins += 60 * n
			}
		case strings.HasPrefix(unit, "m"):
			mins += n
		default:
			secs += n
		}
	}
	if strings.HasSuffix(s, "and half") && matched {
		mins += 30
	}
	if !matched || mins+secs <= 0 {
		return "", false
	}
	iso := "PT"
	if h := mins / 60; h > 0 {
		iso += fmt.Sprintf("%dH", h)
	}
	if m := mins % 60; m > 0 {
		iso += fmt.Sprintf("%dM", m)
	}
	if secs > 0 {
		iso += fmt.Sprintf("%dS", secs)
	}
	return iso, true
}

// spokenTime turns "3 pm", "15:30", "noon", "the evening" into an
// AMAZON.TIME value.
func spokenTime(s string) (string, bool) {
	s = strings.TrimPrefix(s, "the ")
	switch s {
	case "noon", "midday":
		return "12:00", true
	case "midnight":
		return "00:00", true
	case "morning", "this morning":
		return "MO", true
	case "afternoon", "this afternoon":
		return "AF", true
	case "evening", "this evening", "tonight":
		return "EV", true
	case "night":
		return "NI", true
	}
	m := clockTime.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	h, _ := strconv.Atoi(m[1])
	mins := 0
	if m[2] != "" {
		mins, _ = strconv.Atoi(m[2])
	}
	switch strings.ReplaceAll(m[3], ".", "") {
	case "pm":
		if h < 12 {
			h += 12
		}
	case "am":
		if h == 12 {
			h = 0
		}
	}
	if h > 23 || mins > 59 {
		return "", false
	}
	return fmt.Sprintf("%02d:%02d", h, mins), true
}

// SaySomething is the sandbox's "say something" box: it understands text
// (see Understand), builds the request Alexa would send with the linked
// account's access token (refreshing it first if it has expired), and sends
// it signed to endpoint. Without a linked account the request goes out
// unlinked, as Alexa would send it.
func (f *Fake) SaySomething(ctx context.Context, endpoint, text string) (Result, error) {
	token, err := f.accessToken(ctx)
	if err != nil && err != ErrNotLinked {
		return Result{}, err
	}
	u := Understand(text)
	var env alexa.Request
	if u.Launch {
		env = f.Launch("", token)
	} else {
		env = f.Intent(u.Intent, u.Slots, token)
	}
	return f.Send(ctx, endpoint, env)
}
