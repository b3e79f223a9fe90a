package slack

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/slack/slacktest"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestParseChatAndPerson(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{in: "C0123ABCDEF", want: "C0123ABCDEF"},
		{in: " G0123ABCDE ", want: "G0123ABCDE"},
		{in: "#incidents", err: "not its name"},
		{in: "U0123ABCDEF", err: "not a member id"},
		{in: "c0123abcdef", err: "want a Slack channel id"},
		{in: "CX", err: "want a Slack channel id"},
	} {
		got, err := ParseChat(c.in)
		if err != nil && strings.Contains(err.Error(), strings.TrimSpace(c.in)) {
			t.Errorf("ParseChat(%q): the error repeats the input: %v", c.in, err)
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseChat(%q) = %q, %v; want error with %q", c.in, got, err, c.err)
			}
		} else if err != nil || got != c.want {
			t.Errorf("ParseChat(%q) = %q, %v", c.in, got, err)
		}
	}
	for _, c := range []struct {
		in, want, err string
	}{
		{in: "U0123ABCDEF", want: "U0123ABCDEF"},
		{in: "W0123ABCDEF", want: "W0123ABCDEF"},
		{in: "@ana", err: "not a display name"},
		{in: "C0123ABCDEF", err: "not a channel id"},
		{in: "ana", err: "want a Slack member id"},
	} {
		got, err := ParsePerson(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParsePerson(%q) = %q, %v; want error with %q", c.in, got, err, c.err)
			}
		} else if err != nil || got != c.want {
			t.Errorf("ParsePerson(%q) = %q, %v", c.in, got, err)
		}
	}
}

func TestSpecReadsItsOwnVariablesAndNeverLogsSecrets(t *testing.T) {
	fake := slacktest.New(t)
	rdb, prefix := ledgertest.Redis(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "signing")
	if err := os.WriteFile(secretFile, []byte(slacktest.SigningSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		EnvBotToken: slacktest.BotToken, EnvSigningSecret + "_FILE": secretFile, EnvAPIURL: fake.URL,
	}
	lookup := channel.Lookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if !Spec.EnabledBy(lookup) || Spec.EnabledBy(channel.Lookup(func(string) (string, bool) { return "", false })) {
		t.Fatal("enabled by SLACK_BOT_TOKEN, and only by it")
	}
	var logs bytes.Buffer
	d := channel.Deps{Env: config.Env{PublicURL: "https://bot.example"}, Lookup: lookup, Redis: rdb, KeyPrefix: prefix,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registry: prometheus.NewRegistry()}
	ad, err := Spec.New(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := ad.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if rs := ad.Routes(newRecorder("")); len(rs) != 3 {
		t.Fatalf("routes %+v", rs)
	}
	// The adapter's metrics are in the registry it was given.
	reg := d.Registry.(*prometheus.Registry)
	code, _, err := fake.Send(serve(t, ad.(*Adapter), newRecorder("")), fake.URLVerification("x"), slacktest.Sign{Secret: "forged"})
	if err != nil || code != 401 {
		t.Fatalf("forged: %d %v", code, err)
	}
	if n := testutil.ToFloat64(ad.(*Adapter).m.refused.WithLabelValues("signature")); n != 1 {
		t.Errorf("refused signature counter %v, want 1", n)
	}
	if n, err := testutil.GatherAndCount(reg, "alertengine_slack_requests_refused_total"); err != nil || n != 1 {
		t.Errorf("the registry holds %d series (%v)", n, err)
	}
	opts, _ := OptionsFromEnv(lookup)
	for _, shown := range []string{fmt.Sprintf("%v %+v %#v", opts, opts, opts), logs.String()} {
		for _, s := range []string{slacktest.BotToken, slacktest.SigningSecret} {
			if strings.Contains(shown, s) {
				t.Fatalf("a secret is shown: %s", shown)
			}
		}
	}

	for name, bad := range map[string]map[string]string{
		"no way in":       {EnvBotToken: slacktest.BotToken},
		"a user token":    {EnvBotToken: "xoxp-123-456", EnvAppToken: slacktest.AppToken},
		"a bot app token": {EnvBotToken: slacktest.BotToken, EnvAppToken: "xoxb-not-an-app-token"},
		"both forms":      {EnvBotToken: slacktest.BotToken, EnvBotToken + "_FILE": secretFile, EnvAppToken: slacktest.AppToken},
	} {
		l := channel.Lookup(func(k string) (string, bool) { v, ok := bad[k]; return v, ok })
		d.Lookup = l
		_, err := Spec.New(d)
		if err == nil {
			t.Errorf("%s: built", name)
			continue
		}
		if strings.Contains(err.Error(), "xoxp-123-456") || strings.Contains(err.Error(), slacktest.BotToken) {
			t.Errorf("%s: the error shows a token: %v", name, err)
		}
	}
}
