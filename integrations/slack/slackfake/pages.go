package slackfake

import (
	"bytes"
	"html/template"
	"net/http"
	"time"
)

// pages holds the fake's HTML: the people list, the consent page and errors.
// html/template escapes every value.
var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<title>{{.Title}} · Sandbox Slack</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:56rem;padding:0 1rem;color:#1d1c1d}
.banner{background:#4a154b;color:#fff;padding:.5rem 1rem;border-radius:6px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ddd}
.muted{color:#666}button{padding:.4rem 1rem;margin-right:.5rem}
</style></head><body>
<p class="banner"><strong>Sandbox Slack</strong>: a fake Slack for trying things out. Nothing here is real.</p>
{{end}}

{{define "people"}}{{template "head" .}}
<h1>People</h1>
<p class="muted">Refreshes every {{.Refresh}} seconds. Clock: {{.Now}}.</p>
{{range .Body}}
<h2>{{.Name}} <span class="muted">({{.ID}})</span></h2>
<table>
<thead><tr><th>Person</th><th>Status</th><th>Expires</th><th>Do Not Disturb</th><th>Presence</th></tr></thead>
<tbody>
{{range .People}}<tr>
<td>{{.Name}} <span class="muted">{{.ID}}</span></td>
<td>{{if or .Emoji .Text}}{{.Emoji}} {{.Text}}{{else}}<span class="muted">none</span>{{end}}</td>
<td>{{if .Expires}}{{.Expires}}{{else}}<span class="muted">never</span>{{end}}</td>
<td>{{if .DND}}snoozed until {{.DND}}{{else}}<span class="muted">off</span>{{end}}</td>
<td>{{.Presence}}</td>
</tr>{{end}}
</tbody></table>
{{else}}<p>No workspaces.</p>{{end}}
</body></html>{{end}}

{{define "consent"}}{{template "head" .}}
{{with .Body}}
<h1>Allow the app to use Sandbox Slack?</h1>
<p>App <code>{{.ClientID}}</code> will be sent back to <code>{{.Redirect}}</code>.</p>
{{if .Scopes}}<p>As a bot it asks for:</p><ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
{{if .UserScopes}}<p>On your behalf it asks for:</p><ul>{{range .UserScopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
<form method="post" action="/oauth/v2/authorize">
<input type="hidden" name="request" value="{{.RequestID}}">
<fieldset><legend>Sign in as</legend>
{{range $i, $t := .Teams}}{{range $j, $p := $t.People}}
<p><label><input type="radio" name="user" value="{{$p.ID}}"{{if and (eq $i 0) (eq $j 0)}} checked{{end}}> {{$p.Name}} <span class="muted">{{$p.ID}} in {{$t.Name}} ({{$t.ID}})</span></label></p>
{{end}}{{end}}
</fieldset>
<p><button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="cancel">Cancel</button></p>
</form>
{{end}}
</body></html>{{end}}

{{define "error"}}{{template "head" .}}
<h1>Something is wrong with this request</h1>
<p>{{.Body}}</p>
</body></html>{{end}}
`))

// page is what every template gets.
type page struct {
	Title   string
	Refresh int // seconds; 0 for none
	Now     string
	Body    any
}

type teamView struct {
	ID, Name string
	People   []personView
}

type personView struct {
	ID, Name    string
	Text, Emoji string
	Expires     string
	DND         string
	Presence    string
}

type consentData struct {
	RequestID  string
	ClientID   string
	Scopes     []string
	UserScopes []string
	Redirect   string
	Teams      []teamView
}

// peopleRefreshSeconds is how often the people page reloads itself.
const peopleRefreshSeconds = 3

func (s *Server) handlePeople(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	s.mu.Lock()
	teams := s.peopleView(now)
	s.mu.Unlock()
	s.render(w, http.StatusOK, "people", page{
		Title: "People", Refresh: peopleRefreshSeconds, Now: now.UTC().Format(time.RFC1123), Body: teams,
	})
}

// peopleView snapshots every person; s.mu must be held.
func (s *Server) peopleView(now time.Time) []teamView {
	var out []teamView
	for _, tid := range s.teamOrder {
		t := s.teams[tid]
		tv := teamView{ID: t.id, Name: t.name}
		for _, uid := range t.userIDs {
			p := s.users[uid]
			s.expire(p, now)
			pv := personView{ID: p.id, Name: p.name, Text: p.statusText, Emoji: p.statusEmoji, Presence: "auto"}
			if p.manualAway {
				pv.Presence = "away"
			}
			if !p.statusExp.IsZero() {
				pv.Expires = when(p.statusExp, now)
			}
			if !p.snoozeEnd.IsZero() {
				pv.DND = when(p.snoozeEnd, now)
			}
			tv.People = append(tv.People, pv)
		}
		out = append(out, tv)
	}
	return out
}

// when formats t for the people page, with the time left.
func when(t, now time.Time) string {
	return t.UTC().Format("Mon 2 Jan 15:04:05 MST") + " (in " + t.Sub(now).Round(time.Second).String() + ")"
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
