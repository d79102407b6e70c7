package e2e

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
	"github.com/tokenwise/tokenwise/llmwrap/route/routeeval"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// trainedPolicy trains a learned router on synthetic data, writes its
// weights beside a policy file naming them by a relative path, and loads
// the policy.
func trainedPolicy(t *testing.T, rules string) (*policies.Policy, *learn.Model) {
	t.Helper()
	m, _, err := routeeval.Train(routeeval.Synthetic(routeeval.SynthConfig{N: 600, Seed: 1}), routeeval.TrainConfig{Bits: 12})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(filepath.Join(dir, "router.bin")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy.yaml")
	yaml := "version: 1\nrouting:\n  default: gpt-4o\n  learned: {weights: router.bin, weak: gpt-4o-mini}\n" + rules
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policies.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return p, m
}

// extremes returns the synthetic queries the model scores lowest and
// highest.
func extremes(m *learn.Model) (easy, hard string) {
	ex := routeeval.Synthetic(routeeval.SynthConfig{N: 200, Seed: 9})
	slices.SortFunc(ex, func(a, b routeeval.Example) int {
		sa, sb := m.Score(a.Text), m.Score(b.Text)
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	return ex[0].Text, ex[len(ex)-1].Text
}

// routing.learned routes live calls of a real go-openai client: a query
// scoring above the calibrated threshold goes to the strong model, one
// below to the weak model, and a rule that matches wins over the score.
func TestLearnedRoutingThroughGoOpenAI(t *testing.T) {
	t.Parallel()
	p, m := trainedPolicy(t, "  rules:\n    - name: status\n      when: {keywords: [status]}\n      model: gpt-4.1-nano\n")
	easy, hard := extremes(m)
	if th := float64(m.Threshold); m.Score(easy) >= th || m.Score(hard) < th {
		t.Fatalf("scores %.3f, %.3f do not straddle the calibrated threshold %.3f", m.Score(easy), m.Score(hard), th)
	}
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	client := goClient(t, srv, p)
	ctx, run := middleware.StartRun(context.Background(), "learned")
	for _, text := range []string{hard, easy, "status of " + hard} {
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: text}}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := join(upstreamModels(srv)); got != "gpt-4o,gpt-4o-mini,gpt-4.1-nano" {
		t.Fatalf("upstream %s\n%s", got, observe.Report(run))
	}
	calls := run.Calls()
	for i, want := range []string{`learned "router.bin": score >= `, `learned "router.bin": score < `, `rule 1 "status"`} {
		if !strings.HasPrefix(calls[i].Rule, want) {
			t.Errorf("call %d rule %q, want prefix %q", i, calls[i].Rule, want)
		}
	}
}

// A policy's threshold overrides the calibrated one.
func TestLearnedThresholdFromPolicy(t *testing.T) {
	t.Parallel()
	_, m := trainedPolicy(t, "")
	easy, hard := extremes(m)
	for _, tc := range []struct {
		threshold float64
		want      string
	}{{0.0001, "gpt-4o"}, {1, "gpt-4o-mini"}} {
		p := &policies.Policy{Version: 1, Routing: policies.Routing{Default: "gpt-4o",
			Learned: policies.LearnedRouting{Weights: "unused.bin", Threshold: tc.threshold, Weak: "gpt-4o-mini"}}}
		r, err := llmwrap.NewRules(p, route.WithLearnedModel(m))
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{easy, hard} {
			req := &middleware.Request{Model: "x", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: text}}}
			d, ok := r.Route(context.Background(), route.NewQuery(context.Background(), req))
			if !ok || d.Model != tc.want || !route.IsLearnedDecision(d) {
				t.Errorf("threshold %v: %+v, want %s", tc.threshold, d, tc.want)
			}
		}
	}
}

// A missing or corrupt weights file fails when the router is built, not
// on the first call.
func TestLearnedWeightsErrorsAtBuild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.bin")
	if err := os.WriteFile(bad, []byte("TWLW not weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want error
	}{{filepath.Join(dir, "missing.bin"), fs.ErrNotExist}, {bad, learn.ErrFormat}} {
		p := &policies.Policy{Version: 1, Routing: policies.Routing{Default: "gpt-4o",
			Learned: policies.LearnedRouting{Weights: tc.path, Weak: "gpt-4o-mini"}}}
		if _, err := llmwrap.NewRules(p); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.path, err, tc.want)
		}
	}
}

func learnedRules(t testing.TB) (*route.Rules, *middleware.Request) {
	m, _, err := routeeval.Train(routeeval.Synthetic(routeeval.SynthConfig{N: 400, Seed: 1}), routeeval.TrainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p := &policies.Policy{Version: 1, Routing: policies.Routing{Default: "gpt-4o",
		Learned: policies.LearnedRouting{Weights: "w.bin", Weak: "gpt-4o-mini"}}}
	r, err := llmwrap.NewRules(p, route.WithLearnedModel(m))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("which eigenvalue of the tensor is real? ", 52)[:2048]
	return r, &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are a tutor."}, {Role: middleware.RoleUser, Content: text}}}
}

// Routing a 2 KB message with a learned scorer allocates nothing.
func TestLearnedRouteAllocatesNothing(t *testing.T) {
	r, req := learnedRules(t)
	ctx := context.Background()
	if a := testing.AllocsPerRun(100, func() { r.Route(ctx, route.NewQuery(ctx, req)) }); a != 0 {
		t.Fatalf("%v allocations per learned routing decision", a)
	}
}

// BenchmarkLearnedRouteDecision2KB is a whole routing decision of a
// learned policy (no rules) on a 2 KB user message.
func BenchmarkLearnedRouteDecision2KB(b *testing.B) {
	r, req := learnedRules(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Route(ctx, route.NewQuery(ctx, req))
	}
}
