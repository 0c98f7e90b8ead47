package slackfake

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// appHomeData is what the "apphome" template gets.
type appHomeData struct {
	ID, Name, TeamName          string
	EventsURL, InteractivityURL string
	Published                   bool
	ViewID, Hash                string
	Blocks                      []htmlBlock
	Threads                     []threadView
	Last                        *deliveryView
}

// threadView is a top-level message of the DM with its replies.
type threadView struct {
	Message messageView
	Replies []messageView
}

type messageView struct {
	Author   string
	Time     string
	TS       string
	ThreadTS string
	Orphan   bool // a reply whose parent is not in the DM
	Text     template.HTML
	Blocks   []htmlBlock
}

type deliveryView struct {
	Kind     DeliveryKind
	Time     string
	Status   int
	Response string
}

// handleAppHome serves GET /people/{user}: the person's App Home as the
// app left it, the Home view rendered to HTML and the DM conversation.
func (s *Server) handleAppHome(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	s.mu.Lock()
	p := s.users[r.PathValue("user")]
	if p == nil {
		s.mu.Unlock()
		s.renderError(w, http.StatusNotFound, "There is no such person in Sandbox Slack.")
		return
	}
	data := s.appHomeData(p)
	s.mu.Unlock()
	s.render(w, http.StatusOK, "apphome", page{
		Title: "App Home of " + data.Name, Now: now.UTC().Format(time.RFC1123), Body: data,
	})
}

// appHomeData snapshots a person's App Home; s.mu must be held.
func (s *Server) appHomeData(p *person) appHomeData {
	tm := s.teams[p.teamID]
	d := appHomeData{
		ID: p.id, Name: p.name, TeamName: tm.name,
		EventsURL: s.eventsURL, InteractivityURL: s.interactivityURL,
	}
	names := func(id string) string {
		if u := s.users[id]; u != nil {
			return u.name
		}
		return ""
	}
	if p.homeView != nil {
		var v struct {
			ID   string `json:"id"`
			Hash string `json:"hash"`
		}
		_ = json.Unmarshal(p.homeView, &v)
		d.Published, d.ViewID, d.Hash = true, v.ID, v.Hash
		d.Blocks = blockRenderer{userID: p.id, clickable: true, name: names}.renderView(p.homeView)
	}
	msgs := blockRenderer{userID: p.id, name: names}
	parent := map[string]int{} // ts → index in d.Threads
	for _, m := range p.messages {
		mv := messageView{
			Author: p.name, Time: m.Time.UTC().Format("15:04:05"), TS: m.TS, ThreadTS: m.ThreadTS,
			Text: msgs.mrkdwn(m.Text),
		}
		if m.Bot {
			mv.Author = "App (bot)"
		}
		if len(m.Blocks) > 0 {
			mv.Blocks = msgs.renderView(m.Blocks)
		}
		if m.ThreadTS != "" && m.ThreadTS != m.TS {
			if i, ok := parent[m.ThreadTS]; ok {
				d.Threads[i].Replies = append(d.Threads[i].Replies, mv)
				parent[m.TS] = i
				continue
			}
			mv.Orphan = true
		}
		parent[m.TS] = len(d.Threads)
		d.Threads = append(d.Threads, threadView{Message: mv})
	}
	for i := len(s.deliveries) - 1; i >= 0; i-- {
		if dl := s.deliveries[i]; dl.UserID == p.id {
			resp := string(dl.Response)
			if len(resp) > 200 {
				resp = resp[:200] + "…"
			}
			d.Last = &deliveryView{Kind: dl.Kind, Time: dl.Time.UTC().Format("15:04:05"), Status: dl.Status, Response: resp}
			break
		}
	}
	return d
}

// sandboxForm reads a sandbox form; it answers and returns false when the
// form is unreadable or names no person.
func (s *Server) sandboxForm(w http.ResponseWriter, r *http.Request) (string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return "", false
	}
	user := r.PostForm.Get("user")
	s.mu.Lock()
	known := s.users[user] != nil
	s.mu.Unlock()
	if !known {
		s.renderError(w, http.StatusNotFound, "There is no such person in Sandbox Slack.")
		return "", false
	}
	return user, true
}

// sandboxDone goes back to the person's App Home page, or explains why the
// delivery could not be made. A delivery our endpoint refused (non-2xx) is
// not an error here: the page shows its status.
func (s *Server) sandboxDone(w http.ResponseWriter, r *http.Request, user string, err error) {
	switch {
	case err == nil:
		http.Redirect(w, r, "/people/"+url.PathEscape(user), http.StatusSeeOther)
	case errors.Is(err, ErrNoEventsURL), errors.Is(err, ErrNoInteractivityURL):
		s.renderError(w, http.StatusConflict, err.Error()+": start the app with the sandbox, or set it on the fake.")
	case errors.Is(err, ErrNoSuchButton):
		s.renderError(w, http.StatusConflict, "That button is no longer in the published Home view; reload the App Home.")
	case errors.Is(err, ErrUnknownUser):
		s.renderError(w, http.StatusNotFound, "There is no such person in Sandbox Slack.")
	default:
		s.renderError(w, http.StatusBadGateway, "The app could not be reached: "+err.Error())
	}
}

// handleSandboxOpen serves POST /_sandbox/open: app_home_opened.
func (s *Server) handleSandboxOpen(w http.ResponseWriter, r *http.Request) {
	user, ok := s.sandboxForm(w, r)
	if !ok {
		return
	}
	tab := r.PostForm.Get("tab")
	if tab != "" && tab != "home" && tab != "messages" {
		s.renderError(w, http.StatusBadRequest, "Open the home or the messages tab.")
		return
	}
	_, err := s.OpenAppHome(r.Context(), user, tab)
	s.sandboxDone(w, r, user, err)
}

// handleSandboxClick serves POST /_sandbox/click: block_actions for a Home
// view button. A link button then opens its URL, as in Slack.
func (s *Server) handleSandboxClick(w http.ResponseWriter, r *http.Request) {
	user, ok := s.sandboxForm(w, r)
	if !ok {
		return
	}
	_, b, err := s.clickButton(r.Context(), user, r.PostForm.Get("action_id"))
	if err == nil && b.URL != "" {
		if u, perr := url.Parse(b.URL); perr == nil && (u.Scheme == "http" || u.Scheme == "https") {
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
	}
	s.sandboxDone(w, r, user, err)
}

// handleSandboxIM serves POST /_sandbox/im: a message.im from the person,
// top level or in a thread (thread_ts).
func (s *Server) handleSandboxIM(w http.ResponseWriter, r *http.Request) {
	user, ok := s.sandboxForm(w, r)
	if !ok {
		return
	}
	text := strings.TrimSpace(r.PostForm.Get("text"))
	if text == "" {
		s.renderError(w, http.StatusBadRequest, "Write a message first.")
		return
	}
	_, err := s.SendIMInThread(r.Context(), user, r.PostForm.Get("thread_ts"), text)
	s.sandboxDone(w, r, user, err)
}
