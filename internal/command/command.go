// Package command parses the small command language people type in the Slack App Home's
// messages tab ("focus 45m", "focus until 3pm", "back", "pause until monday", "resume",
// "status", "help"). Parsing is forgiving: case, extra words and common spellings are
// accepted; anything else gets a helpful error. Pure: the time and zone come in as arguments.
package command

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind is what a command asks for.
type Kind string

const (
	Focus  Kind = "focus"
	Back   Kind = "back"
	Pause  Kind = "pause"
	Resume Kind = "resume"
	Status Kind = "status"
	Help   Kind = "help"
	Extend Kind = "extend"
)

// Command is a parsed command. Focus and Pause carry Until (absolute); Extend carries Duration.
type Command struct {
	Kind     Kind
	Until    time.Time
	Duration time.Duration
}

// Limits.
const (
	MaxFocus     = 12 * time.Hour
	MaxPause     = 31 * 24 * time.Hour
	DefaultFocus = time.Hour
)

// ErrUnknown is wrapped by errors for text that is not a command.
var ErrUnknown = errors.New("not a command")

// Usage is the help text.
const Usage = "Try: `focus 45m`, `focus 1h30m`, `focus until 3pm`, `back`, `extend 15m`, `pause until monday`, `pause 2h`, `resume`, `status`, `help`."

var (
	spaces   = regexp.MustCompile(`\s+`)
	durWords = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*(h|hr|hrs|hour|hours|m|min|mins|minute|minutes)$`)
)

// Parse reads one message. now and loc place relative times ("until 3pm", "until monday").
func Parse(text string, now time.Time, loc *time.Location) (Command, error) {
	if loc == nil {
		loc = time.UTC
	}
	t := strings.ToLower(strings.TrimSpace(text))
	t = strings.Trim(t, ".!?")
	t = spaces.ReplaceAllString(t, " ")
	if t == "" {
		return Command{}, fmt.Errorf("%w: the message is empty. %s", ErrUnknown, Usage)
	}
	if len(t) > 200 {
		return Command{}, fmt.Errorf("%w: that is too long for a command. %s", ErrUnknown, Usage)
	}
	verb, rest, _ := strings.Cut(t, " ")
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "for "))
	switch verb {
	case "focus", "focusing", "dnd", "busy":
		if rest == "" {
			return Command{Kind: Focus, Until: now.Add(DefaultFocus)}, nil
		}
		until, err := when(rest, now, loc, MaxFocus)
		if err != nil {
			return Command{}, err
		}
		return Command{Kind: Focus, Until: until}, nil
	case "back", "i'm", "im", "done", "stop", "end":
		if verb == "i'm" || verb == "im" {
			if rest != "back" {
				break
			}
		}
		return Command{Kind: Back}, nil
	case "extend", "more":
		if rest == "" {
			return Command{Kind: Extend, Duration: 15 * time.Minute}, nil
		}
		d, err := duration(rest)
		if err != nil {
			return Command{}, err
		}
		if d > MaxFocus {
			return Command{}, fmt.Errorf("%w: %s is longer than %s", ErrUnknown, d, MaxFocus)
		}
		return Command{Kind: Extend, Duration: d}, nil
	case "pause":
		if rest == "" {
			return Command{}, fmt.Errorf("%w: pause until when? For example `pause until monday`, `pause until tomorrow` or `pause 2h`", ErrUnknown)
		}
		until, err := when(rest, now, loc, MaxPause)
		if err != nil {
			return Command{}, err
		}
		return Command{Kind: Pause, Until: until}, nil
	case "resume", "unpause", "start":
		return Command{Kind: Resume}, nil
	case "status", "state", "now", "what":
		return Command{Kind: Status}, nil
	case "help", "?", "commands", "hi", "hello":
		return Command{Kind: Help}, nil
	}
	return Command{}, fmt.Errorf("%w: I did not understand %q. %s", ErrUnknown, clip(text), Usage)
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// when reads "45m", "1h30m", "90 minutes", "until 3pm", "until 15:30", "until tomorrow",
// "until monday" into an absolute time after now, at most max ahead.
func when(s string, now time.Time, loc *time.Location, max time.Duration) (time.Time, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "until "); ok {
		t, err := clockOrDay(strings.TrimSpace(rest), now, loc)
		if err != nil {
			return time.Time{}, err
		}
		if t.Sub(now) > max {
			return time.Time{}, fmt.Errorf("%w: that is more than %s away", ErrUnknown, human(max))
		}
		return t, nil
	}
	if rest, ok := strings.CutPrefix(s, "till "); ok {
		return when("until "+rest, now, loc, max)
	}
	d, err := duration(s)
	if err != nil {
		// "focus 3pm" or "pause monday": read as until.
		if t, err2 := clockOrDay(s, now, loc); err2 == nil && t.Sub(now) <= max {
			return t, nil
		}
		return time.Time{}, err
	}
	if d > max {
		return time.Time{}, fmt.Errorf("%w: %s is longer than %s", ErrUnknown, d, human(max))
	}
	return now.Add(d), nil
}

// tooLong bounds what duration adds up, far beyond any limit, so time.Duration cannot overflow.
const tooLong = time.Duration(1 << 62)

// duration reads "45m", "45 min", "1h30m", "1.5h", "2 hours", "90".
func duration(s string) (time.Duration, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " and ", " ")
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		if n > int(tooLong/time.Minute) { // time.Duration would overflow
			return 0, fmt.Errorf("%w: %q minutes is too long", ErrUnknown, s)
		}
		return time.Duration(n) * time.Minute, nil // a bare number is minutes
	}
	if d, err := time.ParseDuration(strings.ReplaceAll(s, " ", "")); err == nil {
		if d = d.Round(time.Minute); d < time.Minute {
			return 0, fmt.Errorf("%w: %q is less than a minute", ErrUnknown, s)
		}
		return d, nil
	}
	var total time.Duration
	parts := strings.Fields(s)
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		if i+1 < len(parts) && durWords.MatchString(p+" "+parts[i+1]) {
			p += " " + parts[i+1]
			i++
		}
		m := durWords.FindStringSubmatch(strings.ReplaceAll(p, " ", ""))
		if m == nil {
			m = durWords.FindStringSubmatch(p)
		}
		if m == nil {
			return 0, fmt.Errorf("%w: %q is not a length of time; write it like 45m, 1h30m or 2 hours", ErrUnknown, s)
		}
		f, _ := strconv.ParseFloat(m[1], 64)
		unit := time.Minute
		if strings.HasPrefix(m[2], "h") {
			unit = time.Hour
		}
		if v := f * float64(unit); v >= float64(tooLong) || total >= tooLong {
			return 0, fmt.Errorf("%w: %q is too long", ErrUnknown, s)
		}
		total += time.Duration(f * float64(unit))
	}
	if total = total.Round(time.Minute); total < time.Minute {
		return 0, fmt.Errorf("%w: %q is not a length of time of a minute or more", ErrUnknown, s)
	}
	return total, nil
}

var clockRe = regexp.MustCompile(`^(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?$`)

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "sun": time.Sunday, "monday": time.Monday, "mon": time.Monday,
	"tuesday": time.Tuesday, "tue": time.Tuesday, "tues": time.Tuesday, "wednesday": time.Wednesday,
	"wed": time.Wednesday, "thursday": time.Thursday, "thu": time.Thursday, "thurs": time.Thursday,
	"friday": time.Friday, "fri": time.Friday, "saturday": time.Saturday, "sat": time.Saturday,
}

// clockOrDay reads "3pm", "15:30", "noon", "tomorrow", "monday" (the start of that day, local)
// as the next such time after now.
func clockOrDay(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(strings.TrimPrefix(s, "next "))
	local := now.In(loc)
	midnight := func(days int) time.Time {
		return time.Date(local.Year(), local.Month(), local.Day()+days, 0, 0, 0, 0, loc)
	}
	switch s {
	case "tomorrow", "tmrw", "tomorrow morning":
		return midnight(1), nil
	case "noon", "midday":
		s = "12:00"
	case "midnight", "tonight":
		return midnight(1), nil
	case "end of day", "eod":
		s = "17:00"
	}
	if wd, ok := weekdays[s]; ok {
		days := (int(wd) - int(local.Weekday()) + 7) % 7
		if days == 0 {
			days = 7
		}
		return midnight(days), nil
	}
	m := clockRe.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("%w: %q is not a time I know; write it like 3pm, 15:30, tomorrow or monday", ErrUnknown, s)
	}
	h, _ := strconv.Atoi(m[1])
	min := 0
	if m[2] != "" {
		min, _ = strconv.Atoi(m[2])
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
	if h > 23 || min > 59 {
		return time.Time{}, fmt.Errorf("%w: %q is not a time of day", ErrUnknown, s)
	}
	t := time.Date(local.Year(), local.Month(), local.Day(), h, min, 0, 0, loc)
	if !t.After(now) {
		t = time.Date(local.Year(), local.Month(), local.Day()+1, h, min, 0, 0, loc)
	}
	return t, nil
}

func human(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
