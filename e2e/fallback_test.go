package e2e

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

func models(srv *openaitest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		out = append(out, r.Chat.Model)
	}
	return out
}

func provider(srv *openaitest.Server) middleware.Handler {
	return twopenai.NewProvider(srv.URL, "sk-test", twopenai.WithBaseTransport(srv.Transport()))
}

func fbClient(srv *openaitest.Server, mw middleware.Middleware) *openai.Client {
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(mw, twopenai.WithBaseTransport(srv.Transport()))
	return openai.NewClientWithConfig(cfg)
}

// Must show: every model fails — one error listing each attempt, each
// model tried once, errors.Is matching every attempt's kind.
func TestEveryModelFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Unavailable())
		srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.RateLimited(0))
		srv.On(openaitest.Model("gpt-4.1-mini")).Reply(openaitest.Stall())
		rec := &recorder{}
		h := middleware.Then(provider(srv), instrument.New(nil, rec),
			// gpt-4o listed again: the chain must not loop back to it
			middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"}})),
			middlewaretest.Must(timeout.New(timeout.Config{Call: 10 * time.Second})), middleware.Meter(nil, nil))
		start := time.Now()
		resp, err := h.Handle(context.Background(), user("status?"))
		if resp != nil {
			t.Errorf("response %+v", resp)
		}
		var fe *fallback.Error
		if !errors.As(err, &fe) || !errors.Is(err, fallback.ErrChainFailed) {
			t.Fatalf("err %v, want *fallback.Error", err)
		}
		var got []string
		for _, a := range fe.Attempts {
			got = append(got, a.Model)
		}
		if want := []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1-mini"}; !slices.Equal(got, want) || !slices.Equal(models(srv), want) {
			t.Fatalf("attempts %v, requests %v, want %v once each", got, models(srv), want)
		}
		for _, kind := range []error{middleware.ErrUnavailable, middleware.ErrRateLimited, timeout.ErrCall, context.DeadlineExceeded} {
			if !errors.Is(err, kind) {
				t.Errorf("errors.Is(err, %v) = false", kind)
			}
		}
		for _, m := range []string{"gpt-4o:", "gpt-4o-mini:", "gpt-4.1-mini:", "HTTP 503", "HTTP 429", "call timed out"} {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("error text lacks %q: %v", m, err)
			}
		}
		if el := time.Since(start); el != 10*time.Second {
			t.Errorf("took %v, want the 10s of the stalled model only", el)
		}
		fin := rec.finished()
		if len(fin) != 1 || len(fin[0].Facts.Attempts) != 3 || fin[0].Facts.Model != "gpt-4.1-mini" {
			t.Fatalf("call facts %+v", fin)
		}
		if fb := rec.fellBack(); len(fb) != 2 || fb[0].From != "gpt-4o" || fb[0].To != "gpt-4o-mini" || fb[1].To != "gpt-4.1-mini" {
			t.Fatalf("FellBack events %+v", fb)
		}
	})
}

// Must show: bad request is not retried and does not fall back; through
// go-openai the caller gets the provider's own 400.
func TestBadRequestStops(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Error(400, "invalid_request_error", "", "bad tool schema"))
		srv.On().Reply(openaitest.Text("never"))
		mw := middleware.Chain(instrument.New(nil, nil),
			middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}})),
			middlewaretest.Must(breaker.New(breaker.Config{ConsecutiveFailures: 1})),
			middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 5})), middleware.Meter(nil, nil))
		_, err := fbClient(srv, mw).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
			Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
		var apiErr *openai.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 400 || apiErr.Message != "bad tool schema" {
			t.Fatalf("err %v, want the provider's 400", err)
		}
		if got := models(srv); !slices.Equal(got, []string{"gpt-4o"}) {
			t.Fatalf("requests %v, want one to gpt-4o", got)
		}
	})
}

func TestContextWindowGoesToALargerWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.ContextLengthExceeded(128000, 150000))
		srv.On(openaitest.Model("gpt-4.1")).Reply(openaitest.Text("read it all"))
		windows := map[string]int64{"gpt-4o": 128000, "gpt-4o-mini": 128000, "gpt-4.1": 1047576}
		h := middlewaretest.Must(fallback.New(fallback.Config{
			Models:       []string{"gpt-4o-mini"},
			LargerWindow: []string{"gpt-4.1"},
		}, fallback.WithWindows(func(m string) int64 { return windows[m] })))(provider(srv))
		resp, err := h.Handle(context.Background(), user(strings.Repeat("log line ", 100)))
		if err != nil || resp.Message.Content != "read it all" {
			t.Fatalf("%v, %v", resp, err)
		}
		if got := models(srv); !slices.Equal(got, []string{"gpt-4o", "gpt-4.1"}) {
			t.Fatalf("requests %v: the same-window model must be skipped", got)
		}
	})
}

func stream(c *openai.Client, q string) (string, error) {
	s, err := c.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: q}}})
	if err != nil {
		return "", err
	}
	defer s.Close()
	var out strings.Builder
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		if len(r.Choices) > 0 {
			out.WriteString(r.Choices[0].Delta.Content)
		}
	}
}

func streamChain(rec *recorder) middleware.Middleware {
	return middleware.Chain(instrument.New(nil, rec),
		middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}})),
		middlewaretest.Must(breaker.New(breaker.Config{ConsecutiveFailures: 5})),
		middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 2, BaseDelay: time.Millisecond}, retry.WithJitter(func() float64 { return 0 }))),
		middlewaretest.Must(timeout.New(timeout.Config{Call: time.Minute, FirstToken: 2 * time.Second, Idle: 5 * time.Second})), middleware.Meter(nil, nil))
}

// Must show: a stream that never starts hits the first-token timeout (on
// each retry) and falls back; a stalled stream hits the idle timeout and,
// having reached the caller, is an error and does not fall back.
func TestStreamTimeouts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o"), openaitest.LastContains("never")).Reply(openaitest.Stall())
		srv.On(openaitest.Model("gpt-4o"), openaitest.LastContains("stall")).Reply(openaitest.StallAfter(3))
		srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "The fallback answers.", ChunkSize: 5})
		rec := &recorder{}
		c := fbClient(srv, streamChain(rec))

		start := time.Now()
		got, err := stream(c, "never starts")
		if err != nil || got != "The fallback answers." {
			t.Fatalf("got %q, %v", got, err)
		}
		if el := time.Since(start); el != 4*time.Second { // two attempts of 2s
			t.Errorf("fell back after %v, want 4s", el)
		}
		if m := models(srv); !slices.Equal(m, []string{"gpt-4o", "gpt-4o", "gpt-4o-mini"}) {
			t.Fatalf("requests %v", m)
		}
		fb := rec.fellBack()
		if len(fb) != 1 || !errors.Is(fb[0].Err, timeout.ErrFirstToken) {
			t.Fatalf("FellBack %+v, want one for ErrFirstToken", fb)
		}

		srv.Reset()
		start = time.Now()
		got, err = stream(c, "stall mid-way")
		if !errors.Is(err, timeout.ErrIdle) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %q, err %v; want ErrIdle", got, err)
		}
		if got == "" || time.Since(start) != 5*time.Second {
			t.Errorf("got %q after %v, want partial text after 5s idle", got, time.Since(start))
		}
		if m := models(srv); !slices.Equal(m, []string{"gpt-4o"}) {
			t.Fatalf("requests %v: no retry and no fallback after chunks reached the caller", m)
		}
	})
}

// Must show: a stream cut after chunks were delivered returns an error to
// the go-openai and to the langchaingo caller, never a normal end.
func TestCutStreamIsAnErrorForBothClients(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.CutAfter(3))
		srv.On().Reply(openaitest.Text("never"))
		rec := &recorder{}
		mw := streamChain(rec)

		got, err := stream(fbClient(srv, mw), "hi")
		if !errors.Is(err, middleware.ErrStreamCut) || got == "" {
			t.Fatalf("go-openai: got %q, err %v; want partial text and ErrStreamCut", got, err)
		}

		llm, err := lcopenai.New(lcopenai.WithToken("sk-test"), lcopenai.WithBaseURL(srv.URL), lcopenai.WithModel("gpt-4o"),
			lcopenai.WithHTTPClient(twopenai.NewTransport(mw, twopenai.WithBaseTransport(srv.Transport()))))
		if err != nil {
			t.Fatal(err)
		}
		var streamed strings.Builder
		_, err = llm.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")},
			llms.WithStreamingFunc(func(_ context.Context, b []byte) error { streamed.Write(b); return nil }))
		if err == nil || streamed.Len() == 0 {
			t.Fatalf("langchaingo: streamed %q, err %v; want partial text and an error", streamed.String(), err)
		}
		if m := models(srv); !slices.Equal(m, []string{"gpt-4o", "gpt-4o"}) {
			t.Fatalf("requests %v: a cut after the first chunk must not fall back", m)
		}
		for _, f := range rec.finished() {
			if f.Err == nil {
				t.Errorf("a cut call was recorded as a success: %+v", f)
			}
		}
	})
}

func TestCancellationDoesNotFallBack(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Stall())
		srv.On().Reply(openaitest.Text("never"))
		h := middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}}))(provider(srv))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		_, err := h.Handle(ctx, user("hi"))
		if !middleware.IsCancellation(err) || srv.Count() != 1 {
			t.Fatalf("err %v after %d requests", err, srv.Count())
		}
	})
}
