// Package auditpdf renders the auditor's one-page PDF of an incident: who approved what,
// when, under which policy, what they saw, the execution and its result, and how to
// verify it offline (the signed checkpoint note, the bundle's hash, the commands).
//
// Text is set in Liberation Sans and Liberation Mono (embedded), which cover Latin, Greek
// and Cyrillic. A character the fonts lack (emoji, CJK, Arabic, …) is drawn as "?" and the
// page says how many there were: the incident bundle keeps the exact text.
package auditpdf

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"codeberg.org/go-fonts/liberation/liberationmonoregular"
	"codeberg.org/go-fonts/liberation/liberationsansbold"
	"codeberg.org/go-fonts/liberation/liberationsansregular"
	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/sfnt"

	"github.com/alertengine/alertengine/ledger"
)

// Input is what the page shows.
type Input struct {
	Incident ledger.Incident
	Entries  []ledger.Entry
	// Checkpoint is the signed note the bundle proves the entries against.
	Checkpoint *ledger.NoteCheckpoint
	// Bundle is the incident bundle's bytes (its SHA-256 is printed); BundleName its file.
	Bundle     []byte
	BundleName string
	Verifier   string // the ledger key's verifier string
	Generated  time.Time
}

// Result says how the page came out.
type Result struct {
	Pages int
	// Unrenderable counts the characters drawn as "?" because the fonts lack them.
	Unrenderable int
}

type page struct {
	f       *fpdf.Fpdf
	sans    *sfnt.Font
	mono    *sfnt.Font
	buf     sfnt.Buffer
	missing int
}

// clean returns s with every character the font lacks replaced by "?".
func (p *page) clean(s string, font *sfnt.Font) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\t' {
			b.WriteRune(' ')
			continue
		}
		if g, err := font.GlyphIndex(&p.buf, r); err != nil || g == 0 {
			if r >= 0xFE00 && r <= 0xFE0F || r == 0x200D { // variation selectors, joiners: drop
				continue
			}
			p.missing++
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Render writes the PDF of in to w.
func Render(w io.Writer, in Input) (Result, error) {
	sans, err := sfnt.Parse(liberationsansregular.TTF)
	if err != nil {
		return Result{}, fmt.Errorf("font: %w", err)
	}
	mono, err := sfnt.Parse(liberationmonoregular.TTF)
	if err != nil {
		return Result{}, fmt.Errorf("font: %w", err)
	}
	f := fpdf.New("P", "mm", "A4", "")
	f.SetMargins(14, 12, 14)
	f.SetAutoPageBreak(true, 12)
	f.AddUTF8FontFromBytes("sans", "", liberationsansregular.TTF)
	f.AddUTF8FontFromBytes("sans", "B", liberationsansbold.TTF)
	f.AddUTF8FontFromBytes("mono", "", liberationmonoregular.TTF)
	f.SetCreator("AlertEngine", true)
	f.SetTitle("Incident "+in.Incident.ID, true)
	f.SetCreationDate(in.Generated)
	f.SetModificationDate(in.Generated)
	f.AddPage()
	p := &page{f: f, sans: sans, mono: mono}
	t := func(s string) string { return p.clean(s, p.sans) }
	const lh = 4.6
	width, _ := f.GetPageSize()
	width -= 28

	inc := in.Incident
	f.SetFont("sans", "B", 15)
	f.CellFormat(0, 8, t(fmt.Sprintf("Incident %s — %s", inc.ID, inc.Service)), "", 1, "L", false, 0, "")
	f.SetFont("sans", "", 8.5)
	f.SetTextColor(90, 90, 90)
	f.CellFormat(0, lh, t(fmt.Sprintf("Tenant %s · auditor's one-page report generated %s UTC", inc.Tenant, in.Generated.UTC().Format("2006-01-02 15:04"))), "", 1, "L", false, 0, "")
	f.SetTextColor(0, 0, 0)
	f.Ln(2)

	heading := func(s string) {
		f.Ln(1.5)
		f.SetFont("sans", "B", 10.5)
		f.SetFillColor(235, 239, 245)
		f.CellFormat(0, 6, t(s), "", 1, "L", true, 0, "")
		f.SetFont("sans", "", 8.5)
		f.Ln(0.8)
	}
	kv := func(k, v string) {
		f.SetFont("sans", "B", 8.5)
		f.CellFormat(34, lh, t(k), "", 0, "L", false, 0, "")
		f.SetFont("sans", "", 8.5)
		f.MultiCell(0, lh, t(v), "", "L", false)
	}

	heading("Summary")
	kv("Outcome", string(inc.Stage))
	kv("Opened", inc.OpenedAt.UTC().Format(time.RFC3339)+"   last change "+inc.UpdatedAt.UTC().Format(time.RFC3339))
	kv("Why detected", short(inc.Reason, 220))
	if inc.Action != "" {
		kv("Action", inc.Action)
	}
	kv("Policy version", inc.PolicyVersion)

	heading("Who approved what, and when")
	var decisions, saw, exec []ledger.Entry
	for _, e := range in.Entries {
		switch e.Event {
		case ledger.Authorize, ledger.PartialApprove, ledger.Reject, ledger.Redrive, ledger.Reissue, ledger.RefusedPress:
			decisions = append(decisions, e)
		case ledger.Propose, ledger.Diagnosis, ledger.Validate:
			saw = append(saw, e)
		case ledger.Execute, ledger.WebhookFail, ledger.Resolve, ledger.Recover, ledger.Expire:
			exec = append(exec, e)
		}
	}
	if len(decisions) == 0 {
		f.CellFormat(0, lh, "No human decision was recorded.", "", 1, "L", false, 0, "")
	} else {
		cols := []float64{32, 36, 20, 40, 30, width - 158}
		hdr := []string{"when (UTC)", "who", "channel", "decision", "policy", "saw (evidence hash)"}
		f.SetFont("sans", "B", 8)
		for i, h := range hdr {
			f.CellFormat(cols[i], lh+0.6, h, "B", 0, "L", false, 0, "")
		}
		f.Ln(-1)
		f.SetFont("sans", "", 8)
		for _, e := range decisions {
			ev := string(e.Event)
			if e.Action != "" {
				ev += " " + e.Action
			}
			row := []string{e.At.UTC().Format("2006-01-02 15:04:05"), short(e.Actor.ID, 24), e.Actor.Channel, short(ev, 28), short(e.PolicyVersion, 20), short(e.Evidence, 20)}
			for i, c := range row {
				f.CellFormat(cols[i], lh, t(c), "", 0, "L", false, 0, "")
			}
			f.Ln(-1)
		}
	}

	heading("What they saw")
	if len(saw) == 0 {
		f.CellFormat(0, lh, "No diagnosis or proposal was recorded.", "", 1, "L", false, 0, "")
	}
	for _, e := range saw {
		conf := ""
		if e.Confidence > 0 {
			conf = fmt.Sprintf(" (confidence %.0f%%)", e.Confidence*100)
		}
		f.MultiCell(0, lh, t(fmt.Sprintf("%s · %s by %s%s: %s", e.At.UTC().Format("15:04:05"), e.Event, e.Actor.ID, conf, short(e.Reason, 260))), "", "L", false)
		for _, k := range []string{"commits", "commit", "chart"} {
			if v := e.Data[k]; v != "" {
				f.MultiCell(0, lh, t("    "+k+": "+short(v, 200)), "", "L", false)
			}
		}
	}

	heading("Execution and result")
	if len(exec) == 0 {
		f.CellFormat(0, lh, "Nothing was executed.", "", 1, "L", false, 0, "")
	}
	for _, e := range exec {
		f.MultiCell(0, lh, t(fmt.Sprintf("%s · %s → %s by %s: %s", e.At.UTC().Format("2006-01-02 15:04:05"), e.Event, e.To, e.Actor.ID, short(e.Reason, 220))), "", "L", false)
	}

	heading(fmt.Sprintf("Timeline (%d entries)", len(in.Entries)))
	const maxLines = 14
	f.SetFont("sans", "", 7.5)
	for i, e := range in.Entries {
		if i == maxLines-1 && len(in.Entries) > maxLines {
			f.CellFormat(0, lh-0.6, fmt.Sprintf("… %d more entries: the bundle holds them all", len(in.Entries)-i), "", 1, "L", false, 0, "")
			break
		}
		f.CellFormat(0, lh-0.6, t(fmt.Sprintf("#%d  %s  %s → %s  %s  %s:%s  %s", e.Seq, e.At.UTC().Format("01-02 15:04:05"),
			stageName(e.From), e.To, e.Event, e.Actor.Kind, short(e.Actor.ID, 20), short(e.Reason, 70))), "", 1, "L", false, 0, "")
	}

	heading("How to verify")
	f.SetFont("sans", "", 8.5)
	if cp := in.Checkpoint; cp != nil {
		kv("Checkpoint", fmt.Sprintf("%s — %d entries, root %s", cp.Origin, cp.Tree.N, base64.StdEncoding.EncodeToString(cp.Tree.Hash[:])))
	}
	sum := sha256.Sum256(in.Bundle)
	kv("Bundle SHA-256", hex.EncodeToString(sum[:]))
	kv("Ledger key", in.Verifier)
	f.Ln(0.5)
	f.SetFont("mono", "", 7.5)
	f.SetFillColor(245, 245, 245)
	name := in.BundleName
	if name == "" {
		name = inc.ID + ".bundle.json"
	}
	for _, line := range []string{
		"sha256sum " + name,
		"bot verify --bundle " + name + " --key '" + in.Verifier + "'",
	} {
		f.MultiCell(0, lh-0.4, p.clean(line, p.mono), "", "L", true)
	}
	f.SetFont("sans", "", 7.5)
	f.MultiCell(0, lh-0.6, "The bundle holds every entry above in full with its Merkle inclusion proof (RFC 9162) against the signed checkpoint; the verifier re-derives each entry's hash from its content. Add --witness KEY to require a witness's cosignature.", "", "L", false)
	if p.missing > 0 {
		f.SetTextColor(160, 0, 0)
		f.MultiCell(0, lh-0.6, fmt.Sprintf("%d characters (emoji or scripts beyond Latin, Greek and Cyrillic) cannot be drawn with this PDF's fonts and are shown as \"?\"; the bundle keeps the exact text.", p.missing), "", "L", false)
		f.SetTextColor(0, 0, 0)
	}
	if err := f.Output(w); err != nil {
		return Result{}, fmt.Errorf("render pdf: %w", err)
	}
	return Result{Pages: f.PageCount(), Unrenderable: p.missing}, nil
}

func stageName(s ledger.Stage) string {
	if s == ledger.None {
		return "—"
	}
	return string(s)
}
