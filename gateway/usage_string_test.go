package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openai/openai-go/v3"
)

// TestGatewayChargesAUsageWrittenAsStrings: an upstream whose chat answer
// writes its usage's counts as strings ("prompt_tokens":"7000", as some
// OpenAI-compatible servers' serializers do) billed 7,000 prompt tokens:
// the team is charged at least them, for a JSON answer and for a stream
// (through openai-go). Before, the counts were not read and the call was
// charged the gateway's estimate of a one-line prompt (some 10 tokens).
func TestGatewayChargesAUsageWrittenAsStrings(t *testing.T) {
	const usage = `"usage":{"prompt_tokens":"7000","completion_tokens":"3","total_tokens":"7003"}`
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"ok!"},"finish_reason":null}]}`+"\n\n")
			_, _ = io.WriteString(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],`+usage+"}\n\n")
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok!"},"finish_reason":"stop"}],%s}`, usage)
	}))
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": "version: 1\nname: devops\nbudget: {team: {period: monthly, max_usd: 1000}}\n"}
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", pols, ""))
	c := ownerClient(e.url, devopsKey)
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}}
	if _, err := c.Chat.Completions.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	if sp := e.spend(t); sp.SpentTokens < 7003 {
		t.Errorf("a JSON answer billed 7,003 tokens (as strings): the team spent %d tokens", sp.SpentTokens)
	}
	st := c.Chat.Completions.NewStreaming(context.Background(), params)
	for st.Next() {
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if sp := e.spend(t); sp.SpentTokens < 2*7003 {
		t.Errorf("a JSON answer and a stream billed 7,003 tokens each (as strings): the team spent %d tokens", sp.SpentTokens)
	}
}
