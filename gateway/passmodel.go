package gateway

// The model of a passed-through call the gateway does not police (legacy
// completions, moderations, images, audio...), for the gateway with more
// than one upstream to send it to the upstream that serves that model, as
// it does chat completions, embeddings and Responses calls.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
)

// peekModel returns the model r's body names — a JSON body's "model", a
// multipart form's "model" field — reading at most limit bytes of it; ""
// when it names none within them. r's body is given back whole: what was
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
	src := io.TeeReader(lim, &read)
	model := ""
	var readErr error
	if isJSON {
		b, err := io.ReadAll(src)
		readErr = err
		var v struct {
			Model string `json:"model"`
		}
		if err == nil && lim.N > 0 && json.Unmarshal(b, &v) == nil {
			model = v.Model
		}
	} else {
		mr := multipart.NewReader(src, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				if !errors.Is(err, io.EOF) && lim.N > 0 {
					readErr = err
				}
				break
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
	if readErr != nil && !errors.Is(readErr, io.ErrUnexpectedEOF) && !strings.HasPrefix(readErr.Error(), "multipart:") {
		// The read failed (its deadline, the limit): the transport meets
		// the same failure after the bytes that came.
		rest = io.NopCloser(errReader{readErr})
		defer r.Body.Close()
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(read.Bytes()), rest), r.Body}
	return model
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// readCloser reads from Reader and closes Closer.
type readCloser struct {
	io.Reader
	io.Closer
}
