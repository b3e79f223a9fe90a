// Package pipeline is where the bot's components meet. The detector, the conversation
// engine and the executor never call one another: each is handed the pipeline's [Inbox],
// created before any of them, and reports to it (a detection, an authorization, an
// execution's outcome). The [Pipeline] takes what arrived in order, one lane per incident,
// and does the next step through small interfaces it declares here: it asks a [Proposer]
// for the action, records the proposal and its validation with a [Recorder], shows the
// incident through a [Presenter], hands an authorized incident to a [Runner], and closes an
// incident whose recovery ran through a [Settler].
//
// A step that fails is tried again on the [Retry] schedule; a periodic sweep finishes what
// was left half-done by this replica or another that died. The governance simulation
// drives the same pipeline on virtual time with [Pipeline.Drain] and Options.After.
package pipeline
