// Package sdk is the embeddable Go middleware of AlertEngine: it records the latency and
// status of every request into 1 s buckets of mergeable quantile sketches, judges the
// service's health over a sliding window with the arithmetic of sdk/health, serves the
// /health/alerts family of endpoints, and in push mode ships one compact Summary per
// bucket to a Redis Stream that the detector reads.
//
// The wire format of a pushed summary (Summary.Fields, ParseSummary, StreamKey) is the
// contract between the SDK and the detector.
package sdk
