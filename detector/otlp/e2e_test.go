package otlp

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/detectortest"
	"github.com/alertengine/alertengine/ledger"
)

const acmeToken = "acme-otlp-token-0000000001"

// newIntake starts a detector (real clock) with the OTLP intake for tenant acme, whose
// service checkout is fed by OTLP, behind an HTTP server.
func newIntake(t *testing.T, tweak func(*Options)) (*detectortest.Harness, *detector.Detector, *httptest.Server) {
	t.Helper()
	h := detectortest.New(t)
	o := Options{Tokens: []Token{{Tenant: "acme", Token: acmeToken}}}
	if tweak != nil {
		tweak(&o)
	}
	tenants := []detector.Tenant{{ID: "acme", PolicyVersion: "policy-v7", IncidentsPerHour: -1,
		Services: []detector.Service{{Name: "checkout", Source: Source}, {Name: "payments", Source: Source}}}}
	d := h.Replica("r1", tenants, func(do *detector.Options) {
		do.Clock = time.Now
		do.Logger = slog.New(slog.DiscardHandler)
		do.Intakes = []detector.NewIntake{Intake(o)}
	})
	mux := http.NewServeMux()
	for _, r := range d.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return h, d, srv
}

// TestSDKSlowServiceOpensIncident: a service instrumented with otelhttp, exporting with the
// real OpenTelemetry SDK's OTLP/HTTP exporter (cumulative exponential histograms, gzip),
// turns slow; the intake derives its p95 and the detector opens an incident whose p95 is
// within 5 % of the true p95 of the requests it covers.
func TestSDKSlowServiceOpensIncident(t *testing.T) {
	t.Parallel()
	h, _, srv := newIntake(t, nil)
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+Path),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + acmeToken}),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	view := sdkmetric.NewView(sdkmetric.Instrument{Name: Metric},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))), sdkmetric.WithView(view))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	var (
		mu        sync.Mutex
		durations []float64 // ms, as the service measured them
		slowFrom  = 600.0
		slowTo    = 1100.0
		slow      bool
	)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ms := 5.0
		mu.Lock()
		if slow {
			ms = slowFrom + rand.Float64()*(slowTo-slowFrom)
		}
		mu.Unlock()
		time.Sleep(time.Duration(ms * float64(time.Millisecond)))
		w.WriteHeader(http.StatusOK)
		mu.Lock()
		durations = append(durations, float64(time.Since(start))/float64(time.Millisecond))
		mu.Unlock()
	})
	svc := httptest.NewServer(otelhttp.NewHandler(inner, "checkout", otelhttp.WithMeterProvider(mp)))
	t.Cleanup(svc.Close)
	load := func(n, conc int) {
		t.Helper()
		var wg sync.WaitGroup
		sem := make(chan struct{}, conc)
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				resp, err := http.Get(svc.URL + "/pay")
				if err == nil {
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
	}
	flush := func() {
		t.Helper()
		time.Sleep(1100 * time.Millisecond) // one judgement a second
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	load(200, 20)
	flush()
	if n := len(h.EntriesOf("acme", ledger.Detect)); n != 0 {
		t.Fatalf("a fast service opened %d incidents", n)
	}
	mu.Lock()
	slow = true
	mu.Unlock()
	load(200, 100)
	flush()
	flush()
	det := h.EntriesOf("acme", ledger.Detect)
	if len(det) != 1 {
		t.Fatalf("%d incidents after two slow exports; events %+v", len(det), h.Events.All())
	}
	ev := ledger.EvidenceOf(det[0])
	mu.Lock()
	all := slices.Clone(durations)
	mu.Unlock()
	sort.Float64s(all)
	truth := all[int(0.95*float64(len(all)))-1]
	if ev.Source != "otlp" || ev.SampleSize != uint64(len(all)) {
		t.Fatalf("evidence %+v; want source otlp and %d requests", ev, len(all))
	}
	if diff := (ev.P95Ms - truth) / truth; diff > 0.05 || diff < -0.05 {
		t.Fatalf("p95 %.1f ms, true p95 %.1f ms: %.1f%% off", ev.P95Ms, truth, diff*100)
	}
	t.Logf("incident p95 %.1f ms, true %.1f ms over %d requests", ev.P95Ms, truth, len(all))
	if opened := h.Events.Of(detector.Opened); len(opened) != 1 || opened[0].Source != Source || opened[0].Service != "checkout" {
		t.Fatalf("events %+v", h.Events.All())
	}
}
