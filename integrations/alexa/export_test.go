package alexa

// CacheLen is how many certificate chains v holds, for the tests of the
// cache bound.
func (v *Verifier) CacheLen() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cache)
}
