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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// TestFormatPicoIsExact checks that FormatPico's text reads back as the
// amount it printed, for random amounts of every magnitude.
func TestFormatPicoIsExact(t *testing.T) {
	t.Parallel()
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

func TestBilledModel(t *testing.T) {
	prices := map[string]int64{"gpt-4o": 10, "gpt-4o-2024-05-13": 20}
	p := middleware.PricerFunc(func(model string, u middleware.Usage) (int64, bool) {
		c, ok := prices[model]
		return c * u.InputTokens, ok
	})
	for _, tt := range []struct {
		requested, answered, want string
	}{
		{"gpt-4o", "", "gpt-4o"},
		{"gpt-4o", "gpt-4o", "gpt-4o"},
		{"gpt-4o", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"}, // the answer's own price
		{"gpt-4o", "gpt-4o-2099-01-01", "gpt-4o"},            // unknown to the pricer: the requested price
		{"unknown", "also-unknown", "unknown"},
	} {
		if got := middleware.BilledModel(p, tt.requested, tt.answered); got != tt.want {
			t.Errorf("BilledModel(%q, %q) = %q, want %q", tt.requested, tt.answered, got, tt.want)
		}
	}
	if c, ok := middleware.CostOfAnswer(p, "gpt-4o", "gpt-4o-2024-05-13", middleware.Usage{InputTokens: 3}); !ok || c != 60 {
		t.Errorf("CostOfAnswer = %d, %v; want 60", c, ok)
	}
	if _, ok := middleware.CostOfAnswer(nil, "gpt-4o", "", middleware.Usage{InputTokens: 3}); ok {
		t.Error("a nil pricer priced a call")
	}
}
