package store

import (
	"strings"
	"testing"
)

func TestChannelTokenDigest(t *testing.T) {
	const token = "3f9a0c7e5b2d41a8c6e0f1b2a3d4c5e6f7a8b9c0d1e2f3a4"
	d := ChannelTokenDigest(token)
	if strings.Contains(d, token) || !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Fatalf("digest %q", d)
	}
	for _, tc := range []struct {
		stored, presented string
		want              bool
	}{
		{d, token, true},
		{d, token + "x", false},
		{d, "", false},
		{d, d, false}, // the digest itself is not the token
		{"", "", false},
		{"", token, false},
		{token, token, true}, // stored in clear by an earlier version
		{token, "other", false},
	} {
		if got := ChannelTokenMatches(tc.stored, tc.presented); got != tc.want {
			t.Errorf("ChannelTokenMatches(%q, %q) = %v, want %v", tc.stored, tc.presented, got, tc.want)
		}
	}
}
