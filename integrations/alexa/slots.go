package alexa

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Calendar units of AMAZON.DURATION values, which name no start date:
// a year is 365 days, a month 30 days, a week 7 days and a day 24 hours.
const (
	Day   = 24 * time.Hour
	Week  = 7 * Day
	Month = 30 * Day
	Year  = 365 * Day
)

// ErrDuration and ErrTime are wrapped by the slot parsers' errors.
var (
	ErrDuration = errors.New("alexa: not an AMAZON.DURATION value")
	ErrTime     = errors.New("alexa: not an AMAZON.TIME value")
)

// ParseDuration parses an AMAZON.DURATION slot value, an ISO-8601 duration
// PnYnMnWnDTnHnMnS: "PT45M", "PT1H30M", "PT10M", "P3D", "P1W", "PT45S",
// "P2YT3H10M". Designators come in that order, each at most once, with at
// least one after P and after T; a number may have a decimal fraction
// ("PT1.5H", "PT0,5H"). Y is 365 days, M before T 30 days, W 7 days and D
// 24 hours (see Year, Month, Week, Day); M after T is minutes. Values Alexa
// could not resolve (such as "PT?M"), negative ones and ones beyond
// time.Duration's range are errors wrapping ErrDuration.
func ParseDuration(iso string) (time.Duration, error) {
	s := strings.ToUpper(strings.TrimSpace(iso))
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("%w: %q: %s", ErrDuration, iso, why)
	}
	if !strings.HasPrefix(s, "P") {
		return bad("does not start with P")
	}
	s = s[1:]
	if s == "" {
		return bad("no components")
	}
	dateUnits := []struct {
		d    byte
		unit time.Duration
	}{{'Y', Year}, {'M', Month}, {'W', Week}, {'D', Day}}
	timeUnits := []struct {
		d    byte
		unit time.Duration
	}{{'H', time.Hour}, {'M', time.Minute}, {'S', time.Second}}

	var total time.Duration
	inTime := false
	next := 0 // index of the next designator allowed in the current part
	sawTimeComponent := false
	for len(s) > 0 {
		if s[0] == 'T' {
			if inTime {
				return bad("T twice")
			}
			inTime, next = true, 0
			s = s[1:]
			if s == "" {
				return bad("nothing after T")
			}
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
			i++
		}
		if i == 0 {
			return bad("expected a number")
		}
		if i == len(s) {
			return bad("number without a designator")
		}
		num, d := s[:i], s[i]
		s = s[i+1:]
		units := dateUnits
		if inTime {
			units = timeUnits
		}
		found := false
		for j := next; j < len(units); j++ {
			if units[j].d == d {
				v, err := scale(num, units[j].unit)
				if err != nil {
					return bad(err.Error())
				}
				if total > math.MaxInt64-v {
					return bad("too long")
				}
				total += v
				next, found = j+1, true
				break
			}
		}
		if !found {
			return bad(fmt.Sprintf("unexpected designator %q", d))
		}
		if inTime {
			sawTimeComponent = true
		}
	}
	if inTime && !sawTimeComponent {
		return bad("nothing after T")
	}
	return total, nil
}

// scale returns num units, num being digits with an optional fraction.
func scale(num string, unit time.Duration) (time.Duration, error) {
	num = strings.ReplaceAll(num, ",", ".")
	intPart, frac, hasFrac := strings.Cut(num, ".")
	if strings.Contains(frac, ".") {
		return 0, errors.New("malformed number")
	}
	if intPart == "" && (!hasFrac || frac == "") {
		return 0, errors.New("malformed number")
	}
	var n int64
	for _, c := range intPart {
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, errors.New("too long")
		}
		n = n*10 + d
	}
	if n > math.MaxInt64/int64(unit) {
		return 0, errors.New("too long")
	}
	v := time.Duration(n) * unit
	if hasFrac && frac != "" {
		// Nanoseconds of precision are enough: every unit is a whole number
		// of seconds, so (unit/1s)*fraction·1e9 is exact and cannot
		// overflow for a fraction below 1.
		if len(frac) > 9 {
			frac = frac[:9]
		}
		var f int64
		for _, c := range frac {
			f = f*10 + int64(c-'0')
		}
		for k := len(frac); k < 9; k++ {
			f *= 10
		}
		add := time.Duration(int64(unit/time.Second) * f)
		if v > math.MaxInt64-add {
			return 0, errors.New("too long")
		}
		v += add
	}
	return v, nil
}

// Clock is a time of day from an AMAZON.TIME slot.
type Clock struct {
	Hour, Minute, Second int
	// Period is "MO", "AF", "EV" or "NI" when the person named a part of
	// the day rather than a time; Hour is then 9, 14, 18 or 21.
	Period string
}

// Parts of the day AMAZON.TIME resolves to, and the clock times we take
// them to mean.
var periods = map[string]int{"MO": 9, "AF": 14, "EV": 18, "NI": 21}

// ParseClock parses an AMAZON.TIME slot value: "15:00", "15:30", "15:30:05",
// or a part of the day: "MO" (morning, 9:00), "AF" (afternoon, 14:00), "EV"
// (evening, 18:00), "NI" (night, 21:00). Errors wrap ErrTime.
func ParseClock(value string) (Clock, error) {
	v := strings.ToUpper(strings.TrimSpace(value))
	if h, ok := periods[v]; ok {
		return Clock{Hour: h, Period: v}, nil
	}
	bad := fmt.Errorf("%w: %q", ErrTime, value)
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Clock{}, bad
	}
	var nums [3]int
	limits := [3]int{23, 59, 59}
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return Clock{}, bad
		}
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return Clock{}, bad
			}
			n = n*10 + int(c-'0')
		}
		if n > limits[i] {
			return Clock{}, bad
		}
		nums[i] = n
	}
	return Clock{Hour: nums[0], Minute: nums[1], Second: nums[2]}, nil
}

// On is the clock time on the day of t in loc (nil: t's location).
func (c Clock) On(t time.Time, loc *time.Location) time.Time {
	if loc != nil {
		t = t.In(loc)
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, c.Hour, c.Minute, c.Second, 0, t.Location())
}

// Next is the first occurrence of the clock time strictly after now in loc
// (nil: now's location): today's if it is still ahead, else tomorrow's.
func (c Clock) Next(now time.Time, loc *time.Location) time.Time {
	t := c.On(now, loc)
	if t.After(now) {
		return t
	}
	local := now
	if loc != nil {
		local = now.In(loc)
	}
	y, m, d := local.Date()
	return time.Date(y, m, d+1, c.Hour, c.Minute, c.Second, 0, local.Location())
}

// String is the clock as H:MM (or the period's name).
func (c Clock) String() string {
	if c.Second != 0 {
		return fmt.Sprintf("%d:%02d:%02d", c.Hour, c.Minute, c.Second)
	}
	return fmt.Sprintf("%d:%02d", c.Hour, c.Minute)
}

// ParseTime parses an AMAZON.TIME slot value (see ParseClock) into the next
// occurrence of that time strictly after now in loc. A handler that wants
// to tell the person "that time has passed" compares Clock.On(now, loc)
// with now instead.
func ParseTime(value string, now time.Time, loc *time.Location) (time.Time, error) {
	c, err := ParseClock(value)
	if err != nil {
		return time.Time{}, err
	}
	return c.Next(now, loc), nil
}
