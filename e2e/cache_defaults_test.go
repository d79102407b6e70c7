package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// TestDefaultPolicyHitsForGoOpenAIAndLangchaingo: with the default cache
// policy, the same request twice is a miss then a hit through go-openai
// (which leaves temperature out), twlc.Models over langchaingo's openai
// client, and langchaingo's openai backend over the transport (which
// always sends temperature 0); the run report says so for every call. With
// deterministic_only the calls without temperature 0 are bypasses, with
// the reason.
func TestDefaultPolicyHitsForGoOpenAIAndLangchaingo(t *testing.T) {
	t.Parallel()
	paths := map[string]func(t *testing.T, srv *openaitest.Server, chain middleware.Middleware) func(ctx context.Context){
		"go-openai": func(t *testing.T, srv *openaitest.Server, chain middleware.Middleware) func(ctx context.Context) {
			client := goOpenAI(t, srv, chain, nil)
			return func(ctx context.Context) {
				_, err := client.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "gpt-4o-mini",
					Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk?"}}})
				if err != nil {
					t.Fatal(err)
				}
			}
		},
		"twlc.Models": func(t *testing.T, srv *openaitest.Server, chain middleware.Middleware) func(ctx context.Context) {
			llm := langchaingo(t, srv, chain, "gpt-4o-mini")
			return func(ctx context.Context) {
				if _, err := llm.GenerateContent(ctx, []llms.MessageContent{human("How full is the disk?")}); err != nil {
					t.Fatal(err)
				}
			}
		},
		"langchaingo over the transport": func(t *testing.T, srv *openaitest.Server, chain middleware.Middleware) func(ctx context.Context) {
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			llm, err := lcopenai.New(lcopenai.WithBaseURL(srv.URL), lcopenai.WithToken("test"), lcopenai.WithModel("gpt-4o-mini"),
				lcopenai.WithHTTPClient(twopenai.NewTransport(chain, twopenai.WithBaseTransport(base))))
			if err != nil {
				t.Fatal(err)
			}
			return func(ctx context.Context) {
				if _, err := llm.GenerateContent(ctx, []llms.MessageContent{human("How full is the disk?")}); err != nil {
					t.Fatal(err)
				}
			}
		},
	}
	for name, path := range paths {
		for _, tc := range []struct {
			only      bool
			calls     int
			want      []string // the report's cache cell of each call
			wantCalls int      // provider requests
		}{
			{false, 3, []string{"miss", "hit", "hit"}, 1},
			{true, 2, []string{"bypass: " + cache.ReasonNotDeterministic, "bypass: " + cache.ReasonNotDeterministic}, 2},
		} {
			if tc.only && name == "langchaingo over the transport" {
				// langchaingo's openai backend always sends temperature 0:
				// deterministic, so stored even under deterministic_only.
				tc.want, tc.wantCalls = []string{"miss", "hit"}, 1
			}
			t.Run(name, func(t *testing.T) {
				srv := openaitest.NewServer(t)
				srv.On().Reply(openaitest.Text("The disk is at 95%."))
				obs := &events{}
				call := path(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{DeterministicOnly: tc.only}), llmwrap.WithObserver(obs)))
				ctx, run := middleware.StartRun(context.Background(), "r")
				for range tc.calls {
					call(ctx)
				}
				if n := srv.Count(); n != tc.wantCalls {
					t.Fatalf("deterministic_only %v: %d provider requests, want %d", tc.only, n, tc.wantCalls)
				}
				recs := run.Calls()
				if len(recs) != len(tc.want) {
					t.Fatalf("%d calls in the run, want %d", len(recs), len(tc.want))
				}
				report := observe.Report(run)
				for i, r := range recs {
					cell := string(r.Cache)
					if r.CacheReason != "" {
						cell += ": " + r.CacheReason
					}
					if cell != tc.want[i] {
						t.Errorf("call %d: cache %q, want %q", i+1, cell, tc.want[i])
					}
					if !strings.Contains(report, tc.want[i]) {
						t.Errorf("the report does not say %q:\n%s", tc.want[i], report)
					}
				}
				for i, l := range obs.lookups() {
					if tc.wantCalls == 2 && (l.Status != middleware.CacheBypass || l.Reason != cache.ReasonNotDeterministic) {
						t.Errorf("event %d: %+v", i, l)
					}
				}
			})
		}
	}
}

// TestBypassAndRefreshGiveTheirReason: a request that asks for a bypass or
// a refresh (through the context, or the Cache-Control header of an HTTP
// request through the transport) is recorded with who asked.
func TestBypassAndRefreshGiveTheirReason(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	chain := llmwrap.MustBuild(cachePolicy(policies.Cache{}))
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	cfg := openai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if v := r.Context().Value(headerKey{}); v != nil {
			r = r.Clone(r.Context())
			r.Header.Set("Cache-Control", v.(string))
		}
		return twopenai.NewTransport(chain, twopenai.WithBaseTransport(base)).RoundTrip(r)
	})}
	client := openai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(context.Background(), "r")
	for _, c := range []context.Context{
		ctx,
		cache.WithBypass(ctx),
		cache.WithRefresh(ctx),
		context.WithValue(ctx, headerKey{}, "no-store, max-age=0"),
		ctx,
	} {
		if _, err := client.CreateChatCompletion(c, chatRequest("q")); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"miss", "bypass: cache.WithBypass", "refresh: cache.WithRefresh", "bypass: cache-control no-store", "hit"}
	report := observe.Report(run)
	for i, r := range run.Calls() {
		cell := string(r.Cache)
		if r.CacheReason != "" {
			cell += ": " + r.CacheReason
		}
		if cell != want[i] || !strings.Contains(report, want[i]) {
			t.Errorf("call %d: %q, want %q in\n%s", i+1, cell, want[i], report)
		}
	}
}

type headerKey struct{}
