package commits_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/commits"
)

// TestDeploymentsAndTagsAreWhatTheyAre: GitHub's deployment, deployment_status and create
// example payloads are recorded as deployments (environment, ref, state) and tags (name,
// tagger), not as commits; a created branch is acknowledged by name and not stored.
func TestDeploymentsAndTagsAreWhatTheyAre(t *testing.T) {
	w := newWorld(t)
	const sha = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
	if code, body := w.deliver(t, "deployment", delivery(t, "deployment.created").Body, ""); code != http.StatusOK {
		t.Fatalf("deployment: %d %s", code, body)
	}
	cs := w.all(t)
	if len(cs) != 1 {
		t.Fatalf("%d changes", len(cs))
	}
	if c := cs[0]; c.Kind != commits.KindDeploy || c.State != "created" || c.Ref != "production" || c.DeployRef != "main" || c.SHA != sha || c.By == "" {
		t.Fatalf("deployment stored as %+v", c)
	}
	w.clock.Set(t0.Add(time.Minute))
	if code, body := w.deliver(t, "deployment_status", delivery(t, "deployment_status.success").Body, ""); code != http.StatusOK {
		t.Fatalf("deployment_status: %d %s", code, body)
	}
	cs = w.all(t)
	if len(cs) != 1 || cs[0].State != "success" || cs[0].By != "rudo" || cs[0].DeployRef != "main" {
		t.Fatalf("after its success status: %+v", cs)
	}
	if code, body := w.deliver(t, "create", delivery(t, "create.tag").Body, ""); code != http.StatusOK {
		t.Fatalf("create tag: %d %s", code, body)
	}
	var tag *commits.Change
	for _, c := range w.all(t) {
		if c.Kind == commits.KindTag {
			tag = &c
		}
	}
	if tag == nil || tag.Ref != "v1.4.0" || tag.By == "" {
		t.Fatalf("tag stored as %+v", tag)
	}
	code, body := w.deliver(t, "create", delivery(t, "create.branch").Body, "")
	if code != http.StatusAccepted || !strings.Contains(body, "created branch feature/faster-checkout") || len(w.all(t)) != 2 {
		t.Fatalf("create branch: %d %s", code, body)
	}
}

// TestFormEncodedDeliveries: GitHub's webhook form defaults to
// application/x-www-form-urlencoded, payload=<json>; the signature is over that raw body.
func TestFormEncodedDeliveries(t *testing.T) {
	w := newWorld(t)
	jsonBody := delivery(t, "push.several").Body
	form := []byte("payload=" + url.QueryEscape(string(jsonBody)))
	formType := []string{"Content-Type", "application/x-www-form-urlencoded"}
	// Signed over the JSON inside rather than the bytes sent: refused.
	if code, _ := w.deliver(t, "push", form, commits.Sign(w.secret, jsonBody), formType...); code != http.StatusUnauthorized {
		t.Fatalf("signature over the inner JSON: %d, want 401", code)
	}
	if code, body := w.deliver(t, "push", []byte("other=1"), "", formType...); code != http.StatusBadRequest || !strings.Contains(body, "payload") {
		t.Fatalf("no payload field: %d %s", code, body)
	}
	if n := len(w.all(t)); n != 0 {
		t.Fatalf("refused deliveries stored %d changes", n)
	}
	if code, body := w.deliver(t, "push", form, "", formType...); code != http.StatusOK || !strings.Contains(body, "stored 3") {
		t.Fatalf("form-encoded push: %d %s", code, body)
	}
	if n := len(w.all(t)); n != 3 {
		t.Fatalf("%d changes from the form-encoded push", n)
	}
}
