package openai

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestChunkCutsLeaveValidJSON: a chunk forwarded without its usage (a
// caller that did not ask for it) and without an "error" member holding
// no error is the chunk's JSON without those members, wherever they are
// and whatever the white space: valid, and otherwise the same.
func TestChunkCutsLeaveValidJSON(t *testing.T) {
	members := []string{`"id":"c"`, `"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]`, `"model":"m"`,
		`"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}`, `"error":null`}
	spaces := []string{"", " ", "\n  ", "\t"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var kept []string
		for j, m := range members {
			if j >= 3 && rng.IntN(4) == 0 {
				continue // without the usage, or the error
			}
			if j == 4 && rng.IntN(3) == 0 {
				m = []string{`"error":{}`, `"error":""`, `"error" : null`}[rng.IntN(3)]
			}
			kept = append(kept, m)
		}
		rng.Shuffle(len(kept), func(a, b int) { kept[a], kept[b] = kept[b], kept[a] })
		var b strings.Builder
		b.WriteString("{" + spaces[rng.IntN(4)])
		for k, m := range kept {
			if k > 0 {
				b.WriteString(spaces[rng.IntN(4)] + "," + spaces[rng.IntN(4)])
			}
			b.WriteString(m)
		}
		b.WriteString(spaces[rng.IntN(4)] + "}")
		data := b.String()
		var want map[string]any
		if err := json.Unmarshal([]byte(data), &want); err != nil {
			t.Fatal(err)
		}
		c, _, apiErr, err := decodeChunk([]byte(data), false)
		if err != nil || apiErr != nil {
			t.Fatalf("%s: %v %v", data, err, apiErr)
		}
		w := c.Native.(*Wire)
		for _, includeUsage := range []bool{false, true} {
			sw := &sseWriter{includeUsage: includeUsage}
			out := sw.appendEvents(nil, &c)
			payload, ok := strings.CutPrefix(string(out), "data: ")
			if !ok || !strings.HasSuffix(payload, "\n\n") {
				t.Fatalf("%s: event %q", data, out)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(payload), &got); err != nil {
				t.Fatalf("case %d: %s, cut (usage %t) to %s: %v (spans %+v)", i, data, !includeUsage, payload, err, w.chunk)
			}
			exp := map[string]any{}
			for k, v := range want {
				if k != "error" && (k != "usage" || includeUsage) {
					exp[k] = v
				}
			}
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("%s, cut (usage %t) to %s", data, !includeUsage, payload)
			}
		}
	}
}
