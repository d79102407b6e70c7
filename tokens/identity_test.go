package tokens

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// The identity fast path must give the cold count for every change a
// caller can make to a message it re-sends: a new string, a shared buffer
// seen with another length, a tool call or a binary part changed in place.
func TestIdentityPathSeesEveryChange(t *testing.T) {
	t.Parallel()
	warm := New()
	cold := New(WithCacheSize(0))
	check := func(what string, msgs []middleware.Message) {
		t.Helper()
		for _, model := range []string{"gpt-4o", "gpt-4", "gpt-3.5-turbo-0301", "claude-sonnet-4"} {
			req := &middleware.Request{Messages: msgs}
			for range 2 {
				if a, b := warm.Request(model, req), cold.Request(model, req); a != b {
					t.Fatalf("%s, %s: memoised %d != cold %d", what, model, a, b)
				}
			}
		}
	}
	buf := strings.Repeat("the disk is full; ", 40)
	msgs := []middleware.Message{
		{Role: middleware.RoleUser, Content: buf[:100]},
		{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: "c1", Name: "df", Arguments: `{"path":"/"}`}}},
		{Role: middleware.RoleTool, ToolCallID: "c1", Content: buf},
		{Role: middleware.RoleUser, Parts: []middleware.Part{{Type: "text", Text: buf[:50]}, {Type: "image_url", URL: "https://x/y.png", Detail: "low"}}},
		{Role: middleware.RoleUser, Parts: []middleware.Part{{Type: "input_audio", Data: []byte("0123456789")}}},
	}
	check("first", msgs)
	msgs[0].Content = buf[:101] // same data pointer, another length
	check("longer prefix of the same buffer", msgs)
	msgs[0].Content = buf[18:101] // same length as a substring elsewhere
	check("other substring", msgs)
	msgs[1].ToolCalls[0].Arguments = `{"path":"/var/log"}` // the caller's slice changed in place
	check("tool call changed in place", msgs)
	msgs[3].Parts[1].Detail = "high"
	check("part changed in place", msgs)
	msgs[4].Parts[0].Data = append(msgs[4].Parts[0].Data[:0], "0123456789abcdef"...) // bytes changed in place
	check("binary part changed in place", msgs)
	msgs[2].Name = "df"
	check("name added", msgs)
	msgs[0].Role = middleware.RoleSystem
	check("role changed", msgs)
}

// The identity table keeps a bounded number of bytes alive.
func TestIdentityTableBound(t *testing.T) {
	t.Parallel()
	tab := newIDTable(1024, 64<<10)
	for i := range 5000 {
		m := &middleware.Message{Role: middleware.RoleUser, Content: fmt.Sprintf("%d %s", i, strings.Repeat("x", 200))}
		h, _ := identityHash(1, m)
		tab.put(h, 1, m, int64(i))
		if v, ok := tab.get(h, 1, m); !ok || v != int64(i) {
			t.Fatalf("entry %d not found after put", i)
		}
		if b := tab.bytes.Load(); b > 64<<10 {
			t.Fatalf("table keeps %d bytes alive, bound %d", b, 64<<10)
		}
	}
	var sum int64
	for i := range tab.es {
		if e := tab.es[i].Load(); e != nil {
			sum += e.size
		}
	}
	if sum != tab.bytes.Load() {
		t.Fatalf("accounted %d bytes, entries hold %d", tab.bytes.Load(), sum)
	}
	big := &middleware.Message{Role: middleware.RoleTool, Content: strings.Repeat("y", 8<<10)}
	h, _ := identityHash(1, big)
	tab.put(h, 1, big, 1)
	if _, ok := tab.get(h, 1, big); ok {
		t.Fatal("a message over a sixteenth of the bound was kept alive")
	}
}

// A message enters the identity table on its second sight, not its first;
// every sight counts as the cold estimator does.
func TestIdentityEntryOnSecondSight(t *testing.T) {
	t.Parallel()
	warm := New()
	cold := New(WithCacheSize(0))
	m := middleware.Message{Role: middleware.RoleUser, Content: strings.Repeat("how full is /var? ", 9)}
	req := &middleware.Request{Messages: []middleware.Message{m}}
	variant := variantOf(O200kBase, false)
	h, ok := identityHash(variant, &req.Messages[0])
	if !ok {
		t.Fatal("a text message has no identity")
	}
	want := cold.Request("gpt-4o", req)
	for sight := 1; sight <= 3; sight++ {
		if got := warm.Request("gpt-4o", req); got != want {
			t.Fatalf("sight %d: %d tokens, cold %d", sight, got, want)
		}
		_, kept := warm.ids.get(h, variant, &req.Messages[0])
		if kept != (sight >= 2) {
			t.Fatalf("after sight %d: kept by identity %v", sight, kept)
		}
	}
}
