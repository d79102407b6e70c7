package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// Answer shapes the core does not model, as OpenAI sends them.
var (
	threeChoicesWithLogprobs = `{"id":"chatcmpl-n3","object":"chat.completion","created":1733000000,"model":"gpt-4o-mini-2024-07-18",` +
		`"system_fingerprint":"fp_abc123","service_tier":"default","choices":[` +
		`{"index":0,"message":{"role":"assistant","content":"Disk at 95%.","refusal":null,"annotations":[{"type":"url_citation","url_citation":{"start_index":0,"end_index":4,"title":"df","url":"https://x.test/df"}}]},` +
		`"logprobs":{"content":[{"token":"Disk","logprob":-0.01,"bytes":[68,105,115,107],"top_logprobs":[{"token":"Disk","logprob":-0.01,"bytes":[68,105,115,107]}]}],"refusal":null},"finish_reason":"stop"},` +
		`{"index":1,"message":{"role":"assistant","content":"95% used.","refusal":null,"annotations":[]},"logprobs":{"content":[{"token":"95","logprob":-0.2,"bytes":[57,53],"top_logprobs":[]}],"refusal":null},"finish_reason":"stop"},` +
		`{"index":2,"message":{"role":"assistant","content":"Nearly full.","refusal":null,"annotations":[]},"logprobs":{"content":[{"token":"Nearly","logprob":-1.5,"bytes":[78],"top_logprobs":[]}],"refusal":null},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":20,"completion_tokens":12,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`
	refusal = `{"id":"chatcmpl-r","object":"chat.completion","created":1733000001,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_r",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with wiping production disks."},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":15,"completion_tokens":9,"total_tokens":24}}`
	// (Its audio expires in 2100: the cache keeps an audio answer no
	// longer than its audio, TestCachedAudioAnswerExpiresWithItsAudio.)
	audio = `{"id":"chatcmpl-a","object":"chat.completion","created":1733000002,"model":"gpt-4o-audio-preview","service_tier":"default",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"audio":{"id":"audio_abc","data":"UklGRg==","expires_at":4102444800,"transcript":"The disk is fine."}},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":10,"completion_tokens":30,"total_tokens":40,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":25}}}`
)

// bodyRecorder keeps the response bodies its transport returns.
type bodyRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	got  [][]byte
}

func (b *bodyRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.got = append(b.got, body)
	b.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// TestHitIsLossless: a hit gives back everything the stored answer
// carried. Through go-openai the hit's body is the provider's body byte for
// byte (n choices, logprobs, refusal, audio, annotations,
// system_fingerprint, service_tier, usage details; nothing is fresh) and
// decodes to the same value; through langchaingo's openai backend over
// the transport, and through twlc.Models over it, the hit is the same
// ContentResponse, every choice and its generation info (Go types kept)
// included.
func TestHitIsLossless(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		n          int
	}{{"n=3 with logprobs and annotations", threeChoicesWithLogprobs, 3}, {"refusal", refusal, 1}, {"audio", audio, 1}} {
		t.Run("go-openai "+tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Body: []byte(tc.body)})
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			rec := &bodyRecorder{next: twopenai.NewTransport(llmwrap.MustBuild(cachePolicy(policies.Cache{})), twopenai.WithBaseTransport(base))}
			cfg := openai.DefaultConfig("test-key")
			cfg.BaseURL = srv.URL
			cfg.HTTPClient = &http.Client{Transport: rec}
			client := openai.NewClientWithConfig(cfg)
			req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", N: tc.n, LogProbs: true, TopLogProbs: 1, Temperature: 0.7,
				Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk?"}}}
			first, err := client.CreateChatCompletion(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			second, err := client.CreateChatCompletion(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if n := srv.Count(); n != 1 {
				t.Fatalf("the provider saw %d requests, want 1", n)
			}
			if string(rec.got[0]) != tc.body {
				t.Fatalf("miss body changed:\n%s\nwant\n%s", rec.got[0], tc.body)
			}
			if !bytes.Equal(rec.got[1], rec.got[0]) {
				t.Fatalf("hit body\n%s\nwant\n%s", rec.got[1], rec.got[0])
			}
			first.SetHeader(nil)
			second.SetHeader(nil)
			if !reflect.DeepEqual(first, second) || len(second.Choices) != tc.n {
				t.Fatalf("hit %+v\nwant %+v", second, first)
			}
		})
	}
	t.Run("twlc.Models n=3", func(t *testing.T) {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Reply{Body: []byte(threeChoicesWithLogprobs)})
		llm := langchaingo(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), "gpt-4o-mini")
		msgs := []llms.MessageContent{human("How full is the disk?")}
		first, err := llm.GenerateContent(context.Background(), msgs, llms.WithN(3))
		if err != nil {
			t.Fatal(err)
		}
		second, err := llm.GenerateContent(context.Background(), msgs, llms.WithN(3))
		if err != nil {
			t.Fatal(err)
		}
		if n := srv.Count(); n != 1 {
			t.Fatalf("the provider saw %d requests, want 1", n)
		}
		if len(second.Choices) != 3 || !reflect.DeepEqual(first, second) {
			t.Fatalf("hit %+v\nwant %+v", second.Choices, first.Choices)
		}
		if second.Choices[0].GenerationInfo["TotalTokens"] != 32 {
			t.Fatalf("generation info %v: the stored answer's usage, with its Go types", second.Choices[0].GenerationInfo)
		}
	})
	t.Run("langchaingo n=3", func(t *testing.T) {
		srv := openaitest.NewServer(t)
		srv.On().Reply(openaitest.Reply{Body: []byte(threeChoicesWithLogprobs)})
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		llm, err := lcopenai.New(lcopenai.WithBaseURL(srv.URL), lcopenai.WithToken("test"), lcopenai.WithModel("gpt-4o-mini"),
			lcopenai.WithHTTPClient(twopenai.NewTransport(llmwrap.MustBuild(cachePolicy(policies.Cache{})), twopenai.WithBaseTransport(base))))
		if err != nil {
			t.Fatal(err)
		}
		msgs := []llms.MessageContent{human("How full is the disk?")}
		first, err := llm.GenerateContent(context.Background(), msgs, llms.WithN(3))
		if err != nil {
			t.Fatal(err)
		}
		second, err := llm.GenerateContent(context.Background(), msgs, llms.WithN(3))
		if err != nil {
			t.Fatal(err)
		}
		if n := srv.Count(); n != 1 {
			t.Fatalf("the provider saw %d requests, want 1", n)
		}
		if len(second.Choices) != 3 || !reflect.DeepEqual(first, second) {
			t.Fatalf("hit %+v\nwant %+v", second.Choices, first.Choices)
		}
	})
}

// infoModel answers with two candidates whose GenerationInfo holds info.
type infoModel struct {
	info  map[string]any
	calls *atomic.Int32
}

func (m infoModel) GenerateContent(context.Context, []llms.MessageContent, ...llms.CallOption) (*llms.ContentResponse, error) {
	m.calls.Add(1)
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{
		{Content: "one", StopReason: "stop", GenerationInfo: m.info},
		{Content: "two", StopReason: "stop", GenerationInfo: map[string]any{"PromptTokens": 3}},
	}}, nil
}

func (m infoModel) Call(ctx context.Context, prompt string, options ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, m, prompt, options...)
}

// TestLangchaingoHitKeepsGenerationInfoTypes: a twlc.Models hit gives back
// every candidate and GenerationInfo values with their Go types; an answer
// with a value a store cannot keep (a struct) is still a hit, with the
// core view.
func TestLangchaingoHitKeepsGenerationInfoTypes(t *testing.T) {
	t.Parallel()
	info := map[string]any{"PromptTokens": int32(5), "CompletionTokens": int64(7), "TotalTokens": 12, "Score": 1.5,
		"Ratio": float32(0.25), "Model": "m", "Cached": true, "Nothing": nil, "Unsigned": uint64(9)}
	calls := &atomic.Int32{}
	llm := twlcOver(infoModel{info, calls})
	first, err := llm.GenerateContent(context.Background(), []llms.MessageContent{human("q")}, llms.WithN(2))
	if err != nil {
		t.Fatal(err)
	}
	second, err := llm.GenerateContent(context.Background(), []llms.MessageContent{human("q")}, llms.WithN(2))
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("the model was called %d times, want 1", calls.Load())
	}
	if !reflect.DeepEqual(first, second) || !reflect.DeepEqual(second.Choices[0].GenerationInfo, info) {
		t.Fatalf("hit %+v %+v\nwant %+v", second.Choices[0], second.Choices[1], first.Choices[0])
	}

	calls = &atomic.Int32{}
	llm = twlcOver(infoModel{map[string]any{"Raw": struct{ X int }{1}}, calls})
	for range 2 {
		out, err := llm.GenerateContent(context.Background(), []llms.MessageContent{human("q")}, llms.WithN(2))
		if err != nil || out.Choices[0].Content != "one" {
			t.Fatal(out, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("the model was called %d times, want 1", calls.Load())
	}
}

func twlcOver(m llms.Model) llms.Model {
	return twlc.New(twlc.Models{"m": m}, llmwrap.MustBuild(cachePolicy(policies.Cache{})), twlc.WithDefaultModel("m"))
}

// TestUnstreamableAnswersAreNotRestreamed: an answer's legacy
// function_call (functions in the request) or audio (modalities with
// "audio") is not in the core answer, so a stored answer restreamed to a
// streaming caller would lose it: plain calls hit the cache (the hit is
// the provider's body), streaming calls bypass it and get what the
// provider streamed.
func TestUnstreamableAnswersAreNotRestreamed(t *testing.T) {
	const fcAnswer = `{"id":"chatcmpl-f","object":"chat.completion","created":1733000003,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":null,"function_call":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},"finish_reason":"function_call"}],` +
		`"usage":{"prompt_tokens":30,"completion_tokens":8,"total_tokens":38}}`
	const head = `data: {"id":"chatcmpl-f","object":"chat.completion.chunk","created":1733000003,"model":"gpt-4o-mini","choices":[{"index":0,`
	for _, tc := range []struct {
		name, plain, request, want string
		stream                     []string
	}{
		{"legacy function call", fcAnswer,
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Weather in Paris?"}],"functions":[{"name":"get_weather","parameters":{"type":"object"}}]`,
			`"function_call":{"name":"get_weather"`, []string{
				head + `"delta":{"role":"assistant","content":null,"function_call":{"name":"get_weather","arguments":""}},"finish_reason":null}]}`,
				head + `"delta":{"function_call":{"arguments":"{\"city\":\"Paris\"}"}},"finish_reason":null}]}`,
				head + `"delta":{},"finish_reason":"function_call"}]}`}},
		{"audio output", audio,
			`{"model":"gpt-4o-audio-preview","modalities":["text","audio"],"audio":{"voice":"alloy","format":"pcm16"},"messages":[{"role":"user","content":"Is the disk fine?"}]`,
			`"transcript":"The disk is fine."`, []string{
				head + `"delta":{"role":"assistant","content":null,"audio":{"id":"audio_abc","transcript":"The disk is fine."}},"finish_reason":null}]}`,
				head + `"delta":{"audio":{"data":"UklGRg=="}},"finish_reason":null}]}`,
				head + `"delta":{},"finish_reason":"stop"}]}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			var raw [][]byte
			for _, l := range append(tc.stream, "data: [DONE]") {
				raw = append(raw, []byte(l+"\n\n"))
			}
			srv.On(openaitest.Streaming()).Reply(openaitest.Reply{Raw: raw})
			srv.On().Reply(openaitest.Reply{Body: []byte(tc.plain)})
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			client := &http.Client{Transport: twopenai.NewTransport(llmwrap.MustBuild(cachePolicy(policies.Cache{})), twopenai.WithBaseTransport(base))}
			call := func(body string) string {
				t.Helper()
				resp, err := client.Post(srv.URL+"/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("%d %s %v", resp.StatusCode, b, err)
				}
				return string(b)
			}
			for i := range 2 {
				if got := call(tc.request + "}"); got != tc.plain {
					t.Fatalf("plain call %d: %s\nwant the provider's body", i, got)
				}
			}
			if n := srv.Count(); n != 1 {
				t.Fatalf("plain calls: the provider saw %d, want 1 (the second a hit)", n)
			}
			for i := range 2 {
				if got := call(tc.request + `,"stream":true}`); !strings.Contains(got, tc.want) {
					t.Fatalf("streaming call %d got\n%s\nwant %s in it", i, got, tc.want)
				}
			}
			if n := srv.Count(); n != 3 {
				t.Fatalf("the provider saw %d requests, want 3 (streaming calls bypass the cache)", n)
			}
		})
	}
}
