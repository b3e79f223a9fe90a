// Package alertmanager is the detector's input for Prometheus Alertmanager's webhook
// receiver: POST /alertmanager/webhook, registered with Intake(Options{}).
//
// Alertmanager. Receiver.Handler serves the webhook receiver (payload version 4),
// authenticated per tenant by a bearer token compared in constant time. An alert maps to
// a service by its "service" label, else "job". The body is decoded as a stream, at most
// the tenant's AlertmanagerMaxAlerts alerts kept (the rest are treated as truncated). A
// notification is its group's whole state: its firing alerts fire, its resolved ones and
// — unless truncatedAlerts > 0 — the group's alerts it no longer lists are resolved; a
// firing alert not re-sent within AlertmanagerExpireAfter is forgotten (ExpireAlerts).
// New firing alerts open an incident, or record one update on the service's open
// incident naming what joined (an EXPIRED one is superseded by a new incident); the
// incident the tenant's Alertmanager opened or updated closes once none of its alerts for
// that service fires in any group. The state is one hash per service, changed by one Lua
// script per notification, so a repeated notification records nothing.
//
// Decisions go through Detector.Alert, so the incidents-per-hour limit, supersession of an
// expired incident and closing by stage are the core's.
package alertmanager
