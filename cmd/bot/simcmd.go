package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/simulate"
)

// runSimulate is `bot simulate SCENARIO.yaml [--seed N] [--json] [--ledger OUT.jsonl]`,
// the governance simulation on a virtual clock (README, "Governance simulation"): it
// parses the scenario, runs it and prints what happened.
func runSimulate(ctx context.Context, a *cli, args []string) int {
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
	jsonOut := fs.Bool("json", false, "print the result as JSON (timeline, summary, expectations)")
	ledgerOut := fs.String("ledger", "", "write the simulated ledger export (JSONL + signed checkpoint) to `FILE`; `bot verify --file` checks it")
	summaryOnly := fs.Bool("summary", false, "print only the summary, not the timeline")
	// The scenario may come before or after the flags.
	var path string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		path, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err)
	}
	rest := fs.Args()
	if path == "" && len(rest) > 0 {
		path, rest = rest[0], rest[1:]
		if err := fs.Parse(rest); err != nil {
			return flagError(fs, err)
		}
		rest = fs.Args()
	}
	builtins := "built-in scenarios (give the name instead of a file): " + strings.Join(simulate.Builtins(), ", ")
	if path == "" || len(rest) > 0 {
		fmt.Fprintln(a.stderr, "usage: bot simulate SCENARIO.yaml [--seed N] [--json] [--summary] [--ledger OUT.jsonl]")
		fmt.Fprintln(a.stderr, builtins)
		return exitUsage
	}
	sc, err := simulate.Open(path)
	switch {
	case errors.Is(err, simulate.ErrNoScenario):
		fmt.Fprintf(a.stderr, "bot simulate: %v\n%s\n", err, builtins)
		return exitUsage
	case errors.Is(err, config.ErrInvalid):
		return a.problems(err)
	case err != nil:
		fmt.Fprintf(a.stderr, "bot simulate: %v\n", err)
		return exitFailed
	}
	res, err := simulate.Run(ctx, sc, simulate.Options{Seed: seed})
	if err != nil {
		fmt.Fprintf(a.stderr, "bot simulate: %v\n", err)
		return exitFailed
	}
	if *ledgerOut != "" {
		if err := writeFileAtomic(*ledgerOut, res.WriteLedger); err != nil {
			fmt.Fprintf(a.stderr, "bot simulate: --ledger: %v\n", err)
			return exitFailed
		}
	}
	if *jsonOut {
		err = res.WriteJSON(a.stdout)
	} else {
		err = res.WriteText(a.stdout, *summaryOnly)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "bot simulate: %v\n", err)
		return exitFailed
	}
	if len(res.Broken) > 0 {
		for _, b := range res.Broken {
			fmt.Fprintf(a.stderr, "bot simulate: expectation broken: %s\n", b)
		}
		return exitFailed
	}
	return exitOK
}
