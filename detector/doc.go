// Package detector turns service metrics into detections: health score, learned
// baseline, anomaly, trend, rate of change and policy gates with hysteresis.
//
// A Detector (New, Options) takes any number of inputs and makes one kind of decision: a ledger
// entry (DETECTED, an update, RECOVERED or RESOLVED) by actor policy/detector, carrying the
// tenant's policy version, followed by an Event for the pipeline (Options.OnEvent).
//
// # Inputs
//
// Push. The Go SDK ships one summary per instance per 1 s bucket to the Redis Stream
// sdk.StreamKey(KeyPrefix, tenant, service) (and, while its 5xx surge, early parts of the
// second in progress: sdk.Summary.Early). Every replica joins the consumer group
// "ae-detector" on every push-mode stream and reads with XREADGROUP (Ingest), so each
// entry goes to one replica. A summary is checked (sdk.ParseSummary, tenant and service
// match the stream, not in the future), added to the service's shared window — a sorted
// set scored by bucket whose members are the entries themselves, so a redelivered entry
// is stored once — and only then acknowledged (XACK). An entry read by a replica that
// died before acknowledging it is claimed by another one with XAUTOCLAIM after ClaimIdle
// (Reclaim). Malformed, foreign and late entries are acknowledged, counted and logged.
//
// Every other input is an Intake in a package of its own, registered with one line in
// Options.Intakes, and reduces to one of two entry points:
//
//   - Judge (Observe, ObserveFailure) for a measurement of a service — p95, 5xx share,
//     requests — judged by the gate below exactly as a push window is: the same lease,
//     hysteresis, baseline, rate limit and entries. A failed reading counts towards
//     UnreachableAfter failures in a row, which judge the service down.
//   - Alert for an alert someone else already decided: firing opens an incident (within
//     the hourly limit) or records one update on the open one; resolved closes the
//     incident the alert held by its stage (pending while its action executes, closed by
//     Settle after); acknowledged is recorded with the outside actor.
//
// The inputs that ship: detector/poll (the /health/alerts endpoint of the Go and Python
// SDKs), detector/alertmanager (Prometheus Alertmanager's webhook), detector/pagerduty
// (PagerDuty's Events API v2, which Datadog, Grafana, Sentry, CloudWatch and Alertmanager's
// pagerduty_configs speak), detector/grafana (Grafana-managed alerts' webhook, a flavor
// of the Alertmanager intake), detector/otlp (OpenTelemetry metrics over OTLP/HTTP).
//
// # Adding a source
//
// Write a package under detector/ with a type implementing Intake: Source (its name, an
// open string recorded on every entry), Routes (its HTTP handlers, each bounding its own
// body and authenticating before it reads it), Run (its loop, if any), Collectors (its
// counters: accepted, refused by reason). Its constructor takes the *Detector and its own
// Options (secrets such as routing keys come through them, from the tenants file), and a
// func Intake(Options) NewIntake registers it: the assembly adds that one line to
// Options.Intakes and mounts Detector.Routes. Keep per-service state under
// Detector.ServiceKey, parse outside input with bounds (ledger.ClipText), put a fuzz target
// on the parser, and feed Judge or Alert; the core does the rest. Entry data are written
// with ledger.Evidence, so the card and the council read them without knowing the source.
//
// # Judging a window (push mode)
//
// A window is the Window (10 s) of whole buckets before an end E, a whole second; all
// instances' summaries in it are merged (sdk.Aggregate). Each end is judged once, as soon
// as its last bucket is complete — every instance that shipped the bucket before it has
// shipped this one — or MaxEvalDelay after E. So the detector judges a fresh window every
// second, right after the data arrives, without depending on when the SDKs flush.
//
// Fewer than MinSamples (20) requests: not judged, nothing counts either way. Otherwise
// the p95 and the 5xx share are scored with health.Compute, whose anomaly term compares
// against the learned baseline (health.Baseline). The baseline learns only from healthy
// windows (score ≥ 70) outside any episode and without a sudden change, at most once per
// Window so that each learned window is new data, and it lives in Redis, so it survives
// restarts and is shared by replicas. The last 10 scores give the trend (health.Trend);
// consecutive windows are compared for sudden changes (health.RateOfChange), which are
// logged, recorded in the evidence, and keep the baseline from learning, but do not
// change the policy: only the score does.
//
// # The gate
//
// Per (tenant, service): a score under the tenant's MinScoreToAlert for OpenAfter (2)
// consecutive judged evaluations opens an incident — whatever makes the score bad, a
// latency-only spike included. The DETECTED entry cites "health 23/100 < 70 for 2
// evaluations: p95 2.8 s (baseline 80 ms, ×35), errors 0.0%" and carries score, p95_ms,
// error_rate, baseline_p95_ms, trend, sample_size and window. In push mode the newest
// FastWindow (5 s) of the window also opens on its own, on one evaluation, when it holds
// FastMinSamples (100) requests and scores 20 points under the threshold ("health 31/100 <
// 70 over the last 250 requests: …"): waiting for slow requests to make up a twentieth
// of the whole window and for a second evaluation costs up to two seconds of detection.
// Look-ahead (staysBad): a bad window opens at once, too, when the evaluations the gate
// still needs would be bad whatever they bring — recomputed with the oldest seconds gone
// and each new second bringing as many requests as the window's busiest, all successful
// and as fast as can be. It opens what the gate would open a second later, and nothing it
// would not (unless traffic grows past the busiest second); lookahead_test.go plays every
// scenario with and without it. An SDK whose 5xx surge ships the second in progress early
// (sdk.Summary.Early, not counted as completing its bucket); the detector looks at that
// window at once, and opens on it only through the look-ahead. While the episode lasts,
// bad evaluations record nothing, except one update when the score crosses into a worse
// severity band (or clearly, by 5 points, into a better one). RecoverAfter (3)
// consecutive healthy evaluations close it by its stage: RECOVERED before authorization
// (and from EXPIRED or WEBHOOK_FAILED), RESOLVED after EXECUTED, nothing while AUTHORIZED
// (the action is executing; a later healthy evaluation closes it). An incident closed by
// someone else (REJECTED) ends the episode quietly: no new incident until the service has
// been healthy again. A *ledger.TransitionError from a race is a stage that moved under
// us; the next evaluation reads the new one.
//
// Openings, from any input, count against the tenant's IncidentsPerHour over a sliding
// hour kept in Redis. A detection over the limit is logged, counted and reported once per
// episode (Event Suppressed), and opens as soon as the hour has room if still bad.
//
// # Several replicas
//
// Any number of replicas share one Redis and agree because everything they decide from
// is there:
//
//   - the stream is split between them by the consumer group, and every summary lands in
//     the service's shared window, so whichever replica judges sees all instances' data;
//   - a service is judged by the holder of a short lease (LeaseTTL, 5 s, renewed on every
//     check); another replica takes over when it expires;
//   - the gate state (streaks, episode, incident, recent scores, baseline) is one JSON
//     value written only while holding the lease (a Lua script checks it), so a replica
//     that paused past its lease cannot overwrite its successor;
//   - one open incident per (tenant, service) is enforced by the ledger store itself: a
//     second DETECTED fails with *ledger.ServiceOpenError, on which the detector records its
//     evidence on the open incident instead, and adopts it;
//   - the incidents-per-hour counter and the Alertmanager alert state are Redis keys.
//
// # Redis keys
//
// All under KeyPrefix; the keys of one service share the hash tag {tenant/service}, so
// each script touches one Redis Cluster slot, and reads of several streams are one
// pipeline, which a cluster client splits by node.
//
//	ae:metrics:T:S                 the SDK's stream (group ae-detector)
//	ae:det:{T/S}:win               window: summaries by bucket (sorted set, 3×Window TTL)
//	ae:det:{T/S}:inst              each instance's newest shipped bucket (sorted set)
//	ae:det:{T/S}:lease             which replica judges the service (PX LeaseTTL)
//	ae:det:{T/S}:gate              gate state and baseline (JSON, 30 days TTL)
//	ae:det:{T/S}:hist              judged readings, for the card's chart (stream, capped)
//	ae:det:{T/S}:amclose           an incident whose alert resolved, to close once its recovery ends (Settle, any alert source)
//	ae:det:{T/S}:am                firing Alertmanager alerts (GROUP|FINGERPRINT → seen:startsAt) and their incident (detector/alertmanager)
//	ae:det:{T/S}:grafana           the same for Grafana's alerts (detector/grafana)
//	ae:det:{T/S}:pd                PagerDuty alerts by dedup_key hash → incident and flags (detector/pagerduty)
//	ae:det:{T}:opens               openings of the last hour (sorted set by unix ms)
package detector
