package slacktest

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Text is a Block Kit text object.
type Text struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji *bool  `json:"emoji,omitempty"`
}

// Confirm is a button's confirmation dialog.
type Confirm struct {
	Title   *Text `json:"title"`
	Text    *Text `json:"text"`
	Confirm *Text `json:"confirm"`
	Deny    *Text `json:"deny"`
}

// Element is an interactive element of an actions block (the fake knows buttons).
type Element struct {
	Type     string   `json:"type"`
	Text     *Text    `json:"text"`
	ActionID string   `json:"action_id"`
	Value    string   `json:"value"`
	Style    string   `json:"style"`
	URL      string   `json:"url"`
	Confirm  *Confirm `json:"confirm"`
}

// Block is a layout block: section, actions, context, divider, header or image.
type Block struct {
	Type     string    `json:"type"`
	BlockID  string    `json:"block_id"`
	Text     *Text     `json:"text"`
	Fields   []*Text   `json:"fields"`
	Elements []Element `json:"elements"`
	ImageURL string    `json:"image_url"`
	AltText  string    `json:"alt_text"`
}

func (b Block) visible() []string {
	var out []string
	show := func(t *Text) {
		if t == nil {
			return
		}
		if t.Type == "mrkdwn" {
			out = append(out, unescape(t.Text))
		} else {
			out = append(out, t.Text)
		}
	}
	show(b.Text)
	for _, f := range b.Fields {
		show(f)
	}
	for _, e := range b.Elements {
		if e.Text != nil {
			out = append(out, "["+e.Text.Text+"]")
		}
	}
	return out
}

func chars(s string) int { return utf8.RuneCountInString(s) }

// parseBlocks reads a message's blocks argument and checks it against Block Kit's
// documented limits, answering invalid_blocks (with Slack's kind of explanation) for
// the first problem.
func parseBlocks(raw string) ([]Block, *apiError) {
	var blocks []Block
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return nil, fail("invalid_blocks_format")
	}
	bad := func(format string, args ...any) ([]Block, *apiError) {
		return nil, fail("invalid_blocks", "[ERROR] "+fmt.Sprintf(format, args...))
	}
	if len(blocks) > MaxBlocks {
		return bad("no more than %d items allowed [json-pointer:/blocks]", MaxBlocks)
	}
	ids := map[string]bool{}
	actionIDs := map[string]bool{}
	for i, b := range blocks {
		at := fmt.Sprintf("/blocks/%d", i)
		if chars(b.BlockID) > MaxBlockID {
			return bad("must be less than %d characters [json-pointer:%s/block_id]", MaxBlockID+1, at)
		}
		if b.BlockID != "" {
			if ids[b.BlockID] {
				return bad("duplicate block_id [json-pointer:%s/block_id]", at)
			}
			ids[b.BlockID] = true
		}
		switch b.Type {
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				return bad("must provide text or fields [json-pointer:%s]", at)
			}
			if b.Text != nil {
				if e := checkText(b.Text, MaxSectionText, at+"/text", "mrkdwn", "plain_text"); e != nil {
					return nil, e
				}
			}
			if len(b.Fields) > 10 {
				return bad("no more than 10 items allowed [json-pointer:%s/fields]", at)
			}
			for j, f := range b.Fields {
				if e := checkText(f, 2000, fmt.Sprintf("%s/fields/%d", at, j), "mrkdwn", "plain_text"); e != nil {
					return nil, e
				}
			}
		case "header":
			if e := checkText(b.Text, 150, at+"/text", "plain_text"); e != nil {
				return nil, e
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				return bad("must have 1 to 10 elements [json-pointer:%s/elements]", at)
			}
		case "divider", "image":
		case "actions":
			if len(b.Elements) == 0 || len(b.Elements) > MaxActionElems {
				return bad("must have 1 to %d elements [json-pointer:%s/elements]", MaxActionElems, at)
			}
			for j, e := range b.Elements {
				ea := fmt.Sprintf("%s/elements/%d", at, j)
				if e.Type != "button" {
					return bad("unsupported element type %q in this fake [json-pointer:%s/type]", e.Type, ea)
				}
				if err := checkText(e.Text, MaxButtonText, ea+"/text", "plain_text"); err != nil {
					return nil, err
				}
				if chars(e.ActionID) > 255 {
					return bad("must be less than 256 characters [json-pointer:%s/action_id]", ea)
				}
				if e.ActionID != "" {
					if actionIDs[e.ActionID] {
						return bad("duplicate action_id [json-pointer:%s/action_id]", ea)
					}
					actionIDs[e.ActionID] = true
				}
				if chars(e.Value) > MaxActionValue {
					return bad("must be less than %d characters [json-pointer:%s/value]", MaxActionValue+1, ea)
				}
				if e.Style != "" && e.Style != "primary" && e.Style != "danger" {
					return bad("must be one of primary, danger [json-pointer:%s/style]", ea)
				}
				if c := e.Confirm; c != nil {
					for _, p := range []struct {
						t    *Text
						max  int
						name string
					}{{c.Title, 100, "title"}, {c.Text, 300, "text"}, {c.Confirm, 30, "confirm"}, {c.Deny, 30, "deny"}} {
						if p.t == nil && p.name == "text" {
							return bad("must provide text [json-pointer:%s/confirm/text]", ea)
						}
						if p.t != nil {
							if err := checkText(p.t, p.max, ea+"/confirm/"+p.name, "plain_text", "mrkdwn"); err != nil {
								return nil, err
							}
						}
					}
				}
			}
		default:
			return bad("unsupported block type %q [json-pointer:%s/type]", b.Type, at)
		}
	}
	return blocks, nil
}

func checkText(t *Text, max int, at string, types ...string) *apiError {
	if t == nil {
		return fail("invalid_blocks", "[ERROR] missing required field: text [json-pointer:"+at+"]")
	}
	ok := false
	for _, ty := range types {
		ok = ok || t.Type == ty
	}
	if !ok {
		return fail("invalid_blocks", fmt.Sprintf("[ERROR] must be one of %v [json-pointer:%s/type]", types, at))
	}
	if t.Text == "" {
		return fail("invalid_blocks", "[ERROR] must be more than 0 characters [json-pointer:"+at+"/text]")
	}
	if chars(t.Text) > max {
		return fail("invalid_blocks", fmt.Sprintf("[ERROR] must be less than %d characters [json-pointer:%s/text]", max+1, at))
	}
	return nil
}
