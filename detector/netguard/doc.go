// Package netguard keeps outbound HTTP calls the bot makes on a tenant's behalf (the
// executor's recovery webhooks, the detector's health polls) from reaching the bot's own
// network: a dial-time address guard that refuses loopback, private, link-local, CGNAT and
// other non-public addresses after name resolution (so DNS rebinding cannot get round it),
// and a redirect policy that never leaves the host a URL names.
//
// It lives under detector/ because the detector may not import bot/ (layout_test.go) while
// bot/executor may import detector/: one implementation, used by both. It needs only the
// standard library.
package netguard
