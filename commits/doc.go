// Package commits is the GitHub side of AlertEngine (commit correlation): the webhook's
// signature check and de-duplication, event parsing with go-github's types, the Redis
// store of each repository's commits, tags and deployments, correlation of a service's
// changes with an incident and risky-path matching, +/− stats from the GitHub API, and
// the repository webhook setup behind `bot github-hook`.
package commits
