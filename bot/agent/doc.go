// Package agent opens the approval gate to AI agents: an agent asks, over an HTTP API
// authenticated by per-tenant API tokens, for a human decision on one action; the request
// becomes an approval card in the tenant's chats through the conversation engine (the same
// roles, two-person rule, escalation and expiry as a detector's proposal), and the decision
// comes back as an Ed25519-signed receipt bound to the action's hash, consumable once.
//
// The action hash is SHA-256 of the canonical JSON of {"action","params","tenant"} (see
// Canonical): an agent, a verifier and this server compute it alike.
package agent
