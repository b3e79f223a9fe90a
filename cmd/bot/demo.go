package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/alertengine/alertengine/bot/demo"
)

// runDemo is the zero-config tour (README, "The demo").
func runDemo(ctx context.Context, a *cli, args []string) error {
	if err := a.parse(a.flags("demo"), args); err != nil {
		return err
	}
	env, err := a.toolEnv()
	if err != nil {
		return err
	}
	log := newLogger(env, a.stderr)
	d, err := demo.StartTour(ctx, env, demo.TourOptions{Logger: log, Lookup: a.lookup})
	if errors.Is(err, demo.ErrUsage) {
		return usagef("bot demo: %s", strings.TrimPrefix(err.Error(), demo.ErrUsage.Error()+": "))
	} else if err != nil {
		return failedf("bot demo: %v", err)
	}
	defer d.Close()
	fmt.Fprintf(a.stdout, demo.Intro, d.URL)
	if err := <-d.Done; err != nil {
		log.Error("stopped", "err", err)
		return failedf("bot demo: %v", err)
	}
	log.Info("stopped")
	return nil
}
