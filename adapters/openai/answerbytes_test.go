package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// FuzzUnchangedAnswerReachesTheCallerByteForByte: whatever answer a server
// sends with a 2xx status (any member order, whitespace, escapes, unknown
// members, several choices), when the Transport's chain changes nothing
// the caller reads either the very bytes the server sent, with their
// length, or (an answer the provider refuses) the provider's typed error,
// never a re-encoded answer: an answer the provider accepted is the
// caller's byte for byte.
func FuzzUnchangedAnswerReachesTheCallerByteForByte(f *testing.F) {
	for _, s := range []string{
		`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
		"{ \"choices\" : [ { \"message\" : { \"content\" : \"\\u00e9\\ud83d\\ude42\\n\" } , \"finish_reason\" : \"length\" } ] ,\n\"x\":[1,2.5e3,null,true,{}]}\n",
		`{"choices":[{"index":1,"message":{"content":"b"}},{"index":0,"message":{"content":"a","refusal":"r"}}],"service_tier":"flex","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":1}}}`,
		`{"choices":[{"message":{"content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"Hi"}]},"finish_reason":"stop"}],"error":null}`,
		`{"choices":[{"message":{"content":"cut"},"finish_reason":"error"}]}`,
		`{"error":{"message":"no","type":"server_error"}}`,
		`{"choices":[]}`,
		`[1]`,
	} {
		f.Add([]byte(s))
	}
	var mu sync.Mutex
	var answer []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		body := answer
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	client := twopenai.NewHTTPClient(middleware.Chain(pass, pass))
	f.Fuzz(func(t *testing.T, body []byte) {
		mu.Lock()
		answer = body
		mu.Unlock()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			// Refused (garbage, an error object, no choice): the provider's
			// typed error.
			var pe *middleware.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("the server sent %q; the caller got %v, not a *middleware.ProviderError", body, err)
			}
			return
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			// Refused: an error object the caller can read, never the answer.
			var e struct {
				Error *struct{ Message string } `json:"error"`
			}
			if json.Unmarshal(got, &e) != nil || e.Error == nil || e.Error.Message == "" {
				t.Fatalf("status %d with a body that is no error object: %q", resp.StatusCode, got)
			}
			return
		}
		if !bytes.Equal(got, body) || resp.ContentLength != int64(len(body)) || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Fatalf("the server sent %q;\nthe caller read %q (Content-Length %d, header %q)", body, got, resp.ContentLength, resp.Header.Get("Content-Length"))
		}
	})
}
