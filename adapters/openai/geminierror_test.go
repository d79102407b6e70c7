package openai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestGeminiErrorInAnArrayReachesGoOpenAI: Gemini's OpenAI-compatible
// endpoint wraps its error object in an array ([{"error":{...}}]). Through
// NewHTTPClient, go-openai returns an *openai.APIError with Gemini's
// message and status, streamed or not, and the chain's ProviderError
// carries the message and code and is classified from them. Before, the
// body was passed as it came: go-openai failed to decode it and returned a
// *RequestError whose message was "json: cannot unmarshal array into Go
// value of type openai.ErrorResponse", and the chain's error had no message.
func TestGeminiErrorInAnArrayReachesGoOpenAI(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		msg    string
		kind   error
	}{
		{400, `[{
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
  }
}]
`, "API key not valid. Please pass a valid API key.", middleware.ErrBadRequest},
		{429, ` [{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]`,
			"Resource has been exhausted (e.g. check quota).", middleware.ErrRateLimited},
	} {
		for _, stream := range []bool{false, true} {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json; charset=UTF-8")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			var chainErr error
			record := func(next middleware.Handler) middleware.Handler {
				return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
					resp, err := next.Handle(ctx, req)
					chainErr = err
					return resp, err
				})
			}
			cfg := openai.DefaultConfig("test")
			cfg.BaseURL = hs.URL + "/v1beta/openai"
			base := &http.Transport{}
			cfg.HTTPClient = twopenai.NewHTTPClient(record, twopenai.WithBaseTransport(base))
			c := openai.NewClientWithConfig(cfg)
			req := openai.ChatCompletionRequest{Model: "gemini-2.0-flash", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}
			var err error
			if stream {
				var st *openai.ChatCompletionStream
				if st, err = c.CreateChatCompletionStream(context.Background(), req); err == nil {
					_, err = st.Recv()
					st.Close()
				}
			} else {
				_, err = c.CreateChatCompletion(context.Background(), req)
			}
			base.CloseIdleConnections()
			hs.Close()
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.Message != tc.msg || ae.HTTPStatusCode != tc.status {
				t.Errorf("status %d, stream %t: go-openai error %v (%T), want an APIError %q of status %d", tc.status, stream, err, err, tc.msg, tc.status)
			}
			var pe *middleware.ProviderError
			if !errors.As(chainErr, &pe) || pe.Message != tc.msg || pe.Code != fmt.Sprint(tc.status) || !errors.Is(pe, tc.kind) {
				t.Errorf("status %d, stream %t: chain error %#v, want a ProviderError of %v with the message and code", tc.status, stream, pe, tc.kind)
			}
		}
	}
}
