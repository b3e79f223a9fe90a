package main

import (
	"context"
	"fmt"
)

// runDemo is the zero-config tour. This build does not contain it yet; say so plainly
// and point at what does work.
func runDemo(ctx context.Context, a *app, args []string) int {
	if code, ok := parse(a.flags("demo"), args); !ok {
		return code
	}
	fmt.Fprintln(a.stderr, "bot demo: the guided tour is not in this build yet.")
	fmt.Fprintln(a.stderr, "Available today: bot serve, bot replay, bot verify, bot export, bot version (see `bot help`).")
	return exitFailed
}
