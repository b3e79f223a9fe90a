// Package pagerduty is the detector's intake for PagerDuty's Events API v2, so that any
// sender already pointed at PagerDuty (Datadog, Grafana, Sentry, CloudWatch, Alertmanager's
// pagerduty_configs, Opsgenie migrations…) can be pointed here by changing a URL:
// POST /v2/enqueue, or POST /pagerduty/{tenant}/v2/enqueue where a routing key is looked
// up only among that tenant's. Register it with Intake(Options{Keys: …}).
//
// An event's routing_key maps to one tenant's service (Options.Keys; the key is a secret,
// compared in constant time and never logged). A trigger opens an incident for the service
// (within the tenant's incidents-per-hour limit) or joins its open incident with one
// update, recording payload.summary as the reason and severity, class, source, component,
// group, custom_details, links and images as the entry's data (ledger.Evidence reads the
// severity and links for the card); a repeat of an open alert records nothing. The
// dedup_key links the trigger to its acknowledge and resolve: acknowledge is recorded on
// the incident with the actor {system, pagerduty}; resolve closes the incident the alert
// opened once none of the service's alerts on it fires (by its stage, as every close),
// and never one that something else opened. A resolve or acknowledge of a dedup_key that
// is not open is accepted, logged and has no effect, as PagerDuty drops it.
//
// Answers are PagerDuty's, so senders' retry logic works unchanged: 202
// {"status":"success","message":"Event processed","dedup_key":…} (a trigger without a
// dedup_key gets one), 400 {"status":"invalid event","message":"Event object is
// invalid","errors":[…]} — also for a routing key no tenant has, without saying whether a
// tenant exists —, 413 over the body limit (512 KB), 429 with Retry-After past a key's rate
// (a token bucket per key and replica: Burst at once, Rate a second after; nothing of a
// refused event is recorded), and 500 when the store failed (the sender retries; what was
// recorded is not recorded twice).
//
// The state is one Redis hash per service (Detector.ServiceKey(tenant, service, "pd")):
// the dedup_key's hash → the incident and whether this alert opened it.
package pagerduty
