package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/console"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// The demo tenant.
const (
	Tenant      = "demo"
	ServiceName = "checkout"
	Repo        = "demo/checkout"
)

// ErrUsage: the environment cannot run the tour (the caller exits 2, not 1).
var ErrUsage = errors.New("demo: unusable environment")

// People are the people of the demo tenant, the identities of the console's picker: an
// approver, a viewer (whose Approve is refused) and a second approver (rollback is
// high-risk: it needs two different approvers).
func People() []console.Person {
	return []console.Person{
		{Name: "tendai", Role: console.RoleApprover},
		{Name: "vimbai", Role: console.RoleViewer},
		{Name: "rudo", Role: console.RoleApprover},
	}
}

// Config is the demo tenant, as a tenants file would describe it.
func Config(recoveryURL, recoverySecret string) *config.File {
	t := config.Tenant{
		ID:       Tenant,
		Services: []config.Service{{Name: ServiceName, Repos: []string{Repo}}}, // push mode: the SDK ships to Redis
		Recovery: config.Recovery{URL: recoveryURL, Secret: config.Secret(recoverySecret), AllowPrivateNetwork: true, DefaultAction: "restart_workers",
			Actions: []config.Action{{Name: "restart_workers", Risk: config.RiskLow}, {Name: "rollback", Risk: config.RiskHigh}}},
		Policy: config.Policy{MinScoreToAlert: config.DefaultPolicyMinScoreToAlert, ApprovalTTL: 5 * time.Minute, EscalateAfter: 3 * time.Minute, RefuseSuspectApproval: true,
			RiskyPaths: []string{"**/migrations/**", "**/*.sql", "**/db/**", "**/*query*"}},
		Limits: config.Limits{IncidentsPerHour: 100},
	}
	for _, p := range People() {
		t.People = append(t.People, config.Person{Name: p.Name, Role: config.Role(p.Role)})
	}
	return &config.File{Name: "(demo tenant)", Tenants: []config.Tenant{t}}
}

// WithConsole gives the demo tenant its console chat, and each of its people their
// console identity (their name), so the engine knows who the picker says you are.
func WithConsole(ts []conversation.Tenant) []conversation.Tenant {
	for i := range ts {
		if ts[i].ID != Tenant {
			continue
		}
		ts[i].Chats = append(ts[i].Chats, console.Chat(Tenant))
		for j := range ts[i].People {
			p := &ts[i].People[j]
			ids := map[conversation.Channel]string{conversation.Console: p.Name}
			for ch, id := range p.IDs {
				ids[ch] = id
			}
			p.IDs = ids
		}
	}
	return ts
}

// TourOptions are the tour's timings (the defaults are the tour's; tests shorten them)
// and where it logs.
type TourOptions struct {
	Rate        int           // synthetic requests per second
	Slow        time.Duration // a request's duration during the fault
	Window      time.Duration // the detector's window
	HealthEvery time.Duration // the console's health refresh
	ClockTick   time.Duration // how often the embedded Redis's clock is moved on
	Logger      *slog.Logger
	// Lookup reads the environment for the channels' own variables.
	Lookup channel.Lookup
}

func (o *TourOptions) defaults() {
	if o.Rate == 0 {
		o.Rate = 40
	}
	if o.Slow == 0 {
		o.Slow = 900 * time.Millisecond
	}
	if o.HealthEvery == 0 {
		o.HealthEvery = time.Second
	}
	if o.ClockTick == 0 {
		o.ClockTick = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Tour is a started demo: the bot with its console, the demo service and its traffic.
type Tour struct {
	// URL is the console's address.
	URL     string
	Service *Service
	// App is the bot the tour runs.
	App *app.App
	// Done receives the first failure (nil after a clean stop) once everything stopped.
	Done    <-chan error
	cleanup []func()
}

// Close stops what StartTour started, last first.
func (t *Tour) Close() {
	for i := len(t.cleanup) - 1; i >= 0; i-- {
		t.cleanup[i]()
	}
	t.cleanup = nil
}

// StartTour starts every part of the demo and returns once the console listens. It is
// the same bot as serve (app.New), plus the web console as a chat platform, a demo service
// that ships its metrics through the SDK, and the embedded Redis unless REDIS_URL is set.
func StartTour(ctx context.Context, env config.Env, o TourOptions) (*Tour, error) {
	o.defaults()
	log := o.Logger
	done := make(chan error, 1)
	d := &Tour{Done: done}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	ln, err := net.Listen("tcp", env.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s is already in use; set ADDR to another address (e.g. ADDR=127.0.0.1:8081)", env.Addr)
		}
		return nil, fmt.Errorf("cannot listen on %s: %w", env.Addr, err)
	}
	d.cleanup = append(d.cleanup, func() { _ = ln.Close() })
	d.URL = "http://" + Browsable(ln.Addr().String()) + "/"
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		log.Warn("the demo console listens beyond this machine: anyone who reaches it can act as any demo person", "addr", ln.Addr().String())
	}

	// Redis: the embedded one, its clock driven so TTLs expire, unless REDIS_URL is set.
	var rc redis.UniversalClient
	var redisURL, desc string
	var mr *miniredis.Miniredis
	prefix := env.RedisKeyPrefix + "demo-" + randomHex(4) + ":" // each run starts fresh
	if env.EmbeddedRedis() {
		mr = miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return nil, fmt.Errorf("embedded Redis: %w", err)
		}
		d.cleanup = append(d.cleanup, mr.Close)
		redisURL, desc = "redis://"+mr.Addr(), "embedded"
		rc = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	} else {
		if !env.RedisURL.IsSet() {
			return nil, fmt.Errorf("%w: the demo service's SDK needs REDIS_URL (cluster and sentinel addresses alone are not enough)", ErrUsage)
		}
		var cerr error
		if rc, desc, cerr = app.Connect(ctx, env); cerr != nil {
			return nil, fmt.Errorf("%w: %w", ErrUsage, cerr)
		}
		redisURL = env.RedisURL.Reveal()
	}
	d.cleanup = append(d.cleanup, func() { _ = rc.Close() })
	app.RouteRedisLog(log) // Redis answers: its client's own lines go through the log from now on

	// Secrets: the environment's, else random for this run.
	secret := []byte(env.AlertSecret.Reveal())
	if len(secret) == 0 {
		secret = []byte(randomHex(32))
	}
	key, haveKey := env.SigningKey()
	if !haveKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		key = k
	}
	recoverySecret := randomHex(24)
	if !env.GitHubWebhookSecret.IsSet() {
		// The demo commit is delivered through the real /github/webhook, signed.
		env.GitHubWebhookSecret = config.Secret(randomHex(24))
	}

	// The demo service, on its own local port, with its recovery webhook.
	svcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo service: %w", err)
	}
	d.cleanup = append(d.cleanup, func() { _ = svcLn.Close() })
	svcURL := "http://" + svcLn.Addr().String()
	svc, err := New(Options{Tenant: Tenant, Service: ServiceName, RedisURL: redisURL, KeyPrefix: prefix, RecoverySecret: recoverySecret,
		Actions: []string{"restart_workers", "rollback"}, Rate: o.Rate, Slow: o.Slow, Logger: log})
	if err != nil {
		return nil, err
	}
	d.Service = svc
	d.cleanup = append(d.cleanup, func() { _ = svc.Close() })
	deployer, err := NewDeployer(DeployerOptions{WebhookURL: "http://" + Browsable(ln.Addr().String()) + "/github/webhook",
		Secret: []byte(env.GitHubWebhookSecret.Reveal()), Repo: Repo, Logger: log})
	if err != nil {
		return nil, err
	}

	// The bot: the same assembly as serve, plus the console.
	newConsole := func(p app.Parts) (channel.Adapter, error) {
		return console.New(console.Options{Tenant: Tenant, People: People(), Service: ServiceName, Status: p.Health,
			Charts: app.Health{Detector: p.Health.Detector, Window: 5 * time.Minute, Width: 320, Height: 240}, Ledger: p.Store, Signer: key,
			Controls: Scenario{Service: svc, Deployer: deployer, Logger: log}, HealthEvery: o.HealthEvery, Logger: log,
			Intro: `Press "Simulate spike", wait for the incident card, ask a question, pick who you are and press Approve.`})
	}
	bot, err := app.New(app.Options{Env: env, File: Config(svcURL+"/recover", recoverySecret), Lookup: o.Lookup, Redis: rc, Logger: log, Signer: key, Secret: secret,
		Listener: ln, KeyPrefix: prefix, Tenants: WithConsole, Window: o.Window, Adapters: []func(app.Parts) (channel.Adapter, error){newConsole}})
	if err != nil {
		return nil, err
	}
	d.cleanup = append(d.cleanup, bot.Close)
	d.App = bot

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	d.cleanup = append(d.cleanup, func() { cancel(); wg.Wait() })
	loops := []app.Loop{
		{Name: "bot", Run: bot.Run},
		{Name: "demo service", Run: func(ctx context.Context) error { return svc.Serve(ctx, svcLn) }},
		{Name: "traffic", Run: func(ctx context.Context) error { return svc.Drive(ctx, svcURL) }},
	}
	if mr != nil {
		loops = append(loops, app.Loop{Name: "redis clock", Run: func(ctx context.Context) error {
			t := time.NewTicker(o.ClockTick)
			defer t.Stop()
			return DriveClock(ctx, mr, time.Now(), t.C)
		}})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- app.RunLoops(runCtx, log, loops...)
	}()
	log.Info("alertengine demo", "url", d.URL, "redis", desc, "service", svcURL)
	ok = true
	return d, nil
}

// Browsable turns a listen address into one a browser can open (":8080" →
// 127.0.0.1:8080).
func Browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// Intro is what `bot demo` prints once the tour runs: where to open it (%s, the URL) and
// what to try.
const Intro = `AlertEngine demo — open %s

  1. Press "Simulate spike": the demo service (checkout) turns slow and starts failing.
  2. Within seconds the policy opens an incident: its card appears with the diagnosis.
  3. Ask in the thread ("what changed?", "why?"). Pick who you are under "You are" and
     press Approve: as vimbai (a viewer: refused), then as tendai (an approver). Both
     lenses suggest rollback, a high-risk action that needs two different approvers:
     tendai's press records 1 of 2, then press again as rudo (the second approver).
     The recovery webhook runs and clears the fault.
  4. When the service is healthy again the incident is RESOLVED: open "Replay & verify"
     for the hash-chained timeline and the auditor's export.

Ctrl-C stops the demo.
`
