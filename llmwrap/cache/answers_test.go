package cache_test

// Answer shapes the core does not model, as OpenAI sends them (the same
// bodies drive the end-to-end tests in e2e/cache_lossless_test.go).
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
)
