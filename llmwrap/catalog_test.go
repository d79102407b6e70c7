package llmwrap_test

import (
	"context"
	"log/slog"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// The catalog resolves each model name once and remembers it: every
// answer, remembered or not (past its bound), is what the policy says of
// the name at that moment — for catalog models, dated snapshots, the
// policy's own models overlaid on the catalog's and unknown names, asked
// concurrently and repeatedly.
func TestCatalogAnswersAsThePolicy(t *testing.T) {
	t.Parallel()
	p := policies.Default()
	p.Models = map[string]policies.ModelSpec{
		"gpt-4o":       {InputPer1M: 7_000_000, ContextWindow: 99_000}, // overlays the catalog's
		"house-model":  {InputPer1M: 1_000_000, OutputPer1M: 2_000_000, ContextWindow: 32_000, Encoding: tokens.Cl100kBase},
		"free-model":   {Free: true},
		"window-model": {ContextWindow: 8_000}, // no price
	}
	names := slices.Sorted(maps.Keys(policies.DefaultCatalog()))
	names = append(names, slices.Sorted(maps.Keys(p.Models))...)
	for _, n := range names[:len(names)/2] {
		names = append(names, n+"-2024-08-06", n+"@latest", n+"-pro", "x"+n)
	}
	for i := range 1500 { // past the bound: still answered
		names = append(names, "unknown-"+strconv.Itoa(i))
	}
	pricer, cat, est := llmwrap.Pricer(p), llmwrap.Catalog(p), llmwrap.EstimatorModels(p)
	usage := middleware.Usage{InputTokens: 1234, OutputTokens: 567, CachedInputTokens: 89, ReasoningTokens: 12, AudioInputTokens: 3, AudioOutputTokens: 4}
	check := func(name string) {
		spec, ok := p.Model(name)
		wantCost, wantPriced := int64(0), false
		if ok && spec.HasPrice() {
			wantCost, wantPriced = int64(spec.Cost(llmwrap.TokenCounts(usage))), true
		}
		if c, priced := pricer.Cost(name, usage); c != wantCost || priced != wantPriced {
			t.Errorf("%q: cost %d %v, want %d %v", name, c, priced, wantCost, wantPriced)
		}
		m, mok := cat.Model(name)
		if mok != ok || ok && (m.Priced != spec.HasPrice() || m.ContextWindow != spec.ContextWindow || m.MaxOutputTokens != spec.MaxOutputTokens ||
			m.OutputPico != int64(spec.OutputPer1M) || m.AudioOutputPico != int64(spec.AudioOutputPer1M)) {
			t.Errorf("%q: budget model %+v %v; spec %+v %v", name, m, mok, spec, ok)
		}
		tm, tok := est(name)
		if tok != ok || ok && (tm.Encoding != spec.Encoding || tm.ImageLow != spec.Image.WorstCase("low") || tm.ImageHigh != spec.Image.WorstCase("high")) {
			t.Errorf("%q: estimator model %+v %v; spec %+v %v", name, tm, tok, spec, ok)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 3 { // first use, then remembered
				for _, i := range rng.Perm(len(names)) {
					check(names[i])
				}
			}
		})
	}
	wg.Wait()
}

// Layers that change a request (the router's model, the budget's
// max_tokens, the fallback's next model) send copies — the first one of a
// call in its CallInfo's allocation — and never touch the caller's
// request, which may be sent again, also concurrently.
func TestChainNeverChangesTheCallersRequest(t *testing.T) {
	t.Parallel()
	p := policies.Default()
	p.Cache.Enabled = false
	p.Routing.Default = "gpt-4o" // every call routed: a first copy
	// A team budget holds each call: the budget sets max_tokens.
	p.Budget.Team = policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 1 << 40}
	var mu sync.Mutex
	var sent []middleware.Request
	quotaOut := true // gpt-4o always refuses: every call falls back
	model := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		mu.Lock()
		sent = append(sent, *req)
		fail := quotaOut && req.Model == "gpt-4o"
		mu.Unlock()
		if fail { // the fallback moves on to gpt-4o-mini: a second copy
			return nil, &middleware.ProviderError{StatusCode: 429, Kind: middleware.ErrQuotaExceeded, Message: "quota"}
		}
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			Usage: middleware.Usage{InputTokens: 10, OutputTokens: 2}}, nil
	})
	h := llmwrap.MustBuild(p, llmwrap.WithLogger(slog.New(slog.DiscardHandler)))(model)
	// No tools: routed to the default, gpt-4o (a copy), max_tokens injected.
	req := &middleware.Request{Model: "gpt-4o-mini", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Summarise the logs."}}}
	want := req.DeepClone()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := h.Handle(context.Background(), req); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("the caller's request changed: %+v", req)
	}
	models := map[string]bool{}
	for _, s := range sent {
		models[s.Model] = true
		if s.MaxTokens <= 0 || &s.Messages[0] != &req.Messages[0] {
			t.Fatalf("sent %+v", s)
		}
	}
	if !models["gpt-4o"] || !models["gpt-4o-mini"] {
		t.Fatalf("models sent: %v", models)
	}
}

// TestTokenCountsKeepsEveryField: the conversion of a core usage to the
// policies package's counts carries every field, a field added later
// included (by reflection: the two types list the same fields in the same
// order), so that a price never ignores a count or the service tier.
func TestTokenCountsKeepsEveryField(t *testing.T) {
	var u middleware.Usage
	uv := reflect.ValueOf(&u).Elem()
	for i := range uv.NumField() {
		switch f := uv.Field(i); f.Kind() {
		case reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.String:
			f.SetString("tier-" + strconv.Itoa(i))
		default:
			t.Fatalf("Usage.%s: a field of a kind this test does not fill", uv.Type().Field(i).Name)
		}
	}
	tc := llmwrap.TokenCounts(u)
	tv := reflect.ValueOf(tc)
	if tv.NumField() != uv.NumField() {
		t.Fatalf("TokenCounts has %d fields, Usage %d", tv.NumField(), uv.NumField())
	}
	for i := range uv.NumField() {
		if !reflect.DeepEqual(tv.Field(i).Interface(), uv.Field(i).Interface()) {
			t.Errorf("%s = %v, want Usage.%s = %v", tv.Type().Field(i).Name, tv.Field(i), uv.Type().Field(i).Name, uv.Field(i))
		}
	}
}
