package gateway_test

import (
	"encoding/json"
	"fmt"
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

// numberedResponses is an upstream of the Responses API whose n-th answer
// says n (id resp_n, text "Answer n."), completed with 1,200 tokens of
// usage, or with the status the request's metadata names.
func numberedResponses(t *testing.T, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		var req struct {
			Metadata map[string]string `json:"metadata"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		status := "completed"
		if s := req.Metadata["status"]; s != "" {
			status = s
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"resp_%d","object":"response","created_at":1,"status":%q,"model":"gpt-4o-mini-2024-07-18",`+
			`"output":[{"type":"message","id":"msg_%d","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Answer %d.","annotations":[]}]}],`+
			`"usage":{"input_tokens":1000,"output_tokens":200,"total_tokens":1200}}`, n, status, n, n)
	}))
	t.Cleanup(up.Close)
	return up
}

// TestGatewayCachesTheResponsesAPI: a team whose policy caches has its
// Responses calls cached as its chat calls are. Through the official
// openai-go client, the same request again is answered from the cache —
// the first answer's bytes, marked X-Tokenwise-Cache: hit — without an
// upstream call or a charge to the team's budget; another request, or the
// same one to another team, is a miss. Nothing that would make a hit wrong
// is kept or served: a background response, a conversation, a
// stored prompt, a hosted tool (whose results and effects are the
// provider's each time), Cache-Control: no-store, an answer that is not
// completed; with deterministic_only, a request without temperature 0.
func TestGatewayCachesTheResponsesAPI(t *testing.T) {
	var calls atomic.Int64
	up := numberedResponses(t, &calls)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": `version: 1
name: devops
cache: {enabled: true, ttl: 1h}
budget:
  team: {period: monthly, max_usd: 1}
`,
		"payments.yaml": `version: 1
name: payments
cache: {enabled: true, ttl: 1h, deterministic_only: true}
`,
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))

	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	params := responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks of web-1.")}}
	var first *http.Response
	r, err := oc.Responses.New(t.Context(), params, option.WithResponseInto(&first))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "resp_1" || r.OutputText() != "Answer 1." || first.Header.Get("X-Tokenwise-Cache") != "" {
		t.Fatalf("first call: %s %q (cache header %q)", r.ID, r.OutputText(), first.Header.Get("X-Tokenwise-Cache"))
	}
	spent := e.spend(t)
	if spent.SpentTokens != 1200 {
		t.Fatalf("the first call spent %d tokens, want 1200", spent.SpentTokens)
	}
	var again *http.Response
	r, err = oc.Responses.New(t.Context(), params, option.WithResponseInto(&again))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "resp_1" || r.OutputText() != "Answer 1." || again.Header.Get("X-Tokenwise-Cache") != "hit" || calls.Load() != 1 {
		t.Fatalf("the same request: %s %q (cache header %q), %d upstream calls; want the first answer from the cache, 1 call",
			r.ID, r.OutputText(), again.Header.Get("X-Tokenwise-Cache"), calls.Load())
	}
	if s := e.spend(t); s.SpentTokens != spent.SpentTokens || s.SpentUSD != spent.SpentUSD || s.ReservedUSD != spent.ReservedUSD {
		t.Fatalf("a hit spent: %+v, before %+v", s, spent)
	}
	// Byte for byte the first answer.
	body := `{"model":"gpt-4o-mini","input":"Check the disks of web-2."}`
	a := e.do(t, "POST", "/v1/responses", devopsKey, body)
	ab, _ := io.ReadAll(a.Body)
	b := e.do(t, "POST", "/v1/responses", devopsKey, body)
	bb, _ := io.ReadAll(b.Body)
	if a.StatusCode != 200 || string(ab) != string(bb) || b.Header.Get("X-Tokenwise-Cache") != "hit" || calls.Load() != 2 {
		t.Fatalf("raw bodies: %d %s then %s (%q), %d calls", a.StatusCode, ab, bb, b.Header.Get("X-Tokenwise-Cache"), calls.Load())
	}

	// In a run's report, a hit is a call that spent nothing and saved
	// what the answer cost (1,000 input and 200 output tokens of
	// gpt-4o-mini: $0.00027).
	for range 2 {
		resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"Runbook?"}`, "X-Run-Id", "run-1")
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	var rep struct {
		Calls     int    `json:"calls"`
		CacheHits int    `json:"cache_hits"`
		CostUSD   string `json:"cost_usd"`
		SavedUSD  string `json:"saved_usd"`
	}
	if err := json.NewDecoder(e.do(t, "GET", "/v1/runs/run-1", devopsKey, "").Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Calls != 2 || rep.CacheHits != 1 || rep.CostUSD != "0.00027" || rep.SavedUSD != "0.00027" {
		t.Fatalf("run report %+v: want 2 calls, 1 hit, cost and saved $0.00027", rep)
	}

	// Each of these reaches the upstream twice: nothing kept or served.
	for _, tc := range []struct {
		name, body string
		hdr        []string
	}{
		{"background", `{"model":"gpt-4o-mini","input":"hi","background":true}`, nil},
		{"conversation", `{"model":"gpt-4o-mini","input":"hi","conversation":"conv_1"}`, nil},
		{"stored prompt", `{"model":"gpt-4o-mini","prompt":{"id":"pmpt_1"}}`, nil},
		{"web search", `{"model":"gpt-4o-mini","input":"news?","tools":[{"type":"web_search"}]}`, nil},
		{"mcp", `{"model":"gpt-4o-mini","input":"mail bob","tools":[{"type":"function","name":"f"},{"type":"mcp","server_label":"mail","server_url":"https://mail.example"}]}`, nil},
		{"no-store", `{"model":"gpt-4o-mini","input":"hi"}`, []string{"Cache-Control", "no-store"}},
		{"incomplete", `{"model":"gpt-4o-mini","input":"hi","metadata":{"status":"incomplete"}}`, nil},
		{"failed", `{"model":"gpt-4o-mini","input":"hi","metadata":{"status":"failed"}}`, nil},
	} {
		before := calls.Load()
		for i := range 2 {
			resp := e.do(t, "POST", "/v1/responses", devopsKey, tc.body, tc.hdr...)
			out, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Header.Get("X-Tokenwise-Cache") != "" {
				t.Fatalf("%s, call %d: %d %s (cache header %q)", tc.name, i, resp.StatusCode, out, resp.Header.Get("X-Tokenwise-Cache"))
			}
		}
		if got := calls.Load() - before; got != 2 {
			t.Fatalf("%s: %d upstream calls for two, want 2", tc.name, got)
		}
	}

	// Each team has its own answers: devops's cached request is a miss
	// for payments, then a hit of its own.
	det := `{"model":"gpt-4o-mini","input":"Check the disks of web-3.","temperature":0}`
	var cacheHeaders []string
	before := calls.Load()
	for _, key := range []string{devopsKey, devopsKey, paymentsKey, paymentsKey} {
		resp := e.do(t, "POST", "/v1/responses", key, det)
		_, _ = io.Copy(io.Discard, resp.Body)
		cacheHeaders = append(cacheHeaders, resp.Header.Get("X-Tokenwise-Cache"))
	}
	if got := strings.Join(cacheHeaders, ","); got != ",hit,,hit" || calls.Load()-before != 2 {
		t.Fatalf("devops, devops, payments, payments: cache headers %q, %d upstream calls; want \",hit,,hit\", 2", got, calls.Load()-before)
	}
	// deterministic_only (payments): a request without temperature 0 is
	// never kept.
	before = calls.Load()
	for range 2 {
		resp := e.do(t, "POST", "/v1/responses", paymentsKey, `{"model":"gpt-4o-mini","input":"hi there"}`)
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	if got := calls.Load() - before; got != 2 {
		t.Fatalf("deterministic_only, a request without temperature 0: %d upstream calls for two, want 2", got)
	}
}

// TestGatewayReplicasShareTheResponsesCache: with Redis, the Responses
// cache is shared by the gateway's replicas, as the chat cache is: an
// answer one replica kept answers the same request sent to another.
func TestGatewayReplicasShareTheResponsesCache(t *testing.T) {
	_, prefix := testRedis(t)
	var calls atomic.Int64
	up := numberedResponses(t, &calls)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h, store: redis}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	cfg := writeFiles(t, up.URL+"/v1", pols, fmt.Sprintf("redis: {addr: %q, prefix: %s}\n", redisAddr(), prefix))
	a, b := serveFile(t, cfg), serveFile(t, cfg)
	body := `{"model":"gpt-4o-mini","input":"Check the disks of web-1."}`
	ra := a.do(t, "POST", "/v1/responses", devopsKey, body)
	outA, _ := io.ReadAll(ra.Body)
	rb := b.do(t, "POST", "/v1/responses", devopsKey, body)
	outB, _ := io.ReadAll(rb.Body)
	if ra.StatusCode != 200 || string(outA) != string(outB) || rb.Header.Get("X-Tokenwise-Cache") != "hit" || calls.Load() != 1 {
		t.Fatalf("replica a: %d %s; replica b: %s (cache header %q); %d upstream calls, want b's answer a's from the cache, 1 call",
			ra.StatusCode, outA, outB, rb.Header.Get("X-Tokenwise-Cache"), calls.Load())
	}
}

// streamingResponses is an upstream of the Responses API whose n-th
// answer (id resp_n) is, by the request's metadata kind, the text
// "Answer n." or, after a reasoning item, a call of check_disks with the
// arguments {"host":"web-n"}; completed with 1,200 tokens of usage. It
// answers a JSON request with the response indented (as OpenAI does) and
// a streaming one as the Responses API streams: the text and the
// arguments in pieces, each event flushed. With the metadata cut "yes"
// the stream ends before its final event; with failed "yes" its final
// event is response.failed.
func streamingResponses(t *testing.T, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		var req struct {
			Stream   bool              `json:"stream"`
			Metadata map[string]string `json:"metadata"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		text := fmt.Sprintf("Answer %d.", n)
		args := fmt.Sprintf(`{"host":"web-%d"}`, n)
		msg := map[string]any{"type": "message", "id": fmt.Sprintf("msg_%d", n), "status": "completed", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}}}
		reasoning := map[string]any{"type": "reasoning", "id": fmt.Sprintf("rs_%d", n),
			"summary": []any{map[string]any{"type": "summary_text", "text": "Look at /var first."}}}
		call := map[string]any{"type": "function_call", "id": fmt.Sprintf("fc_%d", n), "call_id": fmt.Sprintf("call_%d", n),
			"name": "check_disks", "arguments": args, "status": "completed"}
		output := []any{msg}
		if req.Metadata["kind"] == "tool" {
			output = []any{reasoning, call}
		}
		resp := func(status string, output []any, usage any) map[string]any {
			return map[string]any{"id": fmt.Sprintf("resp_%d", n), "object": "response", "created_at": 1, "status": status,
				"model": "gpt-4o-mini-2024-07-18", "error": nil, "incomplete_details": nil, "output": output,
				"parallel_tool_calls": true, "usage": usage}
		}
		usage := map[string]any{"input_tokens": 1000, "input_tokens_details": map[string]any{"cached_tokens": 0},
			"output_tokens": 200, "output_tokens_details": map[string]any{"reasoning_tokens": 0}, "total_tokens": 1200}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			b, _ := json.MarshalIndent(resp("completed", output, usage), "", "  ")
			_, _ = w.Write(b)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		seq := 0
		send := func(typ string, ev map[string]any) {
			ev["type"], ev["sequence_number"] = typ, seq
			seq++
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
			w.(http.Flusher).Flush()
		}
		send("response.created", map[string]any{"response": resp("in_progress", []any{}, nil)})
		send("response.in_progress", map[string]any{"response": resp("in_progress", []any{}, nil)})
		pieces := func(s string) []string { return []string{s[:3], s[3:6], s[6:]} }
		if req.Metadata["kind"] == "tool" {
			send("response.output_item.added", map[string]any{"output_index": 0, "item": reasoning})
			send("response.output_item.done", map[string]any{"output_index": 0, "item": reasoning})
			begun := map[string]any{"type": "function_call", "id": call["id"], "call_id": call["call_id"], "name": "check_disks", "arguments": "", "status": "in_progress"}
			send("response.output_item.added", map[string]any{"output_index": 1, "item": begun})
			for _, p := range pieces(args) {
				send("response.function_call_arguments.delta", map[string]any{"item_id": call["id"], "output_index": 1, "delta": p, "obfuscation": "x"})
			}
			send("response.function_call_arguments.done", map[string]any{"item_id": call["id"], "output_index": 1, "arguments": args})
			send("response.output_item.done", map[string]any{"output_index": 1, "item": call})
		} else {
			at := map[string]any{"item_id": msg["id"], "output_index": 0, "content_index": 0}
			with := func(k string, v any) map[string]any {
				m := map[string]any{k: v}
				for a, b := range at {
					m[a] = b
				}
				return m
			}
			send("response.output_item.added", map[string]any{"output_index": 0, "item": map[string]any{"type": "message", "id": msg["id"], "status": "in_progress", "role": "assistant", "content": []any{}}})
			send("response.content_part.added", with("part", map[string]any{"type": "output_text", "text": "", "annotations": []any{}, "logprobs": []any{}}))
			for _, p := range pieces(text) {
				d := with("delta", p)
				d["logprobs"] = []any{}
				send("response.output_text.delta", d)
			}
			send("response.output_text.done", with("text", text))
			send("response.content_part.done", with("part", msg["content"].([]any)[0]))
			send("response.output_item.done", map[string]any{"output_index": 0, "item": msg})
		}
		if req.Metadata["cut"] == "yes" {
			return
		}
		if req.Metadata["failed"] == "yes" {
			// The model failed after its output: response.failed, with its
			// error and the usage the provider bills.
			failed := resp("failed", output, usage)
			failed["error"] = map[string]any{"code": "server_error", "message": "The model failed to finish."}
			send("response.failed", map[string]any{"response": failed})
			return
		}
		final := resp("completed", output, usage)
		if req.Metadata["omit"] == "yes" {
			delete(final, "output") // the output only in the events before
		}
		send("response.completed", map[string]any{"response": final})
	}))
	t.Cleanup(up.Close)
	return up
}

// streamed reads a Responses stream through openai-go: its events' types,
// the text and arguments of its deltas, its final response and whether
// every sequence number was the one after the last.
type streamed struct {
	types     []string
	text      string
	args      string
	final     *responses.Response
	inOrder   bool
	cacheHdr  string
	completed int
}

func readResponsesStream(t *testing.T, oc openai.Client, params responses.ResponseNewParams) streamed {
	t.Helper()
	var hr *http.Response
	s := oc.Responses.NewStreaming(t.Context(), params, option.WithResponseInto(&hr))
	defer s.Close()
	out := streamed{inOrder: true}
	for s.Next() {
		ev := s.Current()
		if ev.SequenceNumber != int64(len(out.types)) {
			out.inOrder = false
		}
		out.types = append(out.types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			out.text += ev.Delta
		case "response.function_call_arguments.delta":
			out.args += ev.Delta
		case "response.completed":
			r := ev.AsResponseCompleted().Response
			out.final = &r
			out.completed++
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if hr != nil {
		out.cacheHdr = hr.Header.Get("X-Tokenwise-Cache")
	}
	return out
}

// TestGatewayReplaysCachedResponsesAsStreams: a streamed Responses
// request and the same request not streamed share their cache entry.
// Through the official openai-go client, a stream's answer is kept from
// its final event and answers the same request again — streamed or not —
// without an upstream call; a JSON answer (indented, as OpenAI sends it)
// answers the same request streamed, replayed as the Responses API
// streams: events in sequence, the text and a function call's arguments
// in deltas, output items begun and done, and response.completed with the
// kept answer. A stream cut before its final event is not kept, nor one
// whose final event leaves out the output its events carried.
func TestGatewayReplaysCachedResponsesAsStreams(t *testing.T) {
	var calls atomic.Int64
	up := streamingResponses(t, &calls)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\nbudget:\n  team: {period: monthly, max_usd: 1}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	params := func(input string, meta map[string]string) responses.ResponseNewParams {
		return responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500), Metadata: meta,
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(input)}}
	}

	// A stream, then the same request streamed again and not streamed.
	p := params("Check the disks of web-1.", nil)
	first := readResponsesStream(t, oc, p)
	if first.text != "Answer 1." || first.final == nil || first.cacheHdr != "" || calls.Load() != 1 {
		t.Fatalf("first stream: %q, final %v, cache header %q, %d calls", first.text, first.final != nil, first.cacheHdr, calls.Load())
	}
	spent := e.spend(t)
	again := readResponsesStream(t, oc, p)
	if again.cacheHdr != "hit" || calls.Load() != 1 {
		t.Fatalf("the same stream again: cache header %q, %d upstream calls; want a hit, 1 call", again.cacheHdr, calls.Load())
	}
	if again.text != "Answer 1." || !again.inOrder || again.completed != 1 || again.final.ID != "resp_1" || again.final.OutputText() != "Answer 1." ||
		again.final.Usage.TotalTokens != 1200 || again.final.Status != "completed" {
		t.Fatalf("replayed stream: text %q, in order %v, %d completed events, final %+v", again.text, again.inOrder, again.completed, again.final)
	}
	wantTypes := "response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta " +
		"response.output_text.done response.content_part.done response.output_item.done response.completed"
	if got := strings.Join(again.types, " "); got != wantTypes {
		t.Fatalf("replayed events:\n%s\nwant\n%s", got, wantTypes)
	}
	var hr *http.Response
	r, err := oc.Responses.New(t.Context(), p, option.WithResponseInto(&hr))
	if err != nil {
		t.Fatal(err)
	}
	if hr.Header.Get("X-Tokenwise-Cache") != "hit" || r.ID != "resp_1" || r.OutputText() != "Answer 1." || r.Usage.TotalTokens != 1200 || calls.Load() != 1 {
		t.Fatalf("the same request not streamed: cache header %q, %s %q, %d calls", hr.Header.Get("X-Tokenwise-Cache"), r.ID, r.OutputText(), calls.Load())
	}
	if s := e.spend(t); s.SpentTokens != spent.SpentTokens || s.SpentTokens != 1200 {
		t.Fatalf("spent %d tokens after the hits, %d after the first stream; want 1200 both", s.SpentTokens, spent.SpentTokens)
	}

	// A JSON answer with a reasoning item and a function call, replayed
	// to the same request streamed.
	tool := params("Which host is full?", map[string]string{"kind": "tool"})
	r, err = oc.Responses.New(t.Context(), tool)
	if err != nil || len(r.Output) != 2 || r.Output[1].Arguments.OfString != `{"host":"web-2"}` {
		t.Fatalf("tool call: %+v, %v", r, err)
	}
	replay := readResponsesStream(t, oc, tool)
	if replay.cacheHdr != "hit" || calls.Load() != 2 || replay.args != `{"host":"web-2"}` || !replay.inOrder || replay.final == nil ||
		len(replay.final.Output) != 2 || replay.final.Output[1].CallID != "call_2" || replay.final.Output[0].ID != "rs_2" {
		t.Fatalf("the tool call replayed: cache header %q, %d calls, arguments %q, in order %v, final %+v",
			replay.cacheHdr, calls.Load(), replay.args, replay.inOrder, replay.final)
	}
	wantTypes = "response.created response.in_progress response.output_item.added response.reasoning_summary_part.added " +
		"response.reasoning_summary_text.delta response.reasoning_summary_text.done response.reasoning_summary_part.done response.output_item.done " +
		"response.output_item.added response.function_call_arguments.delta response.function_call_arguments.done response.output_item.done response.completed"
	if got := strings.Join(replay.types, " "); got != wantTypes {
		t.Fatalf("replayed events:\n%s\nwant\n%s", got, wantTypes)
	}

	// A stream whose final event leaves out the output its events carried
	// is not kept: the same request goes upstream again.
	omit := params("Check web-4.", map[string]string{"omit": "yes"})
	before := calls.Load()
	for range 2 {
		if s := readResponsesStream(t, oc, omit); s.cacheHdr != "" || s.text == "" {
			t.Fatalf("a stream without output in its final event: cache header %q, text %q", s.cacheHdr, s.text)
		}
	}
	if calls.Load() != before+2 {
		t.Fatalf("%d upstream calls for two streams without output in their final events, want 2", calls.Load()-before)
	}

	// A stream cut before its final event is not kept: the same request
	// goes upstream again.
	cut := params("Check web-3.", map[string]string{"cut": "yes"})
	for i := range 2 {
		s := oc.Responses.NewStreaming(t.Context(), cut)
		for s.Next() {
		}
		if s.Err() == nil {
			t.Fatalf("cut stream %d: no error", i)
		}
		s.Close()
	}
	if calls.Load() != 6 {
		t.Fatalf("%d upstream calls after two cut streams, want 6", calls.Load())
	}
}

// TestGatewayCacheKeepsGeminiThoughtSignatures: Gemini's OpenAI
// compatibility streams each tool call whole in a chunk of its own,
// without an index, and gives each call of Gemini 3 a thought signature
// (extra_content) that the client must send back with the call. A stream
// kept by the cache answers the same request again — streamed or not —
// with both calls, each signature with its call; before, the replay
// merged the two calls into one and lost the signature, so a Gemini 3
// client's next turn would be refused.
func TestGatewayCacheKeepsGeminiThoughtSignatures(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range []string{
			`{"choices":[{"delta":{"role":"assistant","tool_calls":[{"extra_content":{"google":{"thought_signature":"SIG1"}},"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"call_1","type":"function"}]},"index":0}],"created":1,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk"}`,
			`{"choices":[{"delta":{"role":"assistant","tool_calls":[{"extra_content":{"google":{"thought_signature":"SIG2"}},"function":{"arguments":"{\"city\":\"Rome\"}","name":"get_weather"},"id":"call_2","type":"function"}]},"index":0}],"created":1,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk"}`,
			`{"choices":[{"delta":{"role":"assistant"},"finish_reason":"stop","index":0}],"created":1,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk","usage":{"completion_tokens":20,"prompt_tokens":50,"total_tokens":70}}`,
		} {
			fmt.Fprintf(w, "data: %s\n\n", c)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\n" +
			"models:\n  gemini-2.5-flash: {input_per_1m: 0.30, output_per_1m: 2.50, context_window: 1048576, max_output_tokens: 65536}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	body := `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Weather in Paris and Rome?"}],` +
		`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"stream":true}`
	first := e.do(t, "POST", "/v1/chat/completions", devopsKey, body)
	_, _ = io.ReadAll(first.Body)

	// Streamed again: the calls at indexes 0 and 1, each signature on its
	// call's first chunk.
	hit := e.do(t, "POST", "/v1/chat/completions", devopsKey, body)
	stream, _ := io.ReadAll(hit.Body)
	type delta struct {
		Choices []struct {
			Delta struct {
				ToolCalls []struct {
					Index        int             `json:"index"`
					ID           string          `json:"id"`
					ExtraContent json.RawMessage `json:"extra_content"`
					Function     struct {
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"delta"`
		} `json:"choices"`
	}
	ids, sigs, args := map[int]string{}, map[string]string{}, map[int]string{}
	for ev := range strings.SplitSeq(string(stream), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var d delta
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		for _, c := range d.Choices {
			for _, tc := range c.Delta.ToolCalls {
				if tc.ID != "" {
					ids[tc.Index] = tc.ID
				}
				if len(tc.ExtraContent) > 0 {
					sigs[tc.ID] = string(tc.ExtraContent)
				}
				args[tc.Index] += tc.Function.Arguments
			}
		}
	}
	if hit.Header.Get("X-Tokenwise-Cache") != "hit" || calls.Load() != 1 || ids[0] != "call_1" || ids[1] != "call_2" ||
		args[0] != `{"city":"Paris"}` || args[1] != `{"city":"Rome"}` ||
		sigs["call_1"] != `{"google":{"thought_signature":"SIG1"}}` || sigs["call_2"] != `{"google":{"thought_signature":"SIG2"}}` {
		t.Fatalf("the stream replayed (cache %q, %d upstream calls): ids %v, arguments %v, signatures %v\n%s",
			hit.Header.Get("X-Tokenwise-Cache"), calls.Load(), ids, args, sigs, stream)
	}

	// Not streamed: the body Gemini would have answered.
	resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, strings.Replace(body, `"stream":true`, `"stream":false`, 1))
	var answer struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					ID           string          `json:"id"`
					ExtraContent json.RawMessage `json:"extra_content"`
				} `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Tokenwise-Cache") != "hit" || len(answer.Choices) != 1 || len(answer.Choices[0].Message.ToolCalls) != 2 ||
		string(answer.Choices[0].Message.ToolCalls[1].ExtraContent) != `{"google":{"thought_signature":"SIG2"}}` {
		t.Fatalf("the answer from the cache (%q): %+v", resp.Header.Get("X-Tokenwise-Cache"), answer)
	}
}

// TestGatewayCacheKeepsCustomToolCalls: a custom tool's call (GPT-5's
// free-form tools: "type":"custom", its input streamed in pieces of
// custom.input) kept by the cache from a stream answers the same request
// again with the call whole, not streamed and streamed; before, the kept
// answer had the call without its name and input.
func TestGatewayCacheKeepsCustomToolCalls(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		head := `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5-2025-08-07","choices":[{"index":0,"delta":`
		for _, d := range []string{
			`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"custom","custom":{"name":"exec","input":""}}]},"finish_reason":null}]}`,
			`{"tool_calls":[{"index":0,"custom":{"input":"print("}}]},"finish_reason":null}]}`,
			`{"tool_calls":[{"index":0,"custom":{"input":"1)"}}]},"finish_reason":null}]}`,
			`{},"finish_reason":"tool_calls"}]}`,
		} {
			fmt.Fprintf(w, "data: %s%s\n\n", head, d)
		}
		fmt.Fprint(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5-2025-08-07","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":20,"total_tokens":70}}`+"\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	body := `{"model":"gpt-5","messages":[{"role":"user","content":"Print 1."}],"tools":[{"type":"custom","custom":{"name":"exec"}}],"stream":true}`
	first := e.do(t, "POST", "/v1/chat/completions", devopsKey, body)
	_, _ = io.ReadAll(first.Body)

	resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, strings.Replace(body, `"stream":true`, `"stream":false`, 1))
	var answer struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					ID     string `json:"id"`
					Type   string `json:"type"`
					Custom struct {
						Name  string `json:"name"`
						Input string `json:"input"`
					} `json:"custom"`
				} `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Tokenwise-Cache") != "hit" || len(answer.Choices) != 1 || len(answer.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("the answer from the cache (%q): %+v", resp.Header.Get("X-Tokenwise-Cache"), answer)
	}
	if c := answer.Choices[0].Message.ToolCalls[0]; c.ID != "call_1" || c.Type != "custom" || c.Custom.Name != "exec" || c.Custom.Input != "print(1)" {
		t.Fatalf("the custom call from the cache: %+v", c)
	}

	hit := e.do(t, "POST", "/v1/chat/completions", devopsKey, body)
	stream, _ := io.ReadAll(hit.Body)
	var name, input string
	for ev := range strings.SplitSeq(string(stream), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var d struct {
			Choices []struct {
				Delta struct {
					ToolCalls []struct {
						Function *json.RawMessage `json:"function"`
						Custom   struct {
							Name  string `json:"name"`
							Input string `json:"input"`
						} `json:"custom"`
					} `json:"tool_calls"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		for _, c := range d.Choices {
			for _, tc := range c.Delta.ToolCalls {
				if tc.Function != nil {
					t.Fatalf("a custom call's chunk with a function member: %s", data)
				}
				name += tc.Custom.Name
				input += tc.Custom.Input
			}
		}
	}
	if hit.Header.Get("X-Tokenwise-Cache") != "hit" || name != "exec" || input != "print(1)" || calls.Load() != 1 {
		t.Fatalf("the stream replayed (cache %q, %d upstream calls): name %q, input %q\n%s", hit.Header.Get("X-Tokenwise-Cache"), calls.Load(), name, input, stream)
	}
}

// TestGatewayResponsesCacheHitSavesAtItsTier: a priority Responses call
// answered from the cache saved what it would have cost at priority —
// gpt-4o-mini's $0.25/$1.00 per 1M: $0.00045 for 1,000 input and 200
// output tokens, what its first call cost — not at the standard rates
// ($0.00027), as a chat call's hit saves at the tier it asks for.
func TestGatewayResponsesCacheHitSavesAtItsTier(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini-2024-07-18","service_tier":"priority",`+
			`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Fine.","annotations":[]}]}],`+
			`"usage":{"input_tokens":1000,"output_tokens":200,"total_tokens":1200}}`)
	}))
	defer up.Close()
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\nbudget:\n  team: {period: monthly, max_usd: 1}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	for range 2 {
		resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"Runbook?","service_tier":"priority"}`, "X-Run-Id", "run-1")
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	var rep struct {
		Calls     int    `json:"calls"`
		CacheHits int    `json:"cache_hits"`
		CostUSD   string `json:"cost_usd"`
		SavedUSD  string `json:"saved_usd"`
	}
	if err := json.NewDecoder(e.do(t, "GET", "/v1/runs/run-1", devopsKey, "").Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Calls != 2 || rep.CacheHits != 1 || calls.Load() != 1 || rep.CostUSD != "0.00045" || rep.SavedUSD != "0.00045" {
		t.Fatalf("run report %+v after %d upstream calls: want 2 calls, 1 hit, 1 upstream call, cost and saved $0.00045", rep, calls.Load())
	}
}
