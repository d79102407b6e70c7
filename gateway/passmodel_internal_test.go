package gateway

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// FuzzPeekModelGivesTheBodyBack: whatever the body and its Content-Type,
// peekModel leaves the request's body byte for byte as it came, and the
// model it reads from a multipart form or a JSON body is the one written
// there.
func FuzzPeekModelGivesTheBodyBack(f *testing.F) {
	form := func(model string, before bool) (string, []byte) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		if before {
			_ = mw.WriteField("model", model)
		}
		fw, _ := mw.CreateFormFile("file", "a.wav")
		_, _ = fw.Write(bytes.Repeat([]byte("RIFF"), 300))
		if !before {
			_ = mw.WriteField("model", model)
		}
		_ = mw.Close()
		return mw.FormDataContentType(), b.Bytes()
	}
	ct, b := form("whisper-1", false)
	f.Add(ct, b, uint16(4096))
	ct, b = form("local-whisper", true)
	f.Add(ct, b, uint16(100))
	f.Add("application/json", []byte(`{"model":"local-llama","prompt":"hi"}`), uint16(4096))
	f.Add("application/json; charset=utf-8", []byte(`{"prompt":"hi","model":`), uint16(10))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--x--\r\n"), uint16(4096))
	f.Fuzz(func(t *testing.T, contentType string, body []byte, limit uint16) {
		r, err := http.NewRequest(http.MethodPost, "http://gw/v1/completions", bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		r.Header.Set("Content-Type", contentType)
		model := peekModel(r, int64(limit))
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("the body given back: %q (%v), want %q", got, err, body)
		}
		if model != "" && !bytes.Contains(body, []byte(strings.TrimSpace(model))) {
			t.Fatalf("model %q is not in the body", model)
		}
	})
}
