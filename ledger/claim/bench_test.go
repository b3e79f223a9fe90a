package claim_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// BenchmarkTakeDone is the cost of claiming a delivery and marking it handled: what every
// inbound update, message and GitHub delivery pays (two scripts, one round trip each).
func BenchmarkTakeDone(b *testing.B) {
	rdb, prefix := ledgertest.Redis(b)
	c := claims(b, rdb, time.Minute)
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cl, _, err := c.Take(ctx, prefix+strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		if err := cl.Done(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
