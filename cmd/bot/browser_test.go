package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/chromedp/chromedp"
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
		t.Skip("no chromium on this machine (apt-get install chromium): the browser tour is skipped; CI runs it")
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
	d, _, err := startDemo(ctx, &app{stdout: io.Discard, stderr: io.Discard, lookup: e.lookup}, cfgEnv, tourOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-d.done; d.close() }()

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
		file := filepath.Join(dir, strings.Join([]string{string(rune('0' + step)), name}, "-")+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	do("open the console", chromedp.Navigate(d.url), chromedp.WaitVisible(chromedp.CSS("#spike")), waitText("#health", "healthy"))
	shot("console")

	do("simulate a spike and wait for the card", chromedp.Click(chromedp.CSS("#spike")),
		chromedp.WaitVisible(chromedp.CSS("#threads button.approve")),
		waitText("#threads", `"Fix checkout query isolation level" (john)`), waitText("#threads", "touched database/query files"))
	shot("card")
	href, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#threads .thread h3 a").getAttribute("href")`))
	if err != nil || !strings.HasPrefix(href, "audit/INC-") {
		t.Fatalf("the thread's audit link %q: %v", href, err)
	}
	incident := strings.TrimPrefix(href, "audit/")

	do("ask what changed", chromedp.SendKeys(chromedp.CSS("#text"), "what changed?"), chromedp.Click(chromedp.CSS("#send")),
		chromedp.Poll[chromedp.Void](`(t => t.includes("what changed?") && t.slice(t.indexOf("what changed?")).includes("isolation level\" by john"))(document.querySelector("#threads").textContent)`,
			chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))
	shot("question")

	do("approve as the viewer", chromedp.SetValue(chromedp.CSS("#as"), "vimbai"), chromedp.Click(chromedp.CSS("#threads button.approve")),
		waitText("#toast", "vimbai: You are not an approver"))
	shot("viewer-refused")
	if n, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("#threads button.approve").length`)); err != nil || n == 0 {
		t.Fatalf("the viewer's refused press removed the Approve button (%d, %v): the approval must stay pending", n, err)
	}

	do("approve as the approver", chromedp.SetValue(chromedp.CSS("#as"), "tendai"), chromedp.Click(chromedp.CSS("#threads button.approve")),
		chromedp.Poll[chromedp.Void](`(t => t.includes("✅ Approved by tendai") || t.includes("A second approver is needed"))(document.body.textContent)`,
			chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))
	if second, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`document.querySelector("#toast").textContent.includes("second approver is needed")`)); err != nil {
		t.Fatal(err)
	} else if second { // a high-risk action: a second, different approver
		do("approve as the second approver", chromedp.SetValue(chromedp.CSS("#as"), "rudo"), chromedp.Click(chromedp.CSS("#threads button.approve")),
			waitText("#threads", "✅ Approved by rudo and tendai"))
	}
	do("the card says who approved", waitText("#threads", "✅ Approved by"))
	shot("approved")

	do("wait for RESOLVED", waitText("#threads", "Resolved: the service is healthy again"))
	shot("resolved")

	do("replay", chromedp.SendKeys(chromedp.CSS("#text"), "/replay "+incident), chromedp.Click(chromedp.CSS("#send")),
		waitText("#threads", "Timeline of "+incident), waitText("#threads", "now RESOLVED"))
	shot("replay")

	do("the verified audit", chromedp.Navigate(d.url+"audit/"+incident), waitText("#verify", "✓ Chain verified"), waitText("#timeline", "→ RESOLVED"))
	shot("audit")
	dl, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#export").getAttribute("href")`))
	if err != nil || dl != incident+"/export.jsonl" {
		t.Fatalf("the export link %q: %v", dl, err)
	}
}
