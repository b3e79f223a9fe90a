package council

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Category is the kind of cause a diagnosis names.
type Category string

// The categories a diagnosis may name; anything else is refused.
const (
	Database           Category = "database"
	Dependency         Category = "dependency"
	DeployRegression   Category = "deploy_regression"
	ResourceExhaustion Category = "resource_exhaustion"
	TrafficSurge       Category = "traffic_surge"
	Configuration      Category = "configuration"
	Unknown            Category = "unknown"
)

// Categories lists every category, in a fixed order (the LLM's schema enum).
func Categories() []Category {
	return []Category{Database, Dependency, DeployRegression, ResourceExhaustion, TrafficSurge, Configuration, Unknown}
}

// Known reports whether c is one of Categories.
func (c Category) Known() bool {
	for _, k := range Categories() {
		if k == c {
			return true
		}
	}
	return false
}

// NoAction is the suggested_action of a diagnosis that recommends none of the tenant's
// actions.
const NoAction = "none"

// Reading is one of the detector's recent evaluations of the service.
type Reading struct {
	At        time.Time
	Score     float64
	P95Ms     float64
	ErrorRate float64 // 5xx share, 0..1
	Requests  uint64  // requests in the evaluated window (traffic)
}

// Commit is a change correlated with the incident.
type Commit struct {
	SHA       string
	Message   string
	Author    string
	At        time.Time
	Additions int
	Deletions int
	// Risky says why the commit is suspect ("touched database/query files"); "" if not.
	Risky string
}

// Deploy is a deployment correlated with the incident.
type Deploy struct {
	At          time.Time
	Environment string
	SHA         string
	State       string // success, failure, …
}

// Turn is one message of the incident's thread: a person's question or the bot's answer.
type Turn struct {
	// Role is "user" for a person and "assistant" for the bot.
	Role string
	// Who names the person (or the bot's lens) who wrote Text.
	Who  string
	Text string
	At   time.Time
}

// Action is one of the tenant's recovery actions: the only names a diagnosis may suggest.
type Action struct {
	Name     string
	HighRisk bool
}

// Snapshot is everything a lens reasons from: the detection and its numbers, the recent
// readings and the learned baseline, the correlated commits and deploys, the thread so
// far, and the tenant's actions. Text in it (reasons, commit messages, thread turns)
// comes from outside and is data, never instructions.
type Snapshot struct {
	Tenant   string
	Service  string
	Incident string
	// Reason is the detector's one-line justification (for Alertmanager incidents, the
	// alert's own text).
	Reason string
	At     time.Time
	// The detection's numbers: health score 0..100, p95 latency, 5xx share, trend.
	Score     float64
	P95Ms     float64
	ErrorRate float64
	Trend     string
	// BaselineP95Ms is the learned normal p95 (0: none learned).
	BaselineP95Ms float64
	// Requests is the traffic of the detection's window; BaselineRequests the normal
	// traffic of a window of the same length (0: unknown).
	Requests         float64
	BaselineRequests float64
	// Statuses5xx counts the window's 5xx answers by status code when known (500, 502,
	// 503, 504); empty when the source reports only a 5xx share.
	Statuses5xx map[int]uint64
	// Readings are the detector's recent evaluations, oldest first.
	Readings []Reading
	Commits  []Commit
	Deploys  []Deploy
	Thread   []Turn
	// Actions are the tenant's actions; DefaultAction is the policy's choice.
	Actions       []Action
	DefaultAction string
	// Hints are words from the tenant's configuration that tell a database-backed
	// service from one that is not ("database" when its risky paths name migrations,
	// SQL or queries).
	Hints []string
}

// Bounds of what a snapshot carries into a prompt.
const (
	MaxReadings = 30
	MaxCommits  = 10
	MaxDeploys  = 5
	MaxTurns    = 10
	maxText     = 500
)

// ErrBadSnapshot is the cause of every refused snapshot.
var ErrBadSnapshot = errors.New("bad snapshot")

// Validate checks that the snapshot can be diagnosed.
func (s Snapshot) Validate() error {
	switch {
	case s.Service == "":
		return fmt.Errorf("%w: no service", ErrBadSnapshot)
	case len(s.Actions) == 0:
		return fmt.Errorf("%w: the tenant has no actions", ErrBadSnapshot)
	}
	for _, v := range []float64{s.Score, s.P95Ms, s.ErrorRate, s.BaselineP95Ms, s.Requests, s.BaselineRequests} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("%w: number %v", ErrBadSnapshot, v)
		}
	}
	return nil
}

// Bounded returns the snapshot cut to the bounds above: the newest readings, commits,
// deploys and turns, and texts of at most 500 characters.
func (s Snapshot) Bounded() Snapshot {
	s.Reason = clip(s.Reason, maxText)
	if len(s.Readings) > MaxReadings {
		s.Readings = s.Readings[len(s.Readings)-MaxReadings:]
	}
	if len(s.Commits) > MaxCommits {
		s.Commits = s.Commits[:MaxCommits]
	}
	cs := make([]Commit, len(s.Commits))
	for i, c := range s.Commits {
		c.Message = clip(c.Message, 200)
		c.Author = clip(c.Author, 60)
		cs[i] = c
	}
	s.Commits = cs
	if len(s.Deploys) > MaxDeploys {
		s.Deploys = s.Deploys[:MaxDeploys]
	}
	if len(s.Thread) > MaxTurns {
		s.Thread = s.Thread[len(s.Thread)-MaxTurns:]
	}
	ts := make([]Turn, len(s.Thread))
	for i, t := range s.Thread {
		t.Text = clip(t.Text, maxText)
		t.Who = clip(t.Who, 60)
		ts[i] = t
	}
	s.Thread = ts
	return s
}

// hasAction reports whether name is one of the snapshot's actions.
func (s Snapshot) hasAction(name string) bool {
	for _, a := range s.Actions {
		if a.Name == name {
			return true
		}
	}
	return false
}

func (s Snapshot) hint(w string) bool {
	for _, h := range s.Hints {
		if h == w {
			return true
		}
	}
	return false
}

// clip cuts s to n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
