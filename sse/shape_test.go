package sse_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/sse"
)

func get(t *testing.T, url string) (int, [][2]string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, events(t, resp.Body)
}

// TestCallHandlerStreamsEveryShapeAsTheAnswer: whatever valid shape the
// provider streams in (openaitest.Shape), the text CallHandler sends its
// client is the content of the answer served without streaming.
func TestCallHandlerStreamsEveryShapeAsTheAnswer(t *testing.T) {
	t.Parallel()
	words := []string{"disk", " ok", "é", "日本", `"q"`, "\n", "🙂", " "}
	up := openaitest.New()
	defer up.Close()
	p := twopenai.NewProvider(up.URL, "k", twopenai.WithBaseTransport(up.Transport()))
	srv := httptest.NewServer(sseCall(p))
	defer srv.Close()
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var b strings.Builder
		for range 1 + rng.IntN(30) {
			b.WriteString(words[rng.IntN(len(words))])
		}
		reply := openaitest.Reply{Content: b.String(), Reasoning: "think", Shape: &openaitest.Shape{Seed: seed}}
		if rng.IntN(3) == 0 {
			reply.ToolCalls = []openaitest.ToolCall{openaitest.Call("c1", "f", `{"a":1}`)}
		}
		up.Reset()
		up.On().Reply(reply)
		want, err := p.Handle(context.Background(), &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "q"}}})
		if err != nil {
			t.Fatal(err)
		}
		status, ev := get(t, srv.URL+"?q=q")
		if status != 200 || len(ev) == 0 || ev[len(ev)-1] != [2]string{"", "[DONE]"} {
			t.Fatalf("seed %d: status %d, events %q", seed, status, ev)
		}
		var text strings.Builder
		for _, e := range ev[:len(ev)-1] {
			text.WriteString(e[1])
		}
		if text.String() != want.Message.Content {
			t.Fatalf("seed %d: streamed %q, the answer is %q", seed, text.String(), want.Message.Content)
		}
	}
}

// TestPanicInCallHandlerIsAnError: a layer that panics, before or after
// the first event, gives the client a 500 or an error event; the server
// goes on.
func TestPanicInCallHandlerIsAnError(t *testing.T) {
	t.Parallel()
	up := openaitest.New()
	defer up.Close()
	up.On().Reply(openaitest.Reply{Content: "several pieces of text", ChunkSize: 3})
	p := twopenai.NewProvider(up.URL, "k", twopenai.WithBaseTransport(up.Transport()))
	for _, after := range []int{0, 2} {
		boom := func(next middleware.Handler) middleware.Handler {
			return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
				inner, n := req.Stream, 0
				req = req.Clone()
				req.Stream = func(ctx context.Context, c middleware.Chunk) error {
					if n == after {
						panic(errors.New("layer broken"))
					}
					n++
					return inner(ctx, c)
				}
				return next.Handle(ctx, req)
			})
		}
		srv := httptest.NewServer(sseCall(middleware.Then(p, boom)))
		status, ev := get(t, srv.URL+"?q=q")
		srv.Close()
		switch after {
		case 0:
			if status != http.StatusInternalServerError {
				t.Errorf("panic before the first event: status %d", status)
			}
		default:
			if status != 200 || len(ev) == 0 || ev[len(ev)-1][0] != "error" || !strings.Contains(ev[len(ev)-1][1], "panic") {
				t.Errorf("panic after %d events: status %d, events %q", after, status, ev)
			}
		}
	}
}

func sseCall(h middleware.Handler) http.Handler { return sse.CallHandler(h, decode) }
