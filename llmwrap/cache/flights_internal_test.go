package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tokenwise/tokenwise/middleware"
)

// flightStore is a Memory behind the Store interface only: the cache
// keeps a flat copy of the request (st.keep with byRef false), which
// writes the leader's flat encoding while followers compare its pieces.
type flightStore struct{ m *Memory }

func (s flightStore) Get(ctx context.Context, key uint64) (*Entry, error) { return s.m.Get(ctx, key) }
func (s flightStore) Set(ctx context.Context, key uint64, e *Entry, ttl time.Duration) error {
	return s.m.Set(ctx, key, e, ttl)
}

// TestConcurrentIdenticalMissesGetTheirOwnAnswer: rounds of 24 goroutines
// sending 6 requests at once (4 each, as equal values built anew or the
// very same strings) that share their long system prompt and history and
// differ in one message, a model or a binary part, while the leader's
// answer is stored, refused (finish_reason length) or an error the
// followers share. Every caller gets the answer to its own request (the
// provider answers with the request's canonical encoding), and a caller
// that overwrites its messages after the call changes no stored entry:
// the next round's hits are still right.
func TestConcurrentIdenticalMissesGetTheirOwnAnswer(t *testing.T) {
	for _, memory := range []bool{true, false} {
		t.Run(fmt.Sprintf("memory=%v", memory), func(t *testing.T) {
			mem := NewMemory(MemoryOptions{MaxEntries: 1 << 12})
			c, err := New(Config{}, WithStore(mem))
			if err != nil {
				t.Fatal(err)
			}
			if !memory {
				c.c.store, c.c.memory = flightStore{mem}, false
			}
			var calls atomic.Int64
			h := c.Middleware()(middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
				calls.Add(1)
				enc := AppendCanonical(nil, "", req)
				want := hex.EncodeToString(enc)
				switch xxhash.Sum64(enc) % 3 {
				case 0:
					return &middleware.Response{Model: req.Model, FinishReason: "stop", Message: middleware.Message{Role: "assistant", Content: want}}, nil
				case 1:
					return &middleware.Response{Model: req.Model, FinishReason: "length", Message: middleware.Message{Role: "assistant", Content: want}}, nil
				}
				return nil, &middleware.ProviderError{Kind: middleware.ErrBadRequest, StatusCode: 400, Message: want}
			}))
			ctx := middleware.WithTeam(context.Background(), "t")
			system := strings.Repeat("You are the on-call agent of the fleet. ", 20)
			history := strings.Repeat("web-3's /var is at 95 percent; ", 12)
			build := func(round, v int, clone bool) *middleware.Request {
				s, hist := system, history
				if clone {
					s, hist = strings.Clone(s), strings.Clone(hist)
				}
				last := fmt.Sprintf("round %d: clean it", round)
				req := &middleware.Request{Model: "gpt-4o-mini", Messages: []middleware.Message{
					{Role: middleware.RoleSystem, Content: s},
					{Role: middleware.RoleUser, Content: hist},
					{Role: middleware.RoleAssistant, Content: "ok"},
					{Role: middleware.RoleUser, Content: last},
				}}
				switch v {
				case 1:
					req.Messages[3].Content += "!"
				case 2:
					req.Model = "gpt-4o"
				case 3:
					req.Messages[2].Parts = []middleware.Part{{Type: "input_audio", Data: []byte{byte(round), 1, 2}}}
				case 4:
					req.Messages[1].Content = hist[:len(hist)-1] + "!"
				case 5:
					req.Messages = req.Messages[:3]
				}
				return req
			}
			for round := range 60 {
				var wg sync.WaitGroup
				for g := range 24 {
					wg.Go(func() {
						req := build(round, g%6, g%2 == 0)
						want := hex.EncodeToString(AppendCanonical(nil, "", req))
						resp, err := h.Handle(ctx, req)
						var pe *middleware.ProviderError
						switch {
						case errors.As(err, &pe):
							if pe.Message != want {
								t.Errorf("round %d, request %d: another request's error", round, g%6)
							}
						case err != nil:
							t.Errorf("round %d, request %d: %v", round, g%6, err)
						case resp.Message.Content != want:
							t.Errorf("round %d, request %d: another request's answer (hit %v)", round, g%6, resp.FromCache)
						}
						// The caller reuses its messages for something else.
						for i := range req.Messages {
							req.Messages[i].Content = "reused " + req.Messages[i].Content[:1]
							for j := range req.Messages[i].Parts {
								clear(req.Messages[i].Parts[j].Data)
							}
						}
					})
				}
				wg.Wait()
				if t.Failed() {
					return
				}
				// The round's requests again, one at a time: hits (or calls
				// for the ones not stored), each its own answer.
				for v := range 6 {
					req := build(round, v, true)
					want := hex.EncodeToString(AppendCanonical(nil, "", req))
					resp, err := h.Handle(ctx, req)
					var pe *middleware.ProviderError
					if errors.As(err, &pe) && pe.Message == want || err == nil && resp.Message.Content == want {
						continue
					}
					t.Fatalf("round %d, request %d again: %v, %v", round, v, resp, err)
				}
			}
			if n := calls.Load(); n >= 60*(24+6) {
				t.Fatalf("%d calls of the provider: no miss was shared", n)
			}
		})
	}
}
