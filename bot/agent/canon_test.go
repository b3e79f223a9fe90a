package agent_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/agent"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		`{ "b" : [1, true, null], "a": {"z": "x", "y": -0} }`: `{"a":{"y":0,"z":"x"},"b":[1,true,null]}`,
		`"<é>\u00e9\n\u0001"`:                                 "\"<é>é\\n\\u0001\"",
		`9007199254740991`:                                    `9007199254740991`,
		`{"é":1,"e":2,"E":3}`:                                 `{"E":3,"e":2,"é":1}`,
		`[]`:                                                  `[]`,
		"\"\u2028\u2029\"":                                    `"\u2028\u2029"`,
	} {
		got, err := agent.Canonical([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{`1.5`, `1e3`, `9007199254740992`, `{"a":1,"a":2}`, "\"\xff\"", `NaN`, `[1,]`, `1 2`,
		strings.Repeat("[", 17) + strings.Repeat("]", 17)} {
		if got, err := agent.Canonical([]byte(in)); !errors.Is(err, agent.ErrNotCanonical) {
			t.Errorf("Canonical(%q) = %s, %v; want refused", in, got, err)
		}
	}
}

func TestActionHashIsTheDocumentedOne(t *testing.T) {
	got, err := agent.ActionHash("acme", "scale_up", []byte(`{"service":"checkout", "replicas":6}`))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(`{"action":"scale_up","params":{"replicas":6,"service":"checkout"},"tenant":"acme"}`))
	if got != hex.EncodeToString(sum[:]) {
		t.Fatalf("ActionHash = %s", got)
	}
	other, _ := agent.ActionHash("beta", "scale_up", []byte(`{"service":"checkout","replicas":6}`))
	none, _ := agent.ActionHash("acme", "scale_up", nil)
	null, _ := agent.ActionHash("acme", "scale_up", []byte("null"))
	if other == got || none != null {
		t.Fatal("the tenant is not bound, or absent params differ from null")
	}
}
