package simulate

import (
	"fmt"
	"io"

	"github.com/alertengine/alertengine/ledger/audit"
)

// PrintOptions say how `bot simulate` shows a Result: as JSON, or as text (only the
// summary with Summary); with Ledger, the simulated ledger's export written to that file.
type PrintOptions struct {
	JSON, Summary bool
	Ledger        string
}

// Print shows r on w as o says, after writing the ledger's export (atomically), and each
// broken expectation on notes. It reports whether every expectation held.
func (r *Result) Print(w, notes io.Writer, o PrintOptions) (bool, error) {
	if o.Ledger != "" {
		if err := audit.WriteFile(o.Ledger, r.WriteLedger); err != nil {
			return false, fmt.Errorf("--ledger: %w", err)
		}
	}
	var err error
	if o.JSON {
		err = r.WriteJSON(w)
	} else {
		err = r.WriteText(w, o.Summary)
	}
	if err != nil {
		return false, err
	}
	for _, b := range r.Broken {
		fmt.Fprintf(notes, "bot simulate: expectation broken: %s\n", b)
	}
	return len(r.Broken) == 0, nil
}
