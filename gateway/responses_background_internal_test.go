package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBillingPartKeepsWhatSettlesAndNotTheText: what a replica shares of a
// background response seen done (billingPart) settles the hold to the
// same cost as the whole answer — usage, model, tier, tools and the
// hosted tools' calls, whose fees are billed — without the answer's text.
func TestBillingPartKeepsWhatSettlesAndNotTheText(t *testing.T) {
	text := strings.Repeat("the disk is full ", 10000)
	body := `{"id":"resp_1","object":"response","status":"completed","background":true,"model":"gpt-4o-mini","service_tier":"priority",` +
		`"tools":[{"type":"web_search"}],"output":[{"type":"reasoning","summary":[{"type":"summary_text","text":"` + text + `"}]},` +
		`{"type":"web_search_call","id":"ws_1","status":"completed"},{"type":"message","content":[{"type":"output_text","text":"` + text + `"}]}],` +
		`"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15}}`
	part := billingPart([]byte(body))
	if part == nil || len(part) > 1000 || strings.Contains(string(part), "disk is full") {
		t.Fatalf("billing part of %d bytes: %.300s", len(part), part)
	}
	var whole, shared responseObject
	if err := json.Unmarshal([]byte(body), &whole); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(part, &shared); err != nil {
		t.Fatal(err)
	}
	if shared.ID != whole.ID || shared.Status != whole.Status || shared.Model != whole.Model || shared.ServiceTier != whole.ServiceTier ||
		shared.Background == nil || !*shared.Background || string(shared.Tools) != string(whole.Tools) {
		t.Errorf("shared %+v, want the whole answer's id, status, model, tier, tools", shared)
	}
	if u, ok := shared.Usage.usage(); !ok || u.InputTokens != 10 || u.OutputTokens != 5 {
		t.Errorf("shared usage %+v, %v: want 10 in and 5 out", u, ok)
	}
	if !strings.Contains(string(shared.Output), `"web_search_call"`) || strings.Contains(string(shared.Output), `"message"`) {
		t.Errorf("shared output %s: want the web search call only", shared.Output)
	}
	if billingPart([]byte(`not json`)) != nil {
		t.Error("a body that is no response object is shared")
	}
}
