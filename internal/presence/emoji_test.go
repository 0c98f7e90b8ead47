package presence

import (
	"strings"
	"testing"
)

func TestLeadingEmoji(t *testing.T) {
	for _, tc := range []struct{ title, want string }{
		{"🎉 Launch", "🎉"},
		{"  🚀Ship it", "🚀"},
		{"☕ Coffee", "☕"},        // BMP, emoji presentation
		{"☎️ Call", "☎️"},        // text-default + VS16
		{"☎ Call", ""},           // text-default without VS16
		{"❤︎ text style", ""},    // VS15 asks for text
		{"👍🏽 Review", "👍🏽"},      // skin tone
		{"🏳️‍🌈 Pride", "🏳️‍🌈"},   // VS16 + ZWJ
		{"👩🏾‍💻 Hacking", "👩🏾‍💻"}, // skin tone + ZWJ
		{"🇨🇭 Offsite", "🇨🇭"},     // flag
		{"🇨 lone indicator", ""}, // half a flag
		{"🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"}, // tag sequence
		{"1️⃣ One on one", "1️⃣"},       // keycap
		{"1 on 1", ""},                  // a digit is not an emoji
		{"#launch", ""},                 // neither is a hash
		{"™ Brand", ""},                 // text-default
		{"Planning 🎯", ""},              // not leading
		{"", ""},                        // empty
		{"\xff broken", ""},             // invalid UTF-8
		{"🎉🎉 Double", "🎉"},              // one emoji only
		{"👨‍👩‍👧‍👦", "👨‍👩‍👧‍👦"}, // whole title
		{"👨\u200d", "👨"}, // dangling ZWJ dropped
		{"😀" + strings.Repeat("\u200d😀", 20), "😀" + strings.Repeat("\u200d😀", 7)}, // bounded
	} {
		if got := LeadingEmoji(tc.title); got != tc.want {
			t.Errorf("LeadingEmoji(%q) = %q, want %q", tc.title, got, tc.want)
		}
	}
}
