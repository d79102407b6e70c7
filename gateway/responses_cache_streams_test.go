package gateway_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// TestGatewayResponsesCacheHoldsStreamsFalse: under a policy's
// cache.streams: false a streaming request neither reads nor writes the
// cache, as for chat calls: through openai-go, a Responses stream is sent
// upstream each time, and is not answered by the answer a JSON request
// kept; JSON requests are still cached.
func TestGatewayResponsesCacheHoldsStreamsFalse(t *testing.T) {
	var calls atomic.Int64
	up := streamingResponses(t, &calls)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h, streams: false}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	p := responses.ResponseNewParams{Model: "gpt-4o-mini", MaxOutputTokens: openai.Int(500),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks of web-1.")}}

	for i := range 2 {
		if s := readResponsesStream(t, oc, p); s.cacheHdr != "" || calls.Load() != int64(i+1) {
			t.Fatalf("stream %d: cache header %q, %d upstream calls; want no cache under streams: false", i+1, s.cacheHdr, calls.Load())
		}
	}
	// JSON requests are cached: the second is a hit, and a stream is not
	// answered from it.
	for i, want := range []string{"", "hit"} {
		var hr *http.Response
		if _, err := oc.Responses.New(t.Context(), p, option.WithResponseInto(&hr)); err != nil {
			t.Fatal(err)
		}
		if got := hr.Header.Get("X-Tokenwise-Cache"); got != want {
			t.Fatalf("JSON request %d: cache header %q, want %q", i+1, got, want)
		}
	}
	before := calls.Load()
	if s := readResponsesStream(t, oc, p); s.cacheHdr != "" || calls.Load() != before+1 {
		t.Fatalf("a stream after a kept JSON answer: cache header %q, %d upstream calls; want a call of its own", s.cacheHdr, calls.Load()-before)
	}
}
