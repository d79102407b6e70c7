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

// TestCacheDoesNotKeepOpenRouterWebSearchAnswers: OpenRouter's web search
// is asked for by the web plugin (plugins: [{"id": "web"}], of which the
// ":online" model suffix is documented as exactly a shortcut) or by its
// web search server tool (a tool of type "openrouter:web_search", or
// OpenAI's "web_search" type, which it hoists to it): the provider
// searches the web on each call, as for ":online", so the cache keeps
// none of these answers; nor of Groq's browser_search tool or its
// Compound systems (groq/compound, compound-beta...), which search the web
// and run code as they see fit. A plugin that searches nothing
// (file-parser) is still cached.
func TestCacheDoesNotKeepOpenRouterOrGroqWebSearchAnswers(t *testing.T) {
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
		`{"model":"openai/gpt-4o",` + msgs + `,"plugins":[{"id":"web"}]}`,
		`{"model":"openai/gpt-4o",` + msgs + `,"plugins":[{"id":"file-parser"},{"id":"web","max_results":3}]}`,
		`{"model":"openai/gpt-4o",` + msgs + `,"tools":[{"type":"openrouter:web_search"}]}`,
		`{"model":"openai/gpt-4o",` + msgs + `,"tools":[{"type":"web_search","search_context_size":"low"}]}`,
		`{"model":"openai/gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}},{"type":"web_search_preview"}]}`,
		`{"model":"openai/gpt-oss-120b",` + msgs + `,"tools":[{"type":"browser_search"}]}`,
		`{"model":"groq/compound",` + msgs + `}`,
		`{"model":"groq/compound-mini",` + msgs + `}`,
		`{"model":"compound-beta",` + msgs + `}`,
	} {
		before := srv.Count()
		post(body)
		post(body)
		if srv.Count() != before+2 {
			t.Errorf("%s: %d provider calls for two, want 2: a live search's answer was served from the cache", body, srv.Count()-before)
		}
	}
	for _, body := range []string{
		`{"model":"openai/gpt-4o",` + msgs + `,"plugins":[{"id":"file-parser"}]}`,
		`{"model":"openai/gpt-4o",` + msgs + `,"plugins":[]}`,
		`{"model":"openai/gpt-4o",` + msgs + `,"tools":[{"type":"function","function":{"name":"web_search","parameters":{"type":"object"}}}]}`,
	} {
		before := srv.Count()
		post(body)
		post(body)
		if srv.Count() != before+1 {
			t.Errorf("%s: %d provider calls for two, want 1 (no web search)", body, srv.Count()-before)
		}
	}
}
