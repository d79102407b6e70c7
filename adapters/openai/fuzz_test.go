package openai_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"testing"
	"testing/iotest"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// FuzzStreamShapes: for a random answer streamed in a random valid shape,
// the Provider's assembled answer, and the answer assembled from the chunks
// it passed on, equal the answer served without streaming.
func FuzzStreamShapes(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed, seed%3 == 0, seed%2 == 0)
	}
	srv := openaitest.New()
	f.Cleanup(srv.Close)
	p := twopenai.NewProvider(srv.URL, "k", twopenai.WithBaseTransport(srv.Transport()))
	f.Fuzz(func(t *testing.T, seed uint64, reuse, alternatives bool) {
		rng := rand.New(rand.NewPCG(seed, 7))
		reply := openaitest.RandomReply(rng, alternatives)
		reply.Shape = &openaitest.Shape{Seed: seed, ReuseIndex: reuse, NoReuseIndex: !reuse}
		if seed%2 == 1 {
			reply.Shape.ReasoningField = "reasoning" // the core reads both names
		}
		ctx := context.Background()
		req := &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "q"}}}
		want, err := p.Handle(ctx, withReply(srv, reply, req))
		if err != nil {
			t.Fatal(err)
		}
		var acc middleware.Accumulator
		sreq := withReply(srv, reply, req)
		sreq.Stream = func(_ context.Context, c middleware.Chunk) error { acc.Add(c); return nil }
		got, err := p.Handle(ctx, sreq)
		if err != nil {
			t.Fatal(err)
		}
		w, g, a := coreAnswer(want), coreAnswer(got), coreAnswer(acc.Response())
		a.ID, a.Model = g.ID, g.Model
		if !reflect.DeepEqual(w, g) || !reflect.DeepEqual(g, a) {
			t.Fatalf("non-streamed\n%+v\nstreamed\n%+v\nfrom the chunks\n%+v", w, g, a)
		}
	})
}

// withReply returns a copy of req whose last message names a rule that
// answers with reply, so that concurrent fuzz workers do not share rules.
func withReply(srv *openaitest.Server, reply openaitest.Reply, req *middleware.Request) *middleware.Request {
	key := "k" + randomKey()
	srv.On(openaitest.LastContains(key)).Reply(reply)
	r := req.DeepClone()
	r.Messages[len(r.Messages)-1].Content += key
	return r
}

func randomKey() string {
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := range b {
		b[i] = hex[rand.IntN(16)]
	}
	return string(b[:])
}

// bodyTransport answers every request with a 200 event stream of body.
type bodyTransport []byte

func (b bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
}

// oneByteTransport answers like bodyTransport, one byte per read.
type oneByteTransport []byte

func (b oneByteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := bodyTransport(b).RoundTrip(r)
	if err == nil {
		resp.Body = io.NopCloser(iotest.OneByteReader(resp.Body))
	}
	return resp, err
}

// FuzzStreamBytes: any bytes as a streamed body give either a typed error
// (malformed, cut, or the provider's error) or an answer equal to what the
// chunks passed on assemble to; never a panic, never a success without
// "data: [DONE]" or a finish reason, and the same outcome whatever the
// reads' boundaries.
func FuzzStreamBytes(f *testing.F) {
	f.Add([]byte(okChunk + "\n\ndata: [DONE]\n\n"))
	f.Add([]byte(okChunk + "\r\n\r\n: c\r\nevent: x\r\ndata:[DONE]\r\n\r\n"))
	f.Add([]byte(okChunk + "\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}},{\"index\":0,\"function\":{\"arguments\":null}}]}}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n"))
	f.Add([]byte(okChunk + "\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"x"))
	f.Fuzz(func(t *testing.T, body []byte) {
		p := twopenai.NewProvider("http://fuzz.invalid/v1", "", twopenai.WithBaseTransport(bodyTransport(body)))
		var acc middleware.Accumulator
		req := &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "q"}}}
		req.Stream = func(_ context.Context, c middleware.Chunk) error { acc.Add(c); return nil }
		resp, err := p.Handle(context.Background(), req)
		// The same body read one byte at a time gives the same outcome.
		slow := twopenai.NewProvider("http://fuzz.invalid/v1", "", twopenai.WithBaseTransport(oneByteTransport(body)))
		req2 := req.DeepClone()
		req2.Stream = func(context.Context, middleware.Chunk) error { return nil }
		resp2, err2 := slow.Handle(context.Background(), req2)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("whole reads: %v; one byte at a time: %v", err, err2)
		}
		if err == nil && !reflect.DeepEqual(coreAnswer(resp), coreAnswer(resp2)) {
			t.Fatalf("whole reads\n%+v\none byte at a time\n%+v", resp, resp2)
		}
		if err != nil {
			var pe *middleware.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if !bytes.Contains(body, []byte("[DONE]")) && resp.FinishReason == "" {
			// (closed after its finish_reason, a stream without [DONE]
			// is complete: servers that never send it)
			t.Fatalf("success without [DONE] nor a finish reason: %+v", resp)
		}
		a := acc.Response()
		a.ID, a.Model, a.Native = resp.ID, resp.Model, resp.Native
		if !reflect.DeepEqual(a, resp) {
			t.Fatalf("answer\n%+v\nthe chunks assemble to\n%+v", resp, a)
		}
	})
}
