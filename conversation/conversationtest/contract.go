package conversationtest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation"
)

// Subject is a transport under test and what the test needs to look through it.
type Subject struct {
	Transport conversation.Transport
	// Chat is a chat of the transport's channel that it can deliver to (and, when the
	// transport writes to people directly, a person's one-to-one chat).
	Chat conversation.Chat
	// Delivered returns the visible text of every message the platform holds for Chat,
	// oldest first, as its users see it now: after edits where the platform edits in
	// place, with update messages where it cannot.
	Delivered func() []string
}

// approvalRefLen is the length of an approval reference ("ap:" + 22): a platform with
// buttons must carry at least that much.
const approvalRefLen = 25

// Run checks the transport contract; open builds a fresh subject for each subtest.
func Run(t *testing.T, open func(t *testing.T) Subject) {
	t.Run("capabilities are stable, named and carry an approval reference", func(t *testing.T) {
		s := open(t)
		c := s.Transport.Capabilities()
		if s.Transport.Channel() == "" || s.Transport.Channel() != s.Chat.Channel {
			t.Fatalf("Channel() = %q, subject chat is on %q", s.Transport.Channel(), s.Chat.Channel)
		}
		if c2 := s.Transport.Capabilities(); c2 != c {
			t.Fatalf("Capabilities changed between calls: %+v then %+v", c, c2)
		}
		if c.Buttons && c.MaxButtonData != 0 && c.MaxButtonData < approvalRefLen {
			t.Fatalf("MaxButtonData %d cannot carry an approval reference (%d bytes)", c.MaxButtonData, approvalRefLen)
		}
		if c.MaxButtonData < 0 {
			t.Fatalf("MaxButtonData %d is negative", c.MaxButtonData)
		}
		if strings.TrimSpace(c.Name) == "" {
			t.Fatal("Capabilities.Name is empty: the engine could not say on which platform a decision was made")
		}
	})

	t.Run("a thread opens in the chat with its first message", func(t *testing.T) {
		s := open(t)
		th, ref := openThread(t, s, card("opening-marker"))
		if th.Chat != s.Chat || ref.Chat != s.Chat {
			t.Fatalf("thread %+v / card %+v is not in chat %+v", th, ref, s.Chat)
		}
		if ref.ID == "" {
			t.Fatal("the card's MessageRef has no id")
		}
		if th.Topic == "" && th.Root == "" && s.Transport.Capabilities().Threads {
			t.Fatal("a transport with threads returned a thread with neither topic nor root")
		}
		waitDelivered(t, s, "opening-marker")
	})

	t.Run("posts into a thread reach the chat in order", func(t *testing.T) {
		s := open(t)
		th, card := openThread(t, s, card("root-marker"))
		r1 := post(t, s, th, text("first-reply-marker"))
		r2 := post(t, s, th, text("second-reply-marker"))
		if r1.ID == "" || r2.ID == "" || r1.ID == r2.ID || r1.ID == card.ID {
			t.Fatalf("message ids are not distinct: card %q, replies %q and %q", card.ID, r1.ID, r2.ID)
		}
		if r1.Chat != s.Chat || r2.Chat != s.Chat {
			t.Fatalf("replies landed in %+v and %+v, not %+v", r1.Chat, r2.Chat, s.Chat)
		}
		got := waitDelivered(t, s, "second-reply-marker")
		if i, j := index(got, "first-reply-marker"), index(got, "second-reply-marker"); i < 0 || i > j {
			t.Fatalf("replies out of order in %q", got)
		}
	})

	t.Run("a plain message goes to the chat itself", func(t *testing.T) {
		s := open(t)
		ref := post(t, s, conversation.Thread{Chat: s.Chat}, text("plain-marker"))
		if ref.ID == "" {
			t.Fatal("no message id")
		}
		waitDelivered(t, s, "plain-marker")
	})

	t.Run("buttons are accepted whatever the platform makes of them", func(t *testing.T) {
		s := open(t)
		th, _ := openThread(t, s, card("buttons-marker"))
		m := text("buttons-reply-marker")
		m.Buttons = [][]conversation.Button{{
			{Label: "Approve restart_workers", Data: "ap:AAAAAAAAAAABBBBBBBBBBB"},
			{Label: "Reject", Data: "/reject INC-7F3"},
			{Label: "Details", Data: "/details INC-7F3"},
		}}
		post(t, s, th, m)
		waitDelivered(t, s, "buttons-reply-marker")
	})

	t.Run("hostile and long text arrives whole", func(t *testing.T) {
		s := open(t)
		th, _ := openThread(t, s, card("hostile-root"))
		var blocks []conversation.Block
		hostile := []string{`<b>not bold</b> & <script>x</script>`, "*star* _under_ ~strike~ `tick`", "emoji 🚨🔥 ü ß 漢字", "[link](http://x) @everyone"}
		for i, h := range hostile {
			blocks = append(blocks, conversation.Block{Style: conversation.Style(i % 6), Text: fmt.Sprintf("hostile-%d %s", i, h)})
		}
		for i := range 120 {
			blocks = append(blocks, conversation.Block{Style: conversation.Plain, Text: fmt.Sprintf("long-line-%03d %s", i, strings.Repeat("lorem ipsum ", 6))})
		}
		post(t, s, th, conversation.Message{Blocks: blocks})
		got := waitDelivered(t, s, "long-line-119")
		all := strings.Join(got, "\n")
		for i := range hostile {
			if !strings.Contains(all, fmt.Sprintf("hostile-%d", i)) {
				t.Errorf("hostile line %d is missing", i)
			}
		}
		for i := range 120 {
			if !strings.Contains(all, fmt.Sprintf("long-line-%03d", i)) {
				t.Errorf("long line %d is missing", i)
			}
		}
		for _, h := range []string{"漢字", "🚨"} {
			if !strings.Contains(all, h) {
				t.Errorf("%q did not survive", h)
			}
		}
	})

	t.Run("an edit shows the new text", func(t *testing.T) {
		s := open(t)
		_, ref := openThread(t, s, card("before-edit-marker"))
		m := card("before-edit-marker")
		m.Blocks = append(m.Blocks, conversation.Block{Style: conversation.Bold, Text: "✅ Approved by edit-marker-name at 12:00 UTC"})
		m.Buttons = nil
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := s.Transport.Edit(ctx, ref, m); err != nil {
			t.Fatalf("Edit: %v", err)
		}
		waitDelivered(t, s, "edit-marker-name")
	})

	t.Run("an image is delivered where the platform has media", func(t *testing.T) {
		s := open(t)
		if !s.Transport.Capabilities().Media {
			t.Skip("no media: the engine leaves images out")
		}
		th, _ := openThread(t, s, card("image-root"))
		m := text("image-caption-marker")
		m.Image = &conversation.Image{PNG: tinyPNG(t), Alt: "chart"}
		post(t, s, th, m)
		waitDelivered(t, s, "image-caption-marker")
	})
}

func card(marker string) conversation.Message {
	return conversation.Message{Blocks: []conversation.Block{
		{Style: conversation.Title, Text: "🚨 checkout degraded — INC-7F3 " + marker},
		{Style: conversation.Plain, Text: "Health 23/100 · P95 2.8 s · errors 19%"},
		{Style: conversation.Muted, Text: "Nothing runs without your approval."},
	}}
}

func text(s string) conversation.Message {
	return conversation.Message{Blocks: []conversation.Block{{Style: conversation.Plain, Text: s}}}
}

func openThread(t *testing.T, s Subject, m conversation.Message) (conversation.Thread, conversation.MessageRef) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	th, ref, err := s.Transport.OpenThread(ctx, s.Chat, "INC-7F3 · checkout", m)
	if err != nil {
		t.Fatalf("OpenThread: %v", err)
	}
	return th, ref
}

func post(t *testing.T, s Subject, th conversation.Thread, m conversation.Message) conversation.MessageRef {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ref, err := s.Transport.Post(ctx, th, m)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	return ref
}

// waitDelivered returns the chat's texts, failing unless one contains marker. Part of
// the contract: when Post, OpenThread or Edit returns, the platform holds the message.
func waitDelivered(t *testing.T, s Subject, marker string) []string {
	t.Helper()
	got := s.Delivered()
	if index(got, marker) < 0 {
		t.Fatalf("%q did not reach the chat; it holds %q", marker, got)
	}
	return got
}

func index(texts []string, sub string) int {
	for i, x := range texts {
		if strings.Contains(x, sub) {
			return i
		}
	}
	return -1
}

func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
