package council

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Lens produces one diagnosis of a snapshot.
type Lens interface {
	// Name identifies the lens in the ledger: the model, or rules-a / rules-b.
	Name() string
	Diagnose(ctx context.Context, s Snapshot) (Reply, error)
}

// Reply is a lens's validated diagnosis and the raw reply it came from.
type Reply struct {
	Diagnosis Diagnosis
	Raw       []byte
}

// Outcome says how a lens call ended (the metrics' reason label).
type Outcome string

// Outcomes of a lens call.
const (
	OK         Outcome = "ok"
	Timeout    Outcome = "timeout"
	Invalid    Outcome = "invalid"
	HTTPError  Outcome = "http_error"
	NoEvidence Outcome = "no_evidence"
)

// OutcomeOf classifies a lens error.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, ErrInvalid):
		return Invalid
	case errors.Is(err, ErrNoEvidence):
		return NoEvidence
	}
	return HTTPError
}

// Observer is told how each lens call and each council went (the bot's metrics).
type Observer interface {
	LensDone(lens string, o Outcome, took time.Duration)
	CouncilDone(took time.Duration)
}

// DefaultGate is the confidence below which the council offers only the policy's default
// action.
const DefaultGate = 0.60

// Options configure a council.
type Options struct {
	// A is the first lens; B the second (nil: one lens, no dissent — COUNCIL_ENABLED=false).
	A, B Lens
	// FallbackA and FallbackB stand in for A and B when they fail (the offline lenses
	// behind LLM lenses); nil: none.
	FallbackA, FallbackB Lens
	// Gate is the confidence gate (default DefaultGate).
	Gate float64
	// Timeout bounds one lens, retries included (default 60 s).
	Timeout  time.Duration
	Observer Observer
	Logger   *slog.Logger
	Clock    func() time.Time
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch {
	case o.A == nil:
		return errors.New("council: lens A is required")
	case o.Gate < 0 || o.Gate > 1:
		return fmt.Errorf("council: gate %v outside 0..1", o.Gate)
	case o.Timeout < 0:
		return errors.New("council: negative timeout")
	}
	return nil
}

// Council runs its lenses concurrently and decides agreement, dissent and the gate. It
// only advises: its verdict names actions from the tenant's list and nothing else.
type Council struct{ o Options }

// New returns a council.
func New(o Options) (*Council, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Gate == 0 {
		o.Gate = DefaultGate
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &Council{o: o}, nil
}

// LensResult is what one lens said, or why it said nothing.
type LensResult struct {
	// Label is "A" or "B".
	Label string
	// Lens names who answered (model or rules-a/rules-b).
	Lens string
	// Failed is set when a lens failed and its fallback answered: the failed lens's
	// name and why.
	Failed        string
	FailedOutcome Outcome
	Outcome       Outcome
	Err           error
	// Diagnosis is set when Outcome is OK.
	Diagnosis *Diagnosis
	// SHA256 is the hex SHA-256 of the raw reply (also of an invalid one).
	SHA256 string
	Took   time.Duration
}

// OK reports whether the lens gave a valid diagnosis.
func (r LensResult) OK() bool { return r.Diagnosis != nil }

// Offer is an action the verdict offers for approval, with the theory it comes from.
type Offer struct {
	Action string
	Label  string // "A", "B"; "" for the policy default
}

// Verdict is the council's conclusion.
type Verdict struct {
	// Lenses are the results in label order, failed ones included.
	Lenses []LensResult
	// Agree: one valid lens, or two with the same category.
	Agree bool
	// Gated: the confidence is below Gate; only the default action is offered.
	Gated bool
	// Gate is the confidence gate this council applied (Options.Gate), for whoever
	// explains the verdict: a reader must not assume the default.
	Gate float64
	// Failsafe: no lens gave a valid diagnosis; the policy's default action is offered,
	// confidence 0.
	Failsafe   bool
	Confidence float64
	// Offers are the distinct actions offered: one per theory in a dissent whose theories
	// lead to different actions, else one.
	Offers []Offer
	// Action is the proposed action: the agreed one, the more confident theory's in a
	// dissent, or the default.
	Action string
}

// Valid returns the results with a diagnosis.
func (v Verdict) Valid() []LensResult {
	var out []LensResult
	for _, r := range v.Lenses {
		if r.OK() {
			out = append(out, r)
		}
	}
	return out
}

// Diagnose runs the lenses concurrently on s and returns the verdict. It fails only for
// a snapshot it cannot diagnose; lenses that fail are reported in the verdict.
func (c *Council) Diagnose(ctx context.Context, s Snapshot) (Verdict, error) {
	if err := s.Validate(); err != nil {
		return Verdict{}, err
	}
	s = s.Bounded()
	start := c.o.Clock()
	type job struct {
		label          string
		lens, fallback Lens
	}
	jobs := []job{{"A", c.o.A, c.o.FallbackA}}
	if c.o.B != nil {
		jobs = append(jobs, job{"B", c.o.B, c.o.FallbackB})
	}
	results := make([]LensResult, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.run(ctx, j.label, j.lens, s)
			if !r.OK() && j.fallback != nil {
				fb := c.run(ctx, j.label, j.fallback, s)
				fb.Failed, fb.FailedOutcome = j.lens.Name(), r.Outcome
				if fb.Err != nil {
					fb.Err = fmt.Errorf("%s: %v; fallback %s: %w", j.lens.Name(), r.Err, j.fallback.Name(), fb.Err)
				}
				r = fb
			}
			results[i] = r
		}()
	}
	wg.Wait()
	v := c.decide(s, results)
	if c.o.Observer != nil {
		c.o.Observer.CouncilDone(c.o.Clock().Sub(start))
	}
	return v, nil
}

func (c *Council) run(ctx context.Context, label string, l Lens, s Snapshot) LensResult {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	start := c.o.Clock()
	rep, err := l.Diagnose(ctx, s)
	if err == nil {
		// Whatever a lens returns is checked here too: no lens can widen the actions.
		err = rep.Diagnosis.Validate(s)
	}
	r := LensResult{Label: label, Lens: l.Name(), Outcome: OutcomeOf(err), Err: err, Took: c.o.Clock().Sub(start)}
	if rep.Raw != nil {
		sum := sha256.Sum256(rep.Raw)
		r.SHA256 = hex.EncodeToString(sum[:])
	}
	if err == nil {
		d := rep.Diagnosis
		r.Diagnosis = &d
	} else {
		c.o.Logger.Warn("lens discarded", "lens", label, "name", l.Name(), "outcome", r.Outcome, "err", err)
	}
	if c.o.Observer != nil {
		c.o.Observer.LensDone(l.Name(), r.Outcome, r.Took)
	}
	return r
}

func (c *Council) decide(s Snapshot, results []LensResult) Verdict {
	v := Verdict{Lenses: results, Gate: c.o.Gate}
	def := s.DefaultAction
	if !s.hasAction(def) {
		def = s.Actions[0].Name
		for _, a := range s.Actions {
			if !a.HighRisk {
				def = a.Name
				break
			}
		}
	}
	// or returns a theory's action, the default when it suggests none.
	or := func(d *Diagnosis) string {
		if d.SuggestedAction == NoAction || !s.hasAction(d.SuggestedAction) {
			return def
		}
		return d.SuggestedAction
	}
	valid := v.Valid()
	switch {
	case len(valid) == 0:
		v.Failsafe, v.Agree, v.Action = true, true, def
		v.Offers = []Offer{{Action: def}}
		return v
	case len(valid) == 1:
		v.Agree, v.Confidence = true, valid[0].Diagnosis.Confidence
		v.Action = or(valid[0].Diagnosis)
		v.Offers = []Offer{{Action: v.Action, Label: valid[0].Label}}
	case valid[0].Diagnosis.Category == valid[1].Diagnosis.Category:
		a, b := valid[0].Diagnosis, valid[1].Diagnosis
		v.Agree, v.Confidence = true, (a.Confidence+b.Confidence)/2
		best := a
		if b.Confidence > a.Confidence {
			best = b
		}
		v.Action = or(best)
		v.Offers = []Offer{{Action: v.Action}}
	default:
		a, b := valid[0].Diagnosis, valid[1].Diagnosis
		v.Confidence = max(a.Confidence, b.Confidence)
		v.Action = or(a)
		if b.Confidence > a.Confidence {
			v.Action = or(b)
		}
		v.Offers = []Offer{{Action: or(a), Label: "A"}, {Action: or(b), Label: "B"}}
		if or(a) == or(b) {
			// Different causes, one remedy: one offer, not two buttons running the same thing.
			v.Offers = []Offer{{Action: or(a)}}
		}
	}
	if v.Confidence < c.o.Gate {
		v.Gated, v.Action = true, def
		v.Offers = []Offer{{Action: def}}
	}
	return v
}
