package openai_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
)

// TestAssistantsRunsAreNamedAsUnpoliced: go-openai's Assistants runs (a
// run created, a thread created and run, a run given its tool outputs)
// call the assistant's model, billed by the provider outside the chain.
// They are warned about once per endpoint, as the other billable
// requests are, and refused before the upstream with
// WithUnpolicedRefused; what costs nothing in the same family (a thread
// created, a run cancelled, a run read) passes silently. Before, the runs
// passed silently even through a strict client: a budget escaped by
// another door.
func TestAssistantsRunsAreNamedAsUnpoliced(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	var mu sync.Mutex
	var reached []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"run_1","object":"thread.run","status":"queued"}`)
	}))
	defer up.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	client := func(opts ...twopenai.Option) *openai.Client {
		cfg := openai.DefaultConfig("test-key")
		cfg.BaseURL = up.URL + "/v1"
		cfg.HTTPClient = twopenai.NewHTTPClient(nil, append(opts, twopenai.WithBaseTransport(base))...)
		return openai.NewClientWithConfig(cfg)
	}
	ctx := context.Background()
	runs := func(c *openai.Client) map[string]error {
		_, err1 := c.CreateRun(ctx, "thread_1", openai.RunRequest{AssistantID: "asst_1"})
		_, err2 := c.CreateThreadAndRun(ctx, openai.CreateThreadAndRunRequest{RunRequest: openai.RunRequest{AssistantID: "asst_1"}})
		_, err3 := c.SubmitToolOutputs(ctx, "thread_1", "run_1", openai.SubmitToolOutputsRequest{
			ToolOutputs: []openai.ToolOutput{{ToolCallID: "call_1", Output: "ok"}}})
		return map[string]error{"CreateRun": err1, "CreateThreadAndRun": err2, "SubmitToolOutputs": err3}
	}

	strict := client(twopenai.WithUnpolicedRefused())
	for name, err := range runs(strict) {
		var ae *openai.APIError
		if !errors.As(err, &ae) || ae.HTTPStatusCode != http.StatusBadRequest || !strings.Contains(ae.Message, "WithUnpolicedRefused") {
			t.Errorf("%s through the strict client: %v, want its 400 refusal", name, err)
		}
	}
	// The other SDKs' billable calls under a path of ids or outside
	// go-openai: an eval's run, a Realtime session, a container.
	for _, path := range []string{"/v1/evals/eval_1/runs", "/v1/realtime/sessions", "/v1/realtime/client_secrets",
		"/v1/realtime/transcription_sessions", "/v1/containers"} {
		req, _ := http.NewRequest("POST", up.URL+path, strings.NewReader(`{}`))
		resp, err := twopenai.NewHTTPClient(nil, twopenai.WithBaseTransport(base), twopenai.WithUnpolicedRefused()).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s through the strict client: %d, want its 400 refusal", path, resp.StatusCode)
		}
	}
	mu.Lock()
	if len(reached) != 0 {
		t.Errorf("refused runs reached the upstream: %q", reached)
	}
	reached = nil
	mu.Unlock()
	// What costs nothing passes the strict client.
	if _, err := strict.CreateThread(ctx, openai.ThreadRequest{}); err != nil {
		t.Errorf("CreateThread: %v", err)
	}
	if _, err := strict.CancelRun(ctx, "thread_1", "run_1"); err != nil {
		t.Errorf("CancelRun: %v", err)
	}
	if _, err := strict.RetrieveRun(ctx, "thread_1", "run_1"); err != nil {
		t.Errorf("RetrieveRun: %v", err)
	}
	mu.Lock()
	if len(reached) != 3 {
		t.Errorf("the upstream got %q, want the 3 free requests", reached)
	}
	reached = nil
	mu.Unlock()

	lax := client()
	for range 2 {
		for name, err := range runs(lax) {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if n := strings.Count(logs.String(), "passed through without the policy"); n != 3 {
		t.Errorf("%d warnings, want one per run endpoint; logs:\n%s", n, logs.String())
	}
}

// TestRealtimeUpgradeIsNamedAsUnpoliced: a Realtime session is a GET
// upgraded to a WebSocket (a WebSocket library's handshake through the
// client), whose model calls the provider bills: it is refused with
// WithUnpolicedRefused and warned about otherwise, as the gateway refuses
// it; a plain GET of the same path is not a session.
func TestRealtimeUpgradeIsNamedAsUnpoliced(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusBadRequest) // no WebSocket here: the handshake is refused
	}))
	defer up.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	handshake := func(c *http.Client, upgrade bool) int {
		req, _ := http.NewRequest("GET", up.URL+"/v1/realtime?model=gpt-realtime", nil)
		if upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	strict := twopenai.NewHTTPClient(nil, twopenai.WithBaseTransport(base), twopenai.WithUnpolicedRefused())
	if got := handshake(strict, true); got != http.StatusBadRequest || reached.Load() != 0 {
		t.Fatalf("a Realtime handshake through the strict client: %d, the upstream reached %d times; want the 400 refusal, unsent", got, reached.Load())
	}
	handshake(strict, false)
	if reached.Load() != 1 {
		t.Fatalf("a plain GET of the path reached the upstream %d times, want 1", reached.Load())
	}
	handshake(twopenai.NewHTTPClient(nil, twopenai.WithBaseTransport(base)), true)
	if reached.Load() != 2 || !strings.Contains(logs.String(), "endpoint=/realtime") {
		t.Fatalf("a Realtime handshake: reached %d times; logs:\n%s", reached.Load(), logs.String())
	}
}
