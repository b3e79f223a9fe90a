package commits

import (
	"strings"
	"time"
)

// Kind is what a Change records.
type Kind string

// Kinds of change.
const (
	// KindCommit is a commit pushed to a branch.
	KindCommit Kind = "commit"
	// KindDeploy is a deployment of a commit to an environment: created (the deployment
	// event) or successful (deployment_status "success"); State says which.
	KindDeploy Kind = "deploy"
	// KindTag is a tag pushed or created (a release).
	KindTag Kind = "tag"
)

// Limits of what one change stores. GitHub sends what it sends; the store keeps a bounded
// record and says what it cut.
const (
	// MaxFiles is the number of file paths kept per change (added, modified and removed
	// together). Risky-path matching sees every file of the delivery before the cut.
	MaxFiles = 200
	// MaxPathLen bounds one stored file path, in bytes.
	MaxPathLen = 512
	// MaxMessageLen bounds a stored commit message, in bytes.
	MaxMessageLen = 2048
	// MaxCommitsPerPush bounds the commits stored from one push (the newest are kept).
	MaxCommitsPerPush = 100
	// MaxPerRepo bounds the changes kept per repository; the oldest go first.
	MaxPerRepo = 2000
	// Retention is how long changes are kept.
	Retention = 7 * 24 * time.Hour
)

// Change is one commit, deployment or tag of a repository.
type Change struct {
	Kind Kind   `json:"kind"`
	Repo string `json:"repo"` // owner/name, lower case
	SHA  string `json:"sha,omitempty"`
	// Ref is the branch (commit), environment (deploy) or tag name (tag).
	Ref         string `json:"ref,omitempty"`
	AuthorLogin string `json:"author_login,omitempty"`
	AuthorName  string `json:"author_name,omitempty"`
	AuthorEmail string `json:"author_email,omitempty"`
	// By is who pushed, deployed or tagged (a GitHub login or pusher name).
	By      string `json:"by,omitempty"`
	Message string `json:"message,omitempty"`
	// At is when the change reached GitHub as far as the bot knows: the time the push was
	// received, the deployment status's time. Correlation windows use it.
	At time.Time `json:"at"`
	// CommittedAt is the commit's own timestamp (authors' clocks; may be days earlier).
	CommittedAt time.Time `json:"committed_at,omitzero"`
	Forced      bool      `json:"forced,omitempty"`
	// State is a deployment's: "created" (the deployment event, nothing run yet) or
	// "success" (its deployment_status).
	State string `json:"state,omitempty"`
	// DeployRef is the git ref a deployment deploys (branch, tag or sha as requested).
	DeployRef string   `json:"deploy_ref,omitempty"`
	Added     []string `json:"added,omitempty"`
	Modified  []string `json:"modified,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	// Files is the number of files the delivery listed; FilesCut says some were not kept.
	Files    int  `json:"files,omitempty"`
	FilesCut bool `json:"files_cut,omitempty"`
	// Hits are the risky-path patterns (of any tenant) that matched a file of the
	// delivery, each with the first matching file: matching happens before the cut.
	Hits map[string]string `json:"hits,omitempty"`
	URL  string            `json:"url,omitempty"`
	// Stats are filled from the GitHub API when GITHUB_TOKEN is set.
	Stats     bool `json:"-"`
	Additions int  `json:"-"`
	Deletions int  `json:"-"`
	// seq orders changes of one delivery (later commits of a push are newer).
	seq int
}

// id is the change's member in its repository's set: one per commit, per deployment
// status, per tag.
func (c Change) id() string {
	switch c.Kind {
	case KindDeploy:
		return "d:" + c.Ref + ":" + c.SHA
	case KindTag:
		return "t:" + c.Ref
	}
	return "c:" + c.SHA
}

// Author is the best name for the commit's author: login, else name, else email.
func (c Change) Author() string {
	switch {
	case c.AuthorLogin != "":
		return c.AuthorLogin
	case c.AuthorName != "":
		return c.AuthorName
	}
	return c.AuthorEmail
}

// AllFiles returns the stored file paths.
func (c Change) AllFiles() []string {
	out := make([]string, 0, len(c.Added)+len(c.Modified)+len(c.Removed))
	out = append(out, c.Added...)
	out = append(out, c.Modified...)
	return append(out, c.Removed...)
}

// NormalizeRepo returns owner/name in lower case (GitHub names are case-insensitive).
func NormalizeRepo(repo string) string { return strings.ToLower(strings.TrimSpace(repo)) }

// clip returns s cut to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
