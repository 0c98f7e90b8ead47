package scheduler_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/dontinterrupt/dontinterrupt/internal/metrics"
)

// family gathers one metric family from m, or nil.
func family(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// TestMetricsCountTheWriteAndTheBoundaryLag: the meeting's status write is counted by
// provider/method/outcome, and the run just after the boundary records its lag.
func TestMetricsCountTheWriteAndTheBoundaryLag(t *testing.T) {
	m := metrics.New()
	e := newEnv(t, envOptions{metrics: m})
	ada := e.addPerson("u-ada", "sub-ada", "U0001", rules(nil))
	start, end := at(10, 0), at(10, 30)
	e.addEvent(ada, meeting(start, end))

	e.process(ada, at(9, 50))
	if mf := family(t, m, metrics.NameBoundaryLag); mf != nil && mf.GetMetric()[0].GetHistogram().GetSampleCount() != 0 {
		t.Errorf("a lag was recorded before any boundary")
	}
	if n := testutil.CollectAndCount(m.Registry(), metrics.NameProviderWrites); n != 0 {
		t.Errorf("%d write series before the meeting, want none", n)
	}

	e.process(ada, start.Add(250*time.Millisecond))
	if got := mustCounter(t, m, "slack", "status", metrics.OutcomeOK).GetCounter().GetValue(); got != 1 {
		t.Errorf("slack status writes ok = %v, want 1", got)
	}
	mf := family(t, m, metrics.NameBoundaryLag)
	if mf == nil {
		t.Fatal("no boundary lag family")
	}
	h := mf.GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 {
		t.Fatalf("lag samples = %d, want 1", h.GetSampleCount())
	}
	if got := h.GetSampleSum(); got < 0.249 || got > 0.251 {
		t.Errorf("lag = %vs, want 0.25s", got)
	}

	// Again at the same time: no write, no second lag for the same boundary.
	e.process(ada, start.Add(250*time.Millisecond))
	if got := family(t, m, metrics.NameBoundaryLag).GetMetric()[0].GetHistogram().GetSampleCount(); got != 1 {
		t.Errorf("lag samples after a second run = %d, want 1", got)
	}
	if got := mustCounter(t, m, "slack", "status", metrics.OutcomeOK).GetCounter().GetValue(); got != 1 {
		t.Errorf("slack status writes ok after a second run = %v, want 1", got)
	}
}

// mustCounter finds one series of the provider writes counter.
func mustCounter(t *testing.T, m *metrics.Metrics, provider, method, outcome string) *dto.Metric {
	t.Helper()
	mf := family(t, m, metrics.NameProviderWrites)
	if mf == nil {
		t.Fatal("no provider writes family")
	}
	for _, mt := range mf.GetMetric() {
		l := map[string]string{}
		for _, lp := range mt.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["provider"] == provider && l["method"] == method && l["outcome"] == outcome {
			return mt
		}
	}
	t.Fatalf("no writes series %s/%s/%s", provider, method, outcome)
	return nil
}
