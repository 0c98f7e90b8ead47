package graphfake

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
<title>{{.}} · Sandbox Microsoft</title>
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#242424}
.badge{display:inline-block;background:#0078d4;color:#fff;border-radius:4px;padding:0 .4rem;font-size:.8rem;font-weight:600}
fieldset{border:1px solid #d1d1d1;border-radius:8px;margin:1rem 0;padding:1rem}
li{margin:.2rem 0} .muted{color:#616161} button{padding:.4rem 1rem;margin-right:.5rem}
</style></head><body>
<p><span class="badge">SANDBOX</span> Sandbox Microsoft: a local fake, not Microsoft. No real accounts or data.</p>
{{end}}

{{define "consent"}}{{template "head" "Sign in"}}
<h1>Pick an account</h1>
<p>to continue to <strong>{{.ClientHost}}</strong></p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request" value="{{.RequestID}}">
<fieldset><legend>Fake work accounts</legend>
{{range .Accounts}}<div><label><input type="radio" name="account" value="{{.OID}}"{{if eq .OID $.Selected}} checked{{end}}>
{{.Name}} &lt;{{.Email}}&gt; <span class="muted">tenant {{.Tenant}}</span></label></div>
{{end}}</fieldset>
<fieldset><legend>Permissions requested</legend><ul>
{{range .Scopes}}<li>{{.Description}} <span class="muted">({{.Scope}})</span></li>
{{end}}</ul></fieldset>
<button type="submit" name="action" value="allow">Accept</button>
<button type="submit" name="action" value="cancel">Cancel</button>
</form>
</body></html>{{end}}

{{define "error"}}{{template "head" "Error"}}
<h1>Sorry, but we’re having trouble signing you in.</h1>
<p>{{.Code}}: {{.Message}}</p>
</body></html>{{end}}

{{define "sandbox"}}{{template "head" "Accounts"}}
<h1>Sandbox Microsoft</h1>
<p class="muted">Fake clock: {{.Now}} (UTC). Subscriptions: {{.Subscriptions}}.</p>
{{range .Accounts}}
<fieldset><legend>{{.Name}} &lt;{{.Email}}&gt; <span class="muted">oid {{.OID}}, tenant {{.Tenant}}, mailbox time zone {{.TimeZone}}</span></legend>
<p>Teams presence: <strong>{{.Availability}}</strong> / {{.Activity}}{{range .Sessions}} <span class="muted">· {{.}}</span>{{end}}</p>
<p>Status message: {{if .Status}}“{{.Status}}”{{if .StatusExtra}} <span class="muted">{{.StatusExtra}}</span>{{end}}{{else}}<span class="muted">none</span>{{end}}</p>
<h3>Upcoming events</h3>
{{if .Events}}<ul>{{range .Events}}<li>{{.When}}: {{.Subject}} <span class="muted">{{.Extra}}</span></li>
{{end}}</ul>{{else}}<p class="muted">No upcoming events.</p>{{end}}
<form method="post" action="{{$.AddAction}}">
<input type="hidden" name="oid" value="{{.OID}}">
Add an event in
<input type="number" name="start_in_minutes" value="1" min="-1440" max="10080" required> minutes, lasting
<input type="number" name="duration_minutes" value="30" min="1" max="1440" required> minutes, shown as
<select name="show_as"><option value="busy">busy</option><option value="tentative">tentative</option><option value="oof">out of office</option><option value="free">free</option><option value="workingElsewhere">working elsewhere</option></select>
<input type="text" name="subject" placeholder="Sandbox meeting" maxlength="200">
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

type consentAccount struct{ OID, Email, Name, Tenant string }

type consentScope struct{ Scope, Description string }

type sandboxPage struct {
	Now           string
	AddAction     string
	Subscriptions int
	Accounts      []sandboxAccount
}

type sandboxAccount struct {
	OID, Tenant, Name, Email, TimeZone string
	Availability, Activity             string
	Sessions                           []string
	Status, StatusExtra                string
	Events                             []sandboxEvent
}

type sandboxEvent struct{ When, Subject, Extra string }

func (s *Server) renderPage(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "graphfake: render page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, status int, code, message string) {
	s.renderPage(w, status, "error", struct{ Code, Message string }{code, message})
}

const maxUpcoming = 20

func (s *Server) handleSandboxPage(w http.ResponseWriter, _ *http.Request, _ *reqInfo) {
	s.mu.Lock()
	s.ensureDefaultLocked()
	now := s.now()
	data := sandboxPage{Now: now.UTC().Format("Mon 2 Jan 2006 15:04:05"), AddAction: "/_sandbox/events"}
	for _, sub := range s.subs {
		if now.Before(sub.Expires) {
			data.Subscriptions++
		}
	}
	for _, oid := range s.userOrder {
		u := s.users[oid]
		av, act := s.aggregateLocked(u)
		sa := sandboxAccount{OID: u.oid, Tenant: u.tid, Name: u.name, Email: u.email, TimeZone: u.tz, Availability: av, Activity: act}
		var ids []string
		for id := range u.presence.sessions {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			ss := u.presence.sessions[id]
			who := "app session"
			if id == ClientSessionID {
				who = "Teams client"
			}
			desc := who + " " + ss.Availability + "/" + ss.Activity
			if !ss.Expires.IsZero() {
				desc += " until " + ss.Expires.In(u.loc).Format("15:04")
			}
			sa.Sessions = append(sa.Sessions, desc)
		}
		if pp := u.presence.preferred; pp != nil {
			sa.Sessions = append(sa.Sessions, "preferred "+pp.Availability+"/"+pp.Activity+" until "+pp.Expires.In(u.loc).Format("Mon 2 Jan 15:04"))
		}
		if sm := u.presence.status; sm != nil {
			sa.Status = sm.Content
			var extra []string
			if sm.SetByApp {
				extra = append(extra, "set by an app")
			} else {
				extra = append(extra, "set by the person")
			}
			if !sm.Expiry.IsZero() {
				extra = append(extra, "until "+sm.Expiry.In(u.loc).Format("Mon 2 Jan 15:04"))
			}
			sa.StatusExtra = strings.Join(extra, ", ")
		}
		var upcoming []*storedEvent
		for _, se := range u.events {
			if _, end := se.ev.span(u.loc); !se.deleted && end.After(now) {
				upcoming = append(upcoming, se)
			}
		}
		slices.SortFunc(upcoming, func(a, b *storedEvent) int {
			as, _ := a.ev.span(u.loc)
			bs, _ := b.ev.span(u.loc)
			return cmp.Or(as.Compare(bs), strings.Compare(a.ev.ID, b.ev.ID))
		})
		for _, se := range upcoming[:min(len(upcoming), maxUpcoming)] {
			sa.Events = append(sa.Events, describe(u, &se.ev))
		}
		data.Accounts = append(data.Accounts, sa)
	}
	s.mu.Unlock()
	s.renderPage(w, http.StatusOK, "sandbox", data)
}

func describe(u *user, ev *Event) sandboxEvent {
	d := sandboxEvent{Subject: cmp.Or(ev.Subject, "(No subject)")}
	if ev.IsAllDay {
		d.When = ev.Start.Format("Mon 2 Jan") + " – " + ev.End.Format("Mon 2 Jan") + " (all day, end exclusive)"
	} else {
		d.When = ev.Start.In(u.loc).Format("Mon 2 Jan 15:04") + " – " + ev.End.In(u.loc).Format("15:04")
	}
	extra := []string{"show as " + cmp.Or(ev.ShowAs, "busy")}
	if ev.IsCancelled {
		extra = append(extra, "cancelled")
	}
	if ev.Response != "" {
		extra = append(extra, "you: "+ev.Response)
	}
	d.Extra = strings.Join(extra, ", ")
	return d
}

// handleSandboxAddEvent adds "an event in N minutes for M minutes" to a
// mailbox and redirects back to the page.
func (s *Server) handleSandboxAddEvent(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin form post refused", http.StatusForbidden)
		return
	}
	f := r.PostForm
	oid := f.Get("oid")
	startIn, err1 := strconv.Atoi(strings.TrimSpace(f.Get("start_in_minutes")))
	dur, err2 := strconv.Atoi(strings.TrimSpace(f.Get("duration_minutes")))
	showAs := cmp.Or(f.Get("show_as"), "busy")
	subject := strings.TrimSpace(f.Get("subject"))
	switch {
	case err1 != nil || startIn < -1440 || startIn > 10080:
		http.Error(w, "start_in_minutes must be a whole number from -1440 to 10080", http.StatusBadRequest)
		return
	case err2 != nil || dur < 1 || dur > 1440:
		http.Error(w, "duration_minutes must be a whole number from 1 to 1440", http.StatusBadRequest)
		return
	case !slices.Contains(validShowAs, showAs):
		http.Error(w, "show_as must be free, tentative, busy, oof, workingElsewhere or unknown", http.StatusBadRequest)
		return
	case utf8.RuneCountInString(subject) > 200 || !utf8.ValidString(subject):
		http.Error(w, "subject must be valid UTF-8 of at most 200 characters", http.StatusBadRequest)
		return
	}
	if subject == "" {
		subject = "Sandbox meeting"
		if showAs == "oof" {
			subject = "Out of office"
		}
	}
	s.mu.Lock()
	_, err := s.userLocked(oid)
	s.mu.Unlock()
	if err != nil {
		http.Error(w, "no such sandbox account", http.StatusBadRequest)
		return
	}
	info.user = oid
	start := s.now().Add(time.Duration(startIn) * time.Minute).Truncate(time.Second)
	ev := Event{Subject: subject, Start: start, End: start.Add(time.Duration(dur) * time.Minute), ShowAs: showAs}
	if _, err := s.addEvent(oid, ev); err != nil {
		http.Error(w, "could not add the event", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, s.base(r)+"/", http.StatusSeeOther)
}
