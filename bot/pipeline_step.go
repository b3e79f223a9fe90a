package bot

import (
	"context"

	"github.com/alertengine/alertengine/detector"
)

// Step handles one detection now, on the caller's goroutine, and returns its error: what
// Run does with a queued detection, without the queue and without the retry timer. It is
// for a driver that owns the clock (the governance simulation), which schedules any retry
// itself.
func (p *Pipeline) Step(ctx context.Context, ev detector.Event) error {
	err := p.handle(ctx, ev)
	if err != nil {
		p.o.Metrics.handleFailed()
	}
	return err
}
