package commits

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// ErrBadPayload wraps a delivery whose body cannot be parsed as its event.
var ErrBadPayload = errors.New("malformed GitHub payload")

// Delivery is what one webhook delivery means for the store.
type Delivery struct {
	// Event is the X-GitHub-Event value.
	Event string
	// Repo is the repository (owner/name, lower case); empty for events without one.
	Repo string
	// Changes are the records to store, oldest first; none for ping or an ignored event.
	Changes []Change
	// Ignored explains why a well-formed delivery records nothing ("" when it does).
	Ignored string
}

// Parse turns a verified delivery body into changes, with go-github's event types. at is
// when it was received; patterns are every tenant's risky-path globs, matched against all
// files of the delivery before the stored list is cut.
func Parse(event string, body []byte, at time.Time, patterns []string) (Delivery, error) {
	d := Delivery{Event: event}
	switch event {
	case "ping", "push", "deployment", "deployment_status", "create":
	default:
		d.Ignored = "event " + event + " is not used"
		return d, nil
	}
	v, err := github.ParseWebHook(event, body)
	if err != nil {
		return d, fmt.Errorf("%w: %s: %w", ErrBadPayload, event, err)
	}
	switch ev := v.(type) {
	case *github.PingEvent:
		d.Ignored = "ping"
		if ev.Repo != nil {
			d.Repo = NormalizeRepo(ev.Repo.GetFullName())
		}
	case *github.PushEvent:
		d.Repo = NormalizeRepo(ev.GetRepo().GetFullName())
		d.Changes, d.Ignored = pushChanges(ev, d.Repo, at, patterns)
	case *github.DeploymentStatusEvent:
		d.Repo = NormalizeRepo(ev.GetRepo().GetFullName())
		st := ev.GetDeploymentStatus()
		if st.GetState() != "success" {
			d.Ignored = "deployment state " + st.GetState()
			break
		}
		dep := ev.GetDeployment()
		when := at
		if t := st.GetUpdatedAt(); !t.IsZero() && t.Before(at) {
			when = t.Time
		}
		by := st.GetCreator().GetLogin()
		if by == "" {
			by = dep.GetCreator().GetLogin()
		}
		d.Changes = []Change{{Kind: KindDeploy, Repo: d.Repo, SHA: strings.ToLower(dep.GetSHA()), Ref: clip(dep.GetEnvironment(), 100),
			By: clip(by, 64), At: when, Message: clip(dep.GetDescription(), MaxMessageLen), URL: clip(st.GetTargetURL(), MaxPathLen),
			State: "success", DeployRef: clip(dep.GetRef(), 255)}}
	case *github.DeploymentEvent:
		// A deployment was requested: recorded as created, and replaced by its successful
		// status if one comes (same environment and sha).
		d.Repo = NormalizeRepo(ev.GetRepo().GetFullName())
		dep := ev.GetDeployment()
		when := at
		if t := dep.GetCreatedAt(); !t.IsZero() && t.Before(at) {
			when = t.Time
		}
		by := dep.GetCreator().GetLogin()
		if by == "" {
			by = ev.GetSender().GetLogin()
		}
		d.Changes = []Change{{Kind: KindDeploy, Repo: d.Repo, SHA: strings.ToLower(dep.GetSHA()), Ref: clip(dep.GetEnvironment(), 100),
			By: clip(by, 64), At: when, Message: clip(dep.GetDescription(), MaxMessageLen), State: "created", DeployRef: clip(dep.GetRef(), 255)}}
	case *github.CreateEvent:
		d.Repo = NormalizeRepo(ev.GetRepo().GetFullName())
		if ev.GetRefType() != "tag" {
			d.Ignored = "created " + clip(ev.GetRefType(), 20) + " " + clip(ev.GetRef(), 100) + " (only tags are recorded)"
			break
		}
		d.Changes = []Change{{Kind: KindTag, Repo: d.Repo, Ref: clip(ev.GetRef(), 255), By: clip(ev.GetSender().GetLogin(), 64), At: at}}
	}
	if d.Repo == "" && event != "ping" {
		return d, fmt.Errorf("%w: %s without repository.full_name", ErrBadPayload, event)
	}
	for i := range d.Changes {
		if d.Changes[i].Kind != KindTag && !validSHA(d.Changes[i].SHA) {
			return d, fmt.Errorf("%w: %s with commit id %q", ErrBadPayload, event, clip(d.Changes[i].SHA, 64))
		}
	}
	return d, nil
}

func pushChanges(ev *github.PushEvent, repo string, at time.Time, patterns []string) ([]Change, string) {
	ref := ev.GetRef()
	if ev.GetDeleted() {
		return nil, "branch or tag deleted"
	}
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		c := Change{Kind: KindTag, Repo: repo, Ref: clip(tag, 255), SHA: strings.ToLower(ev.GetAfter()), By: pusher(ev), At: at}
		if h := ev.GetHeadCommit(); h != nil {
			c.SHA, c.Message, c.URL = strings.ToLower(h.GetID()), clip(h.GetMessage(), MaxMessageLen), clip(h.GetURL(), MaxPathLen)
		}
		return []Change{c}, ""
	}
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		return nil, "ref " + clip(ref, 100) + " is neither a branch nor a tag"
	}
	commits := ev.Commits
	if len(commits) == 0 && ev.HeadCommit != nil {
		commits = []*github.HeadCommit{ev.HeadCommit} // e.g. a new branch pointing at an existing commit
	}
	if len(commits) > MaxCommitsPerPush {
		commits = commits[len(commits)-MaxCommitsPerPush:]
	}
	out := make([]Change, 0, len(commits))
	for i, hc := range commits {
		c := Change{Kind: KindCommit, Repo: repo, SHA: strings.ToLower(hc.GetID()), Ref: clip(branch, 255), By: pusher(ev),
			Message: clip(hc.GetMessage(), MaxMessageLen), At: at, CommittedAt: hc.GetTimestamp().Time, Forced: ev.GetForced(),
			URL: clip(hc.GetURL(), MaxPathLen), seq: i}
		if a := hc.GetAuthor(); a != nil {
			c.AuthorLogin, c.AuthorName, c.AuthorEmail = clip(a.GetLogin(), 64), clip(a.GetName(), 128), clip(a.GetEmail(), 254)
		}
		c.setFiles(hc.Added, hc.Modified, hc.Removed, patterns)
		out = append(out, c)
	}
	return out, ""
}

func pusher(ev *github.PushEvent) string {
	if l := ev.GetSender().GetLogin(); l != "" {
		return clip(l, 64)
	}
	return clip(ev.GetPusher().GetName(), 64)
}

// setFiles matches every file against patterns, then keeps at most MaxFiles of them.
func (c *Change) setFiles(added, modified, removed, patterns []string) {
	for _, list := range [][]string{added, modified, removed} {
		for _, f := range list {
			c.Files++
			for _, p := range patterns {
				if _, hit := c.Hits[p]; !hit && Match(p, f) {
					if c.Hits == nil {
						c.Hits = map[string]string{}
					}
					c.Hits[p] = clip(f, MaxPathLen)
				}
			}
		}
	}
	room := MaxFiles
	keep := func(list []string) []string {
		var out []string
		for _, f := range list {
			if room == 0 {
				c.FilesCut = true
				break
			}
			out = append(out, clip(f, MaxPathLen))
			room--
		}
		return out
	}
	c.Added, c.Modified, c.Removed = keep(added), keep(modified), keep(removed)
}

func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
