// Package simulate runs a governance scenario — metrics, deploys, a recovery webhook and
// people — through the bot `bot serve` runs (app.New: the detector policy, pipeline,
// council, conversation engine, approvals, executor and ledger), driven by hand on a
// virtual clock, and reports what the incident process did: the
// timeline, time to detect, to decide and to recover, escalations, expired approvals,
// refused presses, dead letters, and whether the scenario's expectations held.
package simulate
