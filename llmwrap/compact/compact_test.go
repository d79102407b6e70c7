package compact_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// conversation builds system, user task, then turns assistant tool calls
// (calls per turn) each with its results of size bytes.
func conversation(turns, calls, size int) []middleware.Message {
	msgs := []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are a DevOps agent."},
		{Role: middleware.RoleUser, Content: "Disk full on web-1: fix it."},
	}
	for t := range turns {
		a := middleware.Message{Role: middleware.RoleAssistant}
		for c := range calls {
			a.ToolCalls = append(a.ToolCalls, middleware.ToolCall{ID: fmt.Sprintf("call_%d_%d", t, c), Name: "read_log", Arguments: `{"host":"web-1"}`})
		}
		msgs = append(msgs, a)
		for c := range calls {
			msgs = append(msgs, middleware.Message{Role: middleware.RoleTool, ToolCallID: fmt.Sprintf("call_%d_%d", t, c), Content: bigResult(t*10+c, size)})
		}
	}
	return msgs
}

func wire(msgs []middleware.Message) []openaitest.Message {
	out := make([]openaitest.Message, len(msgs))
	for i, m := range msgs {
		out[i] = openaitest.Message{Role: string(m.Role), ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			out[i].ToolCalls = append(out[i].ToolCalls, openaitest.ToolCall{ID: tc.ID})
		}
	}
	return out
}

func TestFitsPassesTheSameRequest(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: 100_000, Strategies: []compact.Strategy{compact.Drop}}))
	h := middleware.Then(rec, mw)
	ctx, _ := middleware.StartRun(context.Background(), "fits")
	req := &middleware.Request{Model: "gpt-4o-mini", Messages: conversation(3, 1, 1000)}
	if _, err := h.Handle(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := rec.requests()[0]; got != req {
		t.Fatal("a request that fits was not passed on as is")
	}
}

// A request whose bound (a token a byte, see tokens.BoundForCall) is
// within the ceiling passes uncounted; one whose bytes are over it and
// whose tokens are not passes as is, counted.
func TestFitsByTheBoundIsNotCounted(t *testing.T) {
	t.Parallel()
	e := tokens.New()
	msgs := conversation(3, 1, 1000)
	n := tokens.New(tokens.WithCacheSize(0)).Request("gpt-4o-mini", &middleware.Request{Messages: msgs})
	bound := e.Bound("gpt-4o-mini", &middleware.Request{Messages: msgs})
	if bound <= n {
		t.Fatalf("bound %d, count %d", bound, n)
	}
	for _, tc := range []struct {
		ceiling int64
		counted bool
	}{{bound, false}, {n, true}} {
		var got *middleware.Request
		counted := false
		next := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
			got = r
			_, counted = tokens.BoundForCall(ctx, e, r.Model, r)
			return &middleware.Response{Model: r.Model}, nil
		})
		mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: tc.ceiling, Strategies: []compact.Strategy{compact.Drop}}, compact.WithEstimator(e)))
		h := middleware.Then(next, instrument.New(nil, nil), mw)
		ctx, _ := middleware.StartRun(context.Background(), "fits")
		req := &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}
		if _, err := h.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
		if got != req || counted != tc.counted {
			t.Fatalf("ceiling %d (count %d, bound %d): passed as is %v, counted %v; want true, %v", tc.ceiling, n, bound, got == req, counted, tc.counted)
		}
	}
}

func TestOffByDefault(t *testing.T) {
	t.Parallel()
	mw, err := mwOf(compact.New(compact.Config{Strategies: []compact.Strategy{compact.Drop}}))
	if err != nil || mw != nil {
		t.Fatalf("New without a ceiling = %v, %v; want nil, nil", mw != nil, err)
	}
	if _, err := compact.New(compact.Config{MaxInputTokens: 10, Strategies: []compact.Strategy{"shrink"}}); !errors.Is(err, compact.ErrConfig) {
		t.Fatalf("unknown strategy: %v, want ErrConfig", err)
	}
}

func TestTooLargeIsTyped(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: 2_000, KeepLastTurns: 2, Strategies: []compact.Strategy{compact.Drop}},
		compact.WithEstimator(compact.Approx{})))
	h := middleware.Then(rec, mw)
	msgs := conversation(6, 1, 8_000) // the last two turns alone are over the ceiling
	snapshot := (&middleware.Request{Messages: msgs}).DeepClone().Messages
	ctx, _ := middleware.StartRun(context.Background(), "too-large")
	_, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs})
	var tl *compact.TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, compact.ErrTooLarge) || !errors.Is(err, middleware.ErrContextWindow) {
		t.Fatalf("err = %v; want a *TooLargeError matching ErrTooLarge and ErrContextWindow", err)
	}
	if tl.Ceiling != 2_000 || tl.Estimate <= tl.Ceiling || tl.Original <= tl.Estimate {
		t.Fatalf("error numbers: %+v", tl)
	}
	if !strings.Contains(err.Error(), "2000") || len(rec.requests()) != 0 {
		t.Fatalf("error %q, %d requests sent", err, len(rec.requests()))
	}
	if !reflect.DeepEqual(msgs, snapshot) {
		t.Fatal("the caller's messages changed")
	}
	// Without strategies a request over the ceiling fails the same way.
	mw, _ = mwOf(compact.New(compact.Config{MaxInputTokens: 2_000}, compact.WithEstimator(compact.Approx{})))
	if _, err := middleware.Then(rec, mw).Handle(context.Background(), &middleware.Request{Messages: msgs}); !errors.Is(err, compact.ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestDropKeepsHeadTailAndPairs(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: 6_000, KeepLastTurns: 2, BlockSize: 3, Strategies: []compact.Strategy{compact.Drop}},
		compact.WithEstimator(compact.Approx{})))
	h := middleware.Then(rec, mw)
	ctx, run := middleware.StartRun(context.Background(), "drop")
	msgs := conversation(12, 2, 1_500)
	msgs = append(msgs, middleware.Message{Role: middleware.RoleUser, Content: "And now check web-2."})
	snapshot := (&middleware.Request{Messages: msgs}).DeepClone().Messages
	if _, err := h.Handle(ctx, &middleware.Request{Model: "m", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(msgs, snapshot) {
		t.Fatal("the caller's messages changed")
	}
	got := rec.requests()[0].Messages
	if est := (compact.Approx{}).Request("m", &middleware.Request{Messages: got}); est > 6_000 {
		t.Fatalf("compacted estimate %d over the ceiling", est)
	}
	if !reflect.DeepEqual(got[:2], msgs[:2]) || !reflect.DeepEqual(got[len(got)-1], msgs[len(msgs)-1]) {
		t.Fatal("system prompt, first or latest user message touched")
	}
	if !strings.Contains(got[2].Content, "3 earlier turns (9 messages) were dropped") {
		t.Fatalf("marker: %q", got[2].Content)
	}
	if err := openaitest.CheckToolPairing(wire(got)); err != nil {
		t.Fatal(err)
	}
	f := run.Calls()
	_ = f // outside Instrument no call is recorded; the notes are checked in the agent test
}

// Pairing and the untouched head and latest user message hold for random
// conversations and every strategy order.
func TestPairingProperty(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	orders := [][]compact.Strategy{{compact.Offload, compact.Drop}, {compact.Drop}, {compact.Offload, compact.Summarise, compact.Drop}, {compact.Summarise}}
	for i := range 200 {
		var msgs []middleware.Message
		msgs = append(msgs, middleware.Message{Role: middleware.RoleSystem, Content: "sys"}, middleware.Message{Role: middleware.RoleUser, Content: "task"})
		for t := range 5 + r.IntN(30) {
			switch r.IntN(4) {
			case 0:
				msgs = append(msgs, middleware.Message{Role: middleware.RoleUser, Content: strings.Repeat("u", r.IntN(3000))})
			case 1:
				msgs = append(msgs, middleware.Message{Role: middleware.RoleAssistant, Content: strings.Repeat("a", r.IntN(3000))})
			default:
				n := 1 + r.IntN(3)
				a := middleware.Message{Role: middleware.RoleAssistant}
				for c := range n {
					a.ToolCalls = append(a.ToolCalls, middleware.ToolCall{ID: fmt.Sprintf("c%d_%d", t, c), Name: "t", Arguments: "{}"})
				}
				msgs = append(msgs, a)
				for c := range n {
					msgs = append(msgs, middleware.Message{Role: middleware.RoleTool, ToolCallID: fmt.Sprintf("c%d_%d", t, c), Content: bigResult(t, r.IntN(8000))})
				}
			}
		}
		order := orders[i%len(orders)]
		rec := &recorder{fn: func(*middleware.Request) string { return "short summary" }}
		mw, err := mwOf(compact.New(compact.Config{MaxInputTokens: int64(2000 + r.IntN(20000)), KeepLastTurns: 1 + r.IntN(4), BlockSize: 1 + r.IntN(6),
			Strategies: order}, compact.WithEstimator(compact.Approx{}), compact.WithOffloader(&memOffloader{})))
		if err != nil {
			t.Fatal(err)
		}
		snapshot := (&middleware.Request{Messages: msgs}).DeepClone().Messages
		ctx, _ := middleware.StartRun(context.Background(), "prop")
		_, err = middleware.Then(rec, mw).Handle(ctx, &middleware.Request{Model: "m", Messages: msgs})
		if err != nil && !errors.Is(err, compact.ErrTooLarge) {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(msgs, snapshot) {
			t.Fatalf("case %d: the caller's messages changed", i)
		}
		reqs := rec.requests()
		if err != nil {
			continue
		}
		got := reqs[len(reqs)-1].Messages // the main call comes after any summary call
		if err := openaitest.CheckToolPairing(wire(got)); err != nil {
			t.Fatalf("case %d (%v): %v", i, order, err)
		}
		if !reflect.DeepEqual(got[:2], msgs[:2]) {
			t.Fatalf("case %d: head touched", i)
		}
		lastUser := func(ms []middleware.Message) middleware.Message {
			for j := len(ms) - 1; j >= 0; j-- {
				if ms[j].Role == middleware.RoleUser && !strings.HasPrefix(ms[j].Content, "[tokenwise:") {
					return ms[j]
				}
			}
			return middleware.Message{}
		}
		if !reflect.DeepEqual(lastUser(got), lastUser(msgs)) {
			t.Fatalf("case %d: latest user message touched", i)
		}
	}
}

// The summary call goes through the handler below, is recorded in the run
// as its own call, and is cached: the same block is never summarised twice,
// not even in another run.
func TestSummariseCachedAndBilled(t *testing.T) {
	t.Parallel()
	summaries := 0
	rec := &recorder{fn: func(req *middleware.Request) string {
		if req.Model == "gpt-4o-mini" {
			summaries++
			return "The agent read 3 logs of web-1; /var/log grew to 20 GB."
		}
		return "ok"
	}}
	// A fee of 7 pico-dollars a request, and 2 an input token.
	pricer := middleware.PricerFunc(func(_ string, u middleware.Usage) (int64, bool) { return 7 + 2*u.InputTokens, true })
	c, err := compact.New(compact.Config{MaxInputTokens: 5_000, KeepLastTurns: 2, BlockSize: 4, SummaryModel: "gpt-4o-mini",
		Strategies: []compact.Strategy{compact.Summarise}}, compact.WithEstimator(compact.Approx{}), compact.WithPricer(pricer))
	if err != nil {
		t.Fatal(err)
	}
	h := middleware.Then(rec, instrument.New(pricer, nil), c.Middleware())
	msgs := conversation(6, 1, 4_000)
	for _, id := range []string{"run-1", "run-2"} {
		ctx, run := middleware.StartRun(context.Background(), id)
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o", Messages: msgs}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o", Messages: msgs}); err != nil {
			t.Fatal(err)
		}
		if id == "run-1" {
			calls := run.Calls()
			if len(calls) != 3 || calls[0].Stage != compact.StageSummary || calls[0].Model != "gpt-4o-mini" || calls[0].CostPico != 7+2*calls[0].Usage.InputTokens {
				t.Fatalf("run calls: %+v", calls)
			}
			// The saving is the input's price before less after: the
			// request's fee is paid either way.
			if calls[1].Saved.InputTokens <= 0 || calls[1].SavedPico != 2*calls[1].Saved.InputTokens || len(calls[1].Notes) == 0 {
				t.Fatalf("savings of the compacted call: %+v", calls[1])
			}
		}
	}
	if summaries != 1 {
		t.Fatalf("%d summary calls; want 1 (cached)", summaries)
	}
	main := rec.requests()[1].Messages
	if !strings.Contains(main[2].Content, "summary of 4 earlier turns") || !strings.Contains(main[2].Content, "20 GB") {
		t.Fatalf("summary message: %q", main[2].Content)
	}
}

// A failed summary falls through to the next strategy.
func TestSummaryFailureFallsThrough(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	next := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		if req.Model == "cheap" {
			return nil, boom
		}
		return &middleware.Response{Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	})
	mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: 5_000, KeepLastTurns: 2, SummaryModel: "cheap",
		Strategies: []compact.Strategy{compact.Summarise, compact.Drop}}, compact.WithEstimator(compact.Approx{})))
	if _, err := middleware.Then(next, mw).Handle(context.Background(), &middleware.Request{Model: "m", Messages: conversation(6, 1, 4_000)}); err != nil {
		t.Fatal(err)
	}
	mw, _ = mwOf(compact.New(compact.Config{MaxInputTokens: 5_000, KeepLastTurns: 2, SummaryModel: "cheap",
		Strategies: []compact.Strategy{compact.Summarise}}, compact.WithEstimator(compact.Approx{})))
	_, err := middleware.Then(next, mw).Handle(context.Background(), &middleware.Request{Model: "m", Messages: conversation(6, 1, 4_000)})
	if !errors.Is(err, compact.ErrTooLarge) || !errors.Is(err, compact.ErrSummary) || !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

// Once formed, frozen blocks are reused as they are, also when a later
// call would fit without some of them, and events report the compaction.
func TestFrozenPrefixReused(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	var events []middleware.ContextCompacted
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if cc, ok := e.(middleware.ContextCompacted); ok {
			events = append(events, cc)
		}
	})
	mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: 8_000, KeepLastTurns: 2, BlockSize: 2, Strategies: []compact.Strategy{compact.Drop}},
		compact.WithEstimator(compact.Approx{})))
	h := middleware.Then(rec, instrument.New(nil, obs), mw)
	ctx, _ := middleware.StartRun(context.Background(), "frozen")
	full := conversation(12, 1, 4_000)
	var prefix []middleware.Message
	for n := 8; n <= 12; n++ {
		if _, err := h.Handle(ctx, &middleware.Request{Model: "m", Messages: full[:2+2*n]}); err != nil {
			t.Fatal(err)
		}
		got := rec.requests()[len(rec.requests())-1].Messages
		k := 0
		for k < len(got) && (k < 2 || strings.HasPrefix(got[k].Content, "[tokenwise:")) {
			k++
		}
		if prefix != nil && !reflect.DeepEqual(got[:len(prefix)], prefix) {
			t.Fatalf("call with %d turns changed the compacted prefix", n)
		}
		prefix = append([]middleware.Message(nil), got[:k]...)
	}
	if len(events) != 5 || events[0].Strategy != "drop" || events[0].AfterTokens >= events[0].BeforeTokens {
		t.Fatalf("events: %+v", events)
	}
}
