package outhook

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retries   *prometheus.CounterVec
	lag       *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_outhook_delivered_total",
			Help: "Outbound webhook events delivered (2xx), by tenant and webhook."}, []string{"tenant", "webhook"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_outhook_failed_total",
			Help: "Outbound webhook events given up on, by reason (rejected, redirect, refused_address, retries_exhausted, backlog_dropped, bad_payload); backlog_dropped counts skipped seqs."},
			[]string{"tenant", "webhook", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_outhook_retries_total",
			Help: "Outbound webhook attempts that failed and were retried."}, []string{"tenant", "webhook"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "alertengine_outhook_lag_entries",
			Help: "Ledger seqs between the chain's tail and the webhook's cursor, on the replica holding the tenant."}, []string{"tenant", "webhook"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.delivered, err = register(reg, m.delivered); err != nil {
		return nil, err
	}
	if m.failed, err = register(reg, m.failed); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.lag, err = register(reg, m.lag); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its name (a
// second Sender on the same registry shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old, nil
			}
		}
		return c, err
	}
	return c, nil
}
