package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// TestGatewayChatCutStreamWithLaggingUsageIsChargedWhatItStreamed: a chat
// stream whose upstream reports a running usage (vLLM's continuous usage
// stats) that lags behind it — 1 output token, then 20 chunks of text
// without a usage — is cut, without [DONE]. The team is charged the
// reported input and at least the output it streamed (o200k_base, exact
// for gpt-4o), not the lagging count. Before, it was charged 1 output
// token.
func TestGatewayChatCutStreamWithLaggingUsageIsChargedWhatItStreamed(t *testing.T) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":`
	piece := strings.Repeat("The disk of web-1 is healthy. ", 4)
	raw := [][]byte{
		[]byte(head + `"","role":"assistant"},"finish_reason":null}],"usage":{"prompt_tokens":10,"completion_tokens":0,"total_tokens":10}}` + "\n\n"),
		[]byte(head + `"` + piece + `"},"finish_reason":null}],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}` + "\n\n"),
	}
	for range 19 {
		raw = append(raw, []byte(head+`"`+piece+`"},"finish_reason":null}]}`+"\n\n"))
	}
	up := openaitest.NewServer(t)
	up.Default(openaitest.Reply{Raw: raw})
	t.Setenv(upstreamEnv, upstreamKey)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nfallback:\n  retry: {max_attempts: 1}\nbudget:\n  team: {period: monthly, max_usd: 10}\n",
	}
	e := serveFile(t, writeFiles(t, up.URL, pols, ""))
	resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}],"max_tokens":1000}`)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if strings.Contains(string(b), "data: [DONE]") || strings.Count(string(b), piece) != 20 || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("the client read %q, want the 20 pieces and the cut's error event", b[max(0, len(b)-300):])
	}
	want := policies.PicoUSD(10*2_500_000 + tokens.New().Text("gpt-4o", strings.Repeat(piece, 20))*10_000_000).Ceil().Micro()
	usd, err := strconv.ParseFloat(e.spend(t).SpentUSD, 64)
	if got := int64(usd*1e6 + 0.5); err != nil || got != want {
		t.Fatalf("the team was charged %q (%v), want %d µ$: the reported input and the output streamed", e.spend(t).SpentUSD, err, want)
	}
}

// TestGatewayResponsesFailedStreamWithLaggingUsageIsChargedWhatItStreamed:
// a Responses stream that streams 20 deltas of text and ends with
// response.failed, whose usage counts 1 output token (a server's running
// count, behind what it streamed), is charged its reported input and at
// least the output its deltas streamed (counted delta by delta, as a
// stream its client ends is), as a cut chat stream is. Before,
// it was charged the 1 output token.
func TestGatewayResponsesFailedStreamWithLaggingUsageIsChargedWhatItStreamed(t *testing.T) {
	piece := strings.Repeat("The disk of web-1 is healthy. ", 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		resp := func(status, usage string) string {
			return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o","output":[],"usage":` + usage + `}`
		}
		var b strings.Builder
		b.WriteString("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" + resp("in_progress", "null") + "}\n\n")
		for i := range 20 {
			b.WriteString("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":" + strconv.Itoa(i+1) +
				",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"" + piece + "\"}\n\n")
		}
		b.WriteString("event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":21,\"response\":" +
			resp("failed", `{"input_tokens":10,"output_tokens":1,"total_tokens":11}`) + "}\n\n")
		_, _ = io.WriteString(w, b.String())
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nfallback:\n  retry: {max_attempts: 1}\nbudget:\n  team: {period: monthly, max_usd: 10}\n",
	}
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	resp := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","stream":true,"input":"hi","max_output_tokens":1000}`)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if strings.Count(string(b), piece) != 20 || !strings.Contains(string(b), "response.failed") {
		t.Fatalf("the client read %q, want the 20 deltas and the failed event", b[max(0, len(b)-300):])
	}
	want := policies.PicoUSD(10*2_500_000 + 20*tokens.New().Text("gpt-4o", piece)*10_000_000).Ceil().Micro()
	s := e.spend(t)
	usd, err := strconv.ParseFloat(s.SpentUSD, 64)
	if got := int64(usd*1e6 + 0.5); err != nil || got != want || s.ReservedUSD != "0.000000" {
		t.Fatalf("the team was charged %q (%v, reserved %s), want %d µ$: the reported input and the output streamed", s.SpentUSD, err, s.ReservedUSD, want)
	}
}
