package alexa_test

import (
	"errors"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
)

func TestParseDuration(t *testing.T) {
	const (
		day  = 24 * time.Hour
		week = 7 * day
	)
	good := []struct {
		in   string
		want time.Duration
	}{
		{"PT45M", 45 * time.Minute},
		{"PT1H30M", 90 * time.Minute},
		{"PT10M", 10 * time.Minute},
		{"PT5H", 5 * time.Hour},
		{"PT5H10M", 5*time.Hour + 10*time.Minute},
		{"PT45S", 45 * time.Second},
		{"PT1H0M", time.Hour},
		{"PT1M30S", 90 * time.Second},
		{"PT1H2M3S", time.Hour + 2*time.Minute + 3*time.Second},
		{"P3D", 3 * day},
		{"P1W", week},
		{"P8W", 8 * week},
		{"P7Y", 7 * 365 * day},
		{"P1M", 30 * day},
		{"P1MT1M", 30*day + time.Minute},
		{"P2YT3H10M", 2*365*day + 3*time.Hour + 10*time.Minute},
		{"P1Y2M3W4DT5H6M7S", 365*day + 60*day + 21*day + 4*day + 5*time.Hour + 6*time.Minute + 7*time.Second},
		{"P1DT12H", 36 * time.Hour},
		{"PT0M", 0},
		{"PT1.5H", 90 * time.Minute},
		{"PT0,5H", 30 * time.Minute},
		{"PT.5M", 30 * time.Second},
		{"PT0.000000001S", time.Nanosecond},
		{"pt45m", 45 * time.Minute},
		{" PT45M ", 45 * time.Minute},
		{"P0D", 0},
	}
	for _, tc := range good {
		got, err := alexa.ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []string{
		"", "P", "PT", "T45M", "45M", "PT45", "PT?M", "P?D", "PT45X", "P45H", "PT3D", "P1DT",
		"PT1M1H", "P1D2Y", "PT1H1H", "P1W1W", "PTT1H", "P1DTT1H", "-PT45M", "PT-45M", "PT1..5H",
		"PT.H", "PT1.2.3H", "P99999999999999999999D", "P300Y", "PT9223372036854775807S", "P1 D", "PT45m30",
		"PT+45M", "45 minutes",
	}
	for _, in := range bad {
		if got, err := alexa.ParseDuration(in); !errors.Is(err, alexa.ErrDuration) {
			t.Errorf("ParseDuration(%q) = %v, %v; want ErrDuration", in, got, err)
		}
	}
}

func TestParseClockAndTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	now := time.Date(2026, 5, 1, 13, 20, 0, 0, berlin)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"15:00", time.Date(2026, 5, 1, 15, 0, 0, 0, berlin)},
		{"15:30", time.Date(2026, 5, 1, 15, 30, 0, 0, berlin)},
		{"9:05", time.Date(2026, 5, 2, 9, 5, 0, 0, berlin)},
		{"13:20", time.Date(2026, 5, 2, 13, 20, 0, 0, berlin)}, // not strictly after now: tomorrow
		{"13:21", time.Date(2026, 5, 1, 13, 21, 0, 0, berlin)},
		{"00:00", time.Date(2026, 5, 2, 0, 0, 0, 0, berlin)},
		{"23:59:30", time.Date(2026, 5, 1, 23, 59, 30, 0, berlin)},
		{"MO", time.Date(2026, 5, 2, 9, 0, 0, 0, berlin)},
		{"AF", time.Date(2026, 5, 1, 14, 0, 0, 0, berlin)},
		{"EV", time.Date(2026, 5, 1, 18, 0, 0, 0, berlin)},
		{"NI", time.Date(2026, 5, 1, 21, 0, 0, 0, berlin)},
		{"ni", time.Date(2026, 5, 1, 21, 0, 0, 0, berlin)},
	}
	for _, tc := range cases {
		// now is given in UTC: the location decides the day.
		got, err := alexa.ParseTime(tc.in, now.UTC(), berlin)
		if err != nil || !got.Equal(tc.want) || got.Location() != berlin {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "15", "24:00", "12:60", "1:2:3:4", "3pm", "MORNING", "XX", "-1:00", "12:5a", "123:00"} {
		if _, err := alexa.ParseTime(in, now, berlin); !errors.Is(err, alexa.ErrTime) {
			t.Errorf("ParseTime(%q) err %v, want ErrTime", in, err)
		}
	}

	// Clock.On tells a handler whether the time has passed today.
	c, _ := alexa.ParseClock("11:00")
	if on := c.On(now, berlin); !on.Before(now) || c.String() != "11:00" {
		t.Errorf("On %v, String %q", on, c.String())
	}
	if c, _ := alexa.ParseClock("AF"); c.Period != "AF" || c.Hour != 14 {
		t.Errorf("AF → %+v", c)
	}

	// Across a DST change (Berlin springs forward on 29 March 2026).
	eve := time.Date(2026, 3, 28, 22, 0, 0, 0, berlin)
	got, _ := alexa.ParseTime("09:00", eve, berlin)
	if want := time.Date(2026, 3, 29, 9, 0, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("across DST: %v, want %v", got, want)
	}
}
