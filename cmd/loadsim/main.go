// Command loadsim measures the scheduler against the targets of design.md section 9: N simulated
// people with realistic calendars (Google, through the real client against googlefake) and
// Slack (the real client against slackfake), the fakes in-process on loopback HTTP with their
// rate limits on, our scheduler on a private Redis (or bolt), and, in the same run, a reference
// strategy that polls every 60 s and writes set + clear, as the peers do. It prints one table.
//
// Scenarios:
//
//	realtime  -people people (10,000) on the wall clock: two boundary bursts two minutes apart,
//	          moves and cancellations pushed in between; lag in wall time
//	day       -day-people people (100,000) over a simulated busy day on a fake clock, compressed;
//	          lag in simulated time; CPU as a share of one core over the 86,400 simulated seconds
//	burst     -burst-people status writes (2,000) in one workspace at one boundary, with the
//	          workspace's users.profile.set limit at -burst-rate a second in the fake and in
//	          the scheduler's rate limits
//
// Each scenario × strategy runs in a fresh child process (loadsim runs itself with -child), so
// CPU and peak RSS are per run. See README.md ("Load simulator") for the flags and the columns.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"
)

const resultPrefix = "LOADSIM-RESULT "

type flags struct {
	scenarios    string
	strategies   string
	people       int
	refPeople    int
	dayPeople    int
	refDayPeople int
	burstPeople  int
	burstRate    int
	burstDIRate  int
	workspace    string
	storeKind    string
	redisURL     string
	workers      int
	lead         time.Duration
	warmup       time.Duration
	interval     time.Duration
	gap          time.Duration
	seed         uint64
	cpuprofile   string
	memprofile   string
	jsonOut      string
	child        string
}

func parseFlags(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("loadsim", flag.ContinueOnError)
	fs.StringVar(&f.scenarios, "scenarios", "realtime,day,burst", "scenarios to run, comma-separated: realtime, day, burst")
	fs.StringVar(&f.strategies, "strategies", "ours,poll60", "strategies: ours (the scheduler) and poll60 (the reference: poll every 60 s, set + clear)")
	fs.IntVar(&f.people, "people", 10000, "people in the realtime scenario")
	fs.IntVar(&f.refPeople, "ref-people", 0, "people for the reference poller in the realtime scenario (0: -people)")
	fs.IntVar(&f.dayPeople, "day-people", 100000, "people in the day scenario (our scheduler)")
	fs.IntVar(&f.refDayPeople, "ref-day-people", 1000, "people for the reference poller in the day scenario (it makes 1,440 calendar reads per person per day; its numbers are per person)")
	fs.IntVar(&f.burstPeople, "burst-people", 2000, "status writes in the one workspace of the burst scenario")
	fs.IntVar(&f.burstRate, "burst-rate", 50, "the burst workspace's users.profile.set limit per second at the fake")
	fs.IntVar(&f.burstDIRate, "burst-di-rate", 0, "the scheduler's slack.users.profile.set rate per second in the burst (0: a tenth under -burst-rate, as the defaults are)")
	fs.StringVar(&f.workspace, "workspace", "50-500", "Slack workspace sizes, MIN-MAX people (uniform)")
	fs.StringVar(&f.storeKind, "store", "redis", "our scheduler's store: redis or bolt")
	fs.StringVar(&f.redisURL, "redis", "", "Redis URL for the store, FLUSHED by every run (default: a private redis-server started on a free port)")
	fs.IntVar(&f.workers, "workers", 8, "scheduler workers (DI_WORKERS) and the poller's concurrency")
	fs.DurationVar(&f.lead, "lead", time.Minute, "how far writes may lead their boundary (DI_WRITE_LEAD)")
	fs.DurationVar(&f.warmup, "warmup", 90*time.Second, "real-time scenarios: time from start to the first boundary (the first syncs happen in it)")
	fs.DurationVar(&f.gap, "gap", 2*time.Minute, "realtime: time between the two boundary bursts (meetings last gap or gap/2)")
	fs.DurationVar(&f.interval, "interval", time.Minute, "the reference poller's interval")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed for calendars and workspaces")
	fs.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of each run to FILE.<scenario>-<strategy>")
	fs.StringVar(&f.memprofile, "memprofile", "", "write a heap profile at the end of each run's measured span to FILE.<scenario>-<strategy>")
	fs.StringVar(&f.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&f.child, "child", "", "internal: run one scenario:strategy in this process and print its result")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	return f, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if os.Getenv("LOADSIM_DEBUG") != "" {
		debugOut = os.Stderr
	}
	f, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if f.child != "" {
		if err := runChild(ctx, f, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadsim:", err)
			os.Exit(1)
		}
		return
	}
	if err := orchestrate(ctx, f, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadsim:", err)
		os.Exit(1)
	}
}

// paramsFor turns the flags into one run's parameters.
func paramsFor(f flags, scenario, strategy, dir string) (params, error) {
	var lo, hi int
	if _, err := fmt.Sscanf(f.workspace, "%d-%d", &lo, &hi); err != nil || lo < 1 || hi < lo {
		return params{}, fmt.Errorf("-workspace %q: want MIN-MAX, like 50-500", f.workspace)
	}
	prm := params{
		scenario: scenario, strategy: strategy, wsMin: lo, wsMax: hi, seed: f.seed,
		storeKind: f.storeKind, redisURL: f.redisURL, dir: dir, workers: f.workers,
		lead: f.lead, warmup: f.warmup, burstRate: f.burstRate, burstDIRate: f.burstDIRate, interval: f.interval, gap: f.gap,
		progress: os.Stderr,
	}
	switch scenario {
	case "realtime":
		prm.people = f.people
		if strategy != "ours" && f.refPeople > 0 {
			prm.people = f.refPeople
		}
	case "day":
		prm.people = f.dayPeople
		if strategy != "ours" {
			prm.people = f.refDayPeople
		}
	case "burst":
		prm.people = f.burstPeople
	}
	return prm, nil
}

// runChild runs one scenario:strategy and prints its result as one JSON line.
func runChild(ctx context.Context, f flags, out io.Writer) error {
	scenario, strategy, ok := strings.Cut(f.child, ":")
	if !ok {
		return fmt.Errorf("-child %q: want scenario:strategy", f.child)
	}
	dir, err := os.MkdirTemp("", "loadsim-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prm, err := paramsFor(f, scenario, strategy, dir)
	if err != nil {
		return err
	}
	if f.cpuprofile != "" {
		pf, err := os.Create(f.cpuprofile + "." + scenario + "-" + strategy)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	if f.memprofile != "" {
		prm.memprofile = f.memprofile + "." + scenario + "-" + strategy
	}
	res, err := run(ctx, prm)
	if err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s%s\n", resultPrefix, b)
	return err
}

// orchestrate runs every scenario × strategy in a child process and prints the tables.
func orchestrate(ctx context.Context, f flags, args []string, out io.Writer) error {
	if f.storeKind != "redis" && f.storeKind != "bolt" {
		return fmt.Errorf("-store %q: want redis or bolt", f.storeKind)
	}
	if f.storeKind == "redis" && f.redisURL == "" {
		rs, err := startRedis(ctx)
		if err != nil {
			return fmt.Errorf("start a private redis-server (or give -redis): %w", err)
		}
		defer rs.stop()
		args = append(args, "-redis", rs.url)
		fmt.Fprintf(os.Stderr, "loadsim: private redis-server at %s\n", rs.url)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var results []result
	for _, sc := range split(f.scenarios) {
		for _, strat := range split(f.strategies) {
			if sc == "burst" && strat != "ours" {
				continue
			}
			start := time.Now()
			fmt.Fprintf(os.Stderr, "loadsim: running %s/%s\n", sc, strat)
			res, err := runOne(ctx, self, append(append([]string{}, args...), "-child", sc+":"+strat))
			if err != nil {
				return fmt.Errorf("%s/%s: %w", sc, strat, err)
			}
			fmt.Fprintf(os.Stderr, "loadsim: %s/%s done in %s\n", sc, strat, time.Since(start).Round(time.Second))
			results = append(results, res)
		}
	}
	printTables(out, results, f)
	if f.jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(f.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func runOne(ctx context.Context, self string, args []string) (result, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	var res result
	found := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, resultPrefix); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				return result{}, err
			}
			found = true
		}
	}
	if err := cmd.Wait(); err != nil {
		return result{}, err
	}
	if !found {
		return result{}, errors.New("the child printed no result")
	}
	return res, nil
}

func split(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
