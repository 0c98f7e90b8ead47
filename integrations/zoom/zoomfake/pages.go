package zoomfake

import (
	"bytes"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// pages holds the fake's HTML; html/template escapes every value.
var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Sandbox Zoom</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:56rem;padding:0 1rem;color:#232333}
.banner{background:#0b5cff;color:#fff;padding:.5rem 1rem;border-radius:6px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ddd;vertical-align:top}
.muted{color:#666}button{padding:.4rem 1rem;margin:.1rem .5rem .1rem 0}form{display:inline}
</style></head><body>
<p class="banner"><strong>Sandbox Zoom</strong>: a fake Zoom for trying things out. Nothing here is real.</p>
{{end}}

{{define "people"}}{{template "head" .}}
{{with .Body}}
<h1>People and their calls</h1>
<p class="muted">Clock: {{.Now}}. Webhooks go to {{if .WebhookURL}}<code>{{.WebhookURL}}</code>{{else}}nowhere (no webhook URL set){{end}}.</p>
<table>
<thead><tr><th>Person</th><th>Call in progress</th><th>Scheduled meetings</th><th></th></tr></thead>
<tbody>
{{range .Users}}<tr>
<td>{{.ID}}<br><span class="muted">account {{.AccountID}}</span></td>
<td>{{range .Live}}<code>{{.}}</code><br>{{else}}<span class="muted">none</span>{{end}}</td>
<td>{{range .Scheduled}}{{.}}<br>{{else}}<span class="muted">none</span>{{end}}</td>
<td>
<form method="post" action="/sandbox/start"><input type="hidden" name="user" value="{{.ID}}"><button type="submit">Start a call now</button></form>
{{range .Live}}<form method="post" action="/sandbox/end"><input type="hidden" name="user" value="{{$.Body.UserOf .}}"><input type="hidden" name="meeting" value="{{.}}"><button type="submit">End it</button></form>{{end}}
</td>
</tr>{{end}}
</tbody></table>
<h2>Recent webhooks</h2>
{{if .Deliveries}}<table><thead><tr><th>Sent</th><th>Event</th><th>Meeting</th><th>Our answer</th></tr></thead><tbody>
{{range .Deliveries}}<tr><td>{{.Time}}</td><td>{{.Event}}</td><td>{{.MeetingID}}</td><td>{{if .Status}}HTTP {{.Status}}{{else}}no answer{{end}}</td></tr>{{end}}
</tbody></table>{{else}}<p class="muted">None yet.</p>{{end}}
{{end}}
</body></html>{{end}}

{{define "consent"}}{{template "head" .}}
{{with .Body}}
<h1>Allow this app to use your Sandbox Zoom account?</h1>
<p>App <code>{{.ClientID}}</code> will be sent back to <code>{{.Redirect}}</code>.</p>
<p>It will be able to:</p><ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>
<form method="post" action="/oauth/authorize">
<input type="hidden" name="request" value="{{.RequestID}}">
<fieldset><legend>Sign in as</legend>
{{range $i, $u := .Users}}<p><label><input type="radio" name="user" value="{{$u}}"{{if eq $i 0}} checked{{end}}> {{$u}}</label></p>{{end}}
</fieldset>
<p><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="cancel">Cancel</button></p>
</form>
{{end}}
</body></html>{{end}}

{{define "error"}}{{template "head" .}}
<h1>Something is wrong with this request</h1>
<p>{{.Body}}</p>
<p><a href="/">Back</a></p>
</body></html>{{end}}
`))

// page is what every template gets.
type page struct {
	Title string
	Body  any
}

type consentData struct {
	RequestID string
	ClientID  string
	Redirect  string
	Scopes    []string
	Users     []string
}

type peopleData struct {
	Now        string
	WebhookURL string
	Users      []userView
	Deliveries []deliveryView
	hosts      map[string]string
}

// UserOf returns the host of a call in progress, for the End it form.
func (p peopleData) UserOf(meetingID string) string { return p.hosts[meetingID] }

type userView struct {
	ID, AccountID string
	Live          []string
	Scheduled     []string
}

type deliveryView struct {
	Time      string
	Event     string
	MeetingID string
	Status    int
}

// handlePage serves GET /: the "Sandbox Zoom" page. Topics are shown: they
// are the fake's own.
func (s *Server) handlePage(w http.ResponseWriter, _ *http.Request, _ *reqInfo) {
	now := s.now()
	s.mu.Lock()
	data := peopleData{Now: now.UTC().Format(time.RFC1123), WebhookURL: s.webhookURL, hosts: map[string]string{}}
	for _, uid := range s.userOrder {
		u := s.users[uid]
		uv := userView{ID: u.id, AccountID: u.accountID}
		for id, c := range s.live {
			if c.hostID == u.id {
				uv.Live = append(uv.Live, id)
				data.hosts[id] = u.id
			}
		}
		slices.Sort(uv.Live)
		for _, m := range u.meetings {
			if m.Type == 3 || now.Before(m.Start.Add(m.Duration)) {
				uv.Scheduled = append(uv.Scheduled, m.Start.UTC().Format("Mon 2 Jan 15:04")+" · "+
					strconv.Itoa(int(m.Duration/time.Minute))+" min · "+m.Topic+" ("+strconv.FormatInt(m.ID, 10)+")")
			}
		}
		data.Users = append(data.Users, uv)
	}
	for i := len(s.deliveries) - 1; i >= 0 && len(data.Deliveries) < 20; i-- {
		d := s.deliveries[i]
		data.Deliveries = append(data.Deliveries, deliveryView{Time: d.Time.UTC().Format(time.TimeOnly),
			Event: d.Event, MeetingID: d.MeetingID, Status: d.Status})
	}
	s.mu.Unlock()
	s.render(w, http.StatusOK, "people", page{Title: "People", Body: data})
}

// handleSandboxStart serves the "Start a call now" button: an ad-hoc call.
func (s *Server) handleSandboxStart(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	info.user = r.PostForm.Get("user")
	if _, err := s.StartMeeting(r.Context(), info.user, r.PostForm.Get("meeting")); err != nil {
		s.renderError(w, http.StatusBadRequest, err.Error())
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleSandboxEnd serves the "End it" button.
func (s *Server) handleSandboxEnd(w http.ResponseWriter, r *http.Request, info *reqInfo) {
	info.user = r.PostForm.Get("user")
	if _, err := s.EndMeeting(r.Context(), info.user, r.PostForm.Get("meeting")); err != nil {
		s.renderError(w, http.StatusBadRequest, err.Error())
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) renderError(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "error", page{Title: "Error", Body: msg})
}

// render executes a template into a buffer first, so a template error is a
// clean 500.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
