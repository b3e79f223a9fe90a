// Command bot is AlertEngine: the incident bot (serve), its zero-config tour (demo), and
// the auditor's and operator's tools (replay, verify, export). It only parses flags,
// reads the environment and the config file, hands them to the packages (bot/app builds
// and runs the bot) and prints what they return.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}
