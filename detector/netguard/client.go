package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrRedirect is the cause of a redirect that was not followed: to another origin, or one
// too many.
var ErrRedirect = errors.New("redirect not followed")

// Transport returns an HTTP transport that never takes a proxy from the environment
// (HTTP_PROXY: the proxy would be dialled instead of the target, outside the guard) and,
// when guarded, refuses non-public addresses at dial time with Control(cause).
// dialTimeout bounds the connect and the TLS handshake.
func Transport(guarded bool, cause error, dialTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	if guarded {
		d.Control = Control(cause)
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// SameOrigin returns an http.Client CheckRedirect that follows at most max redirects, each
// only to the scheme, host and port of the original request; anything else is refused
// with an error wrapping ErrRedirect (the client then returns it, the redirect's body
// unread). The redirect is dialled through the client's transport, so a guarded
// transport judges its address too. The error names the scheme and host, never the path
// or query (they may hold credentials).
func SameOrigin(max int) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) == 0 {
			return nil
		}
		if len(via) > max {
			return fmt.Errorf("%w: more than %d redirects", ErrRedirect, max)
		}
		if from, to := origin(via[0].URL), origin(req.URL); from != to {
			return fmt.Errorf("%w: redirect from %s to another origin %s", ErrRedirect, from, to)
		}
		return nil
	}
}

// origin is scheme://host:port with the default port made explicit and the host lower
// case.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
