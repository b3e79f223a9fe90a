// Package app is the one assembly of the bot. `bot serve`, `bot demo`, `bot simulate` and
// the system tests all build the bot here, so what they run cannot drift apart: the
// ledger, the approvals, the detector, the diagnostic council, the conversation engine
// and its chat platforms, the executor, the pipeline the components report to, the HTTP
// server and the loops that keep them going. It also maps the tenants file onto what each
// component needs, and serves /readyz and the status endpoint.
package app
