package bolt

import bbolt "go.etcd.io/bbolt"

// RawUpdate gives the tests a write transaction on the file, to store records byte for byte.
func RawUpdate(s *Store, fn func(tx *bbolt.Tx) error) error { return s.db.Update(fn) }
