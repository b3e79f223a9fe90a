// Package ledger holds the incident as an append-only, hash-chained ledger: stages and
// the one transition table, entries and their canonical encoding, folding entries into
// incident state, verification, checkpoints and exports, and the Store contract with an
// in-memory and a Redis Streams implementation.
//
// Every incident is the fold of its entries; nothing else is authoritative. Appends are
// compare-and-append on the chain tail and on the incident's stage, so any number of
// writers in any number of processes neither fork nor gap a tenant's chain, and a stage
// change happens at most once. A tenant's incidents are numbered in the order they open
// (INC-1, INC-2 …): the counter is part of the tail (Tail.LastCode), moved by the same
// atomic append as the entry that opens the incident.
//
// A store can still lose entries (a Redis without persistence restarts empty). The last
// signed checkpoint is therefore also kept outside it, in a CheckpointSink (FileSink,
// HTTPSink); a Ledger compares every tail the store reports with it and with the longest
// chain it saw, and on a loss restarts the chain with its incident codes continuing past
// every code the lost one may have used (Checkpoint.Codes; LossError, Ledger.Check,
// VerifyStoreMark). The first
// append after the loss is a loss marker whose seq jumps past every seq the lost chain's
// signed checkpoint covered and which carries that checkpoint, so no seq is reused and a
// verifier holding only the chain and the public key accepts the jump there and nowhere
// else (LossMarker).
package ledger
