package openai

import (
	"bytes"
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/middleware"
)

// slowChunk decodes data as the provider does without a template (meta not
// wanted), with the plain-chunk report of a kept stream.
func slowChunk(data []byte) (middleware.Chunk, chunkSnapshot, plainChunk, bool) {
	r := getReader(nil)
	defer putReader(r)
	var pc plainChunk
	r.plain = &pc
	defer func() { r.plain = nil }()
	w := &Wire{}
	c, _, apiErr, err := r.chunk(w, data, false)
	if apiErr != nil || err != nil {
		return c, chunkSnapshot{}, pc, false
	}
	c.Native = nil
	snap := w.chunk
	snap.c.Native = nil
	return c, snap, pc, true
}

// checkMatch: when the template matches payload, what it returns is what
// the decoder makes of payload: the chunk, the snapshot (cut spans
// included), the plain-chunk report, and the Wire holds payload's bytes.
func checkMatch(t *testing.T, tmpl *chunkTemplate, payload []byte) bool {
	t.Helper()
	var mem chunkArena
	c, pc, ok := tmpl.match(&mem, payload)
	if !ok {
		return false
	}
	want, wantSnap, wantPC, decoded := slowChunk(payload)
	if !decoded {
		t.Fatalf("template matched %q, which does not decode", payload)
	}
	w := c.Native.(*Wire)
	got := c
	got.Native = nil
	snap := w.chunk
	snap.c.Native = nil
	if !bytes.Equal(w.JSON, payload) || !w.isChunk || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(snap, wantSnap) ||
		!reflect.DeepEqual(pc, wantPC) {
		t.Fatalf("template on %q:\n%+v %+v %+v\ndecoder:\n%+v %+v %+v", payload, got, snap, pc, want, wantSnap, wantPC)
	}
	return true
}

// learnFrom makes a template of data, decoded by the decoder.
func learnFrom(data []byte) *chunkTemplate {
	tmpl := &chunkTemplate{}
	r := getReader(nil)
	defer putReader(r)
	var pc plainChunk
	r.plain = &pc
	defer func() { r.plain = nil }()
	w := &Wire{}
	c, _, apiErr, err := r.chunk(w, data, false)
	if apiErr == nil && err == nil {
		tmpl.learn(data, &c, &w.chunk, &pc)
	}
	return tmpl
}

// FuzzChunkTemplate: a template learned from one chunk matches another
// payload only when the decoder makes of that payload exactly what the
// template returns; and it always matches the template's own payload with
// its content's body replaced by a plain one (UTF-8 without quotes,
// backslashes or control characters).
func FuzzChunkTemplate(f *testing.F) {
	f.Add([]byte(`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":" tok1"},"logprobs":null,"finish_reason":null}],"usage":null}`), []byte(" tok22"))
	f.Add([]byte(`{"id":"c","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":null,"service_tier":"default"}`), []byte(`b"c`))
	f.Add([]byte(`{"usage":null,"choices":[{"delta":{"content":"héllo","reasoning_content":"r"},"index":0}]}`), []byte(`\u00e9`))
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"content":"x"}},{"index":1,"delta":{"content":"y"}}]}`), []byte("z\n"))
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"content":"x"},"logprobs":{"content":[]}}],"usage":null}`), []byte("\xff\xfe"))
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"content":"x","tool_calls":[]}}]}`), []byte("yy"))
	f.Add([]byte(`{"error":null,"choices":[{"index":0,"delta":{"content":"x"}}],"usage":null,"error":{}}`), []byte("yyy"))
	f.Fuzz(func(t *testing.T, tmplData, body []byte) {
		tmpl := learnFrom(tmplData)
		checkMatch(t, tmpl, body)
		checkMatch(t, tmpl, append(append([]byte(nil), tmplData...), body...))
		if !tmpl.ok {
			return
		}
		swapped := append(append(append([]byte(nil), tmpl.pre...), body...), tmpl.post...)
		matched := checkMatch(t, tmpl, swapped)
		plain := len(body) > 0 && utf8.Valid(body) // not UTF-8: the decoder replaces it
		for _, b := range body {
			plain = plain && !special[b]
		}
		if plain && !matched {
			t.Fatalf("template %q did not match its payload with the plain body %q", tmplData, body)
		}
	})
}

// TestStreamTemplateDecodesAsTheDecoder: through readStream, with a cache
// keeping the stream, every chunk of random replies and shapes — with
// random bytes written into content bodies (quotes, backslashes, control
// characters, invalid UTF-8), so that some chunks match the template and
// some do not — is what the decoder makes of its payload, and the merged
// body is mergeChunks's of the payloads.
func TestStreamTemplateDecodesAsTheDecoder(t *testing.T) {
	p := &Provider{cfg: newConfig(nil)}
	for seed := range uint64(80) {
		rng := rand.New(rand.NewPCG(seed, 5))
		up := upstreamStream(t, seed)
		// Mutate some content bodies.
		marker := []byte(`"content":"`)
		var body []byte
		for rest := up; ; {
			i := bytes.Index(rest, marker)
			if i < 0 {
				body = append(body, rest...)
				break
			}
			body = append(body, rest[:i+len(marker)]...)
			rest = rest[i+len(marker):]
			if rng.IntN(4) == 0 {
				junk := [][]byte{[]byte(`\"`), []byte(`\\`), []byte(`\n`), []byte("\xff"), []byte("é"), []byte(`\u00e9`), []byte("x")}
				body = append(body, junk[rng.IntN(len(junk))]...)
			}
		}
		var payloads [][]byte
		for _, line := range bytes.Split(body, []byte("\n")) {
			if p, ok := dataPayload(bytes.TrimRight(line, "\r")); ok && string(p) != "[DONE]" {
				payloads = append(payloads, p)
			}
		}
		n := 0
		req := &middleware.Request{Model: "m", Stream: func(_ context.Context, c middleware.Chunk) error {
			w := c.Native.(*Wire)
			if !bytes.Equal(w.JSON, payloads[n]) {
				t.Fatalf("seed %d chunk %d: Wire holds %q, payload %q", seed, n, w.JSON, payloads[n])
			}
			want, wantSnap, _, ok := slowChunk(w.JSON)
			got, snap := c, w.chunk
			got.Native, snap.c.Native = nil, nil
			if !ok || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(snap, wantSnap) {
				t.Fatalf("seed %d chunk %d %q:\n%+v %+v\ndecoder:\n%+v %+v", seed, n, w.JSON, got, snap, want, wantSnap)
			}
			n++
			return nil
		}}
		resp, err := p.readStream(middleware.WithKeepNative(context.Background()), req, bytes.NewReader(body))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if n != len(payloads) {
			t.Fatalf("seed %d: %d chunks of %d payloads", seed, n, len(payloads))
		}
		_, got, ok := resp.Native.(*streamedBody).MarshalNative()
		want, err := mergeChunks(payloads)
		if !ok || err != nil || !bytes.Equal(got, want) {
			t.Fatalf("seed %d: merged\n%s\nmergeChunks (%v)\n%s", seed, got, err, want)
		}
	}
}
