// Package executor runs approved recoveries: it calls each tenant's recovery webhook (the
// call the README's "Approvals and execution" describes) for incidents the ledger says are
// AUTHORIZED, and records the outcome back in the ledger.
//
// Executions travel through a durable outbox (a Redis Stream read by a consumer group), so
// an execution in flight when a bot dies is reclaimed by another bot, or by the same one
// after a restart, and delivered with the same idempotency key. The ledger decides whether
// a delivery is still due: only an incident in stage AUTHORIZED is executed, so the
// webhook is called for one approval until it answers 2xx or the execution is
// dead-lettered, however often the outbox delivers it.
//
// Calls are signed (HMAC-SHA256, see Sign and VerifySignature), retried on 5xx, 429 and
// transport failures with backoff and jitter that honours Retry-After, and refused at dial
// time when the target resolves to a private, loopback or link-local address and the
// tenant did not allow it. Exhausted or permanent failures go to a per-tenant dead-letter
// queue from which an engineer can re-drive them with the same idempotency key.
package executor
