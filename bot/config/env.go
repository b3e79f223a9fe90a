package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Mode selects the defaults and requirements of [LoadEnv].
type Mode int

const (
	// Demo is `bot demo`: local defaults, nothing required (the caller generates missing
	// secrets and embeds Redis).
	Demo Mode = iota + 1
	// Serve is `bot serve`: production defaults; Redis, ALERT_SECRET and LEDGER_SIGNING_KEY
	// are required.
	Serve
)

// String returns "demo" or "serve".
func (m Mode) String() string {
	switch m {
	case Demo:
		return "demo"
	case Serve:
		return "serve"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// LogFormat is the slog handler the bot logs with.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Defaults of the environment (docs/configuration.md, "Environment").
const (
	DefaultTelegramAPIURL        = "https://api.telegram.org"
	DefaultTwilioAPIURL          = "https://api.twilio.com"
	DefaultGitHubAPIURL          = "https://api.github.com/"
	DefaultLLMBaseURL            = "https://api.openai.com/v1"
	DefaultLoopInterval          = 5 * time.Second
	DefaultPolicyMinScoreToAlert = 70
	// MinAlertSecretLen is the shortest accepted ALERT_SECRET, in bytes.
	MinAlertSecretLen = 32
	// DefaultCheckpointFile is where `serve` keeps the ledger's last signed checkpoints
	// when LEDGER_CHECKPOINT_FILE is unset.
	DefaultCheckpointFile = "/var/lib/alertengine/checkpoints.json"
	// MinStatusTokenLen is the shortest accepted STATUS_TOKEN, in bytes.
	MinStatusTokenLen = 16
	// maxSecretFile bounds a NAME_FILE read.
	maxSecretFile = 64 << 10
)

// Env is the bot's environment (docs/configuration.md, "Environment"), parsed and validated. Every secret is a [Secret];
// a secret given as NAME_FILE is read into the same field as NAME.
type Env struct {
	Mode Mode

	// Addr is the HTTP listen address (ADDR).
	Addr string
	// PublicURL is the external base URL without a trailing slash (PUBLIC_URL); empty if unset.
	PublicURL string

	// RedisURL is REDIS_URL (it may hold a password). Empty in demo means embedded Redis,
	// unless cluster or sentinel addresses are set.
	RedisURL Secret
	// RedisClusterAddrs is REDIS_CLUSTER_ADDRS (host:port list).
	RedisClusterAddrs []string
	// RedisSentinelAddrs is REDIS_SENTINEL_ADDRS (host:port list), with RedisMasterName.
	RedisSentinelAddrs []string
	RedisMasterName    string
	// RedisKeyPrefix starts every key the bot writes (REDIS_KEY_PREFIX), so that several
	// deployments (staging and production, say) can share one Redis without meeting.
	RedisKeyPrefix string

	// AlertSecret signs approval JWTs (ALERT_SECRET, ≥ 32 bytes). Empty in demo: the caller
	// generates one.
	AlertSecret Secret
	// LedgerSigningKey is the base64 Ed25519 seed (LEDGER_SIGNING_KEY); see SigningKey. Empty
	// in demo: the caller generates one.
	LedgerSigningKey Secret
	// LedgerCheckpointFile is LEDGER_CHECKPOINT_FILE: the file, outside Redis, that keeps
	// every tenant's last signed checkpoint so that a Redis that lost the ledger is
	// noticed. Serve: DefaultCheckpointFile when unset. Demo: empty when unset (the caller
	// picks a file that lives no longer than its embedded Redis).
	LedgerCheckpointFile string
	// LedgerCheckpointURL is LEDGER_CHECKPOINT_URL: an auditor's service that keeps the
	// same checkpoints (ledger.HTTPSink's protocol), beside the file; empty if unset.
	LedgerCheckpointURL string
	// LedgerCheckpointToken is LEDGER_CHECKPOINT_TOKEN, the bearer token for that service.
	LedgerCheckpointToken Secret
	// LedgerOrigin is LEDGER_ORIGIN: the first part of the origin line of the ledger's
	// checkpoint notes ("<origin>/<tenant>") and the name of its note key; empty if unset
	// (the ledger's default origin is used).
	LedgerOrigin string
	// StatusToken is STATUS_TOKEN: the bearer token GET /__alertengine/status requires.
	// Unset: the endpoint is not served.
	StatusToken Secret

	TelegramBotToken      Secret
	TelegramAPIURL        string
	TelegramWebhookSecret Secret

	TwilioAccountSID string
	TwilioAuthToken  Secret
	// TwilioWhatsAppFrom is the WhatsApp sender, always "whatsapp:+E164".
	TwilioWhatsAppFrom       string
	TwilioAPIURL             string
	TwilioApprovalContentSID string
	// TwilioVoiceFrom is the caller id of escalation calls (+E164).
	TwilioVoiceFrom string

	// LLMBaseURL is the OpenAI-compatible endpoint (LLM_BASE_URL, no trailing slash). When only
	// a key is set it is DefaultLLMBaseURL; when neither is set it is empty (offline lenses).
	LLMBaseURL string
	// LLMAPIKey is LLM_API_KEY, or OPENAI_API_KEY when LLM_API_KEY is unset.
	LLMAPIKey Secret
	// CouncilModelA and CouncilModelB name the models of the two lenses; B defaults to A.
	CouncilModelA  string
	CouncilModelB  string
	CouncilEnabled bool

	GitHubWebhookSecret Secret
	GitHubToken         Secret
	// GitHubAPIURL always ends with "/".
	GitHubAPIURL string

	// LoopInterval is LOOP_INTERVAL_S, the poll interval of pull-mode services.
	LoopInterval time.Duration
	// PolicyMinScoreToAlert is the default health-score threshold (0..100).
	PolicyMinScoreToAlert int

	LogLevel  slog.Level
	LogFormat LogFormat
}

// secretVars are the variables held in a Secret; each may be given as NAME_FILE.
var secretVars = []string{
	"REDIS_URL", "ALERT_SECRET", "LEDGER_SIGNING_KEY", "TELEGRAM_BOT_TOKEN",
	"TELEGRAM_WEBHOOK_SECRET", "TWILIO_AUTH_TOKEN", "LLM_API_KEY", "OPENAI_API_KEY",
	"GITHUB_WEBHOOK_SECRET", "GITHUB_TOKEN", "STATUS_TOKEN", "LEDGER_CHECKPOINT_TOKEN",
}

var (
	sidPattern           = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	authTokenPattern     = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	contentSIDPattern    = regexp.MustCompile(`^HX[0-9a-fA-F]{32}$`)
	telegramTokenPattern = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)
	webhookSecretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	e164Pattern          = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// envReader reads variables through lookup and collects problems.
type envReader struct {
	lookup func(string) (string, bool)
	ps     Problems
}

func (r *envReader) addf(name, format string, args ...any) {
	r.ps.add(Problem{Path: name, Message: fmt.Sprintf(format, args...)})
}

// get returns the variable's value; set but empty counts as unset.
func (r *envReader) get(name string) string {
	v, ok := r.lookup(name)
	if !ok {
		return ""
	}
	return v
}

// secret returns NAME, or the content of the file named by NAME_FILE.
func (r *envReader) secret(name string) Secret {
	v, fileName := r.get(name), r.get(name+"_FILE")
	switch {
	case v != "" && fileName != "":
		r.addf(name, "both %s and %s_FILE are set; set only one", name, name)
		return ""
	case fileName != "":
		s, err := ReadSecretFile(fileName)
		if err != nil {
			r.ps.add(Problem{Path: name + "_FILE", Message: err.Error(), err: err})
			return ""
		}
		return Secret(s)
	}
	return Secret(v)
}

// ReadSecretFile reads a secret given as NAME_FILE: the file's content, trailing newlines
// trimmed, at most 64 KiB, not empty. Its errors name the path and never the content.
// Adapters reading variables of their own use it through channel.Secret.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, pathErr(err))
	}
	defer f.Close() // read-only: a close error loses nothing
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, pathErr(err))
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("file %q is larger than %d KiB", path, maxSecretFile>>10)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("file %q is empty", path)
	}
	return s, nil
}

// pathErr strips the *fs.PathError wrapper, whose text repeats the path.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// LoadEnv reads the environment through lookup (os.LookupEnv in cmd/bot) for mode and
// validates it. All problems are collected; the error is a [*Problems] wrapping [ErrInvalid].
// A variable set to the empty string counts as unset.
func LoadEnv(lookup func(string) (string, bool), mode Mode) (Env, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	r := &envReader{lookup: lookup}
	e := Env{Mode: mode}
	if mode != Demo && mode != Serve {
		r.addf("mode", "unknown mode %d (want config.Demo or config.Serve)", int(mode))
		return e, r.ps.err()
	}
	serve := mode == Serve

	r.redis(&e, serve)

	e.Addr = r.get("ADDR")
	if e.Addr == "" {
		e.Addr = "127.0.0.1:8080"
		if serve {
			e.Addr = ":8080"
		}
	} else if msg := checkHostPort(e.Addr); msg != "" {
		r.addf("ADDR", "%s", msg)
	}

	e.PublicURL = r.url("PUBLIC_URL", "", true)

	e.AlertSecret = r.secret("ALERT_SECRET")
	switch {
	case e.AlertSecret.IsSet() && len(e.AlertSecret) < MinAlertSecretLen:
		r.addf("ALERT_SECRET", "must be at least %d bytes, got %d", MinAlertSecretLen, len(e.AlertSecret))
	case !e.AlertSecret.IsSet() && serve:
		r.addf("ALERT_SECRET", "required in serve mode (at least %d random bytes; or set ALERT_SECRET_FILE)", MinAlertSecretLen)
	}

	e.LedgerSigningKey = r.secret("LEDGER_SIGNING_KEY")
	if e.LedgerSigningKey.IsSet() {
		if _, msg := decodeSeed(e.LedgerSigningKey.Reveal()); msg != "" {
			r.addf("LEDGER_SIGNING_KEY", "%s", msg)
		}
	} else if serve {
		r.addf("LEDGER_SIGNING_KEY", "required in serve mode (base64 of a 32-byte Ed25519 seed; or set LEDGER_SIGNING_KEY_FILE)")
	}

	r.ledger(&e, serve)

	r.telegram(&e)
	r.twilio(&e)
	r.llm(&e)

	e.GitHubWebhookSecret = r.secret("GITHUB_WEBHOOK_SECRET")
	e.GitHubToken = r.secret("GITHUB_TOKEN")
	e.GitHubAPIURL = r.url("GITHUB_API_URL", DefaultGitHubAPIURL, false)
	if !strings.HasSuffix(e.GitHubAPIURL, "/") {
		e.GitHubAPIURL += "/"
	}

	e.LoopInterval = DefaultLoopInterval
	if v := r.get("LOOP_INTERVAL_S"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			r.addf("LOOP_INTERVAL_S", "must be a whole number of seconds greater than 0, got %q", v)
		} else {
			e.LoopInterval = time.Duration(n) * time.Second
		}
	}

	e.PolicyMinScoreToAlert = DefaultPolicyMinScoreToAlert
	if v := r.get("POLICY_MIN_SCORE_TO_ALERT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			r.addf("POLICY_MIN_SCORE_TO_ALERT", "must be a whole number from 0 to 100, got %q", v)
		} else {
			e.PolicyMinScoreToAlert = n
		}
	}

	switch v := strings.ToLower(r.get("LOG_LEVEL")); v {
	case "", "info":
		e.LogLevel = slog.LevelInfo
	case "debug":
		e.LogLevel = slog.LevelDebug
	case "warn", "warning":
		e.LogLevel = slog.LevelWarn
	case "error":
		e.LogLevel = slog.LevelError
	default:
		r.addf("LOG_LEVEL", "must be debug, info, warn or error, got %q", v)
	}

	e.LogFormat = LogText
	if serve {
		e.LogFormat = LogJSON
	}
	switch v := strings.ToLower(r.get("LOG_FORMAT")); v {
	case "":
	case "text", "json":
		e.LogFormat = LogFormat(v)
	default:
		r.addf("LOG_FORMAT", "must be text or json, got %q", v)
	}

	return e, r.ps.err()
}

func (r *envReader) redis(e *Env, serve bool) {
	e.RedisURL = r.secret("REDIS_URL")
	if e.RedisURL.IsSet() {
		// Never echo the URL or url.Parse's error: both may contain the password.
		u, err := url.Parse(e.RedisURL.Reveal())
		switch {
		case err != nil:
			r.addf("REDIS_URL", "not a valid URL (want redis://[user:password@]host:port[/db], rediss://… or unix:///path)")
		case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix":
			r.addf("REDIS_URL", "scheme must be redis, rediss or unix, got %q", u.Scheme)
		case u.Scheme == "unix" && u.Path == "":
			r.addf("REDIS_URL", "unix:// URL has no socket path")
		case u.Scheme != "unix" && u.Host == "":
			r.addf("REDIS_URL", "URL has no host")
		}
	}
	e.RedisClusterAddrs = r.addrList("REDIS_CLUSTER_ADDRS")
	e.RedisSentinelAddrs = r.addrList("REDIS_SENTINEL_ADDRS")
	e.RedisMasterName = r.get("REDIS_MASTER_NAME")
	e.RedisKeyPrefix = r.get("REDIS_KEY_PREFIX")
	if len(e.RedisKeyPrefix) > 64 || strings.ContainsAny(e.RedisKeyPrefix, " \t\r\n{}") {
		r.addf("REDIS_KEY_PREFIX", "at most 64 characters, without spaces or braces")
	}
	switch {
	case len(e.RedisClusterAddrs) > 0 && len(e.RedisSentinelAddrs) > 0:
		r.addf("REDIS_CLUSTER_ADDRS", "set either REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS, not both")
	case len(e.RedisSentinelAddrs) > 0 && e.RedisMasterName == "":
		r.addf("REDIS_MASTER_NAME", "required with REDIS_SENTINEL_ADDRS")
	case len(e.RedisSentinelAddrs) == 0 && e.RedisMasterName != "":
		r.addf("REDIS_MASTER_NAME", "set but REDIS_SENTINEL_ADDRS is not")
	}
	if serve && !e.RedisURL.IsSet() && len(e.RedisClusterAddrs) == 0 && len(e.RedisSentinelAddrs) == 0 {
		r.addf("REDIS_URL", "required in serve mode (or REDIS_CLUSTER_ADDRS, or REDIS_SENTINEL_ADDRS with REDIS_MASTER_NAME)")
	}
}

func (r *envReader) ledger(e *Env, serve bool) {
	e.LedgerCheckpointFile = r.get("LEDGER_CHECKPOINT_FILE")
	switch p := e.LedgerCheckpointFile; {
	case p == "" && serve:
		e.LedgerCheckpointFile = DefaultCheckpointFile
	case p == "":
	case strings.ContainsAny(p, "\x00\n\r"):
		r.addf("LEDGER_CHECKPOINT_FILE", "not a file path")
	case strings.HasSuffix(p, "/") || filepath.Base(filepath.Clean(p)) == "." || filepath.Base(filepath.Clean(p)) == "..":
		r.addf("LEDGER_CHECKPOINT_FILE", "names a directory; want a file path, e.g. %s", DefaultCheckpointFile)
	default:
		e.LedgerCheckpointFile = filepath.Clean(p)
	}
	e.LedgerCheckpointURL = r.url("LEDGER_CHECKPOINT_URL", "", true)
	e.LedgerCheckpointToken = r.secret("LEDGER_CHECKPOINT_TOKEN")
	if e.LedgerOrigin = r.get("LEDGER_ORIGIN"); e.LedgerOrigin != "" && strings.ContainsAny(e.LedgerOrigin, " \t\r\n+") || len(e.LedgerOrigin) > 128 {
		r.addf("LEDGER_ORIGIN", "want a name without spaces or '+' (at most 128 bytes), e.g. ledger.example.com")
	}
	e.StatusToken = r.secret("STATUS_TOKEN")
	if e.StatusToken.IsSet() && len(e.StatusToken) < MinStatusTokenLen {
		r.addf("STATUS_TOKEN", "must be at least %d bytes, got %d", MinStatusTokenLen, len(e.StatusToken))
	}
}

func (r *envReader) telegram(e *Env) {
	e.TelegramBotToken = r.secret("TELEGRAM_BOT_TOKEN")
	if e.TelegramBotToken.IsSet() && !telegramTokenPattern.MatchString(e.TelegramBotToken.Reveal()) {
		r.addf("TELEGRAM_BOT_TOKEN", "not a bot token (want the 123456789:ABC… form BotFather gives)")
	}
	e.TelegramAPIURL = r.url("TELEGRAM_API_URL", DefaultTelegramAPIURL, true)
	e.TelegramWebhookSecret = r.secret("TELEGRAM_WEBHOOK_SECRET")
	if e.TelegramWebhookSecret.IsSet() && !webhookSecretPattern.MatchString(e.TelegramWebhookSecret.Reveal()) {
		r.addf("TELEGRAM_WEBHOOK_SECRET", "must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
	}
}

func (r *envReader) twilio(e *Env) {
	e.TwilioAccountSID = r.get("TWILIO_ACCOUNT_SID")
	if e.TwilioAccountSID != "" && !sidPattern.MatchString(e.TwilioAccountSID) {
		r.addf("TWILIO_ACCOUNT_SID", "not an account SID (want AC followed by 32 hex digits)")
	}
	e.TwilioAuthToken = r.secret("TWILIO_AUTH_TOKEN")
	if e.TwilioAuthToken.IsSet() && !authTokenPattern.MatchString(e.TwilioAuthToken.Reveal()) {
		// Every send would fail with Twilio's 20003; say so once, at start.
		r.addf("TWILIO_AUTH_TOKEN", "not a Twilio auth token (want the 32 hex digits of the console's Auth Token)")
	}
	if from := r.get("TWILIO_WHATSAPP_FROM"); from != "" {
		n, ok := normalizeWhatsApp(from)
		if !ok {
			r.addf("TWILIO_WHATSAPP_FROM", "want whatsapp:+E164 or +E164 (e.g. +14155238886), got %q", from)
		} else {
			e.TwilioWhatsAppFrom = "whatsapp:" + n
		}
	}
	e.TwilioAPIURL = r.url("TWILIO_API_URL", DefaultTwilioAPIURL, true)
	e.TwilioApprovalContentSID = r.get("TWILIO_APPROVAL_CONTENT_SID")
	if e.TwilioApprovalContentSID != "" && !contentSIDPattern.MatchString(e.TwilioApprovalContentSID) {
		r.addf("TWILIO_APPROVAL_CONTENT_SID", "not a content template SID (want HX followed by 32 hex digits)")
	}
	e.TwilioVoiceFrom = r.get("TWILIO_VOICE_FROM")
	if e.TwilioVoiceFrom != "" && !e164Pattern.MatchString(e.TwilioVoiceFrom) {
		r.addf("TWILIO_VOICE_FROM", "want an E.164 number like +14155238886, got %q", e.TwilioVoiceFrom)
	}

	fromSet := r.get("TWILIO_WHATSAPP_FROM") != ""
	credentials := e.TwilioAccountSID != "" || e.TwilioAuthToken.IsSet()
	if fromSet || credentials {
		var missing []string
		if e.TwilioAccountSID == "" {
			missing = append(missing, "TWILIO_ACCOUNT_SID")
		}
		if !e.TwilioAuthToken.IsSet() {
			missing = append(missing, "TWILIO_AUTH_TOKEN")
		}
		if !fromSet && e.TwilioVoiceFrom == "" {
			missing = append(missing, "TWILIO_WHATSAPP_FROM")
		}
		for _, m := range missing {
			r.addf(m, "required because other TWILIO_* variables are set (WhatsApp needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM)")
		}
	}
	if e.TwilioVoiceFrom != "" && !credentials {
		r.addf("TWILIO_VOICE_FROM", "set but TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not")
	}
	if e.TwilioApprovalContentSID != "" && !fromSet {
		r.addf("TWILIO_APPROVAL_CONTENT_SID", "set but TWILIO_WHATSAPP_FROM is not")
	}
	if fromSet && e.PublicURL == "" && r.get("PUBLIC_URL") == "" {
		r.addf("PUBLIC_URL", "required when WhatsApp is enabled (Twilio posts to it and signs requests over it)")
	}
}

func (r *envReader) llm(e *Env) {
	e.LLMBaseURL = r.url("LLM_BASE_URL", "", true)
	e.LLMAPIKey = r.secret("LLM_API_KEY")
	if openAI := r.secret("OPENAI_API_KEY"); !e.LLMAPIKey.IsSet() {
		e.LLMAPIKey = openAI
	}
	if e.LLMBaseURL == "" && e.LLMAPIKey.IsSet() && r.get("LLM_BASE_URL") == "" {
		e.LLMBaseURL = DefaultLLMBaseURL
	}
	e.CouncilModelA = r.get("COUNCIL_MODEL_A")
	e.CouncilModelB = r.get("COUNCIL_MODEL_B")
	if e.CouncilModelB == "" {
		e.CouncilModelB = e.CouncilModelA
	}
	if e.LLMBaseURL != "" && e.CouncilModelA == "" {
		r.addf("COUNCIL_MODEL_A", "required when LLM_BASE_URL or an API key is set (the model the lenses ask, e.g. llama3.1)")
	}
	e.CouncilEnabled = true
	if v := r.get("COUNCIL_ENABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			r.addf("COUNCIL_ENABLED", "must be true or false, got %q", v)
		} else {
			e.CouncilEnabled = b
		}
	}
}

// url reads an absolute http(s) URL; trim drops a trailing slash.
func (r *envReader) url(name, def string, trim bool) string {
	v := r.get(name)
	if v == "" {
		return def
	}
	if msg := checkBaseURL(v); msg != "" {
		r.addf(name, "%s", msg)
		return ""
	}
	if trim {
		v = strings.TrimRight(v, "/")
	}
	return v
}

// addrList reads a comma-separated host:port list.
func (r *envReader) addrList(name string) []string {
	v := r.get(name)
	if v == "" {
		return nil
	}
	var out []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if msg := checkHostPort(a); msg != "" {
			r.addf(name, "%q: %s", a, msg)
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		r.addf(name, "no address in the list (want host:port,host:port)")
	}
	return out
}

// checkHTTPURL returns "" for an absolute http(s) URL with a host and no credentials, else what
// is wrong. It never echoes the URL, which may carry credentials.
func checkHTTPURL(v string) string {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return "not a valid URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http:// or https:// URL"
	case u.Host == "":
		return "URL has no host"
	case u.User != nil:
		return "URL must not contain credentials (user:password@); secrets belong in secret settings"
	}
	return ""
}

// checkBaseURL is checkHTTPURL for a base URL that paths are appended to.
func checkBaseURL(v string) string {
	if msg := checkHTTPURL(v); msg != "" {
		return msg
	}
	if u, _ := url.Parse(v); u.RawQuery != "" || u.Fragment != "" {
		return "a base URL must not have a query or fragment"
	}
	return ""
}

func checkHostPort(v string) string {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Sprintf("want host:port, got %q", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port must be a number from 0 to 65535, got %q", port)
	}
	return ""
}

// decodeSeed decodes a base64 (standard or URL alphabet, padded or not) Ed25519 seed.
func decodeSeed(v string) (ed25519.PrivateKey, string) {
	v = strings.TrimSpace(v)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(v)
		if err != nil {
			continue
		}
		if len(b) != ed25519.SeedSize {
			hint := ""
			if len(b) == ed25519.PrivateKeySize {
				hint = "; this looks like a full private key, give only its first 32 bytes (the seed)"
			}
			return nil, fmt.Sprintf("must decode to a %d-byte Ed25519 seed, got %d bytes%s", ed25519.SeedSize, len(b), hint)
		}
		return ed25519.NewKeyFromSeed(b), ""
	}
	return nil, "not valid base64 (want base64 of a 32-byte Ed25519 seed, e.g. from `openssl rand -base64 32`)"
}

// normalizeWhatsApp accepts "+E164" or "whatsapp:+E164" and returns "+E164".
func normalizeWhatsApp(v string) (string, bool) {
	n := strings.TrimPrefix(strings.TrimSpace(v), "whatsapp:")
	return n, e164Pattern.MatchString(n)
}

// SigningKey returns the ledger checkpoint key derived from LEDGER_SIGNING_KEY, and false when
// it is unset (demo: the caller generates one).
func (e Env) SigningKey() (ed25519.PrivateKey, bool) {
	if !e.LedgerSigningKey.IsSet() {
		return nil, false
	}
	k, msg := decodeSeed(e.LedgerSigningKey.Reveal())
	return k, msg == ""
}

// EmbeddedRedis reports whether demo mode should start its embedded Redis: no REDIS_URL,
// cluster or sentinel address is set.
func (e Env) EmbeddedRedis() bool {
	return e.Mode == Demo && !e.RedisURL.IsSet() && len(e.RedisClusterAddrs) == 0 && len(e.RedisSentinelAddrs) == 0
}

// TelegramEnabled reports whether TELEGRAM_BOT_TOKEN is set.
func (e Env) TelegramEnabled() bool { return e.TelegramBotToken.IsSet() }

// TelegramWebhook reports whether Telegram runs in webhook mode (PUBLIC_URL and
// TELEGRAM_WEBHOOK_SECRET set) rather than long polling.
func (e Env) TelegramWebhook() bool {
	return e.TelegramEnabled() && e.PublicURL != "" && e.TelegramWebhookSecret.IsSet()
}

// WhatsAppEnabled reports whether the Twilio WhatsApp channel is configured.
func (e Env) WhatsAppEnabled() bool {
	return e.TwilioAccountSID != "" && e.TwilioAuthToken.IsSet() && e.TwilioWhatsAppFrom != ""
}

// VoiceEnabled reports whether escalation calls are configured.
func (e Env) VoiceEnabled() bool {
	return e.TwilioAccountSID != "" && e.TwilioAuthToken.IsSet() && e.TwilioVoiceFrom != ""
}

// LLMEnabled reports whether the lenses call an LLM (otherwise they run offline).
func (e Env) LLMEnabled() bool { return e.LLMBaseURL != "" }

// Redacted returns the effective value of every variable that has one (set or defaulted), for
// a status endpoint: secrets show as "[redacted]". (URLs outside secrets cannot hold
// credentials: LoadEnv refuses them.)
func (e Env) Redacted() map[string]string {
	m := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	join := func(v []string) string { return strings.Join(v, ",") }
	put("MODE", e.Mode.String())
	put("ADDR", e.Addr)
	put("PUBLIC_URL", e.PublicURL)
	put("REDIS_URL", e.RedisURL.String())
	put("REDIS_CLUSTER_ADDRS", join(e.RedisClusterAddrs))
	put("REDIS_SENTINEL_ADDRS", join(e.RedisSentinelAddrs))
	put("REDIS_MASTER_NAME", e.RedisMasterName)
	put("REDIS_KEY_PREFIX", e.RedisKeyPrefix)
	put("ALERT_SECRET", e.AlertSecret.String())
	put("LEDGER_SIGNING_KEY", e.LedgerSigningKey.String())
	put("LEDGER_CHECKPOINT_FILE", e.LedgerCheckpointFile)
	put("LEDGER_CHECKPOINT_URL", e.LedgerCheckpointURL)
	put("LEDGER_CHECKPOINT_TOKEN", e.LedgerCheckpointToken.String())
	put("LEDGER_ORIGIN", e.LedgerOrigin)
	put("STATUS_TOKEN", e.StatusToken.String())
	put("TELEGRAM_BOT_TOKEN", e.TelegramBotToken.String())
	put("TELEGRAM_API_URL", e.TelegramAPIURL)
	put("TELEGRAM_WEBHOOK_SECRET", e.TelegramWebhookSecret.String())
	put("TWILIO_ACCOUNT_SID", e.TwilioAccountSID)
	put("TWILIO_AUTH_TOKEN", e.TwilioAuthToken.String())
	put("TWILIO_WHATSAPP_FROM", e.TwilioWhatsAppFrom)
	put("TWILIO_API_URL", e.TwilioAPIURL)
	put("TWILIO_APPROVAL_CONTENT_SID", e.TwilioApprovalContentSID)
	put("TWILIO_VOICE_FROM", e.TwilioVoiceFrom)
	put("LLM_BASE_URL", e.LLMBaseURL)
	put("LLM_API_KEY", e.LLMAPIKey.String())
	put("COUNCIL_MODEL_A", e.CouncilModelA)
	put("COUNCIL_MODEL_B", e.CouncilModelB)
	if e.Mode != 0 {
		put("COUNCIL_ENABLED", strconv.FormatBool(e.CouncilEnabled))
	}
	put("GITHUB_WEBHOOK_SECRET", e.GitHubWebhookSecret.String())
	put("GITHUB_TOKEN", e.GitHubToken.String())
	put("GITHUB_API_URL", e.GitHubAPIURL)
	if e.LoopInterval > 0 {
		put("LOOP_INTERVAL_S", strconv.Itoa(int(e.LoopInterval/time.Second)))
	}
	if e.Mode != 0 {
		put("POLICY_MIN_SCORE_TO_ALERT", strconv.Itoa(e.PolicyMinScoreToAlert))
		put("LOG_LEVEL", strings.ToLower(e.LogLevel.String()))
	}
	put("LOG_FORMAT", string(e.LogFormat))
	return m
}

// LogValue implements slog.LogValuer: the Redacted view, as a group.
func (e Env) LogValue() slog.Value {
	m := e.Redacted()
	attrs := make([]slog.Attr, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		attrs = append(attrs, slog.String(k, m[k]))
	}
	return slog.GroupValue(attrs...)
}

// DecodeSeed reads a base64 Ed25519 seed as LEDGER_SIGNING_KEY takes it (for other keys
// given the same way, such as a witness's).
func DecodeSeed(v string) (ed25519.PrivateKey, error) {
	k, msg := decodeSeed(v)
	if msg != "" {
		return nil, errors.New(msg)
	}
	return k, nil
}

// GitHubHookMissing lists what managing a repository's webhook (`bot github-hook`) needs
// and e lacks, one line each: the variable and why it is needed.
func (e Env) GitHubHookMissing() []string {
	var missing []string
	if !e.GitHubToken.IsSet() {
		missing = append(missing, "GITHUB_TOKEN: not set (a token that may manage the repository's webhooks)")
	}
	if e.PublicURL == "" {
		missing = append(missing, "PUBLIC_URL: not set (GitHub must reach the bot at $PUBLIC_URL/github/webhook)")
	}
	if !e.GitHubWebhookSecret.IsSet() {
		missing = append(missing, "GITHUB_WEBHOOK_SECRET: not set (the secret GitHub signs deliveries with)")
	}
	return missing
}
