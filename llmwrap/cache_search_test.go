package llmwrap_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
)

// TestCacheDoesNotKeepLiveWebSearchAnswers: a chat completion that has
// the provider search the web (web_search_options, or a search model)
// gets live results each time, as the Responses API's hosted web search
// does: the cache keeps none, so the same request again is sent again.
// The same request without web search is a hit.
func TestCacheDoesNotKeepLiveWebSearchAnswers(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Default(openaitest.Text("today's news"))
	hc := twopenai.NewHTTPClient(llmwrap.MustBuild(mustLoad(t, "version: 1\ncache: {enabled: true, ttl: 1h}\n")),
		twopenai.WithBaseTransport(srv.Transport()))
	post := func(body string) {
		t.Helper()
		resp, err := hc.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	}
	msgs := `"messages":[{"role":"user","content":"what happened today?"}]`
	for _, body := range []string{
		`{"model":"gpt-4o",` + msgs + `,"web_search_options":{}}`,
		`{"model":"gpt-4o",` + msgs + `,"web_search_options":{"search_context_size":"low"}}`,
		`{"model":"gpt-4o-search-preview",` + msgs + `}`,
		`{"model":"sonar",` + msgs + `}`,
		`{"model":"sonar-pro",` + msgs + `}`,
		`{"model":"perplexity/sonar-reasoning-pro",` + msgs + `}`,
		`{"model":"openai/gpt-4o:online",` + msgs + `}`,
	} {
		before := srv.Count()
		post(body)
		post(body)
		if srv.Count() != before+2 {
			t.Errorf("%s: %d provider calls for two, want 2: a live search's answer was served from the cache", body, srv.Count()-before)
		}
	}
	before := srv.Count()
	post(`{"model":"gpt-4o",` + msgs + `}`)
	post(`{"model":"gpt-4o",` + msgs + `}`)
	if srv.Count() != before+1 {
		t.Errorf("without web search: %d provider calls for two, want 1", srv.Count()-before)
	}
}
