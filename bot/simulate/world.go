package simulate

import (
	"container/heap"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/council"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/sdk/health"
)

// ErrInvalidOptions: Run was given no scenario.
var ErrInvalidOptions = errors.New("simulate: invalid options")

// Options configure one run.
type Options struct {
	// Seed, when set, replaces the scenario's seed (bot simulate --seed N).
	Seed *uint64
	// Logger receives the components' logs; default discarded.
	Logger *slog.Logger
	// AttemptTimeout bounds one recovery webhook call in real time (default 200 ms): a
	// scripted timeout costs this long per attempt.
	AttemptTimeout time.Duration
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.AttemptTimeout < 0 {
		return fmt.Errorf("%w: negative AttemptTimeout", ErrInvalidOptions)
	}
	return nil
}

// event is something due at a virtual time.
type event struct {
	at  time.Time
	seq uint64
	run func(ctx context.Context)
}

type queue []*event

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// world is one simulation: the bot as app.New builds it for `bot serve`, on an embedded
// Redis and a virtual clock, driven by hand, plus the scripted outside (metrics, deploys,
// webhook, people).
type world struct {
	sc     *Scenario
	seed   uint64
	tenant *config.Tenant
	log    *slog.Logger

	mu       sync.Mutex // guards now and lines (the webhook runs on the HTTP server's goroutine)
	now      time.Time
	lines    []Line
	redisNow time.Time

	mr *miniredis.Miniredis
	rc *redis.Client
	// app is the bot, built by app.New as `bot serve` builds it; the rest are its parts.
	app   *app.App
	store *ledger.RedisStore
	led   *ledger.Ledger
	eng   *conversation.Engine
	exec  *executor.Executor
	det   *detector.Detector
	pipe  interface{ Drain(context.Context) }
	hook  *httptest.Server
	sign  ed25519.PrivateKey

	commits    *commits.Store
	correlator *commits.Correlator

	q   queue
	seq uint64

	services []*serviceState
	detected []detector.Event
	people   []*personState
	// asked: per incident, the latest message that offers its approval buttons, per chat.
	asked map[string]map[conversation.Chat]asked
	// fixedAt: when an executed recovery cleared a service's fault.
	fixedAt map[string]time.Time
	webhook webhookState
	stats   counters
	agents  *agentSim // the scenario's AI agents and the approval gate (agents.go)
}

type counters struct {
	judged, skipped int
}

type asked struct {
	ref     conversation.MessageRef
	buttons []conversation.Button
	dm      bool
}

type personState struct {
	PersonScript
	userID  string
	reacted map[string]bool // incidents this person has reacted to
	rng     *rand.Rand
}

// clock is the components' clock: the virtual now.
func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) elapsed() time.Duration { return w.clock().Sub(w.sc.Start) }

// setNow moves virtual time forward (never back).
func (w *world) setNow(t time.Time) {
	w.mu.Lock()
	if t.After(w.now) {
		w.now = t
	}
	w.mu.Unlock()
}

// syncRedis brings the embedded Redis to the virtual now, so its TTLs and TIME follow it.
func (w *world) syncRedis() {
	now := w.clock()
	if now.After(w.redisNow) {
		w.mr.SetTime(now)
		w.mr.FastForward(now.Sub(w.redisNow))
		w.redisNow = now
	}
}

func (w *world) at(at time.Time, run func(ctx context.Context)) {
	w.seq++
	heap.Push(&w.q, &event{at: at, seq: w.seq, run: run})
}

// seedReader is a deterministic byte stream for the approval references.
type seedReader struct{ r *rand.Rand }

func (s seedReader) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += 8 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], s.r.Uint64())
		copy(p[i:], b[:])
	}
	return len(p), nil
}

func newRand(seed uint64, stream string) *rand.Rand {
	h := uint64(14695981039346656037)
	for _, c := range []byte(stream) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h))
}

const keyPrefix = "sim:"

// platforms are the chat platforms the bot registers; the simulation has a simulated
// one for each, with the real one's capabilities.
var platforms = app.Registered()

func platformNames() []string {
	names := make([]string, len(platforms))
	for i, p := range platforms {
		names[i] = string(p.Name)
	}
	return names
}

// tenantChannels are the chat platforms a scenario's tenants may list chats and ids on:
// every platform `bot serve` registers, each with its own id rules.
var tenantChannels = app.ChatChannels(nil)

func newWorld(sc *Scenario, o Options) (*world, error) {
	t, ok := sc.Tenants.Tenant(sc.Tenant)
	if !ok {
		return nil, fmt.Errorf("%w: tenant %q not in the tenants", ErrInvalidOptions, sc.Tenant)
	}
	w := &world{sc: sc, seed: sc.Seed, tenant: t, log: o.Logger, now: sc.Start, redisNow: sc.Start,
		asked: map[string]map[conversation.Chat]asked{}, fixedAt: map[string]time.Time{}}
	if o.Seed != nil {
		w.seed = *o.Seed
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = 200 * time.Millisecond
	}
	w.sign = ed25519.NewKeyFromSeed(seedBytes(w.seed, "ledger-signing-key"))

	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	mr.SetTime(sc.Start)
	w.mr = mr
	w.rc = redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 4})
	w.hook = httptest.NewServer(w.webhookHandler())

	lenses, err := w.council()
	if err != nil {
		return nil, w.closeWith(err)
	}
	a, err := app.New(w.appOptions(o, lenses))
	if err != nil {
		return nil, w.closeWith(err)
	}
	w.app, w.store, w.led, w.eng, w.exec, w.det, w.pipe = a, a.Store(), a.Ledger(), a.Engine(), a.Executor(), a.Detector(), a.Pipeline()
	w.commits, w.correlator = a.Commits()
	if err := w.startAgents(a.Gate()); err != nil {
		return nil, w.closeWith(err)
	}

	for _, s := range sc.Services {
		w.services = append(w.services, &serviceState{ServiceScript: s, rng: newRand(w.seed, "noise/"+s.Name)})
	}
	for _, p := range sc.People {
		cp, _ := t.Person(p.Name)
		ps := &personState{PersonScript: p, reacted: map[string]bool{}, rng: newRand(w.seed, "person/"+p.Name)}
		ps.userID = cp.IDs[p.Channel]
		w.people = append(w.people, ps)
	}
	return w, nil
}

// appOptions are what the simulated bot differs in from `bot serve`: the embedded Redis,
// virtual time and the seed for every clock, wait and random source; the scripted
// recovery webhook and council; simulated chat platforms; nothing running by itself (the
// world drives each component when its virtual time comes); and taps on what the world
// puts on its timeline.
func (w *world) appOptions(o Options, lenses *council.Council) app.Options {
	t := w.tenant
	target := executor.Target{URL: w.hook.URL + "/recover", Secret: t.Recovery.Secret.Reveal(), AllowPrivateNetwork: true}
	if target.Secret == "" {
		target.Secret = "simulated-recovery-secret"
	}
	hasRecovery := t.Recovery.URL != ""
	var simulated []func(app.Parts) (channel.Adapter, error)
	for _, p := range platforms {
		simulated = append(simulated, func(app.Parts) (channel.Adapter, error) { return &transport{w: w, spec: p}, nil })
	}
	return app.Options{
		Env: config.Env{LoopInterval: w.sc.Step}, File: w.sc.Tenants, Redis: w.rc, KeyPrefix: keyPrefix, Logger: w.log,
		Signer: w.sign, Secret: seedBytes(w.seed, "alert-secret"), Registry: prometheus.NewRegistry(), Manual: true,
		Clock: w.clock, Replica: "simulator", Random: seedReader{newRand(w.seed, "approvals")},
		Sleep: func(ctx context.Context, d time.Duration) error {
			w.setNow(w.clock().Add(d))
			w.syncRedis()
			return ctx.Err()
		},
		Jitter: newRand(w.seed, "executor-jitter").Float64, AttemptTimeout: o.AttemptTimeout, After: w.after,
		Targets: func(tenant string) (executor.Target, bool) { return target, hasRecovery && tenant == t.ID },
		Council: lenses, Adapters: simulated,
		Taps: app.Taps{Appended: w.appended, Detection: func(_ context.Context, ev detector.Event) { w.detected = append(w.detected, ev) },
			Authorized: w.onAuthorized, Outcome: w.onOutcome,
			GaveUp: func(ev detector.Event, attempts int, err error) {
				w.line("pipeline", "system", fmt.Sprintf("%s: gave up handling %s after %d attempts: %v", ev.Incident, ev.Kind, attempts, err))
			}},
	}
}

func seedBytes(seed uint64, what string) []byte {
	b := make([]byte, 32)
	_, _ = seedReader{newRand(seed, what)}.Read(b)
	return b
}

func (w *world) closeWith(err error) error {
	w.close()
	return err
}

func (w *world) close() {
	if w.app != nil {
		w.app.Close()
	}
	if w.hook != nil {
		w.hook.Close()
	}
	if w.rc != nil {
		_ = w.rc.Close()
	}
	if w.mr != nil {
		w.mr.Close()
	}
}

// serviceState is one service's scripted metrics and what the detector last judged.
type serviceState struct {
	ServiceScript
	rng *rand.Rand
	// last is the reading last given to the detector; quiet is set once the detector is
	// settled on it (see tick).
	last   Reading
	judged bool
	quiet  bool
}

// reading computes the service's reading at elapsed time e, given when an executed
// recovery cleared its fault (zero: never).
func (s *serviceState) reading(e time.Duration, fixed time.Duration, isFixed bool) Reading {
	cur := s.Normal
	for _, c := range s.Script {
		if c.At > e {
			break
		}
		if isFixed && c.At <= fixed {
			// An executed recovery that clears the fault undoes every change before it.
			continue
		}
		if c.For > 0 && e >= c.At+c.For {
			continue
		}
		next := cur
		if c.Recover {
			next = s.Normal
		}
		if c.P95Ms != nil {
			next.P95Ms = *c.P95Ms
		}
		if c.ErrorRate != nil {
			next.ErrorRate = *c.ErrorRate
		}
		if c.Requests != nil {
			next.Requests = *c.Requests
		}
		switch {
		case c.Ramp > 0 && e < c.At+c.Ramp:
			f := float64(e-c.At) / float64(c.Ramp)
			next.P95Ms = cur.P95Ms + f*(next.P95Ms-cur.P95Ms)
			next.ErrorRate = cur.ErrorRate + f*(next.ErrorRate-cur.ErrorRate)
		case c.Flap > 0 && ((e-c.At)/c.Flap)%2 == 1:
			next = cur
		}
		cur = next
	}
	return cur
}

// Run simulates the scenario and returns what happened.
func Run(ctx context.Context, sc *Scenario, o Options) (*Result, error) {
	if sc == nil || sc.Tenants == nil {
		return nil, fmt.Errorf("%w: no scenario", ErrInvalidOptions)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	w, err := newWorld(sc, o)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if err := w.run(ctx); err != nil {
		return nil, err
	}
	return w.result(ctx)
}

func (w *world) run(ctx context.Context) error {
	end := w.sc.Start.Add(w.sc.Duration)
	for _, c := range w.sc.Commits {
		w.at(w.sc.Start.Add(c.At), func(ctx context.Context) {
			text := fmt.Sprintf("pushes %s to %s (%s): %q, %s", c.SHA[:min(7, len(c.SHA))], c.Repo, c.Service, c.Message, strings.Join(c.Files, ", "))
			if err := w.push(ctx, c); err != nil {
				text += " — not stored: " + err.Error()
			}
			w.line("commit", c.Author, text)
		})
	}
	next := w.sc.Start
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(w.q) > 0 && !w.q[0].at.After(next) {
			ev := heap.Pop(&w.q).(*event)
			if ev.at.After(end) {
				break
			}
			w.setNow(ev.at)
			w.syncRedis()
			ev.run(ctx)
			continue
		}
		if next.After(end) {
			break
		}
		w.setNow(next)
		if err := w.tick(ctx); err != nil {
			return err
		}
		next = next.Add(w.sc.Step)
	}
	w.setNow(end)
	w.syncRedis()
	return nil
}

// tick measures every service once and hands the detector's decisions to the pipeline.
// A service whose reading has not changed since the detector settled on it (no episode,
// no open incident, trend window full of the same score, baseline learned to that
// reading) is not measured again: judging the same healthy reading again changes no
// decision. Noise makes every reading new.
func (w *world) tick(ctx context.Context) error {
	e := w.elapsed()
	for _, s := range w.services {
		fixed, isFixed := w.fixedAt[s.Name]
		r := s.reading(e, fixed.Sub(w.sc.Start), isFixed)
		if s.Noise > 0 {
			r.P95Ms *= 1 + s.Noise*(2*s.rng.Float64()-1)
			r.ErrorRate = math.Min(1, r.ErrorRate*(1+s.Noise*(2*s.rng.Float64()-1)))
		}
		same := s.judged && r == s.last
		if same && s.quiet {
			w.stats.skipped++
			continue
		}
		w.syncRedis()
		if err := w.det.Observe(ctx, w.tenant.ID, s.Name, w.clock(), detector.Health{P95Ms: r.P95Ms, ErrorRate: r.ErrorRate, SampleSize: r.Requests},
			"simulated "+s.Name); err != nil {
			return fmt.Errorf("judge %s: %w", s.Name, err)
		}
		w.stats.judged++
		s.last, s.judged = r, true
		if same && s.Noise == 0 {
			s.quiet = w.settled(ctx, s.Name, r)
		} else {
			s.quiet = false
		}
		w.handleDetections(ctx)
	}
	return nil
}

// settled reports whether judging r again would change nothing the detector decides.
func (w *world) settled(ctx context.Context, service string, r Reading) bool {
	st, err := w.det.Status(ctx, w.tenant.ID, service)
	if err != nil || st.Alerting || st.Last == nil || len(st.Scores) < health.TrendWindow {
		return false
	}
	for _, s := range st.Scores {
		if s != st.Scores[0] {
			return false
		}
	}
	if open, err := w.led.Store().OpenIncident(ctx, w.tenant.ID, service); err != nil || open != "" {
		return false
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	return st.Baseline.Samples > 0 && close(st.Baseline.P95Ms, r.P95Ms) && close(st.Baseline.ErrorRate, r.ErrorRate)
}

func (w *world) handleDetections(ctx context.Context) {
	evs := w.detected
	w.detected = nil
	for _, ev := range evs {
		if ev.Kind == detector.Suppressed {
			w.line("SUPPRESSED", "policy/detector", fmt.Sprintf("%s: health %.0f/100, over the tenant's incidents-per-hour limit: no incident, nothing posted", ev.Service, ev.Score))
		}
	}
	w.pipe.Drain(ctx) // the detector reported them to the pipeline's inbox
}

// after is the pipeline's scheduler: a retry due after d, on virtual time.
func (w *world) after(d time.Duration, f func()) {
	w.at(w.clock().Add(d), func(ctx context.Context) {
		f()
		w.pipe.Drain(ctx)
	})
}

// onAuthorized follows the engine's report of an authorization to the pipeline: the
// pipeline enqueues the execution and the executor takes it at once.
func (w *world) onAuthorized(ctx context.Context, _ ledger.Entry) {
	w.pipe.Drain(ctx)
	w.at(w.clock(), w.drain)
}

func (w *world) drain(ctx context.Context) {
	if _, err := w.exec.Drain(ctx); err != nil {
		w.line("executor", "system", "outbox: "+err.Error())
	}
}

// onOutcome follows the executor's report of an outcome to the pipeline: the pipeline
// tells the thread and settles the incident, then the recovery has its scripted effect
// on the service, and the people who re-drive dead letters act.
func (w *world) onOutcome(ctx context.Context, o executor.Outcome) {
	w.pipe.Drain(ctx) // tells the thread, settles the incident
	if o.Kind != executor.Executed && o.Kind != executor.Failed {
		return
	}
	if o.Kind == executor.Executed && w.sc.Webhook.Fixes {
		if in, _, err := w.led.Incident(ctx, o.Execution.Tenant, o.Execution.Incident); err == nil {
			w.fixedAt[in.Service] = w.clock()
			w.line("service", in.Service, fmt.Sprintf("%s cleared the fault: metrics back to normal", o.Execution.Action))
		}
	}
	if o.Kind == executor.Failed {
		for _, p := range w.people {
			if p.RedriveAfter == 0 || p.Unreachable {
				continue
			}
			inc := o.Execution.Incident
			w.at(w.available(p, w.clock().Add(p.RedriveAfter)), func(ctx context.Context) {
				err := w.exec.Redrive(ctx, w.tenant.ID, inc, ledger.Actor{Kind: ledger.ActorEngineer, ID: p.Name, Channel: "cli"})
				switch {
				case errors.Is(err, executor.ErrNoDeadLetter), errors.Is(err, executor.ErrNotRedrivable):
					return // someone else re-drove it, or it moved on
				case err != nil:
					w.line("operator", p.Name, "bot dlq redrive "+inc+": "+err.Error())
					return
				}
				w.line("operator", p.Name, "bot dlq redrive --tenant "+w.tenant.ID+" "+inc)
				w.drain(ctx)
			})
			break
		}
	}
}

// deadlines runs the engine's Tick, as its loop in `bot serve` does; a failed deadline
// comes back when the engine retries it.
func (w *world) deadlines(ctx context.Context) {
	if err := w.eng.Tick(ctx); err != nil {
		w.line("deadlines", "system", "approval deadlines: "+err.Error())
		w.at(w.clock().Add(conversation.DeadlineRetry), w.deadlines)
	}
}

// available returns the first time at or after t that p is not away.
func (w *world) available(p *personState, t time.Time) time.Time {
	for changed := true; changed; {
		changed = false
		for _, a := range p.Away {
			from, until := w.sc.Start.Add(a.From), w.sc.Start.Add(a.Until)
			if !t.Before(from) && t.Before(until) {
				t, changed = until, true
			}
		}
	}
	return t
}
