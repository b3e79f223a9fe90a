package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/console"
	"github.com/alertengine/alertengine/bot/demo"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// The demo tenant.
const (
	demoTenant  = "demo"
	demoService = "checkout"
	demoRepo    = "demo/checkout"
)

// demoPeople are the people of the demo tenant, the identities of the console's picker:
// an approver, a viewer (whose Approve is refused) and a second approver (rollback is
// high-risk: it needs two different approvers).
func demoPeople() []console.Person {
	return []console.Person{
		{Name: "tendai", Role: console.RoleApprover},
		{Name: "vimbai", Role: console.RoleViewer},
		{Name: "rudo", Role: console.RoleApprover},
	}
}

// demoConfig is the demo tenant, as a tenants file would describe it.
func demoConfig(recoveryURL, recoverySecret string) *config.File {
	t := config.Tenant{
		ID:       demoTenant,
		Services: []config.Service{{Name: demoService, Repos: []string{demoRepo}}}, // push mode: the SDK ships to Redis
		Recovery: config.Recovery{URL: recoveryURL, Secret: config.Secret(recoverySecret), AllowPrivateNetwork: true, DefaultAction: "restart_workers",
			Actions: []config.Action{{Name: "restart_workers", Risk: config.RiskLow}, {Name: "rollback", Risk: config.RiskHigh}}},
		Policy: config.Policy{MinScoreToAlert: config.DefaultPolicyMinScoreToAlert, ApprovalTTL: 5 * time.Minute, EscalateAfter: 3 * time.Minute, RefuseSuspectApproval: true,
			RiskyPaths: []string{"**/migrations/**", "**/*.sql", "**/db/**", "**/*query*"}},
		Limits: config.Limits{IncidentsPerHour: 100},
	}
	for _, p := range demoPeople() {
		t.People = append(t.People, config.Person{Name: p.Name, Role: config.Role(p.Role)})
	}
	return &config.File{Name: "(demo tenant)", Tenants: []config.Tenant{t}}
}

// withConsole gives the demo tenant its console chat, and each of its people their
// console identity (their name), so the engine knows who the picker says you are.
func withConsole(ts []conversation.Tenant) []conversation.Tenant {
	for i := range ts {
		if ts[i].ID != demoTenant {
			continue
		}
		ts[i].Chats = append(ts[i].Chats, console.Chat(demoTenant))
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

// demoOptions are the demo's timings; the defaults are the tour's, tests shorten them.
type demoOptions struct {
	rate        int           // synthetic requests per second
	slow        time.Duration // a request's duration during the fault
	window      time.Duration // the detector's window
	healthEvery time.Duration // the console's health refresh
	clockTick   time.Duration // how often the embedded Redis's clock is moved on
}

func (o *demoOptions) defaults() {
	if o.rate == 0 {
		o.rate = 40
	}
	if o.slow == 0 {
		o.slow = 900 * time.Millisecond
	}
	if o.healthEvery == 0 {
		o.healthEvery = time.Second
	}
	if o.clockTick == 0 {
		o.clockTick = 500 * time.Millisecond
	}
}

// demoRun is a started demo.
type demoRun struct {
	url     string
	log     *slog.Logger
	service *demo.Service
	done    chan error
	cleanup []func()
}

func (d *demoRun) close() {
	for i := len(d.cleanup) - 1; i >= 0; i-- {
		d.cleanup[i]()
	}
}

// runDemo is the zero-config tour (README, "The demo").
func runDemo(ctx context.Context, a *cli, args []string) int {
	if code, ok := parse(a.flags("demo"), args); !ok {
		return code
	}
	env, err := config.LoadEnv(a.lookup, config.Demo)
	if err != nil {
		return a.problems(err)
	}
	d, code, err := startDemo(ctx, a, env, demoOptions{})
	if err != nil {
		fmt.Fprintln(a.stderr, "bot demo: "+err.Error())
		return code
	}
	defer d.close()
	fmt.Fprintf(a.stdout, `AlertEngine demo — open %s

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
`, d.url)
	if err := <-d.done; err != nil {
		d.log.Error("stopped", "err", err)
		fmt.Fprintln(a.stderr, "bot demo: "+err.Error())
		return exitFailed
	}
	d.log.Info("stopped")
	return exitOK
}

// startDemo starts every part of the demo and returns once the console listens. The
// returned code is the exit code of a failure.
func startDemo(ctx context.Context, a *cli, env config.Env, o demoOptions) (*demoRun, int, error) {
	o.defaults()
	log := newLogger(env, a.stderr)
	d := &demoRun{done: make(chan error, 1), log: log}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	ln, err := net.Listen("tcp", env.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, exitFailed, fmt.Errorf("%s is already in use; set ADDR to another address (e.g. ADDR=127.0.0.1:8081)", env.Addr)
		}
		return nil, exitFailed, fmt.Errorf("cannot listen on %s: %w", env.Addr, err)
	}
	d.cleanup = append(d.cleanup, func() { _ = ln.Close() })
	d.url = "http://" + browsable(ln.Addr().String()) + "/"
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
			return nil, exitFailed, fmt.Errorf("embedded Redis: %w", err)
		}
		d.cleanup = append(d.cleanup, mr.Close)
		redisURL, desc = "redis://"+mr.Addr(), "embedded"
		rc = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	} else {
		if !env.RedisURL.IsSet() {
			return nil, exitUsage, errors.New("the demo service's SDK needs REDIS_URL (cluster and sentinel addresses alone are not enough)")
		}
		var cerr error
		rc, desc, cerr = redisClient(env)
		if cerr != nil {
			return nil, exitUsage, cerr
		}
		if err := pingRedis(ctx, rc); err != nil {
			_ = rc.Close()
			return nil, exitUsage, fmt.Errorf("%s: Redis does not answer: %s", desc, redactErr(err))
		}
		redisURL = env.RedisURL.Reveal()
	}
	d.cleanup = append(d.cleanup, func() { _ = rc.Close() })
	routeRedisLog(log) // Redis answers: its client's own lines go through the log from now on

	// Secrets: the environment's, else random for this run.
	secret := []byte(env.AlertSecret.Reveal())
	if len(secret) == 0 {
		secret = []byte(randomHex(32))
	}
	key, haveKey := env.SigningKey()
	if !haveKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, exitFailed, fmt.Errorf("signing key: %w", err)
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
		return nil, exitFailed, fmt.Errorf("demo service: %w", err)
	}
	d.cleanup = append(d.cleanup, func() { _ = svcLn.Close() })
	svcURL := "http://" + svcLn.Addr().String()
	svc, err := demo.New(demo.Options{Tenant: demoTenant, Service: demoService, RedisURL: redisURL, KeyPrefix: prefix, RecoverySecret: recoverySecret,
		Actions: []string{"restart_workers", "rollback"}, Rate: o.rate, Slow: o.slow, Logger: log})
	if err != nil {
		return nil, exitFailed, err
	}
	d.service = svc
	d.cleanup = append(d.cleanup, func() { _ = svc.Close() })

	// The bot: the same wiring as serve, plus the console.
	file := demoConfig(svcURL+"/recover", recoverySecret)
	sys, err := build(wiring{env: env, file: file, rc: rc, log: log, signer: key, secret: secret, addr: ln.Addr().String(), keyPrefix: prefix,
		tenants: withConsole, window: o.window})
	if err != nil {
		return nil, exitFailed, err
	}
	health := app.Health{Detector: sys.detector}
	deployer, err := demo.NewDeployer(demo.DeployerOptions{WebhookURL: "http://" + browsable(ln.Addr().String()) + "/github/webhook",
		Secret: []byte(env.GitHubWebhookSecret.Reveal()), Repo: demoRepo, Logger: log})
	if err != nil {
		return nil, exitFailed, err
	}
	con, err := console.New(console.Options{Tenant: demoTenant, People: demoPeople(), Handler: sys.engine, Service: demoService,
		Status: health, Charts: app.Health{Detector: sys.detector, Window: 5 * time.Minute, Width: 320, Height: 240}, Ledger: sys.store, Signer: key, Controls: demo.Scenario{Service: svc, Deployer: deployer, Logger: log}, HealthEvery: o.healthEvery, Logger: log,
		Intro: `Press "Simulate spike", wait for the incident card, ask a question, pick who you are and press Approve.`})
	if err != nil {
		return nil, exitFailed, err
	}
	sys.engine.AddTransport(con)
	for pattern, h := range con.Routes() {
		sys.server.Handle(pattern, h)
	}

	runCtx, cancel := context.WithCancel(ctx)
	d.cleanup = append(d.cleanup, cancel)
	loops := map[string]func(context.Context) error{
		"console":      con.Run,
		"demo service": func(ctx context.Context) error { return svc.Serve(ctx, svcLn) },
		"traffic":      func(ctx context.Context) error { return svc.Drive(ctx, svcURL) },
	}
	if mr != nil {
		loops["redis clock"] = func(ctx context.Context) error {
			t := time.NewTicker(o.clockTick)
			defer t.Stop()
			return demo.DriveClock(ctx, mr, time.Now(), t.C)
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(loops)+1)
	for name, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(runCtx); err != nil && runCtx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sys.run(runCtx, func(ctx context.Context) error { return sys.server.Serve(ctx, ln) }); err != nil && runCtx.Err() == nil {
			errc <- err
		}
		cancel()
	}()
	go func() {
		wg.Wait()
		close(errc)
		d.done <- <-errc
	}()
	log.Info("alertengine demo", "url", d.url, "redis", desc, "service", svcURL)
	ok = true
	return d, exitOK, nil
}

// browsable turns a listen address into one a browser can open (":8080" → 127.0.0.1:8080).
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
