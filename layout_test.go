package alertengine

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/alertengine/alertengine"

type pkg struct {
	path, doc string
	deps      []string
	// imports are the direct (non-test) imports.
	imports  []string
	standard map[string]bool
}

// listPackages asks the go command for every package of the module with its doc and
// (non-test) transitive dependencies and direct imports. The go command is asked once
// for all the tests (each ask takes seconds on a cold cache).
func listPackages(t *testing.T) []pkg {
	t.Helper()
	pkgs, err := listed()
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

var listed = sync.OnceValues(func() ([]pkg, error) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}\t{{join .Deps \" \"}}\t{{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v", err)
	}
	std, err := exec.Command("go", "list", "std").Output()
	if err != nil {
		return nil, fmt.Errorf("go list std: %v", err)
	}
	isStd := map[string]bool{}
	for _, p := range strings.Fields(string(std)) {
		isStd[p] = true
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			return nil, fmt.Errorf("go list line %q", line)
		}
		pkgs = append(pkgs, pkg{path: f[0], doc: f[1], deps: strings.Fields(f[2]), imports: strings.Fields(f[3]), standard: isStd})
	}
	return pkgs, nil
})

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.doc) == "" {
			t.Errorf("%s has no package doc comment", p.path)
		}
	}
}

// rule forbids packages under from (the module-relative path, "" for all) to depend on
// anything under to.
type rule struct{ from, to, why string }

var forbidden = []rule{
	{"ledger", "bot", "the ledger is the bottom of the house: it knows nothing of the service above it"},
	{"ledger", "conversation", "the ledger records decisions; it does not make or render them"},
	{"ledger", "detector", "the ledger must not depend on how incidents are found"},
	{"ledger", "council", "the ledger must not depend on how incidents are diagnosed"},
	{"ledger", "commits", "the ledger must not depend on GitHub"},
	{"ledger", "sdk", "services embed the SDK; the ledger is the bot's"},
	{"ledger", "github.com/prometheus", "the ledger needs only the standard library and go-redis"},
	{"sdk", "ledger", "the SDK runs inside customers' services and must stay small: stdlib, go-redis, a sketch"},
	{"sdk", "detector", "data moves one way: the SDK feeds the detector, never the reverse"},
	{"sdk", "bot", "the SDK must not pull the bot into customers' binaries"},
	{"sdk", "github.com/prometheus", "the SDK must not impose a metrics library on the services that embed it"},
	{"detector", "bot", "detection is below the service that wires it"},
	{"detector", "conversation", "detection does not talk to people; the pipeline does"},
	{"detector", "council", "detection is deterministic policy, never AI"},
	{"detector", "commits", "detection must not depend on GitHub"},
	{"council", "bot", "diagnosis is below the service that wires it"},
	{"council", "conversation", "the council answers through an interface the conversation declares"},
	{"council", "detector", "data moves one way: detections reach the council as ledger entries"},
	{"commits", "bot", "correlation is below the service that wires it"},
	{"commits", "conversation", "commits are shown through an interface the conversation declares"},
	{"conversation", "bot", "the chat core is chat-agnostic: adapters depend on it, not the reverse"},
	{"conversation", "council", "the conversation declares the small interfaces it needs (consumer-side interfaces)"},
	{"conversation", "commits", "the conversation declares the small interfaces it needs (consumer-side interfaces)"},
	{"conversation", "detector", "the conversation declares the small interfaces it needs (consumer-side interfaces)"},
	{"conversation", "github.com/go-telegram", "the core must not know any chat platform; adapters render"},
	{"conversation", "github.com/twilio", "the core must not know any chat platform; adapters render"},
	{"bot/telegram", "bot/whatsapp", "adapters never import each other"},
	{"bot/telegram", "bot/console", "adapters never import each other"},
	{"bot/whatsapp", "bot/telegram", "adapters never import each other"},
	{"bot/whatsapp", "bot/console", "adapters never import each other"},
	{"bot/console", "bot/telegram", "adapters never import each other"},
	{"bot/console", "bot/whatsapp", "adapters never import each other"},
	{"bot/pipeline", "bot/telegram", "the pipeline knows no chat platform: it presents through the conversation"},
	{"bot/pipeline", "bot/whatsapp", "the pipeline knows no chat platform: it presents through the conversation"},
	{"bot/pipeline", "bot/console", "the pipeline knows no chat platform: it presents through the conversation"},
	{"bot/pipeline", "bot/app", "the assembly builds the pipeline, not the reverse"},
	{"bot/pipeline", "bot/metrics", "the pipeline declares the Observer it reports to; metrics implement it"},
	{"bot/channel", "bot/telegram", "the contract is what adapters import; it imports none of them"},
	{"bot/channel", "bot/whatsapp", "the contract is what adapters import; it imports none of them"},
	{"bot/channel", "bot/console", "the contract is what adapters import; it imports none of them"},
	{"bot/channel", "bot/app", "adapters import the contract without importing the assembly"},
	{"bot/metrics", "bot/app", "collectors are below the assembly that registers them"},
	{"", "cmd", "cmd/bot only wires; nothing may import it"},
}

// appImporters are the ways of running the bot: only they build it (their tests may too).
var appImporters = map[string]string{
	"cmd/bot":      "bot serve and the CLI",
	"bot/demo":     "the zero-config tour",
	"bot/simulate": "the governance simulation",
}

// Only the ways of running the bot import the assembly: a component that imported it
// would be built by what it is part of.
func TestOnlyTheWaysOfRunningImportTheAssembly(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.path, module), "/")
		for _, d := range p.imports {
			if d == full("bot/app") && appImporters[rel] == "" {
				t.Errorf("%s imports bot/app: only %v build the bot", p.path, appImporters)
			}
		}
	}
}

// assembled are the parts app.New builds and wires. A way of running the bot that imported
// one could build it again by hand, as the simulator once did (its own pipeline, approvals
// and proposer, which had drifted from serve's): it gets them from the App instead.
var assembled = map[string]string{
	"bot/pipeline":          "the pipeline and its inbox",
	"conversation/approval": "the approvals service",
	"bot/diagnose":          "the council's proposer and answerer",
	"bot/metrics":           "the collectors",
}

func TestWaysOfRunningDoNotRebuildTheParts(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.path, module), "/")
		if appImporters[rel] == "" || rel == "cmd/bot" {
			continue
		}
		for _, d := range p.imports {
			for part, what := range assembled {
				if d == full(part) {
					t.Errorf("%s imports %s (%s): it builds the bot through app.New", p.path, d, what)
				}
			}
		}
	}
}

// cmdBotLines is how many lines of non-test Go cmd/bot may hold. Its commands parse their
// flags into a request or options, call the package that owns the behaviour (ledger/audit,
// bot/app, bot/agent, bot/simulate, bot/demo) and print what it returns; a command that
// grows past this is deciding something that belongs in that package.
const cmdBotLines = 900

func TestCmdBotOnlyWires(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("cmd", "bot", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("cmd/bot: %v %v", files, err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += bytes.Count(b, []byte("\n"))
	}
	if n > cmdBotLines {
		t.Errorf("cmd/bot holds %d lines of non-test Go, more than %d: move what a command decides into the package that owns it", n, cmdBotLines)
	}
}

// bot is a folder: its root package holds only the doc listing the sub-packages, and
// nothing imports it.
func TestNothingImportsTheBotFolder(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, d := range p.deps {
			if d == full("bot") {
				t.Errorf("%s depends on %s: the code lives in its sub-packages", p.path, d)
			}
		}
	}
}

func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func full(p string) string {
	if strings.HasPrefix(p, "github.com/") && !strings.HasPrefix(p, module) {
		return p
	}
	if p == "" {
		return module
	}
	return module + "/" + p
}

func TestForbiddenImports(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, r := range forbidden {
			if r.from != "" && !under(p.path, full(r.from)) {
				continue
			}
			if under(p.path, full(r.to)) {
				continue // a package may use itself and its own sub-packages
			}
			for _, d := range p.deps {
				if under(d, full(r.to)) {
					t.Errorf("%s depends on %s: %s", p.path, d, r.why)
				}
			}
		}
		if under(p.path, full("fixtures")) {
			for _, d := range p.deps {
				if !p.standard[d] && !under(d, full("fixtures")) {
					t.Errorf("%s depends on %s: fixtures are data, embedded with the standard library only", p.path, d)
				}
			}
		}
	}
}
