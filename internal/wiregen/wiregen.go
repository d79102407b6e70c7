// Package wiregen is a test helper: it generates valid OpenAI-compatible
// chat completion answers, plain and streamed, in the shapes real servers
// send (vLLM, Ollama, llama.cpp, LM Studio, Groq, Together, DeepSeek,
// Mistral, Gemini's compatibility layer, OpenRouter, Azure, LiteLLM),
// varied down to the bytes: member order, absent, null and empty members,
// escapes and raw bytes that are not UTF-8, SSE framing (comments, event,
// id and retry fields, "data:" with and without spaces, CRLF), HTTP
// framing (gzip, flushes anywhere), n > 1, usage wherever servers put it.
//
// [Differential] serves a [Case] and compares what go-openai reads of it
// directly with what it reads through tokenwise (a client whose transport
// is the OpenAI adapter's, or the gateway), and then with the second,
// identical call (a cache hit): the shapes tokenwise's own scripted server
// (openaitest) never plays. [Vendors] are answers in the exact shapes of
// named servers (vLLM, Ollama, llama.cpp, Groq, Azure, DeepSeek,
// OpenRouter's mid-stream error, Mistral, Gemini, Together, Fireworks,
// TGI, xAI, LocalAI, Anthropic's and LM Studio's compatibility layers;
// usage of nulls, floats, huge and negative counts), each with the usage
// its provider bills.
package wiregen

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/middleware"
)

// Case is one generated answer, and the request it answers.
type Case struct {
	Seed         uint64
	N            int  // choices
	Stream       bool // the request streams
	IncludeUsage bool // stream_options.include_usage
	NoDone       bool // the stream ends without [DONE] (a cut, unless finished)
	// Fails: the answer is the provider's failure (an error object or a
	// finish_reason "error" sent with HTTP 200), which tokenwise reports
	// as a typed error, never cached, whatever go-openai alone reads.
	Fails bool
	Wire  Wire
}

// NewCase returns the case of seed.
func NewCase(seed uint64) Case {
	rng := rand.New(rand.NewPCG(seed, 0xa0d17))
	n := 1
	if rng.IntN(5) == 0 {
		n = 2 + rng.IntN(2)
	}
	c := Case{Seed: seed, N: n, Stream: rng.IntN(3) != 0, IncludeUsage: rng.IntN(2) == 0}
	c.NoDone = c.Stream && rng.IntN(6) == 0
	c.Wire = render(rng, genAnswer(rng, n), c.Stream, c.IncludeUsage, c.NoDone)
	return c
}

// Request returns the case's request; tag makes its message (and so its
// cache key) its own.
func (c Case) Request(tag string) goopenai.ChatCompletionRequest {
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Stream: c.Stream,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("case %d %s", c.Seed, tag)}}}
	if c.N > 1 {
		req.N = c.N
	}
	if c.Stream && c.IncludeUsage {
		req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
	}
	return req
}

// Server answers every request with the Wire set last.
type Server struct {
	mu    sync.Mutex
	w     Wire
	calls int
}

// Set makes w the answer, and counts calls from zero.
func (s *Server) Set(w Wire) { s.mu.Lock(); s.w, s.calls = w, 0; s.mu.Unlock() }

// Served returns the number of requests answered since Set.
func (s *Server) Served() int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls }

func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	w := s.w
	s.calls++
	s.mu.Unlock()
	h := rw.Header()
	h.Set("Content-Type", w.ContentType)
	body := w.Body
	if w.Gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = zb.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	rw.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(rw)
	prev := 0
	cuts := slices.Clone(w.Pieces)
	slices.Sort(cuts)
	for _, c := range cuts {
		c = min(c, len(body))
		if c <= prev {
			continue
		}
		_, _ = rw.Write(body[prev:c])
		_ = rc.Flush()
		prev = c
	}
	_, _ = rw.Write(body[prev:])
}

// Tool is a tool call as a caller assembles it.
type Tool struct {
	idx                  int // its index in the stream
	ID, Type, Name, Args string
}

// Choice is one choice as a caller reads it.
type Choice struct {
	Content, Reasoning, Refusal, Finish string
	Tools                               []Tool
}

// Usage is the usage a caller reads.
type Usage struct{ Prompt, Completion, Total, Cached, Reasoning int }

// Answer is an answer as a caller of go-openai reads it, choices by index.
type Answer struct {
	Choices map[int]*Choice
	Usage   *Usage
	// Unindexed: a streamed chunk held several tool calls with no index
	// (read at their positions; a caller reading a missing index as 0
	// reads them as one call).
	Unindexed bool
}

func (a *Answer) String() string {
	var b strings.Builder
	idx := make([]int, 0, len(a.Choices))
	for i := range a.Choices {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		c := a.Choices[i]
		fmt.Fprintf(&b, "[%d] content %q reasoning %q refusal %q finish %q tools %+v\n", i, c.Content, c.Reasoning, c.Refusal, c.Finish, c.Tools)
	}
	fmt.Fprintf(&b, "usage %+v", a.Usage)
	if a.Unindexed {
		b.WriteString(" (tool calls without index)")
	}
	return b.String()
}

func usageOf(u goopenai.Usage) *Usage {
	r := &Usage{Prompt: u.PromptTokens, Completion: u.CompletionTokens, Total: u.TotalTokens}
	if u.PromptTokensDetails != nil {
		r.Cached = u.PromptTokensDetails.CachedTokens
	}
	if u.CompletionTokensDetails != nil {
		r.Reasoning = u.CompletionTokensDetails.ReasoningTokens
	}
	return r
}

func readPlain(resp goopenai.ChatCompletionResponse) *Answer {
	a := &Answer{Choices: map[int]*Choice{}}
	for _, c := range resp.Choices {
		rc := &Choice{Content: c.Message.Content, Reasoning: c.Message.ReasoningContent, Refusal: c.Message.Refusal, Finish: string(c.FinishReason)}
		for _, p := range c.Message.MultiContent {
			rc.Content += p.Text
		}
		for k, t := range c.Message.ToolCalls {
			rc.Tools = append(rc.Tools, Tool{idx: k, ID: t.ID, Type: string(t.Type), Name: t.Function.Name, Args: t.Function.Arguments})
		}
		a.Choices[c.Index] = rc
	}
	if resp.Usage != (goopenai.Usage{}) {
		a.Usage = usageOf(resp.Usage)
	}
	return a
}

// readStream assembles a stream as callers of go-openai do: by choice
// index, tool calls by their index, or their position in the chunk's list
// when they have none (id and name from the fragments that carry them,
// arguments concatenated).
func readStream(s *goopenai.ChatCompletionStream) (*Answer, error) {
	defer s.Close()
	a := &Answer{Choices: map[int]*Choice{}}
	toolIdx := map[int]map[int]int{}
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return a, nil
		}
		if err != nil {
			return a, err
		}
		if c.Usage != nil {
			a.Usage = usageOf(*c.Usage)
		}
		for _, ch := range c.Choices {
			rc := a.Choices[ch.Index]
			if rc == nil {
				rc = &Choice{}
				a.Choices[ch.Index] = rc
				toolIdx[ch.Index] = map[int]int{}
			}
			rc.Content += ch.Delta.Content
			rc.Reasoning += ch.Delta.ReasoningContent
			rc.Refusal += ch.Delta.Refusal
			if ch.FinishReason != "" {
				rc.Finish = string(ch.FinishReason)
			}
			for pos, t := range ch.Delta.ToolCalls {
				i := pos // a call without its index: the one at its position (Mistral's calls, sent whole)
				if t.Index != nil {
					i = *t.Index
				} else if len(ch.Delta.ToolCalls) > 1 {
					a.Unindexed = true
				}
				k, ok := toolIdx[ch.Index][i]
				if !ok {
					k = len(rc.Tools)
					toolIdx[ch.Index][i] = k
					rc.Tools = append(rc.Tools, Tool{idx: i})
				}
				tt := &rc.Tools[k]
				tt.ID = cmpOr(tt.ID, t.ID)
				tt.Type = cmpOr(tt.Type, string(t.Type))
				tt.Name = cmpOr(tt.Name, t.Function.Name)
				tt.Args += t.Function.Arguments
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Norm returns a copy of a to compare: each choice's tool calls in the
// order of their stream index, a missing type "function".
func (a *Answer) Norm() *Answer {
	b := &Answer{Choices: map[int]*Choice{}, Usage: a.Usage, Unindexed: a.Unindexed}
	for i, c := range a.Choices {
		cc := *c
		cc.Tools = slices.Clone(c.Tools)
		sort.SliceStable(cc.Tools, func(x, y int) bool { return cc.Tools[x].idx < cc.Tools[y].idx })
		for k := range cc.Tools {
			cc.Tools[k].idx = 0
			if cc.Tools[k].Type == "" {
				cc.Tools[k].Type = "function"
			}
		}
		if len(cc.Tools) == 0 {
			cc.Tools = nil
		}
		b.Choices[i] = &cc
	}
	return b
}

// lenient drops from b what a lacks and b adds: a reasoning (a "reasoning"
// member go-openai does not read, which tokenwise renders as
// reasoning_content).
func lenient(a, b *Answer) {
	for i, c := range b.Choices {
		if ac, ok := a.Choices[i]; ok && ac.Reasoning == "" {
			c.Reasoning = ""
		}
	}
}

// Outcome is what a call read.
type Outcome struct {
	Answer *Answer
	Err    error
}

// Call makes req with c, streaming or not, and reads the answer.
func Call(ctx context.Context, c *goopenai.Client, req goopenai.ChatCompletionRequest) Outcome {
	if req.Stream {
		s, err := c.CreateChatCompletionStream(ctx, req)
		if err != nil {
			return Outcome{Err: err}
		}
		a, err := readStream(s)
		return Outcome{a, err}
	}
	resp, err := c.CreateChatCompletion(ctx, req)
	if err != nil {
		return Outcome{Err: err}
	}
	return Outcome{Answer: readPlain(resp)}
}

// typed reports whether err is one a caller can act on: the provider's
// error, go-openai's API or request error, a cut stream, a malformed answer.
func typed(err error) bool {
	var pe *middleware.ProviderError
	var ae *goopenai.APIError
	var re *goopenai.RequestError
	return errors.As(err, &pe) || errors.As(err, &ae) || errors.As(err, &re) || errors.Is(err, middleware.ErrStreamCut) || errors.Is(err, middleware.ErrMalformed)
}

// compare reports what differs between go-openai's read of c alone (raw)
// and through tokenwise (tw), or "".
func compare(c Case, raw, tw Outcome) string {
	if c.Fails {
		if tw.Err == nil || !typed(tw.Err) {
			return fmt.Sprintf("the provider's failure read as %v, error %v (%T)", tw.Answer, tw.Err, tw.Err)
		}
		return ""
	}
	if raw.Err != nil {
		return "" // garbage to go-openai itself: any outcome but a panic
	}
	if tw.Err != nil {
		if !typed(tw.Err) {
			return fmt.Sprintf("untyped error %T: %v", tw.Err, tw.Err)
		}
		if c.NoDone {
			return "" // a cut
		}
		if c.Stream && errors.Is(tw.Err, middleware.ErrMalformed) && carriesNothing(raw.Answer) {
			// A stream that ended with [DONE] having carried nothing (no
			// content, reasoning, refusal, tool call, finish reason or
			// usage): go-openai alone reads an empty answer; tokenwise
			// refuses to report it as a success.
			return ""
		}
		return fmt.Sprintf("error on an answer go-openai reads: %v\ngo-openai alone:\n%v", tw.Err, raw.Answer)
	}
	r, t := raw.Answer.Norm(), tw.Answer.Norm()
	lenient(r, t)
	if c.Stream && !c.IncludeUsage {
		r.Usage, t.Usage = nil, nil
	}
	if !reflect.DeepEqual(r, t) {
		return fmt.Sprintf("go-openai alone:\n%v\nthrough tokenwise:\n%v", r, t)
	}
	return ""
}

// carriesNothing reports whether a streamed answer as go-openai alone read
// it holds nothing of an answer: every choice empty, no usage.
func carriesNothing(a *Answer) bool {
	if a == nil {
		return true
	}
	if a.Usage != nil {
		return false
	}
	for _, ch := range a.Choices {
		if ch.Content != "" || ch.Reasoning != "" || ch.Refusal != "" || ch.Finish != "" || len(ch.Tools) > 0 {
			return false
		}
	}
	return true
}

// Differential serves c from srv, whose URL (as go-openai's BaseURL) is
// rawURL, and checks that go-openai through tokenwise (tw, whose upstream
// is srv) reads what go-openai alone reads, or fails with a typed error on
// a stream without [DONE]; and that the second, identical call through
// tokenwise (a cache hit) reads what the first read.
func Differential(t testing.TB, srv *Server, rawURL string, tw *goopenai.Client, c Case) {
	t.Helper()
	ctx := context.Background()
	srv.Set(c.Wire)
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = rawURL
	req := c.Request(fmt.Sprint(rand.Uint64()))
	raw := Call(ctx, goopenai.NewClientWithConfig(cfg), req)
	first := Call(ctx, tw, req)
	if d := compare(c, raw, first); d != "" {
		t.Fatalf("seed %d (stream %t, usage %t, n %d): first call: %s\nwire:\n%q", c.Seed, c.Stream, c.IncludeUsage, c.N, d, c.Wire.Body)
	}
	before := srv.Served()
	if first.Err != nil {
		if c.Fails {
			if second := Call(ctx, tw, req); srv.Served() == before || second.Err == nil {
				t.Fatalf("seed %d: the provider's failure, asked again: upstream calls %d, %v %v\nwire:\n%q", c.Seed, srv.Served()-before, second.Answer, second.Err, c.Wire.Body)
			}
		}
		return
	}
	second := Call(ctx, tw, req)
	hit := srv.Served() == before
	if second.Err != nil {
		t.Fatalf("seed %d: second call (a hit: %t): %v\nwire:\n%q", c.Seed, hit, second.Err, c.Wire.Body)
	}
	a, b := first.Answer.Norm(), second.Answer.Norm()
	lenient(a, b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed %d (stream %t, usage %t, n %d): second call (a hit: %t) differs\nfirst:\n%v\nsecond:\n%v\nwire:\n%q",
			c.Seed, c.Stream, c.IncludeUsage, c.N, hit, a, b, c.Wire.Body)
	}
}
