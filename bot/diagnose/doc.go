// Package diagnose connects the diagnostic council to the incident: [Proposer] builds the
// council's snapshot from the incident's ledger, the detector's readings and the
// correlated commits, asks the council, and turns its verdict into the one proposal shape
// the cards, /details and the approvals know, with one diagnosis entry per lens for the
// ledger. [Answerer] answers follow-up questions in the thread with the LLM, keeping each
// incident's recent turns in Redis.
package diagnose
