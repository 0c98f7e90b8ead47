package command

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	// Wednesday 25 November 2026, 10:20 in New York.
	now := time.Date(2026, 11, 25, 10, 20, 0, 0, ny)
	at := func(day, h, m int) time.Time { return time.Date(2026, 11, day, h, m, 0, 0, ny) }
	for _, tc := range []struct {
		name, in string
		want     Command
	}{
		{"focus minutes", "focus 45m", Command{Kind: Focus, Until: now.Add(45 * time.Minute)}},
		{"focus compound", "Focus 1h30m", Command{Kind: Focus, Until: now.Add(90 * time.Minute)}},
		{"focus words", "focus for 2 hours", Command{Kind: Focus, Until: now.Add(2 * time.Hour)}},
		{"focus words and", "focus 1 hour and 15 minutes", Command{Kind: Focus, Until: now.Add(75 * time.Minute)}},
		{"focus bare number is minutes", "focus 25", Command{Kind: Focus, Until: now.Add(25 * time.Minute)}},
		{"focus decimal hours", "focus 1.5h", Command{Kind: Focus, Until: now.Add(90 * time.Minute)}},
		{"focus default", "focus", Command{Kind: Focus, Until: now.Add(time.Hour)}},
		{"focus until 3pm", "focus until 3pm", Command{Kind: Focus, Until: at(25, 15, 0)}},
		{"focus until 24h clock", "focus until 15:30", Command{Kind: Focus, Until: at(25, 15, 30)}},
		{"focus until evening", "focus until 8pm", Command{Kind: Focus, Until: at(25, 20, 0)}},
		{"focus till noon", "focus till noon", Command{Kind: Focus, Until: at(25, 12, 0)}},
		{"focus bare clock", "focus 4pm", Command{Kind: Focus, Until: at(25, 16, 0)}},
		{"trailing punctuation", "  FOCUS   45m! ", Command{Kind: Focus, Until: now.Add(45 * time.Minute)}},
		{"back", "back", Command{Kind: Back}},
		{"i'm back", "I'm back", Command{Kind: Back}},
		{"done", "done", Command{Kind: Back}},
		{"extend default", "extend", Command{Kind: Extend, Duration: 15 * time.Minute}},
		{"extend", "extend 30m", Command{Kind: Extend, Duration: 30 * time.Minute}},
		{"pause until monday", "pause until monday", Command{Kind: Pause, Until: at(30, 0, 0)}},
		{"pause until tomorrow", "pause until tomorrow", Command{Kind: Pause, Until: at(26, 0, 0)}},
		{"pause until wednesday is next week", "pause until wed", Command{Kind: Pause, Until: time.Date(2026, 12, 2, 0, 0, 0, 0, ny)}},
		{"pause for", "pause for 2h", Command{Kind: Pause, Until: now.Add(2 * time.Hour)}},
		{"resume", "resume", Command{Kind: Resume}},
		{"status", "status?", Command{Kind: Status}},
		{"help", "help", Command{Kind: Help}},
		{"hello is help", "hello", Command{Kind: Help}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in, now, ny)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got.Kind != tc.want.Kind || !got.Until.Equal(tc.want.Until) || got.Duration != tc.want.Duration {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, in := range []string{"", "   ", "make coffee", "focus forever", "focus 13h", "focus until 25:00",
		"pause", "focus until 9am", "pause until someday", "pause 40 days", "extend 20h", "i'm hungry", "focus -5m"} {
		_, err := Parse(in, now, time.UTC)
		if !errors.Is(err, ErrUnknown) {
			t.Errorf("Parse(%q) = %v, want an ErrUnknown", in, err)
		}
	}
	_, err := Parse("make coffee", now, time.UTC)
	if err == nil || !contains(err.Error(), "focus 45m") {
		t.Errorf("the error does not say what to try: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// FuzzParse: no input panics, and a parsed focus or pause always ends in the future within its
// limit.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"focus 45m", "focus until 3pm", "back", "pause until monday", "resume", "status", "help", "extend 15m", "focus 1 hour and 15 minutes", "pause 2h"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s, now, time.UTC)
		if err != nil {
			return
		}
		switch c.Kind {
		case Focus:
			if !c.Until.After(now) || c.Until.Sub(now) > MaxFocus {
				t.Fatalf("Parse(%q) focus until %v", s, c.Until)
			}
		case Pause:
			if !c.Until.After(now) || c.Until.Sub(now) > MaxPause {
				t.Fatalf("Parse(%q) pause until %v", s, c.Until)
			}
		case Extend:
			if c.Duration <= 0 || c.Duration > MaxFocus {
				t.Fatalf("Parse(%q) extend %v", s, c.Duration)
			}
		}
	})
}
