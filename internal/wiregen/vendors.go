package wiregen

// Vendors: answers in the exact shapes of named servers, each with the
// usage its provider bills.

import "strings"

// Bill is the usage a provider bills for an answer.
type Bill struct{ Prompt, Completion, Cached, Reasoning, CacheWrite int64 }

// Vendor is an answer in one server's shape.
type Vendor struct {
	Name         string
	Stream       bool
	IncludeUsage bool // the request asks stream_options.include_usage
	N            int
	body         string
	// Bill is what the provider bills, nil when the answer reports no
	// usage (a client bills an estimate, flagged).
	Bill *Bill
	// WantErr: the answer is a failure (a mid-stream error), to be
	// reported as one and never cached.
	WantErr bool
}

// Case returns v as a Case (seed 0: no generated part).
func (v Vendor) Case() Case {
	n := max(v.N, 1)
	w := Wire{Stream: v.Stream, Body: []byte(v.body), Done: v.Stream}
	if v.Stream {
		w.ContentType = "text/event-stream"
	} else {
		w.ContentType = "application/json"
	}
	return Case{N: n, Stream: v.Stream, IncludeUsage: v.IncludeUsage, Fails: v.WantErr, Wire: w}
}

// sse frames payloads as an event stream; a comment line (":...") or an
// empty string is written as a line of its own.
func sse(evs ...string) string {
	var b strings.Builder
	for _, e := range evs {
		if strings.HasPrefix(e, ":") || e == "" {
			b.WriteString(e + "\n")
			continue
		}
		b.WriteString("data: " + e + "\n\n")
	}
	return b.String()
}

// Vendors are the named servers' shapes.
var Vendors = []Vendor{
	{Name: "vllm-continuous-usage", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":10,"total_tokens":10,"completion_tokens":0}}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":10,"total_tokens":11,"completion_tokens":1}}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":10,"total_tokens":12,"completion_tokens":2}}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":10,"total_tokens":12,"completion_tokens":2}}`,
		`[DONE]`), Bill: &Bill{Prompt: 10, Completion: 2}},
	// Cut after its second chunk (no finish, no [DONE]): a cut, billed
	// the usage the provider reported last (its bill so far), not an
	// estimate.
	{Name: "vllm-continuous-usage-cut", Stream: true, IncludeUsage: true, WantErr: true, body: sse(
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":1000,"total_tokens":1000,"completion_tokens":0}}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":1000,"total_tokens":1500,"completion_tokens":500}}`),
		Bill: &Bill{Prompt: 1000, Completion: 500}},
	{Name: "vllm-plain", body: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":null,"content":"Hi!","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":128009}],"usage":{"prompt_tokens":10,"total_tokens":12,"completion_tokens":2,"prompt_tokens_details":null},"prompt_logprobs":null,"kv_transfer_params":null}`,
		Bill: &Bill{Prompt: 10, Completion: 2}},
	{Name: "ollama-no-usage", Stream: true, body: sse(
		`{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"llama3","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"llama3","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}`,
		`[DONE]`)},
	{Name: "ollama-usage", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"llama3","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"llama3","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}`,
		`{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"llama3","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":26,"completion_tokens":2,"total_tokens":28}}`,
		`[DONE]`), Bill: &Bill{Prompt: 26, Completion: 2}},
	{Name: "llamacpp", Stream: true, IncludeUsage: true, body: sse(
		`{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":1,"id":"chatcmpl-x","model":"gpt-3.5-turbo","system_fingerprint":"b5000","object":"chat.completion.chunk"}`,
		`{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}],"created":1,"id":"chatcmpl-x","model":"gpt-3.5-turbo","system_fingerprint":"b5000","object":"chat.completion.chunk"}`,
		`{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1,"id":"chatcmpl-x","model":"gpt-3.5-turbo","system_fingerprint":"b5000","object":"chat.completion.chunk","usage":{"completion_tokens":2,"prompt_tokens":9,"total_tokens":11},"timings":{"prompt_n":9,"prompt_ms":10.5,"predicted_n":2,"predicted_ms":20.1,"predicted_per_second":99.5},"id_slot":0,"tokens_predicted":2}`,
		`[DONE]`), Bill: &Bill{Prompt: 9, Completion: 2}},
	{Name: "llamacpp-plain", body: `{"choices":[{"finish_reason":"stop","index":0,"message":{"role":"assistant","content":"Hi"}}],"created":1,"model":"gpt-3.5-turbo","system_fingerprint":"b5000","object":"chat.completion","usage":{"completion_tokens":2,"prompt_tokens":9,"total_tokens":11},"id":"chatcmpl-x","timings":{"prompt_n":9,"prompt_ms":10.5,"predicted_n":2,"predicted_ms":20.1},"id_slot":0,"tokens_predicted":2,"tokens_evaluated":9}`,
		Bill: &Bill{Prompt: 9, Completion: 2}},
	{Name: "groq-xgroq-usage", Stream: true, body: sse(
		`{"id":"chatcmpl-g","object":"chat.completion.chunk","created":1,"model":"llama-3.1-8b-instant","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"x_groq":{"id":"req_01"}}`,
		`{"id":"chatcmpl-g","object":"chat.completion.chunk","created":1,"model":"llama-3.1-8b-instant","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]}`,
		`{"id":"chatcmpl-g","object":"chat.completion.chunk","created":1,"model":"llama-3.1-8b-instant","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_01","usage":{"queue_time":0.02,"prompt_tokens":40,"prompt_time":0.002,"completion_tokens":3,"completion_time":0.01,"total_tokens":43,"total_time":0.012}}}`,
		`[DONE]`), Bill: &Bill{Prompt: 40, Completion: 3}},
	{Name: "groq-xgroq-usage-incl", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"chatcmpl-g","object":"chat.completion.chunk","created":1,"model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}],"x_groq":{"id":"req_01"}}`,
		`{"id":"chatcmpl-g","object":"chat.completion.chunk","created":1,"model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_01","usage":{"queue_time":0.02,"prompt_tokens":40,"prompt_time":0.002,"completion_tokens":3,"completion_time":0.01,"total_tokens":43,"total_time":0.012}}}`,
		`{"id":"chatcmpl-g","object":"chat.completion.chunk","created":1,"model":"llama-3.1-8b-instant","choices":[],"usage":{"queue_time":0.02,"prompt_tokens":40,"prompt_time":0.002,"completion_tokens":3,"completion_time":0.01,"total_tokens":43,"total_time":0.012},"x_groq":{"id":"req_01"}}`,
		`[DONE]`), Bill: &Bill{Prompt: 40, Completion: 3}},
	{Name: "azure", Stream: true, IncludeUsage: true, body: sse(
		`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"}}}]}`,
		`{"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1,"id":"chatcmpl-a","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_1","usage":null}`,
		`{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hi"},"finish_reason":null,"index":0,"logprobs":null}],"created":1,"id":"chatcmpl-a","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_1","usage":null}`,
		`{"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"content_filter","index":0,"logprobs":null}],"created":1,"id":"chatcmpl-a","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_1","usage":null}`,
		`{"choices":[],"created":1,"id":"chatcmpl-a","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_1","usage":{"completion_tokens":1,"completion_tokens_details":{"accepted_prediction_tokens":0,"audio_tokens":0,"reasoning_tokens":0,"rejected_prediction_tokens":0},"prompt_tokens":12,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":0},"total_tokens":13}}`,
		`[DONE]`), Bill: &Bill{Prompt: 12, Completion: 1}},
	{Name: "azure-async-filter", Stream: true, IncludeUsage: true, body: sse(
		`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}`,
		`{"choices":[{"content_filter_results":{},"delta":{"content":"Hi","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1,"id":"chatcmpl-a","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_1"}`,
		`{"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1,"id":"chatcmpl-a","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_1"}`,
		`{"choices":[{"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":2},"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"finish_reason":null,"index":0}],"created":0,"id":"","model":"","object":""}`,
		`{"choices":[],"created":1,"id":"chatcmpl-a","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","usage":{"completion_tokens":1,"prompt_tokens":12,"total_tokens":13}}`,
		`[DONE]`), Bill: &Bill{Prompt: 12, Completion: 1}},
	{Name: "deepseek", Stream: true, IncludeUsage: true, body: sse(
		`: keep-alive`, ``,
		`{"id":"d","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}]}`,
		`: keep-alive`, ``, ``,
		`{"id":"d","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Think"},"logprobs":null,"finish_reason":null}]}`,
		`{"id":"d","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hi","reasoning_content":null},"logprobs":null,"finish_reason":null}]}`,
		`{"id":"d","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":16},"completion_tokens_details":{"reasoning_tokens":7},"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":4}}`,
		`[DONE]`), Bill: &Bill{Prompt: 20, Completion: 9, Cached: 16, Reasoning: 7}},
	{Name: "openrouter", Stream: true, IncludeUsage: true, body: sse(
		`: OPENROUTER PROCESSING`, ``,
		`{"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
		`: OPENROUTER PROCESSING`, ``,
		`{"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","native_finish_reason":"stop","logprobs":null}]}`,
		`{"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9,"cost":0.00003,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"cost_details":{"upstream_inference_cost":null},"completion_tokens_details":{"reasoning_tokens":0}}}`,
		`[DONE]`), Bill: &Bill{Prompt: 8, Completion: 1}},
	{Name: "openrouter-midstream-error", Stream: true, IncludeUsage: true, WantErr: true, body: sse(
		`{"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		`{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"openai/gpt-4o","provider":"OpenAI","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`,
		`[DONE]`)},
	{Name: "openrouter-midstream-error-first", Stream: true, WantErr: true, body: sse(
		`{"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		`{"error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"X"}},"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"openai/gpt-4o","choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`,
		`[DONE]`)},
	{Name: "finish-error-no-error-member", Stream: true, WantErr: true, body: sse(
		`{"id":"gen-1","model":"m","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		`{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`,
		`[DONE]`)},
	{Name: "vllm-error-event", Stream: true, WantErr: true, body: sse(
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}`,
		`{"object":"error","message":"The engine is dead","type":"InternalServerError","param":null,"code":500}`,
		`[DONE]`)},
	{Name: "llamacpp-error-event", Stream: true, WantErr: true, body: sse(
		`{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}],"created":1,"id":"chatcmpl-x","model":"m","object":"chat.completion.chunk"}`,
		`{"error":{"code":500,"message":"context shift failed","type":"server_error"}}`)},
	{Name: "gemini-error-event", Stream: true, WantErr: true, body: sse(
		`{"choices":[{"delta":{"content":"Hi","role":"assistant"},"index":0}],"created":1,"id":"g1","model":"gemini-2.0-flash","object":"chat.completion.chunk"}`,
		`{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`)},
	{Name: "anthropic-error-event", Stream: true, WantErr: true, body: sse(
		`{"id":"msg_01","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}],"created":1,"model":"claude-sonnet-4-5","object":"chat.completion.chunk"}`,
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)},
	{Name: "mistral-tools", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"m1","object":"chat.completion.chunk","created":1,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		`{"id":"m1","object":"chat.completion.chunk","created":1,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"tool_calls":[{"id":"D681PevKs","function":{"name":"check_disk","arguments":"{\"host\": \"web-1\"}"}},{"id":"A2b3C4d5E","function":{"name":"rotate_logs","arguments":"{\"host\": \"web-2\"}"}}]},"finish_reason":"tool_calls","logprobs":null}],"usage":{"prompt_tokens":80,"total_tokens":110,"completion_tokens":30}}`,
		`[DONE]`), Bill: &Bill{Prompt: 80, Completion: 30}},
	{Name: "mistral-one-tool", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"m1","object":"chat.completion.chunk","created":1,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		`{"id":"m1","object":"chat.completion.chunk","created":1,"model":"mistral-large-latest","choices":[{"index":0,"delta":{"tool_calls":[{"id":"D681PevKs","function":{"name":"check_disk","arguments":"{\"host\": \"web-1\"}"}}]},"finish_reason":"tool_calls","logprobs":null}],"usage":{"prompt_tokens":80,"total_tokens":110,"completion_tokens":30}}`,
		`[DONE]`), Bill: &Bill{Prompt: 80, Completion: 30}},
	{Name: "gemini-tools", Stream: true, IncludeUsage: true, body: sse(
		`{"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"host\":\"web-1\"}","name":"check_disk"},"id":"","type":"function"}]},"finish_reason":"tool_calls","index":0}],"created":1,"id":"g1","model":"gemini-2.0-flash","object":"chat.completion.chunk","usage":{"completion_tokens":5,"prompt_tokens":30,"total_tokens":35,"prompt_tokens_details":null,"completion_tokens_details":null}}`,
		`[DONE]`), Bill: &Bill{Prompt: 30, Completion: 5}},
	{Name: "gemini-plain", body: `{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hi","role":"assistant"}}],"created":1,"id":"g1","model":"gemini-2.0-flash","object":"chat.completion","usage":{"completion_tokens":1,"prompt_tokens":5,"total_tokens":6,"prompt_tokens_details":null,"completion_tokens_details":null}}`,
		Bill: &Bill{Prompt: 5, Completion: 1}},
	{Name: "together-null-usage", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"t1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"text":"Hi","logprobs":null,"finish_reason":null,"seed":null,"delta":{"token_id":13,"role":"assistant","content":"Hi","tool_calls":null}}],"usage":null}`,
		`{"id":"t1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"eos","seed":123,"delta":{"token_id":2,"role":"assistant","content":"","tool_calls":null}}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}`,
		`[DONE]`), Bill: &Bill{Prompt: 7, Completion: 2}},
	{Name: "fireworks-logprobs", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"f1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":{"tokens":["Hi"],"token_logprobs":[-0.1],"top_logprobs":null,"text_offset":[0]},"finish_reason":null}],"usage":null}`,
		`{"id":"f1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"total_tokens":9,"completion_tokens":2}}`,
		`[DONE]`), Bill: &Bill{Prompt: 7, Completion: 2}},
	{Name: "usage-null-members", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
		`{"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":null,"total_tokens":null}}`,
		`[DONE]`), Bill: &Bill{Prompt: 7}},
	{Name: "usage-floats", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
		`{"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12.0,"completion_tokens":3.0,"total_tokens":15.0}}`,
		`[DONE]`), Bill: &Bill{Prompt: 12, Completion: 3}},
	{Name: "usage-floats-plain", body: `{"id":"u","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12.0,"completion_tokens":3.0,"total_tokens":15.0}}`,
		Bill: &Bill{Prompt: 12, Completion: 3}},
	{Name: "usage-negative", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
		`{"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":-5,"completion_tokens":3,"total_tokens":-2}}`,
		`[DONE]`)},
	{Name: "usage-huge", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`,
		`{"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":9007199254740993,"completion_tokens":3,"total_tokens":9007199254740996}}`,
		`[DONE]`)}, // beyond middleware.MaxCount: no count, billed an estimate
	{Name: "usage-huge-plain", body: `{"id":"u","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4611686018427387904,"completion_tokens":4611686018427387904,"total_tokens":9223372036854775807}}`},
	// beyond middleware.MaxCount: no count, billed an estimate
	{Name: "choices-out-of-order", Stream: true, N: 2, body: sse(
		`{"id":"o","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":1,"delta":{"content":"B"},"finish_reason":null}]}`,
		`{"id":"o","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"stop"}]}`,
		`[DONE]`)},
	{Name: "choices-non-contiguous", Stream: true, N: 2, body: sse(
		`{"id":"o","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":"stop"}]}`,
		`{"id":"o","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":5,"delta":{"content":"B"},"finish_reason":"stop"}]}`,
		`[DONE]`)},
	{Name: "choices-out-of-order-plain", N: 2, body: `{"id":"o","object":"chat.completion","created":1,"model":"m","choices":[{"index":1,"message":{"role":"assistant","content":"B"},"finish_reason":"stop"},{"index":0,"message":{"role":"assistant","content":"A"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
		Bill: &Bill{Prompt: 3, Completion: 2}},
	{Name: "finish-unknown", Stream: true, body: sse(
		`{"id":"o","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":"end_turn"}]}`,
		`[DONE]`)},
	{Name: "object-missing-created-float", Stream: true, body: sse(
		`{"id":"o","created":1.7e9,"model":"m","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":"stop"}]}`,
		`[DONE]`)},
	{Name: "created-string", Stream: true, body: sse(
		`{"id":"o","created":"1700000000","model":"m","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":"stop"}]}`,
		`[DONE]`)},
	{Name: "created-string-plain", body: `{"id":"o","created":"1700000000","model":"m","choices":[{"index":0,"message":{"content":"A"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`,
		Bill: &Bill{Prompt: 3, Completion: 1}},
	{Name: "anthropic-compat", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"msg_01","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}],"created":1,"model":"claude-sonnet-4-5","object":"chat.completion.chunk"}`,
		`{"id":"msg_01","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"created":1,"model":"claude-sonnet-4-5","object":"chat.completion.chunk","usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":0}}}`,
		`[DONE]`), Bill: &Bill{Prompt: 12, Completion: 2}},
	{Name: "lmstudio", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen","system_fingerprint":"qwen","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}`,
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen","system_fingerprint":"qwen","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
		`{"id":"chatcmpl-l","object":"chat.completion.chunk","created":1,"model":"qwen","system_fingerprint":"qwen","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}`,
		`[DONE]`), Bill: &Bill{Prompt: 10, Completion: 1}},
	// DeepSeek's and Moonshot's cached input, beside the prompt's count only.
	{Name: "deepseek-cache-hit-only-plain", body: `{"id":"d","object":"chat.completion","created":1,"model":"deepseek-chat","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":4}}`,
		Bill: &Bill{Prompt: 20, Completion: 2, Cached: 16}},
	{Name: "deepseek-cache-hit-only", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"d","object":"chat.completion.chunk","created":1,"model":"deepseek-chat","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		`{"id":"d","object":"chat.completion.chunk","created":1,"model":"deepseek-chat","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"prompt_cache_hit_tokens":16,"prompt_cache_miss_tokens":4}}`,
		`[DONE]`), Bill: &Bill{Prompt: 20, Completion: 2, Cached: 16}},
	{Name: "moonshot-cached-tokens", body: `{"id":"d","object":"chat.completion","created":1,"model":"kimi","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"cached_tokens":16}}`,
		Bill: &Bill{Prompt: 20, Completion: 2, Cached: 16}},
	{Name: "openrouter-cache-write", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"gen-1","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`,
		`{"id":"gen-1","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","native_finish_reason":"end_turn","logprobs":null}]}`,
		`{"id":"gen-1","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":3000,"completion_tokens":2,"total_tokens":3002,"cost":0.01,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":2800,"audio_tokens":0},"cost_details":{"upstream_inference_cost":null},"completion_tokens_details":{"reasoning_tokens":0}}}`,
		`[DONE]`), Bill: &Bill{Prompt: 3000, Completion: 2, CacheWrite: 2800}},
	{Name: "openrouter-cache-write-plain", body: `{"id":"gen-1","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","object":"chat.completion","created":1,"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop","native_finish_reason":"end_turn"}],"usage":{"prompt_tokens":3000,"completion_tokens":2,"total_tokens":3002,"cost":0.01,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":2800}}}`,
		Bill: &Bill{Prompt: 3000, Completion: 2, CacheWrite: 2800}},
	// DeepSeek's answer to a call that does not stream: blank lines while
	// it works, then the JSON.
	{Name: "deepseek-plain-keep-alive", body: "\n\n\n" + `{"id":"d","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22}}`,
		Bill: &Bill{Prompt: 20, Completion: 2}},
	// Hugging Face TGI: "data:" without a space, an empty id, its own
	// finish reason, the usage in the last chunk.
	{Name: "tgi", Stream: true, IncludeUsage: true, body: "data:" + `{"object":"chat.completion.chunk","id":"","created":1,"model":"tgi","system_fingerprint":"3.0.1-sha","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\ndata:" +
		`{"object":"chat.completion.chunk","id":"","created":1,"model":"tgi","system_fingerprint":"3.0.1-sha","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"eos_token"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}` + "\n\ndata:[DONE]\n\n",
		Bill: &Bill{Prompt: 7, Completion: 2}},
	// TGI's failure mid-stream: an error that is a string.
	{Name: "tgi-error-event", Stream: true, WantErr: true, body: "data:" + `{"object":"chat.completion.chunk","id":"","created":1,"model":"tgi","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\ndata:" +
		`{"error":"Request failed during generation: Server error: CUDA out of memory","error_type":"generation"}` + "\n\n"},
	// OpenAI's chunks of 2025, padded with an obfuscation member.
	{Name: "openai-obfuscation", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"zV2"}`,
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Qx"}`,
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"a"}`,
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","service_tier":"default","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"b"}`,
		`[DONE]`), Bill: &Bill{Prompt: 8, Completion: 1}},
	// LocalAI: a zero usage in every chunk but the last.
	{Name: "localai-zero-usage-each", Stream: true, IncludeUsage: true, body: sse(
		`{"created":1,"object":"chat.completion.chunk","id":"x","model":"m","choices":[{"index":0,"finish_reason":"","delta":{"role":"assistant","content":""}}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`,
		`{"created":1,"object":"chat.completion.chunk","id":"x","model":"m","choices":[{"index":0,"finish_reason":"","delta":{"content":"Hi"}}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`,
		`{"created":1,"object":"chat.completion.chunk","id":"x","model":"m","choices":[{"index":0,"finish_reason":"stop","delta":{}}],"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}}`,
		`[DONE]`), Bill: &Bill{Prompt: 11, Completion: 2}},
	// A total above prompt plus completion (thinking a bridge left out of
	// completion_tokens): the output is the total less the prompt.
	{Name: "total-above-parts-plain", body: `{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hi","role":"assistant"}}],"created":1,"id":"g1","model":"gemini-2.5-flash","object":"chat.completion","usage":{"completion_tokens":1,"prompt_tokens":5,"total_tokens":40}}`,
		Bill: &Bill{Prompt: 5, Completion: 35}},
	// xAI: reasoning_tokens beside completion_tokens, not in it; the
	// total counts both, and both are billed as output.
	{Name: "xai-reasoning", Stream: true, IncludeUsage: true, body: sse(
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"grok-3-mini","choices":[{"index":0,"delta":{"reasoning_content":"hmm","role":"assistant"}}],"system_fingerprint":"fp_1"}`,
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"grok-3-mini","choices":[{"index":0,"delta":{"content":"Hi"}}],"system_fingerprint":"fp_1"}`,
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"grok-3-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"system_fingerprint":"fp_1"}`,
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"grok-3-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":399,"prompt_tokens_details":{"text_tokens":12,"audio_tokens":0,"image_tokens":0,"cached_tokens":6},"completion_tokens_details":{"reasoning_tokens":386,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0},"num_sources_used":0},"system_fingerprint":"fp_1"}`,
		`[DONE]`), Bill: &Bill{Prompt: 12, Completion: 387, Cached: 6, Reasoning: 386}},
}
