package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Under the default policy a reasoning model's stream that began, then
// stalls forever, ends at the reasoning entry's idle limit (5m) after its
// last chunk, with the idle timeout, in one upstream request: not at the
// 30s of other models, not at the 10m call limit, and not sent again.
// Through go-openai and langchaingo, and for a router-prefixed name.
func TestDefaultPolicyEndsAStalledReasoningStreamAtIdle(t *testing.T) {
	for _, c := range []struct{ name, model string }{
		{"go-openai o3", "o3"},
		{"go-openai openai/o3", "openai/o3"},
		{"langchaingo o3", "o3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On().Reply(openaitest.StallAfter(2))
				start := time.Now()
				var got string
				var err error
				if c.name[:2] == "go" {
					cl := goClient(t, srv, policies.Default())
					req := hangChatReq(c.model, true)
					s, err2 := cl.CreateChatCompletionStream(context.Background(), req)
					if err2 == nil {
						for {
							chunk, e := s.Recv()
							if e != nil {
								if !errors.Is(e, io.EOF) {
									err2 = e
								}
								break
							}
							for _, ch := range chunk.Choices {
								got += ch.Delta.Content
							}
						}
						s.Close()
					}
					err = err2
				} else {
					chain, err2 := llmwrap.Build(policies.Default())
					if err2 != nil {
						t.Fatal(err2)
					}
					inner, err2 := lcopenai.New(lcopenai.WithModel(c.model), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL(srv.URL),
						lcopenai.WithHTTPClient(&http.Client{Transport: srv.Transport()}))
					if err2 != nil {
						t.Fatal(err2)
					}
					m := twlc.New(twlc.Models{c.model: inner}, chain)
					_, err = m.GenerateContent(context.Background(), []llms.MessageContent{human("hi")},
						llms.WithStreamingFunc(func(_ context.Context, b []byte) error { got += string(b); return nil }))
				}
				el := time.Since(start)
				if el != 5*time.Minute {
					t.Errorf("a stalled %s stream ended after %v, want 5m (the reasoning entry's idle): %v", c.model, el, err)
				}
				if got == "" {
					t.Errorf("no chunk reached the caller before the stall")
				}
				if !errors.Is(err, timeout.ErrIdle) || !errors.Is(err, middleware.ErrTimeout) {
					t.Errorf("err %v, want the idle timeout", err)
				}
				if n := srv.Count(); n != 1 {
					t.Errorf("%d upstream requests, want 1: a stream that began is not sent again", n)
				}
			})
		})
	}
}
