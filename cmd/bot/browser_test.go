package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/demo"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
)

// chromium finds Debian's chromium (or another Chrome) on this machine.
func chromium() string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestConsoleTourInBrowser is the tour a visitor takes, in a real (headless) browser
// against `bot demo` with its embedded Redis — a fresh clone with no Redis running: open
// the console, Simulate spike, wait for the card, ask "what changed?", Approve as the
// viewer (refused on screen), Approve as the approver, see RESOLVED, /replay, and the
// verified audit. Each step's screenshot is written to the test's artifact directory
// (go test -artifacts keeps them; the path is logged).
func TestConsoleTourInBrowser(t *testing.T) {
	path := chromium()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no chromium on this machine: the browser tour must run in CI (.ci/run installs chromium)")
		}
		testkit.Skip(t, "no chromium on this machine (apt-get install chromium): the browser tour is skipped; CI runs it")
	}
	if !testkit.Race {
		// Most of the tour is waiting for the demo's traffic and the browser: it overlaps
		// the other tests' waits. Under -race it runs alone (chromium and the race
		// detector together starve the others' deadlines).
		t.Parallel()
	}
	e := env{"ADDR": "127.0.0.1:0", "LOG_LEVEL": "error"} // no REDIS_URL: the embedded Redis
	cfgEnv, err := config.LoadEnv(e.lookup, config.Demo)
	if err != nil {
		t.Fatal(err)
	}
	if !cfgEnv.EmbeddedRedis() {
		t.Fatal("the demo environment should use the embedded Redis")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := demo.StartTour(ctx, cfgEnv, tourOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-d.Done; d.Close() }()

	dir := t.ArtifactDir()
	t.Logf("screenshots of each step: %s", dir)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1280, 960))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	tctx, cancelTour := context.WithTimeout(bctx, 5*time.Minute)
	defer cancelTour()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tctx, steps...); err != nil {
			html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, html)
		}
	}
	// waitText waits (up to 2 minutes on a loaded machine, no longer than needed) until
	// the element's text contains want.
	waitText := func(sel, want string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](`((document.querySelector(`+js(sel)+`)||{}).textContent||"").includes(`+js(want)+`)`,
			chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond))
	}
	step := 0
	shot := func(name string) {
		t.Helper()
		step++
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		file := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", step, name))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// check evaluates a JavaScript condition and fails the test with what when it is false.
	check := func(what, cond string) {
		t.Helper()
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](cond))
		if err != nil || !ok {
			dbg, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify({inner: innerHeight, scrollY: scrollY, body: document.body.scrollHeight, feed: document.querySelector("#feed").getBoundingClientRect(), feedScroll: [document.querySelector("#feed").scrollTop, document.querySelector("#feed").scrollHeight], card: (document.querySelector("#threads .thread:last-child .msg")||document.body).getBoundingClientRect(), msgs: [...document.querySelectorAll("#feed .msg")].map(m => [m.id, Math.round(m.getBoundingClientRect().height), m.textContent.slice(0,40)])})`))
			t.Logf("layout: %s", dbg)
			html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("%s (%v)\nthe page shows:\n%s", what, err, html)
		}
	}
	// inView: the element's top (its headline) is within the visible part of the feed,
	// and most of it is visible (the page itself does not scroll: the feed does, between
	// the header and the pinned text box).
	inView := func(sel string) string {
		return `((r, f) => r.height > 0 && r.top >= f.top - 1 && r.top < f.bottom - 20 && Math.min(r.bottom, f.bottom) - Math.max(r.top, f.top) >= 0.85 * Math.min(r.height, f.height))(document.querySelector(` + js(sel) + `).getBoundingClientRect(), document.querySelector("#feed").getBoundingClientRect())`
	}
	// pinned: the text box is wholly within the window.
	const pinned = `(r => r.height > 0 && r.top >= 0 && r.bottom <= innerHeight + 1)(document.querySelector("#composer").getBoundingClientRect())`
	// choose picks where typed text goes, as a visitor does with the "To" list.
	choose := func(label string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`(s => { s.value = [...s.options].find(o => o.text.startsWith(` + js(label) + `)).value; s.dispatchEvent(new Event("change")) })(document.querySelector("#to"))`)
	}
	started := time.Now().UTC()
	// pressControl presses a demo control in the health panel, which is re-rendered every
	// refresh (a node found by one step may be gone by the next: press it in one go).
	pressControl := func(id string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`document.querySelector(` + js("#"+id) + `).click()`)
	}

	do("open the console", chromedp.Navigate(d.URL), chromedp.WaitVisible(chromedp.CSS("#spike")), waitText("#health", "healthy"))
	check("the text box is in view from the start", pinned)
	shot("console")

	do("simulate a spike and wait for the card", pressControl("spike"),
		chromedp.WaitVisible(chromedp.CSS("#threads button.approve")),
		waitText("#threads", `"Fix checkout query isolation level" (john)`), waitText("#threads", "touched database/query files"))
	// The demo's story: both lenses agree on rollback (the README's tour).
	do("the card is the README's", waitText("#threads .thread:last-child", "Both lenses agree"), waitText("#threads .thread:last-child button.approve", "rollback"))
	do("the new card is scrolled into view", chromedp.Poll[chromedp.Void](inView("#threads .thread:last-child .msg"), // a chart still loading moves it; the page scrolls again once it is drawn
		chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
	check("the text box stays in view below the card", pinned)
	check("the text box speaks to the new thread, visibly", `document.querySelector("#to").selectedOptions[0].text.startsWith("INC-") && document.querySelector("#threads .thread:last-child").classList.contains("current")`)
	shot("card")
	href, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#threads .thread h3 a").getAttribute("href")`))
	if err != nil || !strings.HasPrefix(href, "audit/INC-") {
		t.Fatalf("the thread's audit link %q: %v", href, err)
	}
	incident := strings.TrimPrefix(href, "audit/")

	// The card's chart spans the readings that exist (the demo started moments ago), not
	// a half hour ending at the right edge.
	alt, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#threads .thread:last-child img").alt`))
	if err != nil {
		t.Fatal(err)
	}
	var from, to string
	if _, err := fmt.Sscanf(alt[strings.Index(alt, " from ")+1:], "from %s to %s UTC", &from, &to); err != nil {
		t.Fatalf("the card's chart does not say its span (%q): %v", alt, err)
	}
	day := started.Format("2006-01-02 ")
	fromT, err1 := time.Parse("2006-01-02 15:04:05", day+from)
	toT, err2 := time.Parse("2006-01-02 15:04:05", day+to)
	if err1 != nil || err2 != nil {
		t.Fatalf("chart span %q: %v %v", alt, err1, err2)
	}
	if dataSpan := time.Now().UTC().Sub(started); fromT.Before(started.Add(-10*time.Second)) || toT.Sub(fromT) > dataSpan+dataSpan/10+5*time.Second {
		t.Fatalf("the card's chart spans %s–%s; the demo's data began at %s (%v ago)", from, to, started.Format("15:04:05"), dataSpan.Round(time.Second))
	}

	do("ask /help in the lobby", choose("Lobby"), chromedp.SendKeys(chromedp.CSS("#text"), "/help"), chromedp.Click(chromedp.CSS("#send")),
		waitText("#lobby", "AlertEngine commands"))
	check("the lobby is the chosen target", `document.querySelector("#lobby").classList.contains("current") && !document.querySelector("#threads .thread.current")`)
	check("/help landed in the lobby, not in the thread", `!document.querySelector("#threads").textContent.includes("AlertEngine commands")`)
	check("the console's help is written for the console", `(t => !t.includes("/start") && !t.includes("\u0060"))(document.querySelector("#lobby").textContent)`)

	// A long non-ASCII message: 2,001 "é" are over the limit (told before sending, the
	// text kept); 1,500 (3,000 bytes) are sent whole.
	do("type 2,001 characters", chromedp.Evaluate[chromedp.Void](`(b => { b.value = "é".repeat(2001); b.dispatchEvent(new Event("input")) })(document.querySelector("#text"))`),
		waitText("#count", "2001 / 2000"), chromedp.Click(chromedp.CSS("#send")), waitText("#toast", "at most 2000 characters"))
	check("the over-long text is kept in the box", `document.querySelector("#text").value === "é".repeat(2001)`)
	shot("too-long")
	do("send 1,500 é", chromedp.Evaluate[chromedp.Void](`(b => { b.value = "é".repeat(1500); b.dispatchEvent(new Event("input")) })(document.querySelector("#text"))`),
		chromedp.Click(chromedp.CSS("#send")), waitText("#lobby", strings.Repeat("é", 1500)))
	do("the box empties once sent", chromedp.Poll[chromedp.Void](`document.querySelector("#text").value === ""`, chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))

	do("ask what changed in the thread", choose(incident), chromedp.SendKeys(chromedp.CSS("#text"), "what changed?"), chromedp.Click(chromedp.CSS("#send")),
		chromedp.Poll[chromedp.Void](`(t => t.includes("what changed?") && t.slice(t.indexOf("what changed?")).includes("isolation level\" by john"))(document.querySelector("#threads .thread:last-child").textContent)`,
			chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))
	check("the answer is in view", inView("#threads .thread:last-child .msg:last-child"))
	shot("question")

	do("approve as the viewer", chromedp.SetValue(chromedp.CSS("#as"), "vimbai"), chromedp.Click(chromedp.CSS("#threads button.approve")),
		waitText("#toast", "vimbai: You are not an approver"))
	// The refusal is in the thread too, as the ledger recorded it.
	do("the refusal is shown in the thread", waitText("#threads .thread:last-child", "Refused a press of rollback by vimbai"), waitText("#threads .thread:last-child", "refused_press"))
	shot("viewer-refused")
	if n, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("#threads button.approve").length`)); err != nil || n == 0 {
		t.Fatalf("the viewer's refused press removed the Approve button (%d, %v): the approval must stay pending", n, err)
	}
	do("a toast clears when clicked", chromedp.Click(chromedp.CSS("#toast")),
		chromedp.Poll[chromedp.Void](`!document.querySelector("#toast").classList.contains("on")`, chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))

	do("approve as tendai: 1 of 2", chromedp.SetValue(chromedp.CSS("#as"), "tendai"), chromedp.Click(chromedp.CSS("#threads button.approve")),
		waitText("#toast", "A second approver is needed for rollback"), waitText("#threads .thread:last-child", "tendai approved rollback (1 of 2)"))
	do("approve as rudo: the second approver", chromedp.SetValue(chromedp.CSS("#as"), "rudo"), chromedp.Click(chromedp.CSS("#threads button.approve")),
		chromedp.Poll[chromedp.Void](`/✅ Approved by (rudo and tendai|tendai and rudo) at/.test(document.querySelector("#threads").textContent)`,
			chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))
	shot("approved")

	do("wait for RESOLVED", waitText("#threads .thread:last-child", "Resolved: the service is healthy again"),
		waitText("#threads .thread:last-child h3 .stage", "RESOLVED"), waitText("#threads .thread:last-child .msg", "checkout healthy again"))
	check("the resolved card no longer says degraded", `!document.querySelector("#threads .thread:last-child .msg .b-title").textContent.includes("degraded")`)
	shot("resolved")

	do("replay", chromedp.SendKeys(chromedp.CSS("#text"), "/replay "+incident), chromedp.Click(chromedp.CSS("#send")),
		waitText("#threads", "Timeline of "+incident), waitText("#threads", "now RESOLVED"))
	shot("replay")

	// A second incident, cleared by hand with "Recover": the thread says who did it and
	// ends RECOVERED.
	do("a second spike", pressControl("spike"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#threads .thread").length === 2 && !!document.querySelector("#threads .thread:last-child button.approve")`,
			chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))
	do("the second card is scrolled into view", chromedp.Poll[chromedp.Void](inView("#threads .thread:last-child .msg"), // a chart still loading moves it; the page scrolls again once it is drawn
		chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
	do("recover by hand", chromedp.SetValue(chromedp.CSS("#as"), "tendai"), pressControl("recover"), waitText("#threads .thread:last-child", "tendai pressed Recover"),
		waitText("#threads .thread:last-child h3 .stage", "RECOVERED"), waitText("#threads .thread:last-child .msg", "checkout healthy again"))
	check("the first thread still says RESOLVED", `document.querySelector("#threads .thread:first-child h3 .stage").textContent === "RESOLVED"`)
	shot("recovered")

	// A third incident whose lenses disagree (recorded as the council would): tendai's
	// Trust B (rollback, high risk) is the first of two approvals; rudo's Trust A
	// (restart_workers) authorizes A and voids it. The thread shows the voided approval.
	dissent := openDissent(t, tctx, d)
	pressApprove := func(who, action string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`(as => { as.value = ` + js(who) + `; as.dispatchEvent(new Event("change")); [...document.querySelectorAll("#threads .thread:last-child button.approve")].find(b => b.textContent.includes(` + js(action) + `)).click() })(document.querySelector("#as"))`)
	}
	do("the dissent card", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#threads .thread").length === 3 && document.querySelectorAll("#threads .thread:last-child button.approve").length === 2`,
		chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)),
		waitText("#threads .thread:last-child h3", dissent))
	do("tendai trusts B: 1 of 2", pressApprove("tendai", "rollback"), waitText("#threads .thread:last-child", "tendai approved rollback (1 of 2)"))
	do("rudo trusts A: tendai's approval is voided", pressApprove("rudo", "restart_workers"),
		waitText("#threads .thread:last-child", "⊘ Voided: tendai approved rollback (1 of 2)"), waitText("#threads .thread:last-child", "rudo approved restart_workers instead"))
	shot("voided")

	do("the verified audit", chromedp.Navigate(d.URL+"audit/"+incident), waitText("#verify", "✓ Chain verified"), waitText("#timeline", "→ RESOLVED"),
		waitText("#timeline", "what changed?"))
	shot("audit")
	dl, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#export").getAttribute("href")`))
	if err != nil || dl != incident+"/export.jsonl" {
		t.Fatalf("the export link %q: %v", dl, err)
	}
}

// openDissent records, on the demo's ledger, an incident on the demo's service whose two
// lenses disagree (A: restart_workers, B: rollback) and presents its card: what the
// council does when its lenses part. It returns the incident's code.
func openDissent(t *testing.T, ctx context.Context, d *demo.Tour) string {
	t.Helper()
	l := d.App.Ledger()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	det, err := l.Record(ctx, ledger.Entry{Tenant: demo.Tenant, Service: demo.ServiceName, Event: ledger.Detect, Actor: policy,
		Reason: "health 23/100 < 70", PolicyVersion: "pol-1", Data: map[string]string{"score": "23"}})
	if err != nil {
		t.Fatal(err)
	}
	p := conversation.Proposal{Theories: []conversation.Theory{
		{Label: "A", Lens: "lens-a", Summary: "worker pool exhausted", Action: "restart_workers", Confidence: 0.72},
		{Label: "B", Lens: "lens-b", Summary: "the last deploy broke the query", Action: "rollback", Confidence: 0.66}},
		Offers: []conversation.Offer{{Action: "restart_workers", Theory: "A"}, {Action: "rollback", Theory: "B"}}}
	if _, err := l.Record(ctx, ledger.Entry{Tenant: demo.Tenant, Incident: det.Incident, Event: ledger.Propose, Actor: policy, Action: "restart_workers",
		Confidence: 0.72, PolicyVersion: "pol-1", Data: p.Data()}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(ctx, ledger.Entry{Tenant: demo.Tenant, Incident: det.Incident, Event: ledger.Validate, Actor: policy, PolicyVersion: "pol-1"}); err != nil {
		t.Fatal(err)
	}
	if err := d.App.Engine().Present(ctx, demo.Tenant, det.Incident); err != nil {
		t.Fatal(err)
	}
	return det.Incident
}
