package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alertengine/alertengine/bot/chart"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/detector"
)

// Health answers the conversation's questions about services from the detector's shared
// state: the latest evaluation (/status, follow-ups) and the history the card's chart
// draws.
type Health struct {
	Detector *detector.Detector
	// Clock places the chart's window; default time.Now.
	Clock func() time.Time
	// Window is the most history the chart shows; default chart.Window (30 minutes).
	Window time.Duration
	// Width and Height of the chart in pixels; default chart.Width×chart.Height.
	Width, Height int
}

// ServiceStatus implements conversation.StatusSource.
func (h Health) ServiceStatus(ctx context.Context, tenant, service string) (conversation.ServiceStatus, error) {
	st, err := h.Detector.Status(ctx, tenant, service)
	if err != nil {
		return conversation.ServiceStatus{}, err
	}
	if st.Last == nil {
		return conversation.ServiceStatus{Service: service, Status: "unknown"}, nil
	}
	r := st.Last
	return conversation.ServiceStatus{Service: service, Score: r.Score, Status: r.Status, P95Ms: r.P95Ms, ErrorRate: r.ErrorRate,
		Trend: r.Trend, SampleSize: r.SampleSize, At: r.At, Source: string(r.Source)}, nil
}

// Chart implements conversation.Charter: p95 and error rate over the last 30 minutes
// (Window).
// A service without readings (Alertmanager-only) has no chart: (nil, nil).
func (h Health) Chart(ctx context.Context, tenant, service string, detectedAt time.Time) (*conversation.Image, error) {
	now := time.Now
	if h.Clock != nil {
		now = h.Clock
	}
	window := h.Window
	if window <= 0 {
		window = chart.Window
	}
	rs, err := h.Detector.History(ctx, tenant, service, now().Add(-window))
	if err != nil {
		return nil, err
	}
	s := chart.Series{Title: service, DetectedAt: detectedAt, Window: window, Width: h.Width, Height: h.Height}
	var first, last time.Time
	for _, r := range rs {
		s.Points = append(s.Points, chart.Point{At: r.At, P95Ms: r.P95Ms, ErrorRate: r.ErrorRate})
		if first.IsZero() || r.At.Before(first) {
			first = r.At
		}
		if r.At.After(last) {
			last = r.At
		}
	}
	png, err := chart.Render(s)
	if errors.Is(err, chart.ErrNoPoints) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var marker *time.Time
	if !detectedAt.IsZero() && !detectedAt.Before(first) && !detectedAt.After(last) {
		marker = &detectedAt
	}
	from, to := chart.Span(first, last, marker)
	return &conversation.Image{PNG: png, Alt: fmt.Sprintf("p95 and 5xx rate of %s from %s to %s UTC", service,
		from.UTC().Format("15:04:05"), to.UTC().Format("15:04:05"))}, nil
}
