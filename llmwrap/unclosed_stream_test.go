package llmwrap_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// A go-openai stream its caller reads once, then neither reads nor closes,
// holds its call in flight — the budget reservation, the chain's
// coroutine — no longer than timeouts.call: then the reservation is
// settled, the chain has unwound (synctest.Test fails on a goroutine left
// blocked in the bubble) and the held stream's next Recv returns the call
// timeout. Without a deadline (no timeouts, a context without one) the
// stream holds its reservation until it is closed, which releases it at
// once: the caller must Close a stream it does not read to its end
// (README, go-openai).
func TestUnclosedStreamHoldsItsReservationUntilTheCallTimeoutOrClose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		timeouts string
	}{
		{"with timeouts.call", "timeouts: {call: 1m}\n"},
		{"without a deadline", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				defer srv.Close()
				// A healthy stream of 10 minutes: a chunk every 100ms.
				srv.On().Reply(openaitest.Reply{Content: strings.Repeat("x", 6000), ChunkSize: 1, ChunkLatency: 100 * time.Millisecond})
				p, err := policies.LoadBytes([]byte("version: 1\nname: t\n"+tc.timeouts+"budget:\n  team: {period: daily, max_tokens: 1000000}\nfallback:\n  retry: {max_attempts: 1}\n"), "t.yaml")
				if err != nil {
					t.Fatal(err)
				}
				client, ledger := budgetedClient(t, p, srv)
				ctx := middleware.WithTeam(context.Background(), "devops")
				held := func() int64 {
					t.Helper()
					rem, err := ledger.Remaining(ctx, "devops")
					if err != nil {
						t.Fatal(err)
					}
					return rem.InFlight
				}
				req := chatReq()
				req.Stream = true
				s, err := client.CreateChatCompletionStream(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Recv(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(30 * time.Second)
				synctest.Wait()
				if n := held(); n != 1 {
					t.Fatalf("30s into a held stream: %d reservations in flight, want 1", n)
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				if tc.timeouts == "" {
					if n := held(); n != 1 {
						t.Fatalf("90s into a held stream without a deadline: %d reservations in flight, want 1", n)
					}
					s.Close()
					synctest.Wait()
					if n := held(); n != 0 {
						t.Fatalf("after Close: %d reservations in flight, want 0", n)
					}
					return
				}
				if n := held(); n != 0 {
					t.Fatalf("90s into a held stream with a 1m call timeout: %d reservations in flight, want 0", n)
				}
				for range 100 {
					if _, err = s.Recv(); err != nil {
						break
					}
				}
				if !errors.Is(err, timeout.ErrCall) || errors.Is(err, io.EOF) {
					t.Fatalf("the held stream's next reads end with %v, want the call timeout", err)
				}
				s.Close()
			})
		})
	}
}
