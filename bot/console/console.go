package console

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

// Sentinel errors.
var (
	// ErrInvalidOptions wraps every problem Options.Validate finds.
	ErrInvalidOptions = errors.New("console: invalid options")
	// ErrUnknownChat: a message was addressed to a chat that is not this console's.
	ErrUnknownChat = errors.New("console: not this console's chat")
	// ErrUnknownMessage: an edit named a message the console does not hold.
	ErrUnknownMessage = errors.New("console: unknown message")
)

// Roles of the people in the identity picker.
const (
	RoleApprover = "approver"
	RoleViewer   = "viewer"
)

// Person is someone the visitor can act as.
type Person struct {
	Name string
	Role string // RoleApprover or RoleViewer
}

// Controls drive the demo service: inject and clear its fault. Only the demo has them.
type Controls interface {
	Spike()
	Recover()
	// Faulty reports whether the fault is injected.
	Faulty() bool
}

// Options configure a console.
type Options struct {
	// Tenant is the tenant whose incident chat the console is; its chat is Chat(Tenant).
	Tenant string
	// People are the identities of the picker (they must be the tenant's people, with
	// their console identity = their name: see UserOf).
	People []Person
	// Service is the service whose health panel and p95 chart the page shows.
	Service string
	// Status gives the service's latest health (optional: no panel without it).
	Status conversation.StatusSource
	// Charts renders the live p95 chart (optional).
	Charts conversation.Charter
	// Ledger is the tenant's ledger store, for the audit view and the export download.
	Ledger ledger.Store
	// Signer signs the export's checkpoint; its public key verifies the chain.
	Signer ed25519.PrivateKey
	// Controls, when set, add "Simulate spike" and "Recover" (the demo).
	Controls Controls
	// Intro is shown at the top of the page (what to do).
	Intro string
	// MaxMessages bounds the messages kept in memory (default 500); the oldest go first.
	MaxMessages int
	// HealthEvery is how often the health panel refreshes (default 1 s).
	HealthEvery time.Duration
	// CallTimeout bounds each call into the engine and the sources (default 20 s).
	CallTimeout time.Duration
	Clock       func() time.Time
	Logger      *slog.Logger
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Tenant == "" {
		errs = append(errs, errors.New("no tenant"))
	}
	if o.Ledger == nil || o.Signer == nil {
		errs = append(errs, errors.New("no ledger store or signer"))
	}
	if len(o.People) == 0 {
		errs = append(errs, errors.New("no people to act as"))
	}
	seen := map[string]bool{}
	for _, p := range o.People {
		if p.Name == "" || len(p.Name) > 64 || seen[p.Name] {
			errs = append(errs, fmt.Errorf("person %q: names must be 1 to 64 bytes and distinct", p.Name))
		}
		if p.Role != RoleApprover && p.Role != RoleViewer {
			errs = append(errs, fmt.Errorf("person %q: role must be approver or viewer", p.Name))
		}
		seen[p.Name] = true
	}
	if o.MaxMessages < 0 || o.HealthEvery < 0 || o.CallTimeout < 0 {
		errs = append(errs, errors.New("negative limit"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return nil
}

// Chat is the console chat of a tenant: list it among the tenant's incident chats.
func Chat(tenant string) conversation.Chat {
	return conversation.Chat{Channel: conversation.Console, ID: tenant}
}

// UserOf is the chat identity of a person acting in the console: give each person of the
// tenant IDs[conversation.Console] = name.
func UserOf(name string) conversation.User {
	return conversation.User{Channel: conversation.Console, ID: name, Name: name}
}

// message is one message on the page.
type message struct {
	ID      string
	Thread  string // root message id of its incident thread; "" outside threads
	From    string // person who typed it; "" for the bot
	At      time.Time
	Title   string // thread title, on a thread's first message
	Blocks  []conversation.Block
	Buttons [][]conversation.Button
	PNG     []byte
	Alt     string
	Edited  bool
}

// Console is the web chat, a chat platform of its own: it implements channel.Adapter.
type Console struct {
	o      Options
	chat   conversation.Chat
	key    []byte // signs session tokens
	tmpl   *template.Template
	mu     sync.Mutex
	seq    int
	msgs   []*message          // in order
	byID   map[string]*message // live messages
	subs   map[chan event]struct{}
	closed bool   // Run ended: event streams end, new ones end at once
	health string // last rendered health panel
	// threads follow each thread's incident in the ledger, by the thread's root id.
	threads map[string]*threadState
}

// threadState is what the console last read of a thread's incident from the ledger.
type threadState struct {
	incident string
	stage    ledger.Stage
	seen     uint64 // the last entry shown or skipped
}

// event is one server-sent event.
type event struct {
	Name string
	Data string
}

// New returns a console.
func New(o Options) (*Console, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = 500
	}
	if o.HealthEvery == 0 {
		o.HealthEvery = time.Second
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = 20 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("console: session key: %w", err)
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	return &Console{o: o, chat: Chat(o.Tenant), key: key, tmpl: tmpl, byID: map[string]*message{}, subs: map[chan event]struct{}{},
		threads: map[string]*threadState{}}, nil
}

var _ channel.Adapter = (*Console)(nil)

// Check: the console is in-process, always ready.
func (c *Console) Check(context.Context) error { return nil }

// Channel implements conversation.Transport.
func (c *Console) Channel() conversation.Channel { return conversation.Console }

// Capabilities implements conversation.Transport: buttons without a size limit, images,
// threads. The console writes to no one directly: the page is the tenant's chat.
func (c *Console) Capabilities() conversation.Capabilities {
	return conversation.Capabilities{Name: "the console", Buttons: true, Media: true, Threads: true}
}

// OpenThread implements conversation.Transport: a new thread headed by msg.
func (c *Console) OpenThread(_ context.Context, chat conversation.Chat, title string, msg conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	if chat != c.chat {
		return conversation.Thread{}, conversation.MessageRef{}, fmt.Errorf("%w: %s %s", ErrUnknownChat, chat.Channel, chat.ID)
	}
	c.mu.Lock()
	m := c.addLocked("", "", msg)
	m.Thread, m.Title = m.ID, title
	c.threads[m.ID] = &threadState{incident: incidentOf(title)}
	c.mu.Unlock()
	c.publish(m, "thread")
	return conversation.Thread{Chat: chat, Root: m.ID}, conversation.MessageRef{Chat: chat, ID: m.ID}, nil
}

// Post implements conversation.Transport: msg goes into the thread th.Root belongs to
// (th.Root may be a thread's first message or any message in it).
func (c *Console) Post(_ context.Context, th conversation.Thread, msg conversation.Message) (conversation.MessageRef, error) {
	if th.Chat != c.chat {
		return conversation.MessageRef{}, fmt.Errorf("%w: %s %s", ErrUnknownChat, th.Chat.Channel, th.Chat.ID)
	}
	c.mu.Lock()
	m := c.addLocked(c.threadOfLocked(th.Root), "", msg)
	c.mu.Unlock()
	c.publish(m, "message")
	return conversation.MessageRef{Chat: th.Chat, ID: m.ID}, nil
}

// Edit implements conversation.Transport.
func (c *Console) Edit(_ context.Context, ref conversation.MessageRef, msg conversation.Message) error {
	if ref.Chat != c.chat {
		return fmt.Errorf("%w: %s %s", ErrUnknownChat, ref.Chat.Channel, ref.Chat.ID)
	}
	c.mu.Lock()
	m, ok := c.byID[ref.ID]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("%w %s", ErrUnknownMessage, ref.ID)
	}
	m.Blocks, m.Buttons, m.Edited = msg.Blocks, msg.Buttons, true
	if st := c.threads[m.ID]; st != nil {
		m.Blocks = conversation.Headline(m.Blocks, st.stage)
	}
	if msg.Image != nil {
		m.PNG, m.Alt = msg.Image.PNG, msg.Image.Alt
	}
	c.mu.Unlock()
	c.publish(m, "edit")
	return nil
}

// said records what a person typed, in thread (or outside threads), and returns its id.
func (c *Console) said(thread, from, text string) *message {
	c.mu.Lock()
	m := c.addLocked(c.threadOfLocked(thread), from, conversation.Message{Blocks: []conversation.Block{{Style: conversation.Plain, Text: text}}})
	c.mu.Unlock()
	c.publish(m, "message")
	return m
}

// note posts a message of the console itself (not the engine's, not a person's) in
// thread, or outside threads.
func (c *Console) note(thread string, blocks ...conversation.Block) {
	c.mu.Lock()
	m := c.addLocked(c.threadOfLocked(thread), "", conversation.Message{Blocks: blocks})
	c.mu.Unlock()
	c.publish(m, "message")
}

func (c *Console) threadOfLocked(id string) string {
	if m, ok := c.byID[id]; ok {
		return m.Thread
	}
	return ""
}

func (c *Console) addLocked(thread, from string, msg conversation.Message) *message {
	c.seq++
	m := &message{ID: "m" + strconv.Itoa(c.seq), Thread: thread, From: from, At: c.o.Clock(), Blocks: msg.Blocks, Buttons: msg.Buttons}
	if msg.Image != nil {
		m.PNG, m.Alt = msg.Image.PNG, msg.Image.Alt
	}
	c.msgs = append(c.msgs, m)
	c.byID[m.ID] = m
	if over := len(c.msgs) - c.o.MaxMessages; over > 0 {
		for _, old := range c.msgs[:over] {
			delete(c.byID, old.ID)
			delete(c.threads, old.ID)
		}
		c.msgs = append([]*message(nil), c.msgs[over:]...)
	}
	return m
}

// snapshot copies the messages for rendering.
func (c *Console) snapshot() []message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]message, len(c.msgs))
	for i, m := range c.msgs {
		out[i] = *m
	}
	return out
}

// hasButton reports whether message id carries a button with data.
func (c *Console) hasButton(id, data string) (thread string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, found := c.byID[id]
	if !found {
		return "", false
	}
	for _, row := range m.Buttons {
		for _, b := range row {
			if b.Data == data {
				return m.Thread, true
			}
		}
	}
	return "", false
}

func (c *Console) image(id string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.byID[id]
	if !ok || len(m.PNG) == 0 {
		return nil, false
	}
	return m.PNG, true
}

// publish renders m and sends it to every page.
func (c *Console) publish(m *message, kind string) {
	c.mu.Lock()
	cp := *m
	c.mu.Unlock()
	var html string
	var err error
	if kind == "thread" {
		html, err = c.render("thread", threadOf(cp, nil, ledger.None))
	} else {
		html, err = c.render("message", view(cp))
	}
	if err != nil {
		c.o.Logger.Error("render console message", "err", err)
		return
	}
	data, _ := json.Marshal(map[string]string{"thread": cp.Thread, "id": cp.ID, "html": html}) // strings only: cannot fail
	c.broadcast(event{Name: kind, Data: string(data)})
}

// broadcast sends ev to every subscriber; a page that cannot keep up is dropped (its
// script reloads the page, which renders everything again).
func (c *Console) broadcast(ev event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- ev:
		default:
			delete(c.subs, ch)
			close(ch)
		}
	}
}

// MaxStreams bounds the pages streaming at once.
const MaxStreams = 64

// subscribe adds an event stream; nil when MaxStreams are open.
func (c *Console) subscribe() chan event {
	ch := make(chan event, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		close(ch)
		return ch
	}
	if len(c.subs) >= MaxStreams {
		return nil
	}
	c.subs[ch] = struct{}{}
	return ch
}

// closeStreams ends every event stream, so that a server shutting down is not held open
// by pages.
func (c *Console) closeStreams() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for ch := range c.subs {
		delete(c.subs, ch)
		close(ch)
	}
}

func (c *Console) unsubscribe(ch chan event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.subs[ch]; ok {
		delete(c.subs, ch)
		close(ch)
	}
}

// Run refreshes the health panel every HealthEvery until ctx ends; then it ends every
// event stream (a page's stream would otherwise hold the server's graceful shutdown).
// What the visitor says reaches the handler through Routes.
func (c *Console) Run(ctx context.Context, _ conversation.Handler) error {
	t := time.NewTicker(c.o.HealthEvery)
	defer t.Stop()
	defer c.closeStreams()
	for {
		c.refreshHealth(ctx)
		c.refreshThreads(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Console) refreshHealth(ctx context.Context) {
	html, err := c.render("health", c.healthView(ctx))
	if err != nil {
		c.o.Logger.Error("render console health", "err", err)
		return
	}
	c.mu.Lock()
	changed := html != c.health
	c.health = html
	c.mu.Unlock()
	if changed {
		data, _ := json.Marshal(map[string]string{"html": html})
		c.broadcast(event{Name: "health", Data: string(data)})
	}
}

func (c *Console) healthView(ctx context.Context) healthView {
	h := healthView{Service: c.o.Service, Status: "unknown"}
	if c.o.Controls != nil {
		h.Controls, h.Faulty = true, c.o.Controls.Faulty()
	}
	if c.o.Status == nil || c.o.Service == "" {
		return h
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
	defer cancel()
	st, err := c.o.Status.ServiceStatus(ctx, c.o.Tenant, c.o.Service)
	if err != nil {
		c.o.Logger.Warn("console health", "service", c.o.Service, "err", err)
		return h
	}
	h.Status = st.Status
	if !st.At.IsZero() {
		h.Known = true
		h.Score = fmt.Sprintf("%.0f", st.Score)
		h.P95 = fmt.Sprintf("%.0f ms", st.P95Ms)
		h.Errors = fmt.Sprintf("%.1f%%", st.ErrorRate*100)
		h.Trend = st.Trend
		h.Samples = st.SampleSize
		h.At = st.At.UTC().Format("15:04:05")
	}
	return h
}

// refreshThreads reads the ledger of every thread whose incident is still open (or has
// entries not looked at yet): a new stage updates the thread's header (and, once the
// incident is closed, its card's headline); a refused press or a voided approval the
// ledger recorded is shown in the thread, as the ledger has it.
func (c *Console) refreshThreads(ctx context.Context) {
	type todo struct {
		root string
		st   threadState
	}
	var list []todo
	c.mu.Lock()
	for root, st := range c.threads {
		if !st.stage.Terminal() {
			list = append(list, todo{root, *st})
		}
	}
	c.mu.Unlock()
	for _, td := range list {
		if !incidentPattern.MatchString(td.st.incident) {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
		hist, err := c.o.Ledger.History(rctx, c.o.Tenant, td.st.incident)
		cancel()
		if err != nil || len(hist) == 0 {
			continue
		}
		in, err := ledger.Fold(hist)
		if err != nil {
			continue
		}
		for _, e := range hist {
			if e.Seq <= td.st.seen {
				continue
			}
			if blocks, ok := ledgerNote(e, in); ok {
				c.note(td.root, blocks...)
			}
		}
		c.mu.Lock()
		st := c.threads[td.root]
		changed := st != nil && st.stage != in.Stage
		if st != nil {
			st.stage, st.seen = in.Stage, hist[len(hist)-1].Seq
		}
		var card *message
		if changed && in.Stage.Terminal() {
			if m := c.byID[td.root]; m != nil {
				m.Blocks = conversation.Headline(m.Blocks, in.Stage)
				card = m
			}
		}
		c.mu.Unlock()
		if !changed {
			continue
		}
		label, class := stageLabel(in.Stage)
		data, _ := json.Marshal(map[string]string{"id": td.root, "stage": label, "class": class})
		c.broadcast(event{Name: "stage", Data: string(data)})
		if card != nil {
			c.publish(card, "edit")
		}
	}
}

// stageOf returns the stage last read of a thread's incident.
func (c *Console) stageOf(root string) ledger.Stage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.threads[root]; st != nil {
		return st.stage
	}
	return ledger.None
}

// openThreads are the roots of the threads whose incident is not closed, oldest first.
func (c *Console) openThreads() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if st := c.threads[m.ID]; st != nil && m.Thread == m.ID && !st.stage.Terminal() {
			out = append(out, m.ID)
		}
	}
	return out
}

// newID returns a random hex id of n bytes.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
