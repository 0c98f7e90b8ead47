package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
	"github.com/dontinterrupt/dontinterrupt/integrations/slack/slackfake"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
	"github.com/dontinterrupt/dontinterrupt/internal/store/bolt"
	redisstore "github.com/dontinterrupt/dontinterrupt/internal/store/redis"
	"github.com/dontinterrupt/dontinterrupt/internal/vault"
)

// loadPerson is one person of the rotation-under-load test, with a browser of their own.
type loadPerson struct {
	sub, slackID string
	client       *http.Client
	calendar     bool        // has a train of meetings (else: drives focus and back by hand)
	events       []time.Time // the meetings' ends, for calendar people
}

// consentGoogle finishes the Google fake's consent page as account sub when resp is that page
// (the fake runs without AutoApprove here, so that each person signs in as their own account).
func consentGoogle(t *testing.T, c *http.Client, resp *http.Response, sub string) *http.Response {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="request" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no Google consent page at %s: %d\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	consent := resp.Request.URL.ResolveReference(&url.URL{Path: "/o/oauth2/v2/auth/consent"})
	next, err := c.PostForm(consent.String(), url.Values{"request": {string(m[1])}, "account": {sub}, "action": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// getVia fetches a page of the service with a person's browser; Google's consent page, if
// shown, is answered for the person.
func (p *loadPerson) getVia(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := p.client.Get("http://" + publicHost + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.Request.URL.Hostname() != publicHost {
		resp = consentGoogle(t, p.client, resp, p.sub)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestKeysRotateUnderLoad: `keys rotate` runs while the service serves a steady load: four
// people's dashboards, their manual focus and back (POST /actions), Slack App Home events, and
// the scheduler's writes at the boundaries of two people's meeting trains and of the manual
// blocks, to Slack and (with an access token that needs refreshing on every use) to Teams.
// No request fails, every scheduler write happens, nothing fails to decrypt, and afterwards
// every stored credential is sealed under the new primary key and still opens. On bolt (the
// service re-encrypts) and on Redis (the command does, racing the service).
func TestKeysRotateUnderLoad(t *testing.T) {
	for _, kind := range []string{"bolt", "redis"} {
		t.Run(kind, func(t *testing.T) { rotateUnderLoad(t, kind) })
	}
}

func rotateUnderLoad(t *testing.T, kind string) {
	noLimits := map[string]int{}
	for m := range slackfake.DefaultRateLimits() {
		noLimits[m] = 0
	}
	w := newWorldWith(t, kind, worldOptions{
		// A database of its own: other runs of the e2e tests on this Redis use 14.
		redisDB: 11,
		google:  func(o *googlefake.Options) { o.AutoApprove = false },
		slack:   func(o *slackfake.Options) { o.RateLimits, o.ProfileSetPerUserLimit = noLimits, -1 },
		// Every Teams write finds the access token within 5 minutes of expiry and refreshes
		// it, so credentials are re-sealed and swapped while the rotation swaps them too.
		graph: func(o *graphfake.Options) { o.AccessTokenTTL = 5*time.Minute + 2*time.Second },
	})
	ctx := t.Context()

	var people []*loadPerson
	for i := range 4 {
		p := &loadPerson{
			sub:      fmt.Sprintf("2000000000000000000%02d", i+1),
			slackID:  fmt.Sprintf("U10%02d", i+1),
			client:   w.newClient(),
			calendar: i >= 2,
		}
		w.google.AddAccount(p.sub, fmt.Sprintf("person%d@sandbox.invalid", i+1), fmt.Sprintf("Person %d", i+1))
		w.slack.AddUser(slackfake.DefaultTeamID, p.slackID, fmt.Sprintf("Person %d", i+1))
		people = append(people, p)
	}
	for i, p := range people {
		if code, body := p.getVia(t, "/signin/google"); code != 200 || !strings.Contains(body, "Your dashboard") {
			t.Fatalf("sign in person %d: %d\n%s", i, code, body)
		}
		w.slack.AutoApprove(p.slackID)
		if code, body := p.getVia(t, "/connect/slack"); code != 200 || !strings.Contains(body, "conn-slack") {
			t.Fatalf("connect Slack for person %d: %d\n%s", i, code, body)
		}
	}
	// Teams for the first person (the Microsoft fake has one account).
	if code, body := people[0].getVia(t, "/connect/teams"); code != 200 || !strings.Contains(body, "conn-teams") {
		t.Fatalf("connect Teams: %d\n%s", code, body)
	}
	// Two people with a 5 s meeting every 7 s for 28 s, in their calendars before they
	// connect them; the rotation runs 6 s into the train. (No closer: a person's status
	// writes are booked at most one per 6.7 s, under Slack's 10 profile updates a minute.)
	t0 := nextStart(6 * time.Second)
	for _, p := range people {
		if p.calendar {
			for k := range 4 {
				start := t0.Add(time.Duration(k) * 7 * time.Second)
				w.google.AddEvent(p.sub, "primary", googlefake.Event{Summary: secretTitle, Start: start, End: start.Add(5 * time.Second)})
				p.events = append(p.events, start.Add(5*time.Second))
			}
		}
		if code, body := p.getVia(t, "/connect/google"); code != 200 || !strings.Contains(body, "conn-google") {
			t.Fatalf("connect Google: %d\n%s", code, body)
		}
	}
	if time.Now().After(t0) {
		t.Fatal("setting up took longer than the lead time; the machine is too slow for this timeline")
	}
	oldKeys, err := vault.LoadFile(w.env["DI_KEYSET_FILE"])
	if err != nil {
		t.Fatal(err)
	}

	// The load, until stopLoad.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var (
		mu       sync.Mutex
		failures []string
		counts   = map[string]int{}
		cycles   = map[string][]time.Time{} // when each focus/back cycle of a person completed
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if loadCtx.Err() == nil {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	count := func(what string) {
		mu.Lock()
		counts[what]++
		mu.Unlock()
	}
	pace := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-loadCtx.Done():
			return false
		}
	}
	// waitUntil polls cond until it holds (true) or 10 s pass or the load stops (false).
	waitUntil := func(cond func() bool) bool {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) || !pace(20*time.Millisecond) {
				return false
			}
		}
		return true
	}
	request := func(c *http.Client, method, path string, form url.Values, want int, contains string) {
		var resp *http.Response
		var err error
		if method == http.MethodPost {
			resp, err = c.PostForm("http://"+publicHost+path, form)
		} else {
			resp, err = c.Get("http://" + publicHost + path)
		}
		if err != nil {
			fail("%s %s: %v", method, path, err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		count(method + " " + path)
		if resp.StatusCode != want || !bytes.Contains(body, []byte(contains)) {
			fail("%s %s: %d, want %d with %q\n%.400s", method, path, resp.StatusCode, want, contains, body)
		}
	}
	for _, p := range people {
		wg.Add(1)
		go func() { // the dashboard and the preview, as a person keeps reloading them
			defer wg.Done()
			for pace(50 * time.Millisecond) {
				request(p.client, http.MethodGet, "/", nil, 200, "Your dashboard")
				request(p.client, http.MethodGet, "/preview", nil, 200, "timeline")
			}
		}()
		if p.calendar {
			continue
		}
		wg.Add(1)
		go func() { // focus, then back, each written by the scheduler before the next
			defer wg.Done()
			for loadCtx.Err() == nil {
				request(p.client, http.MethodPost, "/actions", url.Values{"action": {"focus"}, "minutes": {"5"}}, 200, "Your dashboard")
				if !waitUntil(func() bool { return w.slack.Status(p.slackID).Text != "" }) {
					fail("%s: the focus status was not written within 10s", p.slackID)
					return
				}
				request(p.client, http.MethodPost, "/actions", url.Values{"action": {"back"}}, 200, "Your dashboard")
				if !waitUntil(func() bool { return w.slack.Status(p.slackID).Text == "" }) {
					fail("%s: the status was not cleared within 10s of back", p.slackID)
					return
				}
				mu.Lock()
				cycles[p.slackID] = append(cycles[p.slackID], time.Now())
				mu.Unlock()
				pace(100 * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() { // Slack: everyone keeps opening the App Home
		defer wg.Done()
		for i := 0; pace(50 * time.Millisecond); i++ {
			p := people[i%len(people)]
			d, err := w.slack.OpenAppHome(loadCtx, p.slackID, "home")
			count("POST /slack/events")
			if err != nil {
				fail("app_home_opened for %s: %v", p.slackID, err)
			} else if d.Status != http.StatusOK {
				fail("app_home_opened for %s: %d %s", p.slackID, d.Status, d.Response)
			}
		}
	}()

	// The rotation, 6 s into the train of meetings.
	w.waitFor("the rotation's time", 20*time.Second, func() bool { return time.Now().After(t0.Add(6 * time.Second)) })
	var out bytes.Buffer
	rotateStart := time.Now()
	if err := run(ctx, []string{"di", "keys", "rotate"}, envOf(w.env), &out, io.Discard); err != nil {
		t.Fatalf("keys rotate under load: %v\n%s", err, out.String())
	}
	newKeys, err := vault.LoadFile(w.env["DI_KEYSET_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	if newKeys.Primary == oldKeys.Primary {
		t.Fatalf("the primary key is still %08x", newKeys.Primary)
	}
	t.Logf("keys rotate (%v):\n%s", time.Since(rotateStart).Round(time.Millisecond), strings.TrimSpace(out.String()))
	// The service finishes the rotation: it reloads the keyset and re-encrypts whatever is
	// left (everything on bolt; what changed meanwhile on Redis).
	done := fmt.Sprintf("primary=%08x", newKeys.Primary)
	w.waitFor("the service to finish the rotation", 40*time.Second, func() bool {
		for _, line := range strings.Split(w.logs.String(), "\n") {
			if strings.Contains(line, `msg="every credential is under the primary key"`) && strings.Contains(line, done) {
				return true
			}
		}
		return false
	})
	rotated := time.Now()
	t.Logf("rotation complete %v after the command started", rotated.Sub(rotateStart).Round(time.Millisecond))

	// The load goes on until every meeting has passed and each focus person has done two more
	// cycles with the credentials under the new key.
	lastEnd := people[len(people)-1].events[len(people[len(people)-1].events)-1]
	w.waitFor("the end of the meetings and two more focus cycles", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) > 0 {
			return true
		}
		for _, p := range people {
			if p.calendar {
				continue
			}
			n := 0
			for _, c := range cycles[p.slackID] {
				if c.After(rotated) {
					n++
				}
			}
			if n < 2 {
				return false
			}
		}
		return time.Now().After(lastEnd.Add(time.Second))
	})
	// What the service logged under load (stopping the load cancels requests in flight).
	served := w.logs.String()
	stopLoad()
	wg.Wait()

	mu.Lock()
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("requests during the run: %v; focus cycles: %d and %d", counts, len(cycles[people[0].slackID]), len(cycles[people[1].slackID]))
	mu.Unlock()

	// Every meeting of the calendar people was written at its start (with its end as
	// expiration), before, during and after the rotation.
	for _, p := range people {
		if !p.calendar {
			continue
		}
		written := map[int64]bool{}
		for _, c := range w.slack.CallsTo("users.profile.set") {
			if c.User == p.slackID && c.Status == 200 && c.Error == "" {
				_, _, exp := profileOf(t, c)
				written[exp] = true
			}
		}
		for k, end := range p.events {
			if !written[end.Unix()] {
				t.Errorf("%s: meeting %d (ending %s) was never written", p.slackID, k, end.Format("15:04:05"))
			}
		}
	}
	// Teams was written, refreshing its token, on both sides of the rotation.
	var teams []time.Time
	for _, c := range okCalls(w.graph.CallsTo(graphfake.EndpointSetPresence)) {
		teams = append(teams, c.Time)
	}
	if len(teams) < 4 || !teams[0].Before(rotateStart) || !teams[len(teams)-1].After(rotated) {
		t.Errorf("Teams presence written at %v, want writes before the rotation (%v) and after it (%v)", teams, rotateStart, rotated)
	}
	var refreshes []time.Time
	for _, c := range okCalls(w.graph.CallsTo(graphfake.EndpointToken)) {
		if c.Query.Get("grant_type") == "refresh_token" {
			refreshes = append(refreshes, c.Time)
		}
	}
	if len(refreshes) < 2 || !refreshes[0].Before(rotateStart) || !refreshes[len(refreshes)-1].After(rotated) {
		t.Errorf("Teams tokens refreshed at %v, want refreshes before the rotation (%v) and after it (%v)", refreshes, rotateStart, rotated)
	}
	t.Logf("Teams: %d presence writes, %d token refreshes", len(teams), len(refreshes))
	// Nothing went wrong while serving (stopping cancels work in flight, which may log).
	if err := w.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, line := range strings.Split(served, "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			t.Errorf("the service logged: %s", line)
		}
	}
	for _, line := range strings.Split(w.logs.String(), "\n") {
		if strings.Contains(line, "credential") && strings.Contains(line, "err=") || strings.Contains(line, "vault:") {
			t.Errorf("the service logged: %s", line)
		}
	}

	// Afterwards every stored credential is under the new primary key and opens.
	var st store.Store
	switch kind {
	case "bolt":
		st, err = bolt.Open(strings.TrimPrefix(w.env["DI_STORE"], "bolt:"))
	case "redis":
		st, err = redisstore.Open(ctx, w.env["DI_STORE"])
	}
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	err = st.EachConnection(ctx, func(c store.Connection) error {
		if len(c.Credential) == 0 {
			return nil
		}
		n++
		if id, _ := vault.KeyID(c.Credential); id != newKeys.Primary {
			t.Errorf("%s connection %s of %s sealed under %08x, want the new primary %08x", c.Provider, c.ID, c.UserID, id, newKeys.Primary)
		}
		if _, err := newKeys.Open(c.Credential, c.UserID, c.ID); err != nil {
			t.Errorf("%s connection %s of %s does not open: %v", c.Provider, c.ID, c.UserID, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2*len(people)+1 {
		t.Errorf("%d stored credentials, want one per connection (%d)", n, 2*len(people)+1)
	}
}
