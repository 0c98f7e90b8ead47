package presence

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxEmojiRunes bounds an extracted emoji: the longest standard sequences (families with skin
// tones, subdivision flags) have 10 or fewer code points.
const maxEmojiRunes = 16

const (
	zwj       = '\u200D'
	vs15      = '\uFE0E' // text presentation
	vs16      = '\uFE0F' // emoji presentation
	keycap    = '\u20E3'
	tagCancel = '\U000E007F'
)

// LeadingEmoji returns the emoji a title starts with (after leading spaces), or "" when it
// does not start with one. An emoji is one pictographic character with what extends it:
// variation selector, skin-tone modifier, zero-width-joiner sequence, tag sequence (subdivision
// flags); or a pair of regional indicators (a flag); or a keycap ("1️⃣"). Characters that show
// as text unless followed by U+FE0F ("©", "™", "↔") count only with it. Nothing else of the
// title is kept.
func LeadingEmoji(title string) string {
	s := strings.TrimLeftFunc(title, unicode.IsSpace)
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || r == utf8.RuneError {
		return ""
	}
	rest := s[n:]
	next, _ := utf8.DecodeRuneInString(rest)

	switch {
	case isRegionalIndicator(r):
		if isRegionalIndicator(next) {
			return s[:n+utf8.RuneLen(next)]
		}
		return ""
	case r == '#' || r == '*' || ('0' <= r && r <= '9'):
		end := n
		if next == vs16 {
			end += utf8.RuneLen(vs16)
		}
		if k, kn := utf8.DecodeRuneInString(s[end:]); k == keycap {
			return s[:end+kn]
		}
		return ""
	case !isPictographic(r):
		return ""
	case next == vs15:
		return "" // explicitly text
	case next != vs16 && !isPresentation(r):
		return "" // shows as text by default
	}
	return s[:n+extend(s[n:], 1)]
}

// extend returns how many bytes of s continue an emoji whose base was just read; count is the
// number of runes taken so far.
func extend(s string, count int) int {
	i := 0
	for count < maxEmojiRunes {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case n == 0:
			return i
		case r == vs16, isSkinTone(r), isTag(r):
			i += n
			count++
		case r == zwj:
			p, pn := utf8.DecodeRuneInString(s[i+n:])
			if !isPictographic(p) || count+2 > maxEmojiRunes {
				return i
			}
			i += n + pn
			count += 2
		default:
			return i
		}
	}
	return i
}

func isRegionalIndicator(r rune) bool { return 0x1F1E6 <= r && r <= 0x1F1FF }
func isSkinTone(r rune) bool          { return 0x1F3FB <= r && r <= 0x1F3FF }
func isTag(r rune) bool               { return 0xE0020 <= r && r <= tagCancel }

// isPictographic reports whether r has the Unicode property Extended_Pictographic
// (emoji-data.txt).
func isPictographic(r rune) bool {
	if r >= 0x1F000 {
		return inTable(r, pictographicAstral)
	}
	return inTable(r, pictographicBMP)
}

// isPresentation reports whether a pictographic r shows as an emoji without U+FE0F
// (Emoji_Presentation). Outside the BMP nearly all pictographs do; the few text-default ones
// there are still accepted, as titles rarely hold them by accident.
func isPresentation(r rune) bool {
	if r >= 0x1F000 {
		return true
	}
	return inTable(r, presentationBMP)
}

func inTable(r rune, table [][2]rune) bool {
	lo, hi := 0, len(table)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < table[m][0]:
			hi = m
		case r > table[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// pictographicBMP and pictographicAstral are the Extended_Pictographic ranges, sorted.
var pictographicBMP = [][2]rune{
	{0x00A9, 0x00A9}, {0x00AE, 0x00AE}, {0x203C, 0x203C}, {0x2049, 0x2049}, {0x2122, 0x2122},
	{0x2139, 0x2139}, {0x2194, 0x2199}, {0x21A9, 0x21AA}, {0x231A, 0x231B}, {0x2328, 0x2328},
	{0x2388, 0x2388}, {0x23CF, 0x23CF}, {0x23E9, 0x23F3}, {0x23F8, 0x23FA}, {0x24C2, 0x24C2},
	{0x25AA, 0x25AB}, {0x25B6, 0x25B6}, {0x25C0, 0x25C0}, {0x25FB, 0x25FE}, {0x2600, 0x2605},
	{0x2607, 0x2612}, {0x2614, 0x2685}, {0x2690, 0x2705}, {0x2708, 0x2712}, {0x2714, 0x2714},
	{0x2716, 0x2716}, {0x271D, 0x271D}, {0x2721, 0x2721}, {0x2728, 0x2728}, {0x2733, 0x2734},
	{0x2744, 0x2744}, {0x2747, 0x2747}, {0x274C, 0x274C}, {0x274E, 0x274E}, {0x2753, 0x2755},
	{0x2757, 0x2757}, {0x2763, 0x2767}, {0x2795, 0x2797}, {0x27A1, 0x27A1}, {0x27B0, 0x27B0},
	{0x27BF, 0x27BF}, {0x2934, 0x2935}, {0x2B05, 0x2B07}, {0x2B1B, 0x2B1C}, {0x2B50, 0x2B50},
	{0x2B55, 0x2B55}, {0x3030, 0x3030}, {0x303D, 0x303D}, {0x3297, 0x3297}, {0x3299, 0x3299},
}

var pictographicAstral = [][2]rune{
	{0x1F000, 0x1F0FF}, {0x1F10D, 0x1F10F}, {0x1F12F, 0x1F12F}, {0x1F16C, 0x1F171},
	{0x1F17E, 0x1F17F}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F1AD, 0x1F1E5},
	{0x1F201, 0x1F20F}, {0x1F21A, 0x1F21A}, {0x1F22F, 0x1F22F}, {0x1F232, 0x1F23A},
	{0x1F23C, 0x1F23F}, {0x1F249, 0x1F3FA}, {0x1F400, 0x1F53D}, {0x1F546, 0x1F64F},
	{0x1F680, 0x1F6FF}, {0x1F774, 0x1F77F}, {0x1F7D5, 0x1F7FF}, {0x1F80C, 0x1F80F},
	{0x1F848, 0x1F84F}, {0x1F85A, 0x1F85F}, {0x1F888, 0x1F88F}, {0x1F8AE, 0x1F8FF},
	{0x1F90C, 0x1F93A}, {0x1F93C, 0x1F945}, {0x1F947, 0x1FAFF}, {0x1FC00, 0x1FFFD},
}

// presentationBMP are the Emoji_Presentation ranges below U+10000, sorted.
var presentationBMP = [][2]rune{
	{0x231A, 0x231B}, {0x23E9, 0x23EC}, {0x23F0, 0x23F0}, {0x23F3, 0x23F3}, {0x25FD, 0x25FE},
	{0x2614, 0x2615}, {0x2648, 0x2653}, {0x267F, 0x267F}, {0x2693, 0x2693}, {0x26A1, 0x26A1},
	{0x26AA, 0x26AB}, {0x26BD, 0x26BE}, {0x26C4, 0x26C5}, {0x26CE, 0x26CE}, {0x26D4, 0x26D4},
	{0x26EA, 0x26EA}, {0x26F2, 0x26F3}, {0x26F5, 0x26F5}, {0x26FA, 0x26FA}, {0x26FD, 0x26FD},
	{0x2705, 0x2705}, {0x270A, 0x270B}, {0x2728, 0x2728}, {0x274C, 0x274C}, {0x274E, 0x274E},
	{0x2753, 0x2755}, {0x2757, 0x2757}, {0x2795, 0x2797}, {0x27B0, 0x27B0}, {0x27BF, 0x27BF},
	{0x2B1B, 0x2B1C}, {0x2B50, 0x2B50}, {0x2B55, 0x2B55},
}
