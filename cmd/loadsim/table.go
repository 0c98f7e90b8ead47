package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// printTables prints the results as two markdown tables: the measurements, and the provider
// calls per person per day by method.
func printTables(out io.Writer, results []result, f flags) {
	fmt.Fprintln(out, "| scenario | strategy | people | replicas | store | lag p50 / p99 / max (s) | max lead (s) | beyond the limits: n, p99 / max (s) | writes/block/target max (mean) | writes for changes | redundant writes | 429s | calendar reads/person/day | CPU s | CPU % of a core | redis CPU s | peak RSS (MB) | wall (s) |")
	fmt.Fprintln(out, "|---|---|---:|---:|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		lag := "–"
		if r.Lag.N > 0 {
			lag = fmt.Sprintf("%.2f / %.2f / %.2f", r.Lag.P50, r.Lag.P99, r.Lag.Max)
		}
		spill := "0"
		if r.Lag.Spilled > 0 {
			spill = fmt.Sprintf("%d, %.1f / %.1f", r.Lag.Spilled, r.Lag.SpillP99, r.Lag.SpillMax)
		}
		var wpb []string
		for _, t := range targetNames {
			if n, ok := r.Lag.PerBlockMax[t]; ok {
				wpb = append(wpb, fmt.Sprintf("%s %d (%.2f)", t, n, r.Lag.PerBlockMean[t]))
			}
		}
		reads := "–"
		cpuPct := "–"
		days := r.SpanHours / 24
		if r.Scenario == "day" && days > 0 {
			reads = fmt.Sprintf("%.1f", float64(r.Calls["google.calendar.events.list"])/float64(r.People)/days)
			cpuPct = fmt.Sprintf("%.2f%%", 100*r.CPUSeconds/(r.SpanHours*3600))
		} else if r.WallSeconds > 0 {
			cpuPct = fmt.Sprintf("%.0f%% (of wall)", 100*r.CPUSeconds/r.WallSeconds)
		}
		fmt.Fprintf(out, "| %s | %s | %d | %d | %s | %s | %.2f | %s | %s | %d | %d | %d | %s | %.1f | %s | %.1f | %.0f | %.0f |\n",
			r.Scenario, r.Strategy, r.People, r.Replicas, r.Store, lag, max(-r.Lag.Min, 0), spill, strings.Join(wpb, ", "),
			r.Lag.ChangeWrites, r.Lag.Redundant, r.Slack429+r.Google429, reads, r.CPUSeconds, cpuPct, r.RedisCPUSeconds, r.PeakRSSMB, r.WallSeconds)
	}
	for _, r := range results {
		if r.Scenario == "burst" {
			fmt.Fprintf(out, "\nburst: %d status writes in one workspace whose users.profile.set limit is %d/s at the fake (the scheduler books %d/s): first %+.2f s, last %+.2f s from the boundary; bound %d/%d + 1 = %.1f s; 429s %d %v\n",
				r.BurstWrites, f.burstRate, r.BurstDIRate, r.BurstFirst, r.BurstLast, r.People, f.burstRate, r.BurstBound, r.Slack429, r.Slack429ByMethod)
		}
	}
	fmt.Fprintln(out)

	methods := map[string]bool{}
	for _, r := range results {
		for m := range r.Calls {
			methods[m] = true
		}
	}
	names := slices.Sorted(maps.Keys(methods))
	fmt.Fprintf(out, "| scenario | strategy | per | %s |\n", strings.Join(names, " | "))
	fmt.Fprintf(out, "|---|---|---|%s\n", strings.Repeat("---:|", len(names)))
	for _, r := range results {
		per, scale := "person·day", 24/r.SpanHours
		if r.Scenario != "day" {
			per, scale = fmt.Sprintf("person (%.0f s)", r.SpanHours*3600), 1
		}
		var cells []string
		for _, m := range names {
			cells = append(cells, fmt.Sprintf("%.2f", float64(r.Calls[m])/float64(r.People)*scale))
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s |\n", r.Scenario, r.Strategy, per, strings.Join(cells, " | "))
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Lag = receive time at the fake − the transition the write is for (latest calendar transition at or before the write time + lead; lead 0 for the poller): negative = written ahead of the boundary. The lag columns cover the writes the rate limits allow around the boundary (per workspace and method, and the deployment's own pace, in receive order); the rest are under \"beyond the limits\". CPU and RSS are the whole child process: scheduler, fakes and driver together.")
	for _, r := range results {
		if len(r.Errors) > 0 {
			fmt.Fprintf(out, "errors in %s/%s: %v\n", r.Scenario, r.Strategy, r.Errors)
		}
	}
}
