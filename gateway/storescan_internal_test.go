package gateway

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestStoreScanFindsTheNameAcrossAnyReads: the body's name "store",
// written plainly or with any of its letters \u escaped (upper- or
// lower-case hex), is found however the body is cut into reads, and a
// body without it (the word inside a string, escaped quotes, another
// name) is not: the chat path's transport notes it (noteStored) as it
// decodes the request.
func TestStoreScanFindsTheNameAcrossAnyReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// The chat path's transport: noteStored in front of a chain that
	// passes every call to an upstream answering at once.
	answer := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
	upstream := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(answer)), Request: r}, nil
	})
	tr := twopenai.NewTransport(noteStored(func(next middleware.Handler) middleware.Handler { return next }), twopenai.WithBaseTransport(upstream))
	letter := func(c byte) string {
		switch rng.IntN(3) {
		case 0:
			return string(c)
		case 1:
			return `\u00` + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15])
		}
		return `\u00` + string("0123456789ABCDEF"[c>>4]) + string("0123456789ABCDEF"[c&15])
	}
	for i := range 2000 {
		name, want := "", true
		for _, c := range []byte("store") {
			name += letter(c)
		}
		switch i % 4 {
		case 1:
			name, want = `stores`, false
		case 2:
			name, want = `\"store\"`, false // inside a string, no name
		}
		body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + string(bytes.Repeat([]byte("x"), rng.IntN(80))) + `"}],"` + name + `":true}`)
		switch {
		case i%4 == 2:
			body = []byte(`{"model":"m","messages":[{"role":"user","content":"` + name + `"}]}`)
		case i%8 == 1:
			// The name as a key below the top level (a tool's parameter):
			// no stored completion (a scan of the bytes took it for one).
			name, want = `store`, false
			body = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"store":{"type":"boolean"}}}}}],"metadata":{"store":"true"}}`)
		}
		note := &storedNote{}
		req, err := http.NewRequestWithContext(context.WithValue(t.Context(), storedKey{}, note), http.MethodPost,
			"http://upstream.test/v1/chat/completions", io.NopCloser(&choppy{b: body, rng: rng}))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s %v", body, resp.StatusCode, got, err)
		}
		if note.Load() != want {
			t.Errorf("%s: stored %v, want %v", body, note.Load(), want)
		}
	}
}

// choppy reads b in reads of random sizes.
type choppy struct {
	b   []byte
	rng *rand.Rand
}

func (c *choppy) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+c.rng.IntN(40))], c.b)
	c.b = c.b[n:]
	return n, nil
}
