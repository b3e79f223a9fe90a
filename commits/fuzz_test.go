package commits_test

import (
	"testing"

	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/fixtures"
)

// FuzzParse: whatever a (signed) sender puts in a body, Parse returns changes within the
// limits or an error, never a panic.
func FuzzParse(f *testing.F) {
	for _, d := range fixtures.GitHubDeliveries() {
		f.Add(d.Event, d.Body)
	}
	f.Add("push", []byte(`{"ref":"refs/heads/x","repository":{"full_name":"a/b"},"commits":[{"id":"zz"}]}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		d, err := commits.Parse(event, body, t0, defaultPatterns)
		if err != nil {
			return
		}
		if len(d.Changes) > commits.MaxCommitsPerPush {
			t.Fatalf("%d changes", len(d.Changes))
		}
		for _, c := range d.Changes {
			if len(c.AllFiles()) > commits.MaxFiles || len(c.Message) > commits.MaxMessageLen || len(c.URL) > commits.MaxPathLen {
				t.Fatalf("unbounded change %+v", c)
			}
		}
	})
}
