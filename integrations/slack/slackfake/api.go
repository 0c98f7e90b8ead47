package slackfake

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxBodyBytes bounds request bodies (Slack's own limits are lower for most methods).
const maxBodyBytes = 1 << 20

// result is an answer to an API call, built under s.mu and written after.
type result struct {
	status int
	header http.Header
	body   map[string]any
	// changed: a write changed the person's status, snooze or presence (Call.Changed)
	changed bool
}

func okResult(fields map[string]any) result {
	body := map[string]any{"ok": true}
	for k, v := range fields {
		body[k] = v
	}
	return result{status: http.StatusOK, body: body}
}

func errResult(code string) result {
	return result{status: http.StatusOK, body: map[string]any{"ok": false, "error": code}}
}

func (r result) errorCode() string {
	if ok, _ := r.body["ok"].(bool); ok {
		return ""
	}
	code, _ := r.body["error"].(string)
	return code
}

func (r result) write(w http.ResponseWriter) {
	for k, vs := range r.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	b, err := json.Marshal(r.body)
	if err != nil {
		b = []byte(`{"ok":false,"error":"internal_error"}`)
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(b)
}

// apiRequest is a parsed Web API request.
type apiRequest struct {
	method string
	params url.Values                 // query + form, or query + top-level JSON fields as text
	json   map[string]json.RawMessage // the JSON body, when the request had one
	token  string
	basic  struct {
		user, pass string
		ok         bool
	}
	now time.Time
	// origin is scheme://host the request came to (the issuer when no base URL is set)
	origin string
	// attribution for the call log
	team, user string
}

// sensitiveParams never reach the call log.
var sensitiveParams = []string{"token", "client_secret", "code", "refresh_token", "code_verifier"}

// methodSpec describes how a Web API method authenticates.
type methodSpec struct {
	scope    string // required scope, "" for none
	userOnly bool   // user tokens only (xoxp)
	botOnly  bool   // bot tokens only (xoxb)
	handle   func(s *Server, req *apiRequest, t *token) result
}

var apiMethods = map[string]methodSpec{
	"auth.test":         {handle: (*Server).authTest},
	"auth.revoke":       {handle: (*Server).authRevoke},
	"users.profile.get": {scope: "users.profile:read", handle: (*Server).usersProfileGet},
	"users.profile.set": {scope: "users.profile:write", userOnly: true, handle: (*Server).usersProfileSet},
	"dnd.info":          {scope: "dnd:read", handle: (*Server).dndInfo},
	"dnd.setSnooze":     {scope: "dnd:write", userOnly: true, handle: (*Server).dndSetSnooze},
	"dnd.endSnooze":     {scope: "dnd:write", userOnly: true, handle: (*Server).dndEndSnooze},
	"dnd.endDnd":        {scope: "dnd:write", userOnly: true, handle: (*Server).dndEndDnd},
	"users.setPresence": {scope: "users:write", userOnly: true, handle: (*Server).usersSetPresence},
	"users.getPresence": {scope: "users:read", handle: (*Server).usersGetPresence},
	"views.publish":     {botOnly: true, handle: (*Server).viewsPublish},
	"chat.postMessage":  {scope: "chat:write", botOnly: true, handle: (*Server).chatPostMessage},

	"openid.connect.userInfo": {scope: "openid", userOnly: true, handle: (*Server).openIDConnectUserInfo},
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	req, perr := readAPIRequest(w, r)
	req.now = s.now()
	req.origin = requestOrigin(r)

	s.mu.Lock()
	var res result
	if perr != nil {
		res = errResult("invalid_form_data")
	} else {
		res = s.dispatch(req)
	}
	var params url.Values
	if !s.opts.NoCallLog {
		params = cloneValues(req.params)
		for _, k := range sensitiveParams {
			params.Del(k)
		}
	}
	s.record(Call{
		Method:  req.method,
		Team:    req.team,
		User:    req.user,
		Params:  params,
		Time:    req.now,
		Status:  res.status,
		Error:   res.errorCode(),
		Changed: res.changed,
	})
	s.mu.Unlock()

	res.write(w)
}

func readAPIRequest(w http.ResponseWriter, r *http.Request) (*apiRequest, error) {
	req := &apiRequest{method: r.PathValue("method"), params: url.Values{}}
	req.basic.user, req.basic.pass, req.basic.ok = r.BasicAuth()
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		req.token = strings.TrimSpace(h[7:])
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype == "application/json" && r.Method == http.MethodPost {
		for k, vs := range r.URL.Query() {
			req.params[k] = vs
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return req, err
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req.json); err != nil {
				return req, err
			}
		}
		for k, raw := range req.json {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				req.params.Set(k, str)
			} else {
				req.params.Set(k, string(raw))
			}
		}
		// Slack takes the token of a JSON request from the header only.
		return req, nil
	}
	if err := r.ParseForm(); err != nil {
		return req, err
	}
	req.params = r.Form
	if req.token == "" {
		req.token = req.params.Get("token")
	}
	return req, nil
}

// dispatch answers one API call; s.mu must be held.
func (s *Server) dispatch(req *apiRequest) result {
	switch req.method {
	case "oauth.v2.access":
		return s.oauthV2Access(req)
	case "openid.connect.token":
		return s.openIDConnectToken(req)
	}
	spec, known := apiMethods[req.method]
	if !known {
		res := errResult("unknown_method")
		res.status = http.StatusNotFound
		res.body["req_method"] = req.method
		return res
	}
	t := s.tokens[req.token]
	if t != nil {
		req.team, req.user = t.teamID, t.userID
	}
	if res, failed := s.takeFailure(req.method); failed {
		return res
	}
	switch {
	case req.token == "":
		return errResult("not_authed")
	case t == nil:
		return errResult("invalid_auth")
	case t.revoked:
		return errResult("token_revoked")
	case !t.expires.IsZero() && !req.now.Before(t.expires):
		return errResult("token_expired")
	case t.kind == userToken && s.users[t.userID] == nil:
		return errResult("account_inactive")
	case spec.userOnly && t.kind != userToken, spec.botOnly && t.kind != botToken:
		return errResult("not_allowed_token_type")
	}
	limits := []limit{{key: req.method + "/" + t.teamID, max: s.methodLimit(req.method), per: s.methodWindow()}}
	if req.method == "users.profile.set" {
		limits = append(limits, limit{key: "users.profile.set/user/" + t.teamID + "/" + t.userID, max: s.profileUserLimit()})
	}
	if ok, retry := s.admit(req.now, limits...); !ok {
		return rateLimited(retry)
	}
	if spec.scope != "" && !slices.Contains(t.scopes, spec.scope) {
		res := errResult("missing_scope")
		res.body["needed"] = spec.scope
		res.body["provided"] = strings.Join(t.scopes, ",")
		return withScopeHeaders(res, t, spec.scope)
	}
	return withScopeHeaders(spec.handle(s, req, t), t, spec.scope)
}

func rateLimited(retryAfterSeconds int) result {
	res := errResult("ratelimited")
	res.status = http.StatusTooManyRequests
	res.header = http.Header{"Retry-After": {strconv.Itoa(retryAfterSeconds)}}
	return res
}

// withScopeHeaders adds the X-OAuth-Scopes headers Slack sends.
func withScopeHeaders(res result, t *token, accepted string) result {
	if res.header == nil {
		res.header = http.Header{}
	}
	res.header.Set("X-OAuth-Scopes", strings.Join(t.scopes, ","))
	res.header.Set("X-Accepted-OAuth-Scopes", accepted)
	return res
}

// takeFailure pops a FailNext fault for method.
func (s *Server) takeFailure(method string) (result, bool) {
	q := s.failures[method]
	if len(q) == 0 {
		return result{}, false
	}
	f := q[0]
	if len(q) == 1 {
		delete(s.failures, method)
	} else {
		s.failures[method] = q[1:]
	}
	code := f.err
	if f.status == 0 || f.status == http.StatusOK {
		if code == "" {
			code = "fatal_error"
		}
		return errResult(code), true
	}
	if code == "" {
		code = "internal_error"
	}
	res := errResult(code)
	res.status = f.status
	if f.status == http.StatusTooManyRequests {
		res.header = http.Header{"Retry-After": {"1"}}
	}
	return res, true
}

// target resolves the optional "user" parameter to a person in the token's
// team; without it, the token's own person (nil for a bot token).
func (s *Server) target(req *apiRequest, t *token) (*person, string) {
	id := req.params.Get("user")
	if id == "" {
		if t.kind == botToken {
			return nil, ""
		}
		id = t.userID
	}
	p := s.users[id]
	if p == nil || p.teamID != t.teamID {
		return nil, "user_not_found"
	}
	return p, ""
}

func (s *Server) workspaceURL(t *team) string {
	if s.baseURL != "" {
		return s.baseURL + "/"
	}
	return "https://" + strings.ToLower(t.id) + ".slack.invalid/"
}

func (s *Server) authTest(req *apiRequest, t *token) result {
	tm := s.teams[t.teamID]
	fields := map[string]any{
		"url":                   s.workspaceURL(tm),
		"team":                  tm.name,
		"team_id":               tm.id,
		"user_id":               t.userID,
		"is_enterprise_install": false,
	}
	if t.kind == botToken {
		fields["user"] = "sandbox-bot"
		fields["bot_id"] = tm.botID
	} else {
		fields["user"] = s.users[t.userID].name
	}
	return okResult(fields)
}

func (s *Server) authRevoke(req *apiRequest, t *token) result {
	if v := req.params.Get("test"); v == "1" || v == "true" {
		return okResult(map[string]any{"revoked": false})
	}
	t.revoked = true
	if r := s.refresh[t.refresh]; r != nil {
		r.revoked = true
	}
	return okResult(map[string]any{"revoked": true})
}

// profile renders a person's profile as users.profile.get returns it.
func (s *Server) profile(p *person) map[string]any {
	exp := int64(0)
	if !p.statusExp.IsZero() {
		exp = p.statusExp.Unix()
	}
	return map[string]any{
		"real_name":               p.name,
		"real_name_normalized":    p.name,
		"display_name":            p.name,
		"display_name_normalized": p.name,
		"first_name":              p.name,
		"status_text":             p.statusText,
		"status_emoji":            p.statusEmoji,
		"status_expiration":       exp,
		"status_text_canonical":   "",
		"avatar_hash":             "",
		"team":                    p.teamID,
	}
}

func (s *Server) usersProfileGet(req *apiRequest, t *token) result {
	p, errCode := s.target(req, t)
	if errCode != "" {
		return errResult(errCode)
	}
	if p == nil { // a bot token asking about itself
		tm := s.teams[t.teamID]
		return okResult(map[string]any{"profile": map[string]any{
			"real_name": "sandbox-bot", "display_name": "sandbox-bot", "bot_id": tm.botID,
			"status_text": "", "status_emoji": "", "status_expiration": 0, "team": tm.id,
		}})
	}
	s.expire(p, req.now)
	return okResult(map[string]any{"profile": s.profile(p)})
}

// emojiPattern is what a status_emoji must look like: :name: with an
// optional skin tone.
var emojiPattern = regexp.MustCompile(`^:[a-z0-9_+'\-]+:(:skin-tone-[2-6]:)?$`)

func (s *Server) usersProfileSet(req *apiRequest, t *token) result {
	p := s.users[t.userID]
	if u := req.params.Get("user"); u != "" && u != t.userID {
		if other := s.users[u]; other == nil || other.teamID != t.teamID {
			return errResult("user_not_found")
		}
		return errResult("not_admin") // fake people are never workspace admins
	}
	fields, ok := profileFields(req)
	if !ok {
		return errResult("invalid_profile")
	}
	s.expire(p, req.now)
	text, emoji, exp := p.statusText, p.statusEmoji, p.statusExp
	if raw, ok := fields["status_text"]; ok {
		if json.Unmarshal(raw, &text) != nil || utf8.RuneCountInString(text) > MaxStatusTextLength {
			return errResult("invalid_profile")
		}
	}
	if raw, ok := fields["status_emoji"]; ok {
		if json.Unmarshal(raw, &emoji) != nil {
			return errResult("invalid_profile")
		}
		if emoji != "" && !emojiPattern.MatchString(emoji) {
			return errResult("invalid_emoji_not_allowed")
		}
	}
	if raw, ok := fields["status_expiration"]; ok {
		sec, ok := jsonInt(raw)
		if !ok || sec < 0 {
			return errResult("invalid_profile")
		}
		exp = time.Time{}
		if sec > 0 {
			exp = time.Unix(sec, 0)
		}
	}
	switch {
	case text == "" && emoji == "":
		exp = time.Time{}
	case emoji == "":
		emoji = ":speech_balloon:" // Slack's default when only text is set
	}
	before := Status{Text: p.statusText, Emoji: p.statusEmoji, Expiration: p.statusExp}
	p.statusText, p.statusEmoji, p.statusExp = text, emoji, exp
	s.expire(p, req.now) // an expiration in the past clears at once
	res := okResult(map[string]any{"profile": s.profile(p)})
	res.changed = before != Status{Text: p.statusText, Emoji: p.statusEmoji, Expiration: p.statusExp}
	return res
}

// profileFields reads the profile argument: a JSON object (as a JSON body
// field or a URL-encoded JSON string) or a name/value pair.
func profileFields(req *apiRequest) (map[string]json.RawMessage, bool) {
	var fields map[string]json.RawMessage
	if raw, ok := req.json["profile"]; ok {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			raw = json.RawMessage(str)
		}
		if json.Unmarshal(raw, &fields) != nil || fields == nil {
			return nil, false
		}
		return fields, len(fields) <= 50
	}
	if pr := req.params.Get("profile"); pr != "" {
		if json.Unmarshal([]byte(pr), &fields) != nil || fields == nil {
			return nil, false
		}
		return fields, len(fields) <= 50
	}
	if name := req.params.Get("name"); name != "" {
		v, _ := json.Marshal(req.params.Get("value"))
		if name == "status_expiration" {
			v = json.RawMessage(strconv.Quote(req.params.Get("value")))
		}
		return map[string]json.RawMessage{name: v}, true
	}
	return nil, false
}

// jsonInt reads an integer sent as a JSON number or a numeric string.
func jsonInt(raw json.RawMessage) (int64, bool) {
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if v, err := n.Int64(); err == nil {
			return v, true
		}
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		if str == "" {
			return 0, true
		}
		if v, err := strconv.ParseInt(str, 10, 64); err == nil {
			return v, true
		}
	}
	return 0, false
}

func (s *Server) dndInfo(req *apiRequest, t *token) result {
	p, errCode := s.target(req, t)
	if errCode != "" {
		return errResult(errCode)
	}
	if p == nil {
		return errResult("user_not_found")
	}
	s.expire(p, req.now)
	fields := map[string]any{
		"dnd_enabled":       false, // no DND schedule is modelled
		"next_dnd_start_ts": 1,
		"next_dnd_end_ts":   1,
		"snooze_enabled":    !p.snoozeEnd.IsZero(),
	}
	if !p.snoozeEnd.IsZero() && p.id == t.userID {
		fields["snooze_endtime"] = p.snoozeEnd.Unix()
		fields["snooze_remaining"] = remainingSeconds(p.snoozeEnd, req.now)
	}
	return okResult(fields)
}

func remainingSeconds(end, now time.Time) int64 {
	return int64((end.Sub(now) + time.Second - 1) / time.Second)
}

func (s *Server) dndSetSnooze(req *apiRequest, t *token) result {
	raw := strings.TrimSpace(req.params.Get("num_minutes"))
	if raw == "" {
		return errResult("missing_duration")
	}
	minutes, err := strconv.Atoi(raw)
	if err != nil || minutes < 1 {
		return errResult("invalid_arguments")
	}
	if m := s.opts.MaxSnoozeMinutes; m > 0 && minutes > m {
		return errResult("too_long")
	}
	p := s.users[t.userID]
	s.expire(p, req.now)
	before := p.snoozeEnd
	p.snoozeEnd = req.now.Add(time.Duration(minutes) * time.Minute)
	res := okResult(map[string]any{
		"snooze_enabled":       true,
		"snooze_endtime":       p.snoozeEnd.Unix(),
		"snooze_remaining":     remainingSeconds(p.snoozeEnd, req.now),
		"snooze_is_indefinite": false,
	})
	// Snoozes are set in whole minutes: one that ends within the same minute changes nothing
	// a person would see.
	res.changed = before.IsZero() || p.snoozeEnd.Sub(before).Abs() >= time.Minute
	return res
}

func (s *Server) dndEndSnooze(req *apiRequest, t *token) result {
	p := s.users[t.userID]
	s.expire(p, req.now)
	if p.snoozeEnd.IsZero() {
		return errResult("snooze_not_active")
	}
	p.snoozeEnd = time.Time{}
	res := okResult(map[string]any{
		"dnd_enabled":       false,
		"next_dnd_start_ts": 1,
		"next_dnd_end_ts":   1,
		"snooze_enabled":    false,
	})
	res.changed = true
	return res
}

func (s *Server) dndEndDnd(req *apiRequest, t *token) result {
	p := s.users[t.userID]
	s.expire(p, req.now)
	res := okResult(nil)
	res.changed = !p.snoozeEnd.IsZero()
	p.snoozeEnd = time.Time{}
	return res
}

func (s *Server) usersSetPresence(req *apiRequest, t *token) result {
	p := s.users[t.userID]
	before := p.manualAway
	switch req.params.Get("presence") {
	case "away":
		p.manualAway = true
	case "auto":
		p.manualAway = false
	default:
		return errResult("invalid_presence")
	}
	res := okResult(nil)
	res.changed = before != p.manualAway
	return res
}

func (s *Server) usersGetPresence(req *apiRequest, t *token) result {
	p, errCode := s.target(req, t)
	if errCode != "" {
		return errResult(errCode)
	}
	if p == nil { // a bot asking about itself
		return okResult(map[string]any{"presence": "active"})
	}
	presence := "active"
	if p.manualAway {
		presence = "away"
	}
	fields := map[string]any{"presence": presence}
	if p.id == t.userID { // the extra fields only come for the caller
		fields["online"] = !p.manualAway
		fields["auto_away"] = false
		fields["manual_away"] = p.manualAway
		fields["connection_count"] = 1
		fields["last_activity"] = req.now.Unix()
	}
	return okResult(fields)
}
