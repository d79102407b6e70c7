package langchaingo_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestNewTransportBoundsAnEndlessAnswer: a server that sends a line of a
// stream (or a plain answer's body) that never ends — a broken or hostile
// one — fails the call as malformed once it passes what NewTransport
// reads, as the OpenAI adapter's provider does, instead of gathering it
// in memory for as long as the server sends. Before, NewTransport held
// every byte of the line (langchaingo's backend alone gives up at 64
// KiB): the process's memory grew without end, and a call without a
// timeout never ended.
func TestNewTransportBoundsAnEndlessAnswer(t *testing.T) {
	defer twlc.SetMaxReads(1<<20, 1<<20)()
	piece := []byte(strings.Repeat("x", 64<<10))
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "stream", false: "plain"}[stream], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := openaitest.New()
				// A line (a body) of 2 MiB without its end, then nothing
				// for an hour.
				raw := [][]byte{[]byte(`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"`)}
				if !stream {
					raw[0] = []byte(`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`)
				}
				for range 32 {
					raw = append(raw, piece)
				}
				up.Default(openaitest.Reply{Raw: raw, ChunkLatency: time.Millisecond})
				llm, err := openai.New(openai.WithBaseURL(up.URL), openai.WithToken("test"), openai.WithModel("gpt-4o"),
					openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(stallAfter{up.Transport()})}))
				if err != nil {
					t.Fatal(err)
				}
				m := twlc.New(twlc.Models{"gpt-4o": llm}, nil)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var opts []llms.CallOption
				if stream {
					opts = append(opts, streaming())
				}
				done := make(chan error, 1)
				go func() {
					_, err := m.GenerateContent(ctx, []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")}, opts...)
					done <- err
				}()
				time.Sleep(time.Minute)
				synctest.Wait()
				select {
				case err := <-done:
					if !errors.Is(err, middleware.ErrMalformed) {
						t.Errorf("an answer longer than NewTransport reads failed with %v, want middleware.ErrMalformed", err)
					}
				default:
					cancel()
					<-done
					t.Fatal("a minute after the server began an answer that never ends (2 MiB sent, then nothing), the call has not ended")
				}
			})
		})
	}
}

// stallAfter passes each answer's body on and, at its end, holds it open
// until the call's context ends: a server that stops sending without
// closing the connection.
type stallAfter struct{ next http.RoundTripper }

func (s stallAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	resp.Body = &stalledBody{ReadCloser: resp.Body, ctx: r.Context()}
	return resp, nil
}

type stalledBody struct {
	io.ReadCloser
	ctx context.Context
}

func (b *stalledBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		<-b.ctx.Done()
		return n, b.ctx.Err()
	}
	return n, err
}
