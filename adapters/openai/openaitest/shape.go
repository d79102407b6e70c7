package openaitest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// Shape makes a streamed reply arrive in one of the many valid shapes that
// OpenAI-compatible servers other than OpenAI's send, picked at random from
// Seed. Every shape assembles, by the rules of the official SDKs, to the
// same answer as the reply served without streaming; clients and adapters
// that assemble streams must give that answer. A shaped stream may have:
//
//   - content, reasoning, refusal and tool-call arguments cut into random
//     fragments (empty ones included), the fragments of several calls
//     interleaved in any order, several fragments (of one call or of
//     several) in one delta;
//   - a call's id, type and function.name in a later fragment than its
//     first, or repeated in every fragment; "name" and "arguments" null or
//     absent in the fragments that do not carry them;
//   - every call at index 0, told apart by a new id (as some local-model
//     servers do);
//   - a role-only first chunk, or the role with the first content; the
//     finish_reason in its own chunk with an empty or absent delta; the usage
//     in a "choices": [] chunk, or absent, or null on the other chunks;
//     "choices": [] chunks carrying only content-filter annotations;
//     logprobs per chunk; the choices of [Reply].Alternatives interleaved
//     by index;
//   - SSE comments, event: and id: lines, "data:" without a space, CRLF line
//     endings, and the body written in pieces cut at random bytes.
type Shape struct {
	Seed uint64
	// ReuseIndex, when set, sends every tool call at index 0 (the calls
	// told apart by their ids); otherwise Seed decides.
	ReuseIndex bool
	// NoReuseIndex keeps every call at its own index.
	NoReuseIndex bool
	// NoRepeat sends a call's id and name once each, never repeated in
	// later fragments (clients such as openai-go concatenate repeated names).
	NoRepeat bool
	// ReasoningField names the reasoning deltas: "reasoning_content" (the
	// default, as DeepSeek and vLLM) or "reasoning" (as OpenRouter and
	// newer vLLM). Clients that read only one of them see the other as no
	// reasoning at all.
	ReasoningField string
	// Sequential keeps each call's fragments together, in index order, the
	// id and name in its first fragment: the order that clients assembling
	// "append to the last call" (such as langchaingo's openai backend) read.
	Sequential bool
}

// shapedStream renders the answer's chunks in the shape s, as the pieces
// of the response body to write and flush one by one.
func (a *answer) shapedStream(s *Shape) [][]byte {
	rng := rand.New(rand.NewPCG(s.Seed, 0x0a1c4a7))
	coin := func(n int) bool { return rng.IntN(n) == 0 }
	repeats := func() bool { return coin(4) && !s.NoRepeat }
	usageNull := a.req.IncludeUsage() && coin(2)
	tier := !coin(3) // OpenAI names the service tier in every chunk; other servers in none

	base := func() map[string]any {
		m := map[string]any{"id": a.id, "object": "chat.completion.chunk", "created": a.created, "model": a.model,
			"system_fingerprint": "fp_openaitest"}
		if tier {
			m["service_tier"] = "default"
		}
		if usageNull {
			m["usage"] = nil
		}
		return m
	}
	reuse := s.ReuseIndex || !s.NoReuseIndex && !s.Sequential && coin(6)

	// Per choice, the queue of deltas to send, in an order valid for it.
	choices := append([]Reply{a.rep}, a.rep.Alternatives...)
	queues := make([][]map[string]any, len(choices))
	for ci, rep := range choices {
		var q []map[string]any
		reasoningField := s.ReasoningField
		if reasoningField == "" {
			reasoningField = "reasoning_content"
		}
		for _, p := range randomPieces(rng, rep.Reasoning) {
			q = append(q, map[string]any{reasoningField: p})
		}
		for _, p := range randomPieces(rng, rep.Refusal) {
			q = append(q, map[string]any{"refusal": p})
		}
		for _, p := range randomPieces(rng, rep.Content) {
			q = append(q, map[string]any{"content": p})
		}
		calls := make([][]map[string]any, len(rep.ToolCalls))
		for i, c := range rep.ToolCalls {
			if c.ID == "" {
				c.ID = a.callID(ci, i)
			}
			parts := randomPieces(rng, c.Function.Arguments)
			if len(parts) == 0 {
				parts = []string{""}
			}
			idAt, nameAt, repeat := 0, 0, false
			if !s.Sequential && !reuse {
				idAt, nameAt, repeat = rng.IntN(len(parts)), rng.IntN(len(parts)), repeats()
			}
			if reuse && !s.Sequential {
				nameAt, repeat = rng.IntN(len(parts)), repeats()
			}
			idx := i
			if reuse {
				idx = 0
			}
			for j, p := range parts {
				d := map[string]any{"index": idx}
				fn := map[string]any{}
				if j == idAt || repeat {
					d["id"] = c.ID
					d["type"] = "function"
				} else if coin(5) {
					d["id"] = nil
				}
				if j == nameAt || repeat {
					fn["name"] = c.Function.Name
				} else if coin(3) {
					fn["name"] = nil
				}
				switch {
				case p != "" || coin(2):
					fn["arguments"] = p
				case coin(2):
					fn["arguments"] = nil
				}
				d["function"] = fn
				calls[i] = append(calls[i], d)
			}
		}
		// Interleave the calls' fragments (strictly one call after the
		// other when they share index 0, or when sequential).
		for next := 0; ; {
			var live []int
			for i := range calls {
				if len(calls[i]) > 0 && (i == next || !reuse && !s.Sequential) {
					live = append(live, i)
				}
			}
			if len(live) == 0 {
				break
			}
			i := live[rng.IntN(len(live))]
			var batch []any
			for k := 1 + rng.IntN(2); k > 0 && len(calls[i]) > 0; k-- {
				if s.Sequential && len(batch) > 0 {
					break
				}
				batch = append(batch, calls[i][0])
				calls[i] = calls[i][1:]
			}
			if len(calls[i]) == 0 {
				next++
			}
			if !reuse && !s.Sequential && coin(3) {
				// another call's fragment in the same delta
				j := live[rng.IntN(len(live))]
				if len(calls[j]) > 0 {
					batch = append(batch, calls[j][0])
					calls[j] = calls[j][1:]
				}
			}
			q = append(q, map[string]any{"tool_calls": batch})
		}
		queues[ci] = q
	}

	// The chunks: the choices' deltas interleaved, role first, finish last.
	var chunks []map[string]any
	chunk := func(ci int, delta map[string]any, finish any) map[string]any {
		c := base()
		ch := map[string]any{"index": ci, "finish_reason": finish}
		if delta != nil || !coin(4) {
			if delta == nil {
				delta = map[string]any{}
			}
			ch["delta"] = delta
		}
		if coin(3) {
			ch["logprobs"] = map[string]any{"content": []any{map[string]any{"token": "x", "logprob": -0.25,
				"bytes": []int{120}, "top_logprobs": []any{}}}, "refusal": nil}
		} else if coin(2) {
			ch["logprobs"] = nil
		}
		c["choices"] = []any{ch}
		return c
	}
	if coin(3) {
		c := base()
		c["id"], c["model"], c["created"] = "", "", 0 // as Azure sends it
		c["choices"] = []any{}
		c["prompt_filter_results"] = []any{map[string]any{"prompt_index": 0,
			"content_filter_results": map[string]any{"hate": map[string]any{"filtered": false, "severity": "safe"}}}}
		chunks = append(chunks, c)
	}
	roleDone := make([]bool, len(choices))
	for {
		var live []int
		for ci, q := range queues {
			if len(q) > 0 || !roleDone[ci] {
				live = append(live, ci)
			}
		}
		if len(live) == 0 {
			break
		}
		ci := live[rng.IntN(len(live))]
		var delta map[string]any
		if len(queues[ci]) > 0 {
			delta, queues[ci] = queues[ci][0], queues[ci][1:]
		}
		if !roleDone[ci] {
			roleDone[ci] = true
			if delta == nil || coin(2) {
				if delta != nil {
					queues[ci] = append([]map[string]any{delta}, queues[ci]...)
				}
				delta = map[string]any{"content": ""}
				if coin(2) {
					delta = map[string]any{}
				}
			} else {
				delta = clone(delta)
			}
			delta["role"] = "assistant"
		}
		chunks = append(chunks, chunk(ci, delta, nil))
		if coin(8) {
			c := base()
			c["choices"] = []any{}
			c["content_filter_results"] = map[string]any{"violence": map[string]any{"filtered": false, "severity": "safe"}}
			chunks = append(chunks, c)
		}
	}
	for ci, rep := range choices {
		finish := finishOf(rep)
		if coin(3) && len(chunks) > 0 {
			// finish_reason with the choice's last delta
			for k := len(chunks) - 1; k >= 0; k-- {
				if chs, _ := chunks[k]["choices"].([]any); len(chs) == 1 && chs[0].(map[string]any)["index"] == ci {
					chs[0].(map[string]any)["finish_reason"] = finish
					finish = ""
					break
				}
			}
		}
		if finish != "" {
			chunks = append(chunks, chunk(ci, nil, finish))
		}
	}
	if a.req.IncludeUsage() {
		c := base()
		c["choices"] = []any{}
		c["usage"] = a.usage()
		chunks = append(chunks, c)
	}

	// The SSE framing.
	eol := "\n"
	if coin(2) {
		eol = "\r\n"
	}
	var body strings.Builder
	if coin(2) {
		body.WriteString(": OPENROUTER PROCESSING" + eol + eol)
	}
	for i, c := range chunks {
		data, _ := json.Marshal(c)
		if coin(4) {
			body.WriteString("event: message" + eol)
		}
		if coin(6) {
			body.WriteString("id: " + itoa(i) + eol)
		}
		if coin(5) {
			body.WriteString(": keep-alive" + eol)
		}
		if coin(3) {
			body.WriteString("data:")
		} else {
			body.WriteString("data: ")
		}
		body.Write(data)
		body.WriteString(eol + eol)
	}
	body.WriteString("data: [DONE]" + eol + eol)

	// Written in pieces cut at random bytes.
	b := []byte(body.String())
	var out [][]byte
	for len(b) > 0 {
		n := 1 + rng.IntN(min(len(b), 64))
		if coin(4) {
			n = len(b)
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// randomPieces cuts s at random rune boundaries into pieces, empty ones
// included; "" gives no pieces.
func randomPieces(rng *rand.Rand, s string) []string {
	var out []string
	for s != "" {
		if rng.IntN(6) == 0 {
			out = append(out, "")
		}
		n := 0
		for k := 1 + rng.IntN(6); k > 0 && n < len(s); k-- {
			_, size := utf8.DecodeRuneInString(s[n:])
			n += size
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

func finishOf(r Reply) string {
	switch {
	case r.FinishReason != "":
		return r.FinishReason
	case len(r.ToolCalls) > 0:
		return "tool_calls"
	}
	return "stop"
}

// RandomReply generates a random valid answer from rng, for property tests:
// text with JSON escapes and multi-byte runes, sometimes reasoning or a
// refusal, 0-4 tool calls (some with empty arguments), sometimes a length
// finish, and, when alternatives is true, sometimes more choices (n > 1).
func RandomReply(rng *rand.Rand, alternatives bool) Reply {
	words := []string{"disk", " ok", "é", "日本", `"q"`, `\`, "\n", "{", "}", "🙂", " "}
	text := func(n int) string {
		var b strings.Builder
		for range rng.IntN(n + 1) {
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.String()
	}
	r := Reply{Content: text(20)}
	if rng.IntN(2) == 0 {
		r.Reasoning = text(8)
	}
	if rng.IntN(6) == 0 {
		r.Refusal = "I can't help with" + text(3)
	}
	for i := range rng.IntN(5) {
		args := `{"host":"web-` + fmt.Sprint(i) + `","q":"` + strings.NewReplacer(`"`, `'`, `\`, `/`, "\n", " ").Replace(text(6)) + `"}`
		if rng.IntN(8) == 0 {
			args = ""
		}
		r.ToolCalls = append(r.ToolCalls, Call(fmt.Sprintf("call_%d_%d", rng.IntN(1000), i), "check_disk", args))
	}
	if rng.IntN(8) == 0 {
		r.FinishReason = "length"
	}
	if alternatives && rng.IntN(4) == 0 {
		for range 1 + rng.IntN(2) {
			r.Alternatives = append(r.Alternatives, RandomReply(rng, false))
		}
	}
	return r
}
