// Package outhook is the signed outbound webhook channel: it follows each tenant's ledger
// chain and POSTs the entries an outside system cares about (an incident opened, a
// proposal, an approval, an execution, a stage change, a resolution) as small JSON
// documents to the tenant's URLs, signed per the Standard Webhooks specification
// (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of
// "id.timestamp.body">).
//
// It is send-only: nothing it receives approves, acknowledges or changes anything.
//
// The ledger is the source. For each target a cursor in Redis (the last seq handled) says
// how far it got; entries past it are read from the store, delivered one at a time in
// chain order, and the cursor moves after each one. A crash between a delivery and the
// cursor's move sends that entry again after the restart, with the same webhook-id
// (tenant, seq and hash prefix), so a receiver can de-duplicate: delivery is at least once.
// One replica sends a tenant's events at a time: it holds a lease (SET NX PX, renewed
// while it runs) and moves cursors only while it still holds it.
//
// Failures: 2xx is delivered; 408, 429, 5xx, timeouts and connection errors are retried
// with exponential backoff and jitter (Retry-After honoured, up to MaxBackoff) until
// MaxAttempts; any other status (3xx redirects are not followed, 4xx) and a dial the
// address guard refused are final. A final failure is logged and counted and the cursor
// moves on. Each target has its own cursor and goroutine, so one that keeps failing holds
// back no other. A target more than MaxBacklog seqs behind the chain's tail skips the
// oldest undelivered ones: a counted, logged gap.
//
// Redis keys (under Options.Prefix, one cluster slot per tenant): {outhook:TENANT}:lease
// (the lease's owner token) and {outhook:TENANT}:cursor:HASH, HASH the first 16 hex digits
// of the URL's SHA-256 (the last seq handled for that URL; a changed URL starts afresh,
// see Options.Backfill). A chain whose tail is behind a cursor was lost and restarted: it
// is followed again from its start.
package outhook
