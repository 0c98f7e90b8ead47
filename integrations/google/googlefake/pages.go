package googlefake

import (
	"bytes"
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// pageTemplates are the fake's HTML pages. html/template escapes every
// value; the pages carry no script.
const pageTemplates = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · Sandbox Google</title>
<style>
body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#202124}
.badge{display:inline-block;background:#fbbc04;color:#000;border-radius:4px;padding:0 .4rem;font-size:.8rem;font-weight:600}
fieldset{border:1px solid #dadce0;border-radius:8px;margin:1rem 0;padding:1rem}
li{margin:.2rem 0} .muted{color:#5f6368} button{padding:.4rem 1rem;margin-right:.5rem}
</style></head><body>
<p><span class="badge">SANDBOX</span> Sandbox Google: a local fake, not Google. No real accounts or data.</p>
{{end}}

{{define "consent"}}{{template "head" "Sign in"}}
<h1>Choose an account</h1>
<p>to continue to <strong>{{.ClientHost}}</strong></p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request" value="{{.RequestID}}">
<fieldset><legend>Fake accounts</legend>
{{range .Accounts}}<div><label><input type="radio" name="account" value="{{.Sub}}"{{if eq .Sub $.Selected}} checked{{end}}>
{{.Name}} &lt;{{.Email}}&gt;</label></div>
{{end}}</fieldset>
<fieldset><legend>{{.ClientHost}} wants to</legend><ul>
{{range .Scopes}}<li>{{.Description}} <span class="muted">({{.Scope}})</span></li>
{{end}}</ul></fieldset>
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="cancel">Cancel</button>
</form>
</body></html>{{end}}

{{define "error"}}{{template "head" "Error"}}
<h1>Error {{.Status}}: {{.Code}}</h1>
<p>{{.Message}}</p>
</body></html>{{end}}

{{define "sandbox"}}{{template "head" "Accounts"}}
<h1>Sandbox Google</h1>
<p class="muted">Fake clock: {{.Now}}. Calendars in {{.TimeZone}}.</p>
{{range .Accounts}}
<fieldset><legend>{{.Name}} &lt;{{.Email}}&gt; <span class="muted">sub {{.Sub}}</span></legend>
{{range .Calendars}}<h3>{{.Summary}}{{if .Primary}} <span class="muted">(primary)</span>{{end}}</h3>
{{if .Events}}<ul>{{range .Events}}<li>{{.When}}: {{.Summary}} <span class="muted">{{.Kind}}{{if .Extra}}, {{.Extra}}{{end}}</span></li>
{{end}}</ul>{{else}}<p class="muted">No upcoming events.</p>{{end}}
{{end}}
<form method="post" action="{{$.AddAction}}">
<input type="hidden" name="sub" value="{{.Sub}}">
Add to the primary calendar: an event in
<input type="number" name="start_in_minutes" value="1" min="-1440" max="10080" required> minutes, lasting
<input type="number" name="duration_minutes" value="30" min="1" max="1440" required> minutes,
<select name="kind"><option value="default">meeting</option><option value="outOfOffice">out of office</option><option value="focusTime">focus time</option></select>
<input type="text" name="summary" placeholder="Sandbox meeting" maxlength="200">
<button type="submit">Add event</button>
</form>
</fieldset>
{{end}}
</body></html>{{end}}
`

type consentPage struct {
	RequestID  string
	Action     string
	ClientHost string
	Selected   string
	Accounts   []consentAccount
	Scopes     []consentScope
}

type consentAccount struct{ Sub, Email, Name string }

type consentScope struct{ Scope, Description string }

type sandboxPage struct {
	Now       string
	TimeZone  string
	AddAction string
	Accounts  []sandboxAccount
}

type sandboxAccount struct {
	Sub, Email, Name string
	Calendars        []sandboxCalendar
}

type sandboxCalendar struct {
	Summary string
	Primary bool
	Events  []sandboxEvent
}

type sandboxEvent struct {
	When, Summary, Kind, Extra string
}

func (s *Server) renderPage(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "googlefake: render page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, status int, code, message string) {
	s.renderPage(w, status, "error", struct {
		Status        int
		Code, Message string
	}{status, code, message})
}

const maxUpcoming = 20

func (s *Server) handleSandboxPage(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
	s.mu.Lock()
	s.ensureDefaultLocked()
	now := s.now()
	data := sandboxPage{
		Now:       now.In(s.loc).Format("Mon 2 Jan 2006 15:04:05 MST"),
		TimeZone:  s.opts.TimeZone,
		AddAction: "/_sandbox/events",
	}
	for _, sub := range s.accountOrder {
		a := s.accounts[sub]
		sa := sandboxAccount{Sub: a.sub, Email: a.email, Name: a.name}
		for _, cid := range a.calOrder {
			c := a.calendars[cid]
			sc := sandboxCalendar{Summary: c.summary, Primary: c.primary}
			var upcoming []*storedEvent
			for _, se := range c.events {
				if _, end := se.ev.span(s.loc); !se.deleted && end.After(now) {
					upcoming = append(upcoming, se)
				}
			}
			slices.SortFunc(upcoming, func(x, y *storedEvent) int {
				xs, _ := x.ev.span(s.loc)
				ys, _ := y.ev.span(s.loc)
				return cmp.Or(xs.Compare(ys), strings.Compare(x.ev.ID, y.ev.ID))
			})
			for _, se := range upcoming[:min(len(upcoming), maxUpcoming)] {
				sc.Events = append(sc.Events, s.describe(&se.ev))
			}
			sa.Calendars = append(sa.Calendars, sc)
		}
		data.Accounts = append(data.Accounts, sa)
	}
	s.mu.Unlock()
	s.renderPage(w, http.StatusOK, "sandbox", data)
}

func (s *Server) describe(ev *Event) sandboxEvent {
	const layout = "Mon 2 Jan 15:04"
	d := sandboxEvent{Summary: cmp.Or(ev.Summary, "(No title)"), Kind: eventTypeOf(ev)}
	if ev.AllDay {
		d.When = ev.Start.Format("Mon 2 Jan") + " – " + ev.End.Format("Mon 2 Jan") + " (all day, end exclusive)"
	} else {
		d.When = ev.Start.In(s.loc).Format(layout) + " – " + ev.End.In(s.loc).Format("15:04")
	}
	var extra []string
	if ev.Status == "tentative" {
		extra = append(extra, "tentative")
	}
	if ev.Transparency == "transparent" {
		extra = append(extra, "free")
	}
	for _, at := range ev.Attendees {
		if at.Self && at.ResponseStatus != "" {
			extra = append(extra, "you: "+at.ResponseStatus)
		}
	}
	d.Extra = strings.Join(extra, ", ")
	return d
}

// handleSandboxAddEvent adds "an event in N minutes for M minutes" to an
// account's primary calendar and redirects back to the page.
func (s *Server) handleSandboxAddEvent(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin form post refused", http.StatusForbidden)
		return
	}
	f := r.PostForm
	sub := f.Get("sub")
	info.account = sub
	startIn, err1 := strconv.Atoi(strings.TrimSpace(f.Get("start_in_minutes")))
	dur, err2 := strconv.Atoi(strings.TrimSpace(f.Get("duration_minutes")))
	kind := cmp.Or(f.Get("kind"), "default")
	summary := strings.TrimSpace(f.Get("summary"))
	switch {
	case err1 != nil || startIn < -1440 || startIn > 10080:
		http.Error(w, "start_in_minutes must be a whole number from -1440 to 10080", http.StatusBadRequest)
		return
	case err2 != nil || dur < 1 || dur > 1440:
		http.Error(w, "duration_minutes must be a whole number from 1 to 1440", http.StatusBadRequest)
		return
	case !oneOf(kind, "default", "outOfOffice", "focusTime"):
		http.Error(w, "kind must be default, outOfOffice or focusTime", http.StatusBadRequest)
		return
	case utf8.RuneCountInString(summary) > 200 || !utf8.ValidString(summary):
		http.Error(w, "summary must be valid UTF-8 of at most 200 characters", http.StatusBadRequest)
		return
	}
	if summary == "" {
		summary = map[string]string{"default": "Sandbox meeting", "outOfOffice": "Out of office", "focusTime": "Focus time"}[kind]
	}
	s.mu.Lock()
	a, err := s.accountLocked(sub)
	var email string
	if a != nil {
		email = a.email
	}
	s.mu.Unlock()
	if err != nil {
		http.Error(w, "no such sandbox account", http.StatusBadRequest)
		return
	}
	start := s.now().Add(time.Duration(startIn) * time.Minute).Truncate(time.Second)
	ev := Event{
		Summary:   summary,
		Start:     start,
		End:       start.Add(time.Duration(dur) * time.Minute),
		EventType: kind,
		Attendees: []Attendee{{Email: email, Self: true, Organizer: true, ResponseStatus: "accepted"}},
	}
	if kind == "default" {
		ev.Attendees = append(ev.Attendees, Attendee{Email: "guest@sandbox.invalid", ResponseStatus: "accepted"})
	}
	if _, err := s.addEvent(sub, "primary", ev); err != nil {
		http.Error(w, "could not add the event", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, s.base(r)+"/", http.StatusSeeOther)
}
