package gateway

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestLeadingIDOfACutAnswer: for random JSON objects (the id among other
// members of any kind, before or after them) cut at any length, leadingID
// gives the object's id when the cut keeps its id member whole, and never
// another string.
func TestLeadingIDOfACutAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		id := fmt.Sprintf("chatcmpl-%d", rng.Uint32())
		members := []string{
			`"object":"chat.completion"`,
			`"choices":[{"index":0,"message":{"role":"assistant","content":"{\"id\":\"fake\"}"}}]`,
			`"nested":{"id":"chatcmpl-fake","a":[1,2,{"id":"x"}]}`,
			`"usage":{"prompt_tokens":5}`,
			`"n":null`,
		}
		rng.Shuffle(len(members), func(a, b int) { members[a], members[b] = members[b], members[a] })
		at := rng.IntN(len(members) + 1)
		all := append(append(append([]string{}, members[:at]...), `"id":`+quoteJSON(id)), members[at:]...)
		b := []byte("{" + strings.Join(all, ",") + "}")
		end := strings.Index(string(b), `"id":`+quoteJSON(id)) + len(`"id":`+quoteJSON(id))
		cut := rng.IntN(len(b) + 1)
		got := leadingID(b[:cut])
		switch {
		case cut >= end && got != id:
			t.Fatalf("case %d: %q cut at %d (the id ends at %d): %q, want %q", i, b, cut, end, got, id)
		case got != "" && got != id:
			t.Fatalf("case %d: %q cut at %d: %q, not the object's id %q", i, b, cut, got, id)
		}
	}
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
