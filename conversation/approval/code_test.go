package approval

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

func TestReplyCodes(t *testing.T) {
	rc, prefix := ledgertest.Redis(t)
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	led, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, prefix), Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Redis: rc, KeyPrefix: prefix, Secret: []byte(strings.Repeat("k", 32)), Ledger: led, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	refs, err := s.Issue(ctx, 5*time.Minute, Offer{Tenant: "acme", Incident: "INC-1", Action: "restart_workers"}, Offer{Tenant: "acme", Incident: "INC-1", Action: "rollback"})
	if err != nil {
		t.Fatal(err)
	}
	// Replicas asking at once for one reference's code all get the same one.
	codes := make([]string, 8)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.Code(ctx, refs[0])
			if err != nil {
				t.Error(err)
			}
			codes[i] = c
		}()
	}
	wg.Wait()
	for _, c := range codes {
		if c != codes[0] || !ValidCode(c) {
			t.Fatalf("codes %v", codes)
		}
	}
	other, err := s.Code(ctx, refs[1])
	if err != nil || other == codes[0] {
		t.Fatalf("sibling code %q (%v)", other, err)
	}
	for _, typed := range []string{codes[0], strings.ToLower(codes[0]), " " + codes[0] + " "} {
		if ref, err := s.RefOfCode(ctx, typed); err != nil || ref != refs[0] {
			t.Errorf("RefOfCode(%q) = %q, %v", typed, ref, err)
		}
	}
	for _, bad := range []string{"", "7F3K9", "0OI-1L", "AAA-AA", strings.Repeat("A", 1000)} {
		if _, err := s.RefOfCode(ctx, bad); !errors.Is(err, ErrUnknown) {
			t.Errorf("RefOfCode(%q): %v", bad, err)
		}
	}
	if sub, err := s.About(ctx, refs[1]); err != nil || sub != (Subject{Tenant: "acme", Incident: "INC-1", Action: "rollback"}) {
		t.Errorf("About = %+v, %v", sub, err)
	}
	// An approval that has expired gets no new code.
	late, err := s.Issue(ctx, time.Millisecond, Offer{Tenant: "acme", Incident: "INC-2", Action: "restart_workers"})
	if err != nil {
		t.Fatal(err)
	}
	rc.Del(ctx, s.keys(late[0]).tok)
	if _, err := s.Code(ctx, late[0]); !errors.Is(err, ErrExpired) {
		t.Errorf("code of an expired approval: %v", err)
	}
}
