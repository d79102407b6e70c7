package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestUpstreamRedirectIsFollowedAsWithoutTokenwise: an upstream that
// answers a chat completion with a 307 or 308 to another URL of the same
// host (a proxy moved, a path normalised) is followed by go-openai's bare
// client (net/http resends the body, the key kept on the same host).
// Through the transport the redirect is a failure
// ("malformed provider response ... HTTP 307").
func TestUpstreamRedirectIsFollowedAsWithoutTokenwise(t *testing.T) {
	t.Skip("unfixed: the provider does not follow an upstream's 307/308; go-openai's bare client does")
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	target := strings.TrimSuffix(srv.URL, "/v1")
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer moved.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	for _, tw := range []bool{false, true} {
		var hc *http.Client = &http.Client{Transport: base}
		if tw {
			hc = twopenai.NewHTTPClient(pass, twopenai.WithBaseTransport(base))
		}
		c := clientFor(&openaitest.Server{URL: moved.URL + "/v1"}, hc)
		resp, err := c.CreateChatCompletion(context.Background(), sreRequest(false))
		if err != nil || len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "ok" {
			t.Errorf("through tokenwise %v: %v %+v, want the answer of the redirect's target", tw, err, resp.Choices)
		}
	}
}
