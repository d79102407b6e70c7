package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func chatRequest(text string) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{Model: "gpt-4o-mini", Seed: new(42),
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: text}}}
}

// TestConcurrentIdenticalMissesMakeOneCall: 100 concurrent identical
// misses through go-openai make exactly one provider call; the other 99 are
// served the leader's answer as hits.
func TestConcurrentIdenticalMissesMakeOneCall(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.Reply{Content: "Freed 20GB.", Latency: time.Second})
		ctx, run := middleware.StartRun(context.Background(), "coalesce")
		client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), srv.Transport())
		const n = 100
		var wg sync.WaitGroup
		got := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				resp, err := client.CreateChatCompletion(ctx, chatRequest("clean the logs"))
				if err == nil {
					got[i] = resp.Choices[0].Message.Content
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || got[i] != "Freed 20GB." {
				t.Fatalf("call %d: %q, %v", i, got[i], errs[i])
			}
		}
		if c := srv.Count(); c != 1 {
			t.Fatalf("the provider saw %d requests, want 1", c)
		}
		if tot := run.Totals(); tot.CacheHits != n-1 || tot.SavedPico <= 0 {
			t.Fatalf("run totals: %d hits, saved %d micros; want %d hits", tot.CacheHits, tot.SavedPico, n-1)
		}
	})
}

// TestCancelledLeaderDoesNotPoisonFollowers: the leader's caller gives up;
// the followers waiting on it are not failed, one of them calls again.
func TestCancelledLeaderDoesNotPoisonFollowers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.Reply{Content: "done", Latency: 2 * time.Second})
		client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), srv.Transport())
		lctx, cancel := context.WithCancel(context.Background())
		var leaderErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, leaderErr = client.CreateChatCompletion(lctx, chatRequest("x")) })
		synctest.Wait() // the leader is waiting for the provider
		const followers = 5
		got := make([]string, followers)
		errs := make([]error, followers)
		for i := range followers {
			wg.Go(func() {
				resp, err := client.CreateChatCompletion(context.Background(), chatRequest("x"))
				if err == nil {
					got[i] = resp.Choices[0].Message.Content
				}
				errs[i] = err
			})
		}
		synctest.Wait() // the followers wait for the leader
		if c := srv.Count(); c != 1 {
			t.Fatalf("followers did not wait for the leader: %d provider requests", c)
		}
		cancel()
		wg.Wait()
		if !errors.Is(leaderErr, context.Canceled) {
			t.Fatalf("leader: %v", leaderErr)
		}
		for i := range followers {
			if errs[i] != nil || got[i] != "done" {
				t.Fatalf("follower %d: %q, %v", i, got[i], errs[i])
			}
		}
		if c := srv.Count(); c != 2 {
			t.Fatalf("the provider saw %d requests, want 2 (the cancelled leader's and one for the followers)", c)
		}
	})
}

// TestTeamScope: team A's answer is never served to team B; with the
// global scope it is.
func TestTeamScope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		scope policies.CacheScope
		want  int
	}{{policies.CacheScopeTeam, 2}, {"", 2}, {policies.CacheScopeGlobal, 1}} {
		t.Run(string(tc.scope), func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Text("answer"))
			client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{Scope: tc.scope})), nil)
			for _, team := range []string{"a", "b", "a", "b"} {
				if _, err := client.CreateChatCompletion(middleware.WithTeam(context.Background(), team), chatRequest("q")); err != nil {
					t.Fatal(err)
				}
			}
			if c := srv.Count(); c != tc.want {
				t.Fatalf("scope %q: %d provider requests, want %d", tc.scope, c, tc.want)
			}
		})
	}
}

// TestOnlyCompleteAnswersAreStored: errors, truncated and filtered answers
// and cut streams are never served from the cache.
func TestOnlyCompleteAnswersAreStored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		reply  openaitest.Reply
		stream bool
	}{
		{"server error", openaitest.ServerError(), false},
		{"bad request", openaitest.ContextLengthExceeded(100, 200), false},
		{"length", openaitest.Reply{Content: "trunc", FinishReason: "length"}, false},
		{"content filter", openaitest.Reply{Content: "", FinishReason: "content_filter"}, false},
		{"cut stream", openaitest.Reply{Content: "a long answer that is cut", ChunkSize: 3, Fault: openaitest.Fault{Kind: openaitest.FaultCut, After: 3}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(tc.reply)
			client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), nil)
			for range 2 {
				if tc.stream {
					s, err := client.CreateChatCompletionStream(context.Background(), chatRequest("q"))
					if err == nil {
						for {
							if _, err := s.Recv(); err != nil {
								break
							}
						}
						s.Close()
					}
					continue
				}
				_, _ = client.CreateChatCompletion(context.Background(), chatRequest("q"))
			}
			if c := srv.Count(); c != 2 {
				t.Fatalf("%d provider requests, want 2 (nothing stored)", c)
			}
		})
	}
}

// TestDeterministicOnly: by default a request without temperature 0 or a
// seed is cached like any other; deterministic_only makes it a bypass.
func TestDeterministicOnly(t *testing.T) {
	for _, tc := range []struct {
		only bool
		want int
	}{{false, 1}, {true, 2}} {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Text("answer"))
		client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{DeterministicOnly: tc.only})), nil)
		req := chatRequest("q")
		req.Seed = nil // temperature omitted: the provider's default, not 0
		for range 2 {
			if _, err := client.CreateChatCompletion(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
		if c := srv.Count(); c != tc.want {
			t.Fatalf("deterministic_only %v: %d provider requests, want %d", tc.only, c, tc.want)
		}
	}
}

// TestPerRequestControl: bypass, refresh and a custom TTL through the
// context.
func TestPerRequestControl(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On().Reply(openaitest.Text("v1")).Times(1)
		srv.On().Reply(openaitest.Text("v2")).Times(1)
		srv.On().Reply(openaitest.Text("v3"))
		client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{TTL: policies.Duration(time.Hour)})), srv.Transport())
		ask := func(ctx context.Context) string {
			t.Helper()
			resp, err := client.CreateChatCompletion(ctx, chatRequest("q"))
			if err != nil {
				t.Fatal(err)
			}
			return resp.Choices[0].Message.Content
		}
		bg := context.Background()
		if got := ask(bg); got != "v1" {
			t.Fatalf("miss: %q", got)
		}
		if got := ask(cache.WithBypass(bg)); got != "v2" {
			t.Fatalf("bypass: %q", got)
		}
		if got := ask(bg); got != "v1" {
			t.Fatalf("a bypassed call overwrote the entry: %q", got)
		}
		if got := ask(cache.WithTTL(cache.WithRefresh(bg), time.Minute)); got != "v3" {
			t.Fatalf("refresh: %q", got)
		}
		if got := ask(bg); got != "v3" {
			t.Fatalf("refresh did not overwrite: %q", got)
		}
		time.Sleep(2 * time.Minute) // fake time: past the per-request TTL, within the policy's
		if got := ask(bg); got != "v3" || srv.Count() != 4 {
			t.Fatalf("after the TTL: %q with %d provider requests, want a new call", got, srv.Count())
		}
	})
}

// failingStore fails every operation.
type failingStore struct{}

var errDown = errors.New("store down")

func (failingStore) Get(context.Context, uint64) (*cache.Entry, error) { return nil, errDown }
func (failingStore) Set(context.Context, uint64, *cache.Entry, time.Duration) error {
	return errDown
}

// TestStoreFailure: a failing store is reported and the call succeeds
// (fail open) or is refused with ErrStore (fail closed).
func TestStoreFailure(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("fine"))
	obs := &events{}
	client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{}), llmwrap.WithCacheStore(failingStore{}), llmwrap.WithObserver(obs)), nil)
	resp, err := client.CreateChatCompletion(context.Background(), chatRequest("q"))
	if err != nil || resp.Choices[0].Message.Content != "fine" {
		t.Fatalf("fail open: %v", err)
	}
	f := obs.storeFailures()
	if len(f) != 2 || f[0].Op != "get" || f[1].Op != "set" || !errors.Is(f[0].Err, errDown) || f[0].Store != "cache" {
		t.Fatalf("store failures reported: %+v", f)
	}

	closed := llmwrap.MustBuild(cachePolicy(policies.Cache{FailClosed: true}), llmwrap.WithCacheStore(failingStore{}))
	h := closed(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		t.Fatal("the provider was called by a fail-closed cache with a failed store")
		return nil, nil
	}))
	zero := 0.0
	_, err = h.Handle(context.Background(), &middleware.Request{Model: "gpt-4o-mini", Temperature: &zero})
	if !errors.Is(err, cache.ErrStore) || !errors.Is(err, errDown) {
		t.Fatalf("fail closed: %v", err)
	}
}

// TestHitIsRecordedAsSaved: the run report shows a hit as zero spend with
// its savings.
func TestHitIsRecordedAsSaved(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("The disk is fine."))
	client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), nil)
	ctx, run := middleware.StartRun(context.Background(), "r")
	for range 2 {
		if _, err := client.CreateChatCompletion(ctx, chatRequest("disk?")); err != nil {
			t.Fatal(err)
		}
	}
	calls := run.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls", len(calls))
	}
	miss, hit := calls[0], calls[1]
	if miss.Cache != middleware.CacheMiss || miss.CostPico <= 0 || miss.Usage.IsZero() {
		t.Fatalf("miss recorded as %+v", miss)
	}
	if hit.Cache != middleware.CacheHit || hit.CostPico != 0 || !hit.Usage.IsZero() ||
		hit.Saved != miss.Usage.Counts() || hit.SavedPico != miss.CostPico {
		t.Fatalf("hit recorded as %+v (miss %+v)", hit, miss)
	}
}
