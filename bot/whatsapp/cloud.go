package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/claim"
)

// DefaultCloudAPIURL is Meta's Graph API, with the version the adapter speaks.
const DefaultCloudAPIURL = "https://graph.facebook.com/v23.0"

// The Cloud API's limits the adapter keeps to.
const (
	// MaxCloudBody is the longest text message body (characters).
	MaxCloudBody = 4096
	// MaxButtons is the number of reply buttons an interactive message may carry.
	MaxButtons = 3
	// MaxButtonTitle is the longest reply button title (characters).
	MaxButtonTitle = 20
	// MaxButtonID is the longest reply button id (characters): it carries the approval
	// reference or the command the button stands for.
	MaxButtonID = 256
	// MaxInteractiveBody is the longest body of an interactive message (characters).
	MaxInteractiveBody = 1024
)

// Graph API error codes the adapter acts on.
const (
	// CodeTokenExpired (190): the access token expired or was revoked.
	CodeTokenExpired = 190
	// CodeAppRateLimit (4): the app made too many API calls.
	CodeAppRateLimit = 4
	// CodeAccountRateLimit (80007): the WhatsApp Business Account's rate limit.
	CodeAccountRateLimit = 80007
	// CodeThroughput (130429): the phone number's message throughput was reached.
	CodeThroughput = 130429
	// CodeUndeliverable (131026): the message could not be delivered (not a WhatsApp
	// user, an old app, terms not accepted).
	CodeUndeliverable = 131026
	// CodeReengagement (131047): more than 24 hours since the person last wrote; only a
	// template can reach them.
	CodeReengagement = 131047
)

// Errors of the Cloud API.
var (
	// ErrWindowClosed: the person has not written within 24 hours (131047).
	ErrWindowClosed = errors.New("whatsapp cloud: outside the 24-hour window; only a template can be sent")
	// ErrTokenExpired: the access token expired or was revoked (190).
	ErrTokenExpired = errors.New("whatsapp cloud: access token expired or revoked")
)

// CloudError is an error answer of the Graph API.
type CloudError struct {
	Status  int // HTTP status
	Code    int
	Subcode int
	Type    string
	Message string
	Details string
}

func (e *CloudError) Error() string {
	s := fmt.Sprintf("whatsapp cloud: %d, code %d", e.Status, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Details != "" {
		s += " (" + e.Details + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrWindowClosed / ErrTokenExpired) follow the code.
func (e *CloudError) Is(target error) bool {
	switch target {
	case ErrWindowClosed:
		return e.Code == CodeReengagement
	case ErrTokenExpired:
		return e.Code == CodeTokenExpired
	}
	return false
}

func (e *CloudError) rateLimited() bool {
	return e.Code == CodeAppRateLimit || e.Code == CodeAccountRateLimit || e.Code == CodeThroughput || e.Status == http.StatusTooManyRequests
}

// CloudOptions configure the adapter on Meta's WhatsApp Cloud API.
type CloudOptions struct {
	// Token is the access token (a system user's, for production).
	Token string
	// PhoneNumberID is the business phone number's id (not the number).
	PhoneNumberID string
	// AppSecret signs every webhook request (X-Hub-Signature-256).
	AppSecret string
	// VerifyToken is the token Meta presents when the webhook is registered.
	VerifyToken string
	// APIURL replaces DefaultCloudAPIURL (a proxy, or cloudtest); it includes the version.
	APIURL string
	// Template is the approval template, "name:language" ("alertengine_approval:en_US");
	// empty: cards outside the window go as text, which the Cloud API refuses (131047).
	Template string
	// WABAID is the WhatsApp Business Account's id: with it, Check verifies that the
	// template exists in that account, in its language, and is APPROVED; without it the
	// template is not checked (and Check logs so, once).
	WABAID    string
	Redis     redis.UniversalClient
	KeyPrefix string
	Logger    *slog.Logger
	Clock     func() time.Time
	// CallTimeout bounds each Graph request (default 10 s).
	CallTimeout time.Duration
	// Sleep waits out a rate limit before retrying (default: a timer honouring ctx).
	Sleep func(ctx context.Context, d time.Duration) error
	// Registry takes the status metrics (alertengine_whatsapp_cloud_*); nil keeps them
	// unregistered.
	Registry prometheus.Registerer
}

var (
	phoneNumberID = regexp.MustCompile(`^[0-9]{1,30}$`)
	templateName  = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	templateLang  = regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2})?$`)
)

// Validate checks the options and fills defaults.
func (o *CloudOptions) Validate() error {
	switch {
	case o.Token == "":
		return errors.New("whatsapp cloud: no access token")
	case !phoneNumberID.MatchString(o.PhoneNumberID):
		return errors.New("whatsapp cloud: the phone number id must be the digits of the number's id in WhatsApp Manager")
	case o.AppSecret == "":
		return errors.New("whatsapp cloud: no app secret (it checks every webhook request)")
	case o.VerifyToken == "":
		return errors.New("whatsapp cloud: no verify token")
	case o.Redis == nil:
		return errors.New("whatsapp cloud: no Redis")
	case o.WABAID != "" && !phoneNumberID.MatchString(o.WABAID):
		return errors.New("whatsapp cloud: the WhatsApp Business Account id must be its digits (WhatsApp Manager → account overview)")
	}
	if o.Template != "" {
		if _, _, err := parseTemplate(o.Template); err != nil {
			return err
		}
	}
	if o.APIURL == "" {
		o.APIURL = DefaultCloudAPIURL
	}
	if u, err := url.Parse(o.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("whatsapp cloud: API URL must be an absolute http(s) URL")
	}
	o.APIURL = strings.TrimRight(o.APIURL, "/")
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = channel.Sleep
	}
	return nil
}

// parseTemplate reads "name:language".
func parseTemplate(s string) (name, lang string, err error) {
	name, lang, _ = strings.Cut(strings.TrimSpace(s), ":")
	if !templateName.MatchString(name) || !templateLang.MatchString(lang) {
		return "", "", errors.New(`whatsapp cloud: the template must be "name:language", e.g. "alertengine_approval:en_US"`)
	}
	return name, lang, nil
}

// cloudWire is the provider over Meta's Graph API.
type cloudWire struct {
	a        *Adapter
	o        CloudOptions
	http     *http.Client
	name     string // template name
	lang     string // template language
	statuses *prometheus.CounterVec
	failures *prometheus.CounterVec
	// refused counts webhook requests refused before anything of them was read.
	refused *prometheus.CounterVec
	// skipped logs once that the template was not checked (no WABA id).
	skipped sync.Once
}

var _ provider = (*cloudWire)(nil)

// NewCloud builds a WhatsApp adapter on Meta's Cloud API. It makes no call to Meta.
func NewCloud(o CloudOptions) (*Adapter, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	deliveries, err := claim.New(claim.Options{Redis: o.Redis, Lease: claimLease, Keep: dedupTTL, Timeout: o.CallTimeout})
	if err != nil {
		return nil, fmt.Errorf("whatsapp: %w", err)
	}
	a := &Adapter{o: Options{Redis: o.Redis, KeyPrefix: o.KeyPrefix, Logger: o.Logger, Clock: o.Clock, CallTimeout: o.CallTimeout, Sleep: o.Sleep},
		log: o.Logger.With("channel", string(conversation.WhatsApp), "provider", "cloud"), deliveries: deliveries}
	w := &cloudWire{a: a, o: o,
		http: &http.Client{Timeout: o.CallTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_whatsapp_cloud_statuses_total",
			Help: "Message status callbacks from the WhatsApp Cloud API, by status (sent, delivered, read, failed)."}, []string{"status"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_whatsapp_cloud_failed_total",
			Help: "Messages the WhatsApp Cloud API reported failed, by error code."}, []string{"code"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_whatsapp_cloud_requests_refused_total",
			Help: "Webhook requests refused, by reason (signature: X-Hub-Signature-256 did not verify; verify_token: a verification request with the wrong token)."}, []string{"reason"}),
	}
	if o.Template != "" {
		w.name, w.lang, _ = parseTemplate(o.Template)
	}
	if o.Registry != nil {
		for _, c := range []prometheus.Collector{w.statuses, w.failures, w.refused} {
			if err := o.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("whatsapp cloud: metrics: %w", err)
			}
		}
	}
	a.wire, a.cloud = w, w
	return a, nil
}

func (*cloudWire) maxBody() int { return MaxCloudBody }

func (w *cloudWire) hasTemplate() bool { return w.name != "" }

// replyButtons are up to MaxButtons of msg's buttons, approvals first, then the reject,
// then the rest; a title is cut to MaxButtonTitle characters, and a button whose data
// does not fit an id, or whose title repeats one, is left to the typed alternative.
func (w *cloudWire) replyButtons(msg conversation.Message) []conversation.Button {
	var all []conversation.Button
	for _, row := range msg.Buttons {
		all = append(all, row...)
	}
	rank := func(b conversation.Button) int {
		switch {
		case strings.HasPrefix(b.Data, "ap:"):
			return 0
		case strings.HasPrefix(b.Data, "/reject "):
			return 1
		}
		return 2
	}
	var out []conversation.Button
	seen := map[string]bool{}
	for r := 0; r <= 2; r++ {
		for _, b := range all {
			if rank(b) != r || len(out) == MaxButtons {
				continue
			}
			data := b.Data
			if data == "" || utf8.RuneCountInString(data) > MaxButtonID || strings.TrimSpace(data) != data || !utf8.ValidString(data) {
				continue
			}
			title := buttonTitle(b.Label)
			if title == "" || seen[title] {
				continue
			}
			seen[title] = true
			out = append(out, conversation.Button{Label: title, Data: data})
		}
	}
	return out
}

// buttonTitle is label on one line within MaxButtonTitle characters.
func buttonTitle(label string) string {
	t := strings.Join(strings.Fields(strings.ToValidUTF8(label, "")), " ")
	if r := []rune(t); len(r) > MaxButtonTitle {
		t = strings.TrimSpace(string(r[:MaxButtonTitle-1])) + "…"
	}
	return t
}

// waTo is a +E164 number as the Cloud API's "to" (digits only, as its wa_id).
func waTo(n string) string { return strings.TrimPrefix(n, "+") }

type graphText struct {
	Body       string `json:"body"`
	PreviewURL bool   `json:"preview_url"`
}

func (w *cloudWire) sendText(ctx context.Context, to, body string, png []byte) (string, error) {
	if png != nil {
		if err := w.sendImage(ctx, to, png); err != nil {
			w.a.log.Warn("chart not sent", "err", err)
		}
	}
	if body == "" {
		return "", errors.New("whatsapp cloud: empty message")
	}
	return w.message(ctx, to, "text", graphText{Body: body})
}

func (w *cloudWire) sendImage(ctx context.Context, to string, png []byte) error {
	if len(png) == 0 || len(png) > maxImage {
		return fmt.Errorf("image of %d bytes", len(png))
	}
	id, err := w.upload(ctx, png)
	if err != nil {
		return err
	}
	_, err = w.message(ctx, to, "image", map[string]string{"id": id})
	return err
}

// upload posts a PNG to /{phone-number-id}/media and returns its media id.
func (w *cloudWire) upload(ctx context.Context, png []byte) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("messaging_product", "whatsapp")
	_ = mw.WriteField("type", "image/png")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="chart.png"`)
	h.Set("Content-Type", "image/png")
	part, _ := mw.CreatePart(h)
	_, _ = part.Write(png)
	_ = mw.Close()
	var out struct {
		ID string `json:"id"`
	}
	if err := w.do(ctx, "upload media", http.MethodPost, "/"+w.o.PhoneNumberID+"/media", body.Bytes(), mw.FormDataContentType(), &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("whatsapp cloud: media upload returned no id")
	}
	return out.ID, nil
}

// sendTemplate sends the approval template: body parameters {{1}} the card's title,
// {{2}} the action, {{3}} one line of the card; quick-reply button 0 carries the
// approval reference, button 1 the reject (README, "WhatsApp").
func (w *cloudWire) sendTemplate(ctx context.Context, to string, vars map[string]string) (string, error) {
	text := func(v string) map[string]string { return map[string]string{"type": "text", "text": v} }
	payload := func(v string) map[string]string { return map[string]string{"type": "payload", "payload": v} }
	tpl := map[string]any{
		"name":     w.name,
		"language": map[string]string{"code": w.lang},
		"components": []map[string]any{
			{"type": "body", "parameters": []map[string]string{text(vars["1"]), text(vars["4"]), text(vars["5"])}},
			{"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": []map[string]string{payload(vars["2"])}},
			{"type": "button", "sub_type": "quick_reply", "index": "1", "parameters": []map[string]string{payload(vars["3"])}},
		},
	}
	return w.message(ctx, to, "template", tpl)
}

type graphReply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type graphButton struct {
	Type  string     `json:"type"`
	Reply graphReply `json:"reply"`
}

func (w *cloudWire) sendButtons(ctx context.Context, to, body string, buttons []conversation.Button) (string, error) {
	if r := []rune(body); len(r) > MaxInteractiveBody {
		body = string(r[:MaxInteractiveBody-1]) + "…"
	}
	bs := make([]graphButton, 0, len(buttons))
	for _, b := range buttons {
		bs = append(bs, graphButton{Type: "reply", Reply: graphReply{ID: b.Data, Title: b.Label}})
	}
	return w.message(ctx, to, "interactive", map[string]any{
		"type":   "button",
		"body":   map[string]string{"text": body},
		"action": map[string]any{"buttons": bs},
	})
}

// message posts one message to /{phone-number-id}/messages and returns its wamid.
func (w *cloudWire) message(ctx context.Context, to, typ string, content any) (string, error) {
	req := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": waTo(to), "type": typ, typ: content}
	js, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("whatsapp cloud: %w", err)
	}
	var out struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if err := w.do(ctx, "send "+typ, http.MethodPost, "/"+w.o.PhoneNumberID+"/messages", js, "application/json", &out); err != nil {
		if errors.Is(err, ErrWindowClosed) {
			w.a.log.Warn("WhatsApp refused a message outside the 24-hour window (131047)", "to", redact(to))
		}
		return "", err
	}
	if len(out.Messages) == 0 || out.Messages[0].ID == "" {
		return "", errors.New("whatsapp cloud: the message was accepted without an id")
	}
	return out.Messages[0].ID, nil
}

// maxAnswer bounds what is read of a Graph answer.
const maxAnswer = 1 << 20

// do runs one Graph request, retrying one refused for a rate limit (it did nothing)
// after a growing wait. A 5xx or a timeout is not retried: the message may have gone out.
func (w *cloudWire) do(ctx context.Context, what, method, path string, body []byte, contentType string, out any) error {
	wait := time.Second
	for attempt := 0; ; attempt++ {
		err := w.once(ctx, method, path, body, contentType, out)
		var ce *CloudError
		if errors.As(err, &ce) && ce.rateLimited() && attempt < maxRetries {
			w.a.log.Warn("WhatsApp Cloud API rate limit, waiting", "request", what, "code", ce.Code, "wait", wait, "attempt", attempt+1)
			if err := w.o.Sleep(ctx, wait); err != nil {
				return fmt.Errorf("whatsapp cloud %s: %w", what, err)
			}
			wait *= 2
			continue
		}
		if err != nil && ce == nil {
			return fmt.Errorf("whatsapp cloud %s: %w", what, err)
		}
		return err
	}
}

func (w *cloudWire) once(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.CallTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.o.APIURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+w.o.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Message   string `json:"message"`
				Type      string `json:"type"`
				Code      int    `json:"code"`
				Subcode   int    `json:"error_subcode"`
				ErrorData struct {
					Details string `json:"details"`
				} `json:"error_data"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return &CloudError{Status: resp.StatusCode, Code: e.Error.Code, Subcode: e.Error.Subcode, Type: e.Error.Type,
			Message: oneLine(e.Error.Message, ""), Details: oneLine(e.Error.ErrorData.Details, "")}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("unreadable answer: %w", err)
		}
	}
	return nil
}

// check fetches the phone number, the cheapest authenticated Graph request: an error
// wrapping channel.ErrRefused when Meta refuses the token (401, 403, code 190). With an
// approval template configured it then checks the template (checkTemplate).
func (w *cloudWire) check(ctx context.Context) error {
	err := w.once(ctx, http.MethodGet, "/"+w.o.PhoneNumberID+"?fields=id", nil, "", nil)
	if refused := refusal(err); refused != nil {
		return refused
	}
	if err != nil {
		return fmt.Errorf("whatsapp: fetch the phone number: %w", err)
	}
	return w.checkTemplate(ctx)
}

// refusal is err as an error wrapping channel.ErrRefused when it says Meta refused the
// token (401, 403, code 190); nil otherwise.
func refusal(err error) error {
	var ce *CloudError
	if errors.As(err, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden || ce.Code == CodeTokenExpired) {
		return fmt.Errorf("whatsapp: %w: the Cloud API answered %d, code %d: %s", channel.ErrRefused, ce.Status, ce.Code, ce.Message)
	}
	return nil
}

// Template statuses of the Graph API's message_templates (only APPROVED can be sent).
const templateApproved = "APPROVED"

// checkTemplate asks the WhatsApp Business Account for the approval template
// (GET /{waba-id}/message_templates?name=…) and wants it there, in the configured
// language, APPROVED: a template still PENDING, or REJECTED, PAUSED or DISABLED, would
// make every card sent outside the 24-hour window fail. Without a template nothing is
// checked; without WABAID it is logged, once, that the check was skipped.
func (w *cloudWire) checkTemplate(ctx context.Context) error {
	if w.name == "" {
		return nil
	}
	if w.o.WABAID == "" {
		w.skipped.Do(func() {
			w.a.log.Warn("WHATSAPP_CLOUD_TEMPLATE was not checked: set WHATSAPP_CLOUD_WABA_ID (the WhatsApp Business Account id) to verify at start-up that it exists and is approved",
				"template", w.name, "language", w.lang)
		})
		return nil
	}
	q := url.Values{"name": {w.name}, "fields": {"name,language,status"}, "limit": {"100"}}
	var out struct {
		Data []struct {
			Name     string `json:"name"`
			Language string `json:"language"`
			Status   string `json:"status"`
		} `json:"data"`
	}
	err := w.once(ctx, http.MethodGet, "/"+w.o.WABAID+"/message_templates?"+q.Encode(), nil, "", &out)
	if refused := refusal(err); refused != nil {
		return refused
	}
	if err != nil {
		return fmt.Errorf("whatsapp: WHATSAPP_CLOUD_TEMPLATE: list the templates of WHATSAPP_CLOUD_WABA_ID %s: %w", w.o.WABAID, err)
	}
	var langs []string
	for _, t := range out.Data {
		if t.Name != w.name {
			continue
		}
		if t.Language != w.lang {
			langs = append(langs, oneLine(t.Language, ""))
			continue
		}
		if t.Status != templateApproved {
			return fmt.Errorf("whatsapp: WHATSAPP_CLOUD_TEMPLATE %s:%s is %s, not APPROVED: cards outside the 24-hour window cannot be sent until Meta approves it",
				w.name, w.lang, oneLine(t.Status, "?"))
		}
		return nil
	}
	if len(langs) > 0 {
		return fmt.Errorf("whatsapp: WHATSAPP_CLOUD_TEMPLATE %s has no %s translation in the WhatsApp Business Account (it has %s)",
			w.name, w.lang, strings.Join(langs, ", "))
	}
	return fmt.Errorf("whatsapp: WHATSAPP_CLOUD_TEMPLATE %s does not exist in the WhatsApp Business Account %s", w.name, w.o.WABAID)
}

func (w *cloudWire) run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
