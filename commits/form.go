package commits

import (
	"errors"
	"mime"
	"net/url"
)

// errNoPayload: a form-encoded delivery without its payload field.
var errNoPayload = errors.New("form-encoded delivery without a payload field")

// deliveryJSON returns the JSON of a delivery body as sent with contentType: the body
// itself for application/json (GitHub's recommended content type, and the default when
// the header is missing), the "payload" field for application/x-www-form-urlencoded (the
// default of GitHub's webhook form). The signature is checked over the raw body before.
func deliveryJSON(contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	p := form.Get("payload")
	if p == "" {
		return nil, errNoPayload
	}
	return []byte(p), nil
}
