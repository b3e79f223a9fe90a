package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"github.com/alertengine/alertengine/bot/metrics"
	"net/http"
	"strings"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// StatusOptions configure the bot's GET /__alertengine/status.
type StatusOptions struct {
	// Token is the bearer token a caller must send (STATUS_TOKEN); required.
	Token   string
	Version string
	Started time.Time
	Clock   func() time.Time
	Tenants []string
	// Env is the effective environment with secrets redacted (config.Env.Redacted).
	Env    map[string]string
	Store  ledger.Store
	Ledger *ledger.Ledger
	Losses *metrics.LedgerLosses
	// Checks are the readiness conditions, reported one by one (never their errors'
	// text, which may name internals).
	Checks []Check
	// Sink names where checkpoints are kept outside Redis ("" none).
	Sink    string
	Timeout time.Duration // per store call, default 2 s
}

// Validate checks the options.
func (o *StatusOptions) Validate() error {
	switch {
	case o.Token == "":
		return errors.New("status: no token")
	case o.Store == nil || o.Ledger == nil || o.Losses == nil:
		return errors.New("status: no ledger, store or losses")
	}
	return nil
}

type statusCheckpoint struct {
	Size uint64    `json:"size"`
	At   time.Time `json:"at"`
}

type tenantStatus struct {
	ID           string             `json:"id"`
	ChainEntries *uint64            `json:"chain_entries,omitempty"`
	CodeBase     uint64             `json:"code_base"`
	Checkpoint   *statusCheckpoint  `json:"last_checkpoint,omitempty"`
	Loss         metrics.LossRecord `json:"ledger_loss"`
	// Unaccepted are the lost chains no operator has accepted (`bot ledger accept-loss`),
	// also those found before this process started; their incidents are fenced.
	Unaccepted []statusCheckpoint `json:"unaccepted_losses,omitempty"`
	Error      string             `json:"error,omitempty"`
}

type statusReply struct {
	Version        string            `json:"version"`
	StartedAt      time.Time         `json:"started_at"`
	UptimeS        int64             `json:"uptime_s"`
	Checks         map[string]string `json:"checks"`
	CheckpointSink string            `json:"checkpoint_sink"`
	LossDetected   bool              `json:"ledger_loss_detected"`
	Tenants        []tenantStatus    `json:"tenants"`
	Env            map[string]string `json:"env,omitempty"`
}

// StatusHandler serves the bot's status to a caller with the bearer token: version,
// uptime, the health of Redis and the ledger, and per tenant the chain's size, code base,
// last signed checkpoint and any detected loss. It shows no secret.
func StatusHandler(o StatusOptions) (http.Handler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	want := sha256.Sum256([]byte(o.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="alertengine"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		now := o.Clock()
		rep := statusReply{Version: o.Version, StartedAt: o.Started.UTC(), UptimeS: int64(now.Sub(o.Started) / time.Second),
			Checks: map[string]string{}, CheckpointSink: o.Sink, Env: o.Env}
		if rep.CheckpointSink == "" {
			rep.CheckpointSink = "none"
		}
		for _, c := range o.Checks {
			ctx, cancel := context.WithTimeout(r.Context(), o.Timeout)
			rep.Checks[c.Name] = "ok"
			if c.Check(ctx) != nil {
				rep.Checks[c.Name] = "unavailable"
			}
			cancel()
		}
		for _, t := range o.Tenants {
			ts := tenantStatus{ID: t, CodeBase: o.Ledger.Base(t), Loss: o.Losses.Of(t)}
			for _, cp := range o.Ledger.Unaccepted(t) {
				ts.Unaccepted = append(ts.Unaccepted, statusCheckpoint{Size: cp.Size, At: cp.At})
			}
			rep.LossDetected = rep.LossDetected || ts.Loss.Detected > 0 || len(ts.Unaccepted) > 0
			ctx, cancel := context.WithTimeout(r.Context(), o.Timeout)
			if tail, err := o.Store.Tail(ctx, t); err != nil {
				ts.Error = "Redis unavailable"
			} else {
				ts.ChainEntries = &tail.Seq
			}
			if cp, err := o.Store.Checkpoint(ctx, t); err == nil && cp != nil {
				ts.Checkpoint = &statusCheckpoint{Size: cp.Size, At: cp.At}
			}
			cancel()
			rep.Tenants = append(rep.Tenants, ts)
		}
		writeJSON(w, http.StatusOK, rep)
	}), nil
}
