package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/bot/links"
	"github.com/alertengine/alertengine/bot/metrics"
	"github.com/alertengine/alertengine/bot/outhook"
	"github.com/alertengine/alertengine/bot/pipeline"
	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/council"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Options are what the ways of running the bot differ in. Env and File say what the
// operator configured; the rest is what serve, the demo and the tests choose.
type Options struct {
	Env  config.Env
	File *config.File
	// Lookup reads the environment for the channels' own variables (default: nothing).
	Lookup channel.Lookup
	// Redis is the client every component shares; required.
	Redis     redis.UniversalClient
	KeyPrefix string
	Logger    *slog.Logger
	// Signer signs the ledger's checkpoints; Secret keys the approval references.
	Signer ed25519.PrivateKey
	Secret []byte
	// Addr is where the HTTP server listens, unless Listener is set (the demo listens
	// first, to report a busy port before anything starts).
	Addr     string
	Listener net.Listener
	// Clock is every component's clock (default time.Now).
	Clock func() time.Time
	// Registry takes the bot's metrics and is served at /metrics (default a new one).
	Registry *prometheus.Registry
	// Sink keeps the ledger's checkpoints outside Redis (nil: none); SinkName describes it
	// for the status endpoint.
	Sink     ledger.CheckpointSink
	SinkName string
	// Executed keeps the executed recoveries' idempotency keys outside Redis (nil: none),
	// so a Redis rollback cannot have a recovery run twice.
	Executed executor.ExecutedKeys
	// Version is shown by the status endpoint.
	Version string
	// LLMCallTimeout bounds one LLM call (0: the council's default).
	LLMCallTimeout time.Duration
	// ExecutorPoll bounds one blocking read of the executor's outbox (0: its default,
	// 2 s), which is also how long stopping may wait for that read.
	ExecutorPoll time.Duration
	// Window is the detector's evaluation window (0: its default).
	Window time.Duration
	// Tenants, when set, adjusts what the conversation knows of the tenants (the demo
	// adds its console chat and identities).
	Tenants func([]conversation.Tenant) []conversation.Tenant
	// Adapters build chat platforms of the caller's (the demo's console), beside the
	// registered ones the environment enables. Each is called once, after the detector
	// and the ledger are built and before the engine.
	Adapters []func(Parts) (channel.Adapter, error)
	// Routes are more HTTP routes to mount.
	Routes []channel.Route
	// Channels replaces the registered chat platforms (tests register a fake one).
	Channels []channel.Spec

	// What the simulation replaces, to run the bot on virtual time with a seed; serve
	// and the demo leave them unset.

	// Replica names this process in the detector's and the executor's consumer groups and
	// leases (default: the host name and a random suffix).
	Replica string
	// Random is the approval references' randomness (default crypto/rand).
	Random io.Reader
	// Sleep is the executor's wait between attempts (default a timer) and Jitter its
	// random spread of them (default math/rand); AttemptTimeout bounds one recovery
	// webhook call (0: the executor's default).
	Sleep          func(ctx context.Context, d time.Duration) error
	Jitter         func() float64
	AttemptTimeout time.Duration
	// After schedules the pipeline's retries (default time.AfterFunc).
	After func(d time.Duration, f func())
	// Targets replaces the tenants' recovery webhooks.
	Targets func(tenant string) (executor.Target, bool)
	// Council replaces the diagnostic council the environment describes; the proposal,
	// its hints and its readings are the bot's own either way.
	Council *council.Council
	// Taps are told what the components do, for a caller that watches the bot.
	Taps Taps
	// Manual: nothing runs by itself. Run refuses; the caller drives the pipeline
	// (Pipeline().Drain), the executor (Executor().Drain) and the approval deadlines
	// (Engine().Tick), and needs no listen address. Everything is built as for Run.
	Manual bool
}

// Taps are told what the components do. Each is called on the goroutine of the
// component that did it, after the bot took it in; nil taps are skipped.
type Taps struct {
	// Appended: entries were appended to a tenant's ledger.
	Appended func(tenant string, entries []ledger.Entry)
	// Detection, Authorized and Outcome: the detector, the engine and the executor
	// reported to the pipeline, and its inbox took the report.
	Detection  func(ctx context.Context, ev detector.Event)
	Authorized func(ctx context.Context, e ledger.Entry)
	Outcome    func(ctx context.Context, o executor.Outcome)
	// GaveUp: the pipeline gave up a detection after its every try failed.
	GaveUp func(ev detector.Event, attempts int, err error)
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch {
	case o.Redis == nil:
		return errors.New("app: no Redis client")
	case o.File == nil:
		return errors.New("app: no tenants file")
	case o.Addr == "" && o.Listener == nil && !o.Manual:
		return errors.New("app: no listen address")
	}
	return nil
}

// App is the bot, built: every component, the routes mounted and the loops ready to run.
type App struct {
	o         Options
	log       *slog.Logger
	store     *ledger.RedisStore
	ledger    *ledger.Ledger
	approvals *approval.Service
	engine    *conversation.Engine
	executor  *executor.Executor
	detector  *detector.Detector
	pipeline  *pipeline.Pipeline
	server    *Server
	github    *gitHub
	losses    *metrics.LedgerLosses
	notes     *Loop // publishes witnessed checkpoint notes; nil: no witness configured
	outbound  *outhook.Sender
	gate      *agent.Gate
	tenants   []string
	adapters  []adapter
	routes    []string
	loops     []Loop
	cleanup   []func()
	// lookupGiven: the caller gave Lookup, so a platform's own variables decide whether
	// it is on (Spec.EnabledBy); without it, what config.Env carries does (Spec.Enabled).
	lookupGiven bool
}

// Parts are the components an adapter of the caller's may read: the services' health
// and charts (from the detector), the ledger's store and the signing key.
type Parts struct {
	Health Health
	Store  *ledger.RedisStore
	Signer ed25519.PrivateKey
	Logger *slog.Logger
	Clock  func() time.Time
}

// adapter is one chat platform built.
type adapter struct {
	name string
	spec channel.Spec // zero for the caller's own
	channel.Adapter
}

// New builds the bot. The components are built in the order data flows, and none of
// them is handed a component built after it: the pipeline's inbox first (the detector,
// the engine and the executor report to it), the pipeline last.
func New(o Options) (*App, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	lookupGiven := o.Lookup != nil
	if !lookupGiven {
		o.Lookup = func(string) (string, bool) { return "", false }
	}
	if o.Channels == nil {
		o.Channels = channels
	}
	a := &App{o: o, log: o.Logger, tenants: tenantIDs(o.File), lookupGiven: lookupGiven}
	if err := a.build(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build() error {
	o, reg := &a.o, a.o.Registry
	a.store = ledger.NewRedisStore(o.Redis, o.KeyPrefix)
	var err error
	if a.losses, err = metrics.NewLedgerLosses(reg, a.tenants, o.Clock); err != nil {
		return err
	}
	if a.ledger, err = ledger.New(ledger.Options{Store: o.Taps.store(a.store), Signer: o.Signer, Logger: o.Logger, Clock: o.Clock, Sink: o.Sink, OnLoss: a.losses.Record}); err != nil {
		return err
	}
	if a.notes, err = a.notesLoop(); err != nil {
		return err
	}
	floods, err := metrics.NewFloods(reg)
	if err != nil {
		return err
	}
	if a.approvals, err = approval.New(approval.Options{Redis: o.Redis, KeyPrefix: o.KeyPrefix, Secret: o.Secret, Ledger: a.ledger, Clock: o.Clock, Logger: o.Logger,
		Random: o.Random, OnRefusal: floods.Refusal}); err != nil {
		return err
	}
	tenants := ConversationTenants(o.File)
	if o.Tenants != nil {
		tenants = o.Tenants(tenants)
	}
	if a.github, err = buildGitHub(o, reg); err != nil {
		return err
	}
	caller, err := voiceCaller(o)
	if err != nil {
		return err
	}
	inbox := pipeline.NewInbox(0)
	if a.detector, err = detector.New(detector.Options{Redis: o.Redis, KeyPrefix: o.KeyPrefix, Ledger: a.ledger, Tenants: DetectorTenants(o.File),
		OnEvent: o.Taps.detection(inbox), Clock: o.Clock, Logger: o.Logger, PollInterval: o.Env.LoopInterval, Window: o.Window, ReplicaID: o.Replica,
		Intakes: intakes(o.File)}); err != nil {
		return err
	}
	if err := metrics.WatchDetector(reg, a.detector); err != nil {
		return err
	}
	councilMetrics, err := metrics.NewCouncil(reg)
	if err != nil {
		return err
	}
	proposer, answerer, err := councilParts(o, tenants, councilMetrics, a.github.source, a.detector)
	if err != nil {
		return err
	}
	if err := a.buildChannels(); err != nil {
		return err
	}
	transports := make([]conversation.Transport, 0, len(a.adapters))
	var charts conversation.Charter
	health := Health{Detector: a.detector, Clock: o.Clock}
	for _, ad := range a.adapters {
		transports = append(transports, ad)
		if ad.Capabilities().Media {
			charts = health // no chart is drawn that no platform would show
		}
	}
	if a.engine, err = conversation.New(conversation.Options{
		Ledger: a.ledger, Approvals: a.approvals, Redis: o.Redis, KeyPrefix: o.KeyPrefix, Tenants: tenants, Clock: o.Clock, Logger: o.Logger, Caller: caller,
		Commits: a.github.source, Answerer: answerer, LinkURL: linkURL(o.Env.PublicURL), Status: health, Charts: charts, Transports: transports,
		OnAuthorized: o.Taps.authorized(inbox), OnThrottled: floods.Throttled,
	}); err != nil {
		return err
	}
	targets := o.Targets
	if targets == nil {
		targets = ExecutorTargets(o.File)
	}
	if a.executor, err = executor.New(executor.Options{Redis: o.Redis, KeyPrefix: o.KeyPrefix, Ledger: a.ledger, Targets: targets, Logger: o.Logger,
		Clock: o.Clock, Poll: o.ExecutorPoll, Executed: o.Executed, Consumer: o.Replica, AttemptTimeout: o.AttemptTimeout, Sleep: o.Sleep, Rand: o.Jitter,
		OnOutcome: o.Taps.outcome(inbox)}); err != nil {
		return err
	}
	counts, err := metrics.NewPipeline(reg)
	if err != nil {
		return err
	}
	if a.pipeline, err = pipeline.New(pipeline.Options{Inbox: inbox, Ledger: pipeline.Ledger{Ledger: a.ledger}, Conversation: a.engine, Executor: a.executor,
		Settler: a.detector, Tenants: tenants, Logger: o.Logger, Clock: o.Clock, Metrics: counts, Proposer: proposer, After: o.After, OnGiveUp: o.Taps.GaveUp}); err != nil {
		return err
	}
	if err := a.buildOutbound(); err != nil {
		return err
	}
	// AI agents' approval gate (tenants[].agents[]): /v1/approvals, /mcp, the receipts' key set.
	gate, err := agent.Assemble(o.File, tenants, agent.Options{Redis: o.Redis, KeyPrefix: o.KeyPrefix, Ledger: a.ledger, Key: o.Signer,
		Presenter: a.engine, Status: health, Commits: a.github.source, Trees: a.store, Origin: o.Env.LedgerOrigin, Clock: o.Clock, Logger: o.Logger,
		Random: o.Random})
	if err != nil {
		return err
	}
	a.gate = gate
	if gate != nil {
		o.Routes = append(o.Routes, gate.Routes(o.Version)...)
	}
	if err := a.buildServer(); err != nil {
		return err
	}
	a.buildLoops()
	return nil
}

// buildChannels builds every registered chat platform the environment enables, then the
// caller's own.
func (a *App) buildChannels() error {
	o := &a.o
	for _, s := range o.Channels {
		on := s.Enabled != nil && s.Enabled(o.Env)
		if s.EnabledBy != nil && (a.lookupGiven || s.Enabled == nil) {
			on = s.EnabledBy(o.Lookup)
		}
		if !on {
			continue
		}
		ad, err := s.New(channel.Deps{Env: o.Env, Lookup: o.Lookup, Redis: o.Redis, KeyPrefix: o.KeyPrefix, Logger: o.Logger.With("channel", string(s.Name)),
			Clock: o.Clock, Registry: o.Registry})
		if err != nil {
			return fmt.Errorf("%s: %w", s.Title, err)
		}
		a.adapters = append(a.adapters, adapter{name: string(s.Name), spec: s, Adapter: ad})
	}
	for _, mk := range o.Adapters {
		ad, err := mk(Parts{Health: Health{Detector: a.detector, Clock: o.Clock}, Store: a.store, Signer: o.Signer, Logger: o.Logger, Clock: o.Clock})
		if err != nil {
			return err
		}
		a.adapters = append(a.adapters, adapter{name: string(ad.Channel()), spec: channel.Spec{Name: ad.Channel(), Title: string(ad.Channel())}, Adapter: ad})
	}
	return nil
}

func (a *App) buildServer() error {
	o := &a.o
	ready := []Check{
		{Name: "redis", Check: func(ctx context.Context) error { return o.Redis.Ping(ctx).Err() }},
		{Name: "ledger", Check: a.store.Ping},
	}
	for _, ad := range a.adapters {
		// A chat platform being down makes the bot degraded, not unready: detection and
		// execution go on, and the other platforms still reach people.
		ready = append(ready, Check{Name: ad.name, Check: ad.Check, Optional: true})
	}
	addr := o.Addr
	switch {
	case o.Listener != nil:
		addr = o.Listener.Addr().String()
	case addr == "" && o.Manual:
		addr = "(driven by hand: not listening)" // Run refuses to serve
	}
	var err error
	if a.server, err = NewServer(ServerOptions{Addr: addr, Logger: o.Logger, Registry: o.Registry, Ready: ready}); err != nil {
		return err
	}
	if o.Env.StatusToken.IsSet() {
		st, err := StatusHandler(StatusOptions{Token: o.Env.StatusToken.Reveal(), Version: o.Version, Started: o.Clock(), Clock: o.Clock,
			Tenants: a.tenants, Env: o.Env.Redacted(), Store: a.store, Ledger: a.ledger, Losses: a.losses, Checks: ready[:2], Sink: o.SinkName})
		if err != nil {
			return err
		}
		a.handle(channel.Route{Pattern: "GET /__alertengine/status", Handler: st})
	}
	// Each intake's route reads its body as a stream up to its own (per tenant) limit, and
	// logs and counts what it refuses.
	for _, r := range a.detector.Routes() {
		a.server.HandleOwnLimit(r.Pattern, r.Handler)
		a.routes = append(a.routes, r.Pattern)
	}
	a.handle(channel.Route{Pattern: "GET /action/recover", Handler: links.Preview(a.engine, o.Logger)})
	a.handle(channel.Route{Pattern: "POST /action/recover/confirm", Handler: links.Confirm(a.engine, o.Logger)})
	if a.github.webhook != nil {
		a.handle(channel.Route{Pattern: "POST /github/webhook", Handler: a.github.webhook, MaxBody: commits.MaxBody})
	}
	for _, ad := range a.adapters {
		for _, r := range ad.Routes(a.engine) {
			a.handle(r)
		}
	}
	for _, r := range o.Routes {
		a.handle(r)
	}
	return nil
}

func (a *App) handle(r channel.Route) {
	limit := r.MaxBody
	if limit <= 0 {
		limit = MaxBody
	}
	a.server.HandleLimit(r.Pattern, r.Handler, limit)
	a.routes = append(a.routes, r.Pattern)
}

// buildLoops lists what Run runs.
func (a *App) buildLoops() {
	serve := a.server.Run
	if ln := a.o.Listener; ln != nil {
		serve = func(ctx context.Context) error { return a.server.Serve(ctx, ln) }
	}
	a.loops = []Loop{
		{Name: "http", Run: serve},
		{Name: "detector", Run: a.detector.Run},
		{Name: "executor", Run: a.executor.Run},
		{Name: "pipeline", Run: a.pipeline.Run},
		{Name: "deadlines", Run: a.engine.Run},
		{Name: "ledger", Run: func(ctx context.Context) error { return a.ledger.Guard(ctx, a.tenants, LedgerCheckEvery) }},
	}
	if a.github.stats != nil {
		a.loops = append(a.loops, Loop{Name: "github-stats", Run: a.github.stats.Run})
	}
	if a.outbound != nil {
		a.loops = append(a.loops, Loop{Name: "outbound-webhooks", Run: a.outbound.Run})
	}
	if a.notes != nil {
		a.loops = append(a.loops, *a.notes)
	}
	for _, ad := range a.adapters {
		// A chat platform being down must never stop detection or execution: its loop is
		// restarted with backoff instead of ending the process.
		a.loops = append(a.loops, Loop{Name: ad.name, Run: func(ctx context.Context) error { return ad.Run(ctx, a.engine) }, Restart: true})
	}
}

// Check asks every chat platform whether it accepts its credentials now. It returns a
// *RefusedError for the first that refuses them (a wrong token will not fix itself:
// start-up stops); any other failure is logged as the platform's error, the platform
// degraded, and its loop keeps trying.
func (a *App) Check(ctx context.Context) error {
	for _, ad := range a.adapters {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := ad.Check(cctx)
		cancel()
		switch {
		case errors.Is(err, channel.ErrRefused):
			return refused(ad.spec, err)
		case err != nil:
			// Said as the platform said it: "not reachable" would mislead about a
			// platform that answered (a paused approval template, say).
			a.log.Warn(fmt.Sprintf("chat platform %s is degraded at start-up: %v; the bot starts, and /readyz lists it under degraded until its check passes", ad.name, err),
				"channel", ad.name, "err", err)
		}
	}
	return nil
}

// Run checks every tenant's chain against its last checkpoint, then runs every loop of
// the bot until ctx ends or one fails; the first failure stops the others and is
// returned.
func (a *App) Run(ctx context.Context) error {
	if a.o.Manual {
		return errors.New("app: built to be driven by hand (Options.Manual): nothing runs by itself")
	}
	// A chain shorter than its last checkpoint is logged at ERROR and counted; the bot
	// keeps running on a restarted chain whose incident codes never repeat the lost ones.
	a.ledger.CheckAll(ctx, a.tenants)
	if a.outbound != nil {
		// Before any loop takes in alerts or presses: the outbound webhooks start from
		// here, so nothing appended from now on is skipped.
		a.outbound.Mark(ctx)
	}
	return RunLoops(ctx, a.log, a.loops...)
}

// Handler is the bot's HTTP surface, as the server serves it.
func (a *App) Handler() http.Handler { return a.server.Handler() }

// Close releases what New acquired, last first. The App cannot be used after.
func (a *App) Close() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
	a.cleanup = nil
}

// Components lists what the App built and runs, for checking that every way of running
// the bot builds the same: the chat platforms, the routes and the loops.
type Components struct {
	Channels, Routes, Loops []string
}

// Components returns what the App built.
func (a *App) Components() Components {
	var c Components
	for _, ad := range a.adapters {
		c.Channels = append(c.Channels, ad.name)
	}
	c.Routes = slices.Clone(a.routes)
	for _, l := range a.loops {
		c.Loops = append(c.Loops, l.Name)
	}
	return c
}

// Engine is the conversation engine.
func (a *App) Engine() *conversation.Engine { return a.engine }

// Ledger is the audit ledger.
func (a *App) Ledger() *ledger.Ledger { return a.ledger }

// Store is the ledger's Redis store.
func (a *App) Store() *ledger.RedisStore { return a.store }

// Detector is the detector.
func (a *App) Detector() *detector.Detector { return a.detector }

// Pipeline is the pipeline.
func (a *App) Pipeline() *pipeline.Pipeline { return a.pipeline }

// Executor is the executor.
func (a *App) Executor() *executor.Executor { return a.executor }

// Commits is where the commits the bot correlates with its services are kept, and
// their correlator.
func (a *App) Commits() (*commits.Store, *commits.Correlator) {
	return a.github.store, a.github.correlator
}

// Tenants are the tenants' ids.
func (a *App) Tenants() []string { return a.tenants }

// ExecutorTargets maps each tenant to its recovery webhook (none without recovery.url).
func ExecutorTargets(f *config.File) func(string) (executor.Target, bool) {
	return func(tenant string) (executor.Target, bool) {
		t, ok := f.Tenant(tenant)
		if !ok || t.Recovery.URL == "" {
			return executor.Target{}, false
		}
		return executor.Target{URL: t.Recovery.URL, Secret: t.Recovery.Secret.Reveal(), AllowPrivateNetwork: t.Recovery.AllowPrivateNetwork,
			Timeout: t.Recovery.Timeout}, true
	}
}

// toolExecutor is the executor an operator's tool works with (bot dlq): on the ledger
// in store, signing with the environment's key, calling the tenants' recovery webhooks.
// It runs no loop; the tool calls it.
func toolExecutor(env config.Env, f *config.File, store *ledger.RedisStore) (*executor.Executor, error) {
	key, _ := env.SigningKey()
	led, err := ledger.New(ledger.Options{Store: store, Signer: key})
	if err != nil {
		return nil, err
	}
	return executor.New(executor.Options{Redis: store.Client(), KeyPrefix: env.RedisKeyPrefix, Ledger: led, Targets: ExecutorTargets(f)})
}

// linkURL makes link approvals' preview URLs under PUBLIC_URL; without one, no links are
// sent (a chat without buttons still has its reply codes).
func linkURL(publicURL string) func(string) string {
	if publicURL == "" {
		return nil
	}
	base := strings.TrimRight(publicURL, "/") + "/action/recover?ref="
	return func(ref string) string { return base + url.QueryEscape(ref) }
}

func tenantIDs(f *config.File) []string {
	out := make([]string, 0, len(f.Tenants))
	for _, t := range f.Tenants {
		out = append(out, t.ID)
	}
	return out
}

// Gate is the AI agents' approval gate (nil when no tenant declares agents).
func (a *App) Gate() *agent.Gate { return a.gate }
