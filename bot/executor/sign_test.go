package executor_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
)

// hmacHex is the receiver's side of the scheme, written from the README's description
// alone ("Approvals and execution": X-AlertEngine-Signature).
func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignFormat(t *testing.T) {
	t.Parallel()
	body := []byte(`{"tenant":"acme"}`)
	at := time.Unix(1772366400, 0)
	want := "t=1772366400,v1=" + hmacHex("k", `1772366400.{"tenant":"acme"}`)
	if got := executor.Sign("k", at, body); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	body := []byte(`{"tenant":"acme","incident":"INC-7F3","action":"restart_workers"}`)
	at := time.Unix(1772366400, 0)
	good := executor.Sign(secret, at, body)
	v1 := func(key string) string { return hmacHex(key, fmt.Sprintf("%d.%s", at.Unix(), body)) }
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", secret, good, body, at, nil},
		{"good, received 4 minutes later", secret, good, body, at.Add(4 * time.Minute), nil},
		{"good, receiver's clock 4 minutes behind", secret, good, body, at.Add(-4 * time.Minute), nil},
		{"good, with spaces and an unknown version", secret, fmt.Sprintf("t=%d, v0=abc, v1=%s", at.Unix(), v1(secret)), body, at, nil},
		{"one of two v1 matches (rotation)", secret, fmt.Sprintf("t=%d,v1=%s,v1=%s", at.Unix(), v1("old"), v1(secret)), body, at, nil},
		{"wrong secret", "another-secret", good, body, at, executor.ErrSignatureMismatch},
		{"tampered body", secret, good, []byte(`{"tenant":"acme","incident":"INC-7F3","action":"rollback"}`), at, executor.ErrSignatureMismatch},
		{"timestamp changed", secret, fmt.Sprintf("t=%d,v1=%s", at.Unix()+1, v1(secret)), body, at, executor.ErrSignatureMismatch},
		{"stale: replayed 6 minutes later", secret, good, body, at.Add(6 * time.Minute), executor.ErrStaleSignature},
		{"from the future", secret, good, body, at.Add(-6 * time.Minute), executor.ErrStaleSignature},
		{"empty header", secret, "", body, at, executor.ErrMalformedSignature},
		{"no t", secret, "v1=" + v1(secret), body, at, executor.ErrMalformedSignature},
		{"no v1", secret, fmt.Sprintf("t=%d", at.Unix()), body, at, executor.ErrMalformedSignature},
		{"t not a number", secret, "t=yesterday,v1=" + v1(secret), body, at, executor.ErrMalformedSignature},
		{"two t", secret, fmt.Sprintf("t=%d,t=%d,v1=%s", at.Unix(), at.Unix(), v1(secret)), body, at, executor.ErrMalformedSignature},
		{"v1 not hex", secret, fmt.Sprintf("t=%d,v1=zz", at.Unix()), body, at, executor.ErrMalformedSignature},
		{"v1 too short", secret, fmt.Sprintf("t=%d,v1=%s", at.Unix(), v1(secret)[:62]), body, at, executor.ErrMalformedSignature},
		{"not key=value", secret, "sha256=" + v1(secret) + ",garbage", body, at, executor.ErrMalformedSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := executor.VerifySignature(tc.secret, tc.header, tc.body, tc.now, 5*time.Minute)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifySignatureDefaultTolerance(t *testing.T) {
	t.Parallel()
	body := []byte("{}")
	at := time.Unix(1772366400, 0)
	h := executor.Sign(secret, at, body)
	if err := executor.VerifySignature(secret, h, body, at.Add(executor.DefaultTolerance-time.Second), 0); err != nil {
		t.Errorf("within the default tolerance: %v", err)
	}
	if err := executor.VerifySignature(secret, h, body, at.Add(executor.DefaultTolerance+time.Second), 0); !errors.Is(err, executor.ErrStaleSignature) {
		t.Errorf("past the default tolerance: %v", err)
	}
}
