package tokens

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

func conversation(n, size int) []middleware.Message {
	msgs := make([]middleware.Message, n)
	for i := range msgs {
		role := middleware.RoleUser
		if i%2 == 1 {
			role = middleware.RoleAssistant
		}
		body := fmt.Sprintf("message %d: ", i)
		body += strings.Repeat("the server disk is at 95 percent, /var/log is large; ", size/52+1)
		msgs[i] = middleware.Message{Role: role, Content: body[:size]}
	}
	return msgs
}

// BenchmarkIncremental50 estimates a 50-message conversation (about 500
// bytes a message) of which 49 messages were counted before: the work is
// finding the old messages by the identity of their strings and tokenising
// the new one.
func BenchmarkIncremental50(b *testing.B) {
	e := New()
	old := conversation(49, 500)
	req := &middleware.Request{Messages: old}
	e.Request("gpt-4o", req)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		msgs := append(old[:49:49], middleware.Message{Role: middleware.RoleUser, Content: fmt.Sprintf("new question %d: what uses the disk?", i)})
		e.Request("gpt-4o", &middleware.Request{Messages: msgs})
	}
}

// BenchmarkCold4KB tokenises one 4 KB message never seen before.
func BenchmarkCold4KB(b *testing.B) {
	e := New()
	base := conversation(1, 4096)[0].Content
	e.Text("gpt-4o", "warm up the vocabulary")
	b.ReportAllocs()
	b.SetBytes(4096)
	i := 0
	for b.Loop() {
		i++
		s := fmt.Sprintf("%08d", i) + base[8:]
		e.Request("gpt-4o", &middleware.Request{Messages: []middleware.Message{{Role: middleware.RoleUser, Content: s}}})
	}
}

func BenchmarkIncremental50Parallel(b *testing.B) {
	e := New()
	old := conversation(49, 500)
	e.Request("gpt-4o", &middleware.Request{Messages: old})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		msgs := append(old[:49:49], middleware.Message{Role: middleware.RoleUser, Content: "what uses the disk?"})
		for pb.Next() {
			e.Request("gpt-4o", &middleware.Request{Messages: msgs})
		}
	})
}
