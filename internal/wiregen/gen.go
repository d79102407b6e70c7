package wiregen

// The generator: an answer (its choices, their content, reasoning, refusal,
// tool calls and finish reasons, the usage), then its bytes.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode/utf8"
)

type gCall struct{ id, name, args string }

type gChoice struct {
	index     int
	content   string
	reasoning string
	refusal   string
	calls     []gCall
	finish    string // "" : null
}

type gUsage struct {
	prompt, completion, total int
	cached, reasoning         int
}

type gAnswer struct {
	id, model, fp string
	choices       []gChoice
	usage         *gUsage
}

// Wire is an answer in its bytes, and how to serve them.
type Wire struct {
	Stream      bool
	ContentType string
	Gzip        bool   // gzip it for a client that accepts it
	Body        []byte // (not compressed)
	Pieces      []int  // flush after these offsets
	Done        bool   // the stream has its [DONE]
}

var gWords = []string{"disk", " ", "é", "日本", "😀", "\"q\"", "back\\slash", "\n", "\r\n", "\t", "<&>", "\u2028", "\x00", "ok", "42", "{", "}", "\u00a0", "ﬁ", "\u200d"}

func gText(rng *rand.Rand, max int) string {
	var b strings.Builder
	for range rng.IntN(max + 1) {
		b.WriteString(gWords[rng.IntN(len(gWords))])
	}
	return b.String()
}

func gArgs(rng *rand.Rand) string {
	switch rng.IntN(5) {
	case 0:
		return "{}"
	case 1:
		return ""
	}
	m := map[string]any{"host": "web-" + strconv.Itoa(rng.IntN(9))}
	if rng.IntN(2) == 0 {
		m["note"] = gText(rng, 4)
	}
	if rng.IntN(3) == 0 {
		m["n"] = rng.IntN(1000)
	}
	b, _ := json.Marshal(m)
	if rng.IntN(3) == 0 { // raw UTF-8 instead of Go's \u escapes of <, >, &
		b = bytes.ReplaceAll(b, []byte(`\u003c`), []byte("<"))
	}
	return string(b)
}

func genAnswer(rng *rand.Rand, n int) gAnswer {
	a := gAnswer{id: []string{"chatcmpl-" + strconv.Itoa(rng.IntN(1e6)), "", "gen-1", "x"}[rng.IntN(4)],
		model: []string{"gpt-4o-mini", "", "llama3", "deepseek-reasoner"}[rng.IntN(4)],
		fp:    []string{"", "fp_1", ""}[rng.IntN(3)]}
	for i := range n {
		c := gChoice{index: i}
		kind := rng.IntN(6)
		if kind != 0 {
			c.content = gText(rng, 6)
		}
		if rng.IntN(4) == 0 {
			c.reasoning = gText(rng, 4)
		}
		if rng.IntN(8) == 0 {
			c.refusal = gText(rng, 3)
		}
		if kind == 0 || rng.IntN(5) == 0 {
			for j := range 1 + rng.IntN(3) {
				c.calls = append(c.calls, gCall{id: fmt.Sprintf("call_%d_%d", i, j), name: []string{"check_disk", "rotate_logs", "f"}[rng.IntN(3)], args: gArgs(rng)})
			}
		}
		c.finish = []string{"stop", "stop", "stop", "stop", "length", "tool_calls", "content_filter", "eos", ""}[rng.IntN(9)]
		if len(c.calls) > 0 && rng.IntN(2) == 0 {
			c.finish = "tool_calls"
		}
		a.choices = append(a.choices, c)
	}
	if rng.IntN(4) != 0 {
		p, o := rng.IntN(5000), rng.IntN(500)
		a.usage = &gUsage{prompt: p, completion: o, total: p + o}
		if rng.IntN(3) == 0 {
			a.usage.cached = rng.IntN(p + 1)
		}
		if rng.IntN(3) == 0 {
			a.usage.reasoning = rng.IntN(o + 1)
		}
	}
	return a
}

// jstr encodes s as a JSON string, with escapes chosen at random: \uXXXX
// (surrogate pairs beyond the BMP), \/ and the short escapes, or raw.
func jstr(rng *rand.Rand, s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 { // an invalid byte: raw (as Go servers would not) or U+FFFD
			if rng.IntN(2) == 0 {
				b.WriteByte(s[i])
			} else {
				b.WriteString(`\ufffd`)
			}
			i++
			continue
		}
		i += size
		esc := rng.IntN(4) == 0
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '/' && esc:
			b.WriteString(`\/`)
		case r == '\n' && !esc:
			b.WriteString(`\n`)
		case r == '\r' && !esc:
			b.WriteString(`\r`)
		case r == '\t' && !esc:
			b.WriteString(`\t`)
		case r < 0x20 || esc || r == 0x2028 || r == 0x2029:
			if r > 0xffff {
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04X`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else if rng.IntN(2) == 0 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04X`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// obj is a JSON object in the making: its members are written in a random
// order, with random whitespace.
type obj struct {
	rng  *rand.Rand
	keys []string
	vals []string
}

func newObj(rng *rand.Rand) *obj { return &obj{rng: rng} }

func (o *obj) set(k, raw string) *obj {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, raw)
	return o
}

func (o *obj) String() string {
	idx := o.rng.Perm(len(o.keys))
	if o.rng.IntN(3) == 0 { // often in the canonical order
		for i := range idx {
			idx[i] = i
		}
	}
	sp := []string{"", "", " ", "\n  "}[o.rng.IntN(4)]
	var b strings.Builder
	b.WriteString("{" + sp)
	for n, i := range idx {
		if n > 0 {
			b.WriteString("," + sp)
		}
		b.WriteString(`"` + o.keys[i] + `":` + []string{"", " "}[o.rng.IntN(2)] + o.vals[i])
	}
	b.WriteString(sp + "}")
	return b.String()
}

// maybe sets k to raw, or to null, or leaves it absent.
func (o *obj) maybe(k, raw string, pNull, pAbsent int) *obj {
	switch {
	case o.rng.IntN(100) < pAbsent:
	case o.rng.IntN(100) < pNull:
		o.set(k, "null")
	default:
		o.set(k, raw)
	}
	return o
}

// num writes n (as an integer: go-openai cannot read a float into its ints).
func num(_ *rand.Rand, n int) string { return strconv.Itoa(n) }

func (a *gAnswer) usageJSON(rng *rand.Rand, u *gUsage) string {
	o := newObj(rng).set("prompt_tokens", num(rng, u.prompt)).set("completion_tokens", num(rng, u.completion))
	if rng.IntN(5) != 0 {
		o.set("total_tokens", num(rng, u.total))
	}
	if u.cached > 0 || rng.IntN(3) == 0 {
		o.set("prompt_tokens_details", newObj(rng).set("cached_tokens", num(rng, u.cached)).maybe("audio_tokens", "0", 30, 30).String())
	} else if rng.IntN(3) == 0 {
		o.set("prompt_tokens_details", "null")
	}
	if u.reasoning > 0 || rng.IntN(3) == 0 {
		o.set("completion_tokens_details", newObj(rng).set("reasoning_tokens", num(rng, u.reasoning)).maybe("accepted_prediction_tokens", "0", 30, 30).maybe("rejected_prediction_tokens", "0", 30, 50).String())
	} else if rng.IntN(3) == 0 {
		o.set("completion_tokens_details", "null")
	}
	if rng.IntN(6) == 0 {
		o.set("queue_time", "0.0123").set("x_extra", `{"a":[1,null,{"b":null}]}`)
	}
	return o.String()
}

func (a *gAnswer) meta(o *obj, rng *rand.Rand, object string) {
	if a.id != "" || rng.IntN(2) == 0 {
		o.set("id", jstr(rng, a.id))
	}
	o.maybe("object", `"`+object+`"`, 5, 20)
	if rng.IntN(5) != 0 { // sometimes absent
		o.set("created", "1700000000")
	}
	if a.model != "" || rng.IntN(2) == 0 {
		o.set("model", jstr(rng, a.model))
	}
	if a.fp != "" {
		o.set("system_fingerprint", jstr(rng, a.fp))
	} else if rng.IntN(4) == 0 {
		o.set("system_fingerprint", "null")
	}
	if rng.IntN(6) == 0 {
		o.set("service_tier", `"default"`)
	}
}

func finishJSON(f string) string {
	if f == "" {
		return "null"
	}
	return `"` + f + `"`
}

func logprobsJSON(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return "null"
	}
	return `{"content":[{"token":"a","logprob":-0.01,"bytes":[97],"top_logprobs":[]}],"refusal":null}`
}

// plain renders the answer as one chat completion.
func (a *gAnswer) plain(rng *rand.Rand) string {
	o := newObj(rng)
	a.meta(o, rng, "chat.completion")
	order := rng.Perm(len(a.choices))
	if rng.IntN(2) == 0 {
		for i := range order {
			order[i] = i
		}
	}
	var cs []string
	for _, i := range order {
		c := a.choices[i]
		m := newObj(rng).maybe("role", `"assistant"`, 0, 10)
		switch {
		case c.content != "":
			m.set("content", jstr(rng, c.content))
		case len(c.calls) > 0 || c.refusal != "":
			m.maybe("content", `""`, 60, 20)
		default:
			m.set("content", `""`)
		}
		if c.reasoning != "" {
			m.set("reasoning_content", jstr(rng, c.reasoning))
		}
		if c.refusal != "" {
			m.set("refusal", jstr(rng, c.refusal))
		} else if rng.IntN(3) == 0 {
			m.set("refusal", "null")
		}
		if len(c.calls) > 0 {
			var tcs []string
			for _, tc := range c.calls {
				f := newObj(rng).set("name", jstr(rng, tc.name)).set("arguments", jstr(rng, tc.args))
				t := newObj(rng).set("id", jstr(rng, tc.id)).maybe("type", `"function"`, 0, 15).set("function", f.String())
				tcs = append(tcs, t.String())
			}
			m.set("tool_calls", "["+strings.Join(tcs, ",")+"]")
		} else if rng.IntN(5) == 0 {
			m.set("tool_calls", []string{"null", "[]"}[rng.IntN(2)])
		}
		if rng.IntN(6) == 0 {
			m.set("annotations", "[]")
		}
		ch := newObj(rng)
		if len(a.choices) > 1 || rng.IntN(5) != 0 {
			ch.set("index", strconv.Itoa(c.index))
		}
		ch.set("message", m.String())
		ch.maybe("finish_reason", finishJSON(c.finish), 0, map[bool]int{true: 0, false: 30}[c.finish != ""])
		if rng.IntN(3) == 0 {
			ch.set("logprobs", logprobsJSON(rng))
		}
		if rng.IntN(8) == 0 {
			ch.set("stop_reason", "null") // vLLM
		}
		cs = append(cs, ch.String())
	}
	o.set("choices", "["+strings.Join(cs, ",")+"]")
	if a.usage != nil {
		o.set("usage", a.usageJSON(rng, a.usage))
	} else if rng.IntN(3) == 0 {
		o.set("usage", "null")
	}
	if rng.IntN(8) == 0 {
		o.set("prompt_filter_results", `[{"prompt_index":0,"content_filter_results":{}}]`)
	}
	return o.String()
}

// cut splits s into random pieces at byte offsets (inside a rune too, when
// bytes is set); empty pieces too.
func cut(rng *rand.Rand, s string, bytewise bool) []string {
	if s == "" {
		return nil
	}
	var out []string
	for len(s) > 0 {
		if rng.IntN(4) == 0 {
			out = append(out, s)
			break
		}
		i := 1 + rng.IntN(len(s))
		for !bytewise && i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
		if rng.IntN(10) == 0 {
			out = append(out, "")
		}
	}
	return out
}

type delta struct {
	choice int
	d      *obj
	finish string // set on the choice's last delta
	last   bool
}

// events renders the answer as the data payloads of a stream.
func (a *gAnswer) events(rng *rand.Rand, includeUsage bool) []string {
	usageMode := 0 // 0 a last chunk of no choices, 1 in the finishing chunk, 2 cumulative in every chunk, 3 in a chunk with choices before the end
	if a.usage != nil {
		usageMode = rng.IntN(4)
	}
	bytewise := rng.IntN(3) == 0
	idMode := rng.IntN(4) // 0 every fragment, 1 first, 2 id repeated, 3 type absent later
	roleMode := rng.IntN(3)
	reasoningKey := []string{"reasoning_content", "reasoning"}[rng.IntN(2)]
	queues := make([][]*delta, len(a.choices))
	for ci, c := range a.choices {
		var q []*delta
		add := func(d *obj) { q = append(q, &delta{choice: ci, d: d}) }
		if roleMode == 0 {
			add(newObj(rng).set("role", `"assistant"`).maybe("content", `""`, 30, 40))
		}
		for _, p := range cut(rng, c.reasoning, false) {
			add(newObj(rng).set(reasoningKey, jstr(rng, p)))
		}
		for _, p := range cut(rng, c.content, false) {
			add(newObj(rng).set("content", jstr(rng, p)))
		}
		for _, p := range cut(rng, c.refusal, false) {
			add(newObj(rng).set("refusal", jstr(rng, p)))
		}
		if len(c.calls) > 1 && rng.IntN(5) == 0 {
			// Mistral's and Gemini's way: every call whole, in one
			// delta, none with its index (each is the one at its
			// position).
			var tcs []string
			for _, tc := range c.calls {
				f := newObj(rng).set("name", jstr(rng, tc.name)).set("arguments", jstr(rng, tc.args))
				tcs = append(tcs, newObj(rng).set("id", jstr(rng, tc.id)).maybe("type", `"function"`, 0, 50).set("function", f.String()).String())
			}
			add(newObj(rng).set("tool_calls", "["+strings.Join(tcs, ",")+"]"))
			c.calls = nil
		}
		// tool calls: each call's fragments in order, calls interleaved
		frags := make([][]string, len(c.calls))
		for j, tc := range c.calls {
			frags[j] = cut(rng, tc.args, bytewise)
			if len(frags[j]) == 0 {
				frags[j] = []string{""}
			}
		}
		next := make([]int, len(c.calls))
		for {
			var open []int
			for j := range c.calls {
				if next[j] < len(frags[j]) {
					open = append(open, j)
				}
			}
			if len(open) == 0 {
				break
			}
			j := open[rng.IntN(len(open))]
			if rng.IntN(3) != 0 { // mostly in order of index
				j = open[0]
			}
			k := next[j]
			next[j]++
			tc := c.calls[j]
			f := newObj(rng)
			t := newObj(rng)
			if len(c.calls) > 1 || rng.IntN(6) != 0 {
				t.set("index", strconv.Itoa(j))
			}
			if k == 0 {
				t.set("id", jstr(rng, tc.id)).maybe("type", `"function"`, 0, 15)
				f.set("name", jstr(rng, tc.name))
			} else {
				switch idMode {
				case 0, 2:
					if idMode == 2 {
						t.set("id", jstr(rng, tc.id))
					}
					t.set("type", `"function"`)
				case 3:
				default:
					t.maybe("type", `"function"`, 0, 50)
				}
				if rng.IntN(5) == 0 {
					f.set("name", "null")
				}
			}
			f.set("arguments", jstr(rng, frags[j][k]))
			t.set("function", f.String())
			d := newObj(rng).set("tool_calls", "["+t.String()+"]")
			if roleMode == 2 || roleMode == 1 && k == 0 && j == 0 {
				d.set("role", `"assistant"`)
			}
			if rng.IntN(4) == 0 {
				d.set("content", "null")
			}
			add(d)
		}
		if len(q) == 0 || rng.IntN(3) == 0 {
			add(newObj(rng)) // an empty delta to carry the finish
		}
		if roleMode == 1 {
			q[0].d.set("role", `"assistant"`)
		}
		q[len(q)-1].finish, q[len(q)-1].last = c.finish, true
		queues[ci] = q
	}
	// Interleave the choices' deltas.
	var evs []string
	cum := 0
	total := 0
	for _, q := range queues {
		total += len(q)
	}
	chunk := func(choices []string, usage string) string {
		o := newObj(rng)
		a.meta(o, rng, "chat.completion.chunk")
		if rng.IntN(8) == 0 && len(evs) > 0 {
			o.set("id", jstr(rng, fmt.Sprintf("changed-%d", len(evs))))
		}
		o.set("choices", "["+strings.Join(choices, ",")+"]")
		switch {
		case usage != "":
			o.set("usage", usage)
		case rng.IntN(4) == 0 && a.usage != nil && includeUsage:
			o.set("usage", "null")
		}
		if rng.IntN(10) == 0 {
			o.set("x_groq", `{"id":"req_1"}`)
		}
		return o.String()
	}
	sent := 0
	for {
		var open []int
		for ci, q := range queues {
			if len(q) > 0 {
				open = append(open, ci)
			}
		}
		if len(open) == 0 {
			break
		}
		var parts []string
		take := 1
		if len(open) > 1 && rng.IntN(3) == 0 {
			take = len(open)
		}
		rng.Shuffle(len(open), func(i, j int) { open[i], open[j] = open[j], open[i] })
		lastOfAll := false
		for _, ci := range open[:take] {
			d := queues[ci][0]
			queues[ci] = queues[ci][1:]
			sent++
			ch := newObj(rng)
			if len(a.choices) > 1 || rng.IntN(6) != 0 {
				ch.set("index", strconv.Itoa(ci))
			}
			if rng.IntN(10) == 0 && d.d.keys == nil {
				ch.maybe("delta", "{}", 30, 30)
			} else {
				ch.set("delta", d.d.String())
			}
			if d.last {
				ch.set("finish_reason", finishJSON(d.finish))
			} else {
				ch.maybe("finish_reason", "null", 0, 40)
			}
			if rng.IntN(6) == 0 {
				ch.set("logprobs", logprobsJSON(rng))
			}
			parts = append(parts, ch.String())
		}
		lastOfAll = sent == total
		usage := ""
		if a.usage != nil {
			switch usageMode {
			case 1:
				if lastOfAll {
					usage = a.usageJSON(rng, a.usage)
				}
			case 2:
				cum++
				u := *a.usage
				if !lastOfAll {
					u.completion = min(u.completion, cum)
					u.total = u.prompt + u.completion
					u.reasoning = min(u.reasoning, u.completion)
				}
				usage = a.usageJSON(rng, &u)
			case 3:
				if sent == max(1, total-1) {
					usage = a.usageJSON(rng, a.usage)
				}
			}
		}
		evs = append(evs, chunk(parts, usage))
	}
	if a.usage != nil && usageMode == 0 {
		evs = append(evs, chunk(nil, a.usageJSON(rng, a.usage)))
	}
	if rng.IntN(8) == 0 { // Azure's first chunk: prompt filter results, no choices
		o := newObj(rng).set("id", `""`).set("object", `""`).set("created", "0").set("model", `""`).set("choices", "[]").
			set("prompt_filter_results", `[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]`)
		evs = append([]string{o.String()}, evs...)
	}
	return evs
}

// frame writes the events as an event stream.
func frame(rng *rand.Rand, evs []string, done bool) []byte {
	nl := []string{"\n", "\r\n"}[rng.IntN(2)]
	prefix := []string{"data: ", "data:", "data:  "}[rng.IntN(3)]
	var b bytes.Buffer
	if rng.IntN(10) == 0 {
		b.WriteString(":" + strings.Repeat(" ", 2048) + nl + nl) // padding against buffering proxies
	}
	for _, e := range evs {
		switch rng.IntN(12) {
		case 0:
			b.WriteString(": keep-alive" + nl + nl)
		case 1:
			b.WriteString("event: message" + nl)
		case 2:
			b.WriteString("id: " + strconv.Itoa(rng.IntN(100)) + nl)
		case 3:
			b.WriteString("retry: 3000" + nl)
		}
		e = strings.ReplaceAll(e, "\n  ", " ") // a data line holds no line break
		b.WriteString(prefix + e + nl + nl)
		if rng.IntN(10) == 0 {
			b.WriteString(nl)
		}
	}
	if done {
		b.WriteString(prefix + "[DONE]" + nl + nl)
	}
	return b.Bytes()
}

// render renders a as the bytes a server sends for a request streaming or
// not; a stream has its [DONE] unless noDone.
func render(rng *rand.Rand, a gAnswer, stream, includeUsage, noDone bool) Wire {
	w := Wire{Stream: stream, Gzip: rng.IntN(6) == 0, Done: stream && !noDone}
	if stream {
		w.ContentType = []string{"text/event-stream", "text/event-stream; charset=utf-8", "text/event-stream;charset=UTF-8"}[rng.IntN(3)]
		w.Body = frame(rng, a.events(rng, includeUsage), w.Done)
	} else {
		w.ContentType = []string{"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}[rng.IntN(3)]
		w.Body = []byte(a.plain(rng))
		if rng.IntN(5) == 0 {
			w.Body = append(w.Body, '\n')
		}
	}
	for range rng.IntN(6) {
		w.Pieces = append(w.Pieces, rng.IntN(len(w.Body)+1))
	}
	return w
}
