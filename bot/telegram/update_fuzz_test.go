package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// counting is a conversation.Handler that keeps what it is given.
type counting struct {
	mu  sync.Mutex
	got []conversation.Inbound
}

func (c *counting) Handle(_ context.Context, in conversation.Inbound) (conversation.Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, in)
	return conversation.Reply{}, nil
}

func (c *counting) n() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.got) }

func (c *counting) last() conversation.Inbound {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[len(c.got)-1]
}

// FuzzWebhookUpdate posts arbitrary bodies, with the right secret, to the webhook as
// Telegram would: nothing panics; a body that is not an update is a 400 that reaches no
// handler and writes nothing to Redis; an update reaches the engine at most once (the
// same body again is a duplicate), a press only with valid button data, and a message's
// text only as it was sent (at most the bot's own mention removed).
func FuzzWebhookUpdate(f *testing.F) {
	fake := telegramtest.New(f)
	rdb, prefix := ledgertest.Redis(f)
	a, err := New(Options{Token: fake.Token(), APIURL: fake.URL(), Redis: rdb, KeyPrefix: prefix, WebhookSecret: secret, Workers: 1,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		f.Fatal(err)
	}
	h := &counting{}
	handler := a.WebhookHandler(h)
	keys := func(t *testing.T) int {
		ks, err := rdb.Keys(context.Background(), prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(ks)
	}
	post := func(body []byte) int {
		req := httptest.NewRequest(http.MethodPost, "/telegram/webhook", bytes.NewReader(body))
		req.Header.Set(SecretHeader, secret)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code
	}
	f.Add([]byte(`{"update_id":1,"message":{"message_id":5,"from":{"id":42,"is_bot":false,"first_name":"Ana"},"chat":{"id":-2222222,"type":"group","title":"ops"},"date":1764230400,"text":"/status@alertengine_bot checkout"}}`))
	f.Add([]byte(`{"update_id":2,"callback_query":{"id":"q1","from":{"id":42,"is_bot":false,"first_name":"Ana"},"chat_instance":"1","data":"/details INC-1","message":{"message_id":7,"chat":{"id":-2222222,"type":"group"},"date":1764230400,"text":"card"}}}`))
	f.Add([]byte(`{"update_id":0}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var u models.Update
		isUpdate := json.Unmarshal(body, &u) == nil && u.ID > 0
		before, keysBefore := h.n(), keys(t)
		code := post(body)
		if !isUpdate {
			if code != http.StatusBadRequest || h.n() != before || keys(t) != keysBefore {
				t.Fatalf("not an update: HTTP %d, %d→%d handled, %d→%d keys", code, before, h.n(), keysBefore, keys(t))
			}
			return
		}
		if code != http.StatusOK {
			t.Fatalf("an update answered HTTP %d", code)
		}
		handled := h.n() - before
		if handled > 1 {
			t.Fatalf("one update reached the engine %d times", handled)
		}
		if handled == 1 {
			in := h.last()
			switch {
			case in.Data != "":
				if u.CallbackQuery == nil || in.Data != u.CallbackQuery.Data || checkButtonData(in.Data) != nil {
					t.Fatalf("a press with data %q reached the engine", in.Data)
				}
			case u.Message == nil || len(in.Text) > len(u.Message.Text) || in.Text == "":
				t.Fatalf("text %q reached the engine from %+v", in.Text, u.Message)
			}
		}
		if post(body) != http.StatusOK || h.n() != before+handled {
			t.Fatalf("the same update again reached the engine")
		}
	})
}
