package telegramtest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// htmlEntityType maps a tag of Telegram's HTML subset to the entity it makes.
func htmlEntityType(tag string) (string, bool) {
	switch tag {
	case "b", "strong":
		return "bold", true
	case "i", "em":
		return "italic", true
	case "u", "ins":
		return "underline", true
	case "s", "strike", "del":
		return "strikethrough", true
	case "tg-spoiler", "span":
		return "spoiler", true
	case "a":
		return "text_link", true
	case "code":
		return "code", true
	case "pre":
		return "pre", true
	case "blockquote":
		return "blockquote", true
	case "tg-emoji":
		return "custom_emoji", true
	}
	return "", false
}

// parseError is Telegram's reason for refusing HTML, worded as Telegram words it (which
// starts with a capital letter, unlike Go error strings).
type parseError string

func (e parseError) Error() string { return string(e) }

func refuse(format string, args ...any) error { return parseError(fmt.Sprintf(format, args...)) }

// openTag is a start tag waiting for its end tag.
type openTag struct {
	name   string
	entity MessageEntity // Offset set; Length set when closed
	keep   bool          // false for a tag that makes no entity (<a> without href)
	seq    int           // order of opening, which orders entities of the same span
}

// spanEntity is an entity and the order its tag was opened in.
type spanEntity struct {
	MessageEntity
	seq int
}

// parseHTML turns text in Telegram's HTML style into what a user sees and its entities,
// or fails with the description Telegram gives after "can't parse entities: ". It follows
// Telegram's observable behaviour: only the supported tags, attributes quoted or as
// [A-Za-z0-9.-] tokens, &lt; &gt; &amp; &quot; and numeric character references decoded
// (other "&" sequences stay literal), "</>" closing the innermost tag, byte offsets in
// errors and UTF-16 offsets in entities.
func parseHTML(src string) (string, []MessageEntity, error) {
	var (
		out      strings.Builder
		units    int // UTF-16 length of out
		stack    []openTag
		entities []spanEntity
		opened   int
	)
	write := func(s string) {
		out.WriteString(s)
		units += utf16Len(s)
	}
	i := 0
	for i < len(src) {
		c := src[i]
		if c == '&' {
			if r, n := decodeCharRef(src[i:]); n > 0 {
				write(string(r))
				i += n
				continue
			}
		}
		if c != '<' {
			_, size := utf8.DecodeRuneInString(src[i:])
			write(src[i : i+size])
			i += size
			continue
		}
		begin := i
		i++
		if i < len(src) && src[i] == '/' {
			i++
			start := i
			for i < len(src) && !isHTMLSpace(src[i]) && src[i] != '>' {
				i++
			}
			name := strings.ToLower(src[start:i])
			for i < len(src) && isHTMLSpace(src[i]) {
				i++
			}
			if len(stack) == 0 {
				return "", nil, refuse("Unexpected end tag at byte offset %d", begin)
			}
			if i >= len(src) || src[i] != '>' {
				return "", nil, refuse("Unclosed end tag at byte offset %d", begin)
			}
			top := stack[len(stack)-1]
			if name != "" && name != top.name {
				return "", nil, refuse("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", begin, top.name, name)
			}
			i++
			stack = stack[:len(stack)-1]
			if top.keep && units > top.entity.Offset {
				top.entity.Length = units - top.entity.Offset
				entities = append(entities, spanEntity{top.entity, top.seq})
			}
			continue
		}

		start := i
		for i < len(src) && !isHTMLSpace(src[i]) && src[i] != '>' {
			i++
		}
		if i >= len(src) {
			return "", nil, refuse("Unclosed start tag at byte offset %d", begin)
		}
		name := strings.ToLower(src[start:i])
		kind, ok := htmlEntityType(name)
		if !ok {
			return "", nil, refuse("Unsupported start tag %q at byte offset %d", name, begin)
		}
		attrs, next, err := parseAttributes(src, i, name, begin)
		if err != nil {
			return "", nil, err
		}
		i = next

		opened++
		tag := openTag{name: name, entity: MessageEntity{Type: kind, Offset: units}, keep: true, seq: opened}
		switch name {
		case "span":
			if attrs["class"] != "tg-spoiler" {
				return "", nil, refuse("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", begin)
			}
		case "a":
			tag.entity.URL = attrs["href"]
			tag.keep = tag.entity.URL != ""
		case "code":
			tag.entity.Language, _ = strings.CutPrefix(attrs["class"], "language-")
		case "blockquote":
			if _, ok := attrs["expandable"]; ok {
				tag.entity.Type = "expandable_blockquote"
			}
		case "tg-emoji":
			tag.entity.CustomEmojiID = attrs["emoji-id"]
			tag.keep = tag.entity.CustomEmojiID != ""
		}
		stack = append(stack, tag)
	}
	if len(stack) > 0 {
		return "", nil, refuse("Can't find end tag corresponding to start tag %q", stack[len(stack)-1].name)
	}
	return out.String(), arrangeEntities(entities), nil
}

// parseAttributes reads the attributes of a start tag from src[i:], up to and past its '>'.
func parseAttributes(src string, i int, tag string, begin int) (map[string]string, int, error) {
	attrs := map[string]string{}
	unclosed := refuse("Unclosed start tag %q at byte offset %d", tag, begin)
	for {
		for i < len(src) && isHTMLSpace(src[i]) {
			i++
		}
		if i >= len(src) {
			return nil, 0, unclosed
		}
		if src[i] == '>' {
			return attrs, i + 1, nil
		}
		start := i
		for i < len(src) && !isHTMLSpace(src[i]) && src[i] != '=' && src[i] != '>' {
			i++
		}
		name := strings.ToLower(src[start:i])
		if name == "" {
			return nil, 0, refuse("Empty attribute name in the tag %q at byte offset %d", tag, begin)
		}
		for i < len(src) && isHTMLSpace(src[i]) {
			i++
		}
		if i >= len(src) {
			return nil, 0, unclosed
		}
		if src[i] != '=' {
			if tag == "blockquote" && name == "expandable" {
				attrs[name] = ""
				continue
			}
			return nil, 0, refuse("Expected equal sign in declaration of an attribute of the tag %q at byte offset %d", tag, begin)
		}
		i++
		for i < len(src) && isHTMLSpace(src[i]) {
			i++
		}
		if i >= len(src) {
			return nil, 0, unclosed
		}
		if q := src[i]; q == '"' || q == '\'' {
			end := strings.IndexByte(src[i+1:], q)
			if end < 0 {
				return nil, 0, refuse("Unclosed start tag at byte offset %d", begin)
			}
			attrs[name] = decodeCharRefs(src[i+1 : i+1+end])
			i += end + 2
			continue
		}
		start = i
		for i < len(src) && isTokenChar(src[i]) {
			i++
		}
		if i >= len(src) || (!isHTMLSpace(src[i]) && src[i] != '>') {
			return nil, 0, refuse("Unexpected end of name token at byte offset %d", start)
		}
		attrs[name] = src[start:i]
	}
}

// arrangeEntities folds <pre><code class="language-x"> (either nesting order, same span)
// into one pre entity with that language, drops the language of any other code entity,
// and orders entities by offset, longer first, outer first.
func arrangeEntities(entities []spanEntity) []MessageEntity {
	folded := make([]bool, len(entities))
	for c := range entities {
		if entities[c].Type != "code" || entities[c].Language == "" {
			continue
		}
		for p := range entities {
			if entities[p].Type == "pre" && entities[p].Offset == entities[c].Offset && entities[p].Length == entities[c].Length {
				entities[p].Language = entities[c].Language
				folded[c] = true
			}
		}
	}
	var kept []spanEntity
	for k, e := range entities {
		if folded[k] {
			continue
		}
		if e.Type == "code" {
			e.Language = ""
		}
		kept = append(kept, e)
	}
	sort.Slice(kept, func(a, b int) bool {
		switch {
		case kept[a].Offset != kept[b].Offset:
			return kept[a].Offset < kept[b].Offset
		case kept[a].Length != kept[b].Length:
			return kept[a].Length > kept[b].Length
		}
		return kept[a].seq < kept[b].seq
	})
	var out []MessageEntity
	for _, e := range kept {
		out = append(out, e.MessageEntity)
	}
	return out
}

// decodeCharRef decodes the character reference at the start of s: &lt; &gt; &amp; &quot;
// (the ';' may be missing) or &#N; / &#xH;. It returns the size consumed, or 0 when s does
// not start with one Telegram decodes, in which case the '&' is literal text.
func decodeCharRef(s string) (rune, int) {
	if len(s) < 2 || s[0] != '&' {
		return 0, 0
	}
	if s[1] == '#' {
		i, base := 2, 10
		if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
			i, base = 3, 16
		}
		start := i
		for i < len(s) && isDigitIn(s[i], base) {
			i++
		}
		if i == start || i-start > 8 {
			return 0, 0
		}
		v, err := strconv.ParseUint(s[start:i], base, 32)
		if err != nil || v == 0 || v > utf8.MaxRune || (v >= 0xD800 && v <= 0xDFFF) {
			return 0, 0
		}
		if i < len(s) && s[i] == ';' {
			i++
		}
		return rune(v), i
	}
	i := 1
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	var r rune
	switch s[1:i] {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "quot":
		r = '"'
	default:
		return 0, 0
	}
	if i < len(s) && s[i] == ';' {
		i++
	}
	return r, i
}

// decodeCharRefs decodes every character reference in s (an attribute value).
func decodeCharRefs(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if r, n := decodeCharRef(s[i:]); n > 0 {
			b.WriteRune(r)
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func isHTMLSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isTokenChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

func isDigitIn(c byte, base int) bool {
	if c >= '0' && c <= '9' {
		return true
	}
	return base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')
}

// utf16Len is the length of s in UTF-16 code units, the unit Telegram counts in.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
