package langchaingo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// backends are the ways a langchaingo openai backend reaches the server:
// with twlc.NewTransport (which checks and reshapes the stream), over the
// go-openai Transport of adapters/openai (which reads the stream itself),
// or both.
var backends = []struct {
	name string
	llm  func(t *testing.T, srv *openaitest.Server) llms.Model
}{
	{"NewTransport", func(t *testing.T, srv *openaitest.Server) llms.Model { return newOpenAI(t, srv, "gpt-4o", true) }},
	{"openai Transport", func(t *testing.T, srv *openaitest.Server) llms.Model {
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		llm, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o"),
			openai.WithHTTPClient(twopenai.NewTransport(nil, twopenai.WithBaseTransport(base))))
		if err != nil {
			t.Fatal(err)
		}
		return llm
	}},
	{"NewTransport over openai Transport", func(t *testing.T, srv *openaitest.Server) llms.Model {
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		rt := twlc.NewTransport(twopenai.NewTransport(nil, twopenai.WithBaseTransport(base)))
		llm, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o"),
			openai.WithHTTPClient(&http.Client{Transport: rt}))
		if err != nil {
			t.Fatal(err)
		}
		return llm
	}},
}

func streaming() llms.CallOption {
	return llms.WithStreamingFunc(func(context.Context, []byte) error { return nil })
}

// TestCutStreamIsBilledNeverSettledAsZero: a stream cut before its end is
// an error through twlc, and the budget bills the partial answer the
// provider may already charge for.
func TestCutStreamIsBilledNeverSettledAsZero(t *testing.T) {
	for _, be := range backends {
		for _, reply := range []openaitest.Reply{openaitest.CutAfter(4), openaitest.EOFAfter(4)} {
			t.Run(fmt.Sprintf("%s/%s", be.name, reply.Fault.Kind), func(t *testing.T) {
				srv := openaitest.NewServer(t)
				srv.On().Reply(reply)
				b, err := budget.New(budget.Config{Run: budget.Amount{Tokens: 1_000_000}}, budget.WithLogger(slog.New(slog.DiscardHandler)))
				if err != nil {
					t.Fatal(err)
				}
				sp := &spy{}
				llm := twlc.New(twlc.Models{"gpt-4o": be.llm(t, srv)}, middleware.Chain(instrument.New(nil, nil), b.Middleware(), sp.mw))
				ctx, run := middleware.StartRun(t.Context(), "cut")
				_, err = llm.GenerateContent(ctx, []llms.MessageContent{human("q")}, streaming())
				if !errors.Is(err, middleware.ErrStreamCut) {
					t.Fatalf("err %v, want ErrStreamCut", err)
				}
				_, resp := sp.last(t)
				if resp == nil || resp.Message.Content == "" {
					t.Fatalf("the chain got no partial answer with the cut: %+v", resp)
				}
				if bal := b.RunBalance(run); bal.Used.Tokens <= 0 || bal.Reserved.Tokens != 0 {
					t.Fatalf("run balance %+v: the cut stream was not billed", bal)
				}
			})
		}
	}
}

// TestGarbageChunkIsAnErrorNeverCached: a data line that is not JSON,
// which langchaingo's openai backend skips on its own, fails the call
// through twlc (never a shortened answer returned as a success), and the
// cache does not keep it: the next identical call goes to the provider.
func TestGarbageChunkIsAnErrorNeverCached(t *testing.T) {
	const ok = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`
	const end = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			var pieces [][]byte
			for _, l := range []string{ok, `data: {"choices":[{"index":0,"delta":{"content":" wor`, end, `data: [DONE]`} {
				pieces = append(pieces, []byte(l+"\n\n"))
			}
			srv.On().Reply(openaitest.Reply{Raw: pieces})
			c, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": be.llm(t, srv)}, c.Middleware())
			for i := range 2 {
				_, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, streaming(), llms.WithTemperature(0))
				if !errors.Is(err, middleware.ErrMalformed) {
					t.Fatalf("call %d: err %v, want ErrMalformed", i, err)
				}
			}
			if srv.Count() != 2 {
				t.Fatalf("%d provider calls, want 2: the broken answer was cached", srv.Count())
			}
		})
	}
}

// TestPanicUnderLangchaingoCallIsAnError: a layer that panics mid-stream
// under a twlc call: the call fails with a *middleware.PanicError, the
// process goes on.
func TestPanicUnderLangchaingoCallIsAnError(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "an answer in several small pieces", ChunkSize: 4})
	boom := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			inner := req.Stream
			req = req.Clone()
			n := 0
			req.Stream = func(ctx context.Context, c middleware.Chunk) error {
				if n++; n == 3 {
					panic("layer broken mid-stream")
				}
				return inner(ctx, c)
			}
			return next.Handle(ctx, req)
		})
	}
	for _, stream := range []bool{true, false} {
		llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, boom)
		var opts []llms.CallOption
		if stream {
			opts = append(opts, streaming())
		}
		_, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, opts...)
		var pe *middleware.PanicError
		if stream && (!errors.Is(err, middleware.ErrPanic) || !errors.As(err, &pe) || len(pe.Stack) == 0) {
			t.Fatalf("streaming: err %v, want a *middleware.PanicError", err)
		}
		if !stream && !errors.Is(err, middleware.ErrPanic) {
			t.Fatalf("plain call (the layer's nil Stream): err %v, want ErrPanic", err)
		}
	}
}

// TestStreamClosedAfterItsFinishIsCompleteForLangchaingo: a server that
// never sends [DONE] closes a finished stream after its finish_reason:
// through every backend the call succeeds with the whole answer (closed
// before the finish, it is cut: TestCutStreamIsBilledNeverSettledAsZero).
func TestStreamClosedAfterItsFinishIsCompleteForLangchaingo(t *testing.T) {
	const ok = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`
	const end = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}`
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Raw: [][]byte{[]byte(ok + "\n\n"), []byte(end + "\n\n")}})
			llm := twlc.New(twlc.Models{"gpt-4o": be.llm(t, srv)}, middleware.Chain())
			resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, streaming())
			if err != nil || len(resp.Choices) == 0 || resp.Choices[0].Content != "Hello world" {
				t.Fatalf("%+v, %v: want the whole answer", resp, err)
			}
		})
	}
}
