package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// benchCompletion is the local server's answer to every call.
const benchCompletion = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Cleaned /var/log: 20GB freed."},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":2000,"completion_tokens":9,"total_tokens":2009}}`

// agentConversation is a 20-message conversation of about 8 KB, its last
// user message distinct for every n (a cache miss each call).
func agentConversation(n int) []llms.MessageContent {
	msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeSystem,
		"You are a DevOps assistant. Use the tools to inspect the hosts and answer briefly.")}
	for i := 1; i < 19; i++ {
		role := llms.ChatMessageTypeHuman
		if i%2 == 0 {
			role = llms.ChatMessageTypeAI
		}
		msgs = append(msgs, llms.TextParts(role, fmt.Sprintf("Turn %d: ", i)+
			strings.Repeat("the disk on web-"+strconv.Itoa(i)+" is at 95 percent; ", 11)))
	}
	return append(msgs, llms.TextParts(llms.ChatMessageTypeHuman, "Summarise (request "+strconv.Itoa(n)+")."))
}

// processCPU returns the process's CPU time in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkLangchaingo8KBFullPolicyMiss is what a langchaingo user runs:
// langchaingo's own openai client over HTTP to a local server, raw (a
// plain http.Client) beside the same client adopted as README says —
// twlc.New over it with the default policy's chain, its HTTP client
// twlc.NewTransport over the default base transport (lc-transport) or
// over the go-openai transport (goopenai-transport) — in one run, a distinct 8 KB request per
// call (a cache miss each). Each side reports its process CPU per call
// (the local server's included, the same on every side).
func BenchmarkLangchaingo8KBFullPolicyMiss(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(benchCompletion)))
		_, _ = io.WriteString(w, benchCompletion)
	}))
	defer srv.Close()
	chain := func() middleware.Middleware {
		c, err := llmwrap.Build(policies.Default(), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	inner := func(model string, rt http.RoundTripper) llms.Model {
		m, err := lcopenai.New(lcopenai.WithBaseURL(srv.URL), lcopenai.WithToken("test"), lcopenai.WithModel(model),
			lcopenai.WithHTTPClient(&http.Client{Transport: rt}))
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	// The default policy routes between the two.
	models := func(rt http.RoundTripper) twlc.Models {
		return twlc.Models{"gpt-4o": inner("gpt-4o", rt), "gpt-4o-mini": inner("gpt-4o-mini", rt)}
	}
	for _, side := range []string{"raw", "lc-transport", "goopenai-transport"} {
		b.Run("client="+side, func(b *testing.B) {
			base := http.DefaultTransport.(*http.Transport).Clone()
			defer base.CloseIdleConnections()
			var m llms.Model
			switch side {
			case "raw":
				m = inner("gpt-4o-mini", base)
			// The tokenwise sides on their default base transport, as a
			// user's would be (the raw side's base is net/http's default).
			case "lc-transport":
				m = twlc.New(models(twlc.NewTransport(nil)), chain(), twlc.WithDefaultModel("gpt-4o-mini"))
			default:
				m = twlc.New(models(twlc.NewTransport(twopenai.NewTransport(nil))), chain(),
					twlc.WithDefaultModel("gpt-4o-mini"))
			}
			ctx := context.Background()
			reqs := make([][]llms.MessageContent, 256)
			for i := range reqs {
				reqs[i] = agentConversation(i)
			}
			if _, err := m.GenerateContent(ctx, agentConversation(-1)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			start := processCPU()
			n := 0
			for b.Loop() {
				msgs := reqs[n%len(reqs)]
				if n%len(reqs) == 0 && n > 0 {
					for i := range reqs {
						reqs[i][len(reqs[i])-1] = llms.TextParts(llms.ChatMessageTypeHuman, "Summarise (request "+strconv.Itoa(n+i)+").")
					}
				}
				resp, err := m.GenerateContent(ctx, msgs)
				if err != nil || resp.Choices[0].Content != "Cleaned /var/log: 20GB freed." {
					b.Fatal(resp, err)
				}
				n++
			}
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
