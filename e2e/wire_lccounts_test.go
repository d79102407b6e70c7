package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestLangchaingoCountsTheBackendCannotHold: an answer whose usage counts
// or created time langchaingo's backend cannot decode into its Go types
// (a count written as a float, the created time as a string or, in a plain
// answer, as a float), through the adapter (twlc.NewTransport installed):
// an integral count is billed as the integer, exactly (never through a
// float64), a fraction rounded up, and the answer is a success; a created
// time that is no number is dropped. A count that is no count (negative,
// beyond int range) leaves the call a malformed answer, billed an
// estimate, flagged; a count beyond middleware.MaxCount (2^50), read, is
// no provider's count either: the answer is a success, billed an
// estimate, flagged. (Such answers failed with ErrMalformed, billed an
// estimate, where the go-openai transport bills the provider's count.)
func TestLangchaingoCountsTheBackendCannotHold(t *testing.T) {
	const (
		plain  = `{"id":"u","object":"chat.completion","created":%CREATED%,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":%USAGE%}`
		first  = `data: {"id":"u","object":"chat.completion.chunk","created":%CREATED%,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}` + "\n\n"
		usage  = `data: {"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":%USAGE%}` + "\n\n"
		done   = "data: [DONE]\n\n"
		u12p3  = `{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}`
		floats = `{"prompt_tokens":1.2e1,"completion_tokens":3.0,"total_tokens":15.0}`
	)
	type bill struct{ in, out, cached int64 }
	for _, tc := range []struct {
		name          string
		stream        bool
		created, used string
		want          *bill // nil: malformed, billed an estimate; zero: a success, billed an estimate
	}{
		{"plain/integral floats", false, "1", floats, &bill{12, 3, 0}},
		{"plain/fractions rounded up", false, "1", `{"prompt_tokens":11.2,"completion_tokens":2.5,"total_tokens":13.7}`, &bill{12, 3, 0}},
		{"plain/cached count a float", false, "1", `{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4.0}}`, &bill{12, 3, 4}},
		{"plain/beyond 2^53, no count", false, "1", `{"prompt_tokens":9007199254740993.0,"completion_tokens":3,"total_tokens":9007199254740996}`, &bill{}},
		{"plain/created a string", false, `"1700000000"`, u12p3, &bill{12, 3, 0}},
		{"plain/created no number", false, `"yesterday"`, u12p3, &bill{12, 3, 0}},
		{"plain/created a float", false, "1.7e9", u12p3, &bill{12, 3, 0}},
		{"plain/negative float", false, "1", `{"prompt_tokens":-5.0,"completion_tokens":3,"total_tokens":-2}`, nil},
		{"plain/beyond int range", false, "1", `{"prompt_tokens":1e30,"completion_tokens":3,"total_tokens":3}`, nil},
		{"stream/integral floats", true, "1", floats, &bill{12, 3, 0}},
		{"stream/fractions rounded up", true, "1", `{"prompt_tokens":11.2,"completion_tokens":2.5,"total_tokens":13.7}`, &bill{12, 3, 0}},
		{"stream/reasoning count a float", true, "1", `{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"completion_tokens_details":{"reasoning_tokens":2.0}}`, &bill{12, 3, 0}},
		{"stream/created a string", true, `"1700000000"`, u12p3, &bill{12, 3, 0}},
		{"stream/created no number", true, `true`, u12p3, &bill{12, 3, 0}},
		{"stream/created beyond float64", true, `1e999`, u12p3, &bill{12, 3, 0}},
		{"stream/negative float", true, "1", `{"prompt_tokens":-5.0,"completion_tokens":3,"total_tokens":-2}`, nil},
		{"stream/beyond int range", true, "1", `{"prompt_tokens":9.3e18,"completion_tokens":3,"total_tokens":3}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wiregen.Case{N: 1, Stream: tc.stream, IncludeUsage: tc.stream}
			if tc.stream {
				body := strings.ReplaceAll(first, "%CREATED%", tc.created) + strings.ReplaceAll(usage, "%USAGE%", tc.used) + done
				c.Wire = wiregen.Wire{Stream: true, ContentType: "text/event-stream", Body: []byte(body), Done: true}
			} else {
				body := strings.ReplaceAll(strings.ReplaceAll(plain, "%CREATED%", tc.created), "%USAGE%", tc.used)
				c.Wire = wiregen.Wire{ContentType: "application/json", Body: []byte(body)}
			}
			srv := &wiregen.Server{}
			srv.Set(c.Wire)
			ts := httptest.NewServer(srv)
			defer ts.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			obs := new(recorder) // the calls' facts: obs.callFacts()
			chain := llmwrap.MustBuild(policies.Default(), llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			inner, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"), lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(base)}))
			if err != nil {
				t.Fatal(err)
			}
			got := lcCall(context.Background(), twlc.New(twlc.Models{"gpt-4o-mini": inner}, chain), c, tc.name)
			switch {
			case tc.want != nil && got.err != nil:
				t.Errorf("the answer failed: %v", got.err)
			case tc.want != nil && (len(got.choices) != 1 || got.choices[0].Content != "Hi"):
				t.Errorf("read %+v, want Hi", got.choices)
			case tc.want == nil && !errors.Is(got.err, middleware.ErrMalformed):
				t.Errorf("read %+v, %v; want ErrMalformed", got.choices, got.err)
			}
			facts := obs.callFacts()
			if len(facts) != 1 || len(facts[0].Attempts) == 0 {
				t.Fatalf("calls %+v", facts)
			}
			a := facts[0].Attempts[len(facts[0].Attempts)-1]
			u := a.Usage
			switch {
			case (tc.want == nil || *tc.want == bill{}) && (!a.Estimated || u.InputTokens <= 0 || u.InputTokens > middleware.MaxCount):
				t.Errorf("billed %+v (estimated %t), want an estimate, flagged", u, a.Estimated)
			case tc.want != nil && *tc.want != bill{} && (a.Estimated || u.InputTokens != tc.want.in || u.OutputTokens != tc.want.out || u.CachedInputTokens != tc.want.cached):
				t.Errorf("billed %+v (estimated %t), want %+v", u, a.Estimated, *tc.want)
			}
		})
	}
}
