package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayRateLimitRetryAfterIsNeverEarly: the gateway's own 429
// rate_limit_exceeded says when to come back in Retry-After-Ms, which
// openai-go (and the Node package) read before Retry-After: rounded up,
// a client that waits that long is admitted. Under rpm: 7 (a request
// every 8.571428…s) the second call is refused and retried by openai-go
// once, after the wait the gateway said, and answered. Before, the wait
// was truncated to the millisecond (8571): the retry came a fraction of a
// millisecond early, was refused again, and the client gave up.
func TestGatewayRateLimitRetryAfterIsNeverEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := openaitest.New()
		up.Default(openaitest.Text("ok"))
		pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
			"devops.yaml": "version: 1\nname: devops\nrate_limits:\n  on_limit: reject\n  models:\n    gpt-4o-mini: {rpm: 7}\n"}
		t.Setenv(upstreamEnv, upstreamKey)
		srv, tr, served := servePipe(t, writeFiles(t, up.URL, pols, ""), up.Transport(), slog.New(slog.DiscardHandler))
		defer func() {
			tr.CloseIdleConnections()
			_ = srv.Shutdown(context.Background())
			<-served
		}()
		var waits []string
		record := option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			resp, err := next(r)
			if err == nil && resp.StatusCode == http.StatusTooManyRequests {
				waits = append(waits, resp.Header.Get("Retry-After-Ms"))
			}
			return resp, err
		})
		oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"),
			option.WithHTTPClient(&http.Client{Transport: tr}), option.WithMaxRetries(1), record)
		params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
		if _, err := oc.Chat.Completions.New(t.Context(), params); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c, err := oc.Chat.Completions.New(t.Context(), params)
		if err != nil || c.Choices[0].Message.Content != "ok" {
			t.Errorf("the second call, retried after the gateway's Retry-After-Ms %q: %v", waits, err)
		}
		if len(waits) != 1 {
			t.Fatalf("429s seen: %q, want one", waits)
		}
		ms, _ := strconv.Atoi(waits[0])
		if took := time.Since(start); took < time.Duration(ms)*time.Millisecond || ms < 8571 || ms > 8572 {
			t.Errorf("Retry-After-Ms %d, retried after %v: want the wait of rpm 7, 8.571428…s, rounded up", ms, took)
		}
	})
}
