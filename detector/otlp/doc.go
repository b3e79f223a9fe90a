// Package otlp is the detector's intake for OpenTelemetry metrics over OTLP/HTTP
// (POST /v1/metrics, protobuf or JSON, gzip or not), so a service in any language
// instrumented with OpenTelemetry gets the health score, baseline, trend and incidents
// with no SDK of ours. Register it with Intake(Options{Tokens: …}); each tenant's
// exporter sends "Authorization: Bearer TOKEN".
//
// Only the stable HTTP server semantic conventions' http.server.request.duration is
// read (unit s, or ms from older instrumentations), as an explicit-bucket or a base-2
// exponential histogram, delta or cumulative; the resource's service.name names the
// service, which the tenant must watch (detector.Service with Source "otlp", so the push
// path leaves it alone); a point's http.response.status_code (or http.status_code) says
// whether its requests are 5xx. Each point becomes requests per latency bucket at its
// time: a delta point as it is, a cumulative one as its difference from the series' last
// point (a series is the service and the resource's and the point's attributes). A
// cumulative point with a new start is a restarted process and counts from its start —
// never a drop, never a spike; one that started before the window only sets the base; one
// lower than the last with the same start is skipped and counted (backwards); a rescaled
// exponential histogram is compared at its coarser scale.
//
// After each export, every service it carried is judged over the last Window (1 min, the
// SDK's default export interval) through Detector.Judge: the p95 is the quantile of the
// requests taken as spread evenly within their buckets, merged across series; the 5xx
// share and the request count come with it. So the gate's hysteresis counts exports: two
// bad exports a second or more apart open an incident.
//
// Memory is bounded: at most MaxSeries series are remembered (points of new ones past it
// are skipped and counted), a point has at most 512 buckets, a service's second at most
// 4096 distinct buckets, attribute values are hashed into a series' key, and bodies are
// bounded before and after gzip. Bad points (NaN or negative bounds, counts that do not
// add up, negative buckets, another unit, an unknown service, stale times) are skipped,
// counted by reason, and reported in the answer's partial_success; a body that is not
// OTLP is refused with 400, a wrong token with 401, another media type with 415, an
// oversized body with 413.
//
// The series and windows are this replica's memory: a tenant's exports should reach one
// replica at a time (one bot, or a load balancer keeping a service on one replica), as
// only the replica holding a service's lease judges it.
package otlp
