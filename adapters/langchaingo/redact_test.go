package langchaingo_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// TestProviderErrorEchoingTheKeyIsRedactedThroughLangchaingo: langchaingo's
// openai backend copies the provider's error message into its error text;
// through twlc the error the caller gets, the slog lines and the run
// report hold no key, with and without NewTransport (without it, only
// key-shaped strings can be recognised).
func TestProviderErrorEchoingTheKeyIsRedactedThroughLangchaingo(t *testing.T) {
	const key = "sk-proj-Zq8XwL3vN0tQ5rYb7KpA2mE9hJc4UfGd"
	for _, capture := range []bool{true, false} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("transport=%v/stream=%v", capture, stream), func(t *testing.T) {
				srv := openaitest.NewServer(t)
				srv.On().Reply(openaitest.Reply{Status: http.StatusUnauthorized, Error: &openaitest.APIError{
					Type: "invalid_request_error", Code: "invalid_api_key",
					Message: "Incorrect API key provided: " + key,
				}})
				base := &http.Transport{}
				t.Cleanup(base.CloseIdleConnections)
				var rt http.RoundTripper = base
				if capture {
					rt = twlc.NewTransport(base)
				}
				inner, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken(key), openai.WithModel("gpt-4o"),
					openai.WithHTTPClient(&http.Client{Transport: rt}))
				if err != nil {
					t.Fatal(err)
				}
				var logs bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				pol, err := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
				if err != nil {
					t.Fatal(err)
				}
				llm := twlc.New(twlc.Models{"gpt-4o": inner}, llmwrap.MustBuild(pol, llmwrap.WithObserver(observe.NewSlog(logger))))
				ctx, run := middleware.StartRun(t.Context(), "redact")
				var opts []llms.CallOption
				if stream {
					opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
				}
				_, err = llm.GenerateContent(ctx, []llms.MessageContent{human("q")}, opts...)
				if err == nil {
					t.Fatal("the call succeeded")
				}
				for name, text := range map[string]string{"error": err.Error(), "slog": logs.String(), "run report": observe.Report(run)} {
					if strings.Contains(text, key) || strings.Contains(text, key[8:]) {
						t.Errorf("%s holds the key:\n%s", name, text)
					}
					if !strings.Contains(text, "[REDACTED]") {
						t.Errorf("%s does not show the masked failure:\n%s", name, text)
					}
				}
			})
		}
	}
}
