package redis_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// cuttableProxy forwards TCP connections to the test Redis; cut, it
// closes every connection and closes each new one at once: Redis stops
// answering, until the cut is lifted.
type cuttableProxy struct {
	ln    net.Listener
	cut   atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
}

func newCuttableProxy(t *testing.T) *cuttableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.cut.Load() {
				c.Close()
				continue
			}
			r, err := net.Dial("tcp", redisAddr())
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, r)
			p.mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(r, c); r.Close() })
			wg.Go(func() { _, _ = io.Copy(c, r); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.set(true)
		wg.Wait()
	})
	return p
}

// set cuts (true) or restores the proxy.
func (p *cuttableProxy) set(cut bool) {
	p.cut.Store(cut)
	if cut {
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
	}
}

// TestBudgetAboveRetryWithRedisDownCountsEachAttemptOnce: a budget composed
// by hand above a retry layer, on a Redis store with on_unavailable:
// local, over a run in which Redis stops answering (a TCP proxy cut) and
// comes back. Each call's first answer is cut after its 200 (billed) and
// retried. Every ledger counts each attempt once: the calls made while
// Redis was up in Redis, the one made while it was down in the local
// share, never both, and together exactly what a budget below the retry
// (one charge per request sent) charged.
func TestBudgetAboveRetryWithRedisDownCountsEachAttemptOnce(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	proxy := newCuttableProxy(t)
	pc := goredis.NewClient(&goredis.Options{Addr: proxy.ln.Addr().String(), MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	defer pc.Close()

	p := &policies.Policy{Version: 1, Name: "down", Budget: policies.Budget{
		Team:  policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 1_000_000},
		Store: policies.BudgetStore{Kind: policies.StoreRedis, KeyPrefix: prefix, OnUnavailable: policies.UnavailableLocal, LocalFraction: 0.5},
	}}
	local := budget.NewMemoryStore()
	above, err := llmwrap.NewBudget(p, budget.WithStore(redis.NewBudgetStore(pc)), budget.WithLocalStore(local),
		budget.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	refStore := budget.NewMemoryStore()
	ref, err := llmwrap.NewBudget(p, budget.WithStore(refStore))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := retry.New(retry.Config{MaxAttempts: 2, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := openaitest.New()
	cut := openaitest.Reply{Content: strings.Repeat("ok ", 300), Fault: openaitest.Fault{Kind: openaitest.FaultCut}}
	ok := openaitest.Reply{Content: "df says 42%", Usage: &openaitest.Usage{PromptTokens: 10, CompletionTokens: 290}}
	srv.On().Reply(cut, ok, cut, ok, cut, ok)
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = oaiadapter.NewHTTPClient(middleware.Chain(above.Middleware(), rt.Middleware(), ref.Middleware()),
		oaiadapter.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ctx := middleware.WithTeam(context.Background(), "sre")
	teamUsed := func(s budget.Store) int64 {
		t.Helper()
		b, err := llmwrap.NewBudget(p, budget.WithStore(s))
		if err != nil {
			t.Fatal(err)
		}
		rem, err := b.Remaining(ctx, "sre")
		if err != nil {
			t.Fatal(err)
		}
		if !rem.Reserved.IsZero() {
			t.Errorf("reservations left: %+v", rem.Reserved)
		}
		return rem.Used.Tokens
	}
	var refByCall []int64
	call := func() {
		t.Helper()
		before := teamUsed(refStore)
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 900,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: strings.Repeat("Check the disks. ", 50)}}}); err != nil {
			t.Fatalf("call %d: %v", len(refByCall)+1, err)
		}
		refByCall = append(refByCall, teamUsed(refStore)-before)
	}
	call() // Redis up
	proxy.set(true)
	call() // Redis down: the local share
	proxy.set(false)
	call() // Redis back
	if n := srv.Count(); n != 6 {
		t.Fatalf("%d requests sent, want 6", n)
	}
	inRedis, inLocal := teamUsed(redis.NewBudgetStore(c)), teamUsed(local)
	if refByCall[0] <= 300 {
		t.Fatalf("a call of a cut answer and a 300-token answer charged %d tokens below the retry, want more than 300", refByCall[0])
	}
	if want := refByCall[0] + refByCall[2]; inRedis != want {
		t.Errorf("Redis ledger counts %d tokens, want %d (the two calls made while it answered, each attempt once)", inRedis, want)
	}
	if inLocal != refByCall[1] {
		t.Errorf("local share counts %d tokens, want %d (the call made while Redis was down, each attempt once)", inLocal, refByCall[1])
	}
}
