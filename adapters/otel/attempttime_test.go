package otel_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestAttemptSpansStartWhenTheAttemptsWereSent: a call retried after a
// 429 with Retry-After: 2 s has two attempt spans, the second starting
// when the retry was sent, 2 s after the first ended, not at once; the
// call span covers both.
func TestAttemptSpansStartWhenTheAttemptsWereSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		srv := openaitest.New()
		srv.On().Reply(openaitest.RateLimited(2*time.Second), openaitest.Text("The disk is 42% full."))
		p, err := policies.LoadBytes([]byte("version: 1\nfallback: {retry: {max_attempts: 2}}\n"), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		cfg := goopenai.DefaultConfig("k")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithObserver(h.obs)), twopenai.WithBaseTransport(srv.Transport()))
		c := goopenai.NewClientWithConfig(cfg)
		if _, err := c.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk?"}}}); err != nil {
			t.Fatal(err)
		}
		reqs := srv.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want 2", len(reqs))
		}
		var chat sdktrace.ReadOnlySpan
		var attempts []sdktrace.ReadOnlySpan
		for _, s := range h.spans.Ended() {
			switch s.Name() {
			case "chat gpt-4o":
				chat = s
			case "attempt gpt-4o":
				attempts = append(attempts, s)
			}
		}
		if chat == nil || len(attempts) != 2 {
			t.Fatalf("spans: chat %v, %d attempts", chat != nil, len(attempts))
		}
		for i, a := range attempts {
			if !a.StartTime().Equal(reqs[i].Time) {
				t.Errorf("attempt %d span starts %v after the call's, the request was sent %v after", i+1,
					a.StartTime().Sub(chat.StartTime()), reqs[i].Time.Sub(chat.StartTime()))
			}
			if a.StartTime().Before(chat.StartTime()) || a.EndTime().After(chat.EndTime()) {
				t.Errorf("attempt %d span [%v, %v] outside its call's [%v, %v]", i+1, a.StartTime(), a.EndTime(), chat.StartTime(), chat.EndTime())
			}
		}
		if gap := attempts[1].StartTime().Sub(attempts[0].EndTime()); gap != 2*time.Second {
			t.Errorf("the retry's span starts %v after the first attempt's end, want the 2s wait", gap)
		}
	})
}
