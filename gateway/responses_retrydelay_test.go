package gateway_test

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestGatewayResponsesHonoursGeminiRetryDelay: a Responses call (openai-go)
// whose first request got Gemini's 429 (RESOURCE_EXHAUSTED, no
// Retry-After, the wait in the body's google.rpc.RetryInfo retryDelay:
// "3s") is retried (fallback.retry) after that wait, not after the
// layer's own backoff (within 2ms before). (Fake time: synctest.)
func TestGatewayResponsesHonoursGeminiRetryDelay(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var times []time.Time
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			mu.Lock()
			times = append(times, time.Now())
			n := len(times)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			if n == 1 {
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = io.WriteString(w, `[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED",`+
					`"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}]`)
				return
			}
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],"usage":{"input_tokens":10,"output_tokens":1,"total_tokens":11}}`)
		})
		e := retryEnv(t, `version: 1
name: devops
fallback:
  retry: {max_attempts: 2, base_delay: 1ms, max_delay: 10s}
`, up)
		if _, err := pipeClient(e).Responses.New(t.Context(), disksCheck(100)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(times) != 2 {
			t.Fatalf("%d upstream requests, want 2", len(times))
		}
		if gap := times[1].Sub(times[0]); gap < 3*time.Second {
			t.Errorf("retried %v after a 429 asking for 3s (retryDelay)", gap)
		}
	})
}
