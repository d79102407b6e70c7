package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tiktoken-go/tokenizer"
)

// TestGatewayResponsesReserveTheirStructuredOutputSchema: a Responses
// call with Structured Outputs (text.format of type json_schema) is
// billed its schema as input — the provider gives the schema to the
// model as it gives it the tools' definitions —, so its reservation
// holds the schema's tokens too: a call whose answer reaches its
// max_output_tokens is never billed more than was reserved, and a budget
// that affords the reservation is never overshot. Through openai-go,
// against an upstream that bills the input's and the schema's tokens
// (o200k_base, gpt-4o-mini's encoding) and answers the output's limit.
// Before, the schema was not counted: a call of a 40-property schema was
// reserved about a tenth of its bill.
func TestGatewayResponsesReserveTheirStructuredOutputSchema(t *testing.T) {
	codec, err := tokenizer.Get(tokenizer.O200kBase)
	if err != nil {
		t.Fatal(err)
	}
	arrived, release := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Input           string          `json:"input"`
			Text            json.RawMessage `json:"text"`
			MaxOutputTokens int64           `json:"max_output_tokens"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil || req.MaxOutputTokens == 0 {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		in, _ := codec.Count(req.Input)
		schema, _ := codec.Count(string(req.Text))
		in += schema
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"resp_1","object":"response","created_at":1,"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},`+
			`"model":"gpt-4o-mini-2024-07-18","output":[{"type":"message","id":"msg_1","status":"incomplete","role":"assistant","content":[{"type":"output_text","text":"{\"p0\":\"","annotations":[]}]}],`+
			`"usage":{"input_tokens":%d,"input_tokens_details":{"cached_tokens":0},"output_tokens":%d,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":%d}}`,
			in, req.MaxOutputTokens, int64(in)+req.MaxOutputTokens)
	}))
	t.Cleanup(up.Close)
	e := embeddingsGateway(t, up, "1")

	props := map[string]any{}
	var required []string
	for i := range 40 {
		p := "p" + strconv.Itoa(i)
		props[p] = map[string]any{"type": "string", "description": fmt.Sprintf("The state of the disk number %d of the host, as the operator would read it on the dashboard of the fleet.", i)}
		required = append(required, p)
	}
	schema := map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	done := make(chan error, 1)
	go func() {
		_, err := oc.Responses.New(t.Context(), responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(16),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks of web-1.")},
			Text: responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigUnionParam{OfJSONSchema: &responses.ResponseFormatTextJSONSchemaConfigParam{
				Name: "disks", Schema: schema, Strict: openai.Bool(true)}}}})
		done <- err
	}()
	<-arrived
	reserved := e.spend(t).ReservedUSD
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	spent := e.spend(t).SpentUSD
	r, _ := strconv.ParseFloat(reserved, 64)
	s, _ := strconv.ParseFloat(spent, 64)
	if s == 0 || s > r {
		t.Fatalf("reserved %s USD, billed %s USD: the reservation must hold what the provider bills", reserved, spent)
	}
}
