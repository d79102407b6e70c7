package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// TestGatewayChargesTheImageGenerationTool: a Responses call with the
// hosted image_generation tool makes images the provider bills apart from
// the answer's usage (tool_usage.image_gen: the image model's tokens,
// about $0.04 a 1024×1024 image of gpt-image-1 at medium quality), at a
// price the catalog does not know. Under a USD budget the call is refused
// before it is sent, unless the team's policy declares the tool's fee per
// image (tool_calls.image_generation): then each image the answer made is
// charged it, on top of the call's tokens (1,000 input and 200 output
// tokens of gpt-4o-mini: $0.00027). Before, the call was sent and charged
// its tokens alone: the images escaped the budget.
func TestGatewayChargesTheImageGenerationTool(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini-2024-07-18",`+
			`"tools":[{"type":"image_generation","model":"gpt-image-1","quality":"medium","size":"1024x1024"}],`+
			`"output":[{"type":"image_generation_call","id":"ig_1","status":"completed","result":"iVBORw0KGgo="},`+
			`{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Here it is.","annotations":[]}]}],`+
			`"usage":{"input_tokens":1000,"output_tokens":200,"total_tokens":1200},`+
			`"tool_usage":{"image_gen":{"input_tokens":50,"input_tokens_details":{"image_tokens":0,"text_tokens":50},"output_tokens":1056,"total_tokens":1106},"web_search":{"num_requests":0}}}`)
	}))
	t.Cleanup(up.Close)
	draw := func(e *env) error {
		oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
		_, err := oc.Responses.New(t.Context(), responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Draw the rack of web-1.")},
			Tools: []responses.ToolUnionParam{{OfImageGeneration: &responses.ToolImageGenerationParam{}}}})
		return err
	}

	t.Run("no price: refused before it is sent", func(t *testing.T) {
		e := embeddingsGateway(t, up, "10")
		err := draw(e)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "tool_not_priced" || !strings.Contains(apiErr.Message, "image_generation") {
			t.Fatalf("error %v, want a 400 tool_not_priced naming image_generation", err)
		}
		if n := calls.Load(); n != 0 {
			t.Fatalf("the upstream got %d calls, want none", n)
		}
	})

	t.Run("priced by the policy: each image charged its fee", func(t *testing.T) {
		pols := map[string]string{
			"default.yaml": "version: 1\nname: default\n",
			"devops.yaml": `version: 1
name: devops
models:
  gpt-4o-mini: {provider: openai, input_per_1m: 0.15, output_per_1m: 0.60, tool_calls: {image_generation: 0.04}}
budget:
  team: {period: monthly, max_usd: 10}
`,
		}
		t.Setenv(upstreamEnv, upstreamKey)
		e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
		if err := draw(e); err != nil {
			t.Fatal(err)
		}
		if s := e.spend(t); s.SpentUSD != "0.040270" {
			t.Fatalf("spent $%s, want $0.040270: the call's tokens ($0.00027) and its image ($0.04)", s.SpentUSD)
		}
	})
}
