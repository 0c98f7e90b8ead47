// Package faulttest injects provider faults into tests: an http.Handler middleware that wraps a
// fake's handler (googlefake, graphfake, slackfake, zoomfake…) and, switched at run time, makes
// matching requests fail the ways real providers fail: an error status with or without
// Retry-After, no answer at all until the client gives up (a timeout), the connection closed in
// the middle of the answer, or a 200 whose JSON body is broken. Requests that match no fault go
// to the wrapped handler unchanged.
//
// Faults are matched in the order they were injected; the first whose matchers all accept the
// request applies. A fault lasts until Clear, or for a number of requests (Times).
package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
)

// kind is what a fault does to a request.
type kind int

const (
	kindStatus    kind = iota + 1 // answer an error status
	kindHang                      // never answer: wait until the client gives up
	kindReset                     // close the connection in the middle of the answer
	kindMalformed                 // answer 200 with a broken JSON body
)

// Fault is one way for a request to fail. Make one with Status, RateLimited, Hang, Reset or
// Malformed.
type Fault struct {
	kind        kind
	status      int
	retryAfter  string
	contentType string
	body        string
	served      bool
}

// Status answers code with a small JSON error body and no Retry-After.
func Status(code int) Fault {
	return Fault{kind: kindStatus, status: code}
}

// RateLimited answers 429 with Retry-After: retryAfter, or without the header when retryAfter
// is empty (Zoom sometimes leaves it out).
func RateLimited(retryAfter string) Fault {
	return Fault{kind: kindStatus, status: http.StatusTooManyRequests, retryAfter: retryAfter}
}

// Hang accepts the request and does not answer until the client gives up (the request's
// context ends) or the fault is cleared, which answers 503 at last. The provider never sees the
// request.
func Hang() Fault { return Fault{kind: kindHang} }

// Reset closes the connection in the middle of the answer: the status line and part of a
// header are written, then the connection is closed, so every client sees an error.
func Reset() Fault { return Fault{kind: kindReset} }

// Malformed answers 200 with Content-Type application/json and a body that is not valid JSON.
func Malformed() Fault { return Fault{kind: kindMalformed} }

// WithRetryAfter sets a Retry-After header on a status fault.
func (f Fault) WithRetryAfter(v string) Fault {
	f.retryAfter = v
	return f
}

// WithBody sets the body (and its content type) of a status fault.
func (f Fault) WithBody(contentType, body string) Fault {
	f.contentType, f.body = contentType, body
	return f
}

// AfterServing makes a Reset or Malformed fault hit after the wrapped handler has served the
// request: the provider did the work (a write took effect, a refresh token was spent) and
// only its answer is lost. Without it the provider never sees the request.
func (f Fault) AfterServing() Fault {
	f.served = true
	return f
}

// Served reports whether the provider serves the request before the fault hits.
func (f Fault) Served() bool { return f.served }

// Hangs reports whether the fault is a Hang.
func (f Fault) Hangs() bool { return f.kind == kindHang }

// String names the fault, for test names and messages.
func (f Fault) String() string {
	s := ""
	switch f.kind {
	case kindStatus:
		s = fmt.Sprintf("HTTP %d", f.status)
		if f.retryAfter != "" {
			s += " Retry-After: " + f.retryAfter
		}
	case kindHang:
		s = "hang"
	case kindReset:
		s = "connection reset"
	case kindMalformed:
		s = "malformed JSON"
	}
	if f.served {
		s += " (after serving)"
	}
	return s
}

// Match decides whether a fault applies to a request. A Match may read the request's body
// only through Form.
type Match func(r *http.Request, form url.Values) bool

// Prefix matches requests whose path starts with p.
func Prefix(p string) Match {
	return func(r *http.Request, _ url.Values) bool { return strings.HasPrefix(r.URL.Path, p) }
}

// Suffix matches requests whose path ends with s (an OAuth token endpoint under a tenant).
func Suffix(s string) Match {
	return func(r *http.Request, _ url.Values) bool { return strings.HasSuffix(r.URL.Path, s) }
}

// Secret matches requests that carry secret: as the bearer token, or as any value of the query
// or of a form body (Slack's token=, an OAuth refresh_token=). It scopes a fault to one person.
func Secret(secret string) Match {
	return func(r *http.Request, form url.Values) bool {
		if secret == "" {
			return false
		}
		if r.Header.Get("Authorization") == "Bearer "+secret {
			return true
		}
		for _, vs := range []url.Values{r.URL.Query(), form} {
			for _, v := range vs {
				for _, x := range v {
					if x == secret {
						return true
					}
				}
			}
		}
		return false
	}
}

// rule is an injected fault with its matchers.
type rule struct {
	f     Fault
	match []Match
	left  int // requests left; < 0 for no limit
}

// Injector is the middleware. Its zero value is not usable: call New.
type Injector struct {
	next http.Handler

	mu       sync.Mutex
	rules    []*rule
	faulted  int           // requests a fault was applied to
	hanging  int           // requests hanging now
	release  chan struct{} // closed by Clear: hanging requests return
	changed  chan struct{} // closed and replaced when faulted or hanging changes
	requests []string      // path of every request faulted, in order
}

// New wraps next.
func New(next http.Handler) *Injector {
	return &Injector{next: next, release: make(chan struct{}), changed: make(chan struct{})}
}

// Inject makes requests matching every m fail with f until Clear. With no matcher, every
// request fails.
func (in *Injector) Inject(f Fault, m ...Match) {
	in.add(f, -1, m)
}

// Times makes the next n requests matching every m fail with f.
func (in *Injector) Times(n int, f Fault, m ...Match) {
	in.add(f, n, m)
}

func (in *Injector) add(f Fault, n int, m []Match) {
	if f.kind == 0 {
		panic("faulttest: a zero Fault")
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append(in.rules, &rule{f: f, match: m, left: n})
}

// Clear removes every fault; hanging requests are answered 503.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = nil
	close(in.release)
	in.release = make(chan struct{})
}

// Faulted returns how many requests a fault was applied to so far.
func (in *Injector) Faulted() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.faulted
}

// FaultedPaths returns the path of every request a fault was applied to, in order.
func (in *Injector) FaultedPaths() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.requests...)
}

// Hanging returns how many requests are hanging now.
func (in *Injector) Hanging() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.hanging
}

// WaitHanging waits until at least n requests are hanging, or ctx ends.
func (in *Injector) WaitHanging(ctx context.Context, n int) error {
	for {
		in.mu.Lock()
		h, ch := in.hanging, in.changed
		in.mu.Unlock()
		if h >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("faulttest: %d requests hanging, want %d: %w", h, n, ctx.Err())
		}
	}
}

// notifyLocked wakes WaitHanging; in.mu must be held.
func (in *Injector) notifyLocked() {
	close(in.changed)
	in.changed = make(chan struct{})
}

// ServeHTTP applies the first matching fault, or serves the request with the wrapped handler.
func (in *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, release, ok := in.take(r)
	if !ok {
		in.next.ServeHTTP(w, r)
		return
	}
	switch f.kind {
	case kindStatus:
		writeStatus(w, f)
	case kindHang:
		if in.hang(r, release) {
			writeStatus(w, Status(http.StatusServiceUnavailable))
		}
	case kindReset:
		in.reset(w, r, f)
	case kindMalformed:
		in.malformed(w, r, f)
	}
}

// take finds the fault for r, if any, and counts it.
func (in *Injector) take(r *http.Request) (Fault, <-chan struct{}, bool) {
	in.mu.Lock()
	empty := len(in.rules) == 0
	in.mu.Unlock()
	if empty {
		return Fault{}, nil, false
	}
	form := readForm(r)
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, ru := range in.rules {
		if !matches(ru.match, r, form) {
			continue
		}
		if ru.left > 0 {
			ru.left--
			if ru.left == 0 {
				in.rules = append(in.rules[:i:i], in.rules[i+1:]...)
			}
		}
		in.faulted++
		in.requests = append(in.requests, r.URL.Path)
		in.notifyLocked()
		return ru.f, in.release, true
	}
	return Fault{}, nil, false
}

func matches(ms []Match, r *http.Request, form url.Values) bool {
	for _, m := range ms {
		if !m(r, form) {
			return false
		}
	}
	return true
}

// readForm parses a form body without consuming it: the body is put back for the handler.
func readForm(r *http.Request) url.Values {
	if r.Body == nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	form, _ := url.ParseQuery(string(b))
	return form
}

// writeStatus answers a status fault.
func writeStatus(w http.ResponseWriter, f Fault) {
	ct, body := f.contentType, f.body
	if ct == "" {
		ct = "application/json"
		body = fmt.Sprintf(`{"error":"injected fault","status":%d}`, f.status)
	}
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(f.status)
	io.WriteString(w, body)
}

// hang waits until the client gives up or the fault is cleared; it reports whether it was
// cleared (and the client still waits for an answer).
func (in *Injector) hang(r *http.Request, release <-chan struct{}) bool {
	in.mu.Lock()
	in.hanging++
	in.notifyLocked()
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.hanging--
		in.notifyLocked()
		in.mu.Unlock()
	}()
	select {
	case <-r.Context().Done():
		return false
	case <-release:
		return true
	}
}

// serve runs the wrapped handler into a recorder when the fault hits after serving.
func (in *Injector) serve(r *http.Request, f Fault) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	if f.served {
		in.next.ServeHTTP(rec, r)
	}
	return rec
}

// reset writes the status line and half a header line, then closes the connection.
func (in *Injector) reset(w http.ResponseWriter, r *http.Request, f Fault) {
	rec := in.serve(r, f)
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("faulttest: the server's ResponseWriter cannot be hijacked (HTTP/2?)")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic("faulttest: hijack: " + err.Error())
	}
	defer conn.Close()
	writePartial(buf, rec.Code)
}

func writePartial(buf *bufio.ReadWriter, code int) {
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: appli", code, http.StatusText(code))
	buf.Flush()
}

// malformed answers 200 with a JSON body cut short.
func (in *Injector) malformed(w http.ResponseWriter, r *http.Request, f Fault) {
	in.serve(r, f)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, `{"ok":true,"value":[{"id":`)
}
