package detector

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
)

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	l, err := ledger.New(ledger.Options{Store: ledger.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	valid := func() Options {
		return Options{Redis: rdb, Ledger: l, Tenants: []Tenant{{ID: "acme", AlertmanagerToken: "t1",
			Services: []Service{{Name: "checkout", HealthURL: "http://checkout:8000/health/alerts"}, {Name: "payments"}}}}}
	}
	tests := []struct {
		name    string
		change  func(*Options)
		wantErr string // "" valid
	}{
		{"valid", func(*Options) {}, ""},
		{"no redis", func(o *Options) { o.Redis = nil }, "no Redis client"},
		{"no ledger", func(o *Options) { o.Ledger = nil }, "no ledger"},
		{"no tenants", func(o *Options) { o.Tenants = nil }, "no tenants"},
		{"bad tenant id", func(o *Options) { o.Tenants[0].ID = "Acme Corp" }, `id "Acme Corp"`},
		{"duplicate tenant", func(o *Options) { o.Tenants = append(o.Tenants, Tenant{ID: "acme"}) }, "duplicate tenant"},
		{"shared token", func(o *Options) { o.Tenants = append(o.Tenants, Tenant{ID: "b", AlertmanagerToken: "t1"}) }, "share an Alertmanager token"},
		{"duplicate service", func(o *Options) { o.Tenants[0].Services = append(o.Tenants[0].Services, Service{Name: "payments"}) }, "duplicate service"},
		{"service with newline", func(o *Options) { o.Tenants[0].Services[1].Name = "a\nb" }, "printable"},
		{"relative health url", func(o *Options) { o.Tenants[0].Services[0].HealthURL = "/health/alerts" }, "not an absolute http(s) URL"},
		{"score over 100", func(o *Options) { o.Tenants[0].MinScoreToAlert = 170 }, "outside 0..100"},
		{"negative limit", func(o *Options) { o.Tenants[0].IncidentsPerHour = -2 }, "incidents per hour"},
		{"fractional window", func(o *Options) { o.Window = 1500 * time.Millisecond }, "whole seconds"},
		{"negative duration", func(o *Options) { o.LeaseTTL = -time.Second }, "LeaseTTL is negative"},
		{"poll timeout over interval", func(o *Options) { o.PollInterval, o.PollTimeout = time.Second, 2*time.Second }, "exceeds PollInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.change(&o)
			err := o.Validate()
			if _, nerr := New(o); (nerr == nil) != (err == nil) {
				t.Fatalf("New and Validate disagree: %v / %v", nerr, err)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (!errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want ErrInvalidOptions mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	l, _ := ledger.New(ledger.Options{Store: ledger.NewMemStore()})
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	d, err := New(Options{Redis: rdb, Ledger: l, Tenants: []Tenant{{ID: "acme", Services: []Service{{Name: "a"}, {Name: "b", HealthURL: "https://b/health/alerts"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	o := d.opts
	if o.Window != 10*time.Second || o.MinSamples != 20 || o.OpenAfter != 2 || o.RecoverAfter != 3 || o.PollInterval != 5*time.Second ||
		o.PollTimeout != 3*time.Second || o.Tenants[0].AlertmanagerMaxAlerts != DefaultMaxAlerts || o.Tenants[0].AlertmanagerExpireAfter != 12*time.Hour || o.Tenants[0].MinScoreToAlert != 70 || o.Tenants[0].IncidentsPerHour != 20 {
		t.Fatalf("defaults: %+v", o)
	}
	// b is polled (by the poll intake, when registered), so it has no stream.
	if len(d.push) != 1 || d.push[0].service != "a" {
		t.Fatalf("push %v", d.push)
	}
	if d.ReplicaID() == "" {
		t.Fatal("no replica id")
	}
}
