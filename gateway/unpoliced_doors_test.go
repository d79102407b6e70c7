//lint:file-ignore SA1019 the test drives the official client's Assistants calls, deprecated but still in it

package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestGatewayRefusesTheSDKsOtherModelCalls: the model calls the official
// openai-go client makes besides chat completions, the Responses API and
// embeddings — the Decisions API, a Managed Agents session (created, or a
// turn of it), an automation's invocation, a ChatKit session (a client
// secret that spends on the upstream's key, as a Realtime one does), an
// Assistants run (a thread created and run, a run, its tool outputs) —
// are billed by the provider and policed by no one: a team with a budget
// gets the 403 unpoliced_endpoint, raised by the client as its
// *openai.Error, before the upstream; what costs nothing under the same
// families (a session read, a run cancelled, a thread's messages) passes.
// Before, all of them passed: a budget escaped by another door.
func TestGatewayRefusesTheSDKsOtherModelCalls(t *testing.T) {
	var mu sync.Mutex
	var reached []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","object":"thing"}`)
	}))
	defer up.Close()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	ctx := t.Context()
	body := map[string]any{"model": "gpt-5", "input": "check the disks"}
	billable := map[string]func() error{
		"decisions": func() error {
			return oc.Post(ctx, "decisions", map[string]any{"model": "gpt-6-luna", "input": "x", "questions": []any{}}, nil)
		},
		"agents/sessions":            func() error { return oc.Post(ctx, "agents/sessions", body, nil) },
		"agents/sessions/s_1/turns":  func() error { return oc.Post(ctx, "agents/sessions/s_1/turns", body, nil) },
		"agents/automations/a_1/inv": func() error { _, err := oc.Beta.Agents.Automations.Invocations.New(ctx, "a_1"); return err },
		"chatkit/sessions":           func() error { return oc.Post(ctx, "chatkit/sessions", map[string]any{"user": "u"}, nil) },
		"threads/runs": func() error {
			_, err := oc.Beta.Threads.NewAndRun(ctx, openai.BetaThreadNewAndRunParams{AssistantID: "asst_1"})
			return err
		},
		"threads/t_1/runs": func() error {
			_, err := oc.Beta.Threads.Runs.New(ctx, "t_1", openai.BetaThreadRunNewParams{AssistantID: "asst_1"})
			return err
		},
		"threads/t_1/runs/r_1/submit_tool_outputs": func() error {
			_, err := oc.Beta.Threads.Runs.SubmitToolOutputs(ctx, "t_1", "r_1", openai.BetaThreadRunSubmitToolOutputsParams{
				ToolOutputs: []openai.BetaThreadRunSubmitToolOutputsParamsToolOutput{{ToolCallID: openai.String("c_1"), Output: openai.String("ok")}}})
			return err
		},
	}
	for name, call := range billable {
		err := call()
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden || ae.Code != "unpoliced_endpoint" {
			t.Errorf("%s: %v, want the gateway's 403 unpoliced_endpoint", name, err)
		}
	}
	mu.Lock()
	if len(reached) != 0 {
		t.Errorf("refused calls reached the upstream: %q", reached)
	}
	reached = nil
	mu.Unlock()

	// Free requests under the same families pass.
	free := []struct{ method, path string }{
		{"GET", "agents/sessions/s_1"}, {"POST", "threads/t_1/runs/r_1/cancel"}, {"POST", "threads/t_1/messages"},
		{"POST", "chatkit/sessions/cks_1/cancel"}, {"GET", "threads/t_1/runs/r_1"}, {"POST", "threads"},
		// What stops spending is never refused: a batch's or a fine-tuning
		// job's cancellation, an automation's pause.
		{"POST", "batches/batch_1/cancel"}, {"POST", "fine_tuning/jobs/ftjob_1/cancel"}, {"POST", "agents/automations/a_1/pause"},
	}
	for _, f := range free {
		if err := oc.Execute(ctx, f.method, f.path, map[string]any{}, nil); err != nil {
			t.Errorf("%s %s: %v, want the upstream's answer", f.method, f.path, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reached) != len(free) || !strings.HasPrefix(reached[0], "GET /v1/agents/sessions/s_1") {
		t.Errorf("the upstream got %q, want the %d free requests", reached, len(free))
	}
}
