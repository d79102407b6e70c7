package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// usageUpstream answers POST /v1/responses with a completed response, JSON
// or streamed, whose usage member is usage (verbatim), and POST
// /v1/embeddings with one vector and the same usage member.
func usageUpstream(t *testing.T, usage string) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream bool `json:"stream"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		if r.URL.Path == "/v1/embeddings" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"text-embedding-3-small","usage":`+usage+`}`)
			return
		}
		resp := func(status, usage string) string {
			return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o-mini-2024-07-18",` +
				`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"The disks are fine.","annotations":[]}]}],` +
				`"usage":` + usage + `}`
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, resp("completed", usage))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":%s}\n\n", resp("in_progress", "null"))
		fmt.Fprintf(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"The disks are fine.\"}\n\n")
		fmt.Fprintf(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":%s}\n\n", resp("completed", usage))
	}))
	t.Cleanup(up.Close)
	return up
}

// responsesCall makes one Responses call through e with openai-go,
// streamed or not, and returns its error and the team's spend after it.
func responsesCall(t *testing.T, e *env, stream bool) (usd string, tokens int64, err error) {
	t.Helper()
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	params := responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks of web-1.")}}
	if stream {
		st := oc.Responses.NewStreaming(t.Context(), params)
		completed := false
		for st.Next() {
			completed = completed || st.Current().Type == "response.completed"
		}
		err = st.Err()
		_ = st.Close()
		if err == nil && !completed {
			err = fmt.Errorf("the stream ended without its response.completed")
		}
	} else {
		var r *responses.Response
		r, err = oc.Responses.New(t.Context(), params)
		if err == nil && r.OutputText() != "The disks are fine." {
			err = fmt.Errorf("answer %q", r.OutputText())
		}
	}
	s := e.spend(t)
	return s.SpentUSD, s.SpentTokens, err
}

// TestGatewayResponsesCountsWrittenAsFloatsAreBilled: a Responses answer
// whose usage writes its counts as floats (1000.0), as some
// OpenAI-compatible servers write numbers, is billed those counts, as a
// chat answer's are (600 uncached input, 400 cached and 200 output
// tokens of gpt-4o-mini: $0.000240); a stream of such an answer, complete
// with its response.completed, is read by openai-go as complete. Before,
// the response object did not decode: the answer was charged its
// reservation, and the complete stream was ended with the gateway's
// stream_cut error event, an error to the client.
func TestGatewayResponsesCountsWrittenAsFloatsAreBilled(t *testing.T) {
	const usage = `{"input_tokens":1000.0,"input_tokens_details":{"cached_tokens":4.0e2},"output_tokens":200.0,"output_tokens_details":{"reasoning_tokens":0.0},"total_tokens":1200.0}`
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			e := embeddingsGateway(t, usageUpstream(t, usage), "1")
			usd, tok, err := responsesCall(t, e, stream)
			if err != nil {
				t.Fatalf("a complete answer: %v", err)
			}
			if usd != "0.000240" || tok != 1200 {
				t.Fatalf("spent %s USD, %d tokens; the provider billed 0.000240 USD, 1200 tokens", usd, tok)
			}
		})
	}
}

// TestGatewayResponsesCountsWrittenAsStringsAreBilled: a Responses answer
// whose usage writes its counts as strings ("1000", as vLLM behind some
// proxies writes them) is billed those counts, as a chat answer's are (600
// uncached input, 400 cached and 200 output tokens of gpt-4o-mini:
// $0.000240, 1,200 tokens), streamed or not. Before, the usage did not
// decode and the call was charged its reservation ($0.000305, 532 tokens:
// the estimated prompt and the 500 max_output_tokens) whatever the
// upstream billed.
func TestGatewayResponsesCountsWrittenAsStringsAreBilled(t *testing.T) {
	const usage = `{"input_tokens":"1000","input_tokens_details":{"cached_tokens":" 400 "},"output_tokens":"200","output_tokens_details":{"reasoning_tokens":"0"},"total_tokens":"1.2e3"}`
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			e := embeddingsGateway(t, usageUpstream(t, usage), "1")
			usd, tok, err := responsesCall(t, e, stream)
			if err != nil {
				t.Fatalf("a complete answer: %v", err)
			}
			if usd != "0.000240" || tok != 1200 {
				t.Fatalf("spent %s USD, %d tokens; the provider billed 0.000240 USD, 1200 tokens", usd, tok)
			}
		})
	}
}

// TestGatewayResponsesUnreadableFinalEventEndsNoStreamAsCut: a
// Responses stream that ends with its response.completed, whose response
// the gateway cannot read (a count written as a string of words), is complete:
// openai-go reads it to its end without an error, and the call is charged
// as an answer without usage is (its reservation), streamed or not.
// Before, the gateway took the stream for one cut before its final event
// and added its stream_cut error event after the response.completed.
func TestGatewayResponsesUnreadableFinalEventEndsNoStreamAsCut(t *testing.T) {
	for _, stream := range []bool{false, true} {
		none, noneTok, _ := responsesCall(t, embeddingsGateway(t, usageUpstream(t, "null"), "1"), stream)
		usd, tok, err := responsesCall(t, embeddingsGateway(t, usageUpstream(t, `{"input_tokens":"a thousand","output_tokens":200,"total_tokens":1200}`), "1"), stream)
		if err != nil {
			t.Fatalf("stream %t: a complete answer: %v", stream, err)
		}
		if none == "0.000000" || usd != none || tok != noneTok {
			t.Errorf("stream %t: charged %s USD, %d tokens; an answer without usage is charged %s USD, %d tokens", stream, usd, tok, none, noneTok)
		}
	}
}

// TestGatewayResponsesUsageOfZerosIsNoUsage: a Responses answer whose
// usage counts nothing (zeros, or an object without the counts: servers
// that do not count) is charged as one without usage — its reservation,
// the provider billed the call —, as a chat answer of zero usage is
// billed its estimate; never charged nothing, which would let a team's
// calls spend past its budget. Before, it was settled at zero.
func TestGatewayResponsesUsageOfZerosIsNoUsage(t *testing.T) {
	for _, stream := range []bool{false, true} {
		none, noneTok, _ := responsesCall(t, embeddingsGateway(t, usageUpstream(t, "null"), "1"), stream)
		if none == "0.000000" || noneTok == 0 {
			t.Fatalf("stream %t: an answer without usage charged %s USD, %d tokens", stream, none, noneTok)
		}
		for _, usage := range []string{`{"input_tokens":0,"output_tokens":0,"total_tokens":0}`, `{}`,
			`{"input_tokens":0,"input_tokens_details":{"cached_tokens":0},"output_tokens":0,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":0}`} {
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
}

// TestGatewayEmbeddingsUsageOfZerosIsChargedTheEstimate: an embeddings
// answer, read by openai-go, whose usage counts nothing (zeros, or an
// object without the counts) is charged the estimate of its input (2
// tokens of "hello world"), as one without usage is; and one whose counts
// are written as floats is charged those counts. Before, the first was
// charged nothing, and the second its estimate.
func TestGatewayEmbeddingsUsageOfZerosIsChargedTheEstimate(t *testing.T) {
	for usage, want := range map[string]int64{
		`{"prompt_tokens":0,"total_tokens":0}`: 2,
		`{}`:                                   2,
		`{"prompt_tokens":7.0,"total_tokens":7.0}`: 7,
		`{"prompt_tokens":7,"total_tokens":7}`:     7,
		`{"prompt_tokens":"7","total_tokens":"7"}`: 7,
	} {
		e := embeddingsGateway(t, usageUpstream(t, usage), "1")
		oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
		_, err := oc.Embeddings.New(t.Context(), openai.EmbeddingNewParams{Model: "text-embedding-3-small",
			Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello world")}})
		if err != nil {
			t.Fatalf("usage %s: %v", usage, err)
		}
		if s := e.spend(t); s.SpentTokens != want || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
			t.Errorf("usage %s: %+v; want %d tokens spent, nothing held", usage, s, want)
		}
	}
}

// TestGatewayResponsesStreamLabelledJSONIsAStream: a Responses stream
// that its upstream labels application/json (which openai-go reads as a
// stream all the same, as the chat adapters read a chat stream so
// labelled) is policed as the stream it is: complete, it is charged the
// usage of its response.completed; cut before it, openai-go reads the
// gateway's stream_cut error event. Before, it was read as a JSON answer
// that does not decode: charged its reservation, and a cut stream read by
// openai-go as a complete one.
func TestGatewayResponsesStreamLabelledJSONIsAStream(t *testing.T) {
	const usage = `{"input_tokens":1000,"input_tokens_details":{"cached_tokens":400},"output_tokens":200,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1200}`
	for _, cut := range []bool{false, true} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			resp := func(status, usage string) string {
				return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o-mini-2024-07-18",` +
					`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"The disks are fine.","annotations":[]}]}],` +
					`"usage":` + usage + `}`
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":%s}\n\n", resp("in_progress", "null"))
			fmt.Fprintf(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"The disks are fine.\"}\n\n")
			if !cut {
				fmt.Fprintf(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":%s}\n\n", resp("completed", usage))
			}
		}))
		e := embeddingsGateway(t, up, "1")
		usd, tok, err := responsesCall(t, e, true)
		switch {
		case !cut && err != nil:
			t.Errorf("a complete stream: %v", err)
		case !cut && (usd != "0.000240" || tok != 1200):
			t.Errorf("a complete stream: spent %s USD, %d tokens; the provider billed 0.000240 USD, 1200 tokens", usd, tok)
		case cut && (err == nil || !strings.Contains(err.Error(), "stream_cut")):
			t.Errorf("a cut stream read as %v; want the gateway's stream_cut error", err)
		}
		if cut {
			// A request the gateway cannot read (no model) of a team
			// without a budget, passed on outside the fallback chain: its
			// cut stream ends so too.
			t.Setenv(upstreamEnv, upstreamKey)
			free := serveFile(t, writeFiles(t, up.URL+"/v1", map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": "version: 1\nname: devops\n"}, ""))
			resp := free.do(t, "POST", "/v1/responses", devopsKey, `{"input":"Check the disks of web-1.","stream":true}`)
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if !strings.Contains(string(b), `"code":"stream_cut"`) {
				t.Errorf("a cut stream of a request without a model, passed on: %d %s; want it ended with the stream_cut event", resp.StatusCode, b)
			}
		}
		up.Close()
	}
}

// TestGatewayResponsesCacheWritesAreBilledAtTheirRate: a Responses answer
// whose usage counts input written to the provider's prompt cache
// (input_tokens_details.cache_write_tokens, the Responses API's member) is
// billed those tokens at the model's cache_write_per_1m, as a chat answer's
// prompt_tokens_details.cache_write_tokens is: 200 input tokens at $3, 800
// written at $3.75 and 200 output at $15 per 1M, $0.006600, plain and
// streamed. Before, the writes were billed as plain input ($0.006000).
func TestGatewayResponsesCacheWritesAreBilledAtTheirRate(t *testing.T) {
	const usage = `{"input_tokens":1000,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":800},"output_tokens":200,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1200}`
	for _, stream := range []bool{false, true} {
		up := usageUpstream(t, usage)
		t.Setenv(upstreamEnv, upstreamKey)
		e := serveFile(t, writeFiles(t, up.URL+"/v1", map[string]string{
			"default.yaml": "version: 1\nname: default\n",
			"devops.yaml": "version: 1\nname: devops\nmodels:\n  gpt-4o-mini: {provider: openai, input_per_1m: 3, cached_input_per_1m: 0.3, cache_write_per_1m: 3.75, output_per_1m: 15}\n" +
				"budget:\n  team: {period: monthly, max_usd: 1}\n",
		}, ""))
		usd, tok, err := responsesCall(t, e, stream)
		if err != nil {
			t.Fatalf("stream %t: %v", stream, err)
		}
		if usd != "0.006600" || tok != 1200 {
			t.Errorf("stream %t: spent %s USD, %d tokens; the provider billed 0.006600 USD, 1200 tokens", stream, usd, tok)
		}
	}
}

// TestGatewayResponsesEventOfSeveralDataLinesIsRead: a Responses stream
// whose final event's data comes in several data lines (which the SSE
// spec joins with line breaks, as openai-go does) is complete: openai-go
// reads it without an error, and the call is billed its usage (600
// uncached input, 400 cached and 200 output tokens of gpt-4o-mini:
// $0.000240). Before, the gateway read each data line apart, found no
// final event, ended the stream with its stream_cut error event and
// charged the reservation.
func TestGatewayResponsesEventOfSeveralDataLinesIsRead(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		resp := `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini-2024-07-18",` + "\ndata: " +
			`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"The disks are fine.","annotations":[]}]}],` + "\ndata:" +
			`"usage":{"input_tokens":1000,"input_tokens_details":{"cached_tokens":400},"output_tokens":200,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1200}}`
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"The disks are fine.\"}\n\n")
		fmt.Fprintf(w, "event: response.completed\r\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\r\ndata: \"response\":%s}\r\n\r\n", resp)
	}))
	defer up.Close()
	usd, tok, err := responsesCall(t, embeddingsGateway(t, up, "1"), true)
	if err != nil {
		t.Fatalf("a complete stream: %v", err)
	}
	if usd != "0.000240" || tok != 1200 {
		t.Fatalf("spent %s USD, %d tokens; the provider billed 0.000240 USD, 1200 tokens", usd, tok)
	}
}
