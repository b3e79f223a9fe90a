// Package simulate runs a governance scenario — metrics, deploys, a recovery webhook and
// people — through the real detector policy, pipeline, conversation engine, approvals,
// executor and ledger on a virtual clock, and reports what the incident process did: the
// timeline, time to detect, to decide and to recover, escalations, expired approvals,
// refused presses, dead letters, and whether the scenario's expectations held.
package simulate
