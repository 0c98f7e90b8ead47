package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestHTTPServerTimeouts reads the deadlines off the server serve builds: every phase of a
// request is bounded.
func TestHTTPServerTimeouts(t *testing.T) {
	srv := newHTTPServer(t.Context(), http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for _, c := range []struct {
		name     string
		got, max time.Duration
	}{
		{"ReadHeaderTimeout", srv.ReadHeaderTimeout, 10 * time.Second},
		{"ReadTimeout", srv.ReadTimeout, time.Minute},
		{"WriteTimeout", srv.WriteTimeout, time.Minute},
		{"IdleTimeout", srv.IdleTimeout, 5 * time.Minute},
	} {
		if c.got <= 0 || c.got > c.max {
			t.Errorf("%s = %v, want set and at most %v", c.name, c.got, c.max)
		}
	}
	if srv.ReadTimeout < srv.ReadHeaderTimeout {
		t.Errorf("ReadTimeout %v is shorter than ReadHeaderTimeout %v", srv.ReadTimeout, srv.ReadHeaderTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d, want set and at most 1 MiB", srv.MaxHeaderBytes)
	}
	if srv.ErrorLog == nil || srv.BaseContext == nil {
		t.Error("the server logs through slog and serves under the run's context")
	}
}

// TestSlowlorisCutOff: a client that trickles its headers and never finishes them is
// disconnected at ReadHeaderTimeout by the running service, which keeps answering others
// meanwhile.
func TestSlowlorisCutOff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base, _, _ := startService(t, map[string]string{
		"DI_ADDR":        "127.0.0.1:0",
		"DI_STORE":       "bolt:" + filepath.Join(dir, "di.db"),
		"DI_KEYSET_FILE": filepath.Join(dir, "keyset.json"),
	})
	limit := newHTTPServer(t.Context(), nil, slog.New(slog.DiscardHandler)).ReadHeaderTimeout

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: di.test\r\n"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		after time.Duration
		got   []byte
		err   error
	}
	closed := make(chan result, 1)
	go func() {
		conn.SetReadDeadline(start.Add(limit + 10*time.Second))
		got, err := io.ReadAll(conn) // until the service closes the connection
		closed <- result{time.Since(start), got, err}
	}()
	// One more header line every 200 ms, never the blank line that ends them.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var res result
	for n, served := 0, false; ; n++ {
		select {
		case res = <-closed:
		case <-tick.C:
			fmt.Fprintf(conn, "X-Slow-%d: 1\r\n", n) // fails once the service has closed
			if !served {
				// Others are served while the slow client hangs on.
				if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
					t.Fatalf("/healthz during the slow request: %d", code)
				}
				served = true
			}
			continue
		}
		break
	}
	var ne net.Error
	if errors.As(res.err, &ne) && ne.Timeout() {
		t.Fatalf("the service still held the connection %v after the request began (ReadHeaderTimeout %v)", res.after, limit)
	}
	if res.after < limit-100*time.Millisecond || res.after > limit+5*time.Second {
		t.Errorf("cut off after %v, want at ReadHeaderTimeout (%v)", res.after, limit)
	}
	if len(res.got) > 0 && !bytes.HasPrefix(res.got, []byte("HTTP/1.1 408")) {
		t.Errorf("the slow client was answered %q, want nothing or a 408", res.got)
	}
	t.Logf("slow client cut off after %v (ReadHeaderTimeout %v)", res.after.Round(time.Millisecond), limit)
}

// TestEveryPOSTRouteLimitsItsBody: every POST route registered in web/routes.go answers 413 to
// a body over 64 KiB, with a Content-Length and chunked, on the running service (in sandbox
// mode, so the sandbox and Alexa routes are there too); a small body is not refused for size.
func TestEveryPOSTRouteLimitsItsBody(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "web", "routes.go"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, m := range regexp.MustCompile(`"POST (/[^"]*)"`).FindAllSubmatch(src, -1) {
		routes = append(routes, string(m[1]))
	}
	if len(routes) < 15 {
		t.Fatalf("found %d POST routes in web/routes.go, want them all: %v", len(routes), routes)
	}
	dir := t.TempDir()
	base, _, _ := startService(t, map[string]string{
		"DI_ADDR":        "127.0.0.1:0",
		"DI_SANDBOX":     "on",
		"DI_STORE":       "bolt:" + filepath.Join(dir, "di.db"),
		"DI_KEYSET_FILE": filepath.Join(dir, "keyset.json"),
	})
	big := bytes.Repeat([]byte("a"), 64<<10+1)
	post := func(path string, body io.Reader, length int64) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length // -1: chunked
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, route := range routes {
		path := regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(route, "c1")
		if code := post(path, bytes.NewReader(big), int64(len(big))); code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with %d bytes: %d, want 413", route, len(big), code)
		}
		if code := post(path, io.MultiReader(bytes.NewReader(big)), -1); code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with %d bytes chunked: %d, want 413", route, len(big), code)
		}
		if code := post(path, strings.NewReader("a=b"), 3); code == http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with 3 bytes: 413", route)
		}
	}
	t.Logf("%d POST routes refuse a %d-byte body: %v", len(routes), len(big), routes)
}
