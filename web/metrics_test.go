package web_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
	"github.com/dontinterrupt/dontinterrupt/web"
)

// TestMetricsEndpoint: GET /metrics serves every metric family, and a refused Microsoft
// notification is counted.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	e := newEnv(t, envOptions{configure: func(_ *env, d *web.Deps) { d.Metrics = m }})
	// What the scheduler records in the service (it shares the same *Metrics).
	m.Write("slack", "status", nil)
	m.TokenRefresh("google", errors.New("down"))
	m.BoundaryLag(10 * time.Millisecond)

	resp, err := http.Post(e.base+"/webhooks/microsoft", "application/json", strings.NewReader(`{"value":[{"subscriptionId":"nope","clientState":"x","resource":"Users/o/Events/e"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unknown subscription: %d, want 403", resp.StatusCode)
	}

	code, body := e.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, name := range metrics.Names {
		if !strings.Contains(body, "# TYPE "+name+" ") {
			t.Errorf("/metrics lacks the family %s", name)
		}
	}
	for _, want := range []string{
		`dontinterrupt_push_notifications_total{outcome="refused",provider="microsoft"} 1`,
		`dontinterrupt_push_notifications_total{outcome="accepted",provider="zoom"} 0`,
		`dontinterrupt_provider_writes_total{method="status",outcome="ok",provider="slack"} 1`,
		`dontinterrupt_token_refreshes_total{outcome="error",provider="google"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestNoMetricsWithoutMetrics: without Deps.Metrics there is no /metrics route.
func TestNoMetricsWithoutMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	if code, _ := e.get("/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics without metrics: %d, want 404", code)
	}
}

// TestRequestIDs: every response carries an X-Request-Id, a safe one sent by the client is
// echoed, an unsafe one is replaced, and the request's log lines carry it without the query.
func TestRequestIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	get := func(path, id string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.base+path, nil)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	a, b := get("/healthz", "").Header.Get("X-Request-Id"), get("/healthz", "").Header.Get("X-Request-Id")
	if a == "" || b == "" || a == b {
		t.Errorf("generated request IDs %q and %q: want two different non-empty IDs", a, b)
	}
	if got := get("/healthz", "req-42.abc_X").Header.Get("X-Request-Id"); got != "req-42.abc_X" {
		t.Errorf("safe request ID echoed as %q", got)
	}
	for _, bad := range []string{"has space", "semi;colon", strings.Repeat("a", 65)} {
		if got := get("/healthz", bad).Header.Get("X-Request-Id"); got == bad || got == "" {
			t.Errorf("unsafe request ID %q answered with %q, want a fresh one", bad, got)
		}
	}

	// A request with an OAuth code in the query string: its log lines carry the request ID
	// and the route pattern, never the code.
	resp := get("/signin/google/callback?code=SECRETCODE123&state=STATE456", "trace-oauth-1")
	if resp.Header.Get("X-Request-Id") != "trace-oauth-1" {
		t.Errorf("callback answered with request ID %q", resp.Header.Get("X-Request-Id"))
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "request_id=trace-oauth-1") {
		t.Errorf("no log line carries the request ID:\n%s", logs)
	}
	if !strings.Contains(logs, `route="GET /signin/{provider}/callback"`) {
		t.Errorf("the access log lacks the route pattern:\n%s", logs)
	}
	for _, secret := range []string{"SECRETCODE123", "STATE456"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q from the query string:\n%s", secret, logs)
		}
	}
}
