package ledgertest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/alertengine/alertengine/ledger"
)

// Tampering is one way of damaging a JSONL export (entry lines, then the checkpoint
// line) that a verifier must catch, and the entry it must name.
type Tampering struct {
	Name  string
	Apply func(lines []string) ([]string, error)
	// Want is the position of the first bad entry the verifier must report.
	Want uint64
}

// Tamperings are the damages of an export of n entries around entry k (1 < k < n-5):
// a changed byte, a changed hash byte, a deleted entry, two swapped entries, a forged
// entry inserted with every later seq and hash recomputed, the last five entries cut,
// and the checkpoint removed.
func Tamperings(n, k int) []Tampering {
	return []Tampering{
		{"one byte changed", func(ls []string) ([]string, error) {
			i := strings.Index(ls[k-1], `"reason":"`) + len(`"reason":"`)
			b := []byte(ls[k-1])
			b[i] ^= 0x01
			ls[k-1] = string(b)
			return ls, nil
		}, uint64(k)},
		{"one byte of the hash changed", func(ls []string) ([]string, error) {
			i := strings.LastIndex(ls[k-1], `"hash":"`) + len(`"hash":"`)
			b := []byte(ls[k-1])
			if b[i] == '0' {
				b[i] = '1'
			} else {
				b[i] = '0'
			}
			ls[k-1] = string(b)
			return ls, nil
		}, uint64(k)},
		{"entry deleted", func(ls []string) ([]string, error) {
			return append(ls[:k-1:k-1], ls[k:]...), nil
		}, uint64(k)},
		{"k and k+1 swapped", func(ls []string) ([]string, error) {
			ls[k-1], ls[k] = ls[k], ls[k-1]
			return ls, nil
		}, uint64(k)},
		{"forged entry inserted, later hashes recomputed", func(ls []string) ([]string, error) {
			var forged ledger.Entry
			if err := json.Unmarshal([]byte(ls[k-1]), &forged); err != nil {
				return nil, err
			}
			forged.Reason = "approved by mallory"
			forged.Actor = ledger.Actor{Kind: ledger.ActorEngineer, ID: "mallory"}
			b, err := json.Marshal(forged)
			if err != nil {
				return nil, err
			}
			out := append([]string{}, ls[:k-1]...)
			out = append(out, string(b))
			out = append(out, ls[k-1:]...)
			return out, Rechain(out, k-1)
		}, uint64(k)},
		{"last 5 entries truncated", func(ls []string) ([]string, error) {
			cp := ls[len(ls)-1]
			return append(ls[:n-5:n-5], cp), nil
		}, uint64(n - 4)},
		{"checkpoint removed", func(ls []string) ([]string, error) { return ls[:n], nil }, uint64(n + 1)},
	}
}

// Rechain recomputes seq, prev_hash and hash of every entry line from index from on (the
// last line, the checkpoint, is left alone), as a forger who wants a self-consistent chain
// would.
func Rechain(ls []string, from int) error {
	prev := ledger.GenesisHash
	if from > 0 {
		var e ledger.Entry
		if err := json.Unmarshal([]byte(ls[from-1]), &e); err != nil {
			return err
		}
		prev = e.Hash
	}
	for j := from; j < len(ls)-1; j++ {
		var e ledger.Entry
		if err := json.Unmarshal([]byte(ls[j]), &e); err != nil {
			return fmt.Errorf("line %d: %w", j+1, err)
		}
		e.Seq = uint64(j + 1)
		e.PrevHash = prev
		h, err := e.ComputeHash()
		if err != nil {
			return err
		}
		e.Hash = h
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		ls[j] = string(b)
		prev = h
	}
	return nil
}
