package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// received is one request the test app got from the fake.
type received struct {
	path      string
	header    http.Header
	body      []byte
	verifyErr error                       // from slack-go's SecretsVerifier
	event     *slackevents.EventsAPIEvent // for /events
	callback  *slack.InteractionCallback  // for /interactivity
}

// receiver is the app's side: it verifies every request with slack-go's
// SecretsVerifier and parses it with slackevents / InteractionCallback, as
// the real endpoints do.
type receiver struct {
	t      testing.TB
	secret string
	hs     *httptest.Server

	mu  sync.Mutex
	got []received
	// onEvent, when set, runs for each verified event before the answer.
	onEvent func(ev slackevents.EventsAPIEvent)
	// challengeAs picks the url_verification answer: "text", "json", "form" or "wrong".
	challengeAs string
}

func newReceiver(tb testing.TB, secret string) *receiver {
	rc := &receiver{t: tb, secret: secret, challengeAs: "text"}
	rc.hs = httptest.NewServer(http.HandlerFunc(rc.serve))
	tb.Cleanup(rc.hs.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	got := received{path: r.URL.Path, header: r.Header.Clone(), body: body}
	sv, err := slack.NewSecretsVerifier(r.Header, rc.secret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	got.verifyErr = err
	status, answer, ctype := http.StatusOK, "", "text/plain"
	switch {
	case err != nil:
		status, answer = http.StatusUnauthorized, "bad signature"
	case r.URL.Path == "/events":
		ev, perr := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
		if perr != nil {
			status, answer = http.StatusBadRequest, perr.Error()
			break
		}
		got.event = &ev
		rc.mu.Lock()
		challengeAs, onEvent := rc.challengeAs, rc.onEvent
		rc.mu.Unlock()
		if ev.Type == slackevents.URLVerification {
			uv := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
			switch challengeAs {
			case "json":
				ctype, answer = "application/json", fmt.Sprintf(`{"challenge":%q}`, uv.Challenge)
			case "form":
				ctype, answer = "application/x-www-form-urlencoded", url.Values{"challenge": {uv.Challenge}}.Encode()
			case "wrong":
				answer = "nope"
			default:
				answer = uv.Challenge
			}
		} else if onEvent != nil {
			onEvent(ev)
		}
	case r.URL.Path == "/interactivity":
		form, perr := url.ParseQuery(string(body))
		var cb slack.InteractionCallback
		if perr == nil {
			perr = json.Unmarshal([]byte(form.Get("payload")), &cb)
		}
		if perr != nil {
			status, answer = http.StatusBadRequest, "bad payload"
			break
		}
		got.callback = &cb
	default:
		status = http.StatusNotFound
	}
	rc.mu.Lock()
	rc.got = append(rc.got, got)
	rc.mu.Unlock()
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

// last returns the last request received.
func (rc *receiver) last() received {
	rc.t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) == 0 {
		rc.t.Fatal("the receiver got nothing")
	}
	return rc.got[len(rc.got)-1]
}

// set changes the receiver's behaviour under its lock.
func (rc *receiver) set(f func()) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	f()
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// homeFixture is a fake Slack whose clock is close to the real one (the
// verifier compares timestamps with time.Now), wired to a receiver.
type homeFixture struct {
	*fixture
	rc  *receiver
	bot *slack.Client
}

func newHomeFixture(tb testing.TB) *homeFixture {
	tb.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	f := newFixture(tb, Options{Now: clk.Now, SigningSecret: "8f742231b10e8888abcd99yyyzzz85a5"})
	f.clk = clk
	rc := newReceiver(tb, f.srv.SigningSecret())
	f.srv.SetEventsURL(rc.hs.URL + "/events")
	f.srv.SetInteractivityURL(rc.hs.URL + "/interactivity")
	return &homeFixture{fixture: f, rc: rc, bot: f.client(f.srv.IssueBotToken(DefaultTeamID, "chat:write", "im:history"))}
}

// homeView is a Home view with buttons like the app's.
func homeView(metadata string) slack.HomeTabViewRequest {
	focus30 := slack.NewButtonBlockElement("focus_30", "30", slack.NewTextBlockObject(slack.PlainTextType, "Focus 30 min", false, false))
	focus30.Style = slack.StylePrimary
	back := slack.NewButtonBlockElement("back", "", slack.NewTextBlockObject(slack.PlainTextType, "I'm back", false, false))
	pause := slack.NewButtonBlockElement("pause", "tomorrow", slack.NewTextBlockObject(slack.PlainTextType, "Pause until tomorrow", false, false))
	pause.Style = slack.StyleDanger
	reconnect := slack.NewButtonBlockElement("reconnect", "", slack.NewTextBlockObject(slack.PlainTextType, "Reconnect", false, false))
	reconnect.URL = "https://app.example/connect/slack"
	return slack.HomeTabViewRequest{
		Type:            slack.VTHomeTab,
		PrivateMetadata: metadata,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Don't interrupt", false, false)),
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*Focus* until 14:30, started from <https://app.example/|Alexa> & you", false, false), nil, nil, slack.SectionBlockOptionBlockID("state")),
			slack.NewContextBlock("ctx",
				slack.NewTextBlockObject(slack.MarkdownType, "Next: meeting at 15:00 &lt;b&gt;", false, false),
				slack.NewTextBlockObject(slack.PlainTextType, "<script>alert(1)</script>", false, false)),
			slack.NewDividerBlock(),
			slack.NewActionBlock("buttons", focus30, back, pause),
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, "Google Calendar is disconnected", false, false), nil,
				slack.NewAccessory(reconnect), slack.SectionBlockOptionBlockID("health")),
		}},
	}
}

func (hf *homeFixture) publish(tb testing.TB, userID, metadata string) *slack.ViewResponse {
	tb.Helper()
	v, err := hf.bot.PublishViewContext(context.Background(), slack.PublishViewContextRequest{UserID: userID, View: homeView(metadata)})
	if err != nil {
		tb.Fatalf("views.publish: %v", err)
	}
	return v
}

func TestURLVerification(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	for _, as := range []string{"text", "json", "form"} {
		hf.rc.set(func() { hf.rc.challengeAs = as })
		d, err := hf.srv.URLVerification(ctx)
		if err != nil {
			t.Fatalf("%s answer: %v", as, err)
		}
		got := hf.rc.last()
		if got.verifyErr != nil || got.event == nil || got.event.Type != slackevents.URLVerification {
			t.Fatalf("%s: received %+v", as, got)
		}
		if d.Kind != KindURLVerification || d.Status != http.StatusOK || string(d.Body) != string(got.body) {
			t.Fatalf("%s: delivery %+v", as, d)
		}
		var body map[string]string
		if err := json.Unmarshal(d.Body, &body); err != nil || body["token"] != hf.srv.VerificationToken() || body["challenge"] == "" {
			t.Fatalf("url_verification body = %s", d.Body)
		}
	}
	hf.rc.set(func() { hf.rc.challengeAs = "wrong" })
	if _, err := hf.srv.URLVerification(ctx); err == nil {
		t.Fatal("a wrong challenge answer passed")
	}
}

func TestNoDeliveryURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := context.Background()
	if _, err := f.srv.OpenAppHome(ctx, "U0001", "home"); !errors.Is(err, ErrNoEventsURL) {
		t.Fatalf("OpenAppHome without URL = %v", err)
	}
	if _, err := f.srv.SendIM(ctx, "U0001", "hi"); !errors.Is(err, ErrNoEventsURL) {
		t.Fatalf("SendIM without URL = %v", err)
	}
	if got := f.srv.Conversation("U0001"); len(got) != 0 {
		t.Fatalf("an undelivered message was recorded: %+v", got)
	}
	if _, err := f.srv.ClickButton(ctx, "U0001", "x"); !errors.Is(err, ErrNoInteractivityURL) {
		t.Fatalf("ClickButton without URL = %v", err)
	}
	if _, err := f.srv.OpenAppHome(ctx, "U404", "home"); !errors.Is(err, ErrUnknownUser) {
		f.srv.SetEventsURL("http://127.0.0.1:1/")
		t.Fatalf("OpenAppHome for an unknown user = %v", err)
	}
	if len(f.srv.SigningSecret()) != 32 || f.srv.AppID() != AppID {
		t.Fatalf("defaults: secret %q, app %q", f.srv.SigningSecret(), f.srv.AppID())
	}
}

func TestCustomAppIDAndSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{AppID: "A0CUSTOM", SigningSecret: "abc", VerificationToken: "vtok"})
	if f.srv.AppID() != "A0CUSTOM" || f.srv.SigningSecret() != "abc" || f.srv.VerificationToken() != "vtok" {
		t.Fatalf("getters: %q %q %q", f.srv.AppID(), f.srv.SigningSecret(), f.srv.VerificationToken())
	}
	if resp := f.install(t, "U0001"); resp.AppID != "A0CUSTOM" {
		t.Fatalf("oauth.v2.access app_id = %q", resp.AppID)
	}
	bot := f.client(f.srv.IssueBotToken(DefaultTeamID))
	v, err := bot.PublishViewContext(context.Background(), slack.PublishViewContextRequest{UserID: "U0001", View: homeView("")})
	if err != nil || v.View.AppID != "A0CUSTOM" {
		t.Fatalf("views.publish = %+v, %v", v, err)
	}
}

func TestAppHomeOpened(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()

	d, err := hf.srv.OpenAppHome(ctx, "U0001", "")
	if err != nil {
		t.Fatal(err)
	}
	got := hf.rc.last()
	if got.verifyErr != nil || got.event == nil {
		t.Fatalf("received %+v", got)
	}
	cb, ok := got.event.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok || got.event.Type != slackevents.CallbackEvent || cb.EventID != d.EventID || !strings.HasPrefix(d.EventID, "Ev") ||
		cb.APIAppID != AppID || cb.TeamID != DefaultTeamID || cb.Token != hf.srv.VerificationToken() || int64(cb.EventTime) != hf.clk.Now().Unix() {
		t.Fatalf("wrapper = %+v (delivery event_id %q)", got.event.Data, d.EventID)
	}
	var wrapper struct {
		Authorizations []struct {
			UserID string `json:"user_id"`
			IsBot  bool   `json:"is_bot"`
		} `json:"authorizations"`
		AuthedUsers []string `json:"authed_users"`
	}
	if err := json.Unmarshal(d.Body, &wrapper); err != nil || len(wrapper.Authorizations) != 1 || !wrapper.Authorizations[0].IsBot || len(wrapper.AuthedUsers) != 1 {
		t.Fatalf("authorizations/authed_users in %s", d.Body)
	}
	ev, ok := got.event.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || ev.User != "U0001" || ev.Tab != "home" || ev.Channel != "D0001" || ev.EventTimeStamp == "" || ev.View != nil {
		t.Fatalf("inner event = %#v", got.event.InnerEvent.Data)
	}

	pub := hf.publish(t, "U0001", "state-1")
	d2, err := hf.srv.OpenAppHome(ctx, "U0001", "messages")
	if err != nil {
		t.Fatal(err)
	}
	if d2.EventID == d.EventID {
		t.Fatal("two events share an event_id")
	}
	ev = hf.rc.last().event.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if ev.Tab != "messages" || ev.View == nil || ev.View.ID != pub.View.ID || ev.View.Hash != pub.View.Hash ||
		ev.View.PrivateMetadata != "state-1" || len(ev.View.Blocks.BlockSet) != 6 {
		t.Fatalf("app_home_opened view = %+v", ev.View)
	}
	if _, err := hf.srv.OpenAppHome(ctx, "U0001", "about"); err == nil {
		t.Fatal("an unknown tab was delivered")
	}
}

// The app answers app_home_opened by publishing its view, calling the fake
// back while the fake is delivering.
func TestAppHomeOpenedCallsBack(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	hf.rc.set(func() {
		hf.rc.onEvent = func(ev slackevents.EventsAPIEvent) {
			if e, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok {
				hf.publish(t, e.User, "from-event")
			}
		}
	})
	if _, err := hf.srv.OpenAppHome(context.Background(), "U0002", "home"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hf.srv.HomeView("U0002")), `"private_metadata":"from-event"`) {
		t.Fatalf("HomeView = %s", hf.srv.HomeView("U0002"))
	}
}

func TestMessageIM(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()

	d, err := hf.srv.SendIM(ctx, "U0001", "focus 45m & <stuff>")
	if err != nil {
		t.Fatal(err)
	}
	got := hf.rc.last()
	if got.verifyErr != nil || got.event == nil || got.event.Type != slackevents.CallbackEvent {
		t.Fatalf("received %+v", got)
	}
	msg, ok := got.event.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || msg.ChannelType != "im" || msg.Channel != "D0001" || msg.User != "U0001" || msg.ClientMsgID == "" ||
		msg.TimeStamp == "" || msg.EventTimeStamp != msg.TimeStamp || msg.ThreadTimeStamp != "" || msg.SubType != "" || msg.BotID != "" {
		t.Fatalf("message event = %#v", got.event.InnerEvent.Data)
	}
	if msg.Text != "focus 45m &amp; &lt;stuff&gt;" {
		t.Fatalf("text = %q, want Slack's escaping", msg.Text)
	}
	if d.Kind != KindMessageIM || d.EventID == "" || d.UserID != "U0001" {
		t.Fatalf("delivery = %+v", d)
	}

	// The app answers in the thread; the person replies in it.
	ch, ts, err := hf.bot.PostMessageContext(ctx, "D0001", slack.MsgOptionText("Focus until 10:45", false), slack.MsgOptionTS(msg.TimeStamp))
	if err != nil || ch != "D0001" || ts == "" {
		t.Fatalf("chat.postMessage = %q %q %v", ch, ts, err)
	}
	if _, err := hf.srv.SendIMInThread(ctx, "U0001", msg.TimeStamp, "thanks"); err != nil {
		t.Fatal(err)
	}
	reply := hf.rc.last().event.InnerEvent.Data.(*slackevents.MessageEvent)
	if reply.ThreadTimeStamp != msg.TimeStamp || reply.Text != "thanks" {
		t.Fatalf("thread reply = %+v", reply)
	}
	conv := hf.srv.Conversation("U0001")
	if len(conv) != 3 || conv[0].Bot || conv[0].User != "U0001" || !conv[1].Bot || conv[1].ThreadTS != msg.TimeStamp ||
		conv[1].User != "UB0001" || conv[2].ThreadTS != msg.TimeStamp {
		t.Fatalf("Conversation = %+v", conv)
	}
	if bot := hf.srv.Messages("U0001"); len(bot) != 1 || bot[0].TS != ts {
		t.Fatalf("Messages = %+v", bot)
	}
}

func TestClickButton(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	pub := hf.publish(t, "U0001", "state-7")

	d, err := hf.srv.ClickButton(ctx, "U0001", "focus_30")
	if err != nil {
		t.Fatal(err)
	}
	got := hf.rc.last()
	if got.verifyErr != nil || got.callback == nil || got.path != "/interactivity" ||
		!strings.HasPrefix(got.header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		t.Fatalf("received %+v", got)
	}
	cb := got.callback
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U0001" || cb.User.TeamID != DefaultTeamID ||
		cb.Team.ID != DefaultTeamID || cb.APIAppID != AppID || cb.Token != hf.srv.VerificationToken() || cb.TriggerID == "" ||
		cb.Container.Type != "view" || cb.Container.ViewID != pub.View.ID {
		t.Fatalf("callback = %+v", cb)
	}
	if cb.View.ID != pub.View.ID || cb.View.Hash != pub.View.Hash || cb.View.Type != slack.VTHomeTab || cb.View.PrivateMetadata != "state-7" || len(cb.View.Blocks.BlockSet) != 6 {
		t.Fatalf("callback view = %+v", cb.View)
	}
	acts := cb.ActionCallback.BlockActions
	if len(acts) != 1 || acts[0].ActionID != "focus_30" || acts[0].BlockID != "buttons" || acts[0].Value != "30" ||
		acts[0].Type != "button" || acts[0].ActionTs == "" || acts[0].Text.Text != "Focus 30 min" {
		t.Fatalf("actions = %+v", acts)
	}
	if d.Kind != KindBlockActions || d.UserID != "U0001" || !json.Valid(d.Payload) || d.Status != http.StatusOK {
		t.Fatalf("delivery = %+v", d)
	}

	// A section accessory is a button too.
	if _, err := hf.srv.ClickButton(ctx, "U0001", "reconnect"); err != nil {
		t.Fatal(err)
	}
	if a := hf.rc.last().callback.ActionCallback.BlockActions[0]; a.BlockID != "health" || a.ActionID != "reconnect" {
		t.Fatalf("accessory action = %+v", a)
	}

	n := hf.rc.count()
	if _, err := hf.srv.ClickButton(ctx, "U0001", "nope"); !errors.Is(err, ErrNoSuchButton) {
		t.Fatalf("unknown button: %v", err)
	}
	if _, err := hf.srv.ClickButton(ctx, "U0002", "focus_30"); !errors.Is(err, ErrNoSuchButton) {
		t.Fatalf("no published view: %v", err)
	}
	if hf.rc.count() != n {
		t.Fatal("a failed click was delivered")
	}
}

func TestClickRawStaleAndUnknown(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	old := hf.publish(t, "U0001", "v1")
	stale, err := hf.srv.ClickPayload("U0001", "back")
	if err != nil {
		t.Fatal(err)
	}
	cur := hf.publish(t, "U0001", "v2")
	if cur.View.ID != old.View.ID || cur.View.Hash == old.View.Hash {
		t.Fatalf("republish: id %s→%s, hash %s→%s", old.View.ID, cur.View.ID, old.View.Hash, cur.View.Hash)
	}
	d, err := hf.srv.ClickRaw(ctx, "U0001", stale)
	if err != nil {
		t.Fatal(err)
	}
	cb := hf.rc.last().callback
	if hf.rc.last().verifyErr != nil || cb == nil || cb.View.Hash != old.View.Hash || cb.View.PrivateMetadata != "v1" || d.Kind != KindRaw {
		t.Fatalf("stale click = %+v", cb)
	}

	var p map[string]any
	_ = json.Unmarshal(stale, &p)
	p["actions"].([]any)[0].(map[string]any)["action_id"] = "launch_missiles"
	forged, _ := json.Marshal(p)
	if _, err := hf.srv.ClickRaw(ctx, "U0001", forged); err != nil {
		t.Fatal(err)
	}
	if a := hf.rc.last().callback.ActionCallback.BlockActions[0]; a.ActionID != "launch_missiles" {
		t.Fatalf("forged action = %+v", a)
	}
	if _, err := hf.srv.ClickRaw(ctx, "U0001", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if got := hf.rc.last(); got.verifyErr != nil || got.callback != nil {
		t.Fatalf("non-JSON payload: %+v", got)
	}
}

func TestRedeliverAndReplay(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	d, err := hf.srv.SendIM(ctx, "U0001", "status")
	if err != nil {
		t.Fatal(err)
	}
	hf.clk.Advance(time.Minute)
	r, err := hf.srv.Redeliver(ctx, d, 2)
	if err != nil {
		t.Fatal(err)
	}
	got := hf.rc.last()
	if got.verifyErr != nil || got.header.Get("X-Slack-Retry-Num") != "2" || got.header.Get("X-Slack-Retry-Reason") != "http_timeout" {
		t.Fatalf("redelivery headers %v, verify %v", got.header, got.verifyErr)
	}
	cb := got.event.Data.(*slackevents.EventsAPICallbackEvent)
	if cb.EventID != d.EventID || string(got.body) != string(d.Body) || r.EventID != d.EventID || r.RetryNum != 2 ||
		r.Timestamp != d.Timestamp+60 || r.Header.Get(HeaderSignature) == d.Header.Get(HeaderSignature) || r.Kind != KindMessageIM {
		t.Fatalf("redelivery = %+v", r)
	}
	if n := len(hf.srv.Conversation("U0001")); n != 1 {
		t.Fatalf("a redelivery added a message: %d", n)
	}

	rp, err := hf.srv.Replay(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got = hf.rc.last()
	if got.verifyErr != nil || got.header.Get(HeaderTimestamp) != d.Header.Get(HeaderTimestamp) ||
		got.header.Get(HeaderSignature) != d.Header.Get(HeaderSignature) || got.header.Get(HeaderRetryNum) != "" || rp.Timestamp != d.Timestamp {
		t.Fatalf("replay headers %v (verify %v)", got.header, got.verifyErr)
	}
}

func TestBadSignaturesAreDetected(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	d, err := hf.srv.OpenAppHome(ctx, "U0001", "home")
	if err != nil {
		t.Fatal(err)
	}
	body := d.Body

	cases := []struct {
		name string
		send func() (Delivery, error)
		want error
	}{
		{"wrong secret", func() (Delivery, error) { return hf.srv.SendWrongSignature(ctx, "", "application/json", body) }, slack.ErrInvalidSignature},
		{"six minutes old", func() (Delivery, error) {
			return hf.srv.SendSigned(ctx, "", "application/json", body, hf.clk.Now().Add(-6*time.Minute))
		}, slack.ErrExpiredTimestamp},
		{"tampered body", func() (Delivery, error) {
			return hf.srv.SendTampered(ctx, d, []byte(strings.Replace(string(body), `"home"`, `"messages"`, 1)))
		}, slack.ErrInvalidSignature},
		{"no signature", func() (Delivery, error) {
			return hf.srv.SendRaw(ctx, RawRequest{Body: body, OmitSignature: true})
		}, slack.ErrMissingHeaders},
		{"garbage signature", func() (Delivery, error) {
			return hf.srv.SendRaw(ctx, RawRequest{Body: body, Signature: "v0=" + strings.Repeat("ab", 32)})
		}, slack.ErrInvalidSignature},
	}
	for _, c := range cases {
		got, err := c.send()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if rcv := hf.rc.last(); !errors.Is(rcv.verifyErr, c.want) {
			t.Errorf("%s: verifier said %v, want %v", c.name, rcv.verifyErr, c.want)
		}
		if got.Status != http.StatusUnauthorized || string(got.Response) != "bad signature" || got.Kind != KindRaw {
			t.Errorf("%s: delivery recorded %d %q %s", c.name, got.Status, got.Response, got.Kind)
		}
	}

	// A fresh, correctly signed hand-made body passes, to the URL chosen by content type.
	if _, err := hf.srv.SendSigned(ctx, "", "application/x-www-form-urlencoded", []byte("payload=%7B%7D"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if rcv := hf.rc.last(); rcv.verifyErr != nil || rcv.path != "/interactivity" {
		t.Fatalf("signed form: %+v", rcv)
	}
}

func TestDeliveryLog(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- hf.srv.WaitForDelivery(ctx, KindMessageIM, 2) }()
	for _, text := range []string{"help", "back"} {
		if _, err := hf.srv.SendIM(ctx, "U0002", text); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := hf.srv.URLVerification(ctx); err != nil {
		t.Fatal(err)
	}
	ds := hf.srv.Deliveries()
	if len(ds) != 3 || ds[0].Kind != KindMessageIM || ds[2].Kind != KindURLVerification || ds[0].UserID != "U0002" ||
		ds[0].Status != http.StatusOK || !ds[0].Time.Equal(hf.clk.Now()) || ds[0].URL != hf.rc.hs.URL+"/events" ||
		ds[0].Timestamp != hf.clk.Now().Unix() || ds[0].EventID == ds[1].EventID {
		t.Fatalf("Deliveries = %+v", ds)
	}
	ds[0].Body[0] = 'X'
	if hf.srv.Deliveries()[0].Body[0] == 'X' {
		t.Fatal("Deliveries shares its buffers")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := hf.srv.WaitForDelivery(cctx, KindBlockActions, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitForDelivery = %v", err)
	}
}

func TestSignMatchesSlackGo(t *testing.T) {
	t.Parallel()
	ts := time.Now().Unix()
	body := []byte(`{"type":"event_callback"}`)
	h := http.Header{}
	h.Set(HeaderTimestamp, fmt.Sprint(ts))
	h.Set(HeaderSignature, Sign("s3cret", ts, body))
	sv, err := slack.NewSecretsVerifier(h, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = sv.Write(body)
	if err := sv.Ensure(); err != nil {
		t.Fatal(err)
	}
}

func TestViewsPublishValidation(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	publishRaw := func(tok string, body map[string]any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hf.hs.URL+"/api/views.publish", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hf.hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return decode(t, resp)
	}
	botTok := hf.srv.IssueBotToken(DefaultTeamID)
	section := func(i int) map[string]any {
		return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": fmt.Sprint("line ", i)}}
	}
	many := func(n int) []any {
		var out []any
		for i := range n {
			out = append(out, section(i))
		}
		return out
	}
	button := func(text string) map[string]any {
		return map[string]any{"type": "button", "action_id": "a", "text": map[string]any{"type": "plain_text", "text": text}}
	}
	cases := []struct {
		name string
		view map[string]any
		want string
	}{
		{"modal", map[string]any{"type": "modal", "blocks": many(1)}, "invalid_arguments"},
		{"no type", map[string]any{"blocks": many(1)}, "invalid_arguments"},
		{"no blocks", map[string]any{"type": "home"}, "invalid_arguments"},
		{"101 blocks", map[string]any{"type": "home", "blocks": many(101)}, "invalid_arguments"},
		{"too large", map[string]any{"type": "home", "blocks": many(1), "private_metadata": strings.Repeat("x", MaxViewBytes)}, "view_too_large"},
		{"unknown block", map[string]any{"type": "home", "blocks": []any{map[string]any{"type": "sectoin"}}}, "invalid_arguments"},
		{"duplicate block_id", map[string]any{"type": "home", "blocks": []any{
			map[string]any{"type": "divider", "block_id": "x"}, map[string]any{"type": "divider", "block_id": "x"},
		}}, "invalid_arguments"},
		{"long button text", map[string]any{"type": "home", "blocks": []any{
			map[string]any{"type": "actions", "elements": []any{button(strings.Repeat("b", 76))}},
		}}, "invalid_arguments"},
		{"duplicate action_id", map[string]any{"type": "home", "blocks": []any{
			map[string]any{"type": "actions", "elements": []any{button("one"), button("two")}},
		}}, "invalid_arguments"},
		{"mrkdwn header", map[string]any{"type": "home", "blocks": []any{
			map[string]any{"type": "header", "text": map[string]any{"type": "mrkdwn", "text": "*x*"}},
		}}, "invalid_arguments"},
	}
	for _, c := range cases {
		got := publishRaw(botTok, map[string]any{"user_id": "U0001", "view": c.view})
		if got["ok"] != false || got["error"] != c.want {
			t.Errorf("%s: %v, want %s", c.name, got, c.want)
		}
		if c.want == "invalid_arguments" && got["response_metadata"] == nil {
			t.Errorf("%s: no response_metadata.messages", c.name)
		}
	}
	if hf.srv.HomeView("U0001") != nil {
		t.Fatal("a refused view was stored")
	}

	// 100 blocks are fine; the answer is the full view with id and hash,
	// and block IDs Slack fills in.
	got := publishRaw(botTok, map[string]any{"user_id": "U0001", "view": map[string]any{"type": "home", "blocks": many(100)}})
	view, _ := got["view"].(map[string]any)
	if got["ok"] != true || !strings.HasPrefix(fmt.Sprint(view["id"]), "V") || view["hash"] == "" || view["app_id"] != AppID || view["bot_id"] != "B0001" {
		t.Fatalf("100 blocks: %v", got)
	}
	if b := view["blocks"].([]any)[0].(map[string]any); b["block_id"] == nil || b["block_id"] == "" {
		t.Fatalf("no block_id filled in: %v", b)
	}
	var stored map[string]any
	if err := json.Unmarshal(hf.srv.HomeView("U0001"), &stored); err != nil || stored["hash"] != view["hash"] || stored["id"] != view["id"] {
		t.Fatalf("HomeView = %v (%v)", stored, err)
	}

	// hash: the current one passes and changes; an old one conflicts.
	h1 := view["hash"].(string)
	got = publishRaw(botTok, map[string]any{"user_id": "U0001", "hash": h1, "view": map[string]any{"type": "home", "blocks": many(1)}})
	h2, _ := got["view"].(map[string]any)["hash"].(string)
	if got["ok"] != true || h2 == h1 {
		t.Fatalf("publish with the current hash: %v", got)
	}
	got = publishRaw(botTok, map[string]any{"user_id": "U0001", "hash": h1, "view": map[string]any{"type": "home", "blocks": many(1)}})
	if got["error"] != "hash_conflict" {
		t.Fatalf("publish with an old hash: %v", got)
	}

	// A user token is refused.
	userTok := hf.srv.IssueUserToken("U0001", "users.profile:write")
	_, err := hf.client(userTok).PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U0001", View: homeView("")})
	wantSlackErr(t, err, "not_allowed_token_type")
	_, err = hf.bot.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U404", View: homeView("")})
	wantSlackErr(t, err, "user_not_found")
}

func TestChatPostMessageRules(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	userTok := hf.srv.IssueUserToken("U0001", "chat:write")
	_, _, err := hf.client(userTok).PostMessageContext(ctx, "U0001", slack.MsgOptionText("hi", false))
	wantSlackErr(t, err, "not_allowed_token_type")
	noScope := hf.client(hf.srv.IssueBotToken(DefaultTeamID))
	_, _, err = noScope.PostMessageContext(ctx, "U0001", slack.MsgOptionText("hi", false))
	wantSlackErr(t, err, "missing_scope")
	_, _, err = hf.bot.PostMessageContext(ctx, "U0001")
	wantSlackErr(t, err, "no_text")

	ch, ts, err := hf.bot.PostMessageContext(ctx, "U0001", slack.MsgOptionText("root", false))
	if err != nil || ch != "D0001" {
		t.Fatalf("post = %q %v", ch, err)
	}
	if _, _, err := hf.bot.PostMessageContext(ctx, "D0001", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts)); err != nil {
		t.Fatal(err)
	}
	// A reply to a message that is not there is posted un-threaded.
	if _, _, err := hf.bot.PostMessageContext(ctx, "D0001", slack.MsgOptionText("lost", false), slack.MsgOptionTS("1.000001")); err != nil {
		t.Fatal(err)
	}
	msgs := hf.srv.Messages("U0001")
	if len(msgs) != 3 || msgs[1].ThreadTS != ts || msgs[0].ThreadTS != "" || !msgs[1].Bot || msgs[1].Channel != "D0001" || msgs[2].ThreadTS != "" {
		t.Fatalf("Messages = %+v", msgs)
	}
}

func TestAppHomePage(t *testing.T) {
	t.Parallel()
	hf := newHomeFixture(t)
	ctx := context.Background()
	pub := hf.publish(t, "U0001", "page")
	if _, _, err := hf.bot.PostMessageContext(ctx, "U0001", slack.MsgOptionText("Welcome! Try *focus 30m*", false)); err != nil {
		t.Fatal(err)
	}

	get := func(path string) string {
		t.Helper()
		resp, err := hf.hs.Client().Get(hf.hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
		return body
	}
	if people := get("/people"); !strings.Contains(people, `href="/people/U0001"`) {
		t.Fatalf("the people page does not link the App Home:\n%s", people)
	}
	page := get("/people/U0001")
	for _, want := range []string{
		"Sandbox Slack", "App Home of Ada", pub.View.ID,
		`<div class="kb-header">Don&#39;t interrupt</div>`,
		"<strong>Focus</strong> until 14:30",
		`<a href="https://app.example/" rel="noopener noreferrer">Alexa</a> &amp; you`,
		"Next: meeting at 15:00 &lt;b&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;",
		`<hr class="kb-divider">`,
		`action="/_sandbox/click"`, `name="action_id" value="focus_30"`, `class="kb-primary">Focus 30 min</button>`,
		`value="pause"`, `class="kb-danger"`, `value="reconnect"`, "I&#39;m back",
		"Welcome! Try <strong>focus 30m</strong>", `action="/_sandbox/im"`, `action="/_sandbox/open"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the App Home page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Fatalf("the page carries a script:\n%s", page)
	}

	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		resp, err := hf.noRedirects().PostForm(hf.hs.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp
	}
	// A click goes to the app and back to the page.
	resp := post("/_sandbox/click", url.Values{"user": {"U0001"}, "action_id": {"focus_30"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/people/U0001" {
		t.Fatalf("click: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cb := hf.rc.last().callback
	if cb == nil || cb.ActionCallback.BlockActions[0].ActionID != "focus_30" || cb.View.Hash != pub.View.Hash || hf.rc.last().verifyErr != nil {
		t.Fatalf("click delivered %+v", hf.rc.last())
	}
	// A link button delivers its action and then opens its URL.
	resp = post("/_sandbox/click", url.Values{"user": {"U0001"}, "action_id": {"reconnect"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://app.example/connect/slack" ||
		hf.rc.last().callback.ActionCallback.BlockActions[0].ActionID != "reconnect" {
		t.Fatalf("link button: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := post("/_sandbox/click", url.Values{"user": {"U0001"}, "action_id": {"gone"}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("a click on a missing button: %d", resp.StatusCode)
	}
	if resp := post("/_sandbox/click", url.Values{"user": {"U404"}, "action_id": {"focus_30"}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a click for an unknown person: %d", resp.StatusCode)
	}

	// A message from the page reaches the app as message.im and shows in the DM.
	resp = post("/_sandbox/im", url.Values{"user": {"U0001"}, "text": {"focus <b>45m</b>"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("im: %d", resp.StatusCode)
	}
	msg, ok := hf.rc.last().event.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || msg.Text != "focus &lt;b&gt;45m&lt;/b&gt;" || msg.ChannelType != "im" {
		t.Fatalf("im delivered %#v", hf.rc.last().event)
	}
	if _, _, err := hf.bot.PostMessageContext(ctx, "U0001", slack.MsgOptionText("Focus until 10:45", false), slack.MsgOptionTS(msg.TimeStamp)); err != nil {
		t.Fatal(err)
	}
	if resp := post("/_sandbox/im", url.Values{"user": {"U0001"}, "text": {"  "}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an empty message: %d", resp.StatusCode)
	}
	resp = post("/_sandbox/open", url.Values{"user": {"U0001"}, "tab": {"messages"}})
	if ev, ok := hf.rc.last().event.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); resp.StatusCode != http.StatusSeeOther || !ok || ev.Tab != "messages" {
		t.Fatalf("open: %d %#v", resp.StatusCode, hf.rc.last().event)
	}

	page = get("/people/U0001")
	for _, want := range []string{
		"focus &lt;b&gt;45m&lt;/b&gt;", `<div class="reply">`, "Focus until 10:45", `name="thread_ts" value="` + msg.TimeStamp + `"`,
		"Last delivery for Ada: app_home_opened",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the App Home page after the exchange lacks %q", want)
		}
	}
	if i, j := strings.Index(page, "focus &lt;b&gt;45m"), strings.Index(page, "Focus until 10:45"); i < 0 || j < i {
		t.Error("the reply is not shown after its parent")
	}
	kinds := []DeliveryKind{}
	for _, d := range hf.srv.Deliveries() {
		kinds = append(kinds, d.Kind)
	}
	if want := []DeliveryKind{KindBlockActions, KindBlockActions, KindMessageIM, KindAppHomeOpened}; !slices.Equal(kinds, want) {
		t.Fatalf("deliveries %v, want %v", kinds, want)
	}
}

func TestMrkdwn(t *testing.T) {
	t.Parallel()
	br := blockRenderer{name: func(id string) string {
		if id == "U0001" {
			return "Ada"
		}
		return ""
	}}
	cases := map[string]string{
		"*bold* and _it_ and ~no~ and `x<y`": "<strong>bold</strong> and <em>it</em> and <s>no</s> and <code>x&lt;y</code>",
		"snake_case_name stays":              "snake_case_name stays",
		"a &lt;b&gt; &amp; c":                "a &lt;b&gt; &amp; c",
		"<javascript:alert(1)|click>":        "click",
		"<https://x.example/?a=1&amp;b=2>":   `<a href="https://x.example/?a=1&amp;b=2" rel="noopener noreferrer">https://x.example/?a=1&amp;b=2</a>`,
		"hi <@U0001> <!here>":                "hi <strong>@Ada</strong> <strong>@here</strong>",
		"<!date^1392734382^{time}|14:30>":    "14:30",
		"line\n\"q\"":                        "line<br>&#34;q&#34;",
		"*<https://a.example|A>*":            `<strong><a href="https://a.example" rel="noopener noreferrer">A</a></strong>`,
		"\x000\x00":                          "0",
	}
	for in, want := range cases {
		if got := string(br.mrkdwn(in)); got != want {
			t.Errorf("mrkdwn(%q) = %q, want %q", in, got, want)
		}
	}
}
