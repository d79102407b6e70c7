package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestCacheKeysOnTheEndpointAndAccount: the same body sent to another
// Azure deployment, api-version, server, organization, project or key is
// not the same request: the cache never gives one's answer to another
// (before, the key was the body's alone, and a key the provider refuses
// was served the answer made for another). The same request again is a
// hit.
func TestCacheKeysOnTheEndpointAndAccount(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") == "Bearer refused" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			return
		}
		answer := r.Host + r.URL.Path + "?" + r.URL.RawQuery + " org=" + r.Header.Get("OpenAI-Organization") + " project=" + r.Header.Get("OpenAI-Project") +
			" key=" + r.Header.Get("Authorization") + r.Header.Get("Api-Key")
		fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`, answer)
	}))
	t.Cleanup(srv.Close)
	other := httptest.NewServer(srv.Config.Handler)
	t.Cleanup(other.Close)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	hc := twopenai.NewHTTPClient(llmwrap.MustBuild(&policies.Policy{Version: policies.Version, Cache: policies.Cache{Enabled: true}}), twopenai.WithBaseTransport(base))
	openAI := func(url, key, org, project string) goopenai.ClientConfig {
		cfg := goopenai.DefaultConfig(key)
		cfg.BaseURL, cfg.OrgID, cfg.HTTPClient = url+"/v1", org, hc
		if project != "" {
			cfg.HTTPClient = projectClient{hc, project}
		}
		return cfg
	}
	azure := func(deployment, version string) goopenai.ClientConfig {
		cfg := goopenai.DefaultAzureConfig("azure-key", srv.URL)
		cfg.APIVersion, cfg.HTTPClient = version, hc
		cfg.AzureModelMapperFunc = func(string) string { return deployment }
		return cfg
	}
	req := goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Is the disk full?"}}}
	ask := func(cfg goopenai.ClientConfig) (string, error) {
		r, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(context.Background(), req)
		if err != nil {
			return "", err
		}
		return r.Choices[0].Message.Content, nil
	}
	sides := []struct {
		name string
		cfg  goopenai.ClientConfig
	}{
		{"openai", openAI(srv.URL, "key-a", "", "")},
		{"another key", openAI(srv.URL, "key-b", "", "")},
		{"another organization", openAI(srv.URL, "key-a", "org-2", "")},
		{"another project", openAI(srv.URL, "key-a", "", "proj-2")},
		{"another server", openAI(other.URL, "key-a", "", "")},
		{"azure deployment a", azure("gpt4o-eastus", "2024-10-21")},
		{"azure deployment b", azure("gpt4o-finetuned", "2024-10-21")},
		{"azure api-version", azure("gpt4o-eastus", "2025-01-01-preview")},
	}
	seen := map[string]string{}
	for _, s := range sides {
		got, err := ask(s.cfg)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if prev, dup := seen[got]; dup {
			t.Fatalf("%s got %s's answer %q", s.name, prev, got)
		}
		seen[got] = s.name
	}
	n := calls.Load()
	for _, s := range sides { // each again: a hit
		if _, err := ask(s.cfg); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != n {
		t.Fatalf("the same requests again made %d more calls, want hits", calls.Load()-n)
	}
	if got, err := ask(openAI(srv.URL, "refused", "", "")); err == nil {
		t.Fatalf("a key the provider refuses was served %q", got)
	}
}

// projectClient sets the OpenAI-Project header go-openai has no field for.
type projectClient struct {
	hc      *http.Client
	project string
}

func (c projectClient) Do(r *http.Request) (*http.Response, error) {
	r.Header.Set("OpenAI-Project", c.project)
	return c.hc.Do(r)
}

// TestAnswerWithACutChoiceIsNotCached: with n: 2, an answer whose second
// choice was cut (length), filtered or, in a stream, never finished is not
// kept (before, only the first choice's finish was looked at, and the
// cut answer was served again); one whose choices all finished is.
func TestAnswerWithACutChoiceIsNotCached(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		stream bool
		finish string // choice 1's; "" none
		cached bool
	}{
		{"plain, both stop", false, "stop", true},
		{"plain, the second cut", false, "length", false},
		{"plain, the second filtered", false, "content_filter", false},
		{"stream, both stop", true, "stop", true},
		{"stream, the second cut", true, "length", false},
		{"stream, the second unfinished", true, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				fin := "null"
				if c.finish != "" {
					fin = `"` + c.finish + `"`
				}
				if !c.stream {
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o","choices":[`+
						`{"index":0,"message":{"role":"assistant","content":"full answer"},"finish_reason":"stop"},`+
						`{"index":1,"message":{"role":"assistant","content":"cut ans"},"finish_reason":%s}],`+
						`"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}`, fin)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				chunk := func(choices string) string {
					return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[` + choices + "]}\n\n"
				}
				_, _ = io.WriteString(w, chunk(`{"index":0,"delta":{"role":"assistant","content":"full answer"},"finish_reason":null}`)+
					chunk(`{"index":1,"delta":{"role":"assistant","content":"cut ans"},"finish_reason":null}`)+
					chunk(`{"index":0,"delta":{},"finish_reason":"stop"}`)+
					chunk(`{"index":1,"delta":{},"finish_reason":`+fin+`}`)+"data: [DONE]\n\n")
			}))
			t.Cleanup(srv.Close)
			cfg := goopenai.DefaultConfig("k")
			cfg.BaseURL = srv.URL + "/v1"
			cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(&policies.Policy{Version: policies.Version, Cache: policies.Cache{Enabled: true}}))
			client := goopenai.NewClientWithConfig(cfg)
			req := goopenai.ChatCompletionRequest{Model: "gpt-4o", N: 2, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}
			for range 2 {
				var err error
				if c.stream {
					_, err = streamText(context.Background(), client, req)
				} else {
					_, err = client.CreateChatCompletion(context.Background(), req)
				}
				if err != nil && !strings.Contains(err.Error(), "cut") {
					t.Fatal(err)
				}
			}
			if want := map[bool]int64{true: 1, false: 2}[c.cached]; calls.Load() != want {
				t.Fatalf("%d provider calls for two requests, want %d", calls.Load(), want)
			}
		})
	}
}
