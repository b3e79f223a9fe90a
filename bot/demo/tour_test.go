package demo

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// The demo runs the bot serve runs: every loop and route of a serve-configured bot is in
// the tour's, and the tour adds only its console (a chat platform, its page's routes and
// its loop).
func TestTourBuildsWhatServeBuilds(t *testing.T) {
	rs := ledgertest.NewServer(t)
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "REDIS_URL": rs.URL, "REDIS_KEY_PREFIX": rs.Prefix(t),
			"ALERT_SECRET": strings.Repeat("k", 32), "GITHUB_WEBHOOK_SECRET": strings.Repeat("g", 32)}[k]
		return v, ok
	}
	demoEnv, err := config.LoadEnv(lookup, config.Demo)
	if err != nil {
		t.Fatal(err)
	}
	tour, err := StartTour(t.Context(), demoEnv, TourOptions{Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tour.Close()

	serveEnv := demoEnv
	serveEnv.LedgerCheckpointFile = ""
	rc := rs.Client(t)
	served, err := app.New(app.Options{Env: serveEnv, File: Config("http://127.0.0.1:9/recover", "s"), Redis: rc, KeyPrefix: rs.Prefix(t), Addr: "127.0.0.1:0",
		Signer: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)), Secret: []byte(strings.Repeat("k", 32)), ExecutorPoll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer served.Close()

	s, d := served.Components(), tour.App.Components()
	if !slices.Equal(d.Channels, []string{"console"}) || len(s.Channels) != 0 {
		t.Errorf("channels: serve %v, tour %v; want none and the console", s.Channels, d.Channels)
	}
	for _, l := range s.Loops {
		if !slices.Contains(d.Loops, l) {
			t.Errorf("serve runs loop %q, the tour does not (tour: %v)", l, d.Loops)
		}
	}
	if extra := without(d.Loops, s.Loops); !slices.Equal(extra, []string{"console"}) {
		t.Errorf("the tour runs more than the console: %v", extra)
	}
	for _, r := range s.Routes {
		if !slices.Contains(d.Routes, r) {
			t.Errorf("serve mounts %q, the tour does not", r)
		}
	}
	for _, r := range without(d.Routes, s.Routes) {
		if !strings.HasPrefix(r, "GET /") && !strings.HasPrefix(r, "POST /") || strings.Contains(r, "webhook") {
			t.Errorf("the tour mounts %q beyond the console's page", r)
		}
	}
}

func without(all, some []string) []string {
	var out []string
	for _, x := range all {
		if !slices.Contains(some, x) {
			out = append(out, x)
		}
	}
	return out
}
