package executor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/alertengine/alertengine/detector/netguard"
)

// maxSnippet bounds what of a response body is kept (dead letter, ledger, logs).
const maxSnippet = 512

// maxDrain bounds how much of a response body is read so the connection can be reused.
const maxDrain = 64 << 10

// newClient returns the HTTP client for webhook calls: no proxy from the environment (a
// proxy would be dialled instead of the target and escape the guard), redirects never
// followed, and, when guarded, the dial-time address guard.
func newClient(guarded bool, dialTimeout time.Duration) *http.Client {
	return &http.Client{
		Transport: netguard.Transport(guarded, ErrPrivateAddress, dialTimeout),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// attempt is the result of one call.
type attempt struct {
	status     int           // HTTP status, 0 without a response
	snippet    string        // start of the response body, at most maxSnippet bytes, secret redacted
	err        error         // transport failure
	what       string        // the failure, for people (empty: described by status)
	retryable  bool          // worth another attempt
	retryAfter time.Duration // what the webhook asked for
	hasAfter   bool          // Retry-After was present and readable
}

// delivery is the result of all attempts of one execution.
type delivery struct {
	ok       bool
	attempts int
	last     attempt
	reason   string // for people: ledger, dead letter, thread
	guard    *AddressError
}

// deliver calls the webhook until it answers 2xx, fails for good, or runs out of
// attempts. The error is non-nil only when ctx ended: then nothing is settled.
func (e *Executor) deliver(ctx context.Context, x Execution, t Target) (delivery, error) {
	body, err := x.body()
	if err != nil {
		return delivery{reason: err.Error() + "; not retried; dead-lettered"}, nil
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return delivery{reason: "recovery URL is not an absolute http(s) URL; not retried; dead-lettered"}, nil
	}
	client := e.guarded
	if t.AllowPrivateNetwork {
		client = e.open
	}
	log := e.opts.Logger.With("tenant", x.Tenant, "incident", x.Incident, "idempotency_key", x.IdempotencyKey, "host", u.Host)
	var d delivery
	for i := 1; ; i++ {
		a := e.call(ctx, client, u.String(), t.Secret, x.IdempotencyKey, body, t.Timeout)
		if ctx.Err() != nil {
			return d, ctx.Err()
		}
		d.attempts, d.last = i, a
		if a.err == nil && a.status >= 200 && a.status < 300 {
			d.ok = true
			d.reason = fmt.Sprintf("recovery webhook answered %d", a.status)
			log.Info("recovery executed", "status", a.status, "attempts", i)
			return d, nil
		}
		var ae *AddressError
		if errors.As(a.err, &ae) {
			d.guard = ae
		}
		if !a.retryable || i >= e.opts.Attempts {
			d.reason = failureReason(a, i)
			log.Warn("recovery failed", "attempts", i, "status", a.status, "err", errText(a.err), "retryable", a.retryable)
			return d, nil
		}
		wait := e.backoff(i, a)
		log.Info("recovery attempt failed; retrying", "attempt", i, "status", a.status, "err", errText(a.err), "wait", wait)
		if err := e.opts.Sleep(ctx, wait); err != nil {
			return d, err
		}
	}
}

// backoff is the wait after failed attempt i: the configured backoff plus jitter, or what
// Retry-After asked for (capped) when that is longer — a "Retry-After: 0" never turns the
// retries into a burst.
func (e *Executor) backoff(i int, a attempt) time.Duration {
	b := e.opts.Backoff[min(i-1, len(e.opts.Backoff)-1)]
	b += time.Duration(float64(b) * e.opts.Jitter * e.opts.Rand())
	if a.hasAfter {
		return max(b, min(a.retryAfter, e.opts.MaxRetryAfter))
	}
	return b
}

// call makes one signed POST under the target's attempt timeout (0: AttemptTimeout).
func (e *Executor) call(ctx context.Context, client *http.Client, u, secret, key string, body []byte, timeout time.Duration) attempt {
	if timeout <= 0 {
		timeout = e.opts.AttemptTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return attempt{err: fmt.Errorf("build request: %w", err), what: "recovery URL is not usable"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "AlertEngine-Executor/1")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set(SignatureHeader, Sign(secret, e.opts.Clock(), body))
	resp, err := client.Do(req)
	if err != nil {
		return classify(ctx, err, timeout)
	}
	defer resp.Body.Close()
	// Read past the snippet by the secret's length, so that a secret overlapping its end
	// is redacted whole rather than cut and half shown.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, int64(maxSnippet+len(secret))))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	a := attempt{status: resp.StatusCode, snippet: snippet(head, secret)}
	switch {
	case a.status >= 200 && a.status < 300:
	case a.status == http.StatusTooManyRequests || a.status >= 500:
		a.retryable = true
		a.retryAfter, a.hasAfter = retryAfter(resp.Header.Get("Retry-After"), e.opts.Clock())
	}
	return a
}

// classify sorts a transport failure: the guard, a certificate or a malformed request fail
// for good; timeouts and connection failures are worth another attempt.
func classify(ctx context.Context, err error, timeout time.Duration) attempt {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL, which may carry credentials
	}
	var (
		cv  *tls.CertificateVerificationError
		hn  x509.HostnameError
		ua  x509.UnknownAuthorityError
		inv x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, ErrPrivateAddress):
		return attempt{err: err, what: ErrPrivateAddress.Error()}
	case errors.As(err, &cv), errors.As(err, &hn), errors.As(err, &ua), errors.As(err, &inv):
		return attempt{err: err, what: "the recovery webhook's TLS certificate was refused"}
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return attempt{err: err, what: fmt.Sprintf("recovery webhook did not answer within %s", timeout), retryable: true}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return attempt{err: err, what: "recovery webhook timed out", retryable: true}
	}
	return attempt{err: err, what: "could not reach the recovery webhook", retryable: true}
}

// retryAfter reads a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<30)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// snippet makes printable text of a response's first maxSnippet bytes, never showing the
// secret: b holds len(secret) bytes more than the snippet, so that every occurrence that
// starts inside the snippet is masked whole before the cut.
func snippet(b []byte, secret string) string {
	if secret != "" {
		b = bytes.ReplaceAll(b, []byte(secret), bytes.Repeat([]byte{0}, len(secret)))
	}
	b = b[:min(len(b), maxSnippet)]
	var sb strings.Builder
	masked := false
	for _, r := range strings.ToValidUTF8(string(b), "") {
		if r == 0 {
			if !masked {
				sb.WriteString("[redacted]")
			}
			masked = true
			continue
		}
		masked = false
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
			continue
		}
		sb.WriteRune(r)
	}
	s := sb.String()
	if len(s) > maxSnippet {
		s = strings.ToValidUTF8(s[:maxSnippet], "")
	}
	return strings.TrimSpace(s)
}

func failureReason(a attempt, attempts int) string {
	what := a.what
	switch {
	case errors.Is(a.err, ErrPrivateAddress):
		return ErrPrivateAddress.Error()
	case what != "":
	case a.status >= 300 && a.status < 400:
		what = fmt.Sprintf("recovery webhook answered %d (redirects are not followed)", a.status)
	default:
		what = fmt.Sprintf("recovery webhook answered %d", a.status)
	}
	if a.retryable {
		return fmt.Sprintf("%s after %d attempts; dead-lettered", what, attempts)
	}
	return what + "; not retried; dead-lettered"
}

// errText is an error's message for the ledger, dead letters and logs, bounded like a
// response snippet.
func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > maxSnippet {
		s = strings.ToValidUTF8(s[:maxSnippet], "")
	}
	return s
}
