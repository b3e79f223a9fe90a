package links

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/alertengine/alertengine/conversation/approval"
)

// Approvals is what the link-approval pages need of the conversation.
type Approvals interface {
	PreviewLink(ctx context.Context, id string) (approval.Preview, error)
	ConfirmLink(ctx context.Context, id string) (string, error)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>AlertEngine — {{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
button{font-size:1rem;padding:.6rem 1.2rem}.muted{color:#666}</style></head>
<body><h1>{{.Title}}</h1>
{{range .Lines}}<p>{{.}}</p>{{end}}
{{if .Confirm}}<form method="post" action="/action/recover/confirm">
<input type="hidden" name="ref" value="{{.Ref}}">
<button type="submit">Approve {{.Action}}</button></form>{{end}}
<p class="muted">Nothing runs without an approver's decision; every decision is recorded in the audit ledger.</p>
</body></html>`))

type page struct {
	Title   string
	Lines   []string
	Confirm bool
	Ref     string
	Action  string
}

func renderPage(w http.ResponseWriter, code int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(code)
	_ = pageTmpl.Execute(w, p)
}

// Preview serves GET /action/recover?ref=R: what will run, for which incident, as
// whom — and nothing else happens, however often it is opened (link previews by chat
// apps open it too).
func Preview(a Approvals, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ref := r.URL.Query().Get("ref")
		p, err := a.PreviewLink(r.Context(), ref)
		if err != nil {
			if !errors.Is(err, approval.ErrUnknown) {
				log.Error("preview link approval", "err", err)
				renderPage(w, http.StatusInternalServerError, page{Title: "Something went wrong", Lines: []string{"Nothing was run. Try again, or approve in the chat."}})
				return
			}
			renderPage(w, http.StatusNotFound, page{Title: "Unknown approval link", Lines: []string{"This link is not valid."}})
			return
		}
		lines := []string{
			"Incident " + p.Incident + " (" + p.Tenant + ")",
			"Action: " + p.Action,
			"Approver: " + p.Person,
		}
		if p.HighRisk {
			lines = append(lines, "High-risk action: two different approvers must approve.")
		}
		switch p.State {
		case "used":
			renderPage(w, http.StatusOK, page{Title: "Already decided", Lines: append(lines, "Already approved by "+p.UsedBy+".")})
		case "expired":
			renderPage(w, http.StatusOK, page{Title: "Expired", Lines: append(lines, "This approval has expired. Ask for a fresh one in the incident thread.")})
		default:
			lines = append(lines, "Valid until "+p.Expires.UTC().Format(time.RFC1123)+".")
			renderPage(w, http.StatusOK, page{Title: "Approve " + p.Action + "?", Lines: lines, Confirm: true, Ref: ref, Action: p.Action})
		}
	})
}

// Confirm serves POST /action/recover/confirm: the link approval, with the same
// single-use rules as a button.
func Confirm(a Approvals, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				renderPage(w, http.StatusRequestEntityTooLarge, page{Title: "Request too large"})
				return
			}
			renderPage(w, http.StatusBadRequest, page{Title: "Bad request"})
			return
		}
		text, err := a.ConfirmLink(r.Context(), r.PostForm.Get("ref"))
		if err != nil {
			log.Error("confirm link approval", "err", err)
			renderPage(w, http.StatusInternalServerError, page{Title: "Something went wrong", Lines: []string{"Nothing was run."}})
			return
		}
		renderPage(w, http.StatusOK, page{Title: "AlertEngine", Lines: []string{text}})
	})
}
