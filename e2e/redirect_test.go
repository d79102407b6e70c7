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
// Through the transport the provider follows it too, the request and its
// stream the same; before, the redirect was a failure ("malformed
// provider response ... HTTP 307"). A redirect to another host is not
// followed: the upstream's key never goes there.
func TestUpstreamRedirectIsFollowedAsWithoutTokenwise(t *testing.T) {
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
	st, err := clientFor(&openaitest.Server{URL: moved.URL + "/v1"}, twopenai.NewHTTPClient(pass, twopenai.WithBaseTransport(base))).
		CreateChatCompletionStream(context.Background(), sreRequest(true))
	if err != nil {
		t.Fatalf("a stream through tokenwise: %v", err)
	}
	var text strings.Builder
	for {
		r, err := st.Recv()
		if err != nil {
			break
		}
		if len(r.Choices) > 0 {
			text.WriteString(r.Choices[0].Delta.Content)
		}
	}
	st.Close()
	if text.String() != "ok" {
		t.Errorf("a stream through tokenwise read %q, want the redirect's target's answer", text.String())
	}

	// Another host (localhost for 127.0.0.1): not followed, the key not sent there.
	var keys []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("Authorization"))
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer other.Close()
	away := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer away.Close()
	c := clientFor(&openaitest.Server{URL: away.URL + "/v1"}, twopenai.NewHTTPClient(pass, twopenai.WithBaseTransport(base)))
	if _, err := c.CreateChatCompletion(context.Background(), sreRequest(false)); err == nil {
		t.Error("a redirect to another host was followed")
	}
	if len(keys) != 0 {
		t.Errorf("the other host got %d requests, with keys %q", len(keys), keys)
	}
}
