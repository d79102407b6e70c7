package langchaingo_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestProviderErrors: the real openai client's failures against a server
// that answers like OpenAI become classified core errors, with and without
// NewTransport (without it, from the backend's error text).
func TestProviderErrors(t *testing.T) {
	cases := []struct {
		name       string
		reply      openaitest.Reply
		stream     bool
		kind       error
		status     int
		code       string // with the transport
		retryAfter time.Duration
	}{
		{"rate limited", openaitest.RateLimited(3 * time.Second), false, middleware.ErrRateLimited, 429, "rate_limit_exceeded", 3 * time.Second},
		{"quota", openaitest.InsufficientQuota(), false, middleware.ErrQuotaExceeded, 429, "insufficient_quota", 0},
		{"server error", openaitest.ServerError(), false, middleware.ErrUnavailable, 500, "", 0},
		{"unavailable", openaitest.Unavailable(), true, middleware.ErrUnavailable, 503, "", 0},
		{"context window", openaitest.ContextLengthExceeded(8192, 9000), false, middleware.ErrContextWindow, 400, "context_length_exceeded", 0},
		{"auth", openaitest.InvalidAPIKey(), false, middleware.ErrAuth, 401, "invalid_api_key", 0},
		{"content filter", openaitest.ContentFilterError(), false, middleware.ErrContentFilter, 400, "content_filter", 0},
		{"stream cut", openaitest.CutAfter(2), true, middleware.ErrStreamCut, 0, "", 0},
		{"stream without finish", openaitest.EOFAfter(2), true, middleware.ErrStreamCut, 0, "", 0},
		{"truncated body", openaitest.EOFAfter(0), false, middleware.ErrNetwork, 0, "", 0},
	}
	for _, tc := range cases {
		for _, capture := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/transport=%v", tc.name, capture), func(t *testing.T) {
				srv := openaitest.NewServer(t)
				srv.On().Reply(tc.reply)
				llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", capture)}, passThrough)
				var opts []llms.CallOption
				if tc.stream {
					opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
				}
				_, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, opts...)
				kind := tc.kind
				if capture && tc.name == "truncated body" {
					// Half a JSON answer, ended cleanly: with the
					// transport, a whole 2xx body that is not JSON is
					// malformed (billed: the provider produced it), as
					// the OpenAI adapter reads it.
					kind = middleware.ErrMalformed
				}
				var pe *middleware.ProviderError
				if !errors.Is(err, kind) || !errors.As(err, &pe) {
					t.Fatalf("err %v (%T), want %v", err, err, kind)
				}
				if pe.StatusCode != tc.status || pe.Provider != "openai" || pe.Model != "gpt-4o" || (tc.status != 0 && pe.Err == nil) {
					t.Errorf("error %+v", pe)
				}
				if capture && (pe.Code != tc.code || pe.RetryAfter != tc.retryAfter) {
					t.Errorf("with transport: code %q retry after %v", pe.Code, pe.RetryAfter)
				}
				if capture && tc.status != 0 && pe.Message == "" {
					t.Error("no provider message")
				}
				if d, ok := middleware.RetryAfter(err); capture && tc.retryAfter > 0 && (!ok || d != tc.retryAfter) {
					t.Errorf("RetryAfter %v %v", d, ok)
				}
			})
		}
	}
}

// TestCancellation: a call cancelled while the provider works fails with
// context.Canceled, not with the text the backend made of it.
func TestCancellation(t *testing.T) {
	srv := openaitest.NewServer(t)
	arrived := make(chan struct{}, 1)
	srv.On(func(*openaitest.ChatRequest) bool { arrived <- struct{}{}; return true }).Reply(openaitest.Stall())
	llm := twlc.New(twlc.Models{"m": newOpenAI(t, srv, "m", true)}, passThrough)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := llm.GenerateContent(ctx, []llms.MessageContent{human("q")})
		done <- err
	}()
	<-arrived
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !middleware.IsCancellation(err) || middleware.Transient(err) {
		t.Fatalf("err %v", err)
	}
	var pe *middleware.ProviderError
	if errors.As(err, &pe) {
		t.Fatalf("a cancellation became a provider error: %v", err)
	}
}

// TestDeadlineCause: an expired deadline stays DeadlineExceeded and keeps
// its cause (a tokenwise timeout's sentinel).
func TestDeadlineCause(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("late"))
	llm := twlc.New(twlc.Models{"m": newOpenAI(t, srv, "m", false)}, nil)
	errCall := errors.New("call timeout")
	ctx, cancel := context.WithDeadlineCause(t.Context(), time.Now().Add(-time.Second), errCall)
	defer cancel()
	_, err := llm.GenerateContent(ctx, []llms.MessageContent{human("q")})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errCall) {
		t.Fatalf("err %v", err)
	}
}

type statusErr struct{ StatusCode int }

func (e statusErr) Error() string { return fmt.Sprintf("status %d", e.StatusCode) }

type netErr struct{ timeout bool }

func (e netErr) Error() string   { return "dial tcp: broken" }
func (e netErr) Timeout() bool   { return e.timeout }
func (e netErr) Temporary() bool { return false }

var _ net.Error = netErr{}

// TestClassifyInnerErrors: the errors other backends return, typed or not.
func TestClassifyInnerErrors(t *testing.T) {
	nested := &middleware.ProviderError{Kind: middleware.ErrBudget}
	plain := errors.New("something odd")
	cases := []struct {
		err  error
		kind error // nil: returned unchanged
	}{
		{llms.NewError(llms.ErrCodeRateLimit, "anthropic", "slow down"), middleware.ErrRateLimited},
		{llms.NewError(llms.ErrCodeTokenLimit, "googleai", "too long"), middleware.ErrContextWindow},
		{fmt.Errorf("wrapped: %w", llms.NewError(llms.ErrCodeProviderUnavailable, "x", "down")), middleware.ErrUnavailable},
		{statusErr{StatusCode: 429}, middleware.ErrRateLimited},
		{&statusErr{StatusCode: 503}, middleware.ErrUnavailable},
		{netErr{timeout: true}, middleware.ErrTimeout},
		{netErr{}, middleware.ErrNetwork},
		{errors.New("API returned unexpected status code: 529: Overloaded"), middleware.ErrUnavailable},
		{errors.New("API returned unexpected status code: 400: This model's maximum context length is 8192 tokens."), middleware.ErrContextWindow},
		{errors.New("network error: failed to reach API server"), middleware.ErrNetwork},
		{errors.New("request timeout: network operation exceeded timeout"), middleware.ErrTimeout},
		{nested, middleware.ErrBudget},
		{plain, nil},
	}
	for _, tc := range cases {
		llm := twlc.New(twlc.Models{"m": &stub{err: tc.err}}, nil)
		_, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")})
		switch {
		case tc.kind == nil:
			if err != tc.err {
				t.Errorf("%v: got %v, want it unchanged", tc.err, err)
			}
		case !errors.Is(err, tc.kind) || !errors.Is(err, tc.err):
			t.Errorf("%v: got %v, want %v wrapping it", tc.err, err, tc.kind)
		}
	}
}

// TestEmptyResponseIsMalformed: an answer without choices (status 200),
// which langchaingo's openai backend returns as an untyped "empty
// response" error (a sentinel of its internal client), is a malformed answer the provider bills, with
// the transport or without it: a typed core error (without the transport
// still matching the backend's error value), its attempt billed the usage
// the answer counts (with the transport, which reads it) or an estimate
// of its input (without), never an error the chain cannot classify and
// bills nothing for.
func TestEmptyResponseIsMalformed(t *testing.T) {
	body := []byte(`{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":0,"total_tokens":9}}`)
	for _, capture := range []bool{true, false} {
		t.Run(fmt.Sprintf("transport=%v", capture), func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Body: body})
			_, bare := newOpenAI(t, srv, "gpt-4o", false).GenerateContent(t.Context(), []llms.MessageContent{human("q")})
			if bare == nil || bare.Error() != "empty response" {
				t.Fatalf("the bare client: %v, want its empty response error", bare)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", capture)},
				middleware.Chain(instrument.New(nil, nil), middleware.Meter(nil, nil)))
			ctx, run := middleware.StartRun(t.Context(), "empty")
			_, err := llm.GenerateContent(ctx, []llms.MessageContent{human("How full is the disk?")})
			var pe *middleware.ProviderError
			if !errors.Is(err, middleware.ErrMalformed) || !errors.As(err, &pe) || pe.Provider != "openai" || pe.Model != "gpt-4o" {
				t.Fatalf("err %v (%T), want a malformed provider error", err, err)
			}
			if _, billed := middleware.AnswerBilled(err); !billed {
				t.Errorf("err %v: not billed as an answer the provider produced", err)
			}
			if !capture && !errors.Is(err, bare) {
				t.Errorf("err %v does not match the backend's error %v, as the bare client's does", err, bare)
			}
			calls := run.Calls()
			if len(calls) != 1 || len(calls[0].Attempts) != 1 {
				t.Fatalf("run calls %+v: want one call of one attempt", calls)
			}
			a := calls[0].Attempts[0]
			switch {
			case capture && (a.Estimated || a.Usage.InputTokens != 9 || a.Usage.OutputTokens != 0):
				// The transport reads the usage the answer counts, which
				// the provider bills.
				t.Errorf("attempt billed %+v (estimated %v), want the answer's usage: 9 input tokens, not an estimate", a.Usage, a.Estimated)
			case !capture && (!a.Estimated || a.Usage.InputTokens <= 0):
				t.Errorf("attempt billed %+v (estimated %v), want an estimate of its input", a.Usage, a.Estimated)
			}
		})
	}
}
