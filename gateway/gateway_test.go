package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeError(t *testing.T, resp *http.Response) errorBody {
	t.Helper()
	var eb errorBody
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Message == "" {
		t.Fatalf("status %d: not an OpenAI-shaped error: %s", resp.StatusCode, b)
	}
	return eb
}

// Every endpoint behind a key answers a missing, unknown or malformed key
// with OpenAI's 401 (which the SDKs raise as an authentication error),
// never reaches the upstream, and never echoes the key; a key removed
// from the gateway file is refused after a reload.
func TestGatewayRejectsUnknownKeys(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.Default(openaitest.Text("hello"))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	bad := []string{"", "sk-not-a-gateway-key-000000000000000", devopsKey + "x", strings.ToUpper(devopsKey), upstreamKey}
	paths := []struct{ method, path string }{{"POST", "/v1/chat/completions"}, {"GET", "/v1/models"}, {"GET", "/v1/spend"}, {"POST", "/v1/embeddings"}}
	for _, key := range bad {
		for _, p := range paths {
			resp := e.do(t, p.method, p.path, key, body)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s %s with key %q: status %d, want 401", p.method, p.path, key, resp.StatusCode)
			}
			eb := decodeError(t, resp)
			if eb.Error.Code == nil || *eb.Error.Code != "invalid_api_key" || eb.Error.Type != "invalid_request_error" {
				t.Errorf("401 body: %+v", eb.Error)
			}
			if key != "" && strings.Contains(eb.Error.Message, key) {
				t.Errorf("the 401 echoes the key")
			}
		}
	}
	if n := e.upstream.Count(); n != 0 {
		t.Fatalf("refused requests reached the upstream %d times", n)
	}
	// The official Go clients see their usual authentication error.
	cfg := goopenai.DefaultConfig("sk-unknown-key-0000000000000000")
	cfg.BaseURL = e.url + "/v1"
	_, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{
		Model: "gpt-4o-mini", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
	var ae *goopenai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 401 || ae.Code != "invalid_api_key" {
		t.Fatalf("go-openai: %v, want a 401 APIError", err)
	}
	// A valid key works; removing it from the file and reloading revokes it.
	if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body); resp.StatusCode != 200 {
		t.Fatalf("valid key: status %d", resp.StatusCode)
	}
	cfgBytes, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(cfgBytes), "\n") {
		if !strings.Contains(line, gateway.HashKey(devopsKey)) {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(e.cfgPath, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body); resp.StatusCode != 401 {
		t.Fatalf("revoked key: status %d, want 401", resp.StatusCode)
	}
	if resp := e.do(t, "POST", "/v1/chat/completions", paymentsKey, body); resp.StatusCode != 200 {
		t.Fatalf("the other key after the reload: status %d", resp.StatusCode)
	}
}

// Keys (virtual and upstream) appear in no log line, no response to the
// caller, and the upstream never sees a virtual key: whatever happens
// (success, a refused key, a provider error echoing the key, a budget
// refusal, a pass-through, a stream).
func TestGatewayNeverLogsKeys(t *testing.T) {
	e := start(t, nil, "")
	echo := openaitest.Error(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: "+upstreamKey+". Bearer "+upstreamKey)
	e.upstream.On(openaitest.LastContains("echo")).Reply(echo)
	e.upstream.Default(openaitest.Text("fine"))
	var out strings.Builder
	call := func(key, body string, hdr ...string) {
		resp := e.do(t, "POST", "/v1/chat/completions", key, body, hdr...)
		b, _ := io.ReadAll(resp.Body)
		out.Write(b)
		for k, v := range resp.Header {
			out.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	call(devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	call(devopsKey, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	call(devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"echo"}]}`)
	call(devopsKey+"-wrong", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	call(paymentsKey, `{"model":"gpt-4o","max_tokens":1000,"messages":[{"role":"user","content":"`+strings.Repeat("long ", 500)+`"}]}`)
	call(devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, "X-Run-Id", "run-42")
	resp := e.do(t, "POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":"x"}`, "X-Run-Id", "run-43")
	_, _ = io.Copy(io.Discard, resp.Body)
	passedID := resp.Header.Get(gateway.CallIDHeader)
	if !strings.Contains(out.String(), "budget_exceeded") {
		t.Fatalf("the budget refusal did not happen:\n%s", out.String())
	}
	// Shutdown waits for the handlers: every call's line is logged (a
	// handler logs after its answer is sent).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	// A passed-through call has its id too, in its answer and its log
	// line, with its run's.
	if !strings.HasPrefix(passedID, "call-") || !regexp.MustCompile(`passed through".*"run_id":"run-43","call_id":"`+passedID+`"`).MatchString(logs) {
		t.Fatalf("the embeddings call's id %q is not in its answer and its log line:\n%s", passedID, logs)
	}
	if !strings.Contains(logs, "devops-key") || !strings.Contains(logs, "call_id") || !strings.Contains(logs, "run_id") {
		t.Fatalf("the logs do not name the key, the call and the run:\n%s", logs)
	}
	for _, secret := range []string{devopsKey, paymentsKey, upstreamKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("a key is in the logs:\n%s", logs)
		}
		if strings.Contains(out.String(), secret) && secret != devopsKey {
			t.Errorf("a key reached a caller:\n%s", out.String())
		}
	}
	for _, r := range e.upstream.Requests() {
		if got := r.Header.Get("Authorization"); got != "Bearer "+upstreamKey {
			t.Errorf("upstream request %s got Authorization %q, want the upstream key", r.Path, got)
		}
		for k, v := range r.Header {
			if strings.Contains(strings.Join(v, ","), devopsKey) || strings.Contains(strings.Join(v, ","), paymentsKey) {
				t.Errorf("a virtual key reached the upstream in %s", k)
			}
		}
	}
}

// TestGatewayRefusesAnUnreadableChatBody: a chat completion whose
// chunked body cannot be read (a chunk's framing is broken) gets an
// OpenAI-shaped 400 unreadable_body, as a passed-through call's does, and
// never reaches the upstream. Before, it got a 200 with an empty body,
// which a client reads as a success without an answer.
func TestGatewayRefusesAnUnreadableChatBody(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.Default(openaitest.Text("hi"))
	for _, path := range []string{"/v1/chat/completions", "/v1/responses"} {
		resp, body := rawDo(t, e.url, "POST "+path+" HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+devopsKey+"\r\n"+
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", "5\r\n{\"mod\r\nZZ\r\n")
		var eb errorBody
		if err := json.Unmarshal([]byte(body), &eb); err != nil || resp.StatusCode != http.StatusBadRequest || eb.Error.Code == nil ||
			*eb.Error.Code != "unreadable_body" || eb.Error.Type != "invalid_request_error" {
			t.Errorf("POST %s with a broken chunk: %d %q, want a 400 unreadable_body", path, resp.StatusCode, body)
		}
	}
	if n := e.upstream.Count(); n != 0 {
		t.Fatalf("the upstream was called %d times", n)
	}
}

// TestGatewayNeverForwardsTheVirtualKey: a client that sends its virtual
// key in another header than Authorization — X-Api-Key, which some SDKs
// send, or any header of its own — never has it forwarded upstream, on a
// chat completion, a policed Responses call or a passed-through request:
// the header is dropped, the upstream gets its own key in Authorization,
// and the caller's other headers go on. Before, X-Api-Key (and any other
// header holding the key) went upstream as sent.
func TestGatewayNeverForwardsTheVirtualKey(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.Default(openaitest.Text("hi"))
	hdr := []string{"X-Api-Key", devopsKey, "X-Forwarded-Authorization", "Bearer " + devopsKey, "X-Trace", "trace-1", "Cookie", "session=s3cr3t"}
	for _, c := range [][2]string{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":50}`},
		{"/v1/files", `{}`},
	} {
		r := e.do(t, "POST", c[0], devopsKey, c[1], hdr...)
		_, _ = io.Copy(io.Discard, r.Body)
	}
	reqs := e.upstream.Requests()
	if len(reqs) != 3 {
		t.Fatalf("the upstream got %d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		for k, v := range r.Header {
			if strings.Contains(strings.Join(v, ","), devopsKey) {
				t.Errorf("%s: the virtual key reached the upstream in %s", r.Path, k)
			}
		}
		if c := r.Header.Get("Cookie"); c != "" {
			t.Errorf("%s: the caller's cookies reached the upstream: %q", r.Path, c)
		}
		if r.Header.Get("Authorization") != "Bearer "+upstreamKey || r.Header.Get("X-Trace") != "trace-1" {
			t.Errorf("%s: Authorization %q, X-Trace %q; want the upstream key and the caller's trace header", r.Path, r.Header.Get("Authorization"), r.Header.Get("X-Trace"))
		}
	}
}

// go-openai and openai-go, streaming and not, with tool calls, through
// the gateway; usage is reported; /v1/models and /v1/spend answer.
func TestGatewayWithGoClients(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.On(openaitest.LastRole("user")).Reply(openaitest.ToolCalls(openaitest.Call("", "get_weather", `{"city":"Paris"}`)))
	e.upstream.Default(openaitest.Text("It is sunny in Paris."))

	cfg := goopenai.DefaultConfig(devopsKey)
	cfg.BaseURL = e.url + "/v1"
	gc := goopenai.NewClientWithConfig(cfg)
	tools := []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}}}
	msgs := []goopenai.ChatCompletionMessage{{Role: "user", Content: "weather in Paris?"}}
	st, err := gc.CreateChatCompletionStream(t.Context(), goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs, Tools: tools, Stream: true,
		StreamOptions: &goopenai.StreamOptions{IncludeUsage: true}})
	if err != nil {
		t.Fatal(err)
	}
	var args strings.Builder
	var id, name string
	var usage *goopenai.Usage
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				if tc.ID != "" {
					id = tc.ID
				}
				if tc.Function.Name != "" {
					name = tc.Function.Name
				}
				args.WriteString(tc.Function.Arguments)
			}
		}
	}
	st.Close()
	if name != "get_weather" || args.String() != `{"city":"Paris"}` || id == "" {
		t.Fatalf("streamed tool call: %q %q %q", id, name, args.String())
	}
	if usage == nil || usage.TotalTokens == 0 {
		t.Fatalf("no usage in the stream")
	}
	msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "assistant", ToolCalls: []goopenai.ToolCall{{ID: id, Type: "function", Function: goopenai.FunctionCall{Name: name, Arguments: args.String()}}}},
		goopenai.ChatCompletionMessage{Role: "tool", ToolCallID: id, Content: "sunny"})
	resp, err := gc.CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs, Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "It is sunny in Paris." || resp.Usage.TotalTokens == 0 {
		t.Fatalf("final answer: %+v", resp)
	}

	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	comp, err := oc.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather in Paris?")},
		Tools:    []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_weather"})}})
	if err != nil {
		t.Fatal(err)
	}
	if tc := comp.Choices[0].Message.ToolCalls; len(tc) != 1 || tc[0].Function.Name != "get_weather" || comp.Usage.TotalTokens == 0 {
		t.Fatalf("openai-go: %+v", comp.Choices[0].Message)
	}
	ss := oc.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi"), openai.AssistantMessage("x"), openai.ToolMessage("sunny", "call_1")}})
	var acc openai.ChatCompletionAccumulator
	for ss.Next() {
		acc.AddChunk(ss.Current())
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "It is sunny in Paris." {
		t.Fatalf("openai-go stream: %q", acc.Choices[0].Message.Content)
	}

	models, err := gc.ListModels(t.Context())
	if err != nil || len(models.Models) == 0 {
		t.Fatalf("models: %v %+v", err, models)
	}
	sp := e.do(t, "GET", "/v1/spend", devopsKey, "")
	var spend gateway.Spend
	if err := json.NewDecoder(sp.Body).Decode(&spend); err != nil {
		t.Fatal(err)
	}
	if spend.Team != "devops" || spend.Period != "monthly" || spend.LimitUSD != "1.000000" || spend.SpentUSD == "0.000000" || spend.SpentTokens == 0 {
		t.Fatalf("spend: %+v", spend)
	}
}

// X-Run-Id groups requests into one run: the policy's per-run call limit
// holds across them, another run id starts afresh, and requests without
// one are runs of their own.
func TestGatewayRunIDHeader(t *testing.T) {
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nlimits: {max_calls: 2}\n",
	}
	e := start(t, pols, "")
	e.upstream.Default(openaitest.Text("ok"))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for i := range 2 {
		if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body, gateway.RunIDHeader, "ticket-1"); resp.StatusCode != 200 {
			t.Fatalf("call %d of run ticket-1: %d", i+1, resp.StatusCode)
		}
	}
	resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body, gateway.RunIDHeader, "ticket-1")
	if resp.StatusCode != 429 {
		t.Fatalf("3rd call of a 2-call run: %d, want 429", resp.StatusCode)
	}
	if eb := decodeError(t, resp); eb.Error.Code == nil || *eb.Error.Code != "run_call_limit" || resp.Header.Get("X-Should-Retry") != "false" {
		t.Errorf("refusal: %+v", eb.Error)
	}
	for _, hdr := range [][]string{{gateway.RunIDHeader, "ticket-2"}, nil, nil, nil} {
		if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body, hdr...); resp.StatusCode != 200 {
			t.Fatalf("another run (%v): %d", hdr, resp.StatusCode)
		}
	}
	if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body, gateway.RunIDHeader, strings.Repeat("r", 200)); resp.StatusCode != 400 {
		t.Fatalf("an oversized run id: %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(e.logs.String(), `"run_id":"ticket-1"`) {
		t.Errorf("the logs do not carry the run id")
	}
}

// Requests other than chat completions go to the upstream as they are,
// with the upstream's key; /healthz, /readyz and /metrics answer.
func TestGatewayPassThroughAndOps(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.Default(openaitest.Text("ok"))
	resp := e.do(t, "POST", "/v1/embeddings?x=1", devopsKey, `{"model":"text-embedding-3-small","input":"hello"}`)
	_, _ = io.Copy(io.Discard, resp.Body)
	reqs := e.upstream.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/embeddings" || reqs[0].Header.Get("Authorization") != "Bearer "+upstreamKey || string(reqs[0].Body) != `{"model":"text-embedding-3-small","input":"hello"}` {
		t.Fatalf("passed through: %+v", reqs)
	}
	e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "tokenwise_gateway_requests"} {
		resp := e.do(t, "GET", path, "", "")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %.300s", path, resp.StatusCode, b)
		}
	}
	resp = e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"`+strings.Repeat("x", 5<<20)+`"}]}`)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 5MiB body: %d, want 413", resp.StatusCode)
	}
	resp = e.do(t, "POST", "/v1/embeddings", devopsKey, `{"input":"`+strings.Repeat("x", 5<<20)+`"}`)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 5MiB pass-through body: %d, want 413", resp.StatusCode)
	}
}

// A stream the upstream cuts after its first chunks reaches the client as
// an error (an OpenAI error event, no [DONE]), never as a complete answer.
func TestGatewayCutStreamIsAnError(t *testing.T) {
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": "version: 1\nname: devops\n"}
	e := start(t, pols, "")
	cut := openaitest.Text("a long answer that will not arrive whole")
	cut.Fault = openaitest.CutAfter(3).Fault
	e.upstream.Default(cut)
	cfg := goopenai.DefaultConfig(devopsKey)
	cfg.BaseURL = e.url + "/v1"
	st, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletionStream(t.Context(), goopenai.ChatCompletionRequest{
		Model: "gpt-4o-mini", Stream: true, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got strings.Builder
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			t.Fatalf("a cut stream ended as complete: %q", got.String())
		}
		if err != nil {
			var ae *goopenai.APIError
			if !errors.As(err, &ae) || ae.Code != "upstream_error" {
				t.Fatalf("err = %v, want the gateway's error event", err)
			}
			break
		}
		for _, ch := range c.Choices {
			got.WriteString(ch.Delta.Content)
		}
	}
	if got.Len() == 0 || got.String() == "a long answer that will not arrive whole" {
		t.Fatalf("received %q before the cut", got.String())
	}
}

// TestGatewayServesTheAPIWithoutV1: a client whose base URL is the
// gateway's address without /v1 (a common first mistake, which the
// LiteLLM proxy forgives too) is served the same routes: go-openai's chat
// completion, the model list and the spend, each behind the same key
// check; a path outside the OpenAI API is still a 404 that says what the
// base URL should be.
func TestGatewayServesTheAPIWithoutV1(t *testing.T) {
	e := start(t, nil, "")
	e.upstream.Default(openaitest.Text("hello"))
	cfg := goopenai.DefaultConfig(devopsKey)
	cfg.BaseURL = e.url // no /v1
	resp, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(t.Context(), goopenai.ChatCompletionRequest{
		Model: "gpt-4o-mini", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
	if err != nil || len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "hello" {
		t.Fatalf("go-openai at the gateway's root: %+v, %v", resp.Choices, err)
	}
	for _, p := range []string{"/models", "/spend"} {
		if r := e.do(t, "GET", p, devopsKey, ""); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p, r.StatusCode)
		}
		if r := e.do(t, "GET", p, "sk-not-a-gateway-key-000000000000000", ""); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with an unknown key: %d, want 401", p, r.StatusCode)
		}
	}
	r := e.do(t, "POST", "/nonsense/chat/completions", devopsKey, `{}`)
	eb := decodeError(t, r)
	if r.StatusCode != http.StatusNotFound || eb.Error.Code == nil || *eb.Error.Code != "unknown_url" || !strings.Contains(eb.Error.Message, "with /v1") {
		t.Fatalf("an unknown path: %d %+v", r.StatusCode, eb.Error)
	}
	if n := e.upstream.Count(); n != 1 {
		t.Fatalf("the upstream was called %d times, want 1", n)
	}
}
