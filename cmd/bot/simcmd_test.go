package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSim(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"simulate"}, args...), &out, &errb, func(string) (string, bool) { return "", false })
	return code, out.String(), errb.String()
}

// TestSimulateLedgerVerifies: `bot simulate --ledger` writes an export `bot verify --file`
// accepts, and the same seed gives the same bytes.
func TestSimulateLedgerVerifies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	scenario := filepath.Join("..", "..", "fixtures", "scenarios", "webhook-down-dlq-redrive.yaml")
	out1, out2 := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	code, stdout, stderr := runSim(t, scenario, "--ledger", out1, "--seed", "11")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "seed 11") || !strings.Contains(stdout, "WEBHOOK_FAILED") {
		t.Errorf("timeline misses the seed or the failure:\n%s", stdout)
	}
	if code, _, stderr := runSim(t, "--seed", "11", "--summary", "--ledger", out2, scenario); code != exitOK {
		t.Fatalf("flags before the scenario: exit %d, stderr %q", code, stderr)
	}
	a, _ := os.ReadFile(out1)
	b, _ := os.ReadFile(out2)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("same seed, different ledger exports (%d and %d bytes)", len(a), len(b))
	}
	var vout, verr bytes.Buffer
	if code := run(context.Background(), []string{"verify", "--file", out1}, &vout, &verr, func(string) (string, bool) { return "", false }); code != exitOK {
		t.Fatalf("bot verify --file: exit %d: %s %s", code, vout.String(), verr.String())
	}
	// Every line but the trailing checkpoint is an entry.
	if want := fmt.Sprintf("ok: %d entries\n", bytes.Count(a, []byte("\n"))-1); !strings.HasPrefix(vout.String(), want) {
		t.Errorf("verify said %q, want %q", vout.String(), want)
	}
}

// TestSimulateBrokenExpectationExits1: a broken expectation is named on stderr, exit 1.
func TestSimulateBrokenExpectationExits1(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "scenarios", "flapping-latency.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(src), "  incidents: 0\n", "  incidents: \">= 1\"\n", 1)
	path := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runSim(t, path, "--summary")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := "bot simulate: expectation broken: incidents: >= 1\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// TestSimulateInvalidScenarioExits2: problems are FILE:LINE: path: problem lines, exit 2.
func TestSimulateInvalidScenarioExits2(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("duration: 1h\ntenants_file: missing.yaml\nservices: []\nsurprise: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runSim(t, path)
	if code != exitUsage {
		t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr)
	}
	if !strings.Contains(stderr, path+":4: surprise: unknown key") {
		t.Errorf("stderr does not name the unknown key with its line:\n%s", stderr)
	}
}

// TestSimulateBuiltInScenario: a shipped scenario runs by name, without a file.
func TestSimulateBuiltInScenario(t *testing.T) {
	t.Chdir(t.TempDir()) // serial: the working directory is the process's
	code, stdout, stderr := runSim(t, "flapping-latency", "--summary")
	if code != exitOK || !strings.Contains(stdout, "scenario flapping-latency") || !strings.Contains(stdout, "incidents: 0") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
