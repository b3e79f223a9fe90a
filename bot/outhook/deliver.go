package outhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/alertengine/alertengine/detector/netguard"
	"github.com/alertengine/alertengine/ledger"
)

// Sign returns the webhook-signature header value for one attempt: "v1," and the
// standard base64 of HMAC-SHA256(key, id "." timestamp "." body).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// result is one attempt's outcome.
type result struct {
	status     int
	err        error         // transport failure, without the URL
	retryable  bool          // worth another attempt
	reason     string        // metric label of a failure
	retryAfter time.Duration // what the receiver asked for (0: nothing)
}

// deliver sends e until it is delivered or fails for good; it returns false only when
// ctx ended first (nothing is settled then).
func (s *Sender) deliver(ctx context.Context, t *tenant, x *target, e ledger.Entry, typ string) bool {
	id := MessageID(e)
	log := x.log.With("webhook_id", id, "type", typ)
	body, err := json.Marshal(NewPayload(e, typ))
	if err != nil { // not reachable with the payload's field types; never retried
		log.Error("encode payload; not sent", "err", err)
		s.m.failed.WithLabelValues(t.id, x.Name, "bad_payload").Inc()
		return true
	}
	client := s.guarded
	if x.AllowPrivateNetwork {
		client = s.open
	}
	for attempt := 1; ; attempt++ {
		r := s.attempt(ctx, client, x, id, body)
		if ctx.Err() != nil {
			return false
		}
		if r.reason == "" {
			s.m.delivered.WithLabelValues(t.id, x.Name).Inc()
			log.Debug("delivered", "status", r.status, "attempts", attempt)
			return true
		}
		if !r.retryable || attempt >= s.opts.MaxAttempts {
			reason := r.reason
			if r.retryable {
				reason = "retries_exhausted"
			}
			s.m.failed.WithLabelValues(t.id, x.Name, reason).Inc()
			log.Warn("not delivered; moving on", "reason", reason, "status", r.status, "err", r.err, "attempts", attempt)
			return true
		}
		s.m.retries.WithLabelValues(t.id, x.Name).Inc()
		if tail, err := s.opts.Store.Tail(ctx, t.id); err == nil && tail.Seq >= e.Seq {
			// Keep the lag true while this entry holds the target back.
			s.m.lag.WithLabelValues(t.id, x.Name).Set(float64(tail.Seq - e.Seq + 1))
		}
		wait := s.backoff(attempt, r.retryAfter)
		log.Info("delivery failed; retrying", "status", r.status, "err", r.err, "attempt", attempt, "wait", wait)
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// backoff is the wait after the attempt-th failure: MinBackoff doubled per attempt with up
// to 25% jitter either way, never above MaxBackoff, and never less than what Retry-After
// asked (itself capped at MaxBackoff).
func (s *Sender) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := s.opts.MinBackoff
	for i := 1; i < attempt && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	d = min(d+time.Duration((rand.Float64()-0.5)*0.5*float64(d)), s.opts.MaxBackoff)
	return max(d, min(retryAfter, s.opts.MaxBackoff))
}

// attempt makes one signed POST.
func (s *Sender) attempt(ctx context.Context, client *http.Client, x *target, id string, body []byte) result {
	ctx, cancel := context.WithTimeout(ctx, x.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.URL, bytes.NewReader(body))
	if err != nil {
		return result{err: errors.New("bad request"), reason: "bad_url"}
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "AlertEngine-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(x.key, id, ts, body))
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error names the whole URL, query included
		}
		if errors.Is(err, netguard.ErrRefused) {
			return result{err: err, reason: "refused_address"}
		}
		reason := "connection"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "timeout"
		}
		return result{err: err, retryable: true, reason: reason}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r := result{status: resp.StatusCode}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return r
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		r.retryable, r.reason = true, "status_"+strconv.Itoa(c/100)+"xx"
		if c == http.StatusTooManyRequests {
			r.reason = "status_429"
		}
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case c >= 300 && c < 400:
		r.reason = "redirect"
	default:
		r.reason = "rejected"
	}
	return r
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date. 0: absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
