package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// with returns a copy of base with the given pairs set ("" value deletes).
func with(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

var (
	testSeed        = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	testSigningKey  = base64.StdEncoding.EncodeToString(testSeed)
	testAlertSecret = "an-alert-secret-of-at-least-32-bytes!"
	// serveBase is the smallest valid serve environment.
	serveBase = map[string]string{
		"REDIS_URL":          "redis://:pw@redis:6379/0",
		"ALERT_SECRET":       testAlertSecret,
		"LEDGER_SIGNING_KEY": testSigningKey,
	}
)

func TestLoadEnvDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		mode Mode
		want Env
	}{
		{
			name: "demo with nothing set",
			env:  nil,
			mode: Demo,
			want: Env{
				Mode: Demo, Addr: "127.0.0.1:8080",
				TelegramAPIURL: DefaultTelegramAPIURL, TwilioAPIURL: DefaultTwilioAPIURL,
				GitHubAPIURL: DefaultGitHubAPIURL, CouncilEnabled: true,
				LoopInterval: 5 * time.Second, PolicyMinScoreToAlert: 70,
				LogLevel: slog.LevelInfo, LogFormat: LogText,
			},
		},
		{
			name: "serve with the required variables",
			env:  serveBase,
			mode: Serve,
			want: Env{
				Mode: Serve, Addr: ":8080",
				RedisURL: "redis://:pw@redis:6379/0", AlertSecret: Secret(testAlertSecret), LedgerSigningKey: Secret(testSigningKey),
				LedgerCheckpointFile: DefaultCheckpointFile,
				TelegramAPIURL:       DefaultTelegramAPIURL, TwilioAPIURL: DefaultTwilioAPIURL,
				GitHubAPIURL: DefaultGitHubAPIURL, CouncilEnabled: true,
				LoopInterval: 5 * time.Second, PolicyMinScoreToAlert: 70,
				LogLevel: slog.LevelInfo, LogFormat: LogJSON,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadEnv(mapLookup(tt.env), tt.mode)
			if err != nil {
				t.Fatalf("LoadEnv: %v", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Env (-want +got):\n%s", d)
			}
		})
	}
}

func TestLoadEnvAllSet(t *testing.T) {
	env := with(serveBase,
		"ADDR", "0.0.0.0:9000",
		"PUBLIC_URL", "https://bot.example.com/",
		"REDIS_SENTINEL_ADDRS", "s1:26379, s2:26379",
		"REDIS_MASTER_NAME", "mymaster",
		"TELEGRAM_BOT_TOKEN", "123456:ABC-def_ghi",
		"TELEGRAM_API_URL", "http://tg.local:8081/",
		"TELEGRAM_WEBHOOK_SECRET", "hook_secret-1",
		"TWILIO_ACCOUNT_SID", "AC"+strings.Repeat("a", 32),
		"TWILIO_AUTH_TOKEN", twilioToken,
		"TWILIO_WHATSAPP_FROM", "+14155238886",
		"TWILIO_API_URL", "http://twilio.local",
		"TWILIO_APPROVAL_CONTENT_SID", "HX"+strings.Repeat("b", 32),
		"TWILIO_VOICE_FROM", "+14155238887",
		"LLM_BASE_URL", "http://localhost:11434/v1/",
		"OPENAI_API_KEY", "sk-openai",
		"COUNCIL_MODEL_A", "llama3.1",
		"COUNCIL_ENABLED", "false",
		"GITHUB_WEBHOOK_SECRET", "gh-hook",
		"GITHUB_TOKEN", "ghp_token",
		"GITHUB_API_URL", "https://ghe.example.com/api/v3",
		"LOOP_INTERVAL_S", "12",
		"POLICY_MIN_SCORE_TO_ALERT", "55",
		"LOG_LEVEL", "DEBUG",
		"LOG_FORMAT", "text",
		"LEDGER_CHECKPOINT_FILE", "/srv/ae//state/checkpoints.json",
		"STATUS_TOKEN", "status-token-0123456789",
		"LEDGER_CHECKPOINT_URL", "https://audit.example/checkpoints/",
		"LEDGER_CHECKPOINT_TOKEN", "audit-token",
	)
	got, err := LoadEnv(mapLookup(env), Serve)
	if err != nil {
		t.Fatalf("LoadEnv: %v", err)
	}
	want := Env{
		Mode: Serve, Addr: "0.0.0.0:9000", PublicURL: "https://bot.example.com",
		RedisURL: "redis://:pw@redis:6379/0", RedisSentinelAddrs: []string{"s1:26379", "s2:26379"}, RedisMasterName: "mymaster",
		AlertSecret: Secret(testAlertSecret), LedgerSigningKey: Secret(testSigningKey),
		LedgerCheckpointFile: "/srv/ae/state/checkpoints.json", StatusToken: "status-token-0123456789",
		LedgerCheckpointURL: "https://audit.example/checkpoints", LedgerCheckpointToken: "audit-token",
		TelegramBotToken: "123456:ABC-def_ghi", TelegramAPIURL: "http://tg.local:8081", TelegramWebhookSecret: "hook_secret-1",
		TwilioAccountSID: "AC" + strings.Repeat("a", 32), TwilioAuthToken: twilioToken,
		TwilioWhatsAppFrom: "whatsapp:+14155238886", TwilioAPIURL: "http://twilio.local",
		TwilioApprovalContentSID: "HX" + strings.Repeat("b", 32), TwilioVoiceFrom: "+14155238887",
		LLMBaseURL: "http://localhost:11434/v1", LLMAPIKey: "sk-openai",
		CouncilModelA: "llama3.1", CouncilModelB: "llama3.1", CouncilEnabled: false,
		GitHubWebhookSecret: "gh-hook", GitHubToken: "ghp_token", GitHubAPIURL: "https://ghe.example.com/api/v3/",
		LoopInterval: 12 * time.Second, PolicyMinScoreToAlert: 55,
		LogLevel: slog.LevelDebug, LogFormat: LogText,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Env (-want +got):\n%s", d)
	}
	for name, ok := range map[string]bool{
		"TelegramEnabled": got.TelegramEnabled(),
		"TelegramWebhook": got.TelegramWebhook(),
		"WhatsAppEnabled": got.WhatsAppEnabled(),
		"VoiceEnabled":    got.VoiceEnabled(),
		"LLMEnabled":      got.LLMEnabled(),
		"!EmbeddedRedis":  !got.EmbeddedRedis(),
	} {
		if !ok {
			t.Errorf("%s: want true", name)
		}
	}
}

func TestLoadEnvDerived(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		mode  Mode
		check func(Env) string
	}{
		{"LLM_API_KEY wins over OPENAI_API_KEY", map[string]string{"LLM_API_KEY": "a", "OPENAI_API_KEY": "b", "COUNCIL_MODEL_A": "m"}, Demo,
			func(e Env) string { return e.LLMAPIKey.Reveal() + " " + e.LLMBaseURL }},
		{"key alone uses OpenAI", map[string]string{"OPENAI_API_KEY": "b", "COUNCIL_MODEL_A": "m"}, Demo,
			func(e Env) string { return e.LLMAPIKey.Reveal() + " " + e.LLMBaseURL }},
		{"model B defaults to A, set B kept", map[string]string{"LLM_BASE_URL": "http://x", "COUNCIL_MODEL_A": "a", "COUNCIL_MODEL_B": "b"}, Demo,
			func(e Env) string { return e.CouncilModelA + " " + e.CouncilModelB }},
		{"whatsapp: prefix kept once", map[string]string{"TWILIO_ACCOUNT_SID": "AC" + strings.Repeat("0", 32), "TWILIO_AUTH_TOKEN": twilioToken, "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886", "PUBLIC_URL": "https://x"}, Demo,
			func(e Env) string { return e.TwilioWhatsAppFrom }},
		{"empty variable counts as unset", map[string]string{"ADDR": "", "LOG_LEVEL": ""}, Demo,
			func(e Env) string { return e.Addr + " " + e.LogLevel.String() }},
		{"embedded redis only without any redis setting", nil, Demo,
			func(e Env) string {
				if e.EmbeddedRedis() {
					return "embedded"
				}
				return "external"
			}},
		{"cluster addresses replace embedded redis", map[string]string{"REDIS_CLUSTER_ADDRS": "a:1,b:2,"}, Demo,
			func(e Env) string {
				if e.EmbeddedRedis() {
					return "embedded"
				}
				return strings.Join(e.RedisClusterAddrs, "|")
			}},
		{"serve accepts cluster without REDIS_URL", with(serveBase, "REDIS_URL", "", "REDIS_CLUSTER_ADDRS", "a:1"), Serve,
			func(e Env) string { return strings.Join(e.RedisClusterAddrs, "|") }},
		{"polling without PUBLIC_URL", map[string]string{"TELEGRAM_BOT_TOKEN": "1:a", "TELEGRAM_WEBHOOK_SECRET": "s"}, Demo,
			func(e Env) string {
				if e.TelegramWebhook() {
					return "webhook"
				}
				return "polling"
			}},
		{"unpadded url-safe seed", map[string]string{"LEDGER_SIGNING_KEY": base64.RawURLEncoding.EncodeToString(testSeed)}, Demo,
			func(e Env) string {
				k, ok := e.SigningKey()
				if !ok || !k.Equal(ed25519.NewKeyFromSeed(testSeed)) {
					return "wrong key"
				}
				return "ok"
			}},
	}
	want := []string{
		"a http" + "s://api.openai.com/v1",
		"b https://api.openai.com/v1",
		"a b",
		"whatsapp:+14155238886",
		"127.0.0.1:8080 INFO",
		"embedded",
		"a:1|b:2",
		"a:1",
		"polling",
		"ok",
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := LoadEnv(mapLookup(tt.env), tt.mode)
			if err != nil {
				t.Fatalf("LoadEnv: %v", err)
			}
			if got := tt.check(e); got != want[i] {
				t.Errorf("got %q, want %q", got, want[i])
			}
		})
	}
}

func TestSigningKey(t *testing.T) {
	e, err := LoadEnv(mapLookup(serveBase), Serve)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := e.SigningKey()
	if !ok {
		t.Fatal("SigningKey: not set")
	}
	want := ed25519.NewKeyFromSeed(testSeed)
	if !k.Equal(want) {
		t.Error("SigningKey: not the key of the seed")
	}
	msg := []byte("checkpoint")
	if !ed25519.Verify(want.Public().(ed25519.PublicKey), msg, ed25519.Sign(k, msg)) {
		t.Error("SigningKey: signature does not verify")
	}
	demo, _ := LoadEnv(mapLookup(nil), Demo)
	if _, ok := demo.SigningKey(); ok {
		t.Error("SigningKey: want false when unset")
	}
}

func TestLoadEnvProblems(t *testing.T) {
	sid := "AC" + strings.Repeat("1", 32)
	tests := []struct {
		name string
		env  map[string]string
		mode Mode
		want []string // every problem line, in order
	}{
		{"serve requires redis and secrets", nil, Serve, []string{
			"REDIS_URL: required in serve mode (or REDIS_CLUSTER_ADDRS, or REDIS_SENTINEL_ADDRS with REDIS_MASTER_NAME)",
			"ALERT_SECRET: required in serve mode (at least 32 random bytes; or set ALERT_SECRET_FILE)",
			"LEDGER_SIGNING_KEY: required in serve mode (base64 of a 32-byte Ed25519 seed; or set LEDGER_SIGNING_KEY_FILE)",
		}},
		{"short ALERT_SECRET", with(serveBase, "ALERT_SECRET", "too-short"), Serve, []string{
			"ALERT_SECRET: must be at least 32 bytes, got 9",
		}},
		{"short ALERT_SECRET in demo too", map[string]string{"ALERT_SECRET": strings.Repeat("x", 31)}, Demo, []string{
			"ALERT_SECRET: must be at least 32 bytes, got 31",
		}},
		{"signing key not base64", with(serveBase, "LEDGER_SIGNING_KEY", "not base64 !!"), Serve, []string{
			"LEDGER_SIGNING_KEY: not valid base64 (want base64 of a 32-byte Ed25519 seed, e.g. from `openssl rand -base64 32`)",
		}},
		{"signing key wrong length", with(serveBase, "LEDGER_SIGNING_KEY", base64.StdEncoding.EncodeToString([]byte("short"))), Serve, []string{
			"LEDGER_SIGNING_KEY: must decode to a 32-byte Ed25519 seed, got 5 bytes",
		}},
		{"signing key is a full private key", with(serveBase, "LEDGER_SIGNING_KEY", base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(testSeed))), Serve, []string{
			"LEDGER_SIGNING_KEY: must decode to a 32-byte Ed25519 seed, got 64 bytes; this looks like a full private key, give only its first 32 bytes (the seed)",
		}},
		{"redis scheme", with(serveBase, "REDIS_URL", "http://:pw@redis:6379"), Serve, []string{
			`REDIS_URL: scheme must be redis, rediss or unix, got "http"`,
		}},
		{"redis url unparsable", with(serveBase, "REDIS_URL", "redis://:p%zz@host"), Serve, []string{
			"REDIS_URL: not a valid URL (want redis://[user:password@]host:port[/db], rediss://… or unix:///path)",
		}},
		{"redis without host", with(serveBase, "REDIS_URL", "redis:///0"), Serve, []string{
			"REDIS_URL: URL has no host",
		}},
		{"cluster and sentinel", map[string]string{"REDIS_CLUSTER_ADDRS": "a:1", "REDIS_SENTINEL_ADDRS": "b:2", "REDIS_MASTER_NAME": "m"}, Demo, []string{
			"REDIS_CLUSTER_ADDRS: set either REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS, not both",
		}},
		{"sentinel without master", map[string]string{"REDIS_SENTINEL_ADDRS": "b:2"}, Demo, []string{
			"REDIS_MASTER_NAME: required with REDIS_SENTINEL_ADDRS",
		}},
		{"master without sentinel", map[string]string{"REDIS_MASTER_NAME": "m"}, Demo, []string{
			"REDIS_MASTER_NAME: set but REDIS_SENTINEL_ADDRS is not",
		}},
		{"bad cluster address", map[string]string{"REDIS_CLUSTER_ADDRS": "a:1,nohost,b:x"}, Demo, []string{
			`REDIS_CLUSTER_ADDRS: "nohost": want host:port, got "nohost"`,
			`REDIS_CLUSTER_ADDRS: "b:x": port must be a number from 0 to 65535, got "x"`,
		}},
		{"empty cluster list", map[string]string{"REDIS_CLUSTER_ADDRS": " , "}, Demo, []string{
			"REDIS_CLUSTER_ADDRS: no address in the list (want host:port,host:port)",
		}},
		{"ADDR", map[string]string{"ADDR": "8080"}, Demo, []string{
			`ADDR: want host:port, got "8080"`,
		}},
		{"URLs must be absolute http(s)", map[string]string{
			"PUBLIC_URL": "bot.example.com", "TELEGRAM_API_URL": "/bot", "TWILIO_API_URL": "ftp://x",
			"LLM_BASE_URL": "localhost:11434", "GITHUB_API_URL": "https://", "COUNCIL_MODEL_A": "m",
		}, Demo, []string{
			"PUBLIC_URL: must be an absolute http:// or https:// URL",
			"TELEGRAM_API_URL: must be an absolute http:// or https:// URL",
			"TWILIO_API_URL: must be an absolute http:// or https:// URL",
			"LLM_BASE_URL: must be an absolute http:// or https:// URL",
			"GITHUB_API_URL: URL has no host",
		}},
		{"credentials in a URL", map[string]string{"LLM_BASE_URL": "https://user:pass@llm.example/v1", "COUNCIL_MODEL_A": "m"}, Demo, []string{
			"LLM_BASE_URL: URL must not contain credentials (user:password@); secrets belong in secret settings",
		}},
		{"PUBLIC_URL with a query", map[string]string{"PUBLIC_URL": "https://x/?a=b"}, Demo, []string{
			"PUBLIC_URL: a base URL must not have a query or fragment",
		}},
		{"telegram token and webhook secret", map[string]string{"TELEGRAM_BOT_TOKEN": "not-a-token", "TELEGRAM_WEBHOOK_SECRET": "has space"}, Demo, []string{
			"TELEGRAM_BOT_TOKEN: not a bot token (want the 123456789:ABC… form BotFather gives)",
			"TELEGRAM_WEBHOOK_SECRET: must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)",
		}},
		{"twilio partial", map[string]string{"TWILIO_WHATSAPP_FROM": "+14155238886", "PUBLIC_URL": "https://x"}, Demo, []string{
			"TWILIO_ACCOUNT_SID: required because other TWILIO_* variables are set (WhatsApp needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM)",
			"TWILIO_AUTH_TOKEN: required because other TWILIO_* variables are set (WhatsApp needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM)",
		}},
		{"twilio credentials without sender", map[string]string{"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": twilioToken}, Demo, []string{
			"TWILIO_WHATSAPP_FROM: required because other TWILIO_* variables are set (WhatsApp needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM)",
		}},
		{"twilio formats", map[string]string{
			"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": twilioToken, "TWILIO_WHATSAPP_FROM": "0771234567",
			"TWILIO_APPROVAL_CONTENT_SID": "HX1", "TWILIO_VOICE_FROM": "555-1234", "PUBLIC_URL": "https://x",
		}, Demo, []string{
			"TWILIO_ACCOUNT_SID: not an account SID (want AC followed by 32 hex digits)",
			`TWILIO_WHATSAPP_FROM: want whatsapp:+E164 or +E164 (e.g. +14155238886), got "0771234567"`,
			"TWILIO_APPROVAL_CONTENT_SID: not a content template SID (want HX followed by 32 hex digits)",
			`TWILIO_VOICE_FROM: want an E.164 number like +14155238886, got "555-1234"`,
		}},
		{"twilio auth token of the wrong shape", map[string]string{"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": "my-twilio-password", "TWILIO_WHATSAPP_FROM": "+14155238886", "PUBLIC_URL": "https://x"}, Demo, []string{
			"TWILIO_AUTH_TOKEN: not a Twilio auth token (want the 32 hex digits of the console's Auth Token)",
		}},
		{"voice without credentials", map[string]string{"TWILIO_VOICE_FROM": "+14155238886"}, Demo, []string{
			"TWILIO_VOICE_FROM: set but TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not",
		}},
		{"content sid without whatsapp", map[string]string{"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": twilioToken, "TWILIO_VOICE_FROM": "+14155238886", "TWILIO_APPROVAL_CONTENT_SID": "HX" + strings.Repeat("2", 32)}, Demo, []string{
			"TWILIO_APPROVAL_CONTENT_SID: set but TWILIO_WHATSAPP_FROM is not",
		}},
		{"whatsapp needs PUBLIC_URL", map[string]string{"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": twilioToken, "TWILIO_WHATSAPP_FROM": "+14155238886"}, Demo, []string{
			"PUBLIC_URL: required when WhatsApp is enabled (Twilio posts to it and signs requests over it)",
		}},
		{"LLM without model", map[string]string{"LLM_BASE_URL": "http://localhost:11434/v1"}, Demo, []string{
			"COUNCIL_MODEL_A: required when LLM_BASE_URL or an API key is set (the model the lenses ask, e.g. llama3.1)",
		}},
		{"numbers and enums", map[string]string{
			"COUNCIL_ENABLED": "maybe", "LOOP_INTERVAL_S": "0", "POLICY_MIN_SCORE_TO_ALERT": "101",
			"LOG_LEVEL": "verbose", "LOG_FORMAT": "xml",
		}, Demo, []string{
			`COUNCIL_ENABLED: must be true or false, got "maybe"`,
			`LOOP_INTERVAL_S: must be a whole number of seconds greater than 0, got "0"`,
			`POLICY_MIN_SCORE_TO_ALERT: must be a whole number from 0 to 100, got "101"`,
			`LOG_LEVEL: must be debug, info, warn or error, got "verbose"`,
			`LOG_FORMAT: must be text or json, got "xml"`,
		}},
		{"non-numeric interval and score", map[string]string{"LOOP_INTERVAL_S": "5s", "POLICY_MIN_SCORE_TO_ALERT": "-1"}, Demo, []string{
			`LOOP_INTERVAL_S: must be a whole number of seconds greater than 0, got "5s"`,
			`POLICY_MIN_SCORE_TO_ALERT: must be a whole number from 0 to 100, got "-1"`,
		}},
		{"checkpoint file and status token", map[string]string{"LEDGER_CHECKPOINT_FILE": "/var/lib/alertengine/", "STATUS_TOKEN": "short"}, Demo, []string{
			"LEDGER_CHECKPOINT_FILE: names a directory; want a file path, e.g. /var/lib/alertengine/checkpoints.json",
			"STATUS_TOKEN: must be at least 16 bytes, got 5",
		}},
		{"unknown mode", nil, Mode(7), []string{
			"mode: unknown mode 7 (want config.Demo or config.Serve)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadEnv(mapLookup(tt.env), tt.mode)
			got := problemLines(t, err)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

// problemLines asserts err is a *Problems wrapping ErrInvalid and returns its lines.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got nil")
	}
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want *Problems, got %T: %v", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false")
	}
	if got, want := err.Error(), strings.Join(ps.Lines(), "\n"); got != want {
		t.Errorf("Error() is not the lines joined:\n%s\n---\n%s", got, want)
	}
	return ps.Lines()
}

func TestLoadEnvSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	values := map[string]string{
		"REDIS_URL":               "redis://:file-pw@redis:6379",
		"ALERT_SECRET":            testAlertSecret + "-from-file",
		"LEDGER_SIGNING_KEY":      testSigningKey,
		"TELEGRAM_BOT_TOKEN":      "42:from_file",
		"TELEGRAM_WEBHOOK_SECRET": "from_file",
		"TWILIO_AUTH_TOKEN":       "f11ef11ef11ef11ef11ef11ef11ef11e",
		"LLM_API_KEY":             "llm-from-file",
		"OPENAI_API_KEY":          "openai-from-file",
		"GITHUB_WEBHOOK_SECRET":   "gh-hook-from-file",
		"GITHUB_TOKEN":            "gh-token-from-file",
		"STATUS_TOKEN":            "status-token-from-file",
		"LEDGER_CHECKPOINT_TOKEN": "audit-token-from-file",
	}
	field := func(e Env, name string) Secret {
		return map[string]Secret{
			"REDIS_URL": e.RedisURL, "ALERT_SECRET": e.AlertSecret, "LEDGER_SIGNING_KEY": e.LedgerSigningKey,
			"TELEGRAM_BOT_TOKEN": e.TelegramBotToken, "TELEGRAM_WEBHOOK_SECRET": e.TelegramWebhookSecret,
			"TWILIO_AUTH_TOKEN": e.TwilioAuthToken, "LLM_API_KEY": e.LLMAPIKey, "OPENAI_API_KEY": e.LLMAPIKey,
			"GITHUB_WEBHOOK_SECRET": e.GitHubWebhookSecret, "GITHUB_TOKEN": e.GitHubToken, "STATUS_TOKEN": e.StatusToken,
			"LEDGER_CHECKPOINT_TOKEN": e.LedgerCheckpointToken,
		}[name]
	}
	if len(values) != len(secretVars) {
		t.Fatalf("test covers %d secrets, package has %d", len(values), len(secretVars))
	}
	for _, name := range secretVars {
		t.Run(name+"_FILE", func(t *testing.T) {
			// Trailing newlines (as editors and `echo` write them) are trimmed.
			path := write(name, values[name]+"\r\n\n")
			env := map[string]string{"COUNCIL_MODEL_A": "m", name + "_FILE": path}
			if name == "TWILIO_AUTH_TOKEN" {
				env = with(env, "TWILIO_ACCOUNT_SID", "AC"+strings.Repeat("f", 32), "TWILIO_VOICE_FROM", "+14155238886")
			}
			e, err := LoadEnv(mapLookup(env), Demo)
			if err != nil {
				t.Fatalf("LoadEnv: %v", err)
			}
			if got := field(e, name).Reveal(); got != values[name] {
				t.Errorf("got %q, want %q", got, values[name])
			}
		})
	}

	unreadable := filepath.Join(dir, "missing")
	empty := write("empty", "\n")
	tests := []struct {
		name   string
		env    map[string]string
		want   []string
		target error
	}{
		{"both set", map[string]string{"GITHUB_TOKEN": "inline-value", "GITHUB_TOKEN_FILE": write("tok", "file-value")}, []string{
			"GITHUB_TOKEN: both GITHUB_TOKEN and GITHUB_TOKEN_FILE are set; set only one",
		}, nil},
		{"unreadable", map[string]string{"ALERT_SECRET_FILE": unreadable}, []string{
			`ALERT_SECRET_FILE: cannot read "` + unreadable + `": no such file or directory`,
		}, fs.ErrNotExist},
		{"a directory", map[string]string{"GITHUB_TOKEN_FILE": dir}, []string{
			`GITHUB_TOKEN_FILE: cannot read "` + dir + `": is a directory`,
		}, nil},
		{"empty", map[string]string{"TWILIO_AUTH_TOKEN_FILE": empty}, []string{
			`TWILIO_AUTH_TOKEN_FILE: file "` + empty + `" is empty`,
		}, nil},
		{"too large", map[string]string{"GITHUB_TOKEN_FILE": write("big", strings.Repeat("x", maxSecretFile+1))}, []string{
			`GITHUB_TOKEN_FILE: file "` + filepath.Join(dir, "big") + `" is larger than 64 KiB`,
		}, nil},
		{"file content is validated like the variable", map[string]string{"ALERT_SECRET_FILE": write("short", "short-file-secret\n")}, []string{
			"ALERT_SECRET: must be at least 32 bytes, got 17",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadEnv(mapLookup(tt.env), Demo)
			if d := cmp.Diff(tt.want, problemLines(t, err)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("errors.Is(err, %v) = false", tt.target)
			}
			for _, leak := range []string{"inline-value", "file-value", "short-file-secret"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error shows the secret %q: %v", leak, err)
				}
			}
		})
	}
}

func TestLoadEnvCollectsAllProblems(t *testing.T) {
	env := map[string]string{
		"ADDR": "nope", "ALERT_SECRET": "short", "LEDGER_SIGNING_KEY": "@@", "LOG_LEVEL": "loud",
		"LOOP_INTERVAL_S": "-3", "REDIS_URL": "mysql://x",
	}
	lines := problemLines(t, func() error { _, err := LoadEnv(mapLookup(env), Serve); return err }())
	var vars []string
	for _, l := range lines {
		v, _, _ := strings.Cut(l, ":")
		vars = append(vars, v)
	}
	want := []string{"REDIS_URL", "ADDR", "ALERT_SECRET", "LEDGER_SIGNING_KEY", "LOOP_INTERVAL_S", "LOG_LEVEL"}
	if d := cmp.Diff(want, vars); d != "" {
		t.Errorf("variables named (-want +got):\n%s\nlines:\n%s", d, strings.Join(lines, "\n"))
	}
}

func TestEnvRedacted(t *testing.T) {
	env := with(serveBase,
		"REDIS_URL", "redis://user:redis-pass@redis:6379",
		"TELEGRAM_BOT_TOKEN", "1:tg-token",
		"LLM_BASE_URL", "https://llm.example/v1",
		"COUNCIL_MODEL_A", "gpt-x",
	)
	e, err := LoadEnv(mapLookup(env), Serve)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"MODE":                      "serve",
		"ADDR":                      ":8080",
		"REDIS_URL":                 "[redacted]",
		"ALERT_SECRET":              "[redacted]",
		"LEDGER_SIGNING_KEY":        "[redacted]",
		"LEDGER_CHECKPOINT_FILE":    "/var/lib/alertengine/checkpoints.json",
		"TELEGRAM_BOT_TOKEN":        "[redacted]",
		"TELEGRAM_API_URL":          "https://api.telegram.org",
		"TWILIO_API_URL":            "https://api.twilio.com",
		"LLM_BASE_URL":              "https://llm.example/v1",
		"COUNCIL_MODEL_A":           "gpt-x",
		"COUNCIL_MODEL_B":           "gpt-x",
		"COUNCIL_ENABLED":           "true",
		"GITHUB_API_URL":            "https://api.github.com/",
		"LOOP_INTERVAL_S":           "5",
		"POLICY_MIN_SCORE_TO_ALERT": "70",
		"LOG_LEVEL":                 "info",
		"LOG_FORMAT":                "json",
	}
	if d := cmp.Diff(want, e.Redacted()); d != "" {
		t.Errorf("Redacted (-want +got):\n%s", d)
	}
}

// twilioToken has the shape of a Twilio auth token (32 hex digits).
const twilioToken = "0123456789abcdef0123456789abcdef"
