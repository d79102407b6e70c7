package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// SetAnswerBounds sets how much of a Responses answer the gateway reads
// to charge it, and returns a function that restores it (tests of
// answers over the bound, which would otherwise need answers of tens of
// megabytes).
func SetAnswerBounds(responses int) (restore func()) {
	r := maxResponsesEvent
	maxResponsesEvent = responses
	return func() { maxResponsesEvent = r }
}

// FailResponsesChains makes every policy's fallback section fail to build
// for the Responses calls (their chain), as one the policy checks let
// through would; restore undoes it.
func FailResponsesChains() (restore func()) {
	r := resilienceOf
	resilienceOf = func(*llmwrap.Registry, *policies.Policy) (*llmwrap.Resilience, error) {
		return nil, errors.New("tokenwise/fallback: invalid config: a test's")
	}
	return func() { resilienceOf = r }
}

// SetMaxResponseOwners sets how many response ids the gateway keeps the
// creating team of in memory; restore undoes it.
func SetMaxResponseOwners(n int) (restore func()) {
	r := maxResponseOwners
	maxResponseOwners = n
	return func() { maxResponseOwners = r }
}

// BenchResponsesStream is a Responses stream of n text deltas of a word
// each, as OpenAI streams one: created, the deltas, the done events and
// the completed event with the whole answer (the benchmarks').
func BenchResponsesStream(n int) []byte {
	var b bytes.Buffer
	seq := 0
	ev := func(typ, data string) {
		fmt.Fprintf(&b, "event: %s\ndata: {\"type\":%q,\"sequence_number\":%d,%s}\n\n", typ, typ, seq, data)
		seq++
	}
	resp := func(status, output, usage string) string {
		return `"response":{"id":"resp_0123456789abcdef","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o-mini-2024-07-18",` +
			`"output":[` + output + `],"usage":` + usage + `}`
	}
	text := strings.Repeat("word ", n)
	msg := `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"` + text + `","annotations":[]}]}`
	ev("response.created", resp("in_progress", "", "null"))
	ev("response.in_progress", resp("in_progress", "", "null"))
	ev("response.output_item.added", `"output_index":0,"item":{"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]}`)
	for range n {
		ev("response.output_text.delta", `"item_id":"msg_1","output_index":0,"content_index":0,"delta":"word ","logprobs":[],"obfuscation":"abcdefgh"`)
	}
	ev("response.output_text.done", `"item_id":"msg_1","output_index":0,"content_index":0,"text":"`+text+`"`)
	ev("response.output_item.done", `"output_index":0,"item":`+msg)
	ev("response.completed", resp("completed", msg, `{"input_tokens":1000,"output_tokens":`+fmt.Sprint(n)+`,"total_tokens":`+fmt.Sprint(1000+n)+`}`))
	return b.Bytes()
}
