package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// stringCount is the count a string holds as the OpenAI wire's readers
// read it: an integer, else a finite number within the int64 range
// rounded up; ok is false when it holds none.
func stringCount(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f >= math.MaxInt64 || f < math.MinInt64 {
		return 0, false
	}
	return int64(math.Ceil(f)), true
}

// FuzzUsageCountInAString: an answer whose prompt_tokens is any string
// (a number written in a string, as some servers write counts, or no
// number at all: "abc", "1e20", twenty nines) beside 5 completion
// tokens, through go-openai and NewHTTPClient, is billed the count the
// string holds when it holds one from 0 to middleware.MaxCount, exactly
// and unflagged (a negative one, or one beyond MaxCount, is no provider's
// count: billed the estimate, flagged); otherwise the answer is a middleware.ErrMalformed error and
// the call is billed its estimated input, flagged as an estimate — never
// an input of 0 tokens billed as the provider's count.
func FuzzUsageCountInAString(f *testing.F) {
	for _, s := range []string{"7000", " 7000 ", "7000.5", "1.2e1", "-3", "abc", "", "1e20", "99999999999999999999", "NaN", "Inf", "0x10"} {
		f.Add(s)
	}
	var mu sync.Mutex
	body := ""
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b := body
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(b))
	}))
	f.Cleanup(ts.Close)
	var facts middleware.CallFacts
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if fin, ok := e.(middleware.CallFinished); ok {
			mu.Lock()
			facts = fin.Facts
			mu.Unlock()
		}
	})
	pol := policies.Default()
	calls := 0
	f.Fuzz(func(t *testing.T, s string) {
		calls++ // a question of its own: never a cache hit
		// A chain of its own: the breaker the malformed answers of earlier
		// inputs opened does not refuse this one.
		chain := llmwrap.MustBuild(pol, llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
		cfg := openai.DefaultConfig("test-key")
		cfg.BaseURL = ts.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(chain)
		client := openai.NewClientWithConfig(cfg)
		q, err := json.Marshal(s)
		if err != nil {
			t.Skip()
		}
		mu.Lock()
		body = `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}],"usage":{"prompt_tokens":` +
			string(q) + `,"completion_tokens":5}}`
		facts = middleware.CallFacts{}
		mu.Unlock()
		_, callErr := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 100,
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "Check disk " + strconv.Itoa(calls) + "."}}})
		mu.Lock()
		defer mu.Unlock()
		if len(facts.Attempts) == 0 {
			t.Fatalf("prompt_tokens %s: no attempt billed (err %v)", q, callErr)
		}
		a := facts.Attempts[len(facts.Attempts)-1]
		n, ok := stringCount(s)
		switch {
		case ok && n >= 0 && n <= middleware.MaxCount:
			if a.Estimated || a.Usage.InputTokens != n || a.Usage.OutputTokens != 5 {
				t.Fatalf("prompt_tokens %s: billed %+v (estimated %v), want %d input and 5 output tokens, the provider's count", q, a.Usage, a.Estimated, n)
			}
		case ok: // a negative count, or one beyond middleware.MaxCount, is no count: billed the estimate
			if !a.Estimated || a.Usage.InputTokens <= 0 {
				t.Fatalf("prompt_tokens %s: billed %+v (estimated %v), want the estimate", q, a.Usage, a.Estimated)
			}
		default:
			if !a.Estimated || a.Usage.InputTokens <= 0 || !errors.Is(callErr, middleware.ErrMalformed) {
				t.Fatalf("prompt_tokens %s, no count: billed %+v (estimated %v), err %v; want a middleware.ErrMalformed error billed the estimated input, flagged",
					q, a.Usage, a.Estimated, callErr)
			}
		}
	})
}
