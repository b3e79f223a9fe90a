package pagerduty

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzParse: any body either parses into an event that satisfies the documented rules, or
// is refused with ErrInvalid and a bounded list of problems.
func FuzzParse(f *testing.F) {
	f.Add([]byte(event(acmeKey, Trigger, "x", payload("p95 over 2 s"))))
	f.Add([]byte(event(acmeKey, Resolve, "x", nil)))
	f.Add([]byte(`{"routing_key":"k","event_action":"acknowledge","dedup_key":"\u0000"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info","custom_details":[1,{"a":null}]}} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
		if err != nil {
			var inv *InvalidError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &inv) || len(inv.Problems) == 0 {
				t.Fatalf("error %v", err)
			}
			for _, p := range inv.Problems {
				if utf8.RuneCountInString(p) > 300 {
					t.Fatalf("a problem of %d runes", utf8.RuneCountInString(p))
				}
			}
			return
		}
		switch ev.EventAction {
		case Trigger:
			if ev.Payload == nil || ev.Payload.Summary == "" || !severities[ev.Payload.Severity] || utf8.RuneCountInString(ev.Payload.Summary) > MaxSummary {
				t.Fatalf("accepted trigger %+v", ev.Payload)
			}
		case Acknowledge, Resolve:
			if ev.DedupKey == "" {
				t.Fatal("accepted a resolve without dedup_key")
			}
		default:
			t.Fatalf("accepted action %q", ev.EventAction)
		}
		if utf8.RuneCountInString(ev.DedupKey) > MaxDedupKey {
			t.Fatal("accepted a long dedup_key")
		}
	})
}
