package sse_test

import (
	"bufio"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/sse"
)

// BenchmarkTimeToFirstByte measures, over loopback, the time from sending
// a request to the SSE helper until its client reads the first data line,
// minus the scripted upstream's first-token latency. It reports p50 and
// p99 of that overhead.
func BenchmarkTimeToFirstByte(b *testing.B) {
	const firstToken = time.Millisecond
	up := openaitest.New()
	up.On().Reply(openaitest.Reply{Content: "The disk is 42% full.", Latency: firstToken})
	h := sse.CallHandler(twopenai.NewProvider(up.URL, "k", twopenai.WithBaseTransport(up.Transport())), decode)
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	var ttfb []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Get(srv.URL + "?q=disk")
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if _, err := br.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		ttfb = append(ttfb, time.Since(start)-firstToken)
		for { // drain so the connection is reused
			if _, err := br.ReadString('\n'); err != nil {
				break
			}
		}
		resp.Body.Close()
	}
	slices.Sort(ttfb)
	b.ReportMetric(float64(ttfb[len(ttfb)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(ttfb[len(ttfb)*99/100].Microseconds()), "p99-µs")
}
