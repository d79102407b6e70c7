package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

// rlClient returns a go-openai client whose calls run through chain and
// reach h in memory (usable inside a synctest bubble).
func rlClient(h http.Handler, chain middleware.Middleware) *openai.Client {
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = "http://provider.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(openaitest.NewTransport(h)))
	return openai.NewClientWithConfig(cfg)
}

func rlAsk(ctx context.Context, c *openai.Client, model, text string) (openai.ChatCompletionResponse, error) {
	return c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: model,
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: text}}})
}

func policy(rl policies.RateLimits) *policies.Policy {
	return &policies.Policy{Version: 1, Name: "rl", RateLimits: rl}
}

func build(p *policies.Policy, rec *middlewaretest.Recorder, opts ...llmwrap.Option) middleware.Middleware {
	if rec != nil {
		opts = append(opts, llmwrap.WithObserver(rec))
	}
	return llmwrap.MustBuild(p, opts...)
}

// inflight wraps a provider and records the most calls it served at once.
type inflight struct {
	h        http.Handler
	cur, top atomic.Int64
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.cur.Add(1)
	for {
		t := f.top.Load()
		if n <= t || f.top.CompareAndSwap(t, n) {
			break
		}
	}
	defer f.cur.Add(-1)
	f.h.ServeHTTP(w, r)
}

// limitedProvider is a scripted provider that enforces its own limit of
// perMinute requests (a GCRA with a full minute of burst, as OpenAI
// documents its limits), of which `used` are already spent by someone else
// when it starts. It answers 429 beyond the limit and reports
// x-ratelimit-* headers on every answer.
type limitedProvider struct {
	srv       *openaitest.Server
	perMinute int64

	mu     sync.Mutex
	tat    time.Time
	ok     int
	denied int
}

func newLimitedProvider(perMinute, used int64) *limitedProvider {
	srv := openaitest.New()
	srv.Default(openaitest.Text("fine"))
	iv := time.Minute / time.Duration(perMinute)
	return &limitedProvider{srv: srv, perMinute: perMinute, tat: time.Now().Add(time.Duration(used) * iv)}
}

func (p *limitedProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	iv := time.Minute / time.Duration(p.perMinute)
	now := time.Now()
	p.mu.Lock()
	tat := p.tat
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(iv)
	allowed := next.Sub(now) <= time.Minute
	if allowed {
		p.tat = next
		p.ok++
	} else {
		p.denied++
	}
	used := p.tat.Sub(now)
	if used < 0 {
		used = 0
	}
	p.mu.Unlock()
	remaining := p.perMinute - int64((used+iv-1)/iv)
	h := w.Header()
	h.Set("X-Ratelimit-Limit-Requests", strconv.FormatInt(p.perMinute, 10))
	h.Set("X-Ratelimit-Remaining-Requests", strconv.FormatInt(max(remaining, 0), 10))
	h.Set("X-Ratelimit-Reset-Requests", used.String())
	if !allowed {
		h.Set("Retry-After-Ms", fmt.Sprint(int64((tat.Add(iv).Sub(now)-time.Minute)/time.Millisecond)+1))
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
		return
	}
	p.srv.ServeHTTP(w, r)
}

func (p *limitedProvider) counts() (ok, denied int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.denied
}

// providerRefused reports whether err is the provider's 429, as go-openai
// returns it.
func providerRefused(err error) bool {
	var ae *openai.APIError
	return errors.As(err, &ae) && ae.HTTPStatusCode == http.StatusTooManyRequests
}
