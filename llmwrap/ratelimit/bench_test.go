package ratelimit_test

import (
	"context"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
)

func benchLimiter() *ratelimit.Limiter {
	l, err := ratelimit.New(ratelimit.Config{
		Models:  map[string]ratelimit.ModelLimit{"gpt-4o": {RPM: 1 << 40, TPM: 1 << 50}},
		Teams:   map[string]ratelimit.TeamShare{"sre": {Weight: 1}, "*": {Weight: 1}},
		OnLimit: ratelimit.OnLimitReject,
	})
	if err != nil {
		panic(err)
	}
	return l
}

// BenchmarkLocalAdmission: one admission in memory against a model's rpm
// and tpm and the team's share of both (four GCRA cells, 100 tokens).
// A call without usage to settle has nothing more to do.
func BenchmarkLocalAdmission(b *testing.B) {
	benchLocal(b, -1)
}

// BenchmarkLocalAdmitAndSettle is BenchmarkLocalAdmission plus the
// settlement of the tokens with the provider's usage (80 of 100).
func BenchmarkLocalAdmitAndSettle(b *testing.B) {
	benchLocal(b, 80)
}

func benchLocal(b *testing.B, used int64) {
	l := benchLimiter()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		t, err := l.Reserve(ctx, "gpt-4o", "sre", 100)
		if err != nil {
			b.Fatal(err)
		}
		t.Done(ctx, used, 1)
	}
}

// BenchmarkLocalAdmissionParallel is BenchmarkLocalAdmitAndSettle from
// every core at once.
func BenchmarkLocalAdmissionParallel(b *testing.B) {
	l := benchLimiter()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, err := l.Reserve(ctx, "gpt-4o", "sre", 100)
			if err != nil {
				b.Fatal(err)
			}
			t.Done(ctx, 80, 1)
		}
	})
}
