package gateway

// The model of a passed-through call the gateway does not police (legacy
// completions, moderations, images, audio...), for the gateway with more
// than one upstream to send it to the upstream that serves that model, as
// it does chat completions, embeddings and Responses calls.

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"unicode/utf8"
)

// peekModel returns the model r's body names — a JSON body's "model", a
// multipart form's "model" field — reading at most limit bytes of it; ""
// when it names none within them (or a JSON name that is not valid UTF-8). r's body is given back whole: what was
// read, then the rest (or the error that ended the read, for the
// transport to meet as it would have).
func peekModel(r *http.Request, limit int64) string {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	isForm := mt == "multipart/form-data" && params["boundary"] != ""
	if r.Body == nil || r.Body == http.NoBody || !isJSON && !isForm {
		return ""
	}
	var read bytes.Buffer
	lim := &io.LimitedReader{R: r.Body, N: limit}
	src := &capture{r: io.TeeReader(lim, &read)}
	model := ""
	if isJSON {
		b, err := io.ReadAll(src)
		var v struct {
			Model string `json:"model"`
		}
		// A name that is not valid UTF-8 (decoded with U+FFFD in place of
		// its bytes) names no model an upstream serves, nor the one the
		// upstream reads from those bytes: the call goes where a call
		// that names none goes.
		if err == nil && lim.N > 0 && json.Unmarshal(b, &v) == nil && !strings.ContainsRune(v.Model, utf8.RuneError) {
			model = v.Model
		}
	} else {
		mr := multipart.NewReader(src, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break // the end of the form, of the bytes read, or a form the upstream will judge
			}
			if p.FormName() == "model" && p.FileName() == "" {
				b, err := io.ReadAll(io.LimitReader(p, 256))
				if err == nil {
					model = strings.TrimSpace(string(b))
				}
				break
			}
		}
	}
	rest := r.Body
	if src.err != nil {
		// The read of the body failed (its deadline, its limit): the
		// transport meets the same failure after the bytes that came.
		rest = io.NopCloser(errReader{src.err})
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(read.Bytes()), rest), r.Body}
	return model
}

// capture reads from r and keeps the first error of a read but io.EOF.
type capture struct {
	r   io.Reader
	err error
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// readCloser reads from Reader and closes Closer.
type readCloser struct {
	io.Reader
	io.Closer
}
