package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Block Kit limits views.publish enforces, as Slack documents them.
const (
	// MaxViewBytes is the largest view JSON views.publish accepts
	// (view_too_large above it).
	MaxViewBytes = 250_000
	// MaxViewBlocks is the most blocks a Home view may hold.
	MaxViewBlocks = 100
)

// knownBlockTypes are the Block Kit block types Slack accepts in a view.
var knownBlockTypes = []string{
	"actions", "context", "context_actions", "divider", "file", "header", "image", "input",
	"markdown", "rich_text", "section", "table", "video",
}

// interactiveElements are the block elements that carry an action_id.
var interactiveElements = []string{
	"button", "checkboxes", "datepicker", "datetimepicker", "email_text_input", "file_input",
	"multi_channels_select", "multi_conversations_select", "multi_external_select",
	"multi_static_select", "multi_users_select", "number_input", "overflow",
	"plain_text_input", "radio_buttons", "rich_text_input", "static_select", "external_select",
	"channels_select", "conversations_select", "users_select", "timepicker", "url_text_input",
	"workflow_button",
}

// storedView is a published Home view in the shape views.publish answers
// with and deliveries carry, fields in Slack's order.
type storedView struct {
	ID                 string          `json:"id"`
	TeamID             string          `json:"team_id"`
	Type               string          `json:"type"`
	Blocks             []any           `json:"blocks"`
	PrivateMetadata    string          `json:"private_metadata"`
	CallbackID         string          `json:"callback_id"`
	State              map[string]any  `json:"state"`
	Hash               string          `json:"hash"`
	Title              json.RawMessage `json:"title"`
	ClearOnClose       bool            `json:"clear_on_close"`
	NotifyOnClose      bool            `json:"notify_on_close"`
	Close              json.RawMessage `json:"close"`
	Submit             json.RawMessage `json:"submit"`
	PreviousViewID     *string         `json:"previous_view_id"`
	RootViewID         string          `json:"root_view_id"`
	AppID              string          `json:"app_id"`
	ExternalID         string          `json:"external_id"`
	AppInstalledTeamID string          `json:"app_installed_team_id"`
	BotID              string          `json:"bot_id"`
}

// viewRequest is the part of a views.publish view the fake reads.
type viewRequest struct {
	Type            *string         `json:"type"`
	Blocks          json.RawMessage `json:"blocks"`
	PrivateMetadata string          `json:"private_metadata"`
	CallbackID      string          `json:"callback_id"`
	ExternalID      string          `json:"external_id"`
	Title           json.RawMessage `json:"title"`
}

// viewsPublish validates and stores an App Home view for a person, as
// Slack's views.publish does.
func (s *Server) viewsPublish(req *apiRequest, t *token) result {
	userID := req.params.Get("user_id")
	if userID == "" {
		return invalidArguments("[ERROR] missing required field: user_id")
	}
	p := s.users[userID]
	if p == nil || p.teamID != t.teamID {
		return errResult("user_not_found")
	}
	raw := []byte(req.params.Get("view"))
	if v, ok := req.json["view"]; ok {
		var str string
		if json.Unmarshal(v, &str) == nil {
			raw = []byte(str)
		} else {
			raw = v
		}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return invalidArguments("[ERROR] missing required field: view")
	}
	if len(raw) > MaxViewBytes {
		return errResult("view_too_large")
	}
	var vr viewRequest
	if json.Unmarshal(raw, &vr) != nil {
		return invalidArguments("[ERROR] failed to parse view [json-pointer:/view]")
	}
	if vr.Type == nil || *vr.Type != "home" {
		return invalidArguments("[ERROR] must be 'home' [json-pointer:/view/type]")
	}
	blocks, msg := validateBlocks(vr.Blocks)
	if msg != "" {
		return invalidArguments(msg)
	}
	if utf8.RuneCountInString(vr.PrivateMetadata) > 3000 {
		return invalidArguments("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
	}
	if utf8.RuneCountInString(vr.CallbackID) > 255 {
		return invalidArguments("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
	}
	var hash string // a JSON null or a missing hash means none
	if raw, ok := req.json["hash"]; ok {
		_ = json.Unmarshal(raw, &hash)
	} else {
		hash = req.params.Get("hash")
	}
	if hash != "" && hash != p.homeHash {
		return errResult("hash_conflict")
	}
	tm := s.teams[t.teamID]
	if p.homeViewID == "" {
		p.homeViewID = "V" + strings.ToUpper(randHex(5))
	}
	p.homeHash = fmt.Sprintf("%d.%s", req.now.Unix(), randToken(8))
	title := vr.Title
	if len(title) == 0 {
		title = json.RawMessage(`{"type":"plain_text","text":"View Title","emoji":true}`)
	}
	sv := storedView{
		ID: p.homeViewID, TeamID: tm.id, Type: "home", Blocks: blocks,
		PrivateMetadata: vr.PrivateMetadata, CallbackID: vr.CallbackID,
		State: map[string]any{"values": map[string]any{}}, Hash: p.homeHash, Title: title,
		Close: json.RawMessage("null"), Submit: json.RawMessage("null"),
		RootViewID: p.homeViewID, AppID: s.appID, ExternalID: vr.ExternalID,
		AppInstalledTeamID: tm.id, BotID: tm.botID,
	}
	full, err := json.Marshal(sv)
	if err != nil {
		return errResult("internal_error")
	}
	p.homeView = full
	return okResult(map[string]any{"view": json.RawMessage(full)})
}

// validateBlocks checks a view's blocks the way Slack does and fills in
// the block_id and action_id Slack generates when they are missing. A
// non-empty message is the response_metadata message of invalid_arguments.
func validateBlocks(raw json.RawMessage) ([]any, string) {
	const ptr = "/view/blocks"
	if len(raw) == 0 || string(raw) == "null" {
		return nil, "[ERROR] missing required field: blocks [json-pointer:" + ptr + "]"
	}
	var blocks []any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&blocks) != nil {
		return nil, "[ERROR] must be an array [json-pointer:" + ptr + "]"
	}
	if len(blocks) > MaxViewBlocks {
		return nil, fmt.Sprintf("[ERROR] no more than %d items allowed [json-pointer:%s]", MaxViewBlocks, ptr)
	}
	blockIDs := map[string]bool{}
	for i, b := range blocks {
		bp := fmt.Sprintf("%s/%d", ptr, i)
		block, ok := b.(map[string]any)
		if !ok {
			return nil, "[ERROR] must be an object [json-pointer:" + bp + "]"
		}
		typ, _ := block["type"].(string)
		if !slices.Contains(knownBlockTypes, typ) {
			return nil, fmt.Sprintf("[ERROR] unsupported type `%s` [json-pointer:%s/type]", typ, bp)
		}
		id, _ := block["block_id"].(string)
		if _, present := block["block_id"]; present && (id == "" || utf8.RuneCountInString(id) > 255) {
			return nil, "[ERROR] must be a string of 1 to 255 characters [json-pointer:" + bp + "/block_id]"
		}
		if id == "" {
			id = randToken(5)
			block["block_id"] = id
		}
		if blockIDs[id] {
			return nil, "[ERROR] duplicate block_id `" + id + "` [json-pointer:" + bp + "/block_id]"
		}
		blockIDs[id] = true
		if msg := validateBlock(block, typ, bp); msg != "" {
			return nil, msg
		}
	}
	return blocks, ""
}

// validateBlock checks one block's fields.
func validateBlock(block map[string]any, typ, bp string) string {
	switch typ {
	case "header":
		return checkText(block["text"], bp+"/text", 150, true)
	case "section":
		_, hasText := block["text"]
		fields, hasFields := block["fields"].([]any)
		if !hasText && !hasFields {
			return "[ERROR] must provide text or fields [json-pointer:" + bp + "]"
		}
		if hasText {
			if msg := checkText(block["text"], bp+"/text", 3000, false); msg != "" {
				return msg
			}
		}
		if len(fields) > 10 {
			return "[ERROR] no more than 10 items allowed [json-pointer:" + bp + "/fields]"
		}
		for j, f := range fields {
			if msg := checkText(f, fmt.Sprintf("%s/fields/%d", bp, j), 2000, false); msg != "" {
				return msg
			}
		}
		if acc, ok := block["accessory"]; ok {
			return checkElement(acc, bp+"/accessory", map[string]bool{})
		}
	case "actions":
		elems, _ := block["elements"].([]any)
		if len(elems) == 0 {
			return "[ERROR] must provide at least 1 item [json-pointer:" + bp + "/elements]"
		}
		if len(elems) > 25 {
			return "[ERROR] no more than 25 items allowed [json-pointer:" + bp + "/elements]"
		}
		seen := map[string]bool{}
		for j, e := range elems {
			if msg := checkElement(e, fmt.Sprintf("%s/elements/%d", bp, j), seen); msg != "" {
				return msg
			}
		}
	case "context":
		elems, _ := block["elements"].([]any)
		if len(elems) == 0 {
			return "[ERROR] must provide at least 1 item [json-pointer:" + bp + "/elements]"
		}
		if len(elems) > 10 {
			return "[ERROR] no more than 10 items allowed [json-pointer:" + bp + "/elements]"
		}
		for j, e := range elems {
			ep := fmt.Sprintf("%s/elements/%d", bp, j)
			m, _ := e.(map[string]any)
			if m == nil {
				return "[ERROR] must be an object [json-pointer:" + ep + "]"
			}
			if m["type"] == "image" {
				continue
			}
			if msg := checkText(e, ep, 3000, false); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// checkElement checks an interactive element and fills in a missing
// action_id; seen holds the action_ids already used in the block.
func checkElement(e any, ep string, seen map[string]bool) string {
	m, _ := e.(map[string]any)
	if m == nil {
		return "[ERROR] must be an object [json-pointer:" + ep + "]"
	}
	typ, _ := m["type"].(string)
	if typ == "image" {
		return ""
	}
	if !slices.Contains(interactiveElements, typ) {
		return fmt.Sprintf("[ERROR] unsupported type `%s` [json-pointer:%s/type]", typ, ep)
	}
	id, _ := m["action_id"].(string)
	if _, present := m["action_id"]; present && (id == "" || utf8.RuneCountInString(id) > 255) {
		return "[ERROR] must be a string of 1 to 255 characters [json-pointer:" + ep + "/action_id]"
	}
	if id == "" {
		id = randToken(5)
		m["action_id"] = id
	}
	if seen[id] {
		return "[ERROR] duplicate action_id `" + id + "` [json-pointer:" + ep + "/action_id]"
	}
	seen[id] = true
	if typ != "button" {
		return ""
	}
	if msg := checkText(m["text"], ep+"/text", 75, true); msg != "" {
		return msg
	}
	if v, ok := m["value"]; ok {
		str, isStr := v.(string)
		if !isStr || utf8.RuneCountInString(str) > 2000 {
			return "[ERROR] must be a string of at most 2000 characters [json-pointer:" + ep + "/value]"
		}
	}
	if u, ok := m["url"]; ok {
		str, isStr := u.(string)
		if !isStr || str == "" || utf8.RuneCountInString(str) > 3000 {
			return "[ERROR] must be a URL of at most 3000 characters [json-pointer:" + ep + "/url]"
		}
	}
	if st, ok := m["style"]; ok && st != "primary" && st != "danger" {
		return "[ERROR] must be one of primary, danger [json-pointer:" + ep + "/style]"
	}
	return ""
}

// checkText checks a text object: plain_text (or mrkdwn unless plainOnly)
// with 1 to maxLen characters.
func checkText(v any, p string, maxLen int, plainOnly bool) string {
	m, _ := v.(map[string]any)
	if m == nil {
		return "[ERROR] must provide an object [json-pointer:" + p + "]"
	}
	typ, _ := m["type"].(string)
	if typ != "plain_text" && (plainOnly || typ != "mrkdwn") {
		if plainOnly {
			return "[ERROR] must be 'plain_text' [json-pointer:" + p + "/type]"
		}
		return "[ERROR] must be one of plain_text, mrkdwn [json-pointer:" + p + "/type]"
	}
	text, ok := m["text"].(string)
	if !ok || text == "" {
		return "[ERROR] must be more than 0 characters [json-pointer:" + p + "/text]"
	}
	if utf8.RuneCountInString(text) > maxLen {
		return fmt.Sprintf("[ERROR] must be less than %d characters [json-pointer:%s/text]", maxLen+1, p)
	}
	return ""
}

func invalidArguments(msg string) result {
	res := errResult("invalid_arguments")
	res.body["response_metadata"] = map[string]any{"messages": []string{msg}}
	return res
}

// button is a button found in a published view.
type button struct {
	BlockID  string
	ActionID string
	Text     json.RawMessage
	Value    string
	Style    string
	URL      string
}

// viewButtons lists the buttons of a view (actions blocks and section
// accessories), in order.
func viewButtons(view json.RawMessage) []button {
	var v struct {
		Blocks []struct {
			Type      string            `json:"type"`
			BlockID   string            `json:"block_id"`
			Elements  []json.RawMessage `json:"elements"`
			Accessory json.RawMessage   `json:"accessory"`
		} `json:"blocks"`
	}
	if json.Unmarshal(view, &v) != nil {
		return nil
	}
	var out []button
	add := func(blockID string, raw json.RawMessage) {
		var e struct {
			Type     string          `json:"type"`
			ActionID string          `json:"action_id"`
			Text     json.RawMessage `json:"text"`
			Value    string          `json:"value"`
			Style    string          `json:"style"`
			URL      string          `json:"url"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Type == "button" {
			out = append(out, button{BlockID: blockID, ActionID: e.ActionID, Text: e.Text, Value: e.Value, Style: e.Style, URL: e.URL})
		}
	}
	for _, b := range v.Blocks {
		switch b.Type {
		case "actions":
			for _, e := range b.Elements {
				add(b.BlockID, e)
			}
		case "section":
			if len(b.Accessory) > 0 {
				add(b.BlockID, b.Accessory)
			}
		}
	}
	return out
}

// dmChannel is the ID of the App Home DM channel between the app and p.
func dmChannel(p *person) string { return "D" + strings.TrimPrefix(p.id, "U") }

// personByChannel resolves a chat.postMessage channel: a user ID or the
// person's App Home DM channel. s.mu must be held.
func (s *Server) personByChannel(ch string) *person {
	if p := s.users[ch]; p != nil {
		return p
	}
	if !strings.HasPrefix(ch, "D") {
		return nil
	}
	for _, p := range s.users {
		if dmChannel(p) == ch {
			return p
		}
	}
	return nil
}

// nextTS returns a new message timestamp ("1712345678.000042"), unique and
// increasing even on a frozen clock. s.mu must be held.
func (s *Server) nextTS(now time.Time) string {
	s.tsSeq++
	return fmt.Sprintf("%d.%06d", now.Unix(), s.tsSeq%1_000_000)
}

// chatPostMessage posts into a person's App Home DM (channel = the user ID
// or its D… channel ID) with a bot token, optionally as a reply in a thread
// (thread_ts).
func (s *Server) chatPostMessage(req *apiRequest, t *token) result {
	ch := req.params.Get("channel")
	p := s.personByChannel(ch)
	if ch == "" || p == nil || p.teamID != t.teamID {
		return errResult("channel_not_found")
	}
	text := req.params.Get("text")
	blocks := req.params.Get("blocks")
	if raw, ok := req.json["blocks"]; ok {
		blocks = string(raw)
	}
	if text == "" && blocks == "" && req.params.Get("attachments") == "" {
		return errResult("no_text")
	}
	if blocks != "" {
		var list []json.RawMessage
		if json.Unmarshal([]byte(blocks), &list) != nil {
			return errResult("invalid_blocks")
		}
		if len(list) > 50 {
			return errResult("invalid_blocks")
		}
	}
	if utf8.RuneCountInString(text) > 40_000 {
		return errResult("msg_too_long")
	}
	// A reply to a message that is not in the DM (never was, or deleted)
	// is posted un-threaded, as Slack does.
	threadTS := req.params.Get("thread_ts")
	if !slices.ContainsFunc(p.messages, func(m Message) bool { return m.TS == threadTS }) {
		threadTS = ""
	}
	ts := s.nextTS(req.now)
	tm := s.teams[t.teamID]
	msg := Message{Channel: dmChannel(p), Text: text, TS: ts, ThreadTS: threadTS, User: tm.botUserID, Bot: true, Time: req.now}
	if blocks != "" {
		msg.Blocks = json.RawMessage(blocks)
	}
	p.messages = append(p.messages, msg)
	m := map[string]any{
		"type": "message", "text": text, "user": tm.botUserID, "bot_id": tm.botID,
		"app_id": s.appID, "team": tm.id, "ts": ts,
	}
	if threadTS != "" {
		m["thread_ts"] = threadTS
	}
	if msg.Blocks != nil {
		m["blocks"] = msg.Blocks
	}
	return okResult(map[string]any{"channel": msg.Channel, "ts": ts, "message": m})
}
