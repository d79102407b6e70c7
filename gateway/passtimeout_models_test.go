package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A team's timeouts.models gives a reasoning model's calls through the
// gateway its own limits, as the chain does: a Responses call's attempts
// (call, first_token, idle of the attempt's model, a fallback's its own;
// total of the model asked for), an embeddings call's, and a chat call's.
func TestGatewayBoundsCallsByTheirModelsTimeouts(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	const pol = "version: 1\nname: devops\nlimits: {run_timeout: 1h}\n" +
		"timeouts:\n  call: 5s\n  total: 20s\n  first_token: 3s\n  idle: 2s\n" +
		"  models:\n    - match: [\"o3*\"]\n      call: 1m\n      total: 2m\n      first_token: 30s\n      idle: 15s\n" +
		"    - match: [gpt-4.1]\n      total: 3m\n"
	responses := func(model, input string, stream bool) string {
		return fmt.Sprintf(`{"model":%q,"input":%q,"stream":%v,"max_output_tokens":100}`, model, input, stream)
	}
	for _, c := range []struct {
		name, path, body, extra string
		status                  int
		message                 string
		took                    time.Duration
		lastEvent               string
	}{
		{"o3 JSON answer late", "/v1/responses", responses("o3", "late headers", false), "", 200, "", 10 * time.Second, ""},
		{"gpt-4o-mini JSON answer late", "/v1/responses", responses("gpt-4o-mini", "late headers", false), "", 504, "call timed out after 5s", 5 * time.Second, ""},
		{"o3 stream's first event late", "/v1/responses", responses("o3", "late events", true), "", 200, "", 10 * time.Second, "response.completed"},
		{"gpt-4o-mini stream's first event late", "/v1/responses", responses("gpt-4o-mini", "late events", true), "", 504, "no first token in time after 3s", 3 * time.Second, ""},
		{"o3 stream pauses", "/v1/responses", responses("o3", "pause", true), "", 200, "", 10 * time.Second, "response.completed"},
		{"o3 hangs", "/v1/responses", responses("o3", "hang", false), "", 504, "call timed out after 1m", time.Minute, ""},
		// o3's attempt gets its minute; gpt-4o's, the fallback's, answers
		// at once, within o3's total (2m), not the team's (20s).
		{"o3 hangs, fallback", "/v1/responses", responses("o3", "hang unless gpt-4o", false), "fallback: {models: [gpt-4o]}\n", 200, "", time.Minute, ""},
		// gpt-4.1's attempt, under its total of 3m, gets the team's 5s call
		// and the fallback o3 its minute.
		{"gpt-4.1 hangs, fallback to o3", "/v1/responses", responses("gpt-4.1", "late headers", false), "fallback: {models: [o3]}\n", 200, "", 15 * time.Second, ""},
		// The total follows the model that answers: gpt-4o-mini's (20s)
		// is extended to o3's (2m) by its fallback to o3, whose attempt
		// gets its minute.
		{"gpt-4o-mini total extended by o3", "/v1/responses", responses("gpt-4o-mini", "hang", false), "fallback: {models: [o3]}\n", 504, "call timed out after 1m", 5*time.Second + time.Minute, ""},
		{"o3 chat hangs", "/v1/chat/completions", `{"model":"o3","messages":[{"role":"user","content":"hang"}]}`, "", 504, "after 1m", time.Minute, ""},
		{"gpt-4o-mini chat hangs", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hang"}]}`, "", 504, "after 5s", 5 * time.Second, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := timeoutEnv(t, pol+c.extra)
				got := callPass(t, e, c.path, c.body)
				if got.status != c.status || !strings.Contains(got.message, c.message) {
					t.Errorf("status %d, code %q, message %q; want %d, %q", got.status, got.code, got.message, c.status, c.message)
				}
				if got.took != c.took {
					t.Errorf("took %v, want %v", got.took, c.took)
				}
				if c.lastEvent != "" && (len(got.events) == 0 || got.events[len(got.events)-1] != c.lastEvent) {
					t.Errorf("stream's events %v, want the last %q", got.events, c.lastEvent)
				}
			})
		})
	}
}

// A call's total follows the model that answers it, through the gateway
// as through the chain: a gpt-4o-mini call (total 20s) that a rule routes
// to o3, or that falls back to o3 (gpt-4o-mini failing at once), is
// bounded by o3's total (2m): o3 answering after 40s is answered, in one
// o3 request; a hung routed o3 ends at o3's call limit (1m). Chat calls
// (the chain) and Responses calls (the gateway's own fallback chain).
func TestGatewayTotalFollowsTheModelThatAnswers(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	const pol = "version: 1\nname: devops\nlimits: {run_timeout: 1h}\n" +
		"timeouts:\n  call: 5s\n  total: 20s\n" +
		"  models:\n    - match: [\"o3*\"]\n      call: 1m\n      total: 2m\n"
	const routed = "routing:\n  rules:\n    - name: think\n      when: {requested_model: [gpt-4o-mini]}\n      model: o3\n"
	const fallback = "fallback: {models: [o3]}\n"
	chat := func(content string) string {
		return fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":%q}]}`, content)
	}
	for _, c := range []struct {
		name, path, body, extra string
		status                  int
		message                 string
		took                    time.Duration
	}{
		{"chat routed, o3 thinks 40s", "/v1/chat/completions", chat("o3 thinks"), routed, 200, "", 40 * time.Second},
		{"chat routed, o3 hangs", "/v1/chat/completions", chat("hang"), routed, 504, "after 1m", time.Minute},
		{"chat fell back, o3 thinks 40s", "/v1/chat/completions", chat("o3 thinks"), fallback, 200, "", 40 * time.Second},
		{"responses fell back, o3 thinks 40s", "/v1/responses", `{"model":"gpt-4o-mini","input":"o3 thinks","max_output_tokens":100}`, fallback, 200, "", 40 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := timeoutEnv(t, pol+c.extra)
				got := callPass(t, e, c.path, c.body)
				if got.status != c.status || !strings.Contains(got.message, c.message) {
					t.Errorf("status %d, code %q, message %q; want %d, %q", got.status, got.code, got.message, c.status, c.message)
				}
				if got.took < c.took || got.took > c.took+time.Second {
					t.Errorf("took %v, want %v", got.took, c.took)
				}
			})
		})
	}
}
