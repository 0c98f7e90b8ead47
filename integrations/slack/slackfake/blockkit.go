package slackfake

import (
	"cmp"
	"encoding/json"
	"html"
	"html/template"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// This file renders Block Kit (a published Home view, a message's blocks)
// as simple HTML for the sandbox pages. Every string from a view is
// escaped; only the tags this file writes itself reach the page.

// htmlBlock is one block ready for the "block" template.
type htmlBlock struct {
	Type      string // header, section, context, divider, actions, image, other
	Text      template.HTML
	Fields    []template.HTML
	Elements  []htmlElement
	Accessory *htmlElement
}

// htmlElement is an element of an actions or context block, or a section
// accessory.
type htmlElement struct {
	Kind string // button, text, image, other
	Text template.HTML
	// For buttons: what the click form posts. Clickable is false for
	// buttons in messages (the sandbox only clicks Home view buttons).
	User      string
	ActionID  string
	Style     string
	URL       string
	Clickable bool
}

// blockRenderer turns blocks into htmlBlocks.
type blockRenderer struct {
	userID    string // the person whose page it is, for click forms
	clickable bool
	name      func(userID string) string // resolves <@U…> mentions; may be nil
}

// renderView renders a view's (or a message's) blocks; raw is either a view
// object with "blocks" or a JSON array of blocks.
func (br blockRenderer) renderView(raw json.RawMessage) []htmlBlock {
	var blocks []json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil {
		var v struct {
			Blocks []json.RawMessage `json:"blocks"`
		}
		if json.Unmarshal(raw, &v) != nil {
			return nil
		}
		blocks = v.Blocks
	}
	out := make([]htmlBlock, 0, len(blocks))
	for _, b := range blocks {
		out = append(out, br.block(b))
	}
	return out
}

// kbBlock is the union of the block fields the renderer reads.
type kbBlock struct {
	Type      string            `json:"type"`
	Text      json.RawMessage   `json:"text"`
	Fields    []json.RawMessage `json:"fields"`
	Elements  []json.RawMessage `json:"elements"`
	Accessory json.RawMessage   `json:"accessory"`
	AltText   string            `json:"alt_text"`
	Title     json.RawMessage   `json:"title"`
}

func (br blockRenderer) block(raw json.RawMessage) htmlBlock {
	var b kbBlock
	if json.Unmarshal(raw, &b) != nil {
		return htmlBlock{Type: "other", Text: "[a block the sandbox cannot read]"}
	}
	switch b.Type {
	case "header":
		return htmlBlock{Type: "header", Text: br.text(b.Text)}
	case "section":
		hb := htmlBlock{Type: "section", Text: br.text(b.Text)}
		for _, f := range b.Fields {
			hb.Fields = append(hb.Fields, br.text(f))
		}
		if len(b.Accessory) > 0 {
			e := br.element(b.Accessory)
			hb.Accessory = &e
		}
		return hb
	case "context", "actions":
		hb := htmlBlock{Type: b.Type}
		for _, e := range b.Elements {
			hb.Elements = append(hb.Elements, br.element(e))
		}
		return hb
	case "divider":
		return htmlBlock{Type: "divider"}
	case "image":
		return htmlBlock{Type: "image", Text: escapeText("[image: " + b.AltText + "]")}
	case "rich_text":
		return htmlBlock{Type: "section", Text: escapeText(richText(raw))}
	case "markdown":
		return htmlBlock{Type: "section", Text: br.mrkdwn(stringField(b.Text))}
	}
	return htmlBlock{Type: "other", Text: escapeText("[" + b.Type + " block]")}
}

func (br blockRenderer) element(raw json.RawMessage) htmlElement {
	var e struct {
		Type     string          `json:"type"`
		Text     json.RawMessage `json:"text"`
		ActionID string          `json:"action_id"`
		Style    string          `json:"style"`
		URL      string          `json:"url"`
		AltText  string          `json:"alt_text"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return htmlElement{Kind: "other", Text: "[?]"}
	}
	switch e.Type {
	case "button":
		return htmlElement{
			Kind: "button", Text: br.text(e.Text), User: br.userID, ActionID: e.ActionID,
			Style: e.Style, URL: e.URL, Clickable: br.clickable,
		}
	case "mrkdwn", "plain_text":
		return htmlElement{Kind: "text", Text: br.text(raw)}
	case "image":
		return htmlElement{Kind: "image", Text: escapeText("[image: " + e.AltText + "]")}
	}
	return htmlElement{Kind: "other", Text: escapeText("[" + e.Type + "]")}
}

// text renders a text object: mrkdwn with its formatting, plain_text as is.
func (br blockRenderer) text(raw json.RawMessage) template.HTML {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var t struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		Verbatim bool   `json:"verbatim"`
	}
	if json.Unmarshal(raw, &t) != nil {
		return ""
	}
	if t.Type == "mrkdwn" {
		return br.mrkdwn(t.Text)
	}
	return escapeText(t.Text)
}

// stringField reads a JSON string (the markdown block's text).
func stringField(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// escapeText escapes plain text for HTML, keeping its line breaks.
func escapeText(s string) template.HTML {
	return template.HTML(strings.ReplaceAll(html.EscapeString(s), "\n", "<br>"))
}

var (
	angleToken  = regexp.MustCompile(`<([^<>\n]*)>`)
	placeholder = regexp.MustCompile("\x00([0-9]+)\x00")
	mdCode      = regexp.MustCompile("`([^`\n]+)`")
	mdBold      = regexp.MustCompile(`\*([^*\n]+)\*`)
	mdItalic    = regexp.MustCompile(`(^|[^\p{L}\p{N}])_([^_\n]+)_([^\p{L}\p{N}]|$)`)
	mdStrike    = regexp.MustCompile(`~([^~\n]+)~`)
)

// mrkdwn renders Slack's mrkdwn: *bold*, _italic_, ~strike~, `code`,
// <url|label> links (http, https and mailto only), <@U…> mentions,
// <!here> and <!date^…|fallback>, and line breaks. Slack escapes &, < and >
// in mrkdwn text as &amp;, &lt; and &gt;; they are shown as the characters.
func (br blockRenderer) mrkdwn(s string) template.HTML {
	var tokens []string
	s = strings.ReplaceAll(s, "\x00", "")
	s = angleToken.ReplaceAllStringFunc(s, func(m string) string {
		tokens = append(tokens, br.angle(m[1:len(m)-1]))
		return "\x00" + strconv.Itoa(len(tokens)-1) + "\x00"
	})
	s = html.EscapeString(slackUnescape(s))
	s = mdCode.ReplaceAllString(s, "<code>$1</code>")
	s = mdBold.ReplaceAllString(s, "<strong>$1</strong>")
	s = mdItalic.ReplaceAllString(s, "$1<em>$2</em>$3")
	s = mdStrike.ReplaceAllString(s, "<s>$1</s>")
	s = strings.ReplaceAll(s, "\n", "<br>")
	s = placeholder.ReplaceAllStringFunc(s, func(m string) string {
		i, err := strconv.Atoi(strings.Trim(m, "\x00"))
		if err != nil || i >= len(tokens) {
			return ""
		}
		return tokens[i]
	})
	return template.HTML(s)
}

// angle renders the inside of a <…> token as HTML.
func (br blockRenderer) angle(c string) string {
	target, label, hasLabel := strings.Cut(c, "|")
	label = slackUnescape(label)
	switch {
	case strings.HasPrefix(target, "@"):
		name := target[1:]
		if br.name != nil {
			if n := br.name(name); n != "" {
				name = n
			}
		}
		if hasLabel {
			name = label
		}
		return "<strong>@" + html.EscapeString(name) + "</strong>"
	case strings.HasPrefix(target, "#"):
		if !hasLabel {
			label = target[1:]
		}
		return "#" + html.EscapeString(label)
	case strings.HasPrefix(target, "!"):
		if hasLabel {
			return html.EscapeString(label)
		}
		return "<strong>@" + html.EscapeString(strings.TrimPrefix(target, "!")) + "</strong>"
	}
	target = slackUnescape(target)
	if !hasLabel {
		label = target
	}
	if u, err := url.Parse(target); err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "mailto") {
		return `<a href="` + html.EscapeString(u.String()) + `" rel="noopener noreferrer">` + html.EscapeString(label) + `</a>`
	}
	return html.EscapeString(label)
}

// slackUnescape undoes Slack's escaping of &, < and > in message text.
func slackUnescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// slackEscape escapes &, < and > in message text as Slack does.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// richText flattens a rich_text block to its text.
func richText(raw json.RawMessage) string {
	var n struct {
		Type     string            `json:"type"`
		Text     string            `json:"text"`
		URL      string            `json:"url"`
		UserID   string            `json:"user_id"`
		Name     string            `json:"name"`
		Elements []json.RawMessage `json:"elements"`
	}
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	switch n.Type {
	case "text":
		return n.Text
	case "link":
		return cmp.Or(n.Text, n.URL)
	case "user":
		return "@" + n.UserID
	case "emoji":
		return ":" + n.Name + ":"
	}
	var b strings.Builder
	for i, e := range n.Elements {
		if i > 0 && (n.Type == "rich_text" || n.Type == "rich_text_list") {
			b.WriteString("\n")
		}
		b.WriteString(richText(e))
	}
	return b.String()
}
