package metrics_test

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *metrics.Metrics
	m.BoundaryLag(time.Second)
	m.Write("slack", "status", nil)
	m.DueQueue(3, time.Minute)
	m.Claims(2)
	m.LeaseExpired()
	m.Push("zoom", true)
	m.TokenRefresh("google", errors.New("down"))
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, metrics.OutcomeOK},
		{errors.New("boom"), metrics.OutcomeError},
		{&provider.RateLimitedError{RetryAfter: time.Second}, metrics.OutcomeRateLimited},
		{&provider.RevokedError{Reason: "invalid_grant"}, metrics.OutcomeRevoked},
	} {
		if got := metrics.Outcome(c.err); got != c.want {
			t.Errorf("Outcome(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestRecordAndExpose(t *testing.T) {
	m := metrics.New()
	m.BoundaryLag(250 * time.Millisecond)
	m.Write("slack", "status", nil)
	m.Write("slack", "status", nil)
	m.Write("teams", "presence", errors.New("boom"))
	m.DueQueue(4, 90*time.Second)
	m.DueQueue(0, -time.Second) // not overdue: age 0
	m.Claims(3)
	m.LeaseExpired()
	m.Push("microsoft", true)
	m.Push("zoom", false)
	m.TokenRefresh("google", nil)

	if n := testutil.CollectAndCount(m.Registry(), metrics.NameBoundaryLag); n != 1 {
		t.Errorf("lag histogram series = %d, want 1", n)
	}
	reg := m.Registry()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range metrics.Names {
		if !got[name] {
			t.Errorf("family %s not gathered", name)
		}
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`dontinterrupt_provider_writes_total{method="status",outcome="ok",provider="slack"} 2`,
		`dontinterrupt_provider_writes_total{method="presence",outcome="error",provider="teams"} 1`,
		`dontinterrupt_boundary_lag_seconds_bucket{le="0.25"} 1`,
		`dontinterrupt_boundary_lag_seconds_bucket{le="0.1"} 0`,
		`dontinterrupt_boundary_lag_seconds_bucket{le="60"} 1`,
		`dontinterrupt_due_queue_depth 0`,
		`dontinterrupt_due_oldest_age_seconds 0`,
		`dontinterrupt_claims_total 3`,
		`dontinterrupt_lease_expiries_total 1`,
		`dontinterrupt_push_notifications_total{outcome="accepted",provider="microsoft"} 1`,
		`dontinterrupt_push_notifications_total{outcome="refused",provider="zoom"} 1`,
		`dontinterrupt_token_refreshes_total{outcome="ok",provider="google"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}
