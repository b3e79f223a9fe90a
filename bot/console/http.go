package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

// Limits of what a visitor can send.
const (
	// MaxText is the longest message the text box accepts, in characters (Unicode code
	// points, what the page counts too: "é" is one, whatever its bytes).
	MaxText = 2000
	// sessionCookie holds the visitor's session id; the page carries its token.
	sessionCookie = "ae_console"
	tokenHeader   = "X-Console-Token"
	// heartbeat keeps idle event streams open through proxies.
	heartbeat = 15 * time.Second
)

// Routes returns the console's HTTP routes to mount on the bot's server; what the visitor
// types and presses goes to h. "Simulate spike" and "Recover" are among them only with
// Controls.
func (c *Console) Routes(h conversation.Handler) []channel.Route {
	if h == nil {
		panic("console: Routes without a handler")
	}
	r := []channel.Route{
		{Pattern: "GET /{$}", Handler: http.HandlerFunc(c.page)},
		{Pattern: "GET /events", Handler: http.HandlerFunc(c.events)},
		{Pattern: "GET /favicon.ico", Handler: http.HandlerFunc(favicon)},
		{Pattern: "GET /chart.png", Handler: http.HandlerFunc(c.chart)},
		{Pattern: "GET /img/{id}", Handler: http.HandlerFunc(c.img)},
		{Pattern: "POST /say", Handler: c.guard(func(w http.ResponseWriter, r *http.Request, as string) { c.say(w, r, h, as) })},
		{Pattern: "POST /press", Handler: c.guard(func(w http.ResponseWriter, r *http.Request, as string) { c.press(w, r, h, as) })},
		{Pattern: "GET /audit/{incident}", Handler: http.HandlerFunc(c.audit)},
		{Pattern: "GET /audit/{incident}/export.jsonl", Handler: http.HandlerFunc(c.exportJSONL)},
		{Pattern: "GET /audit/{incident}/report.md", Handler: http.HandlerFunc(c.report)},
	}
	if c.o.Controls != nil {
		r = append(r, c.controls()...)
	}
	return r
}

// controls are the demo's "Simulate spike" and "Recover".
func (c *Console) controls() []channel.Route {
	var r []channel.Route
	r = append(r, channel.Route{Pattern: "POST /demo/spike", Handler: c.guard(func(w http.ResponseWriter, r *http.Request, _ string) {
		c.o.Controls.Spike()
		c.refreshHealth(r.Context())
		writeJSON(w, http.StatusOK, map[string]string{"toast": "Fault injected: the demo service is slow and failing. Watch the health panel; a card opens when the policy judges it."})
	})})
	r = append(r, channel.Route{Pattern: "POST /demo/recover", Handler: c.guard(func(w http.ResponseWriter, r *http.Request, as string) {
		was := c.o.Controls.Faulty()
		c.o.Controls.Recover()
		c.refreshHealth(r.Context())
		if was {
			// Say in each open incident's thread who cleared the fault: the ledger
			// will record the recovery as the detector's (healthy again), not as
			// anyone's approved action.
			line := conversation.Block{Style: conversation.Bold, Text: "🔧 " + as + " pressed Recover: the demo service's fault was cleared by hand, outside the bot."}
			more := conversation.Block{Style: conversation.Muted, Text: "No recovery action runs; the incident closes as RECOVERED once the detector sees the service healthy again."}
			open := c.openThreads()
			if len(open) == 0 {
				c.note("", line)
			}
			for _, root := range open {
				c.note(root, line, more)
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"toast": "Fault cleared by hand: the service recovers without any action being run."})
	})})
	return r
}

func securityHeaders(w http.ResponseWriter, nonce string) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// session returns the visitor's session id, setting a new one when absent or malformed.
func (c *Console) session(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(sessionCookie); err == nil && validSession(ck.Value) {
		return ck.Value
	}
	id := newID(16)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return id
}

func validSession(v string) bool {
	if len(v) != 32 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// token is the CSRF token of a session: only a page rendered for that session has it.
func (c *Console) token(session string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(session))
	return hex.EncodeToString(m.Sum(nil))
}

// sameOrigin reports whether r was sent by a page of this origin: its Origin header
// names this host, or, without one, the browser says so in Sec-Fetch-Site.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host == r.Host
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// guard checks a POST: same origin, the session's token, and a person of the picker
// (the "as" field), whose name it passes on.
func (c *Console) guard(h func(w http.ResponseWriter, r *http.Request, as string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "Refused: this request did not come from the console page."})
			return
		}
		ck, err := r.Cookie(sessionCookie)
		if err != nil || !validSession(ck.Value) || !hmac.Equal([]byte(r.Header.Get(tokenHeader)), []byte(c.token(ck.Value))) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "Refused: the page's session expired. Reload the page."})
			return
		}
		if err := r.ParseForm(); err != nil {
			code := http.StatusBadRequest
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				code = http.StatusRequestEntityTooLarge
			}
			writeJSON(w, code, map[string]string{"error": "Unreadable request."})
			return
		}
		as := r.PostForm.Get("as")
		if !c.isPerson(as) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Pick who you are first."})
			return
		}
		h(w, r, as)
	})
}

func (c *Console) isPerson(name string) bool {
	for _, p := range c.o.People {
		if p.Name == name {
			return true
		}
	}
	return false
}

// call runs f with the call timeout, detached from the request: a visitor closing the tab
// never leaves an approval half-done.
func (c *Console) call(r *http.Request, f func(ctx context.Context) (conversation.Reply, error)) (conversation.Reply, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), c.o.CallTimeout)
	defer cancel()
	return f(ctx)
}

func (c *Console) say(w http.ResponseWriter, r *http.Request, h conversation.Handler, as string) {
	text := strings.TrimSpace(r.PostForm.Get("text"))
	switch {
	case text == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Type something first."})
		return
	case !utf8.ValidString(text):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "This text is not valid UTF-8; nothing was sent."})
		return
	case utf8.RuneCountInString(text) > MaxText:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("Messages are at most %d characters; this one has %d. Nothing was sent: shorten it and send again.",
			MaxText, utf8.RuneCountInString(text))})
		return
	}
	thread := r.PostForm.Get("thread")
	if c.threadOf(thread) == "" {
		thread = "" // not a thread the console holds: outside threads
	}
	m := c.said(thread, as, text)
	in := conversation.Inbound{Chat: c.chat, User: UserOf(as), Text: text, ReplyTo: thread, MessageID: m.ID, Direct: true}
	rep, err := c.call(r, func(ctx context.Context) (conversation.Reply, error) { return h.Handle(ctx, in) })
	if err != nil {
		c.o.Logger.Error("console message", "err", err)
		writeJSON(w, http.StatusOK, map[string]string{"toast": "Something went wrong; nothing was done."})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"toast": rep.Toast})
}

func (c *Console) threadOf(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.threadOfLocked(id)
}

func (c *Console) press(w http.ResponseWriter, r *http.Request, h conversation.Handler, as string) {
	id, data := r.PostForm.Get("msg"), r.PostForm.Get("data")
	if _, ok := c.hasButton(id, data); !ok {
		writeJSON(w, http.StatusOK, map[string]string{"toast": "This button is no longer there."})
		return
	}
	in := conversation.Inbound{Chat: c.chat, User: UserOf(as), Data: data, ReplyTo: id, Direct: true}
	rep, err := c.call(r, func(ctx context.Context) (conversation.Reply, error) { return h.Handle(ctx, in) })
	if err != nil {
		c.o.Logger.Error("console press", "err", err)
	}
	toast := rep.Toast
	if toast == "" {
		toast = "Something went wrong; nothing was run."
	}
	writeJSON(w, http.StatusOK, map[string]string{"toast": as + ": " + toast})
}

func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	sess := c.session(w, r)
	nonce := newID(16)
	threads, lobby := pageOf(c.snapshot(), c.stageOf)
	v := pageView{Nonce: nonce, Token: c.token(sess), Intro: c.o.Intro, People: c.o.People, Health: c.healthView(r.Context()), Threads: threads, Lobby: lobby, MaxText: MaxText}
	var b bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&b, "page", v); err != nil {
		c.o.Logger.Error("render console page", "err", err)
		http.Error(w, "the console page could not be rendered", http.StatusInternalServerError)
		return
	}
	securityHeaders(w, nonce)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// events streams the page's updates (server-sent events) until the page goes away.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	// An event stream outlives the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	ch := c.subscribe()
	if ch == nil {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many open console pages", http.StatusServiceUnavailable)
		return
	}
	defer c.unsubscribe(ch)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": AlertEngine console\n\n")
	fl.Flush()
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case ev, open := <-ch:
			if !open {
				return // too slow: the page reloads
			}
			// Data is JSON: one line, so one data field.
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Name, ev.Data); err != nil {
				return
			}
		}
		fl.Flush()
	}
}

func (c *Console) img(w http.ResponseWriter, r *http.Request) {
	png, ok := c.image(r.PathValue("id"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(png)
}

func (c *Console) chart(w http.ResponseWriter, r *http.Request) {
	if c.o.Charts == nil || c.o.Service == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.o.CallTimeout)
	defer cancel()
	img, err := c.o.Charts.Chart(ctx, c.o.Tenant, c.o.Service, time.Time{})
	if err != nil {
		c.o.Logger.Warn("console chart", "err", err)
		http.Error(w, "no chart", http.StatusServiceUnavailable)
		return
	}
	if img == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(img.PNG)
}

var incidentPattern = regexp.MustCompile(`^INC-[0-9A-Z]{1,16}$`)

// history reads an incident's entries; ok false has answered the request.
func (c *Console) history(w http.ResponseWriter, r *http.Request) (string, []ledger.Entry, bool) {
	id := strings.ToUpper(r.PathValue("incident"))
	if !incidentPattern.MatchString(id) {
		http.Error(w, "not an incident id", http.StatusBadRequest)
		return "", nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.o.CallTimeout)
	defer cancel()
	hist, err := c.o.Ledger.History(ctx, c.o.Tenant, id)
	if err != nil {
		c.o.Logger.Error("console audit", "incident", id, "err", err)
		http.Error(w, "the ledger could not be read", http.StatusServiceUnavailable)
		return "", nil, false
	}
	if len(hist) == 0 {
		http.Error(w, "no such incident", http.StatusNotFound)
		return "", nil, false
	}
	return id, hist, true
}

func (c *Console) publicKey() ed25519.PublicKey { return c.o.Signer.Public().(ed25519.PublicKey) }

// audit is the incident's replay: its timeline from the ledger and whether the tenant's
// chain verifies against the signing key.
func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	id, hist, ok := c.history(w, r)
	if !ok {
		return
	}
	in, foldErr := ledger.Fold(hist)
	ctx, cancel := context.WithTimeout(r.Context(), c.o.CallTimeout)
	defer cancel()
	rep, verr := ledger.VerifyStore(ctx, c.o.Ledger, c.o.Tenant, c.publicKey())
	v := auditView{Nonce: newID(16), Incident: id, Service: in.Service, Stage: string(in.Stage), Rows: auditRows(hist)}
	switch {
	case verr != nil:
		v.Verdict = "Chain DOES NOT VERIFY: " + verr.Error()
	case foldErr != nil:
		v.Verdict = fmt.Sprintf("Chain verified (%d entries), but the incident does not fold: %v", rep.Entries, foldErr)
	default:
		v.Verified = true
		v.Verdict = fmt.Sprintf("✓ Chain verified: %d entries of tenant %s, hash-chained from genesis to %s.", rep.Entries, c.o.Tenant, shortHash(rep.TailHash))
	}
	var b bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&b, "audit", v); err != nil {
		c.o.Logger.Error("render console audit", "err", err)
		http.Error(w, "the audit page could not be rendered", http.StatusInternalServerError)
		return
	}
	securityHeaders(w, v.Nonce)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// exportJSONL downloads the auditor's export: the tenant's whole chain and a signed
// checkpoint (a chain proves integrity only when contiguous).
func (c *Console) exportJSONL(w http.ResponseWriter, r *http.Request) {
	id, _, ok := c.history(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.o.CallTimeout)
	defer cancel()
	var b bytes.Buffer
	if _, err := ledger.ExportJSONL(ctx, c.o.Ledger, c.o.Tenant, c.o.Signer, c.o.Clock(), &b); err != nil {
		c.o.Logger.Error("console export", "err", err)
		http.Error(w, "the export could not be made", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.jsonl"`, c.o.Tenant, id))
	_, _ = w.Write(b.Bytes())
}

// report downloads the one-page Markdown report of the incident.
func (c *Console) report(w http.ResponseWriter, r *http.Request) {
	id, hist, ok := c.history(w, r)
	if !ok {
		return
	}
	in, err := ledger.Fold(hist)
	if err != nil {
		http.Error(w, "the incident does not fold", http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.o.CallTimeout)
	defer cancel()
	rep, verr := ledger.VerifyStore(ctx, c.o.Ledger, c.o.Tenant, c.publicKey())
	var b bytes.Buffer
	if err := ledger.WriteReport(&b, in, hist, rep, verr); err != nil {
		http.Error(w, "the report could not be made", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.md"`, c.o.Tenant, id))
	_, _ = w.Write(b.Bytes())
}

// favicon is the console's icon (an inline SVG: a page load asks for it; no 404).
func favicon(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(faviconSVG))
}

const faviconSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1d2330"/>` +
	`<path d="M16 5 L28 26 H4 Z" fill="#ffb020"/><rect x="14.5" y="12" width="3" height="8" fill="#1d2330"/><rect x="14.5" y="22" width="3" height="2.5" fill="#1d2330"/></svg>`

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
