package metrics_test

import (
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/metrics"
	"github.com/alertengine/alertengine/commits"
	"github.com/prometheus/client_golang/prometheus"
)

func TestGitHubMetricsBoundTheirLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.NewGitHub(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Delivery("push", commits.OutcomeStored)
	for i := range 50 {
		m.Delivery(strings.Repeat("x", i+1), commits.OutcomeIgnored)
	}
	m.Refused(commits.RefusedSignature)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	refused := 0.0
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.Metric)
		for _, x := range mf.Metric {
			for _, l := range x.Label {
				if mf.GetName() == "alertengine_github_webhook_refused_total" && l.GetValue() == commits.RefusedSignature {
					refused = x.GetCounter().GetValue()
				}
			}
		}
	}
	if series["alertengine_github_deliveries_total"] != 2 {
		t.Fatalf("%d delivery series, want 2 (push, other)", series["alertengine_github_deliveries_total"])
	}
	if refused != 1 {
		t.Fatalf("bad_signature counted %v", refused)
	}
}
