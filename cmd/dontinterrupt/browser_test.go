package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
)

// The browser test: real headless Chromium, driven through chromedp, takes one person through
// the whole service in sandbox mode the way they would use it: sign in with Google, connect
// Slack and Google Calendar on the fakes' consent pages, change a rule, see it in the
// preview, start a focus block, read the activity log, download their data and delete the
// account. Screenshots of the main pages go to the artifact folder (DI_TEST_ARTIFACTS, or
// dontinterrupt-browser-artifacts in the temporary directory), and a failed step leaves
// failure-<step>.png there too.

// chromiumPath finds Debian's Chromium, or skips the test with the reason (fails under CI,
// where .ci/run installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	const why = "no Chromium: neither /usr/bin/chromium nor chromium on PATH (install Debian's chromium package; .ci/run does)"
	if os.Getenv("CI") != "" {
		t.Fatal(why + "; CI requires the browser test")
	}
	t.Skip(why)
	return ""
}

// browserArtifactDir is where the screenshots go; it is outside the repository by default.
func browserArtifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DI_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "dontinterrupt-browser-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact folder: %v", err)
	}
	// A failure screenshot left by an earlier run would only mislead.
	old, _ := filepath.Glob(filepath.Join(dir, "failure-*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	return dir
}

// startSandboxForBrowser runs the service in sandbox mode on a port picked here, so that
// DI_PUBLIC_URL (where the fakes send the browser back) is exactly the address the browser
// uses. A port taken between picking and listening is retried with another one.
func startSandboxForBrowser(t *testing.T) (string, *syncBuffer, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		env := map[string]string{
			"DI_ADDR":        addr,
			"DI_PUBLIC_URL":  "http://" + addr,
			"DI_SANDBOX":     "on",
			"DI_STORE":       "bolt:" + filepath.Join(dir, fmt.Sprintf("di-%d.db", attempt)),
			"DI_KEYSET_FILE": filepath.Join(dir, fmt.Sprintf("keyset-%d.json", attempt)),
			"DI_LOG_LEVEL":   "debug",
		}
		// The fakes take the provider secrets from here, so the scan knows what to look for.
		for k, v := range browserSecrets {
			env[k] = v
		}
		base, logs, err := tryStartService(t, env)
		if err == nil {
			if base != "http://"+addr {
				t.Fatalf("service listens on %s, want %s", base, "http://"+addr)
			}
			return base, logs, env
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("service did not start: %v\n%s", err, logs)
		}
		last = err
		t.Logf("port %d was taken before the service listened (%v); trying another", port, err)
	}
	t.Fatalf("no free port after 5 tries: %v", last)
	return "", nil, nil
}

// tryStartService is startService that reports a start-up failure instead of failing the
// test, so the caller can retry on a port clash. The service stops when the test ends.
func tryStartService(t *testing.T, env map[string]string) (string, *syncBuffer, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"dontinterrupt"}, envOf(env), pw, logs)
		pw.CloseWithError(errors.New("service stopped"))
		done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "dontinterrupt listening on "); ok {
				lines <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case base := <-lines:
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("service stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("service did not stop within 30s")
			}
		})
		return base, logs, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("service exited before listening")
		}
		return "", logs, err
	case <-time.After(30 * time.Second):
		cancel()
		return "", logs, errors.New("service did not listen within 30s")
	}
}

// journey is one person's browser tab on the service.
type journey struct {
	t         *testing.T
	tab       context.Context // the chromedp tab; it outlives every step
	deadline  time.Time       // the last moment a step may run until
	base      string
	artifacts string
	logs      *syncBuffer
}

// step runs one part of the journey with its own timeout. On failure it saves
// failure-<name>.png and fails the test with the page address and the service log's tail.
func (j *journey) step(name string, timeout time.Duration, fn func(ctx context.Context) error) {
	j.t.Helper()
	d := time.Now().Add(timeout)
	if d.After(j.deadline) {
		d = j.deadline
	}
	ctx, cancel := context.WithDeadline(j.tab, d)
	err := fn(ctx)
	cancel()
	if err == nil {
		return
	}
	shot := j.screenshot("failure-" + name)
	loc := "(unknown)"
	lctx, lcancel := context.WithTimeout(j.tab, 5*time.Second)
	if l, lerr := chromedp.Run(lctx, chromedp.Location()); lerr == nil {
		loc = l
	}
	lcancel()
	log := j.logs.String()
	if len(log) > 6000 {
		log = "…" + log[len(log)-6000:]
	}
	j.t.Fatalf("step %q failed at %s: %v\nfailure screenshot: %s\nservice log (tail):\n%s", name, loc, err, shot, log)
}

// screenshot saves a full-page PNG of the tab as <name>.png in the artifact folder and
// returns its path (or why there is none).
func (j *journey) screenshot(name string) string {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(j.tab, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Sprintf("(no screenshot: %v)", err)
	}
	path := filepath.Join(j.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Sprintf("(no screenshot: %v)", err)
	}
	return path
}

// keep saves a screenshot of a page that went right and logs where it is.
func (j *journey) keep(name string) {
	j.t.Helper()
	path := j.screenshot(name)
	if !strings.HasSuffix(path, ".png") {
		j.t.Fatalf("screenshot %s: %s", name, path)
	}
	j.t.Logf("screenshot of the %s page: %s", name, path)
}

// click clicks what sel finds, as a person would, and waits for the page it leads to (through
// every redirect, across the fakes and back). It fails on an error status.
func click(ctx context.Context, sel string) error {
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		return fmt.Errorf("click %s: %w", sel, err)
	}
	if resp == nil || resp.Status >= 400 {
		status := 0
		if resp != nil {
			status = int(resp.Status)
		}
		return fmt.Errorf("click %s: the page it led to answered %d", sel, status)
	}
	return nil
}

// visit goes to a page of the service by its address and fails on an error status.
func visit(ctx context.Context, url string) error {
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	if resp == nil || resp.Status >= 400 {
		return fmt.Errorf("open %s: status %v", url, resp)
	}
	return nil
}

// present fails at once when the loaded page has nothing that matches sel: the pages are
// rendered on the server, so waiting would not make it appear.
func present(ctx context.Context, sel string) error {
	q, _ := json.Marshal(sel)
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+string(q)+`) !== null`))
	if err != nil {
		return fmt.Errorf("look for %s: %w", sel, err)
	}
	if !ok {
		return fmt.Errorf("the page has no %s", sel)
	}
	return nil
}

// textOf waits until sel is visible and returns its rendered text.
func textOf(ctx context.Context, sel string) (string, error) {
	if err := present(ctx, sel); err != nil {
		return "", err
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		return "", fmt.Errorf("wait for %s: %w", sel, err)
	}
	txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		return "", fmt.Errorf("text of %s: %w", sel, err)
	}
	return txt, nil
}

// expectText waits for sel and checks that its text holds every want.
func expectText(ctx context.Context, sel string, want ...string) (string, error) {
	txt, err := textOf(ctx, sel)
	if err != nil {
		return "", err
	}
	for _, w := range want {
		if !strings.Contains(txt, w) {
			return txt, fmt.Errorf("%s says %q, want it to contain %q", sel, txt, w)
		}
	}
	return txt, nil
}

// typeInto replaces the value of the field sel with what a person types.
func typeInto(ctx context.Context, sel, text string) error {
	if err := present(ctx, sel); err != nil {
		return err
	}
	q, _ := json.Marshal(sel)
	err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		// Empty the field (a person would select what is there), then type.
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+string(q)+`).value = ""`),
		chromedp.SendKeys(chromedp.CSS(sel), text),
	)
	if err != nil {
		return fmt.Errorf("type into %s: %w", sel, err)
	}
	got, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		return err
	}
	if got != text {
		return fmt.Errorf("%s holds %q after typing %q", sel, got, text)
	}
	return nil
}

// waitForPage keeps fetching path in the page (the browser's own fetch, with its cookies)
// until the element sel of that page contains want: the scheduler syncs the calendar in
// the background, and a person would reload until it shows.
func waitForPage(ctx context.Context, path, sel, want string) error {
	_, err := chromedp.Run(ctx, chromedp.PollFunction[bool](`async (path, sel, want) => {
		const r = await fetch(path, {credentials: "same-origin", cache: "no-store"});
		if (!r.ok) return false;
		const doc = new DOMParser().parseFromString(await r.text(), "text/html");
		const el = doc.querySelector(sel);
		return !!el && el.textContent.includes(want);
	}`, chromedp.WithPollingInterval(250*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second),
		chromedp.WithPollingArgs(path, sel, want)))
	if err != nil {
		return fmt.Errorf("%s never showed %q in %s: %w", path, want, sel, err)
	}
	return nil
}

func TestBrowserJourney(t *testing.T) {
	chrome := chromiumPath(t)
	artifacts := browserArtifactDir(t)
	base, logs, env := startSandboxForBrowser(t)

	// Everything, Chromium included, ends within two minutes; the steps end sooner, so a
	// failure still has time for its screenshot.
	ctx, cancel := context.WithTimeout(t.Context(), 110*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc() // before t.TempDir's cleanup: Chromium must have exited
	tab, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil { // starts Chromium, bound to ctx
		t.Fatalf("start Chromium %s: %v", chrome, err)
	}

	j := &journey{t: t, tab: tab, deadline: time.Now().Add(95 * time.Second), base: base, artifacts: artifacts, logs: logs}
	t.Logf("service at %s, Chromium %s, artifacts in %s", base, chrome, artifacts)
	traffic := recordBrowser(t, tab, base)
	defer func() {
		if !t.Failed() {
			traffic.scan(t, env, logs)
		}
	}()

	j.step("landing", 15*time.Second, func(ctx context.Context) error {
		if err := visit(ctx, base+"/"); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "Your presence"); err != nil {
			return err
		}
		_, err := expectText(ctx, `a[href="/signin/google"]`, "Sign in with Google")
		return err
	})

	j.step("signin-google", 20*time.Second, func(ctx context.Context) error {
		if err := click(ctx, `a[href="/signin/google"]`); err != nil {
			return err
		}
		// Sandbox Google's consent page: choose the account, then Allow.
		if _, err := expectText(ctx, "h1", "Choose an account"); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`input[name="account"][value="`+googlefake.DefaultSub+`"]`))); err != nil {
			return fmt.Errorf("choose the Google account: %w", err)
		}
		if err := click(ctx, `button[name="action"][value="allow"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "Your dashboard"); err != nil {
			return err
		}
		_, err := expectText(ctx, `form[action="/signout"] button`, "Sign out")
		return err
	})

	j.step("connect-slack", 20*time.Second, func(ctx context.Context) error {
		if err := click(ctx, `a[href="/connect/slack"]`); err != nil {
			return err
		}
		// Sandbox Slack's consent page: choose the person, then Allow.
		if _, err := expectText(ctx, "h1", "Allow the app to use Sandbox Slack?"); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`input[name="user"][value="U0001"]`))); err != nil {
			return fmt.Errorf("choose the Slack person: %w", err)
		}
		if err := click(ctx, `button[name="decision"][value="approve"]`); err != nil {
			return err
		}
		_, err := expectText(ctx, "tr.conn-slack", "Connected")
		return err
	})

	j.step("connect-google-calendar", 20*time.Second, func(ctx context.Context) error {
		if err := click(ctx, `a[href="/connect/google"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "Choose an account"); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`input[name="account"][value="`+googlefake.DefaultSub+`"]`))); err != nil {
			return fmt.Errorf("choose the Google account: %w", err)
		}
		if err := click(ctx, `button[name="action"][value="allow"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "tr.conn-google", "Connected"); err != nil {
			return err
		}
		_, err := expectText(ctx, "tr.conn-slack", "Connected")
		return err
	})

	const ruleField = `input[name="rule.meeting.slack_text"]`
	j.step("settings", 20*time.Second, func(ctx context.Context) error {
		if err := click(ctx, `a[href="/settings"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "Settings"); err != nil {
			return err
		}
		if err := typeInto(ctx, ruleField, "Heads down"); err != nil {
			return err
		}
		// The submit button of the form that holds the rule.
		if err := click(ctx, `form:has(`+ruleField+`) button[type="submit"]`); err != nil {
			return err
		}
		// Saved, and the form shows the saved text when it comes back.
		if _, err := expectText(ctx, `[role="status"]`, "Saved"); err != nil {
			return err
		}
		got, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(ruleField)))
		if err != nil {
			return err
		}
		if got != "Heads down" {
			return fmt.Errorf("after saving, the meeting rule's Slack text is %q, want %q", got, "Heads down")
		}
		return nil
	})
	j.keep("settings")

	j.step("settings-kept", 15*time.Second, func(ctx context.Context) error {
		if err := visit(ctx, base+"/settings"); err != nil {
			return err
		}
		if err := present(ctx, ruleField); err != nil {
			return err
		}
		got, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(ruleField)))
		if err != nil {
			return err
		}
		if got != "Heads down" {
			return fmt.Errorf("settings opened again show the meeting rule's Slack text %q, want %q", got, "Heads down")
		}
		return nil
	})

	j.step("preview", 35*time.Second, func(ctx context.Context) error {
		if err := click(ctx, `a.brand`); err != nil {
			return err
		}
		// The dashboard's "Sandbox: add an event" form: a meeting on Google Calendar soon.
		const form = `form[action="/sandbox/events"]`
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(form))); err != nil {
			return fmt.Errorf("the sandbox event form: %w", err)
		}
		if err := typeInto(ctx, form+` input[name="start_in_minutes"]`, "2"); err != nil {
			return err
		}
		if err := typeInto(ctx, form+` input[name="duration_minutes"]`, "20"); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(form+` select[name="kind"]`), "default")); err != nil {
			return err
		}
		if err := click(ctx, form+` button[type="submit"]`); err != nil {
			return err
		}
		// The scheduler reads the calendar in the background; the preview shows the rule's
		// text once the event is in.
		if err := waitForPage(ctx, "/preview", "#preview", "Heads down"); err != nil {
			return err
		}
		if err := click(ctx, `a[href="/preview"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "timeline"); err != nil {
			return err
		}
		_, err := expectText(ctx, "table#preview", "Heads down")
		return err
	})
	j.keep("preview")

	j.step("focus", 20*time.Second, func(ctx context.Context) error {
		if err := click(ctx, `a.brand`); err != nil {
			return err
		}
		if _, err := expectText(ctx, `form:has(input[name="minutes"][value="30"]) button[name="action"][value="focus"]`, "Focus 30 min"); err != nil {
			return err
		}
		if err := click(ctx, `form:has(input[name="minutes"][value="30"]) button[name="action"][value="focus"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "Your dashboard"); err != nil {
			return err
		}
		_, err := expectText(ctx, `section[aria-labelledby="now"] .state`, "Focus")
		return err
	})
	j.keep("dashboard")

	j.step("activity", 20*time.Second, func(ctx context.Context) error {
		if err := waitForPage(ctx, "/activity", "#activity", "focus"); err != nil {
			return err
		}
		if err := click(ctx, `a[href="/activity"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "Activity"); err != nil {
			return err
		}
		_, err := expectText(ctx, "table#activity", "focus")
		return err
	})
	j.keep("activity")

	j.step("export", 20*time.Second, func(ctx context.Context) error {
		if err := click(ctx, `a[href="/data"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "Your data"); err != nil {
			return err
		}
		const link = `a[href="/data/export"]`
		if _, err := expectText(ctx, link, "Download"); err != nil {
			return err
		}
		// What the link downloads, fetched by the browser with the person's session.
		type download struct {
			Status int    `json:"status"`
			Type   string `json:"type"`
			Body   string `json:"body"`
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[download](`(async () => {
			const r = await fetch(document.querySelector('a[href="/data/export"]').href, {credentials: "same-origin"});
			return {status: r.status, type: r.headers.get("content-type") || "", body: await r.text()};
		})()`, chromedp.EvalAwaitPromise))
		if err != nil {
			return fmt.Errorf("fetch the export: %w", err)
		}
		if got.Status != 200 || !strings.Contains(got.Type, "json") {
			return fmt.Errorf("export: status %d, content type %q", got.Status, got.Type)
		}
		if !json.Valid([]byte(got.Body)) || !strings.HasPrefix(strings.TrimSpace(got.Body), "{") {
			return fmt.Errorf("export is not a JSON object:\n%s", got.Body)
		}
		lower := strings.ToLower(got.Body)
		for _, bad := range []string{"@", "xoxp-", "xoxb-", "xoxe", "ya29.", "1//0", "access_token", "refresh_token", "id_token", "client_secret"} {
			if strings.Contains(lower, bad) {
				return fmt.Errorf("export contains %q (no e-mail, token or secret may leave):\n%s", bad, got.Body)
			}
		}
		if !strings.Contains(got.Body, "Heads down") {
			return fmt.Errorf("export lacks the saved rule text %q:\n%s", "Heads down", got.Body)
		}
		return nil
	})

	j.step("delete", 20*time.Second, func(ctx context.Context) error {
		// Still on Your data: the export was fetched, not followed.
		const field = `input[name="confirm"]`
		if err := typeInto(ctx, field, "delete"); err != nil {
			return err
		}
		if err := click(ctx, `form:has(`+field+`) button`); err != nil {
			return err
		}
		_, err := expectText(ctx, "#deleted", "deleted")
		return err
	})

	j.step("landing-again", 15*time.Second, func(ctx context.Context) error {
		if err := click(ctx, `#deleted a[href="/"]`); err != nil {
			return err
		}
		if _, err := expectText(ctx, "h1", "Your presence"); err != nil {
			return err
		}
		if _, err := expectText(ctx, `a[href="/signin/google"]`, "Sign in with Google"); err != nil {
			return err
		}
		signedIn, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('form[action="/signout"]') !== null`))
		if err != nil {
			return err
		}
		if signedIn {
			return errors.New("after deleting the account the landing page still offers Sign out")
		}
		return nil
	})
}
