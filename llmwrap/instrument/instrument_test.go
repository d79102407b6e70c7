package instrument_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

func TestDetectStage(t *testing.T) {
	t.Parallel()
	tool := middleware.Message{Role: middleware.RoleTool, Content: "ok"}
	user := middleware.Message{Role: middleware.RoleUser, Content: "fix it"}
	asst := middleware.Message{Role: middleware.RoleAssistant, Content: "done"}
	mrkl := "Answer the following questions...\nQuestion: the input question you must answer\nThought: ...\nAction: ...\nAction Input: ...\nObservation: the result of the action\n...\nBegin!\n\nQuestion: I'm out of disk space.\n"
	for _, tc := range []struct {
		name  string
		msgs  []middleware.Message
		tools bool
		want  middleware.Stage
	}{
		{"empty", nil, false, middleware.StageFinalAnswer},
		{"user first", []middleware.Message{user}, true, middleware.StageToolSelection},
		{"plain chat", []middleware.Message{user}, false, middleware.StageFinalAnswer},
		{"plain chat, later turn", []middleware.Message{user, asst, user}, false, middleware.StageFinalAnswer},
		{"tool result", []middleware.Message{user, tool}, true, middleware.StageResultAnalysis},
		{"tool result, tools withdrawn", []middleware.Message{user, tool}, false, middleware.StageResultAnalysis},
		{"assistant last", []middleware.Message{user, asst}, false, middleware.StageFinalAnswer},
		{"one-shot first", []middleware.Message{{Role: middleware.RoleUser, Content: mrkl}}, false, middleware.StageToolSelection},
		{"one-shot observation", []middleware.Message{{Role: middleware.RoleUser, Content: mrkl + "Thought: look\nAction: check_disk\nAction Input: /\nObservation: 95%\n"}}, false, middleware.StageResultAnalysis},
	} {
		req := &middleware.Request{Messages: tc.msgs}
		if tc.tools {
			req.Tools = []middleware.Tool{{Name: "t"}}
		}
		if got := instrument.DetectStage(req); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// Tools the core does not model, kept in Extra (a custom tool, legacy
	// functions), offer tools too: tool selection.
	for _, extra := range []string{`{"tools":[{"custom":{"name":"grep"},"type":"custom"}]}`, `{"functions":[{"name":"check_disk"}]}`} {
		req := &middleware.Request{Messages: []middleware.Message{user}, Extra: []byte(extra)}
		if got := instrument.DetectStage(req); got != middleware.StageToolSelection {
			t.Errorf("a user's question with %s: %q, want tool_selection", extra, got)
		}
	}
}

// Property: whatever the conversation, a request that offers no tool
// (natively or as a one-shot agent's format instructions) is never tool
// selection, so plain chat is never routed to a tool-selection model.
func TestRequestWithoutToolsIsNotToolSelection(t *testing.T) {
	t.Parallel()
	roles := []middleware.Role{middleware.RoleSystem, middleware.RoleUser, middleware.RoleAssistant, middleware.RoleTool}
	words := []string{"check", "disk", "Question:", "Thought:", "Observation:", "Final Answer:", "tool", "select", "\n", "Action:", "why"}
	rng := rand.New(rand.NewPCG(1, 15))
	for i := range 5000 {
		req := &middleware.Request{Model: "gpt-4o"}
		for range rng.IntN(6) {
			var b strings.Builder
			for range rng.IntN(12) {
				b.WriteString(words[rng.IntN(len(words))])
				b.WriteByte(' ')
			}
			req.Messages = append(req.Messages, middleware.Message{Role: roles[rng.IntN(len(roles))], Content: b.String()})
		}
		if got := instrument.DetectStage(req); got == middleware.StageToolSelection {
			t.Fatalf("case %d: request without tools detected as %s: %+v", i, got, req.Messages)
		}
		// Through the instrument layer too, in a run and outside one.
		h := middleware.Then(middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
			if s := middleware.CallInfoFrom(ctx).Stage(); s == middleware.StageToolSelection {
				t.Fatalf("case %d: instrumented stage %s", i, s)
			}
			return &middleware.Response{Model: r.Model}, nil
		}), instrument.New(nil, nil))
		ctx, _ := middleware.StartRun(context.Background(), "r")
		if i%2 == 0 {
			ctx = context.Background()
		}
		if _, err := h.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunConcurrentRecording(t *testing.T) {
	t.Parallel()
	ctx, run := middleware.StartRun(context.Background(), "r")
	h := middleware.Then(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: "m", Usage: middleware.Usage{InputTokens: 1, OutputTokens: 1}}, nil
	}), instrument.New(nil, nil))
	done := make(chan struct{})
	for range 8 {
		go func() {
			for range 50 {
				h.Handle(ctx, &middleware.Request{Model: "m"})
			}
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	tot := run.Totals()
	if tot.Calls != 400 || tot.Usage.Total() != 800 || run.Seq() != 400 {
		t.Fatalf("totals %+v", tot)
	}
}

// A call no run records and no observer watches skips the bookkeeping
// (the clock, the facts' copy): its layers see the same CallInfo, and it
// returns the same answer and error as an observed call and a recorded
// one, whose facts agree with each other.
func TestUnobservedCallAnswersAsObserved(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		resp := &middleware.Response{Model: "m-2024", Usage: middleware.Usage{InputTokens: int64(rng.IntN(100)), OutputTokens: int64(rng.IntN(50))},
			Message: middleware.Message{Role: middleware.RoleAssistant, Content: "done"}, FromCache: rng.IntN(4) == 0}
		if rng.IntN(2) == 0 {
			resp.Message.ToolCalls = []middleware.ToolCall{{ID: "c", Name: "check_disk"}}
		}
		var wantErr error
		if rng.IntN(4) == 0 {
			resp, wantErr = nil, middleware.ErrTimeout
		}
		var seen []middleware.CallFacts
		model := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			seen = append(seen, middleware.CallInfoFrom(ctx).Facts())
			return resp, wantErr
		})
		pricer := middleware.PricerFunc(func(string, middleware.Usage) (int64, bool) { return 7, true })
		var finished []middleware.CallFacts
		obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			if f, ok := e.(middleware.CallFinished); ok {
				finished = append(finished, f.Facts)
			}
		})
		req := &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}}}
		plain := middleware.Then(model, instrument.New(pricer, nil), middleware.Meter(pricer, nil))
		observed := middleware.Then(model, instrument.New(pricer, obs), middleware.Meter(pricer, nil))
		ctx := middleware.WithTeam(context.Background(), "ops")
		runCtx, run := middleware.StartRun(ctx, "r")
		r1, e1 := plain.Handle(ctx, req)
		r2, e2 := observed.Handle(ctx, req)
		r3, e3 := plain.Handle(runCtx, req)
		if r1 != resp || r2 != resp || r3 != resp || e1 != wantErr || e2 != wantErr || e3 != wantErr {
			t.Fatalf("case %d: answers %p %p %p (want %p), errors %v %v %v (want %v)", i, r1, r2, r3, resp, e1, e2, e3, wantErr)
		}
		for j, f := range seen {
			if f.Team != "ops" || f.Model != "m" || f.RequestedModel != "m" || f.Stage != seen[0].Stage || len(f.Attempts) != 1 {
				t.Fatalf("case %d: call %d's layers saw %+v", i, j, f)
			}
		}
		rec := run.Calls()[0].CallFacts
		fin := finished[0]
		if rec.Model != fin.Model || rec.CostPico != fin.CostPico || rec.Final != fin.Final || rec.Cache != fin.Cache ||
			strings.Join(rec.ToolCalls, ",") != strings.Join(fin.ToolCalls, ",") || len(rec.Attempts) != len(fin.Attempts) {
			t.Fatalf("case %d: recorded %+v, observed %+v", i, rec, fin)
		}
	}
}
