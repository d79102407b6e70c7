package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGatewayResponsesUsageOfChatNamesIsBilled: a Responses answer whose
// usage uses the chat API's names (prompt_tokens, completion_tokens and
// their details, as some compatible servers and proxies write it) is
// billed as the usage it is: its input at the input rate, its cached
// input at the cached rate, its output at the output rate — a JSON answer
// and a stream's final event alike. Before, none of the Responses names
// was there: total_tokens was billed all as output.
func TestGatewayResponsesUsageOfChatNamesIsBilled(t *testing.T) {
	const usage = `{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100,"prompt_tokens_details":{"cached_tokens":400},"completion_tokens_details":{"reasoning_tokens":20}}`
	resp := func(status string) string {
		return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o","output":[],"usage":` + usage + `}`
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":0,\"response\":"+resp("completed")+"}\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, resp("completed"))
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	// gpt-4o: 600 input tokens at $2.50/1M, 400 cached at $1.25/1M, 100
	// output at $10/1M: $0.0015 + $0.0005 + $0.001.
	const want = "0.003000"
	for _, stream := range []string{"", `,"stream":true`} {
		pols := map[string]string{
			"default.yaml": "version: 1\nname: default\n",
			"devops.yaml":  "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 10}\n",
		}
		e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
		r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"hi","max_output_tokens":100`+stream+`}`)
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		if s := e.spend(t); r.StatusCode != http.StatusOK || s.SpentUSD != want || s.SpentTokens != 1100 {
			t.Errorf("stream %q: status %d, spent %s USD, %d tokens; want %s USD, 1100 tokens", stream, r.StatusCode, s.SpentUSD, s.SpentTokens, want)
		}
	}
}
