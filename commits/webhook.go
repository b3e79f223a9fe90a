package commits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger/claim"
)

// MaxBody is the largest webhook body accepted (413 above it). GitHub caps payloads at
// 25 MB, but what the bot keeps of a push is bounded anyway (MaxCommitsPerPush commits,
// MaxFiles paths each), everyday pushes are well under 1 MB, and 5 MiB still takes a push
// listing several hundred commits, while bounding what any sender makes a replica buffer.
const MaxBody = 5 << 20

// Refusal reasons, as counted by OnRefused.
const (
	RefusedNoSecret  = "no_secret"
	RefusedSignature = "bad_signature"
	RefusedTooLarge  = "too_large"
	RefusedMalformed = "malformed"
)

// Outcomes of an accepted delivery, as counted by OnDelivery.
const (
	OutcomeStored    = "stored"
	OutcomeIgnored   = "ignored"
	OutcomeDuplicate = "duplicate"
	// OutcomeBusy: another replica is processing the delivery; GitHub is asked to
	// redeliver it later.
	OutcomeBusy      = "busy"
	OutcomeFailed    = "failed"
	OutcomeMalformed = "malformed"
)

// WebhookOptions configure the POST /github/webhook handler.
type WebhookOptions struct {
	// Secret is GITHUB_WEBHOOK_SECRET; required (without it every delivery is refused).
	Secret []byte
	Store  *Store
	Redis  redis.UniversalClient // delivery de-duplication across replicas
	// KeyPrefix isolates the de-duplication keys.
	KeyPrefix string
	// Accept reports whether a repository (owner/name, lower case) is mapped to a service;
	// deliveries of other repositories are acknowledged and not stored.
	Accept func(repo string) bool
	// Patterns are every tenant's risky-path globs.
	Patterns []string
	// Stats, when set, is asked for the +/− counts of pushed commits (asynchronously).
	Stats *Stats
	// DedupTTL is how long a delivery id is remembered (default Retention).
	DedupTTL time.Duration
	// MaxBody bounds the body (default MaxBody).
	MaxBody int64
	Clock   func() time.Time
	Logger  *slog.Logger
	// OnRefused counts a refused request (a security event when the signature is bad).
	OnRefused func(reason string)
	// OnDelivery counts an authenticated delivery by event and outcome.
	OnDelivery func(event, outcome string)
}

// Validate checks the options.
func (o *WebhookOptions) Validate() error {
	switch {
	case len(o.Secret) == 0:
		return ErrNoSecret
	case o.Store == nil:
		return errors.New("github webhook: no store")
	case o.Redis == nil:
		return errors.New("github webhook: no Redis")
	case o.Accept == nil:
		return errors.New("github webhook: no repository mapping")
	}
	return nil
}

// Webhook is the http.Handler of POST /github/webhook.
type Webhook struct {
	o          WebhookOptions
	deliveries *claim.Claims
}

// NewWebhook returns the handler.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.DedupTTL == 0 {
		o.DedupTTL = Retention
	}
	if o.MaxBody == 0 {
		o.MaxBody = MaxBody
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnRefused == nil {
		o.OnRefused = func(string) {}
	}
	if o.OnDelivery == nil {
		o.OnDelivery = func(string, string) {}
	}
	deliveries, err := claim.New(claim.Options{Redis: o.Redis, Lease: claimLease, Keep: max(o.DedupTTL, claimLease)})
	if err != nil {
		return nil, fmt.Errorf("github webhook: %w", err)
	}
	return &Webhook{o: o, deliveries: deliveries}, nil
}

// claimLease bounds how long one replica holds a delivery it is processing; a replica
// that dies meanwhile leaves a redelivery possible after it.
const claimLease = time.Minute

// ServeHTTP verifies, de-duplicates, parses and stores one delivery. In order: body
// within the limit (413) → X-Hub-Signature-256 over the exact bytes (401, nothing
// stored, counted) → the JSON: the body, or its payload field when form-encoded (400)
// → headers (400) → claim of X-GitHub-Delivery (a duplicate is answered 200 and not
// processed again; one another replica is processing is answered 503) → parse → store.
// A failure to store releases the claim and answers 500, so GitHub's redelivery is
// processed.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limit := h.o.MaxBody
	if r.ContentLength > limit {
		h.refuse(w, r, http.StatusRequestEntityTooLarge, RefusedTooLarge, fmt.Sprintf("body over %d MiB", limit>>20))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.refuse(w, r, http.StatusRequestEntityTooLarge, RefusedTooLarge, fmt.Sprintf("body over %d MiB", limit>>20))
			return
		}
		h.refuse(w, r, http.StatusBadRequest, RefusedMalformed, "unreadable body")
		return
	}
	if err := VerifySignature(h.o.Secret, r.Header.Get(SignatureHeader), body); err != nil {
		reason := RefusedSignature
		if errors.Is(err, ErrNoSecret) {
			reason = RefusedNoSecret
		}
		h.o.Logger.Warn("security: GitHub webhook refused", "reason", err, "remote", r.RemoteAddr,
			"delivery", clip(r.Header.Get("X-GitHub-Delivery"), 64))
		h.refuse(w, r, http.StatusUnauthorized, reason, "bad or missing X-Hub-Signature-256")
		return
	}
	if body, err = deliveryJSON(r.Header.Get("Content-Type"), body); err != nil {
		h.refuse(w, r, http.StatusBadRequest, RefusedMalformed, "form-encoded delivery without a payload field")
		return
	}
	event, id := r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery")
	if !validToken(event, 64) || !validToken(id, 64) {
		h.refuse(w, r, http.StatusBadRequest, RefusedMalformed, "X-GitHub-Event and X-GitHub-Delivery are required")
		return
	}
	ctx := r.Context()
	key := h.o.KeyPrefix + "gh:delivery:" + id
	cl, got, err := h.deliveries.Take(ctx, key)
	if err != nil {
		h.o.Logger.Error("claim GitHub delivery", "delivery", id, "err", err)
		h.o.OnDelivery(event, OutcomeFailed)
		reply(w, http.StatusServiceUnavailable, "temporarily unavailable; redeliver later")
		return
	}
	switch got {
	case claim.Handled:
		h.o.OnDelivery(event, OutcomeDuplicate)
		reply(w, http.StatusOK, "duplicate delivery; already processed")
		return
	case claim.Busy:
		h.o.OnDelivery(event, OutcomeBusy)
		reply(w, http.StatusServiceUnavailable, "being processed; redeliver later")
		return
	}
	status, msg, outcome := h.process(ctx, event, body)
	if outcome == OutcomeFailed {
		if err := cl.Release(ctx); err != nil {
			h.o.Logger.Warn("give up GitHub delivery", "delivery", id, "err", err)
		}
	} else if err := cl.Done(ctx); err != nil {
		h.o.Logger.Warn("mark GitHub delivery done", "delivery", id, "err", err)
	}
	h.o.OnDelivery(event, outcome)
	reply(w, status, msg)
}

func (h *Webhook) process(ctx context.Context, event string, body []byte) (int, string, string) {
	d, err := Parse(event, body, h.o.Clock(), h.o.Patterns)
	if err != nil {
		h.o.Logger.Warn("GitHub delivery not understood", "event", event, "err", err)
		return http.StatusBadRequest, "payload not understood for event " + event, OutcomeMalformed
	}
	if event == "ping" {
		return http.StatusOK, "pong", OutcomeIgnored
	}
	if d.Ignored != "" {
		return http.StatusAccepted, "ignored: " + d.Ignored, OutcomeIgnored
	}
	if !h.o.Accept(d.Repo) {
		return http.StatusAccepted, "ignored: repository is not mapped to a service", OutcomeIgnored
	}
	if err := h.o.Store.Add(ctx, d.Repo, d.Changes); err != nil {
		h.o.Logger.Error("store GitHub delivery", "event", event, "repo", d.Repo, "err", err)
		return http.StatusInternalServerError, "not stored; redeliver later", OutcomeFailed
	}
	if h.o.Stats != nil {
		for _, c := range d.Changes {
			if c.Kind == KindCommit {
				h.o.Stats.Enqueue(d.Repo, c.SHA)
			}
		}
	}
	return http.StatusOK, fmt.Sprintf("stored %d change(s)", len(d.Changes)), OutcomeStored
}

func (h *Webhook) refuse(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	h.o.OnRefused(reason)
	reply(w, code, msg)
}

func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": msg})
}

// validToken reports whether s is 1 to n characters of [A-Za-z0-9_.-].
func validToken(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
