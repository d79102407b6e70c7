package middleware_test

import (
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

func pass(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return next.Handle(ctx, req)
	})
}

var okResp = &middleware.Response{Model: "m"}

func BenchmarkChain5PassThrough(b *testing.B) {
	h := middleware.Chain(pass, pass, pass, pass, pass)(middleware.HandlerFunc(
		func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) { return okResp, nil }))
	ctx := context.Background()
	req := &middleware.Request{Model: "m"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func TestChainSkipsNil(t *testing.T) {
	var order []string
	mk := func(n string) middleware.Middleware {
		return func(next middleware.Handler) middleware.Handler {
			return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
				order = append(order, n)
				return next.Handle(ctx, req)
			})
		}
	}
	h := middleware.Chain(mk("a"), nil, mk("b"))(middleware.HandlerFunc(
		func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) { return okResp, nil }))
	if _, err := h.Handle(context.Background(), &middleware.Request{}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "a,b" {
		t.Fatalf("order = %v", order)
	}
}

func TestDeadlineError(t *testing.T) {
	errCall := errors.New("call timeout")
	ctx, cancel := context.WithTimeoutCause(context.Background(), -1, errCall)
	defer cancel()
	err := middleware.DeadlineCause(ctx, time.Second, errCall)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errCall) || !errors.Is(err, middleware.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	if middleware.DeadlineCause(context.Background(), 0, errCall) != nil {
		t.Fatal("live context has no deadline error")
	}
}

func TestAccumulatorAndReplayRoundTrip(t *testing.T) {
	orig := &middleware.Response{
		Message: middleware.Message{Role: middleware.RoleAssistant, Content: "héllo wörld, this is long", Reasoning: "think",
			ToolCalls: []middleware.ToolCall{{ID: "c1", Name: "a", Arguments: `{"x":1}`}, {ID: "c2", Name: "b", Arguments: `{}`}}},
		FinishReason: "tool_calls", Usage: middleware.Usage{InputTokens: 10, OutputTokens: 5},
	}
	var acc middleware.Accumulator
	err := middleware.Replay(context.Background(), orig, 3, func(ctx context.Context, c middleware.Chunk) error {
		acc.Add(c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := acc.Response()
	if got.Message.Content != orig.Message.Content || got.Message.Reasoning != "think" || got.FinishReason != "tool_calls" ||
		len(got.Message.ToolCalls) != 2 || got.Message.ToolCalls[1] != orig.Message.ToolCalls[1] || got.Usage != orig.Usage {
		t.Fatalf("got %+v", got)
	}
}

func TestDetectStage(t *testing.T) {
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
		if got := middleware.DetectStage(req); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Property: whatever the conversation, a request that offers no tool
// (natively or as a one-shot agent's format instructions) is never tool
// selection, so plain chat is never routed to a tool-selection model.
func TestRequestWithoutToolsIsNotToolSelection(t *testing.T) {
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
		if got := middleware.DetectStage(req); got == middleware.StageToolSelection {
			t.Fatalf("case %d: request without tools detected as %s: %+v", i, got, req.Messages)
		}
		// Through the instrument layer too, in a run and outside one.
		h := middleware.Then(middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
			if s := middleware.CallInfoFrom(ctx).Stage(); s == middleware.StageToolSelection {
				t.Fatalf("case %d: instrumented stage %s", i, s)
			}
			return &middleware.Response{Model: r.Model}, nil
		}), middleware.Instrument(nil, nil))
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
	ctx, run := middleware.StartRun(context.Background(), "r")
	h := middleware.Then(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: "m", Usage: middleware.Usage{InputTokens: 1, OutputTokens: 1}}, nil
	}), middleware.Instrument(nil, nil))
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
	if !strings.Contains(run.Report(), "run r: 400 calls") {
		t.Fatal(run.Report())
	}
}

// TestFormatPicoIsExact checks that FormatPico's text reads back as the
// amount it printed, for random amounts of every magnitude.
func TestFormatPicoIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10_000 {
		p := rng.Int64N(1 << (i % 62))
		if i%2 == 1 {
			p = -p
		}
		s := middleware.FormatPico(p)
		r, ok := new(big.Rat).SetString(strings.Replace(s, "$", "", 1))
		if !ok || r.Cmp(big.NewRat(p, 1_000_000_000_000)) != 0 {
			t.Fatalf("FormatPico(%d) = %q", p, s)
		}
	}
	if got := middleware.FormatPico(56_400_000); got != "$0.0000564" {
		t.Errorf("FormatPico(56400000) = %q", got)
	}
}
