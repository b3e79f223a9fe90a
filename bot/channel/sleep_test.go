package channel

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	start := time.Now()
	if err := Sleep(t.Context(), 10*time.Millisecond); err != nil || time.Since(start) < 10*time.Millisecond {
		t.Fatalf("Sleep = %v after %s", err, time.Since(start))
	}
	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	if err := Sleep(ctx, time.Hour); !errors.Is(err, cause) {
		t.Errorf("Sleep after the context ended = %v, want its cause", err)
	}
}
