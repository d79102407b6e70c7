package langchaingo_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestEventStreamAnswerToAPlainRequestIsMalformed: a server that answers a
// call that did not ask for a stream with a 200 event stream (a whole one,
// of a chunk and [DONE]) fails it as a malformed answer the provider
// produced — middleware.ErrMalformed with a *middleware.AnswerMalformedError
// cause, so that it is billed its estimate — whose message says the
// server sent an event stream, through twlc.New with NewTransport as
// through the go-openai Transport (before, through langchaingo, a bare
// JSON syntax error: not billed, and "invalid character 'd'" to read).
func TestEventStreamAnswerToAPlainRequestIsMalformed(t *testing.T) {
	const chunk = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, chunk)
	}))
	defer srv.Close()
	check := func(t *testing.T, err error) {
		t.Helper()
		var am *middleware.AnswerMalformedError
		if !errors.Is(err, middleware.ErrMalformed) || !errors.As(err, &am) || am.StatusCode != http.StatusOK {
			t.Fatalf("err %v (%T), want ErrMalformed caused by a 200 *AnswerMalformedError", err, err)
		}
		if !strings.Contains(err.Error(), "event stream") {
			t.Errorf("err %q does not say the server sent an event stream", err)
		}
	}
	t.Run("langchaingo", func(t *testing.T) {
		llm, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("k"), openai.WithModel("gpt-4o"),
			openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Client().Transport)}))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := twlc.New(twlc.Models{"gpt-4o": llm}, nil).GenerateContent(t.Context(), []llms.MessageContent{human("q")})
		if resp != nil {
			t.Errorf("an answer with the error: %+v", resp)
		}
		check(t, err)
	})
	t.Run("go-openai", func(t *testing.T) {
		cfg := goopenai.DefaultConfig("k")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(nil, twopenai.WithBaseTransport(srv.Client().Transport))
		_, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "q"}}})
		check(t, err)
	})
}
