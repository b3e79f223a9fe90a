package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/bot/links"
	"github.com/alertengine/alertengine/bot/metrics"
	"github.com/alertengine/alertengine/bot/pipeline"
	"github.com/alertengine/alertengine/bot/telegram"
	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

func executorTargets(f *config.File) func(string) (executor.Target, bool) {
	return func(tenant string) (executor.Target, bool) {
		t, ok := f.Tenant(tenant)
		if !ok || t.Recovery.URL == "" {
			return executor.Target{}, false
		}
		return executor.Target{URL: t.Recovery.URL, Secret: t.Recovery.Secret.Reveal(), AllowPrivateNetwork: t.Recovery.AllowPrivateNetwork,
			Timeout: t.Recovery.Timeout}, true
	}
}

// system is every part of a running bot, wired.
type system struct {
	log       *slog.Logger
	rc        redis.UniversalClient
	store     *ledger.RedisStore
	ledger    *ledger.Ledger
	approvals *approval.Service
	engine    *conversation.Engine
	executor  *executor.Executor
	detector  *detector.Detector
	pipeline  *pipeline.Pipeline
	telegram  *telegram.Adapter
	whatsapp  *whatsapp.Adapter
	server    *app.Server
	webhook   bool // Telegram in webhook mode
	publicURL string
	github    *gitHub
	tenants   []string
	losses    *metrics.LedgerLosses
}

// wiring is what build needs besides the config.
type wiring struct {
	env       config.Env
	file      *config.File
	rc        redis.UniversalClient
	log       *slog.Logger
	signer    ed25519.PrivateKey
	secret    []byte
	addr      string
	clock     func() time.Time
	registry  *prometheus.Registry
	keyPrefix string
	// sink keeps the ledger's checkpoints outside Redis (nil: none); sinkName describes it.
	sink     ledger.CheckpointSink
	sinkName string
	// executed keeps the executed recoveries' idempotency keys beside the checkpoint file
	// (nil: none), so a Redis rollback cannot have a recovery run twice.
	executed executor.ExecutedKeys
	// llmCallTimeout bounds one LLM call (0: the council's default); tests shorten it.
	llmCallTimeout time.Duration
	// executorPoll bounds one blocking read of the executor's outbox (0: the executor's
	// default, 2 s), which is also how long stopping may wait for that read; tests shorten it.
	executorPoll time.Duration
	// tenants, when set, adjusts what the conversation knows of the tenants (the demo adds
	// its console chat and identities).
	tenants func([]conversation.Tenant) []conversation.Tenant
	// window, when set, is the detector's evaluation window (the demo's tests shorten it).
	window time.Duration
}

func build(w wiring) (*system, error) {
	if w.clock == nil {
		w.clock = time.Now
	}
	if w.registry == nil {
		w.registry = prometheus.NewRegistry()
	}
	s := &system{log: w.log, rc: w.rc, publicURL: w.env.PublicURL, tenants: tenantIDs(w.file)}
	s.store = ledger.NewRedisStore(w.rc, w.keyPrefix)
	var err error
	if s.losses, err = metrics.NewLedgerLosses(w.registry, s.tenants, w.clock); err != nil {
		return nil, err
	}
	if s.ledger, err = ledger.New(ledger.Options{Store: s.store, Signer: w.signer, Logger: w.log, Clock: w.clock, Sink: w.sink, OnLoss: s.losses.Record}); err != nil {
		return nil, err
	}
	floods, err := metrics.NewFloods(w.registry)
	if err != nil {
		return nil, err
	}
	if s.approvals, err = approval.New(approval.Options{Redis: w.rc, KeyPrefix: w.keyPrefix, Secret: w.secret, Ledger: s.ledger, Clock: w.clock, Logger: w.log,
		OnRefusal: floods.Refusal}); err != nil {
		return nil, err
	}
	tenants := app.ConversationTenants(w.file)
	if w.tenants != nil {
		tenants = w.tenants(tenants)
	}
	if s.github, err = buildGitHub(w, w.registry); err != nil {
		return nil, err
	}
	caller, err := voiceCaller(w)
	if err != nil {
		return nil, err
	}
	// The pipeline's inbox comes first: the detector, the engine and the executor report
	// to it, and the pipeline built last takes what they reported.
	inbox := pipeline.NewInbox(0)
	if s.detector, err = detector.New(detector.Options{Redis: w.rc, KeyPrefix: w.keyPrefix, Ledger: s.ledger, Tenants: app.DetectorTenants(w.file),
		OnEvent: inbox.OnDetection, Clock: w.clock, Logger: w.log, PollInterval: w.env.LoopInterval, Window: w.window}); err != nil {
		return nil, err
	}
	if err := metrics.WatchDetector(w.registry, s.detector); err != nil {
		return nil, err
	}
	councilMetrics, err := metrics.NewCouncil(w.registry)
	if err != nil {
		return nil, err
	}
	proposer, answerer, err := councilParts(w, tenants, councilMetrics, s.github.source, s.detector)
	if err != nil {
		return nil, err
	}
	var transports []conversation.Transport
	if w.env.TelegramEnabled() {
		if s.telegram, err = telegram.New(telegram.Options{Token: w.env.TelegramBotToken.Reveal(), APIURL: w.env.TelegramAPIURL, Redis: w.rc,
			KeyPrefix: w.keyPrefix, Logger: w.log, WebhookSecret: w.env.TelegramWebhookSecret.Reveal()}); err != nil {
			return nil, err
		}
		transports = append(transports, s.telegram)
		s.webhook = w.env.TelegramWebhook()
	}
	if s.whatsapp, err = newWhatsApp(w); err != nil {
		return nil, err
	}
	if s.whatsapp != nil {
		transports = append(transports, s.whatsapp)
	}
	health := app.Health{Detector: s.detector, Clock: w.clock}
	s.engine, err = conversation.New(conversation.Options{
		Ledger: s.ledger, Approvals: s.approvals, Redis: w.rc, KeyPrefix: w.keyPrefix, Tenants: tenants, Clock: w.clock, Logger: w.log, Caller: caller,
		Commits: s.github.source, Answerer: answerer, LinkURL: linkURL(w.env.PublicURL), Status: health, Charts: health, Transports: transports,
		OnAuthorized: inbox.OnAuthorized, OnThrottled: floods.Throttled,
	})
	if err != nil {
		return nil, err
	}
	if s.executor, err = executor.New(executor.Options{Redis: w.rc, KeyPrefix: w.keyPrefix, Ledger: s.ledger, Targets: executorTargets(w.file), Logger: w.log, Clock: w.clock,
		Poll: w.executorPoll, Executed: w.executed, OnOutcome: inbox.OnOutcome}); err != nil {
		return nil, err
	}
	metrics, err := metrics.NewPipeline(w.registry)
	if err != nil {
		return nil, err
	}
	if s.pipeline, err = pipeline.New(pipeline.Options{Inbox: inbox, Ledger: pipeline.Ledger{Ledger: s.ledger}, Conversation: s.engine, Executor: s.executor,
		Settler: s.detector, Tenants: tenants, Logger: w.log, Metrics: metrics, Proposer: proposer}); err != nil {
		return nil, err
	}
	ready := []app.Check{
		{Name: "redis", Check: func(ctx context.Context) error { return w.rc.Ping(ctx).Err() }},
		{Name: "ledger", Check: s.store.Ping},
	}
	if s.server, err = app.NewServer(app.ServerOptions{Addr: w.addr, Logger: w.log, Registry: w.registry, Ready: ready}); err != nil {
		return nil, err
	}
	if w.env.StatusToken.IsSet() {
		st, err := app.StatusHandler(app.StatusOptions{Token: w.env.StatusToken.Reveal(), Version: version, Started: w.clock(), Clock: w.clock,
			Tenants: s.tenants, Env: w.env.Redacted(), Store: s.store, Ledger: s.ledger, Losses: s.losses, Checks: ready, Sink: w.sinkName})
		if err != nil {
			return nil, err
		}
		s.server.Handle("GET /__alertengine/status", st)
	}
	// The route reads its body as a stream up to the tenant's own limit (20 MiB for the
	// default 10,000 alerts), and logs and counts what it refuses.
	s.server.HandleOwnLimit("POST /alertmanager/webhook", s.detector.AlertmanagerHandler())
	s.server.Handle("GET /action/recover", links.Preview(s.engine, w.log))
	s.server.Handle("POST /action/recover/confirm", links.Confirm(s.engine, w.log))
	if s.telegram != nil && s.webhook {
		s.server.Handle("POST /telegram/webhook", s.telegram.WebhookHandler(s.engine))
	}
	if s.github.webhook != nil {
		s.server.HandleLimit("POST /github/webhook", s.github.webhook, commits.MaxBody)
	}
	if s.whatsapp != nil {
		s.server.Handle("POST "+whatsapp.WebhookPath, s.whatsapp.WebhookHandler(s.engine))
		s.server.Handle("GET "+whatsapp.MediaPath, s.whatsapp.MediaHandler())
	}
	return s, nil
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

// run runs every loop of the system until ctx ends; the first loop that fails stops the
// others.
func (s *system) run(ctx context.Context, serve func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loops := map[string]func(context.Context) error{
		"http":     serve,
		"detector": s.detector.Run,
		"executor": s.executor.Run,
		"pipeline": s.pipeline.Run,
		"ledger":   s.ledgerGuard,
		"deadlines": func(ctx context.Context) error {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					if err := s.engine.Tick(ctx); err != nil {
						s.log.Warn("approval deadlines", "err", err)
					}
				}
			}
		},
	}
	if s.github.stats != nil {
		loops["github-stats"] = s.github.stats.Run
	}
	if s.telegram != nil {
		// A chat platform being down must never stop detection or execution: its loops
		// retry with backoff instead of ending the process.
		if s.webhook {
			loops["telegram-webhook"] = func(ctx context.Context) error {
				return retrying(ctx, s.log, "telegram setWebhook", func(ctx context.Context) error {
					if err := s.telegram.SetWebhook(ctx, s.publicURL+"/telegram/webhook"); err != nil {
						return err
					}
					<-ctx.Done()
					return nil
				})
			}
		} else {
			loops["telegram"] = func(ctx context.Context) error {
				return retrying(ctx, s.log, "telegram long polling", func(ctx context.Context) error { return s.telegram.Run(ctx, s.engine) })
			}
		}
	}
	if s.whatsapp != nil {
		loops["whatsapp-template"] = func(ctx context.Context) error { return checkWhatsAppTemplate(ctx, s.whatsapp, s.log) }
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(loops))
	for name, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// retrying runs f until ctx ends, again after each failure, waiting 1 s doubling to 1 min.
func retrying(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) error {
	wait := time.Second
	for {
		err := f(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stopped")
		}
		log.Warn(what+" failed; retrying", "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, time.Minute)
	}
}
