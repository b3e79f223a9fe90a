package demo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-github/v60/github"
)

// TestPushIsASignedGitHubPushDelivery: what the demo sends is what GitHub sends — a push
// event go-github parses, with its delivery headers and an X-Hub-Signature-256 over the
// exact body.
func TestPushIsASignedGitHubPushDelivery(t *testing.T) {
	secret := []byte("github-webhook-secret")
	got := make(chan *github.PushEvent, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if !hmac.Equal([]byte(r.Header.Get("X-Hub-Signature-256")), []byte("sha256="+hex.EncodeToString(m.Sum(nil)))) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("X-GitHub-Event") != "push" || r.Header.Get("X-GitHub-Delivery") == "" {
			http.Error(w, "headers", http.StatusBadRequest)
			return
		}
		ev, err := github.ParseWebHook("push", body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- ev.(*github.PushEvent)
	}))
	defer srv.Close()
	d, err := NewDeployer(DeployerOptions{WebhookURL: srv.URL + "/github/webhook", Secret: secret, Repo: "demo/checkout"})
	if err != nil {
		t.Fatal(err)
	}
	sha, err := d.Push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ev := <-got
	if ev.GetRepo().GetFullName() != "demo/checkout" || ev.GetAfter() != sha || len(ev.Commits) != 1 || ev.GetHeadCommit().GetID() != sha ||
		ev.Commits[0].GetMessage() != commitMessage || ev.Commits[0].GetAuthor().GetLogin() != commitAuthor || ev.Commits[0].Modified[0] != "db/query.go" {
		t.Fatalf("push event %+v", ev)
	}
	wrong, _ := NewDeployer(DeployerOptions{WebhookURL: srv.URL, Secret: []byte("another secret"), Repo: "demo/checkout"})
	if _, err := wrong.Push(context.Background()); !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("a push the receiver refuses: %v", err)
	}
}
