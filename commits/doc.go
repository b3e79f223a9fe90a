// Package commits correlates incidents with recent GitHub commits: webhook signature
// checks, event parsing, the commit store and risky-path matching.
package commits
