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
form.inline{display:inline}
.warn{background:#fff4e5;border-left:4px solid #e8912d;padding:.5rem 1rem}
.panes{display:flex;gap:1.5rem;flex-wrap:wrap}.pane{flex:1 1 24rem;border:1px solid #ddd;border-radius:8px;padding:0 1rem 1rem}
.kb-header{font-size:1.25rem;font-weight:700;margin:1rem 0 .5rem}
.kb-section{margin:.5rem 0;display:flex;gap:1rem;justify-content:space-between;align-items:flex-start}
.kb-fields{display:grid;grid-template-columns:1fr 1fr;gap:.25rem 1rem;margin-top:.25rem}
.kb-context{color:#616061;font-size:.85rem;margin:.5rem 0}.kb-context>span{margin-right:.75rem}
.kb-actions{margin:.5rem 0;display:flex;flex-wrap:wrap;gap:.5rem}.kb-actions form{margin:0}
hr.kb-divider{border:0;border-top:1px solid #ddd;margin:.75rem 0}
button.kb-primary{background:#007a5a;color:#fff;border:1px solid #007a5a;border-radius:4px}
button.kb-danger{background:#fff;color:#e01e5a;border:1px solid #e01e5a;border-radius:4px}
.msg{border-top:1px solid #eee;padding:.5rem 0}.reply{margin:.4rem 0 0 1.5rem;padding-left:.75rem;border-left:3px solid #ddd}
code{background:#f4f4f4;padding:0 .2rem;border-radius:3px}
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
<td><a href="/people/{{.ID}}">{{.Name}}</a> <span class="muted">{{.ID}}</span></td>
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
{{if .SignInScopes}}<p>Sign in with Slack: it asks for</p><ul>{{range .SignInScopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
<form method="post" action="{{or .Action "/oauth/v2/authorize"}}">
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

{{define "apphome"}}{{template "head" .}}
{{with .Body}}
<p><a href="/people">All people</a></p>
<h1>App Home of {{.Name}} <span class="muted">({{.ID}} in {{.TeamName}})</span></h1>
<form class="inline" method="post" action="/_sandbox/open">
<input type="hidden" name="user" value="{{.ID}}">
<button type="submit" name="tab" value="home">Open the Home tab</button>
<button type="submit" name="tab" value="messages">Open the Messages tab</button>
</form>
<a href="/people/{{.ID}}">Reload</a>
{{if not .EventsURL}}<p class="warn">No Events API Request URL is set: opening the App Home and sending messages deliver nothing.</p>{{end}}
{{if not .InteractivityURL}}<p class="warn">No Interactivity Request URL is set: buttons deliver nothing.</p>{{end}}
{{with .Last}}<p class="muted">Last delivery for {{$.Body.Name}}: {{.Kind}} at {{.Time}}: {{if .Status}}HTTP {{.Status}}{{else}}no answer{{end}}{{if .Response}} <code>{{.Response}}</code>{{end}}</p>{{end}}
<div class="panes">
<section class="pane">
<h2>Home</h2>
{{if .Published}}<p class="muted">View {{.ViewID}}, hash {{.Hash}}</p>
{{range .Blocks}}{{template "block" .}}{{end}}
{{else}}<p class="muted">The app has not published a Home view for {{.Name}} yet.</p>{{end}}
</section>
<section class="pane">
<h2>Messages</h2>
{{range .Threads}}<div class="msg">
{{template "message" .Message}}
{{range .Replies}}<div class="reply">{{template "message" .}}</div>{{end}}
<form method="post" action="/_sandbox/im">
<input type="hidden" name="user" value="{{$.Body.ID}}"><input type="hidden" name="thread_ts" value="{{.Message.TS}}">
<label class="muted">Reply in thread <input name="text" required maxlength="4000"></label> <button type="submit">Reply</button>
</form>
</div>
{{else}}<p class="muted">No messages yet.</p>{{end}}
<form method="post" action="/_sandbox/im">
<input type="hidden" name="user" value="{{.ID}}">
<p><label>Message the app <input name="text" required maxlength="4000" size="40"></label> <button type="submit">Send</button></p>
</form>
</section>
</div>
{{end}}
</body></html>{{end}}

{{define "message"}}<p><strong>{{.Author}}</strong> <span class="muted">{{.Time}} · ts {{.TS}}{{if .Orphan}} · reply to unknown thread {{.ThreadTS}}{{end}}</span></p>
{{if .Blocks}}{{range .Blocks}}{{template "block" .}}{{end}}{{else}}<div>{{.Text}}</div>{{end}}{{end}}

{{define "block"}}{{if eq .Type "header"}}<div class="kb-header">{{.Text}}</div>
{{else if eq .Type "section"}}<div class="kb-section"><div>{{.Text}}{{if .Fields}}<div class="kb-fields">{{range .Fields}}<div>{{.}}</div>{{end}}</div>{{end}}</div>{{with .Accessory}}<div>{{template "element" .}}</div>{{end}}</div>
{{else if eq .Type "context"}}<div class="kb-context">{{range .Elements}}<span>{{.Text}}</span>{{end}}</div>
{{else if eq .Type "divider"}}<hr class="kb-divider">
{{else if eq .Type "actions"}}<div class="kb-actions">{{range .Elements}}{{template "element" .}}{{end}}</div>
{{else}}<div class="muted">{{.Text}}</div>
{{end}}{{end}}

{{define "element"}}{{if eq .Kind "button"}}{{if .Clickable}}<form method="post" action="/_sandbox/click">
<input type="hidden" name="user" value="{{.User}}"><input type="hidden" name="action_id" value="{{.ActionID}}">
<button type="submit"{{if .Style}} class="kb-{{.Style}}"{{end}}>{{.Text}}</button>{{if .URL}} <span class="muted">opens {{.URL}}</span>{{end}}
</form>{{else}}<button type="button" disabled{{if .Style}} class="kb-{{.Style}}"{{end}}>{{.Text}}</button>{{end}}
{{else}}<span>{{.Text}}</span>{{end}}{{end}}

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
	// SignInScopes are the OpenID scopes of a Sign in with Slack request.
	SignInScopes []string
	// Action is where the form posts ("" means /oauth/v2/authorize).
	Action   string
	Redirect string
	Teams    []teamView
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
