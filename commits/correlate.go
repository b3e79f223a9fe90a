package commits

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// DefaultWindow is how far before an incident's detection changes are correlated.
const DefaultWindow = 60 * time.Minute

// Service is a monitored service of a tenant with its repositories and the tenant's
// risky-path globs.
type Service struct {
	Tenant   string
	Name     string
	Repos    []string
	Patterns []string
}

// CorrelatorOptions configure a Correlator.
type CorrelatorOptions struct {
	Store    *Store
	Services []Service
	// Window is how far before detection changes count (default DefaultWindow).
	Window time.Duration
	// Limit bounds the changes returned per repository (default 50).
	Limit int
}

// Validate checks the options.
func (o *CorrelatorOptions) Validate() error {
	if o.Store == nil {
		return errors.New("correlator: no store")
	}
	seen := map[[2]string]bool{}
	for _, s := range o.Services {
		k := [2]string{s.Tenant, s.Name}
		if seen[k] {
			return fmt.Errorf("correlator: service %s/%s twice", s.Tenant, s.Name)
		}
		seen[k] = true
		for _, p := range s.Patterns {
			if !ValidPattern(p) {
				return fmt.Errorf("correlator: %s/%s: malformed risky path %q", s.Tenant, s.Name, p)
			}
		}
	}
	return nil
}

// Correlator finds the changes of a service's repositories around an incident.
type Correlator struct {
	o        CorrelatorOptions
	services map[[2]string]Service
	repos    map[string]bool
	patterns []string
}

// NewCorrelator returns a correlator.
func NewCorrelator(o CorrelatorOptions) (*Correlator, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Limit == 0 {
		o.Limit = 50
	}
	c := &Correlator{o: o, services: map[[2]string]Service{}, repos: map[string]bool{}}
	union := map[string]bool{}
	for _, s := range o.Services {
		c.services[[2]string{s.Tenant, s.Name}] = s
		for _, r := range s.Repos {
			c.repos[NormalizeRepo(r)] = true
		}
		for _, p := range s.Patterns {
			if !union[p] {
				union[p] = true
				c.patterns = append(c.patterns, p)
			}
		}
	}
	sort.Strings(c.patterns)
	return c, nil
}

// Accept reports whether repo is mapped to some service.
func (c *Correlator) Accept(repo string) bool { return c.repos[NormalizeRepo(repo)] }

// Patterns returns every tenant's risky-path globs, for matching at ingestion.
func (c *Correlator) Patterns() []string { return c.patterns }

// Window returns the correlation window.
func (c *Correlator) Window() time.Duration { return c.o.Window }

// Finding is a change correlated with a service, judged by its tenant's risky paths.
type Finding struct {
	Change
	// Risky says why the change is suspect ("touched database/query files"), "" if not.
	Risky string
	// RiskyFiles are up to three of the files that made it risky.
	RiskyFiles []string
}

// Correlate returns the service's changes in the window before detectedAt (both edges
// included), newest first.
func (c *Correlator) Correlate(ctx context.Context, tenant, service string, detectedAt time.Time) ([]Finding, error) {
	return c.Between(ctx, tenant, service, detectedAt.Add(-c.o.Window), detectedAt)
}

// Between returns the service's changes with since ≤ At ≤ until, newest first. A service
// without repositories has none.
func (c *Correlator) Between(ctx context.Context, tenant, service string, since, until time.Time) ([]Finding, error) {
	s, ok := c.services[[2]string{tenant, service}]
	if !ok || len(s.Repos) == 0 {
		return nil, nil
	}
	var out []Finding
	for _, r := range s.Repos {
		cs, err := c.o.Store.Between(ctx, r, since, until, c.o.Limit)
		if err != nil {
			return nil, err
		}
		for _, ch := range cs {
			if ch.At.Before(since) || ch.At.After(until) {
				continue
			}
			f := Finding{Change: ch}
			f.Risky, f.RiskyFiles = Risk(ch, s.Patterns)
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out, nil
}

// Risk judges a change by patterns: the reason it is risky ("" if not) and up to three
// files that matched. Files beyond the stored cut were matched at ingestion (Hits).
func Risk(ch Change, patterns []string) (string, []string) {
	var files []string
	seen := map[string]bool{}
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	for _, p := range patterns {
		if f, ok := ch.Hits[p]; ok {
			add(f)
			continue
		}
		for _, f := range ch.AllFiles() {
			if Match(p, f) {
				add(f)
				break
			}
		}
	}
	if len(files) == 0 {
		return "", nil
	}
	sort.Strings(files)
	var kinds []string
	have := map[string]bool{}
	for _, f := range files {
		if k := fileKind(f); !have[k] {
			have[k] = true
			kinds = append(kinds, k)
		}
	}
	sort.Slice(kinds, func(i, j int) bool { return kindOrder(kinds[i]) < kindOrder(kinds[j]) })
	if len(files) > 3 {
		files = files[:3]
	}
	return "touched " + strings.Join(kinds, ", "), files
}

// manifests are dependency manifests and lock files by base name.
var manifests = map[string]bool{
	"go.mod": true, "go.sum": true, "package.json": true, "package-lock.json": true, "yarn.lock": true, "pnpm-lock.yaml": true,
	"requirements.txt": true, "pipfile": true, "pipfile.lock": true, "poetry.lock": true, "pyproject.toml": true, "gemfile": true,
	"gemfile.lock": true, "cargo.toml": true, "cargo.lock": true, "pom.xml": true, "build.gradle": true, "build.gradle.kts": true,
	"composer.json": true, "composer.lock": true,
}

const (
	kindDatabase = "database/query files"
	kindDeps     = "dependency manifests"
	kindConfig   = "config files"
	kindOther    = "risky paths"
)

func kindOrder(k string) int {
	switch k {
	case kindDatabase:
		return 0
	case kindDeps:
		return 1
	case kindConfig:
		return 2
	}
	return 3
}

// fileKind names what kind of file a risky path is, for people.
func fileKind(f string) string {
	l := strings.ToLower(f)
	base := path.Base(l)
	segs := "/" + l
	switch {
	case strings.Contains(segs, "/migrations/") || strings.Contains(segs, "/migrate/") || strings.HasSuffix(base, ".sql") ||
		strings.Contains(segs, "/db/") || strings.Contains(base, "query") || strings.Contains(base, "schema"):
		return kindDatabase
	case manifests[base] || strings.HasPrefix(base, "requirements") && strings.HasSuffix(base, ".txt"):
		return kindDeps
	case strings.Contains(segs, "/config/") || strings.Contains(segs, "/configs/") || strings.HasPrefix(base, ".env") || strings.HasSuffix(base, ".env") ||
		strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml") || strings.HasSuffix(base, ".toml") || strings.HasSuffix(base, ".ini"):
		return kindConfig
	}
	return kindOther
}
