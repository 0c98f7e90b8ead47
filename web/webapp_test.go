package web_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// rulesForm is the settings form as a browser sends it for rules: every text field and
// select, and the checkboxes that are on.
func rulesForm(r presence.Rules) url.Values {
	f := url.Values{}
	f.Set("time_zone", r.TimeZone)
	for name, on := range map[string]bool{
		"leave_own_status": r.LeaveOwnStatus, "tentative_counts": r.TentativeCounts,
		"only_with_others": r.OnlyWithOthers, "title_emoji": r.TitleEmoji,
	} {
		if on {
			f.Set(name, "on")
		}
	}
	for d := range 7 {
		var parts []string
		for _, s := range r.WorkingHours[d] {
			parts = append(parts, s.Start.String()+"-"+s.End.String())
		}
		f.Set("hours."+strconv.Itoa(d), strings.Join(parts, ", "))
	}
	for _, k := range presence.RuleKinds {
		kr := r.Kinds[k]
		p := "rule." + string(k) + "."
		for name, on := range map[string]bool{"enabled": kr.Enabled, "slack_dnd": kr.SlackDND, "slack_away": kr.SlackAway} {
			if on {
				f.Set(p+name, "on")
			}
		}
		f.Set(p+"slack_text", kr.SlackText)
		f.Set(p+"slack_emoji", kr.SlackEmoji)
		teams := ""
		if kr.TeamsAvailability != "" || kr.TeamsActivity != "" {
			teams = kr.TeamsAvailability + "/" + kr.TeamsActivity
		}
		f.Set(p+"teams", teams)
		f.Set(p+"teams_message", kr.TeamsMessage)
	}
	return f
}

func (e *env) user(id string) store.User {
	e.t.Helper()
	u, err := e.st.GetUser(e.t.Context(), id)
	if err != nil {
		e.t.Fatalf("user %s: %v", id, err)
	}
	return u
}

// TestRulesEditor: the form shows every field with a label; every field round-trips; an
// invalid value is shown back with the reason, 400, and nothing is saved.
func TestRulesEditor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	uid := e.signIn()

	code, body := e.get("/settings")
	wantPage(t, "settings", code, body, http.StatusOK, `name="time_zone"`, `name="leave_own_status"`, `name="tentative_counts"`,
		`name="only_with_others"`, `name="title_emoji"`)
	for d := range 7 {
		wantPage(t, "settings", code, body, http.StatusOK, fmt.Sprintf(`name="hours.%d"`, d), fmt.Sprintf(`<label for="hours-%d">`, d))
	}
	for _, k := range presence.RuleKinds {
		for _, f := range []string{"enabled", "slack_text", "slack_emoji", "slack_dnd", "slack_away", "teams", "teams_message"} {
			wantPage(t, "settings", code, body, http.StatusOK,
				fmt.Sprintf(`name="rule.%s.%s"`, k, f), fmt.Sprintf(`<label for="rule-%s-%s">`, k, f))
		}
	}
	for _, p := range presence.TeamsPairs {
		if !strings.Contains(body, `<option value="`+p[0]+"/"+p[1]+`"`) {
			t.Errorf("the Teams select has no option %s/%s", p[0], p[1])
		}
	}
	if !strings.Contains(body, `<option value="" selected>`) || !strings.Contains(body, `<option value="Busy/InACall" selected>`) {
		t.Error("the Teams selects do not show the default rules")
	}

	// Every field, changed.
	want := presence.DefaultRules()
	want.TimeZone = "Europe/Zurich"
	want.LeaveOwnStatus, want.TentativeCounts, want.OnlyWithOthers, want.TitleEmoji = false, false, true, false
	want.WorkingHours = [7][]presence.Span{
		time.Sunday:    nil,
		time.Monday:    {{Start: presence.NewClock(8, 30), End: presence.NewClock(12, 0)}, {Start: presence.NewClock(13, 0), End: presence.NewClock(17, 30)}},
		time.Tuesday:   {{Start: presence.NewClock(9, 0), End: presence.NewClock(17, 0)}},
		time.Wednesday: {{Start: presence.NewClock(0, 0), End: presence.NewClock(24, 0)}},
		time.Thursday:  {{Start: presence.NewClock(9, 0), End: presence.NewClock(17, 0)}},
		time.Friday:    nil,
		time.Saturday:  {{Start: presence.NewClock(10, 0), End: presence.NewClock(14, 0)}},
	}
	want.Kinds = map[presence.Kind]presence.KindRule{
		presence.KindMeeting:      {Enabled: true, SlackText: "Heads down until {until}", SlackEmoji: ":no_entry:", SlackDND: true, SlackAway: true, TeamsAvailability: "Busy", TeamsActivity: "InAConferenceCall", TeamsMessage: "In a call"},
		presence.KindFocus:        {Enabled: false, SlackText: "Deep work", SlackEmoji: ":brain:", TeamsAvailability: "DoNotDisturb", TeamsActivity: "Presenting"},
		presence.KindOutOfOffice:  {Enabled: true, SlackText: "Away", SlackEmoji: ":palm_tree:", SlackAway: true, TeamsAvailability: "Away", TeamsActivity: "Away", TeamsMessage: "Back {until}"},
		presence.KindZoomCall:     {Enabled: true, SlackText: "On Zoom", SlackEmoji: ":video_camera:", SlackDND: true},
		presence.KindOutsideHours: {Enabled: true, SlackText: "Off for the day", SlackEmoji: ":crescent_moon:", SlackAway: true, TeamsAvailability: "Available", TeamsActivity: "Available"},
	}
	form := rulesForm(want)
	form.Set("hours.1", "8:30–12:00,13:00-17:30") // an en dash, no space, a one-digit hour
	resp, body := e.postForm("/settings", form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings?saved=1" {
		t.Fatalf("save: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	got := e.user(uid).Rules
	if !reflect.DeepEqual(got, want) {
		t.Errorf("saved rules:\n got %+v\nwant %+v", got, want)
	}
	if w := e.wakes.all(); !slices.Contains(w, uid) {
		t.Errorf("saving did not wake the scheduler: %v", w)
	}
	code, body = e.get("/settings?saved=1")
	wantPage(t, "settings after save", code, body, http.StatusOK, "Saved.", `value="Europe/Zurich"`,
		`value="08:30-12:00, 13:00-17:30"`, `value="00:00-24:00"`, `value="Heads down until {until}"`,
		`<option value="Busy/InAConferenceCall" selected>`, `<option value="Available/Available" selected>`, `value="Back {until}"`)
	if strings.Contains(body, `id="rule-focus-enabled" name="rule.focus.enabled" value="on" checked`) {
		t.Error("the focus rule shows as enabled")
	}
	if !strings.Contains(body, `id="rule-meeting-slack_away" name="rule.meeting.slack_away" value="on" checked`) {
		t.Error("the meeting rule's away box is not checked")
	}

	// Invalid values: 400 with the reason, the typed value shown back, nothing saved.
	long := strings.Repeat("x", presence.MaxSlackText+1)
	for _, tc := range []struct {
		name, field, value string
		reason             []string
	}{
		{"teams pair", "rule.meeting.teams", "Busy/Available", []string{"is not a pair Teams accepts"}},
		{"teams half pair", "rule.focus.teams", "Busy", []string{"is not a pair Teams accepts"}},
		{"hours words", "hours.1", "9 to 5", []string{"Working hours on Monday", "is not a time span like 09:00-17:00", `value="9 to 5"`}},
		{"hours reversed", "hours.2", "17:00-09:00", []string{"out of range", `value="17:00-09:00"`}},
		{"hours past midnight", "hours.3", "09:00-25:00", []string{"Working hours on Wednesday"}},
		{"hours overlap", "hours.4", "09:00-12:00, 11:00-13:00", []string{"overlap"}},
		{"zone", "time_zone", "Mars/Olympus_Mons", []string{"Unknown time zone", `value="Mars/Olympus_Mons"`}},
		{"zone Local", "time_zone", "Local", []string{"Unknown time zone"}},
		{"long text", "rule.meeting.slack_text", long, []string{"Slack accepts at most 100"}},
	} {
		before := e.records()
		f := rulesForm(want)
		f.Set(tc.field, tc.value)
		resp, body := e.postForm("/settings", f)
		wantPage(t, tc.name, resp.StatusCode, body, http.StatusBadRequest, append([]string{"Not saved:", `role="alert"`}, tc.reason...)...)
		unchanged(t, tc.name, before, e.records())
	}
	if got := e.user(uid).Rules; !reflect.DeepEqual(got, want) {
		t.Errorf("rules after refused saves:\n got %+v\nwant %+v", got, want)
	}

	// A form with only the policy fields leaves the rules and working hours as they are.
	resp, body = e.postForm("/settings", url.Values{"time_zone": {"UTC"}, "tentative_counts": {"on"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("partial save: %d\n%s", resp.StatusCode, body)
	}
	got = e.user(uid).Rules
	if got.TimeZone != "UTC" || !got.TentativeCounts || !reflect.DeepEqual(got.Kinds, want.Kinds) || !reflect.DeepEqual(got.WorkingHours, want.WorkingHours) {
		t.Errorf("partial save gave %+v", got)
	}
}

// TestSettingsCrossOrigin: a cross-site POST of the settings form is refused with a page and
// changes nothing.
func TestSettingsCrossOrigin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	uid := e.signIn()
	before := e.records()
	f := rulesForm(presence.DefaultRules())
	f.Set("rule.meeting.slack_text", "Hijacked")
	for _, hdr := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Origin": {"http://evil.example"}},
	} {
		hdr.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, path := range []string{"/settings", "/data/delete"} {
			f.Set("confirm", "delete")
			resp, body := e.do(e.noRedirect(), http.MethodPost, path, strings.NewReader(f.Encode()), hdr)
			wantPage(t, "cross-site "+path, resp.StatusCode, body, http.StatusForbidden, "came from another site", "nothing was changed")
		}
	}
	unchanged(t, "cross-site posts", before, e.records())
	if got := e.user(uid).Rules.Kinds[presence.KindMeeting].SlackText; got != "In a meeting" {
		t.Errorf("meeting text = %q", got)
	}
	if len(e.wakes.all()) != 0 {
		t.Errorf("a refused post woke the scheduler: %v", e.wakes.all())
	}
}

// TestExpiredSession: an expired session gets the landing page, and every page of the app a
// 401 page; a POST with it changes nothing.
func TestExpiredSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	uid := e.signIn()
	key := sessionKey(e.cookie())
	sess, err := e.st.GetSession(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	sess.Expires = time.Now().Add(-time.Minute)
	if err := e.st.PutSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	code, body := e.get("/")
	wantPage(t, "landing", code, body, http.StatusOK, `href="/signin/google"`)
	if strings.Contains(body, "Your dashboard") || strings.Contains(body, `aria-label="Main"`) {
		t.Error("an expired session shows the dashboard or the navigation")
	}
	for _, p := range []string{"/settings", "/preview", "/activity", "/data", "/data/export"} {
		code, body := e.get(p)
		wantPage(t, p, code, body, http.StatusUnauthorized, "Please sign in first", "session has ended")
	}
	before := e.records()
	f := rulesForm(presence.DefaultRules())
	f.Set("rule.meeting.slack_text", "Changed")
	f.Set("confirm", "delete")
	for _, p := range []string{"/settings", "/data/delete"} {
		resp, body := e.postForm(p, f)
		wantPage(t, "POST "+p, resp.StatusCode, body, http.StatusUnauthorized, "Please sign in first")
	}
	unchanged(t, "posts with an expired session", before, e.records())
	if _, err := e.st.GetUser(ctx, uid); err != nil {
		t.Errorf("the user after a refused delete: %v", err)
	}
}

// TestPreviewFollowsRules: the preview is planned from the cached blocks with the current
// rules, so a changed rule shows at once.
func TestPreviewFollowsRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	uid := e.signIn()
	e.connect(uid, "slack")
	gc := e.connect(uid, "google")
	now := time.Now()
	start, end := now.Add(10*time.Minute).Truncate(time.Minute), now.Add(40*time.Minute).Truncate(time.Minute)
	if err := e.st.PutEvents(ctx, uid, []presence.Event{{Source: gc.ID + "/primary", ID: "ev1", Start: start, End: end, Response: presence.ResponseAccepted}}); err != nil {
		t.Fatal(err)
	}
	code, body := e.get("/preview")
	wantPage(t, "preview", code, body, http.StatusOK, `<table id="preview">`, "Meeting", "calendar",
		":spiral_calendar_pad: In a meeting", start.UTC().Format("15:04"), end.UTC().Format("15:04"),
		"Teams is not connected")
	if strings.Contains(body, "Slack is not connected") {
		t.Error("the preview says Slack is not connected")
	}
	if strings.Contains(body, "Busy, InACall") {
		t.Error("the preview shows a Teams presence although Teams is not connected")
	}

	rules := e.user(uid).Rules
	kr := rules.Kinds[presence.KindMeeting]
	kr.SlackText, kr.SlackEmoji, kr.SlackDND, kr.TeamsAvailability, kr.TeamsActivity = "Heads down", ":no_entry:", true, "", ""
	rules.Kinds[presence.KindMeeting] = kr
	if resp, body := e.postForm("/settings", rulesForm(rules)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	code, body = e.get("/preview")
	wantPage(t, "preview after the change", code, body, http.StatusOK, ":no_entry: Heads down", "On until "+presence.FormatUntil(end, time.Now(), time.UTC))
	if strings.Contains(body, "In a meeting") || strings.Contains(body, "InACall") {
		t.Errorf("the preview still shows the old rule\n%s", body)
	}

	// The person's time zone: the times move.
	rules.TimeZone = "Asia/Kolkata"
	if resp, body := e.postForm("/settings", rulesForm(rules)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	kol, _ := time.LoadLocation("Asia/Kolkata")
	_, body = e.get("/preview")
	if !strings.Contains(body, start.In(kol).Format("15:04")) || !strings.Contains(body, "Asia/Kolkata") {
		t.Errorf("the preview is not in the person's time zone\n%s", body)
	}

	// Meetings off: nothing of ours during the meeting.
	kr.Enabled = false
	rules.Kinds[presence.KindMeeting] = kr
	if resp, body := e.postForm("/settings", rulesForm(rules)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	_, body = e.get("/preview")
	if strings.Contains(body, "Heads down") || !strings.Contains(body, "Your own status") {
		t.Errorf("the preview with meetings off\n%s", body)
	}

	// Paused: the preview says so.
	if resp, body := e.postForm("/actions", url.Values{"action": {"pause"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("pause: %d\n%s", resp.StatusCode, body)
	}
	_, body = e.get("/preview")
	if !strings.Contains(body, "Left as it is (paused)") {
		t.Errorf("the preview while paused\n%s", body)
	}
}

// TestActivityPage: the last 100 entries, newest first, with every column.
func TestActivityPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	uid := e.signIn()
	base := time.Now().Add(-time.Hour)
	for i := range 105 {
		a := store.Activity{At: base.Add(time.Duration(i) * time.Second), Kind: "meeting", Target: "slack:status", Outcome: "set", Reason: fmt.Sprintf("reason-%03d", i)}
		if err := e.st.AppendActivity(ctx, uid, a); err != nil {
			t.Fatal(err)
		}
	}
	code, body := e.get("/activity")
	wantPage(t, "activity", code, body, http.StatusOK, `<table id="activity">`, "slack:status", "reason-104", "reason-005", `aria-current="page"`)
	if n := strings.Count(body, "<tr><td><time"); n != 100 {
		t.Errorf("%d rows, want 100", n)
	}
	if strings.Contains(body, "reason-004") {
		t.Error("the activity page shows an entry past the cap")
	}
	if strings.Index(body, "reason-104") > strings.Index(body, "reason-103") {
		t.Error("the activity is not newest first")
	}
	for _, link := range []string{`href="/"`, `href="/settings"`, `href="/preview"`, `href="/activity"`, `href="/data"`} {
		if !strings.Contains(body, link) {
			t.Errorf("the navigation has no %s", link)
		}
	}
}

// seedData stores what the scheduler and the person would have made: a sync state with
// tokens, events, target states with a replaced status, an override and activity.
func seedData(t *testing.T, e *env, uid string, gc store.Connection) (secrets []string) {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	ss := store.SyncState{ConnectionID: gc.ID, Resource: "primary", Token: "sync-token-SECRET-1", ChannelID: "chan-1", ChannelToken: "channel-token-SECRET-2", ChannelExpiry: now.Add(24 * time.Hour), Synced: now}
	if err := e.st.PutSyncState(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutEvents(ctx, uid, []presence.Event{
		{Source: gc.ID + "/primary", ID: "ev1", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)},
		{Source: gc.ID + "/primary", ID: "ev2", Start: now.Add(3 * time.Hour), End: now.Add(4 * time.Hour), Type: presence.EventFocusTime},
	}); err != nil {
		t.Fatal(err)
	}
	replaced, err := e.vault.Seal([]byte(`{"text":"my own words"}`), uid, "slack:status")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutTargetState(ctx, store.TargetState{UserID: uid, Target: "slack:status", Written: []byte(`{"status":{"text":"In a meeting"}}`), WrittenAt: now, Replaced: replaced}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutOverride(ctx, uid, presence.Override{ID: "o_1", Kind: presence.OverrideFocus, Start: now, End: now.Add(time.Hour), Origin: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AppendActivity(ctx, uid, store.Activity{At: now, Kind: "focus", Target: "override", Outcome: "requested", Reason: "from web"}); err != nil {
		t.Fatal(err)
	}
	return []string{ss.Token, ss.ChannelToken, "my own words", base64.StdEncoding.EncodeToString(replaced)}
}

// TestExport: the export has every section and no token, secret or e-mail.
func TestExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	uid := e.signIn()
	sl := e.connect(uid, "slack")
	gc := e.connect(uid, "google")
	secrets := seedData(t, e, uid, gc)

	code, body := e.get("/data")
	wantPage(t, "data", code, body, http.StatusOK, `id="your-data"`, `href="/data/export"`, `action="/data/delete"`, `name="confirm"`,
		`<label for="confirm">`, "Connections</td><td>2", "Cached calendar blocks</td><td>2")

	resp, raw := e.do(e.client, http.MethodGet, "/data/export", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d\n%s", resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, ".json") {
		t.Errorf("Content-Disposition %q", cd)
	}
	var ex struct {
		User struct {
			ID    string         `json:"id"`
			Rules presence.Rules `json:"rules"`
		} `json:"user"`
		Identities   []map[string]any    `json:"identities"`
		Connections  []map[string]any    `json:"connections"`
		SyncStates   []map[string]any    `json:"sync_states"`
		Events       []presence.Event    `json:"events"`
		TargetStates []map[string]any    `json:"target_states"`
		Overrides    []presence.Override `json:"overrides"`
		Activity     []store.Activity    `json:"activity"`
	}
	if err := json.Unmarshal([]byte(raw), &ex); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, raw)
	}
	var top map[string]json.RawMessage
	json.Unmarshal([]byte(raw), &top)
	for _, k := range []string{"user", "identities", "connections", "sync_states", "events", "target_states", "overrides", "activity"} {
		if _, ok := top[k]; !ok {
			t.Errorf("the export has no %q section", k)
		}
	}
	if ex.User.ID != uid || !reflect.DeepEqual(ex.User.Rules, e.user(uid).Rules) {
		t.Errorf("user = %+v", ex.User)
	}
	if len(ex.Identities) != 1 || ex.Identities[0]["provider"] != "google" || ex.Identities[0]["subject"] != googlefake.DefaultSub {
		t.Errorf("identities = %v", ex.Identities)
	}
	if len(ex.Connections) != 2 {
		t.Fatalf("connections = %v", ex.Connections)
	}
	for _, c := range ex.Connections {
		if _, ok := c["credential"]; ok {
			t.Errorf("a connection carries its credential: %v", c)
		}
		if c["health"] != "ok" || c["created"] == nil || c["credential_stored"] != true {
			t.Errorf("connection = %v", c)
		}
		if c["provider"] == "slack" && (c["external_id"] != slackUser || c["team_id"] != slackTeam || c["scopes"] == nil) {
			t.Errorf("slack connection = %v", c)
		}
	}
	if len(ex.SyncStates) != 1 || ex.SyncStates[0]["push"] != true || ex.SyncStates[0]["resource"] != "primary" || ex.SyncStates[0]["synced"] == nil {
		t.Errorf("sync states = %v", ex.SyncStates)
	}
	if len(ex.Events) != 2 || ex.Events[1].Type != presence.EventFocusTime {
		t.Errorf("events = %+v", ex.Events)
	}
	if len(ex.TargetStates) != 1 || ex.TargetStates[0]["keeps_your_replaced_status"] != true || ex.TargetStates[0]["target"] != "slack:status" {
		t.Errorf("target states = %v", ex.TargetStates)
	}
	if len(ex.Overrides) != 1 || ex.Overrides[0].ID != "o_1" {
		t.Errorf("overrides = %+v", ex.Overrides)
	}
	if len(ex.Activity) < 3 {
		t.Errorf("activity = %+v", ex.Activity)
	}

	slCred, gCred := e.credential(sl), e.credential(gc)
	secrets = append(secrets,
		slCred.AccessToken, slCred.RefreshToken, gCred.AccessToken, gCred.RefreshToken,
		e.google.ClientSecret(), e.slack.ClientSecret(), googlefake.DefaultEmail, e.cookie(),
		base64.StdEncoding.EncodeToString(sl.Credential), base64.StdEncoding.EncodeToString(gc.Credential))
	for _, s := range secrets {
		if s != "" && strings.Contains(raw, s) {
			t.Errorf("the export holds a secret: %.12s…", s)
		}
	}
	if strings.Contains(raw, "@") {
		t.Errorf("the export holds an @ (an e-mail address?)\n%s", raw)
	}
	for _, k := range []string{`"token"`, `"channel_token"`, `"credential"`, `"replaced"`} {
		if strings.Contains(raw, k) {
			t.Errorf("the export has a field %s", k)
		}
	}
}

// TestDeleteAccount: without the confirmation nothing changes; with it the providers revoke
// our tokens, no record of the person is left, the session is gone, and the page says what
// was removed. Another person's records stay.
func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	uid := e.signIn()
	sl := e.connect(uid, "slack")
	gc := e.connect(uid, "google")
	seedData(t, e, uid, gc)
	slCred, gCred := e.credential(sl), e.credential(gc)
	cookie := e.cookie()

	other := store.User{ID: "u_other", Created: time.Now(), Rules: presence.DefaultRules()}
	if err := e.st.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AppendActivity(ctx, other.ID, store.Activity{At: time.Now(), Kind: "focus", Target: "override", Outcome: "requested"}); err != nil {
		t.Fatal(err)
	}

	for _, confirm := range []url.Values{nil, {"confirm": {""}}, {"confirm": {"yes"}}, {"confirm": {"delete it"}}} {
		before := e.records()
		resp, body := e.postForm("/data/delete", confirm)
		wantPage(t, fmt.Sprintf("delete with %v", confirm), resp.StatusCode, body, http.StatusBadRequest, "Nothing was deleted", `id="your-data"`)
		unchanged(t, fmt.Sprintf("delete with %v", confirm), before, e.records())
	}
	if !e.googleTokenWorks(gCred.AccessToken) {
		t.Fatal("a refused delete revoked the google token")
	}
	if _, err := e.sc.Status(ctx, slCred); err != nil {
		t.Fatalf("a refused delete revoked the slack token: %v", err)
	}

	resp, body := e.postForm("/data/delete", url.Values{"confirm": {" DELETE "}})
	wantPage(t, "delete", resp.StatusCode, body, http.StatusOK, `id="deleted"`, "Google", "Slack", "access revoked",
		"Connections</td><td>2", "Cached calendar blocks</td><td>2", "Manual overrides</td><td>1", "Sign-in identities</td><td>1")
	if strings.Contains(body, `aria-label="Main"`) {
		t.Error("the deleted page shows the signed-in navigation")
	}
	if c := setCookie(t, resp); c.Value != "" || c.MaxAge >= 0 {
		t.Errorf("the session cookie is not deleted: %+v", c)
	}

	// The fakes saw the revocations.
	if e.googleTokenWorks(gCred.AccessToken) {
		t.Error("the google token still works")
	}
	if _, err := e.sc.Status(ctx, slCred); !errors.Is(err, provider.ErrRevoked) {
		t.Errorf("the slack token after delete: %v, want revoked", err)
	}

	// No record of the person is left; the other person's are.
	recs := e.records()
	for k, v := range recs {
		for _, id := range []string{uid, sl.ID, gc.ID, googlefake.DefaultSub} {
			if strings.Contains(k, id) || strings.Contains(v, id) {
				t.Errorf("record %s still names %s", k, id)
			}
		}
	}
	if _, err := e.st.GetUser(ctx, uid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the user after delete: %v", err)
	}
	if _, err := e.st.GetIdentity(ctx, "google", googlefake.DefaultSub); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the identity after delete: %v", err)
	}
	if _, err := e.st.GetSession(ctx, sessionKey(cookie)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session after delete: %v", err)
	}
	if _, err := e.st.GetUser(ctx, other.ID); err != nil {
		t.Errorf("the other user after delete: %v", err)
	}
	if acts, _ := e.st.ListActivity(ctx, other.ID, 0); len(acts) != 1 {
		t.Errorf("the other user's activity = %v", acts)
	}

	// The browser is signed out: the landing page, and the old cookie opens nothing.
	if v := e.cookie(); v != "" {
		t.Errorf("the browser still holds a session cookie")
	}
	code, body := e.get("/")
	wantPage(t, "after delete", code, body, http.StatusOK, `href="/signin/google"`)
	if strings.Contains(body, "Your dashboard") {
		t.Error("the dashboard shows after delete")
	}
	r2, body := e.do(http.DefaultClient, http.MethodGet, "/data", nil, http.Header{"Cookie": {cookieName + "=" + cookie}})
	wantPage(t, "old cookie", r2.StatusCode, body, http.StatusUnauthorized, "Please sign in first")

	// Signing in again makes a new, empty account.
	if again := e.signIn(); again == uid {
		t.Error("signing in again found the deleted user")
	}
}

// TestDeleteWithBrokenProvider: a provider that cannot revoke does not stop the delete; the
// page lists it.
func TestDeleteWithBrokenProvider(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	uid := e.signIn()
	sl := e.connect(uid, "slack")
	// A credential that no longer opens (sealed for another connection).
	pt, _ := e.vault.Open(sl.Credential, uid, sl.ID)
	bad, err := e.vault.Seal(pt, uid, "c_elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	sl.Credential = bad
	if err := e.st.PutConnection(ctx, sl); err != nil {
		t.Fatal(err)
	}
	resp, body := e.postForm("/data/delete", url.Values{"confirm": {"delete"}})
	wantPage(t, "delete", resp.StatusCode, body, http.StatusOK, `id="deleted"`, "Slack", "could not be revoked")
	if _, err := e.st.GetUser(ctx, uid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the user after delete: %v", err)
	}
}
