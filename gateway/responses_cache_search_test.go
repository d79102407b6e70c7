package gateway_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// TestGatewayResponsesCacheDoesNotKeepLiveSearches: a Responses call that
// has the provider search the web without a hosted tool — to a model that
// searches on every call (OpenRouter's ":online" variants, Perplexity's
// Sonar, OpenAI's search models) or with OpenRouter's web plugin
// (plugins: [{"id": "web"}]) — gets live results each time, as the chat
// cache knows: through openai-go, the same request twice reaches the
// upstream twice. The same request without web search is a hit.
func TestGatewayResponsesCacheDoesNotKeepLiveSearches(t *testing.T) {
	var calls atomic.Int64
	up := numberedResponses(t, &calls)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	ask := func(model string, opts ...option.RequestOption) string {
		t.Helper()
		var hr *http.Response
		params := responses.ResponseNewParams{Model: model,
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What happened today?")}}
		if _, err := oc.Responses.New(t.Context(), params, append(opts, option.WithResponseInto(&hr))...); err != nil {
			t.Fatal(err)
		}
		return hr.Header.Get("X-Tokenwise-Cache")
	}
	for _, c := range []struct {
		name  string
		model string
		opts  []option.RequestOption
	}{
		{"online variant", "openai/gpt-4o:online", nil},
		{"sonar", "perplexity/sonar", nil},
		{"search model", "gpt-4o-search-preview", nil},
		{"web plugin", "openai/gpt-4o", []option.RequestOption{option.WithJSONSet("plugins", []map[string]any{{"id": "web"}})}},
	} {
		before := calls.Load()
		ask(c.model, c.opts...)
		if h := ask(c.model, c.opts...); h != "" || calls.Load()-before != 2 {
			t.Errorf("%s: %d upstream calls for two (cache header %q), want 2: a live search's answer was served from the cache",
				c.name, calls.Load()-before, h)
		}
	}
	before := calls.Load()
	ask("openai/gpt-4o")
	if h := ask("openai/gpt-4o"); h != "hit" || calls.Load()-before != 1 {
		t.Errorf("without web search: %d upstream calls for two (cache header %q), want 1 and a hit", calls.Load()-before, h)
	}
}
