package langchaingo_test

import (
	"testing"

	"github.com/tmc/langchaingo/testing/llmtest"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestConformanceLLMTest runs langchaingo's conformance suite against the
// wrapped model: langchaingo's real openai client talking HTTP to a scripted
// server, behind an instrumented chain.
func TestConformanceLLMTest(t *testing.T) {
	srv := openaitest.NewServer(t)
	// The suite's prompts, answered sensibly.
	srv.On(openaitest.LastContains("Reply with 'Hello'")).Reply(openaitest.Text("Hello"))
	srv.On(openaitest.LastContains("Reply with 'OK'")).Reply(openaitest.Text("OK"))
	srv.On(openaitest.LastContains("Say 'OK'")).Reply(openaitest.Text("OK"))
	srv.On(openaitest.LastContains("Count to 5")).Reply(openaitest.Text("1, 2, 3, 4, 5"))
	srv.On(openaitest.LastContains("Count from 1 to 3")).Reply(openaitest.Text("1, 2, 3"))
	srv.On(openaitest.LastContains("weather in San Francisco")).Reply(
		openaitest.ToolCalls(openaitest.Call("call_weather", "get_weather", `{"location":"San Francisco, US"}`)))
	srv.On(openaitest.LastContains("25 + 17")).Reply(openaitest.Text("25 + 17 = 42"))
	srv.On(openaitest.LastContains("test")).Reply(openaitest.Text("ok")) // the tool support probe

	var sp spy
	llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)},
		middleware.Chain(instrument.New(nil, nil), sp.mw))

	// TestLLM marks the test parallel and runs its checks as parallel
	// subtests, which finish after this function returns: check what went
	// through the chain once they are done.
	t.Cleanup(func() {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if len(sp.reqs) == 0 || len(sp.reqs) != srv.Count() {
			t.Errorf("chain saw %d requests, server %d", len(sp.reqs), srv.Count())
		}
		for i, err := range sp.errs {
			if err != nil {
				t.Errorf("request %d failed in the chain: %v", i, err)
			}
		}
		for _, rec := range srv.Requests() {
			if rec.Chat == nil || rec.Chat.Model != "gpt-4o" {
				t.Errorf("request %d: model %v", rec.Seq, rec.Chat)
			}
		}
	})
	llmtest.TestLLM(t, llm)
}
