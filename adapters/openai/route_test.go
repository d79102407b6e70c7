package openai_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestWithUpstreamRoutesByTheFinalModel: with WithUpstream, a call goes to
// the upstream of the model the chain settled on, with that upstream's
// credentials: a chain that moves a call to model "b" sends it to b's
// server with b's key, never to the server the caller's request was made
// for (whose key b never sees), and the caller's header map is left
// unchanged; a model route does not know goes to the caller's URL with
// the caller's headers.
func TestWithUpstreamRoutesByTheFinalModel(t *testing.T) {
	a, b := openaitest.NewServer(t), openaitest.NewServer(t)
	a.On().Reply(openaitest.Reply{Content: "from a"})
	b.On().Reply(openaitest.Reply{Content: "from b"})
	bURL, err := url.Parse(b.URL + "/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	route := func(model string) (*url.URL, http.Header, bool) {
		if model == "b" {
			return bURL, http.Header{"Authorization": {"Bearer key-b"}}, true
		}
		return nil, nil, false
	}
	// A chain that sends "gpt-4o-mini" calls to "b" (as a fallback or a
	// router would) and every other model as asked.
	toB := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if req.Model == "gpt-4o-mini" {
				r := req.Clone()
				r.Model = "b"
				req = r
			}
			return next.Handle(ctx, req)
		})
	}
	client := clientFor(a, twopenai.NewHTTPClient(toB, twopenai.WithUpstream(route)))
	ctx := context.Background()

	resp, err := client.CreateChatCompletion(ctx, chatRequest(false))
	if err != nil || resp.Choices[0].Message.Content != "from b" {
		t.Fatalf("a call moved to b: %+v, %v; want b's answer", resp.Choices, err)
	}
	if a.Count() != 0 || b.Count() != 1 {
		t.Fatalf("a got %d calls, b %d; want 0 and 1", a.Count(), b.Count())
	}
	if got := b.Requests()[0].Header.Get("Authorization"); got != "Bearer key-b" {
		t.Fatalf("b was called with Authorization %q, want its own key", got)
	}

	other := chatRequest(false)
	other.Model = "gpt-4o"
	resp, err = client.CreateChatCompletion(ctx, other)
	if err != nil || resp.Choices[0].Message.Content != "from a" {
		t.Fatalf("a call route does not know: %+v, %v; want a's answer", resp.Choices, err)
	}
	if a.Count() != 1 || b.Count() != 1 {
		t.Fatalf("a got %d calls, b %d; want 1 and 1", a.Count(), b.Count())
	}
	if got := a.Requests()[0].Header.Get("Authorization"); got != "Bearer test-key" {
		t.Fatalf("a was called with Authorization %q, want the caller's", got)
	}
}

// TestWithUpstreamLeavesTheCallersRequestAlone: routing replaces the
// upstream request's URL and header map; the caller's request and its
// header map are as they were (a RoundTripper must not modify them).
func TestWithUpstreamLeavesTheCallersRequestAlone(t *testing.T) {
	a, b := openaitest.NewServer(t), openaitest.NewServer(t)
	b.On().Reply(openaitest.Reply{Content: "from b"})
	bURL, _ := url.Parse(b.URL + "/chat/completions")
	tr := twopenai.NewTransport(nil, twopenai.WithUpstream(func(string) (*url.URL, http.Header, bool) {
		return bURL, http.Header{"Authorization": {"Bearer key-b"}}, true
	}))
	req, err := http.NewRequest(http.MethodPost, a.URL+"/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer key-a")
	req.Header.Set("Content-Type", "application/json")
	before := req.URL.String()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.URL.String() != before || req.Header.Get("Authorization") != "Bearer key-a" || a.Count() != 0 || b.Count() != 1 {
		t.Fatalf("caller's request now %s with %q; a got %d calls, b %d", req.URL, req.Header.Get("Authorization"), a.Count(), b.Count())
	}
}
