package ledger

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// ExportJSONL writes a tenant's whole chain, one stored entry per line, then a signed
// checkpoint line {"checkpoint":{…}} covering every line. The chain is exported whole (not
// only one incident's entries) because a hash chain proves integrity only when it is
// contiguous; the Markdown report is the per-incident view. The checkpoint is also saved.
func ExportJSONL(ctx context.Context, s Store, tenant string, key ed25519.PrivateKey, now time.Time, w io.Writer) (Report, error) {
	bw := bufio.NewWriterSize(w, 256*1024)
	c := NewChain(tenant)
	c.keep = true
	c.trusted = key.Public().(ed25519.PublicKey)
	for from := uint64(1); ; {
		page, err := s.Range(ctx, tenant, from, 10000)
		if err != nil {
			return Report{}, fmt.Errorf("read entries from %d: %w", from, err)
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			if err := c.Next(&page[i]); err != nil {
				return Report{}, fmt.Errorf("refusing to export a broken chain: %w", err)
			}
			b, err := json.Marshal(page[i])
			if err != nil {
				return Report{}, err
			}
			bw.Write(b)
			bw.WriteByte('\n')
		}
		from = page[len(page)-1].Seq + 1
	}
	cp := SignCheckpoint(key, tenant, c.last, c.prev, now, c.hashes)
	b, err := json.Marshal(exportTrailer{Checkpoint: &cp})
	if err != nil {
		return Report{}, err
	}
	bw.Write(b)
	bw.WriteByte('\n')
	if err := bw.Flush(); err != nil {
		return Report{}, fmt.Errorf("write export: %w", err)
	}
	cp.Hashes = ""
	stored := SignCheckpoint(key, tenant, c.last, c.prev, now, nil)
	if err := s.SaveCheckpoint(ctx, stored); err != nil {
		return Report{}, err
	}
	rep := c.report(&cp)
	rep.Pinned = true
	return rep, nil
}

// Timeline renders an incident's entries as the lines `bot replay` prints: stage, time,
// actor, reason, confidence, policy version.
// A partial approval voided by the approval of another option says so.
func Timeline(entries []Entry) []string {
	out := make([]string, 0, len(entries))
	voided := voidedBySeq(entries)
	for _, e := range entries {
		var stage string
		if e.From == e.To {
			stage = "·" + string(e.Event)
		} else {
			stage = stageName(e.From) + " → " + string(e.To)
		}
		actor := string(e.Actor.Kind) + ":" + e.Actor.ID
		if e.Actor.Channel != "" {
			actor += " via " + e.Actor.Channel
		}
		reason := oneLine(e.Reason)
		if p, ok := voided[e.Seq]; ok {
			reason += fmt.Sprintf(" [VOIDED: %s approved %s instead]", p.VoidedBy, p.VoidedFor)
		}
		line := fmt.Sprintf("#%d  %s  %-28s  %-24s  %s", e.Seq, e.At.UTC().Format(time.RFC3339), stage, actor, reason)
		if e.Confidence > 0 {
			line += fmt.Sprintf("  (confidence %.0f%%)", e.Confidence*100)
		}
		if e.PolicyVersion != "" {
			line += "  [policy " + e.PolicyVersion + "]"
		}
		out = append(out, line)
	}
	return out
}

// voidedBySeq finds the partial approvals of an incident's entries that the approval of
// another option voided, by the sequence number of their entry.
func voidedBySeq(entries []Entry) map[uint64]PartialApproval {
	var out map[uint64]PartialApproval
	byIncident := map[string][]Entry{}
	for _, e := range entries {
		byIncident[e.Incident] = append(byIncident[e.Incident], e)
	}
	for _, es := range byIncident {
		// A chain that does not fold is reported by verify; here it is folded as far as it goes.
		var in Incident
		for i := range es {
			if in.apply(&es[i]) != nil {
				break
			}
		}
		for _, p := range in.Voided() {
			if out == nil {
				out = map[uint64]PartialApproval{}
			}
			out[p.Seq] = p
		}
	}
	return out
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "…"
	}
	return s
}

// mdEscape keeps user-provided text from breaking the Markdown table or becoming HTML:
// Markdown's own backslash escapes, so the raw report reads "<" where the text had one
// (an HTML entity would print "&lt;" in a plain-text viewer).
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "`", "'", "<", `\<`, ">", `\>`)
	return r.Replace(oneLine(s))
}

// WriteReport writes the one-page Markdown report of an incident: what happened, who
// approved what and when under which policy version, what they saw (evidence hash), and
// the verification of the chain that holds it.
func WriteReport(w io.Writer, in Incident, entries []Entry, rep Report, verr error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Incident %s — %s (%s)\n\n", in.ID, mdEscape(in.Service), in.Tenant)
	fmt.Fprintf(&b, "- **Stage:** %s\n- **Opened:** %s\n- **Last change:** %s\n- **Why detected:** %s\n",
		in.Stage, in.OpenedAt.UTC().Format(time.RFC3339), in.UpdatedAt.UTC().Format(time.RFC3339), mdEscape(in.Reason))
	if in.Action != "" {
		fmt.Fprintf(&b, "- **Action:** %s\n", mdEscape(in.Action))
	}
	if len(in.ApprovedBy) > 0 {
		fmt.Fprintf(&b, "- **Approved by:** %s\n", mdEscape(strings.Join(in.ApprovedBy, ", ")))
	}
	for _, p := range in.Voided() {
		fmt.Fprintf(&b, "- **Voided:** %s\n", mdEscape(p.Describe()))
	}
	fmt.Fprintf(&b, "- **Policy version:** %s\n\n", in.PolicyVersion)

	b.WriteString("## Decisions\n\n")
	var decisions []Entry
	for _, e := range entries {
		switch e.Event {
		case Authorize, PartialApprove, Reject, Redrive, Reissue, RefusedPress:
			decisions = append(decisions, e)
		}
	}
	if len(decisions) == 0 {
		b.WriteString("No human decision was recorded.\n\n")
	} else {
		voided := voidedBySeq(entries)
		b.WriteString("| when (UTC) | who | channel | decision | action | policy | evidence (what they saw) |\n|---|---|---|---|---|---|---|\n")
		for _, e := range decisions {
			decision := string(e.Event)
			if p, ok := voided[e.Seq]; ok {
				decision += " (VOIDED: " + mdEscape(p.VoidedBy) + " approved " + mdEscape(p.VoidedFor) + " instead)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | `%s` |\n", e.At.UTC().Format(time.RFC3339), mdEscape(e.Actor.ID), mdEscape(e.Actor.Channel),
				decision, mdEscape(e.Action), e.PolicyVersion, short(e.Evidence))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Timeline\n\n| # | when (UTC) | stage | event | actor | reason | confidence | policy |\n|---|---|---|---|---|---|---|---|\n")
	for _, e := range entries {
		conf := ""
		if e.Confidence > 0 {
			conf = fmt.Sprintf("%.0f%%", e.Confidence*100)
		}
		fmt.Fprintf(&b, "| %d | %s | %s → %s | %s | %s:%s | %s | %s | %s |\n", e.Seq, e.At.UTC().Format(time.RFC3339),
			stageName(e.From), e.To, e.Event, e.Actor.Kind, mdEscape(e.Actor.ID), mdEscape(e.Reason), conf, e.PolicyVersion)
	}

	b.WriteString("\n## Integrity\n\n")
	if verr != nil {
		fmt.Fprintf(&b, "**The chain does NOT verify:** %s\n", mdEscape(verr.Error()))
	} else {
		fmt.Fprintf(&b, "The tenant's chain verifies: %d entries, tail `%s`.\n", rep.Entries, short(rep.TailHash))
		for _, m := range rep.Losses {
			fmt.Fprintf(&b, "%s\n", m.Describe())
		}
		if rep.Checkpoint != nil {
			fmt.Fprintf(&b, "Signed checkpoint: %d entries at %s, key `%s`.\n", rep.Checkpoint.Size, rep.Checkpoint.At.UTC().Format(time.RFC3339), rep.Checkpoint.PublicKey)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
