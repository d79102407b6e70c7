package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
)

// azureServer answers chat completions as Azure OpenAI does: with the
// model of the deployment named in the path, whatever the body's "model"
// says. deployments maps a deployment to the model it serves; an unknown
// one gets Azure's 404 DeploymentNotFound.
func azureServer(t *testing.T, deployments map[string]string) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var reached []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		dep, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/openai/deployments/"), "/")
		mu.Lock()
		reached = append(reached, dep)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		model, ok := deployments[dep]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"id":"x","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":1000,"total_tokens":2000}}`, model)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), reached...)
	}
}

// TestAzureDeploymentFollowsTheRoutedModel: go-openai's Azure client puts
// the model's deployment in the URL (/openai/deployments/gpt-4o/...), and
// Azure serves the deployment the URL names, whatever the body's "model".
// A call the policy routes from gpt-4o to gpt-4o-mini goes to the
// gpt-4o-mini deployment, named as go-openai names deployments. Before, it
// went to gpt-4o's with "model": "gpt-4o-mini" in its body: served and
// billed by gpt-4o while the budget reserved gpt-4o-mini's worst case
// (which could overshoot the budget) and the report said routed. A
// deployment named otherwise than its model, whose routed twin the
// transport cannot know, is served as the model asked for: no layer
// moves its call (routing, fallback, a budget's downgrade), never sent to
// the wrong deployment, never refused for a route the caller did not ask.
func TestAzureDeploymentFollowsTheRoutedModel(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, `version: 1
name: azure
budget:
  team: {period: daily, max_usd: 100}
routing:
  rules:
    - name: cheap
      when: {requested_model: [gpt-4o]}
      model: gpt-4o-mini
`)
	srv, reached := azureServer(t, map[string]string{"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
		"prod-4o": "gpt-4o-2024-08-06"})
	store := budget.NewMemoryStore()
	var cost atomic.Int64
	chain := billingChain(p, store, &cost)
	client := func(deployment func(model string) string) *goopenai.Client {
		cfg := goopenai.DefaultAzureConfig("azure-key", srv.URL)
		if deployment != nil {
			cfg.AzureModelMapperFunc = deployment
		}
		cfg.HTTPClient = twopenai.NewHTTPClient(chain)
		return goopenai.NewClientWithConfig(cfg)
	}
	ctx := middleware.WithTeam(context.Background(), "sre")
	ask := func(c *goopenai.Client) (goopenai.ChatCompletionResponse, error) {
		return c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disk."}}})
	}
	resp, err := ask(client(nil))
	if err != nil {
		t.Fatal(err)
	}
	// gpt-4o-mini: $0.15 and $0.60 per 1M input and output tokens.
	const miniPico = 1000*150_000 + 1000*600_000
	if got := reached(); len(got) != 1 || got[0] != "gpt-4o-mini" || resp.Model != "gpt-4o-mini-2024-07-18" || cost.Load() != miniPico {
		t.Fatalf("routed call reached deployments %q, answered by %q, billed %d pico; want gpt-4o-mini's, billed %d", got, resp.Model, cost.Load(), miniPico)
	}

	// A deployment named otherwise than its model (gpt-4o's is prod-4o),
	// whose routed model's deployment cannot be known: the call is not
	// moved (middleware.FixedModel) — served by prod-4o as gpt-4o, billed
	// as gpt-4o, never refused, never sent to a wrong deployment.
	resp, err = ask(client(func(string) string { return "prod-4o" }))
	// gpt-4o: $2.50 and $10 per 1M input and output tokens.
	const fourOPico = 1000*2_500_000 + 1000*10_000_000
	if err != nil || resp.Model != "gpt-4o-2024-08-06" {
		t.Fatalf("call of deployment prod-4o: %v %q; want it served by gpt-4o", err, resp.Model)
	}
	if got := reached(); len(got) != 2 || got[1] != "prod-4o" || cost.Load() != miniPico+fourOPico {
		t.Fatalf("call of deployment prod-4o reached %q, billed %d pico in all; want prod-4o, billed %d", got, cost.Load(), miniPico+fourOPico)
	}
}
