package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTPSink keeps marks with a service an auditor runs, over a small protocol:
//
//	PUT  BASE/TENANT  body: the Mark as JSON → 2xx kept; 409 the service keeps a later one
//	GET  BASE/TENANT  → 200 the Mark as JSON; 404 none yet
//
// with "Authorization: Bearer TOKEN" when a token is set. The service should keep, per
// tenant, the mark with the larger checkpoint base, then the larger size, and never drop
// the lost-chain list; ledgertest.SinkServer is a reference implementation.
type HTTPSink struct {
	base    string
	token   string
	client  *http.Client
	trusted ed25519.PublicKey
}

// NewHTTPSink returns a sink at base (absolute http(s) URL) whose marks must be signed by
// trusted. client nil: one with a 10 s timeout.
func NewHTTPSink(base, token string, trusted ed25519.PublicKey, client *http.Client) (*HTTPSink, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("%w: URL must be an absolute http(s) URL without credentials", ErrSink)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &HTTPSink{base: strings.TrimRight(base, "/"), token: token, client: client, trusted: trusted}, nil
}

func (h *HTTPSink) do(ctx context.Context, method, tenant string, body []byte) (*http.Response, error) {
	return h.doPath(ctx, method, tenant, "", "application/json", body)
}

// doPath requests BASE/TENANT + suffix.
func (h *HTTPSink) doPath(ctx context.Context, method, tenant, suffix, ctype string, body []byte) (*http.Response, error) {
	if !ValidTenant(tenant) {
		return nil, fmt.Errorf("%w: tenant %q", ErrSink, tenant)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, method, h.base+"/"+tenant+suffix, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %v", ErrSink, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		cancel()
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is configuration, not news
		}
		return nil, fmt.Errorf("%w: %s %s: %v", ErrSink, method, tenant, err)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }

// Load implements CheckpointSink.
func (h *HTTPSink) Load(ctx context.Context, tenant string) (*Mark, error) {
	resp, err := h.do(ctx, http.MethodGet, tenant, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: GET %s: HTTP %d", ErrSink, tenant, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSinkFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", ErrSink, tenant, err)
	}
	if len(b) > maxSinkFile {
		return nil, fmt.Errorf("%w: GET %s: reply larger than %d MiB", ErrSink, tenant, maxSinkFile>>20)
	}
	var m Mark
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: GET %s: not a mark: %v", ErrSink, tenant, err)
	}
	if err := verifyMark(&m, tenant, h.trusted); err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrSink, tenant, err)
	}
	return &m, nil
}

// Save implements CheckpointSink.
func (h *HTTPSink) Save(ctx context.Context, m Mark) error {
	tenant := m.Checkpoint.Tenant
	if err := verifyMark(&m, tenant, h.trusted); err != nil {
		return fmt.Errorf("%w: refusing to save: %w", ErrSink, err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrSink, err)
	}
	resp, err := h.do(ctx, http.MethodPut, tenant, b)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusConflict {
		return nil
	}
	return fmt.Errorf("%w: PUT %s: HTTP %d", ErrSink, tenant, resp.StatusCode)
}

// Sinks is several sinks as one: Save writes to each; Load returns the most advanced mark
// any of them holds (larger base, then larger size). When some sinks fail, Load returns
// the best mark of the others together with the error; a mark that does not verify in
// any sink (ErrBadCheckpoint) is an error with no mark.
type Sinks []CheckpointSink

// Load implements CheckpointSink.
func (ss Sinks) Load(ctx context.Context, tenant string) (*Mark, error) {
	var best *Mark
	var errs []error
	for _, s := range ss {
		m, err := s.Load(ctx, tenant)
		if err != nil {
			if errors.Is(err, ErrBadCheckpoint) {
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		if m != nil && (best == nil || m.Checkpoint.Base > best.Checkpoint.Base ||
			m.Checkpoint.Base == best.Checkpoint.Base && m.Checkpoint.Size > best.Checkpoint.Size) {
			best = m
		}
	}
	if len(errs) == len(ss) {
		return nil, errors.Join(errs...)
	}
	return best, errors.Join(errs...)
}

// Save implements CheckpointSink.
func (ss Sinks) Save(ctx context.Context, m Mark) error {
	var errs []error
	for _, s := range ss {
		if err := s.Save(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
