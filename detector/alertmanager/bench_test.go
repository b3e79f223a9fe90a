package alertmanager

import (
	"fmt"
	"testing"
)

// BenchmarkAlertmanagerNotification is one Alertmanager notification of n new firing
// kube-prometheus alerts (about 840 bytes each) for one service, through the HTTP handler:
// the streamed decode, the state of every alert in Redis, the DETECTED entry and the
// answer. Between iterations (untimed) its resolved twin closes the incident, so every
// iteration opens one again. Redis round trips included.
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench AlertmanagerNotification -benchmem ./detector/
func BenchmarkAlertmanagerNotification(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("alerts=%d", n), func(b *testing.B) {
			h := newHarness(b)
			tenants := amTenants()
			tenants[0].IncidentsPerHour = -1
			d := h.replica("bench", tenants, nil)
			handler := rcv(d).Handler()
			firing := kubeAlerts("bench", "checkout", "firing", n, base)
			resolved := kubeAlerts("bench", "checkout", "resolved", n, base)
			b.SetBytes(int64(len(firing)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if code, res := postBytes(b, handler, firing); code != 200 || res.Results[0].Outcome != "opened" {
					b.Fatalf("HTTP %d, %v", code, countOutcomes(res))
				}
				b.StopTimer()
				if code, _ := postBytes(b, handler, resolved); code != 200 {
					b.Fatalf("resolved: HTTP %d", code)
				}
				b.StartTimer()
			}
		})
	}
}
