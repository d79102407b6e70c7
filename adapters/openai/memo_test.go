package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// randomText returns text with the characters that make JSON strings
// interesting: quotes, backslashes, escapes, non-ASCII, brackets.
func randomText(rng *rand.Rand) string {
	pieces := []string{"hello", " ", "world", `"`, `\`, "{", "}", "[", "]", ",", ":", "é", "日本", "\n", "\t", "\u2028", "😀", "0", "null", `\"`, `\\`}
	var sb strings.Builder
	for range rng.IntN(12) {
		sb.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return sb.String()
}

// randomMessageJSON returns the wire JSON of a random message: any role,
// content as a string, null or parts, names, tool calls, tool call ids,
// unknown members, and random whitespace and escaping.
func randomMessageJSON(rng *rand.Rand) string {
	str := func(s string) string {
		b, _ := json.Marshal(s)
		if rng.IntN(4) == 0 { // escape everything non-ASCII, another valid spelling
			var sb strings.Builder
			for _, r := range string(b) {
				if r > 0x7f && r < 0x10000 {
					fmt.Fprintf(&sb, `\u%04x`, r)
				} else {
					sb.WriteRune(r)
				}
			}
			return sb.String()
		}
		return string(b)
	}
	ws := func() string { return []string{"", "", "", " ", "\n  "}[rng.IntN(5)] }
	var members []string
	members = append(members, `"role":`+ws()+str([]string{"system", "user", "assistant", "tool", "developer"}[rng.IntN(5)]))
	switch rng.IntN(4) {
	case 0:
		members = append(members, `"content":null`)
	case 1:
		var parts []string
		for range 1 + rng.IntN(3) {
			switch rng.IntN(4) {
			case 0:
				parts = append(parts, `{"type":"image_url","image_url":{"url":`+str("https://x/"+randomText(rng))+`,"detail":"low"}}`)
			case 1:
				parts = append(parts, `{"type":"file","file":{"file_id":`+str(randomText(rng))+`}}`)
			case 2:
				parts = append(parts, `{"type":"input_audio","input_audio":{"data":"aGVsbG8=","format":"wav"}}`)
			default:
				parts = append(parts, `{"type":"text",`+ws()+`"text":`+str(randomText(rng))+`}`)
			}
		}
		members = append(members, `"content":[`+strings.Join(parts, ",")+`]`)
	default:
		members = append(members, `"content":`+ws()+str(randomText(rng)))
	}
	if rng.IntN(4) == 0 {
		members = append(members, `"name":`+str(randomText(rng)))
	}
	if rng.IntN(4) == 0 {
		members = append(members, `"tool_calls":[{"id":`+str("call_"+randomText(rng))+`,"type":"function","function":{"name":"f","arguments":`+str(`{"x":`+str(randomText(rng))+`}`)+`}}]`)
	}
	if rng.IntN(4) == 0 {
		members = append(members, `"tool_call_id":`+str(randomText(rng)))
	}
	if rng.IntN(5) == 0 {
		members = append(members, `"x_unknown":{"a":[1,2,{"b":`+str(randomText(rng))+`}]}`)
	}
	if rng.IntN(6) == 0 {
		members = append(members, `"reasoning_content":`+str(randomText(rng)))
	}
	rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
	return "{" + ws() + strings.Join(members, ","+ws()) + ws() + "}"
}

// randomToolJSON returns the wire JSON of a random tool: a function with
// or without a description, parameters and strict, or a tool of another
// type (which the core does not model).
func randomToolJSON(rng *rand.Rand) string {
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	if rng.IntN(6) == 0 {
		return `{"type":"custom","custom":{"name":` + str(randomText(rng)) + `}}`
	}
	fn := []string{`"name":` + str("f"+randomText(rng))}
	if rng.IntN(2) == 0 {
		fn = append(fn, `"description":`+str(randomText(rng)))
	}
	if rng.IntN(2) == 0 {
		fn = append(fn, `"parameters":{"type":"object","properties":{"x":{"type":"string","description":`+str(randomText(rng))+`}}}`)
	}
	if rng.IntN(3) == 0 {
		fn = append(fn, `"strict":true`)
	}
	return `{"type":"function","function":{` + strings.Join(fn, ",") + `}}`
}

func requestBody(msgs []string, tail string) []byte {
	return []byte(`{"model":"gpt-4o","messages":[` + strings.Join(msgs, ",") + `]` + tail + `}`)
}

// decodedEqual compares two decodes of one body: the same error, or the
// same core request and the same spans.
func decodedEqual(t *testing.T, body []byte, got, want *middleware.Request, gotErr, wantErr error) {
	t.Helper()
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%s\nwith memo: %v\nwithout:   %v", body, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	gs, ws := got.Native.(*Wire).req, want.Native.(*Wire).req
	if !reflect.DeepEqual(gs.msgSpans, ws.msgSpans) || !reflect.DeepEqual(gs.members, ws.members) {
		t.Fatalf("%s\nspans differ: %v / %v", body, gs.msgSpans, ws.msgSpans)
	}
	checkSharedValues(t, body, got)
	a, b := *got, *want
	a.Native, b.Native = nil, nil
	if !reflect.DeepEqual(&a, &b) {
		t.Fatalf("%s\nwith memo: %+v\nwithout:   %+v", body, a.Messages, b.Messages)
	}
	if !reflect.DeepEqual(gs.core.Messages, ws.core.Messages) {
		t.Fatalf("%s: snapshots differ", body)
	}
}

// checkSharedValues checks what req's Wire gives the response cache as
// shared values: in increasing order, disjoint, each within the value of
// the messages or the tools member, each the bytes of the body at its
// start, and each in memory of its own (the memo's copy), never the
// body's. It returns their number.
func checkSharedValues(t *testing.T, body []byte, req *middleware.Request) int {
	t.Helper()
	w := req.Native.(*Wire)
	starts, vals := w.SharedValues(nil, nil)
	if len(starts) != len(vals) {
		t.Fatalf("%s: %d starts, %d values", body, len(starts), len(vals))
	}
	end := 0
	for i, s := range starts {
		v := vals[i]
		if int(s) < end || int(s)+len(v) > len(w.JSON) || !bytes.Equal(w.JSON[s:int(s)+len(v)], v) || len(v) < minSharedValue {
			t.Fatalf("%s: shared value %d at %d (%q) is not the body's bytes there, or out of order", body, i, s, v)
		}
		in := false
		for _, m := range w.req.members {
			in = in || (m.field == fieldMessages || m.field == fieldTools) && m.value.start < int(s) && int(s)+len(v) < m.value.end
		}
		if !in {
			t.Fatalf("%s: shared value %d at %d is not inside the messages or the tools", body, i, s)
		}
		if p := uintptr(unsafe.Pointer(unsafe.SliceData(v))); p >= uintptr(unsafe.Pointer(unsafe.SliceData(w.JSON))) && p < uintptr(unsafe.Pointer(unsafe.SliceData(w.JSON)))+uintptr(len(w.JSON)) {
			t.Fatalf("%s: shared value %d is the body's own memory", body, i)
		}
		end = int(s) + len(v)
	}
	return len(starts)
}

// TestMessageMemoDecodesAsTheStrictReader: over random conversations that
// grow turn by turn (resending every earlier message and the tools, as
// agents do), with
// random bytes broken in some calls, a Transport's memoised decoding gives
// exactly what the strict reader gives (request, spans, errors), and a
// resent message decodes to the very same strings (same data pointers) as
// on the previous call.
func TestMessageMemoDecodesAsTheStrictReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	memo := newMsgMemo(64, 1<<20) // small: entries get forgotten and collide
	hits, shared := 0, 0
	for conv := range 300 {
		var msgs []string
		var prev *middleware.Request
		var tools []string
		for range rng.IntN(4) {
			tools = append(tools, randomToolJSON(rng))
		}
		for turn := range 1 + rng.IntN(8) {
			for range 1 + rng.IntN(3) {
				msgs = append(msgs, randomMessageJSON(rng))
			}
			tail := []string{"", `,"temperature":0.2`, `,"stream":true`}[rng.IntN(3)]
			if len(tools) > 0 && rng.IntN(4) > 0 {
				tail += `,"tools":[` + strings.Join(tools, ",") + `]`
			}
			body := requestBody(msgs, tail)
			if !json.Valid(body) {
				t.Fatalf("generator made invalid JSON: %s", body)
			}
			if rng.IntN(5) == 0 { // a broken call: one byte changed or the body cut
				b := append([]byte(nil), body...)
				if rng.IntN(2) == 0 {
					b[rng.IntN(len(b))] = "\"\\{}[],: a\x01"[rng.IntN(11)]
				} else {
					b = b[:rng.IntN(len(b))]
				}
				got, gotErr := decodeRequestMemo(b, memo)
				want, wantErr := decodeRequest(b)
				decodedEqual(t, b, got, want, gotErr, wantErr)
			}
			got, gotErr := decodeRequestMemo(body, memo)
			want, wantErr := decodeRequest(body)
			decodedEqual(t, body, got, want, gotErr, wantErr)
			if gotErr != nil {
				t.Fatalf("conversation %d turn %d: %v", conv, turn, gotErr)
			}
			shared += checkSharedValues(t, body, got)
			if prev != nil {
				for i := range prev.Messages {
					if c := prev.Messages[i].Content; c != "" && unsafe.StringData(c) == unsafe.StringData(got.Messages[i].Content) {
						hits++
					}
				}
			}
			prev = got
		}
	}
	if hits == 0 {
		t.Fatal("no resent message was taken from the memo")
	}
	if shared < 100 {
		t.Fatalf("%d shared values over every turn", shared)
	}
}

// TestMessageMemoForgetsWithinItsBound: the memo keeps at most its byte
// bound, and a message over a sixteenth of it is decoded but not kept.
func TestMessageMemoForgetsWithinItsBound(t *testing.T) {
	const bound = 64 << 10
	memo := newMsgMemo(1024, bound)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		body := requestBody([]string{randomMessageJSON(rng), `{"role":"user","content":"` + strings.Repeat("x", rng.IntN(2000)) + fmt.Sprint(i) + `"}`}, "")
		if _, err := decodeRequestMemo(body, memo); err != nil {
			t.Fatal(err)
		}
		if b := memo.bytes.Load(); b > bound {
			t.Fatalf("memo holds %d bytes, bound %d", b, bound)
		}
	}
	big := requestBody([]string{`{"role":"user","content":"` + strings.Repeat("y", bound/16) + `"}`}, "")
	before := memo.bytes.Load()
	if _, err := decodeRequestMemo(big, memo); err != nil {
		t.Fatal(err)
	}
	if e, _ := memo.get(kindMessage, big[len(`{"model":"gpt-4o","messages":[`):len(big)-2]); e != nil || memo.bytes.Load() != before {
		t.Fatal("an outsized message was kept")
	}
}

// TestMemoisedCountIsTheFreshCount: over random conversations that grow
// turn by turn, decoded through a Transport's memo (so that resent
// messages come back as the same strings and take the estimator's
// identity path), the memoised token estimate of every request equals the
// count of an estimator without any memo, for both OpenAI encodings, the
// legacy framing and the conservative rule.
func TestMemoisedCountIsTheFreshCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	memo := newMsgMemo(256, 1<<20)
	est := tokens.New()
	fresh := tokens.New(tokens.WithCacheSize(0))
	models := []string{"gpt-4o", "gpt-4", "gpt-3.5-turbo-0301", "claude-3-5-sonnet"}
	for range 60 {
		var msgs []string
		var tools []string
		for range rng.IntN(3) {
			tools = append(tools, randomToolJSON(rng))
		}
		for range 1 + rng.IntN(6) {
			for range 1 + rng.IntN(3) {
				msgs = append(msgs, randomMessageJSON(rng))
			}
			tail := ""
			if len(tools) > 0 {
				tail = `,"tools":[` + strings.Join(tools, ",") + `]`
			}
			body := requestBody(msgs, tail)
			req, err := decodeRequestMemo(body, memo)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := decodeRequest(body)
			if err != nil {
				t.Fatal(err)
			}
			for _, model := range models {
				if got, want := est.Request(model, req), fresh.Request(model, plain); got != want {
					t.Fatalf("%s: memoised count %d, fresh count %d\n%s", model, got, want, body)
				}
			}
		}
	}
}

// TestMemoDecodesNewValuesAtTheirDepth: a message or tool seen the first
// time is decoded once, from the memo's copy of its bytes, at the depth it
// has in the body: a value nested just within the reader's depth bound
// decodes (and is kept) as the strict reader decodes it, one nested just
// beyond it fails with the strict reader's error, and neither is kept
// when it fails.
func TestMemoDecodesNewValuesAtTheirDepth(t *testing.T) {
	for _, kind := range []string{"message", "tool"} {
		for d := maxDepth - 6; d <= maxDepth; d++ {
			nested := strings.Repeat("[", d) + strings.Repeat("]", d)
			var body []byte
			if kind == "message" {
				body = requestBody([]string{`{"role":"user","content":"hi","x":` + nested + `}`}, "")
			} else {
				body = requestBody([]string{`{"role":"user","content":"hi"}`},
					`,"tools":[{"type":"function","function":{"name":"f","parameters":{"x":`+nested+`}}}]`)
			}
			memo := newMsgMemo(64, 64<<20)
			for range 3 { // first seen, resent (kept), resent
				got, gotErr := decodeRequestMemo(body, memo)
				want, wantErr := decodeRequest(body)
				decodedEqual(t, body, got, want, gotErr, wantErr)
			}
		}
	}
}

// TestMemoPredictsResentToolsAndTheFirstMessage: a request's messages
// and tools, the first included, are kept when it is resent, and come
// from the memo from then on (the same strings as on the previous call),
// and a request whose first message or
// tool changed decodes as the strict reader does.
func TestMemoPredictsResentToolsAndTheFirstMessage(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 2))
	for range 200 {
		// A memo per conversation: the values of one request never
		// collide in it (a table shared by all could forget one).
		memo := newMsgMemo(1024, 8<<20)
		msgs := []string{randomMessageJSON(rng), randomMessageJSON(rng)}
		tools := []string{randomToolJSON(rng), randomToolJSON(rng)}
		if valuesShareASlot(memo, msgs, tools) {
			// The tables are two-way and direct-mapped by a seeded hash:
			// two values of one request whose slots coincide may displace
			// each other, and one is then kept a call later (about one
			// run of this test in 300 drew such a seed).
			continue
		}
		body := func() []byte { return requestBody(msgs, `,"tools":[`+strings.Join(tools, ",")+`]`) }
		// Met once (noted, decoded in place), then kept (the second
		// sight: msgMemo.admit), then predicted.
		if _, err := decodeRequestMemo(body(), memo); err != nil {
			t.Fatal(err)
		}
		first, err := decodeRequestMemo(body(), memo)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeRequestMemo(body(), memo)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := decodeRequest(body())
		decodedEqual(t, body(), again, want, nil, nil)
		for i, m := range again.Messages {
			if m.Content != "" && unsafe.StringData(m.Content) != unsafe.StringData(first.Messages[i].Content) {
				t.Fatalf("message %d of a resent request was decoded again", i)
			}
		}
		for i, tl := range again.Tools {
			if tl.Name != "" && unsafe.StringData(tl.Name) != unsafe.StringData(first.Tools[i].Name) {
				t.Fatalf("tool %d of a resent request was decoded again", i)
			}
		}
		// Change the first message or the first tool: still the strict decode.
		if rng.IntN(2) == 0 {
			msgs[0] = randomMessageJSON(rng)
		} else {
			tools[0] = randomToolJSON(rng)
		}
		got, gotErr := decodeRequestMemo(body(), memo)
		want, wantErr := decodeRequest(body())
		decodedEqual(t, body(), got, want, gotErr, wantErr)
	}
}

// TestMemoKeepsAValueOnItsSecondSight: a message or tool met once is
// decoded in place and not kept (most are never sent again: a one-shot
// call's question); met again, it is kept; a third request gets the kept
// strings. The decoded request is the strict reader's every time.
func TestMemoKeepsAValueOnItsSecondSight(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for range 100 {
		memo := newMsgMemo(1024, 8<<20)
		body := requestBody([]string{randomMessageJSON(rng)}, `,"tools":[`+randomToolJSON(rng)+`]`)
		want, wantErr := decodeRequest(body)
		var prev *middleware.Request
		for sight := 1; sight <= 3; sight++ {
			got, err := decodeRequestMemo(body, memo)
			decodedEqual(t, body, got, want, err, wantErr)
			kept := memo.bytes.Load()
			switch {
			case sight == 1 && kept != 0:
				t.Fatalf("a request met once left %d bytes in the memo", kept)
			case sight > 1 && kept == 0:
				t.Fatalf("sight %d: nothing kept", sight)
			}
			if sight == 3 {
				if m := got.Messages[0]; m.Content != "" && unsafe.StringData(m.Content) != unsafe.StringData(prev.Messages[0].Content) {
					t.Fatal("the kept message was decoded again")
				}
				if len(got.Tools) > 0 && unsafe.StringData(got.Tools[0].Name) != unsafe.StringData(prev.Tools[0].Name) {
					t.Fatal("the kept tool was decoded again")
				}
			}
			prev = got
		}
	}
}

// valuesShareASlot reports whether two of the values (messages, tools)
// have a slot in common in memo's table of entries or of values seen once.
func valuesShareASlot(memo *msgMemo, msgs, tools []string) bool {
	var hs []uint64
	for _, m := range msgs {
		hs = append(hs, memo.hash(kindMessage, []byte(m)))
	}
	for _, tl := range tools {
		hs = append(hs, memo.hash(kindTool, []byte(tl)))
	}
	seenMask := uint64(len(memo.seen) - 1)
	taken := map[[2]uint64]int{}
	for k, h := range hs {
		i, j := memo.slotsOf(h)
		for _, s := range [][2]uint64{{0, i}, {0, j}, {1, h & seenMask}, {1, (h >> 32) & seenMask}} {
			if o, ok := taken[s]; ok && o != k {
				return true
			}
			taken[s] = k
		}
	}
	return false
}
