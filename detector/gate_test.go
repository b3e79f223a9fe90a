package detector

import (
	"context"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// stageMover moves an incident along the pipeline's stages, as the other packages would.
func (h *harness) stageMover() *ledger.Ledger {
	h.t.Helper()
	l, err := ledger.New(ledger.Options{Store: h.store, Clock: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

func (h *harness) move(l *ledger.Ledger, incident string, evs ...ledger.Event) {
	h.t.Helper()
	for _, ev := range evs {
		e := ledger.Entry{Tenant: "acme", Incident: incident, Event: ev, Actor: ledger.Actor{Kind: ledger.ActorOrchestrator, ID: "pipeline"},
			Reason: "test", PolicyVersion: "policy-v7"}
		switch ev {
		case ledger.Propose:
			e.Actor, e.Action, e.Confidence = ledger.Actor{Kind: ledger.ActorAI, ID: "lens-a"}, "restart_workers", 0.8
		case ledger.Authorize:
			e.Actor, e.Approval = ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}, "ap:0123456789abcdefghijkl"
		case ledger.Reject:
			e.Actor = ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}
		}
		if _, err := l.Record(context.Background(), e); err != nil {
			h.t.Fatalf("move %s by %s: %v", incident, ev, err)
		}
	}
}

func (h *harness) stage(incident string) ledger.Stage {
	h.t.Helper()
	s, err := h.store.Stage(context.Background(), "acme", incident)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// shortWindow keeps these tests short: a 2 s window heals 2 buckets after the fault.
func shortWindow(o *Options) { o.Window = 2 * time.Second }

// feed pushes n buckets of constant latency and status from bucket *i on, evaluating
// after each.
func (h *harness) feed(d *Detector, i *int, n int, ms float64, code int) {
	h.t.Helper()
	for k := 0; k < n; k++ {
		lat, st := constant(40, ms, code)
		h.pushBucket("acme", "checkout", *i, lat, st)
		h.step(d, *i)
		*i++
	}
}

// TestRecoveryFollowsTheStage: when the service is healthy again the detector closes the
// incident according to where the pipeline has taken it.
func TestRecoveryFollowsTheStage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		path      []ledger.Event // how the pipeline moved the incident after DETECTED
		wantStage ledger.Stage   // after the service is healthy again
		wantEvent Kind           // "" for no event
	}{
		{"detected", nil, ledger.Recovered, Recovered},
		{"proposed", []ledger.Event{ledger.Propose}, ledger.Recovered, Recovered},
		{"validated", []ledger.Event{ledger.Propose, ledger.Validate}, ledger.Recovered, Recovered},
		{"expired", []ledger.Event{ledger.Propose, ledger.Validate, ledger.Expire}, ledger.Recovered, Recovered},
		{"webhook failed", []ledger.Event{ledger.Propose, ledger.Validate, ledger.Authorize, ledger.WebhookFail}, ledger.Recovered, Recovered},
		{"executed", []ledger.Event{ledger.Propose, ledger.Validate, ledger.Authorize, ledger.Execute}, ledger.Resolved, Resolved},
		{"authorized: execution in flight", []ledger.Event{ledger.Propose, ledger.Validate, ledger.Authorize}, ledger.Authorized, ""},
		{"rejected by an approver", []ledger.Event{ledger.Propose, ledger.Reject}, ledger.Rejected, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			d := h.replica("r1", defaultTenants(), shortWindow)
			i := 0
			h.feed(d, &i, 5, 80, 200)
			h.feed(d, &i, 2, 2500, 200)
			opened := h.events.of(Opened)
			if len(opened) != 1 {
				t.Fatalf("opened %d incidents", len(opened))
			}
			inc := opened[0].Incident
			h.move(h.stageMover(), inc, tt.path...)
			before := len(h.entries("acme"))
			h.feed(d, &i, 8, 80, 200)
			if got := h.stage(inc); got != tt.wantStage {
				t.Fatalf("stage %s, want %s", got, tt.wantStage)
			}
			closing := append(h.events.of(Recovered), h.events.of(Resolved)...)
			switch {
			case tt.wantEvent == "" && len(closing) != 0:
				t.Fatalf("closing events %s, want none", describe(closing))
			case tt.wantEvent != "" && (len(closing) != 1 || closing[0].Kind != tt.wantEvent || closing[0].Incident != inc):
				t.Fatalf("closing events %s, want one %s of %s", describe(closing), tt.wantEvent, inc)
			}
			added := len(h.entries("acme")) - before
			if want := map[bool]int{true: 0, false: 1}[tt.wantEvent == ""]; added != want {
				t.Fatalf("%d entries added while healthy, want %d", added, want)
			}
			switch tt.wantStage {
			case ledger.Authorized:
				// The action lands; the next healthy evaluation resolves.
				h.move(h.stageMover(), inc, ledger.Execute)
				h.feed(d, &i, 1, 80, 200)
				if got := h.stage(inc); got != ledger.Resolved || len(h.events.of(Resolved)) != 1 {
					t.Fatalf("after execution: stage %s, resolved events %d", got, len(h.events.of(Resolved)))
				}
			case ledger.Rejected:
				// Someone else closed it: the episode ends quietly and the next fault opens
				// a fresh incident.
				h.feed(d, &i, 2, 2500, 200)
				if n := len(h.events.of(Opened)); n != 2 {
					t.Fatalf("%d incidents after a new fault, want 2", n)
				}
			}
		})
	}
}

// TestClosedWhileStillFailing: an approver rejects the incident while the service is
// still failing. The detector does not reopen it every tick; it waits for the service to
// recover before a new episode can open.
func TestClosedWhileStillFailing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", defaultTenants(), shortWindow)
	i := 0
	h.feed(d, &i, 5, 80, 200)
	h.feed(d, &i, 2, 2500, 200)
	inc := h.events.of(Opened)[0].Incident
	h.move(h.stageMover(), inc, ledger.Propose, ledger.Reject)
	h.feed(d, &i, 10, 2500, 200)
	if n := len(h.entriesOf("acme", ledger.Detect)); n != 1 {
		t.Fatalf("%d DETECTED while the rejected fault goes on, want 1", n)
	}
	h.feed(d, &i, 5, 80, 200)
	h.feed(d, &i, 2, 2500, 200)
	if n := len(h.entriesOf("acme", ledger.Detect)); n != 2 {
		t.Fatalf("%d DETECTED after recovery and a new fault, want 2", n)
	}
}

// TestIncidentsPerHourLimit: the limit is per tenant, over a sliding hour, shared by
// replicas; a suppressed detection is reported once and opens as soon as there is room.
func TestIncidentsPerHourLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tenant := func(svc string) []Tenant {
		return []Tenant{{ID: "acme", PolicyVersion: "policy-v7", IncidentsPerHour: 1, Services: []Service{{Name: svc}}}}
	}
	// Two replicas, each watching one service of the same tenant.
	a := h.replica("replica-a", tenant("checkout"), shortWindow)
	b := h.replica("replica-b", tenant("payments"), shortWindow)
	ctx := context.Background()
	run := func(i int, ms float64) {
		for _, svc := range []string{"checkout", "payments"} {
			lat, st := constant(40, ms, 200)
			h.pushBucket("acme", svc, i, lat, st)
		}
		h.clock.Set(tick(i))
		for _, d := range []*Detector{a, b} {
			if _, err := d.Ingest(ctx); err != nil {
				t.Fatal(err)
			}
			if err := d.Evaluate(ctx, tick(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 3; i++ {
		run(i, 80)
	}
	for i := 3; i < 10; i++ {
		run(i, 2500)
	}
	detects := h.entriesOf("acme", ledger.Detect)
	if len(detects) != 1 || detects[0].Service != "checkout" {
		t.Fatalf("DETECTED %v, want only checkout", detects)
	}
	sup := h.events.of(Suppressed)
	if len(sup) != 1 || sup[0].Service != "payments" || sup[0].Incident != "" || sup[0].PolicyVersion != "policy-v7" {
		t.Fatalf("suppressed events %s, want one for payments", describe(sup))
	}
	if b.Stats().Suppressed != 1 || a.Stats().Suppressed != 0 {
		t.Fatalf("suppressed counters a %d b %d", a.Stats().Suppressed, b.Stats().Suppressed)
	}
	// An hour after checkout opened, payments (still failing) gets its incident.
	for i := 3661; i < 3663; i++ {
		run(i, 2500)
	}
	detects = h.entriesOf("acme", ledger.Detect)
	if len(detects) != 2 || detects[1].Service != "payments" {
		t.Fatalf("DETECTED after an hour: %v", detects)
	}
}

// TestSeverityBandUpdates: while an incident is open, a bad tick records nothing, except
// one update when the score crosses into another band.
func TestSeverityBandUpdates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", defaultTenants(), shortWindow)
	i := 0
	h.feed(d, &i, 25, 80, 200)
	h.feed(d, &i, 10, 1500, 200) // degraded: about 50/100
	if n := len(h.entries("acme")); n != 1 {
		t.Fatalf("%d entries during 10 s of a steady degraded fault, want the DETECTED alone", n)
	}
	if got := h.events.of(Opened)[0].Score; got < 40 || got >= 70 {
		t.Fatalf("opened at %v, want a degraded score", got)
	}
	lat, st := constant(40, 3000, 200)
	for k := 0; k < 10; k++ { // critical: 3 s and 10% errors
		for j := 0; j < 4; j++ {
			st[j] = 500
		}
		h.pushBucket("acme", "checkout", i, lat, st)
		h.step(d, i)
		i++
	}
	updates := h.entriesOf("acme", ledger.Update)
	if len(updates) != 1 || len(h.entries("acme")) != 2 {
		t.Fatalf("updates %v, want exactly one (now critical)", updates)
	}
	if ev := h.events.of(Updated); len(ev) != 1 || ev[0].Score >= 40 {
		t.Fatalf("updated events %s", describe(ev))
	}
}

// TestServiceAlreadyOpen: the service already has an open incident when the metrics go
// bad. The detector records its evidence on it instead of a second DETECTED. It closes
// the incident on recovery only if a gate opened it (a replica whose gate state was
// lost); one Alertmanager opened stays for Alertmanager to resolve.
func TestServiceAlreadyOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		source    Source
		wantStage ledger.Stage // after the metrics are healthy again
	}{
		{"opened by a gate whose state was lost", SourcePush, ledger.Recovered},
		{"opened by Alertmanager", SourceAlertmanager, ledger.Detected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			d := h.replica("r1", defaultTenants(), shortWindow)
			other, err := h.stageMover().Record(context.Background(), ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout",
				Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}, Reason: "opened elsewhere", PolicyVersion: "policy-v7", At: base,
				Data: map[string]string{"source": string(tt.source)}})
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			h.feed(d, &i, 5, 80, 200)
			h.feed(d, &i, 3, 2500, 200)
			if n := len(h.entriesOf("acme", ledger.Detect)); n != 1 {
				t.Fatalf("%d DETECTED, want the existing one only", n)
			}
			ups := h.entriesOf("acme", ledger.Update)
			if len(ups) != 1 || ups[0].Incident != other.Incident || ups[0].Data["source"] != "push" {
				t.Fatalf("updates %v, want one on %s with the detector's evidence", ups, other.Incident)
			}
			if ev := h.events.of(Updated); len(ev) != 1 || ev[0].Incident != other.Incident {
				t.Fatalf("events %s", describe(h.events.all()))
			}
			h.feed(d, &i, 6, 80, 200)
			if got := h.stage(other.Incident); got != tt.wantStage {
				t.Fatalf("incident is %s after the metrics recovered, want %s", got, tt.wantStage)
			}
			// Either way the episode is over: a new fault opens a new incident (once the
			// old one is closed) or updates the still open one; never a second open one.
			h.feed(d, &i, 3, 2500, 200)
			open, _ := h.store.OpenIncident(context.Background(), "acme", "checkout")
			if open == "" {
				t.Fatal("no open incident during the second fault")
			}
		})
	}
}

// TestSameWindowCountsOnce: evaluating the same window again (a retried tick, a second
// caller) is not a second consecutive evaluation.
func TestSameWindowCountsOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// The whole window decides (no FastWindow): this is about its two evaluations.
	d := h.replica("r1", defaultTenants(), wholeWindowOnly)
	i := 0
	h.feed(d, &i, 20, 80, 200)
	lat, st := constant(40, 2500, 200)
	h.pushBucket("acme", "checkout", i, lat, st)
	for k := 0; k < 5; k++ {
		h.step(d, i)
	}
	if n := len(h.events.of(Opened)); n != 0 {
		t.Fatalf("one bad window evaluated 5 times opened %d incidents", n)
	}
	i++
	h.pushBucket("acme", "checkout", i, lat, st)
	h.step(d, i)
	if n := len(h.events.of(Opened)); n != 1 {
		t.Fatalf("two bad windows opened %d incidents, want 1", n)
	}
}
