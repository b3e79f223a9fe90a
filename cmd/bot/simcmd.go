package main

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/simulate"
)

// runSimulate is `bot simulate SCENARIO.yaml [--seed N] [--json] [--ledger OUT.jsonl]`,
// the governance simulation on a virtual clock (README, "Governance simulation"): it
// parses the scenario, runs it and prints what happened.
func runSimulate(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("simulate")
	var seed *uint64
	fs.Func("seed", "seed `N` replacing the scenario's (what it drives: people's reply jitter, noise, backoff jitter, references)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("want a whole number")
		}
		seed = &n
		return nil
	})
	var o simulate.PrintOptions
	fs.BoolVar(&o.JSON, "json", false, "print the result as JSON (timeline, summary, expectations)")
	fs.StringVar(&o.Ledger, "ledger", "", "write the simulated ledger export (JSONL + signed checkpoint) to `FILE`; `bot verify --file` checks it")
	fs.BoolVar(&o.Summary, "summary", false, "print only the summary, not the timeline")
	path, err := a.leading(fs, args)
	if err != nil {
		return err
	}
	builtins := "built-in scenarios (give the name instead of a file): " + strings.Join(simulate.Builtins(), ", ")
	if path == "" || fs.NArg() > 0 {
		return usagef("usage: bot simulate SCENARIO.yaml [--seed N] [--json] [--summary] [--ledger OUT.jsonl]\n%s", builtins)
	}
	sc, err := simulate.Open(path)
	switch {
	case errors.Is(err, simulate.ErrNoScenario):
		return usagef("bot simulate: %v\n%s", err, builtins)
	case errors.Is(err, config.ErrInvalid):
		return usage(err)
	case err != nil:
		return err
	}
	res, err := simulate.Run(ctx, sc, simulate.Options{Seed: seed})
	if err != nil {
		return err
	}
	held, err := res.Print(a.stdout, a.stderr, o)
	if err == nil && !held {
		return &exitError{code: exitFailed}
	}
	return err
}
