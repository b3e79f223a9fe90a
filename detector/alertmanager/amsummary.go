package alertmanager

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/alertengine/alertengine/ledger"
)

// Bounds of what one Alertmanager delivery writes to the log.
const (
	// maxLoggedExamples is how many ignored alerts a delivery's summary names.
	maxLoggedExamples = 3
	// maxLoggedErrors is how many recording errors a delivery returns in full; the rest
	// are counted.
	maxLoggedErrors = 3
)

// deliverySummary collects what became of a delivery's alerts so that it is logged in one
// line, however many alerts it carries: one authenticated request with 8,000 alerts for
// unknown services must not write 8,000 lines.
type deliverySummary struct {
	ignoredBy map[string]int // reason → alerts
	services  map[string]bool
	examples  []string
	errors    int
}

func newDeliverySummary() *deliverySummary {
	return &deliverySummary{ignoredBy: map[string]int{}, services: map[string]bool{}}
}

// ignored counts an alert accepted and not acted on; the first few are named.
func (s *deliverySummary) ignored(reason, service, alertname string) {
	s.ignoredBy[reason]++
	if !s.services[service] && len(s.services) < 1000 {
		s.services[service] = true
	}
	if len(s.examples) < maxLoggedExamples {
		ex := fmt.Sprintf("%s: service %q", reason, ledger.Clip(service, 64))
		if alertname != "" {
			ex += fmt.Sprintf(" alertname %q", ledger.Clip(alertname, 64))
		}
		s.examples = append(s.examples, ex)
	}
}

// failed counts an alert that could not be recorded, keeping the first few errors.
func (s *deliverySummary) failed(errs []error, err error) []error {
	s.errors++
	if len(errs) < maxLoggedErrors {
		errs = append(errs, err)
	}
	return errs
}

// log writes the delivery's one line: WARN when alerts were ignored, INFO otherwise, with
// the count of every outcome.
func (s *deliverySummary) log(log *slog.Logger, tenant, group string, alerts int, res AlertmanagerResult) {
	outcomes := map[string]int{}
	for _, r := range res.Results {
		outcomes[r.Outcome]++
	}
	names := make([]string, 0, len(outcomes))
	for k := range outcomes {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, outcomes[k])
	}
	args := []any{"tenant", tenant, "group", ledger.Clip(group, 100), "alerts", alerts, "outcomes", b.String()}
	if len(s.ignoredBy) == 0 {
		log.Info("alertmanager delivery", args...)
		return
	}
	ignored := 0
	for _, n := range s.ignoredBy {
		ignored += n
	}
	services := fmt.Sprint(len(s.services))
	if len(s.services) >= 1000 {
		services = "1000+"
	}
	args = append(args, "ignored", ignored, "unknown_services", services, "examples", strings.Join(s.examples, "; "))
	log.Warn("alertmanager delivery: alerts ignored", args...)
}
