package store

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// channelDigestPrefix marks a SyncState.ChannelToken that holds a digest, not the token.
const channelDigestPrefix = "sha256:"

// ChannelTokenDigest is what is stored of a push channel's secret (SyncState.ChannelToken,
// the Graph clientState or Google channel token): its SHA-256, so that a copy of the store
// cannot forge notifications. The tokens are random (192 bits), so a plain hash is enough.
func ChannelTokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return channelDigestPrefix + hex.EncodeToString(sum[:])
}

// ChannelTokenMatches reports, in constant time, whether the token a notification carries is
// the one whose digest is stored. A token an earlier version stored in clear still matches.
func ChannelTokenMatches(stored, presented string) bool {
	if stored == "" {
		return false
	}
	if !strings.HasPrefix(stored, channelDigestPrefix) {
		return subtle.ConstantTimeCompare([]byte(stored), []byte(presented)) == 1
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(ChannelTokenDigest(presented))) == 1
}
