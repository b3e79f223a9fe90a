// Package webhook is the inbound plumbing chat platforms' webhooks share: reading a
// request body under the route's limit with the right status when it is too large or
// unreadable, bounding a handler's bodies the way the bot's server does for a route, and
// comparing a shared secret in constant time.
//
// Method checks are not here: routes are mounted with their method ("POST /…"), so the
// server's mux answers 405 before a handler runs.
package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DefaultMaxBody is the body limit of a route that sets none (channel.Route.MaxBody 0).
const DefaultMaxBody = 1 << 20

// ReadBody reads r's body whole. The body is bounded by the route's limit (Limit, or the
// server's own); past it ReadBody answers 413, and 400 when the body cannot be read. It
// returns false once it has answered.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		return body, true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, fmt.Sprintf("request body over %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
		return nil, false
	}
	http.Error(w, "cannot read the request body", http.StatusBadRequest)
	return nil, false
}

// Limit bounds the bodies h reads to maxBody bytes (DefaultMaxBody when 0): a body
// declared larger is answered 413 before h runs, and reading past the limit fails with
// *http.MaxBytesError, which ReadBody answers 413.
func Limit(h http.Handler, maxBody int64) http.Handler {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			http.Error(w, fmt.Sprintf("request body over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r)
	})
}

// SecretEqual reports whether got is the shared secret want, in time that depends on
// neither (their SHA-256 hashes are compared, so not even the length leaks). An empty
// secret matches nothing: a webhook without one refuses every request.
func SecretEqual(got, want string) bool {
	if got == "" || want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
