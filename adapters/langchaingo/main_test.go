package langchaingo_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"
	"go.uber.org/goleak"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestMain fails the package's tests if a goroutine outlives them (an inner
// stream reader, an HTTP connection of a test client).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newOpenAI returns langchaingo's real openai client talking to srv through
// its own HTTP transport (closed when the test ends), wrapped by
// twlc.NewTransport when capture is true.
func newOpenAI(t testing.TB, srv *openaitest.Server, model string, capture bool) *openai.LLM {
	t.Helper()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	var rt http.RoundTripper = base
	if capture {
		rt = twlc.NewTransport(base)
	}
	llm, err := openai.New(
		openai.WithBaseURL(srv.URL),
		openai.WithToken("test"),
		openai.WithModel(model),
		openai.WithHTTPClient(&http.Client{Transport: rt}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return llm
}

// passThrough is a middleware that changes nothing.
func passThrough(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return next.Handle(ctx, req)
	})
}

// spy records the core requests and responses that pass through it. It is
// safe for concurrent use.
type spy struct {
	mu    sync.Mutex
	reqs  []*middleware.Request
	resps []*middleware.Response
	errs  []error
	acc   []*middleware.Accumulator // per streaming request: the chunks seen
}

func (s *spy) mw(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		r := req
		if req.Stream != nil {
			acc := &middleware.Accumulator{}
			s.mu.Lock()
			s.acc = append(s.acc, acc)
			s.mu.Unlock()
			out := req.Stream
			r = req.Clone()
			r.Stream = func(ctx context.Context, c middleware.Chunk) error {
				s.mu.Lock()
				acc.Add(c)
				s.mu.Unlock()
				return out(ctx, c)
			}
		}
		resp, err := next.Handle(ctx, r)
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.resps = append(s.resps, resp)
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		return resp, err
	})
}

func (s *spy) last(t testing.TB) (*middleware.Request, *middleware.Response) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("no request went through the chain")
	}
	return s.reqs[len(s.reqs)-1], s.resps[len(s.resps)-1]
}

func (s *spy) lastStream(t testing.TB) *middleware.Response {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.acc) == 0 {
		t.Fatal("no streaming request went through the chain")
	}
	return s.acc[len(s.acc)-1].Response()
}

// stub is an llms.Model that answers with a fixed response and records the
// options of each call. It is safe for concurrent use.
type stub struct {
	resp *llms.ContentResponse
	err  error

	mu    sync.Mutex
	calls []stubCall
}

type stubCall struct {
	messages []llms.MessageContent
	opts     llms.CallOptions
}

func (s *stub) GenerateContent(ctx context.Context, msgs []llms.MessageContent, options ...llms.CallOption) (*llms.ContentResponse, error) {
	var o llms.CallOptions
	for _, opt := range options {
		opt(&o)
	}
	s.mu.Lock()
	s.calls = append(s.calls, stubCall{messages: msgs, opts: o})
	s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if o.StreamingFunc != nil {
		for _, c := range s.resp.Choices {
			if err := o.StreamingFunc(ctx, []byte(c.Content)); err != nil {
				return nil, err
			}
		}
	}
	return s.resp, nil
}

func (s *stub) Call(ctx context.Context, prompt string, options ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, s, prompt, options...)
}

func (s *stub) lastCall(t testing.TB) stubCall {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		t.Fatal("the inner model was not called")
	}
	return s.calls[len(s.calls)-1]
}

func textResponse(content string, promptTokens, completionTokens int) *llms.ContentResponse {
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{{
		Content:    content,
		StopReason: "stop",
		GenerationInfo: map[string]any{
			"PromptTokens":     promptTokens,
			"CompletionTokens": completionTokens,
			"TotalTokens":      promptTokens + completionTokens,
		},
	}}}
}

func human(text string) llms.MessageContent {
	return llms.TextParts(llms.ChatMessageTypeHuman, text)
}
