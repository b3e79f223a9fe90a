package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/demo"
)

// runDemo is the zero-config tour (README, "The demo").
func runDemo(ctx context.Context, a *cli, args []string) int {
	if code, ok := parse(a.flags("demo"), args); !ok {
		return code
	}
	env, err := config.LoadEnv(a.lookup, config.Demo)
	if err != nil {
		return a.problems(err)
	}
	log := newLogger(env, a.stderr)
	d, err := demo.StartTour(ctx, env, demo.TourOptions{Logger: log, Lookup: a.lookup})
	if err != nil {
		fmt.Fprintln(a.stderr, "bot demo: "+strings.TrimPrefix(err.Error(), demo.ErrUsage.Error()+": "))
		if errors.Is(err, demo.ErrUsage) {
			return exitUsage
		}
		return exitFailed
	}
	defer d.Close()
	fmt.Fprintf(a.stdout, `AlertEngine demo — open %s

  1. Press "Simulate spike": the demo service (checkout) turns slow and starts failing.
  2. Within seconds the policy opens an incident: its card appears with the diagnosis.
  3. Ask in the thread ("what changed?", "why?"). Pick who you are under "You are" and
     press Approve: as vimbai (a viewer: refused), then as tendai (an approver). Both
     lenses suggest rollback, a high-risk action that needs two different approvers:
     tendai's press records 1 of 2, then press again as rudo (the second approver).
     The recovery webhook runs and clears the fault.
  4. When the service is healthy again the incident is RESOLVED: open "Replay & verify"
     for the hash-chained timeline and the auditor's export.

Ctrl-C stops the demo.
`, d.URL)
	if err := <-d.Done; err != nil {
		log.Error("stopped", "err", err)
		fmt.Fprintln(a.stderr, "bot demo: "+err.Error())
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}
