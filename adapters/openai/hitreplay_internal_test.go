package openai

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// streamedHit returns a cache hit whose core answer says content and whose
// stored OpenAI body is stored: a chain that changed the answer, which the
// transport then replays from the core answer.
func streamedHit(content, stored string) *middleware.Response {
	return &middleware.Response{Message: middleware.Message{Role: middleware.RoleAssistant, Content: content},
		FinishReason: "stop", FromCache: true, Native: &middleware.StoredNative{Format: NativeFormat, Data: []byte(stored)}}
}

// streamThrough sends a streaming request (asking for usage) through t and
// returns the response and its body.
func streamThrough(t *testing.T, tr *Transport) (*http.Response, string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"stream_options":{"include_usage":true},"n":2,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestStreamedHitReplayedFromTheCoreAnswerAddsNoUsageItLacked: a streamed
// hit replayed from its core answer (the stored body is not the chain's
// answer) has the stored body's usage chunk when the body has a usage, and
// none when it has none (not one of zeros, which the first call did not
// have).
func TestStreamedHitReplayedFromTheCoreAnswerAddsNoUsageItLacked(t *testing.T) {
	const body = `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"stored"},"finish_reason":"stop"}]`
	for _, c := range []struct{ stored, usage string }{
		{body + `}`, ""},
		{body + `,"usage":null}`, ""},
		{body + `,"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`, `"total_tokens":5`},
	} {
		tr := chainTransport(func(context.Context, *middleware.Request) (*middleware.Response, error) {
			return streamedHit("changed", c.stored), nil
		})
		resp, got := streamThrough(t, tr)
		if resp.Header.Get(CacheHeader) != "hit" || !strings.Contains(got, `"content":"changed"`) || !strings.HasSuffix(got, "data: [DONE]\n\n") {
			t.Fatalf("stored %s: the hit replayed from the core answer:\n%s", c.stored, got)
		}
		hasUsage := strings.Contains(got, `"usage":{`)
		if hasUsage != (c.usage != "") || c.usage != "" && !strings.Contains(got, c.usage) {
			t.Errorf("stored %s: usage chunk %t, want %q:\n%s", c.stored, hasUsage, c.usage, got)
		}
	}
}

// TestStreamedHitOfSeveralChoicesNotRestreamedIsAMiss: a streamed hit
// whose stored body has several choices, and is not the chain's answer,
// is not replayed from the core answer (choice 0 alone): the call goes
// upstream again, the cache asked to refresh the stored answer.
func TestStreamedHitOfSeveralChoicesNotRestreamedIsAMiss(t *testing.T) {
	const stored = `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[` +
		`{"index":0,"message":{"role":"assistant","content":"one"},"finish_reason":"stop"},` +
		`{"index":1,"message":{"role":"assistant","content":"two"},"finish_reason":"stop"}]}`
	var calls []middleware.CacheControl
	tr := chainTransport(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		cc := middleware.CacheControlFrom(ctx)
		calls = append(calls, cc)
		if !cc.NoCache {
			return streamedHit("changed", stored), nil
		}
		if err := req.Stream(ctx, middleware.Chunk{Content: "fresh", FinishReason: "stop"}); err != nil {
			return nil, err
		}
		return &middleware.Response{Message: middleware.Message{Role: middleware.RoleAssistant, Content: "fresh"}, FinishReason: "stop"}, nil
	})
	resp, got := streamThrough(t, tr)
	if len(calls) != 2 || calls[0].NoCache || !calls[1].NoCache || calls[1].ReplayFormat != NativeFormat {
		t.Fatalf("chain calls %+v, want a hit then a refresh", calls)
	}
	if resp.Header.Get(CacheHeader) == "hit" || !strings.Contains(got, `"content":"fresh"`) || strings.Contains(got, "changed") {
		t.Errorf("answer (cache %q):\n%s", resp.Header.Get(CacheHeader), got)
	}

	// With one choice, the core answer is the whole answer: replayed.
	calls = nil
	one := strings.Replace(stored, `,{"index":1,"message":{"role":"assistant","content":"two"},"finish_reason":"stop"}`, "", 1)
	tr = chainTransport(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		calls = append(calls, middleware.CacheControlFrom(ctx))
		return streamedHit("changed", one), nil
	})
	if _, got := streamThrough(t, tr); len(calls) != 1 || !strings.Contains(got, `"content":"changed"`) {
		t.Errorf("one choice: %d chain calls, answer\n%s", len(calls), got)
	}
}
