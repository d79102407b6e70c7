package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestOpenAIGoDoesNotRetryWhatTheChainRetried: openai-go retries a 5xx
// (and 408, 409, 429) twice by default. When the chain has retried the
// call itself (a retry policy of 3 attempts), its error answer says
// x-should-retry: false, and the provider sees the 3 attempts the policy
// allows, not 3 per attempt of the SDK (9, before). A chain that sent the
// call once leaves the SDK's own retries as they are without tokenwise.
func TestOpenAIGoDoesNotRetryWhatTheChainRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		chain func(ev *events) middleware.Middleware
		want  int
	}{
		{"chain retries", func(ev *events) middleware.Middleware {
			return chain(ev, retry.Config{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond})
		}, 3},
		{"chain sends once", func(*events) middleware.Middleware { return pass }, 3},
		{"bare client", nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On().Reply(openaitest.ServerError())
				rt := srv.Transport()
				if tc.chain != nil {
					rt = twopenai.NewTransport(tc.chain(&events{}), twopenai.WithBaseTransport(rt))
				}
				c := oai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("sk-test"),
					option.WithHTTPClient(&http.Client{Transport: rt})) // the SDK's default retries
				_, err := c.Chat.Completions.New(context.Background(), oai.ChatCompletionNewParams{Model: "gpt-4o",
					Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Check the disk.")}})
				var ae *oai.Error
				if !errors.As(err, &ae) || ae.StatusCode != http.StatusInternalServerError {
					t.Fatalf("err = %v, want the provider's 500 as *openai.Error", err)
				}
				if n := srv.Count(); n != tc.want {
					t.Errorf("the provider saw %d attempts, want %d", n, tc.want)
				}
			})
		})
	}
}
