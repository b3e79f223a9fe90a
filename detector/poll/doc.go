// Package poll is the detector's pull-mode input: it polls the /health/alerts endpoint of
// services that have a health_url and feeds what they report to Detector.Judge.
//
// Pull. Services with a health_url are polled every their Service.PollInterval (default
// Options.PollInterval) with PollTimeout, and a second after a poll under the threshold
// that has not opened yet, to confirm it (Poller.Run; Poll polls every service at once). The /health/alerts document of the Go and the Python SDK is read (ParseHealth):
// the score the service computed (health_score.score; computed here from p95, error
// rate and the learned baseline when absent), metrics.overall_p95_ms, error_rate and
// sample_size. An endpoint that cannot be reached, answers non-2xx or sends something
// else is logged and counted; that poll neither counts as bad nor as healthy.
//
// Only the replica holding a service's lease polls it (Detector.Hold). A health URL, or a
// redirect from it, cannot make the poller fetch the bot's own network unless the service
// has allow_private_network (detector/netguard).
package poll
