// Package metrics holds the bot's Prometheus collectors: what the pipeline handles, the
// detector's and the commit-stats fetcher's counters read at scrape time, the council's
// latencies, the GitHub webhook's refusals and deliveries, refused presses and throttled
// questions, and the ledger losses. Components never import it: they take a small hook or
// interface (pipeline.Observer, council.Observer, approval.Options.OnRefusal…) that these
// types satisfy, and the assembly connects them.
package metrics
