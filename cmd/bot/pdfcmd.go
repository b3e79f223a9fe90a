package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger/audit"
)

// exportPDF is `bot export --format pdf --out FILE.pdf`: the one-page PDF, and beside it
// the incident bundle it tells the auditor to verify (FILE.bundle.json).
func (a *cli) exportPDF(ctx context.Context, env config.Env, tenant, incident, out string) int {
	if out == "" || !strings.HasSuffix(out, ".pdf") {
		fmt.Fprintln(a.stderr, "--out FILE.pdf: required with --format pdf (the incident bundle is written beside it)")
		return exitUsage
	}
	ls, ok := a.logSigner(env)
	if !ok {
		return exitUsage
	}
	store, closeFn, code, ok := a.openStore(ctx, env)
	if !ok {
		return code
	}
	defer closeFn()
	res, err := audit.ExportPDF(ctx, store, ls, tenant, incident, out, time.Now())
	if err != nil {
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(a.stderr, "wrote %s (%d page(s)) and %s\n", out, res.Pages, res.BundlePath)
	if res.Unrenderable > 0 {
		fmt.Fprintf(a.stderr, "%d characters (emoji or scripts the PDF fonts lack) are shown as \"?\"; the bundle keeps them exactly\n", res.Unrenderable)
	}
	return exitOK
}
