package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// Each secret value carries a marker, so any rendering that contains one has leaked it.
const marker = "LEAKMARKER"

func secretValue(name string) string { return marker + "-" + name + "-0123456789abcdef0123456789" }

// leaks returns the secret markers found in s, as text or hex.
func leaks(s string) []string {
	var found []string
	for _, needle := range []string{marker, hex.EncodeToString([]byte(marker)), strings.ToUpper(hex.EncodeToString([]byte(marker)))} {
		if strings.Contains(s, needle) {
			found = append(found, needle)
		}
	}
	return found
}

func TestNothingLeaksSecrets(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tg")
	if err := os.WriteFile(tokenFile, []byte("4242:"+secretValue("TGFILE")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"REDIS_URL":               "redis://default:" + secretValue("REDISPW") + "@redis:6379/0",
		"ALERT_SECRET":            secretValue("ALERT"),
		"LEDGER_SIGNING_KEY":      testSigningKey,
		"TELEGRAM_BOT_TOKEN_FILE": tokenFile,
		"TELEGRAM_WEBHOOK_SECRET": secretValue("TGHOOK"),
		"TWILIO_ACCOUNT_SID":      "AC" + strings.Repeat("c", 32),
		"TWILIO_AUTH_TOKEN":       leakTwilioToken,
		"TWILIO_WHATSAPP_FROM":    "+14155238886",
		"PUBLIC_URL":              "https://bot.example.com",
		"LLM_BASE_URL":            "https://llm.example/v1",
		"LLM_API_KEY":             secretValue("LLM"),
		"COUNCIL_MODEL_A":         "m",
		"GITHUB_WEBHOOK_SECRET":   secretValue("GHHOOK"),
		"GITHUB_TOKEN":            secretValue("GHTOKEN"),
		"ACME_RECOVERY_SECRET":    secretValue("RECOVERY"),
		"ACME_AM_TOKEN":           secretValue("AMTOKEN"),
	}
	env, err := LoadEnv(mapLookup(vars), Serve)
	if err != nil {
		t.Fatalf("LoadEnv: %v", err)
	}
	// The signing key is the one secret without a marker: check its encodings directly.
	seedB64, seedHex := testSigningKey, hex.EncodeToString(testSeed)
	file, err := loadT("testdata/alertengine.yaml", mapLookup(vars), env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tenant := file.Tenants[0]

	// Sanity: the secrets are really there, so the test can fail.
	if !strings.Contains(env.TelegramBotToken.Reveal(), marker) || !strings.Contains(tenant.Recovery.Secret.Reveal(), marker) {
		t.Fatal("test setup: secrets not loaded")
	}

	renderings := map[string]string{}
	values := map[string]any{"env": env, "&env": &env, "file": file, "*file": *file, "tenant": tenant, "recovery": tenant.Recovery, "alertmanager": tenant.Alertmanager}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			renderings[name+" "+verb] = fmt.Sprintf(verb, v)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%s): %v", name, err)
		}
		renderings[name+" json"] = string(j)
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("yaml.Marshal(%s): %v", name, err)
		}
		renderings[name+" yaml"] = string(y)
		for _, h := range []string{"json", "text"} {
			var buf bytes.Buffer
			var handler slog.Handler = slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
			if h == "text" {
				handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
			}
			slog.New(handler).Debug("config loaded", "value", v, slog.Any("any", v), slog.Group("g", "v", v))
			renderings[name+" slog "+h] = buf.String()
		}
	}
	r, _ := json.Marshal(env.Redacted())
	renderings["Redacted"] = string(r)

	// Problems built from secret values must not show them either.
	bad := map[string]string{
		"REDIS_URL":               "http://default:" + secretValue("BADREDIS") + "@redis",
		"ALERT_SECRET":            marker,
		"LEDGER_SIGNING_KEY":      marker + "!!",
		"TELEGRAM_BOT_TOKEN":      secretValue("BADTG"),
		"TELEGRAM_WEBHOOK_SECRET": marker + " with spaces",
		"GITHUB_TOKEN":            secretValue("INLINE"),
		"GITHUB_TOKEN_FILE":       tokenFile,
		"LLM_BASE_URL":            "ftp://u:" + secretValue("BADLLM") + "@x",
		"BADURL":                  "https://user:" + marker + "@host/",
		"ROLE":                    marker,
	}
	_, envErr := LoadEnv(mapLookup(bad), Serve)
	renderings["LoadEnv error"] = fmt.Sprint(envErr)
	_, fileErr := parseT("alertengine.yaml", []byte(`tenants:
  - id: acme
    services: [{name: a, health_url: "${BADURL}"}]
    people: [{name: a, role: "${ROLE}", whatsapp: "${ROLE}", telegram: "${ROLE}"}]
    recovery: {url: "${BADURL}", secret: "${ROLE}", actions: [{name: "${ROLE}", risk: "${ROLE}"}], default_action: "${ROLE}"}
    policy: {approval_ttl: "${ROLE}", min_score_to_alert: "${ROLE}", risky_paths: ["[${ROLE}"]}
`), mapLookup(bad), Env{})
	renderings["Parse error"] = fmt.Sprint(fileErr)
	if envErr == nil || fileErr == nil || strings.Count(fileErr.Error(), "\n") < 8 {
		t.Fatalf("test setup: want many problems, got\n%v\n%v", envErr, fileErr)
	}

	for name, out := range renderings {
		if found := leaks(out); len(found) > 0 {
			t.Errorf("%s shows a secret (%v):\n%s", name, found, out)
		}
		if strings.Contains(out, seedB64) || strings.Contains(out, seedHex) || strings.Contains(strings.ToLower(out), leakTwilioToken) {
			t.Errorf("%s shows the ledger signing key or the Twilio token:\n%s", name, out)
		}
	}
}

// leakTwilioToken is the Twilio auth token of the leak test: it must have a token's shape
// (32 hex digits), so it cannot carry the marker and is looked for directly.
const leakTwilioToken = "7e1f0a5c7e1f0a5c7e1f0a5c7e1f0a5c"
