package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestGatewayChatCutAnswerIsChargedAtTheProjectsTier: a chat completion
// that names no tier, sent and timed out before its answer (billed by the
// provider, no usage to read), is charged its estimated input at the
// project's default tier (budget.default_service_tier: priority, gpt-4o's
// $4.25 per 1M input beside the standard $2.50), the tier the provider
// processed and billed it at, as a Responses call is
// (TestGatewayResponsesCutAnswerIsChargedAtTheProjectsTier); and the
// call's reported cost is what the ledger charged.
func TestGatewayChatCutAnswerIsChargedAtTheProjectsTier(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done() // no answer before the gateway's timeout
	}))
	defer up.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	input := strings.Repeat("Check the disks of every web host and report each mount. ", 400)
	spent := func(tier string) float64 {
		pols := map[string]string{
			"default.yaml": "version: 1\nname: default\n",
			"devops.yaml":  "version: 1\nname: devops\ntimeouts: {call: 300ms, total: 300ms}\nfallback:\n  retry: {max_attempts: 1}\nbudget:\n" + tier + "  team: {period: monthly, max_usd: 10}\n",
		}
		e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
		resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o","messages":[{"role":"user","content":"`+input+`"}],"max_tokens":50}`)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("a call the upstream never answered: %d", resp.StatusCode)
		}
		usd, err := strconv.ParseFloat(e.spend(t).SpentUSD, 64)
		if err != nil || usd <= 0 {
			t.Fatalf("spent %q (%v): the cut call was not charged", e.spend(t).SpentUSD, err)
		}
		return usd
	}
	standard, priority := spent(""), spent("  default_service_tier: priority\n")
	if r := priority / standard; r < 1.68 || r > 1.72 {
		t.Fatalf("charged $%f under a priority project, $%f under a standard one: ratio %.3f, want 4.25/2.50 = 1.7", priority, standard, r)
	}
}
