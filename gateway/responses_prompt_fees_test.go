package gateway_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// TestGatewayChargesTheHostedToolFeesOfAStoredPrompt: a Responses call
// that names a stored prompt runs the tools the prompt holds — a web
// search among them — which the request does not show; the provider
// bills each search all the same. Through openai-go, streamed or not, the
// call is charged its tokens (1,000 input and 200 output tokens of
// gpt-4o-mini: $0.00027) and each web search call of its answer at the
// fee of the version the answer's tools list ($0.01 a web_search, $0.025
// a web_search_preview), or the dearer when the answer lists none.
// Before, the searches of a prompt's tools were charged nothing.
func TestGatewayChargesTheHostedToolFeesOfAStoredPrompt(t *testing.T) {
	var calls atomic.Int64
	up := hostedToolsUpstream(t, &calls)
	for _, tc := range []struct {
		name, tools, want string
	}{
		{"web search", `[{"type":"web_search"}]`, "0.020270"},
		{"web search preview", `[{"type":"web_search_preview"}]`, "0.050270"},
		{"no tools listed", ``, "0.050270"},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprint(tc.name, ", stream=", stream), func(t *testing.T) {
				e := embeddingsGateway(t, up, "10")
				oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
				params := responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
					Prompt:   responses.ResponsePromptParam{ID: "pmpt_news", Variables: map[string]responses.ResponsePromptVariableUnionParam{"topic": {OfString: openai.String("disks")}}},
					Metadata: shared.Metadata{"web": "2", "tools": tc.tools}}
				if stream {
					st := oc.Responses.NewStreaming(t.Context(), params)
					for st.Next() {
					}
					if err := st.Err(); err != nil {
						t.Fatal(err)
					}
					_ = st.Close()
				} else if _, err := oc.Responses.New(t.Context(), params); err != nil {
					t.Fatal(err)
				}
				if s := e.spend(t); s.SpentUSD != tc.want || s.SpentTokens != 1200 {
					t.Fatalf("spent $%s and %d tokens, want $%s and 1200", s.SpentUSD, s.SpentTokens, tc.want)
				}
			})
		}
	}
}
