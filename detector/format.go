package detector

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/alertengine/alertengine/ledger"
)

// openReason is the one line a DETECTED entry carries, e.g.
// "health 23/100 < 70 for 2 evaluations: p95 2.8 s (baseline 80 ms, ×35), errors 0.0%".
func openReason(ev evidence) string {
	if ev.obs.aheadSeconds > 0 {
		next := "the next second brings"
		if ev.obs.aheadSeconds > 1 {
			next = fmt.Sprintf("each of the next %d seconds brings", ev.obs.aheadSeconds)
		}
		return ledger.ClipText(fmt.Sprintf("health %s/100 < %s, and still under it even if %s %d fast successful requests: %s",
			fmtScore(ev.reading.Score), fmtScore(ev.tenant.MinScoreToAlert), next, ev.obs.ahead, measurements(ev)))
	}
	if ev.obs.decisive {
		return ledger.ClipText(fmt.Sprintf("health %s/100 < %s over the last %d requests: %s",
			fmtScore(ev.reading.Score), fmtScore(ev.tenant.MinScoreToAlert), ev.obs.n, measurements(ev)))
	}
	return ledger.ClipText(fmt.Sprintf("health %s/100 < %s for %d evaluations: %s",
		fmtScore(ev.reading.Score), fmtScore(ev.tenant.MinScoreToAlert), ev.streak, measurements(ev)))
}

// measurements describes a reading: p95 against the baseline, errors, sudden changes.
func measurements(ev evidence) string {
	r := ev.reading
	if r.Unreachable != "" {
		return r.Unreachable
	}
	var b strings.Builder
	b.WriteString("p95 ")
	b.WriteString(fmtMs(r.P95Ms))
	if ev.base.Samples > 0 && ev.base.P95Ms > 0 {
		fmt.Fprintf(&b, " (baseline %s, %s)", fmtMs(ev.base.P95Ms), fmtRatio(r.P95Ms/ev.base.P95Ms))
	} else {
		b.WriteString(" (no baseline yet)")
	}
	fmt.Fprintf(&b, ", errors %.1f%%", r.ErrorRate*100)
	if s := spikeText(r); s != "" {
		b.WriteString("; ")
		b.WriteString(s)
	}
	return b.String()
}

func spikeText(r *Reading) string {
	switch {
	case r.LatencySpike && r.ErrorSpike:
		return "sudden latency and error spike"
	case r.LatencySpike:
		return "sudden latency spike"
	case r.ErrorSpike:
		return "sudden error spike"
	}
	return ""
}

// fmtMs prints a latency: "80 ms" below a second, "2.8 s" above.
func fmtMs(ms float64) string {
	if ms < 999.5 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f s", ms/1000)
}

// fmtRatio prints how many times normal: "×35", "×1.4".
func fmtRatio(x float64) string {
	if x >= 9.95 {
		return fmt.Sprintf("×%.0f", x)
	}
	return fmt.Sprintf("×%.1f", x)
}

// fmtScore prints a score with its tenth only when it has one: "23", "69.6".
func fmtScore(s float64) string {
	return strconv.FormatFloat(math.Round(s*10)/10, 'f', -1, 64)
}
