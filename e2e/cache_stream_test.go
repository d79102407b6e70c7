package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// tokenLogprob is a logprob as both go-openai shapes (a completion's and a
// stream chunk's) carry it.
type tokenLogprob struct {
	Token   string
	Logprob float64
	Bytes   []int64
	Top     []tokenLogprob
}

func fromCompletion(lps []openai.LogProb) []tokenLogprob {
	var out []tokenLogprob
	for _, lp := range lps {
		t := tokenLogprob{Token: lp.Token, Logprob: lp.LogProb}
		for _, b := range lp.Bytes {
			t.Bytes = append(t.Bytes, int64(b))
		}
		for _, top := range lp.TopLogProbs {
			tt := tokenLogprob{Token: top.Token, Logprob: top.LogProb}
			for _, b := range top.Bytes {
				tt.Bytes = append(tt.Bytes, int64(b))
			}
			t.Top = append(t.Top, tt)
		}
		out = append(out, t)
	}
	return out
}

func fromStream(lps []openai.ChatCompletionTokenLogprob) []tokenLogprob {
	var out []tokenLogprob
	for _, lp := range lps {
		t := tokenLogprob{Token: lp.Token, Logprob: lp.Logprob, Bytes: lp.Bytes}
		for _, top := range lp.TopLogprobs {
			t.Top = append(t.Top, tokenLogprob{Token: top.Token, Logprob: top.Logprob, Bytes: top.Bytes})
		}
		out = append(out, t)
	}
	return out
}

// streamedChoice is what a caller accumulates of one choice of a stream.
type streamedChoice struct {
	content, refusal, finish string
	logprobs                 []tokenLogprob
	chunks                   int
}

// streamedAll is a whole stream as go-openai's Recv gives it.
type streamedAll struct {
	choices        map[int]*streamedChoice
	order          []int // the choice index of each chunk with a choice
	ids, models    map[string]bool
	fingerprints   map[string]bool
	usage          *openai.Usage
	header         string
	chunksPerEvent map[int]int // chunks by their number of choices
}

func readWholeStream(t *testing.T, client *openai.Client, req openai.ChatCompletionRequest) streamedAll {
	t.Helper()
	req.Stream = true
	s, err := client.CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := streamedAll{choices: map[int]*streamedChoice{}, ids: map[string]bool{}, models: map[string]bool{},
		fingerprints: map[string]bool{}, chunksPerEvent: map[int]int{}, header: s.Header().Get(twopenai.CacheHeader)}
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out.ids[r.ID], out.models[r.Model], out.fingerprints[r.SystemFingerprint] = true, true, true
		out.chunksPerEvent[len(r.Choices)]++
		if r.Usage != nil {
			out.usage = r.Usage
		}
		for _, c := range r.Choices {
			sc := out.choices[c.Index]
			if sc == nil {
				sc = &streamedChoice{}
				out.choices[c.Index] = sc
			}
			out.order = append(out.order, c.Index)
			sc.chunks++
			sc.content += c.Delta.Content
			sc.refusal += c.Delta.Refusal
			if c.FinishReason != "" {
				sc.finish = string(c.FinishReason)
			}
			if c.Logprobs != nil {
				sc.logprobs = append(sc.logprobs, fromStream(c.Logprobs.Content)...)
				sc.logprobs = append(sc.logprobs, fromStream(c.Logprobs.Refusal)...)
			}
		}
	}
}

// twoChoicesWithLogprobs has logprobs whose tokens spell the content of
// choice 0 and not of choice 1 (a token cut in its middle, as a provider
// may give one), which must reach the stream whole all the same.
const twoChoicesWithLogprobs = `{"id":"chatcmpl-n2","object":"chat.completion","created":1733000003,"model":"gpt-4o-mini-2024-07-18",` +
	`"system_fingerprint":"fp_n2","choices":[` +
	`{"index":0,"message":{"role":"assistant","content":"Disk at 95%, clean /var/log now.","refusal":null},` +
	`"logprobs":{"content":[{"token":"Disk","logprob":-0.01,"bytes":[68,105,115,107],"top_logprobs":[{"token":"Disk","logprob":-0.01,"bytes":[68,105,115,107]}]},` +
	`{"token":" at","logprob":-0.1,"bytes":[32,97,116],"top_logprobs":[]},{"token":" 95%,","logprob":-0.3,"bytes":[32,57,53,37,44],"top_logprobs":[]},` +
	`{"token":" clean /var/log now.","logprob":-0.7,"bytes":[32],"top_logprobs":[]}],"refusal":null},"finish_reason":"stop"},` +
	`{"index":1,"message":{"role":"assistant","content":"The root volume is nearly full; rotate the logs and prune old images.","refusal":null},` +
	`"logprobs":{"content":[{"token":"The","logprob":-0.2,"bytes":[84,104,101],"top_logprobs":[]},{"token":" root","logprob":-0.4,"bytes":[32],"top_logprobs":[]}],"refusal":null},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":20,"completion_tokens":31,"total_tokens":51,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
	`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`

// TestStreamedHitIsLossless: a streamed hit of an answer stored with its
// OpenAI body gives, through go-openai's stream, what the stored answer
// carried: every choice (interleaved, one choice a chunk), its content or
// refusal, logprobs and finish reason, the stored id, model and
// system_fingerprint, and the stored usage when the caller asks for it.
func TestStreamedHitIsLossless(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		n          int
	}{
		{"n=2 with logprobs", twoChoicesWithLogprobs, 2},
		{"n=3 with logprobs and annotations", threeChoicesWithLogprobs, 3},
		{"refusal", refusal, 1},
	} {
		for _, usage := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s usage %v", tc.name, usage), func(t *testing.T) {
				srv := openaitest.NewServer(t)
				srv.On().Reply(openaitest.Reply{Body: []byte(tc.body)})
				client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), nil)
				req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", N: tc.n, LogProbs: true, TopLogProbs: 1, Temperature: 0.7,
					Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk?"}}}
				first, err := client.CreateChatCompletion(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if usage {
					req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
				}
				hit := readWholeStream(t, client, req)
				if n := srv.Count(); n != 1 {
					t.Fatalf("the provider saw %d requests, want 1", n)
				}
				if hit.header != "hit" {
					t.Errorf("%s: %q, want hit", twopenai.CacheHeader, hit.header)
				}
				if !reflect.DeepEqual(hit.ids, map[string]bool{first.ID: true}) || !reflect.DeepEqual(hit.models, map[string]bool{first.Model: true}) ||
					!reflect.DeepEqual(hit.fingerprints, map[string]bool{first.SystemFingerprint: true}) {
					t.Errorf("ids %v, models %v, fingerprints %v; want %q, %q, %q", hit.ids, hit.models, hit.fingerprints, first.ID, first.Model, first.SystemFingerprint)
				}
				if len(hit.choices) != len(first.Choices) {
					t.Fatalf("%d choices streamed, want %d", len(hit.choices), len(first.Choices))
				}
				for _, want := range first.Choices {
					got := hit.choices[want.Index]
					if got == nil {
						t.Fatalf("choice %d not streamed", want.Index)
					}
					var wantLP []tokenLogprob
					if want.LogProbs != nil {
						wantLP = fromCompletion(want.LogProbs.Content)
					}
					if got.content != want.Message.Content || got.refusal != want.Message.Refusal || got.finish != string(want.FinishReason) ||
						!reflect.DeepEqual(got.logprobs, wantLP) {
						t.Errorf("choice %d streamed %q/%q/%q logprobs %+v\nwant %q/%q/%q logprobs %+v", want.Index,
							got.content, got.refusal, got.finish, got.logprobs, want.Message.Content, want.Message.Refusal, want.FinishReason, wantLP)
					}
					if got.chunks < 2 {
						t.Errorf("choice %d came in %d chunk(s): not streamed", want.Index, got.chunks)
					}
				}
				// One choice a chunk, interleaved: choice 1 starts before
				// choice 0 ends.
				for k, n := range hit.chunksPerEvent {
					if k > 1 || (k == 0 && !usage) {
						t.Errorf("%d chunks with %d choices", n, k)
					}
				}
				if tc.n > 1 && hit.order[1] != 1 {
					t.Errorf("choices not interleaved: %v", hit.order)
				}
				switch {
				case usage && (hit.usage == nil || !reflect.DeepEqual(*hit.usage, first.Usage)):
					t.Errorf("usage %+v, want %+v", hit.usage, first.Usage)
				case !usage && hit.usage != nil:
					t.Errorf("usage %+v sent unasked", hit.usage)
				}
			})
		}
	}
}

// rawStream is a provider's stream of two interleaved choices with
// logprobs, a refusal in choice 1 and a usage chunk, as OpenAI sends it.
func rawStream() [][]byte {
	head := `{"id":"chatcmpl-s2","object":"chat.completion.chunk","created":1733000009,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_s2","choices":[`
	lp := func(tok string) string {
		return `{"content":[{"token":"` + tok + `","logprob":-0.5,"bytes":[1,2],"top_logprobs":[{"token":"` + tok + `","logprob":-0.5,"bytes":[1,2]}]}]}`
	}
	var out [][]byte
	ev := func(s string) { out = append(out, []byte("data: "+s+"\n\n")) }
	ev(head + `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`)
	ev(head + `{"index":1,"delta":{"role":"assistant","content":null,"refusal":""},"logprobs":null,"finish_reason":null}],"usage":null}`)
	for _, tok := range []string{"Disk", " at", " 95%."} {
		ev(head + `{"index":0,"delta":{"content":"` + tok + `"},"logprobs":` + lp(tok) + `,"finish_reason":null}],"usage":null}`)
		ev(head + `{"index":1,"delta":{"refusal":"No` + tok + `"},"logprobs":null,"finish_reason":null}],"usage":null}`)
	}
	ev(head + `{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`)
	ev(head + `{"index":1,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`)
	ev(head + `],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`)
	ev("[DONE]")
	return out
}

// TestStreamedMissIsStoredWhole: an answer stored from a stream keeps what
// the stream carried: a streamed hit streams the same choices, logprobs,
// refusal, id, model, fingerprint and usage as the miss; a non-streamed hit
// has them all in its body.
func TestStreamedMissIsStoredWhole(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "Disk at 95%.", Raw: rawStream()})
	client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{})), nil)
	req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", N: 2, LogProbs: true, TopLogProbs: 1, Temperature: 0.7,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
		Messages:      []openai.ChatCompletionMessage{{Role: "user", Content: "How full is the disk?"}}}
	miss := readWholeStream(t, client, req)
	hit := readWholeStream(t, client, req)
	if n := srv.Count(); n != 1 {
		t.Fatalf("the provider saw %d requests, want 1", n)
	}
	if miss.header != "" || hit.header != "hit" {
		t.Errorf("%s: miss %q, hit %q", twopenai.CacheHeader, miss.header, hit.header)
	}
	if len(miss.choices) != 2 || miss.choices[1].refusal == "" || len(miss.choices[0].logprobs) != 3 {
		t.Fatalf("the miss is not the scripted stream: %+v %+v", miss.choices[0], miss.choices[1])
	}
	for i, m := range miss.choices {
		h := hit.choices[i]
		if h == nil || h.content != m.content || h.refusal != m.refusal || h.finish != m.finish || !reflect.DeepEqual(h.logprobs, m.logprobs) {
			t.Errorf("choice %d: hit %+v, miss %+v", i, h, m)
		}
	}
	if !reflect.DeepEqual(hit.ids, miss.ids) || !reflect.DeepEqual(hit.models, miss.models) || !reflect.DeepEqual(hit.fingerprints, miss.fingerprints) ||
		hit.usage == nil || miss.usage == nil || !reflect.DeepEqual(*hit.usage, *miss.usage) {
		t.Errorf("hit %v %v %v %+v, miss %v %v %v %+v", hit.ids, hit.models, hit.fingerprints, hit.usage, miss.ids, miss.models, miss.fingerprints, miss.usage)
	}
	req.StreamOptions = nil
	whole, err := client.CreateChatCompletion(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if whole.Header().Get(twopenai.CacheHeader) != "hit" || srv.Count() != 1 || len(whole.Choices) != 2 || !miss.ids[whole.ID] ||
		whole.Usage.TotalTokens != miss.usage.TotalTokens {
		t.Fatalf("non-streamed hit %+v", whole)
	}
	for _, c := range whole.Choices {
		m := miss.choices[c.Index]
		var lps []tokenLogprob
		if c.LogProbs != nil {
			lps = fromCompletion(c.LogProbs.Content)
		}
		if c.Message.Content != m.content || c.Message.Refusal != m.refusal || string(c.FinishReason) != m.finish || !reflect.DeepEqual(lps, m.logprobs) {
			t.Errorf("choice %d: %+v %+v, miss %+v", c.Index, c.Message, lps, m)
		}
	}
}

// dropNative is a layer that gives its callers answers without their
// Native, as an adapter that has no wire body would.
func dropNative(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		resp, err := next.Handle(ctx, req)
		if resp != nil {
			resp.Native = nil
		}
		return resp, err
	})
}

// TestStreamedHitSaysHit: the X-Tokenwise-Cache header marks a streamed
// hit, whether the transport renders it from the stored body (an answer
// stored from a non-streamed or a streamed call) or the cache replays it
// (an answer stored without a body); a miss has none.
func TestStreamedHitSaysHit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ firstStreamed, withoutBody bool }{{false, false}, {true, false}, {true, true}, {false, true}} {
		firstStreamed := tc.firstStreamed
		t.Run(fmt.Sprintf("stored from a stream %v without body %v", tc.firstStreamed, tc.withoutBody), func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Text("The disk is at 95%; rotate the logs."))
			chain := llmwrap.MustBuild(cachePolicy(policies.Cache{}))
			if tc.withoutBody {
				built := chain
				chain = func(next middleware.Handler) middleware.Handler { return built(dropNative(next)) }
			}
			client := goOpenAI(t, srv, chain, nil)
			req := chatRequest("disk?")
			var content string
			if firstStreamed {
				miss := readWholeStream(t, client, req)
				if miss.header != "" {
					t.Errorf("miss %s: %q", twopenai.CacheHeader, miss.header)
				}
				content = miss.choices[0].content
			} else {
				resp, err := client.CreateChatCompletion(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if h := resp.Header().Get(twopenai.CacheHeader); h != "" {
					t.Errorf("miss %s: %q", twopenai.CacheHeader, h)
				}
				content = resp.Choices[0].Message.Content
			}
			for range 2 {
				hit := readWholeStream(t, client, req)
				if hit.header != "hit" || hit.choices[0].content != content {
					t.Errorf("hit %s %q, content %q; want hit, %q", twopenai.CacheHeader, hit.header, hit.choices[0].content, content)
				}
			}
			if n := srv.Count(); n != 1 {
				t.Fatalf("the provider saw %d requests, want 1", n)
			}
		})
	}
}

// TestStreamsPolicy: under cache.streams false a streaming request neither
// reads nor writes the cache, and says why in its CallFacts and the run
// report; non-streaming requests are cached as before.
func TestStreamsPolicy(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("The disk is at 95%."))
	off := false
	obs := &events{}
	client := goOpenAI(t, srv, llmwrap.MustBuild(cachePolicy(policies.Cache{Streams: &off}), llmwrap.WithObserver(obs)), nil)
	ctx, run := middleware.StartRun(context.Background(), "r")
	req := chatRequest("disk?")
	call := func(stream bool) string {
		t.Helper()
		if !stream {
			resp, err := client.CreateChatCompletion(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Header().Get(twopenai.CacheHeader)
		}
		r := req
		r.Stream = true
		s, err := client.CreateChatCompletionStream(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for {
			if _, err := s.Recv(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		return s.Header().Get(twopenai.CacheHeader)
	}
	headers := []string{call(true), call(false), call(true), call(false)}
	if !reflect.DeepEqual(headers, []string{"", "", "", "hit"}) {
		t.Errorf("cache headers %q", headers)
	}
	if n := srv.Count(); n != 3 {
		t.Fatalf("the provider saw %d requests, want 3 (two streams, one miss)", n)
	}
	bypass := "bypass: " + cache.ReasonStreamNotCacheable
	want := []string{bypass, "miss", bypass, "hit"}
	report := observe.Report(run)
	recs := run.Calls()
	if len(recs) != len(want) {
		t.Fatalf("%d calls in the run, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		cell := string(r.Cache)
		if r.CacheReason != "" {
			cell += ": " + r.CacheReason
		}
		if cell != want[i] || !strings.Contains(report, want[i]) {
			t.Errorf("call %d: %q, want %q in\n%s", i+1, cell, want[i], report)
		}
	}
	var reasons []string
	for _, l := range obs.lookups() {
		reasons = append(reasons, l.Reason)
	}
	if !reflect.DeepEqual(reasons, []string{cache.ReasonStreamNotCacheable, "", cache.ReasonStreamNotCacheable, ""}) {
		t.Errorf("lookup reasons %q", reasons)
	}
}
