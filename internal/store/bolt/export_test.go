package bolt

import (
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// RawUpdate gives the tests a write transaction on the file, to store records byte for byte.
func RawUpdate(s *Store, fn func(tx *bbolt.Tx) error) error { return s.db.Update(fn) }

// Channels lists the keys of the channel index.
func Channels(t *testing.T, s *Store) []string {
	t.Helper()
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketChannels).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
