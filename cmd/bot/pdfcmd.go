package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/auditpdf"
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
	in, hist, err := incidentOf(ctx, store, tenant, incident)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	b, err := ledger.BuildBundle(ctx, store, ls, tenant, incident, nil)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	raw, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	raw = append(raw, '\n')
	v, err := ledger.ParseVerifier(ls.Verifier)
	var cp *ledger.NoteCheckpoint
	if err == nil {
		cp, err = ledger.OpenCheckpointNote([]byte(b.Checkpoint), nil, v)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	bundlePath := strings.TrimSuffix(out, ".pdf") + ".bundle.json"
	if err := writeFileAtomic(bundlePath, func(w io.Writer) error { _, err := w.Write(raw); return err }); err != nil {
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	var res auditpdf.Result
	err = writeFileAtomic(out, func(w io.Writer) error {
		var buf bytes.Buffer
		var err error
		res, err = auditpdf.Render(&buf, auditpdf.Input{Incident: in, Entries: hist, Checkpoint: cp, Bundle: raw,
			BundleName: filepath.Base(bundlePath), Verifier: ls.Verifier, Generated: time.Now()})
		if err == nil {
			_, err = w.Write(buf.Bytes())
		}
		return err
	})
	if err != nil {
		os.Remove(bundlePath)
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(a.stderr, "wrote %s (%d page(s)) and %s\n", out, res.Pages, bundlePath)
	if res.Unrenderable > 0 {
		fmt.Fprintf(a.stderr, "%d characters (emoji or scripts the PDF fonts lack) are shown as \"?\"; the bundle keeps them exactly\n", res.Unrenderable)
	}
	return exitOK
}
