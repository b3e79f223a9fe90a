package webhook

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// echo answers with the body it read, or what ReadBody answered.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, ok := ReadBody(w, r)
	if !ok {
		return
	}
	_, _ = w.Write(body)
})

func TestLimitAndReadBody(t *testing.T) {
	srv := httptest.NewServer(Limit(echo, 16))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		body    io.Reader
		want    int
		content string
	}{
		{"within the limit", strings.NewReader("0123456789abcdef"), http.StatusOK, "0123456789abcdef"},
		{"declared over the limit", strings.NewReader("0123456789abcdefg"), http.StatusRequestEntityTooLarge, "request body over 16 bytes"},
		// No Content-Length: the limit is found while reading.
		{"streamed over the limit", io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("abcdefghij")), http.StatusRequestEntityTooLarge, "request body over 16 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL, "text/plain", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.Contains(string(got), tc.content) {
				t.Errorf("%d %q; want %d %q", resp.StatusCode, got, tc.want, tc.content)
			}
		})
	}
}

func TestLimitDefault(t *testing.T) {
	h := Limit(echo, 0)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, DefaultMaxBody+1)))
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over 1 MiB: %d", w.Code)
	}
}

type failingBody struct{}

func (failingBody) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
func (failingBody) Close() error             { return nil }

func TestReadBodyUnreadable(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Body = failingBody{}
	if _, ok := ReadBody(w, r); ok || w.Code != http.StatusBadRequest {
		t.Errorf("ok %v, status %d; want 400", ok, w.Code)
	}
	if strings.Contains(w.Body.String(), "connection reset") {
		t.Error("the answer carries the read error")
	}
}

func TestSecretEqual(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		ok        bool
	}{
		{"s3cret", "s3cret", true},
		{"s3cret", "s3creT", false},
		{"s3cret-and-more", "s3cret", false},
		{"s3cre", "s3cret", false},
		{"", "s3cret", false},
		{"", "", false},
		{"anything", "", false},
	} {
		if got := SecretEqual(tc.got, tc.want); got != tc.ok {
			t.Errorf("SecretEqual(%q, %q) = %v", tc.got, tc.want, got)
		}
	}
}
