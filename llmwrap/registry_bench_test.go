package llmwrap

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// BenchmarkRegistryLookup measures the per-call policy lookup: the team
// from the context, then the chain of its policy. Target: < 100 ns, 0 allocs.
func BenchmarkRegistryLookup(b *testing.B) {
	dir := b.TempDir()
	for _, team := range []string{"default", "devops", "ml", "search", "support"} {
		if err := os.WriteFile(filepath.Join(dir, team+".yaml"), []byte("version: 1\nlimits: {max_calls: 5}\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	preg, err := policies.NewRegistry(dir)
	if err != nil {
		b.Fatal(err)
	}
	reg, err := NewRegistry(preg)
	if err != nil {
		b.Fatal(err)
	}
	h := reg.Handler(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) { return nil, nil })).(*registryHandler)
	lookup := h.handlerFor
	ctx := middleware.WithTeam(context.Background(), "devops")
	ctx = context.WithValue(ctx, struct{ k int }{1}, 1) // a realistic context depth
	b.Run("chain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if hh, _ := lookup(ctx); hh == nil {
				b.Fatal("nil")
			}
		}
	})
	b.Run("policy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if preg.Policy(middleware.TeamFrom(ctx)) == nil {
				b.Fatal("nil")
			}
		}
	})
}

// BenchmarkNewBudget: a budget made for one read of its ledgers (the
// gateway's /v1/spend, each team's /metrics gauges at a scrape) shares
// the process's estimator: 6–13 µs and 2–3 KB, where one of its own cost
// ≈1.5 ms and 1.6 MB.
func BenchmarkNewBudget(b *testing.B) {
	p, err := policies.LoadBytes([]byte("version: 1\nbudget: {team: {period: monthly, max_usd: 5}}\n"), "p.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewBudget(p); err != nil {
			b.Fatal(err)
		}
	}
}
