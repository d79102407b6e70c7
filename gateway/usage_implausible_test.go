package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// An upstream that reports 2^62 prompt tokens (a hostile or broken
// server: no call holds that many) gets no usage read from it: the call
// is billed its estimate and flagged as such, as one with a negative
// count is; the team's monthly budget of $1,000 is not emptied by one
// hello, and the next call is served. Before, the count settled at 2^50
// tokens and micro-dollars ($1.1 billion): the team's budget was spent to
// its cap and every later call of the month refused.
func TestGatewayImplausibleUsageDoesNotEmptyTheBudget(t *testing.T) {
	for _, tc := range []struct{ name, usage string }{
		{"prompt", `"usage":{"prompt_tokens":4611686018427387904,"completion_tokens":3,"total_tokens":4611686018427387907}`},
		{"completion", `"usage":{"prompt_tokens":9,"completion_tokens":4611686018427387904,"total_tokens":4611686018427387913}`},
		{"total", `"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":4611686018427387904}`},
		{"cached", `"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":4611686018427387904}}`},
		{"reasoning", `"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":4611686018427387904}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if bytes.Contains(body, []byte(`"stream":true`)) {
					w.Header().Set("Content-Type", "text/event-stream")
					_, _ = io.WriteString(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"ok!"},"finish_reason":null}]}`+"\n\n")
					_, _ = io.WriteString(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],`+tc.usage+"}\n\n")
					_, _ = io.WriteString(w, "data: [DONE]\n\n")
					return
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok!"},"finish_reason":"stop"}],%s}`, tc.usage)
			}))
			defer hs.Close()
			t.Setenv(upstreamEnv, upstreamKey)
			pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": "version: 1\nname: devops\nbudget: {team: {period: monthly, max_usd: 1000}}\n"}
			e := serveFile(t, writeFiles(t, hs.URL+"/v1", pols, ""))
			c := ownerClient(e.url, devopsKey)
			params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}}
			for i := range 2 {
				if _, err := c.Chat.Completions.New(context.Background(), params); err != nil {
					t.Fatalf("call %d (JSON): %v", i+1, err)
				}
				st := c.Chat.Completions.NewStreaming(context.Background(), params)
				for st.Next() {
				}
				if err := st.Err(); err != nil {
					t.Fatalf("call %d (stream): %v", i+1, err)
				}
			}
			sp := e.spend(t)
			usd, err := strconv.ParseFloat(sp.SpentUSD, 64)
			if err != nil || usd <= 0 || usd > 0.01 || sp.SpentTokens <= 0 || sp.SpentTokens > 10_000 {
				t.Errorf("four hellos whose usage is no count: the team spent $%s, %d tokens; want their estimate, a few tokens", sp.SpentUSD, sp.SpentTokens)
			}
		})
	}
}

// TestGatewayImplausibleResponsesAndEmbeddingsUsageIsNoUsage: a Responses
// answer (JSON or streamed) and an embeddings answer, read by openai-go,
// whose usage counts 2^62 tokens are charged as ones without usage — the
// Responses call its reservation, the embeddings call the 2 tokens of
// "hello world" it counted —, never a team's budget spent on one call.
func TestGatewayImplausibleResponsesAndEmbeddingsUsageIsNoUsage(t *testing.T) {
	for _, stream := range []bool{false, true} {
		none, noneTok, _ := responsesCall(t, embeddingsGateway(t, usageUpstream(t, "null"), "1"), stream)
		for _, usage := range []string{
			`{"input_tokens":4611686018427387904,"output_tokens":3,"total_tokens":4611686018427387907}`,
			`{"input_tokens":9,"output_tokens":4611686018427387904,"total_tokens":4611686018427387913}`,
			`{"input_tokens":9,"input_tokens_details":{"cached_tokens":4611686018427387904},"output_tokens":3,"total_tokens":12}`,
		} {
			usd, tok, err := responsesCall(t, embeddingsGateway(t, usageUpstream(t, usage), "1"), stream)
			if err != nil {
				t.Fatalf("stream %t, usage %s: %v", stream, usage, err)
			}
			if usd != none || tok != noneTok {
				t.Errorf("stream %t, usage %s: charged %s USD, %d tokens; an answer without usage is charged %s USD, %d tokens",
					stream, usage, usd, tok, none, noneTok)
			}
		}
	}
	e := embeddingsGateway(t, usageUpstream(t, `{"prompt_tokens":4611686018427387904,"total_tokens":4611686018427387904}`), "1")
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	if _, err := oc.Embeddings.New(t.Context(), openai.EmbeddingNewParams{Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello world")}}); err != nil {
		t.Fatal(err)
	}
	if s := e.spend(t); s.SpentTokens != 2 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Errorf("embeddings of 2^62 tokens: %+v; want the 2 tokens of its input spent, nothing held", s)
	}
}
