package compact_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// fuzzBytes reads a fuzzer's input as a stream of small choices; past its
// end every choice is 0.
type fuzzBytes struct {
	b []byte
	i int
}

func (f *fuzzBytes) byte() byte {
	if f.i >= len(f.b) {
		return 0
	}
	f.i++
	return f.b[f.i-1]
}

// fuzzEstimator counts the fuzzed requests exactly (memoised per message).
var fuzzEstimator = tokens.New()

func (f *fuzzBytes) n(k int) int { return int(f.byte()) % k }

// text returns a text of a kind the byte stream picks: empty, short,
// invalid UTF-8, non-Latin, JSON-like or large.
func (f *fuzzBytes) text(i int) string {
	switch f.n(8) {
	case 0:
		return ""
	case 1:
		return "\xff\xfe\xc3(" + fmt.Sprint(i)
	case 2:
		return strings.Repeat("日本語のテキスト ", 1+f.n(40))
	case 3:
		return fmt.Sprintf(`{"path":"/var/%d","n":[1,2,3]}`, i)
	case 4:
		return bigResult(i, 200+f.n(16)*400)
	case 5:
		return strings.Repeat(" ", f.n(50))
	default:
		return fmt.Sprintf("message %d: check the disk of web-%d", i, f.n(9))
	}
}

// fuzzConversation builds a conversation an agent may validly send from
// the byte stream: leading instructions (or none), a task (or none), then
// user, assistant, system and developer messages anywhere, assistant tool
// calls (one or parallel, ids unique or reused across turns as some
// servers do) with all their results in any order, names, multimodal parts,
// empty, huge and invalid UTF-8 texts.
func fuzzConversation(f *fuzzBytes) []middleware.Message {
	var msgs []middleware.Message
	for range f.n(3) {
		role := middleware.RoleSystem
		if f.n(2) == 1 {
			role = "developer"
		}
		msgs = append(msgs, middleware.Message{Role: role, Content: "You are an agent. " + f.text(len(msgs))})
	}
	if f.n(4) != 0 {
		msgs = append(msgs, middleware.Message{Role: middleware.RoleUser, Content: "Task: " + f.text(len(msgs))})
	}
	turns := f.n(40)
	if f.n(16) == 0 {
		turns = 300 + f.n(200)
	}
	reuse := f.n(4) == 0
	for t := range turns {
		i := len(msgs)
		switch f.n(8) {
		case 0:
			msgs = append(msgs, middleware.Message{Role: middleware.RoleUser, Content: f.text(i)})
		case 1:
			m := middleware.Message{Role: middleware.RoleUser, Parts: []middleware.Part{{Type: "text", Text: f.text(i)}}}
			if f.n(2) == 0 {
				m.Parts = append(m.Parts, middleware.Part{Type: "image_url", URL: "https://example.com/a.png", Detail: "low"})
			}
			if f.n(3) == 0 {
				m.Name = "alice"
			}
			msgs = append(msgs, m)
		case 2:
			role := middleware.RoleSystem
			if f.n(2) == 1 {
				role = "developer"
			}
			msgs = append(msgs, middleware.Message{Role: role, Content: f.text(i)})
		case 3:
			msgs = append(msgs, middleware.Message{Role: middleware.RoleAssistant, Content: f.text(i)})
			if f.n(32) == 0 { // a result whose call is gone (a conversation OpenAI refuses)
				msgs = append(msgs, middleware.Message{Role: middleware.RoleTool, ToolCallID: "call_gone", Content: f.text(i)})
			}
		default:
			calls := 1 + f.n(3)
			a := middleware.Message{Role: middleware.RoleAssistant}
			if f.n(3) == 0 {
				a.Content = f.text(i)
			}
			for c := range calls {
				id := fmt.Sprintf("call_%d_%d", t, c)
				if reuse {
					id = fmt.Sprintf("call_%d", c)
				}
				a.ToolCalls = append(a.ToolCalls, middleware.ToolCall{ID: id, Name: "read_log", Arguments: fmt.Sprintf(`{"host":"web-%d"}`, c)})
			}
			msgs = append(msgs, a)
			order := make([]int, calls)
			for c := range order {
				order[c] = c
			}
			if f.n(2) == 1 {
				for c := len(order) - 1; c > 0; c-- {
					k := f.n(c + 1)
					order[c], order[k] = order[k], order[c]
				}
			}
			if f.n(32) == 0 {
				order = order[1:] // a call without its result (a conversation OpenAI refuses)
			}
			for _, c := range order {
				r := middleware.Message{Role: middleware.RoleTool, ToolCallID: a.ToolCalls[c].ID, Content: f.text(len(msgs))}
				if f.n(4) == 0 {
					r.Name = "read_log"
				}
				msgs = append(msgs, r)
			}
		}
	}
	if len(msgs) == 0 || f.n(3) != 0 {
		msgs = append(msgs, middleware.Message{Role: middleware.RoleUser, Content: "And now? " + f.text(len(msgs))})
	}
	return msgs
}

// fuzzCompactor builds a compactor from the byte stream, whose ceiling is
// a share of the conversation's count, and the terminal that records what
// it is sent.
func fuzzCompactor(f *fuzzBytes, count int64) (middleware.Handler, *recorder, int64) {
	ceiling := max(1, count*int64(1+f.n(255))/256)
	if f.n(8) == 0 {
		ceiling = int64(1 + f.n(64)) // a model with a tiny window
	}
	all := []compact.Strategy{compact.Offload, compact.Drop, compact.Summarise}
	var strategies []compact.Strategy
	for range f.n(4) {
		s := all[f.n(3)]
		if !contains(strategies, s) {
			strategies = append(strategies, s)
		}
	}
	rec := &recorder{}
	summariser := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant,
			Content: fmt.Sprintf("summary of %d bytes", len(req.Messages[len(req.Messages)-1].Content))}}, nil
	})
	c, err := compact.New(compact.Config{MaxInputTokens: ceiling, Strategies: strategies,
		KeepLastTurns: f.n(6), BlockSize: f.n(6), OffloadOverBytes: f.n(4) * 300},
		compact.WithOffloader(&memOffloader{}), compact.WithSummariser(summariser))
	if err != nil {
		panic(err)
	}
	return middleware.Then(rec, c.Middleware()), rec, ceiling
}

func contains(ss []compact.Strategy, s compact.Strategy) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// checkCompacted checks the request the compactor sent for req (or its
// error) against the rules every compaction keeps.
func checkCompacted(t *testing.T, req *middleware.Request, sent []*middleware.Request, err error, ceiling int64) *middleware.Request {
	t.Helper()
	if err != nil {
		var tl *compact.TooLargeError
		if !errors.As(err, &tl) || !errors.Is(err, compact.ErrTooLarge) || !errors.Is(err, middleware.ErrContextWindow) {
			t.Fatalf("error %v: want a *TooLargeError", err)
		}
		if tl.Ceiling != ceiling || tl.Estimate <= ceiling {
			t.Fatalf("error %v: ceiling %d, estimate %d", err, ceiling, tl.Estimate)
		}
		if len(sent) != 0 {
			t.Fatalf("%d requests sent beside the error %v", len(sent), err)
		}
		// Too large after every strategy ran: its cause, if any, is a
		// summary that could not be written, never the compactor giving up.
		if tl.Err != nil && !errors.Is(tl.Err, compact.ErrSummary) {
			t.Fatalf("error %v: the compactor gave up", err)
		}
		return nil
	}
	if len(sent) != 1 {
		t.Fatalf("%d requests sent, want 1", len(sent))
	}
	out := sent[0]
	if n := fuzzEstimator.Request(out.Model, out); n > ceiling {
		t.Fatalf("sent %d input tokens (%d messages of %d), ceiling %d", n, len(out.Messages), len(req.Messages), ceiling)
	}
	// A conversation OpenAI refuses as it is is checked for the rest only.
	if openaitest.CheckToolPairing(wire(req.Messages)) == nil {
		if err := openaitest.CheckToolPairing(wire(out.Messages)); err != nil {
			t.Fatalf("sent a request OpenAI refuses: %v\nroles %v", err, roles(out.Messages))
		}
	}
	// The system prompt (the leading instructions) is kept as it was.
	lead := 0
	for lead < len(req.Messages) && (req.Messages[lead].Role == middleware.RoleSystem || req.Messages[lead].Role == "developer") {
		lead++
	}
	if len(out.Messages) < lead || !middleware.EqualMessages(out.Messages[:lead], req.Messages[:lead]) {
		t.Fatalf("the system prompt changed: roles %v -> %v", roles(req.Messages), roles(out.Messages))
	}
	// The latest user message is kept, with everything after it.
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == middleware.RoleUser {
			tail := req.Messages[i:]
			if len(out.Messages) < len(tail) || !middleware.EqualMessages(out.Messages[len(out.Messages)-len(tail):], tail) {
				t.Fatalf("the latest user message or what follows it changed: roles %v -> %v", roles(req.Messages), roles(out.Messages))
			}
			break
		}
	}
	return out
}

func roles(ms []middleware.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(string(m.Role)[:1])
		if len(m.ToolCalls) > 0 {
			fmt.Fprintf(&b, "%d", len(m.ToolCalls))
		}
	}
	return b.String()
}

// FuzzCompactKeepsTheWire sends any valid conversation through the
// compactor of a random policy (ceiling, strategies, blocks, kept turns),
// in a run and again after one more turn, and checks that the request it
// sends fits the ceiling by the exact count, keeps OpenAI's tool-message
// rules, the system prompt and the latest user message with what follows
// it, that the same input gives the same request, that the caller's
// messages are unchanged, and that a request that cannot fit fails with a
// *TooLargeError and sends nothing.
func FuzzCompactKeepsTheWire(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 1, 20, 4, 4, 4, 4, 4, 4, 4, 4, 0, 7, 6, 5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 128, 3, 1, 2, 2, 1, 0})
	f.Add([]byte{2, 0, 1, 3, 30, 1, 4, 2, 1, 4, 4, 5, 3, 2, 4, 4, 4, 6, 6, 6, 2, 0, 4, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 40, 3, 0, 1, 2, 3, 1, 1})
	f.Add([]byte("\x00\x01\x10\x00\x04\x07\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x00\x03\x02\x01\x00\x02\x02"))
	f.Fuzz(func(t *testing.T, data []byte) {
		build := func() (*middleware.Request, middleware.Handler, *recorder, int64) {
			fb := &fuzzBytes{b: data}
			req := &middleware.Request{Model: "gpt-4o-mini", Messages: fuzzConversation(fb)}
			h, rec, ceiling := fuzzCompactor(fb, fuzzEstimator.Request(req.Model, req))
			return req, h, rec, ceiling
		}
		req, h, rec, ceiling := build()
		snapshot := req.DeepClone()
		ctx, _ := middleware.StartRun(context.Background(), "fuzz")
		_, err := h.Handle(ctx, req)
		out := checkCompacted(t, req, rec.requests(), err, ceiling)
		if !reflect.DeepEqual(req.Messages, snapshot.Messages) {
			t.Fatal("the caller's messages changed")
		}
		// The same input, through a compactor of its own, sends the same.
		req2, h2, rec2, _ := build()
		ctx2, _ := middleware.StartRun(context.Background(), "fuzz")
		_, err2 := h2.Handle(ctx2, req2)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("the same input: %v, then %v", err, err2)
		}
		if out != nil && !reflect.DeepEqual(out.Messages, rec2.requests()[0].Messages) {
			t.Fatal("the same input sent two different requests")
		}
		// Outside a run, the same rules.
		req3, h3, rec3, _ := build()
		_, err3 := h3.Handle(context.Background(), req3)
		checkCompacted(t, req3, rec3.requests(), err3, ceiling)
		// The next call of the run: the answer and one more user message.
		next := req.Clone()
		next.Messages = append(append([]middleware.Message(nil), req.Messages...),
			middleware.Message{Role: middleware.RoleAssistant, Content: "done"},
			middleware.Message{Role: middleware.RoleUser, Content: "next"})
		rec.mu.Lock()
		rec.reqs = nil
		rec.mu.Unlock()
		_, err = h.Handle(ctx, next)
		checkCompacted(t, next, rec.requests(), err, ceiling)
	})
}
