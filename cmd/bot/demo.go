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
	fmt.Fprintf(a.stdout, demo.Intro, d.URL)
	if err := <-d.Done; err != nil {
		log.Error("stopped", "err", err)
		fmt.Fprintln(a.stderr, "bot demo: "+err.Error())
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}
