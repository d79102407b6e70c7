package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// lcChoice is a choice as a langchaingo caller reads it.
type lcChoice struct {
	Content, Reasoning, Stop string
	Tools                    []wiregen.Tool
	Usage                    string
}

type lcOutcome struct {
	choices []lcChoice
	err     error
}

func lcRead(resp *llms.ContentResponse) []lcChoice {
	var out []lcChoice
	for _, c := range resp.Choices {
		lc := lcChoice{Content: c.Content, Reasoning: c.ReasoningContent, Stop: c.StopReason}
		for _, t := range c.ToolCalls {
			rt := wiregen.Tool{ID: t.ID, Type: t.Type}
			if t.FunctionCall != nil {
				rt.Name, rt.Args = t.FunctionCall.Name, t.FunctionCall.Arguments
			}
			lc.Tools = append(lc.Tools, rt)
		}
		g := c.GenerationInfo
		lc.Usage = fmt.Sprint(g["PromptTokens"], "/", g["CompletionTokens"], "/", g["TotalTokens"], "/", g["PromptCachedTokens"], "/", g["ReasoningTokens"])
		out = append(out, lc)
	}
	return out
}

func lcCall(ctx context.Context, m llms.Model, c wiregen.Case, tag string) lcOutcome {
	opts := []llms.CallOption{llms.WithModel("gpt-4o-mini")}
	if c.N > 1 {
		opts = append(opts, llms.WithN(c.N))
	}
	if c.Stream {
		opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
	}
	resp, err := m.GenerateContent(ctx, []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, fmt.Sprintf("case %d %s", c.Seed, tag))}, opts...)
	if err != nil {
		return lcOutcome{err: err}
	}
	return lcOutcome{choices: lcRead(resp)}
}

// forStream drops from a streamed read what langchaingo's stream does not
// carry alike through the adapter (usage, a reasoning the reference
// lacks).
func (o *lcOutcome) forStream(ref lcOutcome) {
	for i := range o.choices {
		o.choices[i].Usage = ""
		if len(o.choices[i].Tools) == 0 {
			o.choices[i].Tools = nil
		}
		if len(ref.choices) > 0 && ref.choices[0].Reasoning == "" {
			o.choices[i].Reasoning = ""
		}
	}
}

// TestLangchaingoReadsTheSameThroughTheAdapterSweep: for the named
// servers' shapes (wiregen.Vendors; a provider's failure among them fails
// through the adapter, and is not cached) and wireSeeds generated answers
// (internal/wiregen), langchaingo through the adapter
// (the default policy, twlc.NewTransport installed) reads what langchaingo
// alone reads (a stream: what go-openai reads of its choice 0, langchaingo
// alone mis-assembling some streams), or fails on a stream without [DONE];
// and the second identical call (a cache hit) reads the same.
func TestLangchaingoReadsTheSameThroughTheAdapterSweep(t *testing.T) {
	srv := &wiregen.Server{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	raw, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"), lcopenai.WithHTTPClient(&http.Client{Transport: base}))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-4o-mini"), lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(base)}))
	if err != nil {
		t.Fatal(err)
	}
	tw := twlc.New(twlc.Models{"gpt-4o-mini": inner}, defaultChain())
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = ts.URL
	goClient := goopenai.NewClientWithConfig(cfg)
	for _, v := range wiregen.Vendors {
		t.Run(v.Name, func(t *testing.T) {
			tw := tw
			if v.WantErr { // a chain of its own: a failure opens no breaker for the next
				tw = twlc.New(twlc.Models{"gpt-4o-mini": inner}, llmwrap.MustBuild(policies.Default(), llmwrap.WithLogger(slog.New(slog.DiscardHandler))))
			}
			lcDifferential(t, srv, raw, tw, goClient, v.Case())
		})
	}
	for s := range wireSeeds(t) {
		c := wiregen.NewCase(s)
		t.Run(fmt.Sprint(s), func(t *testing.T) { lcDifferential(t, srv, raw, tw, goClient, c) })
	}
}

// lcDifferential serves c from srv and compares langchaingo alone (raw;
// for a stream, go-openai's read of choice 0) with langchaingo through
// the adapter (tw), first call and hit; a failure (c.Fails) must fail
// through the adapter, and not be cached.
func lcDifferential(t *testing.T, srv *wiregen.Server, raw, tw llms.Model, goClient *goopenai.Client, c wiregen.Case) {
	t.Helper()
	srv.Set(c.Wire)
	ctx := context.Background()
	tag := fmt.Sprint(rand.Uint64())
	var r lcOutcome
	if c.Stream {
		g := wiregen.Call(ctx, goClient, c.Request(tag))
		r.err = g.Err
		if g.Err == nil {
			ch := g.Answer.Norm().Choices[0]
			if ch == nil {
				ch = &wiregen.Choice{}
			}
			r.choices = []lcChoice{{Content: ch.Content, Reasoning: ch.Reasoning, Stop: ch.Finish, Tools: ch.Tools}}
		}
	} else {
		r = lcCall(ctx, raw, c, tag)
	}
	a := lcCall(ctx, tw, c, tag)
	if c.Fails {
		before := srv.Served()
		b := lcCall(ctx, tw, c, tag)
		if a.err == nil || b.err == nil || srv.Served() == before {
			t.Fatalf("the provider's failure through tokenwise: %+v %v, asked again (upstream calls %d): %+v %v\nwire %q", a.choices, a.err, srv.Served()-before, b.choices, b.err, c.Wire.Body)
		}
		return
	}
	if r.err != nil || a.err != nil {
		if r.err == nil && !c.NoDone {
			t.Fatalf("seed %d: through tokenwise %v, on an answer langchaingo reads %+v\nwire %q", c.Seed, a.err, r.choices, c.Wire.Body)
		}
		return
	}
	if c.Stream {
		a.forStream(r)
	}
	if !reflect.DeepEqual(r, a) {
		t.Fatalf("seed %d (stream %t n %d): first call\nalone %+v\ntokenwise %+v\nwire %q", c.Seed, c.Stream, c.N, r, a, c.Wire.Body)
	}
	before := srv.Served()
	b := lcCall(ctx, tw, c, tag)
	hit := srv.Served() == before
	if b.err != nil {
		t.Fatalf("seed %d: second call (a hit: %t): %v", c.Seed, hit, b.err)
	}
	if c.Stream {
		b.forStream(a)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed %d (stream %t n %d): second call (a hit: %t) differs\nfirst  %+v\nsecond %+v\nwire %q", c.Seed, c.Stream, c.N, hit, a, b, c.Wire.Body)
	}
}
