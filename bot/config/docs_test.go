package config

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The documents whose quoted configuration and outputs these tests hold to the code.
const (
	readmePath = "../../README.md"
	docPath    = "../../docs/configuration.md"
)

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text of doc from the heading line title up to the next heading of
// the same or a higher level (outside fenced blocks, where "# " starts a comment).
func section(t *testing.T, doc, title string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+title+"\n")
	if i < 0 {
		t.Fatalf("no section %q", title)
	}
	level := strings.Index(title, " ")
	var b strings.Builder
	fenced := false
	for _, line := range strings.SplitAfter(doc[i+len(title)+2:], "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if h := strings.Index(line, " "); !fenced && h > 0 && h <= level && strings.Trim(line[:h], "#") == "" {
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// fences returns the contents of the fenced blocks of text whose info string is lang.
func fences(text, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^```"+lang+"\n(.*?)^```$").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// exports returns the `export NAME=VALUE` lines of a shell block, as written.
func exports(block string) []string {
	var out []string
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "export ") {
			out = append(out, line)
		}
	}
	return out
}

// shellEnv evaluates export lines the way sh would for the forms the docs use: a literal
// value, or $(head -c N /dev/urandom | base64); a trailing "# comment" is not the value.
func shellEnv(t *testing.T, lines []string) map[string]string {
	t.Helper()
	random := regexp.MustCompile(`^\$\(head -c ([0-9]+) /dev/urandom \| base64\)$`)
	env := map[string]string{}
	for _, line := range lines {
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			t.Fatalf("not NAME=VALUE: %q", line)
		}
		if i := strings.Index(value, " #"); i >= 0 {
			value = value[:i]
		}
		value = strings.TrimSpace(value)
		if m := random.FindStringSubmatch(value); m != nil {
			n, _ := strconv.Atoi(m[1])
			b := make([]byte, n)
			rand.Read(b)
			value = base64.StdEncoding.EncodeToString(b)
		} else if strings.ContainsAny(value, "$`\"'…") {
			t.Fatalf("%s: value %q is not literal (the test cannot evaluate it)", name, value)
		}
		env[name] = value
	}
	return env
}

// exampleEnvironment is the environment of docs/configuration.md's example, which must
// start with the README quick start's, line for line.
func exampleEnvironment(t *testing.T) (map[string]string, string) {
	t.Helper()
	quick := fences(section(t, readDoc(t, readmePath), "### Quick start (production)"), "sh")
	if len(quick) != 1 {
		t.Fatalf("README's quick start has %d sh blocks, want 1", len(quick))
	}
	example := section(t, readDoc(t, docPath), "### Example")
	sh, yaml := fences(example, "sh"), fences(example, "yaml")
	if len(sh) != 1 || len(yaml) != 1 {
		t.Fatalf("the example has %d sh and %d yaml blocks, want 1 and 1", len(sh), len(yaml))
	}
	qs, ex := exports(quick[0]), exports(sh[0])
	if len(qs) == 0 || len(ex) < len(qs) {
		t.Fatalf("the quick start sets %d variables, the example %d", len(qs), len(ex))
	}
	if d := cmp.Diff(qs, ex[:len(qs)]); d != "" {
		t.Errorf("the example's environment does not start with the quick start's (-README +docs):\n%s", d)
	}
	return shellEnv(t, ex), yaml[0]
}

// TestDocsExampleIsValidAsIs: docs/configuration.md's example — the environment the
// README's quick start sets plus what the example adds, and the tenants file — is accepted
// by serve's checks without a single problem, and the file is the package's testdata copy.
func TestDocsExampleIsValidAsIs(t *testing.T) {
	t.Parallel()
	vars, yaml := exampleEnvironment(t)
	env, err := LoadEnv(mapLookup(vars), Serve)
	if err != nil {
		t.Fatalf("serve refuses the example's environment:\n%v", err)
	}
	if _, err := parseT("alertengine.yaml", []byte(yaml), mapLookup(vars), env); err != nil {
		t.Fatalf("serve refuses the example's file with its environment:\n%v", err)
	}
	copy, err := os.ReadFile("testdata/alertengine.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile(`(?m)\A(#.*\n)*`).ReplaceAllString(string(copy), "")
	if body != yaml {
		t.Errorf("docs/configuration.md's example and testdata/alertengine.yaml differ:\n%s", cmp.Diff(body, yaml))
	}
}

// TestDocsQuotedOutputs: every problem line docs/configuration.md quotes is one the code
// prints. The "Problem lines" block is invalid.golden whole (the file named as the doc
// names it); the transcript at the top is serve's answer to the example's environment with
// a short ALERT_SECRET, and golden lines in order; every other quoted line is produced by
// the input the doc describes.
func TestDocsQuotedOutputs(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, docPath)
	golden, err := os.ReadFile("testdata/invalid.golden")
	if err != nil {
		t.Fatal(err)
	}
	goldenLines := strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(golden), "testdata/invalid.yaml", "alertengine.yaml"), "\n"), "\n")

	// The "Problem lines" section quotes the golden file whole.
	blocks := fences(section(t, doc, "## Problem lines"), "text")
	if len(blocks) != 2 {
		t.Fatalf("the Problem lines section has %d text blocks, want 2 (the form, the example)", len(blocks))
	}
	if d := cmp.Diff(goldenLines, strings.Split(strings.TrimSuffix(blocks[1], "\n"), "\n")); d != "" {
		t.Errorf("docs/configuration.md's problem lines differ from testdata/invalid.golden (-golden +doc):\n%s", d)
	}

	// The transcript at the top.
	vars, _ := exampleEnvironment(t)
	transcript := fences(doc[:strings.Index(doc, "\n## ")], "text")
	if len(transcript) != 1 {
		t.Fatalf("%d text blocks before the first section, want 1 (the transcript)", len(transcript))
	}
	runs := map[string][]string{}
	var cmd string
	for _, line := range strings.Split(strings.TrimSuffix(transcript[0], "\n"), "\n") {
		if c, ok := strings.CutPrefix(line, "$ "); ok {
			cmd = c
			continue
		}
		runs[cmd] = append(runs[cmd], line)
	}
	short := map[string]string{}
	for k, v := range vars {
		short[k] = v
	}
	short["ALERT_SECRET"] = "short"
	_, err = LoadEnv(mapLookup(short), Serve)
	if d := cmp.Diff(runs["ALERT_SECRET=short bot serve --config alertengine.yaml"], problemLines(t, err)); d != "" {
		t.Errorf("the transcript's ALERT_SECRET answer (-doc +code):\n%s", d)
	}
	if d := cmp.Diff([]string{"2", "2"}, runs["echo $?"]); d != "" {
		t.Errorf("exit codes shown (a configuration error is 2): %s", d)
	}
	quoted := runs["bot serve --config alertengine.yaml"]
	if len(quoted) == 0 || quoted[len(quoted)-1] != "…" {
		t.Fatalf("the transcript's serve answer should be golden lines then …, got %q", quoted)
	}
	next := 0
	for _, q := range quoted[:len(quoted)-1] {
		for next < len(goldenLines) && goldenLines[next] != q {
			next++
		}
		if next == len(goldenLines) {
			t.Errorf("the transcript quotes %q, which is not a golden line (or not in the golden order)", q)
			break
		}
	}

	// Every other problem line quoted anywhere in the doc.
	printed := map[string]bool{}
	for _, l := range goldenLines {
		printed[l] = true
	}
	for _, in := range []string{"", "tenants:\n  - id: acme\n    services: [{name: a}\n"} {
		_, err := parseT("alertengine.yaml", []byte(in), nil, demoEnv(t))
		for _, l := range problemLines(t, err) {
			printed[l] = true
		}
	}
	for _, m := range regexp.MustCompile("`(alertengine\\.yaml(?::[0-9]+)?: [^`]+)`").FindAllStringSubmatch(doc, -1) {
		if !printed[m[1]] {
			t.Errorf("docs/configuration.md quotes %q, which the code does not print for the inputs the doc describes", m[1])
		}
	}
}
