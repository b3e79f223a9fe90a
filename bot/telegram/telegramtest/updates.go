package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// queuedUpdate is an update waiting to be confirmed by the bot.
type queuedUpdate struct {
	id   int64
	kind string // message, callback_query, …
	body json.RawMessage
}

// enqueueLocked queues an update of the given kind under the next update_id.
func (s *Server) enqueueLocked(kind string, payload any) int64 {
	raw, err := marshal(payload)
	if err != nil {
		s.t.Fatalf("telegramtest: encode %s update: %v", kind, err)
	}
	return s.enqueueRawLocked(kind, raw)
}

func (s *Server) enqueueRawLocked(kind string, raw json.RawMessage) int64 {
	id := s.nextUpdate
	s.nextUpdate++
	key, _ := marshal(kind)
	body := fmt.Appendf(nil, `{"update_id":%d,%s:%s}`, id, key, raw)
	s.pending = append(s.pending, queuedUpdate{id: id, kind: kind, body: body})
	s.notifyLocked()
	return id
}

// allowedLocked applies allowed_updates; by default Telegram leaves out chat_member,
// message_reaction and message_reaction_count.
func (s *Server) allowedLocked(kind string) bool {
	if len(s.allowed) == 0 {
		switch kind {
		case "chat_member", "message_reaction", "message_reaction_count":
			return false
		}
		return true
	}
	return slices.Contains(s.allowed, kind)
}

// confirmLocked forgets the updates an offset confirms: those below a positive offset, or
// all but the last -offset for a negative one.
func (s *Server) confirmLocked(offset int64) {
	switch {
	case offset > 0:
		s.pending = slices.DeleteFunc(s.pending, func(u queuedUpdate) bool { return u.id < offset })
	case offset < 0:
		if keep := int(-offset); keep < len(s.pending) {
			s.pending = slices.Clone(s.pending[len(s.pending)-keep:])
		}
	default:
		return
	}
	s.notifyLocked()
}

func (s *Server) batchLocked(limit int) []json.RawMessage {
	out := []json.RawMessage{}
	for _, u := range s.pending {
		if len(out) == limit {
			break
		}
		if s.allowedLocked(u.kind) {
			out = append(out, u.body)
		}
	}
	return out
}

// The conflicts Telegram answers getUpdates with.
const (
	conflictWebhook = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
	conflictPoll    = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
	conflictSet     = "Conflict: terminated by setWebhook request"
)

func conflict(description string) answer {
	return fail(&apiError{code: http.StatusConflict, description: description})
}

// getUpdates is the long poll. It confirms the updates below offset, then answers at once
// when updates are waiting or timeout is 0, and otherwise holds the request until an update
// is queued, timeout seconds pass, the client goes away or the server closes. A newer
// getUpdates ends a held one with 409, as does setWebhook. The bool is false when the
// client went away and no answer is due.
func (s *Server) getUpdates(r *http.Request, p params) (answer, bool) {
	offset, _, _ := p.int("offset")
	limit64, _, _ := p.int("limit")
	timeout, _, _ := p.int("timeout")
	limit := int(limit64)
	if limit <= 0 || limit > 100 {
		limit = 100
	}

	s.mu.Lock()
	if s.webhookURL != "" {
		s.mu.Unlock()
		return conflict(conflictWebhook), true
	}
	if e := s.setAllowedLocked(p); e != nil {
		s.mu.Unlock()
		return fail(e), true
	}
	s.confirmLocked(offset)
	s.pollSeq++
	seq := s.pollSeq
	s.waiting++
	s.notifyLocked() // ends an older held poll, and shows this one waiting
	defer func() {
		s.mu.Lock()
		s.waiting--
		s.notifyLocked()
		s.mu.Unlock()
	}()

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		expired = t.C
	}
	for {
		switch {
		case s.pollSeq != seq:
			s.mu.Unlock()
			return conflict(conflictPoll), true
		case s.webhookURL != "":
			s.mu.Unlock()
			return conflict(conflictSet), true
		}
		if batch := s.batchLocked(limit); len(batch) > 0 || timeout <= 0 {
			s.mu.Unlock()
			return ok(batch), true
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-expired:
			return ok([]json.RawMessage{}), true
		case <-s.closed:
			return ok([]json.RawMessage{}), true
		case <-r.Context().Done():
			return answer{}, false
		}
		s.mu.Lock()
	}
}

// Pending returns how many updates are queued and not yet confirmed by the bot (by a
// getUpdates offset past them, or a 2xx answer from its webhook to DeliverPending).
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// WaitConfirmed waits until the bot has confirmed update updateID: with long polling, the
// library asks for the next offset only after it has taken the batch in.
func (s *Server) WaitConfirmed(ctx context.Context, updateID int64) error {
	err := s.waitUntil(ctx, func() bool {
		return !slices.ContainsFunc(s.pending, func(u queuedUpdate) bool { return u.id <= updateID })
	})
	if err != nil {
		return fmt.Errorf("wait for update %d to be confirmed: %w", updateID, err)
	}
	return nil
}

// Update queues a hand-made update, such as a recorded fixture. raw is a JSON object
// with exactly one update field (message, callback_query, …); its update_id, if any, is
// replaced by the next one, which Update returns.
func (s *Server) Update(raw []byte) int64 {
	s.t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		s.t.Fatalf("telegramtest: Update: not a JSON object: %v", err)
	}
	delete(fields, "update_id")
	if len(fields) != 1 {
		s.t.Fatalf("telegramtest: Update: want exactly one update field besides update_id, got %d", len(fields))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for kind, body := range fields {
		var b bytes.Buffer
		if err := json.Compact(&b, body); err != nil {
			s.t.Fatalf("telegramtest: Update: %v", err)
		}
		return s.enqueueRawLocked(kind, b.Bytes())
	}
	return 0
}

// PostWebhook delivers update to a webhook the way Telegram does: a POST of the JSON
// update with Content-Type application/json and, when secret is not empty, the
// X-Telegram-Bot-Api-Secret-Token header. update may be raw JSON ([]byte,
// json.RawMessage) or any value to encode. It returns the endpoint's status code; the
// error is for transport failures only.
func (s *Server) PostWebhook(ctx context.Context, url, secret string, update any) (int, error) {
	var body []byte
	switch u := update.(type) {
	case []byte:
		body = u
	case json.RawMessage:
		body = u
	default:
		var err error
		if body, err = marshal(update); err != nil {
			return 0, fmt.Errorf("encode update: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// DeliverPending posts the queued updates, oldest first, to the webhook set with
// setWebhook (with its secret_token), forgetting each one its endpoint answers with a 2xx.
// It stops at the first other answer, leaving that update queued as Telegram would for a
// retry, and returns how many were delivered.
func (s *Server) DeliverPending(ctx context.Context) (int, error) {
	delivered := 0
	for {
		s.mu.Lock()
		url, secret := s.webhookURL, s.webhookSecret
		if url == "" {
			s.mu.Unlock()
			return delivered, fmt.Errorf("deliver updates: no webhook is set")
		}
		s.pending = slices.DeleteFunc(s.pending, func(u queuedUpdate) bool { return !s.allowedLocked(u.kind) })
		if len(s.pending) == 0 {
			s.mu.Unlock()
			return delivered, nil
		}
		next := s.pending[0]
		s.mu.Unlock()

		status, err := s.PostWebhook(ctx, url, secret, next.body)
		if err != nil {
			return delivered, fmt.Errorf("deliver update %d: %w", next.id, err)
		}
		if status < 200 || status > 299 {
			return delivered, fmt.Errorf("deliver update %d: webhook answered %d %s", next.id, status, http.StatusText(status))
		}
		s.mu.Lock()
		s.pending = slices.DeleteFunc(s.pending, func(u queuedUpdate) bool { return u.id == next.id })
		s.notifyLocked()
		s.mu.Unlock()
		delivered++
	}
}
