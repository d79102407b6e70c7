package tokens

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// cpuMeter reports cpu-ns/op, the process's CPU time per iteration: on a
// shared machine wall time also counts the time other processes run.
type cpuMeter struct {
	start int64
	ok    bool
}

func startCPU() cpuMeter {
	n, ok := cpuNanos()
	return cpuMeter{n, ok}
}

func (m cpuMeter) report(b *testing.B) {
	if end, ok := cpuNanos(); m.ok && ok && b.N > 0 {
		b.ReportMetric(float64(end-m.start)/float64(b.N), "cpu-ns/op")
	}
}

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
	cpu := startCPU()
	i := 0
	for b.Loop() {
		i++
		msgs := append(old[:49:49], middleware.Message{Role: middleware.RoleUser, Content: fmt.Sprintf("new question %d: what uses the disk?", i)})
		e.Request("gpt-4o", &middleware.Request{Messages: msgs})
	}
	cpu.report(b)
}

// BenchmarkCapCheck50 decides whether a 50-message conversation (about
// 400 bytes a message, resent: its messages counted before) with one new
// 500-byte message of prose is within an input cap of 10,000 tokens (the
// default policy's), as the budget layer does for ./bench's
// BenchmarkGoOpenAINewMessageIn50: how=count counts the request (the new
// message tokenised), how=bound compares the bound first (Within: the
// resent messages' counts and the new message's bytes), counting only
// if it is over the cap. The new messages are 65,536 distinct ones, more
// than the memo keeps: each is new to it, as a turn's is.
func BenchmarkCapCheck50(b *testing.B) {
	news := make([]string, 1<<16)
	for i := range news {
		s := fmt.Sprintf("New question %d: after the last deploy, service api-%d returns HTTP 502 on roughly %d%% of requests. ", i, i%97, i%13+1)
		for len(s) < 500 {
			s += "Which change could explain this, and what should we check first? "
		}
		news[i] = s[:500]
	}
	for _, how := range []string{"count", "bound"} {
		b.Run("how="+how, func(b *testing.B) {
			e := New()
			old := conversation(50, 400)
			msgs := append(old[:50:50], middleware.Message{Role: middleware.RoleUser, Content: news[0]})
			e.Request("gpt-4o", &middleware.Request{Messages: msgs}) // the conversation counted once
			b.ReportAllocs()
			cpu := startCPU()
			i := 0
			for b.Loop() {
				i++
				msgs := append(old[:50:50], middleware.Message{Role: middleware.RoleUser, Content: news[i%len(news)]})
				req := &middleware.Request{Messages: msgs}
				var within bool
				if how == "count" {
					within = e.Request("gpt-4o", req) <= 10_000
				} else {
					within = e.Within("gpt-4o", req, 10_000)
				}
				if !within {
					b.Fatal("over the cap")
				}
			}
			cpu.report(b)
		})
	}
}

// BenchmarkCold4KB tokenises one 4 KB message never seen before.
func BenchmarkCold4KB(b *testing.B) {
	e := New()
	base := conversation(1, 4096)[0].Content
	e.Text("gpt-4o", "warm up the vocabulary")
	b.ReportAllocs()
	b.SetBytes(4096)
	cpu := startCPU()
	i := 0
	for b.Loop() {
		i++
		s := fmt.Sprintf("%08d", i) + base[8:]
		e.Request("gpt-4o", &middleware.Request{Messages: []middleware.Message{{Role: middleware.RoleUser, Content: s}}})
	}
	cpu.report(b)
}

// BenchmarkNewMessage500 counts one new 500-byte message of prose (the
// new turn of ./bench's BenchmarkGoOpenAINewMessageIn50), never seen
// before: pre-tokenizer, rank lookups and merges. caches=cold first evicts
// the CPU's caches (writing 32 MB, outside the timer; cpu-ns/op counts it,
// ns/op does not), as the rest of a busy process does between two calls.
func BenchmarkNewMessage500(b *testing.B) {
	e := New()
	e.Text("gpt-4o", "warm up the vocabulary")
	msgs := make([]string, 4096)
	for i := range msgs {
		s := fmt.Sprintf("New question %d: after the last deploy, service api-%d returns HTTP 502 on roughly %d%% of requests from region eu-west-%d. "+
			"The load balancer shows healthy targets, yet the upstream connect time grew from %d ms to %d ms. "+
			"Which of the changes in the release notes could explain this, and what should we check first? ",
			i, i%97, i%13+1, i%3+1, 3+i%7, 40+i%50)
		for len(s) < 500 {
			s += "Please be specific. "
		}
		msgs[i] = s[:500]
	}
	for _, caches := range []string{"warm", "cold"} {
		b.Run("caches="+caches, func(b *testing.B) {
			var evict []byte
			if caches == "cold" {
				evict = make([]byte, 32<<20)
			}
			b.ReportAllocs()
			b.SetBytes(500)
			cpu := startCPU()
			i := 0
			for b.Loop() {
				if evict != nil {
					b.StopTimer()
					for j := 0; j < len(evict); j += 64 {
						evict[j]++
					}
					b.StartTimer()
				}
				e.Text("gpt-4o", msgs[i%len(msgs)])
				i++
			}
			cpu.report(b)
		})
	}
}

// agentRequest is an agent's request of 18 messages (a 700-byte system
// prompt, a question, eight tool calls with their 550-byte results, a last
// question), built afresh: its strings are its own.
func agentRequest(n int) *middleware.Request {
	var sys strings.Builder
	for i := range 6 {
		fmt.Fprintf(&sys, "The service web-%d reported disk usage of %d%% on /var at 12:%02d; logs rotate daily. ", i, 40+i, i)
	}
	msgs := []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are an SRE assistant. " + sys.String()},
		{Role: middleware.RoleUser, Content: fmt.Sprintf("Check the disks of the web tier (%d).", n)},
	}
	for i := range 8 {
		id := fmt.Sprintf("call_%d", i)
		msgs = append(msgs,
			middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{
				ID: id, Name: "check_disk", Arguments: fmt.Sprintf(`{"host":"web-%d","path":"/var"}`, i)}}},
			middleware.Message{Role: middleware.RoleTool, ToolCallID: id,
				Content: fmt.Sprintf("Filesystem Size Used Avail Use%% Mounted on\n/dev/sda1 100G %dG %dG %d%% /var\n", 40+i, 60-i, 40+i) + strings.Repeat("ok ", 160)},
		)
	}
	msgs = append(msgs, middleware.Message{Role: middleware.RoleUser, Content: fmt.Sprintf("Summarise (request %d).", n)})
	return &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}
}

// BenchmarkResent18 estimates requests of 18 messages that were all
// estimated before: the identity fast path. requests=1 re-sends the same
// request (the memo in the CPU's caches, as for one agent's turns);
// requests=1024 cycles through 1024 distinct requests (18,432 message
// values, as ./bench's BenchmarkChainInstantModelMiss does), the memo's
// working set far out of the caches.
func BenchmarkResent18(b *testing.B) {
	for _, n := range []int{1, 1024} {
		b.Run(fmt.Sprintf("requests=%d", n), func(b *testing.B) {
			e := New()
			reqs := make([]*middleware.Request, n)
			for i := range reqs {
				reqs[i] = agentRequest(i)
				e.Request("gpt-4o-mini", reqs[i])
			}
			b.ReportAllocs()
			cpu := startCPU()
			i := 0
			for b.Loop() {
				e.Request("gpt-4o-mini", reqs[i%len(reqs)])
				i++
			}
			cpu.report(b)
		})
	}
}
