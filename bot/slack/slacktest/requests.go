package slacktest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Request paths of an app using HTTP.
const (
	EventsPath        = "/slack/events"
	InteractivityPath = "/slack/interactivity"
	CommandsPath      = "/slack/commands"
)

// Delivery is one thing Slack sends an app: over HTTP (Path, Body, ContentType) or,
// the same content, over Socket Mode (Kind and Payload of the envelope).
type Delivery struct {
	Path        string
	ContentType string
	Body        []byte
	Kind        string // events_api, interactive, slash_commands
	Payload     json.RawMessage
}

// Sign is how a request is signed.
type Sign struct {
	// At is the request's timestamp; zero is now. More than five minutes off is stale.
	At time.Time
	// Secret signs the request; empty is SigningSecret. Another one forges it.
	Secret string
	// Retry sets X-Slack-Retry-Num (and X-Slack-Retry-Reason), as on Slack's retries.
	Retry int
}

// Signature is Slack's v0 signature of body at timestamp ts with secret.
func Signature(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:", ts)
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// Request builds the signed HTTP request of d, to base (the app's PUBLIC_URL).
func (s *Server) Request(base string, d Delivery, sign Sign) *http.Request {
	r, err := http.NewRequest(http.MethodPost, strings.TrimRight(base, "/")+d.Path, bytes.NewReader(d.Body))
	if err != nil {
		panic(err)
	}
	at := sign.At
	if at.IsZero() {
		at = time.Now()
	}
	secret := sign.Secret
	if secret == "" {
		secret = SigningSecret
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	r.Header.Set("Content-Type", d.ContentType)
	r.Header.Set("X-Slack-Request-Timestamp", ts)
	r.Header.Set("X-Slack-Signature", Signature(secret, ts, d.Body))
	if sign.Retry > 0 {
		r.Header.Set("X-Slack-Retry-Num", strconv.Itoa(sign.Retry))
		r.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	return r
}

// Send posts d, signed, to base and returns the status code.
func (s *Server) Send(base string, d Delivery, sign Sign) (int, string, error) {
	resp, err := http.DefaultClient.Do(s.Request(base, d, sign))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

func (s *Server) eventID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events++
	return fmt.Sprintf("Ev%08d", s.events)
}

func eventDelivery(payload map[string]any) Delivery {
	b, _ := json.Marshal(payload)
	return Delivery{Path: EventsPath, ContentType: "application/json", Body: b, Kind: "events_api", Payload: b}
}

// URLVerification is the challenge Slack sends when a Request URL is saved.
func (s *Server) URLVerification(challenge string) Delivery {
	return eventDelivery(map[string]any{"token": "deprecated", "challenge": challenge, "type": "url_verification"})
}

// mention is a mention as Slack writes it in a message's text: <@U…> or <@U…|name>.
var mention = regexp.MustCompile(`<@[UW][A-Z0-9]+(\|[^<>&]*)?>`)

// wire is typed text as Slack sends it: &, < and > escaped, mentions (written <@U…>)
// kept as they are.
func wire(typed string) string {
	var b strings.Builder
	last := 0
	for _, m := range mention.FindAllStringIndex(typed, -1) {
		b.WriteString(escaper.Replace(typed[last:m[0]]))
		b.WriteString(typed[m[0]:m[1]])
		last = m[1]
	}
	b.WriteString(escaper.Replace(typed[last:]))
	return b.String()
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Say posts text from user into channel (into root's thread when root is set), as a
// person does in Slack, and returns the events Slack sends the app for it: a message
// event and, when the text mentions the bot (<@UBOT000001>), an app_mention too. text
// is what the person typed, mentions written <@U…>; the events carry it as Slack does,
// with &, < and > escaped. A channel whose id starts with D is the person's direct
// messages with the bot.
func (s *Server) Say(channel, user, typed, root string) (ts string, ds []Delivery) {
	text := wire(typed)
	s.mu.Lock()
	c := s.channels[channel]
	if c == nil {
		c = &chanState{member: true}
		s.channels[channel] = c
	}
	ts = s.nextTS()
	th := thread(c, root)
	c.messages = append(c.messages, &Message{Channel: channel, TS: ts, ThreadTS: th, User: user, Text: text})
	s.mu.Unlock()
	ctype := "channel"
	switch {
	case strings.HasPrefix(channel, "D"):
		ctype = "im"
	case strings.HasPrefix(channel, "G"):
		ctype = "group"
	}
	inner := func(kind string) map[string]any {
		e := map[string]any{"type": kind, "channel": channel, "user": user, "text": text, "ts": ts, "event_ts": ts, "channel_type": ctype}
		if th != "" {
			e["thread_ts"] = th
		}
		if kind == "app_mention" {
			delete(e, "channel_type")
		}
		return e
	}
	envelope := func(kind string) Delivery {
		return eventDelivery(map[string]any{"token": "deprecated", "team_id": TeamID, "api_app_id": AppID, "type": "event_callback",
			"event_id": s.eventID(), "event_time": 1700000000, "event": inner(kind)})
	}
	ds = append(ds, envelope("message"))
	if strings.Contains(text, "<@"+BotUser+">") && ctype != "im" {
		ds = append(ds, envelope("app_mention"))
	}
	return ts, ds
}

// BotMessage is the event Slack sends the app about a message the bot itself posted.
func (s *Server) BotMessage(channel, ts, text string) Delivery {
	return eventDelivery(map[string]any{"type": "event_callback", "team_id": TeamID, "event_id": s.eventID(),
		"event": map[string]any{"type": "message", "subtype": "bot_message", "bot_id": BotID, "channel": channel, "text": text, "ts": ts}})
}

// Press presses the button labelled label under message ts of channel, as user, and
// returns the block_actions request. It fails when the message has no such button: a
// person can only press what is shown.
func (s *Server) Press(channel, ts, user, label string) (Delivery, error) {
	m, ok := s.Message(channel, ts)
	if !ok {
		return Delivery{}, fmt.Errorf("no message %s in %s", ts, channel)
	}
	for _, b := range m.Blocks {
		for _, e := range b.Elements {
			if e.Text == nil || e.Text.Text != label {
				continue
			}
			return s.press(m, b.BlockID, e, user), nil
		}
	}
	return Delivery{}, fmt.Errorf("message %s in %s has no button %q", ts, channel, label)
}

// PressValue is a press carrying value, whatever the message shows: what a forged or
// outdated client could send.
func (s *Server) PressValue(channel, ts, user, value string) Delivery {
	m, _ := s.Message(channel, ts)
	m.Channel, m.TS = channel, ts
	return s.press(m, "forged", Element{Type: "button", ActionID: "forged", Value: value}, user)
}

func (s *Server) press(m Message, blockID string, e Element, user string) Delivery {
	s.mu.Lock()
	name := s.users[user]
	s.seq++
	actionTS := fmt.Sprintf("1700000000.%06d", s.seq)
	s.mu.Unlock()
	container := map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false}
	msg := map[string]any{"type": "message", "ts": m.TS, "user": m.User, "text": m.Text}
	if m.ThreadTS != "" {
		container["thread_ts"] = m.ThreadTS
		msg["thread_ts"] = m.ThreadTS
	}
	payload := map[string]any{
		"type": "block_actions", "team": map[string]any{"id": TeamID}, "api_app_id": AppID,
		"user":       map[string]any{"id": user, "username": name, "name": name, "team_id": TeamID},
		"channel":    map[string]any{"id": m.Channel},
		"container":  container,
		"message":    msg,
		"trigger_id": "trig." + actionTS, "response_url": "https://hooks.slack.test/actions/" + actionTS,
		"actions": []map[string]any{{"type": "button", "block_id": blockID, "action_id": e.ActionID, "value": e.Value,
			"text": e.Text, "action_ts": actionTS}},
	}
	b, _ := json.Marshal(payload)
	form := url.Values{"payload": {string(b)}}
	return Delivery{Path: InteractivityPath, ContentType: "application/x-www-form-urlencoded", Body: []byte(form.Encode()),
		Kind: "interactive", Payload: b}
}

// Command is user typing the slash command in channel ("/status", "checkout").
func (s *Server) Command(channel, user, command, text string) Delivery {
	s.mu.Lock()
	name := s.users[user]
	s.seq++
	trigger := fmt.Sprintf("trig.cmd.%d", s.seq)
	s.mu.Unlock()
	f := map[string]string{"token": "deprecated", "team_id": TeamID, "team_domain": "fake", "channel_id": channel,
		"channel_name": "general", "user_id": user, "user_name": name, "command": command, "text": text,
		"api_app_id": AppID, "response_url": "https://hooks.slack.test/commands/" + trigger, "trigger_id": trigger}
	form := url.Values{}
	for k, v := range f {
		form.Set(k, v)
	}
	b, _ := json.Marshal(f)
	return Delivery{Path: CommandsPath, ContentType: "application/x-www-form-urlencoded", Body: []byte(form.Encode()),
		Kind: "slash_commands", Payload: b}
}
