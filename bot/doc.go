// Package bot is the folder of the running service; the code lives in its sub-packages:
//
//   - app: the one assembly of the bot (serve, demo, simulate and the system tests build
//     it), its HTTP server, /readyz and the status endpoint, and the mapping of the
//     tenants file onto each component.
//   - pipeline: where a detection becomes a proposal, an authorization an execution, and
//     an outcome a line in the thread; the components report to its inbox.
//   - diagnose: the diagnostic council's proposals and follow-up answers.
//   - channel: the contract a chat platform signs; telegram, whatsapp and console are the
//     platforms.
//   - executor: the signed recovery webhook calls.
//   - links: the link-approval pages.
//   - metrics: the Prometheus collectors.
//   - config: the environment and the tenants file.
//   - demo, simulate: the zero-config tour and the governance simulation.
package bot
