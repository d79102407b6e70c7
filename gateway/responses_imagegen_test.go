package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// TestGatewayChargesTheImageGenerationTool: a Responses call with the
// hosted image_generation tool makes images the provider bills apart from
// the answer's usage (tool_usage.image_gen: the image model's tokens,
// $0.04 a 1024×1024 image of gpt-image-1 at medium quality). Under a
// USD budget, the call must be either refused before it is sent (its
// fees cannot be priced) or charged more than its tokens (1,000 input and
// 200 output tokens of gpt-4o-mini: $0.00027). Today it is sent and
// charged its tokens alone: the images escape the budget.
func TestGatewayChargesTheImageGenerationTool(t *testing.T) {
	t.Skip("unfixed: the image_generation tool's images (tool_usage.image_gen) are neither reserved nor charged")
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
	e := embeddingsGateway(t, up, "10")
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	_, err := oc.Responses.New(t.Context(), responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Draw the rack of web-1.")},
		Tools: []responses.ToolUnionParam{{OfImageGeneration: &responses.ToolImageGenerationParam{}}}})
	if err != nil {
		if calls.Load() != 0 {
			t.Fatalf("refused after it was sent: %v", err)
		}
		return // refused before it was sent
	}
	if s := e.spend(t); s.SpentUSD == "0.000270" {
		t.Fatalf("spent $%s: the call's tokens alone, its image charged nothing", s.SpentUSD)
	}
}
