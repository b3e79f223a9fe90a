package telegramtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
)

// maxUpload bounds the size of a request body the fake reads (Telegram's own limit for
// photos is 10 MB; multipart parts beyond memory go to temporary files).
const maxUpload = 50 << 20

// params are a request's parameters, however they were encoded.
type params struct {
	values map[string]string
	files  map[string]File
}

// readParams reads the query string and the body of r the way the Bot API accepts them:
// application/json, multipart/form-data or application/x-www-form-urlencoded. A body the
// client declared as multipart but left empty (go-telegram/bot does so for methods without
// parameters) is no parameters.
func readParams(r *http.Request) (params, error) {
	p := params{values: map[string]string{}, files: map[string]File{}}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			p.values[k] = v[0]
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUpload))
	if err != nil {
		return p, fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	mediaType, mparams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "application/json":
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return p, fmt.Errorf("decode JSON body: %w", err)
		}
		for k, raw := range fields {
			v, ok, err := flattenJSON(raw)
			if err != nil {
				return p, fmt.Errorf("decode JSON parameter %s: %w", k, err)
			}
			if ok {
				p.values[k] = v
			}
		}
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(body), mparams["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return p, fmt.Errorf("read multipart body: %w", err)
			}
			data, err := io.ReadAll(part)
			if err != nil {
				return p, fmt.Errorf("read multipart part %s: %w", part.FormName(), err)
			}
			if part.FileName() != "" {
				p.files[part.FormName()] = File{Name: part.FileName(), ContentType: part.Header.Get("Content-Type"), Data: data}
				continue
			}
			p.values[part.FormName()] = string(data)
		}
	case "application/x-www-form-urlencoded":
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.ParseForm(); err != nil {
			return p, fmt.Errorf("parse form: %w", err)
		}
		for k, v := range r.PostForm {
			if len(v) > 0 {
				p.values[k] = v[0]
			}
		}
	}
	return p, nil
}

// flattenJSON turns one JSON value into the string a form would carry: strings unquoted,
// null dropped, anything else as compact JSON text.
func flattenJSON(raw json.RawMessage) (string, bool, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case bytes.Equal(raw, []byte("null")):
		return "", false, nil
	case len(raw) > 0 && raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err == nil, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", false, err
	}
	return b.String(), true, nil
}

func (p params) str(name string) string { return p.values[name] }

// int reads an integer parameter; absent or empty is 0, false.
func (p params) int(name string) (int64, bool, error) {
	v := strings.TrimSpace(p.values[name])
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, true, err
	}
	return n, true, nil
}

// bool reads a boolean parameter as the Bot API does: true, 1 (any case) are true.
func (p params) bool(name string) bool {
	switch strings.ToLower(strings.TrimSpace(p.values[name])) {
	case "true", "1":
		return true
	}
	return false
}

func (p params) copyValues() map[string]string { return maps.Clone(p.values) }

func (p params) copyFiles() map[string]File {
	if len(p.files) == 0 {
		return nil
	}
	return maps.Clone(p.files)
}
