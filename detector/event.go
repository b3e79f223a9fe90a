package detector

import "time"

// Kind says what a decision did.
type Kind string

// Kinds of Event.
const (
	// Opened: a DETECTED entry opened Incident. The pipeline opens the chat thread.
	Opened Kind = "opened"
	// Updated: new evidence was recorded on the open Incident (a severity band crossed, a
	// repeated Alertmanager alert, or a detection that found the service already open).
	Updated Kind = "updated"
	// Recovered: the service got healthy before authorization; Incident is RECOVERED.
	Recovered Kind = "recovered"
	// Resolved: the service is healthy after the executed action; Incident is RESOLVED.
	Resolved Kind = "resolved"
	// Suppressed: a detection was not opened because the tenant reached its
	// incidents-per-hour limit. Incident is empty. Sent once per episode.
	Suppressed Kind = "suppressed"
)

// Event is one decision of the detector, delivered to Options.OnEvent after the ledger
// entry it describes is durable. Metric fields are zero for decisions on alerts (Alert).
type Event struct {
	Kind     Kind
	Source   Source
	Tenant   string
	Service  string
	Incident string
	At       time.Time
	// Score is the health score 0..100 of the window that caused the decision.
	Score float64
	// P95Ms is the window's p95 latency, ErrorRate its 5xx share (0..1).
	P95Ms     float64
	ErrorRate float64
	// BaselineP95Ms is the learned normal p95 (0: none learned yet).
	BaselineP95Ms float64
	// Trend is improving, stable or degrading over the last 10 scores.
	Trend      string
	SampleSize uint64
	// Reason is the one-line justification recorded in the ledger.
	Reason string
	// Note, when set, is what the incident's thread should be told, for the people in it:
	// which Alertmanager alerts joined the incident (Updated), or why an incident was
	// closed without being healthy again (Recovered: its alerts expired, or a new alert
	// superseded an incident whose approval had expired).
	Note          string
	PolicyVersion string
}
