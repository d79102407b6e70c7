package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestGatewaySnapshotAnswersNeverOvershootTheBudget: an upstream (an
// Azure deployment of gpt-4o-2024-05-13) answers calls for gpt-4o as
// that snapshot, which the gateway bills at the snapshot's $5/$15 per 1M,
// not gpt-4o's $2.50/$10: 10 input and 500 output tokens, $0.00755 a call.
// Chat completions and Responses calls alike are reserved at the
// snapshot's price: under a team limit of $0.022 two calls are answered,
// the third refused before the upstream, and the ledger holds $0.0151,
// never past its limit. (Reserved at gpt-4o's price, $0.005 and some
// input, the third was let through and the ledger spent $0.02265.)
func TestGatewaySnapshotAnswersNeverOvershootTheBudget(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/responses") {
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-2024-05-13","output":[],`+
				`"usage":{"input_tokens":10,"output_tokens":500,"total_tokens":510}}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-05-13",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":10,"completion_tokens":500,"total_tokens":510}}`)
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	for _, api := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"Check the disks."}],"max_tokens":500}`},
		{"/v1/responses", `{"model":"gpt-4o","input":"Check the disks.","max_output_tokens":500}`},
	} {
		t.Run(strings.TrimPrefix(api.path, "/v1/"), func(t *testing.T) {
			calls.Store(0)
			pols := map[string]string{
				"default.yaml": "version: 1\nname: default\n",
				"devops.yaml":  "version: 1\nname: devops\nbudget:\n  min_output_tokens: 500\n  team: {period: monthly, max_usd: 0.022}\n",
			}
			e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
			var status []int
			for range 4 {
				resp := e.do(t, "POST", api.path, devopsKey, api.body)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				status = append(status, resp.StatusCode)
			}
			s := e.spend(t)
			usd, err := strconv.ParseFloat(s.SpentUSD, 64)
			if err != nil || usd > 0.022 {
				t.Errorf("spent %s USD of a limit of 0.022 (%v)", s.SpentUSD, err)
			}
			if s.SpentUSD != "0.015100" || calls.Load() != 2 || status[0] != http.StatusOK || status[1] != http.StatusOK ||
				status[2] != http.StatusTooManyRequests || s.ReservedUSD != "0.000000" {
				t.Errorf("statuses %v after %d upstream calls, spent %s USD, %s reserved; want 2 answered at the snapshot's $0.00755, "+
					"the others refused before the upstream, 0.015100 spent, nothing reserved", status, calls.Load(), s.SpentUSD, s.ReservedUSD)
			}
		})
	}
}
