package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// register puts the API on mux: POST /v1/approvals, GET /v1/approvals/{id},
// POST /v1/approvals/{id}/consume, POST /v1/approvals/{id}/result and GET /.well-known/alertengine-keys.
func (g *Gate) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/approvals", g.auth(g.create))
	mux.HandleFunc("GET /v1/approvals/{id}", g.auth(g.get))
	mux.HandleFunc("POST /v1/approvals/{id}/consume", g.auth(onApproval(32<<10, g.Consume)))
	mux.HandleFunc("POST /v1/approvals/{id}/result", g.auth(onApproval(8<<10, g.Result)))
	mux.HandleFunc("GET /.well-known/alertengine-keys", g.keys)
}

// Handler returns the API alone (tests, or a server of its own).
func (g *Gate) Handler() http.Handler {
	mux := http.NewServeMux()
	g.register(mux)
	return mux
}

func (g *Gate) auth(h func(http.ResponseWriter, *http.Request, Token)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, err := g.o.Tokens.Authenticate(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="alertengine"`)
			writeErr(w, &HTTPError{http.StatusUnauthorized, "unauthorized"})
			return
		}
		h(w, r, tok)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var he *HTTPError
	if !errors.As(err, &he) {
		he = errUnavailable
	}
	writeJSON(w, he.Status, map[string]string{"error": he.Msg})
}

func (g *Gate) create(w http.ResponseWriter, r *http.Request, tok Token) {
	var q Request
	if err := ReadJSON(r, MaxBody, &q); err != nil {
		writeErr(w, err)
		return
	}
	st, created, err := g.Create(r.Context(), tok, q)
	if err != nil {
		writeErr(w, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		w.Header().Set("Location", "/v1/approvals/"+st.ID)
	}
	writeJSON(w, code, st)
}

func (g *Gate) get(w http.ResponseWriter, r *http.Request, tok Token) {
	var wait time.Duration
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > MaxWait {
			writeErr(w, bad("wait: want a duration up to %s", MaxWait))
			return
		}
		wait = d
	}
	var st Status
	var err error
	if wait > 0 {
		// The server's write timeout is shorter than some waits; this response may take
		// the wait and a little more.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 15*time.Second))
		st, err = g.Wait(r.Context(), tok, r.PathValue("id"), wait)
	} else {
		st, err = g.Get(r.Context(), tok, r.PathValue("id"))
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// onApproval serves a POST on one approval: a JSON body of at most limit bytes, one call
// of the gate, its JSON answer.
func onApproval[Q, A any](limit int64, call func(context.Context, Token, string, Q) (A, error)) func(http.ResponseWriter, *http.Request, Token) {
	return func(w http.ResponseWriter, r *http.Request, tok Token) {
		var q Q
		if err := ReadJSON(r, limit, &q); err != nil {
			writeErr(w, err)
			return
		}
		out, err := call(r.Context(), tok, r.PathValue("id"), q)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (g *Gate) keys(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(KeySet(g.PublicKey()))
}
