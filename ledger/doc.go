// Package ledger holds the incident as an append-only, hash-chained ledger: stages and
// the one transition table, entries and their canonical encoding, folding entries into
// incident state, verification, checkpoints and exports, and the Store contract with an
// in-memory and a Redis Streams implementation.
//
// Every incident is the fold of its entries; nothing else is authoritative. Appends are
// compare-and-append on the chain tail and on the incident's stage, so any number of
// writers in any number of processes neither fork nor gap a tenant's chain, and a stage
// change happens at most once.
package ledger
