package app

import (
	"context"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/bot/pipeline"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// detection is the detector's report: to the inbox, then to the tap.
func (t Taps) detection(in *pipeline.Inbox) func(context.Context, detector.Event) {
	if t.Detection == nil {
		return in.OnDetection
	}
	return func(ctx context.Context, ev detector.Event) {
		in.OnDetection(ctx, ev)
		t.Detection(ctx, ev)
	}
}

// authorized is the engine's report: to the inbox, then to the tap.
func (t Taps) authorized(in *pipeline.Inbox) func(context.Context, ledger.Entry) error {
	if t.Authorized == nil {
		return in.OnAuthorized
	}
	return func(ctx context.Context, e ledger.Entry) error {
		if err := in.OnAuthorized(ctx, e); err != nil {
			return err
		}
		t.Authorized(ctx, e)
		return nil
	}
}

// outcome is the executor's report: to the inbox, then to the tap.
func (t Taps) outcome(in *pipeline.Inbox) func(context.Context, executor.Outcome) {
	if t.Outcome == nil {
		return in.OnOutcome
	}
	return func(ctx context.Context, o executor.Outcome) {
		in.OnOutcome(ctx, o)
		t.Outcome(ctx, o)
	}
}

// store is what the ledger writes through: s, and the Appended tap told of what each
// append added.
func (t Taps) store(s *ledger.RedisStore) ledger.Store {
	if t.Appended == nil {
		return s
	}
	return tappedStore{RedisStore: s, appended: t.Appended}
}

// tappedStore is the Redis store with every append told to a tap. It embeds the store,
// so the optional interfaces the ledger looks for (BaseStore, TreeStore…) stay.
type tappedStore struct {
	*ledger.RedisStore
	appended func(tenant string, entries []ledger.Entry)
}

func (s tappedStore) Append(ctx context.Context, tenant string, tail ledger.Tail, entries []ledger.Entry) (int, error) {
	n, err := s.RedisStore.Append(ctx, tenant, tail, entries)
	if n > 0 {
		s.appended(tenant, entries[:n])
	}
	return n, err
}
