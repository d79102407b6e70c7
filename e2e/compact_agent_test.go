package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/observe"
)

const (
	agentIterations = 30
	toolResultBytes = 20 << 10
	agentCeiling    = 24_000
)

type agentRun struct {
	inputTotal  int64 // prompt tokens reported by the server, summed
	cachedTotal int64
	maxInput    int
	requests    []openaitest.Recorded
	run         *middleware.Run
	iterations  int
}

// runAgent runs the seed's agent loop with a real go-openai client whose
// HTTP client is the tokenwise transport around chain, against a scripted
// server that asks for a tool 29 times (each result 20 KB) and then
// answers. It checks after every call that the caller's messages were not
// changed.
func runAgent(t *testing.T, chain middleware.Middleware) agentRun {
	t.Helper()
	srv := openaitest.New()
	srv.On().Reply(openaitest.ToolCalls(openaitest.Call("", "read_log", `{"host":"web-1"}`))).Times(agentIterations - 1)
	srv.On().Reply(openaitest.Text("The disk filled up with application logs; rotated them."))
	cache := &promptCache{srv: srv}
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(openaitest.NewTransport(cache)))
	client := goopenai.NewClientWithConfig(cfg)

	ctx, run := middleware.StartRun(context.Background(), "agent")
	msgs := []goopenai.ChatCompletionMessage{
		{Role: goopenai.ChatMessageRoleSystem, Content: "You are a DevOps agent. Use the tools to find out what is wrong, then answer briefly."},
		{Role: goopenai.ChatMessageRoleUser, Content: "I'm out of disk space on web-1. Sort it out."},
	}
	tools := []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
		Name: "read_log", Description: "Reads the latest application log of a host.",
		Parameters: json.RawMessage(`{"type":"object","properties":{"host":{"type":"string"}},"required":["host"]}`)}}}
	var res agentRun
	for i := 0; ; i++ {
		if i == agentIterations {
			t.Fatalf("the agent did not finish in %d iterations", agentIterations)
		}
		before, _ := json.Marshal(msgs)
		resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: msgs, Tools: tools})
		if err != nil {
			t.Fatalf("iteration %d: %v", i+1, err)
		}
		if after, _ := json.Marshal(msgs); string(after) != string(before) {
			t.Fatalf("iteration %d: the caller's messages changed", i+1)
		}
		res.iterations++
		res.inputTotal += int64(resp.Usage.PromptTokens)
		if resp.Usage.PromptTokensDetails != nil {
			res.cachedTotal += int64(resp.Usage.PromptTokensDetails.CachedTokens)
		}
		res.maxInput = max(res.maxInput, resp.Usage.PromptTokens)
		m := resp.Choices[0].Message
		msgs = append(msgs, m)
		if len(m.ToolCalls) == 0 {
			break
		}
		for _, tc := range m.ToolCalls {
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleTool, ToolCallID: tc.ID,
				Content: bigResult(i, toolResultBytes)})
		}
	}
	res.requests = srv.Requests()
	res.run = run
	return res
}

// Must show: a 30-iteration agent run with 20 KB tool results stays under
// the ceiling on every request, completes, and sends at least 60% fewer
// input tokens than the same run without the context budget; every request
// has valid tool-call pairing; the compacted prefix is byte-identical from
// one call to the next once formed.
func TestAgentRunThirtyIterations(t *testing.T) {
	off := &memOffloader{}
	pricer := middleware.PricerFunc(func(model string, u middleware.Usage) (int64, bool) {
		return (u.InputTokens-u.CachedInputTokens)*15/100 + u.CachedInputTokens*75/1000 + u.OutputTokens*60/100, true // gpt-4o-mini per 1M: $0.15 in, $0.075 cached, $0.60 out
	})
	mw := middlewaretest.Must(compact.New(compact.Config{
		MaxInputTokens: agentCeiling,
		Strategies:     []compact.Strategy{compact.Offload, compact.Drop},
		KeepLastTurns:  2,
		BlockSize:      4,
	}, compact.WithOffloader(off), compact.WithEstimator(compact.Approx{}), compact.WithPricer(pricer)))
	without := runAgent(t, middleware.Chain(instrument.New(pricer, nil)))
	with := runAgent(t, middleware.Chain(instrument.New(pricer, nil), mw))

	if with.iterations != agentIterations || without.iterations != agentIterations {
		t.Fatalf("iterations: with %d, without %d; want %d", with.iterations, without.iterations, agentIterations)
	}
	reduction := 1 - float64(with.inputTotal)/float64(without.inputTotal)
	t.Logf("without context budget: %d input tokens in %d calls (max %d per request, %.0f%% cached)",
		without.inputTotal, without.iterations, without.maxInput, 100*float64(without.cachedTotal)/float64(without.inputTotal))
	t.Logf("with context budget:    %d input tokens in %d calls (max %d per request, ceiling %d, %.0f%% cached)",
		with.inputTotal, with.iterations, with.maxInput, agentCeiling, 100*float64(with.cachedTotal)/float64(with.inputTotal))
	t.Logf("input tokens fell by %.1f%%; %d tool results offloaded; cost %s without, %s with",
		100*reduction, off.calls, middleware.FormatUSD(without.run.Totals().CostPico), middleware.FormatUSD(with.run.Totals().CostPico))
	if with.maxInput > agentCeiling {
		t.Errorf("a request had %d input tokens, over the ceiling %d", with.maxInput, agentCeiling)
	}
	if reduction < 0.60 {
		t.Errorf("input tokens fell by %.1f%%, want at least 60%%", 100*reduction)
	}
	if without.maxInput <= agentCeiling {
		t.Errorf("the run without compaction never exceeded the ceiling (max %d): the test proves nothing", without.maxInput)
	}

	for _, r := range append(with.requests, without.requests...) {
		if err := openaitest.CheckToolPairing(r.Chat.Messages); err != nil {
			t.Errorf("request %d: %v", r.Seq, err)
		}
	}

	// Stability: the compacted prefix of request i (up to its last
	// compacted message) is sent byte for byte again in request i+1.
	formed := 0
	for i := 0; i+1 < len(with.requests); i++ {
		a, b := with.requests[i].Chat.Messages, with.requests[i+1].Chat.Messages
		last := -1
		for j, m := range a {
			if strings.Contains(m.Content.String(), "read it with read_artifact") {
				last = j
			}
		}
		if last < 0 {
			continue
		}
		formed++
		if len(b) <= last || !reflect.DeepEqual(wireJSON(a[:last+1]), wireJSON(b[:last+1])) {
			t.Errorf("request %d changed the compacted prefix of request %d (%d messages)", i+2, i+1, last+1)
		}
	}
	if formed < agentIterations/2 {
		t.Errorf("only %d requests were compacted", formed)
	}

	tot := with.run.Totals()
	if tot.Saved.InputTokens <= 0 || tot.SavedPico <= 0 {
		t.Errorf("savings not recorded: %+v, %d micro-USD", tot.Saved, tot.SavedPico)
	}
	notes := 0
	for _, c := range with.run.Calls() {
		notes += len(c.Notes)
	}
	if notes < formed {
		t.Errorf("%d compaction notes for %d compacted calls", notes, formed)
	}
	t.Logf("saved %d input tokens (%s) in the run", tot.Saved.InputTokens, middleware.FormatPico(tot.SavedPico))
	if testing.Verbose() {
		fmt.Println(observe.Report(with.run))
	}
}

func wireJSON(ms []openaitest.Message) string {
	b, _ := json.Marshal(ms)
	return string(b)
}

var _ http.Handler = (*promptCache)(nil)

// memOffloader is an in-memory artifact store: the excerpt is the first
// lines of the result and an artifact id. It is safe for concurrent use.
type memOffloader struct {
	mu    sync.Mutex
	items map[string]string
	calls int
}

func (o *memOffloader) Offload(_ context.Context, run, tool, content string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.items == nil {
		o.items = map[string]string{}
	}
	o.calls++
	id := fmt.Sprintf("art_%s_%d", run, len(o.items)+1)
	o.items[id] = content
	lines := strings.SplitN(content, "\n", 4)
	head := strings.Join(lines[:min(3, len(lines))], "\n")
	return fmt.Sprintf("%s\n... [%s output stored as artifact %s (%d bytes); read it with read_artifact]", head, tool, id, len(content)), nil
}

// bigResult returns a deterministic tool result of about n bytes.
func bigResult(seed, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%04d-%02d host-%d /var/log/app.log: request %d served in %dms status=%d\n", seed, i%60, seed%7, i*31+seed, (i*seed)%997, 200+(i%3)*100)
	}
	return b.String()[:n]
}

// promptCache wraps a scripted server with OpenAI's automatic prompt
// caching rule: a request whose first messages repeat an earlier request's
// reads them from the cache, in steps of 128 tokens once 1,024 are shared.
// The usage of (non-streaming) answers is rewritten with those cached
// tokens.
type promptCache struct {
	srv *openaitest.Server

	mu   sync.Mutex
	prev []openaitest.Message
}

func (p *promptCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req openaitest.ChatRequest
	_ = json.Unmarshal(body, &req)
	p.mu.Lock()
	shared := 0
	for shared < len(req.Messages) && shared < len(p.prev) && sameJSON(req.Messages[shared], p.prev[shared]) {
		shared++
	}
	p.prev = req.Messages
	p.mu.Unlock()
	cached := 0
	if shared > 0 {
		cached = openaitest.PromptTokens(&openaitest.ChatRequest{Messages: req.Messages[:shared]}) - 3
	}
	if cached < 1024 {
		cached = 0
	} else {
		cached = 1024 + (cached-1024)/128*128
	}
	rec := httptest.NewRecorder()
	p.srv.ServeHTTP(rec, r)
	out := rec.Body.Bytes()
	var m map[string]any
	if rec.Code == 200 && json.Unmarshal(out, &m) == nil {
		if u, ok := m["usage"].(map[string]any); ok {
			u["prompt_tokens_details"] = map[string]any{"cached_tokens": cached}
			out, _ = json.Marshal(m)
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

func sameJSON(a, b openaitest.Message) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
