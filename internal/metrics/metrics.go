// Package metrics holds the service's Prometheus metrics (issue 10), on a registry of its own:
// no global state, so tests can build as many as they like. A nil *Metrics is valid and
// records nothing, so every collaborator takes it as an optional dependency.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// Outcomes of a provider call.
const (
	OutcomeOK          = "ok"
	OutcomeRateLimited = "rate_limited"
	OutcomeRevoked     = "revoked"
	OutcomeError       = "error"
)

// Outcomes of a push notification.
const (
	PushAccepted = "accepted"
	PushRefused  = "refused"
)

// Names of every metric family, for tests and documentation.
const (
	NameBoundaryLag    = "dontinterrupt_boundary_lag_seconds"
	NameProviderWrites = "dontinterrupt_provider_writes_total"
	NameDueQueueDepth  = "dontinterrupt_due_queue_depth"
	NameOldestDueAge   = "dontinterrupt_due_oldest_age_seconds"
	NameClaims         = "dontinterrupt_claims_total"
	NameLeaseExpiries  = "dontinterrupt_lease_expiries_total"
	NamePush           = "dontinterrupt_push_notifications_total"
	NameTokenRefreshes = "dontinterrupt_token_refreshes_total"
)

// Names lists every metric family this package defines.
var Names = []string{
	NameBoundaryLag, NameProviderWrites, NameDueQueueDepth, NameOldestDueAge,
	NameClaims, NameLeaseExpiries, NamePush, NameTokenRefreshes,
}

// LagBuckets are the boundary lag histogram's buckets: 1 ms to 60 s.
var LagBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics is the set of metrics of one process.
type Metrics struct {
	reg *prometheus.Registry

	boundaryLag    prometheus.Histogram
	writes         *prometheus.CounterVec
	dueDepth       prometheus.Gauge
	oldestDueAge   prometheus.Gauge
	claims         prometheus.Counter
	leaseExpiries  prometheus.Counter
	push           *prometheus.CounterVec
	tokenRefreshes *prometheus.CounterVec
}

// New builds the metrics on a fresh registry, with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		boundaryLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    NameBoundaryLag,
			Help:    "Time from a timeline boundary a person was due at to the run that reconciled it.",
			Buckets: LagBuckets,
		}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameProviderWrites,
			Help: "Writes to providers (status, DND, presence…), by provider, method and outcome (ok, rate_limited, revoked, error).",
		}, []string{"provider", "method", "outcome"}),
		dueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameDueQueueDepth,
			Help: "People due now or overdue in the due index.",
		}),
		oldestDueAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameOldestDueAge,
			Help: "How long the earliest due entry has been due (0 when nobody is overdue).",
		}),
		claims: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameClaims,
			Help: "People claimed from the due index.",
		}),
		leaseExpiries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameLeaseExpiries,
			Help: "Claims whose lease had expired when completed (another worker may have taken the person).",
		}),
		push: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NamePush,
			Help: "Push notifications received, by provider and outcome (accepted, refused).",
		}, []string{"provider", "outcome"}),
		tokenRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameTokenRefreshes,
			Help: "Access token refreshes, by provider and outcome (ok, rate_limited, revoked, error).",
		}, []string{"provider", "outcome"}),
	}
	m.reg.MustRegister(m.boundaryLag, m.writes, m.dueDepth, m.oldestDueAge, m.claims,
		m.leaseExpiries, m.push, m.tokenRefreshes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The push providers are known: their series exist from the start (at 0), so a rate or
	// an absent() alert works before the first notification.
	for _, p := range []string{"google", "microsoft", "zoom", "slack"} {
		m.push.WithLabelValues(p, PushAccepted)
		m.push.WithLabelValues(p, PushRefused)
	}
	return m
}

// Registry returns the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Outcome classifies the error of a provider call.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case isRateLimited(err):
		return OutcomeRateLimited
	case isRevoked(err):
		return OutcomeRevoked
	}
	return OutcomeError
}

func isRateLimited(err error) bool { _, ok := provider.RetryAfter(err); return ok }
func isRevoked(err error) bool     { _, ok := provider.RevokedReason(err); return ok }

// BoundaryLag records the lag of a run after the boundary it was due for.
func (m *Metrics) BoundaryLag(d time.Duration) {
	if m == nil {
		return
	}
	m.boundaryLag.Observe(max(d, 0).Seconds())
}

// Write counts one provider write and its outcome.
func (m *Metrics) Write(provider, method string, err error) {
	if m == nil {
		return
	}
	m.writes.WithLabelValues(provider, method, Outcome(err)).Inc()
}

// DueQueue sets the due-queue gauges.
func (m *Metrics) DueQueue(due int, oldestAge time.Duration) {
	if m == nil {
		return
	}
	m.dueDepth.Set(float64(due))
	m.oldestDueAge.Set(max(oldestAge, 0).Seconds())
}

// Claims counts people claimed.
func (m *Metrics) Claims(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.claims.Add(float64(n))
}

// LeaseExpired counts a claim completed after its lease ran out.
func (m *Metrics) LeaseExpired() {
	if m == nil {
		return
	}
	m.leaseExpiries.Inc()
}

// Push counts a push notification from provider, accepted or refused.
func (m *Metrics) Push(provider string, accepted bool) {
	if m == nil {
		return
	}
	outcome := PushRefused
	if accepted {
		outcome = PushAccepted
	}
	m.push.WithLabelValues(provider, outcome).Inc()
}

// TokenRefresh counts a token refresh and its outcome.
func (m *Metrics) TokenRefresh(provider string, err error) {
	if m == nil {
		return
	}
	m.tokenRefreshes.WithLabelValues(provider, Outcome(err)).Inc()
}
